"""Scheduler stage: when each watch is checked, and running the daemon.

Each watch's next due time sits in a `Timetable` (a heap), read once a second by one
APScheduler 3.x `AsyncIOScheduler` job, the tick; the outbox is delivered by another. Due
times follow each watch's interval with centred jitter, on whole-second ticks. After a
(re)start each watch's first run is placed where its own rhythm says (last check +
interval) or, when overdue or new, spread at random over a short window, so a restart
never fires every watch at once. SIGTERM/SIGINT stop the scheduler, let running checks
finish within a bound, and close the client and the store.

Why not one APScheduler job per watch, as before: APScheduler's dispatch of a job (its
job store's list kept sorted, an executor submission, events, a task wrapper) cost more
CPU than our own work on an unchanged check, and adding 10,000 jobs (each callable
inspected) took seconds of start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import metrics
from monitor.alerts import Deliverer, build_alert
from monitor.browser import BrowserEngine
from monitor.check import Checker, CheckOutcome, admitted_per_host
from monitor.clock import parse_iso
from monitor.config import ConfigError, MonitorConfig, WatchConfig, load_config
from monitor.discover import StatementWatch, statement_watches
from monitor.extract import profile_names
from monitor.fetch import Fetcher, split_url
from monitor.isolate import WorkerPool
from monitor.overrides import apply_ui_watches
from monitor.store import Store, WatchState, now_iso
from monitor.wayback import Submitter
from monitor.web import UVICORN_OPTIONS, create_app

logger = logging.getLogger("monitor.scheduler")

# Spread overdue first runs over at least this many seconds after start, and over this
# much per overdue watch when there are many: a first check parses and stores a whole page
# (~30 ms of CPU), and 2,000 of them in one minute back the event loop up for minutes.
_STARTUP_SPREAD = 60.0
_STARTUP_PER_WATCH = 0.1
_DELIVERY_EVERY = 5.0
_SHUTDOWN_GRACE = 20.0
# How long the daemon's start waits for its page-reading workers (see isolate.py).
_WORKERS_START = 30.0
_WATCHDOG_EVERY = 15.0
# The tick fires every second; this much silence means the scheduler stopped.
_STALL_AFTER = 120.0
# The operator hears of one watchdog event (per watch) at most this often.
_TELL_EVERY = 3600.0
# The watch id of alerts about the daemon itself: not a valid user watch id, so never taken.
DAEMON_WATCH = "_daemon"
# Checks start on a grid of whole seconds: the watches due within one tick run together,
# in one wake-up of the daemon, instead of each at its own instant. A check alone costs the
# process three to five times the CPU of one among many (cold caches, a wake-up per request:
# measured 1.8 ms against 0.5 ms per unchanged check), and a second is nothing against
# intervals of minutes.
TICK = 1.0


def first_run(
    watch: WatchConfig,
    last_check_at: str | None,
    now: datetime,
    next_run_at: str | None = None,
    spread: float = _STARTUP_SPREAD,
) -> datetime:
    """When a watch should first run after start: when it was due (persisted by its last
    check), or, when overdue or new, soon but spread out: nothing missed, no stampede."""
    spread = min(watch.interval, spread)
    due = due_at(watch, last_check_at, next_run_at)
    if due is not None and due > now:
        return due
    return now + timedelta(seconds=random.uniform(0, spread))


def due_at(
    watch: WatchConfig, last_check_at: str | None, next_run_at: str | None
) -> datetime | None:
    """When the watch is due by what its last check stored; None: never checked.

    The earlier of the stored due time and last check + the interval now configured: a
    stored time from a longer interval (shortened since) would otherwise be clamped to
    "now + interval" for every watch alike, and all of them would fire at that one instant
    (10,000 at once in bench/run.py's daemon phase)."""
    due = _parse(next_run_at)
    if last_check_at:
        by_interval = _parse(last_check_at) + timedelta(seconds=watch.interval)
        due = by_interval if due is None else min(due, by_interval)
    return due


def on_tick(moment: datetime) -> datetime:
    """`moment` rounded to the nearest tick (to the nearest, not up: no drift)."""
    return datetime.fromtimestamp(_tick_of(moment.timestamp()), UTC)


def _tick_of(timestamp: float) -> float:
    return round(timestamp / TICK) * TICK


def next_due(previous: float, interval: float, jitter: float, now: float) -> float:
    """When a watch last due at `previous` (a timestamp) is due again: one interval on,
    moved by up to ±`jitter`, on a tick, and after `now`.

    Centred jitter keeps the mean interval exact (APScheduler 3's own only ever adds, so a
    15-minute watch ran every 15 min 22 s on average, measured by bench/soak.py). A watch
    that fell behind (a stalled loop) runs once and keeps its rhythm from there, never
    several times in a row."""
    nominal = previous + interval
    if nominal <= now:
        nominal += ((now - nominal) // interval + 1) * interval
    return max(_tick_of(nominal + random.uniform(-jitter, jitter)), _tick_of(now) + TICK)


def _parse(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _machine() -> str | None:
    """This kernel and PID namespace, so a lease holder's pid is known to mean a process
    here (containers share a hostname and a kernel but not pids); None off Linux."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as boot:
            seed = boot.read().strip() + b":%d" % os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return hashlib.sha256(seed).hexdigest()[:8]


_MACHINE = _machine()


def _instance_name() -> str:
    """Names this daemon in leases and check runs: host:pid, and the machine it runs on."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}@{_MACHINE}" if _MACHINE else name


def _died_here(instance: str) -> bool:
    """Whether `instance` was a daemon on this machine whose process is gone."""
    name, _, machine = instance.rpartition("@")
    pid = name.rpartition(":")[2]
    if not _MACHINE or machine != _MACHINE or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


def jitter_for(watch: WatchConfig) -> float:
    # ±5 % of the interval, capped: enough to de-synchronise watches, not enough to drift.
    return min(watch.interval * 0.05, 120.0)


class _Entry:
    """A watch's place in the timetable. Moving or removing the watch leaves its old entry
    in the heap until it surfaces (cheaper than finding it); only the entry the timetable
    still maps the watch to is current."""

    __slots__ = ("watch",)

    def __init__(self, watch: WatchConfig) -> None:
        self.watch = watch


class Timetable:
    """When each watch is next due: a heap of (due timestamp, order, entry). Watches due at
    one instant come out in the order they were put in."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Entry]] = []
        self._entries: dict[str, _Entry] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, watch: WatchConfig, at: datetime) -> None:
        """Schedule `watch` (again) for the tick nearest `at`, replacing its due time."""
        self._push(watch, _tick_of(at.timestamp()))

    def move(self, watch_id: str, at: datetime) -> None:
        """A scheduled watch is next due at `at` instead; unknown ids are ignored."""
        entry = self._entries.get(watch_id)
        if entry is not None:
            self.put(entry.watch, at)

    def remove(self, watch_id: str) -> None:
        self._entries.pop(watch_id, None)

    def due(self, now: float) -> list[WatchConfig]:
        """The watches due at or before the timestamp `now`, each rescheduled by its own
        interval (see `next_due`)."""
        heap, found = self._heap, []
        while heap and heap[0][0] <= now:
            at, _, entry = heapq.heappop(heap)
            watch = entry.watch
            if self._entries.get(watch.id) is not entry:
                continue
            found.append(watch)
            self._push(watch, next_due(at, watch.interval, jitter_for(watch), now), entry)
        return found

    def _push(self, watch: WatchConfig, at: float, entry: _Entry | None = None) -> None:
        if entry is None:
            entry = self._entries[watch.id] = _Entry(watch)
        heapq.heappush(self._heap, (at, next(self._order), entry))


class Daemon:
    """The long-running process: scheduler, delivery, watchdog, web endpoints, signals."""

    def __init__(self, config: MonitorConfig, store: Store, serve_web: bool = True) -> None:
        """`config`: the file's watches with the web UI's merged in; the daemon adds the
        statement watches of discovering listings itself, as they are found."""
        self.store = store
        self._base = config
        self._statements: dict[str, StatementWatch] = {}
        self.config = self._with_statements(config)
        self.serve_web = serve_web
        self.stopping = asyncio.Event()
        # Running checks and when they started, for the watchdog.
        self._running: dict[asyncio.Task[object], tuple[str, float]] = {}
        self._last_fire = time.monotonic()
        self._stalled: str | None = None
        self._told: dict[tuple[str, str | None], float] = {}
        self._admission: dict[str, asyncio.Semaphore] = {}
        self._state_wanted: list[tuple[str, asyncio.Future[WatchState]]] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._timetable = Timetable()
        # Watches whose check was started and has not ended (queued for admission or
        # running), by watch id: one due again meanwhile is not started twice.
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._checker: Checker | None = None
        self._deliverer: Deliverer | None = None
        # Why the store could not be written when last looked at (None: it could).
        self._store_failure: str | None = None
        # Operator alerts that neither the outbox nor any channel took, to record once the
        # store can be written again.
        self._untold: list[tuple[WatchConfig, dict[str, object], list[str]]] = []
        self._sending: set[asyncio.Future[None]] = set()
        # Several daemons on one PostgreSQL archive claim each check (see store/schedule.py).
        self.shared = store.shared
        self.instance = _instance_name()

    async def run(self, until: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        fetch = self.config.fetch
        work = WorkerPool(fetch.worker_count, fetch.worker_timeout, fetch.worker_memory)
        # The workers start while the rest starts up (their own processes): the first
        # checks then read their pages at once instead of waiting for them.
        workers_started = asyncio.ensure_future(asyncio.to_thread(work.start))
        async with (
            Fetcher(self.config.fetch) as fetcher,
            BrowserEngine(self.config.fetch) as browser,
        ):
            self._checker = Checker(
                self.config,
                self.store,
                fetcher,
                browser,
                instance=self.instance if self.shared else None,
                work=work,
            )
            self._deliverer = Deliverer.from_config(self.store, self.config)
            try:
                await asyncio.wait_for(asyncio.shield(workers_started), _WORKERS_START)
            except Exception as err:  # checks start anyway; a worker starts when needed
                logger.error("page-reading workers not started: %s: %s", type(err).__name__, err)
            self._start_scheduler()
            background = [asyncio.ensure_future(self._watchdog())]
            if self.shared:
                background.append(asyncio.ensure_future(self._keep_leases()))
            if self.serve_web:
                background.append(asyncio.ensure_future(self._serve_web()))
            if self.config.archive.tsa_url:  # trusted timestamps, in batches (stamper.py)
                from monitor.stamper import Stamper

                background.append(
                    asyncio.ensure_future(Stamper(self.store, self.config.archive).run())
                )
            # Independent copies (save_to, wayback.py): its own loop, never in a check's way.
            background.append(
                asyncio.ensure_future(Submitter(self.store, lambda: self.config).run())
            )
            logger.info(
                "watching %d pages; data in %s%s",
                len(self.config.watch),
                self.store.location,
                f"; shared as instance {self.instance}" if self.shared else "",
            )
            waiters = [asyncio.ensure_future(self.stopping.wait())]
            if until is not None:
                waiters.append(asyncio.ensure_future(until.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in waiters + background:
                task.cancel()
            logger.info("stopping: waiting up to %.0fs for running checks", _SHUTDOWN_GRACE)
            # Pause first: shutting APScheduler's asyncio executor down cancels the checks
            # it runs at once (seen in the soak bench), and they deserve their grace.
            if self._scheduler is not None:
                self._scheduler.pause()
            if self._running:
                _done, pending = await asyncio.wait(self._running, timeout=_SHUTDOWN_GRACE)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=1)
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
            work.close()
            await self._deliver()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    # --- scheduling ------------------------------------------------------------------------

    def _start_scheduler(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        self._timetable = Timetable()
        # One query for every watch's state: one each cost seconds at 10,000 watches.
        stored = self.store.states()
        states = {w.id: stored.get(w.id) or WatchState(w.id) for w in self.config.watch}
        overdue = 0
        for watch in self.config.watch:
            due = due_at(watch, states[watch.id].last_check_at, states[watch.id].next_run_at)
            overdue += due is None or due <= now
        spread = max(_STARTUP_SPREAD, overdue * _STARTUP_PER_WATCH)
        for watch in self.config.watch:
            self._schedule(watch, now, states[watch.id], spread)
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=TICK, start_date=on_tick(now)),
            id="__tick__",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.add_job(
            self._deliver,
            IntervalTrigger(seconds=_DELIVERY_EVERY),
            id="__delivery__",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self._scheduler = scheduler
        # The watches due already start now, not at the first tick (up to a second away).
        self._start_due()
        metrics.WATCHES.set(len(self.config.watch))

    def _schedule(
        self,
        watch: WatchConfig,
        now: datetime,
        state: WatchState | None = None,
        spread: float = _STARTUP_SPREAD,
    ) -> None:
        """Put `watch` in the timetable where its stored rhythm says (see `first_run`)."""
        state = state or self.store.state(watch.id)
        start = first_run(watch, state.last_check_at, now, state.next_run_at, spread)
        self._timetable.put(watch, start)

    async def _tick(self) -> None:
        self._start_due()
        self._watch_store()

    def _watch_store(self) -> None:
        """A store that cannot be written (full disk, read-only data directory, lost
        server) fails `/healthz` at once (see `health`); here the operator hears of it once,
        and the log says it whatever else fails."""
        failure = self.store.write_failure
        if failure == self._store_failure:
            return
        if failure is None:
            logger.warning("the store can be written again")
            self._record_untold()
        elif self._store_failure is None:
            logger.error("the store cannot be written: %s", failure)
            self._tell_operator("store", None, f"the store cannot be written: {failure}")
        self._store_failure = failure

    def _start_due(self) -> None:
        """Start the check of every watch due by now (one wake-up for all of them)."""
        self._last_fire = time.monotonic()
        # This tick's own time, not the clock's: the loop may wake a hair before the whole
        # second, and the watches due on it would otherwise wait for the next tick.
        for watch in self._timetable.due(_tick_of(time.time())):
            if watch.id in self._in_flight:
                # Its previous check still runs (a slow site): this slot is skipped.
                logger.info("%s: still checking since its last slot; skipped", watch.id)
                continue
            self._in_flight[watch.id] = asyncio.ensure_future(self._guarded(watch))

    async def _guarded(self, watch: WatchConfig) -> None:
        try:
            async with self._admit(watch):
                if self.stopping.is_set():
                    return  # queued when the daemon began to stop: it runs when due again
                await self._run_check(watch)
        except asyncio.CancelledError:
            pass  # cancelled while queued, at shutdown: nothing started, nothing to report
        finally:
            self._in_flight.pop(watch.id, None)

    def _admit(self, watch: WatchConfig) -> asyncio.Semaphore:
        """The admission of the watch's host (see `check.admitted_per_host`)."""
        host = split_url(watch.url).netloc
        admission = self._admission.get(host)
        if admission is None:
            limit = admitted_per_host(self.config)
            admission = self._admission[host] = asyncio.Semaphore(limit)
        return admission

    async def _run_check(self, watch: WatchConfig) -> None:
        # A bug in one check must never stop the scheduler or other watches.
        task = asyncio.current_task()
        if task is not None:
            self._running[task] = (watch.id, time.monotonic())
        claimed = False
        try:
            assert self._checker is not None
            if self.shared:
                claimed = self._claim(watch)
                if not claimed:
                    return
            outcome = await self._checker.check(watch, await self._state_of(watch.id))
            self._follow_up(watch, outcome)
            if outcome.alerts:
                await self._deliver()
        except asyncio.CancelledError:
            logger.error("%s: check cancelled (hung past its deadline or shutdown)", watch.id)
        except Exception:
            logger.exception("%s: check crashed", watch.id)
        finally:
            if task is not None:
                self._running.pop(task, None)
            if claimed:
                with contextlib.suppress(Exception):
                    self.store.release_lease(watch.id, self.instance)

    def _state_of(self, watch_id: str) -> asyncio.Future[WatchState]:
        """The watch's stored state, read together with those of every check starting in
        the same turn of the event loop: the watches due in one tick are one query, not
        one each (a query per check was a tenth of a daemon's CPU at 10,000 watches)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WatchState] = loop.create_future()
        if not self._state_wanted:
            # Runs after the steps already queued: the other checks this tick started.
            loop.call_soon(self._read_states)
        self._state_wanted.append((watch_id, future))
        return future

    def _read_states(self) -> None:
        wanted, self._state_wanted = self._state_wanted, []
        try:
            states = self.store.states({watch_id for watch_id, _ in wanted})
        except Exception as err:  # each check fails on its own, as its own read would
            for _, future in wanted:
                if not future.done():
                    future.set_exception(err)
            return
        # Each watch is asked for once: `_tick` never starts a watch's check while its
        # previous one is in flight, so no two checks share a state object.
        for watch_id, future in wanted:
            if not future.done():  # done: cancelled while waiting, at shutdown
                future.set_result(states.get(watch_id) or WatchState(watch_id))

    def _claim(self, watch: WatchConfig) -> bool:
        """Whether this daemon runs this slot of the watch; if not, look again when due."""
        now = datetime.now(UTC)
        # A job fires up to its jitter early; "due" allows for that, and no more, so a
        # slot another daemon has just checked is not checked again.
        early, lease = jitter_for(watch) + 1, self.config.store.lease
        claim = self.store.claim_check(watch.id, self.instance, now, early, lease)
        if claim.holder is not None and _died_here(claim.holder):
            # Its holder was killed on this very machine (a restart after a crash, or a
            # sibling daemon): no need to wait for its lease to lapse.
            logger.info("%s: taking over from %s, which died mid-check", watch.id, claim.holder)
            self.store.release_lease(watch.id, claim.holder)
            claim = self.store.claim_check(watch.id, self.instance, now, early, lease)
        if claim.ok:
            return True
        if claim.retry_at is not None:
            # Stand by just after the slot's holder should be done: if it died, take over.
            grace = min(watch.interval * 0.1, 30.0) + random.uniform(0, 2)
            retry = max(claim.retry_at, now) + timedelta(seconds=grace)
            retry = min(retry, now + timedelta(seconds=watch.interval))
            self._timetable.move(watch.id, retry)
        return False

    async def _keep_leases(self) -> None:
        """Renew the leases of running checks, so only a dead daemon's lapse."""
        lease = self.config.store.lease
        while True:
            await asyncio.sleep(lease / 3)
            running = [watch_id for watch_id, _ in self._running.values()]
            try:
                until = datetime.now(UTC) + timedelta(seconds=lease)
                self.store.renew_leases(self.instance, running, until)
                self._adopt_discovered()
            except Exception:
                logger.exception("renewing leases failed")

    # --- discovered statement watches ------------------------------------------------------

    def _follow_up(self, watch: WatchConfig, outcome: CheckOutcome) -> None:
        """After a check: schedule statement watches a listing found or woke, and move a
        statement watch to its next age step."""
        if outcome.discovered:
            self._adopt_discovered()
        now = datetime.now(UTC)
        for watch_id in outcome.due:
            self._timetable.move(watch_id, now)
        if outcome.recheck_in is not None:
            # Changes wait for their confirming look; the watch's rhythm resumes after it.
            self._timetable.move(watch.id, now + timedelta(seconds=outcome.recheck_in))
        statement = self._statements.get(watch.id)
        interval = statement.interval(now) if statement else watch.interval
        if interval != watch.interval:
            logger.info(
                "%s: checked every %.0fs from now on (was %.0fs)",
                watch.id,
                interval,
                watch.interval,
            )
            fresh = watch.model_copy(update={"interval": interval})
            self._replace_watch(fresh)
            self._schedule(fresh, now)

    def _replace_watch(self, watch: WatchConfig) -> None:
        watches = [watch if w.id == watch.id else w for w in self.config.watch]
        self.config = self.config.model_copy(update={"watch": watches})

    def _with_statements(self, base: MonitorConfig) -> MonitorConfig:
        """`base` (the file's and the UI's watches) plus every discovered statement's."""
        found = statement_watches(base, self.store)
        self._statements = {item.watch.id: item for item in found}
        watches = [*base.watch, *(item.watch for item in found)]
        return base.model_copy(update={"watch": watches})

    def _adopt_discovered(self) -> None:
        """Schedule statement watches found since (by this daemon or another)."""
        if self._scheduler is None:
            return
        fresh = statement_watches(self._base, self.store, exclude=self._statements.keys())
        if not fresh:
            return
        now = datetime.now(UTC)
        self._statements.update((item.watch.id, item) for item in fresh)
        watches = [*self.config.watch, *(item.watch for item in fresh)]
        self.config = self.config.model_copy(update={"watch": watches})
        for item in fresh:
            self._schedule(item.watch, now)
        if self._deliverer is not None:  # their quiet hours, digest, mute apply at once
            self._deliverer.watches.update((item.watch.id, item.watch) for item in fresh)
        metrics.WATCHES.set(len(self.config.watch))
        logger.info("scheduled %d new statement watches", len(fresh))

    async def _deliver(self) -> None:
        self._last_fire = time.monotonic()
        try:
            if self._deliverer is not None:
                await self._deliverer.deliver_due()
            metrics.OUTBOX.set(self.store.delivery_count("pending"))
        except Exception:
            logger.exception("alert delivery crashed")

    # --- watchdog --------------------------------------------------------------------------

    def _check_deadline(self) -> float:
        fetch, alerts = self.config.fetch, self.config.alerts
        # Every request of a check (profile alternatives, retries, confirmation) may take
        # the full timeout; beyond a generous multiple of that, the check is hung.
        return 4 * fetch.timeout * (fetch.retries + 1) + alerts.confirm_delay + 60

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(_WATCHDOG_EVERY)
            now = time.monotonic()
            for task, (watch_id, started) in list(self._running.items()):
                if now - started > self._check_deadline():
                    message = f"check of {watch_id} hung for {now - started:.0f}s; cancelled"
                    logger.error("watchdog: %s", message)
                    metrics.STALLS.labels("hung_check").inc()
                    task.cancel()
                    self._tell_operator("hung_check", watch_id, message)
            # The tick fires every second, so silence means a stopped scheduler.
            silent = now - self._last_fire
            if silent > _STALL_AFTER:
                self._stalled = f"scheduler silent for {silent:.0f}s; restarted"
                logger.error("watchdog: %s", self._stalled)
                metrics.STALLS.labels("scheduler").inc()
                self._tell_operator("scheduler", None, self._stalled)
                if self._scheduler is not None:
                    self._scheduler.shutdown(wait=False)
                self._start_scheduler()
            elif self._stalled and silent < _DELIVERY_EVERY * 3:
                self._stalled = None

    def _tell_operator(self, event: str, watch_id: str | None, message: str) -> None:
        """An alert about monitor itself, at most once an hour per event and watch."""
        key = (event, watch_id)
        if time.monotonic() < self._told.get(key, 0.0):
            return
        self._told[key] = time.monotonic() + _TELL_EVERY
        watch = next((w for w in self.config.watch if w.id == watch_id), None)
        if watch is None:
            # The daemon as a whole: its own row, so the alert has a watch like any other.
            watch = WatchConfig.model_construct(
                id=DAEMON_WATCH, url="http://localhost/", name="monitor daemon"
            )
        payload = build_alert(
            "watchdog",
            watch,
            key=None,
            title=None,
            url=None,
            language=None,
            observed_at=now_iso(),
            summary=f"watchdog on {self.instance}: {message}",
        )
        channels = self.config.alerts.operator_channels or list(self.config.channels)
        try:
            self._record_operator_alert(watch, payload, channels)
        except Exception as err:
            # The outbox cannot take it (the store cannot be written): straight to the
            # channels, once; what none of them takes waits for the store to recover.
            logger.error("watchdog: could not record the operator alert: %s", err)
            sending = asyncio.ensure_future(self._send_directly(watch, payload, channels))
            self._sending.add(sending)
            sending.add_done_callback(self._sending.discard)

    def _record_operator_alert(
        self, watch: WatchConfig, payload: dict[str, object], channels: list[str]
    ) -> None:
        if watch.id == DAEMON_WATCH:
            self.store.sync_watch(DAEMON_WATCH, watch.url, "daemon")
        self.store.record_alert(watch.id, payload, channels)

    async def _send_directly(
        self, watch: WatchConfig, payload: dict[str, object], channels: list[str]
    ) -> None:
        from monitor.channels import Channel

        sent = False
        for name in channels:
            config = self.config.channels.get(name)
            if config is None:
                continue
            try:
                await Channel.create(name, config).send(dict(payload))
                sent = True
            except Exception as err:
                logger.error("operator alert not sent through %s: %s", name, err)
        if not sent:
            self._untold.append((watch, payload, channels))

    def _record_untold(self) -> None:
        """Operator alerts no channel took while the store could not be written."""
        while self._untold:
            watch, payload, channels = self._untold[0]
            try:
                self._record_operator_alert(watch, payload, channels)
            except Exception:
                return
            self._untold.pop(0)

    def health(self) -> dict[str, object]:
        silent = time.monotonic() - self._last_fire
        store_failure = self.store.write_failure
        return {
            "ok": silent < _STALL_AFTER and store_failure is None,
            "store_writable": store_failure is None,
            "store_error": store_failure,
            "watches": len(self.config.watch),
            "running_checks": len(self._running),
            "seconds_since_scheduler_fired": round(silent, 1),
            "last_stall": self._stalled,
            "instance": self.instance if self.shared else None,
        }

    async def _serve_web(self) -> None:
        host, port = self.config.server.host_port
        server = _EmbeddedServer(
            uvicorn.Config(
                create_app(self.health, self.store, lambda: self.config, self.reload),
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                **UVICORN_OPTIONS,
            )
        )
        try:
            await server.serve()
        except (OSError, SystemExit) as err:
            # A busy port must not stop the checks; the operator sees why in the log.
            logger.error("web server on %s:%s not started: %s", host, port, err)

    # --- reload ----------------------------------------------------------------------------

    async def reload(self) -> None:
        """SIGHUP: re-read the config; apply watch and channel changes, keep running on error."""
        source = self.config.source
        try:
            # Watches added or edited in the web UI (the store's ui_watch) go over the file's.
            base = apply_ui_watches(
                load_config(source or "", known_profiles=profile_names()), self.store
            )
        except ConfigError as err:
            logger.error("reload failed, keeping the running configuration: %s", err)
            return
        if base.fetch != self.config.fetch or base.store != self.config.store:
            logger.warning("reload: [fetch] and [store] changes take effect after a restart")
        self._base = base.model_copy(
            update={"fetch": self.config.fetch, "store": self.config.store}
        )
        new = self._with_statements(self._base)
        old = {w.id: w for w in self.config.watch}
        fresh = {w.id: w for w in new.watch}
        added = sorted(fresh.keys() - old.keys())
        removed = sorted(old.keys() - fresh.keys())
        changed = sorted(k for k in fresh.keys() & old.keys() if fresh[k] != old[k])
        self.config = new
        assert self._checker is not None
        self._checker.reconfigure(self.config, changed + removed)
        self._deliverer = Deliverer.from_config(self.store, self.config)
        now = datetime.now(UTC)
        for watch_id in removed:
            self._timetable.remove(watch_id)
        for watch_id in added + changed:
            self._schedule(fresh[watch_id], now)
        metrics.WATCHES.set(len(self.config.watch))
        logger.info(
            "reloaded %s: %d added %s, %d removed %s, %d changed %s",
            source,
            len(added),
            added,
            len(removed),
            removed,
            len(changed),
            changed,
        )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our event loop: the daemon owns the signals, not uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass
