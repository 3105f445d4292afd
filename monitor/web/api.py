"""The JSON API under /api/v1: the archive for a newsroom's own tools.

Every endpoint is declared once, in `ENDPOINTS`, with its role, parameters and the JSON
Schema of what it answers; the router and the OpenAPI document (`/api/v1/openapi.json`)
are both made from that table, so the document cannot drift from what is served (and a
contract tester, schemathesis in tests/test_api.py, checks every answer against it).

Who may: a token from `monitor token add NAME --role viewer|editor|admin`, sent as
`Authorization: Bearer <token>`, with the web UI's roles (viewer reads, editor changes
watches, admin everything). No cookies are read here, so no CSRF question arises: a browser
cannot be made to send a bearer token. Every token (and every address that presents a bad
one) has a budget of requests per minute; over it the answer is 429 with Retry-After.

What is archived is served as data, never as a page in our origin: raw bodies are
attachments with a sandboxing CSP, and every answer is `Cache-Control: no-store`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any
from urllib.parse import quote

from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from monitor.clock import iso, parse_iso
from monitor.config import MonitorConfig, WatchConfig
from monitor.diff import compare
from monitor.extract import Statement
from monitor.overrides import WatchError, validate_watch, watch_settings
from monitor.sites import profile_names
from monitor.store import Store
from monitor.store.changes import KINDS, ChangeFilter, Cursor
from monitor.store.overview import WatchHealth
from monitor.store.provenance import response_tls
from monitor.store.records import (
    AnnotationRow,
    ChangeEvent,
    DocumentRow,
    ResponseRow,
    VersionRow,
    VersionWithDocumentRow,
    now_iso,
)
from monitor.watchlists import new_watch_id
from monitor.web.auth import RANK
from monitor.web.diffview import PairCache
from monitor.web.kept import KeptByMark
from monitor.web.pages import Searches, WatchIndex

PREFIX = "/api/v1"
# Requests per token (or per address presenting no valid token) per minute, by default.
RATE_PER_MINUTE = 600
_ARCHIVE_POLICY = "sandbox; default-src 'none'"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def new_token() -> str:
    """A token to show once: 32 random bytes, URL-safe, with a prefix people can grep."""
    return "mon_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RateLimit:
    """A token bucket per caller: `per_minute` requests a minute, as a burst or spread."""

    def __init__(self, per_minute: int = RATE_PER_MINUTE) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str) -> float:
        """0 when the request may go; otherwise the seconds until it may."""
        now = time.monotonic()
        if len(self._buckets) > 10_000:  # forget callers whose buckets are full again
            self._buckets = {
                k: v for k, v in self._buckets.items() if now - v[1] < self.capacity / self.rate
            }
        tokens, then = self._buckets.get(caller, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens - 1.0, now)
        return 0.0


# --- the schemas of what is answered ----------------------------------------------------


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_ANY_OBJ = {"type": "object", "additionalProperties": True}
_LINKS = {"type": "object", "additionalProperties": {"type": "string"}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _obj(["error"], error=_STR),
    "Watch": _obj(
        ["id", "url", "name", "source", "status"],
        id=_STR,
        url=_STR,
        name=_STR,
        source={"type": "string", "enum": ["file", "ui", "discovered", "archive"]},
        status=_STR,
        failing_since=_nullable(_STR),
        failure_reason=_nullable(_STR),
        last_check_at=_nullable(_STR),
        last_change_at=_nullable(_STR),
        settings=_ANY_OBJ,
        links=_LINKS,
    ),
    "WatchList": _obj(
        ["watches"],
        watches={"type": "array", "items": {"$ref": "#/components/schemas/Watch"}},
        # Only with `limit`: the `after` of the next page, null on the last.
        next=_nullable(_STR),
    ),
    "Statement": _obj(
        ["watch_id", "key", "url", "title", "versions"],
        watch_id=_STR,
        key=_STR,
        url=_STR,
        title=_STR,
        language=_nullable(_STR),
        published=_nullable(_STR),
        first_seen=_STR,
        removed_at=_nullable(_STR),
        versions=_INT,
        links=_LINKS,
    ),
    "StatementList": _obj(
        ["statements"],
        statements={"type": "array", "items": {"$ref": "#/components/schemas/Statement"}},
    ),
    "Version": _obj(
        ["watch_id", "key", "seq", "observed_at", "kind"],
        watch_id=_STR,
        key=_STR,
        seq=_INT,
        observed_at=_STR,
        kind=_STR,
        summary=_STR,
        score=_NUM,
        confirmation=_nullable(_STR),
        text_sha256=_nullable(_STR),
        chain=_nullable(_STR),
        response=_nullable(_ANY_OBJ),
        links=_LINKS,
    ),
    "VersionList": _obj(
        ["versions"], versions={"type": "array", "items": {"$ref": "#/components/schemas/Version"}}
    ),
    "Change": _obj(
        ["source", "id", "at", "kind", "watch_id", "listing", "title", "summary"],
        source={"type": "string", "enum": ["version", "watch"]},
        id=_INT,
        at=_STR,
        kind={"type": "string", "enum": list(KINDS)},
        watch_id=_STR,
        listing=_STR,
        key=_nullable(_STR),
        seq=_nullable(_INT),
        title=_STR,
        language=_nullable(_STR),
        summary=_STR,
        confirmation=_nullable(_STR),
        links=_LINKS,
    ),
    "ChangePage": _obj(
        ["changes", "next"],
        changes={"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
        next=_nullable(_STR),
    ),
    "Diff": _obj(
        ["watch_id", "key", "from", "to", "summary", "score", "changes"],
        watch_id=_STR,
        key=_STR,
        **{"from": _nullable(_INT)},
        to=_INT,
        summary=_STR,
        score=_NUM,
        changes={
            "type": "array",
            "items": _obj(
                ["field", "where", "before", "after"],
                field=_STR,
                where=_STR,
                before=_STR,
                after=_STR,
                removed={"type": "array", "items": _STR},
                added={"type": "array", "items": _STR},
            ),
        },
        problems={"type": "array", "items": _STR},
    ),
    "Alert": _obj(
        ["id", "watch_id", "kind", "created_at", "payload", "deliveries"],
        id=_INT,
        watch_id=_STR,
        kind=_STR,
        created_at=_STR,
        version_id=_nullable(_INT),
        payload=_ANY_OBJ,
        deliveries={
            "type": "array",
            "items": _obj(
                ["channel", "status", "attempts"],
                channel=_STR,
                status=_STR,
                attempts=_INT,
                sent_at=_nullable(_STR),
                last_error=_nullable(_STR),
            ),
        },
    ),
    "AlertList": _obj(
        ["alerts"], alerts={"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}
    ),
    "Annotation": _obj(
        ["id", "watch_id", "key", "username", "note", "created_at"],
        id=_INT,
        watch_id=_STR,
        key=_STR,
        seq=_nullable(_INT),
        username=_STR,
        verdict=_nullable({"type": "string", "enum": ["significant", "noise"]}),
        note=_STR,
        created_at=_STR,
    ),
    "AnnotationList": _obj(
        ["annotations"],
        annotations={"type": "array", "items": {"$ref": "#/components/schemas/Annotation"}},
    ),
    "SearchHit": _obj(
        ["watch_id", "key", "seq", "title", "observed_at", "snippet"],
        watch_id=_STR,
        key=_STR,
        seq=_INT,
        title=_STR,
        kind=_STR,
        observed_at=_STR,
        snippet=_STR,
        removed_at=_nullable(_STR),
    ),
    "SearchResult": _obj(
        ["query", "hits"],
        query=_STR,
        hits={"type": "array", "items": {"$ref": "#/components/schemas/SearchHit"}},
    ),
}

_WATCH_INPUT = {
    "type": "object",
    "required": ["url"],
    "description": "The keys of a [[watch]] table of the config file (see README). Settings "
    "this document cannot describe are checked when saved (422 with the reason): that an "
    "ignore rule compiles, that the URL's address may be fetched.",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
        "url": {"type": "string", "pattern": "^https?://[^\\s/]+"},
        "name": {"type": "string"},
        "interval": {"type": "number", "minimum": 1},
        "profile": {"type": "string", "description": "a site profile (see `monitor extract`)"},
        "language": {"type": "string"},
        "ignore": {"type": "array", "items": {"type": "string"}},
        "ignore_selectors": {"type": "array", "items": {"type": "string"}},
        "channels": {"type": "array", "items": {"type": "string"}},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1},
        "muted": {"type": "boolean"},
        "discover": {"type": "boolean"},
        "fetcher": {"type": "string", "enum": ["http", "browser"]},
    },
}
_ANNOTATION_INPUT = {
    "type": "object",
    "required": ["watch", "key"],
    "properties": {
        "watch": {"type": "string"},
        "key": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1},
        "verdict": {"type": "string", "enum": ["significant", "noise"]},
        "note": {"type": "string", "maxLength": 4000},
    },
}


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # below PREFIX, Starlette syntax
    handler: str  # method name of ApiPages
    role: str | None
    summary: str
    answers: dict[int, tuple[str, dict[str, Any]]]  # status -> (media type, schema)
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_JSON = "application/json"
_WATCH_P = Param("watch", "path", _STR, True, "a watch id")
_KEY_P = Param("key", "query", _STR, True, "the statement's key, e.g. en/1048252")
_SEQ_P = Param("number", "path", {"type": "integer", "minimum": 1}, True, "version number")

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/watches",
        "list_watches",
        "viewer",
        "Every watch, in the order of the watch list; with `limit`, a page of them",
        {200: (_JSON, _ref("WatchList")), 404: (_JSON, _ref("Error"))},
        (
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                description="watches per page (without it: every watch at once)",
            ),
            Param("after", "query", _STR, description="the `next` of the page before"),
        ),
    ),
    Endpoint(
        "POST",
        "/watches",
        "add_watch",
        "editor",
        "Add a watch (kept in the store, like the UI's)",
        {201: (_JSON, _ref("Watch")), 409: (_JSON, _ref("Error")), 422: (_JSON, _ref("Error"))},
        body=_WATCH_INPUT,
    ),
    Endpoint(
        "GET",
        "/watches/{watch}",
        "read_watch",
        "viewer",
        "One watch",
        {200: (_JSON, _ref("Watch")), 404: (_JSON, _ref("Error"))},
        (_WATCH_P,),
    ),
    Endpoint(
        "PUT",
        "/watches/{watch}",
        "edit_watch",
        "editor",
        "Replace a watch's settings",
        {200: (_JSON, _ref("Watch")), 404: (_JSON, _ref("Error")), 422: (_JSON, _ref("Error"))},
        (_WATCH_P,),
        body=_WATCH_INPUT,
    ),
    Endpoint(
        "DELETE",
        "/watches/{watch}",
        "delete_watch",
        "editor",
        "Delete a watch added through the UI or API (the file's watches stay)",
        {204: (_JSON, {}), 404: (_JSON, _ref("Error")), 409: (_JSON, _ref("Error"))},
        (_WATCH_P,),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/statements",
        "list_statements",
        "viewer",
        "The statements a watch archived (a listing's: those of the watches it found)",
        {200: (_JSON, _ref("StatementList")), 404: (_JSON, _ref("Error"))},
        (_WATCH_P,),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/versions",
        "list_versions",
        "viewer",
        "Every version of a statement",
        {200: (_JSON, _ref("VersionList")), 404: (_JSON, _ref("Error"))},
        (_WATCH_P, _KEY_P),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/versions/{number}",
        "read_version",
        "viewer",
        "A version's facts",
        {200: (_JSON, _ref("Version")), 404: (_JSON, _ref("Error"))},
        (_WATCH_P, _SEQ_P, _KEY_P),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/versions/{number}/text",
        "version_text",
        "viewer",
        "A version's statement as plain text",
        {200: ("text/plain", _STR), 404: (_JSON, _ref("Error"))},
        (_WATCH_P, _SEQ_P, _KEY_P),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/versions/{number}/statement",
        "version_statement",
        "viewer",
        "A version's statement as extracted (JSON)",
        {200: (_JSON, _ANY_OBJ), 404: (_JSON, _ref("Error"))},
        (_WATCH_P, _SEQ_P, _KEY_P),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/versions/{number}/raw",
        "version_raw",
        "viewer",
        "The response body as archived (bytes)",
        {
            200: ("application/octet-stream", {"type": "string", "format": "binary"}),
            404: (_JSON, _ref("Error")),
        },
        (_WATCH_P, _SEQ_P, _KEY_P),
    ),
    Endpoint(
        "GET",
        "/watches/{watch}/diff",
        "diff",
        "viewer",
        "What changed between two versions of a statement",
        {200: (_JSON, _ref("Diff")), 404: (_JSON, _ref("Error")), 422: (_JSON, _ref("Error"))},
        (
            _WATCH_P,
            _KEY_P,
            Param(
                "to",
                "query",
                {"type": "integer", "minimum": 1},
                False,
                "the later version (default: newest)",
            ),
            Param(
                "from",
                "query",
                {"type": "integer", "minimum": 1},
                False,
                "the earlier (default: to - 1)",
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/changes",
        "changes",
        "viewer",
        "The changes feed, newest first (the front page's)",
        {200: (_JSON, _ref("ChangePage")), 422: (_JSON, _ref("Error"))},
        (
            Param(
                "listing",
                "query",
                _STR,
                False,
                "a watch: itself and the statement watches it found",
            ),
            Param("language", "query", _STR),
            Param(
                "kind",
                "query",
                {"type": "string", "enum": list(KINDS)},
                False,
                "repeat for several",
            ),
            Param("since", "query", {"type": "string", "format": "date-time"}),
            Param("until", "query", {"type": "string", "format": "date-time"}),
            Param(
                "cursor",
                "query",
                {"type": "string", "pattern": "^[0-9T:.Z-]+~(version|watch)~[0-9]+$"},
                False,
                "`next` of the page before",
            ),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}),
        ),
    ),
    Endpoint(
        "GET",
        "/alerts",
        "alerts",
        "viewer",
        "Alerts raised and their deliveries, newest first",
        {200: (_JSON, _ref("AlertList"))},
        (
            Param("watch", "query", _STR),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
        ),
    ),
    Endpoint(
        "GET",
        "/annotations",
        "annotations",
        "viewer",
        "People's notes and verdicts on a statement",
        {200: (_JSON, _ref("AnnotationList")), 404: (_JSON, _ref("Error"))},
        (Param("watch", "query", _STR, True), _KEY_P),
    ),
    Endpoint(
        "POST",
        "/annotations",
        "annotate",
        "viewer",
        "Note a verdict (significant / noise) or a remark",
        {
            201: (_JSON, _ref("Annotation")),
            404: (_JSON, _ref("Error")),
            422: (_JSON, _ref("Error")),
        },
        body=_ANNOTATION_INPUT,
    ),
    Endpoint(
        "GET",
        "/search",
        "search",
        "viewer",
        'Full-text search of every version: words, OR, "phrases", -word, prefix*',
        {200: (_JSON, _ref("SearchResult"))},
        (
            Param("q", "query", _STR, True),
            Param("watch", "query", _STR),
            Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
        ),
    ),
)


def openapi_document(
    public_url: str | None = None,
    profiles: list[str] | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.0 document; `profiles` and `channels` (this daemon's) narrow what a
    watch may name."""
    watch_input = json.loads(json.dumps(_WATCH_INPUT))
    if profiles is not None:
        watch_input["properties"]["profile"]["enum"] = profiles
    if channels is not None:
        watch_input["properties"]["channels"]["items"]["enum"] = channels or [""]
        if not channels:
            watch_input["properties"]["channels"]["maxItems"] = 0
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        path = PREFIX + endpoint.path
        operation: dict[str, Any] = {
            "operationId": endpoint.handler,
            "summary": endpoint.summary,
            "parameters": [
                {
                    "name": p.name,
                    "in": p.where,
                    "required": p.required or p.where == "path",
                    "schema": p.schema,
                    **({"description": p.description} if p.description else {}),
                    **({"style": "form", "explode": True} if p.name == "kind" else {}),
                }
                for p in endpoint.params
            ],
            "responses": {
                str(status): _answer(status, media, schema)
                for status, (media, schema) in endpoint.answers.items()
            }
            | {
                "401": _answer(401, _JSON, _ref("Error")),
                "403": _answer(403, _JSON, _ref("Error")),
                "429": _answer(429, _JSON, _ref("Error")),
                "400": _answer(400, _JSON, _ref("Error")),
                "422": _answer(422, _JSON, _ref("Error")),
            },
        }
        if endpoint.body is not None:
            body = watch_input if endpoint.body is _WATCH_INPUT else endpoint.body
            operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "monitor API",
            "version": "1",
            "description": "The archive of watched statements: watches, versions, diffs, "
            "the changes feed, alerts, annotations and search.",
        },
        "servers": [{"url": (public_url or "").rstrip("/") or "/"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }


def _answer(status: int, media: str, schema: dict[str, Any]) -> dict[str, Any]:
    if status == 204:
        return {"description": "done"}
    return {"description": str(status), "content": {media: {"schema": schema}}}


# --- the handlers ---------------------------------------------------------------------------

# GET handlers whose answer is made of the archive, the watches in force and the request's
# path and query alone (no clock, no caller): kept between requests (ApiPages._kept).
KEPT_ANSWERS = frozenset(
    (
        "list_statements",
        "list_versions",
        "read_version",
        "version_text",
        "version_statement",
        "diff",
        "changes",
        "annotations",
    )
)
# Answers kept at most (path and query).
ANSWERS_KEPT = 256

# What /api/v1/watches shows of a watch's state (`Store.watch_health`), in its order.
_HEALTH = ("last_check_at", "failing_since", "failure_reason", "last_change_at")


def _json(value: Any) -> str:
    """JSON text as JSONResponse writes it."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class WatchEntries:
    """Each watch's entry of /api/v1/watches as JSON text, kept while its configuration
    (the snapshot's object), its source and its state are what they were, and its status
    word still holds ("changed" ends CHANGED_FOR after the change): 10,000 entries made
    and encoded for each request cost 280 ms; most watches' states do not change between
    two requests."""

    def __init__(self, make: Callable[[WatchConfig, dict[str, Any], str], dict[str, Any]]):
        self._make = make
        # id -> (watch, source, health, valid until (epoch seconds), JSON text)
        self._texts: dict[str, tuple[WatchConfig, str, Any, float, bytes]] = {}
        # Every watch's: (snapshot, sources, health, valid until, texts, places by id,
        # the texts joined).
        self._every: tuple[Any, ...] | None = None

    def texts(
        self,
        watches: list[WatchConfig],
        health: dict[str, Any],
        sources: tuple[set[str], set[str]],
        now: float,
    ) -> list[bytes]:
        """The entries of these watches (their health and sources by id), as JSON."""
        texts, kept_texts = [], self._texts
        for watch in watches:
            source = self._source_of(watch.id, sources)
            state = health.get(watch.id)
            kept = kept_texts.get(watch.id)
            if (
                kept is not None
                and kept[0] is watch
                and kept[1] == source
                and kept[2] == state
                and now < kept[3]
            ):
                texts.append(kept[4])
            else:
                texts.append(self._text(watch, source, state))
        return texts

    def every(
        self,
        config: MonitorConfig,
        health: dict[str, Any],
        changed: list[str] | None,
        sources: tuple[set[str], set[str]],
        now: float,
    ) -> bytes:
        """The entries of every watch of `config`, joined by commas: the list of the last
        request with the entries of the watches whose health changed since made again
        (`changed`, as `WatchHealth.read` tells them; None: any may have, and each is
        compared: a daemon's checks change a few between two requests, and 10,000 entries
        looked up one by one cost 25 ms), the whole made again when the snapshot or the
        sources changed, or a status word ran out. `health` is kept only as a copy."""
        kept = self._every
        if kept is None or kept[0] is not config or kept[1] != sources or now >= kept[3]:
            watches = list(config.watch)
            texts = self.texts(watches, health, sources, now)
            until = min((self._texts[w.id][3] for w in watches), default=float("inf"))
            places = {watch.id: n for n, watch in enumerate(watches)}
            kept = (config, sources, dict(health), until, texts, places, b",".join(texts))
        else:
            before = kept[2]
            if changed is None:
                changed = [i for i, state in health.items() if before.get(i) != state]
                changed += [i for i in before.keys() - health.keys()]
            else:
                changed = [i for i in changed if before.get(i) != health.get(i)]
            if changed:
                texts, places = list(kept[4]), kept[5]
                watches = config.watch
                for watch_id in changed:
                    before[watch_id] = health.get(watch_id)
                    place = places.get(watch_id)
                    if place is None:  # in the archive, not in the configuration
                        continue
                    watch = watches[place]
                    source = self._source_of(watch.id, sources)
                    texts[place] = self._text(watch, source, health.get(watch.id))
                until = min([kept[3], *(self._texts[i][3] for i in changed if i in places)])
                kept = (config, sources, before, until, texts, places, b",".join(texts))
        self._every = kept
        return kept[6]

    @property
    def until(self) -> float:
        """Until when the list `every` made last holds (epoch seconds): its first "changed"
        to end."""
        return self._every[3] if self._every is not None else 0.0

    @staticmethod
    def _source_of(watch_id: str, sources: tuple[set[str], set[str]]) -> str:
        ui, found = sources
        return "ui" if watch_id in ui else "discovered" if watch_id in found else "file"

    def _text(self, watch: WatchConfig, source: str, health: Any) -> bytes:
        state = dict(zip(_HEALTH, health, strict=True)) if health else {}
        entry = self._make(watch, state, source)
        until = float("inf")
        if entry["status"] == "changed":
            from monitor.web.ui import CHANGED_FOR

            until = parse_iso(state["last_change_at"]).timestamp() + CHANGED_FOR.total_seconds()
        text = _json(entry).encode()
        self._texts[watch.id] = (watch, source, health, until, text)
        return text

    def keep(self, watches: int) -> None:
        """Forget the entries of watches gone from the configuration, now and then."""
        if len(self._texts) > 2 * watches + 100:
            self._texts.clear()


@dataclass
class Caller:
    name: str
    role: str

    def may(self, role: str) -> bool:
        return RANK.get(self.role, 0) >= RANK[role]


class ApiPages:
    def __init__(
        self,
        store: Store,
        config: Callable[[], MonitorConfig],
        on_change: Callable[[], Awaitable[None]],
        rate: RateLimit | None = None,
    ) -> None:
        self.store = store
        self._config = config
        self.on_change = on_change
        self.rate = RateLimit(config().server.api_rate) if rate is None else rate
        self._used: dict[str, float] = {}
        # Answers of KEPT_ANSWERS: (status, body, headers) by request.
        self._answers: KeptByMark[tuple[int, bytes, list[Any]]] = KeptByMark(ANSWERS_KEPT)
        # Tokens by hash, as read at a data mark (see `_token`): (row or None,).
        self._tokens: KeptByMark[tuple[Any]] = KeptByMark(1024)
        # Diffs between two versions, computed once (see diffview.PairCache).
        self.diffs: PairCache[dict[str, Any]] = PairCache()
        self.watch_index = WatchIndex()
        self.entries = WatchEntries(self._watch_entry)
        # Every watch's health, read again only where a check wrote since (WatchHealth),
        # and the ids of those whose health changed since the list of every watch was made
        # last (None: any may have).
        self.health = WatchHealth(store.db)
        self._changed: set[str] | None = None
        # The list of every watch: (data mark, snapshot, valid until, body).
        self._every: tuple[Any, MonitorConfig, float, bytes] | None = None
        self.searches = Searches()

    @property
    def config(self) -> MonitorConfig:
        return self._config()

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Route(PREFIX + "/openapi.json", self.openapi)]
        by_path: dict[str, dict[str, Endpoint]] = {}
        for endpoint in ENDPOINTS:
            by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
        for path, methods in by_path.items():
            routes.append(Route(PREFIX + path, self._dispatch(methods), methods=list(methods)))
        served = list(routes)

        async def elsewhere(request: Request) -> Response:
            # Starlette would answer these in plain text; an API client expects JSON (and
            # an Allow header with a 405).
            for route in served:
                match, _child = route.matches(request.scope)
                if match is Match.PARTIAL and isinstance(route, Route) and route.methods:
                    allowed = ", ".join(sorted(route.methods))
                    return JSONResponse(
                        {"error": f"{request.method} is not one of {allowed} here"},
                        405,
                        headers={"Allow": allowed, "Cache-Control": "no-store"},
                    )
            return JSONResponse(
                {"error": f"no such endpoint: see {PREFIX}/openapi.json"},
                404,
                headers={"Cache-Control": "no-store"},
            )

        routes.append(Route(PREFIX + "/{rest:path}", elsewhere, methods=_ALL_METHODS))
        return routes

    async def openapi(self, request: Request) -> Response:
        config = self.config
        document = openapi_document(
            config.server.public_url, profile_names(), list(config.channels)
        )
        return JSONResponse(document)

    def _dispatch(self, methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            chosen = methods[request.method]
            try:
                caller = self._caller(request)
                if chosen.role is not None and not caller.may(chosen.role):
                    raise ApiError(403, f"this token's role ({caller.role}) may not do this")
                _check_parameters(chosen, request)
                if chosen.body is not None:
                    request.state.body = _checked_body(chosen.body, await request.body())
                if chosen.method == "GET" and chosen.handler in KEPT_ANSWERS:
                    answer = await self._kept(chosen.handler, request, caller)
                else:
                    answer = await getattr(self, chosen.handler)(request, caller)
            except ApiError as err:
                answer = JSONResponse({"error": str(err)}, err.status, headers=err.headers)
            answer.headers.setdefault("Cache-Control", "no-store")
            return answer

        return endpoint

    def _caller(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        row = self._token(token_hash(token.strip())) if scheme.lower() == "bearer" else None
        client = request.client.host if request.client else "?"
        wait = self.rate.take(f"token:{row['name']}" if row else f"address:{client}")
        if wait:
            raise ApiError(429, "too many requests", {"Retry-After": str(int(wait) + 1)})
        if row is None and self.config.server.public and request.method == "GET":
            return Caller("anonymous", "viewer")  # public mode: anyone may read, as in the UI
        if row is None:
            raise ApiError(
                401,
                "send a token: Authorization: Bearer <token> (monitor token add NAME)",
                {"WWW-Authenticate": 'Bearer realm="monitor"'},
            )
        now = time.monotonic()
        if now - self._used.get(row["name"], -1e9) > 60:
            self._used[row["name"]] = now
            self.store.token_used(row["name"], now_iso())
        return Caller(row["name"], row["role"])

    async def _kept(self, handler: str, request: Request, caller: Caller) -> Response:
        """The answer of a GET whose body is made of the archive and the watches alone
        (KEPT_ANSWERS), as made last for this path and query while the archive's data
        mark and the snapshot of the watches hold: the caller's token and rate are checked
        for each request all the same. Errors are made each time."""
        config = self.config
        mark = self.store.overview.data_mark()  # first: a commit after it shows next time
        asked = (handler, request.url.path, request.url.query)
        kept = self._answers.get(asked, mark, config)
        if kept is not None:
            answer = Response(kept[1], kept[0])
            answer.raw_headers = list(kept[2])
            return answer
        answer = await getattr(self, handler)(request, caller)
        if answer.status_code == 200 and isinstance(answer.body, bytes):
            kept = (answer.status_code, answer.body, list(answer.raw_headers))
            self._answers.put(asked, mark, kept, config)
        return answer

    def _token(self, sha256: str) -> Any:
        """The token in force with this hash (None: none), as last read while the archive's
        data mark holds (a revoked or added token is a commit)."""
        mark = self.store.overview.data_mark()
        kept = self._tokens.get(sha256, mark)
        if kept is not None:
            return kept[0]
        row = self.store.token(sha256)
        self._tokens.put(sha256, mark, (row,))
        return row

    # --- watches -------------------------------------------------------------------------

    def _watch_entry(
        self, watch: WatchConfig, state: Mapping[str, Any], source: str
    ) -> dict[str, Any]:
        from monitor.web.ui import watch_status

        status, _since = watch_status(state) if state else ("never checked", None)
        settings = watch_settings(watch)
        return {
            "id": watch.id,
            "url": watch.url,
            "name": watch.display_name,
            "source": source,
            "status": status,
            "failing_since": state.get("failing_since"),
            "failure_reason": state.get("failure_reason"),
            "last_check_at": state.get("last_check_at"),
            "last_change_at": state.get("last_change_at"),
            "settings": settings,
            "links": {
                "self": f"{PREFIX}/watches/{quote(watch.id, safe='')}",
                "ui": f"/watch/{quote(watch.id, safe='')}",
            },
        }

    def _sources(self) -> tuple[set[str], set[str]]:
        return self.store.watch_sources()

    def _source(self, watch_id: str, ui: set[str], found: set[str]) -> str:
        return "ui" if watch_id in ui else "discovered" if watch_id in found else "file"

    async def list_watches(self, request: Request, caller: Caller) -> Response:
        chosen, page = list(self.config.watch), {}
        limit, after = _number(request, "limit"), request.query_params.get("after")
        if after:
            if self.watch_index.get(self.config, after) is None:
                raise ApiError(404, f"no watch {after!r} to list after")
            start = next(i for i, w in enumerate(chosen) if w.id == after) + 1
            chosen = chosen[start:]
        if limit:
            # 10,000 watches are 3 MB of JSON: a newsroom's script pages through them.
            more = len(chosen) > limit
            chosen = chosen[:limit]
            page = {"next": chosen[-1].id if more and chosen else None}
        if not (limit or after):
            return Response(self._every_watch(), media_type="application/json")
        health, sources, now = self._health(), self._sources(), time.time()
        joined = b",".join(self.entries.texts(chosen, health, sources, now))
        self.entries.keep(len(self.config.watch))
        tail = "".join(f",{_json(k)}:{_json(v)}" for k, v in page.items()).encode()
        body = b'{"watches":[' + joined + b"]" + tail + b"}"
        return Response(body, media_type="application/json")

    def _every_watch(self) -> bytes:
        """The body of the list of every watch: the last one as long as the archive's data
        mark, the snapshot of the watches and every status word in it hold (reading 10,000
        states and their sources took most of what the request cost), else made of the
        entries kept (WatchEntries.every)."""
        config, now = self.config, time.time()
        mark = self.store.overview.data_mark()  # first: a commit after it shows next time
        kept = self._every
        if kept is not None and kept[0] == mark and kept[1] is config and now < kept[2]:
            return kept[3]
        health, sources = self._health(), self._sources()
        changed, self._changed = self._changed, set()
        joined = self.entries.every(
            config, health, None if changed is None else list(changed), sources, now
        )
        self.entries.keep(len(config.watch))
        body = b'{"watches":[' + joined + b"]}"
        self._every = (mark, config, self.entries.until, body)
        return body

    def _health(self) -> dict[str, Any]:
        """Every watch's health now (`WatchHealth`), noting which changed for the list of
        every watch."""
        health, changed = self.health.read()
        if changed is None:
            self._changed = None
        elif self._changed is not None:
            self._changed.update(changed)
        return health

    def _find(self, watch_id: str) -> WatchConfig:
        watch = self.watch_index.get(self.config, watch_id)
        if watch is None:
            raise ApiError(404, f"no watch {watch_id!r}")
        return watch

    async def read_watch(self, request: Request, caller: Caller) -> Response:
        watch = self._find(request.path_params["watch"])
        state: Mapping[str, Any] = self.store.watch_row(watch.id) or {}
        ui, found = self._sources()
        return JSONResponse(self._watch_entry(watch, state, self._source(watch.id, ui, found)))

    async def _body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = request.state.body  # checked against the document already
        return body

    async def _save(self, settings: dict[str, Any], caller: Caller) -> WatchConfig:
        try:
            watch = validate_watch(self.config, settings)
        except WatchError as err:
            raise ApiError(422, str(err)) from None
        stored = watch_settings(watch)
        stored.pop("id")
        self.store.put_ui_watch(watch.id, stored, f"token:{caller.name}")
        await self.on_change()
        return watch

    async def add_watch(self, request: Request, caller: Caller) -> Response:
        settings = await self._body(request)
        if not settings.get("id"):
            taken = {w.id for w in self.config.watch}
            settings["id"] = new_watch_id(str(settings.get("url", "")), taken, settings.get("name"))
        if any(w.id == settings["id"] for w in self.config.watch):
            raise ApiError(409, f"a watch {settings['id']!r} exists: PUT to change it")
        watch = await self._save(settings, caller)
        return JSONResponse(self._watch_entry(watch, {}, "ui"), status_code=201)

    async def edit_watch(self, request: Request, caller: Caller) -> Response:
        watch_id = request.path_params["watch"]
        self._find(watch_id)
        settings = await self._body(request)
        if settings.get("id", watch_id) != watch_id:
            raise ApiError(422, "id: a watch keeps its id (add a new watch for a new id)")
        watch = await self._save({**settings, "id": watch_id}, caller)
        return JSONResponse(self._watch_entry(watch, {}, "ui"))

    async def delete_watch(self, request: Request, caller: Caller) -> Response:
        watch_id = request.path_params["watch"]
        self._find(watch_id)
        if not self.store.delete_ui_watch(watch_id):
            raise ApiError(409, f"watch {watch_id!r} is defined in the config file; edit the file")
        await self.on_change()
        return Response(status_code=204)

    # --- statements and versions ---------------------------------------------------------

    def _document(self, watch_id: str, key: str | None) -> DocumentRow:
        if not key:
            raise ApiError(404, "name the statement: ?key=")
        for member in self.store.family(watch_id):
            document = self.store.document(member, key)
            if document is not None:
                return document
        raise ApiError(404, f"no statement {key!r} in watch {watch_id!r}")

    async def list_statements(self, request: Request, caller: Caller) -> Response:
        watch = self._find(request.path_params["watch"])
        statements = []
        for member in self.store.family(watch.id):
            for document in self.store.documents(member):
                statements.append(self._statement_entry(document))
        return JSONResponse({"statements": statements})

    def _statement_entry(self, document: DocumentRow) -> dict[str, Any]:
        base = f"{PREFIX}/watches/{quote(document['watch_id'], safe='')}"
        key = quote(document["key"], safe="")
        return {
            "watch_id": document["watch_id"],
            "key": document["key"],
            "url": document["url"],
            "title": document["title"],
            "language": document.get("language"),
            "published": document.get("published"),
            "first_seen": document["first_seen"],
            "removed_at": document.get("removed_at"),
            "versions": self.store.last_seq(document["id"]),
            "links": {"versions": f"{base}/versions?key={key}", "diff": f"{base}/diff?key={key}"},
        }

    def _version_entry(
        self,
        watch_id: str,
        key: str,
        row: VersionRow,
        records: Mapping[int, ResponseRow] | None = None,
        chains: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`records`: the responses of the versions listed, read at once (else this one's
        is read); `chains`: the TLS chains read so far in this answer."""
        base = f"{PREFIX}/watches/{quote(watch_id, safe='')}/versions/{row['seq']}"
        query = f"?key={quote(key, safe='')}"
        response_id = row.get("response_id")
        if records is not None:
            record = records.get(response_id) if response_id else None
        else:
            record = self.store.response(response_id) if response_id else None
        return {
            "watch_id": watch_id,
            "key": key,
            "seq": row["seq"],
            "observed_at": row["observed_at"],
            "kind": row["kind"],
            "summary": row.get("summary") or "",
            "score": float(row.get("score") or 0.0),
            "confirmation": row.get("confirmation"),
            "text_sha256": row.get("text_sha256"),
            "chain": row.get("chain"),
            "response": _response_facts(
                record, response_tls(self.store, record, chains) if record else None
            ),
            "links": {
                "self": base + query,
                "text": f"{base}/text{query}",
                "statement": f"{base}/statement{query}",
                "raw": f"{base}/raw{query}",
                "ui": f"/watch/{quote(watch_id, safe='')}/versions/{row['seq']}{query}",
            },
        }

    async def list_versions(self, request: Request, caller: Caller) -> Response:
        watch = self._find(request.path_params["watch"])
        document = self._document(watch.id, request.query_params.get("key"))
        rows = self.store.timeline(document["id"])
        # One query for the responses of them all, each TLS chain read once (was: two
        # queries a version).
        records = self.store.responses([r["response_id"] for r in rows if r["response_id"]])
        chains: dict[str, Any] = {}
        entries = [
            self._version_entry(watch.id, document["key"], row, records, chains) for row in rows
        ]
        return JSONResponse({"versions": entries})

    def _numbered(self, request: Request) -> tuple[str, DocumentRow, VersionWithDocumentRow]:
        watch = self._find(request.path_params["watch"])
        document = self._document(watch.id, request.query_params.get("key"))
        row = self.store.version_at(document["id"], int(request.path_params["number"]))
        if row is None:
            raise ApiError(404, f"no version {request.path_params['number']} of {document['key']}")
        return watch.id, document, row

    async def read_version(self, request: Request, caller: Caller) -> Response:
        watch_id, document, row = self._numbered(request)
        return JSONResponse(self._version_entry(watch_id, document["key"], row))

    def _statement_of(self, row: VersionRow | None) -> Statement | None:
        if row is None or not row["text_sha256"]:
            return None
        return Statement.from_json(self.store.read_blob(row["text_sha256"]))

    async def version_text(self, request: Request, caller: Caller) -> Response:
        _watch_id, _document, row = self._numbered(request)
        statement = self._statement_of(row)
        if statement is None:
            raise ApiError(404, "this version has no text (the statement was removed)")
        text = "\n\n".join([statement.title, *statement.paragraphs]) + "\n"
        return Response(text, media_type="text/plain; charset=utf-8")

    async def version_statement(self, request: Request, caller: Caller) -> Response:
        _watch_id, _document, row = self._numbered(request)
        if not row["text_sha256"]:
            raise ApiError(404, "this version has no text (the statement was removed)")
        return Response(self.store.read_blob(row["text_sha256"]), media_type=_JSON)

    async def version_raw(self, request: Request, caller: Caller) -> Response:
        _watch_id, document, row = self._numbered(request)
        record = self.store.response(row["response_id"]) if row["response_id"] else None
        if record is None:
            raise ApiError(404, "no response is archived for this version")
        name = f"{document['key'].replace('/', '-')}-{row['seq']}.body"
        return Response(
            self.store.read_blob(record["body_sha256"]),
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Content-Security-Policy": _ARCHIVE_POLICY,
                "Digest": f"sha-256={record['body_sha256']}",
            },
        )

    async def diff(self, request: Request, caller: Caller) -> Response:
        watch = self._find(request.path_params["watch"])
        document = self._document(watch.id, request.query_params.get("key"))
        last = self.store.last_seq(document["id"])
        to = _number(request, "to") or last
        since = _number(request, "from") or (to - 1)
        if since >= to:
            raise ApiError(422, "from must be below to")
        b = self.store.version_at(document["id"], to)
        if b is None:
            raise ApiError(404, f"no version {to} of {document['key']}")
        a = self.store.version_at(document["id"], since) if since >= 1 else None
        pair = PairCache.key(a["id"] if a else None, b["id"], watch.ignore)
        answer = self.diffs.get(pair)
        if answer is None:
            result = compare(self._statement_of(a), self._statement_of(b), watch.ignore)
            answer = {
                "watch_id": watch.id,
                "key": document["key"],
                "from": a["seq"] if a else None,
                "to": b["seq"],
                "summary": result.summary,
                "score": result.score,
                "changes": [c.as_json() for c in result.changes],
                "problems": list(result.problems),
            }
            self.diffs.put(pair, answer)
        return JSONResponse(answer)

    # --- the feed, alerts, annotations, search --------------------------------------------

    async def changes(self, request: Request, caller: Caller) -> Response:
        params = request.query_params
        kinds = params.getlist("kind") or list(KINDS)
        try:
            cursor = Cursor.parse(params["cursor"]) if params.get("cursor") else None
        except ValueError:
            raise ApiError(422, "cursor: not one this API gave") from None
        limit = _number(request, "limit") or 50
        wanted = ChangeFilter(
            listing=params.get("listing") or None,
            language=params.get("language") or None,
            kinds=kinds,
            since=_moment(params.get("since"), "since"),
            until=_moment(params.get("until"), "until"),
            below=cursor,
        )
        rows, following = self.store.changes(wanted, limit)
        return JSONResponse(
            {
                "changes": [change_entry(row) for row in rows],
                "next": str(following) if following else None,
            }
        )

    async def alerts(self, request: Request, caller: Caller) -> Response:
        watch_id = request.query_params.get("watch") or None
        limit = _number(request, "limit") or 100
        rows = self.store.recent_alerts(watch_id, limit)
        deliveries: dict[int, list[dict[str, Any]]] = {}
        for delivery in self.store.alert_deliveries([row["id"] for row in rows]):
            deliveries.setdefault(delivery["alert_id"], []).append(
                {
                    "channel": delivery["channel"],
                    "status": delivery["status"],
                    "attempts": delivery["attempts"],
                    "sent_at": delivery["sent_at"],
                    "last_error": delivery["last_error"],
                }
            )
        return JSONResponse(
            {
                "alerts": [
                    {
                        "id": row["id"],
                        "watch_id": row["watch_id"],
                        "kind": row["kind"],
                        "created_at": row["created_at"],
                        "version_id": row["version_id"],
                        "payload": _json_object(row["payload"]),
                        "deliveries": deliveries.get(row["id"], []),
                    }
                    for row in rows
                ]
            }
        )

    async def annotations(self, request: Request, caller: Caller) -> Response:
        watch = self._find(request.query_params.get("watch", ""))
        document = self._document(watch.id, request.query_params.get("key"))
        numbers = self._numbers(document)
        return JSONResponse(
            {
                "annotations": [
                    _annotation_entry(watch.id, document, row, numbers)
                    for row in self.store.annotations(document["id"])
                ]
            }
        )

    def _numbers(self, document: DocumentRow) -> dict[int, int]:
        return {row["id"]: row["seq"] for row in self.store.timeline(document["id"])}

    async def annotate(self, request: Request, caller: Caller) -> Response:
        body = await self._body(request)
        watch = self._find(str(body.get("watch", "")))
        document = self._document(watch.id, str(body.get("key") or "") or None)
        verdict, note = body.get("verdict"), str(body.get("note") or "").strip()
        # The verdict's values, the note's length and seq's type were checked against the
        # document (_checked_body); what it cannot say is checked here.
        if not verdict and not note:
            raise ApiError(422, "give a verdict, a note, or both")
        version_id = None
        if body.get("seq") is not None:
            row = self.store.version_at(document["id"], body["seq"])
            if row is None:
                raise ApiError(404, f"no version {body['seq']} of {document['key']}")
            version_id = row["id"]
        self.store.annotate(document["id"], version_id, f"token:{caller.name}", verdict, note)
        newest = self.store.annotations(document["id"])[0]
        entry = _annotation_entry(watch.id, document, newest, self._numbers(document))
        return JSONResponse(entry, status_code=201)

    async def search(self, request: Request, caller: Caller) -> Response:
        query = request.query_params.get("q", "")
        limit = _number(request, "limit") or 50
        watch_id = request.query_params.get("watch") or None
        hits = self.searches.find(self.store, query, watch_id, limit)
        return JSONResponse(
            {
                "query": query,
                "hits": [
                    {
                        "watch_id": hit["watch_id"],
                        "key": hit["key"],
                        "seq": hit["seq"],
                        "title": hit["title"],
                        "kind": hit["kind"],
                        "observed_at": hit["observed_at"],
                        "snippet": (hit.get("snippet") or "")
                        .replace("\x02", "[")
                        .replace("\x03", "]"),
                        "removed_at": hit.get("removed_at"),
                    }
                    for hit in hits
                ],
            }
        )


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _check_parameters(endpoint: Endpoint, request: Request) -> None:
    """The query and path parameters against the endpoint's document: types, ranges,
    enums, required ones; a value that is not what the document says is a 422."""
    declared = {param.name for param in endpoint.params if param.where == "query"}
    unknown = sorted(set(request.query_params.keys()) - declared)
    if unknown:
        raise ApiError(422, f"unknown parameter {unknown[0]!r} (see {PREFIX}/openapi.json)")
    for param in endpoint.params:
        source = request.path_params if param.where == "path" else request.query_params
        if param.where == "query" and param.schema.get("type") != "array":
            values = request.query_params.getlist(param.name)
        else:
            values = [source[param.name]] if param.name in source else []
        if not values:
            if param.required:
                raise ApiError(422, f"{param.name}: required")
            continue
        for value in values:
            problem = _parameter_problem(param.schema, value)
            if problem:
                raise ApiError(422, f"{param.name}: {problem}")


def _parameter_problem(schema: dict[str, Any], value: str) -> str | None:
    typed: Any = value
    if schema.get("type") == "integer":
        try:
            typed = int(value)
        except ValueError:
            return "a whole number"
    if schema.get("format") == "date-time":
        try:
            parse_iso(value)
        except ValueError:
            return "an ISO 8601 time, e.g. 2026-12-01T00:00:00Z"
    error = best_match(Draft7Validator(schema).iter_errors(typed))
    return error.message if error is not None else None


def _checked_body(schema: dict[str, Any], raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError as err:
        raise ApiError(400, f"the body is not JSON: {err}") from None
    error = best_match(Draft7Validator(schema).iter_errors(body))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "body"
        raise ApiError(422, f"{where}: {error.message}")
    assert isinstance(body, dict)
    return body


def change_entry(row: ChangeEvent) -> dict[str, Any]:
    """One event of the changes feed, with where to read more."""
    links: dict[str, str] = {}
    watch = quote(row["watch_id"], safe="")
    if row["source"] == "version" and row.get("key"):
        key = quote(row["key"], safe="")
        links = {
            "archived": f"/watch/{watch}/versions/{row['seq']}?key={key}",
            "api": f"{PREFIX}/watches/{watch}/versions/{row['seq']}?key={key}",
        }
        if row["kind"] in ("edited", "restored") or (row["kind"] == "removed" and row["seq"] > 1):
            links["diff"] = f"/watch/{watch}/diff?key={key}&b={row['seq']}"
        if row["kind"] == "removed":  # the live page is gone: the last text we archived
            links["archived"] = f"/watch/{watch}/versions/{max(1, row['seq'] - 1)}?key={key}"
    else:
        links = {"watch": f"/watch/{watch}"}
    return {
        "source": row["source"],
        "id": row["id"],
        "at": row["at"],
        "kind": row["kind"],
        "watch_id": row["watch_id"],
        "listing": row["listing"],
        "key": row.get("key"),
        "seq": row.get("seq"),
        "title": row.get("title") or row["watch_id"],
        "language": row.get("language"),
        "summary": row.get("summary") or "",
        "confirmation": row.get("confirmation"),
        "links": links,
    }


def _annotation_entry(
    watch_id: str, document: DocumentRow, row: AnnotationRow, numbers: dict[int, int]
) -> dict[str, Any]:
    return {
        "id": row["id"],
        "watch_id": watch_id,
        "key": document["key"],
        "seq": numbers.get(row["version_id"]) if row["version_id"] else None,
        "username": row["username"],
        "verdict": row.get("verdict"),
        "note": row.get("note") or "",
        "created_at": row["created_at"],
    }


def _response_facts(
    record: ResponseRow | None, tls: dict[str, Any] | None
) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        # The connection's TLS provenance (protocol, cipher, the chain as presented), or
        # None when the response predates its recording.
        "tls": tls,
        "requested_at": record["requested_at"],
        "url": record["url"],
        "final_url": record["final_url"],
        "status": record["status"],
        "http_version": record["http_version"],
        "body_sha256": record["body_sha256"],
        "body_size": record["body_size"],
        "server_date": record["server_date"],
    }


def _number(request: Request, name: str) -> int | None:
    """A whole-number query parameter, or None when absent. Its type and range were
    checked against the endpoint's document before the handler ran (_check_parameters)."""
    value = request.query_params.get(name)
    return int(value) if value else None


def _moment(value: str | None, name: str) -> str | None:
    """An ISO time as the archive writes them (UTC, milliseconds, Z)."""
    if not value:
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        raise ApiError(422, f"{name}: an ISO 8601 time, e.g. 2026-12-01T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment)


def _json_object(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
