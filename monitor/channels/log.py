"""Console/log channel: the alert as text on standard output and in the log."""

from __future__ import annotations

import logging
import sys
from typing import Any

from monitor.channels.base import Channel
from monitor.channels.message import render_text

logger = logging.getLogger("monitor.alert")


class LogChannel(Channel):
    type = "log"
    default_max_length = 20000

    async def send(self, payload: dict[str, Any]) -> None:
        text = render_text(payload, self.max_length)
        logger.info("alert %s %s: %s", payload["kind"], payload["watch"], payload["summary"])
        sys.stdout.write(f"\n{text}\n")
        sys.stdout.flush()
