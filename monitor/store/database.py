"""The `Database`: one connection to the archive's index, its transactions, and the batch
of unchanged checks. The repositories (archive.py, outbox.py, schedule.py, …) read and
write through it; what differs per database is its `dialect` (dialect/)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.store.dialect import dialect_for
from monitor.store.records import StoreError, now_iso
from monitor.store.writer import WriterLock

# SQLAlchemy (and the schema's tables, made with it) is imported when first needed: an
# unchanged `check --once` of a SQLite archive at the latest schema needs none of it (the
# statements it runs are `Plain`), and its import was a third of that command's start-up.
if TYPE_CHECKING:
    from sqlalchemy import Connection, CursorResult, Engine

Row = dict[str, Any]

logger = logging.getLogger("monitor.store")

# Unchanged checks (a check_run row and the watch's state: nothing of the archive) are
# written in batches, one transaction for all that finish within this many seconds, instead
# of one each: a transaction costs SQLite 80 us, against 30 us per check batched (measured),
# and unchanged checks are nearly all a daemon does. Any other read or write of the store
# writes the batch first, so nothing in this process sees the store without it. A crash
# loses at most the last batch: "checked, nothing changed" rows, never a version.
BATCH_WINDOW = 0.05
_BATCH_MAX = 1000
# The commits of checks with something to archive (new versions, their alerts, verdicts)
# that come within this many seconds share one transaction, each check's writes in a
# savepoint of its own (see `Database.together`): a first sweep committed each new page
# alone, and its BEGIN and COMMIT (the write lock, ~17 pages of the WAL written whole)
# cost about as much as the rows themselves. A check still returns only once its
# transaction has committed: nothing is acknowledged before it is stored.
GROUP_WINDOW = 0.05
_GROUP_MAX = 64

T = TypeVar("T")

# The schema version this code writes (schema.LATEST, which tests/test_store_plain.py
# checks it is): an archive at it opens on the driver, with nothing to migrate.
SCHEMA_VERSION = 17
_HAS_META = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
_READ_META = "SELECT key, value FROM meta WHERE key IN ('schema_version', 'blobs')"
# A database with no table, index or view yet: a new archive (`Database._create_on_driver`).
_ANYTHING = "SELECT 1 FROM sqlite_master LIMIT 1"
_WRITE_META = "INSERT INTO meta (key, value) VALUES (?, ?)"


class DriverStatement:
    """A Core statement, and its SQL compiled once for the database's dialect so that the
    unchanged-check path can run it on the driver's own connection: SQLAlchemy's execution
    machinery costs three times what SQLite takes for the two statements (measured), and an
    unchanged check is what a daemon does thousands of times a day."""

    def __init__(self, core: Any, dialect: Any, columns: list[str]) -> None:
        self.core = core
        compiled = core.compile(dialect=dialect, column_keys=columns)
        self.sql = str(compiled)
        order = compiled.positiontup  # None for named parameters (psycopg)
        # A tuple in the statement's order (itemgetter of one name gives no tuple).
        self._pick = itemgetter(*order) if order and len(order) > 1 else None
        self._order = order
        # A query's column names, for its rows as dicts (`Database.prepared_rows`), and the
        # values of the parameters it fixes itself (LIMIT 1, a COALESCE's 0).
        self.names = [column.key for column in getattr(core, "selected_columns", ())]
        self.fixed = dict(compiled.params) if self.names else {}

    @classmethod
    def of_text(cls, sql: str, order: Sequence[str]) -> DriverStatement:
        """A statement given as SQL text with `?` parameters named by `order` (`Plain`)."""
        statement = cls.__new__(cls)
        statement.core = None
        statement.sql = sql
        statement._order = tuple(order)
        statement._pick = itemgetter(*order) if len(order) > 1 else None
        statement.names = []
        statement.fixed = {}
        return statement

    def bound(self, values: dict[str, Any]) -> Any:
        """The parameters for `values`, with those the statement fixes itself."""
        return self.parameters({**self.fixed, **values})

    def parameters(self, values: dict[str, Any]) -> Any:
        if self._pick is not None:
            return self._pick(values)
        return tuple(values[name] for name in self._order) if self._order else values


@dataclass(frozen=True)
class Plain:
    """A statement every run makes (the unchanged check's writes, the reads of its start and
    end), written out in SQLite's SQL so that SQLite runs it on the driver without
    SQLAlchemy, and built in Core by `core` for the other databases, where it runs as it
    always did. tests/test_store_plain.py compiles `core` for SQLite and checks it gives
    this text with these parameters, and that both read the same rows.

    `sqlite`: the text, its parameters `?` in the order `params` names them (the values are
    given by name); literals of the Core statement are written in the text."""

    name: str
    sqlite: str
    params: tuple[str, ...]
    core: Callable[[], Any]


# A statement and the values of one of its rows, waiting in the batch.
Deferred = tuple[DriverStatement, dict[str, Any]]
# A prepared statement run with the values of one row (`Database.statements_on`).
RunStatement = Callable[[DriverStatement, dict[str, Any]], Any]


class Database:
    """The index database of the archive in `root` (SQLite) or at `url` (PostgreSQL),
    migrated to the latest schema on opening. `blobs` is where blob bytes are to live
    ("db" or "path"; default: the dialect's); an archive keeps the place it was made with."""

    def __init__(self, root: Path, url: str | None = None, blobs: str | None = None) -> None:
        self.root = root
        self.dialect = dialect_for(url)
        self._url = url
        self.file = self.dialect.database_file(root)
        # A PostgreSQL archive may be shared by several daemons (they claim each check).
        self.shared = self.dialect.shared
        self._writer: WriterLock | None = None
        # The driver's connection, when the dialect opens one itself (SQLite): the engine,
        # made when something first needs SQLAlchemy, is made over it (`engine`).
        self._driver: Any = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._closed = False
        # The batch of unchanged checks not yet written, and the timer that will write it.
        self._batch: list[Deferred] = []
        # What the batch writes (e.g. watches' states): reading anything else needs no flush.
        self._batched_keys: set[str] = set()
        self._batch_timer: asyncio.TimerHandle | None = None
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        # Writes that failed for want of a writable store (a full disk, a read-only data
        # directory, a lost server), by kind: (the error, since when). A kind is cleared by
        # its own next success: checks' rows may still fit on a disk too full for a page.
        self._write_failures: dict[str, tuple[str, str]] = {}
        self._prepared: dict[str, DriverStatement] = {}
        # The writes waiting for their shared transaction (`together`), and its timer.
        self._group: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._group_timer: asyncio.TimerHandle | None = None
        self._group_loop: asyncio.AbstractEventLoop | None = None
        # Checks under way (`check_began`): when every one of them waits for the group, no
        # other write can join it, and it is written at once rather than at the window's
        # end (the last checks of a `check --once` waited GROUP_WINDOW for nothing).
        self._under_way = 0
        try:
            self._driver = self._connect_driver()
            if self._driver is None:  # PostgreSQL: the engine's connections
                self.location = self.dialect.location(root, self.engine)
            else:
                self.location = self.dialect.location(root, None)
            mode = self._current_blob_mode(blobs) if self._driver is not None else None
            if mode is None:  # a new archive, an older schema, a change of [store] blobs
                self.blob_mode = self._migrate(blobs)
            else:
                self.blob_mode = mode
        except BaseException:
            self.close()
            raise

    def _connect_driver(self) -> Any:
        try:
            return self.dialect.connect_driver(self.root)
        except Exception as err:
            if _operational(err):  # an unwritable directory, a locked file, …
                location = self.dialect.location(self.root, None)
                raise StoreError(f"cannot open the store at {location}: {err}") from None
            raise

    def _migrate(self, blobs: str | None) -> str:
        """Open through SQLAlchemy: the schema brought to the latest, the place of blobs
        recorded (or checked) in the same write transaction."""
        from sqlalchemy import inspect
        from sqlalchemy.exc import OperationalError

        from monitor.store.schema import migrate

        try:
            with self.write() as conn:
                # An archive that exists and recorded no place of blobs has them where the
                # monitor of its day put them, not where a new one would.
                if inspect(conn).has_table("meta"):
                    default = self.dialect.unrecorded_blobs
                else:
                    default = self.dialect.default_blobs
                migrate(conn, self.location)
                return _blob_mode(conn, blobs, default, self.location)
        except OperationalError as err:  # unreachable server, unwritable directory, …
            raise StoreError(f"cannot open the store at {self.location}: {err.orig}") from None

    def _current_blob_mode(self, configured: str | None) -> str | None:
        """Where blobs are, read on the driver's connection, when the archive is at the
        latest schema and `configured` agrees with it (nothing to migrate or record, the
        whole of what `_migrate` would do): None otherwise. In a write transaction as
        `_migrate`'s, so that an archive another process is migrating is waited for, and
        one that cannot be written is refused at once, as before. A new archive (a database
        with nothing in it) is made here, in that transaction (`_create_on_driver`)."""
        raw = self._driver
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                has_meta = raw.execute(_HAS_META).fetchone() is not None
                meta = dict(raw.execute(_READ_META).fetchall()) if has_meta else {}
                if not has_meta and raw.execute(_ANYTHING).fetchone() is None:
                    created = self._create_on_driver(configured)
                    if created is not None:
                        return created
            finally:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")  # nothing written
        except Exception as err:
            if _operational(err):
                raise StoreError(f"cannot open the store at {self.location}: {err}") from None
            raise
        recorded = meta.get("blobs")
        if meta.get("schema_version") != str(SCHEMA_VERSION) or recorded not in ("db", "path"):
            return None
        if configured and configured != recorded:
            return None  # refused by `_blob_mode`, in its words
        return recorded

    def _create_on_driver(self, configured: str | None) -> str | None:
        """A new archive (an empty database) made on the driver's connection in the write
        transaction `_current_blob_mode` holds, committed: the latest schema, its version
        and the place of blobs, as `_migrate` writes them, without SQLAlchemy (which a first
        sweep's commits import later, once pages are read). None where the dialect has no
        script for it (then `_migrate` makes it)."""
        raw = self._driver
        blobs = configured or self.dialect.default_blobs
        if blobs not in ("db", "path") or not self.dialect.create_on_driver(raw):
            return None
        raw.executemany(_WRITE_META, [("schema_version", str(SCHEMA_VERSION)), ("blobs", blobs)])
        raw.execute("COMMIT")
        return blobs

    @property
    def engine(self) -> Engine:
        """SQLAlchemy's engine, made on first use (over the driver's connection, if any)."""
        if self._engine is None:
            self._engine = self.dialect.engine(self.root, self._url, self._driver)
        return self._engine

    def prepare(self, core: Any, columns: list[str]) -> DriverStatement:
        """A statement for the driver's connection (`defer`)."""
        return DriverStatement(core, self.engine.dialect, columns)

    def prepared(
        self, name: str, make: Callable[[], Any], columns: Sequence[str] = ()
    ) -> DriverStatement:
        """The statement `make` builds (a select with bind parameters, or an insert of
        `columns`), prepared once for this database under `name`: for callers that are
        functions, or several repositories, not one object holding it."""
        statement = self._prepared.get(name)
        if statement is None:
            statement = self._prepared[name] = self.prepare(make(), list(columns))
        return statement

    def plain(self, statement: Plain) -> DriverStatement:
        """A `Plain` statement for the driver's connection (`defer`), prepared once: its
        SQLite text as it is, or its Core statement compiled."""
        prepared = self._prepared.get(statement.name)
        if prepared is None:
            if self.dialect.name == "sqlite":
                prepared = DriverStatement.of_text(statement.sqlite, statement.params)
            else:
                prepared = self.prepare(statement.core(), list(statement.params))
            self._prepared[statement.name] = prepared
        return prepared

    def plain_rows(
        self, statement: Plain, values: dict[str, Any] | None = None, flush: bool = True
    ) -> list[Row]:
        """The rows of a `Plain` query, as dicts: on SQLite its text on the driver (one
        statement, its own transaction), elsewhere its Core statement as `rows` runs one."""
        values = values or {}
        if self.dialect.name != "sqlite":
            with self.read(flush) as conn:
                return [dict(row) for row in conn.execute(statement.core(), values).mappings()]
        parameters = tuple(values[name] for name in statement.params)
        with self._driver_connection(flush) as raw:
            cursor = raw.execute(statement.sqlite, parameters)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        conn = self.connection()
        self.dialect.begin_write(conn)
        with conn.begin():
            yield conn

    @contextmanager
    def read(self, flush: bool = True) -> Iterator[Connection]:
        # A short transaction per read: a snapshot left open would hide later commits and
        # keep SQLite from checkpointing its WAL. `flush=False` is for reads of tables the
        # batch of unchanged checks never writes (see `connection`).
        conn = self.connection(flush)
        with conn.begin():
            yield conn

    def rows(self, query: Any, flush: bool = True) -> list[Row]:
        with self.read(flush) as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def row(self, query: Any, flush: bool = True) -> Row | None:
        rows = self.rows(query, flush)
        return rows[0] if rows else None

    def scalar(self, query: Any) -> Any:
        with self.read() as conn:
            return conn.execute(query).scalar_one()

    def connection(self, flush: bool = True) -> Connection:
        """The connection; with `flush`, after writing the batch, so that whatever comes
        next sees the unchanged checks so far (a reader that cannot see them passes False)."""
        if self._closed:
            raise StoreError(f"the store at {self.location} is closed")
        if flush and self._batch:
            self.flush_logged()
        if self._conn is None:  # held from first use to `close`
            self._conn = self.engine.connect()
        return self._conn

    # --- failures to write ---------------------------------------------------------------

    @property
    def write_failure(self) -> str | None:
        """Why the store cannot be written, while it cannot; None when it can (as far as
        the latest writes of each kind went)."""
        if not self._write_failures:
            return None
        return "; ".join(
            f"cannot write {kind} since {since}: {error}"
            for kind, (error, since) in sorted(self._write_failures.items())
        )

    @contextmanager
    def writing(self, kind: str) -> Iterator[None]:
        """Note whether a write of this kind failed because the store cannot be written."""
        try:
            yield
        except Exception as err:
            if _cannot_write(err):
                since = self._write_failures.get(kind, ("", now_iso()))[1]
                self._write_failures[kind] = (_error_text(err), since)
            raise
        self._write_failures.pop(kind, None)

    # --- the batch of unchanged checks ---------------------------------------------------

    def defer(self, rows: list[Deferred], keys: Iterable[str] = ()) -> None:
        """Add rows to the batch, written within `BATCH_WINDOW`; `keys` name what they
        write, for `batch_holds`."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._batch_loop:
            # No event loop to write it later (a script), or a new one whose timer the
            # waiting rows do not have: write them now.
            self.flush()
            self._batch_loop = loop
        self._batch.extend(rows)
        self._batched_keys.update(keys)
        if loop is None or len(self._batch) >= _BATCH_MAX:
            self.flush()
        elif self._batch_timer is None:
            self._batch_timer = loop.call_later(BATCH_WINDOW, self.flush_logged)

    def batch_holds(self, keys: Collection[str]) -> bool:
        return not self._batched_keys.isdisjoint(keys)

    def flush(self) -> None:
        """Write the batch of unchanged checks now (see `BATCH_WINDOW`)."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        rows, self._batch = self._batch, []
        self._batched_keys.clear()
        if rows:
            with self.writing("checks"):
                self._write_on_driver(rows)

    def flush_logged(self) -> None:
        """`flush` for callers that are not the check itself (the timer, another query):
        a failed batch is logged, and their own work goes on."""
        try:
            self.flush()
        except Exception:
            logger.exception("could not record a batch of unchanged checks")

    # --- writes of the moment in one transaction -----------------------------------------

    async def together(self, write: Callable[[Connection], T]) -> T:
        """`write(conn)` inside a transaction shared with the other writes given within
        `GROUP_WINDOW` (or once `_GROUP_MAX` wait), in a savepoint of its own: one that
        raises is rolled back alone and raises here, the others commit. Returns what
        `write` returned, once the transaction has committed. A caller cancelled before
        the transaction began is left out of it."""
        loop = asyncio.get_running_loop()
        if loop is not self._group_loop:  # a new event loop (tests, `monitor check` per run)
            self._group_loop, self._group, self._group_timer = loop, [], None
        done: asyncio.Future[T] = loop.create_future()
        self._group.append((write, done))
        if len(self._group) >= _GROUP_MAX or self._all_wait():
            self.write_group()
        elif self._group_timer is None:
            self._group_timer = loop.call_later(GROUP_WINDOW, self.write_group)
        return await done

    def check_began(self) -> None:
        """A check is under way, which may yet give `together` a write (`check_ended`
        when it is over): while none is, the writes waiting for their group need not wait
        for more. Two calls rather than a context manager: it is around every check."""
        self._under_way += 1

    def check_ended(self) -> None:
        self._under_way -= 1
        if self._group and self._all_wait():
            self.write_group()

    def _all_wait(self) -> bool:
        """Whether every check under way waits for the group (none can join it). False
        when no check says it is under way (`check_began`): the window decides."""
        return 0 < self._under_way <= sum(1 for _write, done in self._group if not done.done())

    def write_group(self) -> None:
        """Write the waiting `together` writes now, in one transaction."""
        if self._group_timer is not None:
            self._group_timer.cancel()
            self._group_timer = None
        group = [(write, done) for write, done in self._group if not done.done()]
        self._group = []
        if not group:
            return
        outcomes: list[tuple[Any, Exception | None]] = []
        try:
            with self.write() as conn, self.driver_of(conn) as raw:
                for write, _done in group:
                    outcomes.append(_in_savepoint(raw, write, conn))
        except BaseException as err:
            fail_waiting([done for _write, done in group], err)
            return
        for (_write, done), (value, error) in zip(group, outcomes, strict=True):
            if done.done():
                continue
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)

    # --- the driver's own connection -----------------------------------------------------

    @contextmanager
    def driver_of(self, connection: Connection) -> Iterator[Any]:
        """The driver's own connection under SQLAlchemy's `connection`; when what runs on
        it fails because the server is gone, `connection` is invalidated (a reconnect on
        its next use)."""
        raw = connection.connection.driver_connection
        try:
            yield raw
        except BaseException:
            if self.dialect.broken(raw):
                connection.invalidate()
            raise

    @contextmanager
    def _driver_connection(self, flush: bool = True) -> Iterator[Any]:
        """The driver's connection for statements of their own: the one the dialect opened
        (SQLite: no SQLAlchemy needed), else the one under SQLAlchemy's (`driver_of`)."""
        if self._driver is None:
            with self.driver_of(self.connection(flush)) as raw:
                yield raw
            return
        if self._closed:
            raise StoreError(f"the store at {self.location} is closed")
        if flush and self._batch:
            self.flush_logged()
        yield self._driver

    @contextmanager
    def statements_on(self, connection: Connection) -> Iterator[RunStatement]:
        """Prepared statements (`prepare`) run on the driver's own connection inside
        `connection`'s transaction, the same connection; each run returns the driver's
        cursor."""
        with self.driver_of(connection) as raw:

            def run(statement: DriverStatement, values: dict[str, Any]) -> Any:
                return raw.execute(statement.sql, statement.bound(values))

            yield run

    def driver_rows(self, sql: str, parameters: Any, flush: bool = True) -> list[Any]:
        """Rows of one query on the driver's connection, in a transaction of its own."""
        with self._driver_connection(flush) as raw:
            return self.dialect.driver_rows(raw, sql, parameters)

    def prepared_rows(
        self, statement: DriverStatement, values: dict[str, Any], flush: bool = True
    ) -> list[Row]:
        """Rows of a prepared query (`prepare` of a select with bind parameters), as dicts,
        on the driver's connection: the reads every changed page makes (its heads, its
        newest versions, its learned furniture) cost more to build and run through
        SQLAlchemy, each time, than SQLite takes to answer them."""
        rows = self.driver_rows(statement.sql, statement.bound(values), flush)
        return [dict(zip(statement.names, row, strict=True)) for row in rows]

    def write_now(self, rows: list[Deferred]) -> None:
        """Rows written at once, in one transaction on the driver's connection (after the
        batch of unchanged checks): many rows of a few prepared statements, each run over
        its rows in the order given."""
        self._write_on_driver(rows, flush=True)  # the batch first

    def _write_on_driver(self, rows: list[Deferred], flush: bool = False) -> None:
        """One transaction on the driver's connection, which SQLAlchemy holds idle between
        its own transactions (every read and write here is one)."""
        # One executemany per statement (a batch is a check_run insert and a watch_state
        # update per check): the order within each is kept, and the two never touch the
        # same table.
        batches: dict[DriverStatement, list[Any]] = {}
        for statement, values in rows:
            batches.setdefault(statement, []).append(statement.parameters(values))
        with self._driver_connection(flush) as raw:
            self.dialect.driver_write(raw, [(s.sql, params) for s, params in batches.items()])

    # --- the process's hold on the archive -----------------------------------------------

    def hold_writer_lock(self, purpose: str) -> None:
        """Be the one process that checks this archive (`run`, `check`) until closed: a
        second is refused, naming the first (see writer.py). Archives shared through
        claims need no lock."""
        if self._writer is None:
            self._writer = self.dialect.writer_lock(self.root, purpose)

    def close(self) -> None:
        # The writer lock goes last: another process must not start checking the archive
        # before this one's last checks are in it.
        try:
            if self._group and self._group_loop is not None and not self._group_loop.is_closed():
                self.write_group()  # writes whose checks still wait (their loop runs on)
            if not self._closed:
                self._close_connections()
        finally:
            if self._writer is not None:
                self._writer.release()
                self._writer = None

    def _close_connections(self) -> None:
        try:
            # Logged, not raised: a store that cannot take the last checks' rows (a full
            # disk) must still close, and the process end as it would have.
            self.flush_logged()
        finally:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._engine is not None:
                self._engine.dispose()
            if self._driver is not None:  # (the engine's pool may never have held it)
                self._driver.close()
                self._driver = None


def inserted_id(result: CursorResult[Any]) -> int:
    """The id the database gave the row an INSERT added."""
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("the database did not say which id it gave a new row")
    return int(key[0])


def fail_waiting(waiting: Iterable[asyncio.Future[Any]], err: BaseException) -> None:
    """A shared write failed: each of its callers still waiting gets its error. What is
    not an `Exception` (cancellation, an interrupt) goes on up from here too."""
    for done in waiting:
        if not done.done():
            done.set_exception(err)
    if not isinstance(err, Exception):
        raise err


def _in_savepoint(
    raw: Any, write: Callable[[Connection], T], conn: Connection
) -> tuple[Any, Exception | None]:
    """`write(conn)` in a savepoint on the driver's connection `raw`: (its value, None), or
    (None, what it raised) with its writes rolled back. When even that fails (the database
    ended the whole transaction: a full disk), the write's own error ends the group."""
    raw.execute("SAVEPOINT together")
    try:
        value = write(conn)
    except Exception as err:
        try:
            raw.execute("ROLLBACK TO SAVEPOINT together")
            raw.execute("RELEASE SAVEPOINT together")
        except Exception:
            raise err from None
        return None, err
    raw.execute("RELEASE SAVEPOINT together")
    return value, None


def _blob_mode(conn: Connection, configured: str | None, default: str, where: str) -> str:
    """Blobs stay where the store was created with them; a config that says otherwise is
    refused, because every existing blob would look missing. `default`: the place of an
    archive that recorded none (a new one's, or an older one's, see `unrecorded_blobs`)."""
    from monitor.store.schema import get_meta, set_meta

    recorded = get_meta(conn, "blobs")
    if recorded is None:
        recorded = configured or default
        set_meta(conn, "blobs", recorded)
    elif configured and configured != recorded:
        raise StoreError(f"{where} keeps blobs in {recorded!r}, but [store] blobs = {configured!r}")
    if recorded not in ("db", "path"):
        raise StoreError(f"{where}: unknown blob location {recorded!r}")
    return recorded


def _operational(err: BaseException) -> bool:
    """DB-API's `OperationalError` (sqlite3's, psycopg's, SQLAlchemy's wrapper of them)."""
    return any(cls.__name__ == "OperationalError" for cls in type(err).__mro__)


def _cannot_write(err: BaseException) -> bool:
    """Whether a failed write says the store cannot be written (rather than a bug): an
    operating system error (ENOSPC, EROFS, EIO on blob files) or the database's own
    (`OperationalError`, DB-API's name for "disk full", "read-only database", "I/O error",
    a lost connection, as sqlite3, psycopg and SQLAlchemy all call it)."""
    return isinstance(err, OSError) or _operational(err)


def _error_text(err: BaseException) -> str:
    cause = getattr(err, "orig", None) or err  # SQLAlchemy's wrapper: the driver's error
    text = " ".join(str(cause).split())[:300]
    return f"{type(cause).__name__}: {text}"
