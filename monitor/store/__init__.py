"""Store stage: the archive. Every version ever seen, kept byte for byte, provably.

An index database — SQLite (`<path>/index.sqlite`, the default) or PostgreSQL
(`[store] url`) — with plain, documented tables (`schema.py`), and content-addressed,
zstd-compressed blobs named by the SHA-256 of their uncompressed bytes (`blobs.py`):
files under `<path>/blobs/ab/<sha256>` (or the older `ab/cd/<sha256>`) or rows of `blob_data`.

Why this shape: a version is never rewritten, only added; identical bytes are stored once;
blob files are durable before the transaction that names them commits (one per check, or one
shared by the checks of a moment, each atomic in a savepoint: `Database.together`), so a
`kill -9` at any moment leaves at worst an orphan file, never a row pointing at a missing
or half-written blob. An unchanged check adds one `check_run` row and no blob.

The code: `Store` (core.py) composes repositories — states.py, checks.py, due.py (what
every run does, in SQL text on the driver's connection), archive.py, schedule.py,
outbox.py, accounts.py, review.py, fulltext.py, furniture.py, timestamps.py (SQLAlchemy
Core, made on first use) — over one `Database` (database.py: the connection, its
transactions, the batch of unchanged checks). Whatever differs between SQLite and
PostgreSQL is a method of their `Dialect` (dialect/).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.store.core import Store
    from monitor.store.records import (
        FIRST_SEEN,
        CheckRecord,
        Delivery,
        Discovery,
        DocumentHead,
        NewVersion,
        ResponseRecord,
        Settlement,
        StoreError,
        VerifyReport,
        WatchState,
        iso,
        now_iso,
    )
    from monitor.store.schedule import Claim

# Where each name is, imported on first use (PEP 562): most of the store is built on
# SQLAlchemy, a third of a second of CPU to import, and a module that only needs a record
# or StoreError (records.py imports nothing of the store) must not pay for it: `monitor
# --help` and `monitor check` before its configuration is read. (The `Store` itself
# imports SQLAlchemy only when something needs it: see core.py and database.py.)
_HOME = {
    "Store": "core",
    "Claim": "schedule",
    **dict.fromkeys(
        (
            "FIRST_SEEN",
            "CheckRecord",
            "Delivery",
            "Discovery",
            "DocumentHead",
            "NewVersion",
            "ResponseRecord",
            "Settlement",
            "StoreError",
            "VerifyReport",
            "WatchState",
            "iso",
            "now_iso",
        ),
        "records",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FIRST_SEEN",
    "CheckRecord",
    "Claim",
    "Delivery",
    "Discovery",
    "DocumentHead",
    "NewVersion",
    "ResponseRecord",
    "Settlement",
    "Store",
    "StoreError",
    "VerifyReport",
    "WatchState",
    "iso",
    "now_iso",
]
