"""Long command-line work shows its progress: a bar on a terminal (a real pseudo-terminal
here), plain lines at each tenth when piped, and nothing more than before for short work."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.extract import Statement
from monitor.store import CheckRecord, NewVersion, Store
from tests.conftest import REPO, monitor_cli, monitor_process, serve_pages

PAGE = b"<html><body><h1>Statement</h1><p>The Ministry notes that it agrees.</p></body></html>"


def archive(tmp_path: Path, statements: int) -> Path:
    """One watch with `statements` statements of one version each (a text blob each)."""
    with Store(tmp_path / "store") as store:
        store.sync_watch("w", "https://gov.example/news", "generic")
        versions = [
            NewVersion(
                f"en/{n}",
                f"https://gov.example/{n}",
                f"Statement {n}",
                None,
                "en",
                "baseline",
                Statement(f"en/{n}", "https://gov.example/", f"S {n}", (f"Text {n}.",)).to_json(),
                0.3,
                "",
            )
            for n in range(statements)
        ]
        at = "2026-05-01T10:00:00.000Z"
        store.commit_check(
            CheckRecord("w", at, 5, "changed", 200), store.state("w"), versions=versions
        )
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        '[[watch]]\nid = "w"\nurl = "https://gov.example/news"\nprofile = "generic"\n',
        encoding="utf-8",
    )
    return config


def tenths(text: str, what: str, total: int, unit: str) -> list[int]:
    pattern = rf"^{what}: (\d+) of {total} {unit} \((\d+)%\)$"
    return [int(m.group(2)) for m in re.finditer(pattern, text, re.M)]


@pytest.mark.slow
def test_a_piped_export_and_verify_say_each_tenth_in_plain_lines(tmp_path: Path) -> None:
    config = archive(tmp_path, 150)
    out = tmp_path / "all.jsonl"
    exported = monitor_cli(config, "export", "--format", "jsonl", "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == f"wrote 150 versions to {out}\n"
    assert tenths(exported.stderr, "export", 150, "versions") == list(range(10, 101, 10))
    assert "\x1b[" not in exported.stderr  # no terminal codes in a log
    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0, verified.stderr
    assert tenths(verified.stderr, "verify", 150, "blobs")[-1] == 100


def test_short_work_prints_no_progress_lines(tmp_path: Path) -> None:
    config = archive(tmp_path, 20)
    exported = monitor_cli(config, "export", "--format", "jsonl", "--output", str(tmp_path / "x"))
    assert exported.returncode == 0
    assert exported.stderr == ""


@pytest.fixture
def site() -> Iterator[str]:
    yield from serve_pages(lambda path: PAGE)


@pytest.mark.slow
def test_a_first_check_of_many_watches_says_how_far_it_is(tmp_path: Path, site: str) -> None:
    watches = 120
    config = tmp_path / "monitor.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        '[fetch]\nallow_private = true\nper_host_delay = "0s"\nretries = 0\n'
        'per_host_concurrency = 8\n[alerts]\nconfirm_delay = "0s"\n'
        + "".join(
            f'[[watch]]\nid = "w{i}"\nurl = "{site}/{i}"\nprofile = "generic"\nrobots = false\n'
            for i in range(watches)
        ),
        encoding="utf-8",
    )
    checked = monitor_cli(config, "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": changed (1 new versions") == watches
    assert tenths(checked.stderr, "check", watches, "watches") == list(range(10, 101, 10))


@pytest.mark.process
def test_on_a_terminal_the_export_shows_a_bar_and_no_plain_lines(tmp_path: Path) -> None:
    config = archive(tmp_path, 150)
    out = tmp_path / "all.jsonl"
    parent, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env.update({"COLUMNS": "100", "TERM": "xterm"})
    command = [sys.executable, "-m", "monitor", "--config", str(config), "export"]
    process = subprocess.Popen(
        [*command, "--format", "jsonl", "--output", str(out)],
        stdin=child,
        stdout=child,
        stderr=child,
        cwd=REPO,
        env=env,
    )
    # The test keeps its own end of the terminal open until the process has ended and all
    # it wrote is read: a reader that stops at the terminal's hang-up (EIO) could miss the
    # last line on a loaded machine.
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 0.2)
        if ready:
            seen += os.read(parent, 65536)
        elif process.poll() is not None:
            break  # ended, and nothing more to read
    os.close(child)
    os.close(parent)
    assert process.wait(60) == 0
    shown = seen.decode("utf-8", "replace")
    assert "━" in shown and "export" in shown  # rich's bar, drawn on the terminal
    assert tenths(shown.replace("\r", ""), "export", 150, "versions") == []
    assert f"wrote 150 versions to {out}" in shown
    # Piped, the same command speaks in plain lines (the other test), never in a bar.
    piped = monitor_process(config, "export", "--format", "jsonl", "--output", str(out))
    assert "━" not in piped.stderr and tenths(piped.stderr, "export", 150, "versions")
