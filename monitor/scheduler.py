"""Scheduler stage: when each watch is checked, and running the daemon.

APScheduler 3.x `AsyncIOScheduler`, one interval job per watch with jitter. After a
(re)start each watch's first run is placed where its own rhythm says (last check +
interval) or, when overdue or new, spread at random over a short window, so a restart
never fires every watch at once. SIGTERM/SIGINT stop the scheduler, let running checks
finish within a bound, and close the client and the store.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.alerts import Deliverer
from monitor.browser import BrowserEngine
from monitor.check import Checker
from monitor.config import MonitorConfig, WatchConfig
from monitor.fetch import Fetcher
from monitor.store import Store

logger = logging.getLogger("monitor.scheduler")

# Spread overdue first runs over at most this many seconds after start.
_STARTUP_SPREAD = 60.0
_DELIVERY_EVERY = 5.0
_SHUTDOWN_GRACE = 20.0


def first_run(watch: WatchConfig, last_check_at: str | None, now: datetime) -> datetime:
    """When a watch should first run after start: keep its rhythm, never stampede."""
    spread = min(watch.interval, _STARTUP_SPREAD)
    if last_check_at:
        last = datetime.fromisoformat(last_check_at.replace("Z", "+00:00"))
        due = last + timedelta(seconds=watch.interval)
        if due > now:
            return due
    return now + timedelta(seconds=random.uniform(0, spread))


def jitter_for(watch: WatchConfig) -> float:
    # ±5 % of the interval, capped: enough to de-synchronise watches, not enough to drift.
    return min(watch.interval * 0.05, 120.0)


class Daemon:
    def __init__(self, config: MonitorConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.stopping = asyncio.Event()
        self._running: set[asyncio.Task[object]] = set()

    async def run(self, until: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        async with (
            Fetcher(self.config.fetch) as fetcher,
            BrowserEngine(self.config.fetch) as browser,
        ):
            checker = Checker(self.config, self.store, fetcher, browser)
            deliverer = Deliverer(self.store, self.config.channels, self.config.alerts)
            scheduler = AsyncIOScheduler(timezone=UTC)
            now = datetime.now(UTC)
            for watch in self.config.watch:
                state = self.store.state(watch.id)
                scheduler.add_job(
                    self._guarded,
                    IntervalTrigger(seconds=watch.interval, jitter=jitter_for(watch)),
                    args=[checker, deliverer, watch],
                    id=watch.id,
                    name=watch.display_name,
                    next_run_time=first_run(watch, state.last_check_at, now),
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=int(max(watch.interval, 60)),
                )
            scheduler.add_job(
                self._deliver,
                IntervalTrigger(seconds=_DELIVERY_EVERY),
                args=[deliverer],
                id="__delivery__",
                next_run_time=now,
                max_instances=1,
                coalesce=True,
            )
            scheduler.start()
            logger.info("watching %d pages; data in %s", len(self.config.watch), self.store.root)
            waiters = [asyncio.ensure_future(self.stopping.wait())]
            if until is not None:
                waiters.append(asyncio.ensure_future(until.wait()))
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            logger.info("stopping: waiting up to %.0fs for running checks", _SHUTDOWN_GRACE)
            scheduler.shutdown(wait=False)
            if self._running:
                _done, pending = await asyncio.wait(self._running, timeout=_SHUTDOWN_GRACE)
                for task in pending:
                    task.cancel()
            await self._deliver(deliverer)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    async def _guarded(self, checker: Checker, deliverer: Deliverer, watch: WatchConfig) -> None:
        # A bug in one check must never stop the scheduler or other watches.
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            outcome = await checker.check(watch)
            if outcome.alerts:
                await self._deliver(deliverer)
        except Exception:
            logger.exception("%s: check crashed", watch.id)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _deliver(self, deliverer: Deliverer) -> None:
        try:
            await deliverer.deliver_due()
        except Exception:
            logger.exception("alert delivery crashed")
