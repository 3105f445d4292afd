"""The outbox: dead letters visible and re-sendable; a killed daemon loses no alert."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import POLL, REPO, WEBHOOK_SECRET, Receiver, monitor_cli, wait_for, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
OLD = "stands ready to provide further assistance if necessary"
NEW = "will consider further assistance upon a formal request"


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    try:
        with sqlite3.connect(store / "index.sqlite") as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


def set_alerts(config: Path, **keys: str) -> None:
    lines = "".join(f'\n{key} = "{value}"' for key, value in keys.items())
    text = config.read_text()
    config.write_text(text.replace("[alerts]", "[alerts]" + lines, 1))


def dead_letter(tmp_path: Path, replica: ReplicaSite, receiver: Receiver) -> tuple[Path, int]:
    """An edit whose webhook delivery failed its only attempt: the config and delivery id."""
    config = write_config(tmp_path, replica, receiver)
    set_alerts(config, max_attempts="1")
    assert monitor_cli(config, "check").returncode == 0
    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    receiver.fail_with = 503
    assert monitor_cli(config, "check").returncode == 0
    [(delivery_id, status)] = query(
        tmp_path / "store", "SELECT id, status FROM delivery WHERE channel='hook'"
    )
    assert status == "dead"
    return config, delivery_id


@pytest.mark.slow
def test_dead_letters_are_listed_and_can_be_resent(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config, delivery_id = dead_letter(tmp_path, replica, receiver)
    failed = monitor_cli(config, "alerts", "--failed")
    assert failed.returncode == 0
    assert f"#{delivery_id}" in failed.stdout and "dead" in failed.stdout
    assert "receiver answered HTTP 503" in failed.stdout
    assert "→ console" not in failed.stdout  # the console delivery was sent

    again = monitor_cli(config, "alerts", "resend", str(delivery_id))
    assert again.returncode == 1 and "failed again" in again.stderr
    assert receiver.alerts() == []

    receiver.fail_with = None
    resent = monitor_cli(config, "alerts", "resend", str(delivery_id))
    assert resent.returncode == 0, resent.stderr
    [alert] = receiver.alerts()
    assert alert["kind"] == "edited" and alert["title"] == NEWEST["texts"]["en"]["title"]
    assert receiver.bad_signatures == 0
    assert monitor_cli(config, "alerts", "--failed").stdout.strip() == "no failed deliveries"
    listing = json.loads(monitor_cli(config, "alerts", "--format", "json").stdout)
    assert {(e["channel"], e["status"]) for e in listing} == {("hook", "sent"), ("console", "sent")}
    # Sent once: resending a delivery that is no longer dead is refused.
    twice = monitor_cli(config, "alerts", "resend", str(delivery_id))
    assert twice.returncode == 2 and "no dead-lettered delivery" in twice.stderr
    assert len(receiver.alerts()) == 1


@pytest.mark.slow
def test_a_dead_letter_can_be_queued_again_for_the_worker(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config, delivery_id = dead_letter(tmp_path, replica, receiver)
    receiver.fail_with = None
    queued = monitor_cli(config, "alerts", "resend", str(delivery_id), "--queue")
    assert queued.returncode == 0 and "back in the outbox" in queued.stdout
    assert receiver.alerts() == []  # queued, not sent: the next delivery round sends it
    assert monitor_cli(config, "check").returncode == 0
    assert [a["kind"] for a in receiver.alerts()] == ["edited"]


class Hook:
    """A webhook receiver that can go down and come back on the same port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.posts: list[tuple[str | None, dict[str, Any]]] = []
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
                if self.headers.get("X-Monitor-Signature") != f"sha256={digest}":
                    hook.bad_signatures += 1
                hook.posts.append((self.headers.get("X-Monitor-Delivery"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()
    yield receiver
    receiver.stop()


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET}
    # Logs to a file: an unread pipe could fill up and stall the daemon.
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run", "--no-web"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=output,
        )


@pytest.mark.process
def test_alert_survives_sigkill_while_the_receiver_is_down_and_arrives_exactly_once(
    tmp_path: Path, replica: ReplicaSite, hook: Hook
) -> None:
    config = write_config(tmp_path, replica, hook, interval="2s")  # type: ignore[arg-type]
    set_alerts(config, retry_base="1s")
    store = tmp_path / "store"
    hook_attempts = "SELECT status, attempts FROM delivery WHERE channel='hook'"
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        assert wait_for(lambda: query(store, "SELECT COUNT(*) FROM document") == [(8,)], 30)
        # The receiver is down (connection refused) when the edit is found.
        replica.replace_text(NEWEST["id"], "en", OLD, NEW)
        assert wait_for(lambda: any(a >= 1 for _, a in query(store, hook_attempts)), 30)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        [(status, attempts)] = query(store, hook_attempts)
        assert status == "pending" and attempts >= 1
        assert hook.posts == []

        hook.start()
        daemon = start_daemon(config, log)
        assert wait_for(lambda: bool(hook.posts), 60), log.read_text()
        # More check and delivery rounds: nothing may arrive twice.
        checked = "SELECT COUNT(*) FROM check_run WHERE watch_id = 'mfa-en'"
        [(done,)] = query(store, checked)
        assert wait_for(lambda: query(store, checked)[0][0] >= done + 2, 30)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, log.read_text()
    [(delivery, alert)] = hook.posts
    assert alert["kind"] == "edited" and alert["watch"] == "mfa-en"
    assert hook.bad_signatures == 0
    [(delivery_id, status)] = query(store, "SELECT id, status FROM delivery WHERE channel='hook'")
    assert status == "sent" and delivery == str(delivery_id)
    assert query(store, "SELECT COUNT(*) FROM alert") == [(1,)]
