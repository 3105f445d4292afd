"""Starlette application served by `monitor run` (and `monitor serve`).

`/healthz` answers 200 while the scheduler is alive and 503 when the watchdog found it
stalled, so a supervisor (systemd, Kubernetes) can restart a daemon that stopped checking.
`/metrics` is Prometheus text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor.metrics import REGISTRY

Health = Callable[[], dict[str, Any]]


def create_app(health: Health) -> Starlette:
    async def healthz(request: Request) -> Response:
        report = health()
        return JSONResponse(report, status_code=200 if report.get("ok") else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])
