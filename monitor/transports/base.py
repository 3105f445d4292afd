"""What the fetch stage asks of an HTTP transport, and what every transport shares.

A transport does one exchange and follows no redirect; the `Fetcher` (monitor.fetch) keeps
everything else — limits, pacing, robots.txt, retries, redirects, the SSRF guard's rules —
so a transport is only the wire. This module imports nothing of monitor's but the fetch
settings and the TLS provenance record (monitor/tls.py, a leaf): the transports and the
Fetcher both import it, never each other.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.config import FetchConfig
    from monitor.tls import TlsInfo


class RefusedAddress(Exception):
    """The target resolves to an address the configuration does not allow."""


class InvalidURL(ValueError):
    """A URL a transport cannot request: the watch's own, or a redirect's Location (httpx
    parses the Location itself, even when it does not follow it)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One exchange a transport is asked for. `guarded`: the host name whose every
    connection must pass the SSRF guard (only for a transport that `guards_connections`)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    guarded: str | None = None


class Response(Protocol):
    """Where a transport writes the answer (monitor.fetched.FetchResult is one)."""

    status: int | None
    http_version: str | None
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool
    # What the answer's connection said about itself (TLS provenance); None: not recorded.
    tls: TlsInfo | None
    problem: str | None


class Transport(Protocol):
    """One HTTP exchange, no redirects followed.

    `send` makes the `request` and fills in the response's status, HTTP version, headers
    and body (cut at max_bytes, with `truncated` and `problem` set); it raises one of
    `timeouts` or `failures`, which the Fetcher turns into a problem and, perhaps, a retry.

    A transport that `guards_connections` checks the address of every connection it opens
    for a request given a `guarded` host name (the SSRF guard), and raises RefusedAddress
    instead of connecting to a non-public one. For the others the Fetcher resolves the
    name itself before the request, and `guarded` is always None.
    """

    timeouts: tuple[type[BaseException], ...]
    failures: tuple[type[BaseException], ...]
    guards_connections: bool

    async def send(self, request: Request, result: Response) -> None: ...

    async def close(self) -> None: ...


def refuse_non_public(hostname: str, address: str) -> None:
    """Raise RefusedAddress if `address`, which `hostname` resolved to, is not public."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # "fe80::1%eth0": scope dropped
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if not _public(ip) or (embedded is not None and not _public(embedded)):
        raise RefusedAddress(
            f"{hostname} resolves to non-public address {ip} "
            "(set [fetch] allow_private = true or list it in allow_hosts to allow)"
        )


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


# NAT64 (RFC 6052) and 6to4 (RFC 3056) carry an IPv4 address inside an IPv6 one; a gateway
# of either on the way may deliver to that IPv4 address, 127.0.0.1 or 10.x included.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour or ip.ipv4_mapped


async def read_capped(chunks: AsyncIterator[bytes], result: Response, max_bytes: int) -> None:
    """The body into `result`, streamed with a cap: a 50 MB page is cut, never held whole in
    memory. The cap counts decoded bytes, so a small gzip bomb is cut too."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            result.truncated = True
            result.problem = f"body larger than max_bytes ({max_bytes})"
            break
        parts.append(chunk)
    result.body = b"".join(parts)


# Answers that never have a body (RFC 9110): an unchanged check's 304 has nothing to read,
# and skipping the empty read saves 2 % of its CPU.
BODYLESS = frozenset((204, 304))


def tls_context(config: FetchConfig) -> ssl.SSLContext:
    """TLS verification is never turned off; a custom CA bundle is the supported fix.
    Without one, the certifi bundle, as httpx uses by default (the same roots whichever
    transport is configured)."""
    import certifi

    return ssl.create_default_context(cafile=config.ca_bundle or certifi.where())
