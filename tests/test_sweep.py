"""A first sweep's blobs: compressed by the worker that read the page, written in groups
made durable together (store/blobs.py), byte for byte what the archive's own path writes;
and a `monitor check` killed mid-sweep leaves no row without its blob."""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest
import zstandard

from monitor.replica import ReplicaSite
from monitor.store import Store
from monitor.store.blobs import blob_file, write_group
from tests.conftest import monitor_cli, quiet_monitor, wait_for, write_config

LANGUAGES = ("en", "ru", "kk")


def _blob_rows(store: Path) -> dict[str, tuple[int, int, str | None]]:
    with sqlite3.connect(store / "index.sqlite") as db:
        rows = db.execute("SELECT sha256, size, stored_size, media_type FROM blob").fetchall()
    return {sha256: (size, stored, media) for sha256, size, stored, media in rows}


def _read(path: Path) -> bytes:
    return zstandard.ZstdDecompressor().decompress(path.read_bytes())


def _temporary_files(store: Path) -> list[Path]:
    return list((store / "blobs").glob("*/*/.tmp-*"))


def test_a_sweep_through_the_workers_stores_what_the_archive_itself_would(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    """Every blob of a first sweep (`monitor check`: pages read and compressed in worker
    processes, files written in groups) is the file, and the row, that the archive's own
    one-blob-at-a-time path makes of the same bytes; versions name their statements by the
    hash of those bytes."""
    config = write_config(tmp_path, replica, languages=LANGUAGES)
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stderr + result.stdout
    for lang in LANGUAGES:
        assert f"mfa-{lang}: changed (8 new versions, 0 alerts)" in result.stdout
    swept = tmp_path / "store"
    rows = _blob_rows(swept)
    assert _temporary_files(swept) == []

    alone = tmp_path / "alone"
    with Store(str(alone)) as store:
        for sha256, (_size, _stored, media_type) in rows.items():
            data = _read(blob_file(swept / "blobs", sha256))
            assert hashlib.sha256(data).hexdigest() == sha256
            assert store.put_blob(data, media_type) == sha256
    assert _blob_rows(alone) == rows
    for sha256 in rows:
        swept_file = blob_file(swept / "blobs", sha256).read_bytes()
        assert swept_file == blob_file(alone / "blobs", sha256).read_bytes()
        assert len(swept_file) == rows[sha256][1]

    with sqlite3.connect(swept / "index.sqlite") as db:
        texts = {sha for (sha,) in db.execute("SELECT text_sha256 FROM version")}
        bodies = {sha for (sha,) in db.execute("SELECT body_sha256 FROM response")}
        asked = {sha for (sha,) in db.execute("SELECT request_body FROM response") if sha}
        files = {sha for (sha,) in db.execute("SELECT body_sha256 FROM attachment")}
    assert len(texts) == 24  # each statement's text
    assert texts | bodies | asked | files == set(rows)  # each page's, and its files'

    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout


def test_a_group_write_skips_files_already_there_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    datas = [f"statement {n} ".encode() * (50 + n) for n in range(12)]
    shas = [hashlib.sha256(data).hexdigest() for data in datas]
    compressor = zstandard.ZstdCompressor(level=3)
    # One already stored (at another level: its size is the file's, not a new one's).
    kept = zstandard.ZstdCompressor(level=19).compress(datas[0])
    blob_file(root, shas[0]).parent.mkdir(parents=True)
    blob_file(root, shas[0]).write_bytes(kept)
    # Half given compressed (as a worker does), half to compress.
    files = {
        sha: (data, compressor.compress(data) if n % 2 else None)
        for n, (sha, data) in enumerate(zip(shas, datas, strict=True))
    }
    sizes = write_group(root, files)
    assert sizes[shas[0]] == len(kept)
    assert blob_file(root, shas[0]).read_bytes() == kept
    for sha, data in zip(shas[1:], datas[1:], strict=True):
        stored = blob_file(root, sha).read_bytes()
        assert stored == compressor.compress(data)
        assert sizes[sha] == len(stored)
    assert list(root.glob("*/*/.tmp-*")) == []
    assert write_group(root, files) == sizes  # again: nothing new to write


def _started(replica: ReplicaSite, process: subprocess.Popen[bytes]) -> bool:
    return bool(replica.requests) or process.poll() is not None


@pytest.mark.slow
def test_a_check_killed_mid_sweep_leaves_every_row_with_its_blob(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    """`kill -9` of `monitor check` while its first sweep reads and archives: whatever
    committed names blobs that are whole (`monitor verify`), and the next run archives the
    rest."""
    config = write_config(tmp_path, replica, languages=LANGUAGES)
    chance = random.Random(28)
    for _run in range(3):
        replica.clear_requests()
        process = quiet_monitor(config, "check", "--once")
        try:
            # Killed a random moment after its first request: while pages are read,
            # compressed, written and committed.
            assert wait_for(partial(_started, replica, process), 60)
            time.sleep(chance.uniform(0, 0.3))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        verified = monitor_cli(config, "verify")
        assert verified.returncode == 0, verified.stderr + verified.stdout
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stderr + result.stdout
    with sqlite3.connect(tmp_path / "store" / "index.sqlite") as db:
        assert db.execute("SELECT count(*) FROM document").fetchone() == (24,)
        versions = db.execute("SELECT count(*) FROM version").fetchone()[0]
    assert versions == 24  # each statement once: nothing archived twice after a kill
    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout
