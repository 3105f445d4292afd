"""The daemon's watchdog: hung checks, a silent scheduler, a store that cannot be written.

It cancels a check that outlives any reasonable deadline, restarts a scheduler whose tick
stopped firing, and tells the operator of each (at most once an hour per event and
watch) through the alert outbox, or straight through the channels when the store itself
is what failed. `health` is what `/healthz` answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from monitor import metrics
from monitor.alerts import build_alert
from monitor.config import MonitorConfig, WatchConfig
from monitor.store import Store, now_iso

logger = logging.getLogger("monitor.scheduler")

# The watch id of alerts about the daemon itself: not a valid user watch id, so never taken.
DAEMON_WATCH = "_daemon"


@dataclass(frozen=True)
class WatchdogTimes:
    """How often the watchdog looks and how long it lets things be (seconds)."""

    every: float = 15.0
    # The tick fires every second; this much silence means the scheduler stopped.
    stall_after: float = 120.0
    # Back to normal once the tick fired within this (three rounds of delivery).
    recovered_within: float = 15.0
    # The operator hears of one watchdog event (per watch) at most this often.
    tell_every: float = 3600.0
    # How long a check may run; None: from the config (see `check_deadline`).
    deadline: float | None = None


def check_deadline(config: MonitorConfig) -> float:
    """How long a check may run before it counts as hung."""
    fetch, alerts = config.fetch, config.alerts
    # Every request of a check (profile alternatives, retries, confirmation) may take
    # the full timeout; beyond a generous multiple of that, the check is hung.
    return 4 * fetch.timeout * (fetch.retries + 1) + alerts.confirm_delay + 60


class Watchdog:
    """Watches the daemon's checks, its scheduler's tick and its store."""

    def __init__(
        self,
        store: Store,
        config: Callable[[], MonitorConfig],
        instance: str,
        times: WatchdogTimes | None = None,
    ) -> None:
        """`config`: the running configuration, now; `instance`: this daemon's name."""
        self.store = store
        self.config = config
        self.instance = instance
        self.times = times or WatchdogTimes()
        # Running checks and when they started.
        self.running: dict[asyncio.Task[object], tuple[str, float]] = {}
        self.last_fire = time.monotonic()
        self.stalled: str | None = None
        self._told: dict[tuple[str, str | None], float] = {}
        # Why the store could not be written when last looked at (None: it could).
        self._store_failure: str | None = None
        # Operator alerts that neither the outbox nor any channel took, to record once the
        # store can be written again.
        self._untold: list[tuple[WatchConfig, dict[str, object], list[str]]] = []
        self._sending: set[asyncio.Future[None]] = set()

    def beat(self) -> None:
        """The scheduler fired."""
        self.last_fire = time.monotonic()

    def deadline(self) -> float:
        if self.times.deadline is not None:
            return self.times.deadline
        return check_deadline(self.config())

    async def run(self, restart_scheduler: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.times.every)
            self.look(restart_scheduler)

    def look(self, restart_scheduler: Callable[[], None]) -> None:
        now = time.monotonic()
        deadline = self.deadline()
        for task, (watch_id, started) in list(self.running.items()):
            if now - started > deadline:
                message = f"check of {watch_id} hung for {now - started:.0f}s; cancelled"
                logger.error("watchdog: %s", message)
                metrics.STALLS.labels("hung_check").inc()
                task.cancel()
                self.tell_operator("hung_check", watch_id, message)
        # The tick fires every second, so silence means a stopped scheduler.
        silent = now - self.last_fire
        if silent > self.times.stall_after:
            self.stalled = f"scheduler silent for {silent:.0f}s; restarted"
            logger.error("watchdog: %s", self.stalled)
            metrics.STALLS.labels("scheduler").inc()
            self.tell_operator("scheduler", None, self.stalled)
            restart_scheduler()
        elif self.stalled and silent < self.times.recovered_within:
            self.stalled = None

    def watch_store(self) -> None:
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
            self.tell_operator("store", None, f"the store cannot be written: {failure}")
        self._store_failure = failure

    def tell_operator(self, event: str, watch_id: str | None, message: str) -> None:
        """An alert about monitor itself, at most once an hour per event and watch."""
        key = (event, watch_id)
        if time.monotonic() < self._told.get(key, 0.0):
            return
        self._told[key] = time.monotonic() + self.times.tell_every
        config = self.config()
        watch = next((w for w in config.watch if w.id == watch_id), None)
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
        channels = config.alerts.operator_channels or list(config.channels)
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
            config = self.config().channels.get(name)
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
        silent = time.monotonic() - self.last_fire
        store_failure = self.store.write_failure
        return {
            "ok": silent < self.times.stall_after and store_failure is None,
            "store_writable": store_failure is None,
            "store_error": store_failure,
            "watches": len(self.config().watch),
            "running_checks": len(self.running),
            "seconds_since_scheduler_fired": round(silent, 1),
            "last_stall": self.stalled,
            "instance": self.instance if self.store.shared else None,
        }
