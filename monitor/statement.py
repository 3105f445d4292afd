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

    def to_json(self) -> bytes:
        """Canonical JSON: the same statement always gives the same bytes (and hash)."""
        return self._canonical_json

    # Cached (the statement is frozen): a check asks for a statement's bytes and hash
    # several times, and a big one costs tens of milliseconds each time. Worked out in the
    # worker that read the page, they travel back pickled with the statement.
    @cached_property
    def _canonical_json(self) -> bytes:
        data = asdict(self)
        # Statements archived before attachments and figures existed had no such keys;
        # leaving an empty list out keeps their bytes, and so their hashes, unchanged.
        for optional in ("attachments", "figures"):
            if not data[optional]:
                del data[optional]
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
        )

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
