"""The Atom feed, per watch and for all watches, read back with feedparser as a reader would."""

from __future__ import annotations

from pathlib import Path

import feedparser

from monitor.atom import feed_bytes
from monitor.config import load_config
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.store import Store
from tests.conftest import monitor_cli, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
OLD = "stands ready to provide further assistance if necessary"
NEW = "will consider further assistance upon a formal request"
PUBLIC = "https://monitor.example.org"


def test_feeds_of_all_watches_and_of_one_parse_as_atom(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config = write_config(tmp_path, replica, languages=("en", "ru"))
    config.write_text(config.read_text().replace("[server]", f'[server]\npublic_url = "{PUBLIC}"'))
    assert monitor_cli(config, "check").returncode == 0
    empty = feedparser.parse(monitor_cli(config, "feed").stdout)
    assert empty.bozo == 0 and empty.entries == []

    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    replica.edit(NEWEST["id"], "ru", title="Казахстан направил гуманитарную помощь <Таджикистану>")
    assert monitor_cli(config, "check").returncode == 0

    output = tmp_path / "public" / "all.atom"
    written = monitor_cli(config, "feed", "--output", str(output))
    assert written.returncode == 0 and str(output) in written.stdout
    feed = feedparser.parse(output.read_bytes())
    assert feed.bozo == 0, feed.bozo_exception
    assert feed.version == "atom10" and feed.feed.title == "monitor — all watches"
    assert [link.href for link in feed.feed.links if link.rel == "self"] == [f"{PUBLIC}/feed.atom"]
    assert len(feed.entries) == 2
    newest_first = [entry.published_parsed for entry in feed.entries]
    assert newest_first == sorted(newest_first, reverse=True)
    by_lang = {entry.author: entry for entry in feed.entries}
    english = by_lang["mfa-en"]
    assert english.title == f"EDITED — {NEWEST['texts']['en']['title']}"
    assert english.link.startswith(f"{PUBLIC}/watch/mfa-en/diff?key=en%2F{NEWEST['id']}")
    assert [t.term for t in english.tags] == ["edited"]
    assert f'<del style="background: #fdd;">{OLD}</del>' in english.content[0].value
    russian = by_lang["mfa-ru"]
    assert "<Таджикистану>" in russian.title  # text, escaped on the wire, intact when read
    assert "&lt;Таджикистану&gt;" in russian.content[0].value

    one = monitor_cli(config, "feed", "--watch", "mfa-ru")
    assert one.returncode == 0
    only = feedparser.parse(one.stdout)
    assert only.bozo == 0 and only.feed.title == "monitor — mfa-ru"
    assert [entry.author for entry in only.entries] == ["mfa-ru"]

    # What the web UI will serve is the same document, and it does not change by itself.
    loaded = load_config(config)
    with Store(loaded.store.path) as store:
        assert feed_bytes(store, loaded) == output.read_bytes() == feed_bytes(store, loaded)

    unknown = monitor_cli(config, "feed", "--watch", "nope")
    assert unknown.returncode == 2 and "no watch 'nope'" in unknown.stderr
