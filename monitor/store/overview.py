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
from monitor.store.schema import discovered, document, get_meta, version, watch, watch_state


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
