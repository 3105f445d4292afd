"""Fetch stage: one polite, bounded HTTP client for the whole daemon.

Input: a `FetchRequest`. Output: a `FetchResult` that always comes back — network
failures, refusals and oversized bodies are recorded in `problem`, never raised, so one
dead site cannot stop the daemon.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
from charset_normalizer import from_bytes
from protego import Protego

from monitor.config import FetchConfig

# Transient answers worth retrying; any other 4xx is the server's considered reply.
_RETRY_STATUSES = {429, 502, 503, 504}
_MAX_REDIRECTS = 10
_ROBOTS_TTL = 24 * 3600.0
_ROBOTS_RETRY = 3600.0  # robots.txt unreachable: allow, and ask again in an hour
_ROBOTS_MAX_BYTES = 512 * 1024
# A server asking us to wait longer than this is not retried now; the next check will be.
_MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class FetchRequest:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    obey_robots: bool = True


@dataclass(frozen=True)
class HeaderCapture:
    """Request headers a site's own scripts compute, to be taken from a real browser:
    load `page_url`, watch its requests for one whose URL contains `request_contains`, and
    keep the headers named in `names`."""

    page_url: str
    request_contains: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Validators:
    """The server's own cache validators for a URL, replayed on the next request."""

    etag: str | None = None
    last_modified: str | None = None

    def apply(self, request: FetchRequest) -> FetchRequest:
        """The same request made conditional (If-None-Match / If-Modified-Since)."""
        headers = dict(request.headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return replace(request, headers=headers)

    def __bool__(self) -> bool:
        return bool(self.etag or self.last_modified)


@dataclass
class FetchResult:
    request: FetchRequest
    url: str
    requested_at: datetime
    status: int | None = None
    http_version: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    redirects: list[tuple[int, str]] = field(default_factory=list)
    elapsed: float = 0.0
    truncated: bool = False
    # Why this result cannot be used as the page's content (None when it can).
    problem: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def ok(self) -> bool:
        return self.problem is None and self.status is not None and 200 <= self.status < 300

    def text(self) -> str:
        return decode_body(self.body, self.header("content-type"))

    @property
    def not_modified(self) -> bool:
        return self.problem is None and self.status == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.header("etag"), self.header("last-modified"))


class RefusedAddress(Exception):
    """The target resolves to an address the configuration does not allow."""


class Fetcher:
    """Shared client with global and per-host limits. Use as an async context manager."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self._global = asyncio.Semaphore(config.concurrency)
        self._hosts: dict[str, _HostGate] = {}
        self._client: httpx.AsyncClient | None = None
        # robots.txt per scheme://host: (expiry, parser or None for "allow everything").
        self._robots: dict[str, tuple[float, Protego | None]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        config = self.config
        # TLS verification is never turned off; a custom CA bundle is the supported fix.
        verify = ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else True
        limits = httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        )
        self._client = httpx.AsyncClient(
            transport=_transport(config, verify, limits),
            follow_redirects=False,  # we follow by hand to re-check every hop against SSRF
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            headers={"User-Agent": config.user_agent},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, request: FetchRequest) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(request=request, url=request.url, requested_at=now_utc())
        if request.obey_robots and not await self._robots_allow(request.url):
            result.problem = f"disallowed by robots.txt of {urlsplit(request.url).netloc}"
            return result
        attempt = 0
        while True:
            delay = await self._attempt(request, result)
            if delay is None or attempt >= self.config.retries:
                break
            attempt += 1
            # Exponential backoff with full jitter, or the server's own Retry-After.
            await asyncio.sleep(delay if delay > 0 else random.uniform(0, 2**attempt))
            result = FetchResult(request=request, url=request.url, requested_at=result.requested_at)
        result.elapsed = time.monotonic() - started
        return result

    async def _attempt(self, request: FetchRequest, result: FetchResult) -> float | None:
        """One try, following redirects. Returns a retry delay (0 = backoff) or None."""
        url, method, body = request.url, request.method, request.body
        for _hop in range(_MAX_REDIRECTS + 1):
            try:
                await check_address(url, self.config.allow_private)
                # httpx's timeouts are per read; a server dripping one byte a second would
                # never trip them, so the whole exchange also has a deadline.
                async with asyncio.timeout(self.config.timeout):
                    response_delay = await self._one_request(
                        method, url, request.headers, body, result
                    )
            except RefusedAddress as err:
                result.problem = f"refused: {err}"
                return None
            except (httpx.TimeoutException, TimeoutError) as err:
                result.problem = f"timeout after {self.config.timeout:g}s ({type(err).__name__})"
                return 0.0
            except (httpx.TransportError, OSError) as err:
                result.problem = f"connection failed: {_describe(err)}"
                return 0.0
            if response_delay is not None:
                return response_delay
            location = result.header("location")
            if result.status in (301, 302, 303, 307, 308) and location:
                url = urljoin(url, location)
                result.redirects.append((result.status, url))
                if result.status == 303 or (result.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            return None
        result.problem = f"too many redirects (>{_MAX_REDIRECTS})"
        return None

    async def _one_request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        result: FetchResult,
    ) -> float | None:
        assert self._client is not None, "Fetcher used outside 'async with'"
        host = urlsplit(url).netloc
        gate = self._hosts.setdefault(host, _HostGate(self.config))
        async with (
            self._global,
            gate,
            self._client.stream(method, url, headers=headers, content=body) as response,
        ):
            result.url = url
            result.status = response.status_code
            result.http_version = response.http_version
            result.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
            ]
            chunks: list[bytes] = []
            size = 0
            # Streamed with a cap: a 50 MB page is cut, never held whole in memory. The cap
            # counts decoded bytes, so a small gzip bomb is cut too.
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.config.max_bytes:
                    result.truncated = True
                    result.problem = f"body larger than max_bytes ({self.config.max_bytes})"
                    break
                chunks.append(chunk)
            result.body = b"".join(chunks)
        if result.status in _RETRY_STATUSES:
            result.problem = f"HTTP {result.status}"
            retry_after = _retry_after(result.header("retry-after"))
            if retry_after is not None and retry_after > _MAX_RETRY_AFTER:
                return None
            return retry_after if retry_after is not None else 0.0
        return None

    async def _robots_allow(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one robots.txt request per host, however many watches wait
            expiry, rules = self._robots.get(origin, (0.0, None))
            if expiry < time.monotonic():
                rules, ttl = await self._load_robots(origin)
                self._robots[origin] = (time.monotonic() + ttl, rules)
        return rules is None or rules.can_fetch(url, self.config.user_agent)

    async def _load_robots(self, origin: str) -> tuple[Protego | None, float]:
        robots = FetchRequest(f"{origin}/robots.txt", obey_robots=False)
        result = FetchResult(request=robots, url=robots.url, requested_at=now_utc())
        await self._attempt(robots, result)
        if result.status is not None and 200 <= result.status < 300 and not result.problem:
            text = result.body[:_ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
            return Protego.parse(text), _ROBOTS_TTL
        if result.status is not None and 400 <= result.status < 500:
            return None, _ROBOTS_TTL  # no robots.txt: everything is allowed
        return None, _ROBOTS_RETRY


async def check_address(url: str, allow_private: bool) -> None:
    """Refuse non-HTTP URLs and hosts resolving to private, loopback, link-local or metadata
    addresses (SSRF guard). Raises RefusedAddress, or OSError when the name does not resolve.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedAddress(f"unsupported URL {url!r}")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise RefusedAddress(
                f"{parts.hostname} resolves to non-public address {address} "
                "(set [fetch] allow_private = true to allow)"
            )


class _HostGate:
    """Per-host concurrency and minimum spacing between request starts."""

    def __init__(self, config: FetchConfig) -> None:
        self._semaphore = asyncio.Semaphore(config.per_host_concurrency)
        self._delay = config.per_host_delay
        self._next_start = 0.0
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        async with self._lock:
            wait = self._next_start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start = time.monotonic() + self._delay

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()


def _transport(
    config: FetchConfig, verify: ssl.SSLContext | bool, limits: httpx.Limits
) -> httpx.AsyncBaseTransport:
    """The engine under the httpx API, chosen by measurement (see bench/README.md).

    httpx's own pool spends most of an unchanged check in connection bookkeeping (about
    4 ms CPU per 304 at 20 connections); the aiohttp engine does the same work for a
    fraction of that. The httpx engine is kept for HTTP/2, which aiohttp does not speak.
    """
    proxy = httpx.Proxy(config.proxy) if config.proxy else None
    if config.transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(verify=verify, limits=limits, proxy=proxy, trust_env=False)
    return httpx.AsyncHTTPTransport(
        verify=verify, limits=limits, proxy=proxy, http2=_has_h2(), trust_env=False
    )


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0][:200]


def now_utc() -> datetime:
    return datetime.now(UTC)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# Typical fragments of UTF-8 that was decoded as Latin-1/cp1252 and encoded again.
_MOJIBAKE = re.compile("[ÐÑÃÂ][\u0080-\u00bf\u2018-\u203a\u0152-\u0178]")


def decode_body(body: bytes, content_type: str | None) -> str:
    """Header charset, then <meta>, then detection; repairs double-encoded UTF-8."""
    for candidate in (_charset_from_header(content_type), _charset_from_meta(body)):
        if candidate:
            try:
                return _repair_double_utf8(body.decode(candidate))
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return _repair_double_utf8(body.decode("utf-8"))
    except UnicodeDecodeError:
        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


def _charset_from_header(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _charset_from_meta(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def _repair_double_utf8(text: str) -> str:
    if len(_MOJIBAKE.findall(text)) < 3:
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text
