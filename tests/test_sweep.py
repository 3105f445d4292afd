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
from tests.postgres import Backend

LANGUAGES = ("en", "ru", "kk")


def _blob_rows(store: Path) -> dict[str, tuple[int, int, str | None]]:
    with sqlite3.connect(store / "index.sqlite") as db:
        rows = db.execute("SELECT sha256, size, stored_size, media_type FROM blob").fetchall()
    return {sha256: (size, stored, media) for sha256, size, stored, media in rows}


def _read(path: Path) -> bytes:
    return zstandard.ZstdDecompressor().decompress(path.read_bytes())


def _temporary_files(store: Path) -> list[Path]:
    return list((store / "blobs").glob("*/.tmp-*"))


@pytest.mark.parametrize("blobs", ["db", "path"])
def test_a_sweep_through_the_workers_stores_what_the_archive_itself_would(
    tmp_path: Path, replica: ReplicaSite, blobs: str
) -> None:
    """Every blob of a first sweep (`monitor check`: pages read and compressed in worker
    processes; files written in groups, or bytes in the database) is the stored bytes, and
    the row, that the archive's own one-blob-at-a-time path makes of the same bytes;
    versions name their statements by the hash of those bytes."""
    swept_archive = Backend("sqlite", tmp_path / "store", blobs=blobs)
    config = write_config(tmp_path, replica, languages=LANGUAGES, store=swept_archive.toml())
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stderr + result.stdout
    for lang in LANGUAGES:
        assert f"mfa-{lang}: changed (8 new versions, 0 alerts)" in result.stdout
    swept = tmp_path / "store"
    rows = _blob_rows(swept)
    assert _temporary_files(swept) == []

    assert (swept / "blobs").is_dir() == (blobs == "path")  # no files in the database's case

    alone_archive = Backend("sqlite", tmp_path / "alone", blobs=blobs)
    alone = alone_archive.path
    decompressor = zstandard.ZstdDecompressor()
    with alone_archive.store() as store:
        for sha256, (_size, _stored, media_type) in rows.items():
            data = decompressor.decompress(swept_archive.stored_blob(sha256))
            assert hashlib.sha256(data).hexdigest() == sha256
            assert store.put_blob(data, media_type) == sha256
    assert _blob_rows(alone) == rows
    for sha256 in rows:
        swept_bytes = swept_archive.stored_blob(sha256)
        assert swept_bytes == alone_archive.stored_blob(sha256)
        assert len(swept_bytes) == rows[sha256][1]

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
    assert list(root.glob("*/.tmp-*")) == []
    assert write_group(root, files) == sizes  # again: nothing new to write


def test_blobs_of_the_older_two_level_layout_are_found_verified_exported_and_swept(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    """Blob files written before the 19th session sit at `blobs/ab/cd/<sha256>`, new ones
    at `blobs/ab/<sha256>`: an archive holding the older layout (a real sweep's files moved
    there) is read, verified and exported as before; its orphans and temporary files are
    found and removed; a blob it already holds is not written again."""
    config = write_config(tmp_path, replica, store='blobs = "path"')
    assert monitor_cli(config, "check", "--once").returncode == 0
    root = tmp_path / "store" / "blobs"
    rows = _blob_rows(tmp_path / "store")
    for sha256 in rows:
        older = root / sha256[:2] / sha256[2:4] / sha256
        older.parent.mkdir(exist_ok=True)
        blob_file(root, sha256).rename(older)
    assert [path for path in root.glob("*/*") if path.is_file()] == []
    orphan = b"bytes no row names"
    orphan_sha = hashlib.sha256(orphan).hexdigest()
    orphan_file = root / orphan_sha[:2] / orphan_sha[2:4] / orphan_sha
    orphan_file.parent.mkdir(parents=True, exist_ok=True)
    orphan_file.write_bytes(zstandard.ZstdCompressor().compress(orphan))
    temporary = root / orphan_sha[:2] / orphan_sha[2:4] / ".tmp-left-by-a-crash"
    temporary.write_bytes(b"half")

    with Store(str(tmp_path / "store")) as store:
        for sha256 in rows:
            assert hashlib.sha256(store.read_blob(sha256)).hexdigest() == sha256
            assert store.blob_path(sha256) == root / sha256[:2] / sha256[2:4] / sha256
        report = store.verify()
        assert report.damage == [] and report.blobs == len(rows)
        assert sorted(report.orphans) == sorted(
            str(path.relative_to(root.parent)) for path in (orphan_file, temporary)
        )
        assert store.verify(repair=True).repaired == 2
        assert not orphan_file.exists() and not temporary.exists()
    warc = tmp_path / "older.warc.gz"
    exported = monitor_cli(config, "export", "--warc", str(warc))
    assert exported.returncode == 0, exported.stderr
    shown = monitor_cli(config, "verify")
    assert shown.returncode == 0 and "0 damaged, 0 orphans" in shown.stdout, shown.stdout

    # A blob the older layout holds is found there, not written again in the newer one.
    sha256 = next(iter(rows))
    data = _read(root / sha256[:2] / sha256[2:4] / sha256)
    sizes = write_group(root, {sha256: (data, None)})
    assert sizes == {sha256: rows[sha256][1]}
    assert not blob_file(root, sha256).exists()


def _started(replica: ReplicaSite, process: subprocess.Popen[bytes]) -> bool:
    return bool(replica.requests) or process.poll() is not None


@pytest.mark.slow
@pytest.mark.parametrize("blobs", ["db", "path"])
def test_a_check_killed_mid_sweep_leaves_every_row_with_its_blob(
    tmp_path: Path, replica: ReplicaSite, blobs: str
) -> None:
    """`kill -9` of `monitor check` while its first sweep reads and archives: whatever
    committed names blobs that are whole (`monitor verify`), and the next run archives the
    rest (blob bytes in the database or in files)."""
    config = write_config(tmp_path, replica, languages=LANGUAGES, store=f'blobs = "{blobs}"')
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
