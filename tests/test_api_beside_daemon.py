"""`monitor serve` beside a real daemon (`monitor run`) checking pages served on 127.0.0.1
every second, on one SQLite archive: whatever state of a watch the archive holds, the
next request to /api/v1/watches (which reads only the states checked since its last
answer) shows that state or a newer one. Pages fail (503), recover and change meanwhile."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.store import Store
from monitor.store.overview import HEALTH_COLUMNS
from tests.conftest import (
    QuietHandler,
    generic_watch,
    local_config,
    quiet_monitor,
    serve_on_loopback,
    wait_for,
)
from tests.webui import serving

PAGES = tuple(f"p{n}" for n in range(6))


class Site:
    """Pages whose answers the test sets: a status and a paragraph each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages = {name: (200, 0) for name in PAGES}

    def set(self, name: str, status: int, edit: int) -> None:
        with self.lock:
            self.pages[name] = (status, edit)

    def serve(self) -> Iterator[str]:
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with site.lock:
                    status, edit = site.pages.get(self.path.strip("/"), (404, 0))
                body = (
                    f"<html><head><title>{self.path}</title></head><body><main><h1>"
                    f"Statement {self.path}</h1><p>The ministry said, in its edit {edit}, "
                    "that the talks on water would go on next week.</p></main></body></html>"
                ).encode()
                self.send(status, body, "text/html; charset=utf-8")

        yield from serve_on_loopback(Handler)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    made = Site()
    served = made.serve()
    url = next(served)
    yield made, url
    next(served, None)


def health_of(entries: list[dict[str, object]]) -> dict[str, tuple[object, ...]]:
    return {str(e["id"]): tuple(e[c] for c in HEALTH_COLUMNS) for e in entries}


@pytest.mark.process
def test_the_api_never_shows_a_state_older_than_the_archive_held(
    site: tuple[Site, str], tmp_path: Path
) -> None:
    pages, url = site
    watches = "".join(generic_watch(n, f"{url}/{n}", 'interval = "1s"') for n in PAGES)
    config = local_config(tmp_path, watches, sections="[server]\npublic = true\n")
    daemon = quiet_monitor(config, "run", "--no-web")
    try:
        with (
            Store(tmp_path / "store") as archive,
            serving(config) as served,
            httpx.Client(base_url=served, timeout=30) as client,
        ):

            def checked_all() -> bool:
                health = archive.watch_health()
                return all(health.get(n, (None,))[0] for n in PAGES)

            assert wait_for(checked_all, 60), "the daemon never checked every page"
            compared = failing_seen = 0
            for step in range(40):
                name = PAGES[step % len(PAGES)]
                pages.set(name, 503 if step % 3 == 0 else 200, step)
                before = archive.watch_health()  # what the archive holds now
                answer = client.get("/api/v1/watches")
                assert answer.status_code == 200, answer.text
                shown = health_of(json.loads(answer.content)["watches"])
                for watch_id in PAGES:
                    held, seen = before[watch_id], shown[watch_id]
                    # The same state, or one a check committed after `before` was read.
                    assert seen == held or str(seen[0]) > str(held[0]), (step, watch_id)
                    compared += 1
                failing_seen += sum(1 for state in shown.values() if state[1])
                wait_for(lambda held=before: archive.watch_health() != held, 5)  # type: ignore[misc]
            assert compared == 40 * len(PAGES)
            assert failing_seen, "no page was ever shown failing: the test tested little"
    finally:
        daemon.terminate()
        daemon.wait(30)
