"""Nothing seen is lost, nothing is written twice: real `monitor run` processes on one SQLite
archive, a real replica of gov.kz, SIGKILL and a second daemon."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import REPO, monitor_cli, write_config

STATEMENT = STATEMENTS[0]
TITLE = STATEMENT["texts"]["en"]["title"]
REVISIONS = 6  # daemons started and killed by the first story
EDITS = 6  # edits the two daemons and the check race for in the second


def _daemon(config: Path, log: Path, *command: str) -> subprocess.Popen[bytes]:
    """`monitor run --no-web` (or another command) in a process of its own, to be killed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MONITOR_CONFIG", None)
    command = command or ("run", "--no-web")
    with open(log, "wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), *command],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _count(directory: Path, query: str) -> int:
    """A count from the archive's index, as another program reads it (0 before it exists)."""
    path = directory / "store" / "index.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute(query).fetchone()[0])


def _versions(directory: Path) -> list[tuple[str, str | None]]:
    """The statement's versions in order: their kind and confirmation."""
    with sqlite3.connect(directory / "store" / "index.sqlite") as db:
        return db.execute(
            "SELECT v.kind, v.confirmation FROM version v JOIN document d "
            "ON d.id = v.document_id WHERE d.key = ? ORDER BY v.seq",
            (f"en/{STATEMENT['id']}",),
        ).fetchall()


def _write_lock(directory: Path) -> sqlite3.Connection:
    """The archive's write lock, held by another program until rolled back."""
    db = sqlite3.connect(directory / "store" / "index.sqlite", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db


def _blob_files(directory: Path) -> int:
    """How many blob files the archive has (written durably before the commit naming them)."""
    return sum(1 for path in (directory / "store" / "blobs").rglob("*") if len(path.name) == 64)


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} in {timeout}s"
        time.sleep(0.02)


class FirstRequest(threading.Thread):
    """Notes when the replica first hears from the daemon (to 20 ms)."""

    def __init__(self, site: ReplicaSite) -> None:
        super().__init__(daemon=True)
        self.site, self.at = site, None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            if self.at is None and self.site.requests:
                self.at = time.monotonic()


@pytest.mark.process
def test_every_revision_a_killed_daemon_fetched_is_archived(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    # A confirmation far longer than each daemon lives: before, a change waited in memory
    # for it and died with the daemon; now it is archived at first sight.
    # Blob files: a look killed waiting to commit has written its blobs' files already
    # (the moment waited for below); in the database they would commit with its rows.
    config = write_config(
        tmp_path, replica, interval="1s", confirm_delay="10m", store='blobs = "path"'
    )
    rng = random.Random()
    looks = "SELECT COUNT(*) FROM check_run WHERE outcome = 'changed'"
    interrupted = []  # revisions whose first daemon was killed before its look was recorded
    held = []  # revisions whose first daemon was killed waiting to commit its look
    # Each revision is one trial of the same claim (what a killed daemon fetched is in the
    # archive: committed by it, or, when it was killed mid-look, by the next daemon on the
    # same page), and each costs a daemon's start or two: two seconds of CPU each, ten of a
    # busy machine.
    for revision in range(1, REVISIONS + 1):
        if revision > 1:
            replica.edit(STATEMENT["id"], "en", title=f"{TITLE} (rev. {revision})")
        before = _count(tmp_path, looks)
        for attempt in range(2):
            replica.clear_requests()
            watcher = FirstRequest(replica)
            watcher.start()
            log = tmp_path / f"run-{revision}-{attempt}.log"
            daemon = _daemon(config, log)
            lock = None
            try:
                _wait_for(lambda: b"watching" in log.read_bytes(), 30, "'watching' line")  # noqa: B023
                if attempt == 0 and revision % 2 == 0:
                    # Every other revision, the first look is fetched, read and its blobs
                    # written, then killed waiting for the write lock another program holds
                    # (unless it had committed already): the moment no random one hits on
                    # a quiet machine, where a look commits within a tenth of a second.
                    lock = _write_lock(tmp_path)
                    if _count(tmp_path, looks) == before:
                        held.append(revision)
                    blobs = _blob_files(tmp_path)
                # The kill falls at a random moment of the confirmation window, counted from
                # the daemon's first request (on a loaded machine the first check may start
                # seconds after "watching", and a kill before any request proves nothing):
                # in its first look, or after it was recorded.
                _wait_for(lambda: watcher.at is not None, 30, "first request")  # noqa: B023
                if lock is not None and revision in held:
                    _wait_for(lambda: _blob_files(tmp_path) > blobs, 30, "blob of the look")  # noqa: B023
                time.sleep(rng.uniform(0.0, 2.0))
                if attempt:
                    # The look its predecessor was killed in, made again: over once its
                    # check_run row says what it found. A daemon that kept the change for
                    # its confirmation, ten minutes away, records nothing of it in time and
                    # fails here; one that records "changed" and keeps no version fails
                    # below.
                    _wait_for(
                        lambda: _count(tmp_path, looks) > before,  # noqa: B023
                        60,
                        f"look at revision {revision} recorded",
                    )
            finally:
                daemon.send_signal(signal.SIGKILL)
                daemon.wait(timeout=10)
                watcher.stop.set()
                watcher.join()
                if lock is not None:
                    lock.rollback()
                    lock.close()
            if _count(tmp_path, looks) > before:
                break
            # Killed mid-look (seconds after the request on a machine loaded past ten): what
            # it had fetched, read or written must not keep the next daemon, on the same
            # page, from archiving it.
            interrupted.append(revision)
    rows = _versions(tmp_path)
    history = monitor_cli(config, "history", "mfa-en", "--key", f"en/{STATEMENT['id']}")
    assert history.returncode == 0, history.stderr
    shown = monitor_cli(config, "export", "--format", "jsonl", "--watch", "mfa-en").stdout
    archived = {int(n) for n in re.findall(r"\(rev\. (\d+)\)", shown)}
    archived.add(1)  # the first revision is the original title, without a mark: the baseline
    missing = sorted(set(range(1, REVISIONS + 1)) - archived)
    assert missing == [], (
        f"fetched but not archived: {missing} (killed mid-look: {interrupted})\n{history.stdout}"
    )
    assert held, "no look was killed waiting to commit"
    # Every revision that was replaced before its confirming look is marked as such.
    assert rows[0][0] == "baseline"
    assert {confirmation for _, confirmation in rows[1:-1]} <= {"transient"}
    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0 and "0 damaged" in verified.stdout, verified.stdout


@pytest.mark.process
def test_two_daemons_and_a_check_on_one_sqlite_archive_write_each_edit_once(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config = write_config(tmp_path, replica, interval="1s", confirm_delay="1s")
    first = _daemon(config, tmp_path / "first.log")
    try:
        _wait_for(lambda: b"watching" in (tmp_path / "first.log").read_bytes(), 30, "start")
        second = _daemon(config, tmp_path / "second.log")
        assert second.wait(timeout=60) != 0
        refused = (tmp_path / "second.log").read_text()
        assert f"pid {first.pid}" in refused and "monitor run" in refused, refused
        check = monitor_cli(config, "check", "--once")
        assert check.returncode != 0 and f"pid {first.pid}" in check.stderr, check.stderr
        db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
        # The first edit waits for the statement's first sight. "Watching" is logged before
        # the first check, which may start a second later; on a quiet machine the two
        # refusals above take less (0.6 s of CPU, the check in this process 10 ms), and an
        # edit made before that first fetch is in the baseline: never an alert.
        versions = (
            "SELECT v.kind, COUNT(*) FROM version v JOIN document d ON d.id = v.document_id "
            "WHERE d.key = ? GROUP BY v.kind"
        )
        key = (f"en/{STATEMENT['id']}",)
        _wait_for(lambda: db.execute(versions, key).fetchall(), 60, "first sight")
        edited = "SELECT COUNT(*) FROM alert WHERE kind = 'edited'"
        for n in range(1, EDITS + 1):
            replica.edit(STATEMENT["id"], "en", title=f"{TITLE} (edit {n})")
            _wait_for(lambda: db.execute(edited).fetchone()[0] >= n, 60, f"alert {n}")  # noqa: B023
        # A repeat, if there were one, would come within a check or two.
        checked = "SELECT COUNT(*) FROM check_run WHERE watch_id = 'mfa-en'"
        done = db.execute(checked).fetchone()[0]
        _wait_for(lambda: db.execute(checked).fetchone()[0] >= done + 2, 30, "two more checks")
        assert dict(db.execute(versions, key).fetchall()) == {"baseline": 1, "edited": EDITS}
        assert db.execute(edited).fetchone()[0] == EDITS
        db.close()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)


def _looks_in_flight(directory: Path) -> int:
    """How many slots of looks in flight hold a look (see monitor/inflight.py)."""
    slots = (directory / "store" / "inflight").glob("*/[0-9]*")
    return sum(1 for slot in slots if slot.read_bytes()[:4] == b"MLK1")


def _killed_in_flight_then_moved_on(
    directory: Path, config: Path, replica: ReplicaSite, kept: Callable[[], bool], what: str
) -> None:
    """A first `check --once`; revision 2, fetched by a `check --once` killed once `kept`
    (its look in flight, its commit held by another program's write lock); revision 3;
    and the `check --once` that replays the killed look."""
    first = monitor_cli(config, "check", "--once")
    assert first.returncode == 0, first.stderr
    replica.edit(STATEMENT["id"], "en", title=f"{TITLE} (rev. 2)")
    replica.clear_requests()
    killed = _daemon(config, directory / "killed.log", "check", "--once")
    # The write lock is taken at its first request, once its start has written what it
    # writes: the look then fetches and reads (in a worker that starts first), and waits.
    _wait_for(lambda: bool(replica.requests), 60, "first request")
    lock = _write_lock(directory)
    try:
        _wait_for(kept, 60, what)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        lock.rollback()
        lock.close()
    replica.edit(STATEMENT["id"], "en", title=f"{TITLE} (rev. 3)")
    after = monitor_cli(config, "check", "--once")
    assert after.returncode == 0, after.stderr
    assert "replaying the look" in after.stderr, after.stderr


@pytest.mark.process
def test_a_revision_fetched_by_a_check_killed_before_its_commit_is_archived_after_the_page_moved_on(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    # The gap the first story leaves: a look killed between its fetch and its commit, and
    # the page edited again before the next process looks. That process fetches only the
    # newer revision; what the killed one saw must come from what it kept on disk.
    config = write_config(tmp_path, replica)
    _killed_in_flight_then_moved_on(
        tmp_path, config, replica, lambda: _looks_in_flight(tmp_path) > 0, "look in flight"
    )
    shown = monitor_cli(config, "export", "--format", "jsonl", "--watch", "mfa-en").stdout
    assert {"2", "3"} <= set(re.findall(r"\(rev\. (\d+)\)", shown)), shown[:2000]
    # Each look once: the replayed one is not replayed again, and nothing is left behind.
    again = monitor_cli(config, "check", "--once")
    assert again.returncode == 0 and "replaying" not in again.stderr, again.stderr
    assert list((tmp_path / "store" / "inflight").iterdir()) == []
    rows = _versions(tmp_path)
    assert [kind for kind, _ in rows] == ["baseline", "edited", "edited"], rows
    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0 and "0 damaged" in verified.stdout, verified.stdout


def _kept(directory: Path, text: bytes) -> bool:
    """Whether a slot of looks in flight holds a look whose answer says `text`."""
    slots = (directory / "store" / "inflight").glob("*/[0-9]*")
    return any(slot.read_bytes()[:4] == b"MLK1" and text in slot.read_bytes() for slot in slots)


@pytest.mark.process
def test_a_killed_look_that_fell_back_to_another_request_is_replayed_as_the_answer_it_used(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    # gov.kz's listing is asked by GraphQL, then by REST when GraphQL gives nothing usable.
    # A look killed before its commit fetched both; the answer it used is REST's, and the
    # replay must read that one, not record GraphQL's refusal and drop the revision.
    replica.set_mode("graphql_off")
    config = write_config(tmp_path, replica)
    _killed_in_flight_then_moved_on(
        tmp_path, config, replica, lambda: _kept(tmp_path, b"(rev. 2)"), "REST's answer kept"
    )
    shown = monitor_cli(config, "export", "--format", "jsonl", "--watch", "mfa-en").stdout
    assert {"2", "3"} <= set(re.findall(r"\(rev\. (\d+)\)", shown)), shown[:2000]
    assert [kind for kind, _ in _versions(tmp_path)] == ["baseline", "edited", "edited"]
    assert _count(tmp_path, "SELECT COUNT(*) FROM check_run WHERE outcome = 'problem'") == 0
    assert list((tmp_path / "store" / "inflight").iterdir()) == []
