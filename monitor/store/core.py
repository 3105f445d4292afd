"""The `Store`: the archive's repositories over one database, and the names callers knew.

    store.watch_states the watches the archive knows, their state and sources (states.py)
    store.check_writes the one write per check: its check_run row, its state (checks.py)
    store.due         the deliveries and Save Page Now rows due now (due.py)
    store.archive     blobs, a check's new versions and responses, retention
    store.schedule    claims and leases, discovered watches
    store.outbox      alerts and their deliveries
    store.accounts    users, web sessions, API tokens, shared secrets
    store.review      annotations, timelines, watches edited in the UI
    store.fulltext    search over every version's text
    store.furniture   learned furniture
    store.timestamps  trusted timestamps (RFC 3161)
    store.feed        the changes feed (front page, /api/v1/changes)
    store.overview    every statement with its newest version (the grouped watch list)
    store.copies      independent copies: the Save Page Now queue (wayback.py)
    store.attachments the answers for statements' attachments (monitor/attachments.py)
    store.screenshots full-page screenshots and visual changes (screenshots.py)
    store.db          the connection, its transactions and the batch of unchanged checks

The first three run in SQL text on the driver's connection and are made with the store;
the others are built on SQLAlchemy Core and made, their modules imported, on first use.

New code names the repository (`store.archive.heads(…)`); the methods below keep the names
every caller used before the repositories (`store.heads(…)`), one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from monitor.store.checks import CheckWrites
from monitor.store.database import Database
from monitor.store.due import Due
from monitor.store.records import VerifyReport
from monitor.store.states import WatchStates

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.store.accounts import Accounts
    from monitor.store.archive import Archive
    from monitor.store.attachments import AttachmentFiles
    from monitor.store.blobs import Blobs
    from monitor.store.changes import ChangesFeed
    from monitor.store.fulltext import FullText
    from monitor.store.furniture import Furniture
    from monitor.store.outbox import Outbox
    from monitor.store.overview import Overview
    from monitor.store.review import Review
    from monitor.store.schedule import Schedule
    from monitor.store.screenshots import Screenshots
    from monitor.store.timestamps import Timestamps
    from monitor.store.verify import Heads
    from monitor.store.wayback import IndependentCopies
else:

    class _Methods:
        """At run time a forward (`_Forward`) needs only the name of its method: the
        repositories built on SQLAlchemy are imported when first used (`Store`), not to
        name their methods here."""

        def __getattr__(self, name: str) -> Any:
            return SimpleNamespace(__name__=name)

    Accounts = Archive = ChangesFeed = FullText = Furniture = Outbox = Review = _Methods()
    Schedule = _Methods()

P = ParamSpec("P")
R = TypeVar("R")


class _Forward(Generic[P, R]):
    """A repository's method under the name it had on `Store`."""

    def __init__(self, repository: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self.repository = repository
        self.method = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, store: None, owner: type) -> _Forward[P, R]: ...

    @overload
    def __get__(self, store: Store, owner: type) -> Callable[P, R]: ...

    def __get__(self, store: Store | None, owner: type) -> _Forward[P, R] | Callable[P, R]:
        if store is None:
            return self
        bound: Callable[P, R] = getattr(getattr(store, self.repository), self.method)
        # Kept on the instance: the next call costs what a method call costs.
        store.__dict__[self.name] = bound
        return bound


class Store:
    """The archive. `path` is the data directory (the SQLite index, and blob files when
    `blobs="path"`); a new SQLite archive keeps blobs in the database (`blobs="db"`), one
    made with files keeps files (`meta` records which). With `url` the index is a
    PostgreSQL database and blobs go to the database (`blobs="db"`, the default there) or
    to `path` (`blobs="path"`, a directory every daemon shares)."""

    def __init__(
        self,
        path: str | Path = "snapshots",
        *,
        url: str | None = None,
        blobs: str | None = None,
        keep_checks: float | None = None,
    ) -> None:
        self.root = Path(path)
        self.db = Database(self.root, url, blobs)
        if self.db.blob_mode == "path":
            # The data directory as it always was from the first open (blobs.FileBlobs
            # makes it too), though the archive is made only when first used.
            (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        # What every check writes and every run reads, in SQL text on the driver (no
        # SQLAlchemy: see database.py); the other repositories are made on first use.
        self.watch_states = WatchStates(self.db)
        self.check_writes = CheckWrites(
            self.db, self.watch_states, lambda: self.archive, keep_checks
        )
        self.due = Due(self.db)

    # The repositories over SQLAlchemy Core, each made (and its module imported) when first
    # used: an unchanged `check --once` uses none of them.

    @cached_property
    def schedule(self) -> Schedule:
        from monitor.store.schedule import Schedule

        return Schedule(self.db)

    @cached_property
    def archive(self) -> Archive:
        from monitor.store.archive import Archive

        return Archive(self.db, self.root, self.check_writes.keep_checks)

    @cached_property
    def outbox(self) -> Outbox:
        from monitor.store.outbox import Outbox

        return Outbox(self.db)

    @cached_property
    def accounts(self) -> Accounts:
        from monitor.store.accounts import Accounts

        return Accounts(self.db)

    @cached_property
    def review(self) -> Review:
        from monitor.store.review import Review

        return Review(self.db)

    @cached_property
    def fulltext(self) -> FullText:
        from monitor.store.fulltext import FullText

        return FullText(self.db, self.archive.read_blob)

    @cached_property
    def furniture(self) -> Furniture:
        from monitor.store.furniture import Furniture

        return Furniture(self.db)

    @cached_property
    def timestamps(self) -> Timestamps:
        from monitor.store.timestamps import Timestamps

        return Timestamps(self.db)

    @cached_property
    def feed(self) -> ChangesFeed:
        from monitor.store.changes import ChangesFeed

        return ChangesFeed(self.db)

    @cached_property
    def overview(self) -> Overview:
        from monitor.store.overview import Overview

        return Overview(self.db)

    @cached_property
    def copies(self) -> IndependentCopies:
        from monitor.store.wayback import IndependentCopies

        return IndependentCopies(self.db)

    @cached_property
    def attachments(self) -> AttachmentFiles:
        from monitor.store.attachments import AttachmentFiles

        return AttachmentFiles(self.db, self.archive)

    @cached_property
    def screenshots(self) -> Screenshots:
        from monitor.store.screenshots import Screenshots

        return Screenshots(self.db, self.archive)

    @classmethod
    def from_config(cls, config: Any) -> Store:
        """From a `[store]` section (monitor.config.StoreConfig)."""
        return cls(config.path, url=config.url, blobs=config.blobs, keep_checks=config.keep_checks)

    # --- the database --------------------------------------------------------------------

    @property
    def location(self) -> str:
        return self.db.location

    @property
    def db_path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return self.db.file

    @property
    def shared(self) -> bool:
        """Several daemons may share this archive (they claim each check)."""
        return self.db.shared

    @property
    def keep_checks(self) -> float | None:
        return self.check_writes.keep_checks

    @property
    def blobs(self) -> Blobs:
        return self.archive.blobs

    @property
    def write_failure(self) -> str | None:
        return self.db.write_failure

    def flush(self) -> None:
        self.db.flush()

    def hold_writer_lock(self, purpose: str) -> None:
        self.db.hold_writer_lock(purpose)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # For modules written against the store's transactions before it had repositories.
    def _read(self, flush: bool = True) -> AbstractContextManager[Connection]:
        return self.db.read(flush)

    def _write(self) -> AbstractContextManager[Connection]:
        return self.db.write()

    # --- verification --------------------------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        """Re-hash every blob and check every reference (store/verify.py)."""
        from monitor.store.verify import verify

        return verify(self.db, self.archive.blobs, repair)

    def chain_heads(self, watch_ids: Collection[str] | None = None) -> Heads:
        """The chain heads (store/chain.py) of statements and of watches, for exports."""
        from monitor.store.verify import chain_heads

        return chain_heads(self.db, watch_ids)

    # --- the names of before: archive ----------------------------------------------------

    blob_path = _Forward("archive", Archive.blob_path)
    put_blob = _Forward("archive", Archive.put_blob)
    read_blob = _Forward("archive", Archive.read_blob)
    commit_check = _Forward("check_writes", CheckWrites.commit_check)
    commit_check_together = _Forward("check_writes", CheckWrites.commit_check_together)
    prune_checks = _Forward("archive", Archive.prune_checks)
    heads = _Forward("archive", Archive.heads)
    has_versions = _Forward("archive", Archive.has_versions)
    reference = _Forward("archive", Archive.reference)
    documents = _Forward("archive", Archive.documents)
    document = _Forward("archive", Archive.document)
    document_by_id = _Forward("archive", Archive.document_by_id)
    versions = _Forward("archive", Archive.versions)
    versions_with_text = _Forward("archive", Archive.versions_with_text)
    version = _Forward("archive", Archive.version)
    version_at = _Forward("archive", Archive.version_at)
    last_seq = _Forward("archive", Archive.last_seq)
    latest_change = _Forward("archive", Archive.latest_change)
    response = _Forward("archive", Archive.response)
    responses = _Forward("archive", Archive.responses)
    version_count = _Forward("archive", Archive.version_count)
    checks = _Forward("archive", Archive.checks)
    iter_versions = _Forward("archive", Archive.iter_versions)

    # --- schedule ------------------------------------------------------------------------

    sync_watch = _Forward("watch_states", WatchStates.sync_watch)
    sync_watches = _Forward("watch_states", WatchStates.sync_watches)
    watch_rows = _Forward("schedule", Schedule.watch_rows)
    watch_row = _Forward("schedule", Schedule.watch_row)
    watch_health = _Forward("watch_states", WatchStates.watch_health)
    watch_sources = _Forward("watch_states", WatchStates.watch_sources)
    watch_table = _Forward("watch_states", WatchStates.watch_table)
    watch_sources_mark = _Forward("watch_states", WatchStates.watch_sources_mark)
    state = _Forward("watch_states", WatchStates.state)
    states = _Forward("watch_states", WatchStates.states)
    rhythms = _Forward("watch_states", WatchStates.rhythms)
    claim_check = _Forward("schedule", Schedule.claim_check)
    renew_leases = _Forward("schedule", Schedule.renew_leases)
    release_lease = _Forward("schedule", Schedule.release_lease)
    run_soon = _Forward("schedule", Schedule.run_soon)
    discovered = _Forward("schedule", Schedule.discovered)
    add_discovered = _Forward("schedule", Schedule.add_discovered)
    mark_listed = _Forward("schedule", Schedule.mark_listed)
    discovery_of = _Forward("schedule", Schedule.discovery_of)
    family = _Forward("schedule", Schedule.family)
    announces = _Forward("schedule", Schedule.announces)
    outage_reported = _Forward("schedule", Schedule.outage_reported)
    translations = _Forward("schedule", Schedule.translations)

    # --- outbox --------------------------------------------------------------------------

    record_alert = _Forward("outbox", Outbox.record_alert)
    alerts = _Forward("outbox", Outbox.alerts)
    due_deliveries = _Forward("due", Due.deliveries)
    claim_deliveries = _Forward("outbox", Outbox.claim_deliveries)
    mark_sent = _Forward("outbox", Outbox.mark_sent)
    mark_failed = _Forward("outbox", Outbox.mark_failed)
    deliveries = _Forward("outbox", Outbox.deliveries)
    delivery_count = _Forward("outbox", Outbox.delivery_count)
    requeue = _Forward("outbox", Outbox.requeue)

    # --- accounts ------------------------------------------------------------------------

    user = _Forward("accounts", Accounts.user)
    users = _Forward("accounts", Accounts.users)
    put_user = _Forward("accounts", Accounts.put_user)
    delete_user = _Forward("accounts", Accounts.delete_user)
    create_session = _Forward("accounts", Accounts.create_session)
    session = _Forward("accounts", Accounts.session)
    delete_session = _Forward("accounts", Accounts.delete_session)
    delete_sessions = _Forward("accounts", Accounts.delete_sessions)
    secret = _Forward("accounts", Accounts.secret)
    add_token = _Forward("accounts", Accounts.add_token)
    token = _Forward("accounts", Accounts.token)
    tokens = _Forward("accounts", Accounts.tokens)
    revoke_token = _Forward("accounts", Accounts.revoke_token)
    token_used = _Forward("accounts", Accounts.token_used)

    # --- review, search, furniture -------------------------------------------------------

    timeline = _Forward("review", Review.timeline)
    annotate = _Forward("review", Review.annotate)
    annotations = _Forward("review", Review.annotations)
    verdicts = _Forward("review", Review.verdicts)
    ui_watches = _Forward("watch_states", WatchStates.ui_watches)
    is_ui_watch = _Forward("review", Review.is_ui_watch)
    put_ui_watch = _Forward("review", Review.put_ui_watch)
    delete_ui_watch = _Forward("review", Review.delete_ui_watch)
    index_text = _Forward("fulltext", FullText.index_text)
    index_behind = _Forward("fulltext", FullText.behind)
    search = _Forward("fulltext", FullText.search)
    recent_versions = _Forward("furniture", Furniture.recent_versions)
    mask_items = _Forward("furniture", Furniture.mask_items)
    newest_texts = _Forward("furniture", Furniture.newest_texts)
    furniture_items = _Forward("furniture", Furniture.furniture_items)
    all_furniture = _Forward("furniture", Furniture.all_furniture)
    store_learned = _Forward("furniture", Furniture.store_learned)
    learned_pairs = _Forward("furniture", Furniture.learned_pairs)
    learned_texts = _Forward("furniture", Furniture.learned_texts)
    learned_windows = _Forward("furniture", Furniture.learned_windows)
    keep_learned = _Forward("furniture", Furniture.keep_learned)
    forget_furniture = _Forward("furniture", Furniture.forget_furniture)

    # --- the changes feed ----------------------------------------------------------------

    changes = _Forward("feed", ChangesFeed.changes)
    recent_alerts = _Forward("feed", ChangesFeed.recent_alerts)
    alert_deliveries = _Forward("feed", ChangesFeed.alert_deliveries)
