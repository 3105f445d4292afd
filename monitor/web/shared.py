"""What the serving processes of `monitor serve --workers N` share.

Each process has its own connection to the archive, its own caches (each keyed on what it
depends on: a snapshot of the watches, a version pair, a watch's state) and its own
worker for diffs. Sessions, users and tokens are in the archive. Three things are not,
and must be one for all the processes:

* the API's requests per minute per token (api.RateLimit): per process, a client whose
  connections land on N processes would get N times its budget;
* the budget of failed logins (auth.LoginBudget): likewise, N times the guesses;
* that a watch was saved here: the process that saved it makes its snapshot of the
  watches again at once, and the others must too, or the page a save redirects to could
  land on a process that answers 404 for a watch it does not know yet.

The first two live in the parent process (the one that forked the servers) and are
reached over a local socket (multiprocessing's manager: about a tenth of a millisecond a
call, once per API request or login); the third is a counter in shared memory.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.managers import BaseManager
from typing import Any

from monitor.web.api import RateLimit
from monitor.web.auth import LoginBudget


class _Budgets(BaseManager):
    pass


class Shared:
    """Made in the parent before it forks the servers; `attach()` in each of them."""

    def __init__(self, api_rate: int) -> None:
        self.rate = RateLimit(api_rate)
        self.budget = LoginBudget()
        self._authkey = os.urandom(32)
        registry: type[_Budgets] = type("Budgets", (_Budgets,), {})
        registry.register("rate", callable=lambda: self.rate)
        registry.register("budget", callable=lambda: self.budget)
        self._registry = registry
        manager = registry(address=None, authkey=self._authkey)
        self._server = manager.get_server()  # listens now: the forked servers may connect
        self.address = self._server.address
        # Saves of a watch in any of the processes (see `Saves`).
        self.saves = multiprocessing.get_context("fork").Value("q", 0)
        self._thread: threading.Thread | None = None

    def serve(self) -> None:
        """Answer the servers' calls, on a thread of the parent (after it forked them: a
        fork copies only the thread that forks)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="monitor-shared", daemon=True
        )
        self._thread.start()

    def attach(self) -> tuple[Any, Any, Saves]:
        """In a forked server: the shared rate limit and login budget (proxies with the
        same methods), and the count of saves."""
        manager = self._registry(address=self.address, authkey=self._authkey)
        manager.connect()
        return manager.rate(), manager.budget(), Saves(self.saves)  # type: ignore[attr-defined]


class Saves:
    """Saves of a watch made in any serving process: `seen()` is True once for each
    process after a save it did not see yet."""

    def __init__(self, counter: Any) -> None:
        self._counter = counter
        self._seen = counter.value

    def saved(self) -> None:
        with self._counter.get_lock():
            self._counter.value += 1
            self._seen = self._counter.value

    def seen(self) -> bool:
        now = self._counter.value
        if now == self._seen:
            return False
        self._seen = now
        return True
