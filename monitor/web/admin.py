"""The writing side of the UI: logging in and out, adding and editing watches, and users."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from monitor.config import WatchConfig
from monitor.fetch import RefusedAddress, check_address
from monitor.overrides import WatchError, validate_watch, watch_settings
from monitor.redact import has_userinfo, redact_url
from monitor.sites import profile_names
from monitor.store.furniture import host_of
from monitor.store.review import ROLES
from monitor.web.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_DAYS,
    THROTTLE_PAUSE,
    Throttled,
    hash_password,
)
from monitor.web.i18n import translator
from monitor.web.pages import Missing, Pages, Visit, local_path, page

# Form fields holding one value per line.
_LINES = ("ignore", "ignore_selectors")
_TEXT = ("name", "url", "interval", "profile", "language", "quiet_hours", "timezone", "digest")


class EditingPages(Pages):
    def __init__(self, *args: Any, on_change: Callable[[], Awaitable[None]], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.on_change = on_change

    # --- logging in ----------------------------------------------------------------------

    @page(None)
    async def login(self, request: Request, visit: Visit) -> Response:
        next_url = local_path(request.query_params.get("next"))
        if request.method == "GET":
            return self.render(visit, "login.html.j2", next_url=next_url, failed="")
        assert visit.form is not None
        _ = translator(visit.language)
        username = str(visit.form.get("username") or "").strip()
        password = str(visit.form.get("password") or "")
        next_url = local_path(str(visit.form.get("next") or ""))
        # The TCP peer, or the client a trusted proxy names (monitor/web/guard.py).
        client = request.client.host if request.client else "?"
        try:
            user, cookie = await self.auth.login(username, password, client)
        except Throttled:
            await asyncio.sleep(THROTTLE_PAUSE)
            failed = _("Too many failed attempts; try again in a few minutes.")
            answer = self.render(visit, "login.html.j2", 429, next_url=next_url, failed=failed)
            answer.headers["Retry-After"] = "60"
            return answer
        if user is None or cookie is None:
            failed = _("Wrong username or password.")
            return self.render(visit, "login.html.j2", 401, next_url=next_url, failed=failed)
        # A new session each time (no fixation); the one this browser had before ends.
        self.auth.logout(request.cookies.get(SESSION_COOKIE))
        session = self.auth.session(cookie)
        assert session is not None
        visit.extra_cookies[SESSION_COOKIE] = (cookie, {"max_age": SESSION_DAYS * 86400})
        visit.extra_cookies[CSRF_COOKIE] = (self.auth.session_csrf(session), {})
        visit.set_csrf = False
        return self.redirect(visit, next_url)

    @page(None)
    async def logout(self, request: Request, visit: Visit) -> Response:
        # Revoked in the store: a copy of the cookie (another tab, a stolen one) ends too.
        self.auth.logout(request.cookies.get(SESSION_COOKIE))
        visit.set_csrf = False
        response = self.redirect(visit, "/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    # --- watches -------------------------------------------------------------------------

    @page("editor")
    async def new_watch(self, request: Request, visit: Visit) -> Response:
        if request.method == "GET":
            return self._watch_form(visit, None, {"interval": "15m", "robots": True}, {})
        settings = _settings_from_form(visit, {})
        problems = await self._check(settings)
        if any(w.id == settings.get("id") for w in self.config.watch):
            problems.setdefault("id", "a watch with this id exists")
        if problems:
            return self._watch_form(visit, None, settings, problems, status=400)
        return await self._save(visit, settings)

    @page("editor")
    async def edit_watch(self, request: Request, visit: Visit) -> Response:
        watch = self._configured(request.path_params["watch"])
        current = watch_settings(watch)
        if request.method == "GET":
            return self._watch_form(visit, watch, current, {})
        settings = _settings_from_form(visit, current) | {"id": watch.id}
        problems = await self._check(settings)
        if problems:
            return self._watch_form(visit, watch, settings, problems, status=400)
        return await self._save(visit, settings)

    @page("editor")
    async def revert_watch(self, request: Request, visit: Visit) -> Response:
        watch_id = request.path_params["watch"]
        self.store.delete_ui_watch(watch_id)
        await self.on_change()
        still = any(w.id == watch_id for w in self.config.watch)
        return self.redirect(visit, f"/watch/{quote(watch_id)}" if still else "/")

    @page("editor")
    async def add_ignore(self, request: Request, visit: Visit) -> Response:
        watch = self._configured(request.path_params["watch"])
        assert visit.form is not None
        pattern = str(visit.form.get("pattern") or "")
        settings = watch_settings(watch)
        if pattern and pattern not in watch.ignore:
            settings["ignore"] = [*watch.ignore, pattern]
            problems = await self._check(settings, resolve=False)
            if not problems:
                return await self._save(visit, settings)
        return self.redirect(visit, f"/watch/{quote(watch.id)}")

    @page("editor")
    async def forget_furniture(self, request: Request, visit: Visit) -> Response:
        """ "Not furniture": a learned item of this watch or its host is masked no more and
        never learned again (the user's word is kept in the `furniture` row)."""
        assert visit.user is not None
        watch_id = request.path_params["watch"]
        url = next((w.url for w in self.config.watch if w.id == watch_id), None)
        if url is None:
            url = next((r["url"] for r in self.store.watch_rows() if r["id"] == watch_id), None)
        if url is None:
            raise Missing(f"no watch {watch_id!r}")
        item_id = request.path_params["item"]
        scopes = [("watch", watch_id), ("host", host_of(url))]
        if not any(row["id"] == item_id for row in self.store.furniture_items(scopes)):
            raise Missing(f"no learned item {item_id} of watch {watch_id!r}")
        self.store.forget_furniture([item_id], visit.user.name)
        return self.redirect(visit, f"/watch/{quote(watch_id)}#furniture")

    def _configured(self, watch_id: str) -> WatchConfig:
        for watch in self.config.watch:
            if watch.id == watch_id:
                return watch
        raise Missing(f"no watch {watch_id!r} in the configuration")

    async def _check(self, settings: dict[str, Any], resolve: bool = True) -> dict[str, str]:
        """The config file's checks, and the SSRF guard the fetcher applies: a watch the
        daemon would refuse to fetch is refused here, before it is saved."""
        try:
            watch = validate_watch(self.config, settings)
        except WatchError as err:
            return err.problems
        if resolve:
            try:
                await check_address(
                    watch.url, self.config.fetch.allow_private, self.config.fetch.allow_hosts
                )
            except (RefusedAddress, OSError) as err:
                return {"url": str(err) or type(err).__name__}
        return {}

    async def _save(self, visit: Visit, settings: dict[str, Any]) -> Response:
        assert visit.user is not None
        watch = validate_watch(self.config, settings)
        stored = watch_settings(watch)
        stored.pop("id")
        self.store.put_ui_watch(watch.id, stored, visit.user.name)
        await self.on_change()
        return self.redirect(visit, f"/watch/{quote(watch.id)}")

    def _watch_form(
        self,
        visit: Visit,
        watch: WatchConfig | None,
        values: dict[str, Any],
        problems: dict[str, str],
        status: int = 200,
    ) -> Response:
        shown = dict(values)
        for name in ("interval", "digest"):
            if isinstance(shown.get(name), int | float):
                shown[name] = format_duration(float(shown[name]))
        return self.render(
            visit,
            "watch_form.html.j2",
            status,
            watch=watch,
            values=shown,
            problems=problems,
            channels=sorted(self.config.channels),
            profiles=profile_names(),
        )

    # --- users ---------------------------------------------------------------------------

    @page("admin")
    async def users(self, request: Request, visit: Visit) -> Response:
        problem = ""
        if request.method == "POST":
            assert visit.form is not None and visit.user is not None
            username = str(visit.form.get("username") or "").strip()
            password = str(visit.form.get("password") or "")
            role = str(visit.form.get("role") or "viewer")
            try:
                if visit.form.get("delete"):
                    if username == visit.user.name:
                        raise ValueError("you cannot delete yourself")
                    self.store.delete_user(username)
                    self.auth.revoke(username)
                else:
                    if not username:
                        raise ValueError("a user needs a name")
                    # argon2 in a thread: the loop keeps answering (and checking) meanwhile.
                    hashed = await run_in_threadpool(hash_password, password) if password else None
                    self.store.put_user(username, hashed, role)
                    if password:
                        self.auth.revoke(username)  # a new password ends the old sessions
                return self.redirect(visit, "/users")
            except ValueError as err:
                problem = str(err)
        return self.render(
            visit,
            "users.html.j2",
            400 if problem else 200,
            users=self.store.users(),
            roles=ROLES,
            problem=problem,
        )


def _settings_from_form(visit: Visit, current: dict[str, Any]) -> dict[str, Any]:
    """Form fields as TOML keys: empty text fields are left out (the default applies);
    keys the form does not show (options) are kept from the current settings."""
    form = visit.form
    assert form is not None
    settings = {k: v for k, v in current.items() if k not in (*_TEXT, *_LINES)}
    if form.get("id"):
        settings["id"] = str(form.get("id")).strip()
    settings.update(_texts_from_form(form, current))
    settings["channels"] = [str(c) for c in form.getlist("channels")]
    settings["robots"] = form.get("robots") == "on"
    settings["muted"] = form.get("muted") == "on"
    # Targets other than the one the form shows are kept (none exist yet).
    others = [t for t in current.get("save_to", []) if t != "wayback"]
    settings["save_to"] = (["wayback"] if form.get("save_to_wayback") == "on" else []) + others
    settings["fetcher"] = str(form.get("fetcher") or "http")
    threshold = str(form.get("threshold") or "").strip()
    settings["threshold"] = threshold or 0.0
    return settings


def _texts_from_form(form: Any, current: dict[str, Any]) -> dict[str, Any]:
    """The text fields (left out when empty) and the one-per-line fields."""
    settings: dict[str, Any] = {}
    for name in _TEXT:
        value = str(form.get(name) or "").strip()
        if value:
            settings[name] = value
    # The form shows a URL's credentials as `***`; sent back unchanged, the stored URL (with
    # them) is kept. A URL typed anew replaces it, credentials and all.
    kept = current.get("url")
    if kept and has_userinfo(kept) and settings.get("url") == redact_url(kept):
        settings["url"] = kept
    for name in _LINES:
        lines = [line.strip() for line in str(form.get(name) or "").splitlines()]
        settings[name] = [line for line in lines if line]
    return settings


def format_duration(seconds: float) -> str:
    """Seconds as the config writes them: 900 → '15m', 5400 → '1h30m'."""
    if seconds <= 0:
        return "0s"
    parts, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
