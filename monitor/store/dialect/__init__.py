"""Everything the store does differently on each database, behind one small interface.

The repositories (archive.py, outbox.py, schedule.py, …) are written once, in SQLAlchemy
Core; what Core does not hide — how an engine is made and a write transaction begun, an
INSERT that ignores or updates an existing row, a query over a list of ids on the driver's
own connection, the full-text index, an integrity check, whether several daemons may share
the archive — is a method of a `Dialect`. Each database is one module of this package named
as SQLAlchemy names the backend (`sqlite.py`, `postgresql.py`): a third backend is one new
file here, found by the name in its URL.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.store.records import StoreError

# SQLAlchemy is imported where it is used: a `check --once` over an archive that exists
# opens SQLite on the driver and never imports it (see database.py).
if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table, TextClause

    from monitor.searchquery import Query
    from monitor.store.writer import WriterLock

Row = dict[str, Any]

# Search snippets mark matches between these: control characters no statement text
# contains, replaced by <mark> after the snippet has been HTML-escaped.
MARK_START, MARK_END = "\x02", "\x03"
# What a search returns besides the snippet (v: version, d: document).
SEARCH_COLUMNS = """v.id, v.seq, v.kind, v.observed_at, v.document_id, d.watch_id, d.key,
    d.title, d.removed_at,
    (SELECT MAX(seq) FROM version AS last WHERE last.document_id = v.document_id) AS last_seq"""


class Dialect(ABC):
    """One database's spelling of what the store needs. Instances hold no state."""

    #: SQLAlchemy's backend name, and this module's.
    name = ""
    #: Several daemons may share the archive (they claim each check, schedule.py); else
    #: one process checks it, holding the writer lock (writer.py).
    shared = False
    #: Where blob bytes go in a new archive: files under the data directory ("path") or
    #: the `blob_data` table ("db").
    default_blobs = "db"
    #: Where they are in an archive that exists but recorded no place (made before `meta`
    #: said): where the monitor of its day put them.
    unrecorded_blobs = "db"

    # --- engine and transactions ---------------------------------------------------------

    @abstractmethod
    def engine(self, root: Path, url: str | None, driver: Any = None) -> Engine:
        """The engine of the archive in `root` (the data directory) or at `url`; over
        `driver`, the connection `connect_driver` opened, when there is one."""

    def connect_driver(self, root: Path) -> Any:
        """The driver's own connection to the archive in `root`, opened without SQLAlchemy
        and set up as the engine's would be; None where the database has none (its
        connections are the engine's)."""
        return None

    def create_on_driver(self, raw: Any) -> bool:
        """Create the latest schema's tables in an empty database on the driver's connection
        (`connect_driver`), inside the caller's write transaction, as `schema.migrate` would
        make them; False where the database has no such script (SQLAlchemy makes them)."""
        return False

    def database_file(self, root: Path) -> Path | None:
        """The file the database lives in, when it is one."""
        return None

    def location(self, root: Path, engine: Engine | None) -> str:
        """The database for messages and logs, never with its password (`engine`: None when
        the archive was opened on its driver's connection)."""
        assert engine is not None, "a database with no driver's connection of its own"
        return engine.url.render_as_string(hide_password=True)

    def begin_write(self, conn: Connection) -> None:
        """Called before a transaction that will write (the database may lock up front)."""
        return None

    def lock_migrations(self, conn: Connection) -> None:
        """Serialise processes that migrate the same database at once."""
        return None

    def writer_lock(self, root: Path, purpose: str) -> WriterLock | None:
        """The lock that makes this process the archive's one checker, if it needs one."""
        return None

    # --- statements Core spells per dialect ----------------------------------------------

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """The dialect's INSERT construct (it knows ON CONFLICT)."""

    # --- the driver's own connection (the unchanged-check path, database.py) -----------

    @abstractmethod
    def any_of(self, column: str) -> str:
        """SQL matching `column` against one parameter holding a list (see `many`)."""

    @abstractmethod
    def seconds(self, column: str) -> str:
        """SQL of a stored timestamp (`clock.iso` text) as seconds since 1970, a float;
        NULL stays NULL."""

    @abstractmethod
    def many(self, values: list[Any]) -> Any:
        """The parameter `any_of` takes: one SQL text, however many values are asked for."""

    @abstractmethod
    def driver_rows(self, raw: Any, sql: str, parameters: Any) -> list[Any]:
        """Rows of one query on the driver's connection, in a transaction of its own (a
        snapshot left open would hide later commits)."""

    @abstractmethod
    def driver_write(self, raw: Any, batches: list[tuple[str, list[Any]]]) -> None:
        """One transaction on the driver's connection: each SQL text run over its rows."""

    def broken(self, raw: Any) -> bool:
        """Whether the driver's connection was lost (SQLAlchemy must reconnect)."""
        return False

    # --- checks and search ---------------------------------------------------------------

    def integrity_problems(self, conn: Connection) -> list[str]:
        """The database's own check of its files, in lines of damage (none: healthy)."""
        return []

    def turn_lock(self, space: int) -> str | None:
        """A statement on the driver that holds the lock of (`space`, its one parameter, a
        32-bit key) to the end of its transaction: writers of a shared archive that must
        take turns; None where the database has one writer at a time anyway."""
        return None

    def damaged(self, err: BaseException) -> bool:
        """Whether an error of reading stored rows says the database's files are damaged
        there (their bytes cannot be given back), rather than that it cannot be read now."""
        return False

    @abstractmethod
    def create_search_index(self, conn: Connection) -> None:
        """`version_text`: the title and text of every version with text, searchable."""

    @abstractmethod
    def index_text(self) -> TextClause:
        """INSERT of one version's text (:id, :title, :body, :title_folded, :body_folded)."""

    @abstractmethod
    def search(self, query: Query, where: str) -> tuple[TextClause, Row]:
        """The search statement for a user's parsed words (monitor/searchquery.py) and its
        parameters; `where` is extra SQL over `v` (version) and `d` (document). Without
        `where`, it ranks the newest :ranked + 1 matches only (fulltext.RANKED) and returns
        the best :limit of them."""


def dialect_of(conn: Connection | Engine) -> Dialect:
    return dialect_named(conn.dialect.name)


def dialect_for(url: str | None) -> Dialect:
    """The dialect of a `[store] url` (None: SQLite in the data directory)."""
    if not url:
        return dialect_named("sqlite")
    from sqlalchemy.engine import make_url

    try:
        name = make_url(url).get_backend_name()
    except Exception as err:
        raise StoreError(f"[store] url is not a database URL: {err}") from None
    return dialect_named(name)


@cache
def dialect_named(name: str) -> Dialect:
    # Imported on first use: the PostgreSQL dialect adds ~50 ms to a process start.
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise StoreError(f"[store] url: monitor does not support {name!r} databases") from None
    dialect: Dialect = module.DIALECT
    return dialect


# Statements every dialect spells with its own INSERT construct.


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT that leaves an existing row (same key) alone: content-addressed rows, or two
    daemons registering the same blob at once. Built once per dialect and table (every new
    version registers its blobs with it; building it anew cost more than SQLite's insert)."""
    return _insert_ignore(dialect_of(conn), table)


@cache
def _insert_ignore(dialect: Dialect, table: Table) -> Any:
    return dialect.insert(table).on_conflict_do_nothing()


def upsert(
    conn: Connection, table: Table, key: str, values: dict[str, Any] | None, update: list[str]
) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE; `values=None` for one statement executed
    with many rows."""
    statement = dialect_of(conn).insert(table)
    if values is not None:
        statement = statement.values(**values)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in update}
    )
