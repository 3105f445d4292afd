"""The archive's trusted timestamps (RFC 3161): batches and which versions each covers.

A batch's manifest is canonical JSON naming, for every statement with versions not yet
timestamped, the chain of its newest such version, and for their watches the watch chain
(store/chain.py). A TSA signs the manifest's SHA-256. Since a version's chain commits to
every earlier version of its statement, a version is covered by a batch when the head the
batch names for its statement is its own chain or that of a later version whose chain
leads back to it; `version_timestamp.head` records which. The tables are documented in
schema.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import func, select

from monitor.store.database import Database, inserted_id
from monitor.store.dialect import insert_ignore
from monitor.store.records import (
    BatchRow,
    ChainLink,
    CoverageRow,
    PendingStampRow,
    StampRef,
    VersionStampRow,
)
from monitor.store.schema import document, timestamp_batch, version, version_timestamp

MANIFEST_FORMAT = "monitor-timestamp-batch/1"
# A batch covers at most this many versions (an archive timestamped for the first time
# has them all waiting); the rest go in the next one.
BATCH_LIMIT = 50_000
# Versions are looked for above the newest covered id less this margin: on PostgreSQL a
# version's id is drawn before its transaction commits, so one may appear below ids
# already covered — never this far below.
_LATE_COMMIT_MARGIN = 100_000


@dataclass
class Manifest:
    created: str
    statements: dict[str, str] = field(default_factory=dict)
    watches: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        return canonical(
            {
                "format": MANIFEST_FORMAT,
                "created": self.created,
                "statements": self.statements,
                "watches": self.watches,
            }
        )


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def manifest_for(rows: list[PendingStampRow], created: str) -> tuple[Manifest, dict[int, str]]:
    """The manifest of a batch of pending versions, and each version's head in it."""
    manifest = Manifest(created)
    newest: dict[int, PendingStampRow] = {}
    for row in rows:
        newest[row["document_id"]] = row  # rows come oldest first
        manifest.watches[row["watch"]] = row["watch_chain"]
    for row in newest.values():
        manifest.statements[f"{row['watch']} {row['key']}"] = row["chain"]
    heads = {row["id"]: newest[row["document_id"]]["chain"] for row in rows}
    return manifest, heads


class Timestamps:
    def __init__(self, db: Database) -> None:
        self.db = db

    def pending_versions(self, limit: int = BATCH_LIMIT) -> list[PendingStampRow]:
        """Versions no trusted timestamp covers yet, oldest first, with their chains."""
        with self.db.read() as conn:
            newest = conn.execute(select(func.max(version_timestamp.c.version_id))).scalar()
            low = max(0, int(newest or 0) - _LATE_COMMIT_MARGIN)
            query = (
                select(
                    version.c.id,
                    version.c.document_id,
                    version.c.seq,
                    version.c.chain,
                    version.c.watch_chain,
                    document.c.watch_id.label("watch"),
                    document.c.key,
                )
                .join(document, document.c.id == version.c.document_id)
                .outerjoin(version_timestamp, version_timestamp.c.version_id == version.c.id)
                .where(version.c.id > low, version_timestamp.c.version_id.is_(None))
                .order_by(version.c.id)
                .limit(limit)
            )
            return [cast("PendingStampRow", dict(row)) for row in conn.execute(query).mappings()]

    def record_batch(
        self,
        manifest: bytes,
        tsa_url: str,
        token: bytes,
        gen_time: str,
        serial: str,
        heads: dict[int, str],
        created: str,
    ) -> int:
        """Store a batch's token and the versions it covers (one transaction); its id."""
        with self.db.write() as conn:
            result = conn.execute(
                timestamp_batch.insert().values(
                    created_at=created,
                    manifest=manifest.decode(),
                    digest=hashlib.sha256(manifest).hexdigest(),
                    tsa_url=tsa_url,
                    token=token,
                    gen_time=gen_time,
                    serial=serial,
                )
            )
            batch_id = inserted_id(result)
            if heads:
                # Another daemon on the same PostgreSQL archive may have covered some already.
                conn.execute(
                    insert_ignore(conn, version_timestamp),
                    [
                        {"version_id": vid, "batch_id": batch_id, "head": head}
                        for vid, head in heads.items()
                    ],
                )
        return batch_id

    def version_stamp(self, version_id: int) -> VersionStampRow | None:
        """The batch that covers a version (token, manifest, TSA, genTime) and its head."""
        query = (
            select(timestamp_batch, version_timestamp.c.head)
            .join(version_timestamp, version_timestamp.c.batch_id == timestamp_batch.c.id)
            .where(version_timestamp.c.version_id == version_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return cast("VersionStampRow", dict(row)) if row else None

    def stamps_of(self, version_ids: Collection[int]) -> dict[int, StampRef]:
        """{version id: {"batch": batch id, "head": chain}} for those covered."""
        found: dict[int, StampRef] = {}
        ids = list(version_ids)
        with self.db.read() as conn:
            for start in range(0, len(ids), 500):
                query = select(version_timestamp).where(
                    version_timestamp.c.version_id.in_(ids[start : start + 500])
                )
                for row in conn.execute(query).mappings():
                    found[row["version_id"]] = {"batch": row["batch_id"], "head": row["head"]}
        return found

    def batches(self, ids: Collection[int] | None = None) -> Iterator[BatchRow]:
        query = select(timestamp_batch).order_by(timestamp_batch.c.id)
        if ids is not None:
            query = query.where(timestamp_batch.c.id.in_(list(ids)))
        with self.db.read() as conn:
            rows = [cast("BatchRow", dict(row)) for row in conn.execute(query).mappings()]
        yield from rows

    def coverage(self) -> Iterator[CoverageRow]:
        """Every covered version with its statement, chains and head, by version id."""
        query = (
            select(
                version.c.id,
                version.c.document_id,
                version.c.seq,
                version.c.chain,
                version.c.prev_chain,
                document.c.watch_id.label("watch"),
                document.c.key,
                version_timestamp.c.batch_id,
                version_timestamp.c.head,
            )
            .join(version_timestamp, version_timestamp.c.version_id == version.c.id)
            .join(document, document.c.id == version.c.document_id)
            .order_by(version.c.id)
        )
        with self.db.read() as conn:
            covered = [cast("CoverageRow", dict(row)) for row in conn.execute(query).mappings()]
        yield from covered

    def chains_of(self, document_ids: Collection[int]) -> dict[int, list[ChainLink]]:
        """Each document's versions (seq, chain, prev_chain), by seq."""
        found: dict[int, list[ChainLink]] = {}
        ids = list(document_ids)
        with self.db.read() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(
                        version.c.document_id, version.c.seq, version.c.chain, version.c.prev_chain
                    )
                    .where(version.c.document_id.in_(ids[start : start + 500]))
                    .order_by(version.c.document_id, version.c.seq)
                )
                for row in conn.execute(query).mappings():
                    found.setdefault(row["document_id"], []).append(cast("ChainLink", dict(row)))
        return found

    def waiting_count(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count(version.c.id))
                    .outerjoin(version_timestamp, version_timestamp.c.version_id == version.c.id)
                    .where(version_timestamp.c.version_id.is_(None))
                ).scalar_one()
            )


# `monitor/web/ui.py` still reads a version's stamp through this function of the days
# before the store had repositories; every other caller asks `store.timestamps`.


class _Archive(Protocol):
    @property
    def timestamps(self) -> Timestamps: ...


def version_stamp(store: _Archive, version_id: int) -> VersionStampRow | None:
    return store.timestamps.version_stamp(version_id)
