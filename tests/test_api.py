"""The JSON API (/api/v1) on a real archive (tests/webui.py) served by `monitor serve` on a
real port: a newsroom tool's story, tokens and roles, and a contract test of every
endpoint against the OpenAPI document by schemathesis, a third-party contract tester."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.conftest import monitor_cli
from tests.webui import (
    NEWEST_KEY,
    SENTENCE_NEW,
    SENTENCE_OLD,
    Archive,
    archive_fixture,  # noqa: F401 (the fixture `archive`)
    serving,
)

DATA = Path(__file__).parent / "data" / "watchlists"


@dataclass
class Api:
    url: str
    config: Path
    tokens: dict[str, str]

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=30,
        )


def _token(config: Path, name: str, role: str) -> str:
    result = monitor_cli(config, "token", "add", name, "--role", role)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[1].strip()


@pytest.fixture(scope="module")
def api(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`monitor serve` on a copy of the shared archive (these tests add watches and notes)."""
    tmp = tmp_path_factory.mktemp("api")
    shutil.copytree(archive.store, tmp / "store")
    config = tmp / "monitor.toml"
    config.write_text(archive.config.read_text().replace(str(archive.store), str(tmp / "store")))
    tokens = {role: _token(config, f"{role}-bot", role) for role in ("viewer", "editor")}
    with serving(config) as url:
        yield Api(url, config, tokens)


def test_a_newsroom_tool_lists_changes_reads_a_diff_and_adds_a_watch(api: Api) -> None:
    with api.client("editor") as client:
        page = client.get("/changes", params={"kind": "edited", "language": "en"}).json()
        [edit] = [c for c in page["changes"] if c["key"] == NEWEST_KEY and c["seq"] == 2]
        assert edit["kind"] == "edited" and edit["listing"] == "mfa-en"
        assert "diff" in edit["links"] and "archived" in edit["links"]

        diff = client.get(
            f"/watches/{edit['watch_id']}/diff", params={"key": NEWEST_KEY, "to": edit["seq"]}
        ).json()
        [change] = [c for c in diff["changes"] if c["field"] == "body"]
        assert SENTENCE_OLD in change["before"] and SENTENCE_NEW in change["after"]

        text = client.get(
            f"/watches/{edit['watch_id']}/versions/{edit['seq']}/text", params={"key": NEWEST_KEY}
        )
        assert SENTENCE_NEW in text.text and text.headers["cache-control"] == "no-store"

        added = client.post(
            "/watches", json={"url": "https://mfa.example.org/statements", "name": "Other MFA"}
        )
        assert added.status_code == 201, added.text
        watch_id = added.json()["id"]
        assert added.json()["source"] == "ui"
        listed = {w["id"]: w for w in client.get("/watches").json()["watches"]}
        assert listed[watch_id]["url"] == "https://mfa.example.org/statements"
        assert (
            client.post("/watches", json={"id": watch_id, "url": "https://x.example/"}).status_code
            == 409
        )
        assert client.delete(f"/watches/{watch_id}").status_code == 204
        assert client.get(f"/watches/{watch_id}").status_code == 404
        assert client.delete("/watches/mfa-en").status_code == 409  # the file's stays


def test_the_watch_list_pages_in_file_order_when_asked(api: Api) -> None:
    with api.client("viewer") as client:
        everything = client.get("/watches").json()
        assert "next" not in everything  # without `limit`: every watch, as before
        ids = [w["id"] for w in everything["watches"]]
        assert len(ids) >= 2
        paged, after = [], None
        while True:
            params: dict[str, str | int] = {"limit": 1, **({"after": after} if after else {})}
            page = client.get("/watches", params=params).json()
            assert len(page["watches"]) == 1
            paged += [w["id"] for w in page["watches"]]
            after = page["next"]
            if after is None:
                break
        assert paged == ids
        missing = client.get("/watches", params={"after": "no-such-watch"})
        assert missing.status_code == 404 and "no-such-watch" in missing.json()["error"]
        assert client.get("/watches", params={"limit": 0}).status_code == 422


def test_the_watch_list_shows_each_state_as_it_is_now(api: Api) -> None:
    """Entries are kept between requests, but a check written since (here by another
    process, as a daemon beside `monitor serve` writes them) shows at once."""
    from dataclasses import replace

    from monitor.store import CheckRecord, Store

    with api.client("viewer") as client:
        before = {w["id"]: w for w in client.get("/watches").json()["watches"]}
        watch_id = next(i for i, w in before.items() if w["status"] != "failing")
        with Store(api.config.parent / "store") as store:
            at = "2026-12-01T10:00:00.000Z"
            state = replace(
                store.state(watch_id), last_check_at=at, failing_since=at, failure_reason="HTTP 503"
            )
            store.commit_check(CheckRecord(watch_id, at, 5, "problem", 503), state)
        after = {w["id"]: w for w in client.get("/watches").json()["watches"]}
        assert after[watch_id]["status"] == "failing"
        assert after[watch_id]["failing_since"] == at
        assert after[watch_id]["failure_reason"] == "HTTP 503"
        assert {i: w for i, w in after.items() if i != watch_id} == {
            i: w for i, w in before.items() if i != watch_id
        }


def test_removed_statements_point_at_the_archived_copy_and_pages_are_stable(api: Api) -> None:
    with api.client("viewer") as client:
        everything = client.get("/changes", params={"limit": 200}).json()
        assert everything["next"] is None
        removed = [c for c in everything["changes"] if c["kind"] == "removed"]
        assert removed
        for change in removed:  # the live page is gone: the link is our last copy of it
            assert change["links"]["archived"].startswith(f"/watch/{change['watch_id']}/versions/")
        seen, cursor = [], None
        while True:
            page = client.get(
                "/changes", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
            )
            seen += [(c["source"], c["id"]) for c in page.json()["changes"]]
            cursor = page.json()["next"]
            if cursor is None:
                break
        assert seen == [(c["source"], c["id"]) for c in everything["changes"]]
        assert client.get("/changes", params={"kind": "bogus"}).status_code == 422
        # An id past 64 bits is below the largest id there can be (it was a 500, found by
        # schemathesis: SQLite's driver cannot bind it).
        huge = client.get("/changes", params={"cursor": "2999-01-01T00:00:00Z~watch~" + "9" * 22})
        assert huge.status_code == 200 and huge.json()["changes"]


def test_tokens_roles_and_annotations(api: Api) -> None:
    anonymous = httpx.get(api.url + "/api/v1/watches")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["www-authenticate"]
    wrong = httpx.get(api.url + "/api/v1/watches", headers={"Authorization": "Bearer mon_nope"})
    assert wrong.status_code == 401
    with api.client("viewer") as viewer:
        assert viewer.get("/watches").status_code == 200
        assert viewer.post("/watches", json={"url": "https://x.example/"}).status_code == 403
        note = viewer.post(
            "/annotations",
            json={
                "watch": "mfa-en",
                "key": NEWEST_KEY,
                "seq": 2,
                "verdict": "significant",
                "note": "API",
            },
        )
        assert note.status_code == 201, note.text
        assert note.json()["username"] == "token:viewer-bot" and note.json()["seq"] == 2
        notes = viewer.get("/annotations", params={"watch": "mfa-en", "key": NEWEST_KEY}).json()
        assert notes["annotations"][0]["note"] == "API"
        hits = viewer.get("/search", params={"q": "formal OR nonexistentword"}).json()["hits"]
        assert any(h["key"] == NEWEST_KEY for h in hits)
    listed = monitor_cli(api.config, "token", "list")
    assert "viewer-bot\tviewer\tin force" in listed.stdout
    assert api.tokens["viewer"] not in listed.stdout  # never shown again
    assert monitor_cli(api.config, "token", "revoke", "viewer-bot").returncode == 0
    with api.client("viewer") as viewer:
        assert viewer.get("/watches").status_code == 401  # at once, in the serving process
    api.tokens["viewer"] = _token(api.config, "viewer-bot-2", "viewer")


def test_a_flood_is_answered_429(api: Api, tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text(api.config.read_text().replace("[server]\n", "[server]\napi_rate = 30\n"))
    token = _token(config, "flood-bot", "viewer")
    with serving(config) as url, httpx.Client(base_url=url + "/api/v1") as client:
        codes = [
            client.get("/alerts", headers={"Authorization": f"Bearer {token}"}).status_code
            for _ in range(40)
        ]
        assert codes[:30] == [200] * 30 and codes[-1] == 429
        late = client.get("/alerts", headers={"Authorization": f"Bearer {token}"})
        assert late.status_code == 429 and int(late.headers["retry-after"]) >= 1
        # Another token has a budget of its own.
        other = _token(config, "other-bot", "viewer")
        assert (
            client.get("/alerts", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        )


def test_watch_lists_come_in_and_go_out_without_touching_the_toml(api: Api, tmp_path: Path) -> None:
    before = api.config.read_bytes()
    dry = monitor_cli(api.config, "watches", "import", str(DATA / "urlwatch-urls.yaml.example"))
    assert dry.returncode == 0, dry.stderr
    assert "urlwatch: 8 to add, 3 skipped" in dry.stdout
    assert "profile generic" in dry.stdout and "--apply" in dry.stdout
    with api.client("viewer") as client:
        before_ids = {w["id"] for w in client.get("/watches").json()["watches"]}
    applied = monitor_cli(
        api.config, "watches", "import", str(DATA / "urlwatch-urls.yaml.example"), "--apply"
    )
    assert applied.returncode == 0, applied.stderr
    again = monitor_cli(api.config, "watches", "import", str(DATA / "urlwatch-urls.yaml.example"))
    assert "0 to add" in again.stdout and "already watched as" in again.stdout
    out = tmp_path / "watches.opml"
    exported = monitor_cli(api.config, "watches", "export", "--format", "opml", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "http://www.dubclub-vienna.com/" in out.read_text() and "mfa-en" in out.read_text()
    assert api.config.read_bytes() == before
    # A `serve` elsewhere takes the store's watches into its snapshot within seconds.
    deadline = time.monotonic() + 30
    with api.client("viewer") as client:
        while True:
            after_ids = {w["id"] for w in client.get("/watches").json()["watches"]}
            if len(after_ids - before_ids) >= 8 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert len(after_ids - before_ids) == 8


@pytest.fixture(scope="module")
def api_schema(api: Api) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(api.url + "/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# The same examples on every run of one document, so a CI verdict is reproducible; set
# MONITOR_EXPLORE=1 to draw new ones (how the 64-bit cursor bug was found).
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not os.environ.get("MONITOR_EXPLORE"),
)
def test_every_endpoint_keeps_to_its_openapi_document(case: schemathesis.Case, api: Api) -> None:
    # What the document cannot say (an ignore rule that does not compile, an address that
    # may not be fetched, a verdict-less empty note) is refused with 422 and its reason, so
    # a schema-valid body may be refused there; every other check applies to every call.
    writes = case.method in ("POST", "PUT")
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api.tokens['editor']}"},
        excluded_checks=[positive_data_acceptance] if writes else [],
    )


def test_serving_processes_share_the_rate_limit_and_see_a_save_at_once(
    api: Api, tmp_path: Path
) -> None:
    """`monitor serve --workers 3`: each request on a connection of its own (the kernel
    hands them to the three processes in turn), yet one budget per token, and a watch saved
    through one process is known to the others at once."""
    config = tmp_path / "monitor.toml"
    config.write_text(api.config.read_text().replace("[server]\n", "[server]\napi_rate = 6\n"))
    viewer, editor = _token(config, "shared-bot", "viewer"), _token(config, "edit-bot", "editor")
    readers = [_token(config, f"read-bot-{n}", "viewer") for n in range(3)]
    with serving(config, "serve", "--workers", "3") as url:
        port = int(url.rsplit(":", 1)[1])

        def get(path: str, token: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.get(url + "/api/v1" + path, headers=headers, timeout=30)

        started = time.monotonic()
        codes = [get("/alerts", viewer).status_code for _ in range(15)]
        # A budget per process would have let 18 through; the one budget lets 6, and one
        # more for each 10 s the requests took (6 a minute).
        refilled = (time.monotonic() - started) / 10
        assert codes[:6] == [200] * 6 and set(codes) <= {200, 429}
        assert codes.count(200) <= 6 + refilled + 1
        added = httpx.post(
            url + "/api/v1/watches",
            json={"url": "https://mfa.example.org/statements", "name": "Other MFA"},
            headers={"Authorization": f"Bearer {editor}"},
            timeout=30,
        )
        assert added.status_code == 201, added.text
        watch_id = added.json()["id"]
        # Nine looks, three per reader (each token has 6 requests a minute here).
        seen = {get(f"/watches/{watch_id}", reader).status_code for reader in readers * 3}
        assert seen == {200}
    with socket.socket() as probe:  # every serving process ended with the command
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
