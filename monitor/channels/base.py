"""The channel interface: take an alert payload, deliver it or raise ChannelError."""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.config import ChannelConfig


class ChannelError(Exception):
    """Delivery failed; the outbox will retry."""


class Channel:
    type: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Channel]]] = {}
    # Longest message the channel's receivers take; longer diffs are cut with a link.
    default_max_length: ClassVar[int] = 4000

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            Channel.registry[cls.type] = cls

    def __init__(self, name: str, config: ChannelConfig) -> None:
        self.name = name
        self.config = config
        self.max_length = config.max_length or self.default_max_length

    @classmethod
    def create(cls, name: str, config: ChannelConfig) -> Channel:
        return cls.registry[config.type](name, config)

    async def send(self, payload: dict[str, Any]) -> None:
        raise NotImplementedError
