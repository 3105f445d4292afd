"""Atom feed of alerts, per watch or for all watches (feedgen).

A feed is pulled, not pushed: it lists every alert recorded, including those of a muted watch
or held in quiet hours (noise control is about waking people, not about the record).
`feed_bytes` is what the web UI serves and `monitor feed` writes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from feedgen.feed import FeedGenerator

from monitor.channels.message import gist, headline, render_html
from monitor.config import MonitorConfig
from monitor.redact import redact_deep, redact_url
from monitor.store import Store

DEFAULT_LIMIT = 100


def feed_bytes(
    store: Store, config: MonitorConfig, watch_id: str | None = None, limit: int = DEFAULT_LIMIT
) -> bytes:
    """The newest `limit` alerts of one watch (or all) as an Atom document."""
    # By time, then id: checks running side by side commit in any order.
    rows = sorted(store.alerts(watch_id), key=lambda row: (row["created_at"], row["id"]))
    rows = rows[-limit:] if limit > 0 else []
    base = (config.server.public_url or "").rstrip("/")
    feed = FeedGenerator()
    if watch_id is not None:
        watch = config.get_watch(watch_id)
        feed.id(f"urn:monitor:feed:watch:{watch.id}")
        feed.title(f"monitor — {watch.display_name}")
        feed.link(href=redact_url(watch.url), rel="related")
        path = f"/watch/{watch.id}/feed.atom"
    else:
        feed.id("urn:monitor:feed:all")
        feed.title("monitor — all watches")
        path = "/feed.atom"
    if base:
        feed.link(href=base + path, rel="self")
        feed.link(href=base + "/", rel="alternate")
    feed.subtitle("Statements published, edited or removed, as seen by monitor")
    feed.generator("monitor")
    for row in reversed(rows):  # newest first, as readers expect
        # Older alerts may hold a URL with its credentials; a feed is read by anyone.
        _entry(feed, row["id"], redact_deep(json.loads(row["payload"])), row["created_at"])
    # A feed that did not change keeps its timestamp, so readers and caches see no update.
    feed.updated(_atom_time(rows[-1]["created_at"]) if rows else "1970-01-01T00:00:00Z")
    return bytes(feed.atom_str(pretty=True))


def _entry(feed: FeedGenerator, alert_id: int, payload: dict[str, Any], created_at: str) -> None:
    entry = feed.add_entry(order="append")
    entry.id(f"urn:monitor:alert:{alert_id}")
    what = payload.get("title") or payload.get("summary") or payload.get("watch", "")
    name = payload.get("watch_name") or payload.get("watch", "")
    entry.title(f"{headline(payload.get('kind', ''))} — {what}")
    entry.author(name=name)
    entry.category(term=payload.get("kind", ""))
    # One link: feedgen 1.0 drops the `rel` of entry links, so a second would read as another
    # alternate. The diff when there is one; the statement's URL is in the content as well.
    # A removed statement's live page is gone: our archived copy instead.
    archived = payload.get("archived_url") if payload.get("kind") == "removed" else None
    link = archived or payload.get("diff_url") or payload.get("url")
    if link:
        entry.link(href=link)
    entry.summary(gist(payload) or what)
    entry.content(render_html(payload, document=False), type="html")
    moment = _atom_time(payload.get("observed_at") or created_at)
    entry.published(moment)
    entry.updated(moment)


def _atom_time(stored: str) -> str:
    # The store writes '…Z'; feedgen's date parser wants an explicit offset.
    return stored.replace("Z", "+00:00")


def write_feed(path: Path, data: bytes) -> None:
    """Replace the file atomically, so a web server never serves half a feed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
