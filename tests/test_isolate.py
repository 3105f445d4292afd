"""The worker pool while it starts: work given before its workers are up waits for them."""

from __future__ import annotations

import asyncio
import functools
import operator
import os
import time

from monitor.isolate import WorkerPool


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
