"""A newsroom's own tool, start to end, against the real `monitor serve` (the replica in
three languages, its newest statement edited in Russian only): an operator makes it a token
with `monitor token add`; it lists the changes, fetches the diff of the Russian edit, and
adds a watch of its own, which the UI then shows."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import monitor_cli
from tests.test_translations import NEWEST, RU_NEW, RU_OLD, Served, served  # noqa: F401
from tests.webui import login


@pytest.mark.process
def test_token_then_changes_then_a_diff_then_a_watch(served: Served) -> None:  # noqa: F811
    made = monitor_cli(served.config, "token", "add", "newsroom-bot", "--role", "editor")
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()  # shown once, on its own line
    assert token and token not in monitor_cli(served.config, "token", "list").stdout
    api = httpx.Client(
        base_url=served.url + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    # The changes feed, filtered to Russian edits: the one edit, with where to read it.
    feed = api.get("/changes", params={"kind": "edited", "language": "ru"})
    assert feed.status_code == 200, feed.text
    [edit] = feed.json()["changes"]
    assert edit["key"] == f"ru/{NEWEST['id']}" and edit["seq"] == 2
    assert edit["listing"] == "mfa-ru" and edit["links"]["diff"].startswith("/watch/mfa-ru/")
    # Nothing in English or Kazakh was edited.
    for language in ("en", "kk"):
        others = api.get("/changes", params={"kind": "edited", "language": language}).json()
        assert others["changes"] == []

    # The diff of that edit, as data.
    diff = api.get(
        f"/watches/{edit['watch_id']}/diff", params={"key": edit["key"], "to": edit["seq"]}
    )
    assert diff.status_code == 200, diff.text
    [change] = [c for c in diff.json()["changes"] if c["field"] == "body"]
    assert RU_OLD in change["before"] and RU_NEW in change["after"]

    # A watch of its own: stored like the UI's, listed, shown in the UI.
    added = api.post(
        "/watches", json={"url": "https://www.gov.kz/memleket/entities/mti?lang=ru", "name": "MTI"}
    )
    assert added.status_code == 201, added.text
    watch_id = added.json()["id"]
    assert api.get(f"/watches/{watch_id}").json()["url"].endswith("/entities/mti?lang=ru")
    page = login(served.url, "vi").get(f"/watch/{watch_id}")
    assert page.status_code == 200 and "MTI" in page.text
    # The token's use is on record (never the token itself).
    listed = monitor_cli(served.config, "token", "list").stdout
    assert "newsroom-bot\teditor" in listed and token not in listed
    # And a viewer's token may read but not add.
    viewer = monitor_cli(served.config, "token", "add", "reader", "--role", "viewer")
    read_only = httpx.Client(
        base_url=served.url + "/api/v1",
        headers={"Authorization": f"Bearer {viewer.stdout.splitlines()[1].strip()}"},
    )
    assert read_only.get("/changes").status_code == 200
    assert read_only.post("/watches", json={"url": "https://x.example/"}).status_code == 403
