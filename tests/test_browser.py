"""The browser engine in real headless Chromium: JS-only pages and gov.kz's API headers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import Receiver, monitor_cli, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])


def test_gov_kz_api_headers_are_captured_from_the_sites_own_scripts(tmp_path: Path) -> None:
    with ReplicaSite(require_tokens=True) as site:
        site.set_mode("graphql_off")  # only the REST API is left, and it wants hash/token
        config = write_config(tmp_path, site)
        result = monitor_cli(config, "check", "--once")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "mfa-en: changed (8 new versions" in result.stdout
        assert "captured API headers ['hash', 'token']" in result.stderr
        # The captured values are the page's own, replayed on the API request.
        assert site.api_hash not in result.stderr  # secrets are not logged
        db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
        [(headers,)] = db.execute("SELECT request_headers FROM response").fetchall()
        assert site.api_hash in headers and site.api_token in headers


def test_without_a_browser_the_refusal_is_explained(tmp_path: Path) -> None:
    with ReplicaSite(require_tokens=True) as site:
        site.set_mode("graphql_off")
        config = write_config(tmp_path, site)
        config.write_text(
            config.read_text().replace(
                'timeout = "10s"', 'timeout = "10s"\nbrowser_path = "/nonexistent/chromium"'
            )
        )
        result = monitor_cli(config, "check", "--once")
        assert result.returncode == 1
        assert "HTTP 401" in result.stdout
        assert "hash/token" in result.stdout


def test_a_javascript_only_page_is_rendered_by_the_browser_fetcher(tmp_path: Path) -> None:
    with ReplicaSite() as site:
        config = tmp_path / "monitor.toml"
        config.write_text(
            f"""
[store]
path = "{tmp_path / "store"}"
[fetch]
allow_private = true
per_host_delay = "0s"
[alerts]
confirm_delay = "0s"
[[watch]]
id = "spa"
url = "{site.url}/memleket/entities/mfa/press/news/details/{NEWEST["id"]}?lang=en"
profile = "generic"
fetcher = "browser"
""",
            encoding="utf-8",
        )
        # A plain HTTP client sees only the empty shell of the single-page app.
        plain = config.read_text().replace('fetcher = "browser"', "")
        (tmp_path / "plain.toml").write_text(plain.replace('id = "spa"', 'id = "plain"'))
        result = monitor_cli(tmp_path / "plain.toml", "check")
        assert result.returncode == 1 and "empty extraction" in result.stdout
        result = monitor_cli(config, "check")
        assert result.returncode == 0, result.stdout + result.stderr
        shown = monitor_cli(config, "show", "spa", "1")
        assert NEWEST["texts"]["en"]["title"] in shown.stdout
        assert "further assistance" in shown.stdout


def test_the_browser_obeys_the_ssrf_guard(tmp_path: Path) -> None:
    with ReplicaSite() as site:
        config = tmp_path / "monitor.toml"
        config.write_text(
            f"""
[store]
path = "{tmp_path / "store"}"
[[watch]]
id = "spa"
url = "{site.url}/memleket/entities/mfa/press/news?lang=en"
profile = "generic"
fetcher = "browser"
""",
            encoding="utf-8",
        )
        result = monitor_cli(config, "check")
        assert result.returncode == 1
        assert "non-public address 127.0.0.1" in result.stdout
        assert site.requests == []


def test_gov_kz_read_from_the_rendered_pages_continues_the_api_history(
    tmp_path: Path, receiver: Receiver
) -> None:
    # A ministry watched through the API, then (its API locked, say) through the pages a
    # browser renders: the same statements, keyed the same way, and no alert for the switch.
    discover = 'discover = true\ndiscover_schedule = ["10m"]'
    with ReplicaSite() as site:
        config = write_config(tmp_path, site, receiver, ("ru",), watch_extra=discover)
        api = monitor_cli(config, "check", "--once")
        assert api.returncode == 0, api.stdout + api.stderr
        browser = write_config(
            tmp_path, site, receiver, ("ru",), watch_extra=discover + '\nfetcher = "browser"'
        )
        site.clear_requests()
        rendered = monitor_cli(browser, "check", "--once")
        assert rendered.returncode == 0, rendered.stdout + rendered.stderr
        # Pages only: the app's own script asked the API, monitor did not.
        asked = [path for method, path in site.requests if method == "GET"]
        assert any("/press/news/details/" in path for path in asked)
        assert receiver.posts == []
        db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
        kinds = dict(db.execute("SELECT kind, COUNT(*) FROM version GROUP BY kind").fetchall())
        assert kinds.get("baseline") == len(STATEMENTS)
        assert "published" not in kinds and "removed" not in kinds
        exported = monitor_cli(browser, "export", "--format", "jsonl")
        versions = [json.loads(line) for line in exported.stdout.splitlines()][:-1]  # no heads
        by_key: dict[str, list[dict[str, object]]] = {}
        for version in versions:
            by_key.setdefault(version["key"], []).append(version["statement"])
        assert len(by_key) == len(STATEMENTS)
        for statements in by_key.values():
            first, last = statements[0], statements[-1]
            assert (last["title"], last["paragraphs"]) == (first["title"], first["paragraphs"])
