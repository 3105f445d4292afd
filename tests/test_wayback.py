"""Independent copies (`save_to = ["wayback"]`) against a local stand-in for the Internet
Archive's Save Page Now 2 API: a real HTTP server on 127.0.0.1 that speaks its protocol
(POST /save with `Authorization: LOW access:secret`, GET /save/status/{job}; pending, then
success or error; 429 and "limit of active sessions"; an existing capture handed back as a
stale answer, and `if_not_archived_within`). The archive is filled by the real
`monitor check`, the queue worked by the real submitter on the same SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from monitor.alerts import Deliverer
from monitor.channels.log import LogChannel
from monitor.config import ConfigError, MonitorConfig, load_config, parse_config
from monitor.metrics import REGISTRY
from monitor.store import Store
from monitor.wayback import ACCESS_ENV, SECRET_ENV, Submitter
from tests.conftest import (
    WEBHOOK_SECRET,
    Receiver,
    monitor_cli,
    quiet_monitor,
    serve_on_loopback,
)
from tests.evidence import FIRST, SECOND, PageSite, check_once, page_site, site_config
from tests.webui import add_user, csrf, login, serving

ACCESS = "test-access-4f1c"
SECRET = "test-secret-9d2e7b"
OLD_CAPTURE = "20200101000000"  # what a stale answer hands back


@dataclass
class StandIn:
    """The SPN2 API's state: captures made (per URL), jobs, and what to answer next."""

    url: str = ""
    captures: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    busy: int = 0  # the next submissions answered 429, "limit of active sessions"
    errors: int = 0  # the next jobs end in an error
    stale: int = 0  # the next jobs hand back an old capture instead of making one
    pending: int = 1  # status answers "pending" this many times per job first
    hang: float = 0.0  # every answer waits this long
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submissions(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "POST"]

    def capture(self, target: str, window: str | None) -> str:
        """A job's capture: an existing one within `if_not_archived_within`, else new."""
        now = datetime.now(UTC)
        made = self.captures.setdefault(target, [])
        if window and made:
            newest = datetime.strptime(made[-1], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            if now - newest <= timedelta(minutes=int(window.rstrip("m"))):
                return made[-1]
        stamp = now.strftime("%Y%m%d%H%M%S")
        made.append(stamp)
        return stamp


def serve_standin() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") == f"LOW {ACCESS}:{SECRET}":
                return True
            self._answer(401, {"message": "You need to be logged in"}, {})
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            with state.lock:
                state.requests.append(
                    {"method": "POST", "form": form, "authorization": self.headers["Authorization"]}
                )
                hang = state.hang
            time.sleep(hang)
            if self.path != "/save" or not self._authorised():
                return
            with state.lock:
                if state.busy:
                    state.busy -= 1
                    message = "You have already reached the limit of active sessions."
                    self._answer(429, {"status": "error", "message": message}, {"Retry-After": "0"})
                    return
                job_id = f"spn2-{len(state.jobs) + 1:04d}"
                if state.stale:
                    state.stale -= 1
                    outcome, stamp = "success", OLD_CAPTURE
                elif state.errors:
                    state.errors -= 1
                    outcome, stamp = "error", ""
                else:
                    outcome = "success"
                    stamp = state.capture(form["url"], form.get("if_not_archived_within"))
                state.jobs[job_id] = {
                    "url": form["url"],
                    "outcome": outcome,
                    "timestamp": stamp,
                    "pending": state.pending,
                }
            self._answer(200, {"url": form["url"], "job_id": job_id}, {})

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append({"method": "GET", "path": self.path})
                hang = state.hang
            time.sleep(hang)
            if not self.path.startswith("/save/status/") or not self._authorised():
                return
            with state.lock:
                job = state.jobs.get(self.path.rsplit("/", 1)[-1])
                if job is None:
                    self._answer(404, {"status": "error", "message": "no such job"}, {})
                    return
                job_id = self.path.rsplit("/", 1)[-1]
                if job["pending"]:
                    job["pending"] -= 1
                    self._answer(200, {"status": "pending", "job_id": job_id}, {})
                elif job["outcome"] == "error":
                    # A hostile answer: it repeats our Authorization header back.
                    message = f"Live page unavailable ({self.headers['Authorization']})"
                    body = {"status": "error", "status_ext": "error:service-unavailable"}
                    self._answer(200, {**body, "job_id": job_id, "message": message}, {})
                else:
                    body = {"status": "success", "job_id": job_id, "original_url": job["url"]}
                    self._answer(200, {**body, "timestamp": job["timestamp"]}, {})

        def log_message(self, *args: object) -> None:
            pass

    for base in serve_on_loopback(Handler):
        state.url = base
        yield state


@pytest.fixture
def standin() -> Iterator[StandIn]:
    yield from serve_standin()


@pytest.fixture
def site() -> Iterator[PageSite]:
    yield from page_site()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ACCESS_ENV, ACCESS)
    monkeypatch.setenv(SECRET_ENV, SECRET)


def write_config(
    directory: Path,
    site: PageSite,
    standin: StandIn,
    archive: str = "",
    channels: str = "",
    watch_channels: str = '["console"]',
) -> Path:
    wayback = f"""wayback_endpoint = "{standin.url}"
wayback_interval = "0.1s"
wayback_retry = "0.1s"
wayback_timeout = "5s"
{archive}"""
    return site_config(
        directory,
        site,
        ("1",),
        wayback,
        channels=channels,
        watch_channels=watch_channels,
        watch_extra='save_to = ["wayback"]',
    )


def copies(config: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(config.parent / "store" / "index.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [
            dict(row)
            for row in db.execute(
                "SELECT c.*, v.seq, v.observed_at FROM independent_copy c "
                "JOIN version v ON v.id = c.version_id ORDER BY c.id"
            )
        ]


def work(
    config: Path,
    until: Callable[[list[dict[str, Any]]], bool],
    loaded: MonitorConfig | None = None,
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Rounds of the real submitter, each with a new Store on the archive (as after a
    restart), until `until(rows)`."""
    settings = loaded or load_config(config)
    deadline = time.monotonic() + timeout
    while True:
        with Store(settings.store.path) as store:
            asyncio.run(Submitter(store, settings).round())
        rows = copies(config)
        if until(rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def settled(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(row["state"] in ("captured", "failed") for row in rows)


@pytest.mark.slow
def test_a_new_version_gets_its_capture_url_shown_in_ui_export_and_alerts(
    tmp_path: Path,
    site: PageSite,
    standin: StandIn,
    keys: None,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)
    site.set("1", FIRST)
    config = write_config(
        tmp_path, site, standin, channels=receiver.channel(), watch_channels='["hook"]'
    )
    check_once(config)  # the baseline: its alert-free first look, queued and submitted
    [row] = copies(config)
    assert row["state"] == "submitted" and row["job_id"], row  # the check's own round
    # The edit's alert cannot go yet (the receiver is down): it waits in the outbox.
    receiver.fail_with = 503
    time.sleep(1.1)  # the baseline's capture, in an earlier second than the edit
    site.set("1", SECOND)
    check_once(config)
    rows = work(config, settled)
    assert [r["state"] for r in rows] == ["captured", "captured"]
    for row in rows:
        stamp = row["capture_url"].split("/web/", 1)[1].split("/", 1)[0]
        assert row["capture_url"] == f"{standin.url}/web/{stamp}/{site.page_url('1')}"
        assert row["captured_at"][:19] >= row["observed_at"][:19]  # not older than the version
        assert row["attempts"] == 1 and row["last_error"] is None
    [first, _second] = standin.submissions()
    assert first["authorization"] == f"LOW {ACCESS}:{SECRET}"
    assert first["form"]["url"] == site.page_url("1")

    # The alert goes once the receiver is back, after the capture: it names the copy.
    receiver.fail_with = None
    settings = load_config(config)
    with Store(settings.store.path) as store:
        deliverer = Deliverer.from_config(store, settings)
        deliverer.clock = lambda: datetime.now(UTC) + timedelta(days=1)  # past its backoff
        assert asyncio.run(deliverer.deliver_due()) == 1
    [alert] = receiver.alerts("edited")
    copy = {
        "target": "wayback",
        "url": rows[1]["capture_url"],
        "captured_at": rows[1]["captured_at"],
    }
    assert alert["independent_copies"] == [copy]
    text = LogChannel("console", settings.channels["console"]).text(alert)
    assert f"Independent copy: {rows[1]['capture_url']}" in text

    # The export carries it; the web UI's snapshot page shows it.
    exported = tmp_path / "export.jsonl"
    assert (
        monitor_cli(config, "export", "--format", "jsonl", "--output", str(exported)).returncode
        == 0
    )
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    versions = [line for line in lines if "version" in line and "type" not in line]
    assert [v["independent_copies"][0]["url"] for v in versions] == [r["capture_url"] for r in rows]
    config.write_text(config.read_text() + '\n[server]\npublic = true\nlisten = "127.0.0.1:0"\n')
    assert add_user(config, "ed", "editor").returncode == 0
    with serving(config) as base, httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/watch/statement-1/versions/2", params={"key": "page"})
        assert page.status_code == 200
        assert "Independent copy" in page.text and rows[1]["capture_url"] in page.text
        # The watch form shows the setting and changes it.
        editor = login(base, "ed")
        shown = editor.get("/watch/statement-1/edit").text
        assert re.search(r'name="save_to_wayback"\s+checked', shown)
        form = {
            "url": site.page_url("1"),
            "interval": "15m",
            "profile": "generic",
            "language": "en",
            "channels": ["hook"],
        }
        for ticked, expected in (({}, []), ({"save_to_wayback": "on"}, ["wayback"])):
            saved = editor.post(
                "/watch/statement-1/edit", data={**form, **ticked, "csrf": csrf(editor)}
            )
            assert saved.status_code == 303, saved.text
            with sqlite3.connect(tmp_path / "store" / "index.sqlite") as db:
                [(stored,)] = db.execute("SELECT config FROM ui_watch WHERE id = 'statement-1'")
            assert json.loads(stored).get("save_to", []) == expected  # defaults left out


@pytest.mark.slow
def test_failures_are_retried_from_the_queue_across_restarts(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    standin.busy = 2  # the check's own round and the next are turned away
    standin.errors = 1  # then the job fails at the Archive
    standin.pending = 2
    config = write_config(tmp_path, site, standin)
    check_once(config)
    [row] = copies(config)
    assert row["state"] == "queued" and "limit of active sessions" in row["last_error"]
    assert row["attempts"] == 0  # being turned away costs no attempt

    # Every round below opens a new Store on the file, as a restarted daemon would.
    rows = work(config, lambda rows: rows[0]["attempts"] == 1 and rows[0]["state"] == "queued")
    assert "error:service-unavailable" in rows[0]["last_error"]
    [row] = work(config, settled)
    assert row["state"] == "captured" and row["attempts"] == 2
    assert len(standin.submissions()) == 4  # 2 turned away, 1 failed job, 1 capture

    # Keys travel in every request and nowhere else, though an answer repeated them.
    assert {r["authorization"] for r in standin.submissions()} == {f"LOW {ACCESS}:{SECRET}"}
    exported = tmp_path / "export.jsonl"
    result = monitor_cli(config, "export", "--format", "jsonl", "--output", str(exported))
    database = (tmp_path / "store" / "index.sqlite").read_bytes()
    for text in (exported.read_text(), result.stdout + result.stderr):
        assert SECRET not in text and ACCESS not in text
    assert SECRET.encode() not in database and ACCESS.encode() not in database


@pytest.mark.slow
def test_given_up_after_the_attempts_with_the_reason(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    standin.errors = 5
    standin.pending = 0
    config = write_config(tmp_path, site, standin, "wayback_attempts = 2")
    check_once(config)
    [row] = work(config, settled)
    assert row["state"] == "failed" and row["attempts"] == 2
    assert (
        "error:service-unavailable" in row["last_error"] and "after 2 attempts" in row["last_error"]
    )
    assert SECRET not in row["last_error"]


@pytest.mark.slow
def test_a_stale_capture_is_refused(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    site.set("1", FIRST)
    standin.stale = 1
    config = write_config(tmp_path, site, standin)
    check_once(config)
    rows = work(config, lambda rows: rows[0]["stale"] == 1)
    assert rows[0]["state"] == "queued" and rows[0]["capture_url"] is None
    assert f"/web/{OLD_CAPTURE}/" in rows[0]["last_error"]
    [row] = work(config, settled)
    assert row["state"] == "captured" and OLD_CAPTURE not in row["capture_url"]
    assert row["captured_at"][:19] >= row["observed_at"][:19]
    # Submitted again, asking for any capture younger than the version, or a new one.
    [first, again] = standin.submissions()
    assert "if_not_archived_within" not in first["form"]
    assert again["form"]["if_not_archived_within"].endswith("m")
    assert SECRET not in caplog.text


@pytest.mark.slow
def test_stale_answers_end_in_failure_after_the_retries(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    standin.stale = 5
    config = write_config(tmp_path, site, standin, "wayback_stale_retries = 1")
    check_once(config)
    [row] = work(config, settled)
    assert row["state"] == "failed" and row["stale"] == 2 and row["capture_url"] is None
    assert row["last_error"].startswith("stale answer: capture ")
    assert len(standin.submissions()) == 2


@pytest.mark.slow
def test_a_version_superseded_before_submission_is_not_submitted(
    tmp_path: Path, site: PageSite, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.set("1", FIRST)
    config = write_config(tmp_path, site, standin)
    check_once(config)  # no keys yet: queued, waiting
    site.set("1", SECOND)
    check_once(config)
    rows = copies(config)
    assert [r["state"] for r in rows] == ["queued", "queued"]
    assert all("no keys" in r["last_error"] for r in rows)
    assert standin.submissions() == []
    work(config, lambda rows: True)  # a round here, for the gauge /metrics shows
    assert REGISTRY.get_sample_value("monitor_independent_copies_waiting") == 2
    monkeypatch.setenv(ACCESS_ENV, ACCESS)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    rows = work(config, settled)
    assert [r["state"] for r in rows] == ["failed", "captured"]
    assert rows[0]["last_error"].startswith("superseded: version 2 was seen at")
    assert len(standin.submissions()) == 1
    assert REGISTRY.get_sample_value("monitor_independent_copies_waiting") == 0


def test_a_url_with_credentials_is_never_submitted(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    config = write_config(tmp_path, site, standin)
    secret_url = site.page_url("1").replace("http://", "http://reader:hunter2@")
    config.write_text(config.read_text().replace(site.page_url("1"), secret_url))
    check_once(config)
    [row] = copies(config)
    assert row["state"] == "failed"
    assert row["last_error"] == "not submitted: the URL carries credentials"
    assert standin.submissions() == []


@pytest.mark.slow
def test_a_hanging_archive_never_holds_up_a_check_run(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    standin.hang = 300.0
    config = write_config(tmp_path, site, standin)
    config.write_text(
        config.read_text().replace('wayback_timeout = "5s"', 'wayback_timeout = "1s"')
    )
    started = time.monotonic()
    out = check_once(config)
    # The round at the end gives up after wayback_timeout (the rest of the time is the
    # check itself, slow only on a loaded machine); the archive would have taken 300 s.
    assert time.monotonic() - started < 120
    assert "statement-1: changed (1 new versions" in out
    [row] = copies(config)
    assert row["state"] == "queued"  # claimed for a while, then there for the next round
    assert len(standin.submissions()) <= 1  # none if the round ran out of time before it


@pytest.mark.slow
def test_a_hanging_archive_never_holds_up_the_daemon(
    tmp_path: Path, site: PageSite, standin: StandIn, keys: None
) -> None:
    site.set("1", FIRST)
    standin.hang = 300.0
    config = write_config(tmp_path, site, standin)
    text = config.read_text().replace('wayback_timeout = "5s"', 'wayback_timeout = "200s"')
    config.write_text(text.replace('language = "en"', 'language = "en"\ninterval = "1s"'))
    database = tmp_path / "store" / "index.sqlite"
    daemon = quiet_monitor(config, "run", "--no-web")
    try:
        # The submitter waits on its one request; the checks go on every second.
        deadline = time.monotonic() + 120
        runs = 0
        while runs < 4 or not standin.submissions():
            assert daemon.poll() is None and time.monotonic() < deadline, f"{runs} checks"
            time.sleep(0.5)
            if not database.exists():
                continue
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(database) as db:
                (runs,) = db.execute("SELECT count(*) FROM check_run").fetchone()  # once made
        assert len(standin.submissions()) == 1
        assert copies(config)[0]["state"] == "queued"
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def test_save_to_names_a_known_target() -> None:
    watch = '[[watch]]\nid = "a"\nurl = "https://example.org/"\n'
    source = watch + 'save_to = ["wayback", "archive.today"]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(source, "monitor.toml")
    assert caught.value.line == 4 and caught.value.field == "watch[0].save_to"
    assert "unknown target 'archive.today' (known: wayback)" in str(caught.value)
    config = parse_config(
        '[[watch]]\nid = "a"\nurl = "https://example.org/"\nsave_to = ["wayback"]\n'
    )
    assert config.watch[0].save_to == ["wayback"]
    assert (
        parse_config('[[watch]]\nid = "a"\nurl = "https://example.org/"\n').watch[0].save_to == []
    )
