"""The `govkz` profile on the page as a browser renders it: the same statement as the API's,
keyed the same way, so a watch's history stays one statement whichever way it was read.

Pages come from the replica over real HTTP: its `prerender` mode answers each page as the
app builds it in a browser (tests/test_browser.py checks that Chromium builds the same).
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.compare import _as_result
from monitor.diff import compare
from monitor.extract import Extraction, Target
from monitor.replica import LANGS, STATEMENTS, ReplicaSite
from monitor.sites import get_profile
from tests.conftest import monitor_cli

LIVE = "https://www.gov.kz/memleket/entities/mfa/press/news"
SEED_ID = STATEMENTS[0]["id"]


@pytest.fixture(scope="module")
def site() -> Iterator[ReplicaSite]:
    with ReplicaSite(prerender=True) as replica:
        yield replica


def fetch(url: str, lang: str = "ru") -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Language": lang})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return bytes(answer.read())


def read(body: bytes, url: str) -> Extraction:
    """What the profile chosen for the live URL reads from a saved answer."""
    return get_profile(None, url).extract(_as_result(body, url), Target(url))


def details(statement_id: int, lang: str) -> str:
    return f"{LIVE}/details/{statement_id}?lang={lang}"


def api_and_page(site: ReplicaSite, statement_id: int, lang: str) -> tuple[bytes, bytes]:
    api = fetch(f"{site.url}/api/v1/public/content-manager/news/{statement_id}", lang)
    page = fetch(f"{site.url}/memleket/entities/mfa/press/news/details/{statement_id}?lang={lang}")
    return api, page


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("seed", STATEMENTS, ids=[str(s["id"]) for s in STATEMENTS])
def test_the_rendered_page_gives_the_statement_the_api_gives(
    site: ReplicaSite, seed: dict[str, object], lang: str
) -> None:
    statement_id = int(str(seed["id"]))
    api, page = api_and_page(site, statement_id, lang)
    assert b"<h1" in page and b"news-detail__views" in page  # a page, with its furniture
    from_api = read(api, details(statement_id, lang)).statements
    from_page = read(page, details(statement_id, lang)).statements
    assert len(from_api) == len(from_page) == 1
    a, b = from_api[0], from_page[0]
    assert b.key == a.key == f"{lang}/{statement_id}"
    assert (b.url, b.title, b.language) == (a.url, a.title, a.language)
    assert b.paragraphs == a.paragraphs and len(a.paragraphs) >= 3
    assert (b.links, b.attachments) == (a.links, a.attachments)
    # The page shows the date to the minute; the API to the millisecond, with its zone.
    assert b.published and a.published and a.published.startswith(b.published)
    assert not compare(a, b).changed


# Ways the app's markup may differ from the replica's without the statement changing: the
# body's container renamed or wrapped, the furniture moved into the article, the title
# outside it. Class names are not what the profile reads.
VARIANTS: dict[str, Callable[[str], str]] = {
    "container-renamed": lambda page: page.replace('class="inner-html"', 'class="sc-1x9ab3"', 1),
    "body-wrapped-twice": lambda page: page.replace(
        '<div class="inner-html">', '<div class="rich"><div class="inner-html"><div>', 1
    ).replace(
        '</div></div>\n<div class="news-detail__share">',
        '</div></div></div></div>\n<div class="news-detail__share">',
        1,
    ),
    "no-article-element": lambda page: page.replace("<article ", "<section ").replace(
        "</article>", "</section>"
    ),
    "other-news-inside-the-article": lambda page: page.replace(
        '<div class="news-detail__share">',
        '<div class="x-block"><p>Related: Foreign Minister meets the ambassadors of the EU '
        'member states</p></div><div class="news-detail__share">',
        1,
    ).replace("x-block", "related-news"),
    "date-as-time-element": lambda page: re.sub(
        r'<p class="typography typography__variant-caption categories__item color_grey">'
        r"[^<]*</p>",
        '<time datetime="2026-11-03T10:15:00+05:00">03.11.2026</time>',
        page,
        count=1,
    ),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_the_body_is_found_by_its_prose_not_its_class(site: ReplicaSite, variant: str) -> None:
    api, page = api_and_page(site, SEED_ID, "en")
    changed = VARIANTS[variant](page.decode())
    assert changed != page.decode()
    [a] = read(api, details(SEED_ID, "en")).statements
    [b] = read(changed.encode(), details(SEED_ID, "en")).statements
    assert (b.key, b.title, b.paragraphs, b.links, b.attachments) == (
        a.key,
        a.title,
        a.paragraphs,
        a.links,
        a.attachments,
    )


def run_compare(tmp_path: Path, old: bytes, new: bytes, url: str) -> dict[str, object]:
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    result = monitor_cli(
        None, "compare", str(tmp_path / "old"), str(tmp_path / "new"), "--url", url,
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compare_on_saved_pages_names_an_edit_and_ignores_the_counter(
    site: ReplicaSite, tmp_path: Path
) -> None:
    _, old = api_and_page(site, SEED_ID, "ru")
    url = details(SEED_ID, "ru")
    # The view counter and the other-news column move on every visit: no alert.
    again = re.sub(rb"<span>\d+</span>", b"<span>99999</span>", old)
    again = again.replace(b"24.11.2026", b"25.11.2026")
    assert again != old
    verdict = run_compare(tmp_path, old, again, url)
    assert verdict["kind"] == "unchanged", verdict
    edited = old.replace("приветствует".encode(), "с сожалением отмечает".encode(), 1)
    verdict = run_compare(tmp_path, old, edited, url)
    assert verdict["kind"] == "edited" and verdict["alert"] is True
    assert verdict["removed"] == ["приветствует"]
    assert verdict["added"] == ["с сожалением отмечает"]


def test_the_api_answer_and_the_rendered_page_compare_as_one_statement(
    site: ReplicaSite, tmp_path: Path
) -> None:
    api, page = api_and_page(site, SEED_ID, "kk")
    url = details(SEED_ID, "kk")
    assert run_compare(tmp_path, api, page, url)["kind"] == "unchanged"
    assert run_compare(tmp_path, page, api, url)["kind"] == "unchanged"


def test_the_rendered_listing_gives_the_api_listings_statements(site: ReplicaSite) -> None:
    api = fetch(f"{site.url}/api/v1/public/content-manager/news?page=1&size=20", "en")
    page = fetch(f"{site.url}/memleket/entities/mfa/press/news?lang=en")
    assert page.count(b"card-news-list__item") == len(STATEMENTS)
    from_api = read(api, f"{LIVE}?lang=en")
    from_page = read(page, f"{LIVE}?lang=en")
    assert from_page.is_listing and not from_page.problem
    assert [(s.key, s.url, s.title) for s in from_page.statements] == [
        (s.key, s.url, s.title) for s in from_api.statements
    ]
    assert all(s.published and s.published[:10] for s in from_page.statements)
    # One page holds them all (its "Next page" is disabled): anything missing was removed.
    assert from_page.window_start == ""


def test_a_listing_with_a_next_page_expects_only_what_its_dates_cover() -> None:
    with ReplicaSite(prerender=True) as site:
        for n in range(5):  # 13 statements: two pages of ten
            site.add({"en": {"title": f"Briefing number {n}", "body": "<p>Text.</p>"}})
        first = fetch(f"{site.url}/memleket/entities/mfa/press/news?lang=en")
        second = fetch(f"{site.url}/memleket/entities/mfa/press/news/2?lang=en")
    one, two = read(first, f"{LIVE}?lang=en"), read(second, f"{LIVE}?lang=en")
    assert len(one.statements) == 10 and len(two.statements) == 3
    oldest = min(s.published or "" for s in one.statements)
    assert one.window_start == oldest
    assert two.window_start == ""


def test_the_apps_empty_shell_and_its_not_found_view(tmp_path: Path) -> None:
    with ReplicaSite() as site:  # no prerender: what a plain HTTP client gets
        shell = fetch(f"{site.url}/memleket/entities/mfa/press/news/details/{SEED_ID}?lang=en")
    extraction = read(shell, details(SEED_ID, "en"))
    assert extraction.problem and "empty shell" in extraction.problem
    assert "not JSON" not in extraction.problem
    with ReplicaSite(prerender=True) as site:
        site.remove(SEED_ID)
        gone = fetch(f"{site.url}/memleket/entities/mfa/press/news/details/{SEED_ID}?lang=en")
    extraction = read(gone, details(SEED_ID, "en"))
    assert extraction.gone and extraction.problem


def test_the_browser_fetcher_asks_for_the_page_the_http_one_for_the_api() -> None:
    profile = get_profile("govkz", details(SEED_ID, "ru"))
    [page] = profile.requests(Target(details(SEED_ID, "ru"), fetcher="browser"))
    assert page.url == details(SEED_ID, "ru") and page.method == "GET"
    api = profile.requests(Target(f"{LIVE}?lang=ru"))
    assert [r.url.split("?")[0] for r in api] == [
        "https://www.gov.kz/graphql",
        "https://www.gov.kz/api/v1/public/content-manager/news",
    ]
