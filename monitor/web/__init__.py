"""The HTTP side: health, metrics and the review UI (`monitor run`, `monitor serve`)."""

from monitor.web.app import create_app
from monitor.web.guard import UVICORN_OPTIONS

__all__ = ["UVICORN_OPTIONS", "create_app"]
