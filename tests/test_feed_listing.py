"""The `feed` profile end to end: RSS/Atom feeds served over real HTTP, read by `monitor check`.

The feeds are mid.ru-like (RSS 2.0 in windows-1251, ten entries: a *full* feed) and
state.gov-like (Atom, five entries: a *short* feed, so complete). Tests edit the served
documents between checks the way the sites change them: a new entry on top, the oldest
falling off the end, an entry's text edited, an entry withdrawn, an error page instead.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from monitor.config import FetchConfig
from monitor.extract import Link, Target
from monitor.fetch import Fetcher, FetchResult
from monitor.sites import get_profile
from monitor.sites.feed import ACCEPT
from tests.conftest import FeedServer, Receiver, monitor_cli, upgraded_copy, write_config

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
RSS_PATH = "/ru/rss.php"
ATOM_PATH = "/rss-feed/press-releases/feed/"
RSS_TYPE = "text/xml; charset=windows-1251"
ATOM_TYPE = "application/atom+xml; charset=UTF-8"


class FeedDoc:
    """A sample feed split into its head, its entries and its tail, to edit and serve."""

    def __init__(self, name: str, encoding: str) -> None:
        self.encoding = encoding
        text = (FEEDS / name).read_bytes().decode(encoding)
        tag = "entry" if name.endswith(".atom") else "item"
        pattern = re.compile(rf"[ \t]*<{tag}>.*?</{tag}>\n", re.S)
        self.items = pattern.findall(text)
        first, last = text.index(self.items[0]), text.rindex(self.items[-1])
        self.head, self.tail = text[:first], text[last + len(self.items[-1]) :]

    def body(self) -> bytes:
        return (self.head + "".join(self.items) + self.tail).encode(self.encoding)

    def find(self, fragment: str) -> int:
        [index] = [i for i, item in enumerate(self.items) if fragment in item]
        return index


def feed_config(directory: Path, url: str, receiver: Receiver, extra: str = "") -> Path:
    config = write_config(directory, None, receiver, languages=())
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"""
[[watch]]
id = "news"
url = "{url}"
interval = "15m"
channels = ["console", "hook"]
{extra}
""",
        encoding="utf-8",
    )
    return config


def check(config: Path, expect: int = 0) -> str:
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == expect, result.stderr + result.stdout
    return result.stdout


def documents(directory: Path) -> dict[str, sqlite3.Row]:
    connection = sqlite3.connect(directory / "store" / "index.sqlite")
    connection.row_factory = sqlite3.Row
    rows = connection.execute("SELECT * FROM document").fetchall()
    connection.close()
    return {row["key"]: row for row in rows}


def version_kinds(directory: Path) -> dict[str, int]:
    connection = sqlite3.connect(directory / "store" / "index.sqlite")
    rows = connection.execute("SELECT kind, COUNT(*) FROM version GROUP BY kind").fetchall()
    connection.close()
    return dict(rows)


def shown(config: Path, key: str) -> str:
    """`monitor show` of the latest version of a statement, as a user reads it."""
    connection = sqlite3.connect(config.parent / "store" / "index.sqlite")
    [(number,)] = connection.execute(
        "SELECT MAX(v.seq) FROM version v JOIN document d ON d.id = v.document_id WHERE d.key = ?",
        (key,),
    ).fetchall()
    connection.close()
    result = monitor_cli(config, "show", "news", str(number), "--key", key)
    assert result.returncode == 0, result.stderr
    return result.stdout


def new_rss_item(news_id: int, title: str, pub_date: str) -> str:
    return f"""    <item>
      <title>{title}</title>
      <link>https://mid.ru/ru/foreign_policy/news/{news_id}/</link>
      <guid isPermaLink="true">https://mid.ru/ru/foreign_policy/news/{news_id}/</guid>
      <pubDate>{pub_date}</pubDate>
      <description><![CDATA[<p>Текст нового заявления МИД России.</p>]]></description>
    </item>
"""


def mid_key(news_id: int) -> str:
    return f"https://mid.ru/ru/foreign_policy/news/{news_id}/"


@pytest.fixture
def rss(feeds: FeedServer) -> FeedDoc:
    doc = FeedDoc("midru.rss", "cp1251")
    feeds.serve(RSS_PATH, RSS_TYPE, doc.body())
    return doc


@pytest.fixture
def atom(feeds: FeedServer) -> FeedDoc:
    doc = FeedDoc("stategov.atom", "utf-8")
    feeds.serve(ATOM_PATH, ATOM_TYPE, doc.body())
    return doc


def test_feed_urls_choose_the_feed_profile_before_the_host_profiles() -> None:
    assert get_profile(None, "https://mid.ru/ru/rss.php").name == "feed"
    assert get_profile(None, "https://www.state.gov/rss-feed/press-releases/feed/").name == "feed"
    for url in ("https://example.org/news/rss", "https://example.org/a.rss"):
        assert get_profile(None, url).name == "feed"
    for url in ("https://example.org/feed", "https://example.org/atom.xml"):
        assert get_profile(None, url).name == "feed"
    # The sites' pages stay with their own profiles.
    assert get_profile(None, "https://mid.ru/ru/foreign_policy/news/2061845/").name == "midru"
    assert get_profile(None, "https://www.state.gov/press-releases/").name == "stategov"
    assert get_profile(None, "https://example.org/feedback").name == "generic"


def test_rss_first_check_is_a_silent_baseline_decoded_from_windows_1251(
    tmp_path: Path, feeds: FeedServer, rss: FeedDoc, receiver: Receiver
) -> None:
    config = feed_config(tmp_path, feeds.url + RSS_PATH, receiver)
    output = check(config)
    assert "news: changed (10 new versions, 0 alerts)" in output
    assert receiver.posts == []
    # The feed was asked for as a feed.
    assert {accept for path, accept in feeds.hits if path == RSS_PATH} == {ACCEPT}
    docs = documents(tmp_path)
    assert len(docs) == 10
    first = docs[mid_key(2061845)]
    assert first["title"] == "Заявление МИД России в связи с решением Совета ЕС"
    # The link without its utm_* parameters; the date in UTC (the feed says +0300).
    assert first["url"] == mid_key(2061845)
    assert first["published"] == "2026-11-20T15:00:00+00:00"
    assert first["language"] == "ru"
    show = shown(config, mid_key(2061845))
    assert "Совет Европейского союза принял очередное решение" in show
    assert "zayavlenie_prilozhenie.pdf" in show
    assert "Поделиться" in show  # a feed's HTML has no furniture rules but the user's


def test_ignore_selectors_apply_to_entry_html_and_enclosures_are_attachments(
    feeds: FeedServer, rss: FeedDoc
) -> None:
    target = Target(feeds.url + RSS_PATH, drop_selectors=(".share",))
    extraction = get_profile("feed", target.url).extract(fetch(target.url), target)
    by_key = {s.key: s for s in extraction.statements}
    first = by_key[mid_key(2061845)]
    assert first.paragraphs == (
        "Совет Европейского союза принял очередное решение о продлении ограничительных мер.",
        "Российская сторона оставляет за собой право на ответные меры.",
        "Приложение (PDF)",
    )
    # A relative link in the entry's HTML is resolved against the feed's own URL.
    pdf = feeds.url + "/upload/iblock/3f2/zayavlenie_prilozhenie.pdf"
    assert first.attachments == (Link(pdf, "Приложение (PDF)"),)
    sixth = by_key[mid_key(2061845 - 5 * 7)]
    assert sixth.attachments == (
        Link("https://mid.ru/upload/iblock/vystuplenie_2061810.pdf", "vystuplenie_2061810.pdf"),
    )
    assert extraction.is_listing


def test_new_entry_is_published_and_the_one_pushed_off_a_full_feed_is_not_removed(
    tmp_path: Path, feeds: FeedServer, rss: FeedDoc, receiver: Receiver
) -> None:
    config = feed_config(tmp_path, feeds.url + RSS_PATH, receiver, 'profile = "feed"')
    check(config)
    oldest = rss.items[-1]
    # The site publishes one statement; its feed keeps ten, so the oldest falls off.
    rss.items = [
        new_rss_item(2061900, "Заявление о ситуации в регионе", "Fri, 21 Nov 2026 10:00:00 +0300"),
        *rss.items[:-1],
    ]
    feeds.serve(RSS_PATH, RSS_TYPE, rss.body())
    output = check(config)
    assert "news: changed (1 new versions, 1 alerts)" in output
    [alert] = receiver.alerts()
    assert alert["kind"] == "published"
    assert alert["key"] == mid_key(2061900)
    assert alert["title"] == "Заявление о ситуации в регионе"
    assert alert["language"] == "ru"
    dropped = re.search(r"<guid[^>]*>(.*?)</guid>", oldest)
    assert dropped is not None
    assert documents(tmp_path)[dropped.group(1)]["removed_at"] is None
    # And it stays so: the next check finds nothing to say.
    assert "news: unchanged" in check(config)
    assert len(receiver.alerts()) == 1


@pytest.mark.slow
def test_edited_entry_text_is_an_edit_with_the_sentence(
    tmp_path: Path, feeds: FeedServer, rss: FeedDoc, receiver: Receiver
) -> None:
    config = feed_config(tmp_path, feeds.url + RSS_PATH, receiver)
    check(config)
    old, new = "Призываем все стороны проявлять сдержанность.", "Призываем все стороны к диалогу."
    index = rss.find(old)
    rss.items[index] = rss.items[index].replace(old, new)
    feeds.serve(RSS_PATH, RSS_TYPE, rss.body())
    check(config)
    [alert] = receiver.alerts()
    assert alert["kind"] == "edited"
    assert alert["key"] == mid_key(2061845 - 7)
    assert alert["title"].startswith("Комментарий официального представителя")
    assert alert["removed"] == ["проявлять сдержанность"]
    assert alert["added"] == ["к диалогу"]
    [change] = alert["changes"]
    assert change["before"] == old and change["after"] == new


@pytest.mark.slow
def test_entry_withdrawn_from_within_the_window_of_a_full_feed_is_removed(
    tmp_path: Path, feeds: FeedServer, rss: FeedDoc, receiver: Receiver
) -> None:
    config = feed_config(tmp_path, feeds.url + RSS_PATH, receiver)
    check(config)
    # A new statement on top and a middle one withdrawn: the feed is still full (ten), and
    # the withdrawn one is newer than its oldest entry, so it was removed, not pushed off.
    withdrawn = rss.find("О консультациях по вопросам Арктики")
    del rss.items[withdrawn]
    rss.items.insert(
        0,
        new_rss_item(2061900, "Заявление о ситуации в регионе", "Fri, 21 Nov 2026 10:00:00 +0300"),
    )
    feeds.serve(RSS_PATH, RSS_TYPE, rss.body())
    before = feeds.count(RSS_PATH)
    check(config)
    # A removal is confirmed by a second fetch before it is recorded.
    assert feeds.count(RSS_PATH) - before == 2
    assert sorted(a["kind"] for a in receiver.alerts()) == ["published", "removed"]
    [removed] = receiver.alerts("removed")
    assert removed["key"] == mid_key(2061845 - 7 * 7)
    assert removed["title"] == "О консультациях по вопросам Арктики"
    assert documents(tmp_path)[mid_key(2061845 - 7 * 7)]["removed_at"] is not None


@pytest.mark.slow
def test_atom_feed_short_is_complete_and_an_edit_in_content_is_found(
    tmp_path: Path, feeds: FeedServer, atom: FeedDoc, receiver: Receiver
) -> None:
    # No `profile`: the URL's `/feed/` chooses the feed profile.
    config = feed_config(tmp_path, feeds.url + ATOM_PATH, receiver)
    assert "news: changed (5 new versions, 0 alerts)" in check(config)
    docs = documents(tmp_path)
    briefing = docs["https://www.state.gov/?p=712301"]
    assert briefing["title"] == "Department Press Briefing"
    assert briefing["language"] == "en"
    assert briefing["published"] == "2026-11-16T20:30:00+00:00"  # <published>, not <updated>
    show = shown(config, "https://www.state.gov/?p=712301")
    assert "Transcript (PDF) <https://www.state.gov/wp-content/uploads/2026/11/" in show
    # The full <content> is read, not the one-sentence <summary>.
    old = "We stand ready to provide further assistance if necessary."
    new = "We will consider further assistance upon a formal request."
    index = atom.find(old)
    atom.items[index] = atom.items[index].replace(old, new)
    # A short feed (five entries, fewer than `size`) holds everything the site has: the
    # oldest entry going away is a removal, not an entry pushed off the end.
    del atom.items[-1]
    feeds.serve(ATOM_PATH, ATOM_TYPE, atom.body())
    check(config)
    kinds = sorted(a["kind"] for a in receiver.alerts())
    assert kinds == ["edited", "removed"]
    [edited] = receiver.alerts("edited")
    assert edited["key"] == "https://www.state.gov/?p=712345"
    assert edited["summary"].startswith("Paragraph 2: “stand ready to provide further assistance")
    [removed] = receiver.alerts("removed")
    assert removed["key"] == "https://www.state.gov/?p=712301"


@pytest.mark.process
def test_an_upgrade_that_keys_entries_differently_does_not_alert(
    tmp_path: Path, feeds: FeedServer, atom: FeedDoc, receiver: Receiver
) -> None:
    # A new release keys a feed's entries by their link instead of their id. To it, every
    # entry of the unchanged feed is new, and every stored statement is gone from it: five
    # "published" and five "removed" alerts, none of them true. Nothing may alert.
    upgraded = upgraded_copy(
        tmp_path,
        "sites/feed.py",
        'key = normalize_text(entry.get("id") or "") or link or f"title:{title}"',
        'key = link or normalize_text(entry.get("id") or "") or f"title:{title}"',
    )
    config = feed_config(tmp_path, feeds.url + ATOM_PATH, receiver)
    assert "news: changed (5 new versions, 0 alerts)" in check(config)
    quiet = monitor_cli(config, "check", "--once", code=upgraded)
    assert quiet.returncode == 0, quiet.stderr
    assert "news: changed (10 new versions, 0 alerts)" in quiet.stdout, quiet.stdout
    assert "10 statements read again the new way, not alerted" in quiet.stderr
    assert receiver.alerts() == []
    docs = documents(tmp_path)
    link = "https://www.state.gov/secretarys-meeting-with-the-foreign-minister-of-kazakhstan/"
    assert docs["https://www.state.gov/?p=712334"]["removed_at"] is not None
    assert docs[link]["removed_at"] is None
    assert version_kinds(tmp_path) == {"baseline": 10, "removed": 5}

    # Under the new keys, a real edit alerts, once.
    old = "We stand ready to provide further assistance if necessary."
    index = atom.find(old)
    atom.items[index] = atom.items[index].replace(old, "We will consider further assistance.")
    feeds.serve(ATOM_PATH, ATOM_TYPE, atom.body())
    edited = monitor_cli(config, "check", "--once", code=upgraded)
    assert "news: changed (1 new versions, 1 alerts)" in edited.stdout, edited.stdout
    [alert] = receiver.alerts()
    assert alert["kind"] == "edited" and alert["key"].startswith("https://www.state.gov/extending")


def test_atom_feed_with_size_set_to_its_length_is_truncated(
    tmp_path: Path, feeds: FeedServer, atom: FeedDoc, receiver: Receiver
) -> None:
    # The site keeps five entries (`size = 5`): the oldest falling off is not a removal.
    config = feed_config(tmp_path, feeds.url + ATOM_PATH, receiver, "options = { size = 5 }")
    check(config)
    newest = atom.items[0].replace("?p=712345", "?p=712399").replace("2026-11-20", "2026-11-21")
    atom.items = [newest, *atom.items[:-1]]
    feeds.serve(ATOM_PATH, ATOM_TYPE, atom.body())
    check(config)
    assert [a["kind"] for a in receiver.alerts()] == ["published"]


BAD_ANSWERS = {
    # Bot challenge pages and error pages are classified before any feed parsing.
    "captcha": ("text/html; charset=utf-8", (FEEDS / "captcha.html").read_bytes(), "captcha"),
    # An ordinary HTML page where the feed was (a moved feed, a CMS redirect target).
    "html page": ("text/html; charset=utf-8", (FEEDS / "home.html").read_bytes(), "not an RSS"),
    # A feed cut off in the middle: feedparser would read the entries before the cut.
    "truncated": (RSS_TYPE, (FEEDS / "midru.rss").read_bytes()[:3500], "truncated feed"),
    # A feed document that ends properly but holds no entries.
    "empty": (
        RSS_TYPE,
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>',
        "no entries",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", list(BAD_ANSWERS))
def test_a_response_that_is_not_the_feed_is_a_problem_never_a_removal(
    tmp_path: Path, feeds: FeedServer, rss: FeedDoc, receiver: Receiver, answer: str
) -> None:
    config = feed_config(tmp_path, feeds.url + RSS_PATH, receiver)
    check(config)
    content_type, body, reason = BAD_ANSWERS[answer]
    feeds.serve(RSS_PATH, content_type, body)
    output = check(config, expect=1)
    assert "news: problem" in output and reason in output
    feeds.serve(RSS_PATH, RSS_TYPE, rss.body())
    check(config)
    assert [a["kind"] for a in receiver.alerts()] == ["failing", "recovered"]
    assert version_kinds(tmp_path) == {"baseline": 10}


def fetch(url: str) -> FetchResult:
    config = FetchConfig(allow_private=True, per_host_delay=0, retries=0)

    async def go() -> FetchResult:
        async with Fetcher(config) as fetcher:
            [request] = get_profile("feed", url).requests(Target(url))
            return await fetcher.fetch(request)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("text/xml", "cp1251"),  # no charset: the XML declaration decides
        ("application/rss+xml", "cp1251"),
        ("text/xml; charset=windows-1251", "cp1251"),
        ("text/xml; charset=utf-8", "cp1251"),  # a header that lies
        ("text/html; charset=utf-8", "cp1251"),  # served as a web page, still a feed
        ("text/xml", "koi8_r"),
        ("application/rss+xml; charset=utf-8", "utf-8"),
    ],
)
def test_russian_feeds_decode_whatever_the_server_says(
    feeds: FeedServer, content_type: str, encoding: str
) -> None:
    text = (FEEDS / "midru.rss").read_bytes().decode("cp1251")
    declared = {"cp1251": "windows-1251", "koi8_r": "KOI8-R", "utf-8": "UTF-8"}[encoding]
    text = text.replace('encoding="windows-1251"', f'encoding="{declared}"')
    text = text.replace("—", "-")  # KOI8-R has no em dash
    feeds.serve(RSS_PATH, content_type, text.encode(encoding))
    url = feeds.url + RSS_PATH
    extraction = get_profile("feed", url).extract(fetch(url), Target(url))
    assert extraction.problem is None
    titles = [s.title for s in extraction.statements]
    assert titles[0] == "Заявление МИД России в связи с решением Совета ЕС"
    assert "Соболезнования в связи с землетрясением в Турции" in titles
