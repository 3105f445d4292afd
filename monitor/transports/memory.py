"""An in-process transport for tests that are not about HTTP: no sockets, no server, no
subprocess. Like httpx's MockTransport, a `handler` answers each request::

    def site(request: Request) -> Answer:
        if request.url.endswith("/robots.txt"):
            return Answer(404)
        return Answer(200, [("Content-Type", "text/html; charset=utf-8")], b"<h1>Hi</h1>")

    async with Fetcher(config.fetch, transport=MemoryTransport(site)) as fetcher:
        ...

`pages(...)` builds such a handler from a dict of URL to body. Everything the Fetcher does
around the wire — robots.txt, redirects, retries, limits, pacing — runs as with a real
transport (the max_bytes cap only when given to MemoryTransport); tests about those,
about the wire or about the transports themselves keep a real server on 127.0.0.1.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from monitor.transports.base import BODYLESS, Request, Response


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    http_version: str = "HTTP/1.1"


class MemoryFailure(Exception):
    """A handler's way to fail a request as a network error would (`connection failed`)."""


Handler = Callable[[Request], Answer | Awaitable[Answer]]


class MemoryTransport:
    """`Transport` answering from `handler`; `requests` keeps every request it was sent."""

    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)
    failures: tuple[type[BaseException], ...] = (MemoryFailure, OSError)
    # Nothing is connected to, so there is no address to check: the SSRF guard's rules for
    # URLs (http and https only) still hold, in the Fetcher.
    guards_connections = True

    def __init__(self, handler: Handler, max_bytes: int | None = None) -> None:
        self.handler = handler
        self.max_bytes = max_bytes
        self.requests: list[Request] = []
        # The pages `serving` answers from (edit it between checks); empty otherwise.
        self.site: dict[str, bytes | str | Answer] = {}

    @classmethod
    def serving(
        cls, site: dict[str, bytes | str | Answer] | None = None, max_bytes: int | None = None
    ) -> MemoryTransport:
        """A transport answering from `site` as `pages` does; `transport.site` is that dict."""
        site = {} if site is None else site
        transport = cls(pages(site), max_bytes)
        transport.site = site
        return transport

    async def send(self, request: Request, result: Response) -> None:
        # A copy of the headers: what was sent, whatever the caller does with its dict later.
        request = replace(request, headers=dict(request.headers))
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        result.status = answer.status
        result.http_version = answer.http_version
        result.headers = list(answer.headers)
        bodyless = answer.status in BODYLESS or request.method == "HEAD"
        body_bytes = b"" if bodyless else answer.body
        if self.max_bytes is not None and len(body_bytes) > self.max_bytes:
            result.truncated = True
            result.problem = f"body larger than max_bytes ({self.max_bytes})"
            body_bytes = b""
        result.body = body_bytes

    async def close(self) -> None:
        return None


def pages(
    site: Mapping[str, bytes | str | Answer], content_type: str = "text/html; charset=utf-8"
) -> Handler:
    """A handler serving `site` (URL to body or Answer; a `str` body is UTF-8) with ETags,
    a 304 for a matching If-None-Match, and 404 for any other URL (robots.txt included,
    which means "everything allowed"). Change `site` between checks to edit a page."""

    def answer(request: Request) -> Answer:
        page = site.get(request.url)
        if page is None:
            return Answer(404, [("Content-Type", "text/plain")], b"not found")
        if isinstance(page, Answer):
            return page
        body = page.encode() if isinstance(page, str) else page
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
        headers = [("Content-Type", content_type), ("ETag", etag)]
        if request.headers.get("If-None-Match") == etag:
            return Answer(304, headers)
        return Answer(200, headers, body)

    return answer
