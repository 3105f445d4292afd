"""Noise control: quiet hours, digests, mute and rate limits hold alerts, never lose them.

The checks run for real against the replica and the outbox is a real SQLite store; only the
delivery worker's clock is moved forward, to stand at the end of a quiet night or a window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.alerts import MUTED, Deliverer
from monitor.check import Checker
from monitor.config import load_config
from monitor.fetch import Fetcher
from monitor.noise import RateLimiter, quiet_until
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.sites import profile_names
from monitor.store import Store
from tests.conftest import WEBHOOK_SECRET, Receiver, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])


class Pipeline:
    """One watch, checked in-process; deliveries made by a worker whose clock can be moved."""

    def __init__(self, config: Path, replica: ReplicaSite) -> None:
        self.config = load_config(config, profile_names())
        self.watch = self.config.watch[0]
        self.replica = replica

    def check(self) -> int:
        async def run() -> int:
            with Store(self.config.store.path) as store:
                async with Fetcher(self.config.fetch) as fetcher:
                    return (await Checker(self.config, store, fetcher).check(self.watch)).alerts

        return asyncio.run(run())

    def edit(self, n: int) -> None:
        """The ministry retitles the newest statement; the next check raises one alert."""
        self.replica.edit(NEWEST["id"], "en", title=f"{NEWEST['texts']['en']['title']} ({n})")
        assert self.check() == 1

    def deliver(self, later: timedelta = timedelta(0)) -> int:
        with Store(self.config.store.path) as store:
            c = self.config
            clock = lambda: datetime.now(UTC) + later  # noqa: E731
            deliverer = Deliverer(store, c.channels, c.alerts, c.watch, clock=clock)
            return asyncio.run(deliverer.deliver_due())

    def statuses(self, channel: str = "hook") -> list[str]:
        with Store(self.config.store.path) as store:
            return [r["status"] for r in store.deliveries() if r["channel"] == channel]

    def outbox(self, failed: bool = False) -> list[tuple[str, str, str]]:
        with Store(self.config.store.path) as store:
            entries = Deliverer.from_config(store, self.config).outbox(failed=failed)
            return [(e.channel, e.status, e.detail) for e in entries]


@pytest.fixture
def make_pipeline(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Pipeline]:
    """A baselined watch with a console and a webhook channel, plus extra config lines."""

    def make(watch_extra: str = "", hook_extra: str = "") -> Pipeline:
        monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
        config = write_config(tmp_path, replica, receiver, watch_extra=watch_extra)
        secret = 'secret_env = "TEST_WEBHOOK_SECRET"'
        config.write_text(config.read_text().replace(secret, f"{secret}\n{hook_extra}"))
        pipe = Pipeline(config, replica)
        assert pipe.check() == 0  # the silent baseline
        return pipe

    return make


def _quiet_now() -> str:
    """Quiet hours from an hour ago to an hour ahead, in Almaty time (UTC+5, no DST)."""
    local = datetime.now(ZoneInfo("Asia/Almaty"))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return f'quiet_hours = "{start:%H:%M}-{end:%H:%M}"\ntimezone = "Asia/Almaty"'


@pytest.mark.parametrize("zone", ["Asia/Almaty", "America/New_York"])
def test_quiet_hours_span_midnight_in_the_watchs_time_zone(zone: str) -> None:
    from monitor.config import WatchConfig

    watch = WatchConfig(
        id="w", url="https://x.kz/", quiet_hours="22:00-07:00", timezone=zone, digest=0
    )
    local = ZoneInfo(zone)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 3, day, hour, minute, tzinfo=local)

    # 23:30 and 06:59 are quiet until 07:00 the next/same morning; 07:00 and 21:59 are not.
    assert quiet_until(watch, at(7, 23, 30), "UTC") == at(8, 7).astimezone(UTC)
    assert quiet_until(watch, at(8, 6, 59), "UTC") == at(8, 7).astimezone(UTC)
    assert quiet_until(watch, at(8, 7), "UTC") is None
    assert quiet_until(watch, at(8, 21, 59), "UTC") is None
    # The night the clocks go forward in New York (8 March 2026) still ends at 07:00 local.
    assert quiet_until(watch, at(8, 1, 30), "UTC") == at(8, 7).astimezone(UTC)


def test_alerts_in_quiet_hours_are_held_then_delivered(
    make_pipeline: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = make_pipeline(watch_extra=_quiet_now())
    pipeline.edit(1)
    assert pipeline.deliver() == 0
    assert receiver.alerts() == [] and pipeline.statuses() == ["pending"]
    for _, status, detail in pipeline.outbox():
        assert status == "held" and detail.startswith("quiet hours until ")
        assert detail.endswith("Asia/Almaty")
    assert pipeline.deliver(timedelta(hours=2)) == 2
    [alert] = receiver.alerts()
    assert alert["kind"] == "edited" and alert["title"].endswith("(1)")
    assert pipeline.statuses() == ["sent"] and receiver.bad_signatures == 0


@pytest.mark.slow
def test_edits_within_the_digest_window_arrive_as_one_message(
    make_pipeline: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = make_pipeline(watch_extra='digest = "10m"')
    for n in (1, 2, 3):
        pipeline.edit(n)
    assert pipeline.deliver(timedelta(minutes=9)) == 0
    assert receiver.alerts() == [] and pipeline.statuses() == ["pending"] * 3
    assert pipeline.deliver(timedelta(minutes=11)) == 6  # three each for hook and console
    [digest] = receiver.alerts()
    assert digest["kind"] == "digest" and digest["summary"] == "3 alerts: 3 edited"
    assert [a["title"][-3:] for a in digest["alerts"]] == ["(1)", "(2)", "(3)"]
    assert len(digest["changes"]) == 3 and digest["changes"][0]["where"].startswith("“")
    assert pipeline.statuses() == ["sent"] * 3 and receiver.bad_signatures == 0
    # An edit after the digest went out opens a new window.
    pipeline.edit(4)
    assert pipeline.deliver(timedelta(minutes=9)) == 0
    assert pipeline.deliver(timedelta(minutes=11)) == 2
    assert receiver.alerts()[-1]["kind"] == "edited"  # a digest of one is a plain alert


def test_a_muted_watch_records_alerts_but_sends_none(
    make_pipeline: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = make_pipeline(watch_extra="muted = true")
    pipeline.edit(1)
    assert pipeline.deliver(timedelta(days=1)) == 0
    assert receiver.alerts() == []
    with Store(pipeline.config.store.path) as store:
        assert [a["kind"] for a in store.alerts()] == ["edited"]
        assert {(d["status"], d["last_error"]) for d in store.deliveries()} == {("dead", MUTED)}
    assert {e[1] for e in pipeline.outbox()} == {"muted"}
    assert pipeline.outbox(failed=True) == []  # muted is not a failure


@pytest.mark.slow
def test_a_rate_limited_channel_queues_the_excess_in_order(
    make_pipeline: Callable[..., Pipeline], receiver: Receiver
) -> None:
    pipeline = make_pipeline(hook_extra='rate_limit = "2/h"')
    for n in range(1, 6):
        pipeline.edit(n)
    assert pipeline.deliver() == 5 + 2  # console unlimited, hook two
    assert pipeline.statuses() == ["pending"] * 3 + ["sent"] * 2  # newest first
    held = [e for e in pipeline.outbox() if e[0] == "hook" and e[1] == "held"]
    assert len(held) == 3 and all(e[2].startswith("rate limit 2/h until ") for e in held)
    # A restarted worker remembers what it sent within the hour.
    assert pipeline.deliver(timedelta(minutes=30)) == 0
    assert pipeline.deliver(timedelta(minutes=61)) == 2
    assert pipeline.deliver(timedelta(minutes=122)) == 1
    assert [a["title"][-3:] for a in receiver.alerts()] == ["(1)", "(2)", "(3)", "(4)", "(5)"]
    assert pipeline.statuses() == ["sent"] * 5


def test_rate_limiter_window_slides() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    limiter = RateLimiter(2, 3600, [start - timedelta(hours=2), start])
    assert limiter.free_at(start) is None  # one send in the last hour
    limiter.record(start + timedelta(minutes=10))
    assert limiter.free_at(start + timedelta(minutes=20)) == start + timedelta(hours=1)
    assert limiter.free_at(start + timedelta(hours=1)) is None
