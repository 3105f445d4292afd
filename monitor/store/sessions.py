"""Web UI sessions, kept in the archive so that they can be revoked.

A session cookie holds a random token; the store keeps only its SHA-256 (a copy of the
database does not log anyone in), the user, a fingerprint of their password hash and when
it lapses. Logging out deletes the row, so a copied cookie stops working at once; changing
a password deletes the user's rows (and the fingerprint ends any that a process elsewhere
made meanwhile). Every process on one archive (`monitor run`, `monitor serve`) sees the
same sessions.

A mixin of `Store`, like review.py: same connection, same transactions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Column, Connection, Index, Table, Text, select

from monitor.store.records import now_iso
from monitor.store.schema import metadata

web_session = Table(
    "web_session",
    metadata,
    Column("id", Text, primary_key=True, comment="SHA-256 (hex) of the cookie's token"),
    Column("username", Text, nullable=False),
    Column("fingerprint", Text, nullable=False, comment="of the password hash at login"),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("client", Text, comment="address the login came from"),
    Index("web_session_user", "username"),
    comment="Web UI sessions: deleted at logout and when the user's password changes.",
)

Row = dict[str, Any]


class SessionMixin:
    """Methods of `Store` for web sessions (see monitor/web/auth.py)."""

    def _rows(self, query: Any, flush: bool = True) -> list[Row]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def create_session(
        self, session_id: str, username: str, fingerprint: str, expires_at: str, client: str
    ) -> None:
        now = now_iso()
        with self._write() as conn:
            # Lapsed sessions go when new ones come: the table stays as small as the
            # number of people logged in.
            conn.execute(web_session.delete().where(web_session.c.expires_at < now))
            conn.execute(
                web_session.insert().values(
                    id=session_id,
                    username=username,
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=expires_at,
                    client=client,
                )
            )

    def session(self, session_id: str) -> Row | None:
        """The session, unless it lapsed or was revoked."""
        # No flush: the batch of unchanged checks never touches this table.
        rows = self._rows(select(web_session).where(web_session.c.id == session_id), flush=False)
        if not rows or rows[0]["expires_at"] < now_iso():
            return None
        return rows[0]

    def delete_session(self, session_id: str) -> bool:
        with self._write() as conn:
            result = conn.execute(web_session.delete().where(web_session.c.id == session_id))
        return result.rowcount == 1

    def delete_sessions(self, username: str) -> int:
        """End every session of a user (password changed, user deleted); returns how many."""
        with self._write() as conn:
            result = conn.execute(web_session.delete().where(web_session.c.username == username))
        return int(result.rowcount)
