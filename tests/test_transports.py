"""The fetch seam: `Fetcher(config, transport=...)`, the in-process test transport, and
the extras (aiohttp, psycopg) a configuration may need, named when they are missing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from monitor.check import Checker
from monitor.config import ConfigError, parse_config
from monitor.fetch import Fetcher, FetchRequest
from monitor.store import Store
from monitor.transports import TRANSPORTS, open_transport
from monitor.transports.memory import Answer, MemoryTransport

URL = "https://ministry.example/press/statement-1"


def page(paragraph: str) -> str:
    return (
        "<html><head><title>Statement</title></head><body><main>"
        f"<h1>On the talks in Astana</h1><p>{paragraph}</p></main></body></html>"
    )


def test_an_edit_is_found_and_alerted_over_the_in_process_transport(
    tmp_path: Path, memory_site: MemoryTransport
) -> None:
    """The whole check — fetch, extract, compare, archive, alert — with no server and no
    socket: `.example` names resolve nowhere, so a DNS lookup or a connection would fail."""
    config = parse_config(
        f'[store]\npath = "{tmp_path}/archive"\n[alerts]\nconfirm_delay = "0s"\n'
        "[fetch]\nper_host_delay = 0\n"
        f'[[watch]]\nid = "talks"\nurl = "{URL}"\n'
    )
    memory_site.site[URL] = page("The ministry welcomes the agreement reached today.")

    async def run() -> list[object]:
        with Store(config.store.path) as store:
            async with Fetcher(config.fetch, transport=memory_site) as fetcher:
                checker = Checker(config, store, fetcher)
                first = await checker.check(config.watch[0])
                again = await checker.check(config.watch[0])
                memory_site.site[URL] = page("The ministry regrets the agreement reached today.")
                edited = await checker.check(config.watch[0])
                return [first.outcome, again.outcome, (edited.outcome, edited.alerts)]

    assert asyncio.run(run()) == ["changed", "unchanged", ("changed", 1)]
    sent = memory_site.requests
    assert [request.url for request in sent] == [
        "https://ministry.example/robots.txt",
        URL,
        URL,
        URL,
    ]
    # The second look replays the page's ETag and gets a 304.
    assert sent[2].headers.get("If-None-Match")


def test_the_fetcher_follows_redirects_and_retries_over_the_in_process_transport() -> None:
    answers = iter([Answer(503, [("Retry-After", "0.01")]), Answer(200, body=b"here")])

    def site(request: object) -> Answer:
        url = getattr(request, "url", "")
        if url.endswith("/robots.txt"):
            return Answer(404)
        if url.endswith("/old"):
            return Answer(301, [("Location", "/new")])
        return next(answers)

    transport = MemoryTransport(site)
    config = parse_config("[fetch]\nper_host_delay = 0\n").fetch

    async def run() -> tuple[int | None, bytes, list[tuple[int, str]]]:
        async with Fetcher(config, transport=transport) as fetcher:
            result = await fetcher.fetch(FetchRequest("https://ministry.example/old"))
        return result.status, result.body, result.redirects

    assert asyncio.run(run()) == (200, b"here", [(301, "https://ministry.example/new")])
    assert [r.url.rsplit("/", 1)[1] for r in transport.requests] == [
        "robots.txt",
        "old",
        "new",
        "old",  # a retry starts over from the URL asked for
        "new",
    ]


def test_every_configurable_transport_is_registered() -> None:
    from typing import get_args

    from monitor.config import FetchConfig

    assert set(get_args(FetchConfig.model_fields["transport"].annotation)) == set(TRANSPORTS)


@pytest.mark.parametrize(
    ("toml", "module", "line", "field", "extra"),
    [
        ('[fetch]\ntransport = "aiohttp"\n', "aiohttp", 2, "fetch.transport", "aiohttp"),
        ('[store]\nurl = "postgresql://db/monitor"\n', "psycopg", 2, "store.url", "postgres"),
    ],
)
def test_a_setting_whose_extra_is_not_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, toml: str, module: str, line: int, field: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ConfigError) as caught:
        parse_config(toml, "monitor.toml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("monitor.toml", line, field)
    assert f"pip install 'monitor[{extra}]'" in error.message


def test_opening_a_transport_whose_extra_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "yarl", None)
    with pytest.raises(RuntimeError, match=r"pip install 'monitor\[aiohttp\]'"):
        open_transport("aiohttp", parse_config("").fetch)
