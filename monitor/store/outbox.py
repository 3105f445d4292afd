"""The outbox: alerts, written with what caused them, and their deliveries to channels,
retried with backoff until sent or dead (monitor/alerts.py sends them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import func, select

from monitor.store.database import Database, DriverStatement, RunStatement
from monitor.store.records import AlertRow, DeliveryWithAlertRow, now_iso
from monitor.store.schema import alert, delivery

# An alert's payload and the channels to deliver it to.
AlertPayload = tuple[dict[str, Any], list[str]]


@dataclass(frozen=True)
class AlertStatements:
    """The statements of an alert and its deliveries, prepared (see `insert_alert_on`)."""

    alert: DriverStatement
    delivery: DriverStatement


def alert_statements(db: Database) -> AlertStatements:
    """Prepared once per database, for the check's, the watchdog's and a screenshot's."""
    return AlertStatements(
        db.prepared("outbox: alert", lambda: alert.insert().returning(alert.c.id), _ALERT_COLUMNS),
        db.prepared("outbox: delivery", delivery.insert, _DELIVERY_COLUMNS),
    )


def insert_alert_on(
    run: RunStatement,
    statements: AlertStatements,
    watch_id: str,
    version_id: int | None,
    payload: dict[str, Any],
    channels: list[str],
    at: str,
) -> None:
    """An alert and one delivery per channel, in the caller's transaction (a check's, the
    watchdog's, a screenshot's), on the driver's connection (`run`: see
    `Database.statements_on`): through SQLAlchemy, the alert of a changed page and its
    delivery cost more than SQLite takes for them."""
    cursor = run(statements.alert, _alert_values(watch_id, version_id, payload, at))
    alert_id = int(cursor.fetchone()[0])
    for channel in channels:
        run(statements.delivery, _delivery_values(alert_id, channel, at))


_ALERT_COLUMNS = ("watch_id", "version_id", "kind", "created_at", "payload")
_DELIVERY_COLUMNS = ("alert_id", "channel", "next_attempt_at")


def _alert_values(
    watch_id: str, version_id: int | None, payload: dict[str, Any], at: str
) -> dict[str, Any]:
    return {
        "watch_id": watch_id,
        "version_id": version_id,
        "kind": payload["kind"],
        "created_at": at,
        "payload": json.dumps(payload, ensure_ascii=False),
    }


def _delivery_values(alert_id: int, channel: str, at: str) -> dict[str, Any]:
    return {"alert_id": alert_id, "channel": channel, "next_attempt_at": at}


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record_alert(self, watch_id: str, payload: dict[str, Any], channels: list[str]) -> None:
        """An alert that no check caused (the watchdog's), into the outbox."""
        with self.db.writing("alerts"), self.db.write() as conn, self.db.statements_on(conn) as run:
            alerts = alert_statements(self.db)
            insert_alert_on(run, alerts, watch_id, None, payload, channels, now_iso())

    def alerts(self, watch_id: str | None = None) -> list[AlertRow]:
        query = select(alert).order_by(alert.c.id)
        if watch_id:
            query = query.where(alert.c.watch_id == watch_id)
        return cast("list[AlertRow]", self.db.rows(query))

    def claim_deliveries(self, ids: list[int], now: str, until: str) -> set[int]:
        """Of these due deliveries, the ones this process may send: each becomes not due
        until `until`, so no other process sends it meanwhile (and one whose sender died
        is due again after that). Returns the ids claimed."""
        with self.db.write() as conn:
            result = conn.execute(
                delivery.update()
                .where(
                    delivery.c.id.in_(ids),
                    delivery.c.status == "pending",
                    delivery.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
                .returning(delivery.c.id)
            )
            return {row[0] for row in result}

    def mark_sent(self, delivery_id: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                delivery.update()
                .where(delivery.c.id == delivery_id)
                .values(
                    status="sent",
                    attempts=delivery.c.attempts + 1,
                    sent_at=now_iso(),
                    last_error=None,
                )
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: str | None) -> None:
        """Record a failed attempt; `retry_at=None` dead-letters the delivery."""
        values: dict[str, Any] = {
            "status": "pending" if retry_at else "dead",
            "attempts": delivery.c.attempts + 1,
            "last_error": error[:500],
        }
        if retry_at:
            values["next_attempt_at"] = retry_at
        with self.db.write() as conn:
            conn.execute(delivery.update().where(delivery.c.id == delivery_id).values(**values))

    def deliveries(self, status: str | None = None, limit: int = 200) -> list[DeliveryWithAlertRow]:
        """Deliveries with their alert, newest first (status: pending, sent, dead)."""
        query = select(
            delivery, alert.c.watch_id, alert.c.kind, alert.c.created_at, alert.c.payload
        ).join(alert, alert.c.id == delivery.c.alert_id)
        if status:
            query = query.where(delivery.c.status == status)
        rows = self.db.rows(query.order_by(delivery.c.id.desc()).limit(limit))
        return cast("list[DeliveryWithAlertRow]", rows)

    def delivery_count(self, status: str) -> int:
        """How many deliveries have this status (the outbox depth, for metrics)."""
        query = select(func.count(delivery.c.id)).where(delivery.c.status == status)
        return int(self.db.scalar(query))

    def requeue(self, delivery_id: int) -> bool:
        """Put a dead-lettered delivery back in the queue, due now."""
        with self.db.write() as conn:
            result = conn.execute(
                delivery.update()
                .where(delivery.c.id == delivery_id, delivery.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now_iso())
            )
        return result.rowcount == 1
