"""Test bed for the evidence tests (WACZ and replay, trusted timestamps, Memento): a small
site of statement pages on 127.0.0.1 whose text the test edits, and an archive that the
real `monitor check` fills from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from monitor.extract import Statement
from monitor.store import CheckRecord, NewVersion, ResponseRecord, Store
from tests.conftest import CONSOLE, generic_watch, local_config, monitor_cli, serve_pages

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><nav><a href="/">Ministry</a></nav>
<main><article><h1>{title}</h1><p class="date">25 November 2026</p>
<p>{text}</p>
<p>The Ministry will keep the public informed of further developments in this matter.</p>
</article></main></body></html>
"""

FIRST = "Kazakhstan stands ready to provide further assistance to the people of Tajikistan."
SECOND = "Kazakhstan will consider further assistance upon a formal request from Tajikistan."
THIRD = "Kazakhstan has delivered a second consignment of aid to the people of Tajikistan."


@dataclass
class PageSite:
    """Statement pages at /statement/N, each served with its current text."""

    url: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page_url(self, name: str) -> str:
        return f"{self.url}/statement/{name}"

    def set(self, name: str, text: str) -> None:
        with self.lock:
            self.texts[name] = text

    def body(self, path: str) -> bytes | None:
        with self.lock:
            text = self.texts.get(path.rsplit("/", 1)[-1])
        if text is None or not path.startswith("/statement/"):
            return None
        title = "Statement on humanitarian aid to Tajikistan"
        return PAGE.format(title=title, text=text).encode()


def page_site() -> Iterator[PageSite]:
    state = PageSite()
    for base in serve_pages(state.body):
        state.url = base
        yield state


def site_config(
    directory: Path,
    site: PageSite,
    names: tuple[str, ...],
    extra: str = "",
    *,
    channels: str = "",
    watch_channels: str = '["console"]',
    watch_extra: str = "",
) -> Path:
    """A config watching the site's statements with the generic profile; `extra` goes into
    [archive] (the section is written only when given), `channels` after the console
    channel, `watch_extra` into each [[watch]]."""
    watch_lines = f'language = "en"\nrobots = false\nchannels = {watch_channels}\n{watch_extra}'
    return local_config(
        directory,
        "".join(
            generic_watch(f"statement-{name}", site.page_url(name), watch_lines) for name in names
        ),
        fetch='timeout = "10s"\nfull_fetch_every = 1',
        sections=CONSOLE + channels + (f"\n[archive]\n{extra}\n" if extra else ""),
    )


def check_once(config: Path) -> str:
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def archive_three_versions(
    directory: Path, site: PageSite, extra: str = "", gap: float = 1.05
) -> Path:
    """One statement archived three times (baseline and two edits), at least `gap`
    seconds apart, so that each version has its own 14-digit capture time."""
    site.set("1", FIRST)
    config = site_config(directory, site, ("1",), extra)
    for number, text in enumerate((FIRST, SECOND, THIRD)):
        if number:
            time.sleep(gap)  # after the previous check ended (none after the last)
        site.set("1", text)
        check_once(config)
    return config


def archive_one_exchange(
    store: Store,
    *,
    request_headers: dict[str, str],
    headers: list[tuple[str, str]],
    redirects: list[tuple[int, str]] | None = None,
    body: bytes = b'{"items": []}',
    url: str = "https://gov.example/api",
    http_version: str = "HTTP/1.1",
) -> None:
    """Watch `w` with one GET of `url` and the statement read from it, as `monitor check`
    stores them: for tests of what exports make of the exchange's headers."""
    text = Statement("p", url, "t", ("Заявление.",)).to_json()
    store.sync_watch("w", url, "generic")
    store.commit_check(
        CheckRecord("w", "2026-11-25T10:00:00.000Z", 5, "changed", 200),
        store.state("w"),
        response=ResponseRecord(
            requested_at="2026-11-25T09:59:59.500Z",
            method="GET",
            url=url,
            final_url=url,
            status=200,
            http_version=http_version,
            request_headers=request_headers,
            request_body=None,
            headers=headers,
            redirects=redirects or [],
            body=body,
        ),
        versions=[NewVersion("p", url, "t", None, "ru", "baseline", text)],
    )
