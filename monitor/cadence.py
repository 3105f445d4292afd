"""When a watch is due: the arithmetic of the daemon's rhythm, no state and no I/O.

Due times follow each watch's interval with centred jitter, on whole-second ticks. After a
(re)start each watch's first run is placed where its own rhythm says (last check +
interval) or, when overdue or new, spread at random over a short window, so a restart
never fires every watch at once. The timetable and the loop that use these live in
scheduler.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from monitor.clock import parse_iso
from monitor.config import WatchConfig

# Spread overdue first runs over at least this many seconds after start, and over this
# much per overdue watch when there are many: a first check parses and stores a whole page
# (~30 ms of CPU), and 2,000 of them in one minute back the event loop up for minutes.
STARTUP_SPREAD = 60.0
STARTUP_PER_WATCH = 0.1
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
    spread: float = STARTUP_SPREAD,
) -> datetime:
    """When a watch should first run after start: when it was due (persisted by its last
    check), or, when overdue or new, soon but spread out: nothing missed, no stampede."""
    last, due = (parse_iso(t).timestamp() if t else None for t in (last_check_at, next_run_at))
    at = first_run_at(
        watch.interval, due_timestamp(watch.interval, last, due), now.timestamp(), spread
    )
    return datetime.fromtimestamp(at, UTC)


def first_run_at(interval: float, due: float | None, now: float, spread: float) -> float:
    """`first_run` in timestamps, of a watch of this interval due at `due` (see
    `due_timestamp`): a daemon's start works out 100,000 of these."""
    if due is not None and due > now:
        return due
    return now + random.uniform(0, min(interval, spread))


def due_timestamp(
    interval: float, last_check: float | None, next_run: float | None
) -> float | None:
    """When a watch of this interval is due by what its last check stored (timestamps of
    its last check and of the next run it set); None: never checked.

    The earlier of the stored due time and last check + the interval now configured: a
    stored time from a longer interval (shortened since) would otherwise be clamped to
    "now + interval" for every watch alike, and all of them would fire at that one instant
    (10,000 at once in bench/run.py's daemon phase)."""
    if last_check is None:
        return next_run
    by_interval = last_check + interval
    return by_interval if next_run is None or by_interval < next_run else next_run


def startup_spread(overdue: int) -> float:
    """Over how many seconds the first runs of `overdue` watches are spread after start."""
    return max(STARTUP_SPREAD, overdue * STARTUP_PER_WATCH)


def on_tick(moment: datetime) -> datetime:
    """`moment` rounded to the nearest tick (to the nearest, not up: no drift)."""
    return datetime.fromtimestamp(tick_of(moment.timestamp()), UTC)


def tick_of(timestamp: float) -> float:
    """The timestamp rounded to the nearest tick."""
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
    return max(tick_of(nominal + random.uniform(-jitter, jitter)), tick_of(now) + TICK)


def jitter_for(watch: WatchConfig) -> float:
    # ±5 % of the interval, capped: enough to de-synchronise watches, not enough to drift.
    return min(watch.interval * 0.05, 120.0)
