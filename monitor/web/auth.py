"""Who is asking: password hashes, sessions, CSRF tokens, and the budget of failed logins.

* Passwords are argon2id hashes (argon2-cffi's defaults); an unknown user costs the same
  verification as a known one, so timing does not tell which names exist. A verification
  takes hundreds of milliseconds of CPU and 64 MiB: it runs in worker processes of its own
  (at most `_HASHING`, at a lower CPU priority, see monitor/passwords.py), never on the
  event loop that runs the checks and answers /healthz, nor in a thread sharing its GIL.
* Failed logins are budgeted three ways within `_WINDOW`: per client address and name, per
  client address (an IPv6 address counts by its /64, which one host can fill), and over all
  clients. A spent budget answers 429 without hashing anything (after `THROTTLE_PAUSE`), so
  a flood costs at most the budget's worth of argon2 runs, however many names or
  connections it uses. An attempt
  is charged before its hash runs and refunded when it succeeds, so concurrent guesses
  cannot all slip in under the limit. The client address is the TCP peer, or what a proxy
  listed in `[server] trusted_proxies` says in X-Forwarded-For (monitor/web/guard.py).
* Sessions live in the store (monitor/store/accounts.py): the cookie holds a random token,
  the store its SHA-256. Logout deletes the row, a password change or deletion of the user
  deletes all of theirs, and a fingerprint of the password hash ends any session made
  before the hash changed, whoever changed it.
* CSRF: a logged-in visitor's token is an HMAC of their session id, so a token taken from
  another session (or made before logging in) is refused. Before login (the login form
  itself) it is a signed double-submit token: the `monitor_csrf` cookie holds a random value
  and its HMAC and the form repeats it. SameSite=Lax is the second line, and a foreign
  `Origin` header is refused outright.
* Cookies are HttpOnly, SameSite=Lax, and Secure when the UI is reached over https
  (directly, through a trusted proxy setting X-Forwarded-Proto, or per [server] public_url).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import passwords
from monitor.isolate import WorkerPool
from monitor.passwords import hash_password
from monitor.store import Store, iso
from monitor.store.records import now_iso
from monitor.web.kept import KeptByMark

__all__ = ["hash_password"]  # (for `monitor user add`)

SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
CSRF_FIELD = "csrf"
SESSION_DAYS = 14
RANK = {"viewer": 1, "editor": 2, "admin": 3}

# Failed logins allowed within _WINDOW seconds: per (address, name), per address, in all.
# The per-name budget is the old throttle; the other two stop guesses spread over names
# and over addresses. 200 failures in 10 minutes cost ~100 s of one core at most.
_WINDOW = 600.0
_PER_NAME = 5
_PER_ADDRESS = 20
_OVERALL = 200
# Password hashes computed at once (processes of their own, each ~0.3 s of a core and 64 MiB).
_HASHING = max(1, (os.cpu_count() or 2) // 2)
# One verification's limit: far above its cost, even on a machine busy with other work.
_HASH_TIMEOUT = 60.0
# A throttled login is answered after this pause: it costs the server a sleeping coroutine
# and holds each flooding connection to about one guess a second.
THROTTLE_PAUSE = 1.0


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# Sessions kept between requests (see Auth.session).
_SESSIONS_KEPT = 1024


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True)
class Session:
    id: str  # SHA-256 of the cookie's token, as the store keeps it
    user: User


class Throttled(Exception):
    pass


class LoginBudget:
    """Failed logins per (address, name), per address and overall, within `_WINDOW`."""

    def __init__(
        self,
        per_name: int = _PER_NAME,
        per_address: int = _PER_ADDRESS,
        overall: int = _OVERALL,
        window: float = _WINDOW,
    ) -> None:
        self.limits = {"name": per_name, "address": per_address, "overall": overall}
        self.window = window
        self._failures: dict[tuple[str, ...], deque[float]] = {}
        self._next_sweep = 0.0

    def charge(self, address: str, name: str) -> list[tuple[str, ...]]:
        """Count one attempt as failed before it runs; raises Throttled when any budget is
        spent. Returns the keys charged, for `refund` when the attempt succeeds."""
        now = time.monotonic()
        self._sweep(now)
        network = _network(address)
        keys = [("name", network, name.lower()), ("address", network), ("overall",)]
        for key in keys:
            failures = self._failures.get(key)
            if failures is None:
                continue
            while failures and now - failures[0] > self.window:
                failures.popleft()
            if len(failures) >= self.limits[key[0]]:
                raise Throttled()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        return keys

    def refund(self, keys: list[tuple[str, ...]]) -> None:
        for key in keys:
            failures = self._failures.get(key)
            if failures:
                failures.pop()
        # A successful login clears the guesses at that name from that address.
        self._failures.pop(keys[0], None)

    def _sweep(self, now: float) -> None:
        """Forget keys with no failure inside the window (memory stays bounded by the
        overall budget: at most that many failures, so that many keys, are live)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window / 10
        stale = [k for k, v in self._failures.items() if not v or now - v[-1] > self.window]
        for key in stale:
            del self._failures[key]


def _network(address: str) -> str:
    """An IPv4 address, or the /64 of an IPv6 one (one host is given a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class Auth:
    def __init__(self, store: Store, budget: LoginBudget | None = None) -> None:
        self.store = store
        key = store.secret("web", lambda: secrets.token_urlsafe(48))
        self._csrf_key = hashlib.sha256(("csrf:" + key).encode()).digest()
        self.budget = LoginBudget() if budget is None else budget
        # Sessions found valid: (expires at, the session) by id (see `session`).
        self._sessions: KeptByMark[tuple[str, Session]] = KeptByMark(_SESSIONS_KEPT)
        self._hashing = WorkerPool(_HASHING, _HASH_TIMEOUT)
        # Workers ignore SIGTERM: killed before multiprocessing joins its children at exit
        # (which would wait for them for ever).
        atexit.register(self._hashing.close)
        # The hashing workers start (and make their dummy hash) now, in a thread: not on
        # the event loop, and not at the first login, which would then cost more.
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        threading.Thread(target=self._start_hashing, name="monitor-hashing", daemon=True).start()

    def _start_hashing(self) -> None:
        try:
            self._hashing.start(warm_up=passwords.warm_up)
        finally:
            self._started.set_result(None)

    async def _hash(self, function: Any, *args: Any) -> Any:
        if not self._started.done():
            await asyncio.wrap_future(self._started)
        return await self._hashing.run(function, *args)

    # --- sessions ----------------------------------------------------------------------------

    async def login(
        self, username: str, password: str, client: str
    ) -> tuple[User | None, str | None]:
        """(user, session cookie value) on success; (None, None) on a wrong password;
        raises Throttled while a budget of failed logins is spent."""
        charged = self.budget.charge(client, username)
        row = self.store.user(username) if username else None
        stored = row["password_hash"] if row else None  # None: verified against a dummy
        ok = await self._hash(passwords.verify, stored, password)
        if not ok or row is None:
            return None, None
        self.budget.refund(charged)
        if passwords.needs_rehash(row["password_hash"]):
            rehashed = await self._hash(passwords.rehash, password)
            self.store.put_user(username, rehashed, row["role"])
            row = self.store.user(username) or row
        token = secrets.token_urlsafe(32)
        expires = iso(datetime.now(UTC) + timedelta(days=SESSION_DAYS))
        self.store.create_session(
            _session_id(token), row["username"], fingerprint(row["password_hash"]), expires, client
        )
        return User(row["username"], row["role"]), token

    def session(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 200:
            return None
        session_id = _session_id(cookie)
        # Every page asks (two queries): the answer is kept while the archive's data mark
        # holds (a logout, a revoked user or a changed password is a commit) and the
        # session has not lapsed.
        mark, now = self.store.overview.data_mark(), now_iso()
        kept = self._sessions.get(session_id, mark)
        if kept is not None and now <= kept[0]:
            return kept[1]
        found = self.store.session(session_id)
        if found is None:
            return None
        row = self.store.user(found["username"])
        if row is None or fingerprint(row["password_hash"]) != found["fingerprint"]:
            return None
        session = Session(session_id, User(row["username"], row["role"]))
        self._sessions.put(session_id, mark, (found["expires_at"], session))
        return session

    def user(self, cookie: str | None) -> User | None:
        session = self.session(cookie)
        return session.user if session else None

    def logout(self, cookie: str | None) -> None:
        if cookie:
            self.store.delete_session(_session_id(cookie))

    def revoke(self, username: str) -> int:
        """End every session of a user (their password changed, or they were deleted)."""
        return self.store.delete_sessions(username)

    # --- CSRF ----------------------------------------------------------------------------

    def new_csrf(self) -> str:
        """A token for a visitor who is not logged in (the login form)."""
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign('anon:' + nonce)}"

    def csrf_valid(self, cookie: str | None, field: str | None) -> bool:
        """A not-logged-in visitor's double-submit token: the form repeats the cookie."""
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        nonce, _, signature = cookie.partition(".")
        return hmac.compare_digest(signature, self._sign("anon:" + nonce))

    def session_csrf(self, session: Session) -> str:
        """The one token a session's forms carry: bound to that session, useless elsewhere."""
        return self._sign("session:" + session.id)

    def session_csrf_valid(self, session: Session, field: str | None) -> bool:
        return bool(field) and hmac.compare_digest(str(field), self.session_csrf(session))

    def _sign(self, value: str) -> str:
        return hmac.new(self._csrf_key, value.encode(), hashlib.sha256).hexdigest()[:32]


def cookie_options(secure: bool, max_age: int | None = None) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": secure,
        "max_age": max_age,
        "path": "/",
    }
