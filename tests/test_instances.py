"""The daemon over time: discovered watches scheduled live, due times kept across restarts,
and several daemons sharing one PostgreSQL archive (one of them killed)."""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from monitor.cadence import first_run
from monitor.config import WatchConfig, load_config
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.scheduler import Daemon
from monitor.sites import profile_names
from monitor.store import Store
from monitor.watchdog import WatchdogTimes
from tests.conftest import POLL, Receiver, start_daemon, wait_for, write_config
from tests.test_discover import add_statement, rows

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
PAGES = 8
INTERVAL = 3.0
LEASE = 3.0


def stop(daemon: subprocess.Popen[str]) -> str:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    try:
        _out, err = daemon.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        _out, err = daemon.communicate()
    return err


def watches_with_versions(directory: Path) -> int:
    try:
        return len(rows(directory, "SELECT DISTINCT watch_id FROM document"))
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_first_run_keeps_the_persisted_due_time() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    watch = WatchConfig(id="w", url="https://example.org/", interval=3600)
    last = (now - timedelta(minutes=5)).isoformat()
    # Due in 20 minutes (a listing woke it, or its age step changed): then, not in 55.
    due = (now + timedelta(minutes=20)).isoformat()
    assert first_run(watch, last, now, due) == now + timedelta(minutes=20)
    # Woken while the daemon was down: soon after start, spread, not an hour later.
    woken = (now - timedelta(minutes=1)).isoformat()
    assert now <= first_run(watch, last, now, woken) <= now + timedelta(seconds=60)
    # A due time beyond the (since shortened) interval is brought forward to the watch's
    # own rhythm: last check + interval, not "now + interval" for every watch alike.
    far = (now + timedelta(days=2)).isoformat()
    assert first_run(watch, last, now, far) == now + timedelta(minutes=55)
    earlier = (now - timedelta(minutes=7)).isoformat()
    assert first_run(watch, earlier, now, far) == now + timedelta(minutes=53)


@pytest.mark.process
def test_daemon_schedules_statements_it_discovers_and_alerts_publication(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path,
        replica,
        receiver,
        interval="2s",
        watch_extra='discover = true\noptions = { size = 3 }\ndiscover_schedule = ["2s"]',
    )
    daemon = start_daemon(config, "--no-web")
    try:
        # The three listed statements become watches and get checked by the daemon.
        assert wait_for(lambda: watches_with_versions(tmp_path) == 3, 60)
        new_id = add_statement(replica, "Statement on the anniversary")
        published_at = time.monotonic()
        assert wait_for(lambda: bool(receiver.alerts("published")), 30)
        assert time.monotonic() - published_at < 2 * 2 + 5
        [alert] = receiver.alerts()
        assert alert["watch"] == f"mfa-en.en-{new_id}"
        assert alert["title"] == "Statement on the anniversary (en)"
    finally:
        err = stop(daemon)
    assert daemon.returncode == 0, err
    assert "scheduled 1 new statement watches" in err
    # Every watch's next due time is kept for the next start.
    states = rows(tmp_path, "SELECT watch_id, next_run_at FROM watch_state")
    assert len(states) == 5 and all(s["next_run_at"] for s in states)


# --- several daemons on one PostgreSQL archive ---------------------------------------------


class Pages:
    """A plain site: PAGES statement pages that never change. A page put on `held` keeps
    its askers waiting until `release` is set, then drops them."""

    def __init__(self) -> None:
        body = "<html><body><article><p>{n}: the Ministry notes the decision.</p></article>"
        self.held: set[str] = set()
        self.asked, self.release = threading.Event(), threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path in site.held and not site.release.is_set():
                    site.asked.set()
                    site.release.wait(60)
                    return  # no answer: its asker was killed meanwhile
                page = (body.format(n=self.path) + "</body></html>").encode()
                self.send_response(200 if self.path.startswith("/page/") else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(POLL,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[Pages]:
    site = Pages()
    yield site
    site.close()


def shared_config(directory: Path, url: str, site: str, lease: float = LEASE) -> Path:
    text = f"""
[store]
path = "{directory / "store"}"
url = "{url}"
lease = "{lease}s"

[fetch]
allow_private = true
per_host_delay = "0s"
retries = 0
timeout = "5s"

[alerts]
confirm_delay = "0s"
"""
    for n in range(PAGES):
        text += f"""
[[watch]]
id = "page-{n}"
url = "{site}/page/{n}"
interval = "{INTERVAL}s"
"""
    path = directory / "monitor.toml"
    path.write_text(text)
    return path


def checks(url: str) -> dict[str, list[tuple[datetime, str]]]:
    with psycopg.connect(url) as connection:
        found = connection.execute(
            "SELECT watch_id, at, instance FROM check_run ORDER BY at"
        ).fetchall()
    by_watch: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for watch_id, at, instance in found:
        by_watch[watch_id].append((datetime.fromisoformat(at), instance))
    return by_watch


@pytest.mark.process
def test_two_daemons_share_the_checks_and_one_takes_over_when_the_other_is_killed(
    tmp_path: Path, postgres_url: str, pages: Pages
) -> None:
    config = shared_config(tmp_path, postgres_url, pages.url)
    first = start_daemon(config, "--no-web")
    second = start_daemon(config, "--no-web")
    watches = [f"page-{n}" for n in range(PAGES)]

    def both_share_and_each_watch_was_checked_thrice() -> bool:
        try:
            found = checks(postgres_url)
        except psycopg.errors.UndefinedTable:  # the first daemon is still creating it
            return False
        instances = {instance for runs in found.values() for _, instance in runs}
        return len(instances) == 2 and all(len(found[w]) >= 3 for w in watches)

    def the_survivor_checked_each_watch_twice() -> bool:
        found = checks(postgres_url)
        return all(sum(at > killed_at for at, _ in found[w]) >= 2 for w in watches)

    try:
        assert wait_for(both_share_and_each_watch_was_checked_thrice, 60)
        killed_at = datetime.now(UTC)
        first.send_signal(signal.SIGKILL)
        first.wait()
        # A lapsed lease and two slots: the kill's whole cost, seen on every watch.
        assert wait_for(the_survivor_checked_each_watch_twice, 60)
        stopped_at = datetime.now(UTC)
    finally:
        for daemon in (first, second):
            err = stop(daemon)
    assert second.returncode == 0, err
    found = checks(postgres_url)
    assert sorted(found) == [f"page-{n}" for n in range(PAGES)]
    instances = {instance for runs in found.values() for _, instance in runs}
    assert len(instances) == 2, "both daemons took a share of the checks"
    survivor = {instance for runs in found.values() for at, instance in runs if at > killed_at}
    assert len(survivor) == 1
    for watch_id, runs in found.items():
        times = [at for at, _ in runs]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        # Never twice in one slot: a check is claimed by one daemon only.
        assert min(gaps) > INTERVAL * 0.5, (watch_id, gaps)
        # On time throughout, the kill included: at worst a slot plus a lapsed lease plus
        # the stand-by's grace late.
        assert max(gaps) < INTERVAL + LEASE + INTERVAL * 0.1 + 2 + 2, (watch_id, gaps)
        # The survivor checked every watch after the kill, up to the end.
        after = [at for at, instance in runs if at > killed_at]
        assert after and (stopped_at - after[-1]).total_seconds() < INTERVAL + 3, watch_id


@pytest.mark.process
def test_a_restarted_daemon_takes_over_at_once_the_check_its_killed_predecessor_held(
    tmp_path: Path, postgres_url: str, pages: Pages
) -> None:
    # The lease is two minutes: waiting for it to lapse would fail this test.
    config = shared_config(tmp_path, postgres_url, pages.url, lease=120)
    pages.held.add("/page/0")
    killed = start_daemon(config, "--no-web")
    try:
        assert pages.asked.wait(30), "the first daemon never fetched page 0"
    finally:
        killed.kill()  # mid-check of page-0, its lease held
        killed.communicate()
    pages.release.set()
    restarted = start_daemon(config, "--no-web")
    try:
        assert wait_for(lambda: "page-0" in checks(postgres_url), 20)
    finally:
        err = stop(restarted)
    assert restarted.returncode == 0, err
    # Other pages may have been mid-check too when it was killed; page-0 surely was.
    lines = [line for line in err.splitlines() if "taking over" in line]
    assert any(f"page-0: taking over from {pidof(killed)}" in line for line in lines), lines
    # And a live daemon's lease is never taken: the two-daemon test above.


def pidof(daemon: subprocess.Popen[str]) -> str:
    """The daemon's instance name up to its machine: host:pid."""
    return f"{socket.gethostname()}:{daemon.pid}@"


@pytest.mark.slow
def test_watchdog_cancels_a_hung_check_and_tells_the_operator_once(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    # A check that outlives its deadline: a site that stops answering (the fetch's own
    # timeout is 10 s) against a deadline shortened to one second, right after an edit.
    # The watchdog looks every 0.2 s.
    path = write_config(tmp_path, replica, receiver, interval="1s", confirm_delay="1s")
    config = load_config(path, profile_names())

    async def scenario(store: Store) -> None:
        until = asyncio.Event()
        daemon = Daemon(
            config,
            store,
            serve_web=False,
            watchdog=WatchdogTimes(every=0.2, deadline=1.0),
            shutdown_grace=1.0,
        )
        running = asyncio.ensure_future(daemon.run(until))
        loop = asyncio.get_running_loop()
        try:
            assert await loop.run_in_executor(
                None, wait_for, lambda: watches_with_versions(tmp_path) > 0, 30
            )
            replica.replace_text(NEWEST["id"], "en", "assistance", "aid")
            replica.set_mode("hang")  # accepts requests and answers none
            assert await loop.run_in_executor(
                None, wait_for, lambda: bool(receiver.alerts("watchdog")), 30
            )
            await asyncio.sleep(3)  # more checks hang the same way: no second alert
        finally:
            until.set()
            await running

    with Store.from_config(config.store) as store:
        asyncio.run(scenario(store))
    [alert] = receiver.alerts("watchdog")
    assert alert["watch"] == "mfa-en"
    assert "check of mfa-en hung for" in alert["summary"] and "cancelled" in alert["summary"]
    assert not receiver.alerts("edited")  # the hung checks recorded nothing


@pytest.mark.process
def test_sigterm_lets_a_running_check_finish_within_the_grace(tmp_path: Path) -> None:
    asked = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/slow":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            asked.set()
            time.sleep(2)  # the answer comes after SIGTERM
            text = "The Ministry notes the decision of the council and welcomes it. " * 5
            page = f"<html><body><article><h1>Statement</h1><p>{text}</p></article>"
            page = (page + "</body></html>").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    config = write_config(tmp_path, None, languages=())
    config.write_text(
        config.read_text()
        + f'\n[[watch]]\nid = "slow"\nurl = "http://127.0.0.1:{server.server_address[1]}/slow"\n'
        'interval = "1s"\n'
    )
    daemon = start_daemon(config, "--no-web")
    try:
        assert asked.wait(30)
        daemon.send_signal(signal.SIGTERM)
        err = stop(daemon)
    finally:
        server.shutdown()
        server.server_close()
    assert daemon.returncode == 0, err
    assert "check cancelled" not in err
    [check] = rows(tmp_path, "SELECT outcome, status FROM check_run WHERE watch_id = 'slow'")
    assert (check["outcome"], check["status"]) == ("changed", 200)
