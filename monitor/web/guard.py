"""Before any page runs: which client is asking (proxies), and for which host.

* `X-Forwarded-For` / `X-Forwarded-Proto` are believed only from a peer listed in
  `[server] trusted_proxies`. The client is then the right-most address in the chain that
  is not itself a trusted proxy (everything left of it could be made up by the client).
  From any other peer the headers are ignored: a client naming its own address would pick
  the budget its failed logins are charged to. uvicorn's own handling of these headers
  (which trusts 127.0.0.1 by default) is turned off (`UVICORN_OPTIONS`).
* `Host` must name this server: the host of `[server] public_url`, the address it listens
  on, or a loopback name; a listener on every address (0.0.0.0, ::) also accepts any IP
  literal. Anything else is answered 400: a page on another site whose name is made to
  resolve to this server (DNS rebinding) cannot read the UI through the visitor's browser.
  /healthz answers any Host (a supervisor probes under names of its own, and the answer
  says only whether the daemon is well). /metrics follows the rule like every page: it
  names watches and their failures, which a rebinding page could otherwise read. A
  Prometheus scraping the listen address (or, on a wildcard listener, any of the machine's
  addresses), a loopback name or the public URL's host is answered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.config import MonitorConfig

# For uvicorn.Config / uvicorn.run: the proxy headers are ours to judge (see above).
UVICORN_OPTIONS: dict[str, Any] = {"proxy_headers": False, "server_header": False}

_ANY_HOST_PATHS = ("/healthz",)
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(value: str, networks: tuple[Network, ...]) -> bool:
    ip = _ip(value)
    return ip is not None and any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy; then the
    right-most address of X-Forwarded-For that is not a trusted proxy."""
    if not networks or not _trusted(peer, networks):
        return peer
    chain = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(chain):
        if _ip(hop) is None:
            break  # garbage in the chain: trust nothing left of it
        client = str(_ip(hop))
        if not _trusted(hop, networks):
            break
    return client


def host_name(host_header: str) -> str:
    """'Example.org:8080' → 'example.org'; '[::1]:80' → '::1'."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware: the client's address through trusted proxies, and the Host check."""

    def __init__(
        self, app: ASGIApp, config: Callable[[], MonitorConfig], listen: str | None = None
    ) -> None:
        self.app = app
        self.config = config
        self.listen = listen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server = self.config().server
        headers = [(k.lower(), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        host = next((v for k, v in headers if k == b"host"), None)
        if (
            host is not None
            and scope.get("path") not in _ANY_HOST_PATHS
            and not self._host_allowed(host_name(host), server.public_url, server.listen)
        ):
            response = PlainTextResponse("unknown host (see [server] public_url)", 400)
            await response(scope, receive, send)
            return
        networks = _networks(tuple(server.trusted_proxies))
        peer = scope.get("client")
        if networks and peer and _trusted(peer[0], networks):
            scope = dict(scope)
            forwarded = [v for k, v in headers if k == b"x-forwarded-for"]
            scope["client"] = (forwarded_client(peer[0], forwarded, networks), peer[1])
            proto = [v for k, v in headers if k == b"x-forwarded-proto"]
            if proto and proto[-1].split(",")[-1].strip().lower() in ("http", "https"):
                scope["scheme"] = proto[-1].split(",")[-1].strip().lower()
        await self.app(scope, receive, send)

    def _host_allowed(self, name: str, public_url: str | None, listen: str) -> bool:
        if name in _LOOPBACK_NAMES:
            return True
        listen_host = (self.listen or listen).rpartition(":")[0].strip("[]").lower()
        if name == listen_host:
            return True
        if public_url and name == (urlsplit(public_url).hostname or "").lower():
            return True
        return listen_host in _WILDCARDS and _ip(name) is not None
