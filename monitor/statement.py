"""The values the extract stage passes around: what a profile is told about a watch
(`Target`), what it reads from one response (`Extraction`), and the statements it finds
(`Statement`, with its `Link`s).

A leaf: it imports nothing of monitor's, so the fetch, extract and classify stages, the
site profiles, the archive and the web UI all use these types without importing each other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Document:
    """The text of a file: an attachment of a statement (a PDF, a Word file), or the file a
    watch points at. `sha256` names its bytes as fetched (an archive blob); `pages` holds
    each page's paragraphs (a PDF's pages, a spreadsheet's sheets, one page for a text
    document without page breaks)."""

    href: str
    name: str  # the link's words ("Full text"), else the file's name
    kind: str  # PDF, DOCX, ODT, RTF, XLSX; DOC: archived, its text not read
    sha256: str
    size: int
    pages: tuple[tuple[str, ...], ...] = ()
    # What the file says about itself (author, producer, creation date), sorted by name:
    # shown when a file is re-generated with the same text, never alerted.
    metadata: tuple[tuple[str, str], ...] = ()
    # Pages (1-based) whose text is OCR of a scan rather than the file's own text layer.
    ocr_pages: tuple[int, ...] = ()
    # Words of those pages that a second OCR of the same bytes read differently: a change
    # in them alone is OCR noise, not an edit.
    ocr_unsure: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for optional in ("ocr_pages", "ocr_unsure"):
            if not data[optional]:
                del data[optional]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(
            href=data["href"],
            name=data["name"],
            kind=data["kind"],
            sha256=data["sha256"],
            size=data["size"],
            pages=tuple(tuple(page) for page in data.get("pages", ())),
            metadata=tuple((str(k), str(v)) for k, v in data.get("metadata", ())),
            ocr_pages=tuple(data.get("ocr_pages", ())),
            ocr_unsure=tuple(data.get("ocr_unsure", ())),
        )

    def page_label(self, number: int) -> str:
        """How a person names one of its pages: "page 2", "sheet 2", "page 2 (OCR)"."""
        label = f"{'sheet' if self.kind in SPREADSHEETS else 'page'} {number}"
        return f"{label} (OCR)" if number in self.ocr_pages else label

    def render_text(self) -> str:
        lines = [f"{self.kind} “{self.name}” <{self.href}>"]
        for number, page in enumerate(self.pages, start=1):
            lines.append(f"[{self.page_label(number)}]")
            lines += list(page)
        return "\n".join(lines)


# Kinds of document whose "pages" are sheets.
SPREADSHEETS = ("XLSX", "ODS")


@dataclass(frozen=True)
class Statement:
    """One statement as the archive keeps it. `key` is stable within its watch."""

    key: str
    url: str
    title: str
    paragraphs: tuple[str, ...]
    published: str | None = None
    language: str | None = None
    links: tuple[Link, ...] = ()
    # Documents the statement offers (PDF, Word, spreadsheets), apart from ordinary links.
    attachments: tuple[Link, ...] = ()
    # What the statement's pictures show, in words: a photo's caption, or its alt text when
    # it has none. Apart from the paragraphs because the body text of an article is its prose
    # (what readers and extraction benchmarks call the article), yet a photo that goes is news.
    figures: tuple[str, ...] = ()
    # The text of the statement's attachments, as fetched with it (monitor/attachments.py),
    # or of the file a document watch points at (monitor/sites/document.py).
    documents: tuple[Document, ...] = ()

    def to_json(self) -> bytes:
        """Canonical JSON: the same statement always gives the same bytes (and hash)."""
        return self._canonical_json

    # Cached (the statement is frozen): a check asks for a statement's bytes and hash
    # several times, and a big one costs tens of milliseconds each time. Worked out in the
    # worker that read the page, they travel back pickled with the statement.
    @cached_property
    def _canonical_json(self) -> bytes:
        # The fields as `dataclasses.asdict` gives them, built directly: asdict copies every
        # paragraph through `copy.deepcopy`, three quarters of the cost of a new page's JSON
        # in the worker. Tuples are written as JSON arrays, as the lists asdict made were.
        data: dict[str, Any] = {
            "key": self.key,
            "url": self.url,
            "title": self.title,
            "paragraphs": self.paragraphs,
            "published": self.published,
            "language": self.language,
            "links": [{"href": link.href, "text": link.text} for link in self.links],
        }
        # Statements archived before attachments, figures and documents existed had no such
        # keys; leaving an empty list out keeps their bytes, and so their hashes, unchanged.
        if self.attachments:
            data["attachments"] = [
                {"href": link.href, "text": link.text} for link in self.attachments
            ]
        if self.figures:
            data["figures"] = self.figures
        if self.documents:
            data["documents"] = [document.to_dict() for document in self.documents]
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Statement:
        data = json.loads(raw)
        return cls(
            key=data["key"],
            url=data["url"],
            title=data["title"],
            paragraphs=tuple(data["paragraphs"]),
            published=data.get("published"),
            language=data.get("language"),
            links=tuple(Link(**link) for link in data.get("links", ())),
            attachments=tuple(Link(**link) for link in data.get("attachments", ())),
            figures=tuple(data.get("figures", ())),
            documents=tuple(Document.from_dict(d) for d in data.get("documents", ())),
        )

    @classmethod
    def archived(cls, raw: bytes, sha256: str) -> Statement:
        """A statement read back from the archive, whose blob `sha256` names (and which
        `read_blob` checked its bytes against): that is its hash, not worked out again from
        its canonical JSON (half a millisecond of a big statement, on every edit)."""
        statement = cls.from_json(raw)
        statement.__dict__["sha256"] = sha256  # what the cached property would hold
        return statement

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def render_text(self) -> str:
        """Plain text for people: title, date, paragraphs, figures, links, attachments."""
        lines = [self.title]
        if self.published:
            lines.append(self.published)
        lines.append("")
        for paragraph in self.paragraphs:
            lines += [paragraph, ""]
        if self.figures:
            lines.append("Figures:")
            lines += [f"- {figure}" for figure in self.figures]
        for heading, links in (("Links:", self.links), ("Attachments:", self.attachments)):
            if links:
                lines.append(heading)
                lines += [f"- {link.text} <{link.href}>" for link in links]
        for document in self.documents:
            lines += ["", document.render_text()]
        return "\n".join(lines).rstrip() + "\n"


@dataclass
class Extraction:
    """What a profile read from one response."""

    statements: list[Statement] = field(default_factory=list)
    # Set when the response is not usable content; the reason is shown to the user.
    problem: str | None = None
    # The response says the statement no longer exists (404/410 of a detail page).
    gone: bool = False
    # For listings: statements published on or after this date are expected to be present,
    # so one that is missing was removed rather than pushed off the page by newer ones.
    window_start: str | None = None
    is_listing: bool = False
    # Made from the archive's statements to carry their attachments' new text, the page
    # itself unchanged (a 304): the page's validators are not this answer's to remember.
    from_archive: bool = False
    # Attachments that could not be used on this look (too large, encrypted, …): the
    # statement kept their earlier text; the check names them (monitor/attachments.py).
    attachment_problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """What a profile needs to know about a watch."""

    url: str
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # CSS selectors of elements the user wants dropped before extraction (page furniture
    # the profile does not know about).
    drop_selectors: tuple[str, ...] = ()
    # How the watch fetches ("http" or "browser"): a browser renders pages with their
    # scripts, so a profile of a single-page app asks for the page rather than its API.
    fetcher: str = "http"
    # Tesseract languages a scanned page of a document is read with (empty: no OCR).
    ocr: tuple[str, ...] = ()
