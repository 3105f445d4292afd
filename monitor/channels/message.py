"""How an alert reads: Jinja2 templates in a sandbox, cut to each channel's length limit.

Templates — ours in `templates/` and users' own per channel — run in an
`ImmutableSandboxedEnvironment`: no attribute starting with `_`, no method that mutates, no
loader (so no `include` of files), and none of Jinja's helper globals (`cycler`, `lipsum`, …)
that lead back to Python's internals. Undefined names raise, so a broken template fails loudly
instead of sending half a message. The payload is data, never template source: a statement
titled `{{ 7*7 }}` is printed as written.

Long diffs are cut at a change boundary and say "… N more changes" with the diff link, so a
long edit is never dropped or split into a flood of messages.

Every render has limits (`_Limits`), so no template can freeze the daemon or exhaust its
memory: a wall-clock budget (RENDER_SECONDS) and a budget of loop iterations
(MAX_ITERATIONS) checked at every loop step, call, operator and piece of output; no string
or list over MAX_SIZE items, refused *before* it is built where an operator or method
would build it (`'x' * 10**9`, `'x'.center(10**9)`, `"%099999999d"|format(1)`); no
integer over MAX_BITS bits (`9**9**9`); at most MAX_OUTPUT characters of output. A user's
template over a limit is a TemplateProblem like any other failure of it: the alert goes
out with the default template and the reason is logged (see `Channel._render`).
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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
    "visual": "VISUAL CHANGE",
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
    "independent_copies": [],
    "alerts": [],
    "paragraphs": [],
    "paragraph_count": 0,
    "archived_url": None,
    "archived_version": None,
    "divergence": None,
    "translations": [],
}

# Kinds whose alert is about the whole statement: its text (the first paragraphs of a new
# one, the last archived text of a removed one) says more than a diff against nothing,
# whose one "change" and summary are only the title again.
WHOLE_STATEMENT = ("published", "removed")


# The limits of one render (with the bisection that fits it to a channel, see `render`).
RENDER_SECONDS = 2.0
MAX_ITERATIONS = 1_000_000
MAX_SIZE = 1_000_000  # characters of a string, items of a list
MAX_BITS = 100_000  # of an integer (30,000 decimal digits)
MAX_OUTPUT = 2_000_000  # characters one rendering may write


class TemplateProblem(Exception):
    """A user's template failed to compile or render; the default template is used instead."""


class TemplateLimit(TemplateProblem):
    """A template went over one of the limits of a render."""


class _Limits:
    """What one render may still spend: time and loop iterations."""

    def __init__(self, seconds: float = RENDER_SECONDS) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.iterations = 0

    def tick(self, steps: int = 1) -> None:
        self.iterations += steps
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimit(f"over {MAX_ITERATIONS:,} loop iterations")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"rendering took over {self.seconds:g}s")


class _NoLimits(_Limits):
    """Outside a render (Jinja folding constants at compile time): sizes are still
    checked, and nothing loops there."""

    def tick(self, steps: int = 1) -> None:
        pass


_current: contextvars.ContextVar[_Limits] = contextvars.ContextVar("template_limits")
_NONE = _NoLimits()


def _limits() -> _Limits:
    return _current.get(_NONE)


def headline(kind: str) -> str:
    return HEADLINES.get(kind, kind.upper())


def gist(payload: dict[str, Any]) -> str:
    """What an alert is about, in a line: a new or removed statement's first paragraph
    (its summary would only repeat the title), else its summary."""
    if payload.get("kind") in WHOLE_STATEMENT and payload.get("title"):
        paragraphs = payload.get("paragraphs") or []
        if paragraphs:
            return str(paragraphs[0])
    return str(payload.get("summary") or "")


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
    """Render with as many paragraphs of a statement's text (then changes, then digest
    entries) as fit in `max_length`.

    Output length grows with the number of paragraphs and changes shown, so the largest
    count that fits is found by bisection. Text that still does not fit is cut hard; HTML is
    not, since a cut would break its markup (no HTML channel has a hard limit).
    """
    alert = {**_DEFAULTS, **payload}
    whole = alert["kind"] in WHOLE_STATEMENT and bool(alert["title"])
    changes = list(alert["changes"])
    entries = [{**_DEFAULTS, **entry} for entry in alert["alerts"]]
    paragraphs = list(alert["paragraphs"])
    more_in_payload = max(0, int(alert["paragraph_count"] or 0) - len(paragraphs))

    def attempt(
        shown_changes: int, shown_alerts: int, shown_paragraphs: int, up_to: int = max_length
    ) -> str | None:
        """The rendering, stripped; None as soon as it is known to be longer than `up_to`
        (generating the rest would only cost time)."""
        chunks = template.generate(
            alert=alert,
            headline=headline(alert["kind"]),
            # The one "change" of a whole statement is its title, shown already; and its
            # summary only repeats the title too (unless it says the version did not hold).
            whole_statement=whole,
            show_summary=bool(alert["summary"]) and (not whole or bool(alert.get("transient"))),
            changes=changes[:shown_changes],
            more_changes=len(changes) - shown_changes,
            alerts=entries[:shown_alerts],
            more_alerts=len(entries) - shown_alerts,
            paragraphs=paragraphs[:shown_paragraphs],
            more_paragraphs=len(paragraphs) - shown_paragraphs + more_in_payload,
            document=document,
        )
        return _collect(chunks, up_to)

    token = _current.set(_Limits())
    try:
        everything = len(changes), len(entries)
        text = attempt(*everything, len(paragraphs))
        if text is not None:
            return text
        # The statement's text gives way first (paragraph by paragraph), then the changes,
        # then a digest's entries: the link to the rest stays.
        shown = _most_that_fit(lambda n: attempt(*everything, n), len(paragraphs))
        if shown is not None:
            return attempt(*everything, shown) or ""
        shown = _most_that_fit(lambda n: attempt(n, len(entries), 0), len(changes))
        if shown is not None:
            return attempt(shown, len(entries), 0) or ""
        shown = _most_that_fit(lambda n: attempt(0, n, 0), len(entries))
        # No hard limit for HTML (a cut would break its markup), but MAX_OUTPUT.
        text = attempt(0, shown or 0, 0, MAX_OUTPUT if html else max_length)
        if text is not None:
            return text
        if html:
            raise TemplateLimit(f"output over {MAX_OUTPUT:,} characters")
        text = attempt(0, shown or 0, 0, MAX_OUTPUT)
        if text is None:
            raise TemplateLimit(f"output over {MAX_OUTPUT:,} characters")
        return text[: max_length - 1] + "…"
    finally:
        _current.reset(token)


def _collect(chunks: Iterable[str], up_to: int) -> str | None:
    """The chunks joined and stripped, or None once the stripped text is longer than
    `up_to` characters. Raises TemplateLimit past MAX_OUTPUT characters of whitespace."""
    limits = _limits()
    parts: list[str] = []
    written = 0  # characters, the leading whitespace left out
    end = 0  # where the text up to its last non-space character ends
    for chunk in chunks:
        limits.tick()
        if not written:
            chunk = chunk.lstrip()
        if not chunk:
            continue
        parts.append(chunk)
        if not chunk.isspace():
            end = written + len(chunk.rstrip())
        written += len(chunk)
        if end > up_to:
            return None
        if written > MAX_OUTPUT:
            raise TemplateLimit(f"output over {MAX_OUTPUT:,} characters")
    return "".join(parts)[:end]


def _most_that_fit(render_with: Callable[[int], str | None], total: int) -> int | None:
    """The largest n in [0, total) whose rendering fits (is not None), or None if even 0
    does not."""
    low, high = 0, total - 1
    if total == 0 or render_with(0) is None:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if render_with(middle) is not None:
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

    env = _limited_sandbox_class()(
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Jinja's helper globals are objects with methods; none is needed to word an alert.
    env.globals.clear()
    env.globals["range"] = _range
    env.filters.update(
        clip=_clip,
        capfirst=lambda text: f"{text[:1].upper()}{text[1:]}",
        headline=headline,
        inline_diff=_inline_diff,
        http_url=_http_url,
        gist=gist,
    )
    # Every filter checked, before (what it would build) and after (what it built).
    for name, function in list(env.filters.items()):
        env.filters[name] = _guarded_filter(name, function)
    env.filters[_LOOP_GUARD] = _guarded_loop
    return env


# The filter every {% for %} loop's sequence goes through (see `_parse`).
_LOOP_GUARD = "_limited_loop"


@cache
def _limited_sandbox_class() -> type[ImmutableSandboxedEnvironment]:
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        """The immutable sandbox with the limits of `_Limits` (see the module's doc)."""

        # Operators that build big values are checked (and never folded at compile time).
        intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

        def _parse(self, source: str, name: str | None, filename: str | None) -> Any:
            # Each loop's sequence through _LOOP_GUARD, which counts its steps: two nested
            # loops over big sequences with an empty body call nothing else of ours.
            tree = super()._parse(source, name, filename)
            for loop in tree.find_all(nodes.For):
                guarded = nodes.Filter(loop.iter, _LOOP_GUARD, [], [], None, None)
                guarded.set_lineno(loop.iter.lineno)
                guarded.set_environment(self)
                loop.iter = guarded
            return tree

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _limits().tick()
            _check_binop(operator, left, right)
            return _checked(super().call_binop(context, operator, left, right))

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _limits().tick()
            for value in (*args, *kwargs.values()):
                _checked(value)
            method, text = _str_method(__obj)
            if method is not None:
                args = _check_str_method(method, text, args, kwargs)
            return _checked(super().call(__context, __obj, *args, **kwargs))

    return LimitedSandbox


def _range(*args: int) -> range:
    """`range` as the sandbox has it (at most 100,000 numbers); the loop counts the steps."""
    from jinja2.sandbox import safe_range

    return safe_range(*args)


def _guarded_loop(sequence: Any) -> Iterator[Any]:
    limits = _limits()
    for item in sequence:
        limits.tick()
        yield item


def _guarded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps Jinja's pass_context & co. marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _limits().tick()
        args = _check_filter(name, function, args, kwargs)
        return _checked(function(*args, **kwargs))

    return guarded


def _checked(value: Any) -> Any:
    """`value`, unless it is too big a string, list or number."""
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_SIZE:
        raise TemplateLimit(f"a value of {len(value):,} items (at most {MAX_SIZE:,})")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise TemplateLimit(f"a number of over {MAX_BITS:,} bits")
    return value


def _too_big(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise TemplateLimit(f"{what} would be {size:,} long (at most {MAX_SIZE:,})")


_SEQUENCES = (str, list, tuple)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be over the limits, before it is built."""
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                _too_big(len(sequence) * max(count, 0), "a repeated value")
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and left.bit_length() + right.bit_length() > MAX_BITS:
            raise TemplateLimit(f"a product of over {MAX_BITS:,} bits")
    elif operator == "**":
        both_int = isinstance(left, int) and isinstance(right, int)
        if both_int and right > 0 and max(left.bit_length(), 1) * right > MAX_BITS:
            raise TemplateLimit(f"a power of over {MAX_BITS:,} bits")
    elif operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            _too_big(len(left) + len(right), "a joined value")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right if isinstance(right, tuple) else (right,))


# A width or precision of more than six digits in a format ("%099999999d", "{:>9999999}").
_HUGE_WIDTH = re.compile(r"\d{7,}")


def _check_printf(template: str, args: Iterable[Any]) -> None:
    """ "%"-formatting: no huge width written in it, nor taken from an argument ("%*d")."""
    if _HUGE_WIDTH.search(template):
        raise TemplateLimit("a format width over 6 digits")
    if "*" in template and any(isinstance(a, int) and a > MAX_SIZE for a in args):
        raise TemplateLimit("a format width over the limit")


def _str_method(obj: Any) -> tuple[str | None, str]:
    """The name of a string's method and the string, for a bound `str` method (also as the
    sandbox wraps `format`), else (None, "")."""
    target = getattr(obj, "__wrapped__", obj)
    owner = getattr(target, "__self__", None)
    if isinstance(owner, str):
        return getattr(target, "__name__", None), owner
    return None, ""


def _check_str_method(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse a call of a string's method that would build too big a string; returns the
    arguments to call it with (`join`'s iterable read into a list, to measure it)."""
    check = _STR_METHOD_CHECKS.get(name)
    return args if check is None else check(name, text, args, kwargs)


def _str_pad(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    if args and isinstance(args[0], int):
        _too_big(args[0], f"str.{name}()")
    return args


def _str_expandtabs(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if isinstance(size, int):
        _too_big(len(text) + text.count("\t") * size, "str.expandtabs()")
    return args


def _str_replace(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    if len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            hits = text.count(old) if old else len(text) + 1
            _too_big(len(text) + hits * len(new), "str.replace()")
    return args


def _str_join(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    if not args:
        return args
    items = list(_guarded_loop(args[0]))
    if all(isinstance(item, str) for item in items):
        _too_big(sum(map(len, items)) + len(text) * len(items), "str.join()")
    return (items, *args[1:])


def _str_format(
    name: str, text: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    if _HUGE_WIDTH.search(text):
        raise TemplateLimit("a format width over 6 digits")
    values = [*args, *kwargs.values()]
    if isinstance(values[0] if values else None, dict):
        values = list(values[0].values())
    if "{" in text.replace("{{", "") and any(isinstance(v, int) and v > MAX_SIZE for v in values):
        raise TemplateLimit("a format argument over the limit")  # "{:{}}" widths
    return args


_StrCheck = Callable[[str, str, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
_STR_METHOD_CHECKS: dict[str, _StrCheck] = {
    "center": _str_pad,
    "ljust": _str_pad,
    "rjust": _str_pad,
    "zfill": _str_pad,
    "expandtabs": _str_expandtabs,
    "replace": _str_replace,
    "join": _str_join,
    "format": _str_format,
    "format_map": _str_format,
}


def _check_filter(
    name: str, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """As `_check_str_method`, for the built-in filters that can build big values."""
    check = _FILTER_CHECKS.get(name)
    if check is None:
        return args
    values = [a for a in args if not _is_jinja_internal(a)]
    value = values[0] if values else None
    return check(_FilterCall(name, value, values[1:], kwargs, args))


@dataclass(frozen=True)
class _FilterCall:
    """A built-in filter's call: `value` filtered, the `rest` of its arguments, and `args`
    as Jinja passes them (its own context first, for some)."""

    name: str
    value: Any
    rest: list[Any]
    kwargs: dict[str, Any]
    args: tuple[Any, ...]


def _filter_center(call: _FilterCall) -> tuple[Any, ...]:
    width = call.rest[0] if call.rest else call.kwargs.get("width", 80)
    if isinstance(width, int):
        _too_big(width, "center")
    return call.args


def _filter_indent(call: _FilterCall) -> tuple[Any, ...]:
    if isinstance(call.value, str):
        width = call.rest[0] if call.rest else call.kwargs.get("width", 4)
        step = width if isinstance(width, int) else len(str(width))
        _too_big(len(call.value) + (call.value.count("\n") + 1) * step, "indent")
    return call.args


def _filter_replace(call: _FilterCall) -> tuple[Any, ...]:
    if isinstance(call.value, str) and len(call.rest) >= 2:
        _check_str_method("replace", call.value, (str(call.rest[0]), str(call.rest[1])), {})
    return call.args


def _filter_format(call: _FilterCall) -> tuple[Any, ...]:
    if isinstance(call.value, str):
        _check_printf(call.value, [*call.rest, *call.kwargs.values()])
    return call.args


def _filter_count(call: _FilterCall) -> tuple[Any, ...]:
    """`batch` and `slice`: as many lists as their count."""
    kwargs = call.kwargs
    count = call.rest[0] if call.rest else kwargs.get("linecount", kwargs.get("slices"))
    if isinstance(count, int):
        _too_big(count, call.name)
    return call.args


def _filter_wordwrap(call: _FilterCall) -> tuple[Any, ...]:
    if isinstance(call.value, str):
        width = call.rest[0] if call.rest else call.kwargs.get("width", 79)
        wrap = call.rest[3] if len(call.rest) > 3 else call.kwargs.get("wrapstring") or "\n"
        if isinstance(width, int) and isinstance(wrap, str):
            _too_big(len(call.value) * (1 + len(wrap) // max(width, 1) + 1), "wordwrap")
    return call.args


def _filter_join(call: _FilterCall) -> tuple[Any, ...]:
    value = call.value
    if value is None:
        return call.args
    items = list(_guarded_loop(value))
    separator = call.rest[0] if call.rest else call.kwargs.get("d", "")
    sizes = sum(len(item) if isinstance(item, str) else 20 for item in items)
    _too_big(sizes + len(str(separator)) * len(items), "join")
    return tuple(items if a is value else a for a in call.args)


def _filter_sum(call: _FilterCall) -> tuple[Any, ...]:
    start = call.rest[2] if len(call.rest) > 2 else call.kwargs.get("start", 0)
    if not isinstance(start, (int, float)):
        raise TemplateLimit("sum() starts from a number only")
    return call.args


_FILTER_CHECKS: dict[str, Callable[[_FilterCall], tuple[Any, ...]]] = {
    "center": _filter_center,
    "indent": _filter_indent,
    "replace": _filter_replace,
    "format": _filter_format,
    "batch": _filter_count,
    "slice": _filter_count,
    "wordwrap": _filter_wordwrap,
    "join": _filter_join,
    "sum": _filter_sum,
}


def _is_jinja_internal(value: Any) -> bool:
    """Whether a filter's argument is what Jinja passes first (context, eval context,
    environment) rather than the value filtered."""
    from jinja2 import Environment
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    return isinstance(value, (Context, EvalContext, Environment))


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
