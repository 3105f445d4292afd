"""Trusted timestamps (RFC 3161) against a real TSA made for the test run (OpenSSL's
`openssl ts` with a throw-away CA, over HTTP on 127.0.0.1): versions are timestamped in
batches, a TSA that is down or a forger's answer leaves them waiting, tokens travel with
every export, `openssl ts -verify` accepts what we keep, and `monitor verify --timestamps`
rejects a forged token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sqlite3
import subprocess
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import timestamps as tsp
from monitor.config import ArchiveConfig
from monitor.stamper import Stamper, verify_timestamps
from monitor.store import CheckRecord, NewVersion, ResponseRecord, Store
from tests.conftest import monitor_cli
from tests.evidence import FIRST, SECOND, THIRD, PageSite, check_once, page_site, site_config
from tests.postgres import Backend
from tests.tsa import LocalTSA, serve_tsa


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    yield from serve_tsa(tmp_path_factory.mktemp("tsa"))


@pytest.fixture
def site() -> Iterator[PageSite]:
    yield from page_site()


def rows(config: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        return db.execute(sql).fetchall()


def ask(tsa: LocalTSA, digest: bytes) -> bytes:
    query, _nonce = tsp.make_request(digest)
    request = urllib.request.Request(tsa.url, data=query, headers={"Content-Type": tsp.QUERY_TYPE})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return tsp.token_from_reply(answer.read())


def openssl_verify(token: bytes, digest: str, ca_file: Path, tmp_path: Path) -> str:
    path = tmp_path / "token.der"
    path.write_bytes(token)
    result = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-digest",
            digest,
            "-in",
            str(path),
            "-token_in",
            "-CAfile",
            str(ca_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


@pytest.mark.slow
def test_versions_are_timestamped_in_batches_and_a_forgery_is_rejected(
    tmp_path: Path, site: PageSite, tsa: LocalTSA
) -> None:
    archive = f'tsa_url = "{tsa.url}"\ntsa_ca_file = "{tsa.ca_file}"'
    site.set("1", FIRST)
    config = site_config(tmp_path, site, ("1",), archive)

    # The TSA is down: the version is archived all the same, and waits.
    tsa.mode, before = "down", tsa.requests
    check_once(config)
    assert tsa.requests == before + 1
    assert rows(config, "SELECT count(*) FROM version") == [(1,)]
    assert rows(config, "SELECT count(*) FROM timestamp_batch") == [(0,)]
    waiting = monitor_cli(config, "verify", "--timestamps")
    assert waiting.returncode == 0, waiting.stdout
    assert "0 trusted timestamps covering 0 versions: 0 damaged, 1 versions waiting" in (
        waiting.stdout
    )

    # Back up: the waiting version and the new one go in one batch, one request.
    tsa.mode, before = "ok", tsa.requests
    site.set("1", SECOND)
    check_once(config)
    assert tsa.requests == before + 1
    [(batch_id, manifest, digest, token, gen_time)] = rows(
        config, "SELECT id, manifest, digest, token, gen_time FROM timestamp_batch"
    )
    assert hashlib.sha256(manifest.encode()).hexdigest() == digest
    covered = rows(
        config,
        "SELECT v.seq, v.chain, t.head, t.batch_id FROM version v "
        "JOIN version_timestamp t ON t.version_id = v.id ORDER BY v.seq",
    )
    [(seq1, chain1, head1, b1), (seq2, chain2, head2, b2)] = covered
    assert (seq1, seq2) == (1, 2)
    assert b1 == b2 == batch_id
    # Version 2 is its statement's head in the batch; version 1 is covered through it.
    assert head1 == head2 == chain2 != chain1
    assert json.loads(manifest)["statements"] == {"statement-1 page": chain2}
    # The token is genuine RFC 3161: OpenSSL itself accepts it for this digest and CA.
    assert "Verification: OK" in openssl_verify(token, digest, tsa.ca_file, tmp_path)
    verified = monitor_cli(config, "verify", "--timestamps")
    assert verified.returncode == 0, verified.stdout
    assert "1 trusted timestamps covering 2 versions: 0 damaged, 0 versions waiting" in (
        verified.stdout
    )
    assert f"timestamp batch {batch_id}: {gen_time} by CN=Trusted TSA,O=Test" in verified.stdout

    # A forger's TSA (real RFC 3161, another CA): its answer is refused, the version waits.
    tsa.mode = "rogue"
    site.set("1", THIRD)
    check_once(config)
    assert rows(config, "SELECT count(*) FROM timestamp_batch") == [(1,)]
    assert "1 versions waiting" in monitor_cli(config, "verify", "--timestamps").stdout

    # Exports carry the tokens; each checks on its own, against the CA.
    exports = {
        "jsonl": tmp_path / "export.jsonl",
        "warc": tmp_path / "export.warc.gz",
        "wacz": tmp_path / "export.wacz",
    }
    for kind, path in exports.items():
        flag = ("--format", "jsonl", "--output") if kind == "jsonl" else (f"--{kind}",)
        assert monitor_cli(config, "export", *flag, str(path)).returncode == 0
        checked = monitor_cli(
            None, "verify", "--export", str(path), "--timestamps", "--tsa-ca-file", str(tsa.ca_file)
        )
        assert checked.returncode == 0, kind + checked.stdout
        assert "1 trusted timestamps covering 2 versions: 0 damaged" in checked.stdout, kind
    lines = [json.loads(line) for line in exports["jsonl"].read_text().splitlines()]
    assert [line.get("timestamp") for line in lines[:3]] == [
        {"batch": batch_id, "head": chain2},
        {"batch": batch_id, "head": chain2},
        None,
    ]
    [record] = [line for line in lines if line.get("type") == "timestamp-batch"]
    assert base64.b64decode(record["token"]) == token and record["manifest"] == manifest
    with zipfile.ZipFile(exports["wacz"]) as package:
        assert b"urn:monitor:timestamp-batch:1" in _gunzip(package.read("archive/monitor.warc.gz"))

    # The stored token swapped for the forger's token over the same digest: rejected.
    forged = ask(tsa, bytes.fromhex(digest))
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        db.execute("UPDATE timestamp_batch SET token = ?", (forged,))
    rejected = monitor_cli(config, "verify", "--timestamps")
    assert rejected.returncode == 1
    assert (
        f"DAMAGE: timestamp batch {batch_id}: token rejected: the signer (CN=Rogue TSA,O=Test) "
        "does not chain to the trusted TSA CA" in rejected.stdout
    )
    assert "version statement-1" in rejected.stdout  # the versions it was to cover, named
    assert "Verification: OK" not in openssl_verify(forged, digest, tsa.ca_file, tmp_path)
    # In an export, too: a forged token is rejected there.
    assert monitor_cli(config, "export", "--warc", str(exports["warc"])).returncode == 0
    checked = monitor_cli(
        None, "verify", "--export", str(exports["warc"]), "--timestamps",
        "--tsa-ca-file", str(tsa.ca_file),
    )  # fmt: skip
    assert checked.returncode == 1 and "does not chain to the trusted TSA CA" in checked.stdout

    # A genuine token whose manifest was edited (a version's head swapped) no longer holds.
    tsa.mode = "ok"
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        db.execute("UPDATE timestamp_batch SET token = ?", (token,))
        db.execute(
            "UPDATE timestamp_batch SET manifest = replace(manifest, ?, ?)", (chain2, chain1)
        )
    edited = monitor_cli(config, "verify", "--timestamps")
    assert edited.returncode == 1
    assert "its manifest does not match its digest (altered)" in edited.stdout


def _gunzip(data: bytes) -> bytes:
    import gzip
    import io

    out = b""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        out = stream.read()
    return out


@pytest.mark.slow
def test_the_daemons_stamper_retries_until_the_tsa_answers(
    tmp_path: Path, site: PageSite, tsa: LocalTSA
) -> None:
    site.set("1", FIRST)
    config = site_config(tmp_path, site, ("1",))
    check_once(config)  # no [archive] tsa_url yet: a version that was never timestamped
    tsa.mode = "down"

    async def scenario() -> int:
        with Store(tmp_path / "store") as store:
            settings = ArchiveConfig(tsa_url=tsa.url, tsa_ca_file=tsa.ca_file, tsa_interval=1.0)
            task = asyncio.ensure_future(Stamper(store, settings).run())
            start = tsa.requests
            deadline = time.monotonic() + 20
            while tsa.requests < start + 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert tsa.requests >= start + 2  # tried, and tried again a second later
            assert rows(config, "SELECT count(*) FROM version_timestamp") == [(0,)]
            tsa.mode = "ok"
            while time.monotonic() < deadline:
                if rows(config, "SELECT count(*) FROM version_timestamp") == [(1,)]:
                    break
                await asyncio.sleep(0.1)
            task.cancel()
            return rows(config, "SELECT count(*) FROM version_timestamp")[0][0]

    assert asyncio.run(scenario()) == 1
    verified = monitor_cli(config, "verify", "--timestamps", "--tsa-ca-file", str(tsa.ca_file))
    assert verified.returncode == 0 and "covering 1 versions" in verified.stdout


def test_batches_on_either_backend(backend: Backend, tsa: LocalTSA) -> None:
    """The stamper and `verify --timestamps`' checks on SQLite and PostgreSQL alike: two
    statements with two versions each, one batch; a genTime edited in the table is named."""
    tsa.mode = "ok"
    with backend.store() as store:
        store.sync_watch("w", "https://gov.example/", "generic")
        for n, at in enumerate(("2026-11-25T10:00:00.000Z", "2026-11-25T11:00:00.000Z")):
            body = f"<p>page {n}</p>".encode()
            store.commit_check(
                CheckRecord("w", at, 5, "changed", 200),
                store.state("w"),
                response=ResponseRecord(
                    requested_at=at,
                    method="GET",
                    url="https://gov.example/",
                    final_url="https://gov.example/",
                    status=200,
                    http_version="HTTP/1.1",
                    request_headers={},
                    request_body=None,
                    headers=[("content-type", "text/html")],
                    redirects=[],
                    body=body,
                ),
                versions=[
                    NewVersion(key, "https://gov.example/", "t", None, "en", kind, text)
                    for key in ("a", "b")
                    for kind, text in [("baseline" if n == 0 else "edited", body)]
                ],
            )
        settings = ArchiveConfig(tsa_url=tsa.url, tsa_ca_file=tsa.ca_file)
        result = asyncio.run(Stamper(store, settings).stamp_once())
        assert (result.versions, result.waiting, result.error) == (4, 0, None)
        assert asyncio.run(Stamper(store, settings).stamp_once()).versions == 0  # nothing new
        trusted = tsp.load_ca_file(tsa.ca_file)
        report, waiting = verify_timestamps(store, trusted)
        assert (report.batches, report.versions, report.damage, waiting) == (1, 4, [], 0)
    backend.tamper("UPDATE timestamp_batch SET gen_time = '2020-01-01T00:00:00.000Z'")
    with backend.store() as store:
        report, _waiting = verify_timestamps(store, trusted)
    assert report.damage[0].startswith("timestamp batch 1: recorded as of 2020-01-01")
    assert len(report.damage) == 1 + 4  # the batch, and each version it was to cover
