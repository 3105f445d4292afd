"""`monitor run` as a real process: scheduled checks, alerts within the interval, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import (
    REPO,
    Receiver,
    monitor_cli,
    start_daemon,
    wait_for,
    write_config,
)

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])


@pytest.mark.process
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
    daemon = start_daemon(config)
    try:
        store = tmp_path / "store" / "index.sqlite"
        assert wait_for(lambda: store.exists() and _count(store, "document") == 24, 30)
        edited_at = time.monotonic()
        replica.replace_text(NEWEST["id"], "ru", "Душанбе", "г. Душанбе")
        assert wait_for(lambda: bool(receiver.alerts("edited")), 30)
        latency = time.monotonic() - edited_at
        # Interval 2 s (+5 % jitter) + confirmation 0.5 s + delivery: well under interval + 5 s.
        assert latency < 2.1 + 0.5 + 5
        # More checks of the edited page: the edit must not be alerted twice.
        checked = _count(store, "check_run WHERE watch_id = 'mfa-ru'")
        assert wait_for(
            lambda: _count(store, "check_run WHERE watch_id = 'mfa-ru'") >= checked + 2, 30
        )
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


@pytest.mark.process
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
        f"mfa-en.en-{NEWEST['id']}",
    )
    assert history.returncode == 0
    assert "baseline" in history.stdout and "edited" in history.stdout


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.process
def test_daemon_serves_health_and_metrics_and_reloads_on_sighup(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    import httpx

    port = free_port()
    config = write_config(tmp_path, replica, interval="1s", listen=f"127.0.0.1:{port}")
    daemon = start_daemon(config, options=("--log-format", "json"))
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> httpx.Response | None:
        try:
            return httpx.get(base + path, timeout=2)
        except httpx.HTTPError:
            return None

    try:
        assert wait_for(
            lambda: (
                (r := get("/metrics")) is not None
                and 'monitor_checks_total{outcome="unchanged"}' in r.text
            ),
            30,
        )
        health = get("/healthz")
        assert health is not None and health.status_code == 200 and health.json()["ok"] is True
        text = get("/metrics").text  # type: ignore[union-attr]
        assert "monitor_check_seconds_bucket" in text and "monitor_outbox_depth" in text
        # A broken config on SIGHUP: logged, daemon keeps running on the old one.
        good = config.read_text()
        config.write_text(good.replace('interval = "1s"', 'interval = "soon"'))
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert daemon.poll() is None
        # A good config with one more watch: applied without a restart.
        config.write_text(good + good[good.index("[[watch]]") :].replace("mfa-en", "mfa-en-2"))
        daemon.send_signal(signal.SIGHUP)
        assert wait_for(lambda: _count(tmp_path / "store" / "index.sqlite", "watch") == 2, 20)
        daemon.send_signal(signal.SIGTERM)
        _stdout, stderr = daemon.communicate(timeout=25)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            print(daemon.communicate()[1])
    assert daemon.returncode == 0
    import json

    messages = [json.loads(line)["message"] for line in stderr.splitlines()]  # JSON lines
    assert any("reload failed, keeping the running configuration" in m for m in messages)
    assert any("watch[0].interval" in m for m in messages)
    assert any("1 added ['mfa-en-2']" in m for m in messages)
