"""The worker pool while it starts: work given before its workers are up waits for them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import operator
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import psutil

from monitor.isolate import WorkerPool
from tests.conftest import REPO


def test_work_given_while_the_pool_starts_gets_its_own_answer() -> None:
    """The daemon's checks start without waiting for the pool (wiring.Runtime.checking):
    work given while the workers start and warm up (here a warm-up of half a second each)
    runs once its worker is up, one call at a time on a worker's pipe, so that no answer
    goes to another's call."""

    async def scenario() -> None:
        pool = WorkerPool(2, timeout=30)
        try:
            starting = asyncio.ensure_future(
                asyncio.to_thread(pool.start, functools.partial(time.sleep, 0.5))
            )
            answers = await asyncio.gather(*(pool.run(operator.mul, n, 1000) for n in range(6)))
            assert answers == [n * 1000 for n in range(6)]
            await starting
            workers = set(await asyncio.gather(*(pool.run(os.getpid) for _ in range(4))))
            assert os.getpid() not in workers and len(workers) <= 2
            assert await pool.run(operator.add, 2, 3) == 5
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_pool_closed_while_it_starts_stops_its_work() -> None:
    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        starting = asyncio.ensure_future(
            asyncio.to_thread(pool.start, functools.partial(time.sleep, 5))
        )
        await asyncio.sleep(0.2)
        pool.close()
        await starting  # the warm-up's worker is killed: the start ends, without raising
        try:
            await pool.run(operator.add, 1, 1)
        except Exception as err:
            assert "monitor is stopping" in str(err)
        else:
            raise AssertionError("a closed pool ran work")

    asyncio.run(scenario())


def test_work_a_caller_gave_up_is_skipped_or_stopped_and_the_pool_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Each worker's thread takes the next work from the queue itself: work whose caller
    was cancelled before a worker took it never runs; work cancelled while it runs has its
    worker killed; the work after both gets its answer. Work still queued at `close` fails
    with "monitor is stopping" rather than leaving its caller waiting."""
    marker = tmp_path / "ran"

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            before = await pool.run(os.getpid)
            running = asyncio.ensure_future(pool.run(time.sleep, 30))
            await asyncio.sleep(0.5)  # the worker is busy with the long sleep
            queued = asyncio.ensure_future(pool.run(marker.write_text, "x"))
            await asyncio.sleep(0.1)
            queued.cancel()
            running.cancel()  # kills the worker: the sleep does not hold the pool 30 s
            for gone in (queued, running):
                with contextlib.suppress(asyncio.CancelledError):
                    await gone
            assert await pool.run(os.getpid) != before  # a new worker, the old one killed
            assert await pool.run(operator.add, 2, 3) == 5
            assert not marker.exists()
            waiting = [asyncio.ensure_future(pool.run(time.sleep, 30)) for _ in range(2)]
            await asyncio.sleep(0.5)
        finally:
            pool.close()
        for future in waiting:
            try:
                await future
            except Exception as err:
                assert "stopping" in str(err) or "killed" in str(err) or "ended" in str(err), err
            else:
                raise AssertionError("work ran on after close")

    asyncio.run(scenario())


def _wait_for(started: Path, go: Path) -> str:
    """In a worker: say it runs, then wait for the test's word."""
    started.write_text("x")
    while not go.exists():
        time.sleep(0.01)
    return "done"


def test_a_caller_gone_after_its_work_ended_does_not_kill_the_next_work(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The worker's thread hands a result to the caller's event loop and takes the next
    work at once: a caller cancelled after its work ended, before its loop saw the
    result, must not have the worker killed under the next caller's work."""
    started, go = tmp_path / "started", tmp_path / "go"

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            await pool.run(os.getpid)  # the worker is up
            first = asyncio.ensure_future(pool.run(operator.add, 1, 1))
            second = asyncio.ensure_future(pool.run(_wait_for, started, go))
            await asyncio.sleep(0)  # both are queued
            # The event loop is busy (blocked here) while the worker ends the first work,
            # hands its result over and starts on the second.
            while not started.exists():
                time.sleep(0.01)
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            go.write_text("x")
            assert await second == "done"
        finally:
            pool.close()

    asyncio.run(scenario())


class _Page:
    """Stands for a page given to a worker (a weak reference tells whether it is kept)."""


def test_an_idle_worker_keeps_no_page_it_read() -> None:
    """A worker's thread waiting for its next work keeps nothing of the last: a page
    of 18 MB, its reading, would otherwise stay in memory until the next work."""

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            page = _Page()
            kept = weakref.ref(page)
            assert await pool.run(type, page) is _Page
            del page
            gc.collect()
            assert kept() is None
        finally:
            pool.close()

    asyncio.run(scenario())


def test_work_cancelled_while_its_worker_warms_up_never_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Work a worker's thread took while its worker was still busy (the pool's start
    warming it up), cancelled before it reached the worker: the worker is killed, and the
    work must not then run on the fresh worker forked in its place."""
    started, go, marker = tmp_path / "started", tmp_path / "go", tmp_path / "ran"

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            warm_up = functools.partial(_wait_for, started, go)
            starting = asyncio.ensure_future(asyncio.to_thread(pool.start, warm_up))
            while not started.exists():  # the worker is busy warming up
                await asyncio.sleep(0.01)
            queued = asyncio.ensure_future(pool.run(marker.write_text, "x"))
            await asyncio.sleep(0.5)  # its thread took it, and waits for the warm-up
            queued.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await queued
            await starting  # the warm-up's worker was killed: the start ends
            assert await pool.run(operator.add, 2, 3) == 5
            assert not marker.exists()
        finally:
            pool.close()

    asyncio.run(scenario())


class _QueueClosedMeanwhile:
    """The pool's work queue, where a piece of work is put only after the pool's `close`
    (called from another thread as it is being put) has run to its end, or after a second
    if `close` cannot go on meanwhile: the interleaving in which a work put after `close`
    drained the queue would wait for ever."""

    def __init__(self, pool: WorkerPool) -> None:
        import queue
        import threading

        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pool = pool
        self.closed = threading.Event()

    def put(self, item: object) -> None:
        import threading

        if item is not None:
            closing = threading.Thread(target=lambda: (self._pool.close(), self.closed.set()))
            closing.start()
            self.closed.wait(1.0)
        self._queue.put(item)

    def get(self) -> object:
        return self._queue.get()

    def get_nowait(self) -> object:
        return self._queue.get_nowait()


def test_work_given_as_the_pool_closes_in_another_thread_is_answered() -> None:
    """`run` and `close` in two threads: the work is either run or told that monitor is
    stopping; it never waits for ever in a queue no thread reads any more."""

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        meanwhile = _QueueClosedMeanwhile(pool)
        pool._work = meanwhile  # type: ignore[assignment]
        try:  # run before the close, or told that monitor is stopping: either is an answer
            assert await asyncio.wait_for(pool.run(operator.add, 1, 1), timeout=10) == 2
        except TimeoutError:
            raise AssertionError("work given as the pool closed was never answered") from None
        except Exception as err:
            assert "monitor is stopping" in str(err)
        assert await asyncio.to_thread(meanwhile.closed.wait, 10)


def test_a_worker_that_died_while_idle_is_replaced_before_the_next_work() -> None:
    """A worker killed between two pieces of work (the kernel's out-of-memory killer, an
    operator) is seen to have ended when the next work comes: a new one is forked for it,
    and the work does not fail for the death of a worker that was not running it."""

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            first = await pool.run(os.getpid)
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while psutil.pid_exists(first) and psutil.Process(first).status() != "zombie":
                assert time.monotonic() < deadline, "the worker did not die"
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # its sentinel tells of its end
            second = await pool.run(os.getpid)
            assert second != first
            assert await pool.run(operator.add, 2, 3) == 5
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_worker_starts_with_the_reading_of_a_page_loaded_and_no_more() -> None:
    """Workers are forked from a forkserver that has imported and warmed up the reading of
    a statement's page (isolate_preload.py), so that none spends its first page on it; and
    that warm-up is all the forkserver does before the first worker can fork: not asyncio
    (the daemon's side of the pool), nor what only some pages or watches need (bs4 for a
    page with no article, the `regex` module for `ignore` rules). What a worker has loaded
    is looked at by `eval` in the worker, where a function of this module would import
    the module (and asyncio with it) first."""
    loaded = "sorted(__import__('sys').modules)"

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            modules = set(await pool.run(eval, loaded))
        finally:
            pool.close()
        preloaded = {"monitor.sites", "monitor.learned", "trafilatura", "lxml.html", "zstandard"}
        not_preloaded = {"asyncio", "bs4", "soupsieve", "regex"}
        missing, needless = sorted(preloaded - modules), sorted(not_preloaded & modules)
        assert (missing, needless) == ([], [])

    asyncio.run(scenario())


def test_the_warm_up_page_is_read_as_an_article() -> None:
    """The warm-up reads its page as statements are read (trafilatura's article), not as
    a page with no article (bs4's block scoring), or it warms the wrong reading."""
    from monitor.isolate_preload import _URL, reading
    from monitor.sites import get_profile
    from monitor.sites.generic import _SHORT_TEXT

    extraction = get_profile("generic", _URL).extract(*reading())
    assert extraction.problem is None
    [statement] = extraction.statements
    assert statement.title == "Warm-up statement"
    assert sum(map(len, statement.paragraphs)) >= _SHORT_TEXT


def test_what_the_caller_prepares_meanwhile_is_made_once_at_the_first_work() -> None:
    """`meanwhile` (the check's archive, see wiring.Runtime.checking) is made when the
    first work is given, in the caller's thread while the worker starts, and only then;
    its failure is not the work's."""
    made: list[int] = []

    def meanwhile() -> None:
        made.append(threading.get_ident())
        raise RuntimeError("the caller's own use of it will say so")

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30, meanwhile=meanwhile)
        try:
            assert made == []
            assert await pool.run(operator.add, 2, 3) == 5
            assert made == [threading.get_ident()]
            assert await pool.run(operator.add, 3, 4) == 7
            assert made == [threading.get_ident()]
        finally:
            pool.close()

    asyncio.run(scenario())


def test_the_forkserver_ends_without_tearing_its_modules_down() -> None:
    """What isolate_server.py's import does to the process that imports it (the forkserver,
    last of its preload): at its end, what atexit ran before the import was registered
    (multiprocessing's, Python's teardown) does not run; what was registered after does;
    its output is flushed and it ends with 0. A child it forks and that ends by Python's
    exit ends as usual."""
    code = (
        "import atexit, os, sys\n"
        "atexit.register(print, 'registered before: not run')\n"
        "import monitor.isolate_server\n"
        "atexit.register(print, 'registered after: run')\n"
        "if len(sys.argv) > 1:\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        atexit.register(print, 'the child ends as usual')\n"
        "        sys.exit(5)\n"
        "    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
        "sys.stdout.write('buffered ')\n"
        "sys.exit(3)\n"
    )
    alone = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (alone.returncode, alone.stdout) == (0, "buffered registered after: run\n")
    forked = subprocess.run(
        [sys.executable, "-c", code, "fork"], cwd=REPO, capture_output=True, text=True
    )
    assert forked.returncode == 0
    assert forked.stdout.splitlines() == [
        "the child ends as usual",
        "registered after: run",
        "registered before: not run",
        "5",
        "buffered registered after: run",
    ]


def test_work_whose_caller_gave_up_leaves_no_unretrieved_error(caplog) -> None:  # type: ignore[no-untyped-def]
    """A check cancelled while its page is read (shutdown, a hung check): its worker is
    killed and the work ends in an error that nobody waits for. It is not logged as
    "Future exception was never retrieved", an error in the daemon's log for each."""

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            running = asyncio.ensure_future(pool.run(time.sleep, 5))
            await asyncio.sleep(0.5)
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            assert await pool.run(operator.add, 1, 1) == 2  # the killed work has ended
            del running
            gc.collect()
        finally:
            pool.close()

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(scenario())
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_the_pool_starts_no_resource_tracker() -> None:
    """The forkserver and its workers run with no resource tracker process beside them
    (multiprocessing's, a Python process of its own at every start): the workers make no
    semaphore or shared memory for it to clean up. Work still runs and is answered. In a
    process of its own: a tracker another test started would be left running."""
    code = (
        "import asyncio, operator, psutil\n"
        "from monitor.isolate import WorkerPool\n"
        "async def main():\n"
        "    pool = WorkerPool(2, timeout=30)\n"
        "    try:\n"
        "        print(await pool.run(operator.add, 2, 3))\n"
        "        for child in psutil.Process().children(recursive=True):\n"
        "            print(' '.join(child.cmdline()))\n"
        "    finally:\n"
        "        pool.close()\n"
        "if __name__ == '__main__':\n"
        "    asyncio.run(main())\n"
    )
    answer, *children = _python(code).splitlines()
    assert answer == "5"
    assert any("multiprocessing.forkserver" in child for child in children), children
    assert not [child for child in children if "resource_tracker" in child]


def test_a_worker_starts_with_the_preload_frozen_and_its_collector_on() -> None:
    """The forkserver imports and warms up the reading with the cyclic collector held off,
    and leaves what it loaded to the collector no more (frozen) before it forks a worker:
    the worker's collector is on, with that much frozen; a process that imports the
    preload for itself (these tests) has its collector as it was."""
    looked_at = "(__import__('gc').isenabled(), __import__('gc').get_freeze_count())"

    async def scenario() -> None:
        pool = WorkerPool(1, timeout=30)
        try:
            enabled, frozen = await pool.run(eval, looked_at)
        finally:
            pool.close()
        assert enabled
        assert frozen > 10_000  # the modules of the reading: trafilatura, lxml, monitor's

    asyncio.run(scenario())
    code = (
        "import gc, sys\n"
        "import monitor.isolate_preload\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
        "gc.disable()\n"
        "del sys.modules['monitor.isolate_preload']\n"
        "import monitor.isolate_preload\n"
        "print(gc.isenabled())\n"
    )
    assert _python(code).split() == ["True", "0", "False"]


def test_a_preload_that_fails_to_import_leaves_the_collector_on() -> None:
    """multiprocessing's forkserver goes on without a preloaded module whose import raises
    ImportError (its `main` passes over it), and forks the workers from what it has: the
    preload holds the collector off while it imports, and must give it back on that way
    out too, or the forkserver and every worker forked from it would never collect a
    cycle again (a worker reading page after page would grow until its memory limit).
    Here the import of charset_normalizer, one of the preload's, fails."""
    code = (
        "import gc, sys\n"
        "sys.modules['charset_normalizer'] = None\n"
        "try:\n"
        "    import monitor.isolate_preload\n"
        "except ImportError:\n"
        "    print('failed', gc.isenabled())\n"
    )
    assert _python(code).split() == ["failed", "True"]


def _python(code: str) -> str:
    """What `code` run by Python in a process of its own prints (it must end well)."""
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout
