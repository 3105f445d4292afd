"""`monitor serve`: the review UI alone, on an archive a daemon (or several) may be writing.

Watches saved in the UI take effect here at once; a daemon running elsewhere picks them up
on its next start or SIGHUP (one serving the UI itself reloads on its own). The watches in
force are one snapshot (wiring.py), made again after a save here and when it is older than
`FRESH_FOR`, since a daemon elsewhere keeps discovering statements.

With `--workers N` (`[server] workers`; by default one) the port is bound once and N
serving processes are forked, each with its own connection to the archive, answering on it
in turn (the kernel hands each connection to one of them): a page's handlers run on one
thread, so one process answers one request at a time, and 20 readers at once wait for one
another. What the processes share is in shared.py. One by default: each process starts
its own worker for password hashes (a forkserver that imports the parsers, a second of
CPU), and on a small, busy machine two such starts kept the UI from answering within the
test bed's 30 s.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

import uvicorn

from monitor.config import MonitorConfig, ServerConfig
from monitor.store import Store
from monitor.web.guard import UVICORN_OPTIONS
from monitor.wiring import Runtime, build

logger = logging.getLogger("monitor.web")

# Seconds a snapshot of the watches serves before it is made again.
FRESH_FOR = 5.0


def serve(config: MonitorConfig, store: Store, listen: str, workers: int | None = None) -> None:
    """Serve the UI on `listen` until stopped; `workers`: serving processes (None: the
    config's `[server] workers`, else one)."""
    runtime = build(config, store)
    host, port = ServerConfig(listen=listen).host_port
    count = workers or config.server.workers or 1
    processes = f", {count} processes" if count > 1 else ""
    print(
        f"monitor: web UI on http://{host}:{port}/ (data: {store.location}{processes})",
        file=sys.stderr,
    )
    if count <= 1:
        app = _app(runtime, store, listen)
        uvicorn.run(
            app, host=host, port=port, log_level="warning", lifespan="off", **UVICORN_OPTIONS
        )
        return
    _serve_forked(runtime, config, listen, _bind(host, port), count)


def _app(runtime: Runtime, store: Store, listen: str, shared: Any = None) -> Any:
    """The application of one serving process; `shared` what it shares with the others
    (shared.Shared, when there are others)."""
    from monitor.web import create_app

    rate = budget = saves = None
    if shared is not None:
        rate, budget, saves = shared.attach()

    def running() -> MonitorConfig:
        if saves is not None and saves.seen():  # a watch was saved in another process
            runtime.refresh()
        return runtime.current(FRESH_FOR)

    async def changed() -> None:
        runtime.refresh()  # a watch saved here shows at once
        if saves is not None:
            saves.saved()  # and in the other processes at their next request

    def health() -> dict[str, object]:
        # The snapshot as it is: a health probe never waits for the watches to be merged.
        return {"ok": True, "serving": "web UI only", "watches": len(runtime.config.watch)}

    return create_app(health, store, running, changed, listen, rate=rate, budget=budget)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=2048)
    listener.set_inheritable(True)
    return listener


def _serve_forked(
    runtime: Runtime, config: MonitorConfig, listen: str, listener: socket.socket, count: int
) -> None:
    """Fork `count` servers on `listener`, then wait: SIGTERM / SIGINT are passed on to
    them; one that ends on its own ends the others (a supervisor starts the whole again)."""
    from monitor.web.shared import Shared

    shared = Shared(config.server.api_rate)
    children: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - a forked server (its own process)
            _child(runtime, config, listen, listener, shared)
        children.append(pid)
    listener.close()
    shared.serve()
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    left = set(children)
    while left:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid not in left:  # one of the children's own (none are ours but the servers)
            continue
        left.discard(pid)
        if not stopping:
            logger.error(
                "web server process %s ended (status %s): stopping the others", pid, status
            )
            stop(signal.SIGTERM, None)


def _child(
    runtime: Runtime, config: MonitorConfig, listen: str, listener: socket.socket, shared: Any
) -> None:  # pragma: no cover - runs in a forked process
    """One forked server: its own connection to the archive (the parent's is never used
    here, nor closed: closing a copy of a SQLite connection may undo the parent's locks),
    then uvicorn on the inherited socket. Ends the process."""
    code = 1
    atexit._clear()  # the parent's: they are the parent's to run
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _end_with_parent()
    try:
        store = Store.from_config(config.store)
        runtime.store = store
        app = _app(runtime, store, listen, shared)
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="off", **UVICORN_OPTIONS)
        )
        server.run(sockets=[listener])
        store.close()
        code = 0
    except BaseException:
        logger.exception("web server process %s failed", os.getpid())
    finally:
        try:
            atexit._run_exitfuncs()  # this process's own: its diff and hashing workers
        finally:
            os._exit(code)


def _end_with_parent() -> None:  # pragma: no cover - runs in a forked process
    """A SIGTERM when the parent ends, even killed (Linux): a server left behind would hold
    the port, and the parent's restart could not bind it."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent ended before that
            os.kill(os.getpid(), signal.SIGTERM)
