"""The decisions of a check (monitor/decide.py), case by case: plain values in, plain values
out, no server, no store, no clock. The stories in test_alerts*.py, test_first_sight.py and
test_pipeline.py show the same rules end to end through real servers and archives."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor import decide
from monitor.decide import Basis, Change, Outage, PastVersion, Policy, Quiet
from monitor.diff import compare
from monitor.extract import Extraction, Statement
from monitor.store import FIRST_SEEN, DocumentHead

AT = "2026-01-10T12:00:00.000Z"
HOUR_BEFORE = "2026-01-10T11:00:00.000Z"
DAY_BEFORE = "2026-01-09T11:00:00.000Z"
TWO_DAYS_BEFORE = "2026-01-08T12:00:00.000Z"
TWO_HOURS_BEFORE = "2026-01-10T10:00:00.000Z"


def statement(
    key: str = "a", words: int = 80, title: str = "Title", word: str = "text"
) -> Statement:
    return Statement(
        key=key,
        url=f"https://example.org/{key}",
        title=title,
        paragraphs=(" ".join([word] * words),) if words else (),
        published="2026-01-05",
    )


def head(
    key: str = "a",
    text: Statement | None = None,
    seq: int = 1,
    confirmation: str | None = None,
    response_id: int | None = 7,
    version_id: int | None = 100,
    published: str | None = "2026-01-05",
    id: int = 1,
) -> DocumentHead:
    return DocumentHead(
        id=id,
        key=key,
        url=f"https://example.org/{key}",
        title="Title",
        published=published,
        language="en",
        text_sha256=text.sha256 if text else None,
        seq=seq,
        response_id=response_id,
        confirmation=confirmation,
        version_id=version_id,
    )


def past(
    seq: int,
    text: Statement | None,
    confirmation: str | None = None,
    at: str = HOUR_BEFORE,
    kind: str = "edited",
) -> PastVersion:
    return PastVersion(100 + seq, seq, kind, at, text.sha256 if text else None, confirmation)


@dataclass(frozen=True)
class Diff:
    changed: bool = True
    score: float = 0.5
    summary: str = "a paragraph changed"


OLD = statement(word="old")
NEW = statement(word="new")
THIRD = statement(word="third")
NOW = Policy(confirm_delay=0.0, flipflop_window=86400.0)
CONFIRMING = Policy(confirm_delay=3.0, flipflop_window=86400.0)


# --- fetching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pending", "since_full", "every", "expected"),
    [
        (False, 0, 12, True),
        (False, 10, 12, True),
        (False, 11, 12, False),  # the 12th check fetches in full
        (False, 20, 12, False),
        (True, 0, 12, False),  # a confirming look asks for the page itself
        (False, 0, 1, False),  # every check in full
        (False, 0, 2, True),
        (False, 1, 2, False),
    ],
)
def test_conditional_requests(pending: bool, since_full: int, every: int, expected: bool) -> None:
    assert decide.conditional(pending, since_full, every) is expected


@pytest.mark.parametrize(
    ("previous", "not_modified", "expected"), [(0, True, 1), (5, True, 6), (5, False, 0)]
)
def test_since_full(previous: int, not_modified: bool, expected: int) -> None:
    assert decide.since_full(previous, not_modified) == expected


@pytest.mark.parametrize(
    ("recorded", "rules", "expected"),
    [(None, "r1", True), ("r1", "r1", True), ("r0", "r1", False)],
)
def test_same_rules(recorded: str | None, rules: str, expected: bool) -> None:
    assert decide.same_rules(recorded, rules) is expected


@pytest.mark.parametrize(
    ("validators", "expected"),
    [
        ({}, None),
        ({"https://x/": {"etag": "e", "rules": "r1"}}, "r1"),
        ({"https://x/": {"etag": "e"}}, None),  # recorded before rules were remembered
        ({"https://x/": "garbage"}, None),
    ],
)
def test_last_rules(validators: dict[str, object], expected: str | None) -> None:
    assert decide.last_rules(validators) == expected


@pytest.mark.parametrize(
    ("ok", "body", "known", "expected"),
    [
        (True, "b1", {"body": "b1", "rules": "r1"}, True),
        (True, "b1", {"body": "b1"}, True),
        (True, "b1", {"body": "b1", "rules": "r0"}, False),  # read again under new rules
        (True, "b2", {"body": "b1", "rules": "r1"}, False),
        (False, "b1", {"body": "b1", "rules": "r1"}, False),  # an error page is never skipped
        (True, "b1", {}, False),
    ],
)
def test_already_read(ok: bool, body: str, known: dict[str, str], expected: bool) -> None:
    assert decide.already_read(ok, body, known, "r1") is expected


# --- what changed -----------------------------------------------------------------------------


def kinds(found: list[Change]) -> list[tuple[str, str]]:
    return [(change.kind, change.key) for change in found]


def test_first_sight_is_a_silent_baseline() -> None:
    found = decide.changes(Extraction([statement("a"), statement("b")]), {}, baseline=True)
    assert kinds(found) == [("baseline", "a"), ("baseline", "b")]
    assert not any(change.may_alert for change in found)


def test_a_statement_a_listing_announced_is_published_at_first_sight() -> None:
    found = decide.changes(Extraction([statement("a")]), {}, baseline=False)
    assert kinds(found) == [("published", "a")]
    assert found[0].may_alert


@pytest.mark.parametrize(
    ("was", "now", "expected"),
    [
        (OLD, OLD, []),
        (OLD, NEW, [("edited", "a")]),
        (None, NEW, [("restored", "a")]),  # back after a removal
    ],
)
def test_one_statement_against_its_head(
    was: Statement | None, now: Statement, expected: list[tuple[str, str]]
) -> None:
    heads = {"a": head("a", was)}
    found = decide.changes(Extraction([now]), heads, baseline=False)
    assert kinds(found) == expected
    assert all(change.head == heads["a"] and change.new == now for change in found)


def test_a_new_statement_beside_known_ones_is_published() -> None:
    heads = {"a": head("a", OLD)}
    found = decide.changes(Extraction([OLD, statement("b")]), heads, baseline=False)
    assert kinds(found) == [("published", "b")]


def test_a_page_that_is_gone_removes_what_it_held() -> None:
    heads = {"a": head("a", OLD), "b": head("b", None)}  # b was removed before
    found = decide.changes(Extraction(problem="404", gone=True), heads, baseline=False)
    assert kinds(found) == [("removed", "a")]
    assert found[0].new is None and found[0].may_alert


@pytest.mark.parametrize(
    ("published", "window_start", "is_listing", "removed"),
    [
        ("2026-01-05", "2026-01-01", True, True),  # within the window the listing covers
        ("2026-01-01", "2026-01-01", True, True),  # on its first day
        ("2025-12-20", "2026-01-01", True, False),  # pushed off by newer statements
        (None, "2026-01-01", True, False),  # undated: cannot tell, not removed
        ("2026-01-05", None, True, False),  # no window known
        ("2026-01-05", "2026-01-01", False, False),  # not a listing
    ],
)
def test_a_statement_missing_from_a_listing(
    published: str | None, window_start: str | None, is_listing: bool, removed: bool
) -> None:
    b = statement("b", word="old")
    heads = {"a": head("a", OLD, published=published), "b": head("b", b)}
    extraction = Extraction([b], window_start=window_start)
    extraction.is_listing = is_listing
    found = decide.changes(extraction, heads, baseline=False)
    assert kinds(found) == ([("removed", "a")] if removed else [])


# --- a change of the extraction rules ---------------------------------------------------------


def test_rereads_asks_for_each_needed_response_once() -> None:
    heads = {
        "a": head("a", OLD, response_id=3),
        "b": head("b", OLD, response_id=5),
        "c": head("c", OLD, response_id=None),
    }
    found = [
        Change("edited", "a", NEW, heads["a"]),
        Change("removed", "b", None, heads["b"]),
        Change("published", "d", NEW, None),
        Change("edited", "c", NEW, heads["c"]),  # no stored response: nothing to read
    ]
    assert decide.rereads(found, heads) == {3, 5}


def test_no_reread_without_any_stored_response() -> None:
    found = [Change("published", "d", NEW, None)]
    assert decide.rereads(found, {}) == set()


@pytest.mark.parametrize(
    ("change", "texts", "kind", "reread"),
    [
        # The head's own page read the new way already gives the new text: the rules' doing.
        (
            Change("edited", "a", NEW, head("a", OLD, response_id=3)),
            {3: {"a": NEW.sha256}},
            "baseline",
            True,
        ),
        # ... gives the old text: a real edit.
        (
            Change("edited", "a", NEW, head("a", OLD, response_id=3)),
            {3: {"a": OLD.sha256}},
            "edited",
            False,
        ),
        # ... could not be read again: nothing is excused.
        (Change("edited", "a", NEW, head("a", OLD, response_id=3)), {3: None}, "edited", False),
        (Change("edited", "a", NEW, head("a", OLD, response_id=None)), {}, "edited", False),
        # The latest stored page already holds a "new" statement: a new way of keying.
        (Change("published", "b", NEW, None), {3: {"b": NEW.sha256}}, "baseline", True),
        (Change("published", "b", NEW, None), {3: {}}, "published", False),
        # A removal its own page no longer yields either.
        (Change("removed", "a", None, head("a", OLD, response_id=3)), {3: {}}, "removed", True),
        (
            Change("removed", "a", None, head("a", OLD, response_id=3)),
            {3: {"a": OLD.sha256}},
            "removed",
            False,
        ),
        (
            Change("restored", "a", NEW, head("a", None, response_id=3)),
            {3: {"a": NEW.sha256}},
            "restored",
            False,
        ),
    ],
)
def test_excused(
    change: Change, texts: dict[int, dict[str, str] | None], kind: str, reread: bool
) -> None:
    heads = {"z": head("z", OLD, response_id=3)}
    if change.head is not None:
        heads[change.key] = change.head
    [after] = decide.excused([change], heads, texts)
    assert (after.kind, after.reread) == (kind, reread)
    assert after.may_alert is not reread
    if kind == "baseline" and change.kind == "published":
        assert after.head is None


# --- the shrink rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old_words", "new_words", "new_title", "reason"),
    [
        (80, 0, "Title", "empty now"),
        (20, 0, "Title", "empty now"),
        (19, 0, "Title", None),  # too short to tell
        (100, 20, "Title", "shrank from 100 to 20"),
        (100, 40, "Title", None),  # a real cut
        (59, 5, "Title", None),
        (80, 80, "", "no title"),
        (80, 90, "Title", None),
    ],
)
def test_shrink(old_words: int, new_words: int, new_title: str, reason: str | None) -> None:
    old = statement(words=old_words, word="old")
    new = statement(words=new_words, title=new_title, word="new")
    change = Change("edited", "a", new, head("a", old))
    found = decide.shrink([change], {old.sha256: old})
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith("a: ") and reason in found


def test_only_edits_can_shrink() -> None:
    found = [
        Change("removed", "a", None, head("a", OLD)),
        Change("published", "b", statement("b", words=0), None),
        Change("restored", "c", statement("c", words=0), head("c", None)),
    ]
    assert decide.shrink(found, {}) is None


@pytest.mark.parametrize(
    ("reason", "failures", "accepted"),
    [
        (None, 0, False),
        ("suspicious shrink: a: empty", 1, False),  # seen twice with this one
        ("suspicious shrink: a: empty", 2, True),  # the third time in a row
        ("suspicious shrink: a: empty", 5, True),
        ("HTTP 503", 5, False),  # other problems before it do not count
    ],
)
def test_a_shrink_seen_three_times_in_a_row_is_accepted(
    reason: str | None, failures: int, accepted: bool
) -> None:
    outage = Outage(HOUR_BEFORE if reason else None, reason, False, failures)
    assert decide.shrink_accepted(outage) is accepted


# --- the outage state machine -----------------------------------------------------------------


def test_the_first_failure_begins_an_outage_without_an_alert() -> None:
    failure = decide.failed(Outage(), AT, "HTTP 503", failing_after=3600)
    assert failure.began and not failure.alert_due
    assert failure.outage == Outage(AT, "HTTP 503", False, 1)


@pytest.mark.parametrize(
    ("since", "failing_after", "alerted", "due"),
    [
        (HOUR_BEFORE, 3600, False, True),  # failing for exactly `failing_after`
        (HOUR_BEFORE, 3601, False, False),
        (DAY_BEFORE, 3600, False, True),
        (DAY_BEFORE, 3600, True, False),  # one "failing" alert per outage
        (AT, 0, False, True),
    ],
)
def test_failing_alert_after_failing_after(
    since: str, failing_after: float, alerted: bool, due: bool
) -> None:
    before = Outage(since, "HTTP 503", alerted, 4)
    failure = decide.failed(before, AT, "timeout", failing_after)
    assert not failure.began
    assert failure.alert_due is due
    assert failure.outage == Outage(since, "timeout", alerted, 5)


def test_failing_alert_raised_then_recovered() -> None:
    failure = decide.failed(Outage(DAY_BEFORE, "x", False, 3), AT, "HTTP 503", 3600)
    outage = decide.alerted(failure.outage)
    assert outage.alerted
    assert decide.failing_summary(outage) == f"failing since {DAY_BEFORE}: HTTP 503"
    assert not decide.failed(outage, AT, "HTTP 503", 3600).alert_due
    after, summary = decide.recovered(outage)
    assert after == Outage()
    assert summary == f"checks succeed again (failing since {DAY_BEFORE})"


@pytest.mark.parametrize("outage", [Outage(), Outage(HOUR_BEFORE, "HTTP 503", False, 2)])
def test_recovery_without_a_failing_alert_is_silent(outage: Outage) -> None:
    assert decide.recovered(outage) == (Outage(), None)


# --- histories --------------------------------------------------------------------------------


def test_past_version_of_a_row() -> None:
    row = {
        "id": 5,
        "seq": 2,
        "kind": "edited",
        "observed_at": AT,
        "text_sha256": "ab",
        "confirmation": None,
        "summary": "ignored",
    }
    assert PastVersion.of(row) == PastVersion(5, 2, "edited", AT, "ab", None)


@pytest.mark.parametrize(
    ("confirmations", "before", "expected"),
    [
        ([None, None, "pending"], 3, 2),
        ([None, "transient", "pending"], 3, 1),  # a transient version never stood
        ([None, "held", "pending"], 3, 2),
        (["pending", "transient", "pending"], 3, None),
        ([None, None, None], 2, 1),
        ([], 3, None),
    ],
)
def test_standing(confirmations: list[str | None], before: int, expected: int | None) -> None:
    history = [past(n + 1, OLD, c) for n, c in enumerate(confirmations)]
    found = decide.standing(history, before)
    assert (found.seq if found else None) == expected


@pytest.mark.parametrize(
    ("history", "window", "expected"),
    [
        ([past(1, NEW, at=HOUR_BEFORE), past(2, OLD)], 86400, 1),  # A→B→A within the window
        ([past(1, NEW, at=TWO_DAYS_BEFORE), past(2, OLD)], 86400, None),  # long ago: news
        ([past(1, NEW, at=DAY_BEFORE), past(2, OLD)], 86400, None),  # just outside
        ([past(1, NEW, at=HOUR_BEFORE), past(2, OLD)], 0, None),  # rule off
        ([past(1, NEW, "transient"), past(2, OLD)], 86400, None),  # never stood
        ([past(1, NEW, "pending"), past(2, OLD)], 86400, None),
        ([past(1, NEW, "held"), past(2, OLD)], 86400, 1),
        ([past(1, OLD), past(2, THIRD)], 86400, None),
        ([], 86400, None),
    ],
)
def test_flipflop(history: list[PastVersion], window: float, expected: int | None) -> None:
    assert decide.flipflop(history, NEW.sha256, AT, window) == expected


def test_flipflop_stops_at_the_first_version_outside_the_window() -> None:
    history = [past(1, NEW, at=HOUR_BEFORE), past(2, OLD, at=TWO_DAYS_BEFORE)]
    assert decide.flipflop(history, NEW.sha256, AT, 86400) is None


@pytest.mark.parametrize(
    ("change", "policy", "needed"),
    [
        (Change("edited", "a", NEW, head("a", OLD)), NOW, True),
        (Change("edited", "a", NEW, head("a", OLD)), Policy(flipflop_window=0), False),
        (Change("edited", "a", NEW, head("a", OLD, confirmation="pending")), Policy(), True),
        (Change("removed", "a", None, head("a", OLD)), NOW, False),
        (Change("removed", "a", None, head("a", OLD, confirmation="pending")), NOW, True),
        (Change("restored", "a", NEW, head("a", None)), NOW, False),
        (Change("published", "a", NEW, None), NOW, False),
        (Change("baseline", "a", NEW, None), NOW, False),
        (Change("baseline", "a", NEW, head("a", OLD), reread=True), NOW, False),
    ],
)
def test_needs_history(change: Change, policy: Policy, needed: bool) -> None:
    assert decide.needs_history(change, policy) is needed


# --- what a change alerts ---------------------------------------------------------------------


def test_basis_of_a_change_over_a_standing_head() -> None:
    change = Change("edited", "a", NEW, head("a", OLD, seq=3))
    assert decide.basis(change, []) == Basis("edited")


def test_basis_of_a_change_that_cannot_alert() -> None:
    assert decide.basis(Change("baseline", "a", NEW, None), []) == Quiet()
    reread = Change("removed", "a", None, head("a", OLD), reread=True)
    assert decide.basis(reread, []) == Quiet()


@pytest.mark.parametrize(
    ("kind", "new", "history", "expected"),
    [
        # A pending first sight changed again: the alert is still its publication.
        (
            "edited",
            THIRD,
            [past(1, NEW, "pending", kind="published")],
            Basis("published", None, True, None),
        ),
        # ... and gone again: nothing ever stood.
        ("removed", None, [past(1, NEW, "pending", kind="published")], Quiet()),
        # Back to the text that stands: no news after all.
        (
            "edited",
            OLD,
            [past(1, OLD), past(2, NEW, "pending")],
            Quiet("back to the text of version #1"),
        ),
        # Another text: judged against what stands.
        (
            "edited",
            THIRD,
            [past(1, OLD), past(2, NEW, "pending")],
            Basis("edited", 1, True, OLD.sha256),
        ),
        (
            "removed",
            None,
            [past(1, OLD), past(2, NEW, "pending")],
            Basis("removed", 1, True, OLD.sha256),
        ),
        (
            "edited",
            THIRD,
            [past(1, OLD), past(2, statement(word="x"), "transient"), past(3, NEW, "pending")],
            Basis("edited", 1, True, OLD.sha256),
        ),
    ],
)
def test_basis_of_a_change_over_a_pending_head(
    kind: decide.ChangeKind, new: Statement | None, history: list[PastVersion], expected: object
) -> None:
    seq = history[-1].seq
    pending_head = head("a", NEW, seq=seq, confirmation="pending")
    assert decide.basis(Change(kind, "a", new, pending_head), history) == expected


def _plan(
    change: Change,
    diff: Diff = Diff(),
    policy: Policy = NOW,
    history: list[PastVersion] | None = None,
    judged: Diff | None = None,
) -> decide.Plan:
    history = history or []
    basis = decide.basis(change, history)
    return decide.plan(change, diff, basis, judged or diff, history, AT, policy)


def test_a_baseline_is_first_seen_and_silent() -> None:
    plan = _plan(Change("baseline", "a", NEW, None), Diff(True, 1.0, "new statement"))
    assert plan == decide.Plan(0.0, FIRST_SEEN)


def test_changes_the_rules_explain_are_recorded_silently() -> None:
    reread = _plan(Change("baseline", "a", NEW, head("a", OLD), reread=True))
    assert reread == decide.Plan(0.0, decide.REREAD)
    gone = _plan(Change("removed", "a", None, head("a", OLD), reread=True))
    assert gone == decide.Plan(0.5, decide.NO_LONGER_READ)


@pytest.mark.parametrize("kind", ["published", "edited", "restored"])
def test_without_confirm_delay_a_change_alerts_at_once(kind: decide.ChangeKind) -> None:
    before = None if kind == "published" else head("a", OLD if kind == "edited" else None, seq=4)
    plan = _plan(Change(kind, "a", NEW, before))
    seq = 5 if before else 1
    assert plan == decide.Plan(0.5, "a paragraph changed", alert=decide.Alert(kind, seq, None))


@pytest.mark.parametrize("kind", ["published", "edited", "restored", "removed"])
def test_with_confirm_delay_a_change_waits_for_its_confirming_look(kind: decide.ChangeKind) -> None:
    before = None if kind == "published" else head("a", None if kind == "restored" else OLD)
    new = None if kind == "removed" else NEW
    plan = _plan(Change(kind, "a", new, before), policy=CONFIRMING)
    assert plan.pending and plan.alert is None


def test_a_removal_always_waits_for_a_second_look() -> None:
    plan = _plan(Change("removed", "a", None, head("a", OLD)), policy=NOW)
    assert plan.pending and plan.alert is None


@pytest.mark.parametrize(
    ("kind", "diff", "threshold", "alerts"),
    [
        ("edited", Diff(False, 0.0, "only ignored text changed"), 0.0, False),  # noise only
        ("published", Diff(False, 0.0, "x"), 0.0, False),
        ("edited", Diff(True, 0.05, "x"), 0.1, False),  # below the watch's threshold
        ("edited", Diff(True, 0.1, "x"), 0.1, True),
        ("edited", Diff(True, 0.9, "x"), 0.1, True),
        ("published", Diff(True, 0.05, "x"), 0.1, True),  # the threshold is for edits
        ("restored", Diff(True, 0.05, "x"), 0.1, True),
    ],
)
def test_noise_and_threshold(
    kind: decide.ChangeKind, diff: Diff, threshold: float, alerts: bool
) -> None:
    before = None if kind == "published" else head("a", OLD if kind == "edited" else None)
    plan = _plan(Change(kind, "a", NEW, before), diff, Policy(threshold=threshold))
    assert (plan.alert is not None) is alerts
    assert not plan.pending
    assert (plan.score, plan.summary) == (diff.score, diff.summary)  # archived as it is


def test_a_flip_flop_is_archived_not_alerted_again() -> None:
    history = [past(1, NEW, at=TWO_HOURS_BEFORE), past(2, OLD, at=HOUR_BEFORE)]
    plan = _plan(Change("edited", "a", NEW, head("a", OLD, seq=2)), history=history)
    assert plan == decide.Plan(0.5, "back to the text of version #1: a paragraph changed")


def test_a_flip_flop_outside_the_window_is_news() -> None:
    history = [past(1, NEW, at=TWO_DAYS_BEFORE), past(2, OLD, at=TWO_DAYS_BEFORE)]
    plan = _plan(Change("edited", "a", NEW, head("a", OLD, seq=2)), history=history)
    assert plan.alert == decide.Alert("edited", 3, None)


def test_a_change_over_a_pending_head_is_judged_against_what_stands() -> None:
    history = [past(1, OLD), past(2, NEW, "pending")]
    change = Change("edited", "a", THIRD, head("a", NEW, seq=2, confirmation="pending"))
    # Against the pending text it is a big edit; against the standing one, a tiny one.
    plan = _plan(
        change, Diff(True, 0.9, "big"), Policy(threshold=0.2), history, Diff(True, 0.1, "small")
    )
    assert plan == decide.Plan(0.9, "big")
    plan = _plan(change, Diff(True, 0.9, "big"), NOW, history, Diff(True, 0.3, "small"))
    assert plan.alert == decide.Alert("edited", 3, 1)  # since the version that stood


def test_back_to_the_standing_text_over_a_pending_head() -> None:
    history = [past(1, OLD), past(2, NEW, "pending")]
    change = Change("edited", "a", OLD, head("a", NEW, seq=2, confirmation="pending"))
    assert _plan(change, history=history) == decide.Plan(0.5, "back to the text of version #1")


def test_a_pending_first_sight_edited_again_alerts_as_published() -> None:
    history = [past(1, NEW, "pending", kind="published")]
    change = Change("edited", "a", THIRD, head("a", NEW, seq=1, confirmation="pending"))
    plan = _plan(change, history=history)
    assert plan.alert == decide.Alert("published", 2, None)


def test_plan_with_a_real_diff() -> None:
    """The core takes `monitor.diff`'s results as they come (the Scored protocol)."""
    diff = compare(OLD, NEW, [])
    plan = decide.plan(
        Change("edited", "a", NEW, head("a", OLD)), diff, Basis("edited"), diff, [], AT, NOW
    )
    assert plan.alert == decide.Alert("edited", 2, None)
    same = compare(OLD, OLD, [])
    plan = decide.plan(
        Change("edited", "a", NEW, head("a", OLD)), same, Basis("edited"), same, [], AT, NOW
    )
    assert plan.alert is None and not plan.pending


@pytest.mark.parametrize(
    ("kinds", "delay", "expected"),
    [
        ([], 3.0, None),
        (["edited"], 3.0, 3.0),
        (["published", "edited"], 30.0, 30.0),
        (["removed"], 0.0, decide.REMOVAL_RECHECK),  # a removal is looked at twice
        (["removed"], 0.5, decide.REMOVAL_RECHECK),
        (["removed", "edited"], 5.0, 5.0),
    ],
)
def test_recheck_in(kinds: list[str], delay: float, expected: float | None) -> None:
    assert decide.recheck_in(kinds, delay) == expected


# --- confirmation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed_again", "alert_transient", "verdict", "release"),
    [
        (False, False, "held", True),
        (False, True, "held", True),
        (True, False, "transient", False),
        (True, True, "transient", True),
    ],
)
def test_settle(changed_again: bool, alert_transient: bool, verdict: str, release: bool) -> None:
    heads = {
        "a": head("a", NEW, seq=2, confirmation="pending", version_id=42),
        "b": head("b", OLD, confirmation="held", version_id=43),
        "c": head("c", OLD, confirmation=None, version_id=44),
        "d": head("d", OLD, confirmation="pending", version_id=None),
    }
    found = [Change("edited", "a", THIRD, heads["a"])] if changed_again else []
    found.append(Change("edited", "b", THIRD, heads["b"]))
    [settled] = decide.settle(heads, found, alert_transient)
    assert (settled.version_id, settled.verdict, settled.release) == (42, verdict, release)


def test_nothing_to_settle() -> None:
    assert decide.settle({"a": head("a", OLD)}, [], alert_transient=True) == []


def _settled(seq: int, verdict: decide.Verdict = "held") -> decide.Settled:
    return decide.Settled(
        head("a", NEW, seq=seq, confirmation="pending", version_id=100 + seq),
        100 + seq,
        verdict,
        True,
    )


@pytest.mark.parametrize(
    ("history", "seq", "expected"),
    [
        # Held over the version just before it: the permalink's default, no `since`.
        ([past(1, OLD), past(2, NEW, "pending")], 2, ("edited", None, OLD.sha256)),
        # Over a transient one: compared with (and since) the one that stood.
        (
            [past(1, OLD), past(2, THIRD, "transient"), past(3, NEW, "pending")],
            3,
            ("edited", 1, OLD.sha256),
        ),
        # A first sight that held: its publication.
        ([past(1, NEW, "pending", kind="published")], 1, ("published", None, None)),
        (
            [past(1, THIRD, "transient", kind="published"), past(2, NEW, "pending")],
            2,
            ("published", None, None),
        ),
        (
            [past(1, OLD), past(2, None, "pending", kind="removed")],
            2,
            ("removed", None, OLD.sha256),
        ),
    ],
)
def test_release(
    history: list[PastVersion], seq: int, expected: tuple[str, int | None, str | None]
) -> None:
    released = decide.release(_settled(seq), history)
    assert released is not None
    assert (released.kind, released.since, released.stood) == expected
    assert (released.seq, released.observed_at, released.transient) == (seq, HOUR_BEFORE, False)


def test_release_of_a_transient_version() -> None:
    released = decide.release(_settled(2, "transient"), [past(1, OLD), past(2, NEW, "pending")])
    assert released is not None and released.transient
    assert decide.transient_summary("x") == "did not hold (gone by the next look): x"


def test_release_of_a_version_not_in_the_archive() -> None:
    assert decide.release(_settled(3), [past(1, OLD), past(2, NEW)]) is None


def test_the_core_reads_no_clock() -> None:
    """`at` decides, not the time of the test: the same inputs, the same answers."""
    history = [past(1, NEW, at="2000-01-01T00:00:00.000Z")]
    assert decide.flipflop(history, NEW.sha256, "2000-01-01T01:00:00.000Z", 86400) == 1
    failure = decide.failed(
        Outage("2000-01-01T00:00:00.000Z", "x", False, 1), "2000-01-01T00:59:59.000Z", "x", 3600
    )
    assert not failure.alert_due
