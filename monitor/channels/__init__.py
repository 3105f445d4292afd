"""Alert channels. Adding a channel kind is one file here — a `Channel` subclass with its own
`ChannelSettings` — and one line in `CHANNELS`."""

from monitor.channels.apprise_channel import AppriseChannel, AppriseSettings
from monitor.channels.base import Channel, ChannelError, ChannelSettings
from monitor.channels.log import LogChannel, LogSettings
from monitor.channels.smtp import EmailChannel, EmailSettings
from monitor.channels.webhook import WebhookChannel, WebhookSettings

# Every channel kind, in the order the configuration's errors name them.
CHANNELS: tuple[type[Channel], ...] = (LogChannel, WebhookChannel, AppriseChannel, EmailChannel)

__all__ = [
    "CHANNELS",
    "AppriseSettings",
    "Channel",
    "ChannelError",
    "ChannelSettings",
    "EmailSettings",
    "LogSettings",
    "WebhookSettings",
]
