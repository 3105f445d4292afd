"""A broken config fails with file, line and field; the shipped config is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_duration
from monitor.sites import profile_catalog, profile_names
from tests.conftest import REPO, monitor_cli

VALID_HEAD = """
[fetch]
allow_private = true

[channels.console]
type = "log"
"""


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\n\n[[watch]]\nid = "b"\n'
            'url = "https://y.kz/"\ninterval = "15 minutes"\n',
            15,
            "watch[1].interval",
            "invalid duration",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nchannels = ["pager"]\n',
            11,
            "watch[0].channels",
            "unknown channel 'pager'",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nintervall = "1m"\n',
            11,
            "watch[0].intervall",
            "unknown key",
        ),
        (
            '[[watch]]\nid = "a b"\nurl = "https://x.kz/"\n',
            9,
            "watch[0].id",
            "should match pattern",
        ),
        ('[[watch]]\nid = "a"\nurl = "ftp://x.kz/"\n', 10, "watch[0].url", "should match pattern"),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nignore = ["(unclosed"]\n',
            11,
            "watch[0].ignore",
            "not a valid regex",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nprofile = "govkzz"\n',
            11,
            "watch[0].profile",
            "unknown profile 'govkzz'",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\n[[watch]]\nid = "a"\nurl = "https://y.kz/"\n',
            12,
            "watch[1].id",
            "duplicate watch id",
        ),
        ('[channels.hook]\ntype = "webhook"\n', 8, "channels.hook", "needs 'url'"),
        ('[channels.hook]\ntype = "sms"\n', 9, "channels.hook.type", "Input should be"),
        ("[fetch2]\nx = 1\n", 8, "fetch2", "unknown key"),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nignore_selectors = ["div[["]\n',
            11,
            "watch[0].ignore_selectors",
            "not valid CSS",
        ),
        ('[[watch]\nid = "a"\n', 8, "", "TOML syntax error"),
        (  # a profile's own options: a typo, a bad value, an option of another profile
            '[[watch]]\nid = "a"\nurl = "https://www.gov.kz/memleket/entities/mfa/press/news"\n'
            "options = { szie = 5 }\n",
            11,
            "watch[0].options.szie",
            "not an option of this watch's profile (it takes: size)",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/feed.xml"\nprofile = "feed"\n'
            "options = { size = 0 }\n",
            12,
            "watch[0].options.size",
            "greater than or equal to 1",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\noptions = { size = 5 }\n',
            11,
            "watch[0].options.size",
            "(it takes: none)",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nalert_visual = true\n',
            11,
            "watch[0].alert_visual",
            "alert_visual needs screenshot = true",
        ),
        (
            '[[watch]]\nid = "a"\nurl = "https://x.kz/"\nscreenshot = true\n'
            "alert_visual = true\nvisual_threshold = 0\n",
            13,
            "watch[0].visual_threshold",
            "greater than 0",
        ),
    ],
)
def test_broken_config_names_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(VALID_HEAD + "\n" + body, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, profile_catalog())
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line, field), str(error)
    assert message in error.message
    # The command line says the same and exits 2 without a traceback.
    result = monitor_cli(path, "check", "--once")
    assert result.returncode == 2
    assert f"{path}:{line}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_and_environment_variable(tmp_path: Path) -> None:
    result = monitor_cli(tmp_path / "nope.toml", "check")
    assert result.returncode == 2
    assert "nope.toml: file not found" in result.stderr


def test_shipped_config_watches_the_mfa_in_three_languages() -> None:
    config = load_config(REPO / "config" / "monitor.toml", profile_names())
    assert config.store.path == Path("snapshots")
    assert config.fetch.allow_private is False
    watches = {w.language: w for w in config.watch}
    assert set(watches) == {"en", "ru", "kk"}
    for lang, watch in watches.items():
        assert watch.url == f"https://www.gov.kz/memleket/entities/mfa/press/news?lang={lang}"
        assert watch.profile == "govkz"
        assert watch.interval == 900
        assert watch.discover


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("90s", 90), ("2d", 172800), (45, 45)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15 minutes", "m", "", "-5", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
