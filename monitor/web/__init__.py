"""The HTTP side of the daemon: health, metrics (and the review UI as it grows)."""

from monitor.web.app import create_app

__all__ = ["create_app"]
