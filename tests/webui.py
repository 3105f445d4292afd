"""Test bed of the web UI: an archive built by the real pipeline (the gov.kz replica and
`monitor check`), users made with `monitor user add`, and `monitor serve` on a real port."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import CHEAP_HASHES, REPO, monitor_cli, write_config

PASSWORD = "correct horse battery"
NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
MIDDLE = sorted(STATEMENTS, key=lambda s: s["created_date"])[3]
NEWEST_KEY = f"en/{NEWEST['id']}"
SENTENCE_OLD = "stands ready to provide further assistance if necessary"
SENTENCE_NEW = "will consider further assistance upon a formal request"
ARTIFACTS = REPO / "tests" / "artifacts"
_MONITOR = (sys.executable, "-m", "monitor")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_user(
    config: Path, name: str, role: str, password: str = PASSWORD, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`monitor user add`, the password on standard input as an operator would pipe it (in
    this process: the stories that make users are not about processes)."""
    return monitor_cli(config, "user", "add", name, "--role", role, *extra, stdin=password + "\n")


@contextmanager
def serving(config: Path, *command: str, real_hashes: bool = False) -> Iterator[str]:
    """Run `monitor serve` (or another command serving the UI, e.g. `run`) on a free port;
    yields its base URL once /healthz answers. Its output is printed at the end (pytest
    shows it when the test failed). `real_hashes`: its password hashes at argon2's own
    parameters, not the test session's cheapest (tests/conftest.py)."""
    port = free_port()
    args = [*(command or ("serve",)), "--listen", f"127.0.0.1:{port}"]
    unset = {"MONITOR_CONFIG", *((CHEAP_HASHES,) if real_hashes else ())}
    # A file, not a pipe: nobody reads the output while it runs, and a full pipe blocks.
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [*_MONITOR, "--config", str(config), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={k: v for k, v in os.environ.items() if k not in unset},
        )
        try:
            _wait_until_healthy(f"http://127.0.0.1:{port}", process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.seek(0)
            print(log.read())


def _wait_until_healthy(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the UI did not start (its output follows)")
        time.sleep(0.1)


def login(url: str, name: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client logged in through the real form (CSRF token included)."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    client.get("/login")
    response = client.post(
        "/login",
        data={"username": name, "password": password, "csrf": client.cookies["monitor_csrf"]},
    )
    assert response.status_code == 303, response.text
    return client


def csrf(client: httpx.Client) -> str:
    return client.cookies["monitor_csrf"]


@dataclass
class Archive:
    """A store with real history: baseline, an edited sentence, an edited title, a removed
    statement (en and ru); users admin, ed (editor), vi (viewer); the UI serving it."""

    config: Path
    store: Path
    url: str
    site: ReplicaSite

    def db(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.store / "index.sqlite")
        connection.row_factory = sqlite3.Row
        return connection

    def version_id(self, key: str, seq: int) -> int:
        row = (
            self.db()
            .execute(
                "SELECT v.id FROM version v JOIN document d ON d.id = v.document_id "
                "WHERE d.key = ? AND v.seq = ?",
                (key, seq),
            )
            .fetchone()
        )
        return int(row["id"])


def check(config: Path) -> None:
    result = monitor_cli(config, "check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session", name="archive")
def archive_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    tmp = tmp_path_factory.mktemp("web")
    with ReplicaSite() as site:
        config = write_config(tmp, site, languages=("en", "ru"))
        # Alerts carry the permalink of their diff, as in production.
        config.write_text(
            config.read_text().replace("[server]\n", '[server]\npublic_url = "http://ui.test"\n')
        )
        check(config)
        site.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)
        check(config)
        site.edit(NEWEST["id"], "en", title=NEWEST["texts"]["en"]["title"] + " (updated)")
        check(config)
        site.remove(MIDDLE["id"])
        check(config)
        for name, role in (("admin", "admin"), ("ed", "editor"), ("vi", "viewer")):
            result = add_user(config, name, role)
            assert result.returncode == 0, result.stderr
        with serving(config) as url:
            yield Archive(config, tmp / "store", url, site)


def screenshot(page: object, name: str) -> Path:
    """Kept under tests/artifacts/ (git-ignored) for people to look at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^\w.-]", "_", name) + ".png")
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
