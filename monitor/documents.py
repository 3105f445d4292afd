"""A document's bytes to its text, page by page: PDF (pypdf), DOCX (python-docx), ODT and
ODS (odfpy), RTF (striprtf), XLSX (openpyxl); scanned PDF pages through Tesseract
(pytesseract, the page rendered by pypdfium2) when the watch names OCR languages.

Runs where what sites send is read (monitor/isolate.py: a worker under time and memory
limits). What a file is comes from its bytes, not from the server's word: an HTML error
page served as `application/pdf` is an HTML page. Whatever cannot be read — an encrypted
or truncated PDF, a zip or PDF stream that expands past the limits below, a format no
well-kept library reads — raises `DocumentProblem` with a reason for people; the caller
keeps the text it had, so a bad file is a problem, never an edit.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.statement import Document

# Beyond these a file is refused rather than read: a zip bomb's members, and what a huge
# file's text would cost. A PDF bomb's streams are refused by pypdf's own decompression
# limits (75 MB a stream since pypdf 6: `LimitReachedError`), and the worker's memory limit
# (monitor/isolate.py) stands behind both.
MAX_UNZIPPED_BYTES = 200_000_000
MAX_PAGES = 2_000
MAX_TEXT_CHARS = 5_000_000
# A PDF page with fewer letters than this in its text layer is a scan (OCR reads it).
_SCAN_LETTERS = 20
# OCR renders a page at this resolution, and reads it a second time at the other, so a
# word only one of the two reads saw is known to be unsure (see `Document.ocr_unsure`).
_OCR_DPI = (300, 200)
_MAX_OCR_PAGES = 50

# Kinds read by extension when the bytes leave a choice (a zip is DOCX, XLSX or ODT).
KINDS = {
    ".pdf": "PDF",
    ".docx": "DOCX",
    ".doc": "DOC",
    ".odt": "ODT",
    ".ods": "ODS",
    ".rtf": "RTF",
    ".xlsx": "XLSX",
}
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u3000]+")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
# A line that ends a paragraph in a PDF's text: it ends a sentence or a heading.
_PARAGRAPH_END = re.compile(r"[.!?:;…»”\"')]$")


class DocumentProblem(Exception):
    """Why a document's text cannot be read; `str()` is for people."""


def is_document_url(href: str) -> bool:
    """Whether a link names a file whose text is read here (by its extension)."""
    from urllib.parse import urlsplit

    path = urlsplit(href).path.lower()
    return any(path.endswith(ext) for ext in KINDS)


def read_document(
    body: bytes,
    href: str,
    name: str,
    content_type: str | None = None,
    ocr: Sequence[str] = (),
) -> Document:
    """The document in `body`. Raises DocumentProblem when it cannot be read."""
    import hashlib

    kind = sniff(body, href, content_type)
    reader = _READERS.get(kind)
    sha256 = hashlib.sha256(body).hexdigest()
    if reader is None:  # a format no well-kept library reads: archived, text not read
        return Document(href, name, kind, sha256, len(body))
    pages, metadata, ocr_pages, unsure = reader(body, tuple(ocr))
    if sum(len(p) for page in pages for p in page) > MAX_TEXT_CHARS:
        raise DocumentProblem(f"{kind} text is longer than {MAX_TEXT_CHARS:,} characters")
    return Document(
        href,
        name,
        kind,
        sha256,
        len(body),
        tuple(tuple(page) for page in pages),
        tuple(sorted((k, v) for k, v in metadata.items() if v)),
        tuple(ocr_pages),
        tuple(sorted(unsure)),
    )


def read_or_problem(
    body: bytes, href: str, name: str, content_type: str | None, ocr: Sequence[str]
) -> tuple[Document | None, str | None]:
    """`read_document` for a worker (monitor/isolate.py): the document, or why it cannot be
    read, as plain values."""
    try:
        return read_document(body, href, name, content_type, ocr), None
    except DocumentProblem as err:
        return None, str(err)


def sniff(body: bytes, href: str, content_type: str | None = None) -> str:
    """The document's kind, from its first bytes (the extension decides among zips)."""
    head = body[:1024].lstrip()
    if not body:
        raise DocumentProblem("empty file")
    if b"%PDF-" in body[:1024]:
        return "PDF"
    if head[:5].lower() == b"{\\rtf":
        return "RTF"
    if body.startswith(b"\xd0\xcf\x11\xe0"):
        return "DOC"  # Word 97-2003 (OLE): no well-kept library reads its text
    if body.startswith(b"PK\x03\x04"):
        return _zip_kind(body, href)
    lowered = head[:512].lower()
    if lowered.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or (
        b"<html" in lowered
    ):
        title = re.search(rb"<title[^>]*>(.*?)</title>", body[:65536], re.I | re.S)
        said = f" “{_clean(title.group(1).decode('utf-8', 'replace'))[:80]}”" if title else ""
        served = f" served as {content_type.split(';')[0]}" if content_type else ""
        raise DocumentProblem(f"not a document: an HTML page{said}{served}")
    served = f" (served as {content_type.split(';')[0]})" if content_type else ""
    raise DocumentProblem(f"not a document format monitor reads{served}")


def _zip_kind(body: bytes, href: str) -> str:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        names = set(archive.namelist())
        mimetype = (
            archive.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
        )
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise DocumentProblem(f"damaged or truncated zip container: {err}") from None
    if "word/document.xml" in names:
        return "DOCX"
    if "xl/workbook.xml" in names:
        return "XLSX"
    if mimetype.endswith("opendocument.text"):
        return "ODT"
    if mimetype.endswith("opendocument.spreadsheet"):
        return "ODS"
    raise DocumentProblem("a zip file that is no Word, Excel or OpenDocument file")


def _unzipped(body: bytes) -> None:
    """Refuse a zip whose members would expand past MAX_UNZIPPED_BYTES (a zip bomb)."""
    try:
        declared = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(body)).infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise DocumentProblem(f"damaged or truncated zip container: {err}") from None
    if declared > MAX_UNZIPPED_BYTES:
        raise DocumentProblem(
            f"expands to {declared:,} bytes, over the limit of {MAX_UNZIPPED_BYTES:,} "
            "(a decompression bomb?)"
        )


_Read = tuple[list[list[str]], dict[str, str], list[int], set[str]]


# --- PDF -----------------------------------------------------------------------------------


def _pdf(body: bytes, ocr: tuple[str, ...]) -> _Read:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PyPdfError

    if b"%%EOF" not in body[-2048:]:
        # pypdf would read what is there and say nothing: half a file is not an edit.
        raise DocumentProblem(f"truncated PDF: {len(body):,} bytes without the end-of-file mark")
    try:
        reader = pypdf.PdfReader(io.BytesIO(body))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentProblem("encrypted PDF: its text cannot be read without a password")
        if len(reader.pages) > MAX_PAGES:
            raise DocumentProblem(f"{len(reader.pages):,} pages, over the limit of {MAX_PAGES:,}")
        metadata = _pdf_metadata(reader)
        texts = [_page_text(page) for page in reader.pages]
    except (FileNotDecryptedError, DependencyError) as err:
        raise DocumentProblem(f"encrypted PDF: {err}") from None
    except LimitReachedError as err:
        raise DocumentProblem(f"a PDF stream expands past the limit (a PDF bomb?): {err}") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise DocumentProblem(f"damaged PDF: {type(err).__name__}: {err}") from None
    pages = [_pdf_paragraphs(text) for text in texts]
    ocr_pages: list[int] = []
    unsure: set[str] = set()
    if ocr:
        scans = [n for n, text in enumerate(texts) if _is_scan(text)][:_MAX_OCR_PAGES]
        for index in scans:
            first, second = _ocr_page(body, index, ocr)
            pages[index] = _pdf_paragraphs(first)
            ocr_pages.append(index + 1)
            unsure |= _disagreeing(first, second)
    return pages, metadata, ocr_pages, unsure


def _page_text(page: Any) -> str:
    # The content stream is decoded here first: `extract_text` logs and swallows the
    # LimitReachedError of a stream over pypdf's decompression limit, and reads on.
    contents = page.get_contents()
    if contents is not None:
        contents.get_data()
    return page.extract_text() or ""


def _pdf_metadata(reader: Any) -> dict[str, str]:
    info = reader.metadata or {}
    names = {
        "/Author": "author",
        "/Creator": "creator",
        "/Producer": "producer",
        "/CreationDate": "creation date",
        "/ModDate": "modification date",
        "/Title": "title",
        "/Subject": "subject",
    }
    return {label: _clean(str(info.get(key) or "")) for key, label in names.items()}


def _pdf_paragraphs(text: str) -> list[str]:
    """A page's text as paragraphs: lines are joined until one ends a sentence (or a blank
    line comes); a word hyphenated across a line break is joined back."""
    paragraphs: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if current.endswith("-") and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}" if current else line
        if _PARAGRAPH_END.search(line):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def _is_scan(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) < _SCAN_LETTERS


def _ocr_page(body: bytes, index: int, languages: tuple[str, ...]) -> tuple[str, str]:
    """One page read by Tesseract twice, at two resolutions."""
    import pypdfium2
    import pytesseract

    pdf = pypdfium2.PdfDocument(body)
    try:
        page = pdf[index]
        reads = []
        for dpi in _OCR_DPI:
            image = page.render(scale=dpi / 72).to_pil()
            try:
                reads.append(pytesseract.image_to_string(image, lang="+".join(languages)))
            except pytesseract.TesseractNotFoundError:
                raise DocumentProblem(
                    "OCR asked for, but Tesseract is not installed (apt-get install tesseract-ocr)"
                ) from None
            except pytesseract.TesseractError as err:
                raise DocumentProblem(f"OCR failed: {err.message}") from None
    finally:
        pdf.close()
    return reads[0], reads[1]


def _disagreeing(first: str, second: str) -> set[str]:
    """The words of `first` that `second` did not read the same (lower-cased)."""
    import difflib

    a, b = _words(first), _words(second)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    unsure: set[str] = set()
    for op, a1, a2, _b1, _b2 in matcher.get_opcodes():
        if op != "equal":
            unsure.update(a[a1:a2])
    return unsure


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


# --- word processors and spreadsheets ------------------------------------------------------


def _docx(body: bytes, _ocr: tuple[str, ...]) -> _Read:
    import docx
    from docx.oxml.ns import qn

    _unzipped(body)
    try:
        document = docx.Document(io.BytesIO(body))
    except Exception as err:  # python-docx raises what its XML and zip layers raise
        raise DocumentProblem(f"damaged DOCX: {type(err).__name__}: {err}") from None
    pages: list[list[str]] = [[]]
    for paragraph in document.paragraphs:
        text = _clean(paragraph.text)
        if text:
            pages[-1].append(text)
        # An explicit page break ends the page: Word files have no other fixed pages.
        breaks = paragraph._p.iter(qn("w:br"))
        if any(br.get(qn("w:type")) == "page" for br in breaks):
            pages.append([])
    for table in document.tables:
        for row in table.rows:
            cells = [_clean(cell.text) for cell in row.cells]
            if any(cells):
                pages[-1].append(" · ".join(cells))
    props = document.core_properties
    metadata = _core_properties(props.author, props.last_modified_by, props.created, props.modified)
    metadata["title"] = props.title or ""
    metadata["revision"] = str(props.revision or "")
    return [p for p in pages if p] or [[]], metadata, [], set()


def _core_properties(
    author: str | None, modified_by: str | None, created: datetime | None, modified: datetime | None
) -> dict[str, str]:
    """The metadata DOCX and XLSX share: both keep it in the same OOXML part
    (docProps/core.xml), which python-docx and openpyxl name each their own way."""
    return {
        "author": author or "",
        "last modified by": modified_by or "",
        "creation date": created.isoformat() if created else "",
        "modification date": modified.isoformat() if modified else "",
    }


def _xlsx(body: bytes, _ocr: tuple[str, ...]) -> _Read:
    import openpyxl

    _unzipped(body)
    try:
        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises what its XML and zip layers raise
        raise DocumentProblem(f"damaged XLSX: {type(err).__name__}: {err}") from None
    pages = []
    for sheet in book.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            cells = [_clean(str(value)) for value in row if value is not None]
            if cells:
                rows.append(" · ".join(cells))
        pages.append(rows)
    props = book.properties
    metadata = _core_properties(props.creator, props.lastModifiedBy, props.created, props.modified)
    book.close()
    return pages, metadata, [], set()


def _odf(body: bytes, _ocr: tuple[str, ...]) -> _Read:
    from odf import teletype
    from odf.opendocument import load
    from odf.table import Table, TableRow
    from odf.text import H, P

    _unzipped(body)
    try:
        document = load(io.BytesIO(body))
    except Exception as err:  # odfpy raises what its XML and zip layers raise
        raise DocumentProblem(f"damaged OpenDocument file: {type(err).__name__}: {err}") from None
    spreadsheet = getattr(document, "spreadsheet", None)
    tables = spreadsheet.getElementsByType(Table) if spreadsheet is not None else []
    if tables:
        pages = []
        for table in tables:
            rows = []
            for row in table.getElementsByType(TableRow):
                cells = [_clean(teletype.extractText(cell)) for cell in row.childNodes]
                if any(cells):
                    rows.append(" · ".join(c for c in cells if c))
            pages.append(rows)
    else:
        # Headings and paragraphs in the order they stand.
        text = document.text
        order = {id(e): n for n, e in enumerate(_walk(text))}
        elements = text.getElementsByType(P) + text.getElementsByType(H)
        elements.sort(key=lambda e: order.get(id(e), 0))
        texts = [teletype.extractText(e) for e in elements]
        pages = [[t for t in (_clean(text) for text in texts) if t]]
    meta = {
        "creator": _odf_meta(document, "creator"),
        "creation date": _odf_meta(document, "creationdate"),
        "modification date": _odf_meta(document, "date"),
        "generator": _odf_meta(document, "generator"),
    }
    return pages, meta, [], set()


def _walk(element: Any) -> list[Any]:
    """An ODF element and its descendants, in document order."""
    found = [element]
    for child in element.childNodes:
        found += _walk(child)
    return found


def _odf_meta(document: Any, name: str) -> str:
    for element in document.meta.childNodes:
        if element.tagName.split(":")[-1].lower() == name.lower():
            return _clean(str(element))
    return ""


def _rtf(body: bytes, _ocr: tuple[str, ...]) -> _Read:
    from striprtf.striprtf import rtf_to_text

    try:
        text = rtf_to_text(body.decode("latin-1"), errors="ignore")
    except Exception as err:  # striprtf raises on malformed control words
        raise DocumentProblem(f"damaged RTF: {type(err).__name__}: {err}") from None
    return [[p for p in (_clean(line) for line in text.splitlines()) if p]], {}, [], set()


_READERS = {
    "PDF": _pdf,
    "DOCX": _docx,
    "XLSX": _xlsx,
    "ODT": _odf,
    "ODS": _odf,
    "RTF": _rtf,
}


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    return _SPACES.sub(" ", text).strip()


def kind_of(href: str) -> str:
    """The kind a link's extension names ("PDF"), for wording before the file is read."""
    from urllib.parse import urlsplit

    path = urlsplit(href).path.lower()
    return next((kind for ext, kind in KINDS.items() if path.endswith(ext)), "file")


def name_of(href: str, words: str | None = None) -> str:
    """What to call a document: the link's words, else its file name."""
    from urllib.parse import unquote, urlsplit

    if words and words.strip():
        return _clean(words)
    return unquote(urlsplit(href).path.rsplit("/", 1)[-1]) or href


__all__ = [
    "DocumentProblem",
    "is_document_url",
    "kind_of",
    "name_of",
    "read_document",
    "read_or_problem",
    "sniff",
]
