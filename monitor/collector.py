"""The cyclic garbage collector held off for a bulk of allocations that are no garbage (a
config of 100,000 watches, a daemon's timetable), which it then leaves alone (`gc.freeze`):
otherwise its passes walk them all, and again as they age. A leaf: imports nothing of
monitor's."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
