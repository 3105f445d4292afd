"""Watch lists in and out: other tools' lists read as proposed watches, ours written out.

Read: urlwatch's `urls.yaml` (and webchanges', which kept its format), a changedetection.io
backup (the zip its UI makes: `url-watches.json` in older releases, one `<uuid>/watch.json`
per watch in newer ones, `url-list.txt` as the last resort), its `url-watches.json` alone,
OPML (feed readers' and link lists' exchange format), our own JSON or TOML export, or a plain
list of URLs (one per line, `#` comments; changedetection.io's "URL + tags" list too).

Nothing here writes anything or looks at the network: `read_watch_list` turns a file into
`Proposed` watches (the keys of a `[[watch]]`), each saying where it came from and what of
the other tool's settings could not be carried over, and `Skipped` entries with the reason
(a shell-command job, a POST, a URL we cannot fetch). The CLI shows that, and on `--apply`
stores the watches where the web UI keeps its own (the store, never the operator's TOML).

Hostile files are bounded: a file over `MAX_BYTES` is refused, a zip is read member by member
within the same budget (no extraction to disk, so no path traversal), XML goes through
defusedxml (no entity expansion, no external entities), YAML through the safe loader.
"""

from __future__ import annotations

import json
import re
import tomllib
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
import yaml
from defusedxml import ElementTree

# The largest list, or zip member, read: a watch list of 100,000 URLs is a few MB.
MAX_BYTES = 64 * 1024 * 1024
# A changedetection.io zip also holds every snapshot it took; only these members are read.
_CHANGEDETECTION_INDEX = "url-watches.json"
_CHANGEDETECTION_URLS = "url-list.txt"

ExportFormat = Literal["toml", "json", "opml"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("toml", "json", "opml")


class WatchListError(ValueError):
    """A file that is not a watch list we can read, with the reason."""


@dataclass(frozen=True)
class Proposed:
    """One watch to add: `settings` are the keys of a `[[watch]]` (id, url, name, ...)."""

    settings: dict[str, Any]
    origin: str
    notes: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return str(self.settings["id"])

    @property
    def url(self) -> str:
        return str(self.settings["url"])


@dataclass(frozen=True)
class Skipped:
    origin: str
    reason: str


@dataclass
class WatchList:
    format: str
    watches: list[Proposed] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class _Entry:
    """A watch as another tool described it, before ids are given out."""

    origin: str
    url: str
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- reading -------------------------------------------------------------------------------


def read_watch_list(
    path: Path, taken_ids: Iterable[str] = (), watched_urls: Mapping[str, str] = {}
) -> WatchList:
    """The watches a file proposes. `taken_ids` are ids already in use (new ones avoid them);
    `watched_urls` maps a URL already watched to its watch id (such URLs are skipped)."""
    if path.stat().st_size > MAX_BYTES:
        raise WatchListError(f"{path}: larger than {MAX_BYTES // 2**20} MB; not a watch list")
    if zipfile.is_zipfile(path):
        fmt, entries, skipped = _read_changedetection_zip(path)
    else:
        fmt, entries, skipped = _read_text(path.name, _decode(path.read_bytes(), path.name))
    return _finish(fmt, entries, skipped, set(taken_ids), watched_urls)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise WatchListError(f"{name}: not UTF-8 text ({err.reason} at byte {err.start})") from None


_Read = tuple[str, list[_Entry], list[Skipped]]


def _read_text(name: str, text: str) -> _Read:
    stripped = text.lstrip()
    if stripped.startswith("<"):
        return _read_opml(name, text)
    if stripped.startswith(("{", "[")) and not stripped.startswith("[["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise WatchListError(f"{name}: line {err.lineno}: not valid JSON ({err.msg})") from None
        return _read_json(name, data)
    if re.search(r"(?m)^\s*\[\[\s*watch\s*\]\]", text):
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise WatchListError(f"{name}: not valid TOML ({err})") from None
        return "monitor (TOML)", _ours(document.get("watch", []), name), []
    if _looks_like_yaml_jobs(text):
        return _read_urlwatch(name, text)
    return _read_url_lines(name, text)


def _looks_like_yaml_jobs(text: str) -> bool:
    return bool(re.search(r"(?m)^(?:-\s+)?(url|command|navigate|kind|name)\s*:", text))


# urlwatch ------------------------------------------------------------------------------------

# urlwatch job keys that need nothing on our side (retries, caching and reporting are ours).
_URLWATCH_HARMLESS = {
    "name", "url", "navigate", "kind", "use_browser", "max_tries", "ignore_cached",
    "ignore_connection_errors", "ignore_http_error_codes", "ignore_timeout_errors",
    "ignore_too_many_redirects", "enabled", "treat_new_as_changed", "monospace", "encoding",
    "timeout", "ssl_no_verify", "user_visible_url", "comparison_filter", "diff_tool",
    "additions_only", "deletions_only", "contextlines", "note", "index_number", "wait_for",
    "wait_for_navigation", "wait_until",
}  # fmt: skip


def _read_urlwatch(name: str, text: str) -> _Read:
    try:
        jobs = [job for job in yaml.safe_load_all(text) if job is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise WatchListError(
            f"{name}: {where}not valid YAML ({getattr(err, 'problem', err)})"
        ) from None
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for number, job in enumerate(jobs, 1):
        origin = f"urlwatch job {number}"
        if not isinstance(job, dict):
            skipped.append(Skipped(origin, "not a job (a YAML mapping with url: ...)"))
            continue
        if job.get("name"):
            origin += f" ({job['name']})"
        entry_or_reason = _urlwatch_job(job, origin)
        if isinstance(entry_or_reason, str):
            skipped.append(Skipped(origin, entry_or_reason))
        else:
            entries.append(entry_or_reason)
    if not entries and not skipped:
        raise WatchListError(f"{name}: no jobs found")
    return "urlwatch", entries, skipped


def _urlwatch_job(job: dict[str, Any], origin: str) -> _Entry | str:
    if "command" in job:
        return "a shell-command job: monitor watches web pages, it runs no commands"
    if job.get("enabled") is False:
        return "disabled in urlwatch"
    url = job.get("navigate") or job.get("url")
    if not isinstance(url, str):
        return "no url"
    if str(job.get("method", "GET")).upper() != "GET" or "data" in job or "post" in job:
        method = str(job.get("method", "POST")).upper()
        return f"a {method} request with a body: monitor sends GETs only"
    entry = _Entry(origin, url.strip())
    if job.get("name"):
        entry.settings["name"] = str(job["name"])
    if "navigate" in job or job.get("use_browser") or job.get("kind") == "browser":
        entry.settings["fetcher"] = "browser"
    if job.get("tags"):
        entry.notes.append("tags not carried over: " + ", ".join(map(str, job["tags"])))
    for key in ("headers", "cookies"):
        if job.get(key):
            entry.notes.append(f"its request {key} are not carried over (watches send none)")
    entry.notes.extend(_urlwatch_filters(job.get("filter"), entry.settings))
    ignored = sorted(
        set(job) - _URLWATCH_HARMLESS - {"filter", "headers", "cookies", "method", "tags"}
    )
    if ignored:
        entry.notes.append("not carried over: " + ", ".join(ignored))
    return entry


def _urlwatch_filters(spec: Any, settings: dict[str, Any]) -> list[str]:
    """urlwatch filters pick the part of a page to compare; our profile does that itself.
    What they *remove* (css/xpath `exclude`) becomes `ignore_selectors` where it is CSS."""
    if not spec:
        return []
    steps: list[tuple[str, Any]] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            kind, _, argument = part.strip().partition(":")
            steps.append((kind, argument or None))
    elif isinstance(spec, list):
        for step in spec:
            if isinstance(step, dict):
                steps.extend(step.items())
            else:
                steps.append((str(step), None))
    dropped: list[str] = []
    for kind, argument in steps:
        exclude = argument.get("exclude") if isinstance(argument, dict) else None
        if kind == "css" and isinstance(exclude, str):
            settings.setdefault("ignore_selectors", []).append(exclude)
        dropped.append(kind)
    return [f"urlwatch filters not applied ({', '.join(dropped)}): the profile reads the statement"]


# changedetection.io --------------------------------------------------------------------------


def _read_changedetection_zip(path: Path) -> _Read:
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        if _CHANGEDETECTION_INDEX in members:
            data = json.loads(_member(archive, members[_CHANGEDETECTION_INDEX]))
            return _read_json(path.name, data)
        per_watch = [
            info
            for name, info in members.items()
            if re.fullmatch(r"[0-9a-fA-F-]{36}/watch\.json", name)
        ]
        if per_watch:
            watches = {
                info.filename.split("/")[0]: json.loads(_member(archive, info))
                for info in per_watch
            }
            tags = _tag_titles_from_zip(archive, members)
            return _changedetection(watches, tags)
        if _CHANGEDETECTION_URLS in members:
            text = _decode(_member(archive, members[_CHANGEDETECTION_URLS]), _CHANGEDETECTION_URLS)
            return _read_url_lines(path.name, text)
    raise WatchListError(
        f"{path.name}: a zip without url-watches.json, <uuid>/watch.json or url-list.txt"
    )


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_BYTES:
        raise WatchListError(f"{info.filename}: larger than {MAX_BYTES // 2**20} MB unpacked")
    with archive.open(info) as handle:
        data = handle.read(MAX_BYTES + 1)  # the header's size can lie; the read cannot
    if len(data) > MAX_BYTES:
        raise WatchListError(f"{info.filename}: larger than {MAX_BYTES // 2**20} MB unpacked")
    return data


def _tag_titles_from_zip(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]
) -> dict[str, str]:
    titles: dict[str, str] = {}
    for name, info in members.items():
        if name.endswith("/tag.json"):
            tag = json.loads(_member(archive, info))
            titles[name.split("/")[0]] = str(tag.get("title", ""))
    return titles


def _changedetection(watches: Mapping[str, Any], tags: Mapping[str, str]) -> _Read:
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for uuid, watch in watches.items():
        origin = f"changedetection.io watch {uuid}"
        if not isinstance(watch, dict) or not isinstance(watch.get("url"), str):
            skipped.append(Skipped(origin, "no url"))
            continue
        if watch.get("title"):
            origin += f" ({watch['title']})"
        entries.append(_changedetection_watch(watch, origin, tags))
    return "changedetection.io", entries, skipped


def _changedetection_watch(watch: dict[str, Any], origin: str, tags: Mapping[str, str]) -> _Entry:
    entry = _Entry(origin, watch["url"].strip())
    if watch.get("title"):
        entry.settings["name"] = str(watch["title"])
    if not watch.get("time_between_check_use_default", True):
        seconds = _changedetection_interval(watch.get("time_between_check") or {})
        if seconds:
            entry.settings["interval"] = float(seconds)
    if watch.get("fetch_backend") == "html_webdriver":
        entry.settings["fetcher"] = "browser"
    if watch.get("paused"):
        entry.settings["muted"] = True
        entry.notes.append("paused there: imported muted (checked and archived, no alerts sent)")
    _changedetection_filters(watch, entry)
    names = [tags.get(tag, tag) for tag in watch.get("tags") or [] if isinstance(tag, str)]
    if watch.get("tag"):
        names.append(str(watch["tag"]))
    if names:
        entry.notes.append("tags not carried over: " + ", ".join(sorted(set(filter(None, names)))))
    return entry


def _changedetection_filters(watch: dict[str, Any], entry: _Entry) -> None:
    """What it removes becomes ours to ignore; what it selects, our profile does itself."""
    selectors = [s for s in watch.get("subtractive_selectors") or [] if isinstance(s, str)]
    css = [s for s in selectors if not s.startswith(("xpath:", "xpath1:", "/"))]
    if css:
        entry.settings["ignore_selectors"] = css
    if len(css) < len(selectors):
        entry.notes.append("XPath 'remove elements' not carried over (ignore_selectors take CSS)")
    texts = [t for t in watch.get("ignore_text") or [] if isinstance(t, str) and t.strip()]
    if texts:
        entry.settings["ignore"] = [_line_rule(text) for text in texts]
    if watch.get("include_filters"):
        entry.notes.append(
            "its 'CSS/JSONPath/XPath filter' is not applied: the profile reads the statement"
        )


def _changedetection_interval(parts: Mapping[str, Any]) -> int:
    units = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    return sum(int(parts.get(unit) or 0) * size for unit, size in units.items())


def _line_rule(text: str) -> str:
    """changedetection.io ignores every line containing the text (case-insensitively), or
    matching `/regex/`; as one of our ignore rules that is the line, masked."""
    text = text.strip()
    inner = (
        text[1:-1]
        if len(text) > 2 and text.startswith("/") and text.endswith("/")
        else re.escape(text)
    )
    return f"(?i)[^\\n]*(?:{inner})[^\\n]*"


# JSON: changedetection.io's index, or our own export ---------------------------------------


def _read_json(name: str, data: Any) -> _Read:
    if isinstance(data, dict) and isinstance(data.get("watching"), dict):
        settings = data.get("settings") or {}
        tags = (settings.get("application") or {}).get("tags") or {}
        titles = {
            uuid: str(tag.get("title", "")) for uuid, tag in tags.items() if isinstance(tag, dict)
        }
        return _changedetection(data["watching"], titles)
    if isinstance(data, dict) and isinstance(data.get("watches"), list):
        return "monitor (JSON)", _ours(data["watches"], name), []
    raise WatchListError(f"{name}: JSON that is neither a changedetection.io index nor our export")


def _ours(watches: Any, name: str) -> list[_Entry]:
    if not isinstance(watches, list):
        raise WatchListError(f"{name}: 'watch' is not a list of watches")
    entries = []
    for number, watch in enumerate(watches, 1):
        if not isinstance(watch, dict) or not isinstance(watch.get("url"), str):
            raise WatchListError(f"{name}: watch {number} has no url")
        settings = {k: v for k, v in watch.items() if k not in ("url",)}
        entries.append(_Entry(f"watch {watch.get('id', number)}", watch["url"], settings))
    return entries


# OPML ----------------------------------------------------------------------------------------


def _read_opml(name: str, text: str) -> _Read:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        raise WatchListError(f"{name}: not valid XML ({err})") from None
    except Exception as err:  # defusedxml's refusals: entities, DTDs, external references
        raise WatchListError(f"{name}: refused XML ({type(err).__name__}: {err})") from None
    if root.tag.lower() != "opml":
        raise WatchListError(f"{name}: XML, but not OPML (root element <{root.tag}>)")
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for outline in root.iter("outline"):
        title = outline.get("title") or outline.get("text") or ""
        feed, page = outline.get("xmlUrl"), outline.get("htmlUrl") or outline.get("url")
        if not feed and not page:
            continue  # a folder
        origin = f"OPML outline {title!r}" if title else "OPML outline"
        entry = _Entry(origin, (feed or page or "").strip())
        if title:
            entry.settings["name"] = title
        if feed:
            entry.settings["profile"] = "feed"
        entries.append(entry)
    if not entries:
        raise WatchListError(
            f"{name}: an OPML file with no outline that has xmlUrl, htmlUrl or url"
        )
    return "OPML", entries, skipped


# A plain list of URLs --------------------------------------------------------------------------


def _read_url_lines(name: str, text: str) -> _Read:
    entries: list[_Entry] = []
    skipped: list[Skipped] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        url, _, rest = line.partition(" ")
        origin = f"line {number}"
        if not re.match(r"(?i)^https?://", url):
            skipped.append(Skipped(origin, f"not an http(s) URL: {url[:80]!r}"))
            continue
        notes = (
            [f"the rest of the line is not carried over: {rest.strip()[:80]!r}"]
            if rest.strip()
            else []
        )
        entries.append(_Entry(origin, url, notes=notes))
    if not entries and not skipped:
        raise WatchListError(f"{name}: no URLs found")
    return "URL list", entries, skipped


# Ids and duplicates ----------------------------------------------------------------------------


def _finish(
    fmt: str,
    entries: list[_Entry],
    skipped: list[Skipped],
    taken: set[str],
    watched: Mapping[str, str],
) -> WatchList:
    result = WatchList(fmt, skipped=list(skipped))
    listed: dict[str, str] = {}
    for entry in entries:
        reason = _unusable(entry.url)
        if reason:
            result.skipped.append(Skipped(entry.origin, reason))
            continue
        if entry.url in listed:
            result.skipped.append(
                Skipped(entry.origin, f"listed twice: the same URL as {listed[entry.url]}")
            )
            continue
        if entry.url in watched:
            result.skipped.append(Skipped(entry.origin, f"already watched as {watched[entry.url]}"))
            continue
        wanted = entry.settings.get("id")
        watch_id = _unique(str(wanted) if wanted else _slug(entry), taken)
        taken.add(watch_id)
        listed[entry.url] = watch_id
        settings = {
            "id": watch_id,
            "url": entry.url,
            **{k: v for k, v in entry.settings.items() if k != "id"},
        }
        result.watches.append(Proposed(settings, entry.origin, tuple(entry.notes)))
    return result


def new_watch_id(url: str, taken: Collection[str], name: str | None = None) -> str:
    """An id for a watch added without one: from its name, else its host and path."""
    entry = _Entry("", url, {"name": name} if name else {})
    return _unique(_slug(entry), set(taken))


def _unusable(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as err:
        return f"not a usable URL: {err}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http(s) URL: {url[:80]!r}"
    if not parts.hostname:
        return "not a usable URL: no host name"
    return None


def _slug(entry: _Entry) -> str:
    try:
        parts = urlsplit(entry.url)
        where = f"{parts.hostname}{parts.path}"
    except ValueError:  # refused later, with the reason; an id is needed to say so
        where = "watch"
    base = entry.settings.get("name") or where
    slug = re.sub(r"[^a-z0-9]+", "-", str(base).lower()).strip("-")
    return (slug or "watch")[:56].rstrip("-") or "watch"


def _unique(candidate: str, taken: set[str]) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", candidate):
        candidate = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate).strip("-._")[:56] or "watch"
    watch_id, number = candidate, 2
    while watch_id in taken:
        watch_id = f"{candidate[:56]}-{number}"
        number += 1
    return watch_id


# --- writing -------------------------------------------------------------------------------


def write_watch_list(watches: Sequence[Mapping[str, Any]], fmt: ExportFormat) -> str:
    """`watches` as the keys of `[[watch]]` tables (defaults left out), in `fmt`."""
    if fmt == "toml":
        return tomli_w.dumps({"watch": [dict(w) for w in watches]})
    if fmt == "json":
        document = {"format": "monitor watches", "version": 1, "watches": list(watches)}
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return _opml(watches)


def _opml(watches: Sequence[Mapping[str, Any]]) -> str:
    from xml.etree.ElementTree import Element, SubElement, indent, tostring  # writing is safe

    root = Element("opml", version="2.0")
    SubElement(SubElement(root, "head"), "title").text = "monitor watches"
    body = SubElement(root, "body")
    for watch in watches:
        attributes = {
            "text": str(watch.get("name") or watch["id"]),
            "title": str(watch.get("name") or watch["id"]),
        }
        if watch.get("profile") == "feed":
            attributes |= {"type": "rss", "xmlUrl": str(watch["url"])}
        else:
            attributes |= {"type": "link", "url": str(watch["url"]), "htmlUrl": str(watch["url"])}
        SubElement(body, "outline", attributes)
    indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode") + "\n"


def describe(watch_list: WatchList) -> Iterator[str]:
    """Plain lines for a person: what would be added, what was left out and why."""
    counts = f"{len(watch_list.watches)} to add, {len(watch_list.skipped)} skipped"
    yield f"{watch_list.format}: {counts}"
    for proposed in watch_list.watches:
        yield f"  + {proposed.id}  {proposed.url}  ({proposed.origin})"
        for note in proposed.notes:
            yield f"      note: {note}"
    for skipped in watch_list.skipped:
        yield f"  - {skipped.origin}: {skipped.reason}"
