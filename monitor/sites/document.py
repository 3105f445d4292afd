"""`document`: a watch whose URL is a file (PDF, Word, OpenDocument, RTF, Excel) rather than
a page. The file is one statement: its title is the file's own (its metadata) or its name,
and its text is the document's, page by page (monitor/documents.py), so versions, the diff
per page and alerts work as for a page."""

from __future__ import annotations

from monitor.documents import is_document_url, name_of, read_or_problem
from monitor.extract import Extraction, Profile, Statement, Target
from monitor.fetched import FetchResult


class DocumentProfile(Profile):
    name = "document"

    @classmethod
    def matches(cls, url: str) -> bool:
        return is_document_url(url)

    def statement_profile(self) -> str | None:
        return None

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        if result.status in (404, 410) and not result.problem:
            return Extraction(gone=True, problem=f"HTTP {result.status}")
        if result.truncated:
            return Extraction(problem=f"too large: {result.problem or 'cut at max_bytes'}")
        if result.problem or result.status is None or not 200 <= result.status < 300:
            return Extraction(problem=result.problem or f"HTTP {result.status}")
        name = name_of(target.url)
        document, problem = read_or_problem(
            result.body, target.url, name, result.header("content-type"), target.ocr
        )
        if document is None:
            return Extraction(problem=f"the document cannot be read: {problem}")
        title = dict(document.metadata).get("title") or name
        statement = Statement(
            key="document",
            url=target.url,
            title=title,
            paragraphs=(),
            language=target.language,
            documents=(document,),
        )
        return Extraction(statements=[statement])
