"""`python -m monitor` and the `monitor` command: the command line (cli.py), and before it,
when the command will read pages at once, the start of the page-reading workers' forkserver
(`workers_wanted_at_once`); after it, the end of the process (`exit_now`)."""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from monitor.collector import collector_paused

# The options of `run` and `check`, and those before or after any subcommand (cli._common),
# that carry a value; and those that do not.
_VALUED = ("--config", "--log-format", "--listen")
_FLAGS = ("-v", "--verbose", "--once", "--no-web")
# A line that opens a table, and the [store] table's own header and keys (TOML).
_HEADER = re.compile(rb"^[ \t]*\[", re.MULTILINE)
_STORE_HEADER = re.compile(rb"^[ \t]*\[[ \t]*store[ \t]*\][ \t]*(?:#[^\n]*)?\r?$", re.MULTILINE)
_STORE_ANYWHERE = re.compile(rb"^[ \t]*\[+[ \t]*\"?store\b", re.MULTILINE)
_TOP_LEVEL_STORE = re.compile(rb"^[ \t]*\"?store\b", re.MULTILINE)
_PATH = re.compile(
    rb"""^[ \t]*path[ \t]*=[ \t]*(?:"([^"\\\n]*)"|'([^'\n]*)')[ \t]*(?:#[^\n]*)?\r?$""",
    re.MULTILINE,
)
_KEY = re.compile(rb"^[ \t]*(url|path)\b", re.MULTILINE)


def workers_wanted_at_once(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this command will read pages as soon as it can: `run` (the daemon starts its
    workers while it starts up) and `check` on a new SQLite archive (no answer can be a 304
    or the same bytes again: every page is read). Then the workers' forkserver, which
    imports and warms up the reading (0.2 s of CPU and more, on the other core), is started
    before this process imports the command line, the store and the configuration (another
    0.2 s), not after them (`cli.cmd_check` and `cmd_run` start it there too, for a
    command started otherwise): a first sweep's workers were the last to be ready.

    Read from the arguments and the config file's [store] table as they are, without the
    configuration's models; when anything is not plainly so (an abbreviated option, a
    [store] written another way, an unreadable file), False: the commands start the
    forkserver when they would have. An unchanged check of an archive that exists must not
    pay for a forkserver it never uses (its CPU is more than the check's own)."""
    command, config = _command(argv)
    if command == "run":
        return True
    if command != "check":
        return False
    if config is None:
        config = environ.get("MONITOR_CONFIG") or "config/monitor.toml"
    try:
        path = _sqlite_store_path(Path(config).read_bytes())
    except OSError:  # the command says what is wrong with it
        return False
    if path is None:
        return False
    try:
        return not any(Path(path).iterdir())
    except FileNotFoundError:
        return True  # a new archive's directory, made when the store opens
    except OSError:
        return False


def _command(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The subcommand and the `--config` value, as argparse reads them (None, None when in
    doubt, or asked for help)."""
    command = config = None
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help") or arg == "--":
            return None, None
        name, equals, value = arg.partition("=")
        if name in _VALUED:
            if not equals:
                value = next(args, "")
            if name == "--config":
                config = value
        elif arg in _FLAGS:
            continue
        elif arg.startswith("-"):  # another option (or an abbreviation): in doubt
            return None, None
        elif command is None:
            command = arg
    return command, config


def _sqlite_store_path(source: bytes) -> str | None:
    """The archive directory of a config whose store is SQLite ([store] path, "snapshots"
    by default, relative to the working directory as config.py reads it); None for a
    PostgreSQL one, or when the [store] table is not plainly written."""
    first_table = _HEADER.search(source)
    if _TOP_LEVEL_STORE.search(source, 0, first_table.start() if first_table else len(source)):
        return None  # `store.path = …` or `store = {…}` before the tables
    headers = list(_STORE_HEADER.finditer(source))
    if len(headers) != len(_STORE_ANYWHERE.findall(source)) or len(headers) > 1:
        return None  # [store.x], [ "store" ], two of them: not plainly written
    if not headers:
        return "snapshots"
    start = headers[0].end()
    following = _HEADER.search(source, start)
    table = source[start : following.start() if following else len(source)]
    keys = [match.group(1) for match in _KEY.finditer(table)]
    if b"url" in keys:
        return None
    if b"path" not in keys:
        return "snapshots"
    paths = list(_PATH.finditer(table))
    if len(paths) != 1 or keys.count(b"path") != 1:
        return None  # a string with escapes, a multi-line one, the key twice
    value = paths[0].group(1) if paths[0].group(1) is not None else paths[0].group(2)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def exit_now(code: int) -> NoReturn:
    """End the process as Python's own exit does (its other threads waited for, what was
    registered with atexit run: logging's flush, multiprocessing's, weakref finalizers,
    temporary files; standard output and error flushed) without then tearing down every
    module and object it made: 0.12 G instructions (callgrind; 25-30 ms of CPU) at the end
    of a `check --once`, the last of its wall time, spent on SQLAlchemy's, pydantic's and
    the configuration's objects. What only that teardown would do (an object's `__del__`),
    the commands do themselves before `main` returns: the store, the fetcher and the
    workers are closed. When the streams cannot be flushed (a closed pipe), Python's exit
    reports it as it always did."""
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter runs first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:
        raise SystemExit(code) from None
    os._exit(code)


def run() -> NoReturn:
    """`python -m monitor`, and the `monitor` command (pyproject.toml's script)."""
    # Importing the command line (asyncio, the site profiles, pydantic: a third of a second
    # of CPU) makes no garbage, but the cyclic collector's passes over what it builds are a
    # tenth of that; held off, and what was built left to it no more (collector.py). The
    # commands hold it off again for their own imports and configuration (`cli.cmd_check`,
    # `cmd_run`).
    with collector_paused():
        if workers_wanted_at_once(sys.argv[1:], os.environ):
            from monitor.isolate import start_forkserver

            start_forkserver()
        from monitor.cli import main

    try:
        code = main()
    except SystemExit as stop:  # argparse's --help, and its usage errors
        if stop.code is not None and not isinstance(stop.code, int):
            raise
        code = stop.code or 0
    if getattr(sys.modules.get("__main__"), "run", None) is not run:
        # Run by another program's __main__ (`python -m cProfile -o FILE -m monitor`,
        # `python -m trace`, bench/run.py --profile): it has work left once this returns
        # (the profile to write), which os._exit would cut short. Python's exit, as before.
        raise SystemExit(code)
    exit_now(code)


if __name__ == "__main__":
    run()
