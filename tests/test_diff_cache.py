"""Diffs are computed once per pair of versions and kept (monitor/web/diffview.PairCache):
a kept diff must never outlive what it was made with — a watch's ignore rules changed in
the UI or the API give the same pair of versions a new diff at once, in both."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from monitor.extract import Statement
from monitor.store import CheckRecord, NewVersion, Store
from monitor.web.diffview import PairCache
from tests.conftest import monitor_cli
from tests.webui import add_user, login, serving

URL = "https://gov.example/news/1"
KEY = "en/1"
BEFORE = ("The minister met the delegation.", "This page was viewed 10 times.")
AFTER = ("The minister met the delegation in Astana.", "This page was viewed 12 times.")


def archive(tmp_path: Path) -> Path:
    """A watch whose statement has two versions: a real edit, and a counter that moved."""
    with Store(tmp_path / "store") as store:
        store.sync_watch("w", URL, "generic")
        for n, paragraphs in enumerate((BEFORE, AFTER)):
            text = Statement(KEY, URL, "Talks", paragraphs)
            at = f"2026-05-0{n + 1}T10:00:00.000Z"
            store.commit_check(
                CheckRecord("w", at, 5, "changed", 200),
                store.state("w"),
                versions=[
                    NewVersion(
                        KEY,
                        URL,
                        "Talks",
                        None,
                        "en",
                        "edited" if n else "baseline",
                        text.to_json(),
                        0.3,
                        "",
                    )
                ],
            )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        f'[[watch]]\nid = "w"\nurl = "{URL}"\nprofile = "generic"\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_a_kept_diff_gives_way_to_the_watch_s_new_ignore_rules(tmp_path: Path) -> None:
    config = archive(tmp_path)
    assert add_user(config, "ed", "editor").returncode == 0
    made = monitor_cli(config, "token", "add", "bot", "--role", "editor")
    token = made.stdout.splitlines()[1].strip()
    with serving(config) as url:
        api = httpx.Client(
            base_url=url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        ui = login(url, "ed")

        def api_diff() -> str:
            answer = api.get("/watches/w/diff", params={"key": KEY})
            answer.raise_for_status()
            return str(answer.json()["changes"])

        def ui_diff() -> str:
            answer = ui.get("/watch/w/diff", params={"key": KEY, "b": 2})
            answer.raise_for_status()
            return re.sub(r"<[^>]+>", "", answer.text)

        for _ in range(2):  # computed, then kept: the same answer both times
            assert "12" in api_diff() and "Astana" in api_diff()
            assert "12" in ui_diff() and "Astana" in ui_diff()
        settings = {"url": URL, "profile": "generic", "ignore": [r"viewed \d+ times"]}
        api.put("/watches/w", json=settings).raise_for_status()
        assert "Astana" in api_diff() and "12" not in api_diff()
        assert "Astana" in ui_diff() and "viewed 12" not in ui_diff()
        # And back: the rule removed, the counter is a change again.
        api.put("/watches/w", json={"url": URL, "profile": "generic"}).raise_for_status()
        assert "12" in api_diff()
        assert "12" in ui_diff()


def test_the_pair_cache_keeps_the_most_recently_used() -> None:
    cache: PairCache[str] = PairCache(size=2)
    one, two, three = PairCache.key(1, 2, []), PairCache.key(2, 3, []), PairCache.key(3, 4, [])
    cache.put(one, "1-2")
    cache.put(two, "2-3")
    assert cache.get(one) == "1-2"  # now the most recently used
    cache.put(three, "3-4")
    assert cache.get(two) is None and cache.get(one) == "1-2" and cache.get(three) == "3-4"
    assert len(cache) == 2
    # The same versions under other ignore rules are another diff.
    assert PairCache.key(1, 2, ["x"]) != one and cache.get(PairCache.key(1, 2, ["x"])) is None


@pytest.mark.parametrize("first", [None, 7])
def test_a_first_version_and_a_later_one_are_different_pairs(first: int | None) -> None:
    assert PairCache.key(first, 8, []) != PairCache.key(6, 8, [])
