"""WACZ export: the WARC export packaged as Web Archive Collection Zipped (WACZ 1.1), the
format replay tools open directly (ReplayWeb.page, pywb's `wb-manager add --unpack-wacz`).

The package is built by webrecorder's own tool, py-wacz (`wacz create`), from the WARC that
`monitor export --warc` writes — so the index (`indexes/index.cdx.gz`, CDXJ), the page list
(`pages/pages.jsonl`), `datapackage.json` (the SHA-256 of every file in the package) and
`datapackage-digest.json` (the SHA-256 of `datapackage.json`) are what the format's
reference implementation makes of it. What we add is the page list: one page per stored
response that produced a version, at the time it was fetched, titled with the statement.

`verify_wacz` checks a package as a third party would: every file against
`datapackage.json`, that file against its digest, then the WARC inside on its own
(`monitor.export.verify_export`: statement hashes and hash chains).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from monitor.export import ExportCount, verify_export, write_warc
from monitor.redact import redact_url
from monitor.store import Store
from monitor.store.chain import ChainReport
from monitor.timestamps import TimestampReport

# The WARC's name inside the package (`archive/…`).
WARC_NAME = "monitor.warc.gz"
PAGES = "pages/pages.jsonl"


class WACZError(Exception):
    """The WACZ could not be built."""


def write_wacz(
    store: Store,
    path: Path,
    watch_id: str | None = None,
    since: str | None = None,
    include_secrets: bool = False,
) -> ExportCount:
    """Write the versions (as `write_warc` would, secrets redacted unless
    `include_secrets`) into a WACZ package at `path`: the file is written whole or not at
    all."""
    # Imported here: frictionless, which it loads, is slow to import.
    from wacz.main import main as wacz_main  # type: ignore[import-untyped]

    with tempfile.TemporaryDirectory(prefix="monitor-wacz-") as scratch:
        warc = Path(scratch) / WARC_NAME
        count = write_warc(store, warc, watch_id, since, include_secrets)
        pages_file = Path(scratch) / "pages.jsonl"
        pages = _pages(store, watch_id, since, include_secrets)
        with open(pages_file, "w", encoding="utf-8") as out:
            header = {"format": "json-pages-1.0", "id": "pages", "title": "monitor: pages"}
            out.write(json.dumps(header) + "\n")
            for page in pages:
                out.write(json.dumps(page, ensure_ascii=False) + "\n")
        partial = path.with_name(path.name + ".partial")
        log = io.StringIO()
        argv = ["create", "-o", str(partial), "--hash-type", "sha256", "--title"]
        argv += [_title(watch_id), "--desc", "Statement versions archived by monitor"]
        if pages:
            argv += ["-p", str(pages_file)]
        argv.append(str(warc))
        try:
            # py-wacz reports on standard output; kept for the error, not printed.
            with contextlib.redirect_stdout(log):
                status = wacz_main(argv)
            if status != 0:
                raise WACZError(f"py-wacz failed: {log.getvalue().strip()}")
            listed = _page_count(partial)
            # Pages of responses a damaged blob kept out of the WARC are dropped by py-wacz
            # (the export says what was left out); any other page missing is our fault.
            if listed != len(pages) and not count.skipped:
                raise WACZError(
                    f"py-wacz listed {listed} of {len(pages)} pages: {log.getvalue().strip()}"
                )
            with open(partial, "rb") as written:
                os.fsync(written.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
    return count


def _title(watch_id: str | None) -> str:
    return f"monitor: watch {watch_id}" if watch_id else "monitor: all watches"


def _pages(
    store: Store, watch_id: str | None, since: str | None, include_secrets: bool
) -> list[dict[str, Any]]:
    """One page per response that produced a version: its final URL at the time it was
    fetched (a response several versions came from is one page, titled with the first)."""
    pages: dict[int, dict[str, Any]] = {}
    watches = store.family(watch_id) if watch_id else None
    for row in store.iter_versions(watches, since):
        if not row["response_id"] or row["response_id"] in pages:
            continue
        response = store.response(row["response_id"])
        if response is None:
            continue
        url = response["final_url"]
        pages[row["response_id"]] = {
            # As the WARC names it (credentials in a URL are redacted there too).
            "url": url if include_secrets else redact_url(url) or url,
            "ts": response["requested_at"],
            "title": row["title"] or response["final_url"],
        }
    # py-wacz matches a page to its record by URL and second; two fetches of one URL in the
    # same second are one capture to a replay tool, so they are one page.
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for page in pages.values():
        unique.setdefault((page["url"], page["ts"][:19]), page)
    return list(unique.values())


def _page_count(path: Path) -> int:
    with zipfile.ZipFile(path) as package:
        if PAGES not in package.namelist():
            return 0
        lines = package.read(PAGES).decode().splitlines()
    return sum(1 for line in lines[1:] if line.strip())


def is_wacz(path: Path) -> bool:
    return path.suffix.lower() == ".wacz" or zipfile.is_zipfile(path)


def verify_wacz(
    path: Path, stamps: TimestampReport | None = None, trusted: list[Any] | None = None
) -> ChainReport:
    """Check a WACZ on its own: `datapackage-digest.json` names `datapackage.json`'s
    SHA-256, that names every other file's, and each WARC inside passes `verify_export`."""
    report = ChainReport()
    try:
        _check_package(path, report, stamps, trusted)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as err:
        report.damage.append(f"{path.name}: not a readable WACZ package ({err})")
    return report


def _check_package(
    path: Path,
    report: ChainReport,
    stamps: TimestampReport | None,
    trusted: list[Any] | None,
) -> None:
    with zipfile.ZipFile(path) as package:
        names = set(package.namelist())
        for required in ("datapackage.json", "datapackage-digest.json"):
            if required not in names:
                report.damage.append(f"{path.name}: no {required}: not a WACZ package")
        if report.damage:
            return
        manifest = package.read("datapackage.json")
        digest = json.loads(package.read("datapackage-digest.json"))
        if digest.get("hash") != "sha256:" + hashlib.sha256(manifest).hexdigest():
            report.damage.append("datapackage.json does not match datapackage-digest.json")
        listed = {entry["path"]: entry for entry in json.loads(manifest)["resources"]}
        for name in sorted(names - {"datapackage.json", "datapackage-digest.json"}):
            entry = listed.get(name)
            if entry is None:
                report.damage.append(f"{name}: in the package but not in datapackage.json")
                continue
            kind, _, expected = str(entry.get("hash", "")).partition(":")
            actual = hashlib.new(kind or "sha256", package.read(name)).hexdigest()
            if actual != expected:
                report.damage.append(f"{name}: does not match its hash in datapackage.json")
        for name in sorted(set(listed) - names):
            report.damage.append(f"{name}: listed in datapackage.json but missing")
        warcs = sorted(n for n in names if n.startswith("archive/"))
        if not warcs:
            report.damage.append(f"{path.name}: no WARC in archive/")
        with tempfile.TemporaryDirectory(prefix="monitor-wacz-") as scratch:
            for name in warcs:
                target = Path(scratch) / Path(name).name
                target.write_bytes(package.read(name))
                inner = verify_export(target, stamps, trusted)
                report.checked += inner.checked
                report.damage += [f"{name}: {line}" for line in inner.damage]
