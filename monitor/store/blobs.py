"""Where blob bytes live: content-addressed files, or a table of the database.

Either way a blob is zstd-compressed, named by the SHA-256 of its *uncompressed* bytes,
and listed in the `blob` table in the same transaction as the rows that refer to it.

* `FileBlobs` (`blobs/ab/cd/<sha256>`; SQLite's default, or a directory shared by several
  daemons on PostgreSQL): the file is written to a temporary name, fsynced, renamed and its
  directory fsynced *before* the transaction that names it commits, so a `kill -9` leaves
  at worst an orphan file, never a row pointing at a missing or half-written one.
* `DatabaseBlobs` (`blob_data`; PostgreSQL's default): the bytes commit with the rows,
  so there is nothing to orphan.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard
from sqlalchemy import Connection, select

from monitor.store.dialect import insert_ignore
from monitor.store.schema import blob, blob_data

_LEVEL = 3


@dataclass(frozen=True)
class StagedBlob:
    """Bytes made ready before the transaction; `data` is what still has to be written
    inside it (None when the backend already holds the blob)."""

    sha256: str
    size: int
    stored_size: int
    media_type: str | None
    data: bytes | None = None


class Blobs(ABC):
    """Where blob bytes live; `mode` is its name in `meta` ("path" or "db")."""

    mode = ""

    def __init__(self) -> None:
        # Level 3 (zstd's default): a 30 KB statement page compresses 4.2x in 0.2 ms of CPU,
        # where level 9 gave 4.3x for 0.8 ms, on every new version (bench/changed_bench.py).
        self._compressor = zstandard.ZstdCompressor(level=_LEVEL)
        self._decompressor = zstandard.ZstdDecompressor()
        # Compressed ahead of their commit, off the event loop (see `precompress`).
        self._ready: dict[str, bytes] = {}

    def compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def precompress(self, datas: list[bytes]) -> None:
        """Compress big blobs now, in a thread of the caller's (zstd lets go of the GIL),
        for the `stage` that follows: an 18 MB page and its statement took the event loop
        0.3 s and more to compress at level 9 (now 3)."""
        compressor = zstandard.ZstdCompressor(level=_LEVEL)  # one per thread
        for data in datas:
            self._ready[hashlib.sha256(data).hexdigest()] = compressor.compress(data)

    def prewrite(self, datas: list[bytes]) -> None:
        """Make blobs of a commit to come ready now, in a thread of the caller's: here,
        compressed (see `precompress`); files are also written durably (`FileBlobs`)."""
        self.precompress(datas)

    def _compressed(self, sha256: str, data: bytes) -> bytes:
        ready = self._ready.pop(sha256, None)
        return ready if ready is not None else self.compress(data)

    def decompress(self, data: bytes) -> bytes:
        return self._decompressor.decompress(data)

    @abstractmethod
    def stage(self, conn: Connection, data: bytes, media_type: str | None) -> StagedBlob:
        """The blob made ready before its transaction (files: durably written)."""

    def attach(self, conn: Connection, staged: StagedBlob) -> None:
        """Inside the transaction that registers the blob."""
        return None

    @abstractmethod
    def load(self, conn: Connection, sha256: str) -> bytes | None:
        """The compressed bytes, or None when missing."""

    @abstractmethod
    def names(self, conn: Connection) -> Iterator[tuple[str, str]]:
        """(sha256 or temporary name, label) of everything stored, for orphan detection."""

    @abstractmethod
    def remove(self, conn: Connection, name: str) -> None:
        """Delete an orphan (`monitor verify --repair`)."""


class FileBlobs(Blobs):
    mode = "path"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return blob_file(self.root, sha256)

    def prewrite(self, datas: list[bytes]) -> None:
        """Write the blob files of a commit to come, durably, in the caller's thread (off
        the event loop): their four fsyncs per new version kept every other check waiting,
        so a first sweep took seconds of wall time per second of CPU. The commit then finds
        them written; one that never comes leaves orphan files, as a crash between the two
        always could (`monitor verify --repair` removes them)."""
        compressor = zstandard.ZstdCompressor(level=_LEVEL)  # one per thread
        for data in datas:
            path = self.path(hashlib.sha256(data).hexdigest())
            if not path.exists():
                _write_durably(path, compressor.compress(data))

    def stage(self, conn: Connection, data: bytes, media_type: str | None) -> StagedBlob:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(sha256)
        if not path.exists():
            _write_durably(path, self._compressed(sha256, data))
        self._ready.pop(sha256, None)
        return StagedBlob(sha256, len(data), path.stat().st_size, media_type)

    def load(self, conn: Connection, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def names(self, conn: Connection) -> Iterator[tuple[str, str]]:
        for path in sorted(self.root.glob("*/*/*")):
            yield path.name, str(path.relative_to(self.root.parent))

    def remove(self, conn: Connection, name: str) -> None:
        if name.startswith(".tmp-"):
            for path in self.root.glob(f"*/*/{name}"):
                path.unlink()
        else:
            self.path(name).unlink()


class DatabaseBlobs(Blobs):
    mode = "db"

    def stage(self, conn: Connection, data: bytes, media_type: str | None) -> StagedBlob:
        sha256 = hashlib.sha256(data).hexdigest()
        # Identical bytes (an unchanged request body, a restored text) are not compressed
        # again just to be ignored.
        stored = conn.execute(
            select(blob.c.stored_size).where(blob.c.sha256 == sha256)
        ).scalar_one_or_none()
        if stored is not None:
            self._ready.pop(sha256, None)
            return StagedBlob(sha256, len(data), stored, media_type)
        compressed = self._compressed(sha256, data)
        return StagedBlob(sha256, len(data), len(compressed), media_type, compressed)

    def attach(self, conn: Connection, staged: StagedBlob) -> None:
        if staged.data is not None:
            conn.execute(
                insert_ignore(conn, blob_data).values(sha256=staged.sha256, data=staged.data)
            )

    def load(self, conn: Connection, sha256: str) -> bytes | None:
        data = conn.execute(
            select(blob_data.c.data).where(blob_data.c.sha256 == sha256)
        ).scalar_one_or_none()
        return bytes(data) if data is not None else None

    def names(self, conn: Connection) -> Iterator[tuple[str, str]]:
        for sha256 in conn.execute(select(blob_data.c.sha256).order_by(blob_data.c.sha256)):
            yield sha256[0], f"blob_data {sha256[0]}"

    def remove(self, conn: Connection, name: str) -> None:
        conn.execute(blob_data.delete().where(blob_data.c.sha256 == name))


def blob_file(root: Path, sha256: str) -> Path:
    # Two levels of 256 directories: a million blobs make ~15 files per directory.
    return root / sha256[:2] / sha256[2:4] / sha256


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename itself must survive a crash before the row naming the file commits.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
