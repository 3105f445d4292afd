"""API tokens: what a newsroom's own tools present instead of a password.

A token is 32 random bytes shown once (`monitor token add`); the store keeps its SHA-256
only — the token is long and random, so a fast hash is as good as a slow one and every API
request can afford it — with a name, a role (the web UI's: viewer, editor, admin) and who
made it. Revoking keeps the row (what it did stays attributable) and ends it at once for
every process on the archive. `last_used_at` is written at most once a minute per token.

A mixin of `Store`, like sessions.py: same connection, same transactions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Column, Connection, Table, Text, select

from monitor.store.records import now_iso
from monitor.store.schema import metadata

api_token = Table(
    "api_token",
    metadata,
    Column(
        "name", Text, primary_key=True, comment="chosen by whoever made it, e.g. 'newsroom-bot'"
    ),
    Column("token_sha256", Text, nullable=False, unique=True, comment="SHA-256 (hex) of the token"),
    Column("role", Text, nullable=False, comment="viewer | editor | admin"),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("last_used_at", Text),
    Column("revoked_at", Text, comment="NULL: in force"),
    comment="API tokens (their SHA-256 only); revoked ones are kept, marked.",
)

Row = dict[str, Any]


class TokenMixin:
    """Methods of `Store` for API tokens (see monitor/web/api.py)."""

    def _rows(self, query: Any, flush: bool = True) -> list[Row]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def add_token(self, name: str, token_sha256: str, role: str, created_by: str) -> bool:
        """False when a token of that name exists (revoked or not: names are not reused)."""
        with self._write() as conn:
            taken = conn.execute(select(api_token.c.name).where(api_token.c.name == name))
            if taken.first() is not None:
                return False
            conn.execute(
                api_token.insert().values(
                    name=name,
                    token_sha256=token_sha256,
                    role=role,
                    created_at=now_iso(),
                    created_by=created_by,
                )
            )
        return True

    def token(self, token_sha256: str) -> Row | None:
        """The token in force with this hash, or None."""
        rows = self._rows(
            select(api_token).where(
                api_token.c.token_sha256 == token_sha256, api_token.c.revoked_at.is_(None)
            ),
            flush=False,
        )
        return rows[0] if rows else None

    def tokens(self) -> list[Row]:
        return self._rows(select(api_token).order_by(api_token.c.name), flush=False)

    def revoke_token(self, name: str) -> bool:
        with self._write() as conn:
            result = conn.execute(
                api_token.update()
                .where(api_token.c.name == name, api_token.c.revoked_at.is_(None))
                .values(revoked_at=now_iso())
            )
        return bool(result.rowcount)

    def token_used(self, name: str, at: str) -> None:
        with self._write() as conn:
            conn.execute(api_token.update().where(api_token.c.name == name).values(last_used_at=at))
