"""The SSRF guard for headless Chromium: a small HTTP proxy every connection goes through.

Playwright's request routing sees a page's requests but not a redirect's later hops, nor
WebSockets, nor what a service worker or a worker fetches. Chromium's network stack does
send every one of them to the browser context's proxy, loopback included (Playwright adds
"<-loopback>" to the bypass list), so the guard sits there: `GuardProxy` resolves the name
itself, refuses every address the SSRF guard refuses and connects to the very address it
judged, so a name that resolves to a public address for a check and to 127.0.0.1 a moment
later (DNS rebinding) cannot slip through either.

One proxy per browser context (one per page load): the refusals it records are that
page's, and the fetch reports them. It listens on 127.0.0.1 only and asks for no
password: it connects nowhere a local user could not connect to directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from monitor.config import FetchConfig
from monitor.fetch import RefusedAddress, _allowed_host, refuse_non_public

logger = logging.getLogger("monitor.browser")

# Request heads larger than this are refused (asyncio's own limit, named for clarity).
_MAX_HEAD = 64 * 1024
_CHUNK = 64 * 1024
# Headers for this hop only; the origin server gets "Connection: close" instead, so one
# proxied connection carries one request and the next request's host is judged again.
_HOP_HEADERS = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


class GuardProxy:
    """An HTTP proxy on 127.0.0.1 that connects only where the SSRF guard allows.

    CONNECT (https://, wss://, and ws:// through a proxy) is tunnelled; a plain http://
    request is forwarded with its target rewritten. A refused CONNECT gets 403 (Chromium:
    ERR_TUNNEL_CONNECTION_FAILED), a refused plain request an empty answer (Chromium:
    ERR_EMPTY_RESPONSE): neither has a body the page could show as content."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        # Each refusal, "host:port: reason", in order: the page's report.
        self.refusals: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the proxy's URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_HEAD)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Python 3.11's Server.close leaves open connections alone: closed here.
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.config.timeout)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            request_line, _, header_block = head.partition(b"\r\n")
            try:
                method, target, version = request_line.decode("latin-1").split(" ")
            except ValueError:
                return
            try:
                if method == "CONNECT":
                    host, port = _host_and_port(target, None)
                    up_reader, upstream = await self._connect(host, port)
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    parts = urlsplit(target)
                    if parts.scheme not in ("http", "ws") or not parts.hostname:
                        raise RefusedAddress(f"unsupported URL {target!r}")
                    host, port = parts.hostname, parts.port or 80
                    up_reader, upstream = await self._connect(host, port)
                    path = parts.path or "/"
                    if parts.query:
                        path += "?" + parts.query
                    upstream.write(_forwarded_head(method, path, version, header_block))
                    # The answer's head says "close" to Chromium too: otherwise its next
                    # request on this connection, perhaps for another host, would go to
                    # this one.
                    answer = await up_reader.readuntil(b"\r\n\r\n")
                    writer.write(_closing_answer(answer))
            except RefusedAddress as err:
                self.refusals.append(str(err))
                logger.warning("browser: blocked %s %s: %s", method, target, err)
                if method == "CONNECT":
                    writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            except (
                OSError,
                ValueError,
                TimeoutError,
                asyncio.LimitOverrunError,  # an answer's head over 64 KiB
                asyncio.IncompleteReadError,
            ) as err:
                logger.info("browser: cannot connect for %s %s: %s", method, target, err)
                if method == "CONNECT":
                    writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            await _relay(reader, writer, up_reader, upstream)
        except (ConnectionError, OSError):
            pass  # either side went away: nothing to tell anyone
        finally:
            self._writers.discard(writer)
            for stream in (writer, upstream):
                if stream is not None:
                    stream.close()

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to `host`:`port`, to an address the guard allows; raises
        RefusedAddress when it allows none of the name's addresses."""
        config = self.config
        timeout = config.connect_timeout
        if config.allow_private or (
            config.allow_hosts and _allowed_host(host, port, config.allow_hosts)
        ):
            return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        refused: RefusedAddress | None = None
        failed: OSError | None = None
        # As libcurl does: the name's addresses in turn, a refused one skipped; only the
        # refusal of every one is a refusal.
        for family, _, _, _, address in infos:
            # An IPv4 or IPv6 socket address: (host, port, …).
            ip, ip_port = str(address[0]), int(address[1])
            try:
                refuse_non_public(host, ip)
            except RefusedAddress as err:
                refused = err
                continue
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(ip, ip_port, family=family), timeout
                )
            except OSError as err:
                failed = err
        if refused is not None and failed is None:
            raise refused
        raise failed or OSError(f"{host} has no address")


def _host_and_port(authority: str, default: int | None) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" of a CONNECT request."""
    parts = urlsplit(f"//{authority}")
    if not parts.hostname:
        raise ValueError(f"no host in {authority!r}")
    port = parts.port or default
    if port is None:
        raise ValueError(f"no port in {authority!r}")
    return parts.hostname, port


def _forwarded_head(method: str, path: str, version: str, header_block: bytes) -> bytes:
    lines = [f"{method} {path} {version}".encode("latin-1")]
    upgrade = False
    kept: list[bytes] = []
    for line in header_block.split(b"\r\n"):
        if not line:
            continue
        name = line.partition(b":")[0].strip().lower().decode("latin-1")
        if name == "upgrade":
            upgrade = True
        if name not in _HOP_HEADERS:
            kept.append(line)
    lines += kept
    lines.append(b"Connection: upgrade" if upgrade else b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _closing_answer(head: bytes) -> bytes:
    """An answer's head with its Connection header made "close" (an upgrade's kept)."""
    status_line, _, header_block = head.partition(b"\r\n")
    if status_line.split(b" ")[1:2] == [b"101"]:
        return head
    kept = [status_line]
    for line in header_block.split(b"\r\n"):
        name = line.partition(b":")[0].strip().lower()
        if line and name not in (b"connection", b"keep-alive", b"proxy-connection"):
            kept.append(line)
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + b"\r\n\r\n"


async def _relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Bytes both ways until either side is done."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()

    tasks = [
        asyncio.ensure_future(pipe(client_reader, upstream_writer)),
        asyncio.ensure_future(pipe(upstream_reader, client_writer)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await task
