"""The front page (latest changes) and the watches grouped by ministry, over real HTTP on
archives the real pipeline built: the gov.kz replica in three languages checked by
`monitor check`, and a larger archive written through `Store.commit_check` for paging."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pytest

from monitor.clock import iso
from monitor.config import load_config
from monitor.extract import Statement
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.store import CheckRecord, NewVersion, Store
from monitor.web.grouping import (
    Listing,
    Ministry,
    StatementRow,
    ministry_key,
    ministry_name,
    paginate,
    statement_identity,
)
from monitor.webserver import EmbeddedServer
from monitor.wiring import build
from tests.conftest import monitor_cli, write_config
from tests.webui import PASSWORD, add_user, free_port, login, screenshot

EDITED = STATEMENTS[0]
REMOVED = STATEMENTS[1]
SENTENCE = re.compile(r"[^.]{20,}\.")


@contextmanager
def serving_here(config_path: Path) -> Iterator[str]:
    """The UI as `monitor serve` builds it, served by uvicorn in a thread of this process."""
    import uvicorn

    config = load_config(config_path)
    store = Store.from_config(config.store)
    runtime = build(config, store)

    async def changed() -> None:
        runtime.refresh()

    app = runtime.web_app(lambda: {"ok": True}, changed, lambda: runtime.current(0.5))
    port = free_port()
    server = EmbeddedServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the UI did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()


# --- the gov.kz stand-in in three languages, checked by the real pipeline ---------------------


@dataclass
class Newsroom:
    config: Path
    store: Path
    url: str
    between: str  # after the Russian edit, before the removal and the new statement
    new_id: int

    def db(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.store / "index.sqlite")
        connection.row_factory = sqlite3.Row
        return connection


def _check(config: Path, *watches: str) -> None:
    result = monitor_cli(config, "check", *watches)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsroom]:
    tmp = tmp_path_factory.mktemp("front")
    with ReplicaSite() as site:
        config = write_config(tmp, site, languages=("en", "ru", "kk"))
        _check(config)  # the baseline: nothing on the front page yet
        site.edit(EDITED["id"], "ru", title=EDITED["texts"]["ru"]["title"] + " (ред.)")
        _check(config)
        between = iso(datetime.now(UTC))
        time.sleep(0.01)
        site.remove(REMOVED["id"])
        new_id = site.add(
            {
                lang: {"title": f"Brand new statement ({lang})", "body": f"<p>News in {lang}.</p>"}
                for lang in ("en", "ru", "kk")
            }
        )
        _check(config)
        # A listing on a site that does not answer: failing from its first check.
        config.write_text(
            config.read_text() + '\n[[watch]]\nid = "dead"\nname = "Ministry of Silence (en)"\n'
            'url = "http://127.0.0.1:9/press/news?lang=en"\nprofile = "govkz"\n'
            'language = "en"\nchannels = ["console"]\n'
        )
        monitor_cli(config, "check", "dead")  # fails, as it must
        for name in ("vi", "visitor"):
            assert add_user(config, name, "viewer").returncode == 0
        with serving_here(config) as url:
            yield Newsroom(config, tmp / "store", url, between, new_id)


def rows(html: str) -> list[dict[str, str]]:
    """The front page's rows: kind, language, ministry, title, links, and whether new."""
    found = []
    for match in re.finditer(r'<tr class="change kind-(\w+)( unseen)?"(.*?)</tr>', html, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(3), re.S)
        text = [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
        links = dict(
            (cls, unescape(href))
            for href, cls in re.findall(r'<a href="([^"]+)" class="(diff|archived)"', cells[6])
        )
        at = re.search(r'datetime="([^"]+)"', cells[0])
        found.append(
            {
                "kind": match.group(1),
                "unseen": bool(match.group(2)),
                "at": at.group(1) if at else "",
                "ministry": text[1],
                "language": text[2],
                "title": text[4],
                "summary": text[5],
                **links,
            }
        )
    return found


def option_value(html: str, select: str, shown: str) -> str:
    block = re.search(rf'<select name="{select}">(.*?)</select>', html, re.S)
    assert block, select
    [value] = [
        unescape(v)
        for v, text in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', block.group(1))
        if text == shown
    ]
    return value


@pytest.mark.slow
def test_the_front_page_is_the_latest_changes_newest_first(newsroom: Newsroom) -> None:
    viewer = login(newsroom.url, "vi")
    page = viewer.get("/")
    assert page.status_code == 200 and "<h1>Latest changes</h1>" in page.text
    found = rows(page.text)
    assert [r["at"] for r in found] == sorted((r["at"] for r in found), reverse=True)
    kinds = sorted((r["kind"], r["language"]) for r in found)
    assert kinds == sorted(
        [("failing", "en"), ("edited", "ru")]
        + [(kind, lang) for kind in ("published", "removed") for lang in ("en", "ru", "kk")]
    )
    [edit] = [r for r in found if r["kind"] == "edited"]
    assert edit["ministry"] == "mfa-ru" and edit["title"].endswith("(ред.)")
    assert "Title:" in edit["summary"]
    # The removal links to the last text we archived, never to the dead live page.
    [removal] = [r for r in found if r["kind"] == "removed" and r["language"] == "en"]
    assert removal["title"] == REMOVED["texts"]["en"]["title"]
    assert removal["archived"].startswith("/watch/mfa-en/versions/1?key=")
    archived = viewer.get(removal["archived"])
    assert archived.status_code == 200 and REMOVED["texts"]["en"]["title"] in archived.text
    assert viewer.get(removal["diff"]).status_code == 200
    [failing] = [r for r in found if r["kind"] == "failing"]
    assert failing["ministry"] == "Ministry of Silence (en)"
    # The watch table of before has a URL of its own; its old filters still land there.
    assert 'id="watches"' in viewer.get("/watches/all").text
    moved = viewer.get("/?status=failing")
    assert moved.status_code == 303 and moved.headers["location"] == "/watches/all?status=failing"
    assert "dead" in viewer.get(moved.headers["location"]).text


def test_filters_by_ministry_language_kind_and_period(newsroom: Newsroom) -> None:
    viewer = login(newsroom.url, "vi")
    front = viewer.get("/").text
    mfa = option_value(front, "ministry", "mfa")
    silence = option_value(front, "ministry", "Ministry of Silence")
    [edit] = rows(viewer.get("/", params={"language": "ru", "kind": "edited"}).text)
    assert edit["kind"] == "edited" and edit["language"] == "ru"
    diff = viewer.get(edit["diff"])
    assert diff.status_code == 200 and "<ins> (ред.)</ins>" in diff.text
    removed = rows(viewer.get("/", params={"ministry": mfa, "kind": "removed"}).text)
    assert sorted(r["language"] for r in removed) == ["en", "kk", "ru"]
    assert [r["kind"] for r in rows(viewer.get("/", params={"ministry": silence}).text)] == [
        "failing"
    ]
    assert len(rows(viewer.get("/", params={"period": "24h"}).text)) == 8
    # Several kinds at once, as the API takes them; an unknown one is no filter at all.
    both = rows(viewer.get("/", params=[("kind", "edited"), ("kind", "failing")]).text)
    assert sorted(r["kind"] for r in both) == ["edited", "failing"]
    assert len(rows(viewer.get("/", params={"kind": "nonsense"}).text)) == 8
    # The form keeps what was chosen, and a page that is not one is a clear error.
    chosen = viewer.get("/", params={"language": "kk", "kind": "published"}).text
    assert '<option value="kk" selected>' in chosen
    assert '<option value="published" selected>' in chosen
    of_mfa = viewer.get("/", params={"ministry": mfa}).text
    assert of_mfa.count(" selected>") == 1 and f'<option value="{mfa}" selected>' in of_mfa
    assert viewer.get("/", params={"cursor": "garbage"}).status_code == 400


@pytest.mark.slow
def test_since_my_last_visit_marks_and_filters_what_is_new(newsroom: Newsroom) -> None:
    visitor = login(newsroom.url, "visitor")
    first = visitor.get("/").text
    assert "from your next visit on" in first and 'class="change kind-edited unseen"' not in first
    # The visit before this one ended between the Russian edit and the removal.
    with newsroom.db() as db:
        db.execute(
            "UPDATE user_visit SET previous_at = ?, seen_at = ? WHERE username = 'visitor'",
            (newsroom.between, iso(datetime.now(UTC))),
        )
    page = visitor.get("/").text
    found = rows(page)
    assert {r["kind"] for r in found if r["unseen"]} == {"published", "removed", "failing"}
    assert [r["kind"] for r in found if not r["unseen"]] == ["edited"]
    assert page.index("Before your last visit") < page.index('class="change kind-edited"')
    assert f'datetime="{newsroom.between}"' in page
    since = rows(visitor.get("/", params={"period": "visit"}).text)
    assert len(since) == 7 and all(r["unseen"] for r in since)
    # Another reader's visits are their own.
    assert not any(r["unseen"] for r in rows(login(newsroom.url, "vi").get("/").text))


def test_visits_are_views_less_than_half_an_hour_apart(tmp_path: Path) -> None:
    with Store(tmp_path / "store") as store:
        t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
        assert store.accounts.visit("ann", iso(t0)) is None
        assert store.accounts.visit("ann", iso(t0 + timedelta(minutes=20))) is None
        end_of_first = iso(t0 + timedelta(minutes=20))
        assert store.accounts.visit("ann", iso(t0 + timedelta(hours=3))) == end_of_first
        assert store.accounts.visit("ann", iso(t0 + timedelta(hours=3, minutes=5))) == end_of_first
        soon = t0 + timedelta(hours=3, minutes=5, seconds=30)  # paging on: read, not written
        assert store.accounts.visit("ann", iso(soon)) == end_of_first
        assert store.accounts.visit("bob", iso(t0 + timedelta(hours=4))) is None
        assert store.accounts.last_visit("ann") == end_of_first
        store.delete_user("ann")
        assert store.accounts.last_visit("ann") is None


def _group_rows(html: str) -> list[dict[str, str]]:
    found = []
    for match in re.finditer(r'<tr class="statement status-([\w-]+)">(.*?)</tr>', html, re.S):
        title = unescape(re.sub(r"<[^>]+>", "", re.findall(r"<td>(.*?)</td>", match.group(2))[0]))
        cells = dict(
            (lang, unescape(re.sub(r"<[^>]+>|\s+", " ", cell)).split(maxsplit=1)[-1].strip())
            for lang, cell in re.findall(
                r'<td class="lang" data-language="(\w+)">(.*?)</td>', match.group(2), re.S
            )
        )
        found.append({"status": match.group(1), "title": title.strip(), **cells})
    return found


def test_watches_grouped_by_ministry_with_languages_side_by_side(newsroom: Newsroom) -> None:
    viewer = login(newsroom.url, "vi")
    page = viewer.get("/watches").text
    mfa = page[page.index("<h2>mfa</h2>") :]
    mfa = mfa[: mfa.index("</section>")]
    assert re.findall(r"<th>(\w\w)</th>", mfa) == ["en", "ru", "kk"]
    found = {r["title"]: r for r in _group_rows(mfa)}
    assert len(found) == 9  # eight statements of the replica and the new one, once each
    edited = found[EDITED["texts"]["en"]["title"]]
    assert edited["status"] == "edited-today"
    assert edited["ru"].startswith("edited today") and edited["en"] == edited["kk"] == "quiet"
    removed = found[REMOVED["texts"]["en"]["title"]]
    assert all(removed[lang].startswith("removed") for lang in ("en", "ru", "kk"))
    new = found["Brand new statement (en)"]
    assert all(new[lang].startswith("new") for lang in ("en", "ru", "kk"))
    counts = dict(re.findall(r'<span data-count="([\w ]+)">(\d+)', mfa))
    assert counts == {
        "statements": "9",
        "removed": "1",
        "edited today": "1",
        "new": "1",
        "quiet": "6",
    }
    # The listing that does not answer says since when.
    silence = page[page.index("<h2>Ministry of Silence</h2>") :]
    assert re.search(r'class="status failing">failing</span> <small>since <time', silence)
    # Filtered by status; sorted by title; in Russian the title is the Russian one.
    only = _group_rows(viewer.get("/watches", params={"status": "edited today"}).text)
    assert [r["title"] for r in only] == [EDITED["texts"]["en"]["title"]]
    by_title = [r["title"] for r in _group_rows(viewer.get("/watches?sort=title").text)]
    assert by_title == sorted(by_title, key=str.casefold)
    newest = [r["title"] for r in _group_rows(viewer.get("/watches").text)]
    assert newest[0] in ("Brand new statement (en)", REMOVED["texts"]["en"]["title"])
    russian = viewer.get("/watches", headers={"Accept-Language": "ru"}).text
    assert EDITED["texts"]["ru"]["title"] + " (ред.)" in russian and "изменено сегодня" in russian
    # Each language links to its own statement page.
    assert f'/watch/mfa-kk/statement?key=kk%2F{newsroom.new_id}" hreflang="kk"' in page
    assert viewer.get(f"/watch/mfa-kk/statement?key=kk/{newsroom.new_id}").status_code == 200


# --- paging: an archive written through the store -----------------------------------------

STATEMENT_IDS = 60
ROUNDS = 65


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Two listings (en, ru) of 60 statements each; 65 rounds, each editing one statement
    in both languages at the same moment (ties the cursor must keep apart), then one more."""
    tmp = tmp_path_factory.mktemp("paged")
    base = datetime.now(UTC) - timedelta(days=2)
    with Store(tmp / "store") as store:
        for lang in ("en", "ru"):
            store.sync_watch(f"p-{lang}", f"https://gov.example/news?lang={lang}", "generic")

        def version(lang: str, number: int, kind: str, revision: int) -> NewVersion:
            key = f"{lang}/{number}"
            text = Statement(key, f"https://gov.example/{key}", f"Statement {number} {lang}",
                             (f"Revision {revision}.",), None, lang)  # fmt: skip
            return NewVersion(key, text.url, text.title, None, lang, kind, text.to_json(), 0.5,
                              f"revision {revision}")  # fmt: skip

        for lang in ("en", "ru"):
            store.commit_check(
                CheckRecord(f"p-{lang}", iso(base), 5, "changed", 200),
                store.state(f"p-{lang}"),
                versions=[version(lang, n, "baseline", 0) for n in range(STATEMENT_IDS)],
            )
        for round_ in range(1, ROUNDS + 1):
            at = iso(base + timedelta(minutes=round_))
            for lang in ("en", "ru"):
                store.commit_check(
                    CheckRecord(f"p-{lang}", at, 5, "changed", 200),
                    store.state(f"p-{lang}"),
                    versions=[version(lang, round_ % STATEMENT_IDS, "edited", round_)],
                )
        # One more, alone and newest: a page of 50 then ends between two of one moment.
        store.commit_check(
            CheckRecord("p-en", iso(base + timedelta(minutes=ROUNDS + 1)), 5, "changed", 200),
            store.state("p-en"),
            versions=[version("en", 0, "edited", ROUNDS + 1)],
        )
    config = tmp / "monitor.toml"
    config.write_text(
        f'[store]\npath = "{tmp / "store"}"\n'
        + "".join(
            f'[[watch]]\nid = "p-{lang}"\nurl = "https://gov.example/news?lang={lang}"\n'
            f'profile = "generic"\nlanguage = "{lang}"\n'
            for lang in ("en", "ru")
        ),
        encoding="utf-8",
    )
    assert add_user(config, "vi", "viewer").returncode == 0
    with serving_here(config) as url:
        yield url, tmp / "store"


def walk(client: httpx.Client, path: str) -> list[list[dict[str, str]]]:
    """Every page of the front page from `path`, following its "older" links."""
    pages = []
    while path:
        html = client.get(path).text
        pages.append(rows(html))
        following = re.search(r'<a href="([^"]+)" rel="next">', html)
        path = unescape(following.group(1)) if following else ""
        assert len(pages) < 20
    return pages


@pytest.mark.slow
def test_pages_of_fifty_end_at_a_cursor(paged: tuple[str, Path]) -> None:
    url, store = paged
    viewer = login(url, "vi")
    pages = walk(viewer, "/")
    assert [len(p) for p in pages] == [50, 50, 31]
    seen = [(r["at"], r["language"], r["diff"]) for p in pages for r in p]
    assert len(set(seen)) == 2 * ROUNDS + 1  # none twice, none left out
    assert pages[0][-1]["at"] == pages[1][0]["at"]  # the first page ended within a moment
    with sqlite3.connect(store / "index.sqlite") as db:
        expected = db.execute(
            "SELECT v.observed_at, d.language FROM version v JOIN document d "
            "ON d.id = v.document_id WHERE v.kind = 'edited' ORDER BY v.observed_at DESC, v.id DESC"
        ).fetchall()
    assert [(at, lang) for at, lang, _ in seen] == [tuple(row) for row in expected]
    # Filtered pages carry their filter along.
    russian = walk(viewer, "/?language=ru")
    assert [len(p) for p in russian] == [50, 15]
    assert {r["language"] for p in russian for r in p} == {"ru"}
    assert (
        "Newest changes"
        in viewer.get(
            re.search(r'href="([^"]+)" rel="next"', viewer.get("/").text)
            .group(1)
            .replace("&amp;", "&")
        ).text
    )


def test_grouped_watches_are_paginated(paged: tuple[str, Path]) -> None:
    url, _store = paged
    viewer = login(url, "vi")
    first = viewer.get("/watches").text
    found = _group_rows(first)
    assert len(found) == 50 and "page 1 of 2" in re.sub(r"<[^>]+>|\s+", " ", first).replace(
        "  ", " "
    )
    assert all(set(r) >= {"en", "ru"} for r in found)
    second = _group_rows(viewer.get("/watches", params={"page": 2}).text)
    assert len(second) == STATEMENT_IDS - 50
    assert not {r["title"] for r in found} & {r["title"] for r in second}
    counts = dict(re.findall(r'<span data-count="([\w ]+)">(\d+)', first))
    assert counts["statements"] == str(STATEMENT_IDS)


# --- the grouping rules --------------------------------------------------------------------


def test_listings_without_statements_take_a_place_each_after_the_rows() -> None:
    """Every listing without a statement yet still shows, with its status, but 10,000 of
    them are pages, not one first page of 3 MB."""
    full = Ministry("a", "A", rows=[StatementRow(f"id:{n}") for n in range(3)])
    empty = [Ministry(f"e{n}", f"E{n}") for n in range(5)]
    first = paginate([full, *empty], 1, size=4)
    assert (first.pages, first.total) == (2, 3)
    assert [(m.key, len(rows)) for m, rows in first.sections] == [("a", 3), ("e0", 0)]
    second = paginate([full, *empty], 2, size=4)
    assert [m.key for m, rows in second.sections] == ["e1", "e2", "e3", "e4"]
    few = paginate([full, *empty[:1]], 1, size=50)  # as before when it all fits
    assert [(m.key, len(rows)) for m, rows in few.sections] == [("a", 3), ("e0", 0)]


def test_a_ministry_is_its_listings_without_their_language() -> None:
    en = ministry_key("https://www.gov.kz/memleket/entities/mfa/press/news?lang=en&page=1")
    ru = ministry_key("https://gov.kz/memleket/entities/mfa/press/news?page=1&lang=ru")
    assert en == ru == "gov.kz/memleket/entities/mfa/press/news?page=1"
    assert ministry_key("https://mfa.example/en/press/") == ministry_key(
        "https://mfa.example/ru/press"
    )
    assert ministry_key("https://a.example/press?lang=en") != ministry_key(
        "https://b.example/press"
    )
    assert ministry_key("https://a.example/us/press") != ministry_key("https://a.example/press")
    names = [Listing("mfa-en", "MFA (en)", "", "en"), Listing("mfa-ru", "mfa-ru", "", "ru")]
    assert ministry_name(names) == "MFA"
    assert ministry_name([Listing("x", "Press", "", "en"), Listing("y", "Пресса", "", "ru")]) == (
        "Press · Пресса"
    )


def test_translations_share_an_identity_only_when_the_site_says_so() -> None:
    def identity(**row: str | None) -> str:
        return statement_identity({"watch_id": "w", "translation_group": None, **row})

    assert identity(key="en/1234", language="en") == identity(key="ru/1234", language="ru")
    assert identity(key="en/1234", language="en") != identity(key="en/1235", language="en")
    assert identity(key="page", language="en") != statement_identity(
        {"watch_id": "other", "key": "page", "language": "ru"}
    )
    grouped = identity(key="x", language="en", translation_group="gov.kz/details/7")
    assert grouped == identity(key="y", language="ru", translation_group="gov.kz/details/7")


# --- in Chromium ------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_journalist_filters_the_front_page_to_russian_edits_and_opens_the_diff(
    newsroom: Newsroom,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(newsroom.url + "/")
            page.get_by_label("Username").fill("vi")
            page.get_by_label("Password").fill(PASSWORD)
            page.locator("form.login button[type=submit]").click()
            expect(page.locator("h1")).to_have_text("Latest changes")
            expect(page.locator("#changes tr.change")).to_have_count(8)
            screenshot(page, "front-1-latest-changes")
            # The plain form: no script needed; the choice stays in the address.
            page.get_by_label("Language").select_option("ru")
            page.get_by_label("Kind").select_option("edited")
            page.get_by_role("button", name="Filter").click()
            expect(page).to_have_url(re.compile(r"language=ru.*kind=edited"))
            edits = page.locator("#changes tr.change")
            expect(edits).to_have_count(1)
            expect(edits.first).to_contain_text("(ред.)")
            expect(edits.first.locator("td").nth(2)).to_have_text("ru")
            screenshot(page, "front-2-russian-edits")
            edits.first.get_by_role("link", name="Diff").click()
            expect(page).to_have_url(re.compile(r"/watch/mfa-ru/diff\?key=ru%2F\d+&b=2"))
            expect(page.locator("ins").first).to_have_text(" (ред.)")
            screenshot(page, "front-3-diff")
        finally:
            browser.close()


def test_the_grouped_page_shows_its_listings_health_as_it_is_now(tmp_path: Path) -> None:
    """The listings and ministries are made once per snapshot of the watches; the status
    of the listings a page shows is read for each page."""
    from dataclasses import replace

    from monitor.store import CheckRecord, Store
    from monitor.web.front import with_health
    from monitor.web.grouping import GroupPage, Status

    stale = Listing("mfa-en", "MFA", "https://mfa.example/en/press", "en", Status("quiet"))
    page = GroupPage([(Ministry("mfa", "MFA", [stale]), [])], 1, 1, 0)
    with Store(tmp_path / "store") as store:
        store.sync_watch("mfa-en", stale.url, "generic")
        at = "2026-12-01T10:00:00.000Z"
        state = replace(store.state("mfa-en"), last_check_at=at, failing_since=at)
        store.commit_check(CheckRecord("mfa-en", at, 5, "problem", 503), state)
        [(ministry, _rows)] = with_health(page, store).sections
    assert ministry.listings[0].status == Status("failing", at, None)
    assert page.sections[0][0].listings[0] is stale  # the snapshot's own is left alone
