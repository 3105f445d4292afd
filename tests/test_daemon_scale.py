"""A daemon of many watches: what it says at start (one line each, never one per watch), and
its web UI on a thread of its own, so that a page held open never holds up a check."""

from __future__ import annotations

import asyncio
import logging
import shlex
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.config import ConfigError, MonitorConfig, load_config, parse_config
from monitor.scheduler import REGISTER_SLICE, Daemon
from monitor.sites import profile_names
from monitor.store import CheckRecord, Store, WatchState
from monitor.store.records import iso
from tests.conftest import monitor_cli, serve_pages

PAGE = b"<html><body><h1>Statement</h1><p>The Ministry notes that it agrees.</p></body></html>"


@pytest.fixture
def site() -> Iterator[str]:
    yield from serve_pages(lambda path: PAGE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_of(tmp_path: Path, base: str, watches: int, *, port: int = 0, extra: str = "") -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "store"}"\n'
        f'[server]\nlisten = "127.0.0.1:{port or free_port()}"\n'
        '[fetch]\nallow_private = true\nper_host_delay = "0s"\nretries = 0\n'
        + "".join(
            f'[[watch]]\nid = "w{i}"\nurl = "{base}/page/{i}"\nprofile = "generic"\n'
            f'interval = "1h"\n{extra}'
            for i in range(watches)
        ),
        encoding="utf-8",
    )
    return path


def due_in_a_second(store: Store, config: MonitorConfig) -> None:
    """Every watch checked an interval ago, less a second: due together a second from now."""
    last = iso(datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=1))
    for watch in config.watch:
        store.sync_watch(watch.id, watch.url, "generic")
        state = WatchState(watch.id, last_check_at=last)
        store.commit_check(CheckRecord(watch.id, last, 1, "unchanged", 200), state)


def run_daemon(
    daemon: Daemon, until: Callable[[], bool], during: Callable[[], Awaitable[None]] | None = None
) -> bool:
    """Run `daemon` until `until()` (or 60 s); with `during`, that runs meanwhile. Whether
    `until()` came true."""

    async def scenario() -> bool:
        stop = asyncio.Event()
        running = asyncio.ensure_future(daemon.run(stop))
        try:
            if during is not None:
                await during()
            for _ in range(1200):
                if until():
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            stop.set()
            await running

    return asyncio.run(scenario())


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


# --- what it says ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_daemon_start_says_where_its_ui_is_how_many_watches_and_which_user_to_add(
    tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    config = load_config(config_of(tmp_path, site, 3, port=port), profile_names())
    with Store.from_config(config.store) as store:
        daemon = Daemon(config, store)
        assert run_daemon(daemon, lambda: any("web UI on" in m for m in said(caplog)))
    lines = said(caplog)
    assert f"web UI on http://127.0.0.1:{port}/" in lines
    [watching] = [m for m in lines if m.startswith("watching ")]
    assert watching.startswith("watching 3 pages; first results due in ")
    assert ", all within " in watching
    [hint] = [m for m in lines if "no web UI user yet" in m]
    command = hint.rpartition(": ")[2]
    assert (
        command == f"monitor --config {shlex.quote(str(config.source))} user add admin --role admin"
    )
    # The command works as printed; once there is a user, the daemon no longer asks for one.
    monkeypatch.setenv("MONITOR_PASSWORD", "a long enough password")
    argv = shlex.split(command)
    assert monitor_cli(None, *argv[1:]).returncode == 0
    caplog.clear()
    with Store.from_config(config.store) as store:
        assert run_daemon(
            Daemon(config, store), lambda: any("web UI on" in m for m in said(caplog))
        )
    assert not [m for m in said(caplog) if "no web UI user" in m]


def test_without_its_ui_a_daemon_says_so_and_asks_for_no_user(
    tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = load_config(config_of(tmp_path, site, 1), profile_names())
    with Store.from_config(config.store) as store:
        assert run_daemon(Daemon(config, store, serve_web=False), lambda: True)
    lines = said(caplog)
    assert "web UI off (--no-web)" in lines
    assert not [m for m in lines if "web UI on" in m or "no web UI user" in m]


def test_a_start_of_many_watches_logs_no_line_per_watch(
    tmp_path: Path, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    watches = 400
    # robots = false: until session 13 each such watch logged a warning of its own at start.
    path = config_of(tmp_path, site, watches, extra="robots = false\n")
    config = load_config(path, profile_names())
    with Store.from_config(config.store) as store:
        assert run_daemon(Daemon(config, store, serve_web=False), lambda: True)
    lines = said(caplog)
    naming = [m for m in lines if any(f"w{i}" in m.split() for i in range(5, watches))]
    assert naming == [], naming
    [robots] = [m for m in lines if "robots.txt is ignored" in m]
    assert robots == (
        f"robots.txt is ignored for {watches} watches (robots = false): "
        f"w0, w1, w2, w3, w4 and {watches - 5} more"
    )
    assert len(lines) < 10, lines


@pytest.mark.slow
def test_a_daemon_registers_its_watches_after_its_first_checks_have_started(
    tmp_path: Path, site: str
) -> None:
    # More watches than one slice of registration (REGISTER_SLICE), every one new: each
    # due watch is registered before its check, the others a slice at a time after.
    watches = 2 * REGISTER_SLICE + 10
    config = load_config(config_of(tmp_path, site, watches), profile_names())
    with Store.from_config(config.store) as store:
        assert not store.watch_rows()
        daemon = Daemon(config, store, serve_web=False)
        assert run_daemon(daemon, lambda: len(store.rhythms()) == watches)
        rows = {row["id"]: row for row in store.watch_rows()}
        assert len(rows) == watches
        assert rows["w1234"]["url"] == f"{site}/page/1234"
        assert rows["w1234"]["profile"] == "generic"
        checked = [w for w, (_, last, _) in store.rhythms().items() if last is not None]
        assert all(w in rows for w in checked)


# --- the configuration of many alike watches ------------------------------------------------


def test_alike_watch_tables_read_as_each_read_alone(tmp_path: Path) -> None:
    tables = "".join(
        f'[[watch]]\nid = "w{i}"\nurl = "https://example.org/{i}"\ninterval = "2h"\n'
        'channels = []\nignore = ["\\\\d+ views"]\n'
        for i in range(3)
    )
    config = parse_config(tables)
    for i, watch in enumerate(config.watch):
        alone = parse_config(tables.split("[[watch]]")[i + 1].join(["[[watch]]", ""]))
        assert watch == alone.watch[0]
        assert watch.model_fields_set == alone.watch[0].model_fields_set
        assert watch.model_dump() == alone.watch[0].model_dump()
    assert [w.id for w in config.watch] == ["w0", "w1", "w2"]
    assert config.watch[2].url == "https://example.org/2"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('id = "w 2"', "watch[2].id"),
        ('id = "w2\\n"', "watch[2].id"),  # Python's `$` takes a final newline; pydantic's not
        ('url = "https://example.org:99999/x"', "watch[2].url: not a usable URL"),
        ('url = "https://"', "watch[2].url"),
        ('url = "https://[::1/x"', "watch[2].url: not a usable URL"),
    ],
)
def test_a_bad_id_or_url_among_alike_tables_is_refused_at_its_line(bad: str, message: str) -> None:
    good = ['id = "w{i}"', 'url = "https://example.org/{i}"']
    tables = []
    for i in range(4):
        keys = [k.format(i=i) for k in good]
        if i == 2:
            keys = [bad if k.split()[0] == bad.split()[0] else k for k in keys]
        tables.append("[[watch]]\n" + "\n".join(keys) + '\ninterval = "1h"\n')
    with pytest.raises(ConfigError) as refused:
        parse_config("\n".join(tables), "many.toml")
    assert message in str(refused.value)
    line = 12 if bad.startswith("id") else 13  # table 2 begins on line 11
    assert str(refused.value).startswith(f"many.toml:{line}: ")


# --- the UI on its own thread -------------------------------------------------------------


@pytest.mark.slow
def test_a_ui_request_held_open_does_not_hold_up_a_check(tmp_path: Path, site: str) -> None:
    """A page that keeps its event loop busy (a heavy render does, synchronously) while a
    check comes due: the check runs and is stored meanwhile. On the checks' own loop, as
    before session 13, it could not start until the page was done."""
    port = free_port()
    config = load_config(config_of(tmp_path, site, 1, port=port), profile_names())
    entered, release = threading.Event(), threading.Event()
    answers: list[int] = []
    with Store.from_config(config.store) as store:
        due_in_a_second(store, config)
        checked_before = store.state("w0").last_check_at
        daemon = Daemon(config, store)
        real = daemon.runtime.web_app

        def web_app(*args: Any, **kwargs: Any) -> Any:
            app = real(*args, **kwargs)

            async def holding(scope: dict, receive: Any, send: Any) -> None:
                if scope["type"] == "http" and scope["path"] == "/healthz":
                    entered.set()
                    release.wait(120)  # the server's loop does nothing else meanwhile
                await app(scope, receive, send)

            return holding

        daemon.runtime.web_app = web_app  # type: ignore[method-assign]

        def ask() -> None:
            answers.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=150).status_code)

        asker = threading.Thread(target=ask)

        async def hold_a_request() -> None:
            while daemon._web is None or not daemon._web.listening:
                await asyncio.sleep(0.05)
            asker.start()
            assert await asyncio.to_thread(entered.wait, 60)

        seen: dict[str, bool] = {}

        def checked_while_held() -> bool:
            if store.state("w0").last_check_at == checked_before:
                return False
            seen["held"] = asker.is_alive() and not answers and not release.is_set()
            release.set()  # let the request go before the daemon stops
            return True

        try:
            done = run_daemon(daemon, checked_while_held, hold_a_request)
        finally:
            release.set()
            asker.join(30)
    assert done, "the check did not run while a UI request was held open"
    assert seen["held"]
    assert answers == [200]  # and the request was answered once let go
