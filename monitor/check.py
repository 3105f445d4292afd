"""One check of one watch: fetch → extract → store → diff → alerts.

This module is the only place that knows the order of the stages; each stage is called
through its public interface. The rules that make alerts trustworthy live here:

* a response that is not content (error, captcha, maintenance, non-JSON) is a *problem*:
  no version, no "removed", and one "failing since" alert only after `failing_after`;
* every change is archived at first sight; one that may alert is *pending* until a look
  `confirm_delay` later (past caches) finds it still there, then alerts; one gone by then
  is *transient*: archived, alerted only where the watch asks (`alert_transient`);
* the first sight of a watch is a silent baseline, not twenty "new statement" alerts;
* a listing statement counts as removed only if it is missing from the window of dates the
  listing still covers (older ones are merely pushed off the page by newer ones).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from monitor import metrics
from monitor.alerts import build_alert
from monitor.browser import BrowserEngine, BrowserUnavailable
from monitor.clock import parse_iso
from monitor.config import MonitorConfig, WatchConfig
from monitor.diff import DiffResult, compare
from monitor.discover import discover
from monitor.extract import (
    Extraction,
    Profile,
    Statement,
    Target,
    date_sort_key,
    extraction_code,
    get_profile,
    suspicious_shrink,
)
from monitor.fetch import Fetcher, FetchRequest, FetchResult, Validators, split_url
from monitor.isolate import InlineWork, Work, WorkFailed, read_answer, statement_hashes
from monitor.learned import LearnedFurniture, compare_masked
from monitor.store import (
    FIRST_SEEN,
    CheckRecord,
    DocumentHead,
    NewVersion,
    ResponseRecord,
    Settlement,
    Store,
    WatchState,
    iso,
)

logger = logging.getLogger("monitor.check")

_SHRINK = "suspicious shrink: "
# A shrink seen in this many consecutive checks is accepted as a real edit.
_SHRINK_ACCEPT_AFTER = 3
# A site whose API wants browser-issued headers gets a browser at most this often.
_CAPTURE_INTERVAL = 300.0
# Checks of one host in progress at once (the fetcher's per-host limit applies inside): more
# that fall due together wait before they start, holding nothing but their place in line.
# Per host, so a slow site never holds up the others' checks. Enough for many pages of one
# site to sit in their confirmation delay at once. 10,000 checks queued at the fetcher held
# 60 MiB in a daemon; in `monitor check` a task each cost 0.07 ms of CPU per check.
_ADMIT_PER_HOST = 64
# Verdicts of versions that never stood: a text back to one of them is news again.
_DID_NOT_STAND = ("pending", "transient")
# `monitor check` looks again at most this often for changes to confirm.
_CONFIRM_ROUNDS = 3
# A removal is always looked at twice, at least this long apart.
_REMOVAL_RECHECK = 1.0
# Blobs bigger than this are compressed in a thread before their commit (see
# `Blobs.precompress`); smaller ones are not worth a thread's hand-over.
_BIG_BLOB = 1_000_000


def admitted_per_host(config: MonitorConfig) -> int:
    """How many checks of one host may be in progress at once (see `_ADMIT_PER_HOST`)."""
    return max(_ADMIT_PER_HOST, 4 * config.fetch.per_host_concurrency)


@dataclass
class CheckOutcome:
    watch_id: str
    outcome: str  # changed | unchanged | problem
    detail: str = ""
    versions: int = 0
    alerts: int = 0
    # A discovering listing: statement watches it found, and watches to check at once.
    discovered: list[str] = field(default_factory=list)
    due: list[str] = field(default_factory=list)
    # Changes wait for their confirming look: check the watch again in this many seconds.
    recheck_in: float | None = None


@dataclass(frozen=True)
class _Reading:
    """How a watch's pages are read, fixed by its configuration: worked out once per watch
    (and anew when its configuration changes), not on every check."""

    profile: Profile
    target: Target
    rules: str  # the fingerprint of everything but the page that decides its text


@dataclass
class _Change:
    kind: str  # baseline | published | edited | removed | restored
    key: str
    new: Statement | None
    head: DocumentHead | None
    # The change is the extraction rules' doing, not the page's (see `Checker._changes`):
    # recorded, never alerted.
    reread: bool = False

    @property
    def may_alert(self) -> bool:
        """Whether the change is news at all: not a silent first sight, not the rules'."""
        return self.kind != "baseline" and not self.reread


class Checker:
    def __init__(
        self,
        config: MonitorConfig,
        store: Store,
        fetcher: Fetcher,
        browser: BrowserEngine | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        instance: str | None = None,
        work: Work | None = None,
    ) -> None:
        """`work`: where what sites send is read and diffed; the daemon and `monitor check`
        pass a `WorkerPool` (time and memory limits, off the event loop), tools and tests
        that read their own pages may leave it to run in process."""
        self.config = config
        self.work: Work = work or InlineWork()
        # Answers that could not be read (over a limit, or the profile raised), by watch and
        # request: (their bytes and rules, the reason). The same bytes again are the same
        # problem; reading them again would only spend another worker's time limit.
        self._unreadable: dict[tuple[str, str], tuple[str, str]] = {}
        # The last crash of each watch whose traceback was logged.
        self._crashes: dict[str, str] = {}
        # Named in every check_run row when several daemons share the store.
        self.instance = instance
        self.store = store
        self.fetcher = fetcher
        self.browser = browser
        self.sleep = sleep
        # API headers taken from a browser, per site origin, and when to try again.
        self._captured: dict[str, dict[str, str]] = {}
        self._capture_after: dict[str, float] = {}
        self._readings: dict[str, _Reading] = {}
        # Problems of a watch's ignore rules already logged (once each).
        self._told: set[tuple[str, str]] = set()
        self.furniture = LearnedFurniture(store)
        self._register(config.watch)

    def reconfigure(self, config: MonitorConfig, changed: list[str]) -> None:
        """Use a reloaded configuration; changed or removed watches get their reading anew."""
        self.config = config
        for watch_id in changed:
            self._readings.pop(watch_id, None)

    def _reading(self, watch: WatchConfig) -> _Reading:
        """The watch's reading; the first time, the watch is registered in the store."""
        reading = self._readings.get(watch.id)
        if reading is None:
            self._register([watch])
            reading = self._readings[watch.id]
        return reading

    def _register(self, watches: list[WatchConfig]) -> None:
        """Give watches their profile and register them in the store, all in one
        transaction (one per watch made a daemon's start cost seconds at 10,000 watches)."""
        for watch in watches:
            profile = get_profile(watch.profile, watch.url)
            target = Target(
                watch.url,
                watch.language,
                dict(watch.options),
                tuple(watch.ignore_selectors),
                watch.fetcher,
            )
            self._readings[watch.id] = _Reading(profile, target, _rules_of(watch, profile))
            if not watch.robots:
                logger.warning(
                    "%s: robots.txt is ignored for this watch (robots = false)", watch.id
                )
        self.store.sync_watches([(w.id, w.url, self._readings[w.id].profile.name) for w in watches])

    async def check_all(self, watches: list[WatchConfig]) -> list[CheckOutcome]:
        """Check these watches once, concurrently (`monitor check`); outcomes in their
        order. Changes pending confirmation get their confirming look before this ends (a
        few rounds: a page that changes at every look stays pending, archived)."""
        done = await self._round(watches)
        for _ in range(_CONFIRM_ROUNDS):
            again = [n for n, outcome in enumerate(done) if outcome.recheck_in is not None]
            if not again:
                break
            await self.sleep(max(done[n].recheck_in or 0.0 for n in again))
            rechecked = await self._round([watches[n] for n in again])
            for n, outcome in zip(again, rechecked, strict=True):
                done[n] = _merged(done[n], outcome)
        return done

    async def _round(self, watches: list[WatchConfig]) -> list[CheckOutcome]:
        """One check of each watch, concurrently. Their states are read in one query up
        front instead of one per check.

        Each host's watches are worked through by a few workers of its own (as many as
        `admitted_per_host`), not by a task each: no host waits behind another's."""
        try:
            states = self.store.states()
        except Exception:  # each check reads its own state then, and fails on its own
            logger.exception("could not read the watches' states")
            states = {}
        outcomes: list[CheckOutcome | None] = [None] * len(watches)
        by_host: dict[str, list[int]] = {}
        for index, watch in enumerate(watches):
            by_host.setdefault(split_url(watch.url).netloc, []).append(index)

        async def work(line: Iterator[int]) -> None:
            for index in line:
                watch = watches[index]
                outcomes[index] = await self.check(watch, states.get(watch.id))

        workers = []
        per_host = admitted_per_host(self.config)
        for indexes in by_host.values():
            line = iter(indexes)  # shared by the host's workers
            workers += [work(line) for _ in range(min(len(indexes), per_host))]
        await asyncio.gather(*workers)
        return [outcome for outcome in outcomes if outcome is not None]

    async def check(self, watch: WatchConfig, state: WatchState | None = None) -> CheckOutcome:
        """Check one watch; `state` is its stored state when the caller has just read it.

        Never raises (but for cancellation): whatever goes wrong is a failed check of this
        watch with the reason, recorded as any problem is (a row, metrics, "failing since",
        the one failing alert), so nothing fails silently and no other watch is held up."""
        started = time.monotonic()
        try:
            return await self._check(watch, state, started)
        except WorkFailed as err:  # reading or diffing went over a limit (see isolate.py)
            return self._failed(watch, started, f"could not compare versions: {err}")
        except Exception as err:
            reason = f"check crashed: {type(err).__name__}: {err}"
            if self._crashes.get(watch.id) != reason:  # the traceback once, not every check
                self._crashes[watch.id] = reason
                logger.exception("%s: check crashed", watch.id)
            return self._failed(watch, started, reason)

    def _failed(self, watch: WatchConfig, started: float, reason: str) -> CheckOutcome:
        """A check that raised: a problem, recorded on the state as stored (the copy the
        check was changing is half-updated). When even that cannot be written (a full disk,
        a read-only data directory: see `Store.write_failure`), the outcome still says why."""
        try:
            moment = datetime.now(UTC)
            state = self.store.state(watch.id)
            state.last_check_at = iso(moment)
            state.next_run_at = iso(moment + timedelta(seconds=watch.interval))
            return self._problem(watch, iso(moment), _ms_since(started), None, reason, state)
        except Exception as err:
            logger.error("%s: could not record the failed check: %s", watch.id, err)
            metrics.observe_check("problem", time.monotonic() - started, reason)
            return CheckOutcome(watch.id, "problem", f"{reason} (not recorded: {err})")

    async def _check(
        self, watch: WatchConfig, state: WatchState | None, started: float
    ) -> CheckOutcome:
        moment = datetime.now(UTC)
        at = iso(moment)
        reading = self._reading(watch)
        if state is None:
            state = self.store.state(watch.id)
        state.last_check_at = at
        state.next_run_at = iso(moment + timedelta(seconds=watch.interval))
        # Conditional requests, except every `full_fetch_every`-th check: some servers keep
        # an ETag while the body changes, and only a full fetch notices.
        # A confirming look asks past caches for the page itself (no validators either).
        conditional = (
            not state.pending and state.since_full + 1 < self.config.fetch.full_fetch_every
        )
        result, extraction = await self._fetch(reading, watch, state, conditional)
        ms = int((time.monotonic() - started) * 1000)

        if extraction is not None and extraction.problem and not extraction.gone:
            return self._problem(watch, at, ms, result, extraction.problem, state)
        if extraction is not None and watch.discover:
            return self._listing(watch, reading, extraction, result, state, at, started)

        # A 304 or the same bytes again change nothing, unless versions await this look.
        heads = self.store.heads(watch.id) if extraction is not None or state.pending else {}
        if extraction is not None and extraction.gone and not heads:
            # Nothing was ever seen here: a wrong URL or an API that moved, not a removal.
            reason = f"the statement's page was never readable ({extraction.problem})"
            return self._problem(watch, at, _ms_since(started), result, reason, state)
        # A statement a listing found after its first look is news: its first version is
        # "published"; anything else seen for the first time is a silent baseline.
        baseline = not heads and not (extraction and self.store.announces(watch.id))
        changes = (
            await self._changes(watch, reading, extraction, heads, baseline, state)
            if extraction is not None
            else []
        )
        state.since_full = state.since_full + 1 if result.not_modified else 0
        ms = int((time.monotonic() - started) * 1000)

        shrunk = self._shrink_reason(changes)
        if shrunk:
            # An extraction suddenly empty or tiny is more likely a broken page than an
            # edit: a problem, retried — unless it holds for several checks in a row.
            repeated = (state.failure_reason or "").startswith(_SHRINK)
            if not repeated or state.consecutive_failures + 1 < _SHRINK_ACCEPT_AFTER:
                return self._problem(watch, at, ms, result, _SHRINK + shrunk, state)
            logger.warning(
                "%s: accepting a shrink seen %d times: %s", watch.id, _SHRINK_ACCEPT_AFTER, shrunk
            )

        if extraction is not None:
            _remember(state, result, reading.rules)

        alerts = _succeeded(watch, state, at)
        # This look decides the changes that were pending: still there, they held (and
        # alert now); changed again, they were transient.
        changed = {change.key for change in changes}
        settled = Settlement()
        for key, head in heads.items():
            if head.confirmation != "pending" or head.version_id is None:
                continue
            verdict = "transient" if key in changed else "held"
            settled.verdicts[head.version_id] = verdict
            if verdict == "held" or watch.alert_transient:
                settled.alerts[head.version_id] = await self._release(watch, head, at, verdict)
        versions = [await self._version(watch, change, at) for change in changes]
        recheck = None
        state.pending = any(v.confirmation == "pending" for v in versions)
        if state.pending:
            removal = any(v.kind == "removed" for v in versions)
            delay = self.config.alerts.confirm_delay
            recheck = max(delay, _REMOVAL_RECHECK) if removal else delay
            state.next_run_at = iso(moment + timedelta(seconds=recheck))
        if versions:
            state.last_change_at = at
            big = [v.text for v in versions if v.text and len(v.text) > _BIG_BLOB]
            if len(result.body) > _BIG_BLOB:
                big.append(result.body)
            if big:  # compressed in a thread, not in the event loop
                await asyncio.to_thread(self.store.blobs.precompress, big)
        self.store.commit_check(
            CheckRecord(
                watch.id,
                at,
                ms,
                "changed" if versions else "unchanged",
                result.status,
                instance=self.instance,
            ),
            state,
            # Only a new version stores its response; an unchanged check skips building it.
            response=_response_record(result) if versions else None,
            versions=versions,
            alerts=alerts,
            settled=settled if settled.verdicts else None,
        )
        self._learn(watch, versions)
        released = sum(len(payloads) for payloads in settled.alerts.values())
        n_alerts = len(alerts) + released + sum(len(v.alerts) for v in versions)
        metrics.observe_check("changed" if versions else "unchanged", time.monotonic() - started)
        for version in versions:
            metrics.CHANGES.labels(version.kind).inc()
            if version.kind != "baseline":
                logger.info("%s %s %s: %s", watch.id, version.kind, version.key, version.summary)
        return CheckOutcome(
            watch.id,
            "changed" if versions else "unchanged",
            "",
            len(versions),
            n_alerts,
            recheck_in=recheck,
        )

    def _listing(
        self,
        watch: WatchConfig,
        reading: _Reading,
        extraction: Extraction,
        result: FetchResult,
        state: WatchState,
        at: str,
        started: float,
    ) -> CheckOutcome:
        """A discovering listing: register new statement watches, wake changed ones."""
        if extraction.gone:
            reason = f"the listing itself is gone ({extraction.problem})"
            return self._problem(watch, at, _ms_since(started), result, reason, state)
        found = discover(watch, reading.profile, extraction, self.store, at)
        self.store.run_soon(found.due, datetime.now(UTC))
        _remember(state, result, reading.rules)
        alerts = _succeeded(watch, state, at)
        outcome = "changed" if found.new else "unchanged"
        if found.new:
            state.last_change_at = at
            logger.info("%s: %d new statements: %s", watch.id, len(found.new), found.new)
        self.store.commit_check(
            CheckRecord(
                watch.id, at, _ms_since(started), outcome, result.status, instance=self.instance
            ),
            state,
            alerts=alerts,
        )
        metrics.observe_check(outcome, time.monotonic() - started)
        return CheckOutcome(
            watch.id, outcome, "", 0, len(alerts), discovered=found.new, due=found.due
        )

    async def _fetch(
        self,
        reading: _Reading,
        watch: WatchConfig,
        state: WatchState,
        conditional: bool,
    ) -> tuple[FetchResult, Extraction | None]:
        """Try the profile's requests in order; the first usable extraction wins.

        Returns no extraction for a 304: nothing to parse, hash or store.
        """
        reasons = []
        result = extraction = None
        profile, target = reading.profile, reading.target
        engine = self.browser if watch.fetcher == "browser" and self.browser else self.fetcher
        for plain in profile.requests(target):
            request = self._prepare(plain, watch, state, conditional)
            result = await engine.fetch(request)
            if result.not_modified:
                return result, None
            if profile.needs_fresh_headers(result) and await self._capture(profile, target):
                result = await engine.fetch(self._prepare(plain, watch, state, conditional))
            known = _known(state, plain.url)
            body_sha = _body_sha(result)
            if (
                result.ok
                and body_sha == known.get("body")
                and _same_rules(known.get("rules"), reading.rules)
            ):
                # Byte-identical to the last fully processed answer, read under the same
                # rules (a server without validators, or the periodic full fetch of one
                # with them): nothing to parse, exactly as for a 304. Parsing it again
                # cost 15-30 ms of CPU every `full_fetch_every` checks, most of what a
                # daemon spent.
                return result, None
            extraction = await self._read(watch, reading, result, body_sha)
            if not extraction.problem or extraction.gone:
                return result, extraction
            reasons.append(f"{request.method} {request.url}: {extraction.problem}")
        assert result is not None and extraction is not None
        if len(reasons) > 1:
            extraction.problem = "; ".join(reasons)
        return result, extraction

    async def _read(
        self, watch: WatchConfig, reading: _Reading, result: FetchResult, body_sha: str
    ) -> Extraction:
        """The profile's reading of an answer, in a worker (see isolate.py). An answer that
        cannot be read there (over the time or memory limit, or the profile raised) is a
        problem with the reason, like any unusable answer."""
        where = (watch.id, f"{result.request.method} {result.request.url}")
        seen = f"{body_sha} {reading.rules}"
        known = self._unreadable.get(where)
        if known is not None and known[0] == seen:
            return Extraction(problem=known[1])
        try:
            extraction: Extraction = await self.work.run(
                read_answer, reading.profile, result, reading.target
            )
        except WorkFailed as err:
            reason = f"the answer could not be read: {err}"
            if err.details:
                logger.warning("%s: %s\n%s", watch.id, reason, err.details.rstrip())
            self._unreadable[where] = (seen, reason)
            return Extraction(problem=reason)
        self._unreadable.pop(where, None)
        return extraction

    async def _changes(
        self,
        watch: WatchConfig,
        reading: _Reading,
        extraction: Extraction,
        heads: dict[str, DocumentHead],
        baseline: bool,
        state: WatchState,
    ) -> list[_Change]:
        """What changed since the heads. After a change of the extraction rules (profile,
        options, `ignore_selectors`, monitor's own reading code) the heads were read the old
        way. A change that the stored page itself shows when read again the new way is the
        rules' doing, and is recorded silently instead of alerted: an edit whose new text
        the head's page already gives, a statement "published" that the watch's latest
        stored page already holds (a new way of keying a feed's entries, say), a statement
        "removed" that its own page no longer yields either."""
        changes = _changes(extraction, heads, baseline)
        if not changes or _same_rules(_last_rules(state), reading.rules):
            return changes
        again: dict[int, dict[str, str] | None] = {}

        async def read(response_id: int | None) -> dict[str, str] | None:
            if not response_id:
                return None
            if response_id not in again:
                again[response_id] = await self._read_again(response_id, reading)
            return again[response_id]

        latest = max((h.response_id or 0 for h in heads.values()), default=0)
        for n, change in enumerate(changes):
            head, new = change.head, change.new
            if change.kind == "edited" and head is not None and new is not None:
                texts = await read(head.response_id)
                if texts is not None and texts.get(change.key) == new.sha256:
                    changes[n] = _Change("baseline", change.key, new, head, reread=True)
            elif change.kind == "published" and new is not None:
                texts = await read(latest)
                if texts is not None and texts.get(change.key) == new.sha256:
                    changes[n] = _Change("baseline", change.key, new, None, reread=True)
            elif change.kind == "removed" and head is not None:
                texts = await read(head.response_id)
                if texts is not None and change.key not in texts:
                    changes[n] = _Change("removed", change.key, None, head, reread=True)
        reread = sum(change.reread for change in changes)
        if reread:
            logger.info(
                "%s: extraction rules changed; %d statements read again the new way, not alerted",
                watch.id,
                reread,
            )
        return changes

    async def _read_again(self, response_id: int, reading: _Reading) -> dict[str, str] | None:
        """A stored response read under the current rules: its statements' text hashes;
        None when it cannot be read so (then nothing is excused)."""
        row = self.store.response(response_id)
        if row is None:
            return None
        result = FetchResult(
            request=FetchRequest(row["url"], row["method"]),
            url=row["final_url"],
            requested_at=parse_iso(row["requested_at"]),
            status=row["status"],
            headers=[(name, value) for name, value in row["headers"]],
            body=self.store.read_blob(row["body_sha256"]),
        )
        try:
            return await self.work.run(statement_hashes, reading.profile, result, reading.target)
        except WorkFailed as err:
            logger.warning("response %d could not be read again: %s", response_id, err)
            return None

    def _prepare(
        self, plain: FetchRequest, watch: WatchConfig, state: WatchState, conditional: bool
    ) -> FetchRequest:
        """The profile's request plus robots policy, validators and captured headers."""
        # Built in one go: this runs for every check, and each dataclasses.replace of the
        # frozen request cost as much as SQLite's whole write of an unchanged check.
        headers = plain.headers
        # (Most daemons never capture headers: no URL to split for them.)
        captured = self._captured and self._captured.get(_origin(plain.url))
        if captured:
            headers = {**headers, **captured}
        if conditional and plain.method == "GET":
            known = _known(state, plain.url)
            headers = Validators(known.get("etag"), known.get("last_modified")).headers(headers)
        elif state.pending:
            headers = {**headers, "Cache-Control": "no-cache"}
        return FetchRequest(plain.url, plain.method, headers, plain.body, watch.robots)

    async def _capture(self, profile: Profile, target: Target) -> bool:
        """Take fresh API headers from a real browser; at most every few minutes per site."""
        capture = profile.header_capture(target)
        if capture is None or self.browser is None:
            return False
        origin = _origin(target.url)
        if self._capture_after.get(origin, 0.0) > time.monotonic():
            return False
        self._capture_after[origin] = time.monotonic() + _CAPTURE_INTERVAL
        try:
            headers = await self.browser.capture_headers(capture)
        except BrowserUnavailable as err:
            logger.warning("%s: cannot capture API headers: %s", origin, err)
            return False
        except Exception as err:  # a browser crash must not take the check down
            logger.warning("%s: header capture failed: %s: %s", origin, type(err).__name__, err)
            return False
        if not headers:
            logger.warning("%s: the page made no API request carrying %s", origin, capture.names)
            return False
        logger.info("%s: captured API headers %s from a browser", origin, sorted(headers))
        self._captured[origin] = headers
        return True

    def _shrink_reason(self, changes: list[_Change]) -> str | None:
        for change in changes:
            if change.kind == "edited" and change.head and change.head.text_sha256:
                old = Statement.from_json(self.store.read_blob(change.head.text_sha256))
                reason = suspicious_shrink(old, change.new)
                if reason:
                    return f"{change.key}: {reason}"
        return None

    def _seen_recently(
        self, head: DocumentHead | None, new: Statement | None, at: str
    ) -> int | None:
        """Number of an earlier version, within the flip-flop window, with exactly this text."""
        window = self.config.alerts.flipflop_window
        if head is None or new is None or window <= 0:
            return None
        sha = new.sha256
        for row in reversed(self.store.versions(head.id)):
            if _seconds_between(row["observed_at"], at) > window:
                break
            if row["text_sha256"] == sha and row["confirmation"] not in _DID_NOT_STAND:
                return int(row["seq"])
        return None

    def _problem(
        self,
        watch: WatchConfig,
        at: str,
        ms: int,
        result: FetchResult | None,
        reason: str,
        state: WatchState,
    ) -> CheckOutcome:
        state.consecutive_failures += 1
        state.failure_reason = reason
        if state.failing_since is None:
            state.failing_since = at
            logger.warning("%s: check failed: %s", watch.id, reason)
        alerts = []
        failing_for = _seconds_between(state.failing_since, at)
        if (
            not state.failure_alerted
            and failing_for >= self.config.alerts.failing_after
            and not self.store.outage_reported(watch.id)
        ):
            state.failure_alerted = True
            summary = f"failing since {state.failing_since}: {reason}"
            alerts.append(_watch_alert("failing", watch, at, summary))
        self.store.commit_check(
            CheckRecord(
                watch.id,
                at,
                ms,
                "problem",
                result.status if result else None,
                reason[:500],
                self.instance,
            ),
            state,
            alerts=alerts,
        )
        metrics.observe_check("problem", ms / 1000, reason)
        return CheckOutcome(watch.id, "problem", reason, 0, len(alerts))

    async def _version(self, watch: WatchConfig, change: _Change, at: str) -> NewVersion:
        """The version a change makes, stored at once. Its summary and score compare it with
        the version just before (what the archive shows); whether it may alert compares it
        with the version that stands, which a pending head no longer does (it did not hold).
        One that may alert is pending until the next look, or alerts at once without
        `confirm_delay`."""
        head, new = change.head, change.new
        old = self._statement(head.text_sha256 if head else None)
        diff = await self._compare(watch, old, new)
        if change.kind == "baseline":
            reread = "read again under changed extraction rules"
            diff.score, diff.summary = 0.0, reread if change.reread else FIRST_SEEN
        elif change.reread:  # a removal that the changed rules explain
            diff.summary = "no longer read under changed extraction rules"
        shown = new or old
        assert shown is not None
        version = NewVersion(
            key=change.key,
            url=shown.url,
            title=shown.title,
            published=shown.published,
            language=shown.language,
            kind=change.kind,
            text=new.to_json() if new else None,
            score=diff.score,
            summary=diff.summary,
        )
        if not change.may_alert:
            return version
        kind, since, alert_diff = change.kind, None, diff
        if head is not None and head.confirmation == "pending":
            standing = self.store.reference(head.id, head.seq)
            if standing is None:  # what was pending was the statement's first sight
                if new is None:
                    return version  # published and gone again: nothing stands to alert
                kind = "published"
            elif standing["text_sha256"] == (new.sha256 if new else None):
                version.summary = f"back to the text of version #{standing['seq']}"
                return version
            else:
                since = int(standing["seq"])
            stood = self._statement(standing["text_sha256"] if standing else None)
            alert_diff = await self._compare(watch, stood, new)
        # Changes confined to ignored text are archived but not alerted.
        if not alert_diff.changed:
            return version
        if kind == "edited" and alert_diff.score < watch.threshold:
            return version
        earlier = self._seen_recently(head, new, at) if kind == "edited" else None
        if earlier is not None:
            # Flip-flop (A→B→A): archived, not alerted again — the first edit was.
            version.summary = f"back to the text of version #{earlier}: {diff.summary}"
            return version
        if self.config.alerts.confirm_delay > 0 or kind == "removed":
            version.confirmation = "pending"
            return version
        seq = (head.seq if head else 0) + 1
        version.alerts.append(
            self._alert(watch, kind, change.key, shown, at, alert_diff, seq, since)
        )
        return version

    async def _release(
        self, watch: WatchConfig, head: DocumentHead, at: str, verdict: str
    ) -> list[tuple[dict[str, Any], list[str]]]:
        """The alert of a pending version that the latest look settled: it held, or it was
        transient and the watch asks to hear of those too. It compares the version with the
        one that stood before it."""
        row = self.store.version(head.version_id) if head.version_id else None
        if row is None:
            return []
        standing = self.store.reference(head.id, head.seq)
        old = self._statement(standing["text_sha256"] if standing else None)
        new = self._statement(head.text_sha256)
        diff = await self._compare(watch, old, new)
        shown = new or old
        if shown is None:
            return []
        kind = row["kind"] if standing is not None else "published"
        since = int(standing["seq"]) if standing is not None else None
        if since is not None and since == head.seq - 1:
            since = None  # the permalink's default
        payload = self._alert(
            watch, kind, head.key, shown, row["observed_at"], diff, head.seq, since
        )[0]
        if verdict == "transient":
            payload["transient"] = True
            payload["summary"] = f"did not hold (gone by the next look): {payload['summary']}"
        return [(payload, watch.channels)]

    def _alert(
        self,
        watch: WatchConfig,
        kind: str,
        key: str,
        shown: Statement,
        observed_at: str,
        diff: DiffResult,
        seq: int,
        since: int | None,
    ) -> tuple[dict[str, Any], list[str]]:
        payload = build_alert(
            kind,
            watch,
            key=key,
            title=shown.title,
            url=shown.url,
            language=shown.language,
            observed_at=observed_at,
            diff=diff,
            public_url=self.config.server.public_url,
            version=seq,
            since=since,
        )
        payload["transient"] = False
        if kind == "published":
            payload["translations"] = [
                {"watch": row["watch_id"], "language": row["language"], "url": row["url"]}
                for row in self.store.translations(watch.id)
            ]
        return payload, watch.channels

    def _statement(self, text_sha256: str | None) -> Statement | None:
        return Statement.from_json(self.store.read_blob(text_sha256)) if text_sha256 else None

    # --- learned furniture (monitor/learned.py): its only two touches on a check --------------

    async def _compare(
        self, watch: WatchConfig, old: Statement | None, new: Statement | None
    ) -> DiffResult:
        """Whether and how a change counts: the diff with the watch's ignore rules and its
        and its host's learned furniture masked on both sides (the archive keeps
        everything). An ignore rule that could not be applied (over its time budget) is a
        problem of the watch, logged once per rule.

        The masking and diffing run in a worker (see isolate.py): users' regexes and long
        texts are the costly parts. The mask is read from the store here; a first sight or
        a removal is worked out here too (nothing to mask or diff)."""
        if old is None or new is None:
            diff = compare(old, new, watch.ignore)
        else:
            mask = self.furniture.mask(watch)
            diff = await self.work.run(compare_masked, mask, old, new, list(watch.ignore))
        for problem in diff.problems:
            if (watch.id, problem) not in self._told:
                self._told.add((watch.id, problem))
                logger.warning("%s: %s", watch.id, problem)
        return diff

    def _learn(self, watch: WatchConfig, versions: list[NewVersion]) -> None:
        """The archive just grew: learn from it (an edit teaches the watch at once)."""
        self.furniture.stored(watch, versions)


def _watch_alert(
    kind: str, watch: WatchConfig, at: str, summary: str
) -> tuple[dict[str, Any], list[str]]:
    """An alert about the watch itself (failing, recovered), not about one statement."""
    payload = build_alert(
        kind,
        watch,
        key=None,
        title=None,
        url=watch.url,
        language=watch.language,
        observed_at=at,
        summary=summary,
    )
    return payload, watch.channels


def _succeeded(
    watch: WatchConfig, state: WatchState, at: str
) -> list[tuple[dict[str, Any], list[str]]]:
    """A check that worked ends an outage: one "recovered" alert if "failing" was sent."""
    alerts = []
    if state.failure_alerted:
        summary = f"checks succeed again (failing since {state.failing_since})"
        alerts.append(_watch_alert("recovered", watch, at, summary))
    state.failing_since = state.failure_reason = None
    state.failure_alerted = False
    state.consecutive_failures = 0
    state.last_ok_at = at
    return alerts


def _merged(first: CheckOutcome, then: CheckOutcome) -> CheckOutcome:
    """One outcome for a check and the confirming look that followed it."""
    return CheckOutcome(
        first.watch_id,
        "changed" if "changed" in (first.outcome, then.outcome) else then.outcome,
        then.detail,
        first.versions + then.versions,
        first.alerts + then.alerts,
        first.discovered + then.discovered,
        first.due + then.due,
        then.recheck_in,
    )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _changes(
    extraction: Extraction, heads: dict[str, DocumentHead], baseline: bool
) -> list[_Change]:
    changes = []
    seen = set()
    for statement in extraction.statements:
        seen.add(statement.key)
        head = heads.get(statement.key)
        if head is None:
            kind = "baseline" if baseline else "published"
        elif head.text_sha256 is None:
            kind = "restored"
        elif head.text_sha256 != statement.sha256:
            kind = "edited"
        else:
            continue
        changes.append(_Change(kind, statement.key, statement, head))
    for key, head in heads.items():
        if key in seen or head.text_sha256 is None:
            continue
        if extraction.gone or (
            extraction.is_listing
            and extraction.window_start is not None
            and date_sort_key(head.published) >= date_sort_key(extraction.window_start)
        ):
            changes.append(_Change("removed", key, None, head))
    return changes


def _response_record(result: FetchResult) -> ResponseRecord:
    request = result.request
    return ResponseRecord(
        requested_at=iso(result.requested_at),
        method=request.method,
        url=request.url,
        final_url=result.url,
        status=result.status,
        http_version=result.http_version,
        request_headers=dict(request.headers),
        request_body=request.body,
        headers=result.headers,
        redirects=result.redirects,
        body=result.body,
        media_type=result.header("content-type"),
        tls=result.tls,
    )


def _known(state: WatchState, url: str) -> dict[str, str | None]:
    """What we remember of the last fully processed answer to `url`."""
    known = state.validators.get(url)
    return known if isinstance(known, dict) else {}


def _remember(state: WatchState, result: FetchResult, rules: str) -> None:
    # Only the answer just recorded is remembered: what another of the profile's requests
    # (e.g. GraphQL before a fallback to REST) said earlier no longer describes the archive.
    validators = result.validators
    state.validators = {}
    state.validators[result.request.url] = {
        "etag": validators.etag,
        "last_modified": validators.last_modified,
        "body": _body_sha(result),
        "rules": rules,
    }


def _last_rules(state: WatchState) -> str | None:
    """The rules the last processed answer was read under (None: not recorded)."""
    for known in state.validators.values():
        return known.get("rules") if isinstance(known, dict) else None
    return None


def _same_rules(recorded: str | None, rules: str) -> bool:
    """Whether an answer read under `recorded` rules was read as `rules` would read it;
    an answer recorded before rules were remembered (None) is taken to be."""
    return recorded in (None, rules)


def _rules_of(watch: WatchConfig, profile: Profile) -> str:
    """A fingerprint of what, besides the page, decides its statements' text: the watch's
    profile, options, ignore_selectors and fetcher, and the extraction code of this monitor."""
    rules = [
        profile.name,
        sorted(watch.options.items()),
        list(watch.ignore_selectors),
        extraction_code(),
    ]
    if watch.fetcher != "http":  # a rendered page may read differently from the API answer
        rules.append(watch.fetcher)
    return hashlib.sha256(repr(rules).encode()).hexdigest()[:16]


def _body_sha(result: FetchResult) -> str:
    return hashlib.sha256(result.body).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _seconds_between(start: str, end: str) -> float:
    def parse(value: str) -> datetime:
        return parse_iso(value).astimezone(UTC)

    return (parse(end) - parse(start)).total_seconds()
