"""The channel interface: take an alert payload, deliver it or raise ChannelError.

A channel kind is a `Channel` subclass with its `type` and its own `settings`, a
`ChannelSettings` model with `type: Literal["..."]`: `[channels.NAME]` in the
configuration is read as the settings its `type` names (monitor.config).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from monitor.channels.message import (
    TemplateProblem,
    compile_template,
    default_template,
    render,
    render_user,
)
from monitor.settings import Duration, RateLimit, Strict, TemplateText, parse_rate, parse_template

if TYPE_CHECKING:  # Jinja2 itself is imported when a message is first rendered
    from jinja2 import Template

logger = logging.getLogger("monitor.channels")


class ChannelError(Exception):
    """Delivery failed; the outbox will retry."""


class ChannelSettings(Strict):
    """What every channel has: its type, a timeout, a length budget, a user's template
    and a rate limit. A channel kind's own settings derive from this one."""

    type: str
    timeout: Duration = 15.0
    max_length: int | None = Field(default=None, gt=200)
    # A user's own Jinja2 template (sandboxed) instead of the default message.
    template: TemplateText | None = None
    template_file: Path | None = None
    # The HTML part's own template: email only (refused elsewhere, as more than a typo).
    html_template: TemplateText | None = None
    html_template_file: Path | None = None
    # At most N messages per period ("10/h"); the excess waits in the outbox.
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _templates_parse(self) -> ChannelSettings:
        if self.type != "email" and (self.html_template or self.html_template_file):
            raise ValueError("'html_template' is for email channels (the HTML part)")
        for html in (False, True):
            source = self.template_source(html=html)
            file = self._template_fields(html)[1]
            if file is not None:
                parse_template(source, f"{file}: ")
        return self

    def _template_fields(self, html: bool) -> tuple[str | None, Path | None]:
        """The inline template and the template file, of the text (or HTML) message."""
        if html:
            return self.html_template, self.html_template_file
        return self.template, self.template_file

    def template_source(self, html: bool = False) -> str | None:
        """The user's template text (inline or from its file), or None for the default."""
        inline, file = self._template_fields(html)
        if inline is not None and file is not None:
            prefix = "html_" if html else ""
            raise ValueError(f"set '{prefix}template' or '{prefix}template_file', not both")
        if file is None:
            return inline
        try:
            return file.read_text(encoding="utf-8")
        except OSError as err:
            raise ValueError(f"cannot read template file {file}: {err.strerror}") from None

    def rate(self) -> tuple[int, float] | None:
        return parse_rate(self.rate_limit) if self.rate_limit else None


class UrlSettings(ChannelSettings):
    """The settings of a channel that sends to one URL: written in the file, or the name
    of an environment variable holding it (URLs often carry tokens, which stay out of
    files)."""

    url: str | None = None
    url_env: str | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> UrlSettings:
        if not (self.url or self.url_env):
            raise ValueError(f"a {self.type} channel needs 'url' (or 'url_env')")
        return self

    def resolved_url(self) -> str | None:
        """The URL, taken from the environment when `url_env` is used."""
        if self.url_env:
            return os.environ.get(self.url_env)
        return self.url

    def target(self, channel: str) -> str:
        """The URL to send to; a ChannelError (retried from the outbox) while the
        environment variable it is read from is not set."""
        url = self.resolved_url()
        if not url:
            raise ChannelError(f"channel {channel}: ${self.url_env} is not set")
        return url


class Channel:
    type: ClassVar[str] = ""
    # (`builtins.type`: inside the class, `type` is the attribute above.)
    settings: ClassVar[builtins.type[ChannelSettings]] = ChannelSettings
    registry: ClassVar[dict[str, builtins.type[Channel]]] = {}
    # Longest message the channel's receivers take; longer diffs are cut with a link.
    default_max_length: ClassVar[int] = 4000
    # The messages `send` renders: text (False) and/or HTML (True).
    formats: ClassVar[tuple[bool, ...]] = (False,)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            Channel.registry[cls.type] = cls

    def __init__(self, name: str, config: ChannelSettings) -> None:
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
    def create(cls, name: str, config: ChannelSettings) -> Channel:
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
