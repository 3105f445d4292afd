"""One writer per SQLite archive.

Two daemons on one SQLite archive would each check every watch and write the same edit
twice: two versions (the second stamped earlier than the first), two alerts, and a made-up
flip-flop between them. PostgreSQL archives are shared through claims and leases
(schedule.py); a SQLite archive has exactly one writer of checks, which holds an exclusive
lock on `<data dir>/writer.lock` for as long as it runs. The operating system releases the
lock when the process ends, however it ends (`kill -9` included), so a stale lock file
never keeps the next daemon out; the file names the holder for the message of whoever is
turned away.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from monitor.store.records import StoreError, now_iso

LOCK_NAME = "writer.lock"


class WriterLock:
    """The archive's writer lock, held by this process until `release` (or its end)."""

    def __init__(self, root: Path, purpose: str) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self._fd)
            os.close(self._fd)
            self._fd = None
            raise StoreError(
                f"{root} is in use by {holder}; one process checks a SQLite archive at a "
                "time (stop it first, or share a PostgreSQL archive between daemons)"
            ) from None
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "purpose": purpose,
            "since": now_iso(),
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(record).encode() + b"\n", 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _holder(fd: int) -> str:
    """Who holds the lock, in words, from what it wrote into the file."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        record = {}
    if not record:
        return "another process"
    return (
        f"`monitor {record.get('purpose', '?')}` on host {record.get('host', '?')}, "
        f"pid {record.get('pid', '?')} (since {record.get('since', '?')})"
    )
