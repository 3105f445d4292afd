"""The browser engine in real headless Chromium: JS-only pages and gov.kz's API headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitor import browser as browser_module
from monitor.browser import BrowserEngine
from monitor.config import FetchConfig
from monitor.fetch import FetchRequest, FetchResult
from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import (
    Receiver,
    generic_watch,
    local_config,
    monitor_cli,
    serve_on_loopback,
    write_config,
)

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])


# Every story here starts Playwright (and, but for one, Chromium).
pytestmark = pytest.mark.browser


def test_gov_kz_api_headers_are_captured_from_the_sites_own_scripts(tmp_path: Path) -> None:
    with ReplicaSite(require_tokens=True) as site:
        site.set_mode("graphql_off")  # only the REST API is left, and it wants hash/token
        config = write_config(tmp_path, site)
        result = monitor_cli(config, "check", "--once")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "mfa-en: changed (8 new versions" in result.stdout
        assert "captured API headers ['hash', 'token']" in result.stderr
        # The captured values are the page's own, replayed on the API request.
        assert site.api_hash not in result.stderr  # secrets are not logged
        db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
        [(headers,)] = db.execute("SELECT request_headers FROM response").fetchall()
        assert site.api_hash in headers and site.api_token in headers


def test_without_a_browser_the_refusal_is_explained(tmp_path: Path) -> None:
    with ReplicaSite(require_tokens=True) as site:
        site.set_mode("graphql_off")
        config = write_config(tmp_path, site)
        config.write_text(
            config.read_text().replace(
                'timeout = "10s"', 'timeout = "10s"\nbrowser_path = "/nonexistent/chromium"'
            )
        )
        result = monitor_cli(config, "check", "--once")
        assert result.returncode == 1
        assert "HTTP 401" in result.stdout
        assert "hash/token" in result.stdout


def test_a_javascript_only_page_is_rendered_by_the_browser_fetcher(tmp_path: Path) -> None:
    with ReplicaSite() as site:
        url = f"{site.url}/memleket/entities/mfa/press/news/details/{NEWEST['id']}?lang=en"
        config = local_config(tmp_path, generic_watch("spa", url, 'fetcher = "browser"'))
        # A plain HTTP client sees only the empty shell of the single-page app.
        plain = config.read_text().replace('fetcher = "browser"', "")
        (tmp_path / "plain.toml").write_text(plain.replace('id = "spa"', 'id = "plain"'))
        result = monitor_cli(tmp_path / "plain.toml", "check")
        assert result.returncode == 1 and "empty extraction" in result.stdout
        result = monitor_cli(config, "check")
        assert result.returncode == 0, result.stdout + result.stderr
        shown = monitor_cli(config, "show", "spa", "1")
        assert NEWEST["texts"]["en"]["title"] in shown.stdout
        assert "further assistance" in shown.stdout


def test_the_browser_obeys_the_ssrf_guard(tmp_path: Path) -> None:
    with ReplicaSite() as site:
        config = tmp_path / "monitor.toml"
        config.write_text(
            f"""
[store]
path = "{tmp_path / "store"}"
[[watch]]
id = "spa"
url = "{site.url}/memleket/entities/mfa/press/news?lang=en"
profile = "generic"
fetcher = "browser"
""",
            encoding="utf-8",
        )
        result = monitor_cli(config, "check")
        assert result.returncode == 1
        assert "non-public address 127.0.0.1" in result.stdout
        assert site.requests == []


def test_gov_kz_read_from_the_rendered_pages_continues_the_api_history(
    tmp_path: Path, receiver: Receiver
) -> None:
    # A ministry watched through the API, then (its API locked, say) through the pages a
    # browser renders: the same statements, keyed the same way, and no alert for the switch.
    discover = 'discover = true\ndiscover_schedule = ["10m"]'
    with ReplicaSite() as site:
        config = write_config(tmp_path, site, receiver, ("ru",), watch_extra=discover)
        api = monitor_cli(config, "check", "--once")
        assert api.returncode == 0, api.stdout + api.stderr
        browser = write_config(
            tmp_path, site, receiver, ("ru",), watch_extra=discover + '\nfetcher = "browser"'
        )
        site.clear_requests()
        rendered = monitor_cli(browser, "check", "--once")
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        # Pages only: the app's own script asked the API, monitor did not.
        asked = [path for method, path in site.requests if method == "GET"]
        assert any("/press/news/details/" in path for path in asked)
        assert receiver.posts == []
        db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM version GROUP BY kind").fetchall())
        assert kinds.get("baseline") == len(STATEMENTS)
        assert "published" not in kinds and "removed" not in kinds
        exported = monitor_cli(browser, "export", "--format", "jsonl")
        versions = [json.loads(line) for line in exported.stdout.splitlines()][:-1]  # no heads
        by_key: dict[str, list[dict[str, object]]] = {}
        for version in versions:
            by_key.setdefault(version["key"], []).append(version["statement"])
        assert len(by_key) == len(STATEMENTS)
        for statements in by_key.values():
            first, last = statements[0], statements[-1]
            assert (last["title"], last["paragraphs"]) == (first["title"], first["paragraphs"])


ADMIN_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nadmin secrets"


class Listener:
    """A loopback "internal admin": counts every TCP connection that reaches it (the
    connections themselves, not requests: a refused WebSocket must not even connect)."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.socket.accept()
                self.connections += 1
                with connection:
                    connection.settimeout(2)
                    with contextlib.suppress(OSError):
                        self.requests.append(connection.recv(65536).decode("latin-1"))
                        connection.sendall(ADMIN_ANSWER)

    def close(self) -> None:
        self.socket.close()


def hostile_site(target_port: int) -> type[BaseHTTPRequestHandler]:
    """A site whose pages try to reach 127.0.0.1:`target_port` every way a page can."""
    target = f"127.0.0.1:{target_port}"
    reach = f"""<html><head><title>waiting</title></head><body><p>Statement text.</p><script>
const ws = new WebSocket("ws://{target}/");
ws.onerror = () => {{ document.title = "websocket refused"; }};
ws.onopen = () => {{ document.title = "websocket open"; }};
fetch("http://{target}/internal-admin").catch(() => {{}});
new Worker(URL.createObjectURL(new Blob(
  ['new WebSocket("ws://{target}/worker"); fetch("http://{target}/from-worker")'],
  {{type: "text/javascript"}})));
navigator.serviceWorker && navigator.serviceWorker.register("/sw.js").catch(() => {{}});
</script></body></html>""".encode()

    class Hostile(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://{target}/internal-admin")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = reach if self.path == "/reach" else b"self.fetch('http://" + target.encode()
            self.send_response(200)
            self.send_header(
                "Content-Type", "text/html" if self.path == "/reach" else "text/javascript"
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Hostile


def test_every_connection_the_browser_makes_passes_the_ssrf_guard() -> None:
    """The site is allowed by host and port; its redirect to another loopback port, and
    its page's WebSocket, fetch and worker's WebSocket to that port, are refused and never
    reach the listener there. The same pages with private addresses allowed do reach it:
    the refusals are the guard's doing."""
    listener = Listener()

    async def fetch_all(config: FetchConfig, site: str) -> list[FetchResult]:
        async with BrowserEngine(config) as browser:
            return [await browser.fetch(FetchRequest(f"{site}{path}")) for path in paths]

    paths = ("/redirect", "/reach")
    try:
        for site in serve_on_loopback(hostile_site(listener.port)):
            guarded = FetchConfig(allow_hosts=[urlsplit(site).netloc], timeout=10)
            redirected, reached = asyncio.run(fetch_all(guarded, site))
            assert redirected.problem is not None
            assert redirected.problem.startswith("refused: 127.0.0.1 resolves to non-public")
            assert b"admin secrets" not in redirected.body
            assert reached.problem is None and reached.status == 200
            assert "Statement text." in reached.text()
            assert "<title>websocket refused</title>" in reached.text()
            assert listener.connections == 0
            # Without the guard, the same pages get through to the listener.
            open_config = FetchConfig(allow_private=True, timeout=10)
            redirected, _ = asyncio.run(fetch_all(open_config, site))
            assert b"admin secrets" in redirected.body
            seen = "\n".join(listener.requests)
            assert "GET /internal-admin" in seen and "GET /from-worker" in seen
            assert "GET / HTTP/1.1" in seen and "GET /worker HTTP/1.1" in seen  # WebSockets
            assert seen.lower().count("upgrade: websocket") == 2
    finally:
        listener.close()


def test_webrtc_sends_no_udp_past_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """WebRTC's STUN and TURN go out over UDP, which no proxy sees: a page naming a
    loopback STUN server must send it nothing. Chromium without our flags does."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(0.2)
    stun = f"127.0.0.1:{udp.getsockname()[1]}"
    page = f"""<html><body><p>Statement.</p><script>
const pc = new RTCPeerConnection({{iceServers: [{{urls: "stun:{stun}"}}]}});
pc.createDataChannel("x");
pc.createOffer().then((offer) => pc.setLocalDescription(offer));
</script></body></html>""".encode()

    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    async def fetch(url: str) -> FetchResult:
        async with BrowserEngine(FetchConfig(allow_private=True, timeout=10)) as browser:
            result = await browser.fetch(FetchRequest(url))
            await asyncio.sleep(1)  # ICE gathering goes on after the page settles
            return result

    def datagrams() -> int:
        count = 0
        with contextlib.suppress(TimeoutError):
            while udp.recv(2048):
                count += 1
        return count

    with udp:
        for site in serve_on_loopback(Page):
            assert asyncio.run(fetch(site)).problem is None
            assert datagrams() == 0
            # The same page in a Chromium without the WebRTC flags: the probe works.
            unguarded = [arg for arg in browser_module._LAUNCH_ARGS if "webrtc" not in arg]
            monkeypatch.setattr(browser_module, "_LAUNCH_ARGS", unguarded)
            asyncio.run(fetch(site))
            assert datagrams() > 0
