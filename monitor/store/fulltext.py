"""Full-text search over every version ever seen: its title and text, in `version_text`
(an FTS5 table on SQLite, a tsvector on PostgreSQL: dialect/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from sqlalchemy import func, select

from monitor import searchquery
from monitor.store.database import Database
from monitor.store.dialect import MARK_END, MARK_START
from monitor.store.records import SearchHit
from monitor.store.schema import get_meta, set_meta, version

__all__ = ["MARK_END", "MARK_START", "FullText"]

# Versions indexed per transaction: the write lock is held for one batch, not the archive.
_INDEX_BATCH = 200
SEARCH_META = "search_upto"
# A search of the whole archive ranks (bm25, ts_rank) the newest this many matching
# versions, not every match: ranking costs per match, and a word in every statement
# matched all 100,000 versions of the web bench's archive (4-6 s a search under 20
# readers). A query that broad is better narrowed than read; within one watch, every match
# is ranked.
RANKED = 1000


class FullText:
    """`read_blob`: a version's text by its SHA-256 (the archive's, which checks it)."""

    def __init__(self, db: Database, read_blob: Callable[[str], bytes]) -> None:
        self.db = db
        self.read_blob = read_blob

    def index_text(self, limit: int | None = None) -> int:
        """Add versions not yet in the search index (newest ids last); returns how many.

        The index catches up lazily (before a search, or in the background of the web UI)
        instead of in `commit_check`, so checks never pay for it and an archive written by
        an older monitor is indexed the same way as new versions."""
        done = 0
        while limit is None or done < limit:
            added = self._index_batch()
            if not added:
                return done
            done += added
        return done

    def behind(self) -> bool:
        """Whether versions wait to be indexed: two lookups, where catching up reads
        blobs (a reader's search only goes elsewhere to catch up when it must)."""
        with self.db.read() as conn:
            upto = int(get_meta(conn, SEARCH_META) or 0)
            newest = conn.execute(select(func.max(version.c.id))).scalar()
        return newest is not None and newest > upto

    def _index_batch(self) -> int:
        """Index the next batch of versions; how many versions it looked at."""
        with self.db.read() as conn:
            upto = int(get_meta(conn, SEARCH_META) or 0)
            pending = conn.execute(
                select(version.c.id, version.c.text_sha256)
                .where(version.c.id > upto)
                .order_by(version.c.id)
                .limit(_INDEX_BATCH)
            ).all()
        if not pending:
            return 0
        entries = [
            (row.id, *_searchable(self.read_blob(row.text_sha256)))
            for row in pending
            if row.text_sha256
        ]
        with self.db.write() as conn:
            # Another process may have indexed the same batch meanwhile.
            current = int(get_meta(conn, SEARCH_META) or 0)
            fresh = [
                {
                    "id": i,
                    "title": t,
                    "body": b,
                    "title_folded": t.casefold(),
                    "body_folded": b.casefold(),
                }
                for i, t, b in entries
                if i > current
            ]
            if fresh:
                conn.execute(self.db.dialect.index_text(), fresh)
            set_meta(conn, SEARCH_META, str(max(current, pending[-1].id)))
        return len(pending)

    def search(self, query: str, watch_id: str | None = None, limit: int = 200) -> list[SearchHit]:
        """Versions whose title or text match, best first: version, document and a snippet
        with matches between MARK_START and MARK_END. Earlier and removed versions are
        searched too — text that is no longer on the site is found all the same."""
        self.index_text()
        parsed = searchquery.parse(query)
        if parsed is None:
            return []
        where = "AND d.watch_id = :watch" if watch_id else ""
        sql, params = self.db.dialect.search(parsed, where)
        with self.db.read() as conn:
            values = {**params, "watch": watch_id, "limit": limit, "ranked": RANKED - 1}
            rows = conn.execute(sql, values).mappings()
            return [cast("SearchHit", dict(row)) for row in rows]


def _searchable(raw: bytes) -> tuple[str, str]:
    # Read leniently: an odd or older statement must not stop the index from catching up.
    data = json.loads(raw)
    links = [*data.get("links", ()), *data.get("attachments", ())]
    texts = [link.get("text", "") for link in links if isinstance(link, dict)]
    figures = [str(figure) for figure in data.get("figures", ())]
    # The text of its files (monitor/attachments.py) is the statement's too.
    files = [
        str(paragraph)
        for document in data.get("documents", ())
        if isinstance(document, dict)
        for page in document.get("pages", ())
        for paragraph in page
    ]
    return str(data.get("title", "")), "\n".join(
        [*data.get("paragraphs", ()), *figures, *texts, *files]
    )
