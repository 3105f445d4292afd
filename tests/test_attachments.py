"""Attachments watched with their statement, document watches, OCR of scans, and bad files.

A real HTTP server on 127.0.0.1 serves a statement page linking to a PDF and a DOCX that
the tests make with fpdf2 and python-docx (and scans drawn with Pillow); the checks run the
whole pipeline (fetch, extract, archive on a real SQLite file, diff, alerts)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from monitor.check import Checker, CheckOutcome
from monitor.config import ConfigError, load_config
from monitor.diff import compare
from monitor.fetch import Fetcher
from monitor.sites import profile_names
from monitor.statement import Document, Statement
from monitor.store import Store
from tests.conftest import CONSOLE, local_config, serve_on_loopback

SENTENCE = "The ministry will hold the consultations in Astana on Monday."
EDITED = "The ministry will hold the consultations in Geneva on Friday."
PAGE_ONE = ["Joint statement on consultations.", "Both sides met in a constructive spirit."]


def page_two(sentence: str) -> list[str]:
    return ["The parties agreed on the following.", sentence, "Done in two copies."]


def make_pdf(pages: list[list[str]], author: str = "Press service") -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_author(author)
    pdf.set_creator("Ministry document system")
    pdf.set_font("helvetica", size=12)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 8, paragraph)
            pdf.ln(6)
    return bytes(pdf.output())


def make_docx(paragraphs: list[str], author: str = "Press service") -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.author = author
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_scan(lines: list[str]) -> bytes:
    """A PDF whose only page is a picture of text: no text layer, as a scanner makes."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1700, 120 + 100 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for n, line in enumerate(lines):
        draw.text((60, 60 + 100 * n), line, fill=0, font=font)
    png = io.BytesIO()
    image.save(png, "PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(png, x=10, y=10, w=190)
    return bytes(pdf.output())


def statement_page(links: list[tuple[str, str]]) -> bytes:
    anchors = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
    paragraphs = "".join(
        f"<p>{text}</p>"
        for text in [
            "The Ministry of Foreign Affairs held consultations with its partners today.",
            "The sides discussed cooperation in trade, transport and culture in detail.",
            "They agreed to meet again next year and to sign the documents attached below.",
            "The full text of the joint statement and its annex are published with this note.",
        ]
    )
    return (
        "<!doctype html><html><head><title>Joint statement | Ministry</title></head><body>"
        f"<main><article><h1>Joint statement</h1>{paragraphs}<ul>{anchors}</ul>"
        "</article></main></body></html>"
    ).encode()


@dataclass
class Site:
    """Files by path: (content type, bytes); GETs are counted and honour If-None-Match."""

    url: str = ""
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    gets: dict[str, int] = field(default_factory=dict)
    not_modified: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, content_type: str, body: bytes) -> None:
        with self.lock:
            self.files[path] = (content_type, body)


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.gets[self.path] = state.gets.get(self.path, 0) + 1
                found = state.files.get(self.path)
            if self.path == "/huge.pdf":
                return self._huge()
            if found is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            content_type, body = found
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                with state.lock:
                    state.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def _huge(self) -> None:
            # 200 MB announced and streamed until the client stops reading.
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(200 * 1024 * 1024))
            self.end_headers()
            chunk = b"%PDF-1.7\n" + b"0" * (1024 * 1024 - 9)
            try:
                for _ in range(200):
                    self.wfile.write(chunk)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    for base in serve_on_loopback(Handler):
        state.url = base
        yield state


def config_for(tmp_path: Path, site: Site, watches: str) -> Path:
    return local_config(
        tmp_path,
        watches,
        fetch='timeout = "10s"\nmax_bytes = 5_000_000',
        alerts='failing_after = "0s"',
        sections=CONSOLE,
    )


def statement_watch(site: Site, extra: str = "") -> str:
    return f"""
[[watch]]
id = "statement"
url = "{site.url}/statement.html"
profile = "generic"
channels = ["console"]
{extra}
"""


class Run:
    """Checks of a config's watches against one archive."""

    def __init__(self, config_path: Path) -> None:
        self.config = load_config(config_path, profile_names())

    def check(self, *watch_ids: str) -> list[CheckOutcome]:
        async def go() -> list[CheckOutcome]:
            with Store(self.config.store.path) as store:
                async with Fetcher(self.config.fetch) as fetcher:
                    checker = Checker(self.config, store, fetcher)
                    watches = [w for w in self.config.watch if not watch_ids or w.id in watch_ids]
                    return await checker.check_all(watches)

        return asyncio.run(go())

    def read(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """(alerts, versions of every statement) as stored."""
        with Store(self.config.store.path) as store:
            alerts = [json.loads(row["payload"]) for row in store.alerts()]
            versions = [
                dict(version)
                for watch in self.config.watch
                for document in store.documents(watch.id)
                for version in store.versions(document["id"])
            ]
        return alerts, versions

    def statement(self, version: dict[str, object]) -> Statement:
        with Store(self.config.store.path) as store:
            return Statement.from_json(store.read_blob(str(version["text_sha256"])))


_ANNEXES: dict[str, bytes] = {}


def serve_statement(site: Site, sentence: str = SENTENCE, author: str = "Press service") -> None:
    site.put(
        "/files/full-text.pdf", "application/pdf", make_pdf([PAGE_ONE, page_two(sentence)], author)
    )
    annex = site.files.get("/files/annex.docx")
    if annex is None or author not in _ANNEXES:  # the annex is not touched by a PDF's edit
        _ANNEXES[author] = make_docx(
            ["Annex to the joint statement.", "List of participants."], author
        )
    site.put(
        "/files/annex.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ANNEXES[author],
    )
    site.put(
        "/statement.html",
        "text/html; charset=utf-8",
        statement_page([("/files/full-text.pdf", "Full text"), ("/files/annex.docx", "Annex")]),
    )


@pytest.mark.slow
def test_a_sentence_replaced_on_page_two_of_the_pdf_alerts_once_naming_it(
    tmp_path: Path, site: Site
) -> None:
    serve_statement(site)
    run = Run(config_for(tmp_path, site, statement_watch(site)))
    assert [o.outcome for o in run.check()] == ["changed"]  # the baseline, files read
    _, versions = run.read()
    documents = run.statement(versions[-1]).documents
    assert [d.kind for d in documents] == ["PDF", "DOCX"]
    assert documents[0].pages[1][1] == SENTENCE
    assert documents[1].pages == (("Annex to the joint statement.", "List of participants."),)

    assert [o.outcome for o in run.check()] == ["unchanged"]  # the files answer 304
    assert site.not_modified >= 2

    serve_statement(site, EDITED)  # the PDF is replaced; the page stays byte for byte
    outcome = run.check()[0]
    assert (outcome.outcome, outcome.alerts) == ("changed", 1)
    alerts, versions = run.read()
    edited = [a for a in alerts if a["kind"] == "edited"]
    assert len(edited) == 1
    summary = str(edited[0]["summary"])
    assert summary.startswith("The PDF “Full text” changed: page 2, paragraph 2")
    assert "“Astana … Monday” → “Geneva … Friday”" in summary
    # Each version of the file is archived: the versions name both PDFs' bytes.
    shas = {run.statement(v).documents[0].sha256 for v in versions}
    assert len(shas) == 2
    with Store(run.config.store.path) as store:
        for sha in shas:
            assert store.read_blob(sha).startswith(b"%PDF-")
        rows = store.attachments.history("statement")
    assert [r["url"].rsplit("/", 1)[-1] for r in rows] == [
        "full-text.pdf",
        "annex.docx",
        "full-text.pdf",
    ]

    assert [o.alerts for o in run.check()] == [0]  # nothing new, nothing again

    # Exports keep each version of the file: a WARC response record per PDF version, and
    # the files' facts on each JSON line.
    from warcio.archiveiterator import ArchiveIterator

    from monitor.export import write_jsonl, write_warc

    with Store(run.config.store.path) as store:
        write_warc(store, tmp_path / "out.warc.gz")
        write_jsonl(store, tmp_path / "out.jsonl")
    with open(tmp_path / "out.warc.gz", "rb") as stream:
        pdfs = [
            record.content_stream().read()
            for record in ArchiveIterator(stream)
            if record.rec_type == "response"
            and record.rec_headers.get_header("WARC-Target-URI").endswith("full-text.pdf")
        ]
    assert {hashlib.sha256(body).hexdigest() for body in pdfs} == shas
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    files = [line["attachments"][0]["sha256"] for line in lines if line.get("attachments")]
    assert set(files) == shas


def test_a_file_regenerated_with_the_same_text_is_archived_not_alerted(
    tmp_path: Path, site: Site
) -> None:
    serve_statement(site)
    run = Run(config_for(tmp_path, site, statement_watch(site)))
    run.check()
    serve_statement(site, author="Department of information")  # new bytes, same words
    outcome = run.check()[0]
    assert (outcome.outcome, outcome.alerts) == ("changed", 0)
    alerts, versions = run.read()
    assert [a["kind"] for a in alerts] == []
    assert len(versions) == 2
    summary = str(versions[-1]["summary"])
    assert "the PDF “Full text” was re-generated with the same text" in summary
    assert "author “Press service” → “Department of information”" in summary


def test_a_document_watch_reads_the_file_like_a_page(tmp_path: Path, site: Site) -> None:
    site.put("/treaty.pdf", "application/pdf", make_pdf([PAGE_ONE, page_two(SENTENCE)]))
    watch = f"""
[[watch]]
id = "treaty"
url = "{site.url}/treaty.pdf"
channels = ["console"]
"""
    run = Run(config_for(tmp_path, site, watch))
    assert run.config.watch[0].profile is None
    assert [o.outcome for o in run.check()] == ["changed"]
    site.put("/treaty.pdf", "application/pdf", make_pdf([PAGE_ONE, page_two(EDITED)]))
    assert [o.alerts for o in run.check()] == [1]
    alerts, versions = run.read()
    assert str(alerts[-1]["summary"]).startswith(
        "The PDF “treaty.pdf” changed: page 2, paragraph 2"
    )
    assert [v["kind"] for v in versions] == ["baseline", "edited"]


@pytest.mark.slow
def test_a_scanned_page_is_read_by_ocr_and_its_edit_alerts(tmp_path: Path, site: Site) -> None:
    lines = ["The talks concern the border treaty.", "The ministry will meet on Monday."]
    site.put("/scan.pdf", "application/pdf", make_scan(lines))
    watch = f"""
[[watch]]
id = "scan"
url = "{site.url}/scan.pdf"
channels = ["console"]
ocr = ["eng"]
"""
    run = Run(config_for(tmp_path, site, watch))
    run.check()
    _, versions = run.read()
    document = run.statement(versions[-1]).documents[0]
    assert document.ocr_pages == (1,)
    assert "meet on Monday" in " ".join(document.pages[0])

    site.put(
        "/scan.pdf", "application/pdf", make_scan([lines[0], "The ministry will meet on Friday."])
    )
    assert [o.alerts for o in run.check()] == [1]
    alerts, _ = run.read()
    summary = str(alerts[-1]["summary"])
    assert "page 1 (OCR)" in summary and "Monday" in summary and "Friday" in summary


def test_ocr_noise_is_no_edit() -> None:
    def scan(text: str, unsure: tuple[str, ...] = ()) -> Statement:
        document = Document(
            "http://x/scan.pdf",
            "Scan",
            "PDF",
            hashlib.sha256(text.encode()).hexdigest(),
            1,
            ((text,),),
            ocr_pages=(1,),
            ocr_unsure=unsure,
        )
        return Statement("k", "http://x/", "Scan", (), documents=(document,))

    base = scan("The ministry will meet on Monday in Astana.")
    one_letter = scan("The ministry wi1l meet on Monday in Astana.")
    unsure_word = scan("The ministry will meet on Monday in Astaria.", unsure=("astaria",))
    real = scan("The ministry will meet on Friday in Astana.")
    assert not compare(base, one_letter).changed
    assert "OCR" in compare(base, one_letter).summary
    assert not compare(base, unsure_word).changed
    assert compare(base, real).changed


def pdf_bomb() -> bytes:
    """A valid PDF whose page content expands from ~100 KB to 100 MB."""
    stream = zlib.compress(b" " * 100_000_000, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def encrypted_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, SENTENCE)
    return bytes(pdf.output())


@pytest.mark.slow
def test_bad_files_are_problems_never_edits(tmp_path: Path, site: Site) -> None:
    good = make_pdf([PAGE_ONE, page_two(SENTENCE)])
    bad = {
        "encrypted": encrypted_pdf(),
        "truncated": good[: len(good) // 2],
        "bomb": pdf_bomb(),
        "errorpage": b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
        b"<body>Try later</body></html>",
    }
    for name, body in bad.items():
        site.put(f"/{name}.pdf", "application/pdf", body)
    site.put("/good.pdf", "application/pdf", good)
    watches = "".join(
        f'\n[[watch]]\nid = "{name}"\nurl = "{site.url}/{name}.pdf"\nchannels = ["console"]\n'
        for name in [*bad, "huge", "good"]
    )
    run = Run(config_for(tmp_path, site, watches))
    outcomes = {o.watch_id: o for o in run.check()}
    assert outcomes["good"].outcome == "changed"  # its baseline, unaffected by the others
    reasons = {name: o.detail for name, o in outcomes.items() if name != "good"}
    assert all(outcomes[name].outcome == "problem" for name in reasons)
    assert "encrypted PDF" in reasons["encrypted"]
    assert "truncated PDF" in reasons["truncated"]
    assert "PDF bomb" in reasons["bomb"]
    assert (
        "an HTML page “503 Service Unavailable” served as application/pdf" in reasons["errorpage"]
    )
    assert "too large" in reasons["huge"] and "max_bytes" in reasons["huge"]

    # As attachments: the statement is read, the files are problems of the check, and a
    # good file that turns bad keeps its text (no false edit).
    site.put("/files/full-text.pdf", "application/pdf", good)
    links = [("/files/full-text.pdf", "Full text")] + [(f"/{n}.pdf", n) for n in [*bad, "huge"]]
    site.put("/statement.html", "text/html; charset=utf-8", statement_page(links))
    (tmp_path / "attached").mkdir()
    run = Run(config_for(tmp_path / "attached", site, statement_watch(site)))
    first = run.check()[0]
    assert first.outcome == "changed"
    for words in ("encrypted PDF", "truncated PDF", "PDF bomb", "an HTML page", "too large"):
        assert words in first.detail
    site.put("/files/full-text.pdf", "application/pdf", good[:-400])  # cut short now
    again = run.check()[0]
    assert (again.outcome, again.alerts) == ("unchanged", 0)
    assert "truncated PDF" in again.detail
    with Store(run.config.store.path) as store:
        rows = store.attachments.history("statement")
    kept = [r for r in rows if r["url"].endswith("/encrypted.pdf")]
    assert kept and kept[0]["body_sha256"]  # the bytes are evidence, kept
    huge = [r for r in rows if r["url"].endswith("/huge.pdf")]
    assert huge[0]["body_sha256"] is None and "too large" in huge[0]["problem"]


def test_ocr_languages_are_checked_with_file_line_and_field(tmp_path: Path, site: Site) -> None:
    path = config_for(tmp_path, site, statement_watch(site, 'ocr = ["rus", "Kazakh!"]'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, profile_names())
    message = str(caught.value)
    assert "monitor.toml:" in message and "ocr" in message


def test_each_format_is_read_with_its_library() -> None:
    import openpyxl
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    from monitor.documents import read_document

    odt = OpenDocumentText()
    for text in ("Note verbale No. 12.", "The Embassy presents its compliments."):
        odt.text.addElement(P(text=text))
    odt_bytes = io.BytesIO()
    odt.write(odt_bytes)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Country", "Visits"])
    sheet.append(["Japan", 3])
    xlsx_bytes = io.BytesIO()
    book.save(xlsx_bytes)
    rtf = rb"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0 First line of the note.\par "
    rtf += rb"Second line.\par}"
    files = {
        "note.odt": odt_bytes.getvalue(),
        "stats.xlsx": xlsx_bytes.getvalue(),
        "note.rtf": rtf,
        "annex.docx": make_docx(["Annex.", "Participants."]),
    }
    read = {name: read_document(body, f"http://x/{name}", name) for name, body in files.items()}
    assert read["note.odt"].pages == (
        ("Note verbale No. 12.", "The Embassy presents its compliments."),
    )
    assert read["stats.xlsx"].pages == (("Country · Visits", "Japan · 3"),)
    assert read["stats.xlsx"].page_label(1) == "sheet 1"
    assert read["note.rtf"].pages == (("First line of the note.", "Second line."),)
    assert read["annex.docx"].kind == "DOCX"
    assert dict(read["annex.docx"].metadata)["author"] == "Press service"


def test_the_diff_page_shows_a_files_paragraph_with_its_page() -> None:
    from monitor.diff import DELETE, INSERT
    from monitor.documents import read_document
    from monitor.web.diffview import diff_view

    def statement(sentence: str) -> Statement:
        body = make_pdf([PAGE_ONE, page_two(sentence)])
        document = read_document(body, "http://x/full.pdf", "Full text")
        return Statement("k", "http://x/", "Joint statement", ("Text.",), documents=(document,))

    view = diff_view(statement(SENTENCE), statement(EDITED), [])
    (shown,) = view.fields
    assert shown.where == "the PDF “Full text” changed: page 2, paragraph 2"
    assert {p.text.strip() for p in shown.pieces if p.op == DELETE} >= {"Astana", "Monday"}
    assert {p.text.strip() for p in shown.pieces if p.op == INSERT} >= {"Geneva", "Friday"}


def test_a_files_words_are_found_by_search(tmp_path: Path, site: Site) -> None:
    serve_statement(site)
    run = Run(config_for(tmp_path, site, statement_watch(site)))
    run.check()
    with Store(run.config.store.path) as store:
        store.fulltext.index_text()
        found = store.fulltext.search("Astana")  # only the PDF says it
    assert len(found) == 1


def test_monitor_extract_shows_a_documents_pages(tmp_path: Path) -> None:
    from tests.conftest import monitor_cli

    pdf = tmp_path / "treaty.pdf"
    pdf.write_bytes(make_pdf([PAGE_ONE, page_two(SENTENCE)]))
    done = monitor_cli(None, "extract", "--url", "https://example.org/treaty.pdf", str(pdf))
    assert done.returncode == 0, done.stderr
    assert "(document)" in done.stdout
    assert f"[page 2]\nThe parties agreed on the following.\n{SENTENCE}" in done.stdout


def test_changed_extraction_rules_are_excused_for_a_statement_with_files(
    tmp_path: Path, site: Site
) -> None:
    serve_statement(site)
    page = site.files["/statement.html"][1].replace(
        b"<ul>",
        b'<p class="aside">The embassy in Tokyo answers questions on these talks.</p><ul>',
    )
    site.put("/statement.html", "text/html; charset=utf-8", page)
    run = Run(config_for(tmp_path, site, statement_watch(site)))
    run.check()
    _, versions = run.read()
    assert any("Tokyo" in p for p in run.statement(versions[-1]).paragraphs)
    # The user drops the aside: the rules' doing, read again and recorded, not alerted. (New
    # bytes without new words, so that the page is fetched whole, not answered with a 304.)
    site.put("/statement.html", "text/html; charset=utf-8", page + b"<!-- cached -->")
    run = Run(config_for(tmp_path, site, statement_watch(site, 'ignore_selectors = [".aside"]')))
    outcome = run.check()[0]
    assert (outcome.outcome, outcome.alerts) == ("changed", 0)
    _, versions = run.read()
    assert versions[-1]["kind"] == "baseline"
    assert run.statement(versions[-1]).documents  # the files stay with the statement


def test_discovered_statements_take_attachments_and_ocr_from_their_listing() -> None:
    from datetime import UTC, datetime

    from monitor.config import WatchConfig
    from monitor.discover import statement_watch as discovered

    listing = WatchConfig(
        id="listing", url="https://example.org/news", discover=True, ocr=["rus", "kaz"]
    )
    row = {
        "watch_id": "listing.1",
        "url": "https://example.org/news/1",
        "title": "Statement",
        "profile": "generic",
        "language": None,
        "published": None,
        "discovered_at": "2026-12-01T00:00:00Z",
    }
    watch = discovered(listing, row, datetime.now(UTC))
    assert (watch.attachments, watch.ocr) == (True, ["rus", "kaz"])
    off = discovered(listing.model_copy(update={"attachments": False}), row, datetime.now(UTC))
    assert off.attachments is False
