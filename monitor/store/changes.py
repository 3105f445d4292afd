"""The changes feed: what happened across the archive, newest first, one page at a time.

Two kinds of event make it up: versions of statements (published, edited, removed,
restored — not the baseline a watch records when it starts) and what happened to watches
themselves (failing, recovered: the alerts the checks raised). Both are read newest first
with the same filters and merged; a page ends at a cursor, `(at, source, id)`, that the next
page starts below, so paging is stable while new events arrive at the top. The `version`
table is read through its `observed_at` index, so the first page of 100,000 versions costs
what the first page of 100 does.

`store.feed` (`Store.changes` keeps its name).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import func, literal, or_, select

from monitor.store.database import Database, Row
from monitor.store.records import AlertRow, ChangeEvent, DeliveryRow
from monitor.store.schema import alert, delivery, discovered, document, version

VERSION_KINDS = ("published", "edited", "removed", "restored")
WATCH_KINDS = ("failing", "recovered")
KINDS = VERSION_KINDS + WATCH_KINDS
# Ties in time are ordered versions first, then by id (both descending).
_RANK = {"version": 1, "watch": 0}


_ID_LIMIT = 2**63


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page holds what sorts below it."""

    at: str
    source: str  # "version" | "watch"
    id: int

    def __str__(self) -> str:
        return f"{self.at}~{self.source}~{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        at, source, number = text.split("~")
        if source not in _RANK:
            raise ValueError(f"not a cursor: {text!r}")
        # Ids are 64-bit in both databases, and SQLite's driver overflows binding a larger
        # number: "below" a larger id is below the largest there can be.
        return cls(at, source, min(int(number), _ID_LIMIT - 1))


@dataclass(frozen=True)
class ChangeFilter:
    listing: str | None = None  # a watch: itself and the statement watches it discovered
    listings: Collection[str] | None = None  # any of these (a ministry's listings)
    language: str | None = None
    kinds: Collection[str] = KINDS
    since: str | None = None  # ISO times, inclusive / exclusive
    until: str | None = None
    below: Cursor | None = None


class ChangesFeed:
    """`store.feed`: the feed of the front page and of /api/v1/changes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def changes(
        self, wanted: ChangeFilter, limit: int = 50
    ) -> tuple[list[ChangeEvent], Cursor | None]:
        """Up to `limit` events, newest first, and the cursor of the next page (None: no
        more)."""
        events: list[ChangeEvent] = []
        if any(kind in VERSION_KINDS for kind in wanted.kinds):
            events += self._version_events(wanted, limit + 1)
        if any(kind in WATCH_KINDS for kind in wanted.kinds):
            events += self._watch_events(wanted, limit + 1)
        events.sort(key=lambda e: (e["at"], _RANK[e["source"]], e["id"]), reverse=True)
        page, more = events[:limit], len(events) > limit
        last = page[-1] if page and more else None
        return page, Cursor(last["at"], last["source"], last["id"]) if last else None

    def recent_alerts(self, watch_id: str | None, limit: int) -> list[AlertRow]:
        """The newest `limit` alerts (of one watch), newest first."""
        query = select(alert).order_by(alert.c.id.desc()).limit(limit)
        if watch_id:
            query = query.where(alert.c.watch_id == watch_id)
        return cast("list[AlertRow]", self.db.rows(query))

    def alert_deliveries(self, alert_ids: Collection[int]) -> list[DeliveryRow]:
        """The deliveries of these alerts, one per channel each."""
        if not alert_ids:
            return []
        query = select(delivery).where(delivery.c.alert_id.in_(list(alert_ids)))
        rows = self.db.rows(query.order_by(delivery.c.alert_id, delivery.c.id))
        return cast("list[DeliveryRow]", rows)

    def _version_events(self, wanted: ChangeFilter, limit: int) -> list[ChangeEvent]:
        listing = func.coalesce(discovered.c.parent_id, document.c.watch_id)
        query = (
            select(
                literal("version").label("source"),
                version.c.id,
                version.c.observed_at.label("at"),
                version.c.kind,
                version.c.seq,
                version.c.summary,
                version.c.score,
                version.c.confirmation,
                document.c.watch_id,
                document.c.key,
                document.c.title,
                document.c.language,
                document.c.url,
                listing.label("listing"),
            )
            .join(document, document.c.id == version.c.document_id)
            .outerjoin(discovered, discovered.c.watch_id == document.c.watch_id)
            .where(version.c.kind.in_([k for k in wanted.kinds if k in VERSION_KINDS]))
            .order_by(version.c.observed_at.desc(), version.c.id.desc())
            .limit(limit)
        )
        query = _of_listings(query, listing, wanted)
        if wanted.language:
            query = query.where(document.c.language == wanted.language)
        query = _in_period(query, version.c.observed_at, version.c.id, "version", wanted)
        return cast("list[ChangeEvent]", self.db.rows(query))

    def _watch_events(self, wanted: ChangeFilter, limit: int) -> list[ChangeEvent]:
        listing = func.coalesce(discovered.c.parent_id, alert.c.watch_id)
        query = (
            select(
                literal("watch").label("source"),
                alert.c.id,
                alert.c.created_at.label("at"),
                alert.c.kind,
                alert.c.watch_id,
                alert.c.payload,
                discovered.c.language,
                listing.label("listing"),
            )
            .outerjoin(discovered, discovered.c.watch_id == alert.c.watch_id)
            .where(alert.c.kind.in_([k for k in wanted.kinds if k in WATCH_KINDS]))
            .order_by(alert.c.created_at.desc(), alert.c.id.desc())
            .limit(limit)
        )
        query = _of_listings(query, listing, wanted)
        if wanted.language:
            query = query.where(discovered.c.language == wanted.language)
        query = _in_period(query, alert.c.created_at, alert.c.id, "watch", wanted)
        events: list[Row] = []
        for row in self.db.rows(query):
            payload = _payload(row.pop("payload"))
            events.append(
                {
                    **row,
                    "seq": None,
                    "key": None,
                    "title": payload.get("title") or payload.get("watch_name") or row["watch_id"],
                    "summary": payload.get("summary", ""),
                    "url": payload.get("url"),
                    "score": None,
                    "confirmation": None,
                }
            )
        return cast("list[ChangeEvent]", events)


def _of_listings(query: Any, listing: Any, wanted: ChangeFilter) -> Any:
    if wanted.listing:
        query = query.where(listing == wanted.listing)
    if wanted.listings is not None:
        query = query.where(listing.in_(list(wanted.listings)))
    return query


def _in_period(query: Any, at: Any, row_id: Any, source: str, wanted: ChangeFilter) -> Any:
    if wanted.since:
        query = query.where(at >= wanted.since)
    if wanted.until:
        query = query.where(at < wanted.until)
    cursor = wanted.below
    if cursor is not None:
        rank, theirs = _RANK[source], _RANK[cursor.source]
        if rank < theirs:  # this source sorts below the cursor's at the same moment
            query = query.where(at <= cursor.at)
        elif rank > theirs:
            query = query.where(at < cursor.at)
        else:
            # `at <= …` first, so the index on (at, id) bounds the scan: a deep page reads
            # from the cursor down, not the whole table up to it.
            query = query.where(at <= cursor.at, or_(at < cursor.at, row_id < cursor.id))
    return query


def _payload(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
