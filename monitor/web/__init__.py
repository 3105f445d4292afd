"""The HTTP side: health, metrics and the review UI (`monitor run`, `monitor serve`).

`create_app` and `UVICORN_OPTIONS` are imported when first asked for: a worker process
that unpickles a diff (monitor.web.diffview) must not load the server, the store and the
templates with it."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.web.app import create_app
    from monitor.web.guard import UVICORN_OPTIONS

__all__ = ["UVICORN_OPTIONS", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from monitor.web.app import create_app

        return create_app
    if name == "UVICORN_OPTIONS":
        from monitor.web.guard import UVICORN_OPTIONS

        return UVICORN_OPTIONS
    raise AttributeError(f"module 'monitor.web' has no attribute {name!r}")
