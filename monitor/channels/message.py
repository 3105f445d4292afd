"""How an alert reads: Jinja2 templates in a sandbox, cut to each channel's length limit.

Templates — ours in `templates/` and users' own per channel — run in an
`ImmutableSandboxedEnvironment`: no attribute starting with `_`, no method that mutates, no
loader (so no `include` of files), and none of Jinja's helper globals (`cycler`, `lipsum`, …)
that lead back to Python's internals. Undefined names raise, so a broken template fails loudly
instead of sending half a message. The payload is data, never template source: a statement
titled `{{ 7*7 }}` is printed as written.

Long diffs are cut at a change boundary and say "… N more changes" with the diff link, so a
long edit is never dropped or split into a flood of messages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

if TYPE_CHECKING:  # Jinja2 is imported when a message is first rendered (start-up time)
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.diff import DELETE, EQUAL, word_diff

TEMPLATE_DIR = Path(__file__).parent / "templates"

HEADLINES = {
    "published": "NEW STATEMENT",
    "edited": "EDITED",
    "removed": "REMOVED",
    "restored": "RESTORED",
    "failing": "FAILING",
    "recovered": "RECOVERED",
    "digest": "DIGEST",
}

# Every key a template may rely on, so an alert stored by an older version still renders.
_DEFAULTS: dict[str, Any] = {
    "watch": "",
    "watch_name": None,
    "kind": "",
    "key": None,
    "title": None,
    "language": None,
    "url": None,
    "summary": "",
    "score": 0.0,
    "changes": [],
    "removed": [],
    "added": [],
    "diff_url": None,
    "version": None,
    "observed_at": "",
    "alerts": [],
}


class TemplateProblem(Exception):
    """A user's template failed to compile or render; the default template is used instead."""


def headline(kind: str) -> str:
    return HEADLINES.get(kind, kind.upper())


def subject(payload: dict[str, Any]) -> str:
    """One line for an email subject or a push notification title."""
    name = payload.get("watch_name") or payload.get("watch", "")
    what = payload.get("title") or payload.get("summary") or ""
    line = f"[monitor] {headline(payload.get('kind', ''))} — {name}: {what}"
    return _clip(" ".join(line.split()), 200)


def render_text(payload: dict[str, Any], max_length: int = 4000) -> str:
    """The alert as text with the default template, never over `max_length`."""
    return render(default_template(html=False), payload, max_length)


def render_html(payload: dict[str, Any], max_length: int = 200_000, document: bool = True) -> str:
    """The alert as HTML with the default template: a whole document, or a fragment."""
    return render(default_template(html=True), payload, max_length, html=True, document=document)


def render(
    template: Template,
    payload: dict[str, Any],
    max_length: int,
    html: bool = False,
    document: bool = True,
) -> str:
    """Render with as many changes (then digest entries) as fit in `max_length`.

    Output length grows with the number of changes shown, so the largest count that fits is
    found by bisection. Text that still does not fit is cut hard; HTML is not, since a cut
    would break its markup (no HTML channel has a hard limit).
    """
    alert = {**_DEFAULTS, **payload}
    changes, entries = list(alert["changes"]), list(alert["alerts"])

    def attempt(shown_changes: int, shown_alerts: int) -> str:
        return template.render(
            alert=alert,
            headline=headline(alert["kind"]),
            changes=changes[:shown_changes],
            more_changes=len(changes) - shown_changes,
            alerts=entries[:shown_alerts],
            more_alerts=len(entries) - shown_alerts,
            document=document,
        ).strip()

    text = attempt(len(changes), len(entries))
    if len(text) <= max_length:
        return text
    shown = _most_that_fit(lambda n: attempt(n, len(entries)), len(changes), max_length)
    if shown is not None:
        return attempt(shown, len(entries))
    shown = _most_that_fit(lambda n: attempt(0, n), len(entries), max_length)
    text = attempt(0, shown or 0)
    if html or len(text) <= max_length:
        return text
    return text[: max_length - 1] + "…"


def _most_that_fit(render_with: Callable[[int], str], total: int, limit: int) -> int | None:
    """The largest n in [0, total) whose rendering fits in `limit`, or None if even 0 does not."""
    low, high = 0, total - 1
    if total == 0 or len(render_with(0)) > limit:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if len(render_with(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def compile_template(source: str, html: bool) -> Template:
    """A user's template, compiled in the sandbox. Raises TemplateProblem on a syntax error."""
    try:
        return _environment(html).from_string(source)
    except Exception as err:
        raise TemplateProblem(_describe(err)) from None


def render_user(
    template: Template, payload: dict[str, Any], max_length: int, html: bool = False
) -> str:
    """Render a user's template; any failure (unsafe access, typo, …) is a TemplateProblem."""
    try:
        return render(template, payload, max_length, html)
    except Exception as err:  # the sandbox raises several kinds; all mean "use the default"
        raise TemplateProblem(_describe(err)) from None


def _describe(err: Exception) -> str:
    line = getattr(err, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(err).__name__}{where}: {err}"


@cache
def default_template(html: bool) -> Template:
    name = "alert.html.j2" if html else "alert.txt.j2"
    return _environment(html).from_string((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


@cache
def _environment(html: bool) -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

    env = ImmutableSandboxedEnvironment(
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Jinja's helper globals are objects with methods; none is needed to word an alert.
    env.globals.clear()
    env.globals["range"] = safe_range
    env.filters.update(
        clip=_clip,
        capfirst=lambda text: f"{text[:1].upper()}{text[1:]}",
        headline=headline,
        inline_diff=_inline_diff,
        http_url=_http_url,
    )
    return env


def _clip(text: str, width: int = 600) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _inline_diff(before: str, after: str) -> Markup:
    """Word diff as HTML: removed words in <del>, added words in <ins>, all text escaped."""
    parts = []
    for op, text in word_diff(before or "", after or "")[0]:
        if op == EQUAL:
            parts.append(escape(text))
        elif op == DELETE:
            parts.append(Markup('<del style="background:#fdd">{}</del>').format(text))
        else:
            parts.append(Markup('<ins style="background:#dfd">{}</ins>').format(text))
    return Markup("").join(parts)


def _http_url(url: str | None) -> str:
    # A link in a message only ever goes to a web page (no javascript:, data:, file:).
    return url if url and url.lower().startswith(("https://", "http://")) else "#"
