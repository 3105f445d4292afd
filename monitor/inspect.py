"""`monitor extract`: what a profile reads from saved pages, one JSON object per file.

The same extract stage as the daemon's, on files instead of live responses (as `compare`
does for pairs), so a user can see which paragraphs, links and attachments a profile keeps
before watching a page, and a benchmark can score the extraction of many pages in one
process. A file that cannot be read or is not usable content gives its line with the
`problem`; the other files are still read.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from monitor.extract import Profile, Target
from monitor.sites import get_profile, profile_names

DEFAULT_URL = "https://example.org/"
_GZIP_MAGIC = b"\x1f\x8b"


def read_page(path: Path) -> bytes:
    """A saved page's bytes, un-gzipped when the file is gzipped (by content, not name)."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw


def extract_page(body: bytes, url: str, profile: Profile) -> dict[str, Any]:
    """The profile's reading of one page: `problem` and `statements`, as JSON-ready data."""
    # The stand-in response `compare` builds for a saved page (JSON or HTML by its bytes);
    # imported here, as the rest of the pipeline, so that `monitor --help` does not load it.
    from monitor.compare import _as_result as as_result

    extraction = profile.extract(as_result(body, url), Target(url))
    return {
        "problem": extraction.problem,
        "statements": [
            {
                "key": s.key,
                "title": s.title,
                "published": s.published,
                "language": s.language,
                "paragraphs": list(s.paragraphs),
                "links": [asdict(link) for link in s.links],
                "attachments": [asdict(link) for link in s.attachments],
                "figures": list(s.figures),
                # A document's text (a file watched, or a statement's files), page by page.
                **({"documents": [d.to_dict() for d in s.documents]} if s.documents else {}),
            }
            for s in extraction.statements
        ],
    }


def extract_file(path: Path, url: str, profile: Profile) -> dict[str, Any]:
    """One output line: the file, the profile and what it read (or why it could not)."""
    line: dict[str, Any] = {"file": str(path), "profile": profile.name}
    try:
        body = read_page(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return {**line, "problem": f"cannot read the file: {reason}", "statements": []}
    return {**line, **extract_page(body, url, profile)}


def body_text(line: dict[str, Any]) -> str:
    """The body text of a page: its first statement's paragraphs, one per line."""
    statements = line["statements"]
    return "\n".join(statements[0]["paragraphs"]) if statements else ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="saved page (.gz ok)")
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="URL the pages came from (chooses the profile)"
    )
    parser.add_argument("--profile", help=f"site profile ({', '.join(profile_names())})")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print each file's extraction; 1 when any file gave a problem, else 0."""
    out = out or sys.stdout
    if args.profile and args.profile not in profile_names():
        raise KeyError(f"unknown profile {args.profile!r} (known: {', '.join(profile_names())})")
    profile = get_profile(args.profile, args.url)
    problems = 0
    for path in args.files:
        line = extract_file(path, args.url, profile)
        problems += bool(line["problem"])
        if args.format == "json":
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            out.write(_render_text(line))
        out.flush()
    return 1 if problems else 0


def _render_text(line: dict[str, Any]) -> str:
    lines = [f"== {line['file']} ({line['profile']})"]
    if line["problem"]:
        lines.append(f"problem: {line['problem']}")
    for statement in line["statements"]:
        lines += [f"[{statement['key']}] {statement['title']}"]
        lines += [f"published: {statement['published']}"] if statement["published"] else []
        lines += ["", *statement["paragraphs"]]
        if statement["figures"]:
            lines.append("figures:")
            lines += [f"- {figure}" for figure in statement["figures"]]
        for heading in ("links", "attachments"):
            if statement[heading]:
                lines.append(f"{heading}:")
                lines += [f"- {link['text']} <{link['href']}>" for link in statement[heading]]
        for document in statement.get("documents", ()):
            lines.append(f"{document['kind']} “{document['name']}”:")
            for number, page in enumerate(document["pages"], start=1):
                lines += [f"[page {number}]", *page]
    return "\n".join(lines) + "\n\n"
