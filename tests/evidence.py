"""Test bed for the evidence tests (WACZ and replay, trusted timestamps, Memento): a small
site of statement pages on 127.0.0.1 whose text the test edits, and an archive that the
real `monitor check` fills from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import monitor_cli, serve_pages

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


def site_config(directory: Path, site: PageSite, names: tuple[str, ...], extra: str = "") -> Path:
    """A config watching the site's statements with the generic profile; `extra` goes into
    [archive] (the section is written only when given)."""
    text = f"""
[store]
path = "{directory / "store"}"

[fetch]
allow_private = true
per_host_delay = "0s"
retries = 0
timeout = "10s"
full_fetch_every = 1

[alerts]
confirm_delay = "0s"

[channels.console]
type = "log"
"""
    if extra:
        text += f"\n[archive]\n{extra}\n"
    for name in names:
        text += f"""
[[watch]]
id = "statement-{name}"
url = "{site.page_url(name)}"
profile = "generic"
language = "en"
robots = false
channels = ["console"]
"""
    path = directory / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


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
    for text in (FIRST, SECOND, THIRD):
        site.set("1", text)
        check_once(config)
        time.sleep(gap)
    return config
