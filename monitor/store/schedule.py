"""Methods of `Store` for the scheduler: when checks are due, which daemon runs them, and
the watches a listing discovered.

Several daemons may share one PostgreSQL archive. Each schedules every watch itself; when
a job fires it *claims* the check: one conditional UPDATE that succeeds only if the watch
is due (`next_run_at`) and nobody else holds a live lease. The winner's lease is renewed
while the check runs, so a killed daemon's checks are taken over once its lease lapses,
and a check finished by one daemon moves `next_run_at` on, so nobody repeats that slot.
A conditional UPDATE is the row-level equivalent of `SELECT … FOR UPDATE SKIP LOCKED`
for one known row, and it works unchanged on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, or_, select

from monitor.clock import parse_iso
from monitor.store.records import iso
from monitor.store.schema import discovered, watch, watch_state
from monitor.store.sql import insert_ignore

Row = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ours, or when to look again (and who holds the lease)."""

    ok: bool
    retry_at: datetime | None = None
    holder: str | None = None


@dataclass(frozen=True)
class Discovery:
    """A statement a listing found, to become its own watch."""

    watch_id: str
    parent_id: str
    key: str
    url: str
    title: str
    language: str | None
    profile: str | None
    published: str | None
    translation_group: str | None
    announce: bool
    listed_sha256: str


class ScheduleMixin:
    def _rows(self, query: Any, flush: bool = True) -> list[Row]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- claims --------------------------------------------------------------------------

    def claim_check(
        self, watch_id: str, owner: str, now: datetime, early: float, lease: float
    ) -> Claim:
        """Take the check of a watch due within `early` seconds, with a lease of `lease`."""
        state = watch_state.c
        with self._write() as conn:
            claimed = conn.execute(
                watch_state.update()
                .where(
                    state.watch_id == watch_id,
                    or_(state.next_run_at.is_(None), state.next_run_at <= iso_after(now, early)),
                    or_(
                        state.lease_until.is_(None),
                        state.lease_until < iso(now),
                        state.lease_owner == owner,
                    ),
                )
                .values(lease_owner=owner, lease_until=iso_after(now, lease))
            ).rowcount
            if claimed:
                return Claim(True)
            row = conn.execute(
                select(state.next_run_at, state.lease_until, state.lease_owner).where(
                    state.watch_id == watch_id
                )
            ).first()
        if row is None:
            return Claim(False)
        times = [_parse(row.next_run_at)]
        holder = None
        if row.lease_until and row.lease_owner != owner and row.lease_until >= iso(now):
            times.append(_parse(row.lease_until))
            holder = row.lease_owner
        due = [t for t in times if t is not None]
        return Claim(False, max(due) if due else None, holder)

    def renew_leases(self, owner: str, watch_ids: Iterable[str], until: datetime) -> None:
        self._update_states(watch_ids, {"lease_until": iso(until)}, owner)

    def release_lease(self, watch_id: str, owner: str) -> None:
        """Give up `owner`'s lease (a no-op if someone else holds it by now)."""
        self._update_states([watch_id], {"lease_owner": None, "lease_until": None}, owner)

    def run_soon(self, watch_ids: Iterable[str], at: datetime) -> None:
        """Make watches due at `at` (a listing saw their statement change)."""
        self._update_states(watch_ids, {"next_run_at": iso(at)})

    def _update_states(
        self, watch_ids: Iterable[str], values: dict[str, Any], owner: str | None = None
    ) -> None:
        """Set scheduling columns of these watches (only where `owner` holds the lease)."""
        ids = list(watch_ids)
        if not ids:
            return
        query = watch_state.update().where(watch_state.c.watch_id.in_(ids))
        if owner is not None:
            query = query.where(watch_state.c.lease_owner == owner)
        with self._write() as conn:
            conn.execute(query.values(**values))

    # --- discovered watches ---------------------------------------------------------------

    def discovered(self, parent_ids: Iterable[str] | None = None) -> list[Row]:
        query = select(discovered).order_by(discovered.c.discovered_at, discovered.c.watch_id)
        if parent_ids is not None:
            query = query.where(discovered.c.parent_id.in_(list(parent_ids)))
        return self._rows(query)

    def add_discovered(self, found: list[Discovery], at: str) -> None:
        """Register new statement watches (and their `watch` rows) in one transaction."""
        with self._write() as conn:
            for item in found:
                conn.execute(
                    insert_ignore(conn, watch).values(
                        id=item.watch_id,
                        url=item.url,
                        profile=item.profile or "auto",
                        first_seen=at,
                    )
                )
                conn.execute(insert_ignore(conn, watch_state).values(watch_id=item.watch_id))
                conn.execute(
                    insert_ignore(conn, discovered).values(
                        watch_id=item.watch_id,
                        parent_id=item.parent_id,
                        key=item.key,
                        url=item.url,
                        title=item.title,
                        language=item.language,
                        profile=item.profile,
                        published=item.published,
                        translation_group=item.translation_group,
                        discovered_at=at,
                        announce=int(item.announce),
                        listed_sha256=item.listed_sha256,
                        last_listed_at=at,
                    )
                )

    def mark_listed(self, listed: dict[str, str | None], at: str) -> None:
        """Remember how the listing showed each statement ({watch id: statement sha})."""
        if not listed:
            return
        with self._write() as conn:
            for watch_id, sha in listed.items():
                conn.execute(
                    discovered.update()
                    .where(discovered.c.watch_id == watch_id)
                    .values(listed_sha256=sha, last_listed_at=at)
                )

    def discovery_of(self, watch_id: str) -> Row | None:
        """How a discovered watch was found (its listing, key, date), or None."""
        rows = self._rows(select(discovered).where(discovered.c.watch_id == watch_id))
        return rows[0] if rows else None

    def announces(self, watch_id: str) -> bool:
        """Whether the watch's first version is news ("published") rather than a baseline."""
        query = select(discovered.c.announce).where(discovered.c.watch_id == watch_id)
        rows = self._rows(query, flush=False)  # not a table the batch writes
        return bool(rows and rows[0]["announce"])

    def outage_reported(self, watch_id: str) -> bool:
        """Whether another watch of the same family (a discovering listing and its statement
        watches) has already raised a "failing" alert that has not recovered yet. A site
        that goes down fails all of them at once; one alert says so, not one per statement."""
        parent = func.coalesce(
            select(discovered.c.parent_id)
            .where(discovered.c.watch_id == watch_id)
            .scalar_subquery(),
            watch_id,
        )
        family = select(discovered.c.watch_id).where(discovered.c.parent_id == parent)
        query = (
            select(watch_state.c.watch_id)
            .where(
                watch_state.c.failure_alerted == 1,
                watch_state.c.watch_id != watch_id,
                or_(watch_state.c.watch_id == parent, watch_state.c.watch_id.in_(family)),
            )
            .limit(1)
        )
        return bool(self._rows(query))

    def translations(self, watch_id: str) -> list[Row]:
        """The other discovered watches of the same statement in other languages."""
        group = (
            select(discovered.c.translation_group)
            .where(discovered.c.watch_id == watch_id)
            .scalar_subquery()
        )
        return self._rows(
            select(discovered.c.watch_id, discovered.c.language, discovered.c.url)
            .where(discovered.c.translation_group == group, discovered.c.watch_id != watch_id)
            .order_by(discovered.c.language, discovered.c.watch_id)
        )


def iso_after(moment: datetime, seconds: float) -> str:
    return iso(moment + timedelta(seconds=seconds))


def _parse(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
