"""Scheduling policy: keep each watch's rhythm across restarts, never stampede."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.config import WatchConfig
from monitor.scheduler import SteadyInterval, first_run, jitter_for, on_tick

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def watch(interval: float) -> WatchConfig:
    return WatchConfig(id="w", url="https://www.gov.kz/", interval=interval)


def test_new_or_overdue_watches_are_spread_over_the_first_minute() -> None:
    starts = [first_run(watch(900), None, NOW) for _ in range(300)]
    offsets = sorted((s - NOW).total_seconds() for s in starts)
    assert offsets[0] >= 0 and offsets[-1] <= 60
    # Spread out, not clumped: each 10-second slice of the minute gets some of them.
    for low in range(0, 60, 10):
        assert any(low <= o < low + 10 for o in offsets)
    overdue = (NOW - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert 0 <= (first_run(watch(900), overdue, NOW) - NOW).total_seconds() <= 60


def test_a_watch_keeps_its_rhythm_after_a_restart() -> None:
    last = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert first_run(watch(900), last, NOW) == NOW + timedelta(minutes=10)


def test_short_intervals_spread_within_their_interval_and_jitter_is_bounded() -> None:
    starts = [first_run(watch(5), None, NOW) for _ in range(50)]
    assert all(0 <= (s - NOW).total_seconds() <= 5 for s in starts)
    assert jitter_for(watch(900)) == 45
    assert jitter_for(watch(86400)) == 120


def test_jitter_is_centred_so_the_mean_interval_stays_exact() -> None:
    trigger = SteadyInterval(60, jitter_for(watch(60)))
    fire = NOW
    gaps = []
    for _ in range(2000):
        following = trigger.get_next_fire_time(fire, fire)
        gaps.append((following - fire).total_seconds())
        fire = following
    assert min(gaps) >= 57 and max(gaps) <= 63
    assert 60 - 0.15 < sum(gaps) / len(gaps) < 60 + 0.15  # APScheduler's own: 61.5


def test_checks_start_on_whole_second_ticks_so_watches_due_together_run_together() -> None:
    trigger = SteadyInterval(900, jitter_for(watch(900)))
    fire = on_tick(NOW + timedelta(seconds=0.4))
    assert fire == NOW  # the nearest tick, not the next: rounding up would drift
    assert on_tick(NOW + timedelta(seconds=0.6)) == NOW + timedelta(seconds=1)
    fires = set()
    for _ in range(300):
        fire = trigger.get_next_fire_time(fire, fire)
        assert fire.microsecond == 0
        fires.add(fire.timestamp() % 900)
    # Still spread by the jitter over ±45 s, on whole seconds: dozens of distinct ticks.
    assert len(fires) > 40


def test_many_overdue_watches_are_spread_wider_than_a_minute() -> None:
    starts = [first_run(watch(3600), None, NOW, spread=200) for _ in range(500)]
    offsets = [(s - NOW).total_seconds() for s in starts]
    assert max(offsets) > 150 and all(0 <= o <= 200 for o in offsets)
