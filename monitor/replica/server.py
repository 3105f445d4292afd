"""An offline stand-in for gov.kz: the SPA shell pages, the content-manager REST API and GraphQL.

Only the standard library is used so the replica runs anywhere the tests run. The server
lives in a daemon thread; all state sits behind one lock because handler threads read it
while the test (or `monitor demo`) mutates it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import SplitResult, parse_qs, urlsplit

import monitor.replica.rendered as rendered
from monitor.replica.statements import LANGS, STATEMENTS, Statement, StatementText

ENTITY = "mfa"
# gov.kz answers in Russian when the Accept-Language header names nothing it knows.
DEFAULT_LANG = "ru"
MODES = frozenset(
    {"ok", "error", "down", "hang", "captcha", "maintenance", "graphql_off", "rest_off"}
)
# How long the site in "hang" mode holds a request without answering (clients time out).
HANG_SECONDS = 15.0
REST_FORMATS = ("page", "list")
API_PATH = "/api/v1/public/content-manager/news"
CONTROL_PREFIX = "/__replica__/"
# The fields of an API item, in the order REST returns them; GraphQL may select any subset.
ITEM_FIELDS = (
    "id",
    "title",
    "slug",
    "created_date",
    "short_description",
    "body",
    "projects",
    "views",
)
DEFAULT_REST_SIZE = 20
DEFAULT_GRAPHQL_SIZE = 10
MAX_PAGE_SIZE = 100
MAX_REQUEST_BODY = 1 << 20
# Astana time: gov.kz stamps every date with +05:00.
KZ_TIME = timezone(timedelta(hours=5))
EDITABLE_FIELDS = ("title", "body", "short_description")

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


# --- pages -----------------------------------------------------------------------------------

_ERROR_PAGE = """<html>
<head><title>500 Internal Server Error</title></head>
<body>
<center><h1>500 Internal Server Error</h1></center>
<hr><center>nginx</center>
</body>
</html>
"""

_NOT_FOUND_PAGE = _ERROR_PAGE.replace("500 Internal Server Error", "404 Not Found")

# Shaped after Cloudflare's managed challenge so bot-wall detection sees the usual markers.
_CAPTCHA_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head>
<title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow">
</head>
<body>
<div class="main-wrapper" role="main">
<div class="main-content">
<h1 class="zone-name-title h1">www.gov.kz</h1>
<h2 class="h2" id="challenge-running">Checking if the site connection is secure</h2>
<div id="challenge-body-text" class="core-msg spacer">www.gov.kz needs to review the security
of your connection before proceeding.</div>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>
</div>
</div>
<script>
(function () {
  window._cf_chl_opt = {cvId: "3", cZone: "www.gov.kz", cType: "managed", cRay: "8e1f0c2b9d4a51f7"};
  var script = document.createElement("script");
  script.src = "/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=8e1f0c2b9d4a51f7";
  document.head.appendChild(script);
})();
</script>
</body>
</html>
"""

_MAINTENANCE_PAGE = """<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<title>Технические работы | Technical works</title>
</head>
<body>
<h1>На портале ведутся технические работы</h1>
<p>Приносим извинения за временные неудобства. Пожалуйста, повторите попытку позже.</p>
<h1>Порталда техникалық жұмыстар жүргізілуде</h1>
<p>Уақытша қолайсыздықтар үшін кешірім сұраймыз. Кейінірек қайталап көріңіз.</p>
<h1>Technical works are underway on the portal</h1>
<p>We apologise for the temporary inconvenience. Please try again later.</p>
</body>
</html>
"""


class _Outage(NamedTuple):
    status: HTTPStatus
    page: str
    headers: Mapping[str, str]


# Modes in which every (non-control) route answers the same HTML page.
_OUTAGES: dict[str, _Outage] = {
    "error": _Outage(HTTPStatus.INTERNAL_SERVER_ERROR, _ERROR_PAGE, {}),
    "captcha": _Outage(
        HTTPStatus.OK,
        _CAPTCHA_PAGE,
        {
            "cf-mitigated": "challenge",
            "cf-ray": "8e1f0c2b9d4a51f7-FRA",
            "Cache-Control": "no-store",
        },
    ),
    "maintenance": _Outage(
        HTTPStatus.SERVICE_UNAVAILABLE, _MAINTENANCE_PAGE, {"Retry-After": "600"}
    ),
}


# --- helpers shared by REST, GraphQL and the control endpoints --------------------------------


def _parse_date(value: str) -> datetime:
    """Parse an API date; naive dates are taken as Astana time so all of them compare."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=KZ_TIME)


def _format_date(value: datetime) -> str:
    # The API's own shape: milliseconds and a colon in the offset.
    return value.astimezone(KZ_TIME).isoformat(timespec="milliseconds")


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r} (expected one of {', '.join(LANGS)})")
    return lang


def _header_lang(header: str | None) -> str:
    """Language from Accept-Language: only the first tag counts, as on gov.kz."""
    first = (header or "").split(",")[0].split(";")[0].strip().lower()
    primary = first.split("-")[0]
    return primary if primary in LANGS else DEFAULT_LANG


def _selects_entity(expr: str) -> bool:
    """Whether a `projects` filter ("eq:mfa", "contains:mfa" or bare "mfa") selects the MFA."""
    operator, colon, value = expr.partition(":")
    if not colon:
        operator, value = "eq", operator
    if operator not in ("eq", "contains"):
        raise ValueError(f"unsupported projects operator {operator!r}")
    return value == ENTITY


def _sort_descending(expr: str) -> bool:
    """`created_date:DESC` → True; the API can sort by nothing else."""
    field, _, direction = expr.partition(":")
    direction = direction.upper() or "DESC"
    if field != "created_date" or direction not in ("ASC", "DESC"):
        raise ValueError(f"unsupported sort {expr!r}")
    return direction == "DESC"


def _check_page(page: int, size: int) -> None:
    # Same limits for REST and GraphQL; both count pages from 1.
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page must be >= 1 and size between 1 and {MAX_PAGE_SIZE}")


def _slugify(title: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug or fallback


def _field(payload: Mapping[str, Any], key: str, kind: type, *, required: bool = True) -> Any:
    """One typed value from a control request; ValueError (→ 400) if missing or mistyped."""
    if key not in payload or payload[key] is None:
        if required:
            raise ValueError(f"missing field {key!r}")
        return None
    value = payload[key]
    # bool is an int subclass, but {"id": true} is a client bug, not statement 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {key!r} must be {kind.__name__}")
    return value


def _validate_text(raw: Mapping[str, Any], fallback_slug: str) -> StatementText:
    """A language version from user input: title and body required, the rest defaulted."""
    if not isinstance(raw, Mapping):
        raise ValueError("a language version must be an object with title and body")
    for key in ("title", "body"):
        _field(raw, key, str)
    for key in ("slug", "short_description"):
        _field(raw, key, str, required=False)
    return {
        "title": raw["title"],
        "slug": raw.get("slug") or _slugify(raw["title"], fallback_slug),
        "short_description": raw.get("short_description") or "",
        "body": raw["body"],
    }


# --- state -----------------------------------------------------------------------------------


@dataclass
class _Record:
    id: int
    created_date: str
    texts: dict[str, StatementText]
    views: int
    removed: bool = False

    def sort_key(self) -> tuple[datetime, int]:
        return _parse_date(self.created_date), self.id

    def item(self, lang: str) -> dict[str, Any]:
        """The API item in `lang`; the caller has checked the language exists."""
        text = self.texts[lang]
        return {
            "id": self.id,
            "title": text["title"],
            "slug": text["slug"],
            "created_date": self.created_date,
            "short_description": text["short_description"],
            "body": text["body"],
            "projects": ENTITY,
            "views": self.views,
        }


class ReplicaSite:
    """gov.kz for one ministry, served on a local port. Mutations are visible immediately."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        statements: Iterable[Statement] | None = None,
        rest_format: str = "page",
        require_tokens: bool = False,
        prerender: bool = False,
    ) -> None:
        """`prerender`: pages answer as a browser shows them once the app has run (see
        `rendered`), as if rendered on the server, instead of the app's empty shell."""
        if rest_format not in REST_FORMATS:
            raise ValueError(f"rest_format must be one of {REST_FORMATS}")
        self.host = host
        self.port = port
        self.rest_format = rest_format
        self.require_tokens = require_tokens
        self.prerender = prerender
        # Fresh per instance, so a client cannot pass by hard-coding them.
        self.api_hash = secrets.token_hex(16)
        self.api_token = secrets.token_urlsafe(24)
        self._lock = threading.RLock()
        self._mode = "ok"
        self._records: dict[int, _Record] = {}
        self._requests: list[tuple[str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        for statement in STATEMENTS if statements is None else statements:
            self._insert(statement["id"], statement["created_date"], statement["texts"])

    # -- lifecycle --

    def start(self) -> ReplicaSite:
        if self._server is not None:
            raise RuntimeError("replica already started")
        server = _Server((self.host, self.port), self)
        # Remember the port chosen for port=0 so stop()+start() simulates an outage and a
        # recovery at the same address.
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replica-site:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        # Idle keep-alive connections would otherwise keep being served after stop().
        server.close_connections()
        server.server_close()
        thread.join(timeout=5)

    def __enter__(self) -> ReplicaSite:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the port is chosen at start(); start the replica first")
        return f"http://{self.host}:{self.port}"

    # -- observation --

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path-with-query) of every request seen, control endpoints excluded."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def state(self) -> dict[str, Any]:
        """A summary for `GET /__replica__/state` and for debugging."""
        with self._lock:
            return {
                "mode": self._mode,
                "rest_format": self.rest_format,
                "require_tokens": self.require_tokens,
                "statements": [
                    {
                        "id": record.id,
                        "created_date": record.created_date,
                        "languages": sorted(record.texts),
                        "removed": record.removed,
                        "views": record.views,
                    }
                    for record in sorted(self._records.values(), key=_Record.sort_key, reverse=True)
                ],
            }

    # -- mutation --

    def edit(
        self,
        id: int,
        lang: str,
        *,
        title: str | None = None,
        body: str | None = None,
        short_description: str | None = None,
        created_date: str | None = None,
    ) -> None:
        """Change fields of one language version (or the shared date).

        Editing a language the statement lacks adds that translation, which needs at least a
        title and a body — the real site also gains translations after publication.
        """
        _check_lang(lang)
        given = {"title": title, "body": body, "short_description": short_description}
        changes = {key: value for key, value in given.items() if value is not None}
        if created_date is not None:
            _parse_date(created_date)  # reject garbage before touching state
        with self._lock:
            record = self._record(id)
            if created_date is not None:
                record.created_date = created_date
            if not changes:
                return
            if lang in record.texts:
                # The keys come from the keyword names above, all StatementText keys.
                record.texts[lang].update(changes)  # type: ignore[typeddict-item]
            else:
                record.texts[lang] = _validate_text(changes, fallback_slug=str(id))

    def replace_text(self, id: int, lang: str, old: str, new: str) -> int:
        """Replace every occurrence of `old` in the body; returns how many were replaced.

        KeyError for an unknown statement or a missing language version; ValueError for an
        unknown language code or if `old` is not in the body.
        """
        if not old:
            raise ValueError("old text must not be empty")
        with self._lock:
            text = self._text(id, lang)
            count = text["body"].count(old)
            if not count:
                raise ValueError(f"{old!r} not found in the {lang} body of statement {id}")
            text["body"] = text["body"].replace(old, new)
            return count

    def add(
        self,
        texts: Mapping[str, Mapping[str, Any]],
        created_date: str | None = None,
        id: int | None = None,
    ) -> int:
        """Publish a statement; by default it gets a fresh id and becomes the newest one."""
        with self._lock:
            new_id = max(self._records, default=1_000_000) + 1 if id is None else id
            if created_date is None:
                created_date = self._next_date()
            self._insert(new_id, created_date, texts)
            return new_id

    def remove(self, id: int) -> None:
        """Unpublish: gone from listings, the item endpoint answers 404."""
        with self._lock:
            self._record(id).removed = True

    def restore(self, id: int) -> None:
        with self._lock:
            self._record(id).removed = False

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (expected one of {', '.join(sorted(MODES))})")
        with self._lock:
            self._mode = mode

    def control(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one `POST /__replica__/<action>` request; KeyError → 404, ValueError → 400."""
        if action == "mode":
            self.set_mode(_field(payload, "mode", str))
            return {"mode": self.mode}
        if action == "add":
            texts = _field(payload, "texts", dict)
            created_date = _field(payload, "created_date", str, required=False)
            new_id = self.add(texts, created_date, _field(payload, "id", int, required=False))
            return {"id": new_id}
        if action not in ("edit", "remove", "restore"):
            raise KeyError(f"unknown control action {action!r}")
        statement_id = _field(payload, "id", int)
        if action == "remove":
            self.remove(statement_id)
        elif action == "restore":
            self.restore(statement_id)
        elif "old" in payload:
            lang, old, new = (_field(payload, key, str) for key in ("lang", "old", "new"))
            return {"id": statement_id, "replaced": self.replace_text(statement_id, lang, old, new)}
        else:
            fields = {key: _field(payload, key, str, required=False) for key in EDITABLE_FIELDS}
            self.edit(
                statement_id,
                _field(payload, "lang", str),
                created_date=_field(payload, "created_date", str, required=False),
                **fields,
            )
        return {"id": statement_id}

    # -- internals used by the handler --

    def _record(self, id: int) -> _Record:
        try:
            return self._records[id]
        except KeyError:
            raise KeyError(f"no statement with id {id}") from None

    def _text(self, id: int, lang: str) -> StatementText:
        record = self._record(id)
        if _check_lang(lang) not in record.texts:
            raise KeyError(f"statement {id} has no {lang!r} version")
        return record.texts[lang]

    def _insert(self, id: int, created_date: str, texts: Mapping[str, Mapping[str, Any]]) -> None:
        if id in self._records:
            raise ValueError(f"statement {id} already exists")
        if not texts:
            raise ValueError("a statement needs at least one language version")
        _parse_date(created_date)
        validated = {
            # _validate_text builds new dicts, so later edits never reach the caller's data.
            _check_lang(lang): _validate_text(text, fallback_slug=str(id))
            for lang, text in texts.items()
        }
        # Seeded counters differ per statement, as they would on a live site.
        self._records[id] = _Record(id, created_date, validated, views=97 + id % 900)

    def rendered_page(self, path: str) -> str:
        """A page (path and query) as a browser shows it once the app has run: what
        `fetcher = "browser"` reads and "Save page as" keeps. Views are not counted."""
        url = urlsplit(path)
        query = parse_qs(url.query)
        lang = (query.get("lang") or [DEFAULT_LANG])[0]
        lang = lang if lang in LANGS else DEFAULT_LANG
        with self._lock:
            visible = [r for r in self._records.values() if not r.removed and lang in r.texts]
            visible.sort(key=_Record.sort_key, reverse=True)
            items = [record.item(lang) for record in visible]
        shell = {"api_hash": self.api_hash, "api_token": self.api_token}
        details = re.search(r"/press/(?:news|article)/details/(\d+)", url.path)
        if details:
            item = next((i for i in items if i["id"] == int(details[1])), None)
            if item is None:
                return rendered.not_found_page(shell, lang)
            others = [other for other in items if other["id"] != item["id"]][:4]
            return rendered.statement_page(shell, item, lang, others)
        if re.search(r"/press/(?:news|article)(?:/\d+)?/?$", url.path):
            # Pages of the listing as the app pages it: /press/news/2 or ?page=2.
            number = re.search(r"/(\d+)/?$", url.path)
            page = int(number[1] if number else (query.get("page") or ["1"])[0])
            last = max(1, math.ceil(len(items) / rendered.CARDS_PER_PAGE))
            first = (page - 1) * rendered.CARDS_PER_PAGE
            shown = items[first : first + rendered.CARDS_PER_PAGE]
            return rendered.listing_page(shell, shown, lang, page, last)
        return rendered.not_found_page(shell, lang)

    def _next_date(self) -> str:
        latest = max((r.sort_key()[0] for r in self._records.values()), default=None)
        if latest is None:
            return _format_date(datetime.now(KZ_TIME).replace(microsecond=0))
        return _format_date(latest + timedelta(hours=1))

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self._requests.append((method, path))

    def _select(
        self, lang: str, *, page: int, size: int, descending: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of published statements in `lang`, plus the total; counts a view each."""
        with self._lock:
            visible = [r for r in self._records.values() if not r.removed and lang in r.texts]
            visible.sort(key=_Record.sort_key, reverse=descending)
            chosen = visible[(page - 1) * size : page * size]
            for record in chosen:
                record.views += 1
            return [record.item(lang) for record in chosen], len(visible)

    def _item(self, id: int, lang: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(id)
            if record is None or record.removed or lang not in record.texts:
                return None
            record.views += 1
            return record.item(lang)


# --- GraphQL ---------------------------------------------------------------------------------


class GraphQLError(ValueError):
    """A query the replica rejects; answered as {"errors": [...]} with status 400."""


@dataclass(frozen=True)
class NewsQuery:
    fields: tuple[str, ...]
    page: int = 1
    size: int = DEFAULT_GRAPHQL_SIZE
    descending: bool = True
    lang: str | None = None
    selected: bool = True  # False when the `projects` filter names another agency


_GQL_STRING = r'"(?:[^"\\]|\\.)*"'
_GQL_DOCUMENT = re.compile(
    rf"""
    \s*(?:query\b\s*\w*\s*(?:\([^)]*\))?\s*)?     # optional "query Name($size: Int)" header
    \{{\s*news\s*
    (?:\((?P<args>(?:[^()"]|{_GQL_STRING})*)\))?  # arguments; strings may contain parentheses
    \s*\{{(?P<fields>[^{{}}]*)\}}\s*
    \}}\s*
    """,
    re.VERBOSE,
)
_GQL_ARGUMENT = re.compile(rf"\s*(\w+)\s*:\s*({_GQL_STRING}|-?\d+|\$\w+|true|false|null)\s*,?\s*")
_GQL_NAME = re.compile(r"[_A-Za-z]\w*")
# Argument name → (expected Python type, NewsQuery attribute).
_GQL_ARGUMENTS: dict[str, tuple[type, str]] = {
    "projects": (str, "selected"),
    "_size": (int, "size"),
    "_page": (int, "page"),
    "_sort": (str, "descending"),
    "_lang": (str, "lang"),
}


def parse_news_query(query: str, variables: Mapping[str, Any] | None = None) -> NewsQuery:
    """Parse the one query shape the gov.kz front end sends: `{ news(args) { fields } }`.

    A full GraphQL parser would be a dependency; this regex parser accepts exactly that shape
    (optionally named, with `$variables`) and rejects everything else with a GraphQLError.
    """
    document = _GQL_DOCUMENT.fullmatch(query)
    if document is None:
        raise GraphQLError("Syntax error: expected `{ news(...) { fields } }`")
    fields = tuple(re.split(r"[\s,]+", document["fields"].strip()))
    if fields == ("",):
        raise GraphQLError("Field 'news' must have a selection of subfields")
    for name in fields:
        if not _GQL_NAME.fullmatch(name):
            raise GraphQLError(f"Syntax error near {name!r}")
        if name not in ITEM_FIELDS:
            raise GraphQLError(f"Cannot query field '{name}' on type 'News'")
    values: dict[str, Any] = {}
    for name, raw in _gql_arguments(document["args"] or ""):
        if name not in _GQL_ARGUMENTS:
            raise GraphQLError(f"Unknown argument '{name}' on field 'news'")
        kind, attribute = _GQL_ARGUMENTS[name]
        value = _gql_value(raw, variables or {})
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise GraphQLError(f"Argument '{name}' must be {kind.__name__}")
        values[attribute] = value
    try:
        return _news_query(fields, values)
    except ValueError as exc:
        raise GraphQLError(str(exc)) from None


def _gql_arguments(text: str) -> Iterable[tuple[str, str]]:
    position = 0
    while text[position:].strip():
        match = _GQL_ARGUMENT.match(text, position)
        if match is None:
            raise GraphQLError(f"Syntax error in arguments near {text[position:][:30]!r}")
        position = match.end()
        yield match[1], match[2]


def _gql_value(raw: str, variables: Mapping[str, Any]) -> Any:
    if raw.startswith("$"):
        if raw[1:] not in variables:
            raise GraphQLError(f"Variable '{raw}' is not defined")
        return variables[raw[1:]]
    # GraphQL string escapes, integers and true/false/null are all valid JSON.
    return json.loads(raw)


def _news_query(fields: tuple[str, ...], values: dict[str, Any]) -> NewsQuery:
    _check_page(values.get("page", 1), values.get("size", DEFAULT_GRAPHQL_SIZE))
    if "descending" in values:
        values["descending"] = _sort_descending(values["descending"])
    if "lang" in values:
        _check_lang(values["lang"])
    if "selected" in values:
        values["selected"] = _selects_entity(values["selected"])
    return NewsQuery(fields=fields, **values)


# --- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client must never keep the test process alive

    def __init__(self, address: tuple[str, int], site: ReplicaSite) -> None:
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host's FQDN — a reverse DNS lookup that can
        # stall for seconds on an offline machine. The name is never used here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: the client closed it first.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Route(NamedTuple):
    pattern: re.Pattern[str]
    method: str
    handler: Callable[[_Handler, re.Match[str], SplitResult], None]
    off_in_mode: str | None  # the mode that switches this route off (answers 404)
    is_api: bool  # API routes answer errors as JSON, pages as HTML
    guarded: bool = False  # needs the hash/token headers when require_tokens is on


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive like the real nginx front; every answer therefore carries Content-Length.
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections release their thread eventually
    server: _Server
    _body = b""

    # -- plumbing --

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: tests and the demo would drown in access logs on stderr."""

    def version_string(self) -> str:
        # The Server header is part of what bot-wall detection looks at.
        return "cloudflare" if self.site.mode == "captcha" else "nginx"

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    @property
    def site(self) -> ReplicaSite:
        return self.server.site

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)  # also writes Date and Server
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, body, JSON_TYPE, headers)

    def _send_html(self, status: int, page: str, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, page.encode("utf-8"), HTML_TYPE, headers)

    def _api_error(self, status: HTTPStatus, message: str, path: str) -> None:
        # The shape of a Spring Boot error, which is what the gov.kz backend answers.
        self._send_json(
            status,
            {
                "timestamp": formatdate(usegmt=True),
                "status": status.value,
                "error": status.phrase,
                "message": message,
                "path": path,
            },
        )

    def _read_body(self) -> bytes | None:
        """The whole request body, read even when unused so the next keep-alive request
        starts at the right byte; None if the length is unusable."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if not 0 <= length <= MAX_REQUEST_BODY:
            return None
        return self.rfile.read(length) if length else b""

    # -- routing --

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": "bad or too large Content-Length"})
            return
        self._body = body
        if url.path.startswith(CONTROL_PREFIX):
            self._control(url.path.removeprefix(CONTROL_PREFIX))
            return
        self.site._log(self.command, self.path)
        mode = self.site.mode
        if mode == "down":
            # Hang up without a byte of answer: clients see a dropped connection
            # (http.client.RemoteDisconnected, httpx.RemoteProtocolError). The request is read
            # first only so that /__replica__/mode can still bring the site back.
            self.close_connection = True
            return
        if mode == "hang":
            # Accept the request and answer nothing until well past any client's timeout.
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return
        outage = _OUTAGES.get(mode)
        if outage is not None:
            self._send_html(outage.status, outage.page, outage.headers)
            return
        for route in _ROUTES:
            match = route.pattern.fullmatch(url.path)
            if match is None:
                continue
            if route.off_in_mode == mode:
                self._api_error(HTTPStatus.NOT_FOUND, "No handler found", url.path)
            elif self.command != route.method and (self.command, route.method) != ("HEAD", "GET"):
                self._not_allowed(route)
            elif route.guarded and not self._tokens_ok():
                self._api_error(HTTPStatus.UNAUTHORIZED, "Invalid hash or token", url.path)
            else:
                route.handler(self, match, url)
            return
        self._send_html(HTTPStatus.NOT_FOUND, _NOT_FOUND_PAGE)

    def _not_allowed(self, route: _Route) -> None:
        allow = {"Allow": route.method}
        if route.is_api:
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "Method Not Allowed"}, allow)
        else:
            self._send_html(HTTPStatus.METHOD_NOT_ALLOWED, "<h1>405 Not Allowed</h1>", allow)

    # -- pages --

    def _shell(self, _match: re.Match[str], url: SplitResult) -> None:
        if self.site.prerender:
            # A single-page app answers 200 for every route; "not found" is the app's view.
            path = f"{url.path}?{url.query}" if url.query else url.path
            self._send_html(HTTPStatus.OK, self.site.rendered_page(path))
            return
        lang = (parse_qs(url.query).get("lang") or [DEFAULT_LANG])[0]
        page = rendered.shell(
            lang if lang in LANGS else DEFAULT_LANG,
            api_hash=self.site.api_hash,
            api_token=self.site.api_token,
        )
        self._send_html(HTTPStatus.OK, page)

    def _app_script(self, _match: re.Match[str], _url: SplitResult) -> None:
        script = rendered.app_script(API_PATH).encode("utf-8")
        self._send(HTTPStatus.OK, script, "application/javascript; charset=utf-8")

    # -- REST --

    def _tokens_ok(self) -> bool:
        site = self.site
        return not site.require_tokens or (
            self.headers.get("hash") == site.api_hash
            and self.headers.get("token") == site.api_token
        )

    def _rest_list(self, _match: re.Match[str], url: SplitResult) -> None:
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            page = int(params.get("page", 1))
            size = int(params.get("size", DEFAULT_REST_SIZE))
            _check_page(page, size)
            descending = _sort_descending(params.get("sort-by", "created_date:DESC"))
            # Without a projects filter the real API mixes every agency; the replica has one.
            selected = _selects_entity(params.get("projects", ENTITY))
        except ValueError as exc:
            self._api_error(HTTPStatus.BAD_REQUEST, str(exc), url.path)
            return
        lang = _header_lang(self.headers.get("Accept-Language"))
        items, total = (
            self.site._select(lang, page=page, size=size, descending=descending)
            if selected
            else ([], 0)
        )
        if self.site.rest_format == "list":
            self._send_json(HTTPStatus.OK, items)
            return
        self._send_json(
            HTTPStatus.OK,
            {
                "content": items,
                "totalElements": total,
                "totalPages": math.ceil(total / size),
                "number": page - 1,
                "size": size,
            },
        )

    def _rest_item(self, match: re.Match[str], url: SplitResult) -> None:
        lang = _header_lang(self.headers.get("Accept-Language"))
        item = self.site._item(int(match[1]), lang)
        if item is None:
            self._api_error(HTTPStatus.NOT_FOUND, "News not found", url.path)
        else:
            self._send_json(HTTPStatus.OK, item)

    # -- GraphQL --

    def _graphql(self, _match: re.Match[str], _url: SplitResult) -> None:
        try:
            request = json.loads(self._body or b"null")
            if not isinstance(request, dict) or not isinstance(request.get("query"), str):
                raise GraphQLError("Request body must be a JSON object with a 'query' string")
            variables = request.get("variables") or {}
            if not isinstance(variables, dict):
                raise GraphQLError("'variables' must be an object")
            query = parse_news_query(request["query"], variables)
        except ValueError as exc:  # GraphQLError and malformed JSON alike
            self._send_json(HTTPStatus.BAD_REQUEST, {"errors": [{"message": str(exc)}]})
            return
        items: list[dict[str, Any]] = []
        if query.selected:
            lang = query.lang or _header_lang(self.headers.get("Accept-Language"))
            items, _total = self.site._select(
                lang, page=query.page, size=query.size, descending=query.descending
            )
        news = [{name: item[name] for name in query.fields} for item in items]
        self._send_json(HTTPStatus.OK, {"data": {"news": news}})

    # -- control --

    def _control(self, action: str) -> None:
        # Loopback only: the endpoints rewrite content, and the replica may be bound widely.
        if not ipaddress.ip_address(self.client_address[0]).is_loopback:
            self._send_json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "loopback only"})
            return
        if self.command == "GET" and action == "state":
            self._send_json(HTTPStatus.OK, self.site.state())
            return
        if self.command != "POST":
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"ok": False, "error": "use POST"})
            return
        try:
            payload = json.loads(self._body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            result = self.site.control(action, payload)
        except KeyError as exc:
            message = exc.args[0] if exc.args else "not found"
            self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "error": str(message)})
        except ValueError as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc)})
        else:
            self._send_json(HTTPStatus.OK, {"ok": True, **result})


_ROUTES: tuple[_Route, ...] = (
    _Route(re.compile(rf"{API_PATH}/?"), "GET", _Handler._rest_list, "rest_off", True, True),
    _Route(re.compile(rf"{API_PATH}/(\d+)/?"), "GET", _Handler._rest_item, "rest_off", True, True),
    _Route(re.compile(r"/graphql/?"), "POST", _Handler._graphql, "graphql_off", True),
    _Route(
        re.compile(re.escape(rendered.APP_SCRIPT_PATH)), "GET", _Handler._app_script, None, False
    ),
    # The SPA serves its shell for every client-side route; the app itself decides what exists.
    _Route(re.compile(r"/|/memleket(?:/.*)?"), "GET", _Handler._shell, None, False),
)
