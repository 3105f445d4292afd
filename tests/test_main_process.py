"""`python -m monitor` (monitor/__main__.py): it starts the page-reading workers' forkserver
before it imports the command line when the command will read pages at once (`run`, and
`check` on a new SQLite archive), and never for an unchanged `check` of an archive that
exists (its CPU would be more than the check's own): `workers_wanted_at_once`. And it ends
as Python's exit does, without the teardown of every module: `exit_now`."""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.__main__ import workers_wanted_at_once
from tests.conftest import REPO, generic_watch, local_config, serve_pages

_PAGE = (
    b"<html><body><article><h1>Statement</h1><p>The Ministry notes that it agrees with "
    b"the statement made on Monday, and that it will say more in due course.</p></article>"
    b"</body></html>"
)

# `python -m monitor …` as a user starts it, noting each start of the forkserver and whether
# the command line had been imported by then.
_PROBE = """
import atexit, runpy, sys

import multiprocessing.forkserver as forkserver

starts = []
original = forkserver.ensure_running

def noted():
    starts.append("monitor.cli" in sys.modules)
    original()

forkserver.ensure_running = noted
atexit.register(lambda: print("forkserver started, the command line imported:", starts[:1]))
sys.argv = ["monitor", *sys.argv[1:]]
if sys.argv[1] == "--script":  # as the `monitor` command runs (pyproject.toml)
    del sys.argv[1]
    from monitor.__main__ import run
    run()
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def site() -> Iterator[str]:
    yield from serve_pages(lambda path: _PAGE)


def _config(directory: Path, store: str) -> Path:
    path = directory / "monitor.toml"
    path.write_text(f"{store}\n[[watch]]\nid = 'a'\nurl = 'https://example.org/a'\n")
    return path


def test_run_and_a_check_of_a_new_archive_want_their_workers_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path, f'[store]\npath = "{tmp_path / "new"}"  # the archive')
    for argv in (
        ["--config", str(config), "check", "--once"],
        [f"--config={config}", "-v", "check", "a"],
        ["check", "--config", str(config), "--log-format", "json"],
        ["--config", str(config), "run", "--no-web", "--listen", "127.0.0.1:9"],
    ):
        assert workers_wanted_at_once(argv, {}), argv
    assert workers_wanted_at_once(["check"], {"MONITOR_CONFIG": str(config)})
    (tmp_path / "new").mkdir()  # made, empty: still a new archive
    assert workers_wanted_at_once(["--config", str(config), "check"], {})


def test_other_commands_and_archives_that_exist_do_not(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "index.sqlite").write_bytes(b"")
    config = _config(tmp_path, f"[store]\npath = '{archive}'")
    assert not workers_wanted_at_once(["--config", str(config), "check", "--once"], {})
    (tmp_path / "other").mkdir()
    new = _config(tmp_path / "other", f"[store]\npath = '{tmp_path / 'new'}'")
    for argv in (
        ["--config", str(new), "check", "--help"],
        ["--config", str(new), "history", "a"],
        ["--config", str(new), "serve"],
        ["--conf", str(new), "check"],  # an abbreviation argparse takes: in doubt, no
        ["--config", str(tmp_path / "absent.toml"), "check"],
    ):
        assert not workers_wanted_at_once(argv, {}), argv


def test_a_store_not_plainly_sqlite_in_a_new_directory_is_left_to_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the default "snapshots" would be
    check = ["--config", str(tmp_path / "monitor.toml"), "check"]
    _config(tmp_path, "[fetch]\ntimeout = '5s'")  # no [store]: ./snapshots, not there
    assert workers_wanted_at_once(check, {})
    for store in (
        "[store]\nurl = 'postgresql://monitor@db/monitor'",
        "store.path = 'elsewhere'",
        '[store]\npath = "a\\\\b"',  # a basic string's escapes: not read here
        "[store]\npath = 'one'\npath = 'two'",
        "[store.x]\ny = 1",
    ):
        _config(tmp_path, store)
        assert not workers_wanted_at_once(check, {}), store
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "index.sqlite").write_bytes(b"")
    _config(tmp_path, "[fetch]\ntimeout = '5s'")
    assert not workers_wanted_at_once(check, {})


@pytest.mark.process
def test_a_first_check_starts_its_workers_first_and_an_unchanged_one_none(
    tmp_path: Path, site: str
) -> None:
    config = local_config(tmp_path, generic_watch("a", f"{site}/a"))
    seen = []
    # `python -m monitor`, then the `monitor` command.
    for how in ([], ["--script"]):
        run = subprocess.run(
            [sys.executable, "-c", _PROBE, *how, "--config", str(config), "check", "--once"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        seen.append(run.stdout.splitlines())
    assert seen == [
        [
            "a: changed (1 new versions, 0 alerts)",
            "forkserver started, the command line imported: [False]",
        ],
        [
            "a: unchanged (0 new versions, 0 alerts)",
            "forkserver started, the command line imported: []",
        ],
    ]


def test_the_monitor_command_is_the_same_start_and_end() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"monitor": "monitor.__main__:run"}


_ENDING = """
import atexit, sys, threading, time
from pathlib import Path

from monitor.__main__ import exit_now

out = Path(sys.argv[1])

def late_writer():
    time.sleep(0.3)
    out.write_text("the thread's write")

threading.Thread(target=late_writer).start()
atexit.register(lambda: print("atexit ran, the thread had written:", out.exists()))
sys.stdout.write("buffered, not yet flushed ")
exit_now(3)
"""


def test_the_end_is_pythons_own_exit_but_the_teardown(tmp_path: Path) -> None:
    """Other threads are waited for, atexit's functions run, the streams flushed, the exit
    code kept; a stream that cannot be flushed is reported as Python's exit does."""
    out = tmp_path / "written"
    run = subprocess.run(
        [sys.executable, "-c", _ENDING, str(out)], cwd=REPO, capture_output=True, text=True
    )
    assert (run.returncode, run.stdout) == (
        3,
        "buffered, not yet flushed atexit ran, the thread had written: True\n",
    )
    assert out.read_text() == "the thread's write"
    # `monitor history … | head`: the reader gone, the flush fails; Python's exit says so
    # (on standard error) and ends with 120, whatever the code was, with or without this.
    # (Output buffered, as it is by default: unbuffered, the write itself would fail.)
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    for ending in (_ENDING, _ENDING.replace("exit_now(3)", "raise SystemExit(3)")):
        with subprocess.Popen(
            [sys.executable, "-c", ending, str(tmp_path / "again")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=buffered,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            error = process.stderr.read().decode()
        assert process.returncode == 120, error
        assert "BrokenPipeError" in error


def test_help_and_usage_errors_end_as_they_did() -> None:
    for args, code, stream, text in (
        (["--help"], 0, "stdout", "usage: monitor"),
        (["check", "--no-such-option"], 2, "stderr", "unrecognized arguments"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "monitor", *args], cwd=REPO, capture_output=True, text=True
        )
        assert run.returncode == code
        assert text in getattr(run, stream)


@pytest.mark.process
def test_a_check_run_under_a_profiler_leaves_its_profile(tmp_path: Path, site: str) -> None:
    """`python -m cProfile -o FILE -m monitor …` (bench/run.py --profile): the profiler is
    the program (its `__main__`), runs the command and writes the profile once it has
    returned; the command ends there as Python's exit does, not by os._exit before that."""
    config = local_config(tmp_path, generic_watch("a", f"{site}/a"))
    profile = tmp_path / "check.prof"
    profiled = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "monitor"]
    run = subprocess.run(
        [*profiled, "--config", str(config), "check", "--once"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "a: changed (1 new versions, 0 alerts)\n"
    functions = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    assert any(name == "cmd_check" for _file, _line, name in functions)
