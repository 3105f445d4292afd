"""`monitor export --wacz`: a WACZ 1.1 package that webrecorder's own validator accepts, and
replay through a real replay tool: pywb, loaded with the exported WARC and with the WACZ,
gives back at each version's time the very bytes whose SHA-256 the archive kept."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import monitor_cli
from tests.evidence import FIRST, SECOND, THIRD, PageSite, archive_three_versions, page_site


@pytest.fixture(scope="module")
def site() -> Iterator[PageSite]:
    yield from page_site()


@pytest.fixture(scope="module")
def archive(site: PageSite, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return archive_three_versions(tmp_path_factory.mktemp("wacz-archive"), site)


def stored_captures(config: Path) -> list[dict[str, str]]:
    """Each version's response, as the archive holds it: URL, fetch time, body SHA-256."""
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        rows = db.execute(
            "SELECT v.seq, r.final_url, r.requested_at, r.body_sha256 FROM version v "
            "JOIN response r ON r.id = v.response_id ORDER BY v.seq"
        ).fetchall()
    return [{"seq": s, "url": u, "at": a, "sha256": h} for s, u, a, h in rows]


def pywb(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pywb.manager.manager import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def wayback(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """pywb's replay server (its `wayback` app, as a separate process) on 127.0.0.1 over
    the collections under the directory it yields, with its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path / "pywb"
    root.mkdir()
    yield root, f"http://127.0.0.1:{port}"


def start_wayback(root: Path, base: str) -> subprocess.Popen[bytes]:
    port = base.rsplit(":", 1)[1]
    code = "import sys; from pywb.apps.cli import wayback; sys.exit(wayback())"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "-b", "127.0.0.1", "-p", port],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=0.5):
                return process
        except OSError:
            if process.poll() is not None:
                raise AssertionError(
                    process.stderr.read().decode() if process.stderr else ""
                ) from None
            time.sleep(0.2)
    process.kill()
    raise AssertionError("pywb did not start in 60 s")


def replay(base: str, collection: str, at: str, url: str) -> bytes:
    """The capture of `url` closest to `at`, through pywb's replay, unmodified (id_)."""
    stamp = "".join(ch for ch in at if ch.isdigit())[:14]
    with urllib.request.urlopen(f"{base}/{collection}/{stamp}id_/{url}", timeout=30) as answer:
        assert answer.status == 200
        return answer.read()


@pytest.mark.process
def test_wacz_layout_and_webrecorders_validator(archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.wacz"
    result = monitor_cli(archive, "export", "--wacz", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 3 versions" in result.stdout
    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        manifest = json.loads(package.read("datapackage.json"))
        digest = json.loads(package.read("datapackage-digest.json"))
        pages = [json.loads(line) for line in package.read("pages/pages.jsonl").splitlines()]
        for entry in manifest["resources"]:
            data = package.read(entry["path"])
            assert entry["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
            assert entry["bytes"] == len(data)
        assert digest["hash"] == (
            "sha256:" + hashlib.sha256(package.read("datapackage.json")).hexdigest()
        )
    assert {"archive/monitor.warc.gz", "indexes/index.cdx.gz", "pages/pages.jsonl"} <= names
    assert {e["path"] for e in manifest["resources"]} == names - {
        "datapackage.json",
        "datapackage-digest.json",
    }
    assert manifest["wacz_version"].startswith("1.1")
    assert pages[0]["format"] == "json-pages-1.0"
    captures = stored_captures(archive)
    assert [(p["url"], p["ts"][:19]) for p in pages[1:]] == [
        (c["url"], c["at"][:19]) for c in captures
    ]
    validated = subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "the passed WACZ is valid" in validated.stdout

    checked = monitor_cli(None, "verify", "--export", str(out))
    assert checked.returncode == 0, checked.stdout
    assert "verified 3 versions" in checked.stdout

    # One byte of the WARC inside changed, the package re-zipped: named, and exit 1.
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(out) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "pages/pages.jsonl":
                data = data.replace(b"Tajikistan", b"Tajikistam", 1)
            target.writestr(item, data)
    checked = monitor_cli(None, "verify", "--export", str(tampered))
    assert checked.returncode == 1
    assert "pages/pages.jsonl: does not match its hash in datapackage.json" in checked.stdout


@pytest.mark.process
def test_pywb_replays_each_version_from_the_warc_and_the_wacz(
    archive: Path, tmp_path: Path, wayback: tuple[Path, str]
) -> None:
    root, base = wayback
    warc, wacz = tmp_path / "export.warc.gz", tmp_path / "export.wacz"
    for flag, target in (("--warc", warc), ("--wacz", wacz)):
        result = monitor_cli(archive, "export", flag, str(target))
        assert result.returncode == 0, result.stderr
    pywb(root, "init", "fromwarc")
    pywb(root, "add", "fromwarc", str(warc))
    pywb(root, "init", "fromwacz")
    pywb(root, "add", "--unpack-wacz", "fromwacz", str(wacz))
    captures = stored_captures(archive)
    assert len(captures) == 3 and len({c["sha256"] for c in captures}) == 3
    server = start_wayback(root, base)
    try:
        for collection in ("fromwarc", "fromwacz"):
            for capture, text in zip(captures, (FIRST, SECOND, THIRD), strict=True):
                body = replay(base, collection, capture["at"], capture["url"])
                assert hashlib.sha256(body).hexdigest() == capture["sha256"], collection
                assert text.encode() in body
        # A URL the archive never saw is not made up.
        with pytest.raises(urllib.error.HTTPError) as missing:
            replay(base, "fromwacz", captures[0]["at"], captures[0]["url"] + "-nope")
        assert missing.value.code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
