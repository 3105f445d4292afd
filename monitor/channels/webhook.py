"""Signed JSON webhook.

Body: the alert payload as JSON (schema in README). Header
`X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>`
so a receiver can prove the message came from us and was not altered, and
`X-Monitor-Delivery: <outbox id>` so it can drop a repeat (a crash between sending and
recording the send makes the outbox send again: at least once, never lost).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from monitor.channels.base import Channel, ChannelError, UrlSettings
from monitor.settings import read_secret

_TLS: ssl.SSLContext | None = None


def _first_client() -> ssl.SSLContext:
    """Import httpx and build the TLS context (certificate store) once: done in the event
    loop, the first send cost it 1.5 s and every later one 0.2 s (a context per client),
    during which no check ran and `/healthz` did not answer."""
    import httpx

    context = httpx.create_ssl_context()
    httpx.AsyncClient(verify=context)  # the first client imports the transport's modules
    return context


async def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = await asyncio.to_thread(_first_client)
    return _TLS


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSettings(UrlSettings):
    type: Literal["webhook"]
    # The HMAC key of X-Monitor-Signature, from the environment or a file.
    secret_env: str | None = None
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _no_template(self) -> WebhookSettings:
        # The webhook's body is the documented JSON schema; receivers parse it.
        if self.template or self.template_file:
            raise ValueError("a webhook sends the JSON schema; templates are for other channels")
        return self

    def secret(self) -> str | None:
        return read_secret(self.secret_env, self.secret_file)


class WebhookChannel(Channel):
    type = "webhook"
    settings = WebhookSettings
    config: WebhookSettings
    formats = ()  # the JSON schema, no message

    async def send(self, payload: dict[str, Any], *, delivery_id: str | None = None) -> None:
        url = self.config.target(self.name)
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "monitor-webhook/0.1"}
        secret = self.config.secret()
        if secret:
            headers["X-Monitor-Signature"] = sign(body, secret)
        if delivery_id:
            # Stable across retries: a receiver that saw it already can drop the repeat.
            headers["X-Monitor-Delivery"] = delivery_id
        context = await _tls()
        import httpx  # here, not at the top: a check that sends nothing skips its import

        try:
            async with httpx.AsyncClient(timeout=self.config.timeout, verify=context) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ChannelError(f"webhook {self.name}: {type(err).__name__}: {err}") from err
        if response.status_code >= 300:
            raise ChannelError(
                f"webhook {self.name}: receiver answered HTTP {response.status_code}"
            )
