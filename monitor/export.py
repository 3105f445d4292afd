"""Export: the archive for other archives (WARC 1.1) and for scripts (JSON lines).

WARC (ISO 28500, version 1.1, written with warcio), for every exported version:

* the response that produced it, once even when it produced several versions: a `request`
  record (method, URL, the headers and body monitor sent) and a `response` record (status,
  headers and body as received; target URI: the final URL after redirects);
* a `resource` record with the statement exactly as stored (canonical JSON, the bytes its
  text_sha256 names), `WARC-Concurrent-To` the response; none for a removal;
* a `metadata` record (JSON: watch, key, sequence number, kind, times, hashes, redirect
  chain) that `WARC-Refers-To` the resource, or the response for a removal;
* per screenshot (`screenshot = true`, monitor/screenshots.py) of the exported watches, a
  `resource` record with the PNG as stored (target `urn:monitor:screenshot:WATCH:ID`,
  `image/png`) and a `metadata` record (`"type": "screenshot"`: when, the page's URL, size,
  what it was compared with, the share that changed and the changed regions, and the
  versions it shows) that `WARC-Refers-To` it; each version's facts name its screenshot
  (`screenshot`: id, sha256, record URI; null when none was taken);
* per response, a `metadata` record of its TLS provenance (`"type": "tls-provenance"`,
  target `urn:monitor:tls-provenance:ID`, the page's URL inside:
  protocol, cipher, the certificate chain as the server presented it, with each
  certificate's subject, issuer, serial, validity, SHA-256 and PEM; or `"encrypted":
  false` for plain HTTP) that `WARC-Refers-To` and is `WARC-Concurrent-To` the response
  record. None for a response stored before TLS provenance was recorded.

Payload digests are the SHA-256 the store has kept since the capture (`sha256:` + base32),
and every blob is re-hashed as it is read, so a damaged archive fails the export instead of
producing a file that looks sound; `warcio check` re-verifies digests in the file.

The store keeps bodies decoded (the HTTP client undoes gzip and chunking), so the headers
that describe the bytes on the wire — Content-Encoding, Transfer-Encoding, Content-Length —
are written as X-Archive-Orig-*, and Content-Length is that of the payload as written:
replay tools would otherwise try to decompress it again.

Attachments (monitor/attachments.py): each version of a file a statement's documents name
is written once, as `request` and `response` records like a page's; in JSON lines each
version lists them under `attachments` (URL, kind, SHA-256 of the bytes, size, when fetched).

JSON lines: one object per version with the same facts (the response's TLS provenance
as `response.tls`, null when it was not recorded), the statement as a JSON object
(`statement`; re-serialised with sorted keys, no spaces and unescaped UTF-8 it gives back
the exact bytes of `text_sha256`) and as plain text (`text`).

Secrets (monitor/redact.py): credentials in URLs (`https://user:pass@host/`, in any header
too, a Location), request headers that authenticate (Authorization, Cookie, gov.kz's
`hash`/`token`) and response headers that hand out a secret (Set-Cookie) are written as
`***` / `[redacted]` unless `include_secrets` (`monitor export --include-secrets`). Only
headers change, never a payload: the payload digests stay those of the capture, and
warcio's block digests are of the record as written.

A damaged or missing blob does not stop an export: everything else is written, and what
was left out is listed in `ExportCount.skipped` (`monitor export` reports it and exits 1).
In WARC a damaged raw body leaves out that exchange (request and response records), a
damaged statement its resource record; in JSON lines the version's line is left out.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from io import BytesIO
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import quote, urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from monitor import progress
from monitor.clock import parse_iso
from monitor.config import StoreConfig, parse_duration
from monitor.extract import Statement
from monitor.redact import (
    redact_deep,
    redact_headers,
    redact_response_headers,
    redact_text,
    redact_url,
)
from monitor.store import Store, StoreError
from monitor.store.chain import ChainReport, walk
from monitor.store.provenance import response_tls
from monitor.store.records import (
    CopyRow,
    ResponseRow,
    StampRef,
    VersionScreenshotRow,
    VersionWithDocumentRow,
    iso,
)
from monitor.store.wayback import captured, copies_of
from monitor.timestamps import BATCH_RECORD, TimestampReport, batch_record, check_export

# Headers about the transfer, not the payload: kept under this prefix (pywb's convention).
ORIGINAL_PREFIX = "X-Archive-Orig-"
_WIRE_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}
# The `type` of a screenshot's metadata record, and the first part of its URN.
SCREENSHOT_RECORD = "screenshot"


@dataclass
class ExportCount:
    versions: int = 0
    records: int = 0
    # What a damaged or missing blob kept out of the export, one line each.
    skipped: list[str] = field(default_factory=list)


def parse_since(value: str) -> str:
    """'2024-05-01', '2024-05-01T10:00Z' (UTC unless an offset is given) or an age such as
    '7d' → the archive's timestamp format."""
    try:
        return iso(datetime.now(UTC) - timedelta(seconds=parse_duration(value)))
    except ValueError:
        pass
    try:
        moment = parse_iso(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a date or time (2024-05-01, 2024-05-01T10:00Z) "
            "nor an age (7d, 12h)"
        ) from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@dataclass
class Known:
    """What `version_facts` reads beside a version, for a page of versions at once (an
    export asked for each version's trusted timestamp, copies, screenshot and response in
    queries of their own: four per version, most of a watch's export)."""

    stamps: dict[int, StampRef]
    copies: dict[int, list[CopyRow]]
    shots: dict[int, VersionScreenshotRow]
    responses: dict[int, ResponseRow]
    chains: dict[str, Any] = field(default_factory=dict)  # TLS chains read, by digest

    @classmethod
    def of(cls, store: Store, rows: Collection[VersionWithDocumentRow]) -> Known:
        ids = [row["id"] for row in rows]
        return cls(
            store.timestamps.stamps_of(ids),
            copies_of(store, ids),
            store.screenshots.of_versions(ids),
            store.responses({row["response_id"] for row in rows if row["response_id"]}),
        )


# Versions whose facts are read together (see Known): iter_versions' own page.
KNOWN_PAGE = 500


def with_known(
    store: Store, rows: Iterable[VersionWithDocumentRow]
) -> Iterator[tuple[VersionWithDocumentRow, Known]]:
    """Each version with what is known beside it, read `KNOWN_PAGE` versions at a time."""
    page: list[VersionWithDocumentRow] = []
    for row in itertools.chain(rows, [None]):
        if row is not None:
            page.append(row)
            if len(page) < KNOWN_PAGE:
                continue
        if page:
            known = Known.of(store, page)
            for one in page:
                yield one, known
            page = []


def version_facts(
    store: Store,
    row: VersionWithDocumentRow,
    include_secrets: bool = False,
    known: Known | None = None,
) -> dict[str, Any]:
    """What the archive knows about one version, JSON-ready (metadata records, JSON lines);
    URL credentials and authenticating request headers redacted unless `include_secrets`.
    `known`: what was read beside it for its page of versions (else read for it alone)."""
    if known is None:
        known = Known.of(store, [row])
    shot = known.shots.get(row["id"])
    facts = {
        # The statement's version number, the one users see everywhere (`seq` too, as
        # before); `version_id` is the database's own row id.
        "version": row["seq"],
        "version_id": row["id"],
        "watch": row["watch_id"],
        "key": row["key"],
        "seq": row["seq"],
        "kind": row["kind"],
        "confirmation": row["confirmation"],
        "observed_at": row["observed_at"],
        "title": row["title"],
        "url": row["url"],
        "language": row["language"],
        "published": row["published"],
        "score": row["score"],
        "summary": row["summary"],
        "text_sha256": row["text_sha256"],
        "body_sha256": None,
        "prev_chain": row["prev_chain"],
        "chain": row["chain"],
        "watch_chain": row["watch_chain"],
        # The trusted timestamp covering it: {"batch": id, "head": chain}, the batch itself
        # being a record of the export (monitor/timestamps.py); None while it waits.
        "timestamp": known.stamps.get(row["id"]),
        # Copies made elsewhere (save_to, monitor/wayback.py): [{target, url, captured_at}].
        "independent_copies": captured(known.copies.get(row["id"], [])),
        "screenshot": None if shot is None else _screenshot_facts(shot),
        "response": None,
    }
    found = known.responses.get(row["response_id"]) if row["response_id"] else None
    if found is not None:
        record: dict[str, Any] = {**found}  # reshaped for the export
        del record["watch_id"]
        record["request_body_sha256"] = record.pop("request_body")
        record["tls"] = response_tls(store, record, known.chains)
        del record["tls_chain"]
        facts["response"] = record
        facts["body_sha256"] = record["body_sha256"]
    return facts if include_secrets else hide_secrets(facts)


def hide_secrets(facts: dict[str, Any]) -> dict[str, Any]:
    """Facts of a version with URL credentials and secret headers redacted."""
    shown = redact_deep(facts)
    if shown.get("response"):
        response = shown["response"]
        response["request_headers"] = redact_headers(response["request_headers"])
        response["headers"] = [list(pair) for pair in redact_response_headers(response["headers"])]
    return shown


def chain_record(store: Store, watch_id: str | None, since: str | None) -> dict[str, Any]:
    """The hash chains' heads for an export (its last JSON line, a WARC metadata record):
    with them, the export alone shows whether any version in it was altered, removed or
    reordered (`monitor verify --export FILE`)."""
    watch_ids = store.family(watch_id) if watch_id else None
    statements, watches = store.chain_heads(watch_ids)
    return {
        "type": CHAIN_HEADS,
        "complete": since is None,
        "statements": statements,
        "watches": watches,
    }


# The `type` of the chain heads' record; version lines have no `type`.
CHAIN_HEADS = "chain-heads"
# The `type` of a WARC metadata record of a response's TLS provenance.
TLS_RECORD = "tls-provenance"


def write_jsonl(
    store: Store,
    target: Path | IO[str],
    watch_id: str | None = None,
    since: str | None = None,
    include_secrets: bool = False,
    *,
    durable: bool = True,
) -> ExportCount:
    """One line per version, then one with the chain heads (`"type": "chain-heads"`).
    `durable`: a file is on disk (fsync) once written; False for a download's temporary
    copy (the web UI's), which nobody reads after a crash."""
    count = ExportCount()
    watches = store.family(watch_id) if watch_id else None
    batch_ids: set[int] = set()
    with _output(target, binary=False, durable=durable) as out:
        for row, known in with_known(store, store.iter_versions(watches, since)):
            progress.tick()
            line = version_facts(store, row, include_secrets, known)
            try:
                raw = store.read_blob(row["text_sha256"]) if row["text_sha256"] else None
            except StoreError as err:
                count.skipped.append(f"{_version_name(row)}: {err}")
                continue
            line["statement"] = json.loads(raw) if raw is not None else None
            line["attachments"] = attachment_facts(store, line["statement"])
            line["text"] = Statement.from_json(raw).render_text() if raw is not None else None
            if not include_secrets:
                # A single page's statement names its URL, credentials and all.
                line["statement"], line["text"] = redact_deep((line["statement"], line["text"]))
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            count.versions += 1
            if line["timestamp"]:
                batch_ids.add(line["timestamp"]["batch"])
        for batch in store.timestamps.batches(batch_ids):
            out.write(json.dumps(batch_record(batch)) + "\n")
            count.records += 1
        heads = chain_record(store, watch_id, since)
        out.write(json.dumps(heads, ensure_ascii=False) + "\n")
    count.records += count.versions + 1
    return count


def write_warc(
    store: Store,
    path: Path,
    watch_id: str | None = None,
    since: str | None = None,
    include_secrets: bool = False,
    *,
    durable: bool = True,
) -> ExportCount:
    """Write the versions to `path` (gzipped per record when it ends in .gz); `durable` as
    for `write_jsonl`."""
    count = ExportCount()
    with _output(path, binary=True, durable=durable) as out:
        writer = _Sha256WARCWriter(out, gzip=path.suffix == ".gz", warc_version="1.1")
        info = {
            "software": f"monitor {_version()} (warcio)",
            "format": "WARC File Format 1.1",
            "description": "Statement versions archived by monitor; see monitor/export.py",
        }
        _write(writer, writer.create_warcinfo_record(path.name, info), count)
        # Store's response id → its WARC-Record-ID (None: its blobs are damaged).
        response_ids: dict[int, str | None] = {}
        batch_ids: set[int] = set()
        versions = store.iter_versions(store.family(watch_id) if watch_id else None, since)
        for row, known in with_known(store, versions):
            progress.tick()
            facts = version_facts(store, row, include_secrets=True, known=known)
            shown = facts if include_secrets else hide_secrets(facts)
            response = facts["response"]
            if response is not None and response["id"] not in response_ids:
                try:
                    response_ids[response["id"]] = _write_exchange(
                        store, writer, response, count, include_secrets
                    )
                    _write_tls(writer, response, response_ids[response["id"]], count, shown)
                except StoreError as err:
                    response_ids[response["id"]] = None
                    count.skipped.append(f"response {response['id']} (request, response): {err}")
            response_id = response_ids[response["id"]] if response is not None else None
            # The statement's bytes, read once for its record and for its files'.
            text, described = None, response_id
            try:
                text = store.read_blob(row["text_sha256"]) if row["text_sha256"] else None
            except StoreError as err:
                count.skipped.append(f"{_version_name(row)} (statement): {err}")
            if text is not None:
                described = (
                    _write_text(writer, row, text, response_id, count, include_secrets)
                    or response_id
                )
                _write_attachments(store, writer, text, count, include_secrets, response_ids)
            record = writer.create_warc_record(
                _version_uri(row),
                "metadata",
                payload=BytesIO(json.dumps(shown, ensure_ascii=False).encode()),
                warc_content_type="application/json",
                warc_headers_dict=_warc_headers(row["observed_at"], refers_to=described),
            )
            _write(writer, record, count)
            count.versions += 1
            if facts["timestamp"]:
                batch_ids.add(facts["timestamp"]["batch"])
        watch_ids = store.family(watch_id) if watch_id else None
        for shot in store.screenshots.exported(watch_ids, since):
            try:
                _write_screenshot(store, writer, shot, count, include_secrets)
            except StoreError as err:
                count.skipped.append(f"screenshot {shot['id']} of {shot['watch_id']}: {err}")
        for batch in store.timestamps.batches(batch_ids):
            stamp = writer.create_warc_record(
                f"urn:monitor:{BATCH_RECORD}:{batch['id']}",
                "metadata",
                payload=BytesIO(json.dumps(batch_record(batch)).encode()),
                warc_content_type="application/json",
                warc_headers_dict=_warc_headers(batch["gen_time"]),
            )
            _write(writer, stamp, count)
        heads = writer.create_warc_record(
            "urn:monitor:chain-heads",
            "metadata",
            payload=BytesIO(json.dumps(chain_record(store, watch_id, since)).encode()),
            warc_content_type="application/json",
            warc_headers_dict=_warc_headers(iso(datetime.now(UTC))),
        )
        _write(writer, heads, count)
    return count


class _Sha256WARCWriter(WARCWriter):
    # Block digests in SHA-256 like the stored payload digests (warcio's default is SHA-1).
    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


class _WireHeaders(StatusAndHeaders):
    """Headers written back as the bytes received: the HTTP client decoded them as latin-1,
    and warcio would otherwise %-encode every non-ASCII byte."""

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self.to_bytes(header_filter, encoding="latin-1")


def _write_exchange(
    store: Store,
    writer: WARCWriter,
    response: dict[str, Any],
    count: ExportCount,
    include_secrets: bool,
) -> str:
    """The request and response records of one stored response; returns the response's id.
    Both blobs are read before anything is written: a damaged one leaves out the pair."""
    body = store.read_blob(response["body_sha256"])
    sha = response["request_body_sha256"]
    sent = store.read_blob(sha) if sha else b""
    status = response["status"]
    received = response["headers"]
    if not include_secrets:
        received = redact_response_headers(received)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # a status Python has no name for
        reason = ""
    headers = [
        (ORIGINAL_PREFIX + name if name.lower() in _WIRE_HEADERS else name, value)
        for name, value in received
    ] + [("Content-Length", str(len(body)))]
    response_headers = _warc_headers(response["requested_at"], digest=response["body_sha256"])
    url, final_url = response["url"], response["final_url"]
    sent_headers = response["request_headers"]
    if not include_secrets:
        url, final_url = redact_url(url) or url, redact_url(final_url) or final_url
        sent_headers = redact_headers(sent_headers)
    record = writer.create_warc_record(
        final_url,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=_WireHeaders(
            f"{status} {reason}".strip(), headers, protocol=response["http_version"] or "HTTP/1.1"
        ),
        warc_headers_dict=response_headers,
    )
    record_id = record.rec_headers.get_header("WARC-Record-ID")

    parts = urlsplit(response["url"])
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The Host header as sent: the URL's host and port, never its user-info.
    host = parts.netloc.rpartition("@")[2]
    request_headers = [("Host", host), *sent_headers.items()]
    if sent and not any(name.lower() == "content-length" for name, _ in request_headers):
        request_headers.append(("Content-Length", str(len(sent))))
    request = writer.create_warc_record(
        url,
        "request",
        payload=BytesIO(sent),
        length=len(sent),
        http_headers=_WireHeaders(
            f"{response['method']} {target} HTTP/1.1", request_headers, is_http_request=True
        ),
        warc_headers_dict=_warc_headers(response["requested_at"], digest=sha)
        | {"WARC-Concurrent-To": record_id},
    )
    _write(writer, request, count)
    _write(writer, record, count)
    return str(record_id)


def attachment_facts(store: Store, statement: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The answers that brought a statement's documents (monitor/attachments.py): each
    version of a file by the SHA-256 of its bytes, as the `attachment` table has them."""
    documents = (statement or {}).get("documents", ())
    found = store.attachments.by_bodies({d["sha256"] for d in documents})
    facts = []
    for document in documents:
        row = found.get(document["sha256"])
        facts.append(
            {
                "url": document["href"],
                "kind": document["kind"],
                "sha256": document["sha256"],
                "size": document["size"],
                "fetched_at": row["fetched_at"] if row else None,
                "status": row["status"] if row else None,
                "media_type": row["media_type"] if row else None,
            }
        )
    return facts


def _write_attachments(
    store: Store,
    writer: WARCWriter,
    text: bytes,
    count: ExportCount,
    include_secrets: bool,
    written: dict[int, str | None],
) -> None:
    """The request and response records of each file the version's statement (`text`, its
    stored bytes) names, once per file version (`written` is keyed by negative attachment
    ids beside responses)."""
    statement = json.loads(text)
    shas = {document["sha256"] for document in statement.get("documents", ())}
    for sha, answer in sorted(store.attachments.by_bodies(shas).items()):
        key = -int(answer["id"])
        if key in written:
            continue
        exchange: dict[str, Any] = {
            "body_sha256": sha,
            "request_body_sha256": None,
            "status": answer["status"],
            "headers": [tuple(pair) for pair in json.loads(answer["headers"])],
            "requested_at": answer["fetched_at"],
            "url": answer["url"],
            "final_url": answer["final_url"],
            "request_headers": {},
            "http_version": None,
            "method": "GET",
        }
        try:
            written[key] = _write_exchange(store, writer, exchange, count, include_secrets)
        except StoreError as err:
            written[key] = None
            count.skipped.append(f"attachment {answer['url']} ({sha[:12]}): {err}")


def _write_tls(
    writer: WARCWriter,
    response: dict[str, Any],
    response_id: str | None,
    count: ExportCount,
    shown: dict[str, Any],
) -> None:
    """The TLS provenance of a response just written (`response_id`), if it was recorded."""
    if response["tls"] is None or response_id is None:
        return
    facts = {
        "type": TLS_RECORD,
        "response": response["id"],
        "url": shown["response"]["final_url"],  # credentials redacted unless asked for
        "requested_at": response["requested_at"],
        "tls": response["tls"],
    }
    headers = _warc_headers(response["requested_at"], refers_to=response_id)
    headers["WARC-Concurrent-To"] = response_id
    record = writer.create_warc_record(
        # Not the page's URL: replay tools (pywb) would serve this record for the page.
        f"urn:monitor:{TLS_RECORD}:{response['id']}",
        "metadata",
        payload=BytesIO(json.dumps(facts, ensure_ascii=False).encode()),
        warc_content_type="application/json",
        warc_headers_dict=headers,
    )
    _write(writer, record, count)


def _write_text(
    writer: WARCWriter,
    row: VersionWithDocumentRow,
    text: bytes,
    response_id: str | None,
    count: ExportCount,
    include_secrets: bool,
) -> str | None:
    digest = row["text_sha256"]
    if not include_secrets:
        shown = redact_text(text.decode()).encode()
        if shown != text:  # the statement's URL had credentials: these bytes, their digest
            text, digest = shown, hashlib.sha256(shown).hexdigest()
    headers = _warc_headers(row["observed_at"], digest=digest)
    if response_id:
        headers["WARC-Concurrent-To"] = response_id
    record = writer.create_warc_record(
        _version_uri(row),
        "resource",
        payload=BytesIO(text),
        length=len(text),
        warc_content_type="application/json",
        warc_headers_dict=headers,
    )
    _write(writer, record, count)
    return str(record.rec_headers.get_header("WARC-Record-ID"))


def screenshot_uri(watch_id: str, shot_id: int) -> str:
    return "urn:monitor:" + quote(f"{SCREENSHOT_RECORD}:{watch_id}:{shot_id}", safe=":/")


def _screenshot_facts(shot: Mapping[str, Any]) -> dict[str, Any]:
    uri = screenshot_uri(shot["watch_id"], shot["id"])
    return {"id": shot["id"], "sha256": shot["sha256"], "record": uri}


def _write_screenshot(
    store: Store,
    writer: WARCWriter,
    shot: Mapping[str, Any],  # a `ScreenshotRow` with a PNG (its sha256 set)
    count: ExportCount,
    include_secrets: bool,
) -> None:
    """A screenshot's PNG (resource) and what is known of it (metadata, referring to it)."""
    png = store.read_blob(shot["sha256"])
    uri = screenshot_uri(shot["watch_id"], shot["id"])
    resource = writer.create_warc_record(
        uri,
        "resource",
        payload=BytesIO(png),
        length=len(png),
        warc_content_type="image/png",
        warc_headers_dict=_warc_headers(shot["taken_at"], digest=shot["sha256"]),
    )
    _write(writer, resource, count)
    facts = {
        "type": SCREENSHOT_RECORD,
        "id": shot["id"],
        "watch": shot["watch_id"],
        "taken_at": shot["taken_at"],
        "url": shot["url"] if include_secrets else redact_url(shot["url"]),
        "sha256": shot["sha256"],
        "width": shot["width"],
        "height": shot["height"],
        "previous": shot["previous_id"],
        "changed": shot["changed"],
        "regions": json.loads(shot["regions"]) if shot["regions"] else None,
        "versions": [
            _version_uri(version)
            for version_id in store.screenshots.versions_of(shot["id"])
            if (version := store.version(version_id)) is not None
        ],
    }
    refers = str(resource.rec_headers.get_header("WARC-Record-ID"))
    record = writer.create_warc_record(
        uri,
        "metadata",
        payload=BytesIO(json.dumps(facts, ensure_ascii=False).encode()),
        warc_content_type="application/json",
        warc_headers_dict=_warc_headers(shot["taken_at"], refers_to=refers),
    )
    _write(writer, record, count)


def _warc_headers(
    date: str, digest: str | None = None, refers_to: str | None = None
) -> dict[str, str]:
    headers = {"WARC-Date": date, "WARC-Record-ID": WARCWriter._make_warc_id()}
    if digest:
        headers["WARC-Payload-Digest"] = warc_digest(digest)
    if refers_to:
        headers["WARC-Refers-To"] = refers_to
    return headers


def warc_digest(sha256_hex: str) -> str:
    """A stored hex SHA-256 as a WARC digest: 'sha256:' + base32, as warcio writes them."""
    return "sha256:" + base64.b32encode(bytes.fromhex(sha256_hex)).decode()


def verify_export(
    path: Path, stamps: TimestampReport | None = None, trusted: list[Any] | None = None
) -> ChainReport:
    """Check an export (JSON lines or WARC) on its own: every version's hash chain links,
    each statement's text hashes to its `text_sha256`, and the newest of each chain is the
    head the export names; with `stamps`, the trusted timestamps too (into `stamps`)."""
    versions: list[dict[str, Any]] = []
    heads: dict[str, Any] | None = None
    stamp_records: list[dict[str, Any]] = []
    report = ChainReport()
    for facts, text in _exported(path):
        if facts.get("type") == CHAIN_HEADS:
            heads = facts
            continue
        if facts.get("type") == BATCH_RECORD:
            stamp_records.append(facts)
            continue
        if facts.get("type") == TLS_RECORD:
            continue
        if facts.get("type") == SCREENSHOT_RECORD:
            if text is None or hashlib.sha256(text).hexdigest() != facts["sha256"]:
                report.damage.append(
                    f"screenshot {facts['id']} of {facts['watch']}: its PNG is missing or "
                    "does not match its SHA-256"
                )
            continue
        if text is not None and hashlib.sha256(text).hexdigest() != facts["text_sha256"]:
            report.damage.append(
                f"version {facts['watch']} {facts['key']} #{facts['seq']}: its text does not "
                "match its SHA-256"
            )
        versions.append(facts)
    if heads is None:
        report.damage.append("the export carries no chain heads (cut short, or not ours)")
        heads = {"statements": {}, "watches": {}, "complete": False}
    walk(versions, heads["statements"], heads["watches"], report, complete=heads["complete"])
    if stamps is not None:
        check_export(versions, stamp_records, trusted, stamps)
    return report


def _exported(path: Path) -> Iterator[tuple[dict[str, Any], bytes | None]]:
    """The version facts (and statement bytes) of an export, and its chain heads."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        start = raw.read(4)
    if start == b"WARC":
        with open(path, "rb") as stream:
            texts: dict[str, bytes] = {}
            for record in ArchiveIterator(stream):
                kind = record.rec_type
                if kind == "resource":
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    texts[uri] = record.content_stream().read()
                elif kind == "metadata":
                    facts = json.loads(record.content_stream().read())
                    uri = record.rec_headers.get_header("WARC-Target-URI")
                    kept = facts.get("text_sha256") or facts.get("type") == SCREENSHOT_RECORD
                    yield facts, texts.pop(uri, None) if kept else None
        return
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            facts = json.loads(line)
            statement = facts.get("statement")
            text = (
                json.dumps(
                    statement, sort_keys=True, ensure_ascii=False, separators=(",", ":")
                ).encode()
                if statement is not None
                else None
            )
            yield facts, text


def _version_name(row: VersionWithDocumentRow) -> str:
    return f"{row['watch_id']} {row['key']} version {row['seq']}"


def _version_uri(row: VersionWithDocumentRow) -> str:
    # The version itself has no URL (the statement's URL is the page it came from).
    return "urn:monitor:" + quote(f"{row['watch_id']}:{row['key']}:{row['seq']}", safe=":/")


def _version() -> str:
    try:
        return package_version("monitor")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "(source)"


def _write(writer: WARCWriter, record: Any, count: ExportCount) -> None:
    writer.write_record(record)
    count.records += 1


@contextmanager
def _output(target: Path | IO[Any], binary: bool, durable: bool = True) -> Iterator[IO[Any]]:
    """A file written whole or not at all (temporary name, fsync unless not `durable`,
    rename), or a stream."""
    if not isinstance(target, Path):
        yield target
        return
    partial = target.with_name(target.name + ".partial")
    try:
        with open(partial, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
            yield out
            out.flush()
            if durable:
                os.fsync(out.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


class ExportStores:
    """The stores exports read with, each export in a thread and on a connection of its
    own (it reads every blob of a watch), `size` of them at most, kept open from one export
    to the next: a store opened for each export made an engine whose statements were
    compiled anew, a third of what a watch's export of 100 versions cost. An export waits
    for a store another has finished with (its thread holds the interpreter's lock while
    it works: twenty at once end no sooner than twenty in turn, and each opened a store)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._idle: list[tuple[StoreConfig, Store]] = []
        self._free = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()

    def run(
        self, config: StoreConfig, writer: Callable[..., Any], target: Path, watch_id: str
    ) -> Any:
        """`writer` (write_jsonl or write_warc) of `watch_id` to `target`, a file
        the answer sends and then removes: not synced to disk."""
        with self._free:
            with self._lock:
                at = next((i for i, (kept, _) in enumerate(self._idle) if kept == config), None)
                store = self._idle.pop(at)[1] if at is not None else None
                # One made for another [store] (a reload changed it) is not kept.
                stale = [kept for _config, kept in self._idle] if at is None else []
                if stale:
                    self._idle = []
            for old in stale:
                old.close()
            while True:
                kept = store is not None
                if store is None:
                    store = Store.from_config(config)
                try:
                    count = writer(store, target, watch_id, durable=False)
                    break
                except BaseException as err:
                    store.close()
                    # A kept store whose connection has gone (a PostgreSQL server that
                    # restarted, an idle connection cut) is not the export's failure: it
                    # is made again on a store opened for it, as every export once was.
                    if not (kept and getattr(err, "connection_invalidated", False)):
                        raise
                    store = None
            with self._lock:
                self._idle.append((config, store))
            return count

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _config, store in idle:
            store.close()


# In a worker process of the web UI's exports: the stores they read with.
_WORKER_STORES = ExportStores()


def export_with(
    stores: ExportStores, config: StoreConfig, kind: str, target: str, watch_id: str
) -> ExportCount:
    """The web UI's export of a watch (`kind`: "jsonl" or "warc.gz") to `target`, on one of
    `stores`."""
    writer = write_warc if kind == "warc.gz" else write_jsonl
    return cast(ExportCount, stores.run(config, writer, Path(target), watch_id))


def export_in_worker(config: StoreConfig, kind: str, target: str, watch_id: str) -> ExportCount:
    """`export_with` in a worker process (monitor/isolate.py), on a store kept there from
    one export to the next."""
    return export_with(_WORKER_STORES, config, kind, target, watch_id)
