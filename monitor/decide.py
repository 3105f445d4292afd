"""The decisions of a check, apart from everything it reads and writes.

Plain functions over plain typed values: no network, no store, no clock (the moment of the
check comes in as `at`), no logging. `check.py` fetches, reads the archive, asks these
functions, and writes what they decided. The rules that make alerts trustworthy:

* a response that is not content is a *problem*: no version, no "removed", and one "failing
  since" alert only after `failing_after` (`failed`, `recovered`: the outage state machine);
* every change is archived at first sight; one that may alert is *pending* until a look
  `confirm_delay` later finds it still there (*held*, it alerts then), or gone by then
  (*transient*: archived, alerted only where the watch asks) (`plan`, `settle`, `release`);
* the first sight of a watch is a silent baseline, not twenty "new statement" alerts;
* a listing statement counts as removed only if it is missing from the window of dates the
  listing still covers (older ones are merely pushed off the page by newer ones) (`changes`);
* an extraction suddenly empty or tiny is a problem, unless it holds for several checks in a
  row (`shrink`, `shrink_accepted`); a text back to one seen within the flip-flop window is
  archived, not alerted again (`flipflop`);
* a change that the extraction rules explain, not the page, is recorded silently (`excused`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any, Protocol

from monitor.classify import suspicious_shrink
from monitor.clock import parse_iso
from monitor.extract import Extraction, Statement, date_sort_key
from monitor.store import FIRST_SEEN, DocumentHead

# What a check found of one statement (a baseline is a first sight that is no news), and
# the verdict a confirming look reaches on a pending version: the store's `version.kind`
# and `version.confirmation` values, declared with its records.
from monitor.store.records import ChangeKind, Verdict

# The detail of a problem that is a suspicious shrink (the rule recognises its own repeats).
SHRINK = "suspicious shrink: "
# A shrink seen in this many consecutive checks is accepted as a real edit.
SHRINK_ACCEPT_AFTER = 3
# Verdicts of versions that never stood: a text back to one of them is news again.
DID_NOT_STAND = ("pending", "transient")
# A removal is always looked at twice, at least this long apart (seconds).
REMOVAL_RECHECK = 1.0
REREAD = "read again under changed extraction rules"
NO_LONGER_READ = "no longer read under changed extraction rules"


@dataclass(frozen=True)
class Policy:
    """The settings the decisions depend on, from the watch and the configuration."""

    threshold: float = 0.0
    confirm_delay: float = 0.0
    flipflop_window: float = 0.0
    alert_transient: bool = False
    failing_after: float = 0.0
    full_fetch_every: int = 12


# --- fetching --------------------------------------------------------------------------------


def conditional(pending: bool, since_full: int, full_fetch_every: int) -> bool:
    """Whether to send validators. Every `full_fetch_every`-th check fetches in full (some
    servers keep an ETag while the body changes); a confirming look asks past caches for the
    page itself."""
    return not pending and since_full + 1 < full_fetch_every


def since_full(previous: int, not_modified: bool) -> int:
    """Checks since the last full answer, after this one."""
    return previous + 1 if not_modified else 0


def same_rules(recorded: str | None, rules: str) -> bool:
    """Whether an answer read under `recorded` rules was read as `rules` would read it;
    an answer recorded before rules were remembered (None) is taken to be."""
    return recorded in (None, rules)


def last_rules(validators: Mapping[str, Any]) -> str | None:
    """The rules the last processed answer was read under (None: not recorded)."""
    for known in validators.values():
        return known.get("rules") if isinstance(known, dict) else None
    return None


def already_read(ok: bool, body_sha: str, known: Mapping[str, str | None], rules: str) -> bool:
    """Whether an answer is byte-identical to the last fully processed one and was read under
    the same rules: nothing to parse, exactly as for a 304."""
    return ok and body_sha == known.get("body") and same_rules(known.get("rules"), rules)


# --- what changed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    key: str
    new: Statement | None
    head: DocumentHead | None
    # The change is the extraction rules' doing, not the page's (see `excused`): recorded,
    # never alerted.
    reread: bool = False

    @property
    def may_alert(self) -> bool:
        """Whether the change is news at all: not a silent first sight, not the rules'."""
        return self.kind != "baseline" and not self.reread


def changes(
    extraction: Extraction, heads: Mapping[str, DocumentHead], baseline: bool
) -> list[Change]:
    """What changed since the heads. `baseline`: statements seen for the first time are a
    silent first sight, not "published"."""
    found = []
    seen = set()
    for statement in extraction.statements:
        seen.add(statement.key)
        head = heads.get(statement.key)
        kind: ChangeKind
        if head is None:
            kind = "baseline" if baseline else "published"
        elif head.text_sha256 is None:
            kind = "restored"
        elif head.text_sha256 != statement.sha256:
            kind = "edited"
        else:
            continue
        found.append(Change(kind, statement.key, statement, head))
    for key, head in heads.items():
        if key not in seen and head.text_sha256 is not None and _removed(extraction, head):
            found.append(Change("removed", key, None, head))
    return found


def _removed(extraction: Extraction, head: DocumentHead) -> bool:
    """Whether a statement missing from the answer was removed (not pushed off a listing)."""
    if extraction.gone:
        return True
    return (
        extraction.is_listing
        and extraction.window_start is not None
        and date_sort_key(head.published) >= date_sort_key(extraction.window_start)
    )


def rereads(found: Sequence[Change], heads: Mapping[str, DocumentHead]) -> set[int]:
    """The stored responses to read again under changed extraction rules to judge these
    changes (see `excused`)."""
    latest = max((h.response_id or 0 for h in heads.values()), default=0)
    wanted = set()
    for change in found:
        if change.kind == "published" and change.new is not None:
            wanted.add(latest)
        elif change.kind in ("edited", "removed") and change.head is not None:
            wanted.add(change.head.response_id or 0)
    wanted.discard(0)
    return wanted


def excused(
    found: Sequence[Change],
    heads: Mapping[str, DocumentHead],
    texts: Mapping[int, Mapping[str, str] | None],
) -> list[Change]:
    """The changes, with those the changed extraction rules explain marked `reread`.

    After a change of the rules (profile, options, `ignore_selectors`, monitor's own reading
    code) the heads were read the old way. `texts`: stored responses read again the new way
    ({response id: {key: text hash}}, None where that failed: nothing is excused then). The
    rules' doing: an edit whose new text the head's page already gives, a statement
    "published" that the watch's latest stored page already holds (a new way of keying a
    feed's entries, say), a statement "removed" that its own page no longer yields either."""
    latest = max((h.response_id or 0 for h in heads.values()), default=0)

    def read(response_id: int | None) -> Mapping[str, str] | None:
        return texts.get(response_id) if response_id else None

    result = []
    for change in found:
        head, new = change.head, change.new
        if change.kind == "edited" and head is not None and new is not None:
            again = read(head.response_id)
            if again is not None and again.get(change.key) == new.sha256:
                change = Change("baseline", change.key, new, head, reread=True)
        elif change.kind == "published" and new is not None:
            again = read(latest)
            if again is not None and again.get(change.key) == new.sha256:
                change = Change("baseline", change.key, new, None, reread=True)
        elif change.kind == "removed" and head is not None:
            again = read(head.response_id)
            if again is not None and change.key not in again:
                change = Change("removed", change.key, None, head, reread=True)
        result.append(change)
    return result


# --- the shrink rule -------------------------------------------------------------------------


def shrink(found: Iterable[Change], olds: Mapping[str, Statement]) -> str | None:
    """Why an edit looks like a broken page rather than an edit (None: none does). `olds`:
    the heads' statements by text hash (at least those of edits)."""
    for change in found:
        if change.kind == "edited" and change.head and change.head.text_sha256:
            reason = suspicious_shrink(olds[change.head.text_sha256], change.new)
            if reason:
                return f"{change.key}: {reason}"
    return None


def shrink_accepted(outage: Outage) -> bool:
    """Whether a shrink is accepted as a real edit: it was the problem of the checks just
    before, enough of them in a row with this one."""
    repeated = (outage.reason or "").startswith(SHRINK)
    return repeated and outage.failures + 1 >= SHRINK_ACCEPT_AFTER


# --- the outage state machine ----------------------------------------------------------------


@dataclass(frozen=True)
class Outage:
    """A watch's run of failed checks (all empty: it is not failing)."""

    since: str | None = None
    reason: str | None = None
    alerted: bool = False  # the one "failing" alert was raised
    failures: int = 0


@dataclass(frozen=True)
class Failure:
    outage: Outage
    began: bool  # the first failed check of the outage
    # Failing long enough for the one "failing" alert — unless another watch of the same
    # family (a site that went down) has raised it: then apply `alerted` only if not.
    alert_due: bool


def failed(outage: Outage, at: str, reason: str, failing_after: float) -> Failure:
    """A check that failed at `at`."""
    since = outage.since or at
    after = Outage(since, reason, outage.alerted, outage.failures + 1)
    due = not outage.alerted and _seconds_between(since, at) >= failing_after
    return Failure(after, outage.since is None, due)


def alerted(outage: Outage) -> Outage:
    """The outage once its "failing" alert is raised."""
    return replace(outage, alerted=True)


def failing_summary(outage: Outage) -> str:
    return f"failing since {outage.since}: {outage.reason}"


def recovered(outage: Outage) -> tuple[Outage, str | None]:
    """A check that worked ends an outage; the summary of its one "recovered" alert if
    "failing" was sent (None: no alert)."""
    summary = f"checks succeed again (failing since {outage.since})" if outage.alerted else None
    return Outage(), summary


# --- what a change alerts --------------------------------------------------------------------


class Scored(Protocol):
    """What the decisions need of a diff (`monitor.diff.DiffResult`)."""

    @property
    def changed(self) -> bool: ...
    @property
    def score(self) -> float: ...
    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class PastVersion:
    """One archived version of a statement, as the decisions need it."""

    id: int
    seq: int
    kind: str
    observed_at: str
    text_sha256: str | None
    confirmation: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> PastVersion:
        return cls(
            int(row["id"]),
            int(row["seq"]),
            row["kind"],
            row["observed_at"],
            row["text_sha256"],
            row["confirmation"],
        )


def standing(history: Sequence[PastVersion], before_seq: int) -> PastVersion | None:
    """The newest version before `before_seq` that stands: neither pending nor transient
    (what a pending version is judged against). `history` in order of seq."""
    for past in reversed(history):
        if past.seq < before_seq and past.confirmation not in DID_NOT_STAND:
            return past
    return None


def enough_history(newest: Sequence[PastVersion], head_seq: int) -> bool:
    """Whether a statement's newest versions (oldest first, up to its head) decide as all
    of them would: they are all there are, or a version before the head that stands is
    among them (what `standing` looks for; `release` looks for the head itself). The
    flip-flop rule needs older versions only with the edit's text (`flipflop`)."""
    return not newest or newest[0].seq <= 1 or standing(newest, head_seq) is not None


def needs_history(change: Change, policy: Policy) -> bool:
    """Whether judging the change needs its statement's archived versions."""
    head = change.head
    if not change.may_alert or head is None:
        return False
    edit = change.kind == "edited" and policy.flipflop_window > 0
    return edit or head.confirmation == "pending"


@dataclass(frozen=True)
class Basis:
    """What a change that may alert is judged against: the head, or — when the head is
    pending, so did not stand — the version that stands (`stood`, None: none stands, the
    statement's first sight was pending)."""

    kind: ChangeKind  # the kind its alert would have
    since: int | None = None  # the standing version's seq, when not the one just before
    rejudge: bool = False  # judge against `stood`, not against the head
    stood: str | None = None


@dataclass(frozen=True)
class Quiet:
    """A change that cannot alert; `summary` replaces its version's summary when set."""

    summary: str | None = None


def basis(change: Change, history: Sequence[PastVersion]) -> Basis | Quiet:
    head, new = change.head, change.new
    if not change.may_alert:
        return Quiet()
    if head is None or head.confirmation != "pending":
        return Basis(change.kind)
    stood = standing(history, head.seq)
    if stood is None:  # what was pending was the statement's first sight
        if new is None:
            return Quiet()  # published and gone again: nothing stands to alert
        return Basis("published", rejudge=True)
    if stood.text_sha256 == (new.sha256 if new else None):
        return Quiet(f"back to the text of version #{stood.seq}")
    return Basis(change.kind, stood.seq, True, stood.text_sha256)


def flipflop(history: Sequence[PastVersion], sha: str, at: str, window: float) -> int | None:
    """Number of an earlier version within the flip-flop window (seconds before `at`) with
    exactly this text, that stood."""
    if window <= 0:
        return None
    for past in reversed(history):
        if _seconds_between(past.observed_at, at) > window:
            break
        if past.text_sha256 == sha and past.confirmation not in DID_NOT_STAND:
            return past.seq
    return None


@dataclass(frozen=True)
class Alert:
    kind: ChangeKind
    seq: int  # the version it announces
    since: int | None  # the version it compares with, when not the one just before


@dataclass(frozen=True)
class Plan:
    """The version a change makes: its score and summary, whether it awaits a confirming
    look, and the alert it raises now."""

    score: float
    summary: str
    pending: bool = False
    alert: Alert | None = None


def plan(
    change: Change,
    diff: Scored,
    judged_by: Basis | Quiet,
    judged: Scored,
    history: Sequence[PastVersion],
    at: str,
    policy: Policy,
) -> Plan:
    """The version a change makes. `diff` compares it with the version just before (what
    the archive shows); `judged` with the version `judged_by` names (the same as `diff`
    unless the head was pending). One that may alert is pending until the next look, or
    alerts at once without `confirm_delay`; a removal always waits."""
    score, summary = diff.score, diff.summary
    if change.kind == "baseline":
        score, summary = 0.0, REREAD if change.reread else FIRST_SEEN
    elif change.reread:
        summary = NO_LONGER_READ
    if isinstance(judged_by, Quiet):
        return Plan(score, judged_by.summary or summary)
    kind = judged_by.kind
    # Changes confined to ignored text are archived but not alerted.
    if not judged.changed or (kind == "edited" and judged.score < policy.threshold):
        return Plan(score, summary)
    if kind == "edited" and change.new is not None:
        earlier = flipflop(history, change.new.sha256, at, policy.flipflop_window)
        if earlier is not None:
            # Flip-flop (A→B→A): archived, not alerted again — the first edit was.
            return Plan(score, f"back to the text of version #{earlier}: {summary}")
    if policy.confirm_delay > 0 or kind == "removed":
        return Plan(score, summary, pending=True)
    seq = (change.head.seq if change.head else 0) + 1
    return Plan(score, summary, alert=Alert(kind, seq, judged_by.since))


def recheck_in(pending_kinds: Collection[str], confirm_delay: float) -> float | None:
    """Seconds until the confirming look of the versions left pending (None: none is)."""
    if not pending_kinds:
        return None
    return max(confirm_delay, REMOVAL_RECHECK) if "removed" in pending_kinds else confirm_delay


# --- confirmation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """A pending version that this look decided: still there, it held; changed again, it was
    transient. `release`: its alert goes out now."""

    head: DocumentHead
    version_id: int
    verdict: Verdict
    release: bool


def settle(
    heads: Mapping[str, DocumentHead], found: Iterable[Change], alert_transient: bool
) -> list[Settled]:
    changed = {change.key for change in found}
    settled = []
    for key, head in heads.items():
        if head.confirmation != "pending" or head.version_id is None:
            continue
        verdict: Verdict = "transient" if key in changed else "held"
        release = verdict == "held" or alert_transient
        settled.append(Settled(head, head.version_id, verdict, release))
    return settled


@dataclass(frozen=True)
class Release:
    """The alert of a settled version: it compares the version (`seq`) with the one that
    stood before it (`stood`, a text hash; None: none, the version was the first)."""

    kind: str
    seq: int
    since: int | None
    observed_at: str
    stood: str | None
    transient: bool


def release(settled: Settled, history: Sequence[PastVersion]) -> Release | None:
    """The alert a settled version releases (None: its version is not in `history`)."""
    head = settled.head
    row = next((past for past in history if past.id == settled.version_id), None)
    if row is None:
        return None
    stood = standing(history, head.seq)
    kind = row.kind if stood is not None else "published"
    since = stood.seq if stood is not None else None
    if since is not None and since == head.seq - 1:
        since = None  # the permalink's default
    text = stood.text_sha256 if stood is not None else None
    return Release(kind, head.seq, since, row.observed_at, text, settled.verdict == "transient")


def transient_summary(summary: str) -> str:
    return f"did not hold (gone by the next look): {summary}"


def _seconds_between(start: str, end: str) -> float:
    return (parse_iso(end).astimezone(UTC) - parse_iso(start).astimezone(UTC)).total_seconds()
