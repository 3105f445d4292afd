"""The web application of the daemon (`monitor run`), served on a thread of its own.

The UI never runs on the checks' event loop: a heavy page (a diff of a long statement, a
table of 10,000 watches rendered by Jinja) used to hold the loop, and every check due
meanwhile waited for it. uvicorn now runs in its own thread, with its own event loop and
its own connection to the archive (the daemon's store is one connection, used by one
thread); it reaches the daemon only through thread-safe calls: the running configuration
(an immutable snapshot), the health report (in-memory figures), and a reload after a watch
was saved, handed to the daemon's loop.

The daemon keeps the signals to itself: SIGTERM stops the daemon (and with it the server),
SIGHUP reloads it. A port that cannot be bound is logged and the checks go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn

from monitor.web.guard import UVICORN_OPTIONS

logger = logging.getLogger("monitor.scheduler")

# How long the daemon's stop waits for the server's thread to finish its requests.
STOP_GRACE = 10.0


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that owns its signals: the daemon, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


def _server(app: Any, host: str, port: int) -> EmbeddedServer:
    return EmbeddedServer(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS
        )
    )


def on_loop(
    loop: asyncio.AbstractEventLoop, work: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`work` (a coroutine function of the daemon) made callable from the server's loop:
    it runs on the daemon's `loop`, and the caller awaits its end."""

    async def call() -> None:
        async def run() -> None:
            await work()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), loop))

    return call


class ThreadedServer:
    """uvicorn on a thread of its own, started by `start` and stopped by `stop`.

    `make_app()` builds the application on that thread (with what it opens there, such as
    its own store); `close()` runs there after the server has stopped."""

    def __init__(
        self,
        make_app: Callable[[], Any],
        host: str,
        port: int,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._make_app = make_app
        self._close = close
        self._server: EmbeddedServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-web", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def started(self, timeout: float | None = None) -> bool:
        """Whether the server listens (or gave up) within `timeout` seconds."""
        return self._ready.wait(timeout)

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.started

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:  # never the daemon's end: its checks go on without a UI
            logger.exception("web server on %s:%s stopped", self.host, self.port)
        finally:
            self._ready.set()
            if self._close is not None:
                with contextlib.suppress(Exception):
                    self._close()

    async def _serve(self) -> None:
        server = self._server = _server(self._make_app(), self.host, self.port)
        ready = asyncio.ensure_future(self._note_ready(server))
        try:
            await server.serve()
        except (OSError, SystemExit) as err:
            logger.error("web server on %s:%s not started: %s", self.host, self.port, err)
        finally:
            ready.cancel()

    async def _note_ready(self, server: EmbeddedServer) -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        self._ready.set()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask the server to finish its requests and end; wait up to `grace` seconds."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(grace)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(1.0)
