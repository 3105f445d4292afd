"""One check of one watch: fetch → extract → store → diff → alerts.

This module is the only place that knows the order of the stages; each stage is called
through its public interface. It is the shell of a check: it fetches, reads what the archive
holds, asks `monitor.decide` (the rules that make alerts trustworthy, as plain functions
without I/O) what that means, and writes the outcome in one commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from monitor import decide, metrics, progress
from monitor.alerts import build_alert, language_fields, watch_alert
from monitor.attachments import AttachmentReader
from monitor.browser import BrowserEngine
from monitor.capture import CapturedHeaders
from monitor.clock import parse_iso
from monitor.config import MonitorConfig, WatchConfig
from monitor.diff import DiffResult, compare
from monitor.discover import discover
from monitor.extract import (
    Extraction,
    Profile,
    Statement,
    Target,
    extraction_code,
)
from monitor.fetch import Fetcher, FetchRequest, FetchResult, Validators, split_url
from monitor.hostpool import admitted_per_host, per_host
from monitor.inflight import InFlight, Look
from monitor.isolate import InlineWork, Work, WorkFailed, read_answer, statement_hashes
from monitor.learned import LearnedFurniture, Mask, compare_masked
from monitor.screenshots import Screenshotter
from monitor.sites import get_profile
from monitor.store import (
    CheckRecord,
    DocumentHead,
    NewVersion,
    ResponseRecord,
    Settlement,
    Store,
    WatchState,
    iso,
)

__all__ = ["CheckOutcome", "Checker", "admitted_per_host"]

logger = logging.getLogger("monitor.check")

# `monitor check` looks again at most this often for changes to confirm.
_CONFIRM_ROUNDS = 3
# A statement's newest versions read for a decision about its head (see `_history`).
_HISTORY_NEWEST = 8
# Texts and comparisons of the newest versions kept for their confirming look. Comparisons
# are small (the changed sentences), so many more of them are kept: a cycle that edits
# hundreds of pages reaches their confirming looks only after all of their first ones.
_RECENT = 128
_RECENT_DIFFS = 4096

Alerts = list[tuple[dict[str, Any], list[str]]]


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
class _Look:
    """One check of a watch's statements in progress: what it fetched and read, and what it
    read of the archive (each text and each statement's versions at most once a check)."""

    watch: WatchConfig
    reading: _Reading
    state: WatchState
    result: FetchResult
    extraction: Extraction | None
    heads: dict[str, DocumentHead]
    moment: datetime
    at: str
    started: float
    texts: dict[str, Statement] = field(default_factory=dict)
    histories: dict[int, list[decide.PastVersion]] = field(default_factory=dict)
    # The blobs its new versions would store, compressed by the worker that read the page
    # (by SHA-256), and the page's own SHA-256.
    compressed: dict[str, bytes] = field(default_factory=dict)
    body_sha256: str = ""
    # A look a killed process made, replayed (see inflight.py): the page is not as it was.
    replayed: bool = False


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
        register: bool = True,
    ) -> None:
        """`work`: where what sites send is read and diffed; the daemon and `monitor check`
        pass a `WorkerPool` (time and memory limits, off the event loop), tools and tests
        that read their own pages may leave it to run in process. `register`: register
        every watch now; the daemon registers them itself (see `register`), the watches due
        first, the rest after its first checks have started."""
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
        self.captured = CapturedHeaders(browser)
        self._readings: dict[str, _Reading] = {}
        # Problems of a watch's ignore rules already logged (once each).
        self._told: set[tuple[str, str]] = set()
        # The texts of the newest versions and their comparisons, for the look that
        # confirms them a few seconds later: it compares the same two texts again, and read
        # each from the archive (a blob read, zstd and JSON) once more.
        self._recent_texts: _Recent[str, Statement] = _Recent(_RECENT)
        self._recent_diffs: _Recent[tuple[Any, ...], DiffResult] = _Recent(_RECENT_DIFFS)
        self.furniture = LearnedFurniture(store)
        self.attachments = AttachmentReader(store, fetcher, self.work)
        self.screenshots = Screenshotter(store, browser, self.work)
        self.inflight = InFlight(store.root)
        if register:
            self.register(config.watch)

    def reconfigure(self, config: MonitorConfig, changed: list[str]) -> None:
        """Use a reloaded configuration; changed or removed watches get their reading anew."""
        self.config = config
        for watch_id in changed:
            self._readings.pop(watch_id, None)

    def _reading(self, watch: WatchConfig) -> _Reading:
        """The watch's reading; the first time, the watch is registered in the store."""
        reading = self._readings.get(watch.id)
        if reading is None:
            self.register([watch])
            reading = self._readings[watch.id]
        return reading

    def registered(self, watch_id: str) -> bool:
        """Whether the watch has its reading (and its row in the store) as configured."""
        return watch_id in self._readings

    def register(self, watches: Sequence[WatchConfig], tell: bool = True) -> None:
        """Give watches their profile and register them in the store, all in one
        transaction (one per watch made a daemon's start cost seconds at 10,000 watches).
        `tell`: log the watches that ignore robots.txt (the daemon tells of all of its
        watches at once, before it registers them in slices)."""
        # Profiles keep no state of their own: one of each serves every watch naming it,
        # and watches read alike share one fingerprint of their rules.
        named: dict[str, Profile] = {}
        rules: dict[tuple[Any, ...], str] = {}
        for watch in watches:
            if watch.profile:
                profile = named.get(watch.profile)
                if profile is None:
                    profile = named[watch.profile] = get_profile(watch.profile, watch.url)
            else:
                profile = get_profile(None, watch.url)
            target = Target(
                watch.url,
                watch.language,
                watch.options,
                tuple(watch.ignore_selectors),
                watch.fetcher,
                tuple(watch.ocr),
            )
            # Everything `_rules_of` reads of the watch and its profile.
            alike = (
                type(profile),
                tuple(watch.options.items()),
                target.drop_selectors,
                watch.fetcher,
                target.ocr,
            )
            fingerprint = rules.get(alike)
            if fingerprint is None:
                fingerprint = rules[alike] = _rules_of(watch, profile)
            self._readings[watch.id] = _Reading(profile, target, fingerprint)
        if tell:
            tell_robots_ignored(watches)
        self.store.sync_watches([(w.id, w.url, self._readings[w.id].profile.name) for w in watches])

    def _policy(self, watch: WatchConfig) -> decide.Policy:
        alerts = self.config.alerts
        return decide.Policy(
            threshold=watch.threshold,
            confirm_delay=alerts.confirm_delay,
            flipflop_window=alerts.flipflop_window,
            alert_transient=watch.alert_transient,
            failing_after=alerts.failing_after,
            full_fetch_every=self.config.fetch.full_fetch_every,
        )

    async def check_all(self, watches: list[WatchConfig]) -> list[CheckOutcome]:
        """Check these watches once, concurrently (`monitor check`); outcomes in their
        order. Changes pending confirmation get their confirming look before this ends (a
        few rounds: a page that changes at every look stays pending, archived)."""
        done = await self._round(watches, counted=True)
        for _ in range(_CONFIRM_ROUNDS):
            again = [n for n, outcome in enumerate(done) if outcome.recheck_in is not None]
            if not again:
                break
            await self.sleep(max(done[n].recheck_in or 0.0 for n in again))
            rechecked = await self._round([watches[n] for n in again])
            for n, outcome in zip(again, rechecked, strict=True):
                done[n] = _merged(done[n], outcome)
        return done

    async def _round(self, watches: list[WatchConfig], counted: bool = False) -> list[CheckOutcome]:
        """One check of each watch, concurrently, each host's by a few workers of its own
        (see `monitor.hostpool`). Their states are read in one query up front instead of
        one per check."""
        try:
            states = self.store.states()
        except Exception:  # each check reads its own state then, and fails on its own
            logger.exception("could not read the watches' states")
            states = {}

        def host(watch: WatchConfig) -> str:
            return split_url(watch.url).netloc

        async def check(watch: WatchConfig) -> CheckOutcome:
            outcome = await self.check(watch, states.get(watch.id))
            if counted:  # a first look, not a confirming one (see progress.py)
                progress.tick()
            return outcome

        return await per_host(watches, host, admitted_per_host(self.config), check)

    async def check(self, watch: WatchConfig, state: WatchState | None = None) -> CheckOutcome:
        """Check one watch; `state` is its stored state when the caller has just read it.

        Never raises (but for cancellation): whatever goes wrong is a failed check of this
        watch with the reason, recorded as any problem is (a row, metrics, "failing since",
        the one failing alert), so nothing fails silently and no other watch is held up."""
        started = time.monotonic()
        db = self.store.db
        db.check_began()  # see Database.together
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
        finally:
            db.check_ended()

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
        if self.inflight.may_hold(watch.id):
            replayed = await self._replayed(watch, reading, state, moment)
            if replayed is not None:
                return replayed
        state.last_check_at = at
        state.next_run_at = iso(moment + timedelta(seconds=watch.interval))
        full_fetch_every = self.config.fetch.full_fetch_every
        conditional = decide.conditional(state.pending, state.since_full, full_fetch_every)
        slots: list[Any] = []  # what this look fetched to read, kept until its commit
        try:
            result, extraction, read = await self._fetch(
                reading, watch, state, conditional, at, slots
            )
            return await self._fetched(
                watch, reading, state, result, extraction, read, moment, at, started
            )
        finally:
            for slot in slots:
                self.inflight.end(slot)

    async def _fetched(
        self,
        watch: WatchConfig,
        reading: _Reading,
        state: WatchState,
        result: FetchResult,
        extraction: Extraction | None,
        read: tuple[str, dict[str, bytes]] | None,
        moment: datetime,
        at: str,  # `moment` as the archive writes it (made once: it costs a microsecond)
        started: float,
        replayed: bool = False,
    ) -> CheckOutcome:
        """What a look makes of what it fetched: recorded, and committed."""
        extraction = await self._attachments(watch, extraction)

        if extraction is not None and extraction.problem and not extraction.gone:
            return self._problem(watch, at, _ms_since(started), result, extraction.problem, state)
        if extraction is not None and watch.discover:
            return self._listing(watch, reading, extraction, result, state, at, started)

        if extraction is None and not state.pending and not watch.screenshot:
            return self._unchanged(watch, state, result, at, started)
        # A 304 or the same bytes again change nothing, unless versions await this look.
        heads = self.store.heads(watch.id) if extraction is not None or state.pending else {}
        if extraction is not None and extraction.gone and not heads:
            # Nothing was ever seen here: a wrong URL or an API that moved, not a removal.
            reason = f"the statement's page was never readable ({extraction.problem})"
            return self._problem(watch, at, _ms_since(started), result, reason, state)
        look = _Look(
            watch, reading, state, result, extraction, heads, moment, at, started, replayed=replayed
        )
        if read is not None:
            look.body_sha256, look.compressed = read
        return await self._statements(look)

    async def _replayed(
        self, watch: WatchConfig, reading: _Reading, state: WatchState, moment: datetime
    ) -> CheckOutcome | None:
        """The looks killed processes left for this watch, replayed (`_replay`). When they
        left versions awaiting their confirming look, that look is due `confirm_delay`
        after the replayed one, not now: their outcome, to check again then. None: go on
        with this check's own look."""
        replayed = None
        for claimed, slot in self.inflight.claimed(watch.id, self._watch_ids):
            replayed = await self._replay(watch, reading, state, claimed, slot) or replayed
        if replayed is not None and replayed.recheck_in is not None and state.next_run_at:
            wait = (parse_iso(state.next_run_at) - moment).total_seconds()
            if wait > 0:
                return dataclasses.replace(replayed, recheck_in=wait)
        return None

    async def _replay(
        self, watch: WatchConfig, reading: _Reading, state: WatchState, claimed: Look, slot: Any
    ) -> CheckOutcome | None:
        """A look a process fetched and was killed before committing (see inflight.py),
        made now under its own moment: what it fetched is archived as what the page said
        then. A look older than the watch's last recorded check was superseded (it was
        committed before the kill, or another daemon has checked the watch since): None."""
        try:
            if state.last_check_at is not None and claimed.at <= state.last_check_at:
                return None
            logger.info(
                "%s: replaying the look of %s, fetched by a process killed before its commit",
                watch.id,
                claimed.at,
            )
            state.last_check_at = claimed.at
            result = claimed.result
            body_sha = _body_sha(result)
            extraction, compressed = await self._read(watch, reading, result, body_sha)
            return await self._fetched(
                watch,
                reading,
                state,
                result,
                extraction,
                (body_sha, compressed),
                parse_iso(claimed.at),
                claimed.at,
                time.monotonic(),
                replayed=True,
            )
        finally:
            self.inflight.end(slot)

    def _watch_ids(self) -> set[str]:
        return {watch.id for watch in self.config.watch}

    async def _statements(self, look: _Look) -> CheckOutcome:
        """What a watch's statements did since the last look, archived and alerted."""
        watch, state, result, at = look.watch, look.state, look.result, look.at
        changes = await self._changes(look)
        state.since_full = decide.since_full(state.since_full, result.not_modified)
        ms = _ms_since(look.started)
        refused = self._shrink_refused(look, changes, ms)
        if refused is not None:
            return refused
        if look.extraction is not None and not look.extraction.from_archive:
            _remember(state, result, look.reading.rules, look.body_sha256)
        alerts = _succeeded(watch, state, at)
        settled = await self._settle(look, changes)
        versions, recheck = await self._new_versions(look, changes)
        outcome = "changed" if versions else "unchanged"
        # Attachments that could not be used this time (the statement kept their text).
        detail = "; ".join(look.extraction.attachment_problems) if look.extraction else ""
        version_ids = await self.store.commit_check_together(
            CheckRecord(
                watch.id, at, ms, outcome, result.status, detail[:500] or None, self.instance
            ),
            state,
            # Only a new version stores its response; an unchanged check skips building it.
            response=_response_record(result) if versions else None,
            versions=versions,
            alerts=alerts,
            settled=settled if settled.verdicts else None,
        )
        self._learn(watch, versions, look.texts)
        released = sum(len(payloads) for payloads in settled.alerts.values())
        n_alerts = len(alerts) + released + sum(len(v.alerts) for v in versions)
        # After the commit: the text archive never waits on a browser. A replayed look has
        # none: a screenshot now would show the page as it is, not as the look found it.
        if watch.screenshot and not look.replayed:
            n_alerts += await self.screenshots.after_check(
                watch, at, versions, version_ids, self.config.server.public_url
            )
        metrics.observe_check(outcome, time.monotonic() - look.started)
        _log_versions(watch, versions)
        return CheckOutcome(watch.id, outcome, detail, len(versions), n_alerts, recheck_in=recheck)

    def _unchanged(
        self, watch: WatchConfig, state: WatchState, result: FetchResult, at: str, started: float
    ) -> CheckOutcome:
        """A look with nothing to decide, most of what a daemon does: a 304 or the same
        bytes again, and no version awaiting its confirming look. What `_statements` does
        then, without its steps for changes (their coroutines and empty results were a
        tenth of the instructions of such a check)."""
        state.since_full = decide.since_full(state.since_full, result.not_modified)
        alerts = _succeeded(watch, state, at)
        record = CheckRecord(
            watch.id, at, _ms_since(started), "unchanged", result.status, None, self.instance
        )
        self.store.commit_check(record, state, alerts=alerts)
        metrics.observe_check("unchanged", time.monotonic() - started)
        return CheckOutcome(watch.id, "unchanged", "", 0, len(alerts))

    def _shrink_refused(
        self, look: _Look, changes: list[decide.Change], ms: int
    ) -> CheckOutcome | None:
        """An extraction suddenly empty or tiny is more likely a broken page than an edit: a
        problem, retried — unless it holds for several checks in a row."""
        shrunk = decide.shrink(changes, self._olds(look, changes))
        if not shrunk:
            return None
        if not decide.shrink_accepted(_outage(look.state)):
            reason = decide.SHRINK + shrunk
            return self._problem(look.watch, look.at, ms, look.result, reason, look.state)
        logger.warning(
            "%s: accepting a shrink seen %d times: %s",
            look.watch.id,
            decide.SHRINK_ACCEPT_AFTER,
            shrunk,
        )
        return None

    async def _new_versions(
        self, look: _Look, changes: list[decide.Change]
    ) -> tuple[list[NewVersion], float | None]:
        """The versions the changes make, and when to look again to confirm them (None: no
        version awaits a confirming look); their blobs written ahead of the commit."""
        state = look.state
        versions = [await self._version(look, change) for change in changes]
        pending = [v.kind for v in versions if v.confirmation == "pending"]
        recheck = decide.recheck_in(pending, self.config.alerts.confirm_delay)
        state.pending = recheck is not None
        if recheck is not None:
            state.next_run_at = iso(look.moment + timedelta(seconds=recheck))
        if versions:
            state.last_change_at = look.at
            for change in changes:
                if change.new is not None:
                    self._recent_texts.put(change.new.sha256, change.new)
                    look.texts[change.new.sha256] = change.new
            await self._prepare_blobs(look, changes)
        return versions, recheck

    async def _prepare_blobs(self, look: _Look, changes: list[decide.Change]) -> None:
        """The blobs of the commit to come made ready off the event loop: compressed (by
        the worker that read the page, else in a thread) and their files written durably,
        with those of the other checks of the moment (see `Blobs.prepare`)."""
        blobs = {change.new.sha256: change.new.to_json() for change in changes if change.new}
        body_sha256 = look.body_sha256 or _body_sha(look.result)
        blobs[body_sha256] = look.result.body
        await self.store.blobs.prepare(blobs, look.compressed)

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

    # --- fetching and reading ------------------------------------------------------------------

    async def _attachments(
        self, watch: WatchConfig, extraction: Extraction | None
    ) -> Extraction | None:
        """The statements with their attachments read in (monitor/attachments.py). A page
        that did not change (None) still has its files looked at, when it has any: a PDF is
        replaced as quietly as a page is edited."""
        if not watch.attachments or watch.discover:
            return extraction
        if extraction is not None:
            if extraction.problem:
                return extraction
            return await self.attachments.attach(watch, extraction)
        if not self.attachments.watched(watch.id):
            return None
        heads = self.store.heads(watch.id)
        stored = [self._stored(head.text_sha256) for head in heads.values() if head.text_sha256]
        return await self.attachments.again(watch, stored)

    def _stored(self, text_sha256: str) -> Statement:
        return Statement.from_json(self.store.read_blob(text_sha256))

    async def _fetch(
        self,
        reading: _Reading,
        watch: WatchConfig,
        state: WatchState,
        conditional: bool,
        at: str,
        slots: list[Any],
    ) -> tuple[FetchResult, Extraction | None, tuple[str, dict[str, bytes]] | None]:
        """Try the profile's requests in order; the first usable extraction wins.

        Returns no extraction for a 304: nothing to parse, hash or store. With an
        extraction, the answer's SHA-256 and the blobs the worker compressed (`_read`);
        for the same bytes as the last answer read, its SHA-256 and no blobs.
        """
        reasons = []
        result = extraction = None
        profile, target = reading.profile, reading.target
        engine = self.browser if watch.fetcher == "browser" and self.browser else self.fetcher
        for plain in profile.requests(target):
            # An earlier request's answer could not be used: the look goes on with this
            # one, and only the answer it ends with is kept in flight (a replay reads one).
            while slots:
                self.inflight.end(slots.pop())
            request = self._prepare(plain, watch, state, conditional)
            result = await engine.fetch(request)
            if result.not_modified:
                return result, None, None
            if profile.needs_fresh_headers(result) and await self.captured.refresh(profile, target):
                result = await engine.fetch(self._prepare(plain, watch, state, conditional))
            body_sha = _body_sha(result)
            if decide.already_read(result.ok, body_sha, _known(state, plain.url), reading.rules):
                # Byte-identical to the last fully processed answer, read under the same
                # rules (a server without validators, or the periodic full fetch of one
                # with them): nothing to parse, exactly as for a 304. Parsing it again
                # cost 15-30 ms of CPU every `full_fetch_every` checks, most of what a
                # daemon spent. Its hash goes along (a confirming look's alert names the
                # page it fetched by it).
                return result, None, (body_sha, {})
            # New bytes: kept on disk until the look's commit, should the process be killed
            # before it (see inflight.py).
            slots.append(self.inflight.begin(watch.id, at, result))
            extraction, compressed = await self._read(watch, reading, result, body_sha)
            if not extraction.problem or extraction.gone:
                return result, extraction, (body_sha, compressed)
            reasons.append(f"{request.method} {request.url}: {extraction.problem}")
        assert result is not None and extraction is not None
        if len(reasons) > 1:
            extraction.problem = "; ".join(reasons)
        return result, extraction, None

    def _prepare(
        self, plain: FetchRequest, watch: WatchConfig, state: WatchState, conditional: bool
    ) -> FetchRequest:
        """The profile's request plus robots policy, validators and captured headers."""
        # Built in one go: this runs for every check, and each dataclasses.replace of the
        # frozen request cost as much as SQLite's whole write of an unchanged check.
        headers = plain.headers
        captured = self.captured.for_url(plain.url)
        if captured:
            headers = {**headers, **captured}
        if conditional and plain.method == "GET":
            known = _known(state, plain.url)
            headers = Validators(known.get("etag"), known.get("last_modified")).headers(headers)
        elif state.pending:
            headers = {**headers, "Cache-Control": "no-cache"}
        return FetchRequest(plain.url, plain.method, headers, plain.body, watch.robots)

    async def _read(
        self, watch: WatchConfig, reading: _Reading, result: FetchResult, body_sha: str
    ) -> tuple[Extraction, dict[str, bytes]]:
        """The profile's reading of an answer, in a worker (see isolate.py), and the blobs
        its versions would store, compressed there. An answer that cannot be read there
        (over the time or memory limit, or the profile raised) is a problem with the
        reason, like any unusable answer."""
        where = (watch.id, f"{result.request.method} {result.request.url}")
        seen = f"{body_sha} {reading.rules}"
        known = self._unreadable.get(where)
        if known is not None and known[0] == seen:
            return Extraction(problem=known[1]), {}
        # A listing stores no versions; the worker leaves out the statements whose
        # attachments are read in after it (they change: see `read_answer`).
        archives = not watch.discover
        try:
            extraction, compressed = await self.work.run(
                read_answer,
                reading.profile,
                result,
                reading.target,
                body_sha if archives else None,
                watch.attachments,
            )
        except WorkFailed as err:
            reason = f"the answer could not be read: {err}"
            if err.details:
                logger.warning("%s: %s\n%s", watch.id, reason, err.details.rstrip())
            self._unreadable[where] = (seen, reason)
            return Extraction(problem=reason), {}
        self._unreadable.pop(where, None)
        return extraction, compressed

    async def _changes(self, look: _Look) -> list[decide.Change]:
        """What changed since the heads (see `decide.changes`). After a change of the
        extraction rules, the stored responses the changes need are read again the new
        way, so that what the rules explain is recorded silently (see `decide.excused`)."""
        extraction, heads, watch = look.extraction, look.heads, look.watch
        if extraction is None:
            return []
        # A statement a listing found after its first look is news: its first version is
        # "published"; anything else seen for the first time is a silent baseline.
        baseline = not heads and not self.store.announces(watch.id)
        changes = decide.changes(extraction, heads, baseline)
        rules = look.reading.rules
        if not changes or decide.same_rules(decide.last_rules(look.state.validators), rules):
            return changes
        # The files each statement had: read again, a page carries them as they were.
        files = {}
        for change in changes:
            old = self._text(look, change.head.text_sha256) if change.head else None
            if old is not None and old.documents:
                files[change.key] = old.documents
        texts = {
            response_id: await self._read_again(response_id, look.reading, files)
            for response_id in sorted(decide.rereads(changes, heads))
        }
        changes = decide.excused(changes, heads, texts)
        reread = sum(change.reread for change in changes)
        if reread:
            logger.info(
                "%s: extraction rules changed; %d statements read again the new way, not alerted",
                watch.id,
                reread,
            )
        return changes

    async def _read_again(
        self, response_id: int, reading: _Reading, files: dict[str, Any] | None = None
    ) -> dict[str, str] | None:
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
            return await self.work.run(
                statement_hashes, reading.profile, result, reading.target, files
            )
        except WorkFailed as err:
            logger.warning("response %d could not be read again: %s", response_id, err)
            return None

    # --- what the archive holds, read at most once a check --------------------------------

    def _text(self, look: _Look, text_sha256: str | None) -> Statement | None:
        """An archived statement by its text hash."""
        if text_sha256 is None:
            return None
        statement = look.texts.get(text_sha256)
        if statement is None:
            statement = self._recent_texts.get(text_sha256)
            if statement is None:
                statement = Statement.archived(self.store.read_blob(text_sha256), text_sha256)
            look.texts[text_sha256] = statement
        return statement

    def _olds(self, look: _Look, changes: list[decide.Change]) -> dict[str, Statement]:
        """The edited statements' previous texts, by hash (what the shrink rule compares)."""
        olds = {}
        for change in changes:
            head = change.head
            if change.kind == "edited" and head is not None and head.text_sha256:
                old = self._text(look, head.text_sha256)
                assert old is not None
                olds[head.text_sha256] = old
        return olds

    def _history(
        self, look: _Look, head: DocumentHead, flipping_to: str | None = None
    ) -> list[decide.PastVersion]:
        """What the decisions about a statement's head need of its archived versions,
        oldest first: its newest few (all of them only when none of those stands, see
        `decide.enough_history`), and with `flipping_to`, an edit's new text hash, the
        older ones with that text that the flip-flop window may reach. Reading every
        version cost 36 ms of every edit at 5,000 versions."""
        history = look.histories.get(head.id)
        if history is None:
            newest = self.store.versions(head.id, newest=_HISTORY_NEWEST)
            history = [decide.PastVersion.of(row) for row in newest]
            if not decide.enough_history(history, head.seq):
                history = [decide.PastVersion.of(row) for row in self.store.versions(head.id)]
            look.histories[head.id] = history
        window = self.config.alerts.flipflop_window
        if flipping_to is None or window <= 0 or not history or history[0].seq <= 1:
            return history
        # A day's margin: `decide.flipflop` applies the window itself, to the second.
        since = iso(look.moment - timedelta(seconds=window + 86400))
        older = [
            decide.PastVersion.of(row)
            for row in self.store.versions_with_text(head.id, flipping_to, since)
            if row["seq"] < history[0].seq
        ]
        return older + history

    # --- versions, confirmation and alerts -------------------------------------------------

    async def _settle(self, look: _Look, changes: list[decide.Change]) -> Settlement:
        """This look decides the changes that were pending: still there, they held (and
        alert now); changed again, they were transient."""
        settled = Settlement()
        for decided in decide.settle(look.heads, changes, look.watch.alert_transient):
            settled.verdicts[decided.version_id] = decided.verdict
            if decided.release:
                settled.alerts[decided.version_id] = await self._release(look, decided)
        return settled

    async def _version(self, look: _Look, change: decide.Change) -> NewVersion:
        """The version a change makes, stored at once (see `decide.plan`). Its summary and
        score compare it with the version just before (what the archive shows); whether it
        may alert compares it with the version that stands, which a pending head no longer
        does (it did not hold)."""
        watch, head, new = look.watch, change.head, change.new
        policy = self._policy(watch)
        old = self._text(look, head.text_sha256 if head else None)
        diff = await self._compare(watch, old, new)
        needed = head is not None and decide.needs_history(change, policy)
        flipping_to = new.sha256 if new is not None and change.kind == "edited" else None
        history = self._history(look, head, flipping_to) if head is not None and needed else []
        basis = decide.basis(change, history)
        judged = diff
        if isinstance(basis, decide.Basis) and basis.rejudge:
            judged = await self._compare(watch, self._text(look, basis.stood), new)
        plan = decide.plan(change, diff, basis, judged, history, look.at, policy)
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
            score=plan.score,
            summary=plan.summary,
            confirmation="pending" if plan.pending else None,
        )
        alert = plan.alert
        if alert is not None:
            version.alerts.append(
                self._alert(
                    look, alert.kind, change.key, shown, look.at, judged, alert.seq, alert.since
                )
            )
        return version

    async def _release(self, look: _Look, settled: decide.Settled) -> Alerts:
        """The alert of a pending version that this look settled: it held, or it was
        transient and the watch asks to hear of those too. It compares the version with the
        one that stood before it."""
        head, watch = settled.head, look.watch
        plan = decide.release(settled, self._history(look, head))
        if plan is None:
            return []
        new = self._text(look, head.text_sha256)
        diff = await self._compare_with(look, watch, plan.stood, new)
        shown = new or self._text(look, plan.stood)
        if shown is None:
            return []
        payload, channels = self._alert(
            look, plan.kind, head.key, shown, plan.observed_at, diff, plan.seq, plan.since
        )
        if plan.transient:
            payload["transient"] = True
            payload["summary"] = decide.transient_summary(payload["summary"])
        return [(payload, channels)]

    def _alert(
        self,
        look: _Look,
        kind: str,
        key: str,
        shown: Statement,
        observed_at: str,
        diff: DiffResult,
        seq: int,
        since: int | None,
    ) -> tuple[dict[str, Any], list[str]]:
        # A new statement carries its text, a removed one its last archived text (the
        # version before the removal, or the one it is compared with).
        watch = look.watch
        archived = {"published": seq, "removed": since or seq - 1}.get(kind)
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
            paragraphs=shown.paragraphs if archived else (),
            archived=archived or None,
        )
        payload["transient"] = False
        payload.update(
            language_fields(
                self.store,
                watch.id,
                kind,
                key=key,
                language=shown.language,
                url=shown.url,
                observed_at=observed_at,
                public_url=self.config.server.public_url,
                zone=self.config.alerts.timezone,
                # The page this look fetched: the statement's newest archived one, when a
                # confirming look found the same bytes (read here, not from the archive).
                held={look.body_sha256 or _body_sha(look.result): look.result.body},
            )
        )
        return payload, watch.channels

    def _problem(
        self,
        watch: WatchConfig,
        at: str,
        ms: int,
        result: FetchResult | None,
        reason: str,
        state: WatchState,
    ) -> CheckOutcome:
        """A check that found no content: recorded, and the outage it is part of goes on
        (see `decide.failed`); one "failing" alert per family of watches."""
        failure = decide.failed(_outage(state), at, reason, self.config.alerts.failing_after)
        outage = failure.outage
        if failure.began:
            logger.warning("%s: check failed: %s", watch.id, reason)
        alerts = []
        if failure.alert_due and not self.store.outage_reported(watch.id):
            outage = decide.alerted(outage)
            alerts.append(watch_alert("failing", watch, at, decide.failing_summary(outage)))
        _set_outage(state, outage)
        status = result.status if result else None
        self.store.commit_check(
            CheckRecord(watch.id, at, ms, "problem", status, reason[:500], self.instance),
            state,
            alerts=alerts,
        )
        metrics.observe_check("problem", ms / 1000, reason)
        return CheckOutcome(watch.id, "problem", reason, 0, len(alerts))

    # --- learned furniture (monitor/learned.py): its only two touches on a check --------------

    async def _compare_with(
        self, look: _Look, watch: WatchConfig, old_sha256: str | None, new: Statement | None
    ) -> DiffResult:
        """`_compare` of an archived text (by its hash) with `new`: the archived text is
        read only when this comparison is not one of the recent ones (a confirming look
        compares the texts its first look did; reading and diffing them again was a
        third of a changed page's CPU)."""
        if old_sha256 is not None and new is not None:
            mask = self.furniture.mask(watch)
            known = self._recent_diffs.get(_diff_key(watch, mask, old_sha256, new.sha256))
            if known is not None:
                return known
            return await self._compare(watch, self._text(look, old_sha256), new, mask)
        return await self._compare(watch, self._text(look, old_sha256), new)

    async def _compare(
        self,
        watch: WatchConfig,
        old: Statement | None,
        new: Statement | None,
        mask: Mask | None = None,
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
            if mask is None:
                mask = self.furniture.mask(watch)
            key = _diff_key(watch, mask, old.sha256, new.sha256)
            known = self._recent_diffs.get(key)
            if known is not None:
                return known  # its problems were told when it was worked out
            diff = await self.work.run(compare_masked, mask, old, new, list(watch.ignore))
            self._recent_diffs.put(key, diff)
        for problem in diff.problems:
            if (watch.id, problem) not in self._told:
                self._told.add((watch.id, problem))
                logger.warning("%s: %s", watch.id, problem)
        return diff

    def _learn(
        self, watch: WatchConfig, versions: list[NewVersion], texts: dict[str, Statement]
    ) -> None:
        """The archive just grew: learn from it (an edit teaches the watch at once). The
        texts this check holds need not be read back from the archive for that."""
        if versions:
            self.furniture.remember(texts)
        self.furniture.stored(watch, versions)


K = TypeVar("K")
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """The `size` entries used most recently."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def _diff_key(watch: WatchConfig, mask: Mask, old_sha256: str, new_sha256: str) -> tuple[Any, ...]:
    """What decides a comparison of two texts: they, the mask and the watch's ignore rules."""
    return (old_sha256, new_sha256, mask.key(), tuple(watch.ignore))


def _log_versions(watch: WatchConfig, versions: list[NewVersion]) -> None:
    for version in versions:
        metrics.count_change(version.kind)
        if version.kind != "baseline":
            logger.info("%s %s %s: %s", watch.id, version.kind, version.key, version.summary)


def _outage(state: WatchState) -> decide.Outage:
    return decide.Outage(*_outage_fields(state))


def _outage_fields(state: WatchState) -> tuple[str | None, str | None, bool, int]:
    return (
        state.failing_since,
        state.failure_reason,
        state.failure_alerted,
        state.consecutive_failures,
    )


_NOT_FAILING = astuple(decide.Outage())


def _set_outage(state: WatchState, outage: decide.Outage) -> None:
    state.failing_since = outage.since
    state.failure_reason = outage.reason
    state.failure_alerted = outage.alerted
    state.consecutive_failures = outage.failures


def _succeeded(watch: WatchConfig, state: WatchState, at: str) -> Alerts:
    """A check that worked ends an outage: one "recovered" alert if "failing" was sent."""
    state.last_ok_at = at
    if _outage_fields(state) == _NOT_FAILING:  # nearly every check: no outage to end
        return []
    outage, summary = decide.recovered(_outage(state))
    _set_outage(state, outage)
    return [watch_alert("recovered", watch, at, summary)] if summary else []


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


def _remember(state: WatchState, result: FetchResult, rules: str, body_sha256: str = "") -> None:
    # Only the answer just recorded is remembered: what another of the profile's requests
    # (e.g. GraphQL before a fallback to REST) said earlier no longer describes the archive.
    validators = result.validators
    state.validators = {}
    state.validators[result.request.url] = {
        "etag": validators.etag,
        "last_modified": validators.last_modified,
        "body": body_sha256 or _body_sha(result),
        "rules": rules,
    }


def _some(ids: list[str], shown: int = 5) -> str:
    """A few of these ids, and how many more."""
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")


def tell_robots_ignored(watches: Sequence[WatchConfig]) -> None:
    """Log the watches that ignore robots.txt: one line, not one per watch (100,000 lines
    at a large start)."""
    robots_off = [watch.id for watch in watches if not watch.robots]
    if len(robots_off) == 1:
        logger.warning("%s: robots.txt is ignored for this watch (robots = false)", *robots_off)
    elif robots_off:
        logger.warning(
            "robots.txt is ignored for %d watches (robots = false): %s",
            len(robots_off),
            _some(robots_off),
        )


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
    if watch.ocr:  # a scan reads as its OCR text only with OCR on
        rules.append(("ocr", list(watch.ocr)))
    return hashlib.sha256(repr(rules).encode()).hexdigest()[:16]


def _body_sha(result: FetchResult) -> str:
    return hashlib.sha256(result.body).hexdigest()
