"""The pages the UI keeps between requests (the front page, /watches, /watches/all, the
API's list of every watch) are exact: a version or a check committed by another process
shows on the very next request, on a real SQLite file and on the PostgreSQL the tests
start. They are kept by the archive's data mark (`store.overview.data_mark`), which these
tests check as well."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from monitor.config import parse_config
from monitor.extract import Statement
from monitor.store import CheckRecord, NewVersion, Store
from tests.postgres import Backend
from tests.webui import serving

WATCHES = ("w0", "w1", "w2")
STATEMENT = "/watch/w0/statement?key=en%2F1"


class Client(Protocol):
    def get(self, path: str) -> httpx.Response: ...


class InProcess:
    """GET requests to an application in this process, each on an event loop of its own."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def get(self, path: str) -> httpx.Response:
        async def get() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url="http://127.0.0.1"
            ) as client:
                answer = await client.get(path)
                await answer.aread()
                return answer

        return asyncio.run(get())


def config_text(backend: Backend) -> str:
    store = f'path = "{backend.path}"\n' + (f'url = "{backend.url}"\n' if backend.url else "")
    return f"[store]\n{store}[server]\npublic = true\n" + "".join(
        f'[[watch]]\nid = "{w}"\nurl = "https://gov.example/{w}"\nprofile = "generic"\n'
        for w in WATCHES
    )


def version(title: str, kind: str, n: int) -> NewVersion:
    text = Statement("en/1", "https://gov.example/w0/s", title, (f"Paragraph {n}.",))
    return NewVersion("en/1", "https://gov.example/w0/s", title, None, "en", kind, text.to_json())


def edit(store: Store, at: str, title: str, kind: str = "edited", n: int = 1) -> None:
    state = replace(store.state("w0"), last_check_at=at, last_change_at=at)
    store.commit_check(
        CheckRecord("w0", at, 5, "changed", 200), state, versions=[version(title, kind, n)]
    )


def fail(store: Store, watch_id: str, at: str) -> None:
    state = replace(store.state(watch_id), last_check_at=at, failing_since=at)
    store.commit_check(CheckRecord(watch_id, at, 5, "problem", 503), state)


def unchanged(store: Store, watch_id: str, at: str) -> None:
    state = replace(store.state(watch_id), last_check_at=at)
    store.commit_check(CheckRecord(watch_id, at, 5, "unchanged", 200), state)


@pytest.fixture
def archive(backend: Backend, tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    with backend.store() as store:
        store.sync_watches([(w, f"https://gov.example/{w}", "generic") for w in WATCHES])
        edit(store, "2026-11-01T10:00:00.000Z", "Water aid", "baseline", 0)
        config = tmp_path / "monitor.toml"
        config.write_text(config_text(backend), encoding="utf-8")
        yield store, config


def watch_list(client: Client) -> dict[str, dict[str, object]]:
    answer = client.get("/api/v1/watches")
    assert answer.status_code == 200, answer.text
    return {entry["id"]: entry for entry in json.loads(answer.content)["watches"]}


def versions(client: Client) -> list[int]:
    """The numbers of the versions the API lists of w0's statement."""
    answer = client.get("/api/v1/watches/w0/versions?key=en%2F1")
    assert answer.status_code == 200, answer.text
    return [entry["seq"] for entry in answer.json()["versions"]]


def table_status(client: Client, watch_id: str) -> str:
    """The status word of a watch in the table of every watch."""
    html = client.get("/watches/all").text
    row = html[html.index(f'href="/watch/{watch_id}"') :]
    return row[: row.index("</tr>")]


def see_every_write(client: Client, writer: Store) -> None:
    """Each page asked twice (the second from what was kept), then after each write once:
    it shows the write."""
    for _ in range(2):
        assert "Water aid" in client.get("/watches").text
        assert "No changes match." in client.get("/").text  # a baseline is no change
        assert watch_list(client)["w1"]["status"] == "not checked yet"
        assert "not checked yet" in table_status(client, "w1")
        assert versions(client) == [1]
        assert "0 results" in client.get("/search?q=revised").text
        assert "<title>Water aid — monitor" in client.get(STATEMENT).text
        assert client.get("/api/v1/changes").json()["changes"] == []

    edit(writer, "2026-11-02T10:00:00.000Z", "Water aid, revised")
    assert "Water aid, revised" in client.get("/watches").text
    assert "Water aid, revised" in client.get("/").text
    assert versions(client) == [1, 2]
    page = client.get(STATEMENT).text
    assert "<title>Water aid, revised — monitor" in page
    assert "/watch/w0/versions/2?" in page  # its timeline
    for _ in range(2):  # the first catches the index up
        assert "1 results" in client.get("/search?q=revised").text
    assert [c["title"] for c in client.get("/api/v1/changes").json()["changes"]] == [
        "Water aid, revised"
    ]
    statements = client.get("/api/v1/watches/w0/statements").json()["statements"]
    assert statements[0]["versions"] == 2
    assert watch_list(client)["w0"]["last_change_at"] == "2026-11-02T10:00:00.000Z"

    fail(writer, "w1", "2026-11-02T11:00:00.000Z")
    assert watch_list(client)["w1"]["failing_since"] == "2026-11-02T11:00:00.000Z"
    assert "failing" in table_status(client, "w1")
    assert "failing" in client.get("/watches").text  # the listing's health, as it is now

    unchanged(writer, "w2", "2026-11-02T12:00:00.000Z")
    assert watch_list(client)["w2"]["last_check_at"] == "2026-11-02T12:00:00.000Z"
    assert "2026-11-02 12:00" in table_status(client, "w2")

    edit(writer, "2026-11-02T13:00:00.000Z", "Water aid, withdrawn", "removed", 2)
    assert "Water aid, withdrawn" in client.get("/watches").text
    assert "Water aid, withdrawn" in client.get("/").text


@pytest.mark.process
def test_monitor_serve_shows_what_another_process_wrote_on_the_next_request(
    archive: tuple[Store, Path],
) -> None:
    """`monitor serve` reads; the test's own store (another process's connection, as a
    daemon's) writes."""
    store, config = archive
    with serving(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        see_every_write(client, store)


def test_pages_show_what_their_own_connection_wrote(archive: tuple[Store, Path]) -> None:
    """The UI on the very store that writes (one connection: SQLite's data_version does not
    move for its own commits, its count of changes does)."""
    from monitor.web import create_app

    store, config = archive
    settings = parse_config(config.read_text(encoding="utf-8"), config)
    app = create_app(lambda: {"ok": True}, store, settings)
    see_every_write(InProcess(app), store)


def test_the_data_mark_moves_with_every_commit_and_only_then(backend: Backend) -> None:
    with backend.store() as reader, backend.store() as writer:
        writer.sync_watches([("w0", "https://gov.example/w0", "generic")])
        first = reader.overview.data_mark()
        assert reader.overview.data_mark() == first
        reader.overview.statements()  # reads change nothing
        assert reader.overview.data_mark() == first
        unchanged(writer, "w0", "2026-11-02T12:00:00.000Z")  # another connection's
        second = reader.overview.data_mark()
        assert second != first
        reader.sync_watches([("w1", "https://gov.example/w1", "generic")])  # its own
        assert reader.overview.data_mark() != second
