"""Untrusted work in worker processes, under time and memory limits.

Reading what a site sent (parsing, extraction), and masking and diffing it, runs here, in a
small pool of worker processes, never in the daemon's event loop. A page can make a parser
slow or greedy: 1.1 MB of 100,000 nested <div>s kept the generic extractor busy for over
800 s of CPU, an ordinary 18 MB page held the event loop for 5.3 s, a JSON answer nested
100,000 deep overflowed the recursion limit. In the event loop, the first two stopped
every other watch, `/healthz` and SIGTERM with it.

Each worker runs one piece of work at a time under `RLIMIT_AS` (memory) and a wall-clock
limit kept by the daemon: a worker over it is killed (SIGKILL) and a fresh one forked on
the next use. The work then fails with `WorkFailed` and its reason, which the check turns
into a *problem* of that one watch; the other workers and the event loop go on.

Workers are forked from a forkserver that has imported the parsers once (and read a small
page, see isolate_preload.py). The daemon starts them while it starts up; `monitor check`
only when work first arrives: a cycle of unchanged pages (304s, identical bytes, nothing
to read) starts none. The daemon talks to each worker over a pipe from a thread of its own, so
the event loop never waits for a pipe, pickling included.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import queue
import resource
import select
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from monitor.compression import compress

# asyncio is the daemon's side only (`WorkerPool.run`), imported there: a worker never
# needs it, and the forkserver importing it was 17 ms of CPU before the first worker forks.
if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("monitor.isolate")

T = TypeVar("T")

# Imported once by the forkserver, so a worker forked from it starts in milliseconds; the
# last, so that the forkserver ends without tearing them down (see isolate_server.py).
_PRELOAD = [
    "monitor.isolate",
    "monitor.isolate_preload",
    "monitor.learned",
    "charset_normalizer",
    "monitor.isolate_server",
]
# A worker whose daemon vanished (kill -9) must not compute on forever: it ends itself this
# long after the work's own limit (SIGALRM's default action ends the process even while it
# is deep inside C code, which a Python-level handler would not interrupt).
_BACKSTOP = 30


def start_forkserver() -> None:
    """Start the forkserver now: it imports the parsers (a second or more of CPU) in its own
    process while this one goes on (the daemon: while it reads its config), and the workers
    forked from it later start at once. Idempotent; workers start it anyway when needed."""
    from multiprocessing import forkserver

    _forkserver_context()
    forkserver.ensure_running()


def _forkserver_context() -> Any:
    """multiprocessing's forkserver context, set to preload the reading, with no resource
    tracker behind it (see `_without_resource_tracker`)."""
    _without_resource_tracker()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _without_resource_tracker() -> None:
    """Start no resource tracker: multiprocessing's forkserver starts one (a Python process
    of its own, 187 M instructions by callgrind: a seventh of the forkserver's start-up, on
    a `check --once`'s way to its first page) to unlink the named semaphores and shared
    memory its processes leave behind when they die. Ours make none: the workers talk over
    pipes. Its pipe is /dev/null instead, which `ensure_running` takes for a tracker alive
    (its probe is written), and which a worker would tell of any such resource to no end.
    A tracker running already (a library's, before the first pool) is left as it is."""
    from multiprocessing import resource_tracker

    # multiprocessing's own names (3.11): where another Python names them otherwise, the
    # tracker starts as it did.
    tracker: Any = getattr(resource_tracker, "_resource_tracker", None)
    lock = getattr(tracker, "_lock", None)
    if lock is None or getattr(tracker, "_fd", 0) is not None:
        return
    with lock:
        if tracker._fd is None:
            tracker._fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


class WorkFailed(Exception):
    """The work raised, or went over a limit; `str()` is the reason, for the user."""

    def __init__(self, reason: str, details: str = "", over_limit: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # The worker's traceback, for the log (a bug in a profile is worth seeing once).
        self.details = details
        # Killed for time or memory, rather than an exception the work raised.
        self.over_limit = over_limit


class Work(Protocol):
    async def run(self, function: Callable[..., T], *args: Any) -> T: ...

    def close(self) -> None: ...


class InlineWork:
    """The same interface, run in this process: for tools and tests that read pages they
    made themselves. Exceptions become `WorkFailed` as in a worker; no limits apply."""

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return function(*args)
        except Exception as err:
            raise WorkFailed(_describe(err), traceback.format_exc()) from err

    def close(self) -> None:
        pass


class WorkerPool:
    """`size` worker processes, each given `timeout` seconds of wall clock and `memory`
    bytes of address space (0: no memory limit) per piece of work.

    Each worker has a thread of its own that takes the next piece of work from one queue
    the moment the last is done. A worker used to be handed back through the event loop
    (its result awaited, then the next waiting check resumed to give it work): while the
    loop was busy with other checks the worker stood idle, about half of a first sweep."""

    def __init__(
        self,
        size: int,
        timeout: float,
        memory: int = 0,
        meanwhile: Callable[[], object] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size, self.timeout, self.memory = size, timeout, memory
        # Run once, in the caller's thread, when the first work is given (`run`): what the
        # caller will need once that work is back, done while its worker starts (a
        # `check --once` starts the forkserver then: a quarter of a second and more, in
        # which this process has nothing else to do but fetch). Its failure is left to the
        # caller's own use of what it makes.
        self._meanwhile = meanwhile
        context = _forkserver_context()
        self._workers = [_Worker(context, memory, timeout) for _ in range(size)]
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        # `run` and `close` may be called from different threads (a web request's pool
        # closed by the server's shutdown): the threads' start, a queued work and the
        # close are one at a time, so no work is queued after `close` drained the queue
        # (its caller would wait for ever) and no second set of threads starts.
        self._state = threading.Lock()

    def start(self, warm_up: Callable[[], object] | None = None) -> None:
        """Start every worker now (blocking: call it in a thread) rather than when the
        first page needs one: the daemon does, so that its first checks do not wait for
        the forkserver to load the parsers (a second or more on a busy machine).
        `warm_up()` then runs once in each (its failure is the next work's problem).
        Work may be given to the pool meanwhile (the daemon's checks do not wait for this:
        a 304 or the same bytes again needs no worker): it waits for its worker to have
        started and warmed up, or, given to a worker this has not reached yet, starts it
        itself (the warm-up then follows that work)."""
        for worker in self._workers:
            with contextlib.suppress(WorkFailed):
                worker.start(warm_up)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker (both picklable: module-level functions and plain
        data). Raises `WorkFailed` when it raises or goes over a limit."""
        import asyncio  # the caller's: imported already (see the imports at the top)

        loop = asyncio.get_running_loop()
        work = _Work(function, args, loop, loop.create_future())
        with self._state:
            if self._closed:
                raise WorkFailed("monitor is stopping")
            if not self._threads:
                self._threads = [
                    threading.Thread(
                        target=self._serve, args=(worker,), name="monitor-work", daemon=True
                    )
                    for worker in self._workers
                ]
                for thread in self._threads:
                    thread.start()
            self._work.put(work)
            meanwhile, self._meanwhile = self._meanwhile, None
        if meanwhile is not None:  # outside the lock: a close need not wait for it
            try:
                meanwhile()
            except Exception:
                logger.debug("preparing while the workers start failed", exc_info=True)
        try:
            # Awaited as it is, not shielded: a cancelled caller cancels the future too,
            # so that the outcome the thread hands it later (`_settle`) is dropped, not an
            # exception nobody retrieves (which asyncio logs as an error when collected).
            result: T = await work.done
        except asyncio.CancelledError:
            # Nobody waits for this work any more (shutdown, a hung check): not started,
            # it is skipped; started, its worker is killed (the thread takes the next
            # work once it has seen it end).
            work.abandon()
            raise
        return result

    def _serve(self, worker: _Worker) -> None:
        """A worker's thread: work after work from the queue, until `close`."""
        while True:
            work = self._work.get()
            if work is None or self._closed:
                if work is not None:
                    work.settle(None, WorkFailed("monitor is stopping"))
                return
            if work.take(worker):  # else its caller has gone already: skipped
                try:
                    value, error = worker.call(work.function, work.args, work.gone), None
                except BaseException as err:
                    value, error = None, err
                work.ended()
                work.settle(value, error)
                del value, error
            # Waiting for the next work, the thread keeps nothing of this one: its page
            # and its reading (18 MB and more) would stay in memory until then.
            del work

    def close(self) -> None:
        """Kill the workers (work in progress fails) and let their threads end."""
        with self._state:
            self._closed = True
            threads = list(self._threads)
        for worker in self._workers:
            worker.stop(closing=True)
        for _ in threads:
            self._work.put(None)
        for thread in threads:
            thread.join()
        while True:  # what no thread took: its callers learn that monitor is stopping
            try:
                work = self._work.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                work.settle(None, WorkFailed("monitor is stopping"))


class _Work:
    """A piece of work in the pool's queue, and the future its caller awaits."""

    def __init__(
        self,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[Any],
    ) -> None:
        self.function, self.args, self.loop, self.done = function, args, loop, done
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._abandoned = False

    def take(self, worker: _Worker) -> bool:
        """A worker's thread takes it: False when its caller has gone already."""
        with self._lock:
            if self._abandoned:
                return False
            self._worker = worker
            return True

    def gone(self) -> bool:
        """Whether its caller has gone (see `_Worker.call`)."""
        return self._abandoned

    def ended(self) -> None:
        """Its worker is done with it (and may take other work at once)."""
        with self._lock:
            self._worker = None

    def abandon(self) -> None:
        """Its caller has gone: not taken yet, it is skipped; running, its worker is
        killed. Under the lock: a worker done with it meanwhile may run the next work,
        which must not be killed in its place."""
        with self._lock:
            self._abandoned = True
            if self._worker is not None:
                self._worker.stop()

    def settle(self, value: Any, error: BaseException | None) -> None:
        """Hand the outcome to the caller's event loop (from the worker's thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self.loop.call_soon_threadsafe(_settle, self.done, value, error)


def _settle(done: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if done.done():  # cancelled meanwhile
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(value)


_Gone = Callable[[], bool]  # whether the caller of a piece of work has gone


def _never() -> bool:
    return False


class _Worker:
    """One worker process and the pipe to it; `call` runs in the pool's thread."""

    def __init__(self, context: Any, memory: int, timeout: float) -> None:
        self._context = context
        self._memory = memory
        self._timeout = timeout
        self._process: Any = None
        self._conn: Connection | None = None
        # Polls made once per worker process, kept with it: `is_alive()` and `conn.poll()`
        # make a selector for every call (two per page, some 10 % of the daemon's cost of
        # handing a page over). `_ended`: the worker's sentinel (readable once it ended);
        # `_replied`: its pipe (readable once it answered, or closed).
        self._ended: Any = None
        self._replied: Any = None
        self._lock = threading.Lock()  # the process and its pipe
        self._calling = threading.Lock()  # a call, from sending the work to its reply
        self._closing = False

    def call(self, function: Callable[..., T], args: tuple[Any, ...], gone: _Gone = _never) -> T:
        # One call at a time on the pipe: the pool's start (its warm-up) may run beside
        # the first work given to this worker (see `WorkerPool.start`).
        with self._calling:
            return self._call(function, args, gone)

    def _call(self, function: Callable[..., T], args: tuple[Any, ...], gone: _Gone = _never) -> T:
        payload = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        conn, replied = self._running()
        if gone():
            # Its caller went while it waited for this worker (a warm-up, or the moment
            # between its thread taking it and this call): `_Work.abandon` killed the
            # worker before `_running` forked this one, which must not run it. A caller
            # going from now on kills the worker this call talks to.
            raise WorkFailed("nobody waits for it any more")
        try:
            conn.send_bytes(payload)
            del payload
            # A pipe closed meanwhile (see `_running`) fails at once in `recv_bytes`.
            if not (conn.closed or replied.poll(math.ceil(self._timeout * 1000))):
                self.stop()
                raise WorkFailed(f"over the time limit of {self._timeout:g} s", over_limit=True)
            reply = conn.recv_bytes()
        except (EOFError, OSError):
            code = self.stop()
            if self._closing:
                raise WorkFailed("monitor is stopping") from None
            raise WorkFailed(_ended(code), over_limit=True) from None
        status, value, details = pickle.loads(reply)
        if status == "ok":
            return value  # type: ignore[no-any-return]
        if status == "memory":
            self.stop()
            limit = self._memory // 1_000_000
            raise WorkFailed(f"over the memory limit of {limit} MB", over_limit=True)
        raise WorkFailed(value, details)

    def start(self, warm_up: Callable[[], object] | None = None) -> None:
        with self._calling:
            self._running()
            if warm_up is not None:
                self._call(warm_up, ())

    def _running(self) -> tuple[Connection, Any]:
        """The worker's pipe and the poll of its answers, forking a worker first when there
        is none (or it died). Both are the caller's to keep: `stop` (a caller gone, `close`)
        may forget them meanwhile, and the closed pipe then ends the call as it did."""
        with self._lock:
            if self._closing:
                raise WorkFailed("monitor is stopping")
            # Its sentinel unreadable, the worker is alive (what `is_alive()` asks, without
            # a selector made to ask it); readable, `is_alive()` says what became of it.
            if self._process is not None and (not self._ended.poll(0) or self._process.is_alive()):
                assert self._conn is not None
                return self._conn, self._replied
            self._reap()
            ours, theirs = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=_serve,
                args=(theirs, self._memory, self._timeout),
                name="monitor-worker",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._process, self._conn = process, ours
            self._ended, self._replied = select.poll(), select.poll()
            self._ended.register(process.sentinel, select.POLLIN)
            self._replied.register(ours.fileno(), select.POLLIN)
            return ours, self._replied

    def stop(self, closing: bool = False) -> int | None:
        """Kill the worker (if any) and forget it; its exit code (negative: the signal)."""
        with self._lock:
            self._closing = self._closing or closing
            return self._reap()

    def _reap(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = self._ended = self._replied = None
        code = None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            code = process.exitcode
            if code is not None:
                process.close()
        if conn is not None:
            conn.close()
        return code


def _ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            # Not ours (we kill only after the time limit): the kernel's out-of-memory killer.
            return "the worker was killed (SIGKILL: out of memory?)"
        return f"the worker crashed ({name})"
    return f"the worker ended unexpectedly (exit code {code})"


def _describe(err: BaseException) -> str:
    text = str(err)
    if len(text) > 300:
        text = text[:300] + "…"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _serve(conn: Connection, memory: int, timeout: float) -> None:
    """A worker's life: one piece of work at a time until the pipe closes."""
    # The daemon handles Ctrl-C and SIGTERM and stops its workers itself; a signal to the
    # whole process group must not turn the work in progress into a failed check.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if memory:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    backstop = int(timeout) + _BACKSTOP
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the daemon is gone or closed the pipe
        signal.alarm(backstop)
        out_of_memory = False
        try:
            function, args = pickle.loads(message)
            del message
            reply = pickle.dumps(("ok", function(*args), ""), pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            out_of_memory = True
            reply = pickle.dumps(("memory", "", ""))
        except RecursionError as err:
            reply = pickle.dumps(("error", _describe(err), ""))
        except Exception as err:
            reply = pickle.dumps(("error", _describe(err), traceback.format_exc()))
        signal.alarm(0)
        try:
            conn.send_bytes(reply)
        except OSError:
            return
        if out_of_memory:
            # Whatever ran out may have left half-built state behind: start afresh.
            os._exit(0)


# --- the work itself (module-level, so that a worker finds it by name) ---------------------


def read_answer(
    profile: Any,
    result: Any,
    target: Any,
    body_sha256: str | None = None,
    documents_read: bool = False,
) -> tuple[Any, dict[str, bytes]]:
    """A profile's extraction of one answer (`Profile.extract`), and the blobs its versions
    would store, compressed (by the SHA-256 of their bytes). The statements' canonical
    JSON and hashes are worked out here, in the worker, and travel back with them: for a
    big page they cost the event loop tens of milliseconds each time they are asked for.

    With `body_sha256` (the answer's hash: the caller archives what it reads), the
    statements' JSON and the answer's body are also compressed here, on the worker's core
    rather than the daemon's: a page's new versions store them (most of a first sweep). An
    answer whose statements did not change wastes that compression (0.2 ms a 30 KB page
    at the archive's level, against the several ms of its extraction).

    `documents_read`: the daemon reads the statements' attachments in (monitor/
    attachments.py), which gives a statement that links to files other bytes; such a
    statement is not compressed here (the body and the others still are: a statement with
    no attachment links stays as read, and its blob is compressed here rather than on the
    daemon's core)."""
    extraction = profile.extract(result, target)
    compressed: dict[str, bytes] = {}
    for statement in extraction.statements:
        if body_sha256 is not None and not (documents_read and statement.attachments):
            compressed[statement.sha256] = compress(statement.to_json())
        else:
            statement.sha256  # noqa: B018 (cached on the statement, pickled with it)
    if body_sha256 is not None and extraction.statements and not extraction.problem:
        compressed[body_sha256] = compress(result.body)
    return extraction, compressed


def statement_hashes(
    profile: Any, result: Any, target: Any, files: dict[str, Any] | None = None
) -> dict[str, str] | None:
    """The text hashes of the statements a stored answer gives under a profile's current
    reading; None when it gives none (then nothing is excused, see `Checker._changes`).
    `files`: by key, the documents the statement had (monitor/attachments.py): a page
    read again carries its files as they were, so only what the rules explain is excused."""
    from dataclasses import replace

    extraction = profile.extract(result, target)
    if extraction.problem:
        return None
    files = files or {}
    return {
        statement.key: (
            replace(statement, documents=files[statement.key])
            if statement.key in files
            else statement
        ).sha256
        for statement in extraction.statements
    }
