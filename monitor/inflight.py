"""Looks in flight: what a check fetched and has not yet committed, on disk until it has.

A check that fetched a page it must read (new bytes: not a 304, not the bytes it read
last time) holds those bytes only in memory until its commit, a few milliseconds to a few
seconds later (the read, the diff, the write lock). A `kill -9` in between lost them: the
next process fetched the page again and archived what it found then, so a revision that
lived between the two fetches was never archived although it had been seen. Each such
look now writes what it fetched into a slot file of its process's own directory before it
reads it, and clears the slot after its commit. The next process that finds the slots of a
dead one (its directory's lock is free: the operating system released it, however the
process ended) replays each look, under its own moment, before it next checks that watch.

Writes are plain `pwrite`s into the page cache, no `fsync`: they survive the process's
death, which is what this is for, not the machine's (the version's own files and rows are
made durable at its commit, as before). Three system calls per look that reads a page (two
to keep it, one to clear it); none for a 304 or the same bytes again, the checks a daemon
mostly makes.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.clock import parse_iso
from monitor.fetched import FetchRequest, FetchResult
from monitor.tls import TlsInfo

logger = logging.getLogger(__name__)

DIRECTORY = "inflight"
_LOCK = "lock"
# A process's directory while it is made (see `_new_slot`); one left so by a kill at that
# moment is removed after a while (it never holds a look).
_MAKING = "."
_MAKING_LEFT = 3600.0
# A slot's record: magic, header length, body length; then the header (JSON), then the body.
_MAGIC = b"MLK1"
_FRAME = struct.Struct("<4sIQ")
_CLEAR = b"\0" * len(_MAGIC)
# How often a process looks for the slots of dead ones (it always looks at its first check).
CLAIM_EVERY = 60.0
# A slot that held more than this is emptied when its look ends, not only cleared: a
# daemon's slots live as long as it does, and each would keep the biggest page it held.
KEEP_BYTES = 1 << 20


@dataclass(frozen=True)
class Look:
    """A look some process fetched and did not commit: which watch, when, what it got."""

    watch_id: str
    at: str  # the check's moment, as its check_run row would have said
    result: FetchResult


@dataclass
class _Slot:
    path: Path
    fd: int
    # The most its file has held: a slot is reused, and a big look's bytes would stay.
    size: int = field(default=0, compare=False)


class InFlight:
    """This process's slots, and the looks it claimed from dead processes' slots."""

    def __init__(self, root: Path) -> None:
        self.base = root / DIRECTORY
        self._own: Path | None = None  # made at the first look that needs a slot
        self._lock_fd: int | None = None
        self._free: list[_Slot] = []
        self._slots = 0
        # Claimed looks by watch, oldest first, each with the slot that holds it; the dead
        # directories they came from, with their lock (held until every look is replayed).
        self._claimed: dict[str, list[tuple[Look, _Slot]]] = {}
        self._dead: dict[Path, tuple[int, list[_Slot]]] = {}
        self._next_claim = 0.0
        self._told = False  # a warning that looks cannot be kept, given once

    # --- this process's looks ------------------------------------------------------------

    def begin(self, watch_id: str, at: str, result: FetchResult) -> _Slot | None:
        """Write what a look fetched into a free slot; None when it could not be written (a
        full disk: the look goes on, as it did before this existed, and says why once)."""
        try:
            slot = self._free.pop() if self._free else self._new_slot()
        except OSError as err:
            self._cannot(err)
            return None
        try:
            header = json.dumps(
                _header(watch_id, at, result), separators=(",", ":"), default=str
            ).encode()
            # The header and body first, the frame that says they are there last: a slot
            # is reused without being emptied, so a look killed between the two leaves the
            # slot cleared (see `end`), never the new frame over an older look's bytes.
            os.pwritev(slot.fd, [header, result.body], _FRAME.size)
            os.pwrite(slot.fd, _FRAME.pack(_MAGIC, len(header), len(result.body)), 0)
            slot.size = max(slot.size, _FRAME.size + len(header) + len(result.body))
        except OSError as err:
            self._cannot(err)
            self.end(slot)
            return None
        return slot

    def end(self, slot: _Slot | None) -> None:
        """The look is committed (or recorded as a problem): its slot is free again."""
        if slot is None:
            return
        try:
            if slot.size > KEEP_BYTES:
                os.ftruncate(slot.fd, 0)
                slot.size = 0
            else:
                os.pwrite(slot.fd, _CLEAR, 0)
        except OSError as err:  # the slot keeps its look: replayed later, then superseded
            self._cannot(err)
            return
        if slot.path.parent == self._own:
            self._free.append(slot)
        else:
            self._ended_claimed(slot)

    def close(self) -> None:
        """This process is done checking: its directory goes when no look is left in it."""
        if self._own is None or len(self._free) != self._slots:
            return
        for slot in self._free:
            os.close(slot.fd)
        shutil.rmtree(self._own, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._own, self._lock_fd, self._free, self._slots = None, None, [], 0

    def _new_slot(self) -> _Slot:
        if self._own is None:
            # Made under a hidden name and renamed once locked: another process looking
            # for dead processes' slots meanwhile must not find it without its lock held
            # (it would take it for a dead one's and remove it).
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            making = self.base / f"{_MAKING}{name}"
            making.mkdir(parents=True)
            lock = os.open(making / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(making, self.base / name)
            except BaseException:
                os.close(lock)
                shutil.rmtree(making, ignore_errors=True)
                raise
            self._own, self._lock_fd = self.base / name, lock
        path = self._own / str(self._slots)
        slot = _Slot(path, os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._slots += 1
        return slot

    def _cannot(self, err: OSError) -> None:
        if not self._told:
            self._told = True
            logger.warning(
                "looks in flight cannot be kept in %s (%s): a look killed before its commit "
                "is lost, as the next process fetches the page again",
                self.base,
                err,
            )

    # --- dead processes' looks -----------------------------------------------------------

    def may_hold(self, watch_id: str) -> bool:
        """Whether `claimed` may have looks for this watch: it holds some, or it is time to
        look for dead processes' slots. Asked by every check, so cheap."""
        return watch_id in self._claimed or time.monotonic() >= self._next_claim

    def claimed(
        self, watch_id: str, known: Callable[[], set[str]] | None = None
    ) -> list[tuple[Look, _Slot]]:
        """The looks dead processes left for this watch, oldest first, taken out of the
        claimed ones (each must be `end`ed once replayed). Looks for the slots of dead
        processes first, at the first call and every `CLAIM_EVERY` seconds after."""
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + CLAIM_EVERY
            self._claim(known)
        if not self._claimed:
            return []
        return self._claimed.pop(watch_id, [])

    def _claim(self, known: Callable[[], set[str]] | None) -> None:
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return
        except OSError as err:
            self._cannot(err)
            return
        ids: set[str] | None = None  # the configured watches, made at the first need

        def configured(watch_id: str) -> bool:
            nonlocal ids
            if known is None:
                return True
            if ids is None:
                ids = known()
            return watch_id in ids

        for name in names:
            directory = self.base / name
            if name.startswith(_MAKING):
                with contextlib.suppress(OSError):
                    if time.time() - directory.stat().st_mtime > _MAKING_LEFT:
                        shutil.rmtree(directory, ignore_errors=True)
                continue
            if directory == self._own or directory in self._dead:
                continue
            with contextlib.suppress(OSError):
                self._claim_one(directory, configured)

    def _claim_one(self, directory: Path, configured: Callable[[str], bool]) -> None:
        try:
            lock = os.open(directory / _LOCK, os.O_RDWR)
        except FileNotFoundError:  # being removed (or made by a monitor before 19)
            shutil.rmtree(directory, ignore_errors=True)
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # its process is alive
            os.close(lock)
            return
        try:
            paths = sorted(directory.iterdir())
        except OSError:  # its lock let go: claimed again at the next pass
            os.close(lock)
            raise
        slots = []
        for path in paths:
            if path.name == _LOCK:
                continue
            # Each slot on its own: one that cannot be read (an I/O error, no descriptor
            # left) is no look, and the others are claimed and kept with the directory.
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError as err:
                self._cannot(err)
                continue
            try:
                look = _read_look(fd, path)
            except OSError as err:
                self._cannot(err)
                look = None
            if look is None:
                os.close(fd)
                continue
            if not configured(look.watch_id):
                logger.warning(
                    "%s: a look fetched at %s by a process killed before its commit is "
                    "dropped: the watch is no longer configured",
                    look.watch_id,
                    look.at,
                )
                os.close(fd)
                continue
            slot = _Slot(path, fd)
            slots.append(slot)
            self._claimed.setdefault(look.watch_id, []).append((look, slot))
        for looks in self._claimed.values():
            looks.sort(key=lambda item: item[0].at)
        self._dead[directory] = (lock, slots)
        if slots:
            logger.info(
                "%d looks fetched by a process killed before their commit are replayed "
                "at their watches' next checks (%s)",
                len(slots),
                directory,
            )
        else:
            self._remove_dead(directory)

    def _ended_claimed(self, ended: _Slot) -> None:
        directory = ended.path.parent
        slots = self._dead[directory][1] if directory in self._dead else []
        if ended in slots:
            slots.remove(ended)
        os.close(ended.fd)
        if not slots:
            self._remove_dead(directory)

    def _remove_dead(self, directory: Path) -> None:
        lock, slots = self._dead.pop(directory, (None, []))
        for slot in slots:
            os.close(slot.fd)
        shutil.rmtree(directory, ignore_errors=True)
        if lock is not None:
            os.close(lock)


def _header(watch_id: str, at: str, result: FetchResult) -> dict[str, Any]:
    request, tls = result.request, result.tls
    return {
        "watch": watch_id,
        "at": at,
        "url": request.url,
        "method": request.method,
        "request_headers": dict(request.headers),
        "request_body": _b64(request.body),
        "obey_robots": request.obey_robots,
        "final_url": result.url,
        "requested_at": result.requested_at.isoformat(),
        "status": result.status,
        "http_version": result.http_version,
        "headers": result.headers,
        "redirects": result.redirects,
        "elapsed": result.elapsed,
        "truncated": result.truncated,
        "tls": None
        if tls is None
        else {
            "encrypted": tls.encrypted,
            "protocol": tls.protocol,
            "cipher": tls.cipher,
            "chain": [_b64(der) for der in tls.chain],
            "complete": tls.complete,
            "how": tls.how,
            "details": tls.details,
        },
    }


def _read_look(fd: int, path: Path) -> Look | None:
    """The look a slot holds; None when it holds none (cleared, or torn by the kill)."""
    frame = os.pread(fd, _FRAME.size, 0)
    if len(frame) < _FRAME.size:
        return None
    magic, header_size, body_size = _FRAME.unpack(frame)
    if magic != _MAGIC:
        return None
    header = os.pread(fd, header_size, _FRAME.size)
    body = os.pread(fd, body_size, _FRAME.size + header_size)
    if len(header) != header_size or len(body) != body_size:
        return None
    try:
        fields = json.loads(header)
        return Look(fields["watch"], fields["at"], _result(fields, body))
    except (ValueError, KeyError, TypeError) as err:
        logger.warning("%s: a look in flight that cannot be read is dropped: %s", path, err)
        return None


def _result(fields: dict[str, Any], body: bytes) -> FetchResult:
    tls = fields["tls"]
    return FetchResult(
        request=FetchRequest(
            fields["url"],
            fields["method"],
            fields["request_headers"],
            _unb64(fields["request_body"]),
            fields["obey_robots"],
        ),
        url=fields["final_url"],
        requested_at=parse_iso(fields["requested_at"]),
        status=fields["status"],
        http_version=fields["http_version"],
        headers=[(name, value) for name, value in fields["headers"]],
        body=body,
        redirects=[(status, url) for status, url in fields["redirects"]],
        elapsed=fields["elapsed"],
        truncated=fields["truncated"],
        tls=None
        if tls is None
        else TlsInfo(
            encrypted=tls["encrypted"],
            protocol=tls["protocol"],
            cipher=tls["cipher"],
            chain=tuple(base64.b64decode(der) for der in tls["chain"]),
            complete=tls["complete"],
            how=tls["how"],
            details=tls["details"],
        ),
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
