"""Start-up of `monitor check` and `monitor run`: the cyclic garbage collector is held off
while the commands import their modules and read their configuration (none of it is
garbage), and is back, with all that left to it no more (frozen), before any check runs;
and what a `check` never imports: prometheus_client (see metrics.py), and, when every page
is unchanged, SQLAlchemy, on a SQLite archive that exists (see store/database.py)."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, generic_watch, local_config, monitor_cli, serve_pages

_PAGE = b"<html><body><h1>Statement</h1><p>The Ministry notes that it agrees.</p></body></html>"

# `python -m monitor …` as a user starts it, with a look at the collector at the first check
# (the transport's first request) and at the end.
_PROBE = """
import atexit, gc, runpy, sys

import monitor.fetch as fetch

seen = []
original = fetch.Fetcher.fetch

async def fetch_and_look(self, *args, **kwargs):
    seen.append((gc.isenabled(), gc.get_freeze_count() > 0))
    return await original(self, *args, **kwargs)

fetch.Fetcher.fetch = fetch_and_look
atexit.register(
    lambda: print(
        "at the checks", sorted(set(seen)), "at the end", gc.isenabled(),
        "metrics made:", "prometheus_client" in sys.modules,
        "sqlalchemy:", "sqlalchemy" in sys.modules,
    )
)
sys.argv = ["monitor", *sys.argv[1:]]
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def site() -> Iterator[str]:
    yield from serve_pages(lambda path: _PAGE)


@pytest.mark.process
def test_check_runs_with_the_collector_on_and_the_start_up_frozen(
    tmp_path: Path, site: str
) -> None:
    config = local_config(
        tmp_path, generic_watch("a", f"{site}/a") + generic_watch("b", f"{site}/b")
    )
    for outcome in ("changed", "unchanged"):
        run = subprocess.run(
            [sys.executable, "-c", _PROBE, "--config", str(config), "check", "--once"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        lines = run.stdout.splitlines()
        assert sorted(line.split(":")[1].split()[0] for line in lines[:-1]) == [outcome] * 2
        # Metrics are made when asked for (metrics.py), which a `check` never does: it
        # exports nothing, and counts its checks and changes in plain tallies. SQLAlchemy
        # is imported to create the archive and to write versions, never to check an
        # archive that exists and find every page unchanged (its statements run on the
        # driver).
        made = outcome == "changed"
        assert lines[-1] == (
            f"at the checks [(True, True)] at the end True metrics made: False sqlalchemy: {made}"
        )


def test_the_collector_is_on_after_a_command_in_process(tmp_path: Path, site: str) -> None:
    """`main` run in a process that goes on (the tests, an embedding): a check, and a
    command refused before or while its configuration is read, leave the collector on."""
    assert gc.isenabled()
    config = local_config(tmp_path, generic_watch("a", f"{site}/a"))
    assert monitor_cli(config, "check", "--once").returncode == 0
    assert gc.isenabled()
    broken = tmp_path / "broken.toml"
    broken.write_text("[[watch]]\nid = 'x'\n", encoding="utf-8")
    assert monitor_cli(broken, "check", "--once").returncode == 2
    assert gc.isenabled()
    assert monitor_cli(tmp_path / "absent.toml", "run", "--no-web").returncode == 2
    assert gc.isenabled()
