"""Discovery: a listing's statements become watches of their own, on adaptive schedules."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config
from monitor.discover import interval_for, statement_watch_id
from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import FeedServer, Receiver, monitor_cli, write_config

OLDEST = min(STATEMENTS, key=lambda s: s["created_date"])
NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
DISCOVER = 'discover = true\noptions = { size = 3 }\ndiscover_schedule = ["10m until 1d", "2h"]'
BODY = "<p>The Ministry notes the decision. Consultations continue in Astana.</p>"


def check_ok(config: Path, *args: str) -> str:
    result = monitor_cli(config, "check", *args, "--once")
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def rows(tmp_path: Path, query: str, *params: object) -> list[sqlite3.Row]:
    connection = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    connection.row_factory = sqlite3.Row
    return connection.execute(query, params).fetchall()


def scheduled_gap(tmp_path: Path, watch_id: str) -> timedelta:
    """How long after its last check the watch is next due, as stored."""
    [state] = rows(
        tmp_path, "SELECT last_check_at, next_run_at FROM watch_state WHERE watch_id=?", watch_id
    )
    due, last = state["next_run_at"], state["last_check_at"]
    return datetime.fromisoformat(due) - datetime.fromisoformat(last)


def add_statement(replica: ReplicaSite, title: str) -> int:
    texts = {
        lang: {"title": f"{title} ({lang})", "body": BODY, "short_description": "", "slug": title}
        for lang in ("en", "ru", "kk")
    }
    return replica.add(texts)


@pytest.mark.slow
def test_listing_statements_become_watches_and_a_new_one_is_published(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, ("en", "ru"), watch_extra=DISCOVER)
    output = check_ok(config)
    # First sight: the three listed statements per language, each its own watch, silent.
    assert "mfa-en: changed (0 new versions" in output
    watches = {r["watch_id"] for r in rows(tmp_path, "SELECT watch_id FROM discovered")}
    assert f"mfa-en.en-{NEWEST['id']}" in watches
    assert len(watches) == 6
    baseline = rows(tmp_path, "SELECT kind, COUNT(*) n FROM version GROUP BY kind")
    assert [(r["kind"], r["n"]) for r in baseline] == [("baseline", 6)]
    # The listing keeps no statements itself: each is archived once, by its own watch.
    owners = {r["watch_id"] for r in rows(tmp_path, "SELECT watch_id FROM document")}
    assert owners == watches
    assert receiver.posts == []

    new_id = add_statement(replica, "Comment of the MFA spokesperson")
    output = check_ok(config)
    assert f"mfa-en.en-{new_id}: changed (1 new versions, 1 alerts)" in output
    published = receiver.alerts("published")
    assert {a["watch"] for a in published} == {f"mfa-en.en-{new_id}", f"mfa-ru.ru-{new_id}"}
    [english] = [a for a in published if a["language"] == "en"]
    assert english["title"] == "Comment of the MFA spokesperson (en)"
    assert english["url"].endswith(f"/details/{new_id}?lang=en")
    # Its translations are named, whichever language was found first.
    others = [t for a in published for t in a["translations"]]
    assert {t["language"] for t in others} <= {"en", "ru"} and others
    assert len(receiver.posts) == 2  # nothing else: no alert from the listing itself

    check_ok(config)
    assert len(receiver.posts) == 2  # announced once

    # The listing's watch is a way in: its history and exports are its statements'.
    history = monitor_cli(config, "history", "mfa-en")
    assert history.returncode == 0 and "nothing stored" not in history.stdout
    assert f"(mfa-en.en-{new_id})" in history.stdout and "Comment of the MFA" in history.stdout
    exported = monitor_cli(config, "export", "--format", "jsonl", "--watch", "mfa-en").stdout
    lines = [json.loads(line) for line in exported.splitlines()][:-1]
    assert len(lines) == 4 and {line["watch"] for line in lines} >= {f"mfa-en.en-{new_id}"}
    warc = tmp_path / "en.warc"
    assert monitor_cli(config, "export", "--warc", str(warc), "--watch", "mfa-en").returncode == 0
    assert warc.read_bytes().count(b"WARC-Type: resource") == 4


@pytest.mark.slow
def test_a_statement_pushed_off_the_listing_is_still_watched_and_its_edit_alerted(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, watch_extra=DISCOVER)
    check_ok(config)
    first = NEWEST["id"]
    for n in range(3):  # three newer statements push the first three off the listing
        add_statement(replica, f"Briefing {n}")
    check_ok(config)
    assert len(receiver.alerts("published")) == 3
    assert receiver.alerts("removed") == []
    # An edit to a statement no listing shows any more: its own watch sees it.
    old = "stands ready to provide further assistance if necessary"
    new = "will consider further assistance upon a formal request"
    replica.replace_text(first, "en", old, new)
    output = check_ok(config, f"mfa-en.en-{first}")
    assert "changed (1 new versions, 1 alerts)" in output
    [edited] = receiver.alerts("edited")
    assert edited["watch"] == f"mfa-en.en-{first}"
    assert edited["removed"] == [old] and edited["added"] == [new]


@pytest.mark.slow
def test_an_edit_seen_on_the_listing_wakes_the_statement_watch_for_one_alert(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, watch_extra=DISCOVER)
    check_ok(config)
    replica.edit(NEWEST["id"], "en", title=NEWEST["texts"]["en"]["title"] + " (updated)")
    output = check_ok(config, "mfa-en")
    # The listing does not alert; it makes the statement's own watch check at once.
    assert "mfa-en: unchanged" in output
    assert f"mfa-en.en-{NEWEST['id']}: changed (1 new versions, 1 alerts)" in output
    [edited] = receiver.alerts()
    assert edited["kind"] == "edited" and edited["watch"] == f"mfa-en.en-{NEWEST['id']}"


@pytest.mark.slow
def test_a_statement_deleted_inside_the_listing_window_is_removed_by_its_watch(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, watch_extra=DISCOVER)
    check_ok(config)
    replica.remove(NEWEST["id"])
    output = check_ok(config, "mfa-en")
    assert f"mfa-en.en-{NEWEST['id']}: changed (1 new versions, 1 alerts)" in output
    [removed] = receiver.alerts("removed")
    assert removed["watch"] == f"mfa-en.en-{NEWEST['id']}"
    # Asked once: the next listing check does not wake it again.
    output = check_ok(config, "mfa-en")
    assert f"mfa-en.en-{NEWEST['id']}" not in output


def test_statement_watches_get_an_interval_by_age_and_a_file_watch_overrides_one(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config = write_config(tmp_path, replica, watch_extra=DISCOVER)
    check_ok(config)
    listed = monitor_cli(config, "check", f"mfa-en.en-{OLDEST['id']}", "--once")
    assert listed.returncode != 0  # the oldest is not on a listing of three
    result = monitor_cli(config, "check", f"mfa-en.en-{NEWEST['id']}", "--once")
    assert result.returncode == 0
    # The replica's statements are older than a day: the schedule's "2h" step.
    assert scheduled_gap(tmp_path, f"mfa-en.en-{NEWEST['id']}") == timedelta(hours=2)
    text = config.read_text() + (
        f'\n[[watch]]\nid = "mfa-en.en-{NEWEST["id"]}"\n'
        f'url = "{replica.url}/memleket/entities/mfa/press/news/details/{NEWEST["id"]}?lang=en"\n'
        'interval = "5m"\nlanguage = "en"\nprofile = "govkz"\n'
    )
    config.write_text(text)
    check_ok(config, f"mfa-en.en-{NEWEST['id']}")
    assert scheduled_gap(tmp_path, f"mfa-en.en-{NEWEST['id']}") == timedelta(minutes=5)


def test_schedule_steps_by_age() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    schedule = ["10m until 1d", "1h until 7d", "6h until 30d", "1d"]

    def at_age(age: timedelta) -> float:
        return interval_for(schedule, (now - age).isoformat(), "", now)

    assert at_age(timedelta(hours=2)) == 600
    assert at_age(timedelta(days=3)) == 3600
    assert at_age(timedelta(days=10)) == 6 * 3600
    assert at_age(timedelta(days=400)) == 86400
    # No date on the statement: its age counts from when the listing showed it.
    assert interval_for(schedule, None, (now - timedelta(hours=1)).isoformat(), now) == 600


def test_statement_watch_ids_are_readable_and_bounded() -> None:
    assert statement_watch_id("mfa-kz-en", "en/1048252") == "mfa-kz-en.en-1048252"
    long = statement_watch_id("mfa-kz-en", "https://example.org/" + "x" * 200)
    assert len(long) <= 64 and long.startswith("mfa-kz-en.")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ('["10 minutes until 1d"]', "discover_schedule: step 1 '10 minutes until 1d'"),
        ('["1h until 7d", "10m until 1d"]', "ages must grow"),
        ("[]", "at least one step"),
    ],
)
def test_a_bad_schedule_names_the_line_and_step(schedule: str, message: str) -> None:
    source = (
        '[[watch]]\nid = "a"\nurl = "https://example.org/news"\ndiscover = true\n'
        f"discover_schedule = {schedule}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(source, "monitor.toml")
    assert caught.value.line == 5
    assert message in str(caught.value)


ARTICLE = """<!doctype html><html lang="en"><head><title>{title}</title></head><body>
<nav>Home · Press · Contacts</nav><main><article><h1>{title}</h1>
<p>{text} The delegations discussed trade, transit and water resources in detail.</p>
<p>The parties agreed to continue consultations at the level of deputy ministers.</p>
</article></main><footer>© Ministry</footer></body></html>"""


def atom_feed(base: str, entries: list[tuple[int, str]]) -> bytes:
    items = "".join(
        f"<entry><id>{base}/press/{n}</id><title>{title}</title>"
        f'<link rel="alternate" href="{base}/press/{n}"/>'
        f"<published>2026-11-{10 + n:02d}T10:00:00Z</published>"
        f"<summary>{title}</summary></entry>"
        for n, title in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Press</title><id>{base}/feed</id><updated>2026-11-20T10:00:00Z</updated>"
        f"{items}</feed>"
    ).encode()


@pytest.mark.slow
def test_a_feed_discovers_statement_pages_read_by_their_own_profile(
    tmp_path: Path, feeds: FeedServer, receiver: Receiver
) -> None:
    entries = [(1, "Talks in Astana"), (2, "Visit to Tashkent")]
    for n, title in [*entries, (3, "Statement on the floods")]:
        page = ARTICLE.format(title=title, text=f"Statement number {n}.")
        feeds.serve(f"/press/{n}", "text/html; charset=utf-8", page.encode())
    feeds.serve("/feed", "application/atom+xml", atom_feed(feeds.url, entries))
    config = write_config(tmp_path, None, receiver, languages=())
    config.write_text(
        config.read_text()
        + f'\n[[watch]]\nid = "press"\nurl = "{feeds.url}/feed"\nlanguage = "en"\n'
        'channels = ["hook"]\ndiscover = true\n'
    )
    check_ok(config)
    assert receiver.posts == []
    feeds.serve(
        "/feed", "application/atom+xml", atom_feed(feeds.url, [(3, "Statement on the floods")])
    )
    check_ok(config)
    [published] = receiver.alerts()
    assert published["kind"] == "published"
    assert published["url"] == f"{feeds.url}/press/3"
    assert published["watch"].startswith("press.")
    # The page itself was read (generic profile): its text, not the feed's summary.
    kept = rows(
        tmp_path,
        "SELECT w.profile FROM watch w JOIN discovered d ON d.watch_id = w.id WHERE d.url = ?",
        f"{feeds.url}/press/3",
    )
    assert kept[0]["profile"] == "generic"
    [version] = rows(
        tmp_path,
        "SELECT v.seq FROM version v JOIN document d ON d.id = v.document_id WHERE d.watch_id = ?",
        published["watch"],
    )
    show = monitor_cli(config, "show", published["watch"], str(version["seq"]))
    assert "Statement number 3. The delegations discussed trade" in show.stdout
    assert "Home · Press" not in show.stdout


@pytest.mark.slow
def test_a_site_outage_is_one_failing_alert_for_the_listing_and_its_statements(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver
) -> None:
    config = write_config(tmp_path, replica, receiver, watch_extra=DISCOVER)
    check_ok(config)
    replica.set_mode("error")
    failed = monitor_cli(config, "check", "--once")
    assert failed.returncode != 0
    assert failed.stdout.count(": problem") == 4  # the listing and its three statements
    [failing] = receiver.alerts("failing")
    failed = monitor_cli(config, "check", "--once")
    assert len(receiver.alerts("failing")) == 1
    replica.set_mode("ok")
    check_ok(config)
    [recovered] = receiver.alerts("recovered")
    assert recovered["watch"] == failing["watch"]
    assert len(receiver.posts) == 2


def test_a_statement_page_never_readable_is_a_problem_not_silence(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config = write_config(tmp_path, replica, languages=())
    config.write_text(
        config.read_text() + f'\n[[watch]]\nid = "missing"\nprofile = "govkz"\nlanguage = "en"\n'
        f'url = "{replica.url}/memleket/entities/mfa/press/news/details/999?lang=en"\n'
    )
    result = monitor_cli(config, "check", "--once")
    assert result.returncode != 0
    assert "missing: problem" in result.stdout
    assert "never readable (HTTP 404)" in result.stdout


@pytest.mark.process
def test_the_web_ui_shows_what_a_listing_found_and_a_statement_s_translations(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    from tests.webui import add_user, login, serving

    config = write_config(tmp_path, replica, None, ("en", "ru"), watch_extra=DISCOVER)
    check_ok(config)
    assert add_user(config, "ana", "viewer").returncode == 0
    with serving(config) as base:
        client = login(base, "ana")
        listing = client.get("/watch/mfa-en")
        assert listing.status_code == 200
        assert "Statements found (3)" in listing.text
        assert f'href="/watch/mfa-en.en-{NEWEST["id"]}"' in listing.text
        statement = client.get(f"/watch/mfa-en.en-{NEWEST['id']}")
        assert statement.status_code == 200
        assert 'href="/watch/mfa-en"' in statement.text
        assert f'href="/watch/mfa-ru.ru-{NEWEST["id"]}" hreflang="ru"' in statement.text
        assert NEWEST["texts"]["en"]["title"] in statement.text
