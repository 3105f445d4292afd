"""How an alert payload reads as text, cut to a channel's length limit with a link."""

from __future__ import annotations

from typing import Any

_HEADLINES = {
    "published": "NEW STATEMENT",
    "edited": "EDITED",
    "removed": "REMOVED",
    "restored": "RESTORED",
    "failing": "FAILING",
    "recovered": "RECOVERED",
}


def render_text(payload: dict[str, Any], max_length: int = 4000) -> str:
    """Headline, summary, each change quoted before/after, links. Never over max_length.

    Long diffs are cut at a change boundary and end with "… N more changes" and the diff
    link, so a long edit is never dropped or split into a flood of messages.
    """
    kind = payload["kind"]
    language = f" [{payload['language']}]" if payload.get("language") else ""
    head = [
        f"{_HEADLINES.get(kind, kind.upper())} — {payload.get('watch_name') or payload['watch']}"
        f"{language}",
    ]
    if payload.get("title"):
        head.append(f"“{payload['title']}”")
    head.append(payload.get("summary", ""))
    tail = []
    if payload.get("url"):
        tail.append(f"Statement: {payload['url']}")
    if payload.get("diff_url"):
        tail.append(f"Diff: {payload['diff_url']}")
    tail.append(f"Observed: {payload.get('observed_at', '')}")
    blocks = [_change_block(change) for change in payload.get("changes", [])]

    text = "\n".join(head)
    budget = max_length - len("\n\n" + "\n".join(tail)) - 40
    shown = 0
    for block in blocks:
        if len(text) + len(block) + 2 > budget:
            break
        text += "\n\n" + block
        shown += 1
    if shown < len(blocks):
        more = len(blocks) - shown
        text += f"\n\n… {more} more change{'s' if more > 1 else ''}"
    text += "\n\n" + "\n".join(tail)
    return text if len(text) <= max_length else text[: max_length - 1] + "…"


def _change_block(change: dict[str, Any]) -> str:
    where = change.get("where", "")
    lines = [f"• {where[:1].upper()}{where[1:]}"]
    if change.get("before"):
        lines.append(f"  before: «{_clip(change['before'])}»")
    if change.get("after"):
        lines.append(f"  after:  «{_clip(change['after'])}»")
    return "\n".join(lines)


def _clip(text: str, width: int = 600) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
