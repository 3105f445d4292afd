"""The watches in force come from one place: the file's, the store's over them, then the
statements discovering listings found; one snapshot per (re)load."""

from __future__ import annotations

from pathlib import Path

from monitor.config import parse_config
from monitor.reload import WatchChanges
from monitor.store import Discovery, Store
from monitor.watches import load_watches
from monitor.wiring import build

CONFIG = """
[store]
path = "{path}"

[[watch]]
id = "listing"
url = "https://mfa.example/en/press"
discover = true
discover_schedule = ["10m until 1d", "2h"]

[[watch]]
id = "page"
url = "https://mfa.example/en/about"
interval = "1h"
"""


def _found(key: str) -> Discovery:
    return Discovery(
        watch_id=f"listing.{key}",
        parent_id="listing",
        key=key,
        url=f"https://mfa.example/en/press/{key}",
        title=f"Statement {key}",
        language="en",
        profile=None,
        published="2026-01-01",
        translation_group=None,
        announce=False,
        listed_sha256="0" * 64,
    )


def test_file_then_store_then_discovered_and_a_snapshot_until_asked_again(
    tmp_path: Path,
) -> None:
    config = parse_config(CONFIG.format(path=tmp_path / "store"))
    with Store.from_config(config.store) as store:
        store.sync_watch("listing", "https://mfa.example/en/press", "generic")
        store.add_discovered([_found("1"), _found("2")], "2026-01-02T00:00:00Z")
        # The UI edits one of the file's watches, adds one, and names a statement's id.
        store.put_ui_watch("page", {"url": "https://mfa.example/en/about", "interval": "2h"}, "a")
        store.put_ui_watch("added", {"url": "https://mfa.example/en/visas"}, "a")
        store.put_ui_watch("listing.2", {"url": "https://mfa.example/own", "interval": "5m"}, "a")
        watches = load_watches(config, store)
        by_id = {w.id: w for w in watches.watch}
        assert sorted(by_id) == ["added", "listing", "listing.1", "listing.2", "page"]
        assert by_id["page"].interval == 7200  # the UI's over the file's
        assert by_id["listing.2"].url == "https://mfa.example/own"  # a named one wins
        assert set(watches.statements) == {"listing.1"}  # the statement the listing owns
        assert by_id["listing.1"].interval == 7200  # older than a day: the "2h" step
        assert [w.id for w in watches.base.watch] == ["listing", "page", "added", "listing.2"]

        # Statements found later are adopted into a new snapshot; the old one stays.
        store.add_discovered([_found("3")], "2026-01-03T00:00:00Z")
        adopted, fresh = watches.adopt(store)
        assert [item.watch.id for item in fresh] == ["listing.3"]
        assert "listing.3" in {w.id for w in adopted.watch}
        assert "listing.3" not in {w.id for w in watches.watch}
        assert adopted.adopt(store) == (adopted, [])


def test_serve_hands_out_one_snapshot_until_a_save_or_its_age(tmp_path: Path) -> None:
    config = parse_config(CONFIG.format(path=tmp_path / "store"))
    with Store.from_config(config.store) as store:
        store.sync_watch("listing", "https://mfa.example/en/press", "generic")
        runtime = build(config, store)
        first = runtime.current(max_age=60)
        store.put_ui_watch("added", {"url": "https://mfa.example/en/visas"}, "a")
        assert runtime.current(max_age=60) is first  # no merge per request
        runtime.refresh()  # what a save in the UI does
        assert "added" in {w.id for w in runtime.current(max_age=60).watch}
        store.add_discovered([_found("1")], "2026-01-02T00:00:00Z")
        assert "listing.1" in {w.id for w in runtime.current(max_age=0).watch}


def test_a_reload_reads_the_file_and_the_store_and_says_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG.format(path=tmp_path / "store"), encoding="utf-8")
    from monitor.config import load_config

    config = load_config(path)
    with Store.from_config(config.store) as store:
        runtime = build(config, store)
        path.write_text(
            CONFIG.format(path=tmp_path / "store").replace('interval = "1h"', 'interval = "3h"')
            + '\n[[watch]]\nid = "new"\nurl = "https://mfa.example/en/new"\n',
            encoding="utf-8",
        )
        store.put_ui_watch("added", {"url": "https://mfa.example/en/visas"}, "a")
        assert runtime.reload() == WatchChanges(
            added=["added", "new"], removed=[], changed=["page"]
        )
        assert {w.id: w.interval for w in runtime.config.watch}["page"] == 3 * 3600
