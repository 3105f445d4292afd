"""The archive on real SQLite files and a real PostgreSQL server: what every version keeps,
what an unchanged check costs, atomicity, verification, retention, migrations."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect

from monitor import progress
from monitor.store import (
    CheckRecord,
    NewVersion,
    ResponseRecord,
    Settlement,
    Store,
    StoreError,
    database,
)
from monitor.store.records import iso
from monitor.store.schema import LATEST
from monitor.store.writer import WriterLock
from tests.postgres import EVERY_LAYOUT, Backend, backend_named

BODY = b'{"data":{"news":[{"id":1,"title":"Statement"}]}}' * 20
QUERY = b'{"query":"{ news(projects: \\"mfa\\") { id title } }"}'
HEADERS = [
    ("Date", "Wed, 25 Nov 2026 16:56:28 GMT"),
    ("Content-Type", "application/json; charset=utf-8"),
    ("Set-Cookie", "a=1"),
    ("Set-Cookie", "b=2"),  # repeated headers stay separate and in order
]


def response(body: bytes = BODY, at: str = "2026-11-25T16:56:28.123Z") -> ResponseRecord:
    return ResponseRecord(
        requested_at=at,
        method="POST",
        url="http://gov.example/graphql",
        final_url="https://gov.example/graphql?v=2",
        status=200,
        http_version="HTTP/1.1",
        request_headers={"Content-Type": "application/json"},
        request_body=QUERY,
        headers=HEADERS,
        redirects=[(301, "https://gov.example/graphql"), (308, "https://gov.example/graphql?v=2")],
        body=body,
        media_type="application/json",
    )


def text(title: str) -> bytes:
    return json.dumps({"key": "en/1", "title": title, "paragraphs": ["One.", "Two."]}).encode()


def new_version(kind: str, title: str | None, key: str = "en/1") -> NewVersion:
    return NewVersion(
        key=key,
        url=f"https://gov.example/news/{key}",
        title=title or "removed",
        published="2026-11-25",
        language="en",
        kind=kind,
        text=text(title) if title else None,
        score=0.5 if kind == "edited" else 0.0,
        summary=f"{kind} {title}",
    )


def commit(store: Store, at: str, *versions: NewVersion, watch: str = "w") -> list[int]:
    outcome = "changed" if versions else "unchanged"
    return store.commit_check(
        CheckRecord(watch, at, 12, outcome, 200),
        store.state(watch),
        response=response(BODY + at.encode(), at) if versions else None,
        versions=list(versions),
    )


@pytest.fixture(params=EVERY_LAYOUT)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """This module's backends: SQLite with blob bytes in the database (a new archive's
    default) and in files, and PostgreSQL."""
    return backend_named(request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Store:
    with backend.store() as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        yield store


def test_every_version_keeps_the_response_as_received_and_its_hashes(store: Store) -> None:
    [version_id] = store.commit_check(
        CheckRecord("w", "2026-11-25T16:56:29.000Z", 40, "changed", 200),
        store.state("w"),
        response=response(),
        versions=[new_version("baseline", "Statement")],
    )
    version = store.version(version_id)
    assert version is not None
    assert (version["watch_id"], version["key"], version["seq"]) == ("w", "en/1", 1)
    assert version["observed_at"] == "2026-11-25T16:56:29.000Z"
    assert version["text_sha256"] == hashlib.sha256(text("Statement")).hexdigest()
    assert store.read_blob(version["text_sha256"]) == text("Statement")
    stored = store.response(version["response_id"])
    assert stored is not None
    assert store.read_blob(stored["body_sha256"]) == BODY
    assert stored["body_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert stored["body_size"] == len(BODY)
    assert [tuple(h) for h in stored["headers"]] == HEADERS
    assert [tuple(r) for r in stored["redirects"]] == response().redirects
    assert (stored["status"], stored["http_version"]) == (200, "HTTP/1.1")
    assert stored["method"] == "POST"
    assert stored["url"] == "http://gov.example/graphql"
    assert stored["final_url"] == "https://gov.example/graphql?v=2"
    assert stored["requested_at"] == "2026-11-25T16:56:28.123Z"
    assert stored["server_date"] == "Wed, 25 Nov 2026 16:56:28 GMT"
    assert stored["request_headers"] == {"Content-Type": "application/json"}
    assert store.read_blob(stored["request_body"]) == QUERY


def test_versions_are_numbered_per_statement_and_heads_follow(store: Store) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    commit(store, "2026-11-25T10:01:00.000Z", new_version("edited", "B"))
    [removed] = commit(store, "2026-11-25T10:02:00.000Z", new_version("removed", None))
    head = store.heads("w")["en/1"]
    assert head.seq == 3 and head.text_sha256 is None
    assert [v["kind"] for v in store.versions(head.id)] == ["baseline", "edited", "removed"]
    assert store.document("w", "en/1")["removed_at"] == "2026-11-25T10:02:00.000Z"
    assert store.latest_change("w")["id"] == removed
    assert store.version_at(head.id, 1)["text_sha256"] == hashlib.sha256(text("A")).hexdigest()
    [doc] = store.documents("w")
    assert (doc["versions"], doc["last_version_at"]) == (3, "2026-11-25T10:02:00.000Z")


def test_identical_bytes_are_stored_once(store: Store, backend: Backend) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "Same", key="en/1"))
    commit(store, "2026-11-25T10:01:00.000Z", new_version("published", "Same", key="en/2"))
    texts = backend.query("SELECT COUNT(DISTINCT text_sha256), COUNT(*) FROM version")
    assert texts == [(1, 2)]
    # Two bodies, one query body shared by both responses, one text.
    assert backend.query("SELECT COUNT(*) FROM blob") == [(4,)]


def test_unchanged_check_adds_one_small_row_and_no_blob(store: Store, backend: Backend) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    blobs = backend.query("SELECT COUNT(*) FROM blob")
    files = sorted((backend.path / "blobs").rglob("*"))
    checks = 2000
    before = _check_bytes(store, backend)
    state = store.state("w")
    for _ in range(checks):
        store.commit_check(CheckRecord("w", iso(datetime.now(UTC)), 35, "unchanged", 200), state)
    per_check = (_check_bytes(store, backend) - before) / checks
    assert per_check <= 200, f"{per_check:.0f} bytes per unchanged check"
    assert backend.query("SELECT COUNT(*) FROM blob") == blobs
    assert sorted((backend.path / "blobs").rglob("*")) == files
    assert backend.query("SELECT COUNT(*) FROM check_run") == [(checks + 1,)]


def test_unchanged_checks_in_a_daemon_are_written_in_batches_never_hidden_from_reads(
    store: Store, backend: Backend
) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))

    async def daemon_moment() -> None:
        state = store.state("w")
        state.last_check_at = "2026-11-25T10:05:00.000Z"
        for _ in range(3):
            store.commit_check(CheckRecord("w", state.last_check_at, 5, "unchanged", 304), state)
        # Another process does not see them yet: one transaction will write all three...
        assert backend.query("SELECT COUNT(*) FROM check_run") == [(1,)]
        await asyncio.sleep(0.3)
        # ...within the batch window, without anyone asking.
        assert backend.query("SELECT COUNT(*) FROM check_run") == [(4,)]
        store.commit_check(CheckRecord("w", state.last_check_at, 5, "unchanged", 304), state)
        # This process never sees the store without them: any read writes the batch first.
        assert store.state("w").last_check_at == "2026-11-25T10:05:00.000Z"
        assert backend.query("SELECT COUNT(*) FROM check_run") == [(5,)]
        store.commit_check(CheckRecord("w", state.last_check_at, 5, "unchanged", 304), state)

    asyncio.run(daemon_moment())
    # The loop ended before the window did: the next write (or close) records it first.
    store.commit_check(
        CheckRecord("w", iso(datetime.now(UTC)), 5, "unchanged", 304), store.state("w")
    )
    assert backend.query("SELECT COUNT(*) FROM check_run") == [(7,)]


def test_the_checks_of_a_moment_commit_together_and_a_failing_one_alone(
    store: Store, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New versions of checks that come together share one transaction, each check's rows
    in a savepoint: nothing is visible (or returned) before that transaction commits; a
    check whose rows fail is rolled back alone and raises; a check cancelled while it
    waits is left out."""
    monkeypatch.setattr(database, "GROUP_WINDOW", 3600.0)  # written when 4 wait, no sooner
    monkeypatch.setattr(database, "_GROUP_MAX", 4)
    for watch in "abcd":
        store.sync_watch(watch, f"https://gov.example/{watch}", "govkz")

    def check(watch: str, kind: str) -> Any:
        at = f"2026-11-25T10:00:0{'abcd'.index(watch)}.000Z"
        return store.commit_check_together(
            CheckRecord(watch, at, 12, "changed", 200),
            store.state(watch),
            response=response(BODY + watch.encode(), at),
            versions=[new_version(kind, f"Title {watch}")],
        )

    async def moment() -> list[Any]:
        first = asyncio.ensure_future(check("a", "baseline"))
        gone = asyncio.ensure_future(check("d", "baseline"))
        broken = asyncio.ensure_future(check("b", "sideways"))  # not a kind: CHECK fails
        for _ in range(3):
            await asyncio.sleep(0)
        assert not first.done() and not broken.done()
        assert backend.query("SELECT COUNT(*) FROM version") == [(0,)]
        gone.cancel()
        last = asyncio.ensure_future(check("c", "baseline"))
        return await asyncio.gather(first, broken, last, return_exceptions=True)

    [ids_a, error, ids_c] = asyncio.run(moment())
    assert isinstance(ids_a, list) and isinstance(ids_c, list)
    assert isinstance(error, Exception) and "version_kind" in str(error)
    stored = backend.query(
        "SELECT d.watch_id, v.id FROM version v JOIN document d ON d.id = v.document_id "
        "ORDER BY d.watch_id"
    )
    assert stored == [("a", ids_a[0]), ("c", ids_c[0])]
    checks = backend.query("SELECT watch_id FROM check_run ORDER BY watch_id")
    assert checks == [("a",), ("c",)]
    assert backend.query("SELECT COUNT(*) FROM response") == [(2,)]
    assert store.verify().damage == []


def _check_bytes(store: Store, backend: Backend) -> int:
    """What check rows occupy: the whole SQLite file (the WAL checkpointed into it), or
    check_run with its indexes on PostgreSQL (whose other tables hold MVCC garbage)."""
    if backend.url is None:
        with sqlite3.connect(store.db_path) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return (backend.path / "index.sqlite").stat().st_size
    [(size,)] = backend.query("SELECT pg_total_relation_size('check_run')")
    return int(size)


def test_a_check_writes_its_alerts_and_their_deliveries_as_any_alert_is_written(
    store: Store,
) -> None:
    """A check's alerts go on the driver's connection with its versions (an edit's, the one a
    settled version releases, one of no version): on both databases, the rows of an alert no
    check caused (`record_alert`, the watchdog's), and a version two looks settle releases
    its alert once."""
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    pending = new_version("edited", "B")
    pending.confirmation = "pending"
    pending.alerts = [({"kind": "edited", "title": "Заявление «B»"}, ["log", "webhook"])]
    [pending_id] = commit(store, "2026-11-25T10:01:00.000Z", pending)
    released = ({"kind": "edited", "title": "B, held", "n": 2}, ["webhook"])
    recovered = ({"kind": "recovered", "title": "w is back — «ok»"}, ["log", "email"])
    for minute in (2, 3):  # the second look races the first: it settles and releases nothing
        store.commit_check(
            CheckRecord("w", f"2026-11-25T10:0{minute}:00.000Z", 5, "unchanged", 200),
            store.state("w"),
            alerts=[recovered],
            settled=Settlement({pending_id: "held"}, {pending_id: [released]}),
        )
    store.record_alert("w", *recovered)
    versions = store.versions(store.heads("w")["en/1"].id)
    assert [v["confirmation"] for v in versions if v["id"] == pending_id] == ["held"]

    def alerts() -> list[tuple[object, ...]]:
        rows = store.alerts("w")
        deliveries = store.alert_deliveries([row["id"] for row in rows])
        return [
            (
                row["watch_id"], row["version_id"], row["kind"], row["payload"],
                [
                    (d["channel"], d["status"], d["attempts"], d["last_error"], d["sent_at"],
                     d["next_attempt_at"] == row["created_at"])
                    for d in deliveries if d["alert_id"] == row["id"]
                ],
            )
            for row in rows
        ]  # fmt: skip

    def row(version_id: int | None, alert: tuple[dict[str, object], list[str]]) -> object:
        payload, channels = alert
        written = json.dumps(payload, ensure_ascii=False)
        deliveries = [(channel, "pending", 0, None, None, True) for channel in channels]
        return ("w", version_id, payload["kind"], written, deliveries)

    assert alerts() == [
        row(pending_id, pending.alerts[0]),
        row(pending_id, released),
        row(None, recovered),
        row(None, recovered),  # the second look's: it was a check of its own
        row(None, recovered),  # the same alert, the watchdog's: the same rows
    ]


@pytest.mark.parametrize(
    ("alert", "error"),
    [
        (({"no kind": "a malformed alert"}, ["console"]), "KeyError"),
        # Refused by the database itself, after the alert's row: one delivery per channel.
        (({"kind": "edited"}, ["console", "console"]), "IntegrityError"),
    ],
    ids=["malformed", "refused"],
)
def test_a_failing_commit_leaves_nothing_behind(
    store: Store, backend: Backend, alert: tuple[dict[str, str], list[str]], error: str
) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    state = store.state("w")
    broken = new_version("edited", "B")
    broken.alerts.append(alert)  # fails mid-write
    with pytest.raises(Exception) as raised:
        store.commit_check(
            CheckRecord("w", "2026-11-25T10:01:00.000Z", 9, "changed", 200),
            state,
            response=response(b"new body"),
            versions=[broken],
        )
    assert error in [cls.__name__ for cls in type(raised.value).__mro__], raised.value
    assert [v["kind"] for v in store.versions(store.heads("w")["en/1"].id)] == ["baseline"]
    assert backend.query("SELECT COUNT(*) FROM check_run") == [(1,)]
    assert backend.query("SELECT COUNT(*) FROM response") == [(1,)]
    assert backend.query("SELECT COUNT(*) FROM alert") == [(0,)]
    # At most the blob files written before the transaction remain: orphans, not damage.
    report = store.verify()
    assert report.damage == []
    assert len(report.orphans) == (2 if backend.files else 0)  # body, text: not the query
    assert store.verify(repair=True).repaired == len(report.orphans)
    assert store.verify().orphans == []
    commit(store, "2026-11-25T10:02:00.000Z", new_version("edited", "B"))
    assert store.heads("w")["en/1"].seq == 2


def test_verify_reports_damage_precisely_and_repair_only_removes_orphans(
    store: Store, backend: Backend
) -> None:
    commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A", key="en/1"))
    commit(store, "2026-11-25T10:01:00.000Z", new_version("edited", "B", key="en/1"))
    commit(store, "2026-11-25T10:02:00.000Z", new_version("baseline", "C", key="en/2"))
    commit(store, "2026-11-25T10:03:00.000Z", new_version("baseline", "D", key="en/3"))
    clean = store.verify()
    assert (clean.damage, clean.orphans, clean.versions, clean.blobs) == ([], [], 4, 9)
    a, b, c, d = (hashlib.sha256(text(t)).hexdigest() for t in "ABCD")
    altered = store.read_blob(a).replace(b"One", b"Uno")
    # Altered bytes; a blob's bytes gone; stray bytes no row names.
    backend.spoil_blob(a, store.blobs.compress(altered))
    backend.spoil_blob(c, None)
    stray = store.put_blob(b"stray")
    backend.tamper(f"DELETE FROM blob WHERE sha256 = '{stray}'")
    # A version deleted from a statement's history; a text whose blob row is gone.
    backend.spoil_blob(d, None)
    backend.tamper(
        "DELETE FROM version WHERE seq = 1 AND document_id = "
        "(SELECT id FROM document WHERE key = 'en/1')",
        f"DELETE FROM blob WHERE sha256 = '{d}'",
    )
    report = store.verify()
    damage = "\n".join(report.damage)
    assert f"blob {a}: content does not match its SHA-256" in damage
    assert f"blob {c}: missing" in damage
    assert "version w en/1 #2 (id 2): versions 1..1 before it are missing" in damage
    assert f"text_sha256 {d} not in blob" in damage
    assert len(report.damage) == 4, damage
    assert b not in damage
    assert len(report.orphans) == 1 and stray in report.orphans[0]
    repaired = store.verify(repair=True)
    assert repaired.repaired == 1
    after = store.verify()
    assert after.orphans == [] and after.damage == report.damage  # damage is never "fixed"
    assert store.read_blob(b) == text("B")
    with pytest.raises(StoreError, match="damaged"):
        store.read_blob(a)


class _CommitsAtFirstLine(io.StringIO):
    """verify's progress lines, the first of which has a daemon commit a new version."""

    def __init__(self, commit: Callable[[], object]) -> None:
        super().__init__()
        self.commit: Callable[[], object] | None = commit

    def write(self, line: str) -> int:
        if self.commit is not None:
            self.commit, commit = None, self.commit
            commit()
        return super().write(line)


def test_verify_repair_leaves_the_blobs_of_a_version_committed_while_it_ran(
    backend: Backend,
) -> None:
    # `monitor verify --repair` takes no writer lock: a daemon may commit new versions while
    # it re-hashes the blobs listed at its start (minutes, on a large archive). Their blobs
    # are not orphans, and removing them lost a version's text and the page it was read from.
    with backend.store() as store, backend.store() as daemon:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
        for n in range(progress.PLAIN_FROM):  # enough blobs for progress lines
            store.put_blob(f"blob {n}".encode())
        late = "2026-11-25T10:01:00.000Z"
        stream = _CommitsAtFirstLine(lambda: commit(daemon, late, new_version("edited", "B")))
        with progress.shown("verify", "blobs", stream=stream):
            report = store.verify(repair=True)
        assert stream.commit is None and "verify:" in stream.getvalue()  # it committed
        assert (report.damage, report.orphans, report.repaired) == ([], [], 0)
        after = store.verify()
        assert (after.damage, after.orphans) == ([], [])
        head = store.heads("w")["en/1"]
        assert head.seq == 2 and store.read_blob(head.text_sha256) == text("B")
        [newest] = store.versions(head.id)[-1:]
        body = store.response(newest["response_id"])
        assert body is not None and store.read_blob(body["body_sha256"]) == BODY + late.encode()


def test_retention_deletes_old_check_rows_and_never_versions(backend: Backend) -> None:
    now = datetime.now(UTC)
    days_ago = [iso(now - timedelta(days=d)) for d in (40, 35, 31, 29, 1)]
    with backend.store() as store:  # no retention configured: everything stays
        store.sync_watch("w", "https://gov.example/news", "govkz")
        commit(store, days_ago[0], new_version("baseline", "A"))
        for at in days_ago[1:]:
            commit(store, at)
        commit(store, days_ago[2], new_version("edited", "B"))
        assert store.prune_checks() == 0
    with backend.store(keep_checks=30 * 86400.0) as store:
        assert backend.query("SELECT COUNT(*) FROM check_run") == [(6,)]
        commit(store, iso(now))  # the first commit of a process prunes
        kept = [at for (at,) in backend.query("SELECT at FROM check_run ORDER BY id")]
        # Rows go by age up to the first row still young enough; the later old one stays.
        assert kept == [days_ago[3], days_ago[4], days_ago[2], iso(now)]
        assert backend.query("SELECT COUNT(*) FROM version") == [(2,)]
        assert store.verify().damage == []


def test_retention_works_in_batches_on_a_large_table(backend: Backend) -> None:
    old = iso(datetime.now(UTC) - timedelta(days=3))
    rows = 25_000
    with backend.store(keep_checks=86400.0) as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        columns = "INSERT INTO check_run (watch_id, at, ms, outcome)"
        if backend.url is None:
            backend.tamper(
                f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
                f"{columns} SELECT 'w', '{old}', 1, 'unchanged' FROM n"
            )
        else:
            backend.tamper(
                f"{columns} SELECT 'w', '{old}', 1, 'unchanged' FROM generate_series(1, {rows})"
            )
        store.commit_check(
            CheckRecord("w", iso(datetime.now(UTC)), 1, "unchanged", 200), store.state("w")
        )
        assert backend.query("SELECT COUNT(*) FROM check_run") == [(1,)]
        assert store.prune_checks() == 0


def test_a_new_store_is_created_at_the_latest_schema(store: Store, backend: Backend) -> None:
    assert backend.query("SELECT value FROM meta WHERE key = 'schema_version'") == [(str(LATEST),)]
    expected = "path" if backend.files else "db"  # the database, unless told files
    assert backend.query("SELECT value FROM meta WHERE key = 'blobs'") == [(expected,)]


def test_a_newer_schema_is_refused(store: Store, backend: Backend) -> None:
    store.close()
    backend.tamper("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer monitor"):
        backend.store()


def test_a_database_without_a_dialect_module_is_refused_by_name(tmp_path: Path) -> None:
    # Each backend is one module of monitor/store/dialect/, found by its URL's scheme.
    with pytest.raises(StoreError, match="'mysql'"):
        Store(tmp_path, url="mysql://someone@127.0.0.1/archive")
    with pytest.raises(StoreError, match="not a database URL"):
        Store(tmp_path, url="no scheme at all")
    assert not (tmp_path / "index.sqlite").exists()


def test_blobs_stay_where_the_store_was_created_with_them(backend: Backend) -> None:
    other = "db" if backend.files else "path"
    backend.store().close()
    with pytest.raises(StoreError, match="keeps blobs in"):
        backend.store(blobs=other)
    Store(backend.path, url=backend.url).close()  # unconfigured: follows the store


def test_a_new_sqlite_archive_keeps_its_blobs_in_the_database(tmp_path: Path) -> None:
    # Unconfigured: no file per blob (two file creations, fsyncs and renames a new page).
    root = tmp_path / "store"
    with Store(root) as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
        head = store.heads("w")["en/1"]
        assert store.read_blob(head.text_sha256) == text("A")
        assert store.verify().damage == []
    assert not (root / "blobs").exists()
    with sqlite3.connect(root / "index.sqlite") as connection:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        held = connection.execute("SELECT COUNT(*) FROM blob_data").fetchone()
        listed = connection.execute("SELECT COUNT(*) FROM blob").fetchone()
    assert meta["blobs"] == "db"
    assert held == listed == (3,)  # the body, the query, the text


def test_blob_bytes_the_database_cannot_give_back_are_damage_named_by_verify(
    tmp_path: Path,
) -> None:
    # Blobs in the database (a new archive's default): a disk that damaged a page of a
    # blob's bytes (SQLite: "database disk image is malformed" when it is read), or a tool
    # that wrote text where bytes belong. `verify` names each such blob and goes on to the
    # others, as it does a damaged file; reading one is the store's error, "damaged" (which
    # export leaves out and names), not the driver's.
    root = tmp_path / "store"
    big = random.Random(21).randbytes(300_000)  # incompressible: pages of its own
    statement = b'{"title":"sound"}' * 40
    with Store(root) as store:
        broken = store.put_blob(big)
        typed = store.put_blob(b'{"title":"typed"}' * 40)
        sound = store.put_blob(statement)
    database = sqlite3.connect(root / "index.sqlite")
    try:
        [(stored,)] = database.execute("SELECT data FROM blob_data WHERE sha256 = ?", (broken,))
        [(page_size,)] = database.execute("PRAGMA page_size")
        with database:
            database.execute("UPDATE blob_data SET data = 'text' WHERE sha256 = ?", (typed,))
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        database.close()
    image = bytearray((root / "index.sqlite").read_bytes())
    middle = image.find(stored[150_000:150_064])
    assert middle > 0
    page = middle - middle % page_size  # an overflow page: the next one's number first
    image[page : page + 4] = (0xFFFFFF00).to_bytes(4, "big")
    (root / "index.sqlite").write_bytes(image)
    with Store(root) as store:
        report = store.verify()
        damage = "\n".join(report.damage)
        assert f"blob {broken}: unreadable (" in damage, damage
        assert f"blob {typed}: unreadable (" in damage, damage
        assert report.blobs == 3 and sound not in damage
        for sha256 in (broken, typed):
            with pytest.raises(StoreError, match=f"blob {sha256} is damaged"):
                store.read_blob(sha256)
        assert store.read_blob(sound) == statement


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "unrecorded"])
def test_an_archive_made_with_blob_files_keeps_them_when_unconfigured(
    tmp_path: Path, recorded: bool
) -> None:
    # Every SQLite archive before the 21st session: its blobs stay files, read and written,
    # whether its `meta` says so or (older still) says nothing of where they are.
    root = tmp_path / "store"
    with Store(root, blobs="path") as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    if not recorded:
        with sqlite3.connect(root / "index.sqlite") as connection:
            connection.execute("DELETE FROM meta WHERE key = 'blobs'")
    for minute, title in ((1, "B"), (2, "C")):  # through migrate (unrecorded), the driver
        with Store(root) as store:
            assert store.db.blob_mode == "path"
            commit(store, f"2026-11-25T10:0{minute}:00.000Z", new_version("edited", title))
            for version in store.versions(store.heads("w")["en/1"].id):
                assert store.blob_path(version["text_sha256"]).is_file()
            assert store.read_blob(hashlib.sha256(text(title)).hexdigest()) == text(title)
            report = store.verify()
            assert (report.damage, report.orphans) == ([], [])
    with sqlite3.connect(root / "index.sqlite") as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'blobs'").fetchall() == [
            ("path",)
        ]
        assert connection.execute("SELECT COUNT(*) FROM blob_data").fetchone() == (0,)


def test_blobs_kept_in_the_database_are_stored_once_with_their_rows(backend: Backend) -> None:
    # Staged and written on the driver's connection: each blob's row and bytes together,
    # the stored size that of the bytes, a text seen again (another watch's) not twice.
    from sqlalchemy import select

    from monitor.store.schema import blob, blob_data

    with backend.store(blobs="db") as store:
        for watch in ("w", "v"):
            store.sync_watch(watch, f"https://gov.example/{watch}", "govkz")
        commit(store, "2026-11-25T16:56:29.000Z", new_version("baseline", "Statement"))
        commit(store, "2026-11-25T16:57:29.000Z", new_version("baseline", "Statement"), watch="v")
        head = store.heads("w")["en/1"]
        assert store.heads("v")["en/1"].text_sha256 == head.text_sha256
        assert json.loads(store.read_blob(head.text_sha256))["title"] == "Statement"
        with store.db.read() as conn:
            sizes = dict(conn.execute(select(blob.c.sha256, blob.c.stored_size)).all())
            held = dict(conn.execute(select(blob_data.c.sha256, blob_data.c.data)).all())
        assert head.text_sha256 in sizes
        assert {sha: len(data) for sha, data in held.items()} == sizes
        report = store.verify()
        assert (report.damage, report.orphans, report.blobs) == ([], [], len(sizes))


def test_a_version_1_sqlite_store_is_migrated_and_keeps_its_history(tmp_path: Path) -> None:
    # A store written by monitor 0.1 (plain sqlite3, blobs as files): rows from a dump, blob
    # files re-created from their known contents (content-addressed: same names).
    root = tmp_path / "store"
    root.mkdir()
    dump = (Path(__file__).parent / "data" / "store_v1.sql").read_text(encoding="utf-8")
    with sqlite3.connect(root / "index.sqlite") as connection:
        connection.executescript(dump)
    contents = [
        b'{"title":"A"}',
        b'{"title":"B"}',
        b'{"query":"news"}',
        b'{"data":{"news":["A"]}}',
        b'{"data":{"news":["B"]}}',
    ]
    with Store(root) as store:
        for data in contents:
            store.put_blob(data)
        head = store.heads("mfa-en")["en/1"]
        assert [v["kind"] for v in store.versions(head.id)] == ["baseline", "edited"]
        assert store.read_blob(head.text_sha256) == b'{"title":"B"}'
        assert store.state("mfa-en").last_check_at == "2024-05-01T10:00:00.000Z"
        report = store.verify()
        assert (report.damage, report.orphans, report.blobs) == ([], [], 5)
        commit(store, "2024-05-02T10:00:00.000Z", new_version("edited", "C"), watch="mfa-en")
        assert store.heads("mfa-en")["en/1"].seq == 3
    with sqlite3.connect(root / "index.sqlite") as connection:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
    assert meta == {"schema_version": str(LATEST), "blobs": "path"}
    # The migrated file has the same tables, columns, keys and indexes as a new one.
    assert _structure(root / "index.sqlite") == _structure(_new_store(tmp_path / "new"))


def _new_store(root: Path) -> Path:
    Store(root).close()
    return root / "index.sqlite"


def _structure(path: Path) -> dict[str, object]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        schema = inspect(engine)
        return {
            table: (
                [_column(c, schema.get_pk_constraint(table)) for c in schema.get_columns(table)],
                schema.get_pk_constraint(table)["constrained_columns"],
                sorted(
                    (tuple(k["constrained_columns"]), k["referred_table"])
                    for k in schema.get_foreign_keys(table)
                ),
                sorted(tuple(u["column_names"]) for u in schema.get_unique_constraints(table)),
                sorted((i["name"], tuple(i["column_names"])) for i in schema.get_indexes(table)),
            )
            for table in sorted(schema.get_table_names())
        }
    finally:
        engine.dispose()


def _column(column: dict, primary_key: dict) -> tuple[str, str, bool]:  # type: ignore[type-arg]
    """Name, SQLite type affinity (what SQLite acts on: DOUBLE and REAL, BIGINT and INTEGER
    are the same to it) and nullability (moot for a primary key)."""
    declared = str(column["type"]).upper()
    affinity = next((a for words, a in _AFFINITIES if any(w in declared for w in words)), "NUMERIC")
    key = column["name"] in primary_key["constrained_columns"]
    return column["name"], affinity, key or column["nullable"]


_AFFINITIES = (
    (("INT",), "INTEGER"),
    (("CHAR", "CLOB", "TEXT"), "TEXT"),
    (("BLOB",), "BLOB"),
    (("REAL", "FLOA", "DOUB"), "REAL"),
)


def test_two_daemons_write_one_postgresql_database(postgres_url: str, tmp_path: Path) -> None:
    stores = [Store(tmp_path / f"d{n}", url=postgres_url) for n in range(2)]
    errors: list[BaseException] = []

    def daemon(store: Store, watch: str) -> None:
        try:
            store.sync_watch(watch, f"https://gov.example/{watch}", "govkz")
            for n in range(30):
                at = f"2026-11-25T10:{n:02d}:00.000Z"
                kind = "baseline" if n == 0 else "edited"
                commit(store, at, new_version(kind, f"{watch} {n}"), watch=watch)
                commit(store, at, watch=watch)
        except BaseException as err:  # reported below, from the main thread
            errors.append(err)

    threads = [threading.Thread(target=daemon, args=(s, f"w{n}")) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for store in stores:  # each daemon sees the other's versions
        assert store.heads("w0")["en/1"].seq == 30 and store.heads("w1")["en/1"].seq == 30
    assert stores[0].verify().damage == []
    for store in stores:
        store.close()


def test_postgresql_can_keep_blobs_in_a_shared_directory(postgres_url: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    with Store(shared, url=postgres_url, blobs="path") as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        commit(store, "2026-11-25T10:00:00.000Z", new_version("baseline", "A"))
    with Store(shared, url=postgres_url) as other:  # a second daemon, same settings
        sha = other.heads("w")["en/1"].text_sha256
        assert other.blob_path(sha).is_file()
        assert other.read_blob(sha) == text("A")
        assert other.verify().damage == []
    database = Backend("postgresql", shared, postgres_url)
    assert database.query("SELECT COUNT(*) FROM blob_data") == [(0,)]


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        StoreError, match=r"cannot open the store at postgresql\+psycopg://m:\*\*\*@"
    ):
        Store(tmp_path, url="postgresql://m:secret@127.0.0.1:9/archive")


def test_the_writer_lock_is_held_until_the_last_checks_are_written(tmp_path: Path) -> None:
    """`close` writes the batch of unchanged checks and the waiting group, then lets the
    archive's writer lock go: another `monitor check` must not start on an archive whose
    last checks are not yet in it."""
    store = Store(tmp_path)
    store.sync_watch("w", "https://gov.example/w", "govkz")
    store.hold_writer_lock("check")
    held_at_write: list[bool] = []

    def traced(sql: str) -> None:
        if sql.startswith("INSERT INTO check_run"):
            try:
                WriterLock(tmp_path, "another check").release()
            except StoreError:
                held_at_write.append(True)
            else:
                held_at_write.append(False)

    async def last_check() -> None:
        commit(store, "2026-11-25T10:00:00.000Z")  # in the batch, written within 50 ms
        store.db._driver.set_trace_callback(traced)
        store.close()

    asyncio.run(last_check())
    assert held_at_write == [True]
    WriterLock(tmp_path, "another check").release()  # and let go after
