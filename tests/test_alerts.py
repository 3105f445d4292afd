"""Alerts: delivered through real channels, retried from the outbox, cut to length."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from monitor.channels.message import render_text
from monitor.check import Checker
from monitor.config import load_config
from monitor.fetch import Fetcher
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.sites import profile_names
from monitor.store import Store
from tests.conftest import Receiver, monitor_cli, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
OLD = "stands ready to provide further assistance if necessary"
NEW = "will consider further assistance upon a formal request"


@pytest.mark.slow
def test_failed_webhook_delivery_is_retried_until_it_arrives_once(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver)
    text = config.read_text().replace(
        'failing_after = "0s"', 'failing_after = "0s"\nretry_base = "0.5s"'
    )
    config.write_text(text)
    assert monitor_cli(config, "check").returncode == 0
    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    receiver.fail_with = 503
    assert monitor_cli(config, "check").returncode == 0
    db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    status, attempts, error = db.execute(
        "SELECT status, attempts, last_error FROM delivery WHERE channel='hook'"
    ).fetchone()
    assert (status, attempts) == ("pending", 1)
    assert "503" in error
    receiver.fail_with = None
    time.sleep(0.6)
    assert monitor_cli(config, "check").returncode == 0  # delivers what is due
    assert monitor_cli(config, "check").returncode == 0
    assert [a["kind"] for a in receiver.alerts()] == ["edited"]
    assert db.execute("SELECT status FROM delivery WHERE channel='hook'").fetchone() == ("sent",)


@pytest.mark.slow
def test_apprise_channel_delivers_through_the_library(
    tmp_path: Path,
    replica: ReplicaSite,
    apprise_endpoint: tuple[str, list[dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = apprise_endpoint
    config = write_config(tmp_path, replica)
    text = config.read_text().replace('channels = ["console"]', 'channels = ["console", "apprise"]')
    text += '\n[channels.apprise]\ntype = "apprise"\nurl_env = "TEST_APPRISE_URL"\n'
    config.write_text(text)
    monkeypatch.setenv("TEST_APPRISE_URL", url)
    assert monitor_cli(config, "check").returncode == 0
    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    result = monitor_cli(config, "check")
    assert result.returncode == 0
    assert url not in result.stdout + result.stderr  # the URL may carry a token
    [message] = received
    title = str(message["title"])
    assert "EDITED" in title and NEWEST["texts"]["en"]["title"] in title
    assert NEW in str(message["message"]) and OLD in str(message["message"])


def test_long_diffs_are_cut_with_a_count_and_the_link() -> None:
    changes = [
        {"where": f"paragraph {n}", "before": "word " * 60, "after": "other " * 60}
        for n in range(1, 80)
    ]
    payload = {
        "watch": "mfa-en",
        "kind": "edited",
        "title": "A long statement",
        "summary": "many changes",
        "changes": changes,
        "url": "https://www.gov.kz/x",
        "diff_url": "https://monitor.example.org/watch/mfa-en/diff?b=2",
        "observed_at": "2026-11-25T10:00:00Z",
    }
    text = render_text(payload, max_length=1500)
    assert len(text) <= 1500
    assert "more changes" in text
    assert text.rstrip().endswith("Observed: 2026-11-25T10:00:00Z")
    assert "https://monitor.example.org/watch/mfa-en/diff?b=2" in text
    shown = text.count("• Paragraph")
    assert f"… {79 - shown} more changes" in text


def test_an_edit_reverted_before_confirmation_is_archived_as_transient_not_alerted(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config_path = write_config(tmp_path, replica, confirm_delay="5s")
    config = load_config(config_path, profile_names())
    watch = config.watch[0]

    async def run() -> tuple[list[object], list[str], list[tuple[str, str | None]]]:
        with Store(config.store.path) as store:
            async with Fetcher(config.fetch) as fetcher:
                checker = Checker(config, store, fetcher)
                first = await checker.check(watch)
                replica.replace_text(NEWEST["id"], "en", OLD, NEW)
                seen = await checker.check(watch)  # archived at once, pending
                replica.replace_text(NEWEST["id"], "en", NEW, OLD)  # the ministry relents
                reverted = await checker.check(watch)
                replica.replace_text(NEWEST["id"], "en", OLD, NEW)
                again = await checker.check(watch)
                held = await checker.check(watch)  # the confirming look: still there
                outcomes = [
                    first.outcome,
                    (seen.outcome, seen.recheck_in),
                    (reverted.outcome, reverted.alerts),
                    (again.outcome, again.alerts),
                    (held.outcome, held.alerts, held.recheck_in),
                ]
                kinds = [row["kind"] for row in store.alerts()]
                document = store.documents(watch.id)[0]
                history = [
                    (row["kind"], row["confirmation"]) for row in store.versions(document["id"])
                ]
                return outcomes, kinds, history

    outcomes, kinds, history = asyncio.run(run())
    assert outcomes == [
        "changed",
        ("changed", 5.0),
        ("changed", 0),
        ("changed", 0),
        ("unchanged", 1, None),
    ]
    assert kinds == ["edited"]
    # Every text seen is kept: the edit that did not hold is marked, not lost.
    assert history == [
        ("baseline", None),
        ("edited", "transient"),
        ("edited", None),
        ("edited", "held"),
    ]


def test_a_watch_that_asks_for_transient_edits_hears_of_them(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config_path = write_config(
        tmp_path, replica, confirm_delay="5s", watch_extra="alert_transient = true"
    )
    config = load_config(config_path, profile_names())
    watch = config.watch[0]

    async def run() -> list[dict[str, object]]:
        with Store(config.store.path) as store:
            async with Fetcher(config.fetch) as fetcher:
                checker = Checker(config, store, fetcher)
                await checker.check(watch)
                replica.replace_text(NEWEST["id"], "en", OLD, NEW)
                await checker.check(watch)
                replica.replace_text(NEWEST["id"], "en", NEW, OLD)  # gone by the next look
                await checker.check(watch)
                return [json.loads(row["payload"]) for row in store.alerts()]

    [alert] = asyncio.run(run())
    assert alert["kind"] == "edited" and alert["transient"] is True
    assert str(alert["summary"]).startswith("did not hold")
    assert NEW in json.dumps(alert["added"])
