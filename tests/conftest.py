"""Shared test bed: the gov.kz replica, a real webhook receiver, config files, the CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import hmac
import io
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.passwords import CHEAP_ENV as CHEAP_HASHES
from monitor.replica import ReplicaSite
from monitor.transports.memory import MemoryTransport
from tests.postgres import backend, postgres_server, postgres_url  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "test-secret-不要"

# Password hashes at argon2's cheapest parameters, here and in every `monitor` this session
# starts (monitor/passwords.py): a user, a login or a guess costs microseconds, not ~0.3 s of
# a core in a hashing process at a low priority, which a busy machine starves for seconds.
# The story that is about the cost of a hash (a login flood) serves without it.
os.environ[CHEAP_HASHES] = "1"


# Stories whose claims hang on timing, in two groups: kills at moments of a phase and
# schedules kept across restarts; limits (/healthz within 100 ms, a login flood's budget, a
# screenshot's or a template's time limit, a hostile page's). Under `pytest -n 4 --dist
# loadgroup` (.ci/run) each group goes to one worker and runs one story at a time, as in a
# serial run, while the other workers run the rest. Most of these stories wait (for a
# daemon's schedule, a kill's moment), so four workers keep two cores busy.
_TIMING = {
    "test_alerts_outbox.py": "kills",
    "test_crash.py": "kills",
    "test_daemon.py": "kills",
    "test_first_sight.py": "kills",
    "test_instances.py": "kills",
    "test_channels_templates.py": "limits",
    "test_hostile.py": "limits",
    "test_hostile_web.py": "limits",
    "test_progress.py": "limits",
    "test_scheduler.py": "limits",
    "test_screenshots.py": "limits",
}


# The stories on the web UI's shared archive (tests/webui.py, `archive`: four checks, three
# users, a `monitor serve`, ~10 s of CPU) are a third group: one worker builds it once,
# where each worker that met one of them built its own.
_ARCHIVE_GROUP = "archive"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`slow` follows from what a test is about (see pyproject's markers): a test that runs
    on PostgreSQL is marked `postgres`, and `process`, `browser` and `postgres` tests are
    `slow`, so `pytest -m "not slow"` is the fast in-process subset. The timing stories
    are two `xdist_group`s, the shared archive's a third, and a module whose tests share a
    module-scoped fixture is one more. Modules with the most process and browser stories
    come first (in the order they were collected otherwise), so that the run ends on short
    tests rather than on a worker busy with a 30-second one."""
    for item in items:
        group = _TIMING.get(item.path.name)
        if group is None and _uses_fixture(item, _ARCHIVE_FIXTURE):
            group = _ARCHIVE_GROUP
        if group is None and _uses_a_module_fixture(item):
            group = item.path.name  # its fixture made once, not on each worker
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        callspec = getattr(item, "callspec", None)
        on_postgres = "postgres_url" in getattr(item, "fixturenames", ()) or (
            callspec is not None and "postgresql" in callspec.params.values()
        )
        if on_postgres and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
        if _uses_a_served_ui(item) and item.get_closest_marker("process") is None:
            item.add_marker(pytest.mark.process)
        if any(item.get_closest_marker(name) for name in ("process", "browser", "postgres")):
            item.add_marker(pytest.mark.slow)
    heavy: dict[Path, int] = {}
    for item in items:
        started = any(item.get_closest_marker(name) for name in ("process", "browser"))
        heavy[item.path] = heavy.get(item.path, 0) + int(started)
    # The serial groups first, longest first (pytest-xdist hands out work in this order, with
    # --no-loadscope-reorder, pyproject.toml), then the heaviest modules; sort is stable.
    first = {"limits": 0, "kills": 1, _ARCHIVE_GROUP: 2}

    def order(item: pytest.Item) -> tuple[int, int]:
        marker = item.get_closest_marker("xdist_group")
        return first.get(marker.args[0] if marker else "", len(first)), -heavy[item.path]

    items.sort(key=order)


# MONITOR_TEST_TIMES=FILE: each test's wall and CPU seconds (this process plus the
# subprocesses it reaped), one tab-separated line per test, to see where the suite's time
# goes: CPU is work, wall minus CPU is waiting (sleeps, polls, timeouts, start-ups).
_TIMES = os.environ.get("MONITOR_TEST_TIMES")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if not _TIMES:
        yield
        return
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    spent_children = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    spent = time.process_time() - cpu + spent_children
    with open(_TIMES, "a", encoding="utf-8") as out:
        out.write(f"{time.perf_counter() - wall:.3f}\t{spent:.3f}\t{item.nodeid}\n")


# Fixtures that serve the web UI from a `monitor serve` process, for the tests that use them.
_ARCHIVE_FIXTURE = "tests.webui.archive_fixture"
_SERVED_UI_FIXTURES = {_ARCHIVE_FIXTURE, "tests.test_hostile_web.ui"}


def _uses_a_served_ui(item: pytest.Item) -> bool:
    return any(_uses_fixture(item, name) for name in _SERVED_UI_FIXTURES)


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    """Whether `item` uses a fixture made once per module (each worker that runs one of the
    module's tests makes it; a module run on one worker makes it once)."""
    return any(fixture.scope == "module" for fixture in _fixtures(item))


def _uses_fixture(item: pytest.Item, qualified_name: str) -> bool:
    """Whether `item` uses the fixture function `module.name` (directly or through another)."""
    for fixture in _fixtures(item):
        function = fixture.func
        name = f"{getattr(function, '__module__', '')}.{getattr(function, '__name__', '')}"
        if name == qualified_name:
            return True
    return False


def _fixtures(item: pytest.Item) -> list[Any]:
    """The definitions of the fixtures `item` uses (directly or through another), each the
    one that applies to it (the last: a closer definition overrides a farther one)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return [found[-1] for found in definitions]


@pytest.fixture
def replica() -> Iterator[ReplicaSite]:
    with ReplicaSite() as site:
        yield site


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records webhook posts and checks signatures."""

    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_with: int | None = None  # answer this status instead of 204 (receiver "down")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posts if kind is None or p["kind"] == kind]

    def channel(self) -> str:
        """The config's [channels.hook], posting here."""
        return hook_channel(self.url)


def hook_channel(url: str) -> str:
    """The config's [channels.hook]: a webhook posting to `url`, signed with the secret
    tests put in TEST_WEBHOOK_SECRET."""
    return f"""
[channels.hook]
type = "webhook"
url = "{url}"
secret_env = "TEST_WEBHOOK_SECRET"
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if state.fail_with:
                self.send_response(state.fail_with)
                self.end_headers()
                return
            expected = (
                "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
            )
            with state.lock:
                if self.headers.get("X-Monitor-Signature") != expected:
                    state.bad_signatures += 1
                state.posts.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    for base in serve_on_loopback(Handler):
        state.url = f"{base}/hook"
        yield state


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: logs nothing, and `send` answers in one call."""

    def send(
        self,
        status: int,
        body: bytes = b"",
        media: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Answer `status` with `body` (of type `media`; no Content-Type without one)."""
        self.send_response(status)
        if media is not None:
            self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


# How often a test server's loop looks for `shutdown()`: socketserver's default of 0.5 s made
# the teardown of every fixture that serves something wait about half a second.
POLL = 0.05


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real threaded HTTP server on 127.0.0.1 for as long as the generator runs: yields
    its base URL ("http://127.0.0.1:PORT")."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def serve_pages(body_of: Callable[[str], bytes | None]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering GET `path` with the HTML `body_of(path)`
    gives (404 for None); yields its base URL."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            body = body_of(self.path)
            if body is None:
                self.send(404)
            else:
                self.send(200, body, "text/html; charset=utf-8")

    yield from serve_on_loopback(Handler)


@pytest.fixture
def apprise_endpoint() -> Iterator[tuple[str, list[dict[str, object]]]]:
    """A real HTTP endpoint Apprise's `json://` posts each notification to: its URL for
    Apprise, and the notifications received."""
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    for base in serve_on_loopback(Handler):
        yield base.replace("http://", "json://") + "/notify", received


CONSOLE = '\n[channels.console]\ntype = "log"\n'


def local_config(
    directory: Path, watches: str, *, fetch: str = "", alerts: str = "", sections: str = ""
) -> Path:
    """`directory`/monitor.toml for checking pages a test serves on 127.0.0.1: the store in
    `directory`, loopback allowed, no wait between requests and no retry (a failure shows on
    the check that met it), no confirmation delay before an alert. `fetch` and `alerts` add
    lines to their sections, `sections` whole sections ([channels.*], [server], …) before
    the `watches`."""
    path = directory / "monitor.toml"
    path.write_text(
        f"""
[store]
path = "{directory / "store"}"

[fetch]
allow_private = true
per_host_delay = "0s"
retries = 0
{fetch}

[alerts]
confirm_delay = "0s"
{alerts}
{sections}
{watches}
""",
        encoding="utf-8",
    )
    return path


def generic_watch(watch_id: str, url: str, extra: str = "") -> str:
    """A [[watch]] of `url` read with the generic profile; `extra` adds its lines."""
    return f"""
[[watch]]
id = "{watch_id}"
url = "{url}"
profile = "generic"
{extra}
"""


def write_config(
    directory: Path,
    replica: ReplicaSite | None,
    receiver: Receiver | None = None,
    languages: tuple[str, ...] = ("en",),
    *,
    allow_private: bool = True,
    confirm_delay: str = "0s",
    failing_after: str = "0s",
    interval: str = "15m",
    watch_extra: str = "",
    listen: str = "127.0.0.1:0",
    store: str = "",
) -> Path:
    channels = ["console"] + (["hook"] if receiver else [])
    text = f"""
[store]
path = "{directory / "store"}"
{store}

[fetch]
allow_private = {str(allow_private).lower()}
per_host_delay = "0s"
retries = 0
timeout = "10s"

[alerts]
confirm_delay = "{confirm_delay}"
failing_after = "{failing_after}"

[server]
listen = "{listen}"

[channels.console]
type = "log"
"""
    if receiver:
        # Any receiver with a URL: test_alerts_outbox brings one that fails on purpose.
        text += hook_channel(receiver.url)
    base = replica.url if replica else "http://127.0.0.1:9"
    for lang in languages:
        text += f"""
[[watch]]
id = "mfa-{lang}"
url = "{base}/memleket/entities/mfa/press/news?lang={lang}"
profile = "govkz"
language = "{lang}"
interval = "{interval}"
channels = {json.dumps(channels)}
{watch_extra}
"""
    path = directory / "monitor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start_daemon(
    config: Path, *run_args: str, options: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    """`monitor [options] --config CONFIG run [run_args]` in a process of its own, as an
    operator starts it, with the webhook secret in its environment and its output in
    pipes (unbuffered: what it logged before a kill is there)."""
    env = {**os.environ, "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", *options, "--config", str(config), "run", *run_args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def quiet_monitor(config: Path, *args: str) -> subprocess.Popen[bytes]:
    """`monitor --config CONFIG args` in a process of its own whose output nobody reads
    (a story that kills it, or reads only the store), the environment's config unset."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every 0.1 s until it holds or `timeout` seconds pass; whether it
    held (tests assert on it, so a failure names what never came true)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def monitor_cli(
    config: Path | None,
    *args: str,
    timeout: float = 120,
    code: Path = REPO,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the `monitor` command line as a user would (its `main` with these arguments, its
    exit code, standard output and error), in this process: the start-up of a new
    interpreter (0.8 s) buys nothing when a test is not about processes. `stdin`: what is
    piped to its standard input (as `input=` of subprocess.run; $MONITOR_PASSWORD unset).
    With `code` (the folder of another version of the `monitor` package, for an upgrade) it
    runs there, in a subprocess, as `monitor_process` does."""
    if code != REPO:
        assert stdin is None, "stdin is for the in-process run"
        return monitor_process(config, *args, timeout=timeout, code=code)
    argv = [*(["--config", str(config)] if config is not None else []), *args]
    return _run_in_process(argv, stdin)


def monitor_process(
    config: Path | None, *args: str, timeout: float = 120, code: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run the real `monitor` command in a subprocess (`python -m monitor`), for what is
    about processes; `code` is the folder holding the `monitor` package to run (another
    version of it, for an upgrade)."""
    env = {**os.environ, "TEST_WEBHOOK_SECRET": WEBHOOK_SECRET, "PYTHONUNBUFFERED": "1"}
    env.pop("MONITOR_CONFIG", None)
    if code != REPO:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "monitor"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=code
    )


def _outside_any_loop(main: Callable[[list[str]], int], argv: list[str]) -> int:
    """`main` runs its own event loop (asyncio.run), which cannot start in a thread that
    already runs one — a Playwright sync test's does: there, it runs in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return main(argv)
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(main, argv).result()


def _run_in_process(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`monitor.cli.main(argv)` as `python -m monitor` would run it: the same environment
    and working folder as `monitor_process`, its own standard output and error (with the
    binary `.buffer` under them, as `show --raw` writes there), standard input piped from
    `stdin` when given, and logging set up afresh by `main` (pytest's own log handlers stand
    aside for the call, else `logging.basicConfig` would keep them and the log lines would
    miss standard error)."""
    from monitor.cli import main

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", newline="")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = ("TEST_WEBHOOK_SECRET", "MONITOR_CONFIG", "MONITOR_PASSWORD")
    saved_env = {name: os.environ.get(name) for name in names}
    saved_cwd, saved_stdin = os.getcwd(), sys.stdin
    os.environ["TEST_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    os.environ.pop("MONITOR_CONFIG", None)
    if stdin is not None:
        os.environ.pop("MONITOR_PASSWORD", None)
        sys.stdin = io.StringIO(stdin)  # not a terminal, as a pipe is not
    root.handlers = []
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = _outside_any_loop(main, argv)
            except SystemExit as exit_:  # argparse's usage errors and --help
                if isinstance(exit_.code, str):
                    print(exit_.code, file=sys.stderr)
                    code = 1
                else:
                    code = exit_.code or 0
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = saved_handlers, saved_level
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        # `main` freezes what it has loaded out of the collector's sight (a daemon's one
        # start-up); a test session runs it hundreds of times and must get it back.
        gc.unfreeze()
    return subprocess.CompletedProcess(["monitor", *argv], code, _written(stdout), _written(stderr))


def _written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue().decode("utf-8", errors="replace").replace("\r\n", "\n")


def upgraded_copy(tmp_path: Path, module: str, old: str, new: str) -> Path:
    """A copy of monitor/ as a new release would be, in which `module` (a path under
    monitor/) has `old` replaced with `new`; run it with `monitor_cli(..., code=...)`."""
    upgraded = tmp_path / "upgraded"
    shutil.copytree(
        REPO / "monitor", upgraded / "monitor", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = upgraded / "monitor" / module
    source = path.read_text(encoding="utf-8")
    assert old in source, f"{module} no longer has {old!r}"
    path.write_text(source.replace(old, new), encoding="utf-8")
    return upgraded


@dataclass
class FeedServer:
    """A real HTTP server on 127.0.0.1 answering each path with (content type, body)."""

    url: str = ""
    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Accept header)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, path: str, content_type: str, body: bytes) -> None:
        with self.lock:
            self.routes[path] = (content_type, body)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for hit, _ in self.hits if hit == path)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    state = FeedServer()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.hits.append((self.path, self.headers.get("Accept", "")))
                route = state.routes.get(self.path)
            if route is None:  # robots.txt included: none means everything is allowed
                self.send(404)
            else:
                self.send(200, route[1], route[0])

    for state.url in serve_on_loopback(Handler):
        yield state


@pytest.fixture
def memory_site() -> MemoryTransport:
    """An in-process site for tests that are not about HTTP: no server, no socket, no
    subprocess. `memory_site.site[url] = html` publishes or edits a page (ETags and 304s
    included, 404 for anything else); `Fetcher(config.fetch, transport=memory_site)` reads
    it, with robots.txt, redirects, retries and limits as over a real transport (see
    monitor/transports/memory.py; tests/test_transports.py has examples)."""
    return MemoryTransport.serving()
