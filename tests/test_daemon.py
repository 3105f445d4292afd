"""`monitor run` as a real process: scheduled checks, alerts within the interval, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import REPO, WEBHOOK_SECRET, Receiver, monitor_cli, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_daemon_alerts_within_the_interval_and_stops_cleanly_on_sigterm(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path,
        replica,
        receiver,
        languages=("en", "ru", "kk"),
        interval="2s",
        confirm_delay="0.5s",
    )
    env = {**os.environ, "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        store = tmp_path / "store" / "index.sqlite"
        assert wait_for(lambda: store.exists() and _count(store, "document") == 24, 30)
        edited_at = time.monotonic()
        replica.replace_text(NEWEST["id"], "ru", "Душанбе", "г. Душанбе")
        assert wait_for(lambda: bool(receiver.alerts("edited")), 30)
        latency = time.monotonic() - edited_at
        # Interval 2 s (+5 % jitter) + confirmation 0.5 s + delivery: well under interval + 5 s.
        assert latency < 2.1 + 0.5 + 5
        time.sleep(3)  # more cycles: the edit must not be alerted twice
        [alert] = receiver.alerts()
        assert alert["watch"] == "mfa-ru" and alert["added"] == ["г."]
        daemon.send_signal(signal.SIGTERM)
        stdout, stderr = daemon.communicate(timeout=25)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, stderr
    assert "stopping" in stderr
    assert "EDITED" in stdout


def _count(path: Path, table: str) -> int:
    import sqlite3

    try:
        with sqlite3.connect(path) as connection:
            return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def test_demo_runs_offline_and_shows_the_alert_and_diff(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert "EDITED" in result.stdout
    assert "[-stands ready to provide further assistance if necessary-]" in result.stdout
    assert (tmp_path / "snapshots" / "demo" / "store" / "index.sqlite").exists()
    history = monitor_cli(
        tmp_path / "snapshots" / "demo" / "monitor.toml",
        "history",
        "mfa-en",
        "--key",
        f"en/{NEWEST['id']}",
    )
    assert history.returncode == 0
    assert "baseline" in history.stdout and "edited" in history.stdout
