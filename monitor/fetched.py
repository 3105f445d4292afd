"""What a fetch asks for and what it brings back: the values the fetch stage hands to the
reading stage (profiles, classification, comparison) and to the worker processes that read
pages. A leaf module: the readers import these without importing the HTTP client
(monitor/fetch.py) or its transports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.charset import decode_body

if TYPE_CHECKING:
    from monitor.tls import TlsInfo


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

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """`headers` plus the conditional ones (If-None-Match / If-Modified-Since);
        `headers` itself when there are none."""
        if not self:
            return headers
        headers = dict(headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

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
    # What the answer's connection said about itself (monitor/tls.py); None: not recorded.
    tls: TlsInfo | None = None
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
