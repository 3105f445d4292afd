"""Memento (RFC 7089) in the web UI, read as a Memento client reads it: the TimeMap parsed
with pywb's link-format parser, every memento followed, the TimeGate asked for moments
before, between and after the versions; the snapshot page carries Memento headers and
shows the version's trusted timestamp, whose token OpenSSL verifies."""

from __future__ import annotations

import hashlib
import math
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pywb.utils.memento import MementoUtils

from tests.evidence import FIRST, SECOND, THIRD, PageSite, archive_three_versions, page_site
from tests.tsa import LocalTSA, serve_tsa
from tests.webui import serving


@pytest.fixture(scope="module")
def site() -> Iterator[PageSite]:
    yield from page_site()


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTSA]:
    yield from serve_tsa(tmp_path_factory.mktemp("tsa"))


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse(stored: str) -> datetime:
    return datetime.fromisoformat(stored.replace("Z", "+00:00"))


@pytest.mark.process
def test_timemap_timegate_and_memento_headers(
    tmp_path: Path, site: PageSite, tsa: LocalTSA
) -> None:
    archive = f'tsa_url = "{tsa.url}"\ntsa_ca_file = "{tsa.ca_file}"'
    config = archive_three_versions(tmp_path, site, archive, gap=4.1)
    config.write_text(config.read_text() + '\n[server]\npublic = true\nlisten = "127.0.0.1:0"\n')
    with sqlite3.connect(tmp_path / "store" / "index.sqlite") as db:
        captures = db.execute(
            "SELECT v.seq, r.requested_at, r.body_sha256 FROM version v "
            "JOIN response r ON r.id = v.response_id ORDER BY v.seq"
        ).fetchall()
        # Each check timestamped its own version (one batch each); version 2's batch:
        [(gen_time, digest)] = db.execute(
            "SELECT b.gen_time, b.digest FROM timestamp_batch b JOIN version_timestamp t "
            "ON t.batch_id = b.id JOIN version v ON v.id = t.version_id WHERE v.seq = 2"
        ).fetchall()
    url = site.page_url("1")
    with serving(config) as base, httpx.Client(base_url=base, timeout=30) as client:
        answer = client.get(f"/timemap/link/{url}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/link-format")
        timemap = MementoUtils.parse_links(answer.text, def_name="self")
        assert timemap["original"]["url"] == url
        assert timemap["timegate"]["url"] == f"{base}/timegate/{url}"
        assert timemap["self"]["type"] == "application/link-format"
        assert timemap["timemap"]["type"] == "application/json"  # the same, as JSON
        mementos = timemap["mementos"]
        assert [m["datetime"] for m in mementos] == [http_date(parse(c[1])) for c in captures]
        assert [m["rel"] for m in mementos] == ["first memento", "memento", "last memento"]
        # Each memento: the body as archived, with its Memento-Datetime and original.
        for memento, capture, text in zip(mementos, captures, (FIRST, SECOND, THIRD), strict=True):
            got = client.get(memento["url"])
            assert got.status_code == 200
            assert hashlib.sha256(got.content).hexdigest() == capture[2]
            assert text.encode() in got.content
            assert got.headers["memento-datetime"] == memento["datetime"]
            links = MementoUtils.parse_links(got.headers["link"])
            assert links["original"]["url"] == url
            assert links["timegate"]["url"] == f"{base}/timegate/{url}"
        as_json = client.get(f"/timemap/json/{url}").json()
        assert [m["uri"] for m in as_json["mementos"]["list"]] == [m["url"] for m in mementos]
        assert as_json["original_uri"] == url

        # TimeGate: a moment between versions 1 and 2, nearer 2, gives 1 (what the page
        # said then); before all, the first; after all, or no Accept-Datetime, the last.
        first, second = parse(captures[0][1]), parse(captures[1][1])
        # A whole second (Accept-Datetime's precision) before version 2's: versions are
        # 4.1 s apart or more, so it is nearer 2 wherever in its second 2 fell.
        between = datetime.fromtimestamp(math.floor(second.timestamp()) - 1, UTC)
        assert first < between < second and second - between < between - first
        for moment, expected in (
            (between, 0),
            (first - timedelta(days=1), 0),
            (second + timedelta(seconds=1), 1),
            (parse(captures[2][1]) + timedelta(days=1), 2),
            (None, 2),
        ):
            headers = {"Accept-Datetime": http_date(moment)} if moment else {}
            gate = client.get(f"/timegate/{url}", headers=headers)
            assert gate.status_code == 302, (moment, gate.text)
            assert gate.headers["location"] == mementos[expected]["url"], moment
            assert gate.headers["vary"] == "accept-datetime"
            assert MementoUtils.parse_links(gate.headers["link"])["original"]["url"] == url
        bad = client.get(f"/timegate/{url}", headers={"Accept-Datetime": "yesterday"})
        assert bad.status_code == 400
        assert client.get(f"/timemap/link/{url}-never-seen").status_code == 404

        # The snapshot page: Memento headers, and the trusted timestamp with its token.
        page = client.get("/watch/statement-1/versions/2", params={"key": "page"})
        assert page.status_code == 200
        assert page.headers["memento-datetime"] == mementos[1]["datetime"]
        assert "Trusted timestamp" in page.text and gen_time in page.text
        token = client.get("/watch/statement-1/versions/2/timestamp.tst", params={"key": "page"})
        manifest = client.get(
            "/watch/statement-1/versions/2/timestamp-manifest.json", params={"key": "page"}
        )
        assert hashlib.sha256(manifest.content).hexdigest() == digest
    (tmp_path / "token.tst").write_bytes(token.content)
    (tmp_path / "manifest.json").write_bytes(manifest.content)
    verified = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-in",
            str(tmp_path / "token.tst"),
            "-token_in",
            "-data",
            str(tmp_path / "manifest.json"),
            "-CAfile",
            str(tsa.ca_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
