"""The web application served inside the daemon's event loop (`monitor run`).

uvicorn runs as one more task of the daemon, which keeps the signals to itself: SIGTERM
stops the daemon (and with it the server), SIGHUP reloads it. A port that cannot be
bound is logged and the checks go on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn

from monitor.web.guard import UVICORN_OPTIONS

logger = logging.getLogger("monitor.scheduler")


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside our event loop: the daemon owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


async def serve_embedded(app: Any, host: str, port: int) -> None:
    """Serve `app` on host:port until cancelled."""
    server = EmbeddedServer(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS
        )
    )
    try:
        await server.serve()
    except (OSError, SystemExit) as err:
        # A busy port must not stop the checks; the operator sees why in the log.
        logger.error("web server on %s:%s not started: %s", host, port, err)
