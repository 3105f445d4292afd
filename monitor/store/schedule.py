"""The schedule: when checks are due, which daemon runs them, and the watches a listing
discovered (the watches' states, which every check reads and writes, are states.py's).

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, func, or_, select

from monitor.clock import parse_iso
from monitor.store.database import Database
from monitor.store.dialect import insert_ignore
from monitor.store.records import (
    DiscoveredRow,
    Discovery,
    TranslationRow,
    WatchStateRow,
    iso,
)
from monitor.store.schema import discovered, watch, watch_state

__all__ = ["Claim", "Discovery", "Schedule"]


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: ours, or when to look again (and who holds the lease)."""

    ok: bool
    retry_at: datetime | None = None
    holder: str | None = None


class Schedule:
    """`store.schedule`: claims and leases, and the watches listings discovered (the
    watches' states are `store.watch_states`, states.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- every watch's row, through SQLAlchemy --------------------------------------------

    def watch_rows(self) -> list[WatchStateRow]:
        """Every watch the archive knows, with its state (configured or not any more)."""
        return cast(
            "list[WatchStateRow]",
            self.db.rows(
                select(watch, *[c for c in watch_state.c if c.name != "watch_id"])
                .outerjoin(watch_state, watch_state.c.watch_id == watch.c.id)
                .order_by(watch.c.id)
            ),
        )

    def watch_row(self, watch_id: str) -> WatchStateRow | None:
        """`watch_rows()`'s row of one watch (a page about one watch of 10,000 read them all)."""
        return cast(
            "WatchStateRow | None",
            self.db.row(
                select(watch, *[c for c in watch_state.c if c.name != "watch_id"])
                .outerjoin(watch_state, watch_state.c.watch_id == watch.c.id)
                .where(watch.c.id == watch_id)
            ),
        )

    # --- claims --------------------------------------------------------------------------

    def claim_check(
        self, watch_id: str, owner: str, now: datetime, early: float, lease: float
    ) -> Claim:
        """Take the check of a watch due within `early` seconds, with a lease of `lease`."""
        state = watch_state.c
        with self.db.write() as conn:
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
        with self.db.write() as conn:
            conn.execute(query.values(**values))

    # --- discovered watches ---------------------------------------------------------------

    def discovered(self, parent_ids: Iterable[str] | None = None) -> list[DiscoveredRow]:
        query = select(discovered).order_by(discovered.c.discovered_at, discovered.c.watch_id)
        if parent_ids is not None:
            query = query.where(discovered.c.parent_id.in_(list(parent_ids)))
        return cast("list[DiscoveredRow]", self.db.rows(query))

    def add_discovered(self, found: list[Discovery], at: str) -> None:
        """Register new statement watches (and their `watch` rows) in one transaction."""
        with self.db.write() as conn:
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
        with self.db.write() as conn:
            for watch_id, sha in listed.items():
                conn.execute(
                    discovered.update()
                    .where(discovered.c.watch_id == watch_id)
                    .values(listed_sha256=sha, last_listed_at=at)
                )

    def discovery_of(self, watch_id: str) -> DiscoveredRow | None:
        """How a discovered watch was found (its listing, key, date), or None."""
        query = select(discovered).where(discovered.c.watch_id == watch_id)
        return cast("DiscoveredRow | None", self.db.row(query))

    def family(self, watch_id: str) -> list[str]:
        """A watch and the statement watches it discovered (where a listing's statements
        are archived)."""
        return [watch_id, *(row["watch_id"] for row in self.discovered([watch_id]))]

    def announces(self, watch_id: str) -> bool:
        """Whether the watch's first version is news ("published") rather than a baseline."""
        # Read for every new page: prepared once (see `Database.prepared_rows`).
        query = self.db.prepared("schedule: announces", _announces_query)
        rows = self.db.prepared_rows(query, {"watch_id": watch_id}, flush=False)
        return bool(rows and rows[0]["announce"])  # flush=False: not a table the batch writes

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
        return bool(self.db.rows(query))

    def translations(self, watch_id: str) -> list[TranslationRow]:
        """The other discovered watches of the same statement in other languages (read for
        every alert: prepared once, see `Database.prepared_rows`)."""
        query = self.db.prepared("schedule: translations", _translations_query)
        return cast("list[TranslationRow]", self.db.prepared_rows(query, {"watch_id": watch_id}))


def _announces_query() -> Any:
    return select(discovered.c.announce).where(discovered.c.watch_id == bindparam("watch_id"))


def _translations_query() -> Any:
    watch_id: Any = bindparam("watch_id")
    group = (
        select(discovered.c.translation_group)
        .where(discovered.c.watch_id == watch_id)
        .scalar_subquery()
    )
    return (
        select(discovered.c.watch_id, discovered.c.language, discovered.c.url)
        .where(discovered.c.translation_group == group, discovered.c.watch_id != watch_id)
        .order_by(discovered.c.language, discovered.c.watch_id)
    )


def iso_after(moment: datetime, seconds: float) -> str:
    return iso(moment + timedelta(seconds=seconds))


def _parse(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
