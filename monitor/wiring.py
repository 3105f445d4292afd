"""The wiring of `monitor run`, `monitor check` and `monitor serve`, in one place.

`build(config, store)` gives a `Runtime`: the watches in force (one snapshot, see
watches.py) and what the three commands are made of — the checking parts (a worker pool
that reads pages, the fetcher, the browser, the `Checker`), the alert `Deliverer`, the
trusted-timestamp `Stamper`, and the web application. The daemon (scheduler.py) adds its
timetable, watchdog, leases and reload around a runtime; `monitor check` runs its watches
once; `monitor serve` serves its web application alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from monitor.collector import collector_paused
from monitor.config import MonitorConfig, WatchConfig
from monitor.discover import StatementWatch
from monitor.reload import WatchChanges, reread
from monitor.store import Store
from monitor.watches import Watches, load_watches

# The parts are imported where they are made: `monitor serve` makes none of the checking
# parts and `monitor check` serves nothing, and each stack costs start-up (the checking
# parts a fifth of a second of CPU for `monitor serve`, more on a busy machine).
if TYPE_CHECKING:
    from monitor.alerts import Deliverer
    from monitor.check import Checker, CheckOutcome
    from monitor.isolate import WorkerPool
    from monitor.stamper import Stamper
    from monitor.wayback import Submitter

logger = logging.getLogger("monitor.wiring")

# The longest a snapshot of the watches serves `monitor serve` when nothing changed.
REMAKE_EVERY = 600.0
# How long the daemon's start waits for its page-reading workers (see isolate.py).
WORKERS_START = 30.0


class Runtime:
    """The watches in force and the parts that check them, alert, and serve the UI."""

    def __init__(self, config: MonitorConfig, store: Store) -> None:
        """`config`: as loaded from the file; the store's and the discovered watches are
        merged in here (see watches.py)."""
        self.store = store
        self.file = config
        self._mark = store.watch_sources_mark()
        self.watches: Watches = load_watches(config, store)
        self._built_at = self._made_at = time.monotonic()
        self._workers_started: asyncio.Future[None] | None = None

    @property
    def config(self) -> MonitorConfig:
        """The running configuration: the file's settings, every watch in force."""
        return self.watches.config

    # --- the watches ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Make the snapshot again (a watch was saved in the UI)."""
        self._mark = self.store.watch_sources_mark()
        self.watches = load_watches(self.file, self.store)
        self._built_at = self._made_at = time.monotonic()

    def current(self, max_age: float) -> MonitorConfig:
        """The running configuration, looked at again when older than `max_age` seconds
        (`monitor serve`: a daemon elsewhere keeps discovering statements) and made again
        only when the store's watches changed meanwhile, or at least every `REMAKE_EVERY`
        (statement watches' intervals follow their age): made on every look, merging
        10,000 watches held up the UI's requests."""
        now = time.monotonic()
        if now - self._built_at > max_age:
            if now - self._made_at > REMAKE_EVERY or self.store.watch_sources_mark() != self._mark:
                self.refresh()
            else:
                self._built_at = now
        return self.config

    def adopt(self) -> list[StatementWatch]:
        """Take in the statement watches discovered since the snapshot was made."""
        self.watches, fresh = self.watches.adopt(self.store)
        return fresh

    def replace(self, watch: WatchConfig) -> None:
        self.watches = self.watches.replace(watch)

    def reload(self) -> WatchChanges:
        """Read the config file again (SIGHUP), and the store's watches; the running
        [fetch] and [store] stay (see reload.py). Raises ConfigError, changing nothing."""
        file = reread(self.file, self.config)
        old = self.watches.watch
        self.file = file
        self.refresh()
        return WatchChanges.between(old, self.watches.watch)

    # --- the parts -----------------------------------------------------------------------

    @asynccontextmanager
    async def checking(
        self, instance: str | None = None, start_workers: bool = False, register: bool = True
    ) -> AsyncIterator[Checker]:
        """A `Checker` with its worker pool, fetcher and browser, closed on the way out.
        `instance`: the daemon's name in check runs when it shares the archive;
        `start_workers`: start the page-reading workers now rather than when first needed
        (the daemon: its first checks then read their pages at once); `register`: register
        every watch now (the daemon registers them itself, see `Checker.register`)."""
        # Importing the checking parts and registering every watch make no garbage: the
        # collector is held off meanwhile, then leaves it all alone (see cli._config).
        with collector_paused():
            from monitor.browser import BrowserEngine
            from monitor.check import Checker
            from monitor.fetch import Fetcher
            from monitor.isolate import WorkerPool

        fetch = self.config.fetch
        work = WorkerPool(
            fetch.worker_count,
            fetch.worker_timeout,
            fetch.worker_memory,
            meanwhile=self._archive_ready,
        )
        # The workers start while the rest starts up (their own processes, forked from a
        # forkserver the daemon started before it imported the store or read its config:
        # see cli.cmd_run). The checker is made at once: the daemon makes its timetable
        # meanwhile, then waits for them (`workers_started`) before its first checks.
        started = asyncio.ensure_future(_started(work)) if start_workers else None
        self._workers_started = started
        try:
            async with Fetcher(fetch) as fetcher, BrowserEngine(fetch) as browser:
                with collector_paused():
                    checker = Checker(
                        self.config,
                        self.store,
                        fetcher,
                        browser,
                        instance=instance,
                        work=work,
                        register=register,
                    )
                try:
                    yield checker
                finally:
                    checker.inflight.close()
        finally:
            self._workers_started = None
            if started is not None:
                started.cancel()
            work.close()

    def _archive_ready(self) -> None:
        """What the check of a page its worker reads needs once the reading is back, made
        while the workers start (`WorkerPool`'s `meanwhile`): the archive's repository
        and SQLAlchemy's engine (its import and the schema's tables, 0.1 s of CPU). Every
        page read uses them, a changed statement or not (its new answer is recorded); an
        unchanged cycle reads none, and makes none of them."""
        self.store.archive  # noqa: B018 (made on first use: a cached property)
        self.store.db.engine  # noqa: B018 (the same)

    async def workers_started(self) -> None:
        """Once the page-reading workers `checking(start_workers=True)` starts are up, or
        `WORKERS_START` has passed (a worker not up then is started by its first work)."""
        if self._workers_started is not None:
            await asyncio.shield(self._workers_started)

    def deliverer(self) -> Deliverer:
        from monitor.alerts import Deliverer

        return Deliverer.from_config(self.store, self.config)

    def stamper(self) -> Stamper | None:
        """Trusted timestamps of what is archived, when [archive] tsa_url asks for them."""
        if not self.config.archive.tsa_url:
            return None
        from monitor.stamper import Stamper

        return Stamper(self.store, self.config.archive)

    def submitter(self) -> Submitter:
        """Independent copies (save_to, wayback.py): the daemon's loop over the queue."""
        from monitor.wayback import Submitter

        return Submitter(self.store, lambda: self.config)

    def web_app(
        self,
        health: Callable[[], dict[str, Any]],
        on_change: Callable[[], Awaitable[None]],
        config: Callable[[], MonitorConfig] | None = None,
        listen: str | None = None,
        store: Store | None = None,
    ) -> Any:
        """The web application (health, metrics, the review UI) on `store` (default: this
        runtime's); `config` gives the configuration a request sees (default: the running
        one)."""
        from monitor.web import create_app

        return create_app(
            health, store or self.store, config or (lambda: self.config), on_change, listen
        )

    # --- `monitor check` -----------------------------------------------------------------

    async def check_once(self, watches: list[WatchConfig]) -> list[CheckOutcome]:
        """Check these watches once, and the statements a discovering listing among them
        finds or wakes; then deliver the alerts, timestamp what was archived and submit it
        for independent copies."""
        async with self.checking() as checker:
            outcomes = await checker.check_all(watches)
            # Statements a discovering listing just found get their first look in this run.
            checked = {w.id for w in watches}
            found = {i for o in outcomes for i in (*o.discovered, *o.due)} - checked
            if found:
                from monitor import progress

                progress.expect_more(len(found))
                self.adopt()
                outcomes += await checker.check_all(
                    [w for w in self.watches.watch if w.id in found]
                )
        try:
            self.store.flush()  # the unchanged checks' rows: a store that fails says so here
            await self.deliverer().deliver_due()
        except Exception as err:  # the outcomes are printed all the same, then the failure
            logging.getLogger("monitor.check").error(
                "after the checks: %s: %s", type(err).__name__, err
            )
        stamper = self.stamper()
        if stamper is not None:  # what this run archived, timestamped (never fails the run)
            try:
                await stamper.stamp_once()
            except Exception:  # the checks are committed; their timestamps wait for a later run
                logging.getLogger("monitor.stamper").exception("trusted timestamping failed")
        from monitor.wayback import submit_once  # independent copies: one bounded round

        await submit_once(self.store, self.config)
        return outcomes


async def _started(work: WorkerPool) -> None:
    """Start the pool's workers in a thread; say so when they do not start in time (the
    checks go on: a worker that did not start is started by the work given to it)."""
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.to_thread(work.start)), WORKERS_START)
    except Exception as err:
        logger.error("page-reading workers not started: %s: %s", type(err).__name__, err)


def build(config: MonitorConfig, store: Store) -> Runtime:
    """The runtime of `monitor run`, `monitor check` and `monitor serve` on `store`."""
    return Runtime(config, store)
