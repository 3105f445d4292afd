"""`store.overview`: every statement as the watch list shows it — its newest version, its
watch's health, how it was discovered — in one query, and the languages the archive holds.

The newest version of each statement is found through the (document_id, seq) unique index,
so the cost grows with the number of statements, not with the number of versions.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import and_, func, select

from monitor.store.database import Database, DriverStatement
from monitor.store.fulltext import SEARCH_META
from monitor.store.records import StatementRow, WatchStatusRow
from monitor.store.schema import (
    check_run,
    discovered,
    document,
    get_meta,
    version,
    watch,
    watch_state,
)

# What the API's list of watches shows of a watch's state, in this order (`watch_health`).
HEALTH_COLUMNS = ("last_check_at", "failing_since", "failure_reason", "last_change_at")


class Overview:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._watch_states: DriverStatement | None = None
        self._statements: DriverStatement | None = None
        self._snapshot: str | None = None  # PostgreSQL's function for data_mark

    def statements(self) -> list[StatementRow]:
        """One row per statement (document): id, watch_id, key, url, language, title,
        first_seen, removed_at; its newest version (last_seq, last_kind, last_at); its watch's
        failing_since, failure_reason and last_check_at; the listing it belongs to
        (`listing`: the discovering listing, else its own watch) and translation_group."""
        # Each document's newest seq looked up in the (document_id, seq) index: a GROUP BY
        # over the version table read all 100,000 entries of it (13-16 ms against 2).
        older = version.alias("older")
        newest = (
            select(older.c.seq)
            .where(older.c.document_id == document.c.id)
            .order_by(older.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(
                document.c.id,
                document.c.watch_id,
                document.c.key,
                document.c.url,
                func.coalesce(document.c.language, discovered.c.language).label("language"),
                document.c.title,
                document.c.first_seen,
                document.c.removed_at,
                version.c.seq.label("last_seq"),
                version.c.kind.label("last_kind"),
                version.c.observed_at.label("last_at"),
                watch_state.c.failing_since,
                watch_state.c.failure_reason,
                watch_state.c.last_check_at,
                func.coalesce(discovered.c.parent_id, document.c.watch_id).label("listing"),
                discovered.c.translation_group,
            )
            .select_from(document)
            .join(version, and_(version.c.document_id == document.c.id, version.c.seq == newest))
            .outerjoin(watch_state, watch_state.c.watch_id == document.c.watch_id)
            .outerjoin(discovered, discovered.c.watch_id == document.c.watch_id)
            .order_by(document.c.id)
        )
        if self._statements is None:  # on the driver: 1,000 rows through SQLAlchemy were a
            self._statements = self.db.prepare(query, [])  # fifth of every grouped page
        return cast("list[StatementRow]", self.db.prepared_rows(self._statements, {}))

    def watch_states(self) -> list[WatchStatusRow]:
        """Every watch the archive knows: id, url, last_check_at, failing_since,
        failure_reason, and `parent`: the listing that discovered it (None: a listing, or a
        page watched on its own). On the driver: 10,000 rows through SQLAlchemy took 40 ms
        of every grouped watch list."""
        query = (
            select(
                watch.c.id,
                watch.c.url,
                watch_state.c.last_check_at,
                watch_state.c.failing_since,
                watch_state.c.failure_reason,
                discovered.c.parent_id.label("parent"),
            )
            .outerjoin(watch_state, watch_state.c.watch_id == watch.c.id)
            .outerjoin(discovered, discovered.c.watch_id == watch.c.id)
            .order_by(watch.c.id)
        )
        if self._watch_states is None:
            self._watch_states = self.db.prepare(query, [])
        return cast("list[WatchStatusRow]", self.db.prepared_rows(self._watch_states, {}))

    def watch_ids(self) -> list[str]:
        """The id of every watch the archive knows."""
        return [row[0] for row in self.db.driver_rows(f"SELECT id FROM {watch.name}", ())]

    def watch_table_of(self, ids: list[str]) -> list[tuple[Any, ...]]:
        """`Store.watch_table`'s rows of these watches only (a page of the table of every
        watch shows 200 of 10,000)."""
        if not ids:
            return []
        state = watch_state.c
        query = (
            select(
                watch.c.id,
                watch.c.url,
                state.last_check_at,
                state.failing_since,
                state.failure_reason,
                state.last_change_at,
                state.next_run_at,
            )
            .outerjoin(watch_state, state.watch_id == watch.c.id)
            .where(watch.c.id.in_(ids))
        )
        with self.db.read() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def data_mark(self) -> tuple[Any, ...]:
        """A mark that changes whenever anything in the archive's database may have changed
        since it was last read, at the cost of one statement that reads no table: what
        the web UI keys its pages on (with 10,000 watches, reading what a page shows cost
        10-30 ms; this mark, a few microseconds). Read it before what it vouches for: a
        commit between the two only makes the next mark differ.

        SQLite: `PRAGMA data_version` (changes when another connection, in this process or
        any other, committed) and this connection's `total_changes` (its own writes).
        PostgreSQL: the current snapshot (`pg_current_snapshot`): it differs as soon as any
        transaction of the server ended, since which transactions are visible is all it
        holds. Both are exact, and errs only the safe way (a commit elsewhere on the same
        server, a rolled-back write)."""
        if self.db.dialect.name == "sqlite":
            with self.db.driver_of(self.db.connection()) as raw:
                (version,) = raw.execute("PRAGMA data_version").fetchone()
                return id(raw), version, raw.total_changes
        with self.db.driver_of(self.db.connection()) as raw:
            if self._snapshot is None:
                old = raw.info.server_version < 130000
                self._snapshot = "txid_current_snapshot" if old else "pg_current_snapshot"
            rows = self.db.dialect.driver_rows(raw, f"SELECT {self._snapshot}()::text", ())
            return id(raw), rows[0][0]

    def statements_mark(self) -> tuple[Any, ...] | None:
        """SQLite: what `statements` reads but its watches' failures, as it changes: the
        newest version's id, the number of documents and of discovered rows (one
        statement). A document is written only with a version of it, a version or a
        discovered row is never deleted and a discovered row's fields read here never
        change; SQLite gives a new version the largest id plus one, one writer at a time.
        So with the same mark, and the same failures of every watch, `statements` reads
        the same. None on PostgreSQL, whose ids are not given in the order transactions
        commit."""
        if self.db.dialect.name != "sqlite":
            return None
        sql = (
            f"SELECT (SELECT max(id) FROM {version.name}), (SELECT count(*) FROM "
            f"{document.name}), (SELECT count(*) FROM {discovered.name})"
        )
        return tuple(self.db.driver_rows(sql, ())[0])

    def directory_mark(self) -> tuple[Any, ...]:
        """The numbers of watches and of discovered rows. Neither kind of row is deleted,
        and a watch's listing (its discovered row's parent) never changes: the same
        numbers, the same listings (`listings` of the front pages)."""
        sql = (
            f"SELECT (SELECT count(*) FROM {watch.name}), (SELECT count(*) FROM {discovered.name})"
        )
        return tuple(self.db.driver_rows(sql, ())[0])

    def watches_mark(self) -> int:
        """The number of watches the archive knows: the same number, the same watches
        (`watch_ids`; a row of the watch table is never deleted)."""
        return int(self.db.driver_rows(f"SELECT count(*) FROM {watch.name}", ())[0][0])

    def search_mark(self) -> tuple[int, int]:
        """What a search's hits depend on: the newest version indexed for search (see
        fulltext.py) and the newest version (a document's title or removal changes only
        with a version of it). A search made when both were the same found the same."""
        with self.db.read(flush=False) as conn:
            upto = int(get_meta(conn, SEARCH_META) or 0)
            newest = conn.execute(select(func.max(version.c.id))).scalar()
        return upto, int(newest or 0)

    def languages(self) -> list[str]:
        """The languages of the statements archived, in alphabetical order."""
        query = (
            select(document.c.language)
            .where(document.c.language.is_not(None))
            .distinct()
            .order_by(document.c.language)
        )
        return [row["language"] for row in self.db.rows(query)]


class WatchHealth:
    """Every watch's (last_check_at, failing_since, failure_reason, last_change_at) by id,
    as `Store.watch_health` reads it, kept between reads: on SQLite a read after the first
    reads only the states of the watches checked since (a daemon's checks change a few
    between two requests; reading all 10,000 cost 17 ms, these a millisecond).

    Why that is exact (SQLite): a watch's health is written only with a check, and every
    check inserts its check_run row in the same transaction (`CheckWrites.commit_check`).
    SQLite has one writer at a time and gives a new row the table's largest id plus one,
    so the check_run rows committed since a read are exactly those past the largest id it
    saw, unless that row was deleted (the pruning of old checks deletes a prefix of ids:
    when every row goes, ids start again): the row is looked up again, and when it is gone
    or another, every state is read (as they are while there is no check_run row: rows
    may have come and gone since). A watch registered since (its first, empty state
    row) changes the number of rows, so every state is read too; no state row is ever
    deleted. Each read is one statement, so one snapshot of the archive.

    PostgreSQL gives ids from a sequence, not in the order transactions commit: every
    state is read each time, as `watch_health` does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.health: dict[str, tuple[Any, ...]] = {}
        # (largest check_run id, its watch_id, its at, state rows) at the last read; None:
        # every state is to be read.
        self._seen: tuple[Any, ...] | None = None
        states = f"SELECT 1, watch_id, {', '.join(HEALTH_COLUMNS)}, NULL FROM {watch_state.name}"
        runs = check_run.name
        # The newest check_run row and the number of state rows, then the row that was
        # the newest at the last read (:seen, -1: none) as it is now.
        head = (
            f"SELECT 0, t.id, t.watch_id, t.at, "
            f"(SELECT count(*) FROM {watch_state.name}), o.watch_id, o.at "
            f"FROM (SELECT 1) LEFT JOIN {runs} AS t ON t.id = (SELECT max(id) FROM {runs}) "
            f"LEFT JOIN {runs} AS o ON o.id = :seen"
        )
        self._states = states
        self._every = f"{head} UNION ALL {states}"
        self._since = (
            f"{head} UNION ALL {states} "
            f"WHERE watch_id IN (SELECT watch_id FROM {runs} WHERE id > :seen)"
        )

    def read(self) -> tuple[dict[str, tuple[Any, ...]], list[str] | None]:
        """Every watch's health now, and the ids of the watches whose health may have
        changed since the last read (None: any may have, as at the first read). The dict
        is this object's own, updated in place: read it, do not change it."""
        if self.db.dialect.name != "sqlite":
            rows = self.db.driver_rows(self._states, ())
            self.health = {row[1]: tuple(row[2:6]) for row in rows}
            return self.health, None
        seen = self._seen
        if seen is not None and seen[0] is not None:  # else no row to find again
            rows = self.db.driver_rows(self._since, {"seen": seen[0]})
            (_, top, top_watch, top_at, count, was_watch, was_at), *states = rows
            if (was_watch, was_at) == (seen[1], seen[2]) and count == seen[3]:
                self._seen = (top, top_watch, top_at, count)
                changed = [row[1] for row in states]
                for row in states:
                    self.health[row[1]] = tuple(row[2:6])
                return self.health, changed
        rows = self.db.driver_rows(self._every, {"seen": -1})
        (_, top, top_watch, top_at, count, _was, _at), *states = rows
        self._seen = (top, top_watch, top_at, count)
        self.health = {row[1]: tuple(row[2:6]) for row in states}
        return self.health, None
