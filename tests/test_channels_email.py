"""Email over SMTP, against a real local SMTP server (aiosmtpd) with authentication."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import monitor_cli, write_config

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
OLD = "stands ready to provide further assistance if necessary"
NEW = "will consider further assistance upon a formal request"
PASSWORD = "smtp-pa55-секрет"


@dataclass
class MailServer:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == PASSWORD
        self.logins.append((data.login.decode() if isinstance(data, LoginPassword) else "", ok))
        # handled=False: the server answers 535 itself (True means "already answered").
        return AuthResult(success=ok, handled=False)

    def channel(self, to: list[str], extra: str = "") -> str:
        """The config's [channels.mail]: email to `to` through this server, logged in as
        "monitor" with the password tests put in TEST_SMTP_PASSWORD, in plain text (it
        listens on loopback only); `extra` adds lines."""
        return f"""
[channels.mail]
type = "email"
host = "{self.host}"
port = {self.port}
starttls = false
username = "monitor"
password_env = "TEST_SMTP_PASSWORD"
from = "monitor@example.org"
to = {json.dumps(to)}
{extra}
"""


@pytest.fixture
def smtp_server() -> Iterator[MailServer]:
    with socket.socket() as probe:  # a free port; aiosmtpd needs a concrete one to self-test
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mail = MailServer("127.0.0.1", port)
    controller = Controller(
        mail,
        hostname="127.0.0.1",
        port=port,
        authenticator=mail.authenticate,
        # Plain text on loopback only: the channel's default (STARTTLS) is tested below.
        auth_require_tls=False,
    )
    controller.start()
    yield mail
    controller.stop()


def email_config(
    tmp_path: Path, replica: ReplicaSite | None, server: MailServer, extra: str = ""
) -> Path:
    config = write_config(tmp_path, replica)
    text = config.read_text().replace('channels = ["console"]', 'channels = ["console", "mail"]')
    text += server.channel(["desk@example.org", "archive@example.org"], extra)
    config.write_text(text)
    return config


def test_an_edit_arrives_as_email_with_text_and_html_parts_and_the_diff_inline(
    tmp_path: Path,
    replica: ReplicaSite,
    smtp_server: MailServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    config = email_config(tmp_path, replica, smtp_server)
    assert monitor_cli(config, "check").returncode == 0
    # Markup in the statement's text must reach the HTML part as text, not as markup.
    replica.replace_text(NEWEST["id"], "en", OLD, NEW + " &lt;b&gt;now&lt;/b&gt;")
    result = monitor_cli(config, "check")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr

    [message] = smtp_server.messages
    assert smtp_server.logins == [("monitor", True)]
    title = NEWEST["texts"]["en"]["title"]
    assert message["From"] == "monitor@example.org"
    assert message["To"] == "desk@example.org, archive@example.org"
    assert "EDITED" in message["Subject"] and title in message["Subject"]
    assert message["Message-ID"].startswith("<monitor-delivery-")
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    assert "before: «Kazakhstan expresses its solidarity" in text and NEW in text and OLD in text
    assert f'<del style="background:#fdd">{OLD}</del>' in markup
    assert '<ins style="background:#dfd">' in markup and NEW in markup
    assert "&lt;b&gt;now&lt;/b&gt;" in markup and "<b>now</b>" not in markup
    assert title in markup


def test_wrong_password_is_a_failed_delivery_that_never_shows_the_password(
    tmp_path: Path, smtp_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = email_config(tmp_path, None, smtp_server)
    wrong = "wrong-" + PASSWORD
    monkeypatch.setenv("TEST_SMTP_PASSWORD", wrong)
    result = monitor_cli(config, "alerts", "test", "mail")
    assert result.returncode == 1
    assert "SMTPAuthenticationError" in result.stderr
    assert wrong not in result.stdout + result.stderr
    assert smtp_server.messages == [] and smtp_server.logins == [("monitor", False)]


def test_starttls_is_the_default_and_never_falls_back_to_clear_text(
    tmp_path: Path, smtp_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    # This server offers no STARTTLS; the channel must refuse rather than log in openly.
    config = email_config(tmp_path, None, smtp_server)
    config.write_text(config.read_text().replace("starttls = false\n", ""))
    result = monitor_cli(config, "alerts", "test", "mail")
    assert result.returncode == 1
    assert "STARTTLS" in result.stderr
    assert smtp_server.messages == [] and smtp_server.logins == []


def test_alerts_test_sends_a_sample_email(
    tmp_path: Path, smtp_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    config = email_config(tmp_path, None, smtp_server)
    result = monitor_cli(config, "alerts", "test", "mail")
    assert result.returncode == 0, result.stderr
    assert "sample alert sent" in result.stdout
    [message] = smtp_server.messages
    assert "EDITED" in message["Subject"]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "will consider further assistance" in body.get_content()
