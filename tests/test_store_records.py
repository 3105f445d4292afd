"""The store's typed rows (monitor/store/records.py) say what its reads really return.

mypy checks every `row["field"]` against a `TypedDict`; nothing checks the declaration
against the SQL but this: a real store (SQLite, and PostgreSQL when there is one) is filled
through its public writes, and every read's rows must have exactly the declared keys, each
value of its declared type (a `Literal` one of its values)."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from monitor.store import Discovery, Store, iso
from monitor.store import records as r
from monitor.store.changes import ChangeFilter
from monitor.store.furniture import LearnedItem
from monitor.store.notes import newest_annotations, noted, version_annotations
from monitor.store.records import AttachmentRecord, NewScreenshot
from tests.postgres import Backend
from tests.test_store import commit, new_version

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in get_args(hint))
    if origin is not None:
        return isinstance(value, origin)
    if typing.is_typeddict(hint):
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


def check(row: Any, shape: Any) -> None:
    """`row` is a `shape` (a TypedDict, or a union of TypedDicts told apart by `source`)."""
    if get_origin(shape) in (Union, types.UnionType):
        [shape] = [
            s for s in get_args(shape) if _matches(row["source"], get_type_hints(s)["source"])
        ]
    hints = get_type_hints(shape)
    assert set(row) == set(hints), f"{shape.__name__}: {sorted(set(row) ^ set(hints))}"
    for name, hint in hints.items():
        assert _matches(row[name], hint), f"{shape.__name__}.{name}: {row[name]!r} is not {hint}"


def check_all(rows: Any, shape: Any) -> None:
    rows = list(rows)
    assert rows, f"no {shape} row to check"
    for row in rows:
        check(row, shape)


@pytest.fixture
def store(backend: Backend) -> Store:
    """An archive with a row in every table a read returns."""
    with backend.store() as store:
        store.sync_watch("w", "https://gov.example/news", "govkz")
        store.sync_watch("list", "https://gov.example/list", "govkz")
        store.add_discovered(
            [
                Discovery(
                    "list.en-2",
                    "list",
                    "en/2",
                    "https://gov.example/news/en/2",
                    "Two",
                    "en",
                    None,
                    "2026-11-25",
                    "g",
                    True,
                    "ab" * 32,
                ),
                Discovery(
                    "list.ru-2",
                    "list",
                    "ru/2",
                    "https://gov.example/news/ru/2",
                    "Два",
                    "ru",
                    None,
                    None,
                    "g",
                    False,
                    "cd" * 32,
                ),
            ],
            "2026-11-25T10:00:00.000Z",
        )
        commit(store, "2026-11-25T16:00:00.000Z", new_version("baseline", "First"))
        first = new_version("edited", "Second")
        first.confirmation = "pending"
        first.alerts = [({"kind": "edited", "title": "Second", "summary": "edited"}, ["log"])]
        commit(store, "2026-11-25T17:00:00.000Z", first)
        commit(store, "2026-11-25T18:00:00.000Z", new_version("removed", None))
        commit(store, "2026-11-25T19:00:00.000Z")
        commit(store, "2026-11-25T19:30:00.000Z", new_version("published", "Other", key="en/3"))
        store.record_alert("w", {"title": "w is failing", "kind": "failing"}, ["log"])
        doc = store.document("w", "en/1")
        assert doc is not None
        version = store.version_at(doc["id"], 2)
        assert version is not None
        store.annotate(doc["id"], version["id"], "ann", "noise", "just a date")
        store.annotate(doc["id"], None, "ann", None, "a note on the statement")
        store.put_ui_watch("ui", {"url": "https://gov.example/ui"}, "ann")
        store.put_user("ann", "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", "editor")
        expires = iso(datetime.now(UTC) + timedelta(hours=1))
        store.create_session("s" * 64, "ann", "fp", expires, "127.0.0.1")
        store.add_token("bot", "t" * 64, "viewer", "ann")
        store.store_learned(
            "watch",
            "w",
            [LearnedItem("slot", "f" * 64, {"before": "a", "after": "b", "run": 1}, "x", "why")],
        )
        shot = NewScreenshot("w", "2026-11-25T17:00:01.000Z", "https://gov.example/news", PNG, 4, 4)
        store.screenshots.record(shot, [version["id"]])
        store.screenshots.record_problem(
            "w", "2026-11-25T19:00:01.000Z", "https://gov.example/news", "no browser"
        )
        store.attachments.record(
            AttachmentRecord(
                "w",
                "https://gov.example/a.pdf",
                "2026-11-25T17:00:02.000Z",
                "https://gov.example/a.pdf",
                200,
                [("ETag", '"1"')],
                b"%PDF-1.7",
                8,
                "application/pdf",
                b'{"pages": []}',
            )
        )
        store.copies.queue_new(["w"], "wayback", "2026-01-01T00:00:00.000Z")
        pending = store.timestamps.pending_versions()
        from monitor.store.timestamps import manifest_for

        manifest, heads = manifest_for(pending, "2026-11-25T20:00:00.000Z")
        store.timestamps.record_batch(
            manifest.encode(),
            "http://tsa.example",
            b"token",
            "2026-11-25T20:00:00Z",
            "1",
            heads,
            "2026-11-25T20:00:00.000Z",
        )
        yield store


def test_every_read_of_the_archive_returns_its_declared_row(store: Store) -> None:
    doc = store.document("w", "en/1")
    assert doc is not None
    check(doc, r.DocumentRow)
    check(store.document_by_id(doc["id"]), r.DocumentRow)
    check_all(store.documents("w"), r.DocumentSummaryRow)
    check_all(store.versions(doc["id"]), r.VersionRow)
    check_all(store.versions(doc["id"], newest=2), r.VersionRow)
    first = store.versions(doc["id"])[0]
    assert first["text_sha256"] is not None
    check_all(
        store.versions_with_text(doc["id"], first["text_sha256"], first["observed_at"]),
        r.VersionRow,
    )
    version = store.version_at(doc["id"], 2)
    assert version is not None
    check(version, r.VersionWithDocumentRow)
    check(store.version(version["id"]), r.VersionWithDocumentRow)
    check(store.reference(doc["id"], 3), r.VersionWithDocumentRow)
    check(store.latest_change("w"), r.VersionWithDocumentRow)
    check_all(store.iter_versions("w"), r.VersionWithDocumentRow)
    assert version["response_id"] is not None
    check(store.response(version["response_id"]), r.ResponseRow)
    check_all(store.archive.mementos(doc["url"]), r.MementoRow)
    check_all(store.checks("w"), r.CheckRow)
    check_all(store.overview.statements(), r.StatementRow)
    check_all(store.overview.watch_states(), r.WatchStatusRow)


def test_every_read_of_the_schedule_outbox_and_feed_returns_its_declared_row(store: Store) -> None:
    check_all(store.watch_rows(), r.WatchStateRow)
    check(store.watch_row("w"), r.WatchStateRow)
    check_all(store.discovered(), r.DiscoveredRow)
    check(store.discovery_of("list.en-2"), r.DiscoveredRow)
    check_all(store.translations("list.en-2"), r.TranslationRow)
    check_all(store.alerts(), r.AlertRow)
    check_all(store.deliveries(), r.DeliveryWithAlertRow)
    check_all(store.recent_alerts(None, 10), r.AlertRow)
    check_all(store.alert_deliveries([a["id"] for a in store.alerts()]), r.DeliveryRow)
    events, _cursor = store.changes(ChangeFilter(), 50)
    assert {e["source"] for e in events} == {"version", "watch"}
    check_all(events, r.ChangeEvent)


def test_every_read_of_accounts_review_and_search_returns_its_declared_row(store: Store) -> None:
    check(store.user("ann"), r.UserRow)
    check_all(store.users(), r.UserRow)
    check(store.session("s" * 64), r.SessionRow)
    check(store.token("t" * 64), r.TokenRow)
    check_all(store.tokens(), r.TokenRow)
    doc = store.document("w", "en/1")
    assert doc is not None
    check_all(store.timeline(doc["id"]), r.TimelineRow)
    check_all(store.annotations(doc["id"]), r.AnnotationRow)
    check_all(store.verdicts("w"), r.VerdictRow)
    check_all(store.ui_watches(), r.UiWatchRow)
    version = store.version_at(doc["id"], 2)
    assert version is not None
    check_all(version_annotations(store, version["id"]), r.AnnotationRow)
    check_all(newest_annotations(store, [doc["id"]]).values(), r.NumberedAnnotationRow)
    check_all(noted(store), r.NotedRow)
    check_all(store.search("Second"), r.SearchHit)
    check_all(store.recent_versions("w", 5)[doc["id"]], r.RecentVersionRow)
    check_all(store.newest_texts("gov.example", 5), r.HostTextRow)
    check_all(store.furniture_items([("watch", "w")]), r.FurnitureRow)
    check_all(store.mask_items("w", "gov.example"), r.FurnitureRow)
    check_all(store.all_furniture(), r.FurnitureRow)


def test_every_read_of_screenshots_attachments_stamps_and_copies_returns_its_declared_row(
    store: Store,
) -> None:
    shots = store.screenshots
    check(shots.last_row("w"), r.ScreenshotRow)
    shot = shots.last("w")
    assert shot is not None
    check(shot, r.ScreenshotRow)
    check(shots.get(shot["id"]), r.ScreenshotRow)
    check_all(shots.of_watch("w"), r.ScreenshotRow)
    [version_id] = shots.versions_of(shot["id"])
    check(shots.of_version(version_id), r.ScreenshotRow)
    check_all(shots.of_versions([version_id]).values(), r.VersionScreenshotRow)
    check_all(shots.exported(None, None), r.ScreenshotRow)
    files = store.attachments
    check(files.latest("w", "https://gov.example/a.pdf"), r.AttachmentRow)
    check(files.latest_read("w", "https://gov.example/a.pdf"), r.AttachmentRow)
    check_all(files.history("w"), r.AttachmentRow)
    answer = files.latest("w", "https://gov.example/a.pdf")
    assert answer is not None and answer["body_sha256"] is not None
    check_all(files.by_bodies([answer["body_sha256"]]).values(), r.AttachmentRow)
    stamps = store.timestamps
    check(stamps.version_stamp(version_id), r.VersionStampRow)
    check_all(stamps.stamps_of([version_id]).values(), r.StampRef)
    check_all(stamps.batches(), r.BatchRow)
    covered = list(stamps.coverage())
    check_all(covered, r.CoverageRow)
    check_all(stamps.chains_of([covered[0]["document_id"]])[covered[0]["document_id"]], r.ChainLink)
    copies = store.copies
    due = store.due.copies("2099-01-01T00:00:00.000Z")
    check_all(due, r.DueCopyRow)
    check_all(copies.copies_of([due[0]["version_id"]])[due[0]["version_id"]], r.CopyRow)
    copies.update(due[0]["id"], state="captured", capture_url="https://web.archive.org/web/1/x")
    row = due[0]
    check_all(copies.captured_for(row["watch_id"], row["key"], row["seq"]), r.Capture)
