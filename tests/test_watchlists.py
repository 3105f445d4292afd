"""Watch lists other tools wrote, read as proposed watches; ours written and read back."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from monitor import watchlists
from monitor.config import WatchConfig
from monitor.userregex import check_user_regex
from monitor.watchlists import WatchListError, read_watch_list, write_watch_list

DATA = Path(__file__).parent / "data" / "watchlists"


def _valid(settings: dict) -> WatchConfig:
    return WatchConfig.model_validate(settings)


def test_urlwatch_example_file_becomes_watches_and_says_what_it_left_out() -> None:
    result = read_watch_list(DATA / "urlwatch-urls.yaml.example")
    assert result.format == "urlwatch"
    urls = [w.url for w in result.watches]
    assert urls == [
        "http://www.dubclub-vienna.com/",
        "http://www.openpandora.org/developers.php",
        "http://ti.tuwien.ac.at/rts/teaching/courses/systems_programming",
        "http://ti.tuwien.ac.at/rts/teaching/courses/systems_programming/labor",
        "http://ti.tuwien.ac.at/rts/teaching/courses/betriebssysteme",
        "http://www.kukuk.at/ical/events",
        "http://guckes.net/cal/",
        "http://example.org/With%20Spaces/",
    ]
    ids = [w.id for w in result.watches]
    assert len(set(ids)) == len(ids)
    for proposed in result.watches:
        _valid(proposed.settings)
    reasons = [s.reason for s in result.skipped]
    assert sum("shell-command" in r for r in reasons) == 1
    assert sum("GETs only" in r for r in reasons) == 2
    assert any("Home Listing" in s.origin for s in result.skipped)


def test_urlwatch_file_of_commands_only_adds_nothing() -> None:
    result = read_watch_list(DATA / "urlwatch-jobs-with-tags.yaml")
    assert result.watches == []
    assert [s.origin for s in result.skipped] == [
        "urlwatch job 1 (UTC)",
        "urlwatch job 2 (RFC)",
        "urlwatch job 3 (Local)",
    ]


def test_urlwatch_browser_jobs_filters_and_tags(tmp_path: Path) -> None:
    path = tmp_path / "urls.yaml"
    path.write_text(
        "name: MFA\nurl: https://www.gov.kz/memleket/entities/mfa/press/news\n"
        "filter:\n  - css:\n      selector: main\n      exclude: .share-buttons\n  - html2text\n"
        "tags: [kz]\n---\nnavigate: https://example.org/app\nname: App\n"
    )
    first, second = read_watch_list(path).watches
    assert first.settings["ignore_selectors"] == [".share-buttons"]
    assert first.settings["name"] == "MFA"
    assert any("css, html2text" in note for note in first.notes)
    assert any("kz" in note for note in first.notes)
    assert second.settings["fetcher"] == "browser"


def _changedetection_watch(url: str, **extra: object) -> dict:
    # The fields changedetection.io's Watch model writes (changedetectionio/model/Watch.py).
    watch = {
        "url": url,
        "title": None,
        "paused": False,
        "fetch_backend": "system",
        "include_filters": [],
        "subtractive_selectors": [],
        "ignore_text": [],
        "tags": [],
        "time_between_check": {
            "weeks": None,
            "days": None,
            "hours": None,
            "minutes": None,
            "seconds": None,
        },
        "time_between_check_use_default": True,
    }
    watch.update(extra)
    return watch


def _index() -> dict:
    tag = "6b3a3d8e-8c1f-4c55-9f0e-1a2b3c4d5e6f"
    return {
        "settings": {"application": {"tags": {tag: {"title": "Kazakhstan"}}}},
        "watching": {
            "0f6a2c64-1111-4a2b-8c3d-000000000001": _changedetection_watch(
                "https://www.gov.kz/memleket/entities/mfa/press/news?lang=en",
                title="MFA news",
                time_between_check={
                    "weeks": None,
                    "days": None,
                    "hours": 1,
                    "minutes": 30,
                    "seconds": None,
                },
                time_between_check_use_default=False,
                subtractive_selectors=[".views-counter", "xpath://div[@id='ads']"],
                ignore_text=["Views:", "/\\d+ comments/"],
                tags=[tag],
                include_filters=["#main"],
            ),
            "0f6a2c64-1111-4a2b-8c3d-000000000002": _changedetection_watch(
                "https://mfa.example.org/statements", paused=True, fetch_backend="html_webdriver"
            ),
            "0f6a2c64-1111-4a2b-8c3d-000000000003": {"title": "no url"},
        },
    }


def test_changedetection_backup_with_its_index(tmp_path: Path) -> None:
    path = tmp_path / "changedetection-backup-20261201120000.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("url-watches.json", json.dumps(_index()))
        archive.writestr("secret.txt", "not ours to read")
        archive.writestr("0f6a2c64-1111-4a2b-8c3d-000000000001/1700000000.txt", "a snapshot")
    result = read_watch_list(path)
    assert result.format == "changedetection.io"
    news, paused = result.watches
    assert news.settings["interval"] == 5400.0
    assert news.settings["name"] == "MFA news"
    assert news.settings["ignore_selectors"] == [".views-counter"]
    assert any("XPath" in note for note in news.notes)
    assert any("Kazakhstan" in note for note in news.notes)
    assert any("filter" in note for note in news.notes)
    watch = _valid(news.settings)
    views, comments = watch.ignore
    for rule in watch.ignore:
        check_user_regex(rule)  # the guarded engines take it
    assert re.search(views, "Title\nViews: 1234\nBody").group(0) == "Views: 1234"
    assert re.search(comments, "x\nread 12 comments here\ny").group(0) == "read 12 comments here"
    assert paused.settings["muted"] is True and paused.settings["fetcher"] == "browser"
    assert [s.reason for s in result.skipped] == ["no url"]


def test_changedetection_backup_with_one_directory_per_watch(tmp_path: Path) -> None:
    index = _index()
    path = tmp_path / "backup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for uuid, watch in index["watching"].items():
            archive.writestr(f"{uuid}/watch.json", json.dumps(watch))
        archive.writestr(
            "6b3a3d8e-8c1f-4c55-9f0e-1a2b3c4d5e6f/tag.json", json.dumps({"title": "Kazakhstan"})
        )
        archive.writestr("changedetection.json", "{}")
    result = read_watch_list(path)
    assert len(result.watches) == 2
    assert any("Kazakhstan" in note for note in result.watches[0].notes)


def test_changedetection_url_list_only(tmp_path: Path) -> None:
    path = tmp_path / "backup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("url-list.txt", "https://a.example/x\r\nhttps://b.example/y\r\n")
    assert [w.url for w in read_watch_list(path).watches] == [
        "https://a.example/x",
        "https://b.example/y",
    ]


def test_plain_list_skips_junk_duplicates_and_what_is_watched(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text(
        "# ministries\nhttps://mfa.example/a ['tag']\nftp://files.example/x\n"
        "https://mfa.example/a\nhttps://mfa.example/b\nhttps://host:99999/\nhttps://known.example/\n"
    )
    result = read_watch_list(
        path, taken_ids={"mfa-example-b"}, watched_urls={"https://known.example/": "known"}
    )
    assert [w.url for w in result.watches] == ["https://mfa.example/a", "https://mfa.example/b"]
    assert result.watches[1].id == "mfa-example-b-2"
    reasons = " | ".join(s.reason for s in result.skipped)
    assert "not an http(s) URL" in reasons
    assert "listed twice: the same URL as mfa-example-a" in reasons
    assert "already watched as known" in reasons
    assert "port out of range" in reasons.lower()


def test_opml_feeds_and_links_and_a_refused_entity_bomb(tmp_path: Path) -> None:
    path = tmp_path / "list.opml"
    path.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        '<outline text="Ministries"><outline text="MFA feed" type="rss" xmlUrl="https://mfa.example/rss"/>'
        '<outline text="MFA page" type="link" url="https://mfa.example/page"/></outline></body></opml>'
    )
    feed, page = read_watch_list(path).watches
    assert feed.settings["profile"] == "feed" and page.settings["name"] == "MFA page"
    bomb = tmp_path / "bomb.opml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;">]>'
        '<opml><body><outline text="&b;" url="https://x.example/"/></body></opml>'
    )
    with pytest.raises(WatchListError, match="refused XML"):
        read_watch_list(bomb)


@pytest.mark.parametrize("fmt", watchlists.EXPORT_FORMATS)
def test_our_export_reads_back(tmp_path: Path, fmt: str) -> None:
    watches = [
        {
            "id": "mfa-en",
            "url": "https://www.gov.kz/memleket/entities/mfa?lang=en",
            "name": "MFA",
            "interval": 600.0,
        },
        {"id": "mfa-rss", "url": "https://mfa.example/rss", "profile": "feed"},
    ]
    path = tmp_path / f"watches.{fmt}"
    path.write_text(write_watch_list(watches, fmt))  # type: ignore[arg-type]
    result = read_watch_list(path)
    assert [w.url for w in result.watches] == [w["url"] for w in watches]
    if fmt != "opml":  # OPML carries the URL, the name and whether it is a feed
        assert [w.id for w in result.watches] == ["mfa-en", "mfa-rss"]
        assert result.watches[0].settings["interval"] == 600.0


def test_bad_files_say_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad_yaml = tmp_path / "urls.yaml"
    bad_yaml.write_text("url: https://a.example/\nname: [unclosed\n")
    with pytest.raises(WatchListError, match=r"line \d+: not valid YAML"):
        read_watch_list(bad_yaml)
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(WatchListError, match="not UTF-8"):
        read_watch_list(binary)
    monkeypatch.setattr(watchlists, "MAX_BYTES", 1000)
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("url-watches.json", " " * 5000)
    with pytest.raises(WatchListError, match="larger than"):
        read_watch_list(big)
