"""What is due after the checks: the outbox's deliveries (alerts.py sends them) and the
Save Page Now queue's rows (wayback.py submits them), read by every `check --once` at its
end and by the daemon's rounds.

The reads are `Plain` (database.py): SQLite's text on the driver, without SQLAlchemy (an
archive with nothing due, the usual case, never needs it); the outbox (outbox.py) and the
queue (wayback.py) write what these read.
"""

from __future__ import annotations

import json
from typing import Any, cast

from monitor.store.database import Database, Plain
from monitor.store.records import Delivery, DueCopyRow

# The states of a Save Page Now row still to submit or to ask about.
_WAITING = ("queued", "submitted")


def _deliveries_core() -> Any:
    from sqlalchemy import bindparam, select

    from monitor.store.schema import alert, delivery

    return (
        select(
            delivery.c.id,
            delivery.c.alert_id,
            delivery.c.channel,
            delivery.c.attempts,
            alert.c.payload,
        )
        .join(alert, alert.c.id == delivery.c.alert_id)
        .where(delivery.c.status == "pending", delivery.c.next_attempt_at <= bindparam("now"))
        .order_by(delivery.c.id)
        .limit(bindparam("limit"))
    )


DUE_DELIVERIES = Plain(
    "due: deliveries",
    "SELECT delivery.id, delivery.alert_id, delivery.channel, delivery.attempts, alert.payload "
    "FROM delivery JOIN alert ON alert.id = delivery.alert_id "
    "WHERE delivery.status = 'pending' AND delivery.next_attempt_at <= ? "
    "ORDER BY delivery.id LIMIT ? OFFSET 0",
    ("now", "limit"),
    _deliveries_core,
)


def _copies_core() -> Any:
    from sqlalchemy import bindparam, select

    from monitor.store.schema import document, independent_copy, version

    return (
        select(
            independent_copy,
            version.c.document_id,
            version.c.seq,
            version.c.kind,
            version.c.observed_at,
            document.c.watch_id,
            document.c.key,
        )
        .join(version, version.c.id == independent_copy.c.version_id)
        .join(document, document.c.id == version.c.document_id)
        .where(
            independent_copy.c.state.in_(_WAITING),
            independent_copy.c.next_attempt_at <= bindparam("now"),
        )
        .order_by(independent_copy.c.next_attempt_at, independent_copy.c.id)
        .limit(bindparam("limit"))
    )


DUE_COPIES = Plain(
    "due: copies",
    "SELECT independent_copy.id, independent_copy.version_id, independent_copy.target, "
    "independent_copy.url, independent_copy.state, independent_copy.attempts, "
    "independent_copy.stale, independent_copy.next_attempt_at, independent_copy.job_id, "
    "independent_copy.submitted_at, independent_copy.capture_url, "
    "independent_copy.captured_at, independent_copy.last_error, independent_copy.created_at, "
    "independent_copy.updated_at, version.document_id, version.seq, version.kind, "
    'version.observed_at, document.watch_id, document."key" '
    "FROM independent_copy JOIN version ON version.id = independent_copy.version_id "
    "JOIN document ON document.id = version.document_id "
    "WHERE independent_copy.state IN ('queued', 'submitted') "
    "AND independent_copy.next_attempt_at <= ? "
    "ORDER BY independent_copy.next_attempt_at, independent_copy.id LIMIT ? OFFSET 0",
    ("now", "limit"),
    _copies_core,
)


def _waiting_core() -> Any:
    from sqlalchemy import func, select

    from monitor.store.schema import independent_copy

    return select(func.count()).where(independent_copy.c.state.in_(_WAITING))


COPIES_WAITING = Plain(
    "due: copies waiting",
    "SELECT count(*) AS count_1 FROM independent_copy "
    "WHERE independent_copy.state IN ('queued', 'submitted')",
    (),
    _waiting_core,
)


class Due:
    """`store.due`: the deliveries and the Save Page Now rows due now."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def deliveries(self, now: str, limit: int = 100) -> list[Delivery]:
        """Pending deliveries due at `now`, oldest first, with their alert's payload."""
        return [
            Delivery(r["id"], r["alert_id"], r["channel"], r["attempts"], json.loads(r["payload"]))
            for r in self.db.plain_rows(DUE_DELIVERIES, {"now": now, "limit": limit})
        ]

    def copies(self, now: str, limit: int = 100) -> list[DueCopyRow]:
        """Rows to submit or ask about now, oldest first, with their version's facts."""
        rows = self.db.plain_rows(DUE_COPIES, {"now": now, "limit": limit})
        return cast("list[DueCopyRow]", rows)

    def copies_waiting(self) -> int:
        """The queue's length: rows still to submit or to ask about."""
        [row] = self.db.plain_rows(COPIES_WAITING)
        return int(next(iter(row.values())))
