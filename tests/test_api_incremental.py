"""The API's list of every watch (/api/v1/watches) reads, after its first request, only the
states of the watches checked since (`store.overview.WatchHealth`). These tests hold it to
what the archive says after every kind of write another connection (a daemon's) commits:
unchanged, failing, recovered and changed checks, in one batch or many; the pruning of
old checks, down to none, with ids given again; a watch registered beside it; the
configuration's watches renamed or deleted (a reload). On a real SQLite file and on the
PostgreSQL the tests start (where every state is read each time)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import iso
from monitor.config import MonitorConfig, parse_config
from monitor.extract import Statement
from monitor.store import CheckRecord, Discovery, NewVersion, Store
from monitor.store.overview import HEALTH_COLUMNS, WatchHealth
from tests.postgres import Backend
from tests.test_web_cache import InProcess

WATCHES = tuple(f"w{n}" for n in range(12))
# Checks are kept a day; the writer's clock starts an hour ago and moves 7 s a check.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def config_of(backend: Backend, tmp_path: Path, watches: tuple[str, ...]) -> MonitorConfig:
    store = f'path = "{backend.path}"\n' + (f'url = "{backend.url}"\n' if backend.url else "")
    text = f"[store]\n{store}[server]\npublic = true\napi_rate = 1000000\n" + "".join(
        f'[[watch]]\nid = "{w}"\nurl = "https://gov.example/{w}"\nprofile = "generic"\n'
        for w in watches
    )
    path = tmp_path / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


class Writer:
    """A daemon's writes on a connection of its own, each a real `commit_check`."""

    def __init__(self, store: Store) -> None:
        self.store, self.at, self.edits = store, START, 0

    def tick(self) -> str:
        self.at += timedelta(seconds=7)
        return iso(self.at)

    def unchanged(self, watch_id: str) -> None:
        at = self.tick()
        state = replace(self.store.state(watch_id), last_check_at=at)
        self.store.commit_check(CheckRecord(watch_id, at, 5, "unchanged", 200), state)

    def fail(self, watch_id: str) -> None:
        at = self.tick()
        old = self.store.state(watch_id)
        state = replace(
            old, last_check_at=at, failing_since=old.failing_since or at, failure_reason="503"
        )
        self.store.commit_check(CheckRecord(watch_id, at, 5, "problem", 503), state)

    def recover(self, watch_id: str) -> None:
        at = self.tick()
        state = replace(
            self.store.state(watch_id), last_check_at=at, failing_since=None, failure_reason=None
        )
        self.store.commit_check(CheckRecord(watch_id, at, 5, "unchanged", 200), state)

    def change(self, watch_id: str) -> None:
        at, self.edits = self.tick(), self.edits + 1
        key, url = f"en/{watch_id}", f"https://gov.example/{watch_id}/s"
        text = Statement(key, url, f"Edit {self.edits}", (f"Paragraph {self.edits}.",))
        kind = "edited" if self.store.archive.heads(watch_id) else "baseline"
        new = NewVersion(key, url, f"Edit {self.edits}", None, "en", kind, text.to_json())
        state = replace(self.store.state(watch_id), last_check_at=at, last_change_at=at)
        self.store.commit_check(CheckRecord(watch_id, at, 5, "changed", 200), state, versions=[new])

    def prune(self, rng: random.Random) -> None:
        """The checks older than a day as of a moment from now to a day on deleted (a
        prefix of the rows, none to all)."""
        self.store.archive.prune_checks(now=self.at + timedelta(days=1, minutes=rng.randrange(60)))

    def discover(self, rng: random.Random) -> None:
        """A listing (w0) found a statement: a watch of its own, new to the archive or one
        with statements already (they move under the listing)."""
        self.found = getattr(self, "found", 0) + 1
        found_id = rng.choice((f"w0-{self.found}", rng.choice(WATCHES[1:])))
        url = f"https://gov.example/w0/{self.found}"
        language = rng.choice(("en", "ru", None))
        item = Discovery(
            found_id, "w0", f"en/{found_id}", url, f"Found {self.found}", language,
            None, None, rng.choice((None, "g1")), True, "sha",
        )  # fmt: skip
        self.store.add_discovered([item], self.tick())

    def any(self, rng: random.Random) -> None:
        if rng.random() < 0.05:
            self.prune(rng)
        if rng.random() < 0.05:
            self.discover(rng)
        kind = rng.choice((self.unchanged, self.unchanged, self.fail, self.recover, self.change))
        kind(rng.choice(WATCHES))


@pytest.fixture
def bed(backend: Backend, tmp_path: Path) -> Iterator[tuple[Store, Writer, Any]]:
    """The served API (in this process, on a store of its own) and a writer beside it."""
    from monitor.web import create_app

    with backend.store() as reader, backend.store(keep_checks=86400) as writing:
        writing.sync_watches([(w, f"https://gov.example/{w}", "generic") for w in WATCHES])
        config = [config_of(backend, tmp_path, WATCHES)]
        app = create_app(lambda: {"ok": True}, reader, lambda: config[0])
        client = InProcess(app)
        client.config = config  # type: ignore[attr-defined]
        yield writing, Writer(writing), client


def listed(client: InProcess, query: str = "") -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/watches{query}")
    assert answer.status_code == 200, answer.text
    return list(json.loads(answer.content)["watches"])


def paged(client: InProcess, limit: int) -> list[dict[str, Any]]:
    """Every watch, `limit` at a time."""
    entries: list[dict[str, Any]] = []
    after = ""
    while True:
        answer = client.get(f"/api/v1/watches?limit={limit}{after}")
        assert answer.status_code == 200, answer.text
        page = json.loads(answer.content)
        entries += page["watches"]
        if page["next"] is None:
            return entries
        after = f"&after={page['next']}"


def assert_shows(entries: list[dict[str, Any]], store: Store, watches: tuple[str, ...]) -> None:
    """The list is the configuration's watches, each with its state as the archive holds
    it now."""
    assert [e["id"] for e in entries] == list(watches)
    health = store.watch_health()
    for entry in entries:
        state = health.get(entry["id"])
        assert tuple(entry[c] for c in HEALTH_COLUMNS) == (state or (None,) * 4), entry["id"]


def test_every_write_shows_on_the_next_request(bed: tuple[Store, Writer, Any]) -> None:
    store, writer, client = bed
    rng = random.Random(28)
    assert_shows(listed(client), store, WATCHES)
    for step in range(80):
        for _ in range(rng.choice((1, 1, 2, 5))):  # one commit, or a few between requests
            writer.any(rng)
        assert_shows(listed(client), store, WATCHES)
        if step % 10 == 0:
            assert_shows(paged(client, 5), store, WATCHES)
            assert_shows(listed(client), store, WATCHES)


def test_the_statuses_are_those_of_the_states(bed: tuple[Store, Writer, Any]) -> None:
    _store, writer, client = bed
    by_id = {e["id"]: e for e in listed(client)}
    assert by_id["w3"]["status"] == "not checked yet"
    writer.fail("w3")
    assert {e["id"]: e for e in listed(client)}["w3"]["status"] == "failing"
    writer.recover("w3")
    assert {e["id"]: e for e in listed(client)}["w3"]["status"] == "ok"
    writer.change("w3")  # "changed" for a day after the change
    assert {e["id"]: e for e in listed(client)}["w3"]["status"] == "changed"


def test_checks_pruned_to_none_and_ids_given_again(bed: tuple[Store, Writer, Any]) -> None:
    """Every check_run row deleted, then more checks than there were: their ids are those
    of rows the reader saw already; it must not take them for old ones."""
    store, writer, client = bed
    for watch_id in WATCHES:
        writer.unchanged(watch_id)
    assert_shows(listed(client), store, WATCHES)
    later = writer.at + timedelta(days=1, seconds=1)
    assert store.archive.prune_checks(now=later) == len(WATCHES)
    writer.at = later
    for watch_id in WATCHES * 2:  # ids 1.. again, past the newest the reader saw
        writer.fail(watch_id)
    assert_shows(listed(client), store, WATCHES)
    writer.recover("w5")
    assert_shows(listed(client), store, WATCHES)


def test_checks_pruned_between_two_requests(bed: tuple[Store, Writer, Any]) -> None:
    store, writer, client = bed
    for watch_id in WATCHES:
        writer.unchanged(watch_id)
    listed(client)
    writer.at += timedelta(days=1)
    writer.fail("w1")
    store.archive.prune_checks(now=writer.at + timedelta(seconds=30))  # all but w1's
    writer.fail("w2")
    assert_shows(listed(client), store, WATCHES)


def test_a_watch_registered_beside_it_shows(
    bed: tuple[Store, Writer, Any], backend: Backend, tmp_path: Path
) -> None:
    """A watch in the configuration the archive does not know yet is "never checked";
    once a daemon registered it (a state row, no check), "not checked yet"."""
    store, writer, client = bed
    client.config[0] = config_of(backend, tmp_path, (*WATCHES, "w-new"))
    entries = listed(client)
    assert entries[-1]["id"] == "w-new" and entries[-1]["status"] == "never checked"
    store.sync_watches([("w-new", "https://gov.example/w-new", "generic")])
    entries = listed(client)
    assert entries[-1]["status"] == "not checked yet"
    writer.fail("w-new")
    assert_shows(listed(client), store, (*WATCHES, "w-new"))


def test_watches_renamed_and_deleted_by_a_reload_show(
    bed: tuple[Store, Writer, Any], backend: Backend, tmp_path: Path
) -> None:
    store, writer, client = bed
    for watch_id in WATCHES:
        writer.fail(watch_id)
    assert_shows(listed(client), store, WATCHES)
    kept = (*(w for w in WATCHES if w not in ("w2", "w7")), "w2-renamed")
    client.config[0] = config_of(backend, tmp_path, kept)
    assert_shows(listed(client), store, kept)
    assert_shows(paged(client, 4), store, kept)
    writer.recover("w4")
    writer.fail("w7")  # no longer configured: still written by a daemon not reloaded yet
    assert_shows(listed(client), store, kept)
    client.config[0] = config_of(backend, tmp_path, WATCHES)
    assert_shows(listed(client), store, WATCHES)


def test_watch_health_reads_only_what_was_checked_since(backend: Backend) -> None:
    """What the reader is handed: every state at first, then (SQLite) the watches checked
    since; always the archive's states."""
    with backend.store() as reader, backend.store() as writing:
        writing.sync_watches([(w, f"https://gov.example/{w}", "generic") for w in WATCHES])
        writer, health = Writer(writing), WatchHealth(reader.db)
        states, changed = health.read()
        assert changed is None and states == writing.watch_health()
        writer.unchanged("w0")
        states, changed = health.read()  # no check to find again: every state read
        assert changed is None and states == writing.watch_health()
        writer.fail("w1")
        writer.unchanged("w2")
        states, changed = health.read()
        assert states == writing.watch_health()
        sqlite = backend.name == "sqlite"
        assert (sorted(changed) if sqlite else changed) == (["w1", "w2"] if sqlite else None)
        states, changed = health.read()
        assert changed == ([] if sqlite else None)


@pytest.mark.slow  # a new application made for each of 25 steps: 30-45 s
def test_the_kept_pages_are_those_made_afresh(
    bed: tuple[Store, Writer, Any], backend: Backend
) -> None:
    """After any writes, /watches (grouped), /watches/all and /api/v1/watches as the served
    application keeps them are those a new one makes of the archive."""
    from monitor.web import create_app

    _store, writer, client = bed
    rng = random.Random(4)
    pages = ("/watches", "/watches/all", "/watches/all?page=2", "/api/v1/watches")
    with backend.store() as reader:
        for step in range(25):
            for _ in range(rng.choice((1, 1, 3))):
                writer.any(rng)
            if step % 3 == 0:
                writer.change(rng.choice(WATCHES))  # a statement of a watch that may fail
            if step % 5 == 4:
                writer.discover(rng)
            afresh = InProcess(create_app(lambda: {"ok": True}, reader, client.config[0]))
            for path in pages:
                kept, made = client.get(path), afresh.get(path)
                assert kept.status_code == made.status_code == 200, path
                assert kept.content == made.content, (step, path)
