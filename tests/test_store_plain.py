"""The statements every run makes, written out in SQLite's SQL (`Plain`, store/database.py):
each is the statement its Core twin compiles to on SQLite, and reads the same rows; and a
store that exists, at the latest schema, is opened and checked on the driver without
importing SQLAlchemy, which it then brings, over the same connection, when something
needs it."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

import monitor.store
from monitor.store import CheckRecord, Discovery, Store
from monitor.store.database import SCHEMA_VERSION, Plain
from monitor.store.records import AttachmentRecord
from monitor.store.schema import LATEST, watch_state
from monitor.store.states import STATE_COLUMNS
from tests.conftest import REPO
from tests.test_store import commit, new_version


def _plains() -> list[Plain]:
    """Every `Plain` statement of the store's modules."""
    found = []
    for module in pkgutil.iter_modules(monitor.store.__path__, "monitor.store."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, Plain):
                found.append(value)
    return found


PLAINS = _plains()


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    assert isinstance(value, int), value
    return str(value)


def _compiled(plain: Plain) -> tuple[str, list[str]]:
    """What SQLAlchemy compiles the Core twin to on SQLite, with the parameters it fixes
    itself (its literals) written in, and the names of those left to the caller."""
    compiled = plain.core().compile(dialect=sqlite.dialect(), column_keys=list(plain.params))
    # The IN lists' parameters one by one, as the statement runs (any values for the
    # caller's: they are not written in).
    expanded = compiled.construct_expanded_state(dict.fromkeys(plain.params, 0))
    pieces = expanded.statement.split("?")
    names = list(expanded.positiontup or ())
    assert len(pieces) == len(names) + 1
    sql, left = pieces[0], []
    for name, piece in zip(names, pieces[1:], strict=True):
        if name in plain.params:
            sql += "?"
            left.append(name)
        else:
            sql += _literal(expanded.parameters[name])
        sql += piece
    return " ".join(sql.split()), left


def test_the_plain_statements_are_found() -> None:
    # The writes of every check, the reads of every run's start and end, and a blob's
    # bytes kept in the database (a changed page's old text).
    names = {plain.name for plain in PLAINS}
    assert {"checks: insert", "states: update", "due: deliveries", "due: copies"} <= names
    assert "blobs: data" in names
    assert len(names) == len(PLAINS) == 10


@pytest.mark.parametrize("plain", PLAINS, ids=lambda plain: plain.name)
def test_each_plain_statement_is_what_its_core_twin_compiles_to(plain: Plain) -> None:
    sql, params = _compiled(plain)
    assert " ".join(plain.sqlite.split()) == sql
    assert list(plain.params) == params


def test_a_watchs_registration_is_what_its_core_twin_compiles_to() -> None:
    """A watch new to a SQLite archive is registered by SQL text (states.py), the statements
    SQLAlchemy makes for the other databases from the same Core."""
    from monitor.store.dialect.sqlite import SQLite
    from monitor.store.states import (
        FIRST_STATE_SQLITE,
        REGISTER_ORDER,
        REGISTER_SQLITE,
        registration_core,
    )

    update, state = registration_core(SQLite())
    for core, columns, text in (
        (update, list(REGISTER_ORDER), REGISTER_SQLITE),
        (state, ["watch_id"], FIRST_STATE_SQLITE),
    ):
        compiled = core.compile(dialect=sqlite.dialect(), column_keys=columns)
        assert (str(compiled), compiled.positiontup) == (text, columns)


def test_watches_are_registered_in_a_new_archive_without_sqlalchemy(tmp_path: Path) -> None:
    """A first sweep registers its watches before its first fetch: the archive made, the
    watches written again with one changed (the upsert), read back, all on the driver."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom monitor.store import Store\n"
        f"store = Store(Path({str(tmp_path)!r}))\n"
        "store.sync_watches([('a', 'https://a.example/', 'generic'),"
        " ('b', 'https://b.example/', 'feed')])\n"
        "store.sync_watches([('a', 'https://a.example/2', 'generic')] * 1001)\n"
        "print(sorted(store.states(['a', 'b'])), 'sqlalchemy' in sys.modules)\n"
        "store.close()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.stdout.splitlines() == ["['a', 'b'] False"], run.stderr
    with Store(tmp_path) as store:
        rows = {row["id"]: (row["url"], row["profile"]) for row in store.watch_rows()}
    assert rows == {"a": ("https://a.example/2", "generic"), "b": ("https://b.example/", "feed")}


def test_the_schema_version_the_driver_opens_at_is_the_latest() -> None:
    assert SCHEMA_VERSION == LATEST
    # A state is read and written by position (states.py): its fields are watch_state's.
    assert all(name in watch_state.c for name in STATE_COLUMNS)


def test_the_data_directory_is_laid_out_at_the_first_open(tmp_path: Path) -> None:
    # As when every repository was made with the store: the blob files' directory too,
    # when blobs are files; a new archive's default keeps them in the database, no files.
    for _ in range(2):  # created, then opened on the driver
        Store(tmp_path / "store", blobs="path").close()
        assert sorted(p.name for p in (tmp_path / "store").iterdir())[:2] == [
            "blobs",
            "index.sqlite",
        ]
        (tmp_path / "store" / "blobs").rmdir()
    for _ in range(2):
        Store(tmp_path / "default").close()
        assert "blobs" not in {p.name for p in (tmp_path / "default").iterdir()}


def _filled(root: Path) -> Store:
    """A SQLite store where each plain read has rows to find and rows to leave out."""
    store = Store(root)
    for watch in ("a", "b", "c"):
        store.sync_watch(watch, f"https://gov.example/{watch}", "generic")
    alerts = [({"kind": "changed", "n": n}, ["log", "hook"]) for n in range(3)]
    for n, at in enumerate(["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z"]):
        store.commit_check(
            CheckRecord("a", at, 1, "changed", 200),
            store.state("a"),
            versions=[new_version("baseline" if n == 0 else "edited", f"Title {n}")],
            alerts=alerts,
        )
    [first, *rest] = store.deliveries()
    store.mark_sent(first["id"])
    store.mark_failed(rest[0]["id"], "boom", "2099-01-01T00:00:00.000Z")
    commit(store, "2026-01-03T00:00:00.000Z", new_version("baseline", "B", key="b/1"), watch="b")
    assert store.copies.queue_new(["a", "b"], "wayback", "2000-01-01T00:00:00.000Z") == 3
    rows = store.due.copies("2099-01-01T00:00:00.000Z")
    store.copies.update(rows[0]["id"], state="captured")
    store.copies.update(rows[1]["id"], state="submitted", next_attempt_at="2098-01-01T00:00:00Z")
    store.put_ui_watch("u1", {"url": "https://gov.example/u1"}, "admin")
    store.put_ui_watch("u0", {"url": "https://gov.example/u0"}, "admin")
    url = "https://gov.example/d1"
    found = Discovery("d1", "a", "k", url, "D", "en", None, None, None, True, "x")
    store.add_discovered([found], "2026-01-04T00:00:00.000Z")
    for watch in ("a", "a", "b"):
        store.attachments.record(
            AttachmentRecord(watch, "https://gov.example/f.pdf", "2026-01-05T00:00:00Z", "", 200)
        )
    return store


def test_each_plain_read_finds_what_its_core_twin_finds(tmp_path: Path) -> None:
    with _filled(tmp_path) as store:
        reads = [plain for plain in PLAINS if plain.core().is_select]
        assert len(reads) == 8
        with store.db.read() as conn:
            held = [row[0] for row in conn.exec_driver_sql("SELECT sha256 FROM blob_data")]
        for plain in reads:
            choices: list[dict[str, Any]] = [{}]
            if plain.params == ("sha256",):  # a blob not held, then one held
                choices = [{"sha256": "0" * 64}, {"sha256": held[0]}]
            elif plain.params:
                choices = [
                    {"now": now, "limit": limit}
                    for now in ("2026-06-01T00:00:00.000Z", "2099-06-01T00:00:00.000Z")
                    for limit in (1, 100)
                ]
            for values in choices:
                text = store.db.plain_rows(plain, values)
                with store.db.read() as conn:
                    core = [dict(row) for row in conn.execute(plain.core(), values).mappings()]
                assert text == core, (plain.name, values)
            assert text, plain.name  # with rows to compare
        # 12 deliveries: one sent, one to retry in 2099.
        assert len(store.due_deliveries("2099-06-01T00:00:00.000Z", 100)) == 11
        assert len(store.due_deliveries("2026-06-01T00:00:00.000Z", 100)) == 10
        assert [row["id"] for row in store.ui_watches()] == ["u0", "u1"]
        assert store.watch_states.attachment_watches() == {"a", "b"}
        assert store.due.copies_waiting() == 2


# A store that exists, opened and checked as `check --once` does, then read as other
# commands do: SQLAlchemy is imported only for the read, and sees what the driver wrote.
_PROBE = """
import sys
from monitor.store import CheckRecord, Store

store = Store(sys.argv[1])
state = store.state("a")
state.last_check_at = "2026-02-01T00:00:00.000Z"
store.commit_check(CheckRecord("a", "2026-02-01T00:00:00.000Z", 3, "unchanged", 304), state)
store.ui_watches(), store.watch_sources_mark(), store.due_deliveries("2099-01-01T00:00:00Z")
store.due.copies("2099-01-01T00:00:00Z"), store.due.copies_waiting()
store.watch_states.attachment_watches()
print("before:", "sqlalchemy" in sys.modules)
checks = store.checks("a", 10)
print("after:", "sqlalchemy" in sys.modules, [c["at"] for c in checks][:2])
print("state:", store.state("a").last_check_at)
store.close()
"""


def test_a_store_that_exists_is_checked_without_sqlalchemy(tmp_path: Path) -> None:
    _filled(tmp_path).close()
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "before: False",
        "after: True ['2026-02-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z']",
        "state: 2026-02-01T00:00:00.000Z",
    ]
