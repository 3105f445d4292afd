"""A new SQLite archive is made on the driver's connection from a script
(monitor/store/dialect/sqlite_new.sql, see `SQLite.create_on_driver`), not by SQLAlchemy's
create_all through `schema.migrate`: the two must give the same archive, to the byte of its
schema and its rows. When the schema changes (a table, a column, an index, a migration),
these tests fail until the script is written again from the migrations' archive:

    python -m tests.test_store_new
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.store.database import SCHEMA_VERSION, Database
from monitor.store.dialect.sqlite import NEW_ARCHIVE, SQLite
from monitor.store.records import VerifyReport
from tests.conftest import REPO

# What a database keeps of itself besides its tables (the schema cookie counts the DDL run).
_PRAGMAS = (
    "user_version",
    "application_id",
    "schema_version",
    "page_size",
    "page_count",
    "freelist_count",
    "auto_vacuum",
    "journal_mode",
    "encoding",
)


def migrated(root: Path, blobs: str | None = None) -> Path:
    """A new archive as `Database._migrate` makes one: schema.migrate's create_all and the
    place of blobs, in one write transaction of SQLAlchemy's connection."""
    from monitor.store.database import _blob_mode
    from monitor.store.schema import migrate

    dialect = SQLite()
    engine = dialect.engine(root, None)
    try:
        with engine.connect() as conn:
            dialect.begin_write(conn)
            with conn.begin():
                migrate(conn, str(root))
                _blob_mode(conn, blobs, dialect.default_blobs, str(root))
    finally:
        engine.dispose()
    return dialect.database_file(root)


def fresh(root: Path, blobs: str | None = None) -> Path:
    """A new archive as the store opens one now."""
    database = Database(root, blobs=blobs)
    try:
        assert database.blob_mode == (blobs or "db")  # a new archive: the database
    finally:
        database.close()
    return SQLite().database_file(root)


def script_of(file: Path) -> str:
    """The statements that made the archive in `file`, as SQLite keeps them: its tables in
    their order, each followed by its indexes by name (create_all makes a table's indexes
    in the order of a set, which varies from one process to the next). Not the tables
    SQLite makes itself: its own, and the search index's shadow tables."""
    connection = sqlite3.connect(file)
    try:
        own = {row[1] for row in connection.execute("PRAGMA table_list") if row[2] == "shadow"}
        rows = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "ORDER BY rowid"
        ).fetchall()
    finally:
        connection.close()
    made = [row for row in rows if row[1] not in own and not row[1].startswith("sqlite_")]
    tables = {name: order for order, (kind, name, _, _) in enumerate(made) if kind == "table"}
    made.sort(key=lambda row: (tables[row[2]], row[0] != "table", row[1]))
    return "".join(f"{sql};\n\n" for _, _, _, sql in made)


def described(file: Path) -> dict[str, object]:
    """All an archive is: sqlite_master's rows and the pages they start at, every row of
    every table (`iterdump`) and the database's own settings. In no particular order where
    the migrations' own order varies (a table's indexes, see `script_of`)."""
    connection = sqlite3.connect(file)
    try:
        schema = connection.execute(
            "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master"
        ).fetchall()
        return {
            "schema": sorted((kind, name, table, sql) for kind, name, table, _, sql in schema),
            "pages": sorted(row[3] for row in schema),
            "dump": sorted(connection.iterdump()),
            "meta": connection.execute("SELECT key, value FROM meta ORDER BY rowid").fetchall(),
            **{name: connection.execute(f"PRAGMA {name}").fetchall() for name in _PRAGMAS},
        }
    finally:
        connection.close()


def test_the_script_is_what_the_migrations_make(tmp_path: Path) -> None:
    expected = script_of(migrated(tmp_path / "migrated"))
    assert NEW_ARCHIVE.read_text(encoding="utf-8") == expected, (
        "the schema changed: write the new archive's script again (python -m tests.test_store_new)"
    )


@pytest.mark.parametrize("blobs", [None, "db", "path"])
def test_a_new_archive_is_the_one_the_migrations_make(tmp_path: Path, blobs: str | None) -> None:
    made = described(fresh(tmp_path / "fresh", blobs))
    expected = described(migrated(tmp_path / "migrated", blobs))
    assert made == expected
    assert made["meta"] == [("schema_version", str(SCHEMA_VERSION)), ("blobs", blobs or "db")]
    assert made["journal_mode"] == [("wal",)]


def test_a_new_archive_takes_what_the_store_writes(tmp_path: Path) -> None:
    """The archive made from the script is one the store writes and reads, through the
    driver's connection and SQLAlchemy's, and verifies as sound."""
    from monitor.store import Store

    fresh(tmp_path)
    with Store(tmp_path) as store:
        store.sync_watch("w", "https://example.org/a", "generic")
        sha = store.put_blob(b"the body", "text/html")
        assert store.read_blob(sha) == b"the body"
        assert store.watch_row("w") is not None
        assert store.verify() == VerifyReport(blobs=1, references=1)


def test_making_a_new_archive_imports_no_sqlalchemy(tmp_path: Path) -> None:
    """Opening a new archive, as `monitor check` does at the start of a first sweep."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom monitor.store.database import Database\n"
        f"Database(Path({str(tmp_path / 'new')!r})).close()\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    assert (tmp_path / "new" / "index.sqlite").exists()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        NEW_ARCHIVE.write_text(script_of(migrated(Path(directory))), encoding="utf-8")
    print(f"wrote {NEW_ARCHIVE}")
