"""The schedule: the watches the archive knows and their state, when checks are due,
which daemon runs them, and the watches a listing discovered.

Several daemons may share one PostgreSQL archive. Each schedules every watch itself; when
a job fires it *claims* the check: one conditional UPDATE that succeeds only if the watch
is due (`next_run_at`) and nobody else holds a live lease. The winner's lease is renewed
while the check runs, so a killed daemon's checks are taken over once its lease lapses,
and a check finished by one daemon moves `next_run_at` on, so nobody repeats that slot.
A conditional UPDATE is the row-level equivalent of `SELECT … FOR UPDATE SKIP LOCKED`
for one known row, and it works unchanged on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, func, or_, select

from monitor.clock import parse_iso
from monitor.store.database import Database, Deferred, DriverStatement
from monitor.store.dialect import insert_ignore
from monitor.store.records import (
    DiscoveredRow,
    TranslationRow,
    WatchState,
    WatchStateRow,
    iso,
    now_iso,
)
from monitor.store.schema import discovered, ui_watch, watch, watch_state

# watch_state's columns a WatchState holds, in the order of its fields: a row is read into
# one positionally (10,000 of them at a daemon's start). Leases belong to the claims
# below; a check's commit leaves them alone.
_STATE_COLUMNS = [f.name for f in fields(WatchState) if f.name != "watch_id"]
assert all(name in watch_state.c for name in _STATE_COLUMNS), "WatchState and schema differ"
_VALIDATORS = _STATE_COLUMNS.index("validators")
# Up to this many watches registered at once read only their own rows first (a watch
# registered late, a slice of a daemon's start); more read every watch's.
_FEW = 1000


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


class Schedule:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._update_state = db.prepare(
            watch_state.update().where(watch_state.c.watch_id == bindparam("state_of")),
            _STATE_COLUMNS,
        )
        # Several watches' states in one query with one parameter (a JSON array on SQLite,
        # an array on PostgreSQL): one SQL text, however many watches are asked for.
        columns = ", ".join(["watch_id", *_STATE_COLUMNS])
        self._select_all_states = f"SELECT {columns} FROM {watch_state.name}"
        self._select_states = f"{self._select_all_states} WHERE {db.dialect.any_of('watch_id')}"
        self._select_known = f"SELECT id, url, profile FROM {watch.name}"
        self._select_known_of = f"{self._select_known} WHERE {db.dialect.any_of('id')}"
        self._register: tuple[DriverStatement, DriverStatement] | None = None
        seconds = db.dialect.seconds
        self._select_health = (
            "SELECT watch_id, last_check_at, failing_since, failure_reason, last_change_at "
            f"FROM {watch_state.name}"
        )
        self._select_table = (
            "SELECT w.id, w.url, s.last_check_at, s.failing_since, s.failure_reason, "
            f"s.last_change_at, s.next_run_at FROM {watch.name} AS w "
            f"LEFT JOIN {watch_state.name} AS s ON s.watch_id = w.id ORDER BY w.id"
        )
        self._select_rhythms = (
            f"SELECT watch_id, {seconds('last_check_at')}, {seconds('next_run_at')} "
            f"FROM {watch_state.name}"
        )

    # --- watches and their state ---------------------------------------------------------

    def sync_watch(self, watch_id: str, url: str, profile: str) -> None:
        self.sync_watches([(watch_id, url, profile)])

    def sync_watches(self, watches: list[tuple[str, str, str]]) -> None:
        """Register (id, url, profile) of watches, in one transaction. Rows already up to
        date are not written: a daemon starting with 10,000 watches would otherwise spend
        seconds rewriting what it already has. On the driver's connection: through
        SQLAlchemy, reading 100,000 rows and writing them cost 1.7 s of a daemon's start."""
        if not watches:
            return
        if len(watches) <= _FEW:  # one watch registered late, a slice: only theirs read
            ids = self.db.dialect.many([w[0] for w in watches])
            rows = self.db.driver_rows(self._select_known_of, (ids,))
        else:
            rows = self.db.driver_rows(self._select_known, ())
        known = {watch_id: (url, profile) for watch_id, url, profile in rows}
        del rows
        stale = [w for w in watches if known.get(w[0]) != (w[1], w[2])]
        if not stale:
            return
        register, first_state = self._registration()
        first_seen = now_iso()
        # One statement per table, run over all rows (executemany), not two per watch;
        # the watches first (watch_state's rows name them).
        writes: list[Deferred] = [
            (register, {"id": i, "url": url, "profile": profile, "first_seen": first_seen})
            for i, url, profile in stale
        ]
        writes += [(first_state, {"watch_id": w[0]}) for w in stale]
        self.db.write_now(writes)

    def _registration(self) -> tuple[DriverStatement, DriverStatement]:
        """A watch's upsert and its state's first row, prepared on first use."""
        if self._register is None:
            insert = self.db.dialect.insert(watch)
            update = insert.on_conflict_do_update(
                index_elements=["id"],
                set_={"url": insert.excluded.url, "profile": insert.excluded.profile},
            )
            state = self.db.dialect.insert(watch_state).on_conflict_do_nothing()
            self._register = (
                self.db.prepare(update, ["id", "url", "profile", "first_seen"]),
                self.db.prepare(state, ["watch_id"]),
            )
        return self._register

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

    def watch_health(self) -> dict[str, tuple[Any, ...]]:
        """Every watch's (last_check_at, failing_since, failure_reason, last_change_at), by
        id, on the driver: what the API's list of 10,000 watches shows of their state
        (`watch_rows` builds a dict of every column of each through SQLAlchemy, 40 ms)."""
        rows = self.db.driver_rows(self._select_health, ())
        return {row[0]: tuple(row[1:]) for row in rows}

    def watch_table(self) -> list[tuple[Any, ...]]:
        """Every watch the archive knows, by id: (id, url, last_check_at, failing_since,
        failure_reason, last_change_at, next_run_at), on the driver (the UI's table of
        every watch; `watch_rows` reads every column of 10,000 through SQLAlchemy)."""
        return self.db.driver_rows(self._select_table, ())

    def watch_sources(self) -> tuple[set[str], set[str]]:
        """The ids of the watches saved in the UI, and of those a listing discovered."""
        saved = self.db.driver_rows(f"SELECT id FROM {ui_watch.name}", (), flush=False)
        found = self.db.driver_rows(f"SELECT watch_id FROM {discovered.name}", (), flush=False)
        return {row[0] for row in saved}, {row[0] for row in found}

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

    def watch_sources_mark(self) -> tuple[Any, ...]:
        """What changes when the store's watches do (one saved or deleted in the UI, a
        statement discovered or listed again): a snapshot of the watches in force made
        when this was the same is still the one to use (`monitor serve`, wiring.py)."""
        saved = select(func.count(), func.max(ui_watch.c.updated_at)).select_from(ui_watch)
        found = select(
            func.count(),
            func.max(discovered.c.discovered_at),
            func.max(discovered.c.last_listed_at),
        ).select_from(discovered)
        with self.db.read(flush=False) as conn:
            return (*conn.execute(saved).one(), *conn.execute(found).one())

    def state(self, watch_id: str) -> WatchState:
        """The watch's state, read on the driver's connection: one check reads it once."""
        return self.states([watch_id]).get(watch_id) or WatchState(watch_id)

    def states(self, watch_ids: Collection[str] | None = None) -> dict[str, WatchState]:
        """The states of these watches (default: every watch), in one query: for a run
        or a moment that checks many watches at once. A watch never checked may be
        missing."""
        if watch_ids is None:
            # On the driver: SQLAlchemy's rows cost more than building the states from them.
            rows = self.db.driver_rows(self._select_all_states, ())
        else:
            wanted = list(watch_ids)
            # The batch is written first only when it holds one of these states: a daemon
            # reads states every second, and writing the batch each time cost it a commit.
            flush = self.db.batch_holds(wanted)
            ids = self.db.dialect.many(wanted)
            rows = self.db.driver_rows(self._select_states, (ids,), flush=flush)
        return {row[0]: _watch_state(row[0], row[1:]) for row in rows}

    def rhythms(self) -> dict[str, tuple[str, float | None, float | None]]:
        """Every watch's (id, last_check_at, next_run_at), the two as timestamps, by id: all
        a daemon's start needs of their states (100,000 whole states cost it a second and
        40 MiB at once), worked out by the database (parsing 200,000 texts cost 0.3 s)."""
        return {row[0]: row for row in self.db.driver_rows(self._select_rhythms, ())}

    def state_write(self, state: WatchState) -> Deferred:
        """The update of a watch's state, for the batch of a check (archive.py). Its health
        columns are written only here, with the check's check_run row in the same
        transaction: `overview.WatchHealth` reads again only the watches with a check_run
        row past the last it saw, so a write of them without one would go unseen."""
        return self._update_state, _state_values(state)

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


def _watch_state(watch_id: str, values: Any) -> WatchState:
    """A WatchState from watch_state's columns, in _STATE_COLUMNS order."""
    columns = list(values)
    columns[_VALIDATORS] = json.loads(columns[_VALIDATORS])
    state = WatchState(watch_id, *columns)
    state.failure_alerted = bool(state.failure_alerted)
    state.pending = bool(state.pending)
    return state


def _state_values(state: WatchState) -> dict[str, Any]:
    return {
        "state_of": state.watch_id,
        "last_check_at": state.last_check_at,
        "last_ok_at": state.last_ok_at,
        "last_change_at": state.last_change_at,
        "failing_since": state.failing_since,
        "failure_reason": state.failure_reason,
        "failure_alerted": int(state.failure_alerted),
        "consecutive_failures": state.consecutive_failures,
        "validators": json.dumps(state.validators),
        "since_full": state.since_full,
        "next_run_at": state.next_run_at,
        "pending": int(state.pending),
    }


def iso_after(moment: datetime, seconds: float) -> str:
    return iso(moment + timedelta(seconds=seconds))


def _parse(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None
