"""The fetch stage's httpx transport (`[fetch] transport = "httpx"`): HTTP/2 where the
server offers it, pure Python over the standard library's TLS — the portable choice where
libcurl's wheels do not install — at several times libcurl's CPU per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from monitor.tls import SslObjects, TlsInfo
from monitor.transports.base import InvalidURL, Request, Response, read_capped, tls_context

if TYPE_CHECKING:
    from monitor.config import FetchConfig


class HttpxTransport:
    """httpx with its own connection pool."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self.timeouts: tuple[type[BaseException], ...] = (httpx.TimeoutException, TimeoutError)
        self.failures: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)
        self.guards_connections = False
        limits = httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        )
        transport = httpx.AsyncHTTPTransport(
            verify=tls_context(config),
            limits=limits,
            proxy=httpx.Proxy(config.proxy) if config.proxy else None,
            http2=_has_h2(),
            trust_env=False,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,  # we follow by hand to re-check every hop against SSRF
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            headers={"User-Agent": config.user_agent},
            event_hooks={"response": [_keep_response]},
        )
        self._tls_seen = SslObjects("httpx")

    async def send(self, request: Request, result: Response) -> None:
        url = request.url
        try:
            outgoing = self._client.build_request(
                request.method, url, headers=request.headers, content=request.body
            )
        except httpx.InvalidURL as err:
            raise InvalidURL(str(err)) from None
        try:
            response = await self._client.send(outgoing, stream=True)
        except httpx.InvalidURL:
            # The request was fine: what httpx could not parse is the answer's Location
            # ("data:text/html,x"), which it reads although it follows no redirect. The
            # answer itself is kept (`_keep_response`), and the Fetcher judges the
            # Location as it does for the other engines.
            kept: httpx.Response | None = outgoing.extensions.get(_KEPT)
            if kept is None:
                raise
            result.status = kept.status_code
            result.http_version = kept.http_version
            result.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in kept.headers.raw
            ]
            result.tls = self._connection_tls(kept, url)
            return
        try:
            result.status = response.status_code
            result.http_version = response.http_version
            result.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
            ]
            result.tls = self._connection_tls(response, url)
            await read_capped(response.aiter_bytes(), result, self.config.max_bytes)
        finally:
            await response.aclose()

    def _connection_tls(self, response: Any, url: str) -> TlsInfo:
        stream = response.extensions.get("network_stream")
        return self._tls_seen.info(stream and stream.get_extra_info("ssl_object"), url)

    async def close(self) -> None:
        await self._client.aclose()


_KEPT = "monitor.response"


async def _keep_response(response: Any) -> None:
    """httpx's response hook: the answer, kept with its request, for the case where httpx
    fails on the answer's Location before handing it over (`HttpxTransport.send`)."""
    response.request.extensions[_KEPT] = response


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True
