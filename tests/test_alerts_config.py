"""The alerting keys of the config: refused with their line and field when wrong."""

from __future__ import annotations

import pytest

from monitor.config import ConfigError, parse_config

EMAIL = """
[channels.mail]
type = "email"
host = "smtp.example.org"
from = "monitor@example.org"
to = ["desk@example.org"]
"""
WATCH = """
[[watch]]
id = "a"
url = "https://x.kz/"
"""


@pytest.mark.parametrize(
    ("source", "line", "field", "message"),
    [
        (EMAIL.replace('to = ["desk@example.org"]', ""), 2, "channels.mail", "needs 'host'"),
        (EMAIL + "ssl = true\nstarttls = true\n", 2, "channels.mail", "exclude each other"),
        (EMAIL + 'password = "hunter2"\n', 7, "channels.mail.password", "unknown key"),
        (EMAIL + 'rate_limit = "ten an hour"\n', 7, "channels.mail.rate_limit", "invalid rate"),
        (EMAIL + 'rate_limit = "0/h"\n', 7, "channels.mail.rate_limit", "invalid rate"),
        (
            '[channels.hook]\ntype = "webhook"\nurl = "https://h/"\ntemplate = "{{ alert }}"\n',
            1,
            "channels.hook",
            "webhook sends the JSON schema",
        ),
        (
            '[channels.c]\ntype = "log"\nhtml_template = "<p>{{ alert.title }}</p>"\n',
            1,
            "channels.c",
            "for email channels",
        ),
        (WATCH + 'quiet_hours = "22-7"\n', 5, "watch[0].quiet_hours", "invalid quiet hours"),
        (WATCH + 'quiet_hours = "07:00-07:00"\n', 5, "watch[0].quiet_hours", "muted = true"),
        (WATCH + 'timezone = "Asia/Almatyy"\n', 5, "watch[0].timezone", "unknown time zone"),
        (WATCH + 'digest = "ten minutes"\n', 5, "watch[0].digest", "invalid duration"),
        ('[alerts]\ntimezone = "../etc/passwd"\n', 2, "alerts.timezone", "unknown time zone"),
    ],
)
def test_bad_alerting_keys_are_located(source: str, line: int, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(source, "monitor.toml")
    assert (caught.value.line, caught.value.field) == (line, field)
    assert message in caught.value.message


def test_email_defaults_to_tls_and_the_password_comes_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    config = parse_config(EMAIL + 'username = "m"\npassword_env = "SMTP_PASSWORD"\n')
    mail = config.channels["mail"]
    assert (mail.use_starttls, mail.smtp_port, mail.password()) == (True, 587, "s3cret")
    implicit = parse_config(EMAIL + "ssl = true\n").channels["mail"]
    assert (implicit.use_starttls, implicit.smtp_port) == (False, 465)
    plain = parse_config(EMAIL + "starttls = false\n").channels["mail"]
    assert (plain.use_starttls, plain.smtp_port) == (False, 25)


def test_noise_keys_parse() -> None:
    config = parse_config(
        EMAIL
        + 'rate_limit = "5/10m"\n'
        + WATCH
        + 'quiet_hours = "22:00-07:00"\ntimezone = "Asia/Almaty"\ndigest = "10m"\nmuted = true\n'
    )
    assert config.channels["mail"].rate() == (5, 600.0)
    watch = config.watch[0]
    assert (watch.quiet_hours, watch.timezone, watch.digest, watch.muted) == (
        "22:00-07:00",
        "Asia/Almaty",
        600.0,
        True,
    )
