"""PostgreSQL: a server that several daemons may share (claims and leases, schedule.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, TextClause, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from monitor import searchquery
from monitor.searchquery import Query
from monitor.store.dialect import MARK_END, MARK_START, SEARCH_COLUMNS, Dialect, Row
from monitor.store.records import StoreError

# Serialises daemons that start together against one database.
_MIGRATION_LOCK = 0x6D6F6E69

_INSERT_TEXT = text(
    "INSERT INTO version_text (version_id, title, body, search) VALUES (:id, :title, :body, "
    "setweight(to_tsvector('simple', :title_folded), 'A') "
    "|| setweight(to_tsvector('simple', :body_folded), 'B')) ON CONFLICT DO NOTHING"
)
_SEARCH = (
    f"SELECT {SEARCH_COLUMNS}, "
    "ts_headline('simple', t.title || E'\\n' || t.body, q, "
    f"'StartSel={MARK_START}, StopSel={MARK_END}, MaxFragments=2, MaxWords=24, MinWords=8') "
    "AS snippet FROM version_text AS t, to_tsquery('simple', :q) AS q, "
    "version AS v, document AS d "
    "WHERE t.search @@ q AND v.id = t.version_id AND d.id = v.document_id {where} "
    "AND t.version_id >= {oldest} "
    "ORDER BY ts_rank(t.search, q) DESC, v.id DESC LIMIT :limit"
)
# The oldest version ranked (fulltext.RANKED), 0 when there are fewer matches: ts_rank reads
# each match's tsvector, and a word in every statement matches every version.
_OLDEST_RANKED = (
    "COALESCE((SELECT t.version_id FROM version_text AS t "
    "WHERE t.search @@ to_tsquery('simple', :q) "
    "ORDER BY t.version_id DESC OFFSET :ranked LIMIT 1), 0)"
)


class PostgreSQL(Dialect):
    name = "postgresql"
    shared = True
    default_blobs = "db"

    def engine(self, root: Path, url: str | None, driver: Any = None) -> Engine:
        parsed = make_url(url or "")
        if parsed.get_backend_name() != "postgresql":
            raise StoreError(f"[store] url must be a postgresql:// URL, not {parsed.drivername}://")
        # psycopg 3 is the driver we install; 'postgresql://' alone would mean psycopg2.
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)

    def lock_migrations(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")

    def turn_lock(self, space: int) -> str | None:
        return f"SELECT pg_advisory_xact_lock({space}, %s)"

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def any_of(self, column: str) -> str:
        return f"{column} = ANY(%s)"

    def seconds(self, column: str) -> str:
        return f"CAST(EXTRACT(EPOCH FROM CAST({column} AS timestamptz)) AS double precision)"

    def many(self, values: list[Any]) -> Any:
        return values

    def driver_rows(self, raw: Any, sql: str, parameters: Any) -> list[Any]:
        with raw.transaction():
            return list(raw.execute(sql, parameters).fetchall())

    def driver_write(self, raw: Any, batches: list[tuple[str, list[Any]]]) -> None:
        with raw.transaction(), raw.cursor() as cursor:
            for sql, rows in batches:
                cursor.executemany(sql, rows)

    def broken(self, raw: Any) -> bool:
        return bool(raw.broken)

    def create_search_index(self, conn: Connection) -> None:
        # A tsvector made from the case-folded text (folded by Python: a database created
        # without a locale lower-cases only ASCII), 'simple' configuration: no stemmer
        # knows Kazakh.
        conn.exec_driver_sql(
            """CREATE TABLE IF NOT EXISTS version_text (
                   version_id BIGINT PRIMARY KEY REFERENCES version(id),
                   title TEXT NOT NULL,
                   body TEXT NOT NULL,
                   search TSVECTOR NOT NULL)"""
        )
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS version_text_search ON version_text USING GIN (search)"
        )

    def index_text(self) -> TextClause:
        return _INSERT_TEXT

    def search(self, query: Query, where: str) -> tuple[TextClause, Row]:
        # Within one watch, every match is ranked: the archive's newest matches may all be
        # elsewhere, and the watch's own are found through the join, match by match.
        oldest = "0" if where else _OLDEST_RANKED
        sql = _SEARCH.format(where=where, oldest=oldest)
        return text(sql), {"q": searchquery.to_tsquery(query)}


DIALECT = PostgreSQL()
