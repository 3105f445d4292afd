"""End to end: the `monitor` command against the gov.kz replica over real HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import Receiver, monitor_cli, write_config
from tests.postgres import Backend

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
MIDDLE = sorted(STATEMENTS, key=lambda s: s["created_date"])[3]
SENTENCE_OLD = "stands ready to provide further assistance if necessary"
SENTENCE_NEW = "will consider further assistance upon a formal request"


def db(tmp_path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    connection.row_factory = sqlite3.Row
    return connection


def stored_blobs(tmp_path: Path) -> set[str]:
    """The blobs the archive lists (their bytes in the database or in files)."""
    return {row[0] for row in db(tmp_path).execute("SELECT sha256 FROM blob")}


def check_ok(config: Path, *args: str) -> str:
    result = monitor_cli(config, "check", *args, "--once")
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def test_first_check_is_a_silent_baseline_of_every_statement(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, languages=("en", "ru", "kk"))
    output = check_ok(config)
    assert "mfa-en: changed (8 new versions, 0 alerts)" in output
    assert receiver.posts == []
    rows = db(tmp_path).execute("SELECT key, language, title FROM document").fetchall()
    assert len(rows) == 24
    titles = {
        row["language"]: row["title"] for row in rows if row["key"].endswith(str(NEWEST["id"]))
    }
    assert titles == {lang: NEWEST["texts"][lang]["title"] for lang in ("en", "ru", "kk")}


def test_unchanged_check_adds_a_row_and_no_blob_despite_the_view_counter(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver)
    check_ok(config)
    blobs_before = stored_blobs(tmp_path)
    views_before = replica.state()["statements"][0]["views"]
    output = check_ok(config)
    assert replica.state()["statements"][0]["views"] > views_before  # the page did "move"
    assert "mfa-en: unchanged (0 new versions, 0 alerts)" in output
    assert stored_blobs(tmp_path) == blobs_before
    outcomes = [r["outcome"] for r in db(tmp_path).execute("SELECT outcome FROM check_run")]
    assert outcomes == ["changed", "unchanged"]
    assert receiver.posts == []


def test_edited_sentence_gives_one_alert_with_the_sentence_before_and_after(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, languages=("en", "ru"))
    check_ok(config)
    replica.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)
    output = check_ok(config)
    assert "mfa-en: changed (1 new versions, 1 alerts)" in output
    assert "mfa-ru: unchanged" in output
    [alert] = receiver.alerts()
    assert receiver.bad_signatures == 0
    assert alert["kind"] == "edited"
    assert alert["watch"] == "mfa-en"
    assert alert["key"] == f"en/{NEWEST['id']}"
    assert alert["title"] == NEWEST["texts"]["en"]["title"]
    assert alert["removed"] == [SENTENCE_OLD]
    assert alert["added"] == [SENTENCE_NEW]
    [change] = alert["changes"]
    assert change["where"] == "paragraph 4"
    assert change["before"].endswith(SENTENCE_OLD + ".")
    assert change["after"].endswith(SENTENCE_NEW + ".")
    assert SENTENCE_OLD in alert["summary"] and SENTENCE_NEW in alert["summary"]
    for key in ("watch", "kind", "title", "summary", "removed", "added", "diff_url", "observed_at"):
        assert key in alert
    # The console channel prints the same alert for people reading the daemon's output.
    assert "EDITED" in output and SENTENCE_NEW in output
    # The archive has both versions, and `diff` shows the words that moved.
    diff = monitor_cli(config, "diff", "mfa-en")
    assert diff.returncode == 0
    assert f"[-{SENTENCE_OLD}-]{{+{SENTENCE_NEW}+}}" in diff.stdout


def test_edited_title_is_reported_as_a_title_change(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, languages=("kk",))
    check_ok(config)
    old_title = MIDDLE["texts"]["kk"]["title"]
    replica.edit(MIDDLE["id"], "kk", title=old_title + " (жаңартылған)")
    check_ok(config)
    [alert] = receiver.alerts("edited")
    assert alert["changes"][0]["field"] == "title"
    assert alert["changes"][0]["before"] == old_title
    assert "жаңартылған" in " ".join(alert["added"])
    assert alert["language"] == "kk"


def test_new_statement_is_published_once(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver)
    check_ok(config)
    texts = {
        lang: {
            "title": f"Comment of the MFA spokesperson ({lang})",
            "body": "<p>The Ministry notes the decision. Consultations continue in Astana.</p>",
            "short_description": "",
            "slug": f"comment-{lang}",
        }
        for lang in ("en", "ru", "kk")
    }
    new_id = replica.add(texts)
    check_ok(config)
    check_ok(config)
    [alert] = receiver.alerts()
    assert alert["kind"] == "published"
    assert alert["key"] == f"en/{new_id}"
    assert alert["title"] == "Comment of the MFA spokesperson (en)"


@pytest.mark.slow
def test_removed_statement_is_reported_and_pushed_off_statements_are_not(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    # A listing of 5: adding two statements pushes two old ones off the page; that is not
    # a removal. Removing one that is still inside the listing's date window is.
    config = write_config(tmp_path, replica, receiver, watch_extra="options = { size = 5 }")
    check_ok(config)
    body = {"title": "Briefing", "body": "<p>Text of the briefing.</p>", "short_description": ""}
    for slug in ("b1", "b2"):
        replica.add({lang: {**body, "slug": slug} for lang in ("en", "ru", "kk")})
    check_ok(config)
    assert {a["kind"] for a in receiver.alerts()} == {"published"}
    assert len(receiver.alerts()) == 2
    replica.remove(NEWEST["id"])
    check_ok(config)
    [removed] = receiver.alerts("removed")
    assert removed["key"] == f"en/{NEWEST['id']}"
    assert removed["title"] == NEWEST["texts"]["en"]["title"]
    row = (
        db(tmp_path)
        .execute("SELECT removed_at FROM document WHERE key=?", (f"en/{NEWEST['id']}",))
        .fetchone()
    )
    assert row["removed_at"] is not None
    # Restored: the archive says so and the alert follows.
    replica.restore(NEWEST["id"])
    check_ok(config)
    assert len(receiver.alerts("restored")) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["down", "error", "captcha", "maintenance"])
def test_site_failure_is_a_problem_alerted_once_never_a_removal(
    tmp_path: Path,
    replica: ReplicaSite,
    receiver: Receiver,
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A captcha makes a check ask a browser for fresh API headers: a Chromium start-up per
    # check (tests/test_browser.py is about that). Here, as on a server without Chromium,
    # there is none to ask (the check runs in this process: its PATH is this one's).
    monkeypatch.setenv("PATH", str(tmp_path / "no-chromium-here"))
    config = write_config(tmp_path, replica, receiver)
    check_ok(config)
    replica.set_mode(mode)
    for _ in range(3):
        result = monitor_cli(config, "check", "--once")
        assert result.returncode == 1
        assert "mfa-en: problem" in result.stdout
    replica.set_mode("ok")
    check_ok(config)
    check_ok(config)
    kinds = [a["kind"] for a in receiver.alerts()]
    assert kinds == ["failing", "recovered"]
    assert "failing since" in receiver.alerts("failing")[0]["summary"]
    versions = db(tmp_path).execute("SELECT kind, COUNT(*) n FROM version GROUP BY kind").fetchall()
    assert {row["kind"]: row["n"] for row in versions} == {"baseline": 8}


@pytest.mark.slow
def test_failing_alert_waits_for_failing_after(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, failing_after="1h")
    check_ok(config)
    replica.set_mode("error")
    for _ in range(2):
        assert monitor_cli(config, "check").returncode == 1
    replica.set_mode("ok")
    check_ok(config)
    assert receiver.posts == []  # a short blip is not worth waking anyone


@pytest.mark.parametrize("rest_format", ["page", "list"])
def test_rest_api_is_the_fallback_when_graphql_is_gone(
    tmp_path: Path, receiver: Receiver, rest_format: str
) -> None:
    with ReplicaSite(rest_format=rest_format) as site:
        site.set_mode("graphql_off")
        config = write_config(tmp_path, site, receiver)
        assert "mfa-en: changed (8 new versions" in check_ok(config)
        site.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)
        check_ok(config)
        assert [a["kind"] for a in receiver.alerts()] == ["edited"]
        paths = [path for _, path in site.requests]
        assert any(path.startswith("/api/v1/public/content-manager/news?") for path in paths)


def test_loopback_is_refused_unless_allowed(tmp_path: Path, replica: ReplicaSite) -> None:
    config = write_config(tmp_path, replica, allow_private=False)
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 1
    assert "non-public address 127.0.0.1" in result.stdout
    assert replica.requests == []


def test_single_watch_and_unknown_watch(tmp_path: Path, replica: ReplicaSite) -> None:
    config = write_config(tmp_path, replica, languages=("en", "ru"))
    output = check_ok(config, "mfa-ru")
    assert "mfa-ru: changed" in output and "mfa-en" not in output
    result = monitor_cli(config, "check", "nope")
    assert result.returncode == 2
    assert "no watch 'nope'" in result.stderr


def test_history_show_and_verify_read_the_archive(tmp_path: Path, replica: ReplicaSite) -> None:
    config = write_config(tmp_path, replica)
    check_ok(config)
    replica.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)
    check_ok(config)
    history = monitor_cli(config, "history", "mfa-en", "--key", f"en/{NEWEST['id']}")
    assert history.returncode == 0
    assert "baseline" in history.stdout and "edited" in history.stdout
    numbers = [line.split()[0] for line in history.stdout.splitlines() if "#" in line]
    assert numbers == ["#1", "#2"]  # a statement's versions, counted in that statement
    key = f"en/{NEWEST['id']}"
    shown = monitor_cli(config, "show", "mfa-en", "2", "--key", key)
    assert SENTENCE_NEW in shown.stdout
    raw = monitor_cli(config, "show", "mfa-en", "1", "--key", key, "--raw")
    assert SENTENCE_OLD in raw.stdout  # the API's JSON as received, before the edit
    assert monitor_cli(config, "verify").returncode == 0
    # Tamper with one stored blob: verify must notice and fail.
    archive = Backend("sqlite", tmp_path / "store")
    victim = sorted(stored_blobs(tmp_path))[0]
    archive.spoil_blob(victim, archive.stored_blob(victim)[:-3] + b"xyz")
    result = monitor_cli(config, "verify")
    assert result.returncode == 1
    assert "DAMAGE" in result.stdout


@pytest.mark.slow
def test_a_flip_flop_is_archived_but_alerted_once(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver)
    check_ok(config)
    replica.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)  # A → B
    check_ok(config)
    replica.replace_text(NEWEST["id"], "en", SENTENCE_NEW, SENTENCE_OLD)  # B → A
    check_ok(config)
    replica.replace_text(NEWEST["id"], "en", SENTENCE_OLD, SENTENCE_NEW)  # A → B again
    check_ok(config)
    assert [a["kind"] for a in receiver.alerts()] == ["edited"]
    history = monitor_cli(config, "history", "mfa-en", "--key", f"en/{NEWEST['id']}")
    lines = [line for line in history.stdout.splitlines() if line.strip().startswith("#")]
    assert len(lines) == 4  # every version is archived
    assert "back to the text of version" in lines[2] and "back to the text of version" in lines[3]
