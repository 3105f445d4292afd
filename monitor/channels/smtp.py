"""Email over SMTP: a plain-text part and an HTML part with the word diff inline.

TLS unless switched off: STARTTLS by default (port 587), implicit TLS with `ssl = true`
(port 465). A server that does not offer STARTTLS is an error, never a silent fallback to
clear text. The password comes from the environment or a file and is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from monitor.channels.base import Channel, ChannelError, ChannelSettings
from monitor.channels.message import subject
from monitor.settings import read_secret

logger = logging.getLogger("monitor.channels")


class EmailSettings(ChannelSettings):
    """Email over SMTP. TLS is the default: STARTTLS, or implicit TLS with ssl = true."""

    type: Literal["email"]
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    starttls: bool | None = None
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _needs_target(self) -> EmailSettings:
        missing = [k for k, v in (("host", self.host), ("from", self.sender)) if not v]
        if missing or not self.to:
            raise ValueError("an email channel needs 'host', 'from' and 'to'")
        if self.ssl and self.starttls:
            raise ValueError("'ssl' (implicit TLS) and 'starttls' exclude each other")
        return self

    @property
    def use_starttls(self) -> bool:
        return not self.ssl if self.starttls is None else self.starttls

    @property
    def smtp_port(self) -> int:
        return self.port or (465 if self.ssl else 587 if self.use_starttls else 25)

    def password(self) -> str | None:
        return read_secret(self.password_env, self.password_file)


class EmailChannel(Channel):
    type = "email"
    settings = EmailSettings
    config: EmailSettings
    formats = (False, True)
    # Mail has no hard limit; this keeps a thousand-change edit readable.
    default_max_length = 100_000

    def message(self, payload: dict[str, Any], delivery_id: str | None = None) -> EmailMessage:
        config = self.config
        message = EmailMessage()
        message["Subject"] = subject(payload)
        message["From"] = config.sender
        message["To"] = ", ".join(config.to)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        # The same Message-ID on a resend after a crash lets mail clients fold the repeat.
        domain = (config.sender or "monitor").rpartition("@")[2] or "monitor"
        if delivery_id:
            message["Message-ID"] = f"<monitor-delivery-{delivery_id.replace(',', '.')}@{domain}>"
        else:
            message["Message-ID"] = make_msgid("monitor", domain=domain)
        message.set_content(self.text(payload))
        message.add_alternative(self.html(payload), subtype="html")
        return message

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        message = self.message(payload, delivery_id)
        # smtplib blocks; a slow mail server must not stall the scheduler's loop.
        await asyncio.to_thread(self._submit, message)

    def _submit(self, message: EmailMessage) -> None:
        config = self.config
        password = config.password()
        if config.username and not password:
            where = f"${config.password_env}" if config.password_env else "password_file"
            raise ChannelError(f"email {self.name}: no password for {config.username} ({where})")
        context = ssl.create_default_context()
        try:
            if config.ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host or "", config.smtp_port, timeout=config.timeout, context=context
                )
            else:
                client = smtplib.SMTP(config.host or "", config.smtp_port, timeout=config.timeout)
            with client:
                if config.use_starttls:
                    client.starttls(context=context)
                if config.username:
                    _login(client, config.username, password or "")
                refused = client.send_message(message)
        except (smtplib.SMTPException, OSError) as err:
            raise ChannelError(f"email {self.name}: {type(err).__name__}: {err}") from None
        if refused:
            # The others took it, and a retry would send them a duplicate: record, don't retry.
            logger.error("email %s: refused for %s", self.name, ", ".join(sorted(refused)))


def _login(client: smtplib.SMTP, username: str, password: str) -> None:
    if (username + password).isascii():
        client.login(username, password)  # negotiates CRAM-MD5, PLAIN or LOGIN
        return
    # smtplib encodes credentials as ASCII; AUTH PLAIN (RFC 4616) carries UTF-8.
    client.ehlo_or_helo_if_needed()
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)
