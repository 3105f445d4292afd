"""A daemon's background work done in rounds (trusted timestamps, Save Page Now): a round,
a pause, again, until cancelled — and a bug in one round never stops the daemon."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any


async def in_rounds(
    round_: Callable[[], Awaitable[Any]],
    pause: Callable[[], float],
    logger: logging.Logger,
    what: str,
) -> None:
    """Run `round_` every `pause()` seconds (read anew each time: a reload may change it)."""
    while True:
        try:
            await round_()
        except asyncio.CancelledError:
            raise
        except Exception:  # never let a bug here stop the daemon
            logger.exception("%s crashed; trying again later", what)
        await asyncio.sleep(pause())
