"""Tamper evidence: hash chains over the archive's versions.

Every version record carries `chain`, the SHA-256 of its own facts and of the `chain` of the
statement's previous version (`prev_chain`); the statement's newest `chain` is kept apart,
as the document's `chain_head`. A second chain runs over all the versions of a watch in the
order they were recorded (`watch_chain`, head in `watch.chain_head`). So a version edited,
removed (newest included), renumbered or moved to another place in the sequence no longer
fits its chain, and `monitor verify` names it. The heads travel with every export, so an
export can be checked on its own, by anyone, with nothing but SHA-256 (`verify_export`).

What is hashed is what a version says was observed — never an id the database assigned, and
never the verdict reached on it later (`confirmation`), which is not an observation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The fields a link commits to, by the names JSON lines exports give them.
LINKED = (
    "watch",
    "key",
    "seq",
    "observed_at",
    "kind",
    "text_sha256",
    "body_sha256",
    "score",
    "summary",
)


def link(prev: str | None, facts: Mapping[str, Any]) -> str:
    """The chain value of a version: SHA-256 over its linked facts and its predecessor's."""
    material = {name: facts.get(name) for name in LINKED}
    material["score"] = f"{float(material['score'] or 0):.6f}"  # one spelling on any database
    material["prev"] = prev or ""
    encoded = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass
class ChainReport:
    """What a walk along the chains found: damage, each naming the version it concerns."""

    checked: int = 0
    damage: list[str] = field(default_factory=list)


def walk(
    versions: Iterable[Mapping[str, Any]],
    heads: Mapping[str, str | None],
    watch_heads: Mapping[str, str | None],
    report: ChainReport,
    complete: bool = True,
) -> None:
    """Check versions (linked facts plus `id`, `chain`, `prev_chain`, `watch_chain`), given
    in the order they were recorded, against the statement heads ({"watch key": chain}) and
    the watch heads ({watch: chain}).

    `complete`: the versions are every version there is (the archive itself); an export
    since some date starts mid-chain, and its first version's `prev_chain` is taken on
    trust."""
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    last_of_watch: dict[str, str] = {}
    for row in versions:
        report.checked += 1
        statement = (row["watch"], row["key"])
        reasons = _sequence_faults(row, last.get(statement), complete)
        watch_prev = last_of_watch.get(row["watch"])
        if (complete or watch_prev is not None) and watch_link(
            watch_prev, str(row.get("chain"))
        ) != row.get("watch_chain"):
            reasons.append("out of its watch's recorded order")
        if reasons:
            report.damage.append(f"{_named(row)}: {'; '.join(reasons)}")
        last[statement] = row
        last_of_watch[row["watch"]] = str(row.get("watch_chain"))
    report.damage += _head_faults(last, last_of_watch, heads, watch_heads, complete)


def _sequence_faults(
    row: Mapping[str, Any], before: Mapping[str, Any] | None, complete: bool
) -> list[str]:
    """What is wrong with a version in its statement's chain, given the one before it."""
    reasons = []
    if before is None:
        expected_prev = row.get("prev_chain") if not complete and row["seq"] > 1 else None
        if complete and row["seq"] != 1:
            reasons.append(f"versions 1..{row['seq'] - 1} before it are missing")
    else:
        expected_prev = before["chain"]
        if row["seq"] != before["seq"] + 1:
            reasons.append(f"follows #{before['seq']}: a version was removed or moved")
    if (row.get("prev_chain") or None) != (expected_prev or None):
        reasons.append("does not link to the version before it")
    if link(row.get("prev_chain"), row) != row.get("chain"):
        reasons.append("its record was altered")
    return reasons


def _named(row: Mapping[str, Any]) -> str:
    where = f"version {row['watch']} {row['key']} #{row['seq']}"
    if row.get("id") is not None:
        where += f" (id {row['id']})"
    return where


def _head_faults(
    last: Mapping[tuple[str, str], Mapping[str, Any]],
    last_of_watch: Mapping[str, str],
    heads: Mapping[str, str | None],
    watch_heads: Mapping[str, str | None],
    complete: bool,
) -> list[str]:
    """The heads against the newest version walked of each statement and watch."""
    damage = []
    if complete:
        for name in heads.keys() - {f"{w} {k}" for w, k in last}:
            damage.append(f"statement {name}: has a chain head but no versions")
    for (watch_id, key), row in last.items():
        if heads.get(f"{watch_id} {key}") != row["chain"]:
            damage.append(
                f"statement {watch_id} {key}: newest version is #{row['seq']}, but the chain "
                "head names another (a newer version was removed or the head altered)"
            )
    for watch_id, chain in last_of_watch.items():
        if watch_heads.get(watch_id) != chain:
            damage.append(
                f"watch {watch_id}: its newest recorded version is not the chain head's "
                "(a version was removed or the head altered)"
            )
    return damage


def watch_link(prev: str | None, chain: str) -> str:
    """The watch chain's value after a version whose statement chain is `chain`."""
    return link(prev, {"summary": chain})
