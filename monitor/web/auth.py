"""Who is asking: password hashes, the session cookie, CSRF tokens, login throttling.

* Passwords are argon2id hashes (argon2-cffi's defaults); an unknown user costs the same
  verification as a known one, so timing does not tell which names exist.
* The session is a signed cookie (itsdangerous, key kept in the store's `meta` so every
  process on the archive accepts it) naming the user and a fingerprint of their password
  hash: changing a password or deleting the user ends their sessions.
* CSRF: a signed double-submit token. The `monitor_csrf` cookie holds a random value and
  its HMAC; every form repeats it in a hidden field. A forged form from another site can
  neither read the cookie nor make a valid token of its own; SameSite=Lax is the second
  line, and a foreign `Origin` header is refused outright.
* Cookies are HttpOnly, SameSite=Lax, and Secure when the UI is reached over https
  (directly, through a proxy setting X-Forwarded-Proto, or per [server] public_url).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from monitor.store import Store

SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
CSRF_FIELD = "csrf"
SESSION_DAYS = 14
RANK = {"viewer": 1, "editor": 2, "admin": 3}
# Failed logins per client address and name before that pair must wait.
_MAX_FAILURES = 5
_FAILURE_WINDOW = 600.0

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so both cases cost one argon2 run.
    Made when the web UI starts (Auth), not at import: argon2's 64 MiB run at import
    raised the peak memory of every process that imports the web package, `monitor run
    --no-web` included."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


class Auth:
    def __init__(self, store: Store) -> None:
        self.store = store
        key = store.secret("web", lambda: secrets.token_urlsafe(48))
        self._sessions = URLSafeTimedSerializer(key, salt="monitor-session")
        self._csrf_key = hashlib.sha256(("csrf:" + key).encode()).digest()
        self._failures: dict[tuple[str, str], deque[float]] = {}
        _dummy_hash()  # now, so the first login of an unknown name costs no extra run

    # --- sessions ----------------------------------------------------------------------------

    def login(self, username: str, password: str, client: str) -> tuple[User | None, str | None]:
        """(user, session cookie value) on success; (None, None) on a wrong password;
        raises Throttled after too many failures from this client for this name."""
        key = (client, username.lower())
        failures = self._failures.setdefault(key, deque())
        now = time.monotonic()
        while failures and now - failures[0] > _FAILURE_WINDOW:
            failures.popleft()
        if len(failures) >= _MAX_FAILURES:
            raise Throttled()
        row = self.store.user(username) if username else None
        try:
            _hasher.verify(row["password_hash"] if row else _dummy_hash(), password)
            ok = row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            failures.append(now)
            return None, None
        self._failures.pop(key, None)
        if _hasher.check_needs_rehash(row["password_hash"]):
            self.store.put_user(username, _hasher.hash(password), row["role"])
            row = self.store.user(username) or row
        cookie = self._sessions.dumps({"u": username, "p": _fingerprint(row["password_hash"])})
        return User(username, row["role"]), cookie

    def user(self, cookie: str | None) -> User | None:
        if not cookie:
            return None
        try:
            data: dict[str, Any] = self._sessions.loads(cookie, max_age=SESSION_DAYS * 86400)
        except BadSignature:
            return None
        row = self.store.user(str(data.get("u", "")))
        if row is None or _fingerprint(row["password_hash"]) != data.get("p"):
            return None
        return User(row["username"], row["role"])

    # --- CSRF ----------------------------------------------------------------------------

    def new_csrf(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def csrf_valid(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        nonce, _, signature = cookie.partition(".")
        return hmac.compare_digest(signature, self._sign(nonce))

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._csrf_key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


class Throttled(Exception):
    pass


def cookie_options(secure: bool, max_age: int | None = None) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "max_age": max_age,
        "path": "/",
    }
