"""Who may use the web UI and the API: users and their roles, their sessions, API tokens,
and the secrets every process on one archive shares (the UI's signing key).

A session cookie holds a random token; the store keeps only its SHA-256 (a copy of the
database does not log anyone in), the user, a fingerprint of their password hash and when
it lapses. Logging out deletes the row, so a copied cookie stops working at once; changing
a password deletes the user's rows (and the fingerprint ends any that a process elsewhere
made meanwhile). Every process on one archive (`monitor run`, `monitor serve`) sees the
same sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import cast

from sqlalchemy import select

from monitor.clock import parse_iso
from monitor.store.database import Database
from monitor.store.records import SessionRow, TokenRow, UserRow, now_iso
from monitor.store.schema import (
    api_token,
    app_user,
    get_meta,
    set_meta,
    user_visit,
    web_session,
)

ROLES = ("viewer", "editor", "admin")
# Front page views closer together than this are one visit: paging through the changes or
# coming back from a diff does not move "since my last visit".
VISIT_GAP = timedelta(minutes=30)
# A view this soon after the last one recorded leaves the record as it is.
_REFRESH = timedelta(minutes=1)


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- users ---------------------------------------------------------------------------

    def user(self, username: str) -> UserRow | None:
        query = select(app_user).where(app_user.c.username == username)
        return cast("UserRow | None", self.db.row(query))

    def users(self) -> list[UserRow]:
        return cast("list[UserRow]", self.db.rows(select(app_user).order_by(app_user.c.username)))

    def put_user(self, username: str, password_hash: str | None, role: str) -> None:
        """Create a user, or change an existing one's role (and password, when given)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        now = now_iso()
        with self.db.write() as conn:
            exists = conn.execute(
                select(app_user.c.username).where(app_user.c.username == username)
            ).scalar_one_or_none()
            if exists is None:
                if password_hash is None:
                    raise ValueError(f"a new user ({username}) needs a password")
                conn.execute(
                    app_user.insert().values(
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return
            values = {"role": role, "updated_at": now}
            if password_hash is not None:
                values["password_hash"] = password_hash
            conn.execute(app_user.update().where(app_user.c.username == username).values(values))

    def delete_user(self, username: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(app_user.delete().where(app_user.c.username == username))
            conn.execute(user_visit.delete().where(user_visit.c.username == username))
        return result.rowcount == 1

    # --- visits (the front page's "since my last visit") ---------------------------------

    def visit(self, username: str, at: str) -> str | None:
        """Record a front page view at `at`; returns when the user's previous visit ended
        (None: this is their first). Views less than VISIT_GAP apart are one visit."""
        known = self.db.row(select(user_visit).where(user_visit.c.username == username), False)
        if known and timedelta(0) <= parse_iso(at) - parse_iso(known["seen_at"]) < _REFRESH:
            return known["previous_at"]  # paging on: no write (and no fsync) per page
        with self.db.write() as conn:
            found = conn.execute(
                select(user_visit.c.seen_at, user_visit.c.previous_at).where(
                    user_visit.c.username == username
                )
            ).first()
            if found is None:
                conn.execute(user_visit.insert().values(username=username, seen_at=at))
                return None
            seen_at, previous_at = found
            if parse_iso(at) - parse_iso(seen_at) > VISIT_GAP:
                previous_at = seen_at
            conn.execute(
                user_visit.update()
                .where(user_visit.c.username == username)
                .values(seen_at=max(at, seen_at), previous_at=previous_at)
            )
            return str(previous_at) if previous_at else None

    def last_visit(self, username: str) -> str | None:
        """When the user's previous visit ended, without recording one."""
        query = select(user_visit.c.previous_at).where(user_visit.c.username == username)
        found = self.db.row(query, False)
        return found["previous_at"] if found else None

    # --- sessions (see monitor/web/auth.py) ------------------------------------------------

    def create_session(
        self, session_id: str, username: str, fingerprint: str, expires_at: str, client: str
    ) -> None:
        now = now_iso()
        with self.db.write() as conn:
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

    def session(self, session_id: str) -> SessionRow | None:
        """The session, unless it lapsed or was revoked."""
        # No flush: the batch of unchanged checks never touches this table.
        query = select(web_session).where(web_session.c.id == session_id)
        found = cast("SessionRow | None", self.db.row(query, False))
        if found is None or found["expires_at"] < now_iso():
            return None
        return found

    def delete_session(self, session_id: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(web_session.delete().where(web_session.c.id == session_id))
        return result.rowcount == 1

    def delete_sessions(self, username: str) -> int:
        """End every session of a user (password changed, user deleted); returns how many."""
        with self.db.write() as conn:
            result = conn.execute(web_session.delete().where(web_session.c.username == username))
        return int(result.rowcount)

    # --- API tokens (see monitor/web/api.py) ---------------------------------------------
    # A token is 32 random bytes shown once (`monitor token add`); only its SHA-256 is kept
    # (long and random: a fast hash is as good as a slow one, and every request can afford
    # it). Revoking keeps the row, so what a token did stays attributable.

    def add_token(self, name: str, token_sha256: str, role: str, created_by: str) -> bool:
        """False when a token of that name exists (revoked or not: names are not reused)."""
        with self.db.write() as conn:
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

    def token(self, token_sha256: str) -> TokenRow | None:
        """The token in force with this hash, or None."""
        query = select(api_token).where(
            api_token.c.token_sha256 == token_sha256, api_token.c.revoked_at.is_(None)
        )
        return cast("TokenRow | None", self.db.row(query, flush=False))

    def tokens(self) -> list[TokenRow]:
        query = select(api_token).order_by(api_token.c.name)
        return cast("list[TokenRow]", self.db.rows(query, flush=False))

    def revoke_token(self, name: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(
                api_token.update()
                .where(api_token.c.name == name, api_token.c.revoked_at.is_(None))
                .values(revoked_at=now_iso())
            )
        return bool(result.rowcount)

    def token_used(self, name: str, at: str) -> None:
        with self.db.write() as conn:
            conn.execute(api_token.update().where(api_token.c.name == name).values(last_used_at=at))

    # --- shared secrets ------------------------------------------------------------------

    def secret(self, name: str, make: Callable[[], object]) -> str:
        """A value kept in `meta`, created once by `make()` (e.g. the UI's signing key), so
        every process on the same archive agrees on it across restarts."""
        key = f"secret:{name}"
        with self.db.write() as conn:
            value = get_meta(conn, key)
            if value is None:
                value = str(make())
                set_meta(conn, key, value)
        return value
