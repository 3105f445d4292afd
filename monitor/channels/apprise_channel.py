"""Apprise: email, Telegram, Slack, Matrix, Discord, ntfy, … through one well-kept library."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import model_validator

from monitor.channels.base import Channel, ChannelError, ChannelSettings
from monitor.channels.message import subject


class AppriseSettings(ChannelSettings):
    type: Literal["apprise"]
    url: str | None = None
    # The URL from the environment instead (tokens stay out of files).
    url_env: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> AppriseSettings:
        if not (self.url or self.url_env):
            raise ValueError("a apprise channel needs 'url' (or 'url_env')")
        return self

    def resolved_url(self) -> str | None:
        """The URL, taken from the environment when `url_env` is used."""
        if self.url_env:
            return os.environ.get(self.url_env)
        return self.url


class AppriseChannel(Channel):
    type = "apprise"
    settings = AppriseSettings
    config: AppriseSettings
    # Telegram caps messages at 4096 characters, the tightest of the common targets.
    default_max_length = 4000

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        url = self.config.resolved_url()
        if not url:
            raise ChannelError(f"channel {self.name}: ${self.config.url_env} is not set")
        import apprise  # here, not at the top: importing it costs every process ~0.1 s

        notifier = apprise.Apprise()
        if not notifier.add(url):
            # Never echo the URL: it usually carries a token.
            raise ChannelError(f"channel {self.name}: Apprise does not understand the URL")
        ok = await notifier.async_notify(body=self.text(payload), title=subject(payload))
        if not ok:
            raise ChannelError(f"channel {self.name}: Apprise delivery failed")
