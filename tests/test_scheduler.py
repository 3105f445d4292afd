"""Scheduling policy: keep each watch's rhythm across restarts, never stampede."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitor.cadence import first_run, jitter_for, next_due, on_tick
from monitor.check import Checker
from monitor.config import MonitorConfig, WatchConfig, load_config
from monitor.fetch import Fetcher
from monitor.scheduler import Daemon, Timetable
from monitor.sites import profile_names
from monitor.store import CheckRecord, Store, WatchState
from monitor.store.records import iso
from tests.conftest import POLL

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
    due = NOW.timestamp()
    gaps = []
    for _ in range(2000):
        following = next_due(due, 60, jitter_for(watch(60)), now=due)
        gaps.append(following - due)
        due = following
    assert min(gaps) >= 57 and max(gaps) <= 63
    assert 60 - 0.15 < sum(gaps) / len(gaps) < 60 + 0.15  # APScheduler's own: 61.5


def test_checks_start_on_whole_second_ticks_so_watches_due_together_run_together() -> None:
    fire = on_tick(NOW + timedelta(seconds=0.4))
    assert fire == NOW  # the nearest tick, not the next: rounding up would drift
    assert on_tick(NOW + timedelta(seconds=0.6)) == NOW + timedelta(seconds=1)
    due = fire.timestamp()
    fires = set()
    for _ in range(300):
        due = next_due(due, 900, jitter_for(watch(900)), now=due)
        assert due == int(due)
        fires.add(due % 900)
    # Still spread by the jitter over ±45 s, on whole seconds: dozens of distinct ticks.
    assert len(fires) > 40


def test_the_timetable_gives_each_due_watch_once_in_order_and_keeps_its_rhythm() -> None:
    table = Timetable()
    first, second, third = (
        WatchConfig(id=name, url="https://www.gov.kz/", interval=600) for name in "abc"
    )
    for item in (first, second, third):
        table.put(item, NOW)
    table.put(
        WatchConfig(id="later", url="https://www.gov.kz/", interval=600), NOW + timedelta(hours=1)
    )
    start = NOW.timestamp()
    assert table.due(start - 1) == []
    # Due at one instant: in the order they were put in.
    assert [w.id for w in table.due(start)] == ["a", "b", "c"]
    assert table.due(start + 1) == []  # each rescheduled, not given again
    # Next due one interval on, give or take the jitter (±30 s at 10 minutes).
    assert [w.id for w in table.due(start + 569)] == []
    assert sorted(w.id for w in table.due(start + 631)) == ["a", "b", "c"]


def test_the_timetable_moves_removes_and_never_replays_missed_slots() -> None:
    table = Timetable()
    item = WatchConfig(id="w", url="https://www.gov.kz/", interval=60)
    table.put(item, NOW)
    table.move("w", NOW + timedelta(seconds=10))  # e.g. a listing found a new statement
    table.move("unknown", NOW)  # ignored
    start = NOW.timestamp()
    assert table.due(start + 9) == []
    assert [w.id for w in table.due(start + 10)] == ["w"]
    # The loop stalled for ten intervals: the watch runs once, then keeps its rhythm.
    late = start + 10 + 600
    assert [w.id for w in table.due(late)] == ["w"]
    assert table.due(late) == []
    assert [w.id for w in table.due(late + 63)] == ["w"]
    table.remove("w")
    assert table.due(late + 1000) == [] and len(table) == 0


def test_a_loaded_timetable_gives_what_puts_would_have_given() -> None:
    watches = [WatchConfig(id=f"w{i}", url="https://www.gov.kz/", interval=60) for i in range(5)]
    start = NOW.timestamp()
    times = [start + 3.4, start + 1, start + 3.2, start - 30, start + 1]
    loaded, put = Timetable(), Timetable()
    loaded.load(zip(watches, times, strict=True))
    for item, at in zip(watches, times, strict=True):
        put.put(item, datetime.fromtimestamp(at, UTC))
    assert loaded.span() == put.span() == (start - 30, start + 3)
    for moment in (start, start + 1, start + 3):  # before a rescheduled one (jitter) is due
        assert [w.id for w in loaded.due(moment)] == [w.id for w in put.due(moment)]
    loaded.move("w1", NOW + timedelta(seconds=500))  # an entry left behind by the move
    assert loaded.span()[1] == start + 500


def test_many_overdue_watches_are_spread_wider_than_a_minute() -> None:
    starts = [first_run(watch(3600), None, NOW, spread=200) for _ in range(500)]
    offsets = [(s - NOW).total_seconds() for s in starts]
    assert max(offsets) > 150 and all(0 <= o <= 200 for o in offsets)


class _Site:
    """A local site answering every page after `delay` seconds; counts what it served and
    the most requests it had in progress at once."""

    def __init__(self, delay: float) -> None:
        site = self
        self.served = 0
        self.in_progress = self.most_at_once = 0
        self.served_at: dict[str, float] = {}  # path: when its answer went
        self.if_none_match: dict[str, str | None] = {}  # path: the validator it was sent
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    site.in_progress += 1
                    site.most_at_once = max(site.most_at_once, site.in_progress)
                    site.if_none_match[self.path] = self.headers.get("If-None-Match")
                if self.path != "/robots.txt":
                    time.sleep(delay)
                site.served_at[self.path] = time.monotonic()
                # Counted out before the answer goes: once the client has it, it may send the
                # next request at once, and a loaded machine can run that request's handler
                # before this thread gets back to the lock (a third "at once" that never was).
                with lock:
                    site.in_progress -= 1
                    site.served += 1
                body = f"<html><body><main><h1>Statement</h1><p>{PROSE}</p></main></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body.encode())))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


PROSE = "The Ministry of Foreign Affairs welcomes the agreement reached by the parties. " * 4


def _all_due_in_two_seconds(store: Store, config: MonitorConfig, etags: bool = False) -> None:
    """Every watch due two seconds from now, together: the rhythm a `monitor check` of all
    watches leaves behind. With `etags`, each has an ETag of its own from an earlier answer."""
    last = iso(datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=2))
    for watch in config.watch:
        store.sync_watch(watch.id, watch.url, "generic")
        known = {watch.url: {"etag": f'"{watch.id}-etag"', "last_modified": None}}
        state = WatchState(watch.id, last_check_at=last, validators=known if etags else {})
        store.commit_check(CheckRecord(watch.id, last, 1, "unchanged", 200), state)


def _run_daemon_until(
    config: MonitorConfig, store: Store, done: Callable[[], bool], limit: float
) -> float:
    """Run a daemon until `done()` (or `limit` seconds); how long that took. The checks
    still queued then are cancelled after a second (not the 20 s grace a SIGTERM gives
    them): what the tests look at happened before."""

    async def scenario() -> float:
        until = asyncio.Event()
        daemon = Daemon(config, store, serve_web=False, shutdown_grace=1.0)
        running = asyncio.ensure_future(daemon.run(until))
        started = time.monotonic()
        while not done() and time.monotonic() - started < limit:
            await asyncio.sleep(0.05)
        waited = time.monotonic() - started
        until.set()
        await running
        return waited

    return asyncio.run(scenario())


@pytest.mark.slow
def test_a_crowd_due_on_a_slow_host_never_holds_up_another_host(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slow, fast = _Site(delay=1.0), _Site(delay=0.0)
    crowd = 80  # 40 s of work at two requests at a time
    watches = "".join(
        f'[[watch]]\nid = "slow{i:02d}"\nurl = "{slow.url}/p{i}"\nprofile = "generic"\n'
        # robots = false: no robots.txt request first (its lock would spread the crowd out).
        'interval = "1h"\nrobots = false\n'
        for i in range(crowd)
    )
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        "[fetch]\nallow_private = true\nconcurrency = 20\nper_host_concurrency = 2\n"
        'per_host_delay = "0s"\nretries = 0\ntimeout = "60s"\n'
        f"{watches}"
        # Fired last of all: job ids due at one instant run in order.
        f'[[watch]]\nid = "zfast"\nurl = "{fast.url}/p"\nprofile = "generic"\n'
        'interval = "1h"\n',
        encoding="utf-8",
    )
    config = load_config(path, profile_names())
    with Store.from_config(config.store) as store:
        _all_due_in_two_seconds(store, config)
        _run_daemon_until(config, store, lambda: fast.served > 0, 60)
    slow.close()
    fast.close()
    # The fast host's check went when due, not behind the slow host's queue: when the
    # slow requests held the fetcher's global slots, it had to wait until all but the last
    # `concurrency` of the crowd were answered (one answer a second per request slot, on a
    # busy machine as on a quiet one, so this counts the wait without a clock's limit).
    answered_before = sum(at < fast.served_at["/p"] for at in slow.served_at.values())
    assert answered_before < crowd - 20, f"{answered_before} slow answers came first"
    assert slow.most_at_once <= 2  # the per-host limit still holds
    # The stop (from `until`, a second's grace) cancels the checks still queued for the
    # slow host: none starts on the closed fetcher ("Fetcher used outside 'async with'").
    crashed = [r.getMessage() for r in caplog.records if "crashed" in r.getMessage()]
    assert not crashed, crashed[:3]


@pytest.mark.slow
def test_monitor_check_never_holds_one_host_behind_another_and_keeps_the_order(
    tmp_path: Path,
) -> None:
    """`monitor check` works each host's watches with workers of its own."""
    slow, fast = _Site(delay=0.5), _Site(delay=0.0)
    watches = [
        WatchConfig(id=f"slow{i:02d}", url=f"{slow.url}/p{i}", profile="generic", robots=False)
        for i in range(20)  # 5 s of work at two requests at a time
    ]
    watches.append(WatchConfig(id="zfast", url=f"{fast.url}/p", profile="generic"))
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        "[fetch]\nallow_private = true\nconcurrency = 20\nper_host_concurrency = 2\n"
        'per_host_delay = "0s"\nretries = 0\n',
        encoding="utf-8",
    )
    config = load_config(path, profile_names()).model_copy(update={"watch": watches})

    async def scenario(store: Store) -> tuple[list[str], float]:
        async with Fetcher(config.fetch) as fetcher:
            started = time.monotonic()
            outcomes = await Checker(config, store, fetcher).check_all(watches)
        return [o.watch_id for o in outcomes], started

    with Store.from_config(config.store) as store:
        order, started = asyncio.run(scenario(store))
    slow.close()
    fast.close()
    assert order == [w.id for w in watches]
    assert fast.served_at["/p"] - started < 2  # not after the slow host's 5 s
    assert max(slow.served_at.values()) - started > 4
    assert slow.most_at_once <= 2


@pytest.mark.slow
def test_each_check_in_one_tick_uses_its_own_watchs_stored_validators(tmp_path: Path) -> None:
    """The daemon reads the states of the checks due together in one query; each check
    must still send its own watch's ETag."""
    site = _Site(delay=0.0)
    ids = [f"w{i}" for i in range(12)]
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        "[fetch]\nallow_private = true\n"
        'per_host_delay = "0s"\nretries = 0\n'
        + "".join(
            f'[[watch]]\nid = "{i}"\nurl = "{site.url}/{i}"\nprofile = "generic"\n'
            'interval = "1h"\nrobots = false\n'
            for i in ids
        ),
        encoding="utf-8",
    )
    config = load_config(path, profile_names())
    with Store.from_config(config.store) as store:
        _all_due_in_two_seconds(store, config, etags=True)
        _run_daemon_until(config, store, lambda: len(site.if_none_match) >= len(ids), 30)
    site.close()
    assert site.if_none_match == {f"/{i}": f'"{i}-etag"' for i in ids}
