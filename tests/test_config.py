"""A broken config fails with file, line and field; the shipped config is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli

from monitor.config import ConfigError, _read_toml, load_config, parse_config, parse_duration
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


# --- a file of many watches, read in pieces ------------------------------------------------


def _table(i: int, rest: str = 'interval = "1h"\n', url: str = "", id_line: str = "") -> str:
    id_line = id_line or f'id = "w{i}"'
    return f'[[watch]]\n{id_line}\nurl = "{url or f"https://x.kz/{i}"}"\n{rest}'


def _tables(n: int, odd: int = -1, **kwargs: str) -> str:
    """n alike tables, table `odd` made with `kwargs`."""
    return "".join(_table(i, **(kwargs if i == odd else {})) for i in range(n))


def _each(rest: str) -> str:
    """Five tables with this rest."""
    return "".join(_table(i, rest) for i in range(5))


_THIRD = '[[watch]]\nid = "w2"'


_PIECES = {
    "alike": VALID_HEAD + _tables(5),
    "no head": _tables(5),
    "blank lines between": "\n".join(_table(i) for i in range(5)),
    "no final newline": _tables(5).rstrip("\n"),
    "channel table after the watches": _tables(5) + '[channels.console]\ntype = "log"\n',
    "channel tables around the watches": VALID_HEAD + _tables(5) + '[channels.x]\ntype = "log"\n',
    "options as a table": _tables(5, 2, rest='profile = "feed"\n[watch.options]\nsize = 3\n'),
    "options inline": _each('profile = "feed"\noptions = { size = 3 }\n'),
    "a dotted key": _each('options.size = 3\nprofile = "feed"\n'),
    "a header with a comment": _tables(5).replace(_THIRD, _THIRD.replace("]]", "]] # x")),
    "a header spaced": _tables(5).replace(_THIRD, _THIRD.replace("[[watch]]", "[[ watch ]]")),
    "url before id": "".join(f'[[watch]]\nurl = "https://x.kz/"\nid = "w{i}"\n' for i in range(3)),
    "comments": "".join(_table(i, f'# watch {i}\ninterval = "1h"\n') for i in range(5)),
    "a multi-line string holding a header": _tables(5, 1, rest='name = """\n[[watch]]\n"""\n'),
    "CRLF": _tables(5).replace("\n", "\r\n"),
    "ports": "".join(_table(i, url=f"https://x.kz:{65533 + i}/") for i in range(5)),
    "an IPv6 host": _tables(5, 3, url="https://[::1]:80/"),
    "an escape in a URL": _tables(5, 3, url="https://x.kz/\\u0041"),
    "a URL not ASCII": "".join(_table(i, url=f"https://x.kz/статья/{i}") for i in range(5)),
    "a multi-line array": _each('ignore = [\n"a",\n]\n'),
    "an array of tables in a watch": _tables(5, 4, rest="[[watch.x]]\na = 1\n"),
    # What the parser refuses, the file read whole says where.
    "a key set twice": _tables(5, 2, rest='interval = "1h"\ninterval = "2h"\n'),
    "an id set again": _tables(5, 2, rest='id = "z"\n'),
    "a table set twice": VALID_HEAD + _tables(5) + "[fetch]\nretries = 1\n",
    "watch as a key first": "watch = []\n" + _tables(5),
    "watch as a table after": _tables(5) + '[watch]\nid = "a"\n',
    "a string not closed": _tables(5, 2, rest='interval = "1h\n'),
    "a control character": _tables(5, 2, url="https://x.kz/a\x01b"),
}


@pytest.mark.parametrize("name", list(_PIECES))
def test_a_file_of_many_watches_reads_as_the_parser_reads_it(name: str) -> None:
    source = _PIECES[name]
    try:
        expected: dict | str = tomli.loads(source)
    except tomli.TOMLDecodeError as err:
        expected = str(err)
    try:
        raw, rests = _read_toml(source)
    except tomli.TOMLDecodeError as err:
        assert str(err) == expected
        return
    # A plain table comes as (id, url, rest): its rest's keys are in `rests`.
    raw["watch"] = [
        {"id": t[0], "url": t[1], **rests[t[2]]} if isinstance(t, tuple) else t
        for t in raw["watch"]
    ]
    assert raw == expected
    if name == "alike":
        assert len(rests) == 1


def test_alike_tables_with_one_bad_value_fail_at_its_line() -> None:
    source = VALID_HEAD + _tables(6, 4, rest='interval = "1 hour"\n')
    with pytest.raises(ConfigError) as refused:
        parse_config(source, "many.toml")
    assert str(refused.value).startswith("many.toml:26: watch[4].interval: invalid duration")
    # The first of two errors is told: an unknown channel before a duplicate id.
    source = VALID_HEAD + _tables(3) + _table(3, 'channels = ["pager"]\n') + _table(0)
    with pytest.raises(ConfigError) as refused:
        parse_config(source, "many.toml")
    assert "watch[3].channels: unknown channel 'pager'" in str(refused.value)


@pytest.mark.process
def test_help_and_a_store_record_import_neither_the_config_models_nor_sqlalchemy() -> None:
    """`monitor --help` imports neither the configuration's models nor the store's
    SQLAlchemy (0.6 of its 0.9 s of CPU when it did), and a module that takes a store
    record or StoreError does not import the store; a command reading its config gets
    them as before (the store, by name, from `monitor.store`)."""
    import subprocess
    import sys

    heavy = ("sqlalchemy", "monitor.config", "monitor.store.core", "monitor.watches")
    probe = (
        "import sys, monitor.cli, monitor.store.records\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
        "from monitor.store import Store, StoreError\n"
        "print(Store.__module__, StoreError is monitor.store.records.StoreError)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert shown.stdout.splitlines() == ["[]", "monitor.store.core True"]
    helped = monitor_cli(None, "--help")
    assert helped.returncode == 0 and "usage: monitor" in helped.stdout
