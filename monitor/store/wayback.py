"""Independent copies of versions: the durable queue of Save Page Now submissions and the
captures they gave (table `independent_copy`, documented in schema.py).

A row per (version, target). It is made by the submitter (monitor/wayback.py) when it
finds a version of a watch with `save_to` that has none, so a version committed just before
a `kill -9` is still queued by the next process: the queue needs no write in the check's
own transaction. Its states: queued → submitted → captured, or failed with the reason;
`next_attempt_at` orders the work and, set ahead by a claim, keeps two processes on one
archive from submitting the same row.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol, cast

from sqlalchemy import and_, func, select

from monitor.store.database import Database, Row
from monitor.store.dialect import insert_ignore
from monitor.store.records import Capture, CopyRow, now_iso
from monitor.store.schema import document, independent_copy, version

# Versions are looked for above the newest queued id less this margin (as in
# store/timestamps.py: a PostgreSQL id is drawn before its transaction commits).
_LATE_COMMIT_MARGIN = 100_000
_CHUNK = 500


def captured(rows: list[CopyRow]) -> list[Capture]:
    """The copies made, as exports and alerts carry them."""
    return [
        {"target": row["target"], "url": row["capture_url"], "captured_at": row["captured_at"]}
        for row in rows
        if row["state"] == "captured"
    ]


class IndependentCopies:
    """`store.copies`: the queue and its captures."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def queue_new(self, watch_ids: Collection[str], target: str, since: str) -> int:
        """Queue every version of these watches observed at or after `since` that has no row
        for `target` yet; returns how many were queued."""
        ids = sorted(watch_ids)
        if not ids:
            return 0
        now = now_iso()
        rows: list[Row] = []
        # Read first, write only when there is something new: this runs every few seconds.
        with self.db.read() as conn:
            newest = conn.execute(
                select(func.max(independent_copy.c.version_id)).where(
                    independent_copy.c.target == target
                )
            ).scalar()
            low = max(0, int(newest or 0) - _LATE_COMMIT_MARGIN)
            for start in range(0, len(ids), _CHUNK):
                query = (
                    select(version.c.id, document.c.url)
                    .join(document, document.c.id == version.c.document_id)
                    .outerjoin(
                        independent_copy,
                        and_(
                            independent_copy.c.version_id == version.c.id,
                            independent_copy.c.target == target,
                        ),
                    )
                    .where(
                        version.c.id > low,
                        version.c.observed_at >= since,
                        document.c.watch_id.in_(ids[start : start + _CHUNK]),
                        independent_copy.c.id.is_(None),
                    )
                    .order_by(version.c.id)
                )
                rows += [
                    {
                        "version_id": row["id"],
                        "target": target,
                        "url": row["url"],
                        "state": "queued",
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for row in conn.execute(query).mappings()
                ]
        if rows:
            with self.db.write() as conn:
                # Another daemon on the same PostgreSQL archive may queue them too.
                conn.execute(insert_ignore(conn, independent_copy), rows)
        return len(rows)

    def claim(self, row: CopyRow, until: str) -> bool:
        """Whether this process may work on a due row: it becomes not due until `until`, so no
        other process takes it meanwhile (and one whose worker died is due again then)."""
        with self.db.write() as conn:
            result = conn.execute(
                independent_copy.update()
                .where(
                    independent_copy.c.id == row["id"],
                    independent_copy.c.state == row["state"],
                    independent_copy.c.next_attempt_at == row["next_attempt_at"],
                )
                .values(next_attempt_at=until)
            )
        return result.rowcount == 1

    def update(self, copy_id: int, **values: Any) -> None:
        """Change a row (state, job, capture, error, next attempt); `updated_at` is set."""
        with self.db.write() as conn:
            conn.execute(
                independent_copy.update()
                .where(independent_copy.c.id == copy_id)
                .values(**values, updated_at=now_iso())
            )

    def next_version_seen(self, document_id: int, seq: int) -> str | None:
        """When the statement's next version was first seen (None: this one is the newest)."""
        query = select(version.c.observed_at).where(
            version.c.document_id == document_id, version.c.seq == seq + 1
        )
        with self.db.read() as conn:
            return conn.execute(query).scalar_one_or_none()

    def copies_of(self, version_ids: Collection[int]) -> dict[int, list[CopyRow]]:
        """{version id: its rows (any state), by target}."""
        found: dict[int, list[CopyRow]] = {}
        ids = list(version_ids)
        with self.db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = (
                    select(independent_copy)
                    .where(independent_copy.c.version_id.in_(ids[start : start + _CHUNK]))
                    .order_by(independent_copy.c.version_id, independent_copy.c.target)
                )
                for row in conn.execute(query).mappings():
                    found.setdefault(row["version_id"], []).append(cast("CopyRow", dict(row)))
        return found

    def captured_for(self, watch_id: str, key: str, seq: int) -> list[Capture]:
        """The copies made of a statement's version (for an alert, which names it so)."""
        query = (
            select(independent_copy)
            .join(version, version.c.id == independent_copy.c.version_id)
            .join(document, document.c.id == version.c.document_id)
            .where(
                document.c.watch_id == watch_id,
                document.c.key == key,
                version.c.seq == seq,
                independent_copy.c.state == "captured",
            )
            .order_by(independent_copy.c.target)
        )
        with self.db.read() as conn:
            return captured([cast("CopyRow", dict(row)) for row in conn.execute(query).mappings()])


# A function callers used before the store had repositories: `store.copies.copies_of`.


class _Archive(Protocol):
    @property
    def copies(self) -> IndependentCopies: ...


def copies_of(store: _Archive, version_ids: Collection[int]) -> dict[int, list[CopyRow]]:
    return store.copies.copies_of(version_ids)
