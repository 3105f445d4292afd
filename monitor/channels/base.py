"""The channel interface: take an alert payload, deliver it or raise ChannelError."""

from __future__ import annotations

import asyncio
import builtins
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from monitor.channels.message import (
    TemplateProblem,
    compile_template,
    default_template,
    render,
    render_user,
)
from monitor.config import ChannelConfig

if TYPE_CHECKING:  # Jinja2 itself is imported when a message is first rendered
    from jinja2 import Template

logger = logging.getLogger("monitor.channels")


class ChannelError(Exception):
    """Delivery failed; the outbox will retry."""


class Channel:
    registry: ClassVar[dict[str, builtins.type[Channel]]] = {}
    type: ClassVar[str] = ""
    # Longest message the channel's receivers take; longer diffs are cut with a link.
    default_max_length: ClassVar[int] = 4000
    # The messages `send` renders: text (False) and/or HTML (True).
    formats: ClassVar[tuple[bool, ...]] = (False,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            Channel.registry[cls.type] = cls

    def __init__(self, name: str, config: ChannelConfig) -> None:
        self.name = name
        self.config = config
        self.max_length = config.max_length or self.default_max_length
        # The user's templates, or why they cannot be used (then the default template is).
        self._templates: dict[bool, Template | TemplateProblem | None] = {
            html: self._compile(html) for html in (False, True)
        }
        # Messages rendered ahead of `send`, by payload (see `render_ahead`).
        self._ahead: dict[int, tuple[dict[str, Any], dict[bool, str]]] = {}

    @classmethod
    def create(cls, name: str, config: ChannelConfig) -> Channel:
        return cls.registry[config.type](name, config)

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        """Deliver one message. `delivery_id` lets receivers drop a repeat after a crash."""
        raise NotImplementedError

    async def render_ahead(self, payload: dict[str, Any]) -> None:
        """Render the messages `send` will need for `payload` in a worker thread: a user's
        template may take up to its time limit (monitor.channels.message.RENDER_SECONDS),
        which the event loop must not wait out. Until `forget`, `text` and `html` of this
        very payload answer from what was rendered here."""
        rendered = await asyncio.to_thread(
            lambda: {html: self._render(payload, html) for html in self.formats}
        )
        self._ahead[id(payload)] = (payload, rendered)

    def forget(self, payload: dict[str, Any]) -> None:
        self._ahead.pop(id(payload), None)

    def text(self, payload: dict[str, Any]) -> str:
        return self._render(payload, html=False)

    def html(self, payload: dict[str, Any]) -> str:
        return self._render(payload, html=True)

    def template_problems(self, payload: dict[str, Any]) -> list[str]:
        """What is wrong with the user's templates when rendering `payload` (for a setup test)."""
        problems = []
        for html, template in self._templates.items():
            try:
                if isinstance(template, TemplateProblem):
                    raise template
                if template is not None:
                    render_user(template, payload, self.max_length, html)
            except TemplateProblem as err:
                problems.append(f"{self._template_key(html)}: {err}")
        return problems

    def _render(self, payload: dict[str, Any], html: bool) -> str:
        ahead = self._ahead.get(id(payload))
        if ahead is not None and ahead[0] is payload and html in ahead[1]:
            return ahead[1][html]
        template = self._templates[html]
        if template is not None and not isinstance(template, TemplateProblem):
            try:
                return render_user(template, payload, self.max_length, html)
            except TemplateProblem as err:
                # A bad template must never cost an alert: say so loudly, send the default.
                logger.error(
                    "channel %s: %s failed, sending with the default template: %s",
                    self.name,
                    self._template_key(html),
                    err,
                )
        return render(default_template(html), payload, self.max_length, html)

    def _compile(self, html: bool) -> Template | TemplateProblem | None:
        try:
            source = self.config.template_source(html=html)
            return None if source is None else compile_template(source, html)
        except (TemplateProblem, ValueError) as err:
            # The config check parsed it; the file may have changed since.
            logger.error("channel %s: %s unusable: %s", self.name, self._template_key(html), err)
            return err if isinstance(err, TemplateProblem) else TemplateProblem(str(err))

    @staticmethod
    def _template_key(html: bool) -> str:
        return "html_template" if html else "template"
