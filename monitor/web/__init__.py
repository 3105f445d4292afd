"""The HTTP side: health, metrics and the review UI (`monitor run`, `monitor serve`)."""

from monitor.web.app import create_app

__all__ = ["create_app"]
