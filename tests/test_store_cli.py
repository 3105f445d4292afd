"""`monitor history | show | diff | verify` on both backends, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.replica import STATEMENTS, ReplicaSite
from tests.conftest import monitor_cli, write_config
from tests.postgres import EVERY_LAYOUT, Backend, backend_named

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
OLD = "stands ready to provide further assistance if necessary"
NEW = "will consider further assistance upon a formal request"


@pytest.fixture(params=EVERY_LAYOUT)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SQLite with blob bytes in the database (a new archive's default) and in files, and
    PostgreSQL."""
    return backend_named(request, tmp_path)


def check(config: Path) -> None:
    result = monitor_cli(config, "check", "--once")
    assert result.returncode == 0, result.stdout + result.stderr


def test_history_show_diff_and_verify_read_either_backend(
    tmp_path: Path, replica: ReplicaSite, backend: Backend
) -> None:
    config = write_config(tmp_path, replica, store=backend.toml())
    check(config)
    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    check(config)
    key = f"en/{NEWEST['id']}"
    history = monitor_cli(config, "history", "mfa-en", "--key", key)
    assert history.returncode == 0, history.stderr
    lines = [line.split() for line in history.stdout.splitlines() if line.strip().startswith("#")]
    assert [line[2] for line in lines] == ["baseline", "edited"]
    # One numbering: a statement's versions are 1, 2, 3 … wherever they are shown.
    assert [line[0] for line in lines] == ["#1", "#2"]
    first, second = "1", "2"
    assert NEW in monitor_cli(config, "show", "mfa-en", second, "--key", key).stdout
    assert NEW not in monitor_cli(config, "show", "mfa-en", first, "--key", key, "--text").stdout
    raw = monitor_cli(config, "show", "mfa-en", first, "--key", key, "--raw")
    assert OLD in raw.stdout and '"data"' in raw.stdout  # the API's JSON, as received
    for args in ((), (second, "--key", key), (first, second, "--key", key)):
        diff = monitor_cli(config, "diff", "mfa-en", *args)
        assert diff.returncode == 0, diff.stderr
        assert f"[-{OLD}-]{{+{NEW}+}}" in diff.stdout
        assert "version #1 → #2" in diff.stdout
    ambiguous = monitor_cli(config, "show", "mfa-en", first)  # eight statements: which?
    assert ambiguous.returncode == 2 and "name one with --key" in ambiguous.stderr
    assert monitor_cli(config, "show", "mfa-ru", first, "--key", key).returncode == 2
    verified = monitor_cli(config, "verify")
    assert verified.returncode == 0, verified.stdout
    assert "verified 9 versions" in verified.stdout and "0 damaged, 0 orphans" in verified.stdout

    # One stored body altered behind the store's back: verify, show and export all refuse it.
    [(sha,)] = backend.query(
        "SELECT r.body_sha256 FROM response r JOIN version v ON v.response_id = r.id "
        f"JOIN document d ON d.id = v.document_id WHERE v.seq = 1 AND d.key = '{key}'"
    )
    backend.spoil_blob(sha, backend.stored_blob(sha)[:-4] + b"\x00\x00\x00\x00")
    damaged = monitor_cli(config, "verify", "--repair")
    assert damaged.returncode == 1
    assert f"DAMAGE: blob {sha}" in damaged.stdout and "0 removed" in damaged.stdout
    shown = monitor_cli(config, "show", "mfa-en", first, "--key", key, "--raw")
    assert shown.returncode == 1 and f"blob {sha} is damaged" in shown.stderr
    assert shown.stdout == ""
    assert monitor_cli(config, "verify").returncode == 1  # --repair fixed nothing it may not


def test_an_unreachable_database_is_reported_without_its_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, None, store='url = "postgresql://m:s3cret@127.0.0.1:9/db"')
    result = monitor_cli(config, "history", "mfa-en")
    assert result.returncode == 1
    assert "cannot open the store at postgresql+psycopg://m:***@127.0.0.1:9/db" in result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_restoration_is_archived_after_the_api_fell_back_in_between(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    config = write_config(tmp_path, replica)
    check(config)
    replica.remove(NEWEST["id"])
    replica.set_mode("graphql_off")  # the removal is seen through the REST API
    check(config)
    replica.set_mode("ok")
    replica.restore(NEWEST["id"])  # GraphQL answers as before the removal, byte for byte
    check(config)
    history = monitor_cli(config, "history", "mfa-en", "--key", f"en/{NEWEST['id']}")
    kinds = [line.split()[2] for line in history.stdout.splitlines() if "#" in line]
    assert kinds == ["baseline", "removed", "restored"]
