"""`kill -9` at random moments: a real `monitor run` is killed again and again while the
replica's statements keep changing. Nothing it committed may be lost or altered, and the
archive must verify clean afterwards (orphan blob files from an interrupted write are fine).

"Committed" is taken from two witnesses that only see a version once its transaction is
done: a reader polling the database while the daemon runs, and the daemon's own log lines,
which are written after the commit.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import REPO, monitor_cli, write_config
from tests.postgres import EVERY_LAYOUT, Backend, backend_named

LANGUAGES = ("en", "ru", "kk")
LOGGED = re.compile(r" monitor\.check: (mfa-\w+) (published|edited|removed|restored) (\S+): ")
VERSIONS = """SELECT v.id, d.watch_id, d.key, v.seq, v.kind, v.text_sha256, v.response_id
              FROM version v JOIN document d ON d.id = v.document_id"""
# Kills per backend: SQLite with blob files is where atomicity is our own doing (files,
# fsync, rename). Two turns of the phases there (four kills after this daemon's first
# stored version, four in its first checks, two while it starts), one on SQLite with blobs
# in the database (a new archive's default: the bytes commit with the rows) and on
# PostgreSQL; each kill starts a daemon (two seconds or more of a busy machine), and the
# moment within a phase is drawn afresh every run, so the runs of the suite together cover
# the phases' whole span.
KILLS = {"sqlite-files": 10, "sqlite": 5, "postgresql": 5}
# When each run is killed, in turn; the moment within the phase is random. A fixed turn,
# not a random draw, so every run of this test has kills after stored versions (a third
# of the runs at least): with a draw, too few runs sometimes got that far.
PHASES = ("first checks", "later writes", "first checks", "later writes", "starting")


class Editor(threading.Thread):
    """Edits a random statement every few tens of milliseconds, as an unhurried but busy
    press office would, and sometimes unpublishes one and brings it back."""

    def __init__(self, site: ReplicaSite, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.site, self.rng = site, rng
        self.stop = threading.Event()
        self.edits = 0

    def run(self) -> None:
        removed: int | None = None
        while not self.stop.wait(self.rng.uniform(0.02, 0.15)):
            statement = self.rng.choice(STATEMENTS)
            if removed is not None:
                self.site.restore(removed)
                removed = None
            elif self.rng.random() < 0.05:
                removed = statement["id"]
                self.site.remove(removed)
                continue
            lang = self.rng.choice(LANGUAGES)
            title = statement["texts"][lang]["title"]
            self.edits += 1
            self.site.edit(statement["id"], lang, title=f"{title} (rev. {self.edits})")


class Reader(threading.Thread):
    """Polls the database like any reader (the web UI, `monitor history`) would."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(daemon=True)
        self.backend = backend
        self.seen: dict[int, tuple[object, ...]] = {}
        self.stop = threading.Event()

    def poll(self) -> None:
        try:
            rows = self.backend.query(VERSIONS)
        except Exception:  # the schema may not exist yet on the very first start
            return
        for row in rows:
            self.seen[row[0]] = tuple(row)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.poll()


@pytest.fixture(params=EVERY_LAYOUT)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SQLite with blob files and with blobs in the database, and PostgreSQL."""
    return backend_named(request, tmp_path)


@pytest.mark.process
def test_kill_9_at_random_moments_loses_no_committed_version(
    tmp_path: Path, replica: ReplicaSite, backend: Backend
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    config = write_config(
        tmp_path, replica, languages=LANGUAGES, interval="1s", store=backend.toml()
    )
    editor, reader = Editor(replica, rng), Reader(backend)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MONITOR_CONFIG", None)
    logs = []
    editor.start()
    reader.start()
    grew = 0
    try:
        for run in range(KILLS[backend.name]):
            before = len(reader.seen)
            log = tmp_path / f"run-{run}.log"
            with open(log, "wb") as output:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "monitor", "--config", str(config), "run", "--no-web"],
                    cwd=REPO,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
                phase = PHASES[run % len(PHASES)]
                if phase == "starting":  # imports, opening, migrating
                    time.sleep(rng.uniform(0.2, 1.5))
                elif phase == "first checks":
                    _wait_for_line(log, "watching", timeout=60)
                    time.sleep(rng.uniform(0.0, 2.0))
                else:  # between and inside later writes, once this daemon has stored one
                    _wait_for_line(log, LOGGED, timeout=60)
                    time.sleep(rng.uniform(0.0, 1.0))
                daemon.send_signal(signal.SIGKILL)
                daemon.wait(timeout=10)
            logs.append(log)
            reader.poll()
            grew += len(reader.seen) > before
    finally:
        editor.stop.set()
        reader.stop.set()
        editor.join()
        reader.join()
    where = f"(seed {seed})"
    # Each "later writes" run waited for a stored version; the reader must have seen it.
    assert grew >= len(logs) // 3, f"too few runs stored anything {where}"

    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0, f"{where}\n{verified.stdout}{verified.stderr}"
    assert "0 damaged" in verified.stdout
    now = {row[0]: tuple(row) for row in backend.query(VERSIONS)}
    lost = [version for id, version in reader.seen.items() if now.get(id) != version]
    assert lost == [], f"versions seen committed, now missing or changed {where}"
    logged = [
        match.groups()
        for log in logs
        for match in LOGGED.finditer(log.read_text(encoding="utf-8", errors="replace"))
    ]
    stored = {(row[1], row[4], row[2]) for row in now.values()}
    assert logged and all(entry in stored for entry in logged), where

    # The archive still works: a check brings every head up to date, then all is unchanged.
    assert monitor_cli(config, "check", "--once").returncode == 0
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0
    assert result.stdout.count(": unchanged (0 new versions") == len(LANGUAGES), result.stdout


def _wait_for_line(log: Path, line: str | re.Pattern[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not re.search(line, log.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{log.name}: no {line!r} line in {timeout}s"
        time.sleep(0.05)
