"""Offline verdict on two saved pages: would this change be alerted, and why.

Runs the same extract and diff stages as the daemon on files instead of live responses,
so a user (or the quality corpus) can check a profile and ignore rules on real pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.diff import DiffResult, compare
from monitor.extract import Extraction, Profile, Target, suspicious_shrink
from monitor.fetched import FetchRequest, FetchResult
from monitor.sites import get_profile


def _as_result(body: bytes, url: str) -> FetchResult:
    looks_json = body.lstrip()[:1] in (b"{", b"[")
    media = "application/json" if looks_json else "text/html"
    return FetchResult(
        request=FetchRequest(url),
        url=url,
        requested_at=datetime.now(UTC),
        status=200,
        headers=[("Content-Type", media)],
        body=body,
    )


def compare_pages(
    old: bytes,
    new: bytes,
    url: str,
    profile_name: str | Profile | None = None,
    ignore: list[str] | None = None,
    threshold: float = 0.0,
) -> dict[str, Any]:
    """Would this change alert? `profile_name` names a registered profile, or is one (a
    bench's peer extractor, which is not a site profile of the daemon)."""
    profile = profile_name if isinstance(profile_name, Profile) else get_profile(profile_name, url)
    target = Target(url)
    before = profile.extract(_as_result(old, url), target)
    after = profile.extract(_as_result(new, url), target)
    for name, extraction in (("old", before), ("new", after)):
        if extraction.problem:
            return _verdict("problem", f"{name} page is not usable content: {extraction.problem}")
    shrunk = _shrink(before, after)
    if shrunk:
        return _verdict("problem", f"new page is not usable content: {shrunk}")
    results = _pairwise(before, after, ignore or [])
    changed = [r for r in results if r.changed]
    if not changed:
        return _verdict("unchanged", "no change")
    score = max(r.score for r in changed)
    summary = "; ".join(r.summary for r in changed)
    return {
        "alert": score > 0 and score >= threshold,
        "score": score,
        "kind": "edited",
        "summary": summary,
        "removed": [f for r in changed for f in r.removed],
        "added": [f for r in changed for f in r.added],
        "changes": [c.__dict__ for r in changed for c in r.changes],
        "profile": profile.name,
    }


def _pairwise(before: Extraction, after: Extraction, ignore: list[str]) -> list[DiffResult]:
    old = {s.key: s for s in before.statements}
    new = {s.key: s for s in after.statements}
    return [compare(old.get(key), new.get(key), ignore) for key in sorted(old.keys() | new.keys())]


def _shrink(before: Extraction, after: Extraction) -> str | None:
    """The first statement whose text is suddenly empty or tiny (as the check stage asks)."""
    new = {s.key: s for s in after.statements}
    for old in before.statements:
        reason = suspicious_shrink(old, new.get(old.key))
        if reason:
            return reason
    return None


def _verdict(kind: str, summary: str) -> dict[str, Any]:
    return {
        "alert": False,
        "score": 0.0,
        "kind": kind,
        "summary": summary,
        "removed": [],
        "added": [],
        "changes": [],
    }
