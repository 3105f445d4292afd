"""Scheduler stage: when each watch is checked, and the daemon's loop.

Each watch's next due time sits in a `Timetable` (a heap), read once a second by one
APScheduler 3.x `AsyncIOScheduler` job, the tick; the outbox is delivered by another. When a
watch is due is cadence.py's arithmetic (interval, centred jitter, whole-second ticks, the
spread of first runs after a start). SIGTERM/SIGINT stop the scheduler, let running checks
finish within a bound, and close the client and the store.

Its neighbours do the rest: wiring.py builds the watches and the checking parts, the
watchdog (watchdog.py) looks after hung checks and a silent scheduler, leases.py claims
checks when several daemons share an archive, reload.py re-reads the config on SIGHUP,
webserver.py serves the UI on a thread of its own (never on the checks' loop).

Why not one APScheduler job per watch, as before: APScheduler's dispatch of a job (its
job store's list kept sorted, an executor submission, events, a task wrapper) cost more
CPU than our own work on an unchanged check, and adding 10,000 jobs (each callable
inspected) took seconds of start-up. APScheduler keeps the two jobs it does well, the tick
and delivery (`_start_jobs`: one run at a time, a late run coalesced); it is imported
there, so `monitor check` never loads it, and a daemon's start only once its first checks
have started (a tick after the start; importing it costs a tenth of a second of CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import shlex
import signal
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from monitor import metrics
from monitor.alerts import Deliverer
from monitor.cadence import (
    STARTUP_SPREAD,
    TICK,
    due_timestamp,
    first_run,
    jitter_for,
    next_due,
    on_tick,
    startup_spread,
    tick_of,
)
from monitor.check import Checker, CheckOutcome, admitted_per_host, tell_robots_ignored
from monitor.collector import collector_paused
from monitor.config import ConfigError, MonitorConfig, WatchConfig
from monitor.fetch import split_url
from monitor.leases import Leases, instance_name
from monitor.store import Store, WatchState
from monitor.watchdog import Watchdog, WatchdogTimes
from monitor.wiring import Runtime, build

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.webserver import ThreadedServer

__all__ = [
    "TICK",
    "Daemon",
    "Timetable",
    "first_run",
    "jitter_for",
    "next_due",
    "on_tick",
]

logger = logging.getLogger("monitor.scheduler")

DELIVERY_EVERY = 5.0
# Watches registered at a time after the start (a turn of the event loop each).
REGISTER_SLICE = 1000
# How long running checks may finish after SIGTERM.
SHUTDOWN_GRACE = 20.0


# A watch's place in the timetable: (due timestamp, order, watch). Moving or removing the
# watch leaves its old entry in the heap until it surfaces (cheaper than finding it); only
# the entry the timetable still maps the watch's id to is current.
_Entry = tuple[float, int, WatchConfig]


class Timetable:
    """When each watch is next due: a heap of (due timestamp, order, watch). Watches due at
    one instant come out in the order they were put in."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._entries: dict[str, _Entry] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, watch: WatchConfig, at: datetime) -> None:
        """Schedule `watch` (again) for the tick nearest `at`, replacing its due time."""
        self._push(watch, tick_of(at.timestamp()))

    def move(self, watch_id: str, at: datetime) -> None:
        """A scheduled watch is next due at `at` instead; unknown ids are ignored."""
        entry = self._entries.get(watch_id)
        if entry is not None:
            self.put(entry[2], at)

    def remove(self, watch_id: str) -> None:
        self._entries.pop(watch_id, None)

    def load(self, firsts: Iterable[tuple[WatchConfig, float]]) -> None:
        """The timetable of these (watch, timestamp) pairs, each on its tick, in place of
        what it held: one heapify rather than a push per watch, and no object of its own
        per watch but its entry (a daemon's start with 100,000)."""
        order = self._order
        heap = [(tick_of(at), next(order), watch) for watch, at in firsts]
        self._entries = dict(zip(map(_id_of, map(_watch_of, heap)), heap, strict=True))
        heapq.heapify(heap)
        self._heap = heap

    def due(self, now: float) -> list[WatchConfig]:
        """The watches due at or before the timestamp `now`, each rescheduled by its own
        interval (see `next_due`)."""
        heap, found = self._heap, []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            at, _, watch = entry
            if self._entries.get(watch.id) is not entry:
                continue
            found.append(watch)
            self._push(watch, next_due(at, watch.interval, jitter_for(watch), now))
        return found

    def span(self) -> tuple[float | None, float | None]:
        """The timestamps of the first and the last due time in the timetable."""
        heap = self._heap
        if len(heap) == len(self._entries):  # no entry left behind by a move: all current
            return (heap[0][0], max(map(itemgetter(0), heap))) if heap else (None, None)
        current = [entry[0] for entry in heap if self._entries.get(entry[2].id) is entry]
        return (min(current), max(current)) if current else (None, None)

    def _push(self, watch: WatchConfig, at: float) -> None:
        entry = self._entries[watch.id] = (at, next(self._order), watch)
        heapq.heappush(self._heap, entry)


_id_of, _watch_of = attrgetter("id"), itemgetter(2)


class Daemon:
    """The long-running process: the timetable and its loop, with delivery, the watchdog,
    leases, the web endpoints and signals beside it."""

    def __init__(
        self,
        config: MonitorConfig,
        store: Store,
        serve_web: bool = True,
        *,
        watchdog: WatchdogTimes | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE,
    ) -> None:
        """`config`: as loaded from the file (the store's and the discovered watches are
        merged in by `wiring.build`); `watchdog` and `shutdown_grace`: how patient it is."""
        self.store = store
        self.runtime: Runtime = build(config, store)
        self.serve_web = serve_web
        self.shutdown_grace = shutdown_grace
        self.stopping = asyncio.Event()
        self._admission: dict[str, asyncio.Semaphore] = {}
        self._state_wanted: list[tuple[str, asyncio.Future[WatchState]]] = []
        # APScheduler, running the tick and delivery (see `_start_jobs`).
        self._scheduler: AsyncIOScheduler | None = None
        # From the timetable's start to the scheduler's stop (its jobs start a little later).
        self._scheduling = False
        self._timetable = Timetable()
        # Watches whose check was started and has not ended (queued for admission or
        # running), by watch id: one due again meanwhile is not started twice.
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._checker: Checker | None = None
        self._deliverer: Deliverer | None = None
        self._web: ThreadedServer | None = None
        # Several daemons on one PostgreSQL archive claim each check (see store/schedule.py).
        self.shared = store.shared
        self.instance = instance_name()
        self.leases = Leases(store, self.instance, self.config.store.lease)
        self.watchdog = Watchdog(store, lambda: self.config, self.instance, watchdog)

    @property
    def config(self) -> MonitorConfig:
        """The running configuration, with every watch in force."""
        return self.runtime.config

    async def run(self, until: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        instance = self.instance if self.shared else None
        # The watches are registered by the daemon itself: those due first before their
        # checks, the rest in slices once the checks have started (`_register_all`).
        tell_robots_ignored(self.config.watch)
        async with self.runtime.checking(instance, start_workers=True, register=False) as checker:
            self._checker = checker
            self._deliverer = self.runtime.deliverer()
            # The timetable is made while the page-reading workers start (see wiring.py);
            # the first checks wait for them, so that a page fetched is read at once: a
            # daemon killed a moment after its first request has archived what it fetched.
            timetable = self._first_runs(time.time())
            await self.runtime.workers_started()
            # The jobs start once the first checks have (`_register_all`).
            self._start_scheduler(jobs=False, timetable=timetable)
            background = self._background()
            logger.info(
                "watching %d pages; %s; data in %s%s",
                len(self.config.watch),
                self._when_due(),
                self.store.location,
                f"; shared as instance {self.instance}" if self.shared else "",
            )
            await self._until_stopped(until)
            for task in background:
                task.cancel()
            await self._stop()
            if self._web is not None:
                await asyncio.to_thread(self._web.stop)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    def _background(self) -> list[asyncio.Future[None]]:
        """What runs beside the scheduler: the watchdog, leases, the web UI, timestamps."""
        tasks: list[asyncio.Future[None]] = [
            asyncio.ensure_future(self.watchdog.run(self._restart_scheduler)),
            asyncio.ensure_future(self._register_all()),
        ]
        if self.shared:
            running = self.watchdog.running.values
            keeping = self.leases.keep(lambda: [w for w, _ in running()], self._adopt_discovered)
            tasks.append(asyncio.ensure_future(keeping))
        if self.serve_web:
            self._web = self._web_server()
            self._web.start()
            tasks.append(asyncio.ensure_future(self._say_where_served(self._web)))
            if not self.store.users():
                source = shlex.quote(str(self.runtime.file.source or "config/monitor.toml"))
                logger.warning(
                    "no web UI user yet; add one (the password is read from standard "
                    "input): monitor --config %s user add admin --role admin",
                    source,
                )
        else:
            logger.info("web UI off (--no-web)")
        stamper = self.runtime.stamper()
        if stamper is not None:  # trusted timestamps, in batches (stamper.py)
            tasks.append(asyncio.ensure_future(stamper.run()))
        # Independent copies (save_to, wayback.py): its own loop, never in a check's way.
        tasks.append(asyncio.ensure_future(self.runtime.submitter().run()))
        return tasks

    async def _register_all(self) -> None:
        """Once the first checks have started: APScheduler's jobs (the tick and delivery,
        see `_start_jobs`), then every watch not registered yet, a slice per turn of the
        event loop. Before them, registering 100,000 watches (their readings, their rows in
        the store) put seconds between a start and its first request, and importing
        APScheduler a tenth of a second (it looks for plugins in every installed package).
        A watch due meanwhile is registered before its check (`_start_due`)."""
        await asyncio.sleep(TICK)  # the first checks' requests go out first
        if self._scheduler is None and not self.stopping.is_set():
            self._start_jobs()
            self._start_due()  # those due since the start, before the tick's first run
        watches: list[WatchConfig] = []
        start = 0
        while True:
            await asyncio.sleep(0)
            checker = self._checker
            if checker is None:
                return
            if self.config.watch is not watches:  # reloaded, adopted: the new list, anew
                watches, start = self.config.watch, 0
            if start >= len(watches):
                return
            self._register_new(watches[start : start + REGISTER_SLICE])
            start += REGISTER_SLICE

    def _register_new(self, watches: list[WatchConfig]) -> None:
        """Register those of `watches` not registered yet, in one transaction. A failure is
        logged: each check registers its watch again before it runs, or fails alone."""
        checker = self._checker
        if checker is None:
            return
        fresh = [watch for watch in watches if not checker.registered(watch.id)]
        if fresh:
            try:
                checker.register(fresh, tell=False)
            except Exception:
                logger.exception("registering %d watches failed", len(fresh))

    def _web_server(self) -> ThreadedServer:
        """The web UI on a thread of its own, with its own connection to the archive (see
        webserver.py): a heavy page never delays a check. Imported here: without its UI
        (`--no-web`) a daemon never loads the web server's modules."""
        from monitor.webserver import ThreadedServer, on_loop

        host, port = self.config.server.host_port
        loop = asyncio.get_running_loop()
        opened: list[Store] = []

        def make_app() -> object:
            store = Store.from_config(self.config.store)
            opened.append(store)
            return self.runtime.web_app(self.health, on_loop(loop, self.reload), store=store)

        def close() -> None:
            for store in opened:
                store.close()

        return ThreadedServer(make_app, host, port, close)

    async def _say_where_served(self, web: ThreadedServer) -> None:
        await asyncio.to_thread(web.started)
        if web.listening:
            logger.info("web UI on http://%s/", _address(web.host, web.port))

    def _when_due(self) -> str:
        """When the first watch is due, and when every watch will have been looked at once
        (a restart spreads the overdue ones out)."""
        first, last = self._timetable.span()
        if first is None or last is None:
            return "nothing due"
        now = time.time()
        return f"first results due in {_in(first - now)}, all within {_in(last - now)}"

    async def _until_stopped(self, until: asyncio.Event | None) -> None:
        waiters = [asyncio.ensure_future(self.stopping.wait())]
        if until is not None:
            waiters.append(asyncio.ensure_future(until.wait()))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()

    async def _stop(self) -> None:
        logger.info("stopping: waiting up to %.0fs for running checks", self.shutdown_grace)
        # Set here too when the stop came from `until`: a check still queued for its host's
        # admission must see it and not start on a fetcher about to close.
        self.stopping.set()
        # No new tick or delivery; one running ends on its own, checks get their grace.
        self._pause_scheduler()
        running = self.watchdog.running
        if running:
            _done, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        queued = [task for task in self._in_flight.values() if not task.done()]
        for task in queued:
            task.cancel()  # nothing started: each runs when due after the next start
        if queued:
            await asyncio.wait(queued, timeout=1)
        self._stop_scheduler()
        await self._deliver()

    # --- scheduling ------------------------------------------------------------------------

    def _start_scheduler(self, jobs: bool = True, timetable: Timetable | None = None) -> None:
        """The timetable from the stored rhythm (unless given, made by `_first_runs`), the
        watches due now started, and (unless not `jobs`) the tick and delivery."""
        self._timetable = self._first_runs(time.time()) if timetable is None else timetable
        self._scheduling = True
        # The watches due already start now, not at the first tick (up to a second away).
        self._start_due()
        metrics.WATCHES.set(len(self.config.watch))
        if jobs:
            self._start_jobs()

    def _start_jobs(self) -> None:
        """The tick on whole seconds (see cadence.TICK), delivery at once and then every
        5 s: two APScheduler jobs, each run one at a time, a late run coalesced into one and
        never counted as missed (`misfire_grace_time=None`)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        if self.stopping.is_set() or self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
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
            IntervalTrigger(seconds=DELIVERY_EVERY),
            id="__delivery__",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler

    def _pause_scheduler(self) -> None:
        """No new tick or delivery; a running one ends on its own. (Shutting APScheduler's
        asyncio executor down cancels what it runs at once: paused first, shut after.)"""
        if self._scheduler is not None:
            self._scheduler.pause()

    def _stop_scheduler(self) -> None:
        self._scheduling = False
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def _first_runs(self, now: float) -> Timetable:
        """The timetable of every watch's first run from `now` (see `cadence.first_run`).
        One query for every watch's rhythm (one each cost seconds at 10,000 watches), in
        timestamps, and without the garbage collector, whose passes over the 300,000
        objects made here (none of them garbage) cost 40 % of this at 100,000 watches."""
        with collector_paused():
            stored = self.store.rhythms()
            watches = self.config.watch
            never = ("", None, None)
            dues: list[float] = []  # when each watch is due; 0: overdue or new
            for watch in watches:
                _, last, next_run = stored.get(watch.id, never)
                due = due_timestamp(watch.interval, last, next_run)
                dues.append(due if due is not None and due > now else 0.0)
            del stored  # 100,000 rows: not kept past this (the daemon's peak memory)
            # The overdue and new ones soon, at random over the spread (`first_run_at`).
            spread = startup_spread(dues.count(0.0))
            rand = random.random
            dues = [
                due or now + rand() * min(watch.interval, spread)
                for watch, due in zip(watches, dues, strict=True)
            ]
            timetable = Timetable()
            timetable.load(zip(watches, dues, strict=True))
        return timetable

    def _restart_scheduler(self) -> None:
        """The watchdog found the tick silent: a new scheduler, from the stored rhythm."""
        self._stop_scheduler()
        self._start_scheduler()

    def _schedule(
        self,
        watch: WatchConfig,
        now: datetime,
        state: WatchState | None = None,
        spread: float = STARTUP_SPREAD,
    ) -> None:
        """Put `watch` in the timetable where its stored rhythm says (see `first_run`)."""
        state = state or self.store.state(watch.id)
        start = first_run(watch, state.last_check_at, now, state.next_run_at, spread)
        self._timetable.put(watch, start)

    async def _tick(self) -> None:
        self._start_due()
        self.watchdog.watch_store()

    def _start_due(self) -> None:
        """Start the check of every watch due by now (one wake-up for all of them)."""
        self.watchdog.beat()
        # This tick's own time, not the clock's: the loop may wake a hair before the whole
        # second, and the watches due on it would otherwise wait for the next tick.
        due = self._timetable.due(tick_of(time.time()))
        self._register_new(due)  # those not registered yet: together, before their checks
        for watch in due:
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
            self.watchdog.running[task] = (watch.id, time.monotonic())
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
                self.watchdog.running.pop(task, None)
            if claimed:
                with contextlib.suppress(Exception):
                    self.leases.release(watch.id)

    def _claim(self, watch: WatchConfig) -> bool:
        """Whether this daemon runs this slot of the watch; if not, look again when due."""
        ours, retry = self.leases.claim(watch, datetime.now(UTC))
        if retry is not None:
            self._timetable.move(watch.id, retry)
        return ours

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
        statement = self.runtime.watches.statements.get(watch.id)
        interval = statement.interval(now) if statement else watch.interval
        if interval != watch.interval:
            logger.info(
                "%s: checked every %.0fs from now on (was %.0fs)",
                watch.id,
                interval,
                watch.interval,
            )
            fresh = watch.model_copy(update={"interval": interval})
            self.runtime.replace(fresh)
            self._schedule(fresh, now)

    def _adopt_discovered(self) -> None:
        """Schedule statement watches found since (by this daemon or another)."""
        if not self._scheduling:
            return
        fresh = self.runtime.adopt()
        if not fresh:
            return
        now = datetime.now(UTC)
        for item in fresh:
            self._schedule(item.watch, now)
        if self._deliverer is not None:  # their quiet hours, digest, mute apply at once
            self._deliverer.watches.update((item.watch.id, item.watch) for item in fresh)
        metrics.WATCHES.set(len(self.config.watch))
        logger.info("scheduled %d new statement watches", len(fresh))

    async def _deliver(self) -> None:
        self.watchdog.beat()
        try:
            if self._deliverer is not None:
                await self._deliverer.deliver_due()
            metrics.OUTBOX.set(self.store.delivery_count("pending"))
        except Exception:
            logger.exception("alert delivery crashed")

    def health(self) -> dict[str, object]:
        return self.watchdog.health()

    # --- reload ----------------------------------------------------------------------------

    async def reload(self) -> None:
        """SIGHUP: re-read the config; apply watch and channel changes, keep running on error."""
        try:
            changes = self.runtime.reload()
        except ConfigError as err:
            logger.error("reload failed, keeping the running configuration: %s", err)
            return
        assert self._checker is not None
        self._checker.reconfigure(self.config, changes.changed + changes.removed)
        self._deliverer = self.runtime.deliverer()
        now = datetime.now(UTC)
        for watch_id in changes.removed:
            self._timetable.remove(watch_id)
        fresh = {w.id: w for w in self.config.watch}
        for watch_id in changes.added + changes.changed:
            self._schedule(fresh[watch_id], now)
        metrics.WATCHES.set(len(self.config.watch))
        logger.info(
            "reloaded %s: %d added %s, %d removed %s, %d changed %s",
            self.runtime.file.source,
            len(changes.added),
            changes.added,
            len(changes.removed),
            changes.removed,
            len(changes.changed),
            changes.changed,
        )


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _in(seconds: float) -> str:
    """A wait, told as people say it: 'under a second', '40 s', '12 min', '2 h 5 min'."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
