"""Learned furniture (monitor/learned.py): what the learning reads
from the archive, and the `furniture` table it keeps.

A learned item belongs to a watch (a slot or a number of its statements) or to a host (a
template paragraph on many of its statements). Learning again replaces a scope's learned
items with what the archive now shows; an item a user forgot stays forgotten: it is kept,
marked, and never learned again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import and_, bindparam, func, or_, select

from monitor.clock import parse_iso
from monitor.store.database import Database, Deferred, DriverStatement
from monitor.store.records import FurnitureRow, HostTextRow, RecentVersionRow, iso, now_iso
from monitor.store.schema import (
    annotation,
    document,
    furniture,
    learning_pair,
    learning_text,
    learning_window,
    version,
    watch,
)


@dataclass(frozen=True)
class LearnedItem:
    """One piece of furniture as learning found it."""

    kind: str  # slot | shape | template
    fingerprint: str
    pattern: dict[str, Any]
    example: str
    reason: str


def host_of(url: str) -> str:
    """The host a watch's URL names (with its port, if any): the scope of templates."""
    return urlsplit(url).netloc.lower()


@dataclass(frozen=True)
class _LearnedStatements:
    known: DriverStatement
    refresh: DriverStatement
    drop: DriverStatement
    seen: DriverStatement
    insert: DriverStatement
    lock: DriverStatement | None  # one learner of a scope at a time (a shared archive)


# The first key of the advisory locks that `store_learned` takes on a shared archive, one
# per scope (the migrations' lock is one 64-bit key: another space of keys).
_LEARNING_LOCK = 0x6C726E64


def _scope_lock(scope: str, scope_id: str) -> int:
    """A scope's advisory lock (its second key, 32 bits): two scopes that share one wait
    for each other's learning, no more."""
    digest = hashlib.blake2b(f"{scope}\0{scope_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


class Furniture:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Read on every edit (learning, masking): prepared on first use, run on the driver.
    @cached_property
    def _recent(self) -> DriverStatement:
        return self.db.prepare(_recent_versions_query(), [])

    @cached_property
    def _newest_texts(self) -> DriverStatement:
        return self.db.prepare(_newest_texts_query(), [])

    @cached_property
    def _mask_items(self) -> DriverStatement:
        scope = and_(furniture.c.scope == bindparam("ws"), furniture.c.scope_id == bindparam("w"))
        host = and_(furniture.c.scope == bindparam("hs"), furniture.c.scope_id == bindparam("h"))
        return self.db.prepare(
            select(furniture)
            .where(or_(scope, host), furniture.c.forgotten_at.is_(None))
            .order_by(furniture.c.id),
            [],
        )

    # --- what learning reads ---------------------------------------------------------------

    def recent_versions(self, watch_id: str, limit: int) -> dict[int, list[RecentVersionRow]]:
        """Per statement of the watch, its newest `limit` versions, oldest first, each with
        the newest verdict people gave it (significant, noise or None)."""
        values = {"watch_id": watch_id, "skip": limit - 1}
        rows = cast("list[RecentVersionRow]", self.db.prepared_rows(self._recent, values))
        histories: dict[int, list[RecentVersionRow]] = {}
        for row in rows:
            histories.setdefault(row["document_id"], []).append(row)
        return histories

    def newest_texts(self, host: str, limit: int) -> list[HostTextRow]:
        """The newest version with text of each statement on this host (not removed), for
        the `limit` statements that changed most recently, newest first: watch_id, key,
        version_id, text_sha256. One query: the host may have thousands.

        Each statement's newest version with text is found from the end of its (document_id,
        seq) index, not as the largest id among all its versions: grouping every version of
        the host cost 35 ms at 100,000 versions, and grew with the archive. (A statement's
        versions are numbered in the order they are inserted, so its highest seq has its
        highest id.) Prepared once and run on the driver: built and compiled by SQLAlchemy
        at each learning, with its list of ids, it cost 4 ms where SQLite takes 0.2."""
        values = {
            "http": f"http://{host}/%",
            "https": f"https://{host}/%",
            "bare_http": f"http://{host}",
            "bare_https": f"https://{host}",
            "limit": limit,
        }
        rows = self.db.prepared_rows(self._newest_texts, values)
        return [cast("HostTextRow", row) for row in rows if host_of(row["url"]) == host]

    # --- what learning kept (see monitor/learned.py) ----------------------------------------

    def learned_pairs(self, old_sha256s: Iterable[str], rules: int) -> list[tuple[str, str, str]]:
        """(old_sha256, new_sha256, changes) of the pairs kept under these `rules` whose
        older text is one of these (whatever followed it: the caller picks its pairs).
        Read without writing the batch first: what it holds is found again if missed."""
        sql = (
            "SELECT old_sha256, new_sha256, changes FROM learning_pair"
            f" WHERE {self.db.dialect.any_of('old_sha256')} AND rules = {int(rules)}"
        )
        values = (self.db.dialect.many(sorted(set(old_sha256s))),)
        return [(a, b, c) for a, b, c in self.db.driver_rows(sql, values, flush=False)]

    def learned_texts(self, sha256s: Iterable[str], rules: int) -> list[tuple[str, bytes, bytes]]:
        """(text_sha256, normals, shapes) of these texts' digests kept under `rules` (read
        as `learned_pairs` is)."""
        sql = (
            "SELECT text_sha256, normals, shapes FROM learning_text"
            f" WHERE {self.db.dialect.any_of('text_sha256')} AND rules = {int(rules)}"
        )
        values = (self.db.dialect.many(sorted(set(sha256s))),)
        rows = self.db.driver_rows(sql, values, flush=False)
        return [(sha, bytes(normals), bytes(shapes)) for sha, normals, shapes in rows]

    def learned_windows(self, document_ids: Iterable[int], rules: int) -> list[tuple[int, str]]:
        """(document_id, state) of these statements' windows kept under `rules` (read as
        `learned_pairs` is: one written since may still wait in the batch, and learning
        then goes on from the one before)."""
        sql = (
            "SELECT document_id, state FROM learning_window"
            f" WHERE {self.db.dialect.any_of('document_id')} AND rules = {int(rules)}"
        )
        values = (self.db.dialect.many(sorted(set(document_ids))),)
        return [(int(d), s) for d, s in self.db.driver_rows(sql, values, flush=False)]

    def keep_learned(
        self,
        pairs: Iterable[tuple[str, str, str]],
        texts: Iterable[tuple[str, bytes, bytes]],
        rules: int,
        windows: Iterable[tuple[int, str]] = (),
    ) -> None:
        """Keep what learning found in these pairs (old, new, changes), texts (sha256,
        normals, shapes) and statements' windows (document_id, state), replacing what
        other rules made. Written with the batch of unchanged checks (see database.
        BATCH_WINDOW): a process stopped before leaves them to be found again, from the
        texts (a window, from the one kept before)."""
        rows = [
            (self._keep_pair, {"old_sha256": a, "new_sha256": b, "rules": rules, "changes": c})
            for a, b, c in pairs
        ]
        rows += [
            (self._keep_text, {"text_sha256": t, "rules": rules, "normals": n, "shapes": s})
            for t, n, s in texts
        ]
        rows += [
            (self._keep_window, {"document_id": d, "rules": rules, "state": s}) for d, s in windows
        ]
        if rows:
            self.db.defer(rows)

    @cached_property
    def _keep_pair(self) -> DriverStatement:
        insert = self.db.dialect.insert(learning_pair)
        return self.db.prepare(
            insert.on_conflict_do_update(
                index_elements=["old_sha256", "new_sha256"],
                set_={name: insert.excluded[name] for name in ("rules", "changes")},
            ),
            ["old_sha256", "new_sha256", "rules", "changes"],
        )

    @cached_property
    def _keep_text(self) -> DriverStatement:
        insert = self.db.dialect.insert(learning_text)
        excluded = insert.excluded
        return self.db.prepare(
            insert.on_conflict_do_update(
                index_elements=["text_sha256"],
                set_={name: excluded[name] for name in ("rules", "normals", "shapes")},
            ),
            ["text_sha256", "rules", "normals", "shapes"],
        )

    @cached_property
    def _keep_window(self) -> DriverStatement:
        insert = self.db.dialect.insert(learning_window)
        return self.db.prepare(
            insert.on_conflict_do_update(
                index_elements=["document_id"],
                set_={name: insert.excluded[name] for name in ("rules", "state")},
            ),
            ["document_id", "rules", "state"],
        )

    # --- the furniture table ---------------------------------------------------------------

    def furniture_items(
        self, scopes: Iterable[tuple[str, str]], forgotten: bool = True
    ) -> list[FurnitureRow]:
        """Items of these (scope, scope_id) pairs, oldest first; `forgotten=False` leaves
        out those a user said are not furniture. `pattern` is decoded."""
        pairs = list(scopes)
        if not pairs:
            return []
        query = select(furniture).where(
            or_(*[and_(furniture.c.scope == s, furniture.c.scope_id == i) for s, i in pairs])
        )
        if not forgotten:
            query = query.where(furniture.c.forgotten_at.is_(None))
        rows = self.db.rows(query.order_by(furniture.c.id))
        for row in rows:
            row["pattern"] = json.loads(row["pattern"])
        return cast("list[FurnitureRow]", rows)

    def mask_items(self, watch_id: str, host: str) -> list[FurnitureRow]:
        """`furniture_items` of a watch and its host, forgotten ones left out: what masks
        its comparisons (read on every edit)."""
        values = {"ws": "watch", "w": watch_id, "hs": "host", "h": host}
        rows = self.db.prepared_rows(self._mask_items, values)
        for row in rows:
            row["pattern"] = json.loads(row["pattern"])
        return cast("list[FurnitureRow]", rows)

    def all_furniture(self) -> list[FurnitureRow]:
        rows = self.db.rows(select(furniture).order_by(furniture.c.scope_id, furniture.c.id))
        for row in rows:
            row["pattern"] = json.loads(row["pattern"])
        return cast("list[FurnitureRow]", rows)

    def store_learned(
        self, scope: str, scope_id: str, items: list[LearnedItem], keep_unseen: float = 0.0
    ) -> tuple[int, int]:
        """Make the scope's learned items these: new ones are added, known ones refreshed,
        forgotten ones left alone (never learned again). A learned item no longer found is
        dropped once unseen for `keep_unseen` seconds. Returns (added, dropped).

        The scope's items are read, then what changes is written in one transaction on the
        driver (`Database.write_now`): at each edit of a statement with learned furniture
        (its items seen again, their counts refreshed), SQLAlchemy's write transaction
        around the same statements cost more than they did. Each write holds on its own to
        what the reading found, so that another process's word between the two stands: a
        forgotten item is not refreshed, seen or dropped, one seen since is not dropped, and
        one learned meanwhile is not added twice."""
        now = now_iso()
        found = {item.fingerprint: item for item in items}
        added = dropped = 0
        cutoff = iso(_parse(now) - timedelta(seconds=keep_unseen))
        if not items and not self._droppable(scope, scope_id, cutoff):
            # Nothing to add, refresh or drop (a young statement's edit, most of them): no
            # write transaction, whose commit cost more than the learning.
            return 0, 0
        statements = self._learned
        # The batch of unchanged checks never writes this table: it need not be written first.
        values = {"scope": scope, "scope_id": scope_id}
        known = self.db.prepared_rows(statements.known, values, flush=False)
        kept = {(row["kind"], row["fingerprint"]) for row in known}
        writes: list[Deferred] = []
        seen = []
        for row in known:
            item = found.get(row["fingerprint"])
            if row["forgotten_at"] is not None:
                continue
            if item is not None and item.kind == row["kind"]:
                seen.append(row["id"])
                now_said = (_json(item.pattern), item.example, item.reason)
                if now_said != (row["pattern"], row["example"], row["reason"]):
                    refreshed = dict(zip(("pattern", "example", "reason"), now_said, strict=True))
                    writes.append((statements.refresh, {"item": row["id"], **refreshed}))
            elif row["seen_at"] <= cutoff:
                writes.append((statements.drop, {"item": row["id"], "cutoff": cutoff}))
                dropped += 1
        writes += [(statements.seen, {"item": item_id, "seen_at": now}) for item_id in seen]
        for item in items:
            if (item.kind, item.fingerprint) in kept:
                continue
            row = {
                "scope": scope,
                "scope_id": scope_id,
                "kind": item.kind,
                "fingerprint": item.fingerprint,
                "pattern": _json(item.pattern),
                "example": item.example,
                "reason": item.reason,
                "learned_at": now,
                "seen_at": now,
            }
            writes.append((statements.insert, row))
            added += 1
        if writes:
            if statements.lock is not None:
                # Learners of one scope write one after the other: two daemons learning a
                # host at once took its rows' locks in crossed orders (each refreshing an
                # item the other did not, then marking all of them seen), and PostgreSQL
                # ended one of them as a deadlock.
                writes.insert(0, (statements.lock, {"key": _scope_lock(scope, scope_id)}))
            self.db.write_now(writes)
        return added, dropped

    @cached_property
    def _learned(self) -> _LearnedStatements:
        """`store_learned`'s statements, on the driver: through SQLAlchemy, built and
        compiled at every learning of a watch with items (each edit of a statement whose
        furniture was learned), they cost more than SQLite took. The writes leave alone an
        item forgotten since it was read, and the drop one seen since."""
        by_id = and_(furniture.c.id == bindparam("item"), furniture.c.forgotten_at.is_(None))
        known = select(
            furniture.c.id,
            furniture.c.kind,
            furniture.c.fingerprint,
            furniture.c.pattern,
            furniture.c.example,
            furniture.c.reason,
            furniture.c.forgotten_at,
            furniture.c.seen_at,
        ).where(
            furniture.c.scope == bindparam("scope"), furniture.c.scope_id == bindparam("scope_id")
        )
        insert = ["scope", "scope_id", "kind", "fingerprint", "pattern", "example", "reason"]
        unseen = furniture.c.seen_at <= bindparam("cutoff")
        turn_lock = self.db.dialect.turn_lock(_LEARNING_LOCK)
        new = self.db.dialect.insert(furniture).on_conflict_do_nothing(
            index_elements=["scope", "scope_id", "kind", "fingerprint"]
        )
        return _LearnedStatements(
            known=self.db.prepare(known, []),
            refresh=self.db.prepare(
                furniture.update().where(by_id), ["pattern", "example", "reason"]
            ),
            drop=self.db.prepare(furniture.delete().where(by_id, unseen), []),
            seen=self.db.prepare(furniture.update().where(by_id), ["seen_at"]),
            insert=self.db.prepare(new, [*insert, "learned_at", "seen_at"]),
            lock=None if turn_lock is None else DriverStatement.of_text(turn_lock, ["key"]),
        )

    def _droppable(self, scope: str, scope_id: str, cutoff: str) -> bool:
        """Whether the scope holds a learned item (not forgotten) unseen since `cutoff`."""
        values = {"scope": scope, "scope_id": scope_id, "cutoff": cutoff}
        return bool(self.db.prepared_rows(self._droppable_items, values))

    @cached_property
    def _droppable_items(self) -> DriverStatement:
        return self.db.prepare(
            select(furniture.c.id)
            .where(
                furniture.c.scope == bindparam("scope"),
                furniture.c.scope_id == bindparam("scope_id"),
                furniture.c.forgotten_at.is_(None),
                furniture.c.seen_at <= bindparam("cutoff"),
            )
            .limit(1),
            [],
        )

    def forget_furniture(self, ids: Iterable[int], username: str) -> int:
        """Mark items as "not furniture" (a user's word): no longer masked, never learned
        again. Returns how many were newly forgotten."""
        wanted = list(ids)
        if not wanted:
            return 0
        with self.db.write() as conn:
            result = conn.execute(
                furniture.update()
                .where(furniture.c.id.in_(wanted), furniture.c.forgotten_at.is_(None))
                .values(forgotten_at=now_iso(), forgotten_by=username)
            )
        return int(result.rowcount)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _parse(moment: str) -> datetime:
    return parse_iso(moment).astimezone(UTC)


def _last(column: Any, order: Any, outer: Any, where: Any) -> Any:
    """`column` of the last row (by `order`) that `where` finds for a row of `outer`: a
    correlated subquery that an index on (the correlation, `order`) answers from its end."""
    return (
        select(column).where(where).order_by(order.desc()).limit(1).correlate(outer)
    ).scalar_subquery()


def _newest_texts_query() -> Any:
    """The newest version with text of each statement (not removed) of the watches whose
    URL is on a host (`http`, `https`: its URL patterns; `bare_http`, `bare_https`: the
    host's bare URLs), for the `limit` statements with the newest such versions, newest
    first (see `Furniture.newest_texts`)."""
    with_text = and_(version.c.document_id == document.c.id, version.c.text_sha256.is_not(None))
    newest = _last(version.c.id, version.c.seq, document, with_text)
    on_host = or_(
        watch.c.url.like(bindparam("http")),
        watch.c.url.like(bindparam("https")),
        watch.c.url == bindparam("bare_http"),
        watch.c.url == bindparam("bare_https"),
    )
    statements = (
        select(document.c.watch_id, document.c.key, watch.c.url, newest.label("version_id"))
        .join(watch, watch.c.id == document.c.watch_id)
        .where(on_host, document.c.removed_at.is_(None))
        .subquery()
    )
    # The newest `limit` first, then their texts: a join of the whole host's statements
    # would look up each one's newest version twice (SQLite flattens it into the join).
    newest_first = (
        select(statements)
        .where(statements.c.version_id.is_not(None))
        .order_by(statements.c.version_id.desc())
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(newest_first, version.c.text_sha256)
        .join(version, version.c.id == newest_first.c.version_id)
        .order_by(newest_first.c.version_id.desc())
    )


def _recent_versions_query() -> Any:
    """Per statement of a watch (`watch_id`), its versions from its (`skip` + 1)-th newest
    on, with the newest verdict people gave each (see `Furniture.recent_versions`)."""
    judged = and_(annotation.c.version_id == version.c.id, annotation.c.verdict.is_not(None))
    newest_verdict = _last(annotation.c.verdict, annotation.c.id, version, judged)
    # The seq of each statement's `limit`-th newest version, found from the end of the
    # (document_id, seq) index: ranking every version of the watch (a window function)
    # cost in proportion to its whole history on every edit.
    later = version.alias("later")
    cutoff = (
        select(later.c.seq)
        .where(later.c.document_id == document.c.id)
        .order_by(later.c.seq.desc())
        .limit(1)
        .offset(bindparam("skip"))
        .correlate(document)
        .scalar_subquery()
    )
    return (
        select(
            version.c.id,
            version.c.document_id,
            version.c.seq,
            version.c.kind,
            version.c.text_sha256,
            newest_verdict.label("verdict"),
            document.c.key,
        )
        .select_from(document)
        .join(version, version.c.document_id == document.c.id)
        .where(
            document.c.watch_id == bindparam("watch_id"),
            version.c.seq >= func.coalesce(cutoff, 0),
        )
        .order_by(version.c.document_id, version.c.seq)
    )
