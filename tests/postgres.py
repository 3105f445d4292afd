"""A real PostgreSQL server for the tests: initdb + pg_ctl on a temporary directory and port.

Started once per test session, the first time a test asks for it; every test then gets a
database of its own. PostgreSQL refuses to run as root, so as root the server runs as an
unprivileged system user (`monitor-test`, created if missing, else `nobody`). When it
cannot be started the tests that need it fail with the reason — they never skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.store import Store
from monitor.store.blobs import stored_blob_file

# Debian's packages put the binaries here rather than on PATH.
_DEBIAN_BIN = "/usr/lib/postgresql/*/bin"
_USER = "monitor-test"


class PostgresServer:
    def __init__(self) -> None:
        self.initdb = _binary("initdb")
        self.pg_ctl = _binary("pg_ctl")
        self.directory = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.data = self.directory / "data"
        self.port = _free_port()
        self.user = _server_user() if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        if self.user is not None:
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)

    def start(self) -> None:
        self._run(
            self.initdb, "-D", self.data, "-U", "postgres", "--auth=trust", "--no-locale",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        # Loopback TCP only, no socket file; fsync off: these databases are thrown away.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.directory / "server.log"
        try:
            self._run(self.pg_ctl, "-D", self.data, "-l", log, "-o", options, "-w", "start")
        except RuntimeError as err:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{err}\nserver log:\n{text}") from None

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *command: object) -> None:
        user = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid}
        result = subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.directory,
            extra_groups=[] if self.user is not None else None,
            **user,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(str(command[0])).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"{_DEBIAN_BIN}/{name}"))), None)
    if found is None:
        raise RuntimeError(
            f"{name} not found on PATH or in {_DEBIAN_BIN} (apt-get install postgresql)"
        )
    return found


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_USER)
    except KeyError:
        pass
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _USER],
        capture_output=True,
    )
    return pwd.getpwnam(_USER if created.returncode == 0 else "nobody")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        pytest.fail(f"PostgreSQL 15 could not be started for the tests: {err}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the test server."""
    return postgres_server.create_database()


@dataclass
class Backend:
    """One way to run the store: SQLite files, or PostgreSQL (with a data directory all the
    same, for blob files when `blobs = "path"`); `blobs` as `[store] blobs` says (None: the
    store's default, the database)."""

    name: str
    path: Path
    url: str | None = None
    blobs: str | None = None

    @property
    def files(self) -> bool:
        """Whether blob bytes are files under the data directory."""
        return self.blobs == "path"

    def store(self, **options: Any) -> Store:
        if self.blobs:
            options.setdefault("blobs", self.blobs)
        return Store(self.path, url=self.url, **options)

    def toml(self, **options: str) -> str:
        """Lines for the [store] section of a config file."""
        settings = {"url": self.url, **options} if self.url else options
        if self.blobs:
            settings.setdefault("blobs", self.blobs)
        return "\n".join(f'{key} = "{value}"' for key, value in settings.items())

    def spoil_blob(self, sha256: str, compressed: bytes | None) -> None:
        """Replace a stored blob's compressed bytes behind the store's back (None: delete
        them), in its file or its `blob_data` row."""
        if self.files:
            path = stored_blob_file(self.path / "blobs", sha256)
            assert path is not None, sha256
            if compressed is None:
                path.unlink()
            else:
                path.write_bytes(compressed)
        elif compressed is None:
            self.tamper(f"DELETE FROM blob_data WHERE sha256 = '{sha256}'")
        else:
            literal = f"X'{compressed.hex()}'" if self.url is None else f"'\\x{compressed.hex()}'"
            self.tamper(f"UPDATE blob_data SET data = {literal} WHERE sha256 = '{sha256}'")

    def stored_blob(self, sha256: str) -> bytes:
        """A blob's compressed bytes as stored, in its file or its `blob_data` row."""
        if self.files:
            path = stored_blob_file(self.path / "blobs", sha256)
            assert path is not None, sha256
            return path.read_bytes()
        [(data,)] = self.query(f"SELECT data FROM blob_data WHERE sha256 = '{sha256}'")
        return bytes(data)

    def tamper(self, *statements: str) -> None:
        """Run SQL around the store's back, as a careless person or a broken tool could:
        foreign keys are not enforced."""
        if self.url is None:
            with sqlite3.connect(self.path / "index.sqlite") as connection:
                for statement in statements:
                    connection.execute(statement)
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            # Superuser only: skips the triggers that enforce foreign keys.
            connection.execute("SET session_replication_role = replica")
            for statement in statements:
                connection.execute(statement)

    def query(self, statement: str) -> list[tuple[Any, ...]]:
        if self.url is None:
            with sqlite3.connect(self.path / "index.sqlite") as connection:
                return connection.execute(statement).fetchall()
        import psycopg

        with psycopg.connect(self.url) as connection:
            return connection.execute(statement).fetchall()


def backend_named(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend `request.param` names: "sqlite" (blobs in the database, a new archive's
    default), "sqlite-files" (`blobs = "path"`) or "postgresql"."""
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path / "store")
    if request.param == "sqlite-files":
        return Backend("sqlite-files", tmp_path / "store", blobs="path")
    return Backend("postgresql", tmp_path / "store", request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return backend_named(request, tmp_path)


# The backends of the tests about where blob bytes are: SQLite with them in the database
# and in files, and PostgreSQL (a module's own `backend` fixture over these).
EVERY_LAYOUT = ["sqlite", "sqlite-files", "postgresql"]
