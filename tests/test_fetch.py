"""The fetcher against a real local server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import urlsplit

import pytest

from monitor.config import FetchConfig
from monitor.fetch import Fetcher, FetchRequest, FetchResult
from tests.conftest import serve_on_loopback, wait_for

RUSSIAN = "Министерство иностранных дел Республики Казахстан выражает глубокую озабоченность."


class Misbehaving(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: ClassVar[dict[str, int]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _body(self, status: int, body: bytes, content_type: str) -> None:
        self._head(status, {"Content-Type": content_type, "Content-Length": str(len(body))})
        self.wfile.write(body)

    def do_POST(self) -> None:
        # Echoes what came: the method, and the body's length.
        length = int(self.headers.get("Content-Length") or 0)
        body = f"{self.command} {len(self.rfile.read(length))}".encode()
        self._body(200, body, "text/plain")

    def do_PUT(self) -> None:
        self.do_POST()

    def do_GET(self) -> None:
        path = self.path
        Misbehaving.hits[path] = Misbehaving.hits.get(path, 0) + 1
        html = f"<html><head>{{meta}}</head><body><p>{RUSSIAN}</p></body></html>"
        if path == "/drip":
            self._head(200, {"Content-Type": "text/html", "Content-Length": "1000"})
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:  # the client gave up, as it should
                return
        elif path == "/endless":
            self._head(200, {"Content-Type": "text/html"})
            chunk = b"<p>" + b"z" * 65536 + b"</p>"
            try:
                while True:
                    self.wfile.write(chunk)
            except OSError:
                return
        elif path == "/reset":
            self._head(200, {"Content-Type": "text/html", "Content-Length": "100000"})
            self.wfile.write(b"<p>partial")
            self.wfile.flush()
            # shutdown, not close: the handler's file objects would keep the socket alive.
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path == "/cp1251-meta":
            meta = '<meta charset="windows-1251">'
            self._body(200, html.replace("{meta}", meta).encode("cp1251"), "text/html")
        elif path == "/koi8-header":
            self._body(
                200, html.replace("{meta}", "").encode("koi8_r"), "text/html; charset=KOI8-R"
            )
        elif path == "/wrong-header":
            meta = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
            body = html.replace("{meta}", meta).encode("cp1251")
            self._body(200, body, "text/html; charset=utf-8")
        elif path == "/undeclared":
            self._body(200, (html.replace("{meta}", "") * 5).encode("cp1251"), "text/html")
        elif path == "/double-utf8":
            body = html.replace("{meta}", "").encode("utf-8").decode("latin-1").encode("utf-8")
            self._body(200, body, "text/html; charset=utf-8")
        elif path == "/429-once":
            if Misbehaving.hits[path] == 1:
                self._head(429, {"Retry-After": "1", "Content-Length": "0"})
            else:
                self._body(200, b"<p>fine now</p>", "text/html")
        elif path == "/slow":
            time.sleep(0.7)
            self._body(200, b"<p>slow but steady</p>", "text/html")
        elif path == "/503-long":
            self._head(503, {"Retry-After": "600", "Content-Length": "0"})
        elif path == "/404":
            self._body(404, b"<h1>Not found</h1>", "text/html")
        elif path == "/loop":
            self._head(302, {"Location": "/loop", "Content-Length": "0"})
        elif path == "/hop":
            self._head(301, {"Location": "/cp1251-meta", "Content-Length": "0"})
        elif path == "/cookie/set":
            self._head(200, {"Set-Cookie": "waf=passed; Path=/", "Content-Length": "0"})
        elif path == "/cookie/check":
            # A WAF's way: the page only for a client that kept the cookie it was given.
            passed = "waf=passed" in (self.headers.get("Cookie") or "")
            self._body(200 if passed else 403, b"<p>through</p>" if passed else b"", "text/html")
        elif path.startswith("/away?to="):
            self._head(302, {"Location": path.removeprefix("/away?to="), "Content-Length": "0"})
        else:
            self._body(404, b"", "text/plain")


class ClosesIdleConnections(BaseHTTPRequestHandler):
    """Keeps a connection alive between requests, but closes it after 0.2 s of silence, as
    many servers do with a short keep-alive timeout; `open` counts its connections."""

    protocol_version = "HTTP/1.1"
    timeout = 0.2
    open: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def setup(self) -> None:
        with ClosesIdleConnections.lock:
            ClosesIdleConnections.open += 1
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with ClosesIdleConnections.lock:
                ClosesIdleConnections.open -= 1

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = f"<p>{self.path}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.slow
def test_connections_the_server_closed_while_idle_are_replaced_cleanly() -> None:
    """Rounds of requests with pauses between them, so the server closes every pooled
    connection while it idles, and new connections take the numbers of closed ones. The
    libcurl engine once kept listening on a socket libcurl had closed: a new connection
    with the same number then broke every request in flight (found by bench/run.py)."""
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, per_host_concurrency=5)

    async def all_closed() -> None:
        """Until the server has closed every connection (each idled past its timeout)."""
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(
            None, wait_for, lambda: ClosesIdleConnections.open == 0, 10
        )

    async def go(base: str) -> list[FetchResult]:
        results: list[FetchResult] = []
        async with Fetcher(config) as fetcher:
            for round_ in range(4):
                # Many at once (a pool of connections), then one by one, so connections
                # opened for one request are found dead by another.
                pages = [FetchRequest(f"{base}/{round_}/{page}") for page in range(10)]
                results += await asyncio.gather(*(fetcher.fetch(page) for page in pages))
                await all_closed()
                for page in range(5):
                    results.append(await fetcher.fetch(FetchRequest(f"{base}/{round_}/{page}")))
                await all_closed()
        return results

    open_files = len(os.listdir("/proc/self/fd"))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for base in serve_on_loopback(ClosesIdleConnections):
            results = asyncio.run(go(base))
    # pycurl warns when it cannot tell us of a socket libcurl closes.
    assert [str(warning.message) for warning in warned] == []
    assert len(os.listdir("/proc/self/fd")) == open_files  # no connection left open
    assert [result.problem for result in results] == [None] * 60
    assert all(result.body == f"<p>{urlsplit(result.url).path}</p>".encode() for result in results)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from serve_on_loopback(Misbehaving)


@pytest.fixture(scope="module")
def other_server() -> Iterator[str]:
    """A second loopback server: a redirect target that answers if the guard lets it."""
    yield from serve_on_loopback(Misbehaving)


def fetch(url: str, **settings: object) -> FetchResult:
    config = FetchConfig(
        allow_private=True, per_host_delay=0, retries=settings.pop("retries", 0), **settings
    )

    async def go() -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(FetchRequest(url))

    return asyncio.run(go())


@pytest.mark.slow
def test_slow_drip_hits_the_total_deadline(server: str) -> None:
    started = time.monotonic()
    result = fetch(f"{server}/drip", timeout=1.5)
    assert time.monotonic() - started < 5
    assert result.problem is not None and result.problem.startswith("timeout after 1.5s")


def test_a_fetch_cancelled_by_its_caller_is_cancelled_not_timed_out(server: str) -> None:
    # The daemon cancels a hung check, or stops: that cancellation must reach the caller,
    # not be taken for the request's own deadline. Then the deadline still works.
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, timeout=1.0)

    async def go() -> tuple[BaseException | None, FetchResult]:
        async with Fetcher(config) as fetcher:
            hung = asyncio.ensure_future(fetcher.fetch(FetchRequest(f"{server}/drip")))
            await asyncio.sleep(0.3)
            hung.cancel()
            outcome = (await asyncio.gather(hung, return_exceptions=True))[0]
            return outcome, await fetcher.fetch(FetchRequest(f"{server}/drip"))

    started = time.monotonic()
    cancelled, timed_out = asyncio.run(go())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert timed_out.problem is not None and timed_out.problem.startswith("timeout after 1s")
    assert time.monotonic() - started < 4


@pytest.mark.slow
def test_time_queued_behind_the_limits_is_not_the_server_s_timeout(server: str) -> None:
    # One request at a time, three of 0.7 s each: the last waits 1.4 s for its turn, more
    # than the 1 s deadline, yet its server answers within it.
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, timeout=1.0)
    config = config.model_copy(update={"concurrency": 1})

    async def go() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            return await asyncio.gather(
                *(fetcher.fetch(FetchRequest(f"{server}/slow")) for _ in range(3))
            )

    results = asyncio.run(go())
    assert [r.problem for r in results] == [None, None, None]
    assert all(r.status == 200 for r in results)


def test_endless_body_is_cut_at_max_bytes(server: str) -> None:
    result = fetch(f"{server}/endless", max_bytes=1_000_000)
    assert result.truncated
    assert result.problem == "body larger than max_bytes (1000000)"
    assert len(result.body) <= 1_000_000


def test_reset_mid_body_is_a_connection_problem(server: str) -> None:
    result = fetch(f"{server}/reset")
    assert result.problem is not None and result.problem.startswith("connection failed")


@pytest.mark.parametrize(
    "path", ["/cp1251-meta", "/koi8-header", "/wrong-header", "/undeclared", "/double-utf8"]
)
def test_charsets_decode_to_the_same_text_and_raw_bytes_stay_untouched(
    server: str, path: str
) -> None:
    result = fetch(f"{server}{path}")
    assert result.ok
    assert RUSSIAN in result.text()
    assert RUSSIAN.encode("utf-8") not in result.body or path == "/double-utf8"


def test_429_with_retry_after_is_retried(server: str) -> None:
    started = time.monotonic()
    result = fetch(f"{server}/429-once", retries=2)
    assert result.ok and result.body == b"<p>fine now</p>"
    assert time.monotonic() - started >= 1.0


def test_a_long_retry_after_is_left_to_the_next_check(server: str) -> None:
    started = time.monotonic()
    result = fetch(f"{server}/503-long", retries=3)
    assert result.problem == "HTTP 503"
    assert time.monotonic() - started < 2


def test_4xx_is_not_retried(server: str) -> None:
    before = Misbehaving.hits.get("/404", 0)
    result = fetch(f"{server}/404", retries=3)
    assert result.status == 404 and result.problem is None
    assert Misbehaving.hits["/404"] == before + 1


def test_redirects_are_recorded_and_loops_stopped(server: str) -> None:
    result = fetch(f"{server}/hop")
    assert result.ok
    assert result.redirects == [(301, f"{server}/cp1251-meta")]
    assert result.url == f"{server}/cp1251-meta"
    loop = fetch(f"{server}/loop")
    assert loop.problem == "too many redirects (>10)"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/",
        "http://localhost:1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:1/",
        "http://[::ffff:127.0.0.1]:1/",
        # 127.0.0.1 inside NAT64 and 6to4 addresses, which a gateway would deliver to.
        "http://[64:ff9b::7f00:1]:1/",
        "http://[2002:7f00:1::1]:1/",
        # Legacy spellings of 127.0.0.1 and "this host", which connect to loopback too.
        "http://2130706433:1/",
        "http://127.1:1/",
        "http://0x7f.0.0.1:1/",
        "http://0.0.0.0:1/",
        "file:///etc/passwd",
    ],
)
@pytest.mark.parametrize("engine", ["curl", "aiohttp"])
def test_private_and_metadata_addresses_are_refused_by_default(url: str, engine: str) -> None:
    """libcurl refuses when it is about to connect, the others after a resolution of
    their own: the user sees the same problem either way."""
    config = FetchConfig(per_host_delay=0, retries=0, transport=engine)

    async def go() -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(FetchRequest(url))

    result = asyncio.run(go())
    assert result.problem is not None and result.problem.startswith("refused:")
    if not url.startswith("file:"):
        assert "non-public address" in result.problem
    assert result.status is None


ENGINES = ("curl", "aiohttp", "httpx")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_refused_address_leaves_the_engine_working_for_allowed_hosts(
    server: str, engine: str
) -> None:
    """Refusals mixed with allowed requests on one client, so on reused handles and pooled
    connections: each refused request reaches no server, each allowed one is answered."""
    allowed = urlsplit(server).netloc
    port = urlsplit(server).port
    config = FetchConfig(allow_hosts=[allowed], per_host_delay=0, retries=0, transport=engine)
    never = f"/never-{engine}"
    refused_url = f"http://localhost:{port}{never}"  # the same server, by another name

    async def go() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            requests = [FetchRequest(f"{server}/cp1251-meta"), FetchRequest(refused_url)] * 3
            return list(await asyncio.gather(*(fetcher.fetch(r) for r in requests)))

    results = asyncio.run(go())
    for answered, refused in zip(results[::2], results[1::2], strict=True):
        assert answered.ok and RUSSIAN in answered.text()
        assert refused.problem is not None
        assert refused.problem.startswith("refused: localhost resolves to non-public address")
        assert refused.status is None and refused.body == b""
    assert never not in Misbehaving.hits


@pytest.mark.slow
def test_the_three_engines_give_the_same_result(server: str) -> None:
    results = [fetch(f"{server}/hop", transport=engine) for engine in ENGINES]
    for result in results:
        assert result.ok and result.http_version == "HTTP/1.1"
        assert result.redirects == [(301, f"{server}/cp1251-meta")]
        assert RUSSIAN in result.text()
        assert result.header("content-type") == "text/html"
    assert results[0].body == results[1].body == results[2].body
    for engine in ENGINES[1:]:  # the default engine has its own tests above
        slow = fetch(f"{server}/drip", transport=engine, timeout=1.0)
        assert slow.problem is not None and slow.problem.startswith("timeout after 1s")


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_keeps_cookies_and_methods_apart_across_requests(
    server: str, engine: str
) -> None:
    """A cookie set by one answer goes back with the next request to that host, as a WAF
    expects; and a POST with a body, a PUT, then a plain GET each go out as themselves,
    though the engine reuses its connections (and libcurl its handles) between them."""
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, transport=engine)

    async def go() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            refused = await fetcher.fetch(FetchRequest(f"{server}/cookie/check"))
            await fetcher.fetch(FetchRequest(f"{server}/cookie/set"))
            requests = [
                FetchRequest(f"{server}/cookie/check"),
                FetchRequest(f"{server}/echo", "POST", body=b'{"query": "x"}'),
                FetchRequest(f"{server}/echo", "PUT", body=b"abc"),
                FetchRequest(f"{server}/cookie/check"),
            ]
            return [refused] + [await fetcher.fetch(request) for request in requests]

    refused, passed, post, put, get = asyncio.run(go())
    assert refused.status == 403
    assert passed.status == 200 and passed.body == b"<p>through</p>"
    assert post.body == b"POST 14" and put.body == b"PUT 3"
    assert get.status == 200 and get.body == b"<p>through</p>"


def test_allow_hosts_opens_one_host_and_each_redirect_hop_is_checked_again(
    server: str, other_server: str
) -> None:
    """The first host is allowed by name and port; a redirect from it to another loopback
    address (another port, or the same server under another name) is refused, although
    that server would answer: the SSRF guard judges every hop, not the first URL."""
    allowed = urlsplit(server).netloc
    config = FetchConfig(allow_hosts=[allowed], per_host_delay=0, retries=0)

    async def go(url: str) -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(FetchRequest(url))

    assert asyncio.run(go(f"{server}/cp1251-meta")).ok
    port = urlsplit(server).port
    for target in (f"{other_server}/cp1251-meta", f"http://localhost:{port}/cp1251-meta"):
        result = asyncio.run(go(f"{server}/away?to={target}"))
        assert result.redirects == [(302, target)]
        assert result.problem is not None and result.problem.startswith("refused: ")
        assert "non-public address" in result.problem
        assert not result.ok and result.body == b""
    # The same redirect without the guard reaches the other server: the refusal above is
    # the guard's doing, not a dead target.
    assert fetch(f"{server}/away?to={other_server}/cp1251-meta").ok


@pytest.mark.parametrize("engine", ENGINES)
def test_a_redirect_to_a_url_no_engine_can_request_is_that_watch_s_problem(
    server: str, engine: str
) -> None:
    """A redirect to `data:` (httpx raised InvalidURL on the Location), to a port above
    65535 (yarl raised ValueError) or to a broken IPv6 host (urllib raised ValueError)
    made the whole run abort; each is now a problem of its own request, and the requests
    beside it on the same client are answered."""
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, transport=engine)
    targets = ["data:text/html,x", "http://example.com:99999/", "http://[::1/"]

    async def go() -> list[FetchResult]:
        async with Fetcher(config) as fetcher:
            requests = [FetchRequest(f"{server}/away?to={target}") for target in targets]
            requests.append(FetchRequest(f"{server}/cp1251-meta"))
            requests.append(FetchRequest("http://[::1/"))  # the watch's own URL
            return list(await asyncio.gather(*(fetcher.fetch(r) for r in requests)))

    to_data, to_port, to_ipv6, fine, own = asyncio.run(go())
    assert to_data.problem == "refused: unsupported URL 'data:text/html,x'"
    assert to_data.status == 302 and to_data.redirects == [(302, "data:text/html,x")]
    for result in (to_port, to_ipv6, own):
        assert result.problem is not None and not result.ok
    assert own.problem is not None and own.problem.startswith("invalid URL")
    assert fine.ok and RUSSIAN in fine.text()
