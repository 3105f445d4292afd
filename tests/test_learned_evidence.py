"""What learning keeps in the archive (tables learning_pair, learning_text and
learning_window): a watch's learning from it must find, at every version of a statement's
history, the very items that learning from the texts alone finds (`learn_from_history`
over every text of the window, read and compared again) — kinds, fingerprints, patterns,
examples, reasons, in the same order — whether the learner is new each time (`check
--once`) or kept (the daemon), and whether the archive kept everything, nothing (a store
from before schema 16, a process stopped before its batch was written), a window of some
edits before (a process stopped before its batch, some edits in a row) or evidence of
other rules or forms.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monitor import learned
from monitor.extract import Statement
from monitor.learned import (
    MIN_CHANGES,
    RULES,
    WINDOW,
    WINDOW_FORMAT,
    LearnedFurniture,
    Text,
    VersionText,
    learn_from_history,
)
from monitor.store import CheckRecord, NewVersion, Store
from monitor.store.furniture import LearnedItem
from monitor.store.schema import learning_pair, learning_text, learning_window
from tests.postgres import Backend
from tests.sources import parse_python

WORDS = (
    "ministry", "statement", "foreign", "affairs", "council", "minister", "talks", "delegation",
    "agreement", "cooperation", "trade", "energy", "security", "region", "summit", "visit",
    "partners", "bilateral", "relations", "development", "investment", "transport", "transit",
    "corridor", "water", "climate", "border", "consular", "citizens", "embassy", "program",
    "session", "meeting", "issues", "parties", "joint", "commission", "treaty",
)  # fmt: skip


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


@dataclass
class Page:
    """A statement that moves as real ones do: a banner at its start, a teaser after it,
    a "related" line after a paragraph that stands twice, before the last (slots), a view
    counter and a date line (shapes), words edited here and there, paragraphs added and
    taken away."""

    rng: random.Random
    body: list[str]
    teasers: list[str]
    teaser: int = 0
    banner: int = 0
    related: int = 0
    views: int = 4116
    minute: int = 0

    @classmethod
    def make(cls, seed: int) -> Page:
        rng = random.Random(seed)
        body = [_sentence(rng, rng.randint(20, 40)) for _ in range(10)]
        return cls(rng, body, [_sentence(rng, rng.randint(8, 14)) for _ in range(6)])

    def move(self) -> None:
        rng = self.rng
        if rng.random() < 0.7:
            self.teaser = rng.randrange(len(self.teasers))
        if rng.random() < 0.3:
            self.banner = rng.randrange(3)
        if rng.random() < 0.5:
            self.related = rng.randrange(len(self.teasers))
        self.views += rng.choice([1, 7, 120, 3000])
        if rng.random() < 0.6:
            self.minute += 1
        for _ in range(rng.choice([0, 1, 1, 2])):
            at = rng.randrange(len(self.body))
            words = self.body[at].split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            self.body[at] = " ".join(words)
        if rng.random() < 0.1:
            self.body.insert(rng.randrange(len(self.body)), _sentence(rng, 12))
        elif rng.random() < 0.1 and len(self.body) > 8:
            del self.body[rng.randrange(len(self.body))]

    def statement(self) -> Statement:
        share = "Share this page: print, e-mail."
        paragraphs = (
            ("Breaking: the minister's visit", "Live: the summit", "Alert: consular hours")[
                self.banner
            ],
            self.teasers[self.teaser],
            self.body[0],
            share,
            *self.body[1:5],
            f"Views: {self.views // 1000} {self.views % 1000:03d}",
            *self.body[5:8],
            f"Updated 12.03.2024 10:{self.minute % 60:02d}",
            share,
            *self.body[8:],
            share,
            f"Related: {self.teasers[self.related]}",
            "© Ministry of Foreign Affairs.",
        )
        return Statement("page", "https://gov.example/a", "A story", paragraphs, language="en")


def _history(seed: int, versions: int) -> Iterator[tuple[int, str, Statement | None]]:
    """(number, kind, statement) of a statement's versions, oldest first: mostly edits,
    with a baseline read again under new rules, a removal and its return, and a return to
    a text seen before (a pair compared twice)."""
    page = Page.make(seed)
    seen: list[Statement] = []
    for number in range(versions):
        if number == 0:
            yield number, "baseline", page.statement()
            continue
        page.move()
        statement = page.statement()
        kind = "edited"
        if number == 12:
            kind = "baseline"
        elif number == 20:
            yield number, "removed", None
            continue
        elif number == 21:
            kind = "restored"
        elif number in (27, 39):
            statement = seen[-2]
        seen.append(statement)
        yield number, kind, statement


def _churn(seed: int, versions: int) -> Iterator[tuple[int, str, Statement | None]]:
    """(number, kind, statement) of a statement whose two slots have the same neighbours
    (one changes by one paragraph or two: the same slot twice in an edit, of two runs),
    with two counters, and a tail edited, grown and cut at random: items first change in
    the same edit, in either order, and the window slides over them."""
    rng = random.Random(seed)
    pool = [_sentence(rng, rng.randint(4, 9)) for _ in range(30)]
    teasers = [_sentence(rng, 3) for _ in range(4)]
    first, second, views, minute = rng.choice(teasers), [rng.choice(teasers)], 4116, 0
    tail = rng.sample(pool, 6)
    for number in range(versions):
        if number:
            views += rng.choice([0, 1, 7, 120])
            minute += rng.choice([0, 1, 1])
            if rng.random() < 0.8:
                first = rng.choice(teasers)
            if rng.random() < 0.8:
                second = rng.sample(teasers, rng.choice([1, 1, 2]))
            if rng.random() < 0.3:
                at = rng.randrange(len(tail))
                move = rng.random()
                if move < 0.6:
                    tail[at] = rng.choice(pool)
                elif move < 0.8 and len(tail) < 9:
                    tail.insert(at, rng.choice(pool))
                elif len(tail) > 3:
                    del tail[at]
        head = [pool[0], first, pool[1], pool[0], *second, pool[1]]
        counters = (f"Views: {views // 1000} {views % 1000:03d}", f"Updated 10:{minute % 60:02d}")
        body = (*head, *counters, *tail)
        kind = "baseline" if number in (0, 12) else "edited"
        yield number, kind, Statement("page", "https://gov.example/a", "A story", body)


def _sparse(seed: int, versions: int) -> Iterator[tuple[int, str, Statement | None]]:
    """(number, kind, statement) of a statement whose slots and counters each change now
    and then (one edit in eight): most of them changed once or twice in the window, some
    three times or more, and their changes keep leaving it."""
    rng = random.Random(seed)
    anchors = [_sentence(rng, rng.randint(5, 9)) for _ in range(8)]
    options = [[_sentence(rng, 3) for _ in range(3)] for _ in anchors]
    chosen = [0 for _ in anchors]
    counts = [rng.randrange(1000) for _ in range(3)]
    for number in range(versions):
        if number:
            for i in range(len(chosen)):
                if rng.random() < 0.125:
                    chosen[i] = (chosen[i] + rng.choice([1, 2])) % 3
            for i in range(len(counts)):
                if rng.random() < 0.125:
                    counts[i] += rng.randint(1, 50)
        body = [p for i, anchor in enumerate(anchors) for p in (anchor, options[i][chosen[i]])]
        body += [f"Counter {i}: {count} views" for i, count in enumerate(counts)]
        kind = "baseline" if number == 0 else "edited"
        yield number, kind, Statement("page", "https://gov.example/a", "A story", tuple(body))


def _reference(store: Store, watch_id: str) -> list[LearnedItem]:
    """What learning from the texts alone finds: every text of each statement's window
    read from the archive, every pair compared (no evidence kept, no learner held)."""
    items: dict[str, LearnedItem] = {}
    for rows in store.recent_versions(watch_id, WINDOW).values():
        history = [
            VersionText.of(row, _reader(store, row["text_sha256"]) if row["text_sha256"] else None)
            for row in rows
        ]
        for item in learn_from_history(rows[-1]["key"], history):
            items.setdefault(item.fingerprint, item)
    return list(items.values())


def _reader(store: Store, sha256: str) -> Callable[[], Text]:
    return lambda: Text(Statement.from_json(store.read_blob(sha256)).paragraphs)


def _kept(store: Store) -> tuple[int, int]:
    with store.db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(learning_pair)).scalar_one(),
            conn.execute(select(func.count()).select_from(learning_text)).scalar_one(),
        )


def _commit(store: Store, number: int, kind: str, statement: Statement | None) -> Any:
    """A check of watch "a" that stores this version; its statement's document."""
    text = statement.to_json() if statement is not None else None
    version = NewVersion("page", "https://gov.example/a", "A story", None, "en", kind, text)
    at = f"2026-11-25T{number // 60:02d}:{number % 60:02d}:00.000Z"
    store.commit_check(
        CheckRecord("a", at, 5, "changed", 200), store.state("a"), versions=[version]
    )
    [document] = store.documents("a")
    return document


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _replay(
    store: Store,
    seed: int,
    versions: int = WINDOW + 18,
    history: Callable[..., Any] = _history,
    events: bool = True,
    significant_at: int | None = None,
) -> dict[str, int]:
    """Every version of a history committed, then learnt three ways and compared; at some
    versions the archive's evidence is first taken away, or made stale (not without
    `events`: a window then goes on from one edit to the next). No window goes on
    by failing and being made again (which finds the same items, and so would hide a
    window that went on wrongly)."""
    warnings = _Warnings()
    logging.getLogger("monitor.learned").addHandler(warnings)
    try:
        learnt = _replay_learning(store, seed, versions, history, events, significant_at)
    finally:
        logging.getLogger("monitor.learned").removeHandler(warnings)
    assert warnings.messages == [], warnings.messages[:3]
    return learnt


def _replay_learning(
    store: Store,
    seed: int,
    versions: int,
    history: Callable[..., Any],
    events: bool,
    significant_at: int | None,
) -> dict[str, int]:
    store.sync_watch("a", "https://gov.example/a", "generic")
    daemon = LearnedFurniture(store)
    learnt = {"slot": 0, "shape": 0, "versions with items": 0}
    for number, kind, statement in history(seed, versions):
        document = _commit(store, number, kind, statement)
        if number == significant_at or (events and number in (16, 40)):  # people's verdicts
            newest = store.versions(document["id"])[-1]
            store.annotate(document["id"], newest["id"], "ed", "significant")
        if events and number == 22:
            version_16 = store.versions(document["id"])[16]
            store.annotate(document["id"], version_16["id"], "ed", "noise")
        if events and number == 24:  # nothing kept: a store from before schema 16, or a kill
            with store.db.write() as conn:
                conn.execute(learning_pair.delete())
                conn.execute(learning_text.delete())
                conn.execute(learning_window.delete())
        if events and number == 33:  # kept by other rules: not read, made again
            with store.db.write() as conn:
                conn.execute(learning_pair.update().values(rules=RULES + 1))
                conn.execute(learning_text.update().values(rules=RULES + 1))
                conn.execute(learning_window.update().values(rules=RULES + 1))
        if events and number in (9, 29):  # the window as it stands, to put back two edits later
            with store.db.read() as conn:
                windows = [dict(row) for row in conn.execute(select(learning_window)).mappings()]
        if events and number in (11, 31):  # two edits' learnings lost (killed before the batch)
            with store.db.write() as conn:
                conn.execute(learning_window.delete())
                conn.execute(learning_window.insert(), windows)
        if events and number == 36:  # a window of another form: not read, made again
            with store.db.write() as conn:
                for row in conn.execute(select(learning_window)).mappings().all():
                    form, *rest = json.loads(row["state"])
                    assert form == WINDOW_FORMAT
                    state = json.dumps([WINDOW_FORMAT + 1, *rest])
                    same = learning_window.c.document_id == row["document_id"]
                    conn.execute(learning_window.update().where(same).values(state=state))
        expected = _reference(store, "a")
        fresh = LearnedFurniture(store).learn_watch("a")
        assert fresh == expected, f"version {number}: a new learner from what was kept"
        assert daemon.learn_watch("a") == expected, f"version {number}: the kept learner"
        assert LearnedFurniture(store).learn_watch("a") == expected, f"version {number}: again"
        if not events:  # the window gone on holds the changes of a window made again
            assert _changed_in(_remade(store)) == _changed_in(_kept_windows(store)), number
        # What masks the next comparison: the items learnt, refreshed, and no others.
        stored = [
            LearnedItem(r["kind"], r["fingerprint"], r["pattern"], r["example"], r["reason"])
            for r in store.furniture_items([("watch", "a")])
        ]
        by_fingerprint = {item.fingerprint: item for item in expected}
        assert {item.fingerprint: item for item in stored} == by_fingerprint, f"version {number}"
        assert len(stored) == len(expected), f"version {number}: the furniture table"
        for item in expected:
            learnt[item.kind] += 1
        learnt["versions with items"] += bool(expected)
    return learnt


def _kept_windows(store: Store) -> list[dict[str, Any]]:
    with store.db.read() as conn:
        return [dict(row) for row in conn.execute(select(learning_window)).mappings()]


def _remade(store: Store) -> list[dict[str, Any]]:
    """The windows a learning makes again from the kept pairs (the kept ones put back)."""
    kept = _kept_windows(store)
    with store.db.write() as conn:
        conn.execute(learning_window.delete())
    LearnedFurniture(store).learn_watch("a")
    remade = _kept_windows(store)
    with store.db.write() as conn:
        conn.execute(learning_window.delete())
        if kept:
            conn.execute(learning_window.insert(), kept)
    return remade


def _changed_in(windows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each window's slots and shapes: the pairs they changed in, and stood in (counted)."""
    changed: dict[int, dict[str, Any]] = {}
    for row in windows:
        _form, _pairs, found = json.loads(row["state"])
        changed[row["document_id"]] = {
            key: (learned._unpack(value) if isinstance(value, str) else value)[:3]
            for key, value in found.items()
        }
    return changed


def test_learning_from_kept_evidence_finds_what_the_texts_alone_find(tmp_path: Path) -> None:
    totals = {"slot": 0, "shape": 0, "versions with items": 0}
    for seed in range(3):
        with Store(tmp_path / f"s{seed}") as store:
            learnt = _replay(store, seed)
            pairs, texts = _kept(store)
        for name, count in learnt.items():
            totals[name] += count
        # Every pair compared and every text counted is kept, once.
        assert pairs >= WINDOW - MIN_CHANGES and texts >= WINDOW, (pairs, texts)
    # The histories teach items of both kinds, not at every version: the comparison above
    # compared something.
    assert totals["slot"] >= 20 and totals["shape"] >= 20, totals
    assert 20 <= totals["versions with items"] < 3 * (WINDOW + 18), totals


def test_learning_from_a_kept_window_finds_what_the_texts_alone_find(tmp_path: Path) -> None:
    """Statements of few paragraphs, many alike, moving at random: the window's running
    counts (`learned._Window`), slid and made again, judge as the texts alone do."""
    totals = {"slot": 0, "shape": 0, "versions with items": 0}
    for seed in range(4):
        with Store(tmp_path / f"s{seed}") as store:
            learnt = _replay(store, seed, WINDOW + 14, _churn)
        for name, count in learnt.items():
            totals[name] += count
    assert totals["slot"] >= 20 and totals["shape"] >= 20, totals


def test_a_window_going_on_for_many_edits_finds_what_the_texts_alone_find(
    tmp_path: Path,
) -> None:
    """Windows that go on, kept and held, for three windows' length (one verdict at most,
    nothing taken away): the slots and shapes whose changes leave the window are let go
    of as the texts alone forget them, read or not since (`learned._pack`), and those that
    changed where people said "significant" are counted once that change has left."""
    totals = {"slot": 0, "shape": 0, "versions with items": 0}
    runs = ((0, _churn, None), (0, _sparse, None), (1, _sparse, 3), (2, _churn, 3))
    for seed, history, significant_at in runs:
        with Store(tmp_path / f"s{seed}{history.__name__}") as store:
            learnt = _replay(store, seed, 3 * WINDOW, history, False, significant_at)
        for name, count in learnt.items():
            totals[name] += count
    assert totals["slot"] >= 20 and totals["shape"] >= 20, totals


def test_an_edit_goes_on_from_the_window_the_last_learning_kept(tmp_path: Path) -> None:
    """A new learner at each edit (`check --once`) goes on from the window the learning
    before kept: it compares its own pair only, and keeps that one, where it went over
    every pair of the window again (reading what was kept of each, or comparing it)."""
    with Store(tmp_path / "s") as store:
        store.sync_watch("a", "https://gov.example/a", "generic")
        for number, kind, statement in _history(5, WINDOW + 5):
            _commit(store, number, kind, statement)
            if number == WINDOW + 4:  # what was kept of the pairs, gone
                with store.db.write() as conn:
                    conn.execute(learning_pair.delete())
            items = LearnedFurniture(store).learn_watch("a")
        assert items and items == _reference(store, "a")
        assert _kept(store)[0] == 1, "the edit's own pair, and no other, compared and kept"


def test_learning_from_kept_evidence_on_sqlite_and_postgresql(backend: Backend) -> None:
    with backend.store() as store:
        learnt = _replay(store, 7, versions=WINDOW + 4)
    assert learnt["slot"] and learnt["shape"], learnt


def test_the_kept_evidence_s_rules_are_versioned() -> None:
    """Evidence kept under RULES is read back as it is. What makes it, changed (not only
    its comments or docstrings), must bump RULES, and then this test's fingerprint."""
    made_by = (
        learned.normal,
        learned.shape,
        learned._words,
        learned.Text.__init__,
        learned.Text.forms.fget,
        learned._changed,
        learned._kept_changes,
        learned._hashed,
        learned._hash,
        learned._encode_changes,
        learned._decode_changes,
        learned.Digest.of,
        learned.Digest.to_bytes,
        learned.Digest.from_bytes,
    )
    parts = [_code(inspect.getsource(thing)) for thing in made_by]
    parts += [learned._NUMBER.pattern, repr(learned.MAX_SHARE_OF_TEXT)]
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    assert (RULES, fingerprint) == (1, "bc0d9253a254612c")


def test_the_kept_window_s_form_is_versioned() -> None:
    """A window kept under WINDOW_FORMAT is read back as it is (`learned._Window`). What
    writes or reads it, changed, must bump WINDOW_FORMAT, and then this fingerprint."""
    made_by = (
        learned._RowPairs.ids,
        learned._key,
        learned._where,
        learned._Window.encode,
        learned._Window.decode,
        learned._pack,
        learned._unpack,
    )
    parts = [_code(inspect.getsource(thing)) for thing in made_by]
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    assert (WINDOW_FORMAT, fingerprint) == (2, "906b62a9305d8fab")


def _code(source: str) -> str:
    """The code of a definition, without its docstrings and comments."""
    tree = parse_python(inspect.cleandoc("\n" + source) if source[:1].isspace() else source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def _spoilt(state: str, how: int) -> str:
    """A kept window spoilt as a disk, a hand or a faulty writer might leave it: not a
    list, or a list whose slots and shapes are not what a window writes."""
    form, pairs, found = json.loads(state)
    if how == 0:
        return "5"
    if how == 1:
        return "null"
    if how == 2:
        return json.dumps([form, pairs, {key: 5 for key in found}])
    return json.dumps([form, pairs, {f"slot:x{key}": value for key, value in found.items()}])


def test_a_spoilt_window_is_made_again(tmp_path: Path) -> None:
    """A kept window that cannot be read as one (`learned._Window`) is made again from
    the pairs, as one of another form is: it never stops the watch's learning, which
    failed at every edit of the watch while the row stayed (no furniture learnt)."""
    with Store(tmp_path / "s") as store:
        store.sync_watch("a", "https://gov.example/a", "generic")
        spoilt = 0
        for number, kind, statement in _history(3, WINDOW + 8):
            _commit(store, number, kind, statement)
            if number >= WINDOW:  # the window kept by the edit before, spoilt
                with store.db.write() as conn:
                    for row in conn.execute(select(learning_window)).mappings().all():
                        state = _spoilt(row["state"], number % 4)
                        same = learning_window.c.document_id == row["document_id"]
                        conn.execute(learning_window.update().where(same).values(state=state))
                        spoilt += 1
            items = LearnedFurniture(store).learn_watch("a")
            assert items == _reference(store, "a"), f"version {number}"
        assert spoilt >= 8 and items
        with store.db.read() as conn:  # and kept again, as a window
            for row in conn.execute(select(learning_window)).mappings():
                assert json.loads(row["state"])[0] == WINDOW_FORMAT
