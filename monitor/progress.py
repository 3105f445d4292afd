"""Progress of long command-line work (`export`, `verify`, a first `check` of hundreds of
statements): a bar on a terminal (rich), plain lines otherwise.

The command opens it (`shown`) around the work; the work ticks it (`tick`, `expect`)
wherever it is, without knowing whether anyone watches: outside `shown` both do nothing,
so the daemon, the web UI and the tests that call the same functions pay nothing for it.
Plain lines (a log or a pipe) come at each tenth of the work, and only for work of at least
`PLAIN_FROM` items: a short run stays as quiet as before.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

# Work this small prints no plain lines (on a terminal the bar shows anyway).
PLAIN_FROM = 100


class _Plain:
    """Lines such as `export: 300 of 1000 versions (30%)`, at each tenth of the work."""

    def __init__(self, stream: IO[str], what: str, unit: str) -> None:
        self.stream, self.what, self.unit = stream, what, unit
        self.total = 0
        self.done = 0
        self._told = 0  # tenths told
        self._next = math.inf  # the count at which the next tenth is told

    def expect(self, total: int) -> None:
        self.total = total
        self._plan()

    def advance(self, count: int) -> None:
        # Once per check of `monitor check`: a comparison unless a line is due.
        self.done += count
        if self.done >= self._next:
            self._tell()

    def _tell(self) -> None:
        self._told = min(10, self.done * 10 // self.total)
        share = min(100, self.done * 100 // self.total)
        print(
            f"{self.what}: {self.done} of {self.total} {self.unit} ({share}%)",
            file=self.stream,
            flush=True,
        )
        self._plan()

    def _plan(self) -> None:
        """The count at which the next tenth is reached (none for short work)."""
        if self.total < PLAIN_FROM or self._told >= 10:
            self._next = math.inf
        else:  # the least count whose tenths exceed those told
            self._next = -(-(self._told + 1) * self.total // 10)

    def close(self) -> None:
        pass


class _Bar:
    """rich's bar on the terminal, cleared when the work ends."""

    def __init__(self, stream: IO[str], what: str, unit: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn(f"{what}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self.task = self.progress.add_task(what, total=None)
        self.progress.start()

    def expect(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)

    def close(self) -> None:
        self.progress.stop()


_current: ContextVar[_Plain | _Bar | None] = ContextVar("monitor_progress", default=None)


@contextmanager
def shown(
    what: str, unit: str, total: int | None = None, stream: IO[str] | None = None
) -> Iterator[None]:
    """Show the progress of the work inside: `what` names it ("export"), `unit` counts it
    ("versions"); `total` when known up front (else the work says, `expect`)."""
    stream = stream or sys.stderr
    shown: _Plain | _Bar = (
        _Bar(stream, what, unit) if _is_terminal(stream) else _Plain(stream, what, unit)
    )
    if total is not None:
        shown.expect(total)
    token = _current.set(shown)
    try:
        yield
    finally:
        _current.reset(token)
        shown.close()


def expect(total: int) -> None:
    """The work in progress has `total` items in all (more may be added: `expect_more`)."""
    current = _current.get()
    if current is not None:
        current.expect(total)


def expect_more(count: int) -> None:
    current = _current.get()
    if current is not None:
        current.expect(current_total(current) + count)


def tick(count: int = 1) -> None:
    """`count` more items of the work in progress are done."""
    current = _current.get()
    if current is not None:
        current.advance(count)


def current_total(current: Any) -> int:
    if isinstance(current, _Plain):
        return current.total
    task = current.progress.tasks[0]
    return int(task.total or 0)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
