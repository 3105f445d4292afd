"""The web UI over real HTTP (`monitor serve` on the archive the pipeline built): alert
permalinks, roles, CSRF, the sandboxed archive path, downloads with their hashes, feeds,
exports, search, languages, watches added from the UI, and `monitor user add`."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import httpx
import pytest

from monitor.web.ui import ARCHIVE_POLICY, WATCHES_PAGE
from tests.conftest import REPO, monitor_cli, write_config
from tests.webui import (
    MIDDLE,
    NEWEST,
    NEWEST_KEY,
    SENTENCE_NEW,
    SENTENCE_OLD,
    Archive,
    add_user,
    archive_fixture,  # noqa: F401 (the fixture `archive`)
    csrf,
    login,
    serving,
)


def test_the_permalink_in_an_alert_opens_that_diff(archive: Archive) -> None:
    [payload] = [
        json.loads(row["payload"])
        for row in archive.db().execute("SELECT payload FROM alert WHERE kind = 'edited'")
        if json.loads(row["payload"])["version"] == 2
    ]
    assert payload["diff_url"] == (
        f"http://ui.test/watch/mfa-en/diff?key={NEWEST_KEY.replace('/', '%2F')}&b=2"
    )
    viewer = login(archive.url, "vi")
    page = viewer.get(payload["diff_url"].replace("http://ui.test", ""))
    assert page.status_code == 200
    assert f"<del>{SENTENCE_OLD}</del><ins>{SENTENCE_NEW}</ins>" in page.text
    # The same versions by id, and in either order.
    a, b = archive.version_id(NEWEST_KEY, 1), archive.version_id(NEWEST_KEY, 2)
    moved = viewer.get(f"/watch/mfa-en/diff?a={b}&b={a}&view=side")
    assert moved.status_code == 301  # links by id go to the versions' numbers
    by_id = viewer.get(moved.headers["location"])
    assert '<p class="para left">' in by_id.text and f"<ins>{SENTENCE_NEW}</ins>" in by_id.text
    # The title edit is shown apart from the text.
    title = viewer.get(f"/watch/mfa-en/diff?key={NEWEST_KEY}&b=3")
    assert 'class="chg field-title"' in title.text and "<ins> (updated)</ins>" in title.text
    assert viewer.get(f"/watch/mfa-en/diff?key={NEWEST_KEY}&b=99").status_code == 404
    assert viewer.get("/watch/mfa-ru/diff?b=" + str(b)).status_code == 404  # other watch


def test_without_login_only_health_and_metrics_answer(archive: Archive) -> None:
    anonymous = httpx.Client(base_url=archive.url, timeout=30)
    for path in ("/", "/watch/mfa-en", "/feed.atom", "/search?q=aid", "/archive/mfa-en/1"):
        answer = anonymous.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=")
    assert anonymous.get("/healthz").status_code == 200
    assert "monitor_" in anonymous.get("/metrics").text


def test_roles_and_csrf_guard_every_form(archive: Archive) -> None:
    key = NEWEST_KEY.replace("/", "%2F")
    path = f"/watch/mfa-en/versions/2/annotate?key={key}"
    form = {"verdict": "significant", "note": "the offer of help was withdrawn", "next": "/"}
    count = "SELECT COUNT(*) FROM annotation"
    before = archive.db().execute(count).fetchone()[0]
    viewer = login(archive.url, "vi")
    assert viewer.post(path, data={**form, "csrf": csrf(viewer)}).status_code == 403
    editor = login(archive.url, "ed")
    assert editor.post(path, data=form).status_code == 403  # no token
    assert editor.post(path, data={**form, "csrf": csrf(viewer)}).status_code == 403  # not its own
    foreign = {"Origin": "https://evil.example"}
    assert (
        editor.post(path, data={**form, "csrf": csrf(editor)}, headers=foreign).status_code == 403
    )
    assert archive.db().execute(count).fetchone()[0] == before
    # Seen before the annotation (its rows are kept), the timeline shows it after.
    unannotated = viewer.get(f"/watch/mfa-en/statement?key={NEWEST_KEY}").text
    assert form["note"] not in unannotated
    done = editor.post(path, data={**form, "csrf": csrf(editor)})
    assert done.status_code == 303 and done.headers["location"] == "/"
    row = (
        archive.db()
        .execute("SELECT username, verdict, note, version_id FROM annotation ORDER BY id DESC")
        .fetchone()
    )
    version = archive.version_id(NEWEST_KEY, 2)
    assert tuple(row) == ("ed", "significant", form["note"], version)
    timeline = viewer.get(f"/watch/mfa-en/statement?key={NEWEST_KEY}").text
    assert '<span class="badge significant">significant</span>' in timeline
    assert form["note"] in timeline
    # Only an admin manages users; the session cookie is HttpOnly and SameSite=Lax.
    assert editor.get("/users").status_code == 403
    admin = login(archive.url, "admin")
    assert admin.get("/users").status_code == 200
    cookie = httpx.Client(base_url=archive.url).post(
        "/login", data={"username": "vi", "password": "x"}
    )
    assert cookie.status_code == 403  # the login form is a form too


def test_login_sets_a_hardened_cookie_and_failures_are_throttled(archive: Archive) -> None:
    assert add_user(archive.config, "slow", "viewer").returncode == 0
    client = httpx.Client(base_url=archive.url, timeout=30)
    client.get("/login")
    token = client.cookies["monitor_csrf"]
    good = {"username": "slow", "password": "correct horse battery", "csrf": token}
    answer = client.post("/login", data=good)
    assert answer.status_code == 303
    session = next(h for h in answer.headers.get_list("set-cookie") if "monitor_session" in h)
    assert "HttpOnly" in session and "SameSite=lax" in session and "Max-Age=" in session
    # Logged in, the forms carry the session's own token (the cookie shows it too).
    good["csrf"] = csrf(client)
    assert good["csrf"] != token
    for _ in range(5):
        assert client.post("/login", data={**good, "password": "wrong"}).status_code == 401
    assert client.post("/login", data=good).status_code == 429  # even the right one, for now


def test_archived_bodies_are_sandboxed_and_downloads_carry_their_sha256(archive: Archive) -> None:
    viewer = login(archive.url, "vi")
    version = archive.version_id(NEWEST_KEY, 2)
    key = NEWEST_KEY.replace("/", "%2F")
    framed = viewer.get(f"/archive/mfa-en/2?key={key}")
    assert framed.headers["content-security-policy"] == ARCHIVE_POLICY
    assert "allow-scripts" not in ARCHIVE_POLICY and "sandbox" in ARCHIVE_POLICY
    assert framed.headers["x-frame-options"] == "SAMEORIGIN"
    page = viewer.get(f"/watch/mfa-en/versions/2?tab=frame&key={key}").text
    assert f'<iframe class="archived" sandbox src="/archive/mfa-en/2?key={key}"' in page
    # The address by version id, from before versions were numbered, still leads there.
    moved = viewer.get(f"/watch/mfa-en/version/{version}/raw")
    assert moved.status_code == 301
    assert moved.headers["location"] == f"/watch/mfa-en/versions/2/raw?key={key}"
    raw = viewer.get(moved.headers["location"])
    [(stored, size)] = archive.db().execute(
        "SELECT r.body_sha256, r.body_size FROM response r JOIN version v "
        "ON v.response_id = r.id WHERE v.id = ?",
        (version,),
    )
    assert hashlib.sha256(raw.content).hexdigest() == stored == raw.headers["x-content-sha256"]
    assert len(raw.content) == size and raw.content == framed.content
    assert raw.headers["content-disposition"].startswith("attachment;")
    headers = viewer.get(f"/watch/mfa-en/versions/2/headers.json?key={key}").json()
    assert headers["body_sha256"] == stored and ["Content-Type", "application/json"] in [
        [k.title(), v.split(";")[0]] for k, v in headers["headers"]
    ]
    text = viewer.get(f"/watch/mfa-en/versions/2/statement.json?key={key}")
    assert hashlib.sha256(text.content).hexdigest() == text.headers["x-content-sha256"]
    assert json.loads(text.content)["key"] == NEWEST_KEY


def test_feeds_and_exports(archive: Archive) -> None:
    viewer = login(archive.url, "vi")
    feed = feedparser.parse(viewer.get("/watch/mfa-en/feed.atom").content)
    links = [entry.link for entry in feed.entries]
    assert f"http://ui.test/watch/mfa-en/diff?key={NEWEST_KEY.replace('/', '%2F')}&b=2" in links
    assert len(feedparser.parse(viewer.get("/feed.atom").content).entries) > len(feed.entries)
    lines = viewer.get("/watch/mfa-en/export.jsonl").text.splitlines()
    assert json.loads(lines.pop())["type"] == "chain-heads"
    [(count,)] = archive.db().execute(
        "SELECT COUNT(*) FROM version v JOIN document d ON d.id = v.document_id "
        "WHERE d.watch_id = 'mfa-en'"
    )
    assert len(lines) == count
    edited = [json.loads(line) for line in lines if json.loads(line)["kind"] == "edited"]
    assert any(SENTENCE_NEW in line["text"] for line in edited)
    warc = gzip.decompress(viewer.get("/watch/mfa-en/export.warc.gz").content)
    assert warc.startswith(b"WARC/1.1") and SENTENCE_OLD.encode() in warc
    assert viewer.get("/watch/mfa-en/export.zip").status_code == 404


def test_search_finds_text_that_is_no_longer_on_the_site(archive: Archive) -> None:
    viewer = login(archive.url, "vi")
    page = viewer.get("/search", params={"q": SENTENCE_OLD}).text
    assert "only in earlier versions" in page and "<mark>necessary</mark>" in page
    removed = MIDDLE["texts"]["en"]["title"]
    page = viewer.get("/search", params={"q": removed}).text
    assert "statement removed" in page
    page = viewer.get("/search", params={"q": SENTENCE_NEW}).text
    assert "in the current version" in page


def test_russian_interface_by_header_or_switch(archive: Archive) -> None:
    viewer = login(archive.url, "vi")
    russian = viewer.get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru">' in russian.text and "Наблюдения" in russian.text
    switched = viewer.get("/lang/en", params={"next": "/watch/mfa-en"})
    assert switched.headers["location"] == "/watch/mfa-en"
    english = viewer.get("/", headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in english.text and "Watches" in english.text
    assert (
        viewer.get("/lang/en", params={"next": "https://evil.example/"}).headers["location"] == "/"
    )


@pytest.mark.process
def test_a_watch_added_in_the_ui_is_validated_guarded_and_kept(archive: Archive, tmp_path) -> None:  # type: ignore[no-untyped-def]
    editor = login(archive.url, "ed")
    form = {
        "id": "ui-kk",
        "name": "MFA (kk, added in the UI)",
        "url": f"{archive.site.url}/memleket/entities/mfa/press/news?lang=kk",
        "interval": "15 minutes",
        "profile": "govkz",
        "language": "kk",
        "channels": ["console"],
        "robots": "on",
    }
    bad = editor.post("/watches/new", data={**form, "csrf": csrf(editor)})
    assert bad.status_code == 400 and "invalid duration" in bad.text
    bad = editor.post(
        "/watches/new", data={**form, "interval": "1h", "channels": ["nope"], "csrf": csrf(editor)}
    )
    assert bad.status_code == 400 and "unknown channel" in bad.text
    ok = editor.post("/watches/new", data={**form, "interval": "1h", "csrf": csrf(editor)})
    assert ok.status_code == 303 and ok.headers["location"] == "/watch/ui-kk"
    [row] = archive.db().execute("SELECT config, updated_by FROM ui_watch WHERE id = 'ui-kk'")
    assert json.loads(row["config"])["interval"] == 3600 and row["updated_by"] == "ed"
    # Kept in the store: the command line checks it like a watch of the file (seven
    # statements: the fixture removed one of the replica's eight).
    result = monitor_cli(archive.config, "check", "ui-kk")
    assert "ui-kk: changed (7 new versions" in result.stdout, result.stdout + result.stderr
    assert "MFA (kk, added in the UI)" in editor.get("/watches/all").text
    edit = editor.post(
        "/watch/ui-kk/edit",
        data={**form, "interval": "2h", "ignore": "\\d+ views\n(", "csrf": csrf(editor)},
    )
    assert edit.status_code == 400 and "not a valid regex" in edit.text
    # The SSRF guard: a UI whose config forbids private addresses refuses the same watch.
    guarded = tmp_path / "guarded.toml"
    guarded.write_text(archive.config.read_text().replace("allow_private = true", ""))
    with serving(guarded) as url:
        admin = login(url, "admin")
        refused = admin.post(
            "/watches/new", data={**form, "id": "ui-kk2", "interval": "1h", "csrf": csrf(admin)}
        )
        assert refused.status_code == 400
        assert "resolves to non-public address 127.0.0.1" in refused.text
        refused = admin.post(
            "/watches/new",
            data={**form, "id": "ui-kk3", "url": "file:///etc/passwd", "csrf": csrf(admin)},
        )
        assert refused.status_code == 400
    reverted = editor.post("/watch/ui-kk/revert", data={"csrf": csrf(editor)})
    assert reverted.headers["location"] == "/"
    assert archive.db().execute("SELECT COUNT(*) FROM ui_watch").fetchone()[0] == 0


@pytest.mark.process
def test_the_daemon_checks_a_watch_saved_in_its_own_ui(tmp_path, replica) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, replica, languages=("en",), interval="1h")
    assert add_user(config, "admin", "admin").returncode == 0
    with serving(config, "run") as url:
        admin = login(url, "admin")
        assert httpx.get(url + "/healthz").json()["watches"] == 1
        saved = admin.post(
            "/watches/new",
            data={
                "id": "ru-ui",
                "url": f"{replica.url}/memleket/entities/mfa/press/news?lang=ru",
                "interval": "2s",
                "profile": "govkz",
                "robots": "on",
                "csrf": csrf(admin),
            },
        )
        assert saved.status_code == 303
        assert httpx.get(url + "/healthz").json()["watches"] == 2  # reloaded at once
        deadline = time.monotonic() + 60
        while "Nothing stored yet." in admin.get("/watch/ru-ui").text:
            assert time.monotonic() < deadline, "the daemon never checked the new watch"
            time.sleep(0.5)
        assert NEWEST["texts"]["ru"]["title"] in admin.get("/watch/ru-ui").text


@pytest.mark.process
def test_user_add_takes_the_password_from_stdin_or_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, None)
    result = add_user(config, "ann", "editor")
    assert result.returncode == 0 and "user ann (editor) saved" in result.stdout
    assert add_user(config, "ann", "admin").returncode == 2  # exists
    assert add_user(config, "ann", "admin", "another password", "--replace").returncode == 0
    assert add_user(config, "bob", "viewer", "short").returncode == 2
    env = {**os.environ, "MONITOR_PASSWORD": "from the environment"}
    env.pop("MONITOR_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "user", "add", "cy"],
        capture_output=True, text=True, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # There is no way to put a password on the command line.
    assert (
        "unrecognized arguments"
        in monitor_cli(config, "user", "add", "dee", "--password", "x").stderr
    )
    listed = monitor_cli(config, "user", "list").stdout
    assert [line.split("\t")[:2] for line in listed.splitlines()] == [
        ["ann", "admin"],
        ["cy", "viewer"],
    ]
    with serving(config) as url:
        login(url, "ann", "another password")
        login(url, "cy", "from the environment")


@pytest.mark.process
def test_public_mode_reads_without_login_and_still_guards_writes(
    archive: Archive, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    public = tmp_path / "public.toml"
    public.write_text(archive.config.read_text().replace("[server]\n", "[server]\npublic = true\n"))
    with serving(public) as url:
        anonymous = httpx.Client(base_url=url, timeout=30)
        page = anonymous.get(f"/watch/mfa-en/diff?key={NEWEST_KEY}&b=2")
        assert page.status_code == 200 and "read-only public view" in page.text
        assert 'class="annotate"' not in page.text
        anonymous.get("/")
        key = NEWEST_KEY.replace("/", "%2F")
        answer = anonymous.post(
            f"/watch/mfa-en/versions/2/annotate?key={key}",
            data={"verdict": "noise", "csrf": anonymous.cookies["monitor_csrf"]},
        )
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        assert anonymous.get("/watches/new").headers["location"].startswith("/login")


@pytest.mark.slow
def test_the_table_of_every_watch_comes_in_pages(tmp_path: Path) -> None:
    """10,000 watches were one table of 3 MB: it comes in pages, a filter over all of them."""
    ids = [f"w{n:04d}" for n in range(WATCHES_PAGE + 5)]
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n[server]\npublic = true\n'
        + "".join(f'[[watch]]\nid = "{i}"\nurl = "https://gov.example/{i}"\n' for i in ids)
    )
    with serving(config) as url, httpx.Client(base_url=url, timeout=30) as client:

        def shown(html: str) -> list[str]:
            return re.findall(r'<a href="/watch/(w\d+)">', html)

        first = client.get("/watches/all").text
        assert shown(first) == ids[:WATCHES_PAGE]
        assert 'href="/watches/all?page=2" rel="next"' in first
        second = client.get("/watches/all", params={"page": 2}).text
        assert shown(second) == ids[WATCHES_PAGE:] and 'rel="next"' not in second
        assert shown(client.get("/watches/all", params={"page": 99}).text) == ids[WATCHES_PAGE:]
        # A filter is applied to every watch, then paged; the pages keep it.
        found = client.get("/watches/all", params={"q": "w02"}).text
        assert shown(found) == [i for i in ids if "w02" in i] and "page=2" not in found
        waiting = client.get("/watches/all", params={"status": "not checked yet"}).text
        assert shown(waiting) == ids[:WATCHES_PAGE]
        assert "status=not+checked+yet&amp;page=2" in waiting
        # Rows are kept between requests, but a check written since shows at once.
        from dataclasses import replace

        from monitor.store import CheckRecord, Store

        with Store(tmp_path / "store") as store:
            store.sync_watch(ids[0], f"https://gov.example/{ids[0]}", "generic")
            at = "2026-12-01T10:00:00.000Z"
            state = replace(store.state(ids[0]), last_check_at=at, failing_since=at)
            store.commit_check(CheckRecord(ids[0], at, 5, "problem", 503), state)
        again = client.get("/watches/all").text
        assert again.count('class="status-failing"') == 1 and shown(again) == ids[:WATCHES_PAGE]
