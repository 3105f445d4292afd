"""The reading side of the UI: watches, statements and their timelines, diffs, archived
snapshots, annotations, search, feeds and exports."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import nh3
from jinja2 import Environment
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from monitor.atom import feed_bytes
from monitor.charset import decode_body
from monitor.clock import iso, parse_iso
from monitor.config import MonitorConfig, StoreConfig, WatchConfig
from monitor.extract import Statement
from monitor.isolate import InlineWork, Work, WorkerPool, WorkFailed
from monitor.languages import (
    CHANGED,
    LanguageState,
    divergence,
    language_name,
    latest_change,
    standing,
)
from monitor.permalinks import statement_path, version_path
from monitor.redact import redact_deep, redact_headers, redact_response_headers, redact_text
from monitor.searchquery import Term
from monitor.searchquery import parse as parse_query
from monitor.store import Store
from monitor.store.furniture import host_of
from monitor.store.notes import newest_annotations, noted, version_annotations
from monitor.store.provenance import chain, response_tls
from monitor.store.records import (
    DocumentRow,
    NotedRow,
    ResponseRow,
    SearchHit,
    VersionStampRow,
    VersionWithDocumentRow,
)
from monitor.store.review import MARK_END, MARK_START, VERDICTS
from monitor.store.timestamps import version_stamp
from monitor.store.translations import language_versions
from monitor.store.wayback import copies_of
from monitor.web.diffview import DiffView, PairCache, failed_view, view_in_worker, view_of
from monitor.web.i18n import LANGUAGES, translator
from monitor.web.kept import KeptByMark
from monitor.web.memento import memento_headers
from monitor.web.pages import (
    Missing,
    Pages,
    Searches,
    Visit,
    WatchIndex,
    local_path,
    page,
    version_url,
)
from monitor.web.suggest import FragmentCache, ignore_suggestions
from monitor.web.visual import version_shots, watch_shots

if TYPE_CHECKING:
    from monitor.export import ExportStores

# A watch whose last change is this recent shows as "changed".
CHANGED_FOR = timedelta(hours=24)
# Pages of the table of every watch kept (filters, page number, language).
WATCH_PAGES_KEPT = 256
# Versions per page of a statement's timeline.
TIMELINE_PAGE = 500
# Watches per page of the table of every watch (/watches/all).
WATCHES_PAGE = 200
# A word of a note, as the text search reads words (letters and digits of any script).
_NOTE_WORD = re.compile(r"\w+")
# Paragraphs of each language version shown side by side on a statement's page.
LANGUAGE_PARAGRAPHS = 3
# Archived bodies larger than this are offered for download, not shown inline.
_INLINE_LIMIT = 2_000_000
# Archived pages: no script, no network, no plugin, no form; inline styles and data:
# images only. `sandbox` gives the document an opaque origin even when opened directly.
ARCHIVE_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Media types an archived body is served with; anything else is served as bytes.
_RENDERABLE = ("text/html", "text/plain", "application/json", "application/xml", "text/xml")

logger = logging.getLogger(__name__)


# Hits a search of the UI shows (store.search's default).
SEARCH_HITS = 200


class ReadingPages(Pages):
    def __init__(
        self, *args: Any, work: Work | None = None, exports: Work | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.fragments = FragmentCache()
        self.diffs: PairCache[DiffView] = PairCache()
        self.watch_index = WatchIndex()
        self.searches = Searches()
        self.timeline_rows = TimelineRows(self.env)
        self.watch_rows = KeptRows(self.env, "watch_row.html.j2")
        # Pages of the table of every watch (see `watches`).
        self._watch_pages: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # The ids of every watch the archive knows, and their number then (`_known_ids`).
        self._known: tuple[int, set[str]] | None = None
        # Statements' pages: (data mark, snapshot, title, UTF-8 main part) by path, query
        # and language.
        self._statement_pages: KeptByMark[tuple[str, bytes]] = KeptByMark(WATCH_PAGES_KEPT)
        # The search page's main parts: (data mark, UTF-8 HTML) by query, watch, language.
        self._search_pages: KeptByMark[bytes] = KeptByMark(WATCH_PAGES_KEPT)
        # Where diffs of what sites sent are computed: a worker pool with time and memory
        # limits (monitor/web/app.py); in this process only for tools and tests.
        self.work: Work = work or InlineWork()
        # Where exports are written: a worker process (web/app.py), else a thread of this
        # one on the stores kept here (tools and tests).
        self.exports: Work = exports or InlineWork()
        self._export_stores: ExportStores | None = None

    @property
    def export_stores(self) -> ExportStores:
        """The stores exports read with in this process, when they have no worker (made
        at the first: monitor.export and warcio are imported then, not at the start)."""
        if self._export_stores is None:
            from monitor.export import ExportStores

            self._export_stores = ExportStores()
        return self._export_stores

    def close_exports(self) -> None:
        if self._export_stores is not None:
            self._export_stores.close()

    # --- watches ---------------------------------------------------------------------------

    @page()
    async def watches(self, request: Request, visit: Visit) -> Response:
        query = request.query_params.get("q", "").strip().lower()
        wanted = request.query_params.get("status", "")
        try:
            number = max(1, int(request.query_params.get("page") or 1))
        except ValueError:
            number = 1
        # The page as made last, while the archive's data mark, the snapshot of the
        # watches and every "changed" on it hold: reading 10,000 ids and the page's states
        # cost most of each request.
        config, mark, now = self.config, self.store.overview.data_mark(), datetime.now(UTC)
        asked = (query, wanted, number, visit.language)
        kept = self._watch_pages.get(asked)
        if kept is None or kept[0] != mark or kept[1] is not config or now >= kept[2]:
            kept = (mark, config, *self._watch_table(config, query, wanted, number, visit, now))
            if len(self._watch_pages) >= WATCH_PAGES_KEPT:
                self._watch_pages.clear()
            self._watch_pages[asked] = kept
        _mark, _config, _until, rendered, number, pages, total = kept
        kept_params = [(k, v) for k, v in request.query_params.multi_items() if k != "page" and v]
        return self.render(
            visit,
            "watches.html.j2",
            rendered=rendered,
            q=query,
            status=wanted,
            page=number,
            pages=pages,
            total=total,
            page_url=lambda n: "/watches/all?" + urlencode([*kept_params, ("page", n)]),
        )

    def _watch_table(
        self,
        config: MonitorConfig,
        query: str,
        wanted: str,
        number: int,
        visit: Visit,
        now: datetime,
    ) -> tuple[datetime, list[Markup], int, int, int]:
        """A page of the table of every watch: until when it holds (its first "changed"
        to end), its rows rendered, its number, how many pages and watches."""
        configured = self.watch_index.by_id(config)
        if query or wanted:  # every watch's row is looked at
            table = {row[0]: row for row in self.store.watch_table()}
            known: Collection[str] = table.keys()
        else:  # only the page's rows are read, below
            table, known = {}, self._known_ids()
        ids = list(configured) + sorted(set(known) - configured.keys())
        ui_ids, _found = self.store.watch_sources()
        made: list[dict[str, Any]] = []

        def entry(watch_id: str) -> dict[str, Any]:
            made.append(_watch_entry(watch_id, configured.get(watch_id), table, ui_ids, now))
            return made[-1]

        # Pages of WATCHES_PAGE rows: 10,000 watches were one table of 3 MB, 600 ms to make;
        # without a filter, only the page's rows are made at all.
        if query or wanted:
            rows = [
                e
                for e in map(entry, ids)
                if (not wanted or e["status"] == wanted) and (not query or query in e["search"])
            ]
            total = len(rows)
            pages = max(1, -(-total // WATCHES_PAGE))
            number = min(pages, number)
            shown = rows[(number - 1) * WATCHES_PAGE : number * WATCHES_PAGE]
        else:
            total = len(ids)
            pages = max(1, -(-total // WATCHES_PAGE))
            number = min(pages, number)
            chosen = ids[(number - 1) * WATCHES_PAGE : number * WATCHES_PAGE]
            table = {row[0]: row for row in self.store.overview.watch_table_of(chosen)}
            shown = [entry(i) for i in chosen]
        until = min(
            (_parse(e["since"]) + CHANGED_FOR for e in made if e["status"] == "changed"),
            default=datetime.max.replace(tzinfo=UTC),
        )
        _ = translator(visit.language)
        rendered = [
            Markup(self.watch_rows.render((visit.language, *w.values()), _=_, w=w)) for w in shown
        ]
        return until, rendered, number, pages, total

    def _known_ids(self) -> set[str]:
        """The ids of every watch the archive knows, read again only when their number
        changed (10,000 ids cost 5 ms of each page of the table while a daemon writes)."""
        count = self.store.overview.watches_mark()  # first: one added after it shows next
        if self._known is None or self._known[0] != count:
            self._known = (count, set(self.store.overview.watch_ids()))
        return self._known[1]

    @page()
    async def watch(self, request: Request, visit: Visit) -> Response:
        watch, configured = self.find_watch(request.path_params["watch"])
        # A watch saved a moment ago has no row yet: it shows as never checked.
        state = self.store.watch_row(watch.id) or dict.fromkeys(_STATE_SHOWN)
        status, since = watch_status(state)
        return self.render(
            visit,
            "watch.html.j2",
            watch=watch,
            configured=configured,
            from_ui=self.store.is_ui_watch(watch.id),
            state=state,
            status=status,
            since=since,
            # A discovering listing's statements are archived under the watches it found.
            documents=[
                {**d, "watch_id": w}
                for w in self.store.family(watch.id)
                for d in self.store.documents(w)
            ],
            checks=self.store.checks(watch.id, limit=10),
            # Discovery: the listing that found this statement and its translations, or
            # the statement watches this listing found.
            found_by=self.store.discovery_of(watch.id),
            translations=self.store.translations(watch.id),
            found=self.store.discovered([watch.id]) if watch.discover else [],
            suggestions=(
                ignore_suggestions(self.store, watch, self.fragments) if configured else []
            ),
            # What the archive taught this watch (and its host) is furniture.
            furniture=self.store.furniture_items(
                [("watch", watch.id), ("host", host_of(watch.url))]
            ),
            screenshots=watch_shots(self.store, watch.id) if watch.screenshot else [],
        )

    def find_watch(self, watch_id: str) -> tuple[WatchConfig, bool]:
        """A configured watch, or one the archive still holds after it left the config."""
        watch = self.watch_index.get(self.config, watch_id)
        if watch is not None:
            return watch, True
        row = self.store.watch_row(watch_id)
        if row is not None:
            return WatchConfig.model_construct(id=row["id"], url=row["url"]), False
        raise Missing(f"no watch {watch_id!r}")

    # --- a statement ---------------------------------------------------------------------

    def _document(self, watch_id: str, key: str | None) -> DocumentRow:
        document = self.store.document(watch_id, key) if key else None
        if document is None:
            raise Missing(f"no statement {key!r} in watch {watch_id!r}")
        return document

    @page()
    async def statement(self, request: Request, visit: Visit) -> Response:
        # The page as made last for this path, query and language while the archive's data
        # mark and the snapshot of the watches hold: nothing on it reads the clock or the
        # reader (its ten reads and rendering were 10 ms).
        config = self.config
        mark = self.store.overview.data_mark()  # first: a commit after it shows next time
        asked = (request.url.path, request.url.query, visit.language)
        kept = self._statement_pages.get(asked, mark, config)
        if kept is not None:
            return self.render_main(visit, "statement.html.j2", kept[1], title=kept[0])
        watch, _configured = self.find_watch(request.path_params["watch"])
        document = self._document(watch.id, request.query_params.get("key"))
        last = self.store.last_seq(document["id"])
        # Pages of TIMELINE_PAGE versions, the newest page first: a statement edited
        # thousands of times opens at once, and every version is a page away.
        pages = max(1, -(-last // TIMELINE_PAGE))
        try:
            number = min(pages, max(1, int(request.query_params.get("page") or pages)))
        except ValueError:
            number = pages
        first = (number - 1) * TIMELINE_PAGE + 1
        versions = self.store.timeline(document["id"], first, first + TIMELINE_PAGE - 1)
        main = self.main_part(
            visit,
            "statement_main.html.j2",
            watch=watch,
            document=document,
            rows=self.timeline_rows.html(visit.language, watch.id, document["key"], versions, last),
            last=last,
            page=number,
            pages=pages,
            per_page=TIMELINE_PAGE,
            annotations=self.store.annotations(document["id"]),
            languages=self._languages(document, visit),
        )
        self._statement_pages.put(asked, mark, (document["title"], main), config)
        return self.render_main(visit, "statement.html.j2", main, title=document["title"])

    def _languages(self, document: DocumentRow, visit: Visit) -> dict[str, Any]:
        """The statement's language versions side by side, each with where it stands and
        the start of its current text, and the sentence that says how they diverge."""
        versions = language_versions(self.store, document["id"])
        if len(versions) < 2:
            return {"columns": [], "divergence": None}
        _ = translator(visit.language)
        zone = self.config.alerts.timezone
        states = [LanguageState(v.language, v.last_kind, v.last_observed_at) for v in versions]
        at = latest_change(states)
        columns = []
        for item, state in zip(versions, states, strict=True):
            shown = None
            if item.text_seq is not None:
                shown = self._statement(self.store.version_at(item.document_id, item.text_seq))
            columns.append(
                {
                    "version": item,
                    "name": language_name(item.language, _),
                    "standing": standing(state, at, _, zone),
                    "changed": state.kind in CHANGED and state.at == at,
                    "this": item.document_id == document["id"],
                    "title": shown.title if shown else item.title,
                    "paragraphs": shown.paragraphs[:LANGUAGE_PARAGRAPHS] if shown else [],
                    "more": max(0, len(shown.paragraphs) - LANGUAGE_PARAGRAPHS) if shown else 0,
                    "page": statement_path(item.watch_id, item.key),
                    "archived": (
                        version_path(item.watch_id, item.key, item.text_seq)
                        if item.text_seq
                        else None
                    ),
                }
            )
        return {"columns": columns, "divergence": divergence(states, at, _, zone)}

    @page()
    async def diff(self, request: Request, visit: Visit) -> Response:
        """`?key=KEY&b=SEQ[&a=SEQ]` (versions of one statement by number, a = b-1 when
        left out: the permalink of alerts), or `?b=ID[&a=ID]` by version id."""
        watch, _configured = self.find_watch(request.path_params["watch"])
        params = request.query_params
        key = params.get("key")
        try:
            a_ref = int(params["a"]) if params.get("a") else None
            b_ref = int(params["b"]) if params.get("b") else None
        except ValueError:
            raise Missing("versions are given by number") from None
        if key:
            document = self._document(watch.id, key)
            last = self.store.last_seq(document["id"])
            b = self.store.version_at(document["id"], b_ref or last)
            if b is None:
                raise Missing(f"no version {b_ref} of {key}")
            a = self.store.version_at(document["id"], a_ref if a_ref else b["seq"] - 1)
        else:
            # By version ids (links from before versions were numbered): moved permanently
            # to the same versions by number.
            b = self._version(watch.id, b_ref)
            a = self._version(watch.id, a_ref) if a_ref else None
            target = f"/watch/{quote(watch.id, safe='')}/diff?key={quote(b['key'], safe='')}"
            target += f"&b={b['seq']}" + (f"&a={a['seq']}" if a else "")
            if params.get("view"):
                target += f"&view={quote(params['view'], safe='')}"
            return RedirectResponse(target, status_code=301)
        if a is not None and a["document_id"] != b["document_id"]:
            raise Missing("both versions must be of the same statement")
        if a is not None and a["seq"] > b["seq"]:
            a, b = b, a
        pair = PairCache.key(a["id"] if a else None, b["id"], watch.ignore)
        view = self.diffs.get(pair)
        if view is None:
            diff = view_in_worker if isinstance(self.work, WorkerPool) else view_of
            try:
                view = await self.work.run(diff, self._text(a), self._text(b), list(watch.ignore))
                self.diffs.put(pair, view)
            except WorkFailed as err:
                # A page (or a rule) over the worker's limits: this diff says so, the server
                # and every other page go on (and it is tried again at the next view).
                view = failed_view(err.reason)
        mode = "side" if params.get("view") == "side" else "inline"
        return self.render(
            visit,
            "diff.html.j2",
            watch=watch,
            document=document,
            a=a,
            b=b,
            last=last,
            view=view,
            mode=mode,
            verdicts=VERDICTS,
            shots=version_shots(self.store, a, b),
            annotations=version_annotations(self.store, b["id"]),
        )

    def _version(self, watch_id: str, version_id: int | None) -> VersionWithDocumentRow:
        row = self.store.version(version_id) if version_id else None
        if row is None or row["watch_id"] != watch_id:
            raise Missing(f"no version {version_id} in watch {watch_id!r}")
        return row

    def _numbered(self, request: Request) -> tuple[WatchConfig, VersionWithDocumentRow]:
        """The version a path names: `/watch/W/versions/N?key=K`, N counting 1, 2, 3 … in
        its statement; `key` may be left out when the watch has one statement."""
        watch, _configured = self.find_watch(request.path_params["watch"])
        number = int(request.path_params["number"])
        key = request.query_params.get("key")
        if key:
            document = self._document(watch.id, key)
        else:
            documents = self.store.documents(watch.id)
            if len(documents) != 1:
                raise Missing(
                    f"watch {watch.id!r} has {len(documents)} statements: name one (?key=)"
                )
            document = documents[0]
        row = self.store.version_at(document["id"], number)
        if row is None:
            raise Missing(f"no version {number} of {document['key']}")
        return watch, row

    @page()
    async def old_link(self, request: Request, visit: Visit) -> Response:
        """A link by version id, from before versions were numbered per statement: moved
        permanently to the version's numbered address."""
        watch, _configured = self.find_watch(request.path_params["watch"])
        row = self._version(watch.id, _int(request.path_params["version"]))
        part = request.path_params.get("part")
        target = version_url(watch.id, row["key"], row["seq"], f"/{part}" if part else "")
        return RedirectResponse(target, status_code=301)

    def _text(self, row: VersionWithDocumentRow | None) -> bytes | None:
        """A version's statement as stored (canonical JSON), or None."""
        if row is None or not row["text_sha256"]:
            return None
        return self.store.read_blob(row["text_sha256"])

    def _statement(self, row: VersionWithDocumentRow | None) -> Statement | None:
        if row is None or not row["text_sha256"]:
            return None
        return Statement.from_json(self.store.read_blob(row["text_sha256"]))

    # --- a snapshot as archived --------------------------------------------------------

    @page()
    async def snapshot(self, request: Request, visit: Visit) -> Response:
        watch, row = self._numbered(request)
        record = self.store.response(row["response_id"]) if row["response_id"] else None
        tab = request.query_params.get("tab", "text")
        shown: dict[str, Any] = {}
        if record is not None and tab == "page" and record["body_size"] <= _INLINE_LIMIT:
            shown = _inline_body(self.store.read_blob(record["body_sha256"]), record)
        answer = self.render(
            visit,
            "snapshot.html.j2",
            watch=watch,
            version=row,
            statement=self._statement(row),
            record=record,
            tab=tab,
            shown=shown,
            verdicts=VERDICTS,
            stamp=version_stamp(self.store, row["id"]),
            tls=response_tls(self.store, record) if record and tab == "headers" else None,
            stamping=bool(self.config.archive.tsa_url),
            copies=copies_of(self.store, [row["id"]]).get(row["id"], []),
            timemap=f"/timemap/link/{row['url']}" if row["url"] else None,
            annotations=version_annotations(self.store, row["id"]),
        )
        answer.headers.update(memento_headers(self._base_url(request), row, record))
        return answer

    def _base_url(self, request: Request) -> str:
        return (self.config.server.public_url or str(request.base_url)).rstrip("/")

    def _record(self, request: Request) -> ResponseRow:
        _watch, row = self._numbered(request)
        record = self.store.response(row["response_id"]) if row["response_id"] else None
        if record is None:
            raise Missing("no response is stored for this version")
        return record

    @page()
    async def archived_page(self, request: Request, visit: Visit) -> Response:
        """The archived body for the sandboxed frame: served from its own path with a CSP
        that forbids scripts and gives it an opaque origin, so nothing in it runs with the
        UI's privileges or reads its cookies, storage or DOM."""
        _watch, row = self._numbered(request)
        record = self._record(request)
        body = self.store.read_blob(record["body_sha256"])
        media = _media_type(record)
        served = media if media.split(";")[0].strip() in _RENDERABLE else "application/octet-stream"
        return Response(
            body,
            media_type=served,
            headers={
                "Content-Security-Policy": ARCHIVE_POLICY,
                "X-Frame-Options": "SAMEORIGIN",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "private, no-store",
                **memento_headers(self._base_url(request), row, record),
            },
        )

    def _stamp(self, request: Request) -> VersionStampRow:
        _watch, row = self._numbered(request)
        stamp = version_stamp(self.store, row["id"])
        if stamp is None:
            raise Missing("no trusted timestamp covers this version (yet)")
        return stamp

    @page()
    async def timestamp_token(self, request: Request, visit: Visit) -> Response:
        """The RFC 3161 token covering a version (DER): `openssl ts -verify -in FILE
        -token_in -data manifest.json -CAfile tsa-ca.pem` checks it."""
        stamp = self._stamp(request)
        name = f"timestamp-batch-{stamp['id']}.tst"
        return _download(bytes(stamp["token"]), name, "application/octet-stream")

    @page()
    async def timestamp_manifest(self, request: Request, visit: Visit) -> Response:
        """The bytes the token's digest is the SHA-256 of: the chain heads it covers."""
        stamp = self._stamp(request)
        name = f"timestamp-batch-{stamp['id']}.manifest.json"
        return _download(stamp["manifest"].encode(), name, "application/json", stamp["digest"])

    @page()
    async def raw_body(self, request: Request, visit: Visit) -> Response:
        record = self._record(request)
        body = self.store.read_blob(record["body_sha256"])
        name = f"{request.path_params['watch']}-response-{record['id']}.body"
        return _download(body, name, "application/octet-stream", record["body_sha256"])

    @page()
    async def raw_headers(self, request: Request, visit: Visit) -> Response:
        record = self._record(request)
        columns: Mapping[str, Any] = record
        facts = {k: columns[k] for k in _HEADER_FACTS}
        # What monitor sent may authenticate it (gov.kz's hash/token, Authorization,
        # Cookie), what it received may hand out a secret (Set-Cookie), and URLs may carry
        # credentials: none of these is shown.
        facts["request_headers"] = redact_headers(facts["request_headers"])
        if "headers" in facts:
            facts["headers"] = redact_response_headers(facts["headers"])
        facts["tls"] = response_tls(self.store, record)
        data = json.dumps(redact_deep(facts), ensure_ascii=False, indent=2).encode()
        name = f"{request.path_params['watch']}-response-{record['id']}.headers.json"
        return _download(data, name, "application/json")

    @page()
    async def tls_chain(self, request: Request, visit: Visit) -> Response:
        """The certificate chain the response's server presented, in PEM, leaf first (as
        `openssl verify -untrusted FILE` or `openssl x509` read it)."""
        record = self._record(request)
        found = chain(self.store, record["tls_chain"]) if record["tls_chain"] else None
        if found is None:
            raise Missing("no certificate chain is stored for this response")
        data = "".join(certificate["pem"] for certificate in found["certificates"]).encode()
        name = f"{request.path_params['watch']}-response-{record['id']}.chain.pem"
        return _download(data, name, "application/x-pem-file")

    @page()
    async def statement_json(self, request: Request, visit: Visit) -> Response:
        watch, row = self._numbered(request)
        if not row["text_sha256"]:
            raise Missing("this version records a removal; it has no text")
        data = self.store.read_blob(row["text_sha256"])
        name = f"{watch.id}-{row['key'].replace('/', '-')}-version-{row['seq']}.json"
        shown = redact_text(data.decode()).encode()  # the URL's credentials, if it has any
        return _download(shown, name, "application/json", hashlib.sha256(shown).hexdigest())

    # --- annotations ---------------------------------------------------------------------

    @page("editor")
    async def annotate(self, request: Request, visit: Visit) -> Response:
        watch, row = self._numbered(request)
        assert visit.form is not None and visit.user is not None
        verdict = str(visit.form.get("verdict") or "") or None
        note = str(visit.form.get("note") or "").strip()[:4000]
        back = local_path(str(visit.form.get("next") or ""), f"/watch/{watch.id}")
        if verdict not in VERDICTS and not note:
            return self.redirect(visit, back, notice="annotation-empty")
        self.store.annotate(
            row["document_id"],
            row["id"],
            visit.user.name,
            verdict if verdict in VERDICTS else None,
            note,
        )
        # Back where it was written, which shows the annotation with a notice that it was
        # saved (no script needed; a reload does not post it again).
        return self.redirect(visit, back, notice="annotation-saved")

    # --- search ------------------------------------------------------------------------

    @page()
    async def search(self, request: Request, visit: Visit) -> Response:
        query = request.query_params.get("q", "").strip()
        watch_id = request.query_params.get("watch") or None
        # The results as rendered last for this query, while the archive's data mark holds
        # (a new version, annotation or note is a commit): ranking, the annotations and
        # notes, and rendering 50 hits were each about a third of a request.
        mark = self.store.overview.data_mark()  # first: a commit after it shows next time
        asked = (query, watch_id, visit.language)
        kept = self._search_pages.get(asked, mark)
        if kept is not None:
            return self.render_main(visit, "search.html.j2", kept)
        groups: list[dict[str, Any]] = []
        notes: list[NotedRow] = []
        caught_up = False
        if query:
            # Catching up the index reads every new blob: in a thread, on a connection
            # of its own, so the daemon's loop (and its checks) never waits for it; and
            # only when versions wait (opening a store for each search cost most of it).
            if self.store.index_behind():
                await run_in_threadpool(_catch_up_index, self.config.store)
                caught_up = True
            groups = _group_hits(self.searches.find(self.store, query, watch_id, SEARCH_HITS))
            # Each statement found with its newest annotation, and the notes people wrote
            # that the query finds (a note is how a journalist finds a change again).
            newest = newest_annotations(self.store, [g["document_id"] for g in groups])
            for group in groups:
                group["annotation"] = newest.get(group["document_id"])
            notes = _matching_notes(query, noted(self.store), watch_id)
        main = self.main_part(
            visit,
            "search_main.html.j2",
            q=query,
            watch_id=watch_id or "",
            groups=groups,
            notes=notes,
        )
        if not caught_up:  # else the mark moved meanwhile: kept from the next request on
            self._search_pages.put(asked, mark, main)
        return self.render_main(visit, "search.html.j2", main)

    # --- feeds and exports ---------------------------------------------------------------

    @page()
    async def feed(self, request: Request, visit: Visit) -> Response:
        watch_id = request.path_params.get("watch")
        if watch_id is not None:
            _watch, configured = self.find_watch(watch_id)
            if not configured:
                raise Missing(f"watch {watch_id!r} is no longer configured")
        data = feed_bytes(self.store, self.config, watch_id)
        return Response(data, media_type="application/atom+xml; charset=utf-8")

    @page()
    async def export(self, request: Request, visit: Visit) -> Response:
        from monitor.export import export_in_worker, export_with

        watch, _configured = self.find_watch(request.path_params["watch"])
        kind = request.path_params["format"]
        if kind not in ("jsonl", "warc.gz"):
            raise Missing(f"no export format {kind!r} (jsonl, warc.gz)")
        directory = Path(tempfile.mkdtemp(prefix="monitor-export-"))
        target = directory / f"{watch.id}.{kind}"
        try:
            if isinstance(self.exports, WorkerPool):
                # Exports read every blob of a watch: in a process of their own, on the
                # other core, where a thread of this one held the interpreter's lock from
                # the checks (under `monitor run`) and every other page for as long.
                count = await self.exports.run(
                    export_in_worker, self.config.store, kind, str(target), watch.id
                )
            else:
                count = await run_in_threadpool(
                    export_with, self.export_stores, self.config.store, kind, str(target), watch.id
                )
        except WorkFailed as err:
            # A worker killed midway (over its time limit, by the kernel's out-of-memory
            # killer) removes nothing it wrote: a half-written file. The visitor is told why,
            # the log has one line, and the server goes on.
            shutil.rmtree(directory, ignore_errors=True)
            logger.warning("export of %s failed: %s", watch.id, err.reason)
            _ = translator(visit.language)
            return self.error(visit, 503, _("The export could not be made."), err.reason)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)  # as above (the daemon stops)
            raise
        media = "application/warc" if kind == "warc.gz" else "application/x-ndjson"
        # Damaged blobs are left out (see monitor/export.py); the answer says how many.
        headers = {"X-Export-Skipped": str(len(count.skipped))} if count.skipped else None
        return FileResponse(
            target,
            media_type=media,
            filename=target.name,
            headers=headers,
            background=BackgroundTask(_remove, directory),
        )

    # --- language ------------------------------------------------------------------------

    @page(None)
    async def language(self, request: Request, visit: Visit) -> Response:
        code = request.path_params["code"]
        if code in LANGUAGES:
            visit.extra_cookies["lang"] = (code, {"max_age": 365 * 86400, "httponly": False})
        return self.redirect(visit, local_path(request.query_params.get("next")))

    async def not_found(self, request: Request, exc: Exception) -> Response:
        visit = self.visit(request)
        _ = translator(visit.language)
        return self.error(visit, 404, _("Not found"))


class KeptRows:
    """Rows of a table, each rendered once (a template of one row) and kept by what it
    shows (`at`: the reader's language and the row's values), the least recently used
    dropped past `size`: a version's row in a timeline changes only with its newest
    annotation, a watch's row only with its state, and Jinja took about 90 us a row
    (45 ms for a page of 500 versions)."""

    def __init__(self, env: Environment, template: str, size: int = 20_000) -> None:
        self.template = env.get_template(template)
        self.size = size
        self._rows: OrderedDict[tuple[Any, ...], str] = OrderedDict()

    def render(self, at: tuple[Any, ...], **context: Any) -> str:
        row = self._rows.get(at)
        if row is None:
            row = self._rows[at] = self.template.render(**context)
            if len(self._rows) > self.size:
                self._rows.popitem(last=False)
        else:
            self._rows.move_to_end(at)
        return row


class TimelineRows(KeptRows):
    """The rows of statements' timelines (timeline_row.html.j2)."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env, "timeline_row.html.j2")

    def html(
        self,
        language: str,
        watch_id: str,
        key: str,
        versions: Sequence[Mapping[str, Any]],
        last: int,
    ) -> Markup:
        diff = f"/watch/{watch_id}/diff?key={quote(key, safe='')}"
        _ = translator(language)
        rows = []
        for v in versions:
            # The two newest are selected for the comparison: they change with `last`.
            selected = last if v["seq"] >= last - 1 else None
            at = (language, watch_id, key, selected, *v.values())
            rows.append(self.render(at, _=_, v=v, watch_id=watch_id, key=key, diff=diff, last=last))
        return Markup("\n".join(rows))


def _watch_entry(
    watch_id: str,
    watch: WatchConfig | None,
    table: dict[str, tuple[Any, ...]],
    ui_ids: set[str],
    now: datetime,
) -> dict[str, Any]:
    """A row of the table of every watch: `watch` as configured (None: only the archive
    has it), its row of `Store.watch_table`."""
    _id, stored_url, last_check, failing, reason, last_change, next_run = table.get(
        watch_id, (watch_id, "", None, None, None, None, None)
    )
    name = watch.display_name if watch else watch_id
    url = watch.url if watch else stored_url
    status, since = _status(last_check, failing, last_change, now)
    next_check = next_run if watch else None
    if watch and not next_check and last_check:
        next_check = _format(_parse(last_check) + timedelta(seconds=watch.interval))
    return {
        "id": watch_id,
        "name": name,
        "url": url,
        "configured": watch is not None,
        "from_ui": watch_id in ui_ids,
        "status": status if watch else "not configured",
        "since": since,
        "reason": reason,
        "last_check": last_check,
        "last_change": last_change,
        "next_check": next_check,
        "search": f"{watch_id} {name} {url}".lower(),
    }


_STATE_SHOWN = ("last_check_at", "last_change_at", "failing_since", "failure_reason")
_HEADER_FACTS = (
    "requested_at",
    "method",
    "url",
    "final_url",
    "redirects",
    "status",
    "http_version",
    "server_date",
    "request_headers",
    "headers",
    "body_sha256",
    "body_size",
)


def watch_status(state: Mapping[str, Any]) -> tuple[str, str | None]:
    """ok, changed (within CHANGED_FOR), failing (since when) or not checked yet."""
    return _status(
        state.get("last_check_at"),
        state.get("failing_since"),
        state.get("last_change_at"),
        datetime.now(UTC),
    )


def _status(
    last_check: str | None, failing: str | None, last_change: str | None, now: datetime
) -> tuple[str, str | None]:
    if not last_check:
        return "not checked yet", None
    if failing:
        return "failing", failing
    if last_change and now - _parse(last_change) < CHANGED_FOR:
        return "changed", last_change
    return "ok", None


def _parse(moment: str) -> datetime:
    return parse_iso(moment)


def _format(moment: datetime) -> str:
    return iso(moment)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Missing(f"no version {value!r}") from None


def _media_type(record: ResponseRow) -> str:
    for name, value in record["headers"]:
        if name.lower() == "content-type":
            return str(value)
    return "application/octet-stream"


def _inline_body(body: bytes, record: ResponseRow) -> dict[str, Any]:
    """The archived body for the "sanitised page" tab: HTML through nh3 (no script, no
    style, no event handler, no javascript: URL), JSON pretty-printed, text as text."""
    media = _media_type(record)
    text = decode_body(body, media)
    if "html" in media:
        # Remote images would tell the watched site who reads its archive; the UI's CSP
        # blocks them too, but they are not worth sending at all.
        tags = nh3.ALLOWED_TAGS - {"img"}
        return {"html": nh3.clean(text, tags=tags, link_rel="noopener noreferrer nofollow")}
    if "json" in media:
        try:
            return {"text": json.dumps(json.loads(text), ensure_ascii=False, indent=2)}
        except ValueError:
            pass
    return {"text": text}


def _download(data: bytes, name: str, media_type: str, sha256: str | None = None) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if sha256:
        headers["X-Content-SHA256"] = sha256
    return Response(data, media_type=media_type, headers=headers)


def _group_hits(rows: list[SearchHit]) -> list[dict[str, Any]]:
    """Hits grouped by statement, best first; whether the words are still in the current
    version or only in earlier (or removed) ones."""
    groups: dict[int, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(row["document_id"], {**row, "seqs": []})
        group["seqs"].append(row["seq"])
    for group in groups.values():
        group["seqs"].sort()
        group["current"] = group["last_seq"] in group["seqs"] and not group["removed_at"]
        group["snippet_parts"] = _snippet_parts(group["snippet"] or "")
    return list(groups.values())


def _snippet_parts(snippet: str) -> list[tuple[bool, str]]:
    """(highlighted?, text) pieces; the template escapes each, then marks the hits."""
    parts: list[tuple[bool, str]] = []
    for index, chunk in enumerate(snippet.split(MARK_START)):
        if index == 0:
            parts.append((False, chunk))
            continue
        hit, _, rest = chunk.partition(MARK_END)
        parts += [(True, hit), (False, rest)]
    return [part for part in parts if part[1]]


def _matching_notes(text: str, rows: list[NotedRow], watch_id: str | None) -> list[NotedRow]:
    """The annotations whose note the query finds, with the syntax of the text search
    (monitor/searchquery.py): every group matched by one of its terms, no excluded term."""
    query = parse_query(text)
    if query is None:
        return []
    found = []
    for row in rows:
        if watch_id and row["watch_id"] != watch_id:
            continue
        words = [word.casefold() for word in _NOTE_WORD.findall(row["note"] or "")]
        if all(any(_has(words, t) for t in group) for group in query.groups) and not any(
            _has(words, t) for t in query.excluded
        ):
            found.append(row)
    return found


def _has(words: list[str], term: Term) -> bool:
    """Whether `term` (a word, a phrase, a prefix) is in `words`."""
    size = len(term.words)
    for start in range(len(words) - size + 1):
        window = words[start : start + size]
        if window[:-1] != list(term.words[:-1]):
            continue
        last, wanted = window[-1], term.words[-1]
        if last == wanted or (term.prefix and last.startswith(wanted)):
            return True
    return False


def _catch_up_index(config: StoreConfig) -> None:
    with Store.from_config(config) as store:
        store.index_text()


def _remove(directory: Path) -> None:
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
