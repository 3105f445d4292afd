"""Console/log channel: the alert as text on standard output and in the log."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

from monitor.channels.base import Channel, ChannelSettings

logger = logging.getLogger("monitor.alert")


class LogSettings(ChannelSettings):
    type: Literal["log"]


class LogChannel(Channel):
    type = "log"
    settings = LogSettings
    default_max_length = 20000

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        text = self.text(payload)
        logger.info("alert %s %s: %s", payload["kind"], payload["watch"], payload["summary"])
        sys.stdout.write(f"\n{text}\n")
        sys.stdout.flush()
