"""Attachments watched with their statement: each document a statement links to (PDF, Word,
OpenDocument, RTF, Excel) is fetched along with it, archived, and read into the statement
(`Statement.documents`), so that a replaced file is part of the statement's change.

The files come through the check's own `Fetcher` — the same per-host politeness, SSRF guard,
robots.txt, size cap and retries as pages — with the server's validators of the last
answer that could be read (conditional GET). Their text is read where pages are read (a
worker under time and memory limits, monitor/isolate.py) by monitor/documents.py.

What is new is recorded in the `attachment` table (store/attachments.py): other bytes
(raw, with the text read from them) or another problem. A file that cannot be used — too
large, encrypted, truncated, a decompression bomb, an HTML error page — is a problem of
that attachment, named in the check's detail: the statement keeps the text it had, so a
bad answer never reads as an edit, and nothing else of the check is held up.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace

from monitor.config import WatchConfig
from monitor.documents import is_document_url, kind_of, name_of, read_or_problem
from monitor.fetch import Fetcher, FetchRequest, FetchResult, Validators
from monitor.isolate import Work, WorkFailed
from monitor.links import normalize_url
from monitor.statement import Document, Extraction, Link, Statement
from monitor.store import Store, iso
from monitor.store.records import AttachmentRecord

logger = logging.getLogger("monitor.attachments")

# Files fetched per statement at most: a listing of a hundred annexes is not a statement.
MAX_PER_STATEMENT = 10


@dataclass
class _Known:
    """What the archive holds of one attachment of a watch: the last answer's problem, and
    the answer last read (its Document's blob, its bytes' hash, its validators)."""

    problem: str | None
    read: str | None = None  # document_sha256
    body: str | None = None  # body_sha256
    etag: str | None = None
    last_modified: str | None = None


class AttachmentReader:
    """Reads a watch's statements' attachments into them; one per Checker."""

    def __init__(self, store: Store, fetcher: Fetcher, work: Work) -> None:
        self.store = store
        self.fetcher = fetcher
        self.work = work
        # Watches that have fetched an attachment: only their unchanged pages (a 304) need
        # their archived statements read to look at the files again.
        self._watches: set[str] | None = None
        # The last problem logged per (watch, file): each is logged when it begins.
        self._told: dict[tuple[str, str], str] = {}
        self._known: dict[tuple[str, str], _Known] = {}

    def watched(self, watch_id: str) -> bool:
        if self._watches is None:
            self._watches = self.store.watch_states.attachment_watches()
        return watch_id in self._watches

    async def attach(self, watch: WatchConfig, extraction: Extraction) -> Extraction:
        """The extraction with each statement's documents read in (problems noted)."""
        statements = []
        for statement in extraction.statements:
            statements.append(await self._with_documents(watch, statement, extraction))
        extraction.statements = statements
        return extraction

    async def again(self, watch: WatchConfig, statements: list[Statement]) -> Extraction | None:
        """The archived statements of a page that did not change (a 304, the same bytes),
        their files looked at again: an extraction when one of them changed, else None."""
        extraction = Extraction(from_archive=True)
        changed = False
        for statement in statements:
            again = await self._with_documents(watch, statement, extraction)
            # Unchanged files give back the very documents the statement had: no need to
            # hash the statement's JSON (tens of kilobytes with its files' text) to know.
            same = len(again.documents) == len(statement.documents) and all(
                a is b for a, b in zip(again.documents, statement.documents, strict=True)
            )
            changed |= not same and again.sha256 != statement.sha256
            extraction.statements.append(again)
        return extraction if changed or extraction.attachment_problems else None

    async def _with_documents(
        self, watch: WatchConfig, statement: Statement, extraction: Extraction
    ) -> Statement:
        links: dict[str, Link] = {}
        for link in statement.attachments:
            if is_document_url(link.href):
                links.setdefault(normalize_url(link.href), link)
        if not links:
            return statement
        had = {normalize_url(document.href): document for document in statement.documents}
        documents = []
        for url, link in list(links.items())[:MAX_PER_STATEMENT]:
            name = name_of(url, link.text)
            document, problem = await self.document(watch, url, name, had.get(url))
            if problem:
                extraction.attachment_problems.append(f"{kind_of(url)} {url}: {problem}")
            if document is not None:
                documents.append(document)
        if len(documents) == len(statement.documents) and all(
            a is b for a, b in zip(documents, statement.documents, strict=True)
        ):
            return statement
        return replace(statement, documents=tuple(documents))

    async def document(
        self, watch: WatchConfig, url: str, name: str, had: Document | None = None
    ) -> tuple[Document | None, str | None]:
        """The file at `url` as it now reads (None: never readable), and the problem that
        kept this look from reading it (None: none). `had`: the document as the archived
        statement has it (spares reading it from the archive when the file is unchanged)."""
        known = self._lookup(watch.id, url)
        headers = Validators(known.etag, known.last_modified).headers({}) if known.read else {}
        result = await self.fetcher.fetch(
            FetchRequest(url, headers=headers, obey_robots=watch.robots)
        )
        if self._watches is not None:
            self._watches.add(watch.id)
        problem = _unusable(result)
        if known.read and (result.not_modified or (problem is None and _sha(result) == known.body)):
            self._tell(watch, url, None)
            return self._as_read(known, url, name, had), None  # a 304, or the same bytes
        if result.not_modified:  # validators of a file never read: nothing to go on
            problem = "HTTP 304 without a readable earlier answer"
        document = None
        if problem is None:
            try:
                document, problem = await self.work.run(
                    read_or_problem,
                    result.body,
                    url,
                    name,
                    result.header("content-type"),
                    tuple(watch.ocr),
                )
            except WorkFailed as err:  # over the worker's time or memory limit
                problem = f"could not be read: {err}"
        if problem is None or known.problem != problem:
            self._record(watch, url, result, document, problem)
        self._tell(watch, url, problem)
        if document is None:
            return (self._as_read(known, url, name, had) if known.read else None), problem
        return document, None

    def _lookup(self, watch_id: str, url: str) -> _Known:
        """What the archive holds of the file, read once per process and kept up to date
        by `_record` (a few strings each: the documents themselves are not kept here)."""
        known = self._known.get((watch_id, url))
        if known is None:
            attachments = self.store.attachments
            latest = attachments.latest(watch_id, url)
            read = latest if latest and latest["document_sha256"] else None
            if latest is not None and read is None:
                read = attachments.latest_read(watch_id, url)
            known = _Known(latest["problem"] if latest else None)
            if read is not None:
                known.read = read["document_sha256"]
                known.body = read["body_sha256"]
                known.etag, known.last_modified = read["etag"], read["last_modified"]
            self._known[(watch_id, url)] = known
        return known

    def _as_read(self, known: _Known, url: str, name: str, had: Document | None) -> Document:
        """The document last read from the file, under the link's current words."""
        if had is None or had.sha256 != known.body:
            stored = self.store.read_blob(str(known.read))
            had = Document.from_dict(json.loads(stored))
        if (had.href, had.name) != (url, name):
            had = replace(had, href=url, name=name)
        return had

    def _record(
        self,
        watch: WatchConfig,
        url: str,
        result: FetchResult,
        document: Document | None,
        problem: str | None,
    ) -> None:
        # A body over max_bytes is cut: what came is not the file, and is not kept.
        keep = bool(result.body) and not result.truncated and result.status is not None
        document_json = (
            json.dumps(document.to_dict(), ensure_ascii=False).encode()
            if document is not None
            else None
        )
        self.store.attachments.record(
            AttachmentRecord(
                watch_id=watch.id,
                url=url,
                fetched_at=iso(result.requested_at),
                final_url=result.url,
                status=result.status,
                headers=list(result.headers),
                body=result.body if keep else None,
                body_size=len(result.body),
                media_type=result.header("content-type"),
                document=document_json,
                problem=problem,
            )
        )
        known = self._lookup(watch.id, url)
        known.problem = problem
        if document_json is not None and document is not None:
            known.read = hashlib.sha256(document_json).hexdigest()
            known.body = document.sha256
            known.etag, known.last_modified = (
                result.validators.etag,
                result.validators.last_modified,
            )

    def _tell(self, watch: WatchConfig, url: str, problem: str | None) -> None:
        where = (watch.id, url)
        if problem is None:
            self._told.pop(where, None)
        elif self._told.get(where) != problem:
            self._told[where] = problem
            logger.warning("%s: attachment %s: %s", watch.id, url, problem)


def _sha(result: FetchResult) -> str:
    return hashlib.sha256(result.body).hexdigest()


def _unusable(result: FetchResult) -> str | None:
    """Why an answer for a file is not the file (None: it is)."""
    if result.truncated:
        return f"too large: {result.problem or 'cut at max_bytes'}"
    if result.problem:
        return result.problem
    if result.status is None or not 200 <= result.status < 300:
        return f"HTTP {result.status}"
    return None
