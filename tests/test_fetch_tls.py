"""Each HTTP engine against a real HTTPS server (HTTP/2 offered by ALPN) and a real
forward proxy, both on loopback: TLS verified, a custom CA bundle as the fix, HTTP/2 where
offered, credentials in the proxy URL sent to the proxy."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

from monitor.config import FetchConfig
from monitor.fetch import Fetcher, FetchRequest, FetchResult
from tests.conftest import serve_on_loopback

ENGINES = ("curl", "aiohttp", "httpx")


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every request with the HTTP version it came over."""
    if scope["type"] != "http":
        return
    body = f"over HTTP/{scope['http_version']}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """An HTTPS server (HTTP/2 and HTTP/1.1 offered) with a certificate of a private CA:
    the CA's file and the server's URL."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    config = Config()
    port = _free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(folder / "cert.pem"), str(folder / "key.pem")
    config.loglevel = "WARNING"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_until_complete(serve(_app, config, shutdown_trigger=stop.wait))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    for _ in range(50):  # until it listens
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        threading.Event().wait(0.1)
    yield folder / "ca.pem", f"https://127.0.0.1:{port}/statement"
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)


def fetch(url: str, **settings: Any) -> FetchResult:
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0, **settings)

    async def go() -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(FetchRequest(url))

    return asyncio.run(go())


@pytest.mark.parametrize("engine", ENGINES)
def test_tls_is_verified_and_a_ca_bundle_is_the_fix(ca_file: tuple[Path, str], engine: str) -> None:
    ca, url = ca_file
    untrusted = fetch(url, transport=engine)
    assert untrusted.status is None and untrusted.body == b""
    assert untrusted.problem is not None and untrusted.problem.startswith("connection failed")
    assert "certificate" in untrusted.problem.lower()
    trusted = fetch(url, transport=engine, ca_bundle=ca)
    assert trusted.problem is None and trusted.status == 200


@pytest.mark.parametrize(("engine", "version"), [("curl", "2"), ("httpx", "2"), ("aiohttp", "1.1")])
def test_http2_is_spoken_where_the_server_offers_it(
    ca_file: tuple[Path, str], engine: str, version: str
) -> None:
    ca, url = ca_file
    result = fetch(url, transport=engine, ca_bundle=ca)
    assert result.http_version == f"HTTP/{version}"
    assert result.body == f"over HTTP/{version}".encode()
    assert result.header("content-type") == "text/plain"


# A public address (example.com's, once) that the test proxy answers for itself.
_PUBLIC = "93.184.215.14"


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy for http:// URLs that notes what each request brought."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        _Proxy.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        if self.path.startswith(f"http://{_PUBLIC}/"):
            body = b"<p>from afar</p>"  # no network here: the proxy stands in for the host
        else:
            direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with direct.open(self.path) as upstream:
                body = upstream.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Via", "1.1 test-proxy")
        self.end_headers()
        self.wfile.write(body)


class _Origin(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"<p>hi</p>")


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    yield from serve_on_loopback(_Proxy)


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    yield from serve_on_loopback(_Origin)


@pytest.mark.parametrize("engine", ENGINES)
def test_requests_go_through_the_configured_proxy_with_its_credentials(
    proxy: str, origin: str, engine: str
) -> None:
    _Proxy.seen.clear()
    proxy_url = proxy.replace("http://", "http://user:s3cret@")
    result = fetch(f"{origin}/page", transport=engine, proxy=proxy_url)
    assert result.status == 200 and result.body == b"<p>hi</p>"
    assert result.header("via") == "1.1 test-proxy"
    credentials = "Basic " + base64.b64encode(b"user:s3cret").decode()
    # robots.txt first, then the page: both through the proxy, both with its credentials.
    assert _Proxy.seen == [
        (f"{origin}/robots.txt", credentials),
        (f"{origin}/page", credentials),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_through_a_proxy_the_guard_still_refuses_private_targets(
    proxy: str, origin: str, engine: str
) -> None:
    """The proxy itself may sit on a private address (the operator chose it); the pages
    fetched through it may not, unless allowed: a loopback target never reaches the
    proxy, a public one is fetched through it."""
    _Proxy.seen.clear()
    config = FetchConfig(per_host_delay=0, retries=0, transport=engine, proxy=proxy)

    async def go(url: str) -> FetchResult:
        async with Fetcher(config) as fetcher:
            return await fetcher.fetch(FetchRequest(url, obey_robots=False))

    refused = asyncio.run(go(f"{origin}/page"))
    assert refused.problem is not None
    assert refused.problem.startswith("refused: 127.0.0.1 resolves to non-public address")
    assert _Proxy.seen == []
    public = asyncio.run(go(f"http://{_PUBLIC}/page"))
    assert public.ok and public.body == b"<p>from afar</p>"
    assert _Proxy.seen == [(f"http://{_PUBLIC}/page", None)]
