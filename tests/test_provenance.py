"""TLS provenance (issue 23, item 3): each stored response records the certificate chain its
server presented and the protocol negotiated; the archive keeps each chain once; exports
(WARC metadata, JSON lines) and the web UI show it.

The server is real HTTPS on 127.0.0.1 with a throw-away CA, an intermediate and a leaf made
here; every engine is asked, and what it recorded is compared with what the server sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509
from warcio.archiveiterator import ArchiveIterator

from monitor.config import FetchConfig
from monitor.fetch import Fetcher, FetchRequest, FetchResult
from monitor.tls import NO_TLS, browser_info
from tests.conftest import CONSOLE, POLL, generic_watch, local_config, monitor_cli
from tests.evidence import FIRST, SECOND, PageSite
from tests.webui import serving

ENGINES = ("curl", "httpx", "aiohttp")


@dataclass
class TlsSite:
    """Statement pages over HTTPS (with ETag and 304), and what the server presents."""

    url: str
    ca_file: Path
    chain: list[bytes]  # DER, leaf first, as the server sends it
    pages: PageSite
    server: Any = None
    plain_url: str = ""
    requests: list[str] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return int(self.server.connections)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a second request may reuse the connection
    site: TlsSite

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.site.requests.append(self.path)
        body = self.site.pages.body(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    """Counts connections; each one's TLS handshake runs in its own handler thread."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None):
        super().__init__(("127.0.0.1", 0), handler)
        self.tls = tls
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        self.connections += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


def _serve(server: _Server) -> str:
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    scheme = "https" if server.tls else "http"
    return f"{scheme}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsSite]:
    folder = tmp_path_factory.mktemp("tls")
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    root.cert_pem.write_to_path(str(folder / "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(tls)  # the leaf and the intermediate, as a real server sends them
    chain = [ssl.PEM_cert_to_DER_cert(pem.bytes().decode()) for pem in leaf.cert_chain_pems]
    assert len(chain) == 2
    pages = PageSite()
    state = TlsSite(url="", ca_file=folder / "ca.pem", chain=chain, pages=pages)
    handler = type("Handler", (_Handler,), {"site": state})
    secure, plain = _Server(handler, tls), _Server(handler, None)
    state.url, state.plain_url, state.server = _serve(secure), _serve(plain), secure
    pages.set("1", FIRST)
    yield state
    for server in (secure, plain):
        server.shutdown()
        server.server_close()


def _fetch_twice(url: str, engine: str, ca_file: Path) -> tuple[FetchResult, FetchResult]:
    """A full fetch, then a conditional one with its ETag (a 304), in one Fetcher."""
    config = FetchConfig(
        allow_private=True, per_host_delay=0, retries=0, transport=engine, ca_bundle=ca_file
    )

    async def go() -> tuple[FetchResult, FetchResult]:
        async with Fetcher(config) as fetcher:
            first = await fetcher.fetch(FetchRequest(url, obey_robots=False))
            etag = first.header("etag") or ""
            again = FetchRequest(url, headers={"If-None-Match": etag}, obey_robots=False)
            return first, await fetcher.fetch(again)

    return asyncio.run(go())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_records_the_chain_as_presented_and_the_protocol(
    site: TlsSite, engine: str
) -> None:
    before = site.connections
    first, second = _fetch_twice(f"{site.url}/statement/1", engine, site.ca_file)
    assert first.status == 200 and second.status == 304, (first.problem, second.problem)
    tls = first.tls
    assert tls is not None and tls.encrypted
    # Byte for byte what the server sent: the leaf, then the intermediate (not the root).
    assert [_sha256(der) for der in tls.chain] == [_sha256(der) for der in site.chain]
    assert tls.complete
    assert tls.chain_sha256 == _sha256(b"".join(site.chain))
    assert tls.protocol == "TLSv1.3" and tls.cipher and tls.cipher.startswith("TLS_")
    if engine == "curl":
        assert "CERTINFO" in tls.how and "handshake of our own" in tls.how
    else:
        assert "of the connection itself" in tls.how
    # The 304 came over the same kept-alive connection: its provenance is that
    # connection's, taken as it was, with no new handshake of any kind (libcurl's engine
    # made one of its own for the protocol: once per host and chain).
    assert second.tls is tls
    assert site.connections - before == (2 if engine == "curl" else 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_http_records_no_tls(site: TlsSite, engine: str) -> None:
    first, _second = _fetch_twice(f"{site.plain_url}/statement/1", engine, site.ca_file)
    assert first.status == 200
    assert first.tls is NO_TLS and first.tls.facts() == {"encrypted": False}


def _config(directory: Path, site: TlsSite, engine: str, watches: dict[str, str]) -> Path:
    return local_config(
        directory,
        "".join(
            generic_watch(name, url, 'language = "en"\nrobots = false\nchannels = ["console"]')
            for name, url in watches.items()
        ),
        fetch=f'''timeout = "10s"
full_fetch_every = 1
transport = "{engine}"
ca_bundle = "{site.ca_file}"''',
        sections='[server]\npublic = true\nlisten = "127.0.0.1:0"\n' + CONSOLE,
    )


def _check(config: Path) -> None:
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stdout + result.stderr


def _rows(config: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        return db.execute(sql).fetchall()


def _expected_certificates(site: TlsSite) -> list[dict[str, str]]:
    """What the server's certificates say, read independently of monitor."""
    expected = []
    for der in site.chain:
        certificate = x509.load_der_x509_certificate(der)
        expected.append(
            {
                "subject": certificate.subject.rfc4514_string(),
                "issuer": certificate.issuer.rfc4514_string(),
                "serial": format(certificate.serial_number, "x"),
                "sha256": _sha256(der),
                "not_after": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
    return expected


def _same_certificates(found: list[dict[str, Any]], site: TlsSite) -> None:
    expected = _expected_certificates(site)
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        assert {k: got[k] for k in ("subject", "issuer", "serial", "sha256")} == {
            k: want[k] for k in ("subject", "issuer", "serial", "sha256")
        }
        assert got["not_after"].startswith(want["not_after"])


def _pems(text: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + end + "\n" for part in text.split(end) if part.strip()]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, site: TlsSite) -> Path:
    """The default engine through the real `monitor check`: an HTTPS statement archived
    twice (baseline and an edit) and a plain-HTTP one once."""
    site.pages.set("secure", FIRST)
    site.pages.set("plain", FIRST)
    watches = {
        "secure": f"{site.url}/statement/secure",
        "plain": f"{site.plain_url}/statement/plain",
    }
    config = _config(tmp_path_factory.mktemp("archive"), site, "curl", watches)
    _check(config)
    site.pages.set("secure", SECOND)
    _check(config)
    return config


def _stored_once(config: Path, site: TlsSite, responses: int) -> None:
    stored = _rows(
        config,
        "SELECT r.tls, r.tls_chain FROM response r WHERE r.watch_id != 'plain' ORDER BY r.id",
    )
    assert len(stored) == responses
    chain_sha256 = _sha256(b"".join(site.chain))
    for tls, chain in stored:
        assert chain == chain_sha256
        facts = json.loads(tls)
        assert facts["encrypted"] and facts["protocol"] == "TLSv1.3" and facts["chain_complete"]
    [(digest, pem, certificates)] = _rows(config, "SELECT sha256, pem, certificates FROM tls_chain")
    assert digest == chain_sha256
    assert [ssl.PEM_cert_to_DER_cert(p) for p in _pems(pem)] == site.chain
    _same_certificates(json.loads(certificates), site)


def test_each_stored_response_names_its_chain_stored_once(archive: Path, site: TlsSite) -> None:
    _stored_once(archive, site, responses=2)  # two versions, two responses, one chain


def test_the_httpx_engine_stores_the_same(tmp_path: Path, site: TlsSite) -> None:
    site.pages.set("httpx", FIRST)
    config = _config(tmp_path, site, "httpx", {"secure": f"{site.url}/statement/httpx"})
    _check(config)
    _stored_once(config, site, responses=1)


def test_a_plain_http_response_is_stored_as_no_tls(archive: Path) -> None:
    assert _rows(archive, "SELECT tls, tls_chain FROM response WHERE watch_id = 'plain'") == [
        ('{"encrypted": false}', None)
    ]


@pytest.mark.slow
def test_exports_and_the_web_ui_show_it(tmp_path: Path, archive: Path, site: TlsSite) -> None:
    """WARC (valid; a metadata record per response, bound to it), JSON lines, and the
    snapshot's Response tab."""
    config = archive
    chain_sha256 = _sha256(b"".join(site.chain))
    warc = tmp_path / "export.warc.gz"
    assert monitor_cli(config, "export", "--warc", str(warc), "--watch", "secure").returncode == 0
    checked = subprocess.run(
        [sys.executable, "-m", "warcio.cli", "check", "-v", str(warc)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with open(warc, "rb") as stream:
        records = [
            (r.rec_type, dict(r.rec_headers.headers), r.content_stream().read())
            for r in ArchiveIterator(stream)
        ]
    responses = [h["WARC-Record-ID"] for kind, h, _ in records if kind == "response"]
    provenance = [
        (h, json.loads(body))
        for kind, h, body in records
        if kind == "metadata" and b'"tls-provenance"' in body
    ]
    assert len(responses) == len(provenance) == 2
    for response_id, (headers, payload) in zip(responses, provenance, strict=True):
        assert headers["WARC-Refers-To"] == headers["WARC-Concurrent-To"] == response_id
        assert headers["Content-Type"] == "application/json"
        assert headers["WARC-Target-URI"].startswith("urn:monitor:tls-provenance:")
        assert payload["url"] == f"{site.url}/statement/secure"
        tls = payload["tls"]
        assert tls["protocol"] == "TLSv1.3" and tls["chain"]["sha256"] == chain_sha256
        assert tls["chain"]["complete"] is True
        _same_certificates(tls["chain"]["certificates"], site)
        presented = [ssl.PEM_cert_to_DER_cert(c["pem"]) for c in tls["chain"]["certificates"]]
        assert presented == site.chain
    verified = monitor_cli(None, "verify", "--export", str(warc))
    assert verified.returncode == 0, verified.stdout + verified.stderr

    jsonl = tmp_path / "export.jsonl"
    exported = monitor_cli(config, "export", "--format", "jsonl", "--output", str(jsonl))
    assert exported.returncode == 0
    lines = [json.loads(x) for x in jsonl.read_text().splitlines() if '"chain-heads"' not in x]
    shown = {line["watch"]: line["response"]["tls"] for line in lines}
    assert shown["secure"] == provenance[-1][1]["tls"]
    assert shown["plain"] == {"encrypted": False, "chain": None}
    assert all("tls_chain" not in line["response"] for line in lines)

    snapshot = "/watch/secure/versions/1"
    with serving(config) as base, httpx.Client(base_url=base, timeout=30) as client:
        text = client.get(snapshot, params={"tab": "headers"}).text
        assert "Connection (TLS)" in text and "TLSv1.3" in text
        for certificate in _expected_certificates(site):
            for fact in ("subject", "issuer", "serial", "sha256"):
                assert certificate[fact] in text
        assert chain_sha256 in text
        pem = client.get(snapshot + "/tls-chain.pem")
        assert pem.status_code == 200
        assert [ssl.PEM_cert_to_DER_cert(p) for p in _pems(pem.text)] == site.chain
        # As a third party would check it: OpenSSL, the downloaded chain, their own root.
        downloaded = tmp_path / "chain.pem"
        downloaded.write_bytes(pem.content)
        verify = ["openssl", "verify", "-CAfile", str(site.ca_file), "-untrusted"]
        checked = subprocess.run(
            [*verify, str(downloaded), str(downloaded)], capture_output=True, text=True
        )
        assert checked.returncode == 0 and "OK" in checked.stdout, checked.stderr
        assert client.get(snapshot + "/headers.json").json()["tls"]["chain"]["sha256"] == (
            chain_sha256
        )
        # The API's list of versions: every response's chain (read once for the list).
        [statement] = client.get("/api/v1/watches/secure/statements").json()["statements"]
        listed = client.get("/api/v1/watches/secure/versions", params={"key": statement["key"]})
        tls = [v["response"]["tls"] for v in listed.json()["versions"]]
        assert tls and all(t["chain"]["sha256"] == chain_sha256 for t in tls)
        assert all(t["chain"]["complete"] is True and t["protocol"] == "TLSv1.3" for t in tls)
        plain = client.get("/watch/plain/versions/1", params={"tab": "headers"}).text
        assert "Plain HTTP: no TLS." in plain
        assert client.get("/watch/plain/versions/1/tls-chain.pem").status_code == 404
        # A response stored before TLS provenance was kept says so, rather than "no TLS".
        with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
            db.execute("UPDATE response SET tls = NULL, tls_chain = NULL WHERE watch_id = 'plain'")
        plain = client.get("/watch/plain/versions/1", params={"tab": "headers"}).text
        assert "Not recorded" in plain and "Plain HTTP" not in plain


def test_the_browser_engine_records_what_playwright_gives() -> None:
    """Chromium does not trust the test's CA (verification is never switched off), so the
    browser's account is checked as Playwright hands it over: `securityDetails`."""
    details = {
        "protocol": "TLS 1.3",
        "subjectName": "www.gov.kz",
        "issuer": "GlobalSign GCC R3 DV TLS CA 2020",
        "validFrom": 1735689600,
        "validTo": 1767225599.5,
    }
    tls = browser_info(details)
    assert tls.encrypted and tls.protocol == "TLS 1.3" and tls.chain == ()
    assert tls.facts()["details"] == {
        "subject": "www.gov.kz",
        "issuer": "GlobalSign GCC R3 DV TLS CA 2020",
        "not_before": "2025-01-01T00:00:00Z",
        "not_after": "2025-12-31T23:59:59Z",
    }
    assert "no certificate bytes" in tls.how
    assert browser_info(None).protocol is None and browser_info(None).encrypted
