"""Password hashing (argon2id), run by the web UI in a worker process of its own.

A verification takes hundreds of milliseconds of CPU and 64 MiB. argon2-cffi releases the
GIL while it hashes, but the Python around each run (the thread pool's loop, the cffi call's
set-up, setting the future's result) holds it. A hashing *thread* at a lower CPU priority,
descheduled by a busy machine while it held the GIL, kept the event loop waiting for the
GIL: /healthz answered in up to 300 ms during a login flood (priority inversion). A process
has a GIL of its own, so it may run at a lower priority without holding anything the daemon
needs. This module imports only argon2: a hashing worker loads nothing else of monitor's.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST

# Niceness of the hashing process: the checks and the event loop come first.
_NICENESS = 10

# For the test suite only (tests/conftest.py sets it): argon2id at its cheapest parameters,
# microseconds instead of ~0.3 s of a core per hash, for the suite's hundreds of users,
# logins and guesses whose stories are not about the cost of a hash. Never set it for a
# real UI: such hashes are no protection against a stolen database.
CHEAP_ENV = "MONITOR_TEST_CHEAP_HASHES"

_hasher = (
    PasswordHasher.from_parameters(CHEAPEST) if os.environ.get(CHEAP_ENV) else PasswordHasher()
)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so both cases cost one argon2 run.
    Made in the hashing worker (see `warm_up`), never at import."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, _NICENESS)


def warm_up() -> None:
    """Run once in each hashing worker when it starts: its priority, and the dummy hash
    made now, so that the first login of an unknown name costs no extra run."""
    _lower_priority()
    _dummy_hash()


def verify(password_hash: str | None, password: str) -> bool:
    """In a hashing worker: does `password` match? `None` (no such user) is verified
    against the dummy hash, at the same cost, and is never a match."""
    _lower_priority()
    try:
        return bool(_hasher.verify(password_hash or _dummy_hash(), password)) and bool(
            password_hash
        )
    except (VerificationError, InvalidHashError):
        return False


def rehash(password: str) -> str:
    """In a hashing worker: a hash with the current parameters (after a login)."""
    _lower_priority()
    return _hasher.hash(password)
