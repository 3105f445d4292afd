"""The fetch stage's aiohttp transport (`[fetch] transport = "aiohttp"`, HTTP/1.1): an
optional extra, `pip install 'monitor[aiohttp]'` (the default before libcurl).

Chosen by measurement then (bench/README.md): httpx's own pool spent about 4 ms CPU per 304
at 20 connections, and httpx's request and response models over aiohttp still cost twice
what aiohttp alone does; an unchanged check is mostly this exchange. libcurl now does it
for less (monitor/transports/curl.py).
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from monitor.tls import SslObjects, TlsInfo
from monitor.transports.base import BODYLESS, Request, Response, read_capped, tls_context

if TYPE_CHECKING:
    from monitor.config import FetchConfig


class AiohttpTransport:
    """aiohttp used directly, HTTP/1.1."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        # Each watch's URL parsed once, not on every request (aiohttp parses a str each time).
        self._url = lru_cache(maxsize=16384)(URL)
        # aiohttp's own timeouts are TimeoutError too.
        self.timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
        self.failures: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)
        self.guards_connections = False
        self._tls: ssl.SSLContext | None = None
        self._tls_seen = SslObjects("aiohttp")
        proxy_headers = None
        proxy: Any = None
        if config.proxy:
            proxy = URL(config.proxy)
            auth = aiohttp.BasicAuth.from_url(proxy)
            if auth is not None:  # credentials in the URL go in the header aiohttp wants
                # (aiohttp sends proxy_headers with an https:// tunnel's CONNECT only; a
                # plain http:// request carries it itself, see `send`)
                proxy_headers = {"Proxy-Authorization": auth.encode()}
                proxy = proxy.with_user(None)
        self._proxy, self._proxy_headers = proxy, proxy_headers
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.concurrency),
            # The TCP/TLS connect within `connect_timeout`; the whole exchange, waiting for
            # a pooled connection and every read included, within `timeout`: the Fetcher's
            # own deadline (`_Deadlines`), so no timer of aiohttp's per read.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout),
            headers={"User-Agent": config.user_agent},
            # Cookies are kept per host like a browser would (some WAFs set one and expect
            # it back), for IP-address hosts too, as httpx's jar did.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            trust_env=False,
        )

    async def send(self, request: Request, result: Response) -> None:
        method, url, headers, body = request.method, request.url, request.headers, request.body
        if self._proxy_headers and url.startswith("http:"):
            headers = {**headers, **self._proxy_headers}
        async with self._session.request(
            method,
            self._url(url),
            headers=headers,
            data=body,
            allow_redirects=False,
            # The TLS context is built on the first https URL: loading the CA bundle costs
            # a process that only checks http:// pages (or only 304s) for nothing.
            ssl=self._tls_context() if url.startswith("https:") else True,
            proxy=self._proxy,
            proxy_headers=self._proxy_headers,
        ) as response:
            result.status = response.status
            version = response.version
            if version is not None:
                result.http_version = f"HTTP/{version.major}.{version.minor}"
            result.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
            ]
            result.tls = self._connection_tls(response, url)
            if response.status not in BODYLESS:
                await read_capped(response.content.iter_any(), result, self.config.max_bytes)

    def _connection_tls(self, response: Any, url: str) -> TlsInfo:
        # aiohttp keeps the connection's protocol on the response (not public); the
        # connection may already be back in the pool, or closed, by now.
        transport = getattr(getattr(response, "_protocol", None), "transport", None)
        return self._tls_seen.info(transport and transport.get_extra_info("ssl_object"), url)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context(self.config)
        return self._tls

    async def close(self) -> None:
        await self._session.close()
