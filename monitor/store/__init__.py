"""Store stage: the archive. Every version ever seen, kept byte for byte, provably.

An index database — SQLite (`<path>/index.sqlite`, the default) or PostgreSQL
(`[store] url`) — with plain, documented tables (`schema.py`), and content-addressed,
zstd-compressed blobs named by the SHA-256 of their uncompressed bytes (`blobs.py`):
files under `<path>/blobs/ab/cd/<sha256>` or rows of `blob_data`.

Why this shape: a version is never rewritten, only added; identical bytes are stored once;
blob files are durable before the one transaction per check that names them commits, so a
`kill -9` at any moment leaves at worst an orphan file, never a row pointing at a missing
or half-written blob. An unchanged check adds one `check_run` row and no blob.

The code: `Store` (core.py) composes repositories — archive.py, schedule.py, outbox.py,
accounts.py, review.py, fulltext.py, furniture.py, timestamps.py — over one `Database`
(database.py: the connection, its transactions, the batch of unchanged checks). Whatever
differs between SQLite and PostgreSQL is a method of their `Dialect` (dialect/).
"""

from monitor.store.core import Store
from monitor.store.records import (
    FIRST_SEEN,
    CheckRecord,
    Delivery,
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
from monitor.store.schedule import Claim, Discovery

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
