"""SQLite: one file in the data directory, one process checking it (the writer lock)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import searchquery
from monitor.store.dialect import MARK_END, MARK_START, SEARCH_COLUMNS, Dialect, Row
from monitor.store.writer import WriterLock

# SQLAlchemy is imported where it is used (see connect_driver).
if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table, TextClause

    from monitor.searchquery import Query

# Seconds a writer waits for another process's write lock (the daemon and a CLI command).
_LOCK_TIMEOUT = 30

_INSERT_TEXT = "INSERT INTO version_text (rowid, title, body) VALUES (:id, :title, :body)"
_SEARCH = (
    f"SELECT {SEARCH_COLUMNS}, "
    f"snippet(version_text, -1, '{MARK_START}', '{MARK_END}', '…', 24) AS snippet "
    "FROM version_text JOIN version AS v ON v.id = version_text.rowid "
    "JOIN document AS d ON d.id = v.document_id "
    "WHERE version_text MATCH :q {where} AND version_text.rowid >= {oldest} "
    "ORDER BY bm25(version_text, 4.0, 1.0) LIMIT :limit"
)
# The oldest version ranked (fulltext.RANKED): FTS5 reads its matches newest first and stops
# there, and the rowid range is a constraint FTS5 itself applies; 0 when there are fewer.
# The snippets, computed before the sort, are then made for RANKED rows at most.
_OLDEST_RANKED = (
    "COALESCE((SELECT version_text.rowid FROM version_text WHERE version_text MATCH :q "
    "ORDER BY version_text.rowid DESC LIMIT 1 OFFSET :ranked), 0)"
)


# The DDL of a new archive at the latest schema (`SQLite.create_on_driver`).
NEW_ARCHIVE = Path(__file__).with_name("sqlite_new.sql")


def _new_archive_statements() -> list[str]:
    """NEW_ARCHIVE's statements, each as SQLite keeps it in sqlite_master (its text may hold
    blank lines and tabs: a statement ends where its text is a complete one)."""
    statements: list[str] = []
    current = ""
    for line in NEW_ARCHIVE.read_text(encoding="utf-8").splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip().removesuffix(";"))
            current = ""
    if current.strip():
        raise ValueError(f"{NEW_ARCHIVE} ends inside a statement")
    return statements


class SQLite(Dialect):
    name = "sqlite"
    shared = False
    # A new archive keeps its blob bytes in the database: a page's body and statement,
    # zstd-compressed, are a few KB, where SQLite reads and writes a blob faster than the
    # filesystem a file ("Internal Versus External BLOBs", "35% Faster Than The
    # Filesystem", sqlite.org: below ~100 KB), and a new file cost 0.4-0.6 ms of the
    # kernel's on this project's ext4, two per new page, with its fsyncs. An archive made
    # with files keeps them (`meta`), as does `[store] blobs = "path"`.
    default_blobs = "db"
    # Until the 21st session a new SQLite archive's blobs were files.
    unrecorded_blobs = "path"

    def connect_driver(self, root: Path) -> sqlite3.Connection:
        # The connection SQLAlchemy's pysqlite dialect would open (check_same_thread off,
        # as it sets for a file: its pool may hand it to another thread), opened here so
        # that a `check --once` of an archive that exists, which needs none of SQLAlchemy,
        # does not import it (a third of its start-up's instructions): the engine, when
        # something needs it, is made over this same connection (`engine`).
        root.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.database_file(root), timeout=_LOCK_TIMEOUT, check_same_thread=False
        )
        try:
            # The driver must not open transactions on its own: _begin decides how.
            connection.isolation_level = None
            # WAL: readers (history, web UI) never block the daemon's writes.
            # synchronous=NORMAL keeps every committed transaction across a process kill;
            # only a power cut may drop the last few commits, never corrupt the file.
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                connection.execute(f"PRAGMA {pragma}")
        except BaseException:
            connection.close()
            raise
        return connection

    def engine(self, root: Path, url: str | None, driver: Any = None) -> Engine:
        from sqlalchemy import create_engine, event

        # One connection, the driver's (`connect_driver`), set up there: the engine's pool
        # holds it for the store's life (database.py), as it held the one it opened itself.
        if driver is None:
            driver = self.connect_driver(root)
        engine = create_engine(f"sqlite:///{self.database_file(root)}", creator=lambda: driver)

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A writer takes the write lock up front: a deferred transaction that upgrades
            # later can fail with "database is locked" without waiting for the busy timeout.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("write", False) else "BEGIN")

        return engine

    def create_on_driver(self, raw: Any) -> bool:
        # The statements SQLAlchemy's create_all and the search index's DDL run on a new
        # archive, as SQLite keeps them (tests/test_store_new.py makes an archive both ways
        # and compares them, file and schema, and writes this script again on demand):
        # without them, a new archive imported SQLAlchemy and the schema's tables first
        # (0.15 s of CPU at the start of a first sweep), before its first page was fetched.
        for statement in _new_archive_statements():
            raw.execute(statement)
        return True

    def database_file(self, root: Path) -> Path:
        return root / "index.sqlite"

    def location(self, root: Path, engine: Engine | None) -> str:
        return str(self.database_file(root))

    def begin_write(self, conn: Connection) -> None:
        conn.info["write"] = True  # read by the engine's "begin" hook

    def writer_lock(self, root: Path, purpose: str) -> WriterLock | None:
        return WriterLock(root, purpose)

    def insert(self, table: Table) -> Any:
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    def any_of(self, column: str) -> str:
        return f"{column} IN (SELECT value FROM json_each(?))"

    def seconds(self, column: str) -> str:
        # julianday() reads the text to the millisecond; a double keeps ~40 µs of it.
        return f"(julianday({column}) - 2440587.5) * 86400.0"

    def many(self, values: list[Any]) -> Any:
        return json.dumps(values)

    def driver_rows(self, raw: Any, sql: str, parameters: Any) -> list[Any]:
        # The driver is in autocommit (see _connect): the statement is its own transaction.
        return list(raw.execute(sql, parameters).fetchall())

    def driver_write(self, raw: Any, batches: list[tuple[str, list[Any]]]) -> None:
        raw.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in batches:
                raw.executemany(sql, rows)
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")

    def damaged(self, err: BaseException) -> bool:
        # SQLITE_CORRUPT ("database disk image is malformed": a page of the rows read,
        # such as one of a blob's bytes, is damaged) and SQLITE_NOTADB; raised as DB-API's
        # DatabaseError, of which a locked database or an I/O error are other kinds.
        code = getattr(getattr(err, "orig", err), "sqlite_errorcode", None)
        return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)

    def integrity_problems(self, conn: Connection) -> list[str]:
        return [
            f"database: {line}"
            for (line,) in conn.exec_driver_sql("PRAGMA quick_check")
            if line != "ok"
        ]

    def create_search_index(self, conn: Connection) -> None:
        # An FTS5 table whose rowid is the version id; unicode61 tokens, not a stemmer:
        # statements come in English, Russian and Kazakh, and Kazakh has none.
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS version_text USING fts5("
            "title, body, tokenize = 'unicode61 remove_diacritics 2')"
        )

    def index_text(self) -> TextClause:
        from sqlalchemy import text

        return text(_INSERT_TEXT)

    def search(self, query: Query, where: str) -> tuple[TextClause, Row]:
        from sqlalchemy import text

        # Within one watch, every match is ranked: the archive's newest matches may all be
        # elsewhere, and the watch's own are found through the join, match by match.
        oldest = "0" if where else _OLDEST_RANKED
        sql = _SEARCH.format(where=where, oldest=oldest)
        return text(sql), {"q": searchquery.to_fts5(query)}


DIALECT = SQLite()
