"""`monitor compare OLD NEW --format json` on saved pages: noise is silent, edits alert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import monitor_cli

PAGE = """<!doctype html><html lang="en"><head><title>Statement | MFA</title></head><body>
<nav class="main-menu"><a href="/">Home</a><a href="/press">Press</a></nav>
<div class="date-widget">{clock}</div>
<div class="cookie-consent">We use cookies. <button>OK</button></div>
<article>
<h1>Statement of the Ministry of Foreign Affairs on the situation in the region</h1>
<time datetime="2026-11-20">20 November 2026</time>
<p>The Ministry of Foreign Affairs of the Republic of Kazakhstan {verb} the escalation.</p>
<p>Kazakhstan calls on all parties to exercise restraint and to resolve differences by
political and diplomatic means, in accordance with the UN Charter.</p>
<div class="views-count">Views: {views}</div>
<div class="share-buttons"><a href="https://t.me/share">Telegram</a></div>
</article>
<aside class="related"><a href="/news/{teaser}">{teaser_title}</a></aside>
<footer>© 2026 MFA</footer></body></html>"""

BASE = {
    "clock": "Wednesday, 25 November 2026 10:01",
    "verb": "is deeply concerned about",
    "views": "1204",
    "teaser": "1",
    "teaser_title": "Minister met ambassadors",
}
CAPTCHA = """<html><head><title>Just a moment...</title></head><body>
<div id="cf-browser-verification">Checking your browser before accessing.</div>
<script>window._cf_chl_opt={}</script></body></html>"""


def run_compare(tmp_path: Path, old: str, new: str) -> dict[str, object]:
    (tmp_path / "old.html").write_text(old, encoding="utf-8")
    (tmp_path / "new.html").write_text(new, encoding="utf-8")
    result = monitor_cli(
        None,
        "compare",
        str(tmp_path / "old.html"),
        str(tmp_path / "new.html"),
        "--url",
        "https://mfa.example.org/press/1",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "noise",
    [
        {"clock": "Wednesday, 25 November 2026 10:17"},
        {"views": "1377"},
        {"teaser": "2", "teaser_title": "Deputy minister visited Tashkent"},
    ],
    ids=["date-widget", "view-counter", "rotating-teaser"],
)
def test_noise_does_not_alert(tmp_path: Path, noise: dict[str, str]) -> None:
    verdict = run_compare(tmp_path, PAGE.format(**BASE), PAGE.format(**{**BASE, **noise}))
    assert verdict["alert"] is False
    assert verdict["kind"] == "unchanged"
    assert verdict["score"] == 0


def test_a_changed_phrase_alerts_and_names_it(tmp_path: Path) -> None:
    new = PAGE.format(**{**BASE, "verb": "welcomes"})
    verdict = run_compare(tmp_path, PAGE.format(**BASE), new)
    assert verdict["alert"] is True
    assert verdict["kind"] == "edited"
    assert verdict["removed"] == ["is deeply concerned about"]
    assert verdict["added"] == ["welcomes"]
    assert "Paragraph 1" in str(verdict["summary"])
    assert 0 < float(verdict["score"]) <= 1  # type: ignore[arg-type]


def test_a_challenge_page_is_a_problem_not_a_deletion(tmp_path: Path) -> None:
    verdict = run_compare(tmp_path, PAGE.format(**BASE), CAPTCHA)
    assert verdict["kind"] == "problem"
    assert verdict["alert"] is False
    assert "challenge" in str(verdict["summary"])
    assert verdict["removed"] == []
