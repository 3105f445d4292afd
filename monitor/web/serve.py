"""`monitor serve`: the review UI alone, on an archive a daemon (or several) may be writing.

Watches saved in the UI take effect here at once; a daemon running elsewhere picks them up
on its next start or SIGHUP (one serving the UI itself reloads on its own). The watches in
force are one snapshot (wiring.py), made again after a save here and when it is older than
`FRESH_FOR`, since a daemon elsewhere keeps discovering statements.
"""

from __future__ import annotations

import sys

import uvicorn

from monitor.config import MonitorConfig, ServerConfig
from monitor.store import Store
from monitor.web.guard import UVICORN_OPTIONS
from monitor.wiring import build

# Seconds a snapshot of the watches serves before it is made again.
FRESH_FOR = 5.0


def serve(config: MonitorConfig, store: Store, listen: str) -> None:
    runtime = build(config, store)

    def running() -> MonitorConfig:
        return runtime.current(FRESH_FOR)

    async def changed() -> None:
        runtime.refresh()  # a watch saved here shows at once

    def health() -> dict[str, object]:
        # The snapshot as it is: a health probe never waits for the watches to be merged.
        return {"ok": True, "serving": "web UI only", "watches": len(runtime.config.watch)}

    host, port = ServerConfig(listen=listen).host_port
    print(f"monitor: web UI on http://{host}:{port}/ (data: {store.location})", file=sys.stderr)
    app = runtime.web_app(health, changed, running, listen=listen)
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS)
