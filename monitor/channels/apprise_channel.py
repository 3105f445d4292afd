"""Apprise: email, Telegram, Slack, Matrix, Discord, ntfy, … through one well-kept library."""

from __future__ import annotations

from typing import Any, Literal

from monitor.channels.base import Channel, ChannelError, UrlSettings
from monitor.channels.message import subject


class AppriseSettings(UrlSettings):
    type: Literal["apprise"]


class AppriseChannel(Channel):
    type = "apprise"
    settings = AppriseSettings
    config: AppriseSettings
    # Telegram caps messages at 4096 characters, the tightest of the common targets.
    default_max_length = 4000

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        url = self.config.target(self.name)
        import apprise  # here, not at the top: importing it costs every process ~0.1 s

        notifier = apprise.Apprise()
        if not notifier.add(url):
            # Never echo the URL: it usually carries a token.
            raise ChannelError(f"channel {self.name}: Apprise does not understand the URL")
        ok = await notifier.async_notify(body=self.text(payload), title=subject(payload))
        if not ok:
            raise ChannelError(f"channel {self.name}: Apprise delivery failed")
