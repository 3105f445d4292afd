"""The watches the archive knows and their state: what every check reads and writes of
them, and where they come from (the config file, the UI, a listing).

All of it runs on the driver's connection in SQL text (`Plain` where a Core twin exists for
the other databases): a `check --once` of an archive that exists, 10,000 unchanged pages,
reads the states, registers nothing new, and writes a state per check, and it needs
nothing of SQLAlchemy for that (see database.py). Claims, leases and discovered watches
are schedule.py's.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import fields
from typing import Any, cast

from monitor.store.database import Database, Deferred, DriverStatement, Plain
from monitor.store.records import UiWatchRow, WatchState, now_iso

# watch_state's columns a WatchState holds, in the order of its fields: a row is read into
# one positionally (10,000 of them at a daemon's start). Leases belong to the claims
# (schedule.py); a check's commit leaves them alone.
STATE_COLUMNS = [f.name for f in fields(WatchState) if f.name != "watch_id"]
_VALIDATORS = STATE_COLUMNS.index("validators")
# Up to this many watches registered at once read only their own rows first (a watch
# registered late, a slice of a daemon's start); more read every watch's.
_FEW = 1000


# A watch's upsert and its state's first row (`WatchStates.sync_watches`), as SQLAlchemy
# compiles `registration_core` for SQLite (tests/test_store_plain.py checks that it does):
# a new archive's first sweep registers every watch before its first fetch, and building
# them in Core imported SQLAlchemy and the schema's tables there (0.15 s of CPU).
REGISTER_ORDER = ("id", "url", "profile", "first_seen")
REGISTER_SQLITE = (
    "INSERT INTO watch (id, url, profile, first_seen) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET url = excluded.url, profile = excluded.profile"
)
FIRST_STATE_SQLITE = "INSERT INTO watch_state (watch_id) VALUES (?) ON CONFLICT DO NOTHING"


def registration_core(dialect: Any) -> tuple[Any, Any]:
    """The Core twins of REGISTER_SQLITE and FIRST_STATE_SQLITE, with `dialect`'s ON
    CONFLICT (a store dialect, dialect/)."""
    from monitor.store.schema import watch, watch_state

    insert = dialect.insert(watch)
    update = insert.on_conflict_do_update(
        index_elements=["id"],
        set_={"url": insert.excluded.url, "profile": insert.excluded.profile},
    )
    return update, dialect.insert(watch_state).on_conflict_do_nothing()


def _update_state_core() -> Any:
    from sqlalchemy import bindparam

    from monitor.store.schema import watch_state

    return watch_state.update().where(watch_state.c.watch_id == bindparam("state_of"))


UPDATE_STATE = Plain(
    "states: update",
    f"UPDATE watch_state SET {', '.join(f'{name}=?' for name in STATE_COLUMNS)} "
    "WHERE watch_state.watch_id = ?",
    (*STATE_COLUMNS, "state_of"),
    _update_state_core,
)


def _ui_watches_core() -> Any:
    from sqlalchemy import select

    from monitor.store.schema import ui_watch

    return select(ui_watch).order_by(ui_watch.c.id)


UI_WATCHES = Plain(
    "states: ui watches",
    "SELECT ui_watch.id, ui_watch.config, ui_watch.updated_at, ui_watch.updated_by "
    "FROM ui_watch ORDER BY ui_watch.id",
    (),
    _ui_watches_core,
)


def _saved_mark_core() -> Any:
    from sqlalchemy import func, select

    from monitor.store.schema import ui_watch

    return select(func.count(), func.max(ui_watch.c.updated_at)).select_from(ui_watch)


def _found_mark_core() -> Any:
    from sqlalchemy import func, select

    from monitor.store.schema import discovered

    return select(
        func.count(),
        func.max(discovered.c.discovered_at),
        func.max(discovered.c.last_listed_at),
    ).select_from(discovered)


SAVED_MARK = Plain(
    "states: saved mark",
    "SELECT count(*) AS count_1, max(ui_watch.updated_at) AS max_1 FROM ui_watch",
    (),
    _saved_mark_core,
)
FOUND_MARK = Plain(
    "states: found mark",
    "SELECT count(*) AS count_1, max(discovered.discovered_at) AS max_1, "
    "max(discovered.last_listed_at) AS max_2 FROM discovered",
    (),
    _found_mark_core,
)


def _attachment_watches_core() -> Any:
    from sqlalchemy import select

    from monitor.store.schema import attachment

    return select(attachment.c.watch_id).distinct()


ATTACHMENT_WATCHES = Plain(
    "states: attachment watches",
    "SELECT DISTINCT attachment.watch_id FROM attachment",
    (),
    _attachment_watches_core,
)


class WatchStates:
    """`store.watch_states`: the watches the archive knows, their state and sources."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._update_state = db.plain(UPDATE_STATE)
        # Several watches' states in one query with one parameter (a JSON array on SQLite,
        # an array on PostgreSQL): one SQL text, however many watches are asked for.
        columns = ", ".join(["watch_id", *STATE_COLUMNS])
        self._select_all_states = f"SELECT {columns} FROM watch_state"
        self._select_states = f"{self._select_all_states} WHERE {db.dialect.any_of('watch_id')}"
        self._select_known = "SELECT id, url, profile FROM watch"
        self._select_known_of = f"{self._select_known} WHERE {db.dialect.any_of('id')}"
        self._register: tuple[DriverStatement, DriverStatement] | None = None
        seconds = db.dialect.seconds
        self._select_health = (
            "SELECT watch_id, last_check_at, failing_since, failure_reason, last_change_at "
            "FROM watch_state"
        )
        self._select_table = (
            "SELECT w.id, w.url, s.last_check_at, s.failing_since, s.failure_reason, "
            "s.last_change_at, s.next_run_at FROM watch AS w "
            "LEFT JOIN watch_state AS s ON s.watch_id = w.id ORDER BY w.id"
        )
        self._select_rhythms = (
            f"SELECT watch_id, {seconds('last_check_at')}, {seconds('next_run_at')} "
            "FROM watch_state"
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
        """A watch's upsert and its state's first row, prepared on first use (a watch new
        to the archive): on SQLite their text, elsewhere Core's, with the dialect's ON
        CONFLICT."""
        if self._register is None:
            if self.db.dialect.name == "sqlite":
                self._register = (
                    DriverStatement.of_text(REGISTER_SQLITE, REGISTER_ORDER),
                    DriverStatement.of_text(FIRST_STATE_SQLITE, ("watch_id",)),
                )
            else:
                update, state = registration_core(self.db.dialect)
                self._register = (
                    self.db.prepare(update, list(REGISTER_ORDER)),
                    self.db.prepare(state, ["watch_id"]),
                )
        return self._register

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
        saved = self.db.driver_rows("SELECT id FROM ui_watch", (), flush=False)
        found = self.db.driver_rows("SELECT watch_id FROM discovered", (), flush=False)
        return {row[0] for row in saved}, {row[0] for row in found}

    def watch_sources_mark(self) -> tuple[Any, ...]:
        """What changes when the store's watches do (one saved or deleted in the UI, a
        statement discovered or listed again): a snapshot of the watches in force made
        when this was the same is still the one to use (`monitor serve`, wiring.py)."""
        saved = self.db.plain_rows(SAVED_MARK, flush=False)[0]
        found = self.db.plain_rows(FOUND_MARK, flush=False)[0]
        return (*saved.values(), *found.values())

    def ui_watches(self) -> list[UiWatchRow]:
        """The watches saved in the UI, by id, each with its settings."""
        rows = self.db.plain_rows(UI_WATCHES)
        for row in rows:
            row["config"] = json.loads(row["config"])
        return cast("list[UiWatchRow]", rows)

    def attachment_watches(self) -> set[str]:
        """The watches that have fetched an attachment at least once (attachments.py)."""
        rows = self.db.plain_rows(ATTACHMENT_WATCHES, flush=False)
        return {row["watch_id"] for row in rows}

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
        """The update of a watch's state, for the batch of a check (checks.py). Its health
        columns are written only here, with the check's check_run row in the same
        transaction: `overview.WatchHealth` reads again only the watches with a check_run
        row past the last it saw, so a write of them without one would go unseen."""
        return self._update_state, _state_values(state)


def _watch_state(watch_id: str, values: Any) -> WatchState:
    """A WatchState from watch_state's columns, in STATE_COLUMNS order."""
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
