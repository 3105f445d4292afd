"""`monitor verify`: every blob re-hashed, every reference and hash chain checked.

Damage (a missing or altered blob, a dangling reference, a version missing from a
document's sequence or altered in its chain) is reported, never "fixed"; repair only
removes orphans — blob files no row refers to, left by a crash between writing a blob and
committing its row."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator

import zstandard
from sqlalchemy import Connection, and_, func, select

from monitor import progress
from monitor.store.blobs import Blobs, UnreadableBlob
from monitor.store.chain import ChainReport, walk
from monitor.store.database import Database, Row
from monitor.store.records import VerifyReport
from monitor.store.schema import blob, blob_data, chain_facts, document, metadata, version, watch

# Chain heads: of statements ({"watch key": chain}) and of watches ({watch: chain}).
Heads = tuple[dict[str, str | None], dict[str, str | None]]


def verify(db: Database, blobs: Blobs, repair: bool = False) -> VerifyReport:
    """Re-hash every blob and check every reference, sequence and chain."""
    report = VerifyReport()
    with db.read() as conn:
        sizes: dict[str, int] = dict(conn.execute(select(blob.c.sha256, blob.c.size)).all())
        report.damage += db.dialect.integrity_problems(conn)
        _check_references(conn, report)
        _check_sequences(conn, report)
        _check_chains(conn, report)
    progress.expect(len(sizes))
    for sha256 in sorted(sizes):
        progress.tick()
        report.blobs += 1
        try:
            compressed = blobs.read(db, sha256)
        except UnreadableBlob as err:
            problem: str | None = f"unreadable ({err})"
        else:
            problem = _blob_problem(blobs, sha256, sizes[sha256], compressed)
        if problem:
            report.damage.append(f"blob {sha256}: {problem}")
    with db.write() as conn:
        # The blobs named now, in the transaction that removes orphans, not those read at
        # the start: `verify` takes no writer lock, and the blobs of versions a daemon
        # committed meanwhile are no orphans (removing them lost those versions' texts).
        named = set(conn.execute(select(blob.c.sha256)).scalars())
        for name, label in list(blobs.names(conn)):
            if name in named and not name.startswith(".tmp-"):
                continue
            report.orphans.append(label)
            if repair:
                blobs.remove(conn, name)
                report.repaired += 1
    return report


def chain_heads(db: Database, watch_ids: Collection[str] | None = None) -> Heads:
    """The chain heads of statements and of watches (all, or of these watches)."""
    with db.read() as conn:
        if watch_ids is None:
            return _heads(conn)
        statements: dict[str, str | None] = {}
        watches: dict[str, str | None] = {}
        for watch_id in watch_ids:
            more, more_watches = _heads(conn, watch_id)
            statements |= more
            watches |= more_watches
        return statements, watches


def _blob_problem(blobs: Blobs, sha256: str, size: int, compressed: bytes | None) -> str | None:
    if compressed is None:
        return "missing"
    try:
        data = blobs.decompress(compressed)
    except zstandard.ZstdError as err:
        return f"unreadable ({err})"
    if hashlib.sha256(data).hexdigest() != sha256:
        return "content does not match its SHA-256"
    if len(data) != size:
        return f"{len(data)} bytes, the blob table says {size}"
    return None


def _check_references(conn: Connection, report: VerifyReport) -> None:
    """Every foreign key of the schema, checked by hand: SQLite enforces them only on
    connections that ask, and a file edited by other tools may not have."""
    for table in metadata.sorted_tables:
        if table is blob_data:
            continue  # bytes no blob row names are orphans, reported as such
        for key in table.foreign_keys:
            column, target = key.parent, key.column
            report.references += conn.execute(
                select(func.count()).select_from(table).where(column.is_not(None))
            ).scalar_one()
            target_alias = target.table.alias("target")
            target_column = target_alias.c[target.name]
            first_column = next(iter(table.primary_key.columns))
            dangling = conn.execute(
                select(first_column, column)
                .select_from(table.outerjoin(target_alias, and_(target_column == column)))
                .where(column.is_not(None), target_column.is_(None))
                .order_by(first_column)
            )
            for row_key, value in dangling:
                report.damage.append(
                    f"{table.name} {row_key}: {column.name} {value} not in {target.table.name}"
                )


def _check_sequences(conn: Connection, report: VerifyReport) -> None:
    """Every document has versions (a gap in their numbering: see _check_chains)."""
    report.versions = conn.execute(select(func.count(version.c.id))).scalar_one()
    empty = (
        select(document.c.id)
        .where(~select(version.c.id).where(version.c.document_id == document.c.id).exists())
        .order_by(document.c.id)
    )
    for (document_id,) in conn.execute(empty):
        report.damage.append(f"document {document_id}: has no version")


def _chain_rows(conn: Connection) -> Iterator[Row]:
    """Every version's linked facts (store/chain.py) in recorded order."""
    for row in conn.execute(chain_facts()).mappings():
        yield dict(row)


def _heads(conn: Connection, watch_id: str | None = None) -> Heads:
    statements = select(document.c.watch_id, document.c.key, document.c.chain_head)
    watches = select(watch.c.id, watch.c.chain_head).where(watch.c.chain_head.is_not(None))
    if watch_id is not None:
        statements = statements.where(document.c.watch_id == watch_id)
        watches = watches.where(watch.c.id == watch_id)
    heads = {f"{w} {k}": head for w, k, head in conn.execute(statements)}
    return heads, {watch_id: head for watch_id, head in conn.execute(watches)}


def _check_chains(conn: Connection, report: VerifyReport) -> None:
    """Each version against its hash chains (store/chain.py): an altered, removed (the
    newest too) or reordered version is damage, named by its statement and number."""
    chains = ChainReport()
    heads, watch_heads = _heads(conn)
    walk(_chain_rows(conn), heads, watch_heads, chains)
    report.damage += chains.damage
