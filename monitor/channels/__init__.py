"""Alert channels. Adding a channel kind is one file here that subclasses `Channel`."""

from monitor.channels import apprise_channel, log, smtp, webhook
from monitor.channels.base import Channel, ChannelError

__all__ = ["Channel", "ChannelError", "apprise_channel", "log", "smtp", "webhook"]
