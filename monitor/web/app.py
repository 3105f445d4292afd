"""Starlette application served by `monitor run` and `monitor serve`.

`/healthz` answers 200 while the scheduler is alive and 503 when the watchdog found it
stalled, so a supervisor (systemd, Kubernetes) can restart a daemon that stopped checking.
`/metrics` is Prometheus text. With a store and a config, the review UI is served as well
(monitor/web/ui.py reads, admin.py writes).
"""

from __future__ import annotations

import atexit
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.config import MonitorConfig
from monitor.isolate import WorkerPool
from monitor.metrics import REGISTRY
from monitor.store import Store
from monitor.web.admin import EditingPages
from monitor.web.api import ApiPages, RateLimit
from monitor.web.auth import Auth, LoginBudget
from monitor.web.front import FrontPages
from monitor.web.guard import RequestGuard
from monitor.web.memento import MementoPages
from monitor.web.pages import HERE, UI_POLICY, make_env
from monitor.web.ui import ReadingPages
from monitor.web.visual import VisualPages

Health = Callable[[], dict[str, Any]]

# A diff the UI shows is computed within this many seconds (or the fetch workers' limit,
# when lower): a reader waits for the answer, and a page over it is shown as a problem.
DIFF_TIMEOUT = 15.0
# An export from the UI is written within this many seconds: a watch's whole history, or
# the archive's (a WARC of 100 versions takes 20-30 ms of CPU).
EXPORT_TIMEOUT = 3600.0


async def _nothing() -> None:
    return None


def create_app(
    health: Health,
    store: Store | None = None,
    config: MonitorConfig | Callable[[], MonitorConfig] | None = None,
    on_change: Callable[[], Awaitable[None]] = _nothing,
    listen: str | None = None,
    *,
    rate: RateLimit | None = None,
    budget: LoginBudget | None = None,
) -> Starlette:
    """`config` is the running configuration, or a function giving the current one (the
    daemon's changes on SIGHUP); `on_change` runs after a watch was saved in the UI;
    `listen` is the address served when it is not [server] listen (`serve --listen`);
    `rate` and `budget` the API's rate limit and the failed logins' budget when they are
    shared with other serving processes (web/shared.py)."""

    async def healthz(request: Request) -> Response:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("ok") else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics)]
    handlers: dict[Any, Any] = {}
    if store is not None and config is not None:
        current = config if callable(config) else (lambda: config)
        reading, editing = _pages(store, current, on_change, budget)
        front = FrontPages(store, current, reading.auth, reading.env)
        routes += ui_routes(reading, editing, front)
        routes += visual_routes(
            VisualPages(
                store,
                current,
                reading.auth,
                reading.env,
                find_watch=reading.find_watch,
                work=reading.work,
            )
        )
        memento = MementoPages(store, current, reading.auth, reading.env)
        routes += memento_routes(memento)
        routes += ApiPages(store, current, on_change, rate).routes()
        handlers[404] = reading.not_found
    app = Starlette(routes=routes, exception_handlers=handlers)
    if config is None:
        return SecurityHeaders(app)  # type: ignore[return-value]
    current = config if callable(config) else (lambda: config)
    return SecurityHeaders(RequestGuard(app, current, listen))  # type: ignore[return-value]


def _pages(
    store: Store,
    config: Callable[[], MonitorConfig],
    on_change: Callable[[], Awaitable[None]],
    budget: LoginBudget | None = None,
) -> tuple[ReadingPages, EditingPages]:
    auth, env = Auth(store, budget), make_env()
    fetch = config().fetch
    # The UI's own worker (started at its first diff): a reader's diff never waits for the
    # daemon's checks, nor holds up one. The same time and memory limits as a check's.
    work = WorkerPool(1, min(DIFF_TIMEOUT, fetch.worker_timeout), fetch.worker_memory)
    # Workers ignore SIGTERM (the daemon stops them itself): killed before multiprocessing
    # joins its children at exit, which would otherwise wait for them for ever.
    atexit.register(work.close)
    # The UI's exporting worker (started at its first export): an export reads every blob
    # of a watch, on the other core, while this process answers other pages (and, under
    # `monitor run`, checks). No memory limit: it reads one blob at a time.
    exports = WorkerPool(1, EXPORT_TIMEOUT)
    atexit.register(exports.close)
    reading = ReadingPages(store, config, auth, env, work=work, exports=exports)
    atexit.register(reading.close_exports)
    return reading, EditingPages(store, config, auth, env, on_change=on_change)


def ui_routes(reading: ReadingPages, editing: EditingPages, front: FrontPages) -> list[BaseRoute]:
    both = ["GET", "POST"]
    version = "/watch/{watch}/versions/{number:int}"
    by_id = "/watch/{watch}/version/{version}"  # links made before versions were numbered
    return [
        Route("/", front.front),
        Route("/watches", front.grouped),
        Route("/watches/all", reading.watches),
        Route("/login", editing.login, methods=both),
        Route("/logout", editing.logout, methods=["POST"]),
        Route("/lang/{code}", reading.language),
        Route("/search", reading.search),
        Route("/feed.atom", reading.feed),
        Route("/users", editing.users, methods=both),
        Route("/watches/new", editing.new_watch, methods=both),
        Route("/watch/{watch}", reading.watch),
        Route("/watch/{watch}/feed.atom", reading.feed),
        Route("/watch/{watch}/export.{format}", reading.export),
        Route("/watch/{watch}/statement", reading.statement),
        Route("/watch/{watch}/diff", reading.diff),
        Route("/watch/{watch}/edit", editing.edit_watch, methods=both),
        Route("/watch/{watch}/revert", editing.revert_watch, methods=["POST"]),
        Route("/watch/{watch}/ignore", editing.add_ignore, methods=["POST"]),
        Route(
            "/watch/{watch}/furniture/{item:int}/forget",
            editing.forget_furniture,
            methods=["POST"],
        ),
        Route(version, reading.snapshot),
        Route(version + "/raw", reading.raw_body),
        Route(version + "/headers.json", reading.raw_headers),
        Route(version + "/tls-chain.pem", reading.tls_chain),
        Route(version + "/statement.json", reading.statement_json),
        Route(version + "/timestamp.tst", reading.timestamp_token),
        Route(version + "/timestamp-manifest.json", reading.timestamp_manifest),
        Route(version + "/annotate", reading.annotate, methods=["POST"]),
        Route(by_id, reading.old_link),
        Route(by_id + "/{part:path}", reading.old_link),
        # Archived bodies, apart from the UI's paths, under their own sandboxing policy.
        Route("/archive/{watch}/{number:int}", reading.archived_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def visual_routes(visual: VisualPages) -> list[BaseRoute]:
    """Screenshots, their outlined copies and the visual diff (web/visual.py)."""
    return [
        Route("/watch/{watch}/screenshots/{shot:int}.png", visual.screenshot),
        Route("/watch/{watch}/visual", visual.visual),
        Route("/watch/{watch}/visual/{a:int}-{b:int}/{side}.png", visual.outlined),
    ]


def memento_routes(memento: MementoPages) -> list[BaseRoute]:
    """Memento (RFC 7089): TimeMaps and the TimeGate of every archived URL."""
    return [
        Route("/timemap/link/{url:path}", memento.timemap_link),
        Route("/timemap/json/{url:path}", memento.timemap_json),
        Route("/timegate/{url:path}", memento.timegate),
    ]


class SecurityHeaders:
    """Headers every answer gets unless its handler set its own (the archive's CSP)."""

    DEFAULTS = (
        (b"content-security-policy", UI_POLICY.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.DEFAULTS if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
