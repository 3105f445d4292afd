"""`monitor serve`: the review UI alone, on an archive a daemon (or several) may be writing.

Watches saved in the UI take effect here at once; a daemon running elsewhere picks them up
on its next start or SIGHUP (one serving the UI itself reloads on its own).
"""

from __future__ import annotations

import sys

import uvicorn

from monitor.config import MonitorConfig, ServerConfig
from monitor.overrides import watches_in_force
from monitor.store import Store
from monitor.web.app import create_app
from monitor.web.guard import UVICORN_OPTIONS


def serve(config: MonitorConfig, store: Store, listen: str) -> None:
    def running() -> MonitorConfig:
        # Read afresh: a daemon elsewhere keeps discovering statement watches.
        return watches_in_force(config, store)

    async def changed() -> None:
        pass  # running() reads the UI's watches anew on every request

    def health() -> dict[str, object]:
        return {"ok": True, "serving": "web UI only", "watches": len(running().watch)}

    host, port = ServerConfig(listen=listen).host_port
    print(f"monitor: web UI on http://{host}:{port}/ (data: {store.location})", file=sys.stderr)
    app = create_app(health, store, running, changed, listen=listen)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS)
