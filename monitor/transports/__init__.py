"""The fetch stage's HTTP transports: one exchange each, over the wire of one library.

`[fetch] transport` names one of `TRANSPORTS`; `open_transport` imports only that one
(start-up time is per process, and an optional one may not be installed):

- "curl": libcurl through pycurl, HTTP/2 over TLS, the least CPU per request (the default);
- "httpx": pure Python, HTTP/2, the portable choice;
- "aiohttp": HTTP/1.1, an extra (`pip install 'monitor[aiohttp]'`).

Tests hand the Fetcher a `monitor.transports.memory.MemoryTransport` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.extras import missing
from monitor.transports.base import Transport

if TYPE_CHECKING:
    from monitor.config import FetchConfig


def _curl(config: FetchConfig) -> Transport:
    from monitor.transports.curl import CurlTransport

    return CurlTransport(config)


def _httpx(config: FetchConfig) -> Transport:
    from monitor.transports.httpx import HttpxTransport

    return HttpxTransport(config)


def _aiohttp(config: FetchConfig) -> Transport:
    from monitor.transports.aiohttp import AiohttpTransport

    return AiohttpTransport(config)


# Each transport: how to make it, and the extra that installs it (None: monitor's own
# dependencies). `[fetch] transport` in monitor/config.py names the same ones.
TRANSPORTS: dict[str, tuple[Callable[[FetchConfig], Transport], str | None]] = {
    "curl": (_curl, None),
    "httpx": (_httpx, None),
    "aiohttp": (_aiohttp, "aiohttp"),
}


def open_transport(name: str, config: FetchConfig) -> Transport:
    """A new transport `name` for `config` (inside a running event loop)."""
    make, extra = TRANSPORTS[name]
    problem = extra and missing(extra, f"transport {name!r}")
    if problem:
        raise RuntimeError(problem)
    return make(config)


__all__ = ["TRANSPORTS", "Transport", "open_transport"]
