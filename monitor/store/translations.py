"""The language versions of one statement, found from what the archive already holds.

Two signs say documents are translations of one statement, both derived (nothing extra is
stored):

- discovery's `translation_group` (a profile's `translation_group`: gov.kz's detail URL
  without its language), for statements that are watches of their own;
- a key of the form `LANG/ID` in the document's own language with the same page (host
  and path, the query left out) — gov.kz shares the statement id across `en/1234`,
  `ru/1234`, `kk/1234`, and its listings key statements that way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select

from monitor.store.database import Database, Row
from monitor.store.schema import discovered, document, version

# `en/1048252`, `kk/1048252`, `zh-hans/77`: a language code, then the statement's id.
_LANGUAGE_KEY = re.compile(r"(?P<language>[a-z]{2,3}(?:-[a-z0-9]+)?)/(?P<rest>.+)", re.I)


@dataclass(frozen=True)
class LanguageVersion:
    """One language version of a statement and where it stands now."""

    document_id: int
    watch_id: str
    key: str
    language: str | None
    title: str
    url: str
    removed_at: str | None
    last_seq: int
    last_kind: str  # baseline, published, edited, removed or restored
    last_observed_at: str  # when its latest version (text or removal) was first seen
    text_seq: int | None  # its newest version with text (the archived copy to link to)


class _Archive(Protocol):
    db: Database


def language_versions(store: _Archive, document_id: int) -> list[LanguageVersion]:
    """Every language version of the statement `document_id` is one of, itself included
    (alone when it has no known translation), one per language, ordered by language."""
    this = store.db.row(select(document).where(document.c.id == document_id))
    return [] if this is None else _versions(store.db, this, document_id)


def language_versions_of(
    store: _Archive, watch_id: str, key: str, language: str | None, url: str
) -> list[LanguageVersion]:
    """The same for a statement named by its watch and key, which the archive may not hold
    yet (an alert is built before its version is stored): its own entry, if any, is as
    the archive has it so far."""
    this = store.db.row(
        select(document).where(document.c.watch_id == watch_id, document.c.key == key)
    )
    if this is not None:
        return _versions(store.db, this, this["id"])
    probe = {"id": None, "watch_id": watch_id, "key": key, "language": language, "url": url}
    return _versions(store.db, probe, None)


def _versions(db: Database, this: Row, document_id: int | None) -> list[LanguageVersion]:
    ids = _by_discovery(db, this) | _by_key(db, this)
    if document_id is not None:
        ids.add(document_id)
    found = [_language_version(row) for row in _with_latest_versions(db, ids)]
    # One per language: the document asked about, else the one that changed last (a
    # statement archived by two watches is one language version, not two).
    chosen: dict[str | None, LanguageVersion] = {}
    for item in found:
        held = chosen.get(item.language)
        if held is None or _rather(item, held, document_id):
            chosen[item.language] = item
    return sorted(chosen.values(), key=lambda v: (v.language or "", v.watch_id))


def _rather(item: LanguageVersion, held: LanguageVersion, document_id: int | None) -> bool:
    if held.document_id == document_id:
        return False
    return item.document_id == document_id or item.last_observed_at > held.last_observed_at


def _by_discovery(db: Database, this: Row) -> set[int]:
    group = (
        select(discovered.c.translation_group)
        .where(discovered.c.watch_id == this["watch_id"])
        .scalar_subquery()
    )
    watches = select(discovered.c.watch_id).where(discovered.c.translation_group == group)
    query = select(document.c.id).where(document.c.watch_id.in_(watches))
    return {row["id"] for row in db.rows(query)}


def _by_key(db: Database, this: Row) -> set[int]:
    match = _LANGUAGE_KEY.fullmatch(this["key"])
    if match is None or (this["language"] or "").lower() != match["language"].lower():
        return set()
    query = select(document.c.id, document.c.key, document.c.language, document.c.url).where(
        document.c.key.endswith("/" + match["rest"], autoescape=True)
    )
    page = _page(this["url"])
    found = set()
    for row in db.rows(query):
        other = _LANGUAGE_KEY.fullmatch(row["key"])
        if (
            other is not None
            and other["rest"] == match["rest"]
            and (row["language"] or "").lower() == other["language"].lower()
            and _page(row["url"]) == page
        ):
            found.add(row["id"])
    return found


def _page(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path.rstrip("/")


def _with_latest_versions(db: Database, ids: set[int]) -> list[Row]:
    newest = (
        select(func.max(version.c.seq))
        .where(version.c.document_id == document.c.id)
        .correlate(document)
        .scalar_subquery()
    )
    newest_text = (
        select(func.max(version.c.seq))
        .where(version.c.document_id == document.c.id, version.c.text_sha256.is_not(None))
        .correlate(document)
        .scalar_subquery()
    )
    query = (
        select(
            document,
            version.c.seq.label("last_seq"),
            version.c.kind.label("last_kind"),
            version.c.observed_at.label("last_observed_at"),
            newest_text.label("text_seq"),
        )
        .join(version, (version.c.document_id == document.c.id) & (version.c.seq == newest))
        .where(document.c.id.in_(sorted(ids)))
    )
    return db.rows(query)


def _language_version(row: Row) -> LanguageVersion:
    return LanguageVersion(
        document_id=row["id"],
        watch_id=row["watch_id"],
        key=row["key"],
        language=row["language"],
        title=row["title"],
        url=row["url"],
        removed_at=row["removed_at"],
        last_seq=row["last_seq"],
        last_kind=row["last_kind"],
        last_observed_at=row["last_observed_at"],
        text_seq=row["text_seq"],
    )
