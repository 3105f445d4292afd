"""What the web UI reads and writes beyond the pipeline's rows: timelines, annotations,
users, watches edited in the UI, and full-text search over every version ever seen.

A mixin of `Store`, so the UI goes through the same connection, transactions and blob
checks as everything else ("nothing writes around the store").
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, func, select, text

from monitor import searchquery
from monitor.store.records import now_iso
from monitor.store.schema import (
    annotation,
    app_user,
    blob,
    document,
    get_meta,
    response,
    set_meta,
    ui_watch,
    version,
    watch,
    watch_state,
)
from monitor.store.sql import upsert

Row = dict[str, Any]

ROLES = ("viewer", "editor", "admin")
VERDICTS = ("significant", "noise")
# Versions indexed per transaction: the write lock is held for one batch, not the archive.
_INDEX_BATCH = 200
_SEARCH_META = "search_upto"
# Snippet highlight markers: control characters no statement text contains, replaced by
# <mark> after the snippet has been HTML-escaped.
MARK_START, MARK_END = "\x02", "\x03"


class ReviewMixin:
    """Methods of `Store` for the web UI (see monitor/store/core.py for the rest)."""

    _sqlite: bool

    def _rows(self, query: Any) -> list[Row]:
        raise NotImplementedError

    def _row(self, query: Any) -> Row | None:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def read_blob(self, sha256: str) -> bytes:
        raise NotImplementedError

    # --- watches -------------------------------------------------------------------------

    def watch_rows(self) -> list[Row]:
        """Every watch the archive knows, with its state (configured or not any more)."""
        return self._rows(
            select(watch, *[c for c in watch_state.c if c.name != "watch_id"])
            .outerjoin(watch_state, watch_state.c.watch_id == watch.c.id)
            .order_by(watch.c.id)
        )

    def document_by_id(self, document_id: int) -> Row | None:
        return self._row(select(document).where(document.c.id == document_id))

    def last_seq(self, document_id: int) -> int:
        with self._read() as conn:
            query = select(func.max(version.c.seq)).where(version.c.document_id == document_id)
            return int(conn.execute(query).scalar_one() or 0)

    def timeline(self, document_id: int, first: int = 1, last: int | None = None) -> list[Row]:
        """Versions `first`..`last` (by number) of a statement, oldest first, with the size
        of their text and of the response they came from, and their newest annotation
        (verdict, note, by whom)."""
        newest = (
            select(func.max(annotation.c.id))
            .where(annotation.c.version_id == version.c.id)
            .correlate(version)
            .scalar_subquery()
        )
        query = (
            select(
                version,
                blob.c.size.label("text_size"),
                response.c.body_size,
                annotation.c.verdict,
                annotation.c.note,
                annotation.c.username.label("annotated_by"),
            )
            .outerjoin(blob, blob.c.sha256 == version.c.text_sha256)
            .outerjoin(response, response.c.id == version.c.response_id)
            .outerjoin(annotation, annotation.c.id == newest)
            .where(version.c.document_id == document_id, version.c.seq >= first)
            .order_by(version.c.seq)
        )
        if last is not None:
            query = query.where(version.c.seq <= last)
        return self._rows(query)

    # --- annotations ---------------------------------------------------------------------

    def annotate(
        self,
        document_id: int,
        version_id: int | None,
        username: str,
        verdict: str | None,
        note: str = "",
    ) -> int:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        with self._write() as conn:
            result = conn.execute(
                annotation.insert().values(
                    document_id=document_id,
                    version_id=version_id,
                    username=username,
                    verdict=verdict,
                    note=note,
                    created_at=now_iso(),
                )
            )
        return int(result.inserted_primary_key[0])

    def annotations(self, document_id: int) -> list[Row]:
        """Every annotation of a statement and its versions, newest first."""
        return self._rows(
            select(annotation)
            .where(annotation.c.document_id == document_id)
            .order_by(annotation.c.id.desc())
        )

    def verdicts(self, watch_id: str, limit: int = 200) -> list[Row]:
        """The `limit` versions of a watch most recently given a verdict, with their newest
        verdict, newest first (the input of ignore suggestions)."""
        newest = (
            select(func.max(annotation.c.id).label("id"))
            .where(annotation.c.version_id.is_not(None), annotation.c.verdict.is_not(None))
            .group_by(annotation.c.version_id)
            .subquery()
        )
        return self._rows(
            select(
                annotation.c.version_id,
                annotation.c.verdict,
                version.c.seq,
                version.c.text_sha256,
                version.c.document_id,
            )
            .join(newest, newest.c.id == annotation.c.id)
            .join(version, version.c.id == annotation.c.version_id)
            .join(document, document.c.id == version.c.document_id)
            .where(document.c.watch_id == watch_id)
            .order_by(annotation.c.id.desc())
            .limit(limit)
        )

    # --- users ---------------------------------------------------------------------------

    def user(self, username: str) -> Row | None:
        return self._row(select(app_user).where(app_user.c.username == username))

    def users(self) -> list[Row]:
        return self._rows(select(app_user).order_by(app_user.c.username))

    def put_user(self, username: str, password_hash: str | None, role: str) -> None:
        """Create a user, or change an existing one's role (and password, when given)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        now = now_iso()
        with self._write() as conn:
            exists = conn.execute(
                select(app_user.c.username).where(app_user.c.username == username)
            ).scalar_one_or_none()
            if exists is None:
                if password_hash is None:
                    raise ValueError(f"a new user ({username}) needs a password")
                conn.execute(
                    app_user.insert().values(
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        created_at=now,
                        updated_at=now,
                    )
                )
                return
            values = {"role": role, "updated_at": now}
            if password_hash is not None:
                values["password_hash"] = password_hash
            conn.execute(app_user.update().where(app_user.c.username == username).values(values))

    def delete_user(self, username: str) -> bool:
        with self._write() as conn:
            result = conn.execute(app_user.delete().where(app_user.c.username == username))
        return result.rowcount == 1

    # --- watches edited in the UI --------------------------------------------------------

    def ui_watches(self) -> list[Row]:
        rows = self._rows(select(ui_watch).order_by(ui_watch.c.id))
        for row in rows:
            row["config"] = json.loads(row["config"])
        return rows

    def put_ui_watch(self, watch_id: str, settings: dict[str, Any], username: str) -> None:
        values = {
            "id": watch_id,
            "config": json.dumps(settings, ensure_ascii=False, sort_keys=True),
            "updated_at": now_iso(),
            "updated_by": username,
        }
        with self._write() as conn:
            conn.execute(
                upsert(conn, ui_watch, "id", values, ["config", "updated_at", "updated_by"])
            )

    def delete_ui_watch(self, watch_id: str) -> bool:
        with self._write() as conn:
            result = conn.execute(ui_watch.delete().where(ui_watch.c.id == watch_id))
        return result.rowcount == 1

    # --- settings --------------------------------------------------------------------------

    def secret(self, name: str, make: Any) -> str:
        """A value kept in `meta`, created once by `make()` (e.g. the UI's signing key), so
        every process on the same archive agrees on it across restarts."""
        key = f"secret:{name}"
        with self._write() as conn:
            value = get_meta(conn, key)
            if value is None:
                value = str(make())
                set_meta(conn, key, value)
        return value

    # --- full-text search ----------------------------------------------------------------

    def index_text(self, limit: int | None = None) -> int:
        """Add versions not yet in the search index (newest ids last); returns how many.

        The index catches up lazily (before a search, or in the background of the web UI)
        instead of in `commit_check`, so checks never pay for it and an archive written by
        an older monitor is indexed the same way as new versions."""
        done = 0
        while limit is None or done < limit:
            with self._read() as conn:
                upto = int(get_meta(conn, _SEARCH_META) or 0)
                pending = conn.execute(
                    select(version.c.id, version.c.text_sha256)
                    .where(version.c.id > upto)
                    .order_by(version.c.id)
                    .limit(_INDEX_BATCH)
                ).all()
            if not pending:
                return done
            entries = [
                (row.id, *_searchable(self.read_blob(row.text_sha256)))
                for row in pending
                if row.text_sha256
            ]
            with self._write() as conn:
                # Another process may have indexed the same batch meanwhile.
                current = int(get_meta(conn, _SEARCH_META) or 0)
                fresh = [entry for entry in entries if entry[0] > current]
                if fresh:
                    conn.execute(
                        _INSERT_TEXT_SQLITE if self._sqlite else _INSERT_TEXT_PG,
                        [
                            {
                                "id": i,
                                "title": t,
                                "body": b,
                                "title_folded": t.casefold(),
                                "body_folded": b.casefold(),
                            }
                            for i, t, b in fresh
                        ],
                    )
                set_meta(conn, _SEARCH_META, str(max(current, pending[-1].id)))
            done += len(pending)
        return done

    def search(self, query: str, watch_id: str | None = None, limit: int = 200) -> list[Row]:
        """Versions whose title or text match, best first: version, document and a snippet
        with matches between MARK_START and MARK_END. Earlier and removed versions are
        searched too — text that is no longer on the site is found all the same."""
        self.index_text()
        parsed = searchquery.parse(query)
        if parsed is None:
            return []
        if self._sqlite:
            sql, params = _SEARCH_SQLITE, {"q": searchquery.to_fts5(parsed)}
        else:
            sql, params = _SEARCH_PG, {"q": searchquery.to_tsquery(parsed)}
        where = "AND d.watch_id = :watch" if watch_id else ""
        with self._read() as conn:
            rows = conn.execute(
                text(sql.format(where=where)), {**params, "watch": watch_id, "limit": limit}
            ).mappings()
            return [dict(row) for row in rows]


def _searchable(raw: bytes) -> tuple[str, str]:
    # Read leniently: an odd or older statement must not stop the index from catching up.
    data = json.loads(raw)
    links = [*data.get("links", ()), *data.get("attachments", ())]
    texts = [link.get("text", "") for link in links if isinstance(link, dict)]
    figures = [str(figure) for figure in data.get("figures", ())]
    return str(data.get("title", "")), "\n".join([*data.get("paragraphs", ()), *figures, *texts])


_INSERT_TEXT_SQLITE = text(
    "INSERT INTO version_text (rowid, title, body) VALUES (:id, :title, :body)"
)
_INSERT_TEXT_PG = text(
    "INSERT INTO version_text (version_id, title, body, search) VALUES (:id, :title, :body, "
    "setweight(to_tsvector('simple', :title_folded), 'A') "
    "|| setweight(to_tsvector('simple', :body_folded), 'B')) ON CONFLICT DO NOTHING"
)
_RESULT_COLUMNS = """v.id, v.seq, v.kind, v.observed_at, v.document_id, d.watch_id, d.key,
    d.title, d.removed_at,
    (SELECT MAX(seq) FROM version AS last WHERE last.document_id = v.document_id) AS last_seq"""
_SEARCH_SQLITE = (
    f"SELECT {_RESULT_COLUMNS}, "
    f"snippet(version_text, -1, '{MARK_START}', '{MARK_END}', '…', 24) AS snippet "
    "FROM version_text JOIN version AS v ON v.id = version_text.rowid "
    "JOIN document AS d ON d.id = v.document_id "
    "WHERE version_text MATCH :q {where} ORDER BY bm25(version_text, 4.0, 1.0) LIMIT :limit"
)
_SEARCH_PG = (
    f"SELECT {_RESULT_COLUMNS}, "
    "ts_headline('simple', t.title || E'\\n' || t.body, q, "
    f"'StartSel={MARK_START}, StopSel={MARK_END}, MaxFragments=2, MaxWords=24, MinWords=8') "
    "AS snippet FROM version_text AS t, to_tsquery('simple', :q) AS q, "
    "version AS v, document AS d "
    "WHERE t.search @@ q AND v.id = t.version_id AND d.id = v.document_id {where} "
    "ORDER BY ts_rank(t.search, q) DESC, v.id DESC LIMIT :limit"
)
