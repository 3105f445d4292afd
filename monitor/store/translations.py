"""The language versions of one statement, found from what the archive already holds.

Three signs say documents are translations of one statement, all derived (nothing extra is
stored):

- discovery's `translation_group` (a profile's `translation_group`: gov.kz's detail URL
  without its language), for statements that are watches of their own;
- a key of the form `LANG/ID` in the document's own language with the same page (host
  and path, the query left out) — gov.kz shares the statement id across `en/1234`,
  `ru/1234`, `kk/1234`, and its listings key statements that way;
- elsewhere, the page's own `<link rel="alternate" hreflang="…" href="…">` (read from its
  newest archived response): a watched document at one of those addresses is that
  language's version, and the link's language stands in where a watch names none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from sqlalchemy import bindparam, func, select

from monitor.store.database import Database, Row
from monitor.store.schema import discovered, document, response, version

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

    def read_blob(self, sha256: str) -> bytes: ...


def language_versions(store: _Archive, document_id: int) -> list[LanguageVersion]:
    """Every language version of the statement `document_id` is one of, itself included
    (alone when it has no known translation), one per language, ordered by language."""
    this = store.db.row(select(document).where(document.c.id == document_id))
    return [] if this is None else _versions(store, this, document_id)


def language_versions_of(
    store: _Archive,
    watch_id: str,
    key: str,
    language: str | None,
    url: str,
    bodies: Mapping[str, bytes] | None = None,
) -> list[LanguageVersion]:
    """The same for a statement named by its watch and key, which the archive may not hold
    yet (an alert is built before its version is stored): its own entry, if any, is as
    the archive has it so far. `bodies`: response bodies the caller holds, by SHA-256."""
    found = store.db.prepared_rows(
        store.db.prepared("translations: document", _document_query),
        {"watch_id": watch_id, "key": key},
    )
    this = found[0] if found else None
    if this is not None:
        return _versions(store, this, this["id"], bodies)
    probe = {"id": None, "watch_id": watch_id, "key": key, "language": language, "url": url}
    return _versions(store, probe, None)


def _versions(
    store: _Archive, this: Row, document_id: int | None, bodies: Mapping[str, bytes] | None = None
) -> list[LanguageVersion]:
    db = store.db
    hreflang = _by_hreflang(store, document_id, bodies or {})
    ids = _by_discovery(db, this) | _by_key(db, this) | set(hreflang)
    if document_id is not None:
        ids.add(document_id)
    found = [_language_version(row, hreflang) for row in _with_latest_versions(db, ids)]
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
    query = db.prepared("translations: by discovery", _by_discovery_query)
    return {row["id"] for row in db.prepared_rows(query, {"watch_id": this["watch_id"]})}


# Read for every alert (an alert names the statement's other language versions): prepared
# once, run on the driver (see `Database.prepared_rows`).
def _document_query() -> Any:
    return select(document).where(
        document.c.watch_id == bindparam("watch_id"), document.c.key == bindparam("key")
    )


def _by_discovery_query() -> Any:
    group = (
        select(discovered.c.translation_group)
        .where(discovered.c.watch_id == bindparam("watch_id"))
        .scalar_subquery()
    )
    watches = select(discovered.c.watch_id).where(discovered.c.translation_group == group)
    return select(document.c.id).where(document.c.watch_id.in_(watches))


def _newest_response_query() -> Any:
    return (
        select(response.c.body_sha256, response.c.final_url)
        .join(version, version.c.response_id == response.c.id)
        .where(version.c.document_id == bindparam("document_id"))
        .order_by(version.c.seq.desc())
        .limit(1)
    )


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


# `<link rel="alternate" hreflang="ru" href="/ru/statement">`, attributes in any order and
# quoting; read from the head of the page only (the links stand there).
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_ATTRIBUTE = re.compile(r"""([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.I)
_HEAD_BYTES = 256 * 1024


def _by_hreflang(
    store: _Archive, document_id: int | None, bodies: Mapping[str, bytes]
) -> dict[int, str]:
    """Documents the statement's newest archived page names as its language versions, by
    id, with the language the page gives each (itself included, when it names itself);
    the page is read from `bodies` (by SHA-256) when it is there."""
    if document_id is None:
        return {}
    rows = store.db.prepared_rows(
        store.db.prepared("translations: newest response", _newest_response_query),
        {"document_id": document_id},
    )
    if not rows:
        return {}
    newest = rows[0]
    try:
        body = bodies.get(newest["body_sha256"])
        if body is None:
            body = store.read_blob(newest["body_sha256"])
        head = body[:_HEAD_BYTES]
    except Exception:  # a blob unreadable here is verify's to report, not this page's
        return {}
    languages = _alternates(head.decode("utf-8", "replace"), newest["final_url"])
    if not languages:
        return {}
    addresses = {variant: url for url in languages for variant in _url_variants(url)}
    query = select(document.c.id, document.c.url).where(document.c.url.in_(sorted(addresses)))
    return {row["id"]: languages[addresses[row["url"]]] for row in store.db.rows(query)}


def _alternates(html: str, base: str) -> dict[str, str]:
    """The page's hreflang links: absolute address -> language (x-default left out)."""
    found = {}
    for tag in _LINK_TAG.findall(html):
        # findall gives '' for the two quotings a value did not use.
        attributes = {
            name.lower(): double or single or bare
            for name, double, single, bare in _ATTRIBUTE.findall(tag)
        }
        language = attributes.get("hreflang", "").strip().lower()
        rel = attributes.get("rel", "").lower().split()
        href = attributes.get("href", "").strip()
        if "alternate" in rel and language and language != "x-default" and href:
            found[urljoin(base, href)] = language.split("-")[0]
    return found


def _url_variants(url: str) -> tuple[str, ...]:
    """An address as a watch may have been given it: as linked, and with or without the
    trailing slash of its path."""
    trimmed = url.rstrip("/")
    return (url, trimmed, trimmed + "/")


def _page(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc.lower(), parts.path.rstrip("/")


def _with_latest_versions(db: Database, ids: set[int]) -> list[Row]:
    if len(ids) == 1:  # a statement in one language, most of them
        query = db.prepared("translations: latest version", lambda: _latest_versions(None))
        return db.prepared_rows(query, {"id": next(iter(ids))})
    return db.rows(_latest_versions(sorted(ids)))


def _latest_versions(ids: list[int] | None) -> Any:
    """Documents with their latest version: these `ids`, or (None) the one `id` bound."""
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
    query = select(
        document,
        version.c.seq.label("last_seq"),
        version.c.kind.label("last_kind"),
        version.c.observed_at.label("last_observed_at"),
        newest_text.label("text_seq"),
    ).join(version, (version.c.document_id == document.c.id) & (version.c.seq == newest))
    return query.where(
        document.c.id.in_(ids) if ids is not None else document.c.id == bindparam("id")
    )


def _language_version(row: Row, hreflang: dict[int, str]) -> LanguageVersion:
    return LanguageVersion(
        document_id=row["id"],
        watch_id=row["watch_id"],
        key=row["key"],
        language=row["language"] or hreflang.get(row["id"]),
        title=row["title"],
        url=row["url"],
        removed_at=row["removed_at"],
        last_seq=row["last_seq"],
        last_kind=row["last_kind"],
        last_observed_at=row["last_observed_at"],
        text_seq=row["text_seq"],
    )
