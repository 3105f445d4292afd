"""Alerts that stand alone: a new statement arrives with its first paragraphs, a removed one
with its last archived text, each with the link to our archived copy (not only the dead live
page) and its title once — through every channel: the log, a signed webhook, email to a real
SMTP server, Apprise to a real HTTP endpoint (with a tight length limit), and the Atom feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.channels.message import render_text
from monitor.replica import ReplicaSite
from tests.conftest import Receiver, monitor_cli, write_config
from tests.test_channels_email import PASSWORD, MailServer, smtp_server  # noqa: F401

PARAGRAPHS = [
    "The Ministry of Foreign Affairs of Kazakhstan welcomes the agreement reached in Brussels "
    "on the transit of goods across the Caspian Sea.",
    "The agreement sets common customs procedures for the Middle Corridor and opens "
    "consultations on tariffs, to be held in Astana in the first quarter of next year.",
    "Kazakhstan is ready to host the first meeting of the joint working group.",
    "Further details will be published on the website of the Ministry of Trade and "
    "Integration once the text has been signed by all parties concerned.",
]
TITLE = "On the agreement on transit across the Caspian Sea"
APPRISE_LIMIT = 500


def every_channel(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver, mail: MailServer
) -> Path:
    config = write_config(tmp_path, replica, receiver)
    text = config.read_text().replace(
        'channels = ["console", "hook"]', 'channels = ["console", "hook", "mail", "apprise"]'
    )
    text = text.replace("[server]\n", '[server]\npublic_url = "http://ui.test"\n')
    text += mail.channel(["desk@example.org"])
    text += f"""
[channels.apprise]
type = "apprise"
url_env = "TEST_APPRISE_URL"
max_length = {APPRISE_LIMIT}
"""
    config.write_text(text)
    return config


def check(config: Path) -> str:
    result = monitor_cli(config, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_new_and_removed_statements_stand_alone_in_every_channel(
    tmp_path: Path,
    replica: ReplicaSite,
    receiver: Receiver,
    smtp_server: MailServer,  # noqa: F811
    apprise_endpoint: tuple[str, list[dict[str, object]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apprise_url, pushed = apprise_endpoint
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEST_APPRISE_URL", apprise_url)
    config = every_channel(tmp_path, replica, receiver, smtp_server)
    check(config)
    body = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    new_id = replica.add({"en": {"title": TITLE, "body": body}})
    archived = f"http://ui.test/watch/mfa-en/versions/1?key=en%2F{new_id}"

    console = check(config)
    # Webhook: the JSON carries the text and the archived copy's address.
    [published] = receiver.alerts("published")
    assert published["paragraphs"] == PARAGRAPHS and published["paragraph_count"] == 4
    assert published["archived_url"] == archived and published["archived_version"] == 1
    assert receiver.bad_signatures == 0
    # The log (console): the title once, the text, the archived copy.
    assert console.count(TITLE) == 1, console
    assert all(p in console for p in PARAGRAPHS)
    assert f"Archived copy: {archived}" in console and "Published:" not in console
    # Email: text and HTML parts alike; the subject names the title, the body once more.
    [mail] = smtp_server.messages
    assert TITLE in mail["Subject"]
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text, markup = plain.get_content(), html.get_content()
    assert text.count(TITLE) == 1 and all(p in text for p in PARAGRAPHS)
    assert PARAGRAPHS[0] in markup and f'href="{archived}"' in markup.replace("&amp;", "&")
    # Apprise, 500 characters at most: as many paragraphs as fit, then the count of the
    # rest and the link to all of it.
    [push] = pushed
    message = str(push["message"])
    assert len(message) <= APPRISE_LIMIT
    assert PARAGRAPHS[0] in message and PARAGRAPHS[-1] not in message
    assert "more paragraph" in message and archived in message
    assert message.count(TITLE) == 1 and TITLE in str(push["title"])

    replica.remove(new_id)
    console = check(config)
    [removed] = receiver.alerts("removed")
    # The last archived text, and the link to it in our UI: the live page is gone.
    assert removed["paragraphs"] == PARAGRAPHS and removed["archived_url"] == archived
    assert console.count(TITLE) == 1 and PARAGRAPHS[1] in console
    assert f"Archived copy: {archived}" in console and "Live page (gone): " in console
    removal = smtp_server.messages[1].get_body(preferencelist=("html",))
    assert removal is not None
    # The HTML's title opens our copy, not the page that is gone.
    assert f'<a href="{archived}">{TITLE}</a>' in removal.get_content().replace("&amp;", "&")
    assert archived in str(pushed[1]["message"]) and len(str(pushed[1]["message"])) <= 500

    # The Atom feed: the entry's summary is the statement's start, not the title again.
    feed = monitor_cli(config, "feed", "--watch", "mfa-en")
    assert feed.returncode == 0, feed.stderr
    assert f"<summary>{PARAGRAPHS[0]}</summary>" in feed.stdout
    assert f'<link href="{archived}"/>' in feed.stdout  # the removal's entry opens our copy


def test_a_digest_names_new_statements_by_their_text_not_by_their_title_thrice() -> None:
    new = {
        "watch": "mfa-en",
        "kind": "published",
        "title": TITLE,
        "summary": f'Published: "{TITLE}"',
        "changes": [{"field": "body", "where": "statement", "before": "", "after": TITLE}],
        "paragraphs": PARAGRAPHS,
        "paragraph_count": 4,
        "archived_url": "http://ui.test/watch/mfa-en/versions/1?key=en%2F1",
        "observed_at": "2026-12-03T10:00:00Z",
    }
    from monitor.alerts import build_digest

    text = render_text(build_digest([new, {**new, "title": "Another"}]), 4000)
    assert text.count(TITLE) == 1, text
    assert PARAGRAPHS[0][:100] in text and "http://ui.test/watch/mfa-en/versions/1" in text
