"""Work through many items a few at a time per host, so a slow site never holds up the
others: each host gets workers of its own that share its line, not a task per item."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from monitor.config import MonitorConfig

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# Checks of one host in progress at once (the fetcher's per-host limit applies inside): more
# that fall due together wait before they start, holding nothing but their place in line.
# Per host, so a slow site never holds up the others' checks. Enough for many pages of one
# site to sit in their confirmation delay at once. 10,000 checks queued at the fetcher held
# 60 MiB in a daemon; in `monitor check` a task each cost 0.07 ms of CPU per check.
ADMIT_PER_HOST = 64


def admitted_per_host(config: MonitorConfig) -> int:
    """How many checks of one host may be in progress at once (see `ADMIT_PER_HOST`)."""
    return max(ADMIT_PER_HOST, 4 * config.fetch.per_host_concurrency)


async def per_host(
    items: Sequence[Item],
    host: Callable[[Item], str],
    workers_per_host: int,
    work: Callable[[Item], Awaitable[Outcome]],
) -> list[Outcome]:
    """`work` on each item, at most `workers_per_host` at once per host; outcomes in the
    items' order."""
    outcomes: list[Outcome | None] = [None] * len(items)
    by_host: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_host.setdefault(host(item), []).append(index)

    async def worker(line: Iterator[int]) -> None:
        for index in line:
            outcomes[index] = await work(items[index])

    workers = []
    for indexes in by_host.values():
        line = iter(indexes)  # shared by the host's workers
        workers += [worker(line) for _ in range(min(len(indexes), workers_per_host))]
    await asyncio.gather(*workers)
    return [outcome for outcome in outcomes if outcome is not None]
