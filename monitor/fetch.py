"""Fetch stage: one polite, bounded HTTP client for the whole daemon.

Input: a `FetchRequest`. Output: a `FetchResult` that always comes back — network
failures, refusals and oversized bodies are recorded in `problem`, never raised, so one
dead site cannot stop the daemon.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit

from monitor.fetched import FetchRequest, FetchResult, HeaderCapture, Validators
from monitor.transports import Transport, open_transport

# Named here too: the SSRF guard's refusal and address rule are the fetch stage's API.
from monitor.transports.base import InvalidURL, RefusedAddress, Request, refuse_non_public

__all__ = [
    "FetchRequest",
    "FetchResult",
    "Fetcher",
    "HeaderCapture",
    "InvalidURL",
    "RefusedAddress",
    "Validators",
    "check_address",
    "refuse_non_public",
]

if TYPE_CHECKING:
    from protego import Protego

    from monitor.config import FetchConfig  # the workers that read pages never need it

# Transient answers worth retrying; any other 4xx is the server's considered reply.
_RETRY_STATUSES = {429, 502, 503, 504}
_MAX_REDIRECTS = 10
_ROBOTS_TTL = 24 * 3600.0
_ROBOTS_RETRY = 3600.0  # robots.txt unreachable: allow, and ask again in an hour
_ROBOTS_MAX_BYTES = 512 * 1024
# A server asking us to wait longer than this is not retried now; the next check will be.
_MAX_RETRY_AFTER = 30.0


class Fetcher:
    """Shared client with global and per-host limits. Use as an async context manager.

    The wire is a transport (monitor.transports): by default the one `config.transport`
    names, opened on entry; or the one given, as httpx's clients take theirs (tests give
    an in-process `MemoryTransport`). The Fetcher closes it on exit either way."""

    def __init__(self, config: FetchConfig, transport: Transport | None = None) -> None:
        self.config = config
        self._global = asyncio.Semaphore(config.concurrency)
        self._deadlines = _Deadlines(config.timeout)
        self._hosts: dict[str, _HostGate] = {}
        self._given = transport
        self._engine: Transport | None = None
        # robots.txt per scheme://host: (expiry, parser or None for "allow everything").
        self._robots: dict[str, tuple[float, Protego | None]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Fetcher:
        # Made here, not in __init__: libcurl's transport needs the running event loop.
        given = self._given
        self._engine = (
            given if given is not None else open_transport(self.config.transport, self.config)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._deadlines.close()
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    async def fetch(self, request: FetchRequest) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(request=request, url=request.url, requested_at=now_utc())
        # Split once: the robots.txt cache, the SSRF guard and the host's gate all need it.
        try:
            parts = split_url(request.url)
        except ValueError as err:  # "http://[::1/": urllib cannot even split it
            result.problem = f"invalid URL {request.url!r}: {_describe(err)}"
            return result
        if request.obey_robots and not await self._robots_allow(request.url, parts):
            result.problem = f"disallowed by robots.txt of {parts.netloc}"
            return result
        attempt = 0
        while True:
            delay = await self._attempt(request, result, parts)
            if delay is None or attempt >= self.config.retries:
                break
            attempt += 1
            # Exponential backoff with full jitter, or the server's own Retry-After.
            await asyncio.sleep(delay if delay > 0 else random.uniform(0, 2**attempt))
            result = FetchResult(request=request, url=request.url, requested_at=result.requested_at)
        result.elapsed = time.monotonic() - started
        return result

    async def _attempt(
        self, request: FetchRequest, result: FetchResult, parts: SplitResult
    ) -> float | None:
        """One try, following redirects. Returns a retry delay (0 = backoff) or None.
        `parts` is the request URL already split."""
        assert self._engine is not None, "Fetcher used outside 'async with'"
        engine = self._engine
        config = self.config
        url, method, body = request.url, request.method, request.body
        for hop in range(_MAX_REDIRECTS + 1):
            try:
                if hop:
                    parts = split_url(url)
                guarded = None
                if _needs_resolving(url, parts, config.allow_private, config.allow_hosts):
                    if engine.guards_connections:
                        guarded = parts.hostname  # the engine judges what it connects to
                    else:
                        await _refuse_private(parts)
                exchange = Request(method, url, request.headers, body, guarded)
                response_delay = await self._one_request(engine, exchange, parts.netloc, result)
            except RefusedAddress as err:
                result.problem = f"refused: {err}"
                return None
            except engine.timeouts as err:
                result.problem = f"timeout after {config.timeout:g}s ({type(err).__name__})"
                return 0.0
            except engine.failures as err:
                result.problem = f"connection failed: {_describe(err)}"
                return 0.0
            except ValueError as err:
                # A URL no engine can request (a port above 65535, "[::1" as a host, a NUL
                # byte; httpx's InvalidURL arrives as InvalidURL, a ValueError): the
                # server's redirect or the watch's URL is at fault, not the network.
                what = "redirect to an invalid URL" if hop else "invalid URL"
                result.problem = f"{what} {url!r}: {_describe(err)}"
                return None
            if response_delay is not None:
                return response_delay
            # The status first: the header is looked for only in a redirect (every answer
            # passes here, and a 304's fields were scanned for a Location it never has).
            if result.status in (301, 302, 303, 307, 308) and (
                location := result.header("location")
            ):
                try:
                    url = urljoin(url, location)
                except ValueError as err:
                    result.problem = f"redirect to an invalid URL {location!r}: {_describe(err)}"
                    return None
                result.redirects.append((result.status, url))
                if result.status == 303 or (result.status in (301, 302) and method == "POST"):
                    method, body = "GET", None
                continue
            return None
        result.problem = f"too many redirects (>{_MAX_REDIRECTS})"
        return None

    async def _one_request(
        self, engine: Transport, request: Request, host: str, result: FetchResult
    ) -> float | None:
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = _HostGate(self.config)
        # The host's slot first, then a global one: a global slot taken while waiting for
        # a busy host sits idle, and a crowd due on one slow site took every one of them,
        # holding up every other site's checks (34 s in tests/test_scheduler.py). The
        # spacing comes last, so requests start at least per_host_delay apart.
        async with gate.slots, self._global:
            if gate.spacing:
                await gate.pace()
            result.url = request.url
            # The engines' timeouts are per read; a server dripping one byte a second would
            # never trip them, so the whole exchange also has a deadline. It starts once the
            # request may go: time queued behind the concurrency limits (thousands of first
            # checks at a daemon's start, found by bench/soak.py) is not the server's fault.
            task = self._deadlines.start()
            try:
                await engine.send(request, result)
            except asyncio.CancelledError:
                if self._deadlines.expired(task):
                    raise TimeoutError from None
                raise
            finally:
                self._deadlines.end(task)
        if result.status in _RETRY_STATUSES:
            result.problem = f"HTTP {result.status}"
            retry_after = _retry_after(result.header("retry-after"))
            if retry_after is not None and retry_after > _MAX_RETRY_AFTER:
                return None
            return retry_after if retry_after is not None else 0.0
        return None

    async def _robots_allow(self, url: str, parts: SplitResult) -> bool:
        origin = f"{parts.scheme}://{parts.netloc}"
        expiry, rules = self._robots.get(origin, (0.0, None))
        if expiry < time.monotonic():  # the lock only when loading: most checks need none
            rules = await self._robots_reload(origin)
        return rules is None or rules.can_fetch(url, self.config.user_agent)

    async def _robots_reload(self, origin: str) -> Protego | None:
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:  # one robots.txt request per host, however many watches wait
            expiry, rules = self._robots.get(origin, (0.0, None))
            if expiry < time.monotonic():
                rules, ttl = await self._load_robots(origin)
                self._robots[origin] = (time.monotonic() + ttl, rules)
        return rules

    async def _load_robots(self, origin: str) -> tuple[Protego | None, float]:
        from protego import Protego

        robots = FetchRequest(f"{origin}/robots.txt", obey_robots=False)
        result = FetchResult(request=robots, url=robots.url, requested_at=now_utc())
        await self._attempt(robots, result, split_url(robots.url))
        if result.status is not None and 200 <= result.status < 300 and not result.problem:
            text = result.body[:_ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")
            return Protego.parse(text), _ROBOTS_TTL
        if result.status is not None and 400 <= result.status < 500:
            return None, _ROBOTS_TTL  # no robots.txt: everything is allowed
        return None, _ROBOTS_RETRY


async def check_address(url: str, allow_private: bool, allow_hosts: Iterable[str] = ()) -> None:
    """Refuse non-HTTP URLs and hosts resolving to private, loopback, link-local or metadata
    addresses (SSRF guard). `allow_hosts` names the exceptions ("host" or "host:port").
    Raises RefusedAddress, or OSError when the name does not resolve.
    """
    parts = split_url(url)
    if _needs_resolving(url, parts, allow_private, allow_hosts):
        await _refuse_private(parts)


# Each check splits its URL a few times (robots.txt cache, SSRF guard, host gate); the
# standard library's own cache keeps only 128, a daemon has thousands of watches.
split_url = lru_cache(maxsize=16384)(urlsplit)


def _needs_resolving(
    url: str, parts: SplitResult, allow_private: bool, allow_hosts: Iterable[str]
) -> bool:
    """Whether the host must be resolved and its addresses checked (`_refuse_private`).
    Raises RefusedAddress for what is not an http(s) URL with a host."""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedAddress(f"unsupported URL {url!r}")
    if allow_private:
        return False
    return not (allow_hosts and _allowed_host(parts.hostname, _port(parts), allow_hosts))


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


async def _refuse_private(parts: SplitResult) -> None:
    """Resolve the host; raise RefusedAddress if any address is not a public one."""
    assert parts.hostname is not None
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname, _port(parts), type=socket.SOCK_STREAM)
    for info in infos:
        refuse_non_public(parts.hostname, str(info[4][0]))


class _Deadlines:
    """The whole-exchange deadline of every request in flight, kept by one timer that looks
    a few times per `timeout` instead of a timer per request (asyncio.timeout). A cancelled
    timer stays in the event loop's heap until it would have fired, and every timer after
    it (aiohttp's too) is pushed into a heap of thousands: this cut an unchanged request
    from 518,000 to 456,000 CPU instructions (bench/README.md). A deadline fires up to a
    tenth of `timeout` late (at most a second)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._every = min(max(timeout / 10, 0.05), 1.0)
        # Each task with a request in flight: its deadline, and how many cancellations it
        # had already (someone else's, see `expired`).
        self._due: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._cancelled: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def start(self) -> asyncio.Task[Any]:
        """The running task's request starts: its deadline is `timeout` from now."""
        task = asyncio.current_task()
        assert task is not None, "a request outside a task"
        loop = task.get_loop()
        self._due[task] = (loop.time() + self._timeout, task.cancelling())
        if self._sweep is None:
            self._sweep = loop.call_later(self._every, self._cancel_late, loop)
        return task

    def end(self, task: asyncio.Task[Any]) -> None:
        self._due.pop(task, None)
        self._cancelled.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the CancelledError `task` just got is its deadline's doing, and only
        its: if someone else cancelled it too (shutdown, the scheduler's watchdog), the
        cancellation goes on, as with asyncio.timeout."""
        if task not in self._cancelled:
            return False
        self._cancelled.discard(task)
        return task.uncancel() <= self._due[task][1]

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def _cancel_late(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, (deadline, _) in self._due.items():
            if deadline <= now and task not in self._cancelled and not task.done():
                self._cancelled.add(task)
                task.cancel()
        self._sweep = loop.call_later(self._every, self._cancel_late, loop) if self._due else None


class _HostGate:
    """Per-host concurrency (`slots`) and minimum spacing between request starts
    (`pace`)."""

    def __init__(self, config: FetchConfig) -> None:
        self.slots = asyncio.Semaphore(config.per_host_concurrency)
        # With no spacing to keep, `pace` is not even called: the lock would only cost time.
        self.spacing = config.per_host_delay > 0
        self._delay = config.per_host_delay
        self._next_start = 0.0
        self._lock = asyncio.Lock()

    async def pace(self) -> None:
        """Wait until this host may see the next request start."""
        async with self._lock:
            wait = self._next_start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start = time.monotonic() + self._delay


def _allowed_host(hostname: str, port: int, allow_hosts: Iterable[str]) -> bool:
    """Whether an entry of [fetch] allow_hosts names this host ("host") or this host and
    port ("host:port"; an IPv6 address in brackets, "[::1]:8080")."""
    host = hostname.lower()
    bracketed = f"[{host}]" if ":" in host else host
    return any(entry.lower() in (host, bracketed, f"{bracketed}:{port}") for entry in allow_hosts)


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
