"""The plumbing every page shares: who is visiting, in which language, with which CSRF
token; rendering templates (Jinja2, autoescaped); and the `page` decorator that checks the
role and, for a POST, the CSRF token before a handler runs."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.config import MonitorConfig, WatchConfig
from monitor.permalinks import version_path
from monitor.redact import redact_text
from monitor.store import Store
from monitor.web.auth import (
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    Auth,
    Session,
    User,
    cookie_options,
)
from monitor.web.i18n import choose_language, translator

HERE = Path(__file__).resolve().parent
# The UI's own pages: scripts and styles from /static only, nothing from elsewhere, never
# framed. Archived pages get a far stricter policy of their own (see ui.archived_page).
UI_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


# A one-time notice for the page a form's POST redirects to (post/redirect/get): it needs
# no script, and a reload neither repeats the POST nor shows the notice again. The cookie
# names a notice of this table, never text of its own.
NOTICE_COOKIE = "monitor_notice"
NOTICES = {
    "annotation-saved": "Annotation saved.",
    "annotation-empty": "Nothing saved: choose a verdict or write a note.",
}


# Where `Pages.render_main` puts a page's main part: no page shows this text.
_MAIN_PLACE = "\x00main:" + secrets.token_hex(8) + "\x00"


class WatchIndex:
    """The watches in force by id, made once per snapshot of them (a page about one watch
    of 10,000 went through the list; the snapshot changes on a save or a reload)."""

    def __init__(self) -> None:
        self._of: MonitorConfig | None = None
        self._by_id: dict[str, WatchConfig] = {}

    def get(self, config: MonitorConfig, watch_id: str) -> WatchConfig | None:
        return self.by_id(config).get(watch_id)

    def by_id(self, config: MonitorConfig) -> dict[str, WatchConfig]:
        """Every watch of this snapshot by id, in the configuration's order (not to change)."""
        if config is not self._of:
            self._by_id = {watch.id: watch for watch in config.watch}
            self._of = config
        return self._by_id


class Searches:
    """Search hits by query, watch and limit, kept while the archive's search mark
    (`store.overview.search_mark`: what was indexed, the newest version) is what it was
    when they were found: a word in every statement of 100,000 versions costs 20-30 ms of
    ranking for each reader asking for it, and readers ask for the same words."""

    def __init__(self, size: int = 128) -> None:
        self.size = size
        self._mark: tuple[int, int] | None = None
        self._hits: dict[tuple[str, str | None, int], list[Any]] = {}

    def find(self, store: Store, query: str, watch_id: str | None, limit: int) -> list[Any]:
        mark = store.overview.search_mark()
        if mark != self._mark or mark[0] < mark[1]:  # new versions (to index first)
            self._hits.clear()
            self._mark = mark
        asked = (query, watch_id, limit)
        hits = self._hits.get(asked)
        if hits is None:
            hits = store.search(query, watch_id, limit)
            if len(self._hits) >= self.size:
                self._hits.clear()
            self._hits[asked] = hits
            self._mark = store.overview.search_mark()  # as it was made (search indexes)
        return hits


class Missing(Exception):
    """A watch, statement or version that does not exist: the page answers 404."""


@dataclass
class Visit:
    """One request as the pages see it."""

    request: Request
    user: User | None
    language: str
    csrf: str
    set_csrf: bool
    session: Session | None = None
    form: FormData | None = None
    # The notice this page shows once (a key of NOTICES), from the redirect that led here.
    notice: str | None = None
    extra_cookies: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def may(self, role: str) -> bool:
        return self.user is not None and self.user.may(role)


Handler = Callable[[Any, Request, Visit], Awaitable[Response]]


class Pages:
    """Base of the UI's handler classes: store, config, auth and templates."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], MonitorConfig],
        auth: Auth,
        env: Environment,
    ) -> None:
        self.store = store
        self._config = config
        self.auth = auth
        self.env = env

    @property
    def config(self) -> MonitorConfig:
        return self._config()

    def secure(self, request: Request) -> bool:
        public_url = self.config.server.public_url or ""
        return request.url.scheme == "https" or public_url.startswith("https://")

    def visit(self, request: Request) -> Visit:
        session = self.auth.session(request.cookies.get(SESSION_COOKIE))
        language = choose_language(
            request.cookies.get("lang"), request.headers.get("accept-language")
        )
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if session is not None:
            # The session's own token; the cookie carries it for scripts and tests, but the
            # check is against the session, not against the cookie.
            csrf = self.auth.session_csrf(session)
            fresh = cookie != csrf
        else:
            fresh = not self.auth.csrf_valid(cookie, cookie)
            csrf = self.auth.new_csrf() if fresh else cookie
        user = session.user if session else None
        notice = request.cookies.get(NOTICE_COOKIE)
        return Visit(
            request,
            user,
            language,
            csrf,
            fresh,
            session=session,
            notice=notice if notice in NOTICES else None,
        )

    def csrf_valid(self, visit: Visit, field: str | None) -> bool:
        if visit.session is not None:
            return self.auth.session_csrf_valid(visit.session, field)
        return self.auth.csrf_valid(visit.request.cookies.get(CSRF_COOKIE), field)

    def render(
        self, visit: Visit, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        html = self._html(visit, template, **context)
        response = HTMLResponse(html, status_code=status_code)
        if visit.notice:
            response.delete_cookie(NOTICE_COOKIE, path="/")  # shown: once is enough
        return self.finish(visit, response)

    def main_part(self, visit: Visit, template: str, **context: Any) -> bytes:
        """A page's main part in the reader's language, as UTF-8 to keep for `render_main`."""
        page = self.env.get_template(template)
        return page.render(_=translator(visit.language), lang=visit.language, **context).encode()

    def render_main(self, visit: Visit, template: str, main: bytes, **context: Any) -> Response:
        """A page whose main part (`main`: UTF-8, made once for many readers) is given as
        it is: the template's `main` marks its place, and the rest (the reader's name, CSRF
        token, language links) is rendered around it. The main part is neither copied into
        a template's output nor encoded again (500 KB of it were a fifth of a request)."""
        html = self._html(visit, template, main=Markup(_MAIN_PLACE), **context)
        head, place, tail = html.partition(_MAIN_PLACE)
        assert place, f"{template} does not show its main part"
        response = HTMLResponse(head.encode() + main + tail.encode())
        if visit.notice:
            response.delete_cookie(NOTICE_COOKIE, path="/")
        return self.finish(visit, response)

    def _html(self, visit: Visit, template: str, **context: Any) -> str:
        _ = translator(visit.language)
        return self.env.get_template(template).render(
            _=_,
            visit=visit,
            user=visit.user,
            lang=visit.language,
            csrf=visit.csrf,
            csrf_field=Markup(
                f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(visit.csrf)}">'
            ),
            public=self.config.server.public,
            can_edit=visit.may("editor"),
            is_admin=visit.may("admin"),
            here=_here(visit.request),
            notice=_(NOTICES[visit.notice]) if visit.notice else None,
            **context,
        )

    def finish(self, visit: Visit, response: Response) -> Response:
        secure = self.secure(visit.request)
        if visit.set_csrf:
            response.set_cookie(CSRF_COOKIE, visit.csrf, **cookie_options(secure))
        for name, (value, options) in visit.extra_cookies.items():
            response.set_cookie(name, value, **{**cookie_options(secure), **options})
        return response

    def error(self, visit: Visit, status: int, title: str, message: str = "") -> Response:
        return self.render(visit, "error.html.j2", status, title=title, message=message)

    def redirect(self, visit: Visit, url: str, notice: str | None = None) -> Response:
        """See other `url`; with `notice` (a key of NOTICES), which that page shows once."""
        if notice is not None:
            assert notice in NOTICES, notice
            visit.extra_cookies[NOTICE_COOKIE] = (notice, {"max_age": 120})
        return self.finish(visit, RedirectResponse(url, status_code=303))


def page(role: str | None = "viewer") -> Callable[[Handler], Callable[[Any, Request], Any]]:
    """Guard a handler: `role` None is open to all; "viewer" is anyone logged in (anyone at
    all in public mode); "editor" and "admin" need that role. A POST must carry the CSRF
    token of the visitor's cookie and, when the browser sends one, our own Origin."""

    def wrap(handler: Handler) -> Callable[[Any, Request], Any]:
        @functools.wraps(handler)
        async def endpoint(self: Pages, request: Request) -> Response:
            response = await guarded(self, request)
            # Pages behind a login, and exports, must not stay in shared or browser caches.
            if "cache-control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response

        async def guarded(self: Pages, request: Request) -> Response:
            visit = self.visit(request)
            if role is not None and not _allowed(self, visit, role):
                if visit.user is None:
                    target = "/login?" + urlencode({"next": _here(request)})
                    return self.redirect(visit, target)
                _ = translator(visit.language)
                return self.error(visit, 403, _("Forbidden"), _("Your role does not allow this."))
            if request.method == "POST":
                visit.form = await request.form()
                token = visit.form.get(CSRF_FIELD)
                origin = request.headers.get("origin")
                if (origin and origin != _origin(request)) or not self.csrf_valid(
                    visit, token if isinstance(token, str) else None
                ):
                    _ = translator(visit.language)
                    message = _("The form expired; reload the page and try again.")
                    return self.error(visit, 403, _("Forbidden"), message)
            try:
                return await handler(self, request, visit)
            except Missing as missing:
                _ = translator(visit.language)
                return self.error(visit, 404, _("Not found"), str(missing))

        return endpoint

    return wrap


def _allowed(pages: Pages, visit: Visit, role: str) -> bool:
    if role == "viewer" and pages.config.server.public:
        return True
    return visit.may(role)


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def local_path(target: str | None, default: str = "/") -> str:
    """Only a path on this site is a place to go back to (no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def make_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        finalize=_shown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["q"] = lambda value: quote(str(value), safe="")
    # Jinja's `capitalize` lowers the rest ("english"); a sentence keeps its names.
    env.filters["capitalize_first"] = lambda text: f"{text[:1].upper()}{text[1:]}"
    env.globals["when"] = when
    env.globals["version_url"] = version_url
    return env


def version_url(watch_id: str, key: str, seq: int, part: str = "") -> str:
    return version_path(watch_id, key, seq, part)


def _shown(value: Any) -> Any:
    """Every value a template prints: URLs lose their credentials (a watch URL, a failure
    reason quoting one, a redirect). Markup — archived content made safe — is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return redact_text(value)
    return value


def when(moment: str | None, empty: str = "—") -> Markup:
    """A stored UTC time as <time>: UTC in the title; the browser rewrites the text in the
    reader's time zone (static/app.js)."""
    if not moment:
        return Markup(escape(empty))
    shown = moment[:16].replace("T", " ") + " UTC"
    return Markup(
        f'<time datetime="{escape(moment)}" title="{escape(moment)}">{escape(shown)}</time>'
    )


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
