"""The few statements whose spelling differs between SQLite and PostgreSQL, and engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from monitor.store.records import StoreError

# Seconds a writer waits for another process's write lock (the daemon and a CLI command).
_LOCK_TIMEOUT = 30


def insert_ignore(conn: Connection, table: Table) -> Any:
    """INSERT that leaves an existing row (same key) alone: content-addressed rows, or two
    daemons registering the same blob at once."""
    return _dialect(conn).insert(table).on_conflict_do_nothing()


def upsert(
    conn: Connection, table: Table, key: str, values: dict[str, Any] | None, update: list[str]
):
    """INSERT … ON CONFLICT (key) DO UPDATE; `values=None` for one statement executed
    with many rows."""
    statement = _dialect(conn).insert(table)
    if values is not None:
        statement = statement.values(**values)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={name: statement.excluded[name] for name in update}
    )


def _dialect(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        # Imported by a store on PostgreSQL only: it adds ~50 ms to every process start.
        from sqlalchemy.dialects import postgresql

        return postgresql
    return sqlite


def sqlite_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": _LOCK_TIMEOUT})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions on its own: _begin decides how.
        dbapi_connection.isolation_level = None
        # WAL: readers (history, web UI) never block the daemon's writes. synchronous=NORMAL
        # keeps every committed transaction across a process kill; only a power cut may
        # drop the last few commits, never corrupt the file.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that upgrades later
        # can fail with "database is locked" without waiting for the busy timeout.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop("write", False) else "BEGIN")

    return engine


def postgresql_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"[store] url must be a postgresql:// URL, not {parsed.drivername}://")
    # psycopg 3 is the driver we install; 'postgresql://' alone would mean psycopg2.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def describe(engine: Engine) -> str:
    """The database for messages and logs, never with its password."""
    return engine.url.render_as_string(hide_password=True)
