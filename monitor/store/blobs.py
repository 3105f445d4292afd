"""Where blob bytes live: content-addressed files, or a table of the database.

Either way a blob is zstd-compressed, named by the SHA-256 of its *uncompressed* bytes,
and listed in the `blob` table in the same transaction as the rows that refer to it.

* `FileBlobs` (`blobs/ab/<sha256>`; `[store] blobs = "path"`, and SQLite archives made
  before the 21st session, or a directory shared by several daemons on PostgreSQL): the
  file is written to a temporary name, fsynced, renamed and its directory fsynced
  *before* the transaction that names it commits, so a `kill -9` leaves at worst an
  orphan file, never a row pointing at a missing or half-written one. Blobs
  written before the 19th session sit one level deeper, `blobs/ab/cd/<sha256>`: they are
  found there, verified, exported and removed as ever, and never moved.
* `DatabaseBlobs` (`blob_data`; a new archive's default, SQLite's since the 21st
  session): the bytes commit with the rows, so there is nothing to orphan, and a new page
  creates no file (on SQLite a blob of a few KB is read and written faster in the
  database than as a file of its own: sqlite.org's "Internal Versus External BLOBs").
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard
from sqlalchemy import Connection, bindparam, select

from monitor.compression import compress
from monitor.store.database import Database, Plain, fail_waiting
from monitor.store.dialect import insert_ignore
from monitor.store.schema import blob, blob_data


@dataclass(frozen=True)
class StagedBlob:
    """Bytes made ready before the transaction; `data` is what still has to be written
    inside it (None when the backend already holds the blob)."""

    sha256: str
    size: int
    stored_size: int
    media_type: str | None
    data: bytes | None = None


class UnreadableBlob(Exception):
    """The store holds a blob's bytes but cannot give them back: a damaged page of the
    database, or a value that is not bytes (`DatabaseBlobs.load`)."""


class Blobs(ABC):
    """Where blob bytes live; `mode` is its name in `meta` ("path" or "db")."""

    mode = ""

    def __init__(self) -> None:
        self._decompressor = zstandard.ZstdDecompressor()
        # Compressed ahead of their commit, off the event loop (see `precompress`).
        self._ready: dict[str, bytes] = {}
        # The bytes `prepare` was given, by identity, with their SHA-256 (the caller's
        # name for them): their `stage` need not hash them again (a new page's body and
        # statement, 50 KB, on the daemon's core). Held here, so no other object takes
        # their id meanwhile; checked with `is`.
        self._named: dict[int, tuple[bytes, str]] = {}
        self._named_bytes = 0

    def _name(self, blobs: dict[str, bytes]) -> None:
        # Commits that never came (a failed check, a full disk) leave their bytes here,
        # new objects at each retry of the same page: bounded by number and by bytes, so
        # a big page failing again and again holds no more than a few copies.
        if len(self._named) > _NAMED_MAX or self._named_bytes > _NAMED_BYTES:
            self._named.clear()
            self._named_bytes = 0
        for sha256, data in blobs.items():
            self._named[id(data)] = (data, sha256)
            self._named_bytes += len(data)

    def sha256(self, data: bytes) -> str:
        """The bytes' SHA-256: as `prepare` was told it, else worked out."""
        named = self._named.pop(id(data), None)
        if named is not None:
            self._named_bytes -= len(named[0])
            if named[0] is data:
                return named[1]
        return hashlib.sha256(data).hexdigest()

    def compress(self, data: bytes) -> bytes:
        return compress(data)  # at the archive's level (monitor/compression.py)

    def precompress(self, blobs: dict[str, bytes]) -> None:
        """Compress blobs (by SHA-256: their bytes) now, in a thread of the caller's (zstd
        lets go of the GIL), for the `stage` that follows: an 18 MB page and its statement
        took the event loop 0.3 s and more to compress at level 9 (now 3)."""
        for sha256, data in blobs.items():
            self._ready[sha256] = compress(data)

    async def prepare(self, blobs: dict[str, bytes], compressed: dict[str, bytes]) -> None:
        """Make the blobs of a commit to come ready (by SHA-256: their bytes), off the
        event loop: `compressed` holds those compressed elsewhere already (by the worker
        that read the page, see isolate.py), the others are compressed in a thread (see
        `precompress`); files are also written durably (`FileBlobs`)."""
        self._name(blobs)
        missing = {sha256: data for sha256, data in blobs.items() if sha256 not in compressed}
        self._ready.update((sha256, compressed[sha256]) for sha256 in blobs if sha256 in compressed)
        if missing:
            await asyncio.to_thread(self.precompress, missing)

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
    def read(self, db: Database, sha256: str) -> bytes | None:
        """The compressed bytes, or None when missing (`UnreadableBlob` when held but
        unreadable), read outside any transaction of the caller's."""

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
        self._writer = _GroupWriter(root)
        # Stored sizes of the blobs `prepare` wrote (or found), for their `stage`.
        self._written: dict[str, int] = {}

    def path(self, sha256: str) -> Path:
        """The blob's file: where it is, in either layout; where it would be written when
        it is in neither."""
        return stored_blob_file(self.root, sha256) or blob_file(self.root, sha256)

    async def prepare(self, blobs: dict[str, bytes], compressed: dict[str, bytes]) -> None:
        """Write the blob files of a commit to come durably, off the event loop, together
        with those of the other checks of the moment (see `_GroupWriter`): their fsyncs,
        four per new page, one by one, kept every other check waiting, so a first sweep
        took seconds of wall time per second of CPU. The commit then finds them written;
        one that never comes leaves orphan files, as a crash between the two always could
        (`monitor verify --repair` removes them)."""
        files = {sha256: (data, compressed.get(sha256)) for sha256, data in blobs.items()}
        self._name(blobs)
        self._written.update(await self._writer.write(files))

    def stage(self, conn: Connection | None, data: bytes, media_type: str | None) -> StagedBlob:
        sha256 = self.sha256(data)
        stored_size = self._written.pop(sha256, None)
        if stored_size is None:
            path = stored_blob_file(self.root, sha256)
            if path is None:
                path = blob_file(self.root, sha256)
                _write_durably(path, self._compressed(sha256, data))
            stored_size = path.stat().st_size
        self._ready.pop(sha256, None)
        return StagedBlob(sha256, len(data), stored_size, media_type)

    def read(self, db: Database, sha256: str) -> bytes | None:
        for path in (blob_file(self.root, sha256), _two_level_file(self.root, sha256)):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                pass
        return None

    def names(self, conn: Connection) -> Iterator[tuple[str, str]]:
        # Files of both layouts: `ab/<sha256>` and the older `ab/cd/<sha256>` (the
        # directories `cd` beside the files of `ab` are not names).
        for path in sorted(_files(self.root)):
            yield path.name, str(path.relative_to(self.root.parent))

    def remove(self, conn: Connection, name: str) -> None:
        if name.startswith(".tmp-"):
            for path in [*self.root.glob(f"*/{name}"), *self.root.glob(f"*/*/{name}")]:
                path.unlink()
        else:
            self.path(name).unlink()


def _select_blob_data() -> Any:
    return select(blob_data.c.data).where(blob_data.c.sha256 == bindparam("sha256"))


SELECT_BLOB_DATA = Plain(
    "blobs: data",
    "SELECT blob_data.data FROM blob_data WHERE blob_data.sha256 = ?",
    ("sha256",),
    _select_blob_data,
)


class DatabaseBlobs(Blobs):
    mode = "db"

    def stage(self, conn: Connection, data: bytes, media_type: str | None) -> StagedBlob:
        def stored_size(sha256: str) -> int | None:
            return conn.execute(  # type: ignore[no-any-return]
                select(blob.c.stored_size).where(blob.c.sha256 == sha256)
            ).scalar_one_or_none()

        return self.stage_known(data, media_type, stored_size)

    def stage_known(
        self, data: bytes, media_type: str | None, stored_size: Callable[[str], int | None]
    ) -> StagedBlob:
        """`stage`, asking `stored_size` (of a SHA-256) whether the database holds the
        blob already (the archive asks on the driver's connection)."""
        sha256 = self.sha256(data)
        ready = self._ready.pop(sha256, None)
        if ready is not None:
            # Compressed already (by the worker that read the page, or `prepare`): the
            # database need not be asked first, as both rows are written "or ignore" (a
            # blob it holds keeps its row and bytes). A select fewer for each blob of a new
            # page, two a page.
            return StagedBlob(sha256, len(data), len(ready), media_type, ready)
        # Identical bytes (an unchanged request body, a restored text) are not compressed
        # again just to be ignored.
        stored = stored_size(sha256)
        if stored is not None:
            return StagedBlob(sha256, len(data), stored, media_type)
        compressed = self.compress(data)
        return StagedBlob(sha256, len(data), len(compressed), media_type, compressed)

    def attach(self, conn: Connection, staged: StagedBlob) -> None:
        if staged.data is not None:
            conn.execute(
                insert_ignore(conn, blob_data).values(sha256=staged.sha256, data=staged.data)
            )

    def read(self, db: Database, sha256: str) -> bytes | None:
        # In a transaction of its own on the driver's connection, with no statement to
        # build: a changed page's check reads its old text so (`Archive.read_blob`), and
        # verify every blob, where a Core select, built and compiled at each read, cost
        # three times SQLite's answer.
        select_data = db.plain(SELECT_BLOB_DATA)
        try:
            rows = db.driver_rows(select_data.sql, select_data.bound({"sha256": sha256}))
        except Exception as err:  # the driver's own (sqlite3, psycopg)
            # A damaged page of the database is this blob's damage, as a damaged file is
            # (verify names it and goes on; export leaves it out), not the end of the run.
            if not db.dialect.damaged(err):
                raise
            raise UnreadableBlob(" ".join(str(err).split())) from None
        data = rows[0][0] if rows else None
        if data is None:
            return None
        if not isinstance(data, bytes | bytearray | memoryview):  # SQLite: any type goes
            raise UnreadableBlob(f"{type(data).__name__} where bytes belong")
        return bytes(data)

    def names(self, conn: Connection) -> Iterator[tuple[str, str]]:
        for sha256 in conn.execute(select(blob_data.c.sha256).order_by(blob_data.c.sha256)):
            yield sha256[0], f"blob_data {sha256[0]}"

    def remove(self, conn: Connection, name: str) -> None:
        conn.execute(blob_data.delete().where(blob_data.c.sha256 == name))


# Named bytes kept at most (see `Blobs.sha256`): more than the checks of a moment hold.
_NAMED_MAX = 1024
# ... and the bytes they hold at the most before they are let go (a few big pages).
_NAMED_BYTES = 64 * 1024 * 1024

# What a group write is given: by SHA-256, the bytes and, when known, their compressed form.
_Files = dict[str, tuple[bytes, bytes | None]]


class _GroupWriter:
    """Blob files written durably in groups: the files of every check that asks while a
    group is being written make the next group, written in a thread. A group is made
    durable with two `syncfs` calls (before its files are renamed into place, and after),
    where file by file it took two `fsync`s each (the file, its directory), and each of
    those a commit of the filesystem's journal: 3 ms each on an idle disk, 8-10 ms on a
    busy one, against 1 ms a file in groups of 40 (measured on ext4). A group of one or
    two files (a daemon's quiet hour) is written file by file: `syncfs` flushes whatever
    else the filesystem holds dirty."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._waiting: list[tuple[_Files, asyncio.Future[dict[str, int]]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing: asyncio.Task[None] | None = None

    async def write(self, files: _Files) -> dict[str, int]:
        """Write these files (those not there already) durably; their stored sizes."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests, `monitor check` per run)
            self._loop, self._waiting, self._writing = loop, [], None
        done: asyncio.Future[dict[str, int]] = loop.create_future()
        self._waiting.append((files, done))
        if self._writing is None:
            self._writing = loop.create_task(self._write_groups())
        return await done

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                files: _Files = {}
                for asked, _done in group:
                    files.update(asked)
                try:
                    sizes = await asyncio.to_thread(write_group, self.root, files)
                except BaseException as err:
                    fail_waiting([done for _asked, done in group], err)
                else:
                    for asked, done in group:
                        if not done.done():
                            done.set_result({sha256: sizes[sha256] for sha256 in asked})
        finally:
            self._writing = None


def write_group(root: Path, files: _Files) -> dict[str, int]:
    """Write blob files durably (see `_GroupWriter`), compressing those given without
    their compressed form; the stored size of each, of those already there too."""
    sizes: dict[str, int] = {}
    # Names as strings (`blob_file`'s and `_two_level_file`'s paths): pathlib's joins were
    # a third of this thread's Python, two files of every new page.
    top = os.fspath(root)
    fresh: list[tuple[str, str, bytes]] = []  # (directory, file, compressed bytes)
    for sha256, (data, compressed) in files.items():
        directory = f"{top}/{sha256[:2]}"
        path = f"{directory}/{sha256}"
        size = _stored_size(path, f"{directory}/{sha256[2:4]}/{sha256}")
        if size is not None:
            sizes[sha256] = size
            continue
        if compressed is None:
            compressed = compress(data)
        fresh.append((directory, path, compressed))
        sizes[sha256] = len(compressed)
    if len(fresh) < _GROUP or _syncfs is None:
        for _directory, path, compressed in fresh:
            _write_durably(path, compressed)
        return sizes
    # The descriptor the flushes go through, opened before the files are written: syncfs
    # reports a write-back error of the filesystem seen since it was opened.
    fd = os.open(top, os.O_RDONLY)
    temporary: list[tuple[str, str]] = []
    try:
        for directory, path, compressed in fresh:
            handle, tmp = _temporary(directory)
            temporary.append((tmp, path))
            try:
                _write_all(handle, compressed)
            finally:
                os.close(handle)
        _sync_filesystem(fd)  # the bytes, before any file has its name
        while temporary:
            tmp, path = temporary[-1]
            os.replace(tmp, path)
            temporary.pop()
        _sync_filesystem(fd)  # the names, before any row naming them commits
    finally:
        os.close(fd)
        for tmp, _path in temporary:
            Path(tmp).unlink(missing_ok=True)
    return sizes


# Fewer new files than this are made durable one by one (see `_GroupWriter`).
_GROUP = 3


def _libc_syncfs() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):  # not Linux: files are made durable one by one
        return None
    syncfs.argtypes = [ctypes.c_int]
    return syncfs


_syncfs = _libc_syncfs()


def _sync_filesystem(fd: int) -> None:
    if _syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")


def blob_file(root: Path, sha256: str) -> Path:
    """Where a blob's file is written: one level of 256 directories, so a million blobs
    make ~4,000 files per directory (ext4 and every current filesystem index their
    directories). Until the 19th session a second level (`ab/cd/`) made ~15 per directory,
    and nearly every new blob of a sweep a new directory of its own: 6,515 `mkdir`s for
    6,000 blobs, the filesystem's inode allocation ~8 % of the daemon's CPU. Files of that
    layout are still found (`stored_blob_file`)."""
    return root / sha256[:2] / sha256


def _two_level_file(root: Path, sha256: str) -> Path:
    """Where a blob written before the 19th session is (see `blob_file`)."""
    return root / sha256[:2] / sha256[2:4] / sha256


def stored_blob_file(root: Path, sha256: str) -> Path | None:
    """The blob's file in whichever layout holds it; None when neither does."""
    for path in (blob_file(root, sha256), _two_level_file(root, sha256)):
        if path.is_file():
            return path
    return None


def _files(root: Path) -> Iterator[Path]:
    """Every file of both layouts (see `blob_file`), temporary ones included."""
    for top in _entries(root):
        if not top.is_dir(follow_symlinks=False):
            continue
        for entry in _entries(Path(top.path)):
            if entry.is_dir(follow_symlinks=False):
                yield from (Path(e.path) for e in _entries(Path(entry.path)))
            else:
                yield Path(entry.path)


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return list(entries)


def _stored_size(*paths: str | Path) -> int | None:
    """The size of the first of these files that exists; None when none does."""
    for path in paths:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            pass
    return None


# A temporary file as `tempfile.mkstemp` makes it (created anew, never through a link,
# readable and writable by its owner alone), opened for writing.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _temporary(directory: str | Path) -> tuple[int, str]:
    """A new temporary file `.tmp-<random>` in `directory` (made when missing: once per
    directory, where a `mkdir` before every file was a system call each), open for
    writing. Made here rather than by `tempfile.mkstemp`, whose name making and argument
    checks cost as much Python as the rest of a blob's writing."""
    made = False
    for _attempt in range(100):
        name = os.path.join(directory, f".tmp-{os.urandom(6).hex()}")
        try:
            return os.open(name, _CREATE, 0o600), name
        except FileExistsError:
            continue
        except FileNotFoundError:
            if made:
                raise
            os.makedirs(directory, exist_ok=True)
            made = True
    raise FileExistsError(f"no free temporary name in {directory}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_durably(path: str | Path, data: bytes) -> None:
    directory = os.path.dirname(path)
    fd, tmp = _temporary(directory)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # The rename itself must survive a crash before the row naming the file commits.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
