"""Configuration: TOML validated into typed models.

Every error names the file, the line and the field, because a journalist editing
`monitor.toml` at 2 a.m. should not have to guess which of forty watches is broken.
"""

from __future__ import annotations

import ipaddress
import operator
import os
import re
from collections.abc import Iterable
from datetime import time
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Protocol,
    Union,
    runtime_checkable,
)
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli
from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from monitor.channels import CHANNELS, ChannelSettings
from monitor.extras import missing
from monitor.settings import (
    Duration,
    Strict,
    parse_duration,
    parsed_by,
)

DEFAULT_CONFIG = Path("config/monitor.toml")


class ConfigError(Exception):
    """A configuration problem, located as precisely as we can."""

    def __init__(self, file: Path | str, line: int | None, field: str, message: str) -> None:
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


_QUIET = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """'22:00-07:00' -> (start, end) local times; the span may cross midnight."""
    match = _QUIET.match(value)
    if not match:
        raise ValueError(f"invalid quiet hours {value!r} (use e.g. '22:00-07:00')")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"quiet hours {value!r} are empty (to silence a watch, use muted = true)")
    return start, end


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Asia/Almaty')"
        ) from None


_STEP = re.compile(r"^\s*(\S+)(?:\s+until\s+(\S+))?\s*$")


def parse_schedule(steps: list[str]) -> list[tuple[float, float]]:
    """['10m until 1d', '1h until 7d', '1d'] -> [(interval, until age), ...], the last step
    with an infinite age: how often a discovered statement is checked as it ages."""
    if not steps:
        raise ValueError("a schedule needs at least one step, e.g. ['10m until 1d', '1d']")
    parsed: list[tuple[float, float]] = []
    for number, step in enumerate(steps, start=1):
        match = _STEP.match(step)
        if not match:
            raise ValueError(
                f"step {number} {step!r}: write '<interval> until <age>' or '<interval>'"
            )
        try:
            interval = parse_duration(match.group(1))
            until = parse_duration(match.group(2)) if match.group(2) else float("inf")
        except ValueError as err:
            raise ValueError(f"step {number} {step!r}: {err}") from None
        if interval < 1:
            raise ValueError(f"step {number} {step!r}: interval must be at least 1s")
        if parsed and parsed[-1][1] == float("inf"):
            raise ValueError(f"step {number} {step!r}: comes after the open-ended last step")
        if parsed and until <= parsed[-1][1]:
            raise ValueError(f"step {number} {step!r}: ages must grow from step to step")
        parsed.append((interval, until))
    if parsed[-1][1] != float("inf"):
        parsed.append((parsed[-1][0], float("inf")))
    return parsed


TimeZone = Annotated[str, parsed_by(_check_timezone)]
QuietHours = Annotated[str, parsed_by(parse_quiet_hours)]


class StoreConfig(Strict):
    path: Path = Path("snapshots")
    # PostgreSQL instead of SQLite, for several daemons sharing one archive. Keep the
    # password out of the file: PGPASSWORD or ~/.pgpass are read by the driver.
    url: str | None = Field(default=None, pattern=r"^postgresql(\+psycopg)?://")
    # Blob bytes in files under `path` or in the database. Default: the database for a
    # new archive (SQLite or PostgreSQL; "path" on PostgreSQL must be a directory every
    # daemon shares); an archive that exists keeps the place it was made with (`meta`),
    # so one made with files before the 21st session keeps its files.
    blobs: Literal["db", "path"] | None = None
    # check_run rows older than this are deleted ("90d"); versions never are. Default: keep.
    keep_checks: Duration | None = None
    # Several daemons on one PostgreSQL archive share the checks: a daemon's claim on a
    # running check lapses this long after it stops renewing it (it was killed), and
    # another daemon takes the watch over.
    lease: Duration = Field(default=30.0, ge=3.0)

    @field_validator("url")
    @classmethod
    def _driver_installed(cls, url: str | None) -> str | None:
        # psycopg is an extra: a SQLite archive needs none of it.
        problem = url and missing("postgres", "a PostgreSQL archive")
        if problem:
            raise ValueError(problem)
        return url


class FetchConfig(Strict):
    allow_private: bool = False
    # Hosts ("host" or "host:port") fetched even though they resolve to a private or
    # loopback address: an intranet site, without opening every private address.
    allow_hosts: list[str] = Field(default_factory=list)
    user_agent: str = "monitor/0.1 (+https://github.com/; statement change monitor)"
    timeout: Duration = 30.0
    connect_timeout: Duration = 10.0
    max_bytes: int = Field(default=20_000_000, gt=0)
    concurrency: int = Field(default=20, gt=0)
    per_host_concurrency: int = Field(default=2, gt=0)
    per_host_delay: Duration = 1.0
    retries: int = Field(default=2, ge=0, le=10)
    # HTTP transport (monitor/transports): "curl" (libcurl: HTTP/2 where the server offers
    # it, the least CPU per request; the default), "httpx" (HTTP/2, pure Python) or
    # "aiohttp" (HTTP/1.1; the [aiohttp] extra).
    transport: Literal["curl", "aiohttp", "httpx"] = "curl"
    # Every Nth check ignores the server's validators, for servers whose ETag lies.
    full_fetch_every: int = Field(default=12, ge=1)
    # Headless Chromium pages at once (each costs tens of MB), and where Chromium lives.
    browser_concurrency: int = Field(default=2, gt=0)
    browser_path: str | None = None
    ca_bundle: Path | None = None
    proxy: str | None = None
    # What a site sent is read (parsed, extracted, masked, diffed) in worker processes,
    # never in the daemon's event loop (monitor/isolate.py): this many (default: one per
    # CPU), each piece of work within `worker_timeout` and `worker_memory` bytes of address
    # space (0: unlimited), or the watch has a problem and its worker is replaced.
    workers: int | None = Field(default=None, gt=0)
    worker_timeout: Duration = Field(default=60.0, gt=0)
    worker_memory: int = Field(default=2_000_000_000, ge=0)

    @field_validator("transport")
    @classmethod
    def _transport_installed(cls, name: str) -> str:
        problem = name == "aiohttp" and missing("aiohttp", "transport 'aiohttp'")
        if problem:
            raise ValueError(problem)
        return name

    @property
    def worker_count(self) -> int:
        return self.workers or len(os.sched_getaffinity(0)) or 1


class AlertsConfig(Strict):
    # A change is archived at once and looked at again after this delay (past caches); it
    # alerts once it holds (0 = alert at first sight; a removal is always looked at twice).
    confirm_delay: Duration = 3.0
    # A statement that flips back to a text it had within this window (A→B→A) is archived
    # but not alerted again (0 = alert every flip).
    flipflop_window: Duration = 86400.0
    # A watch must be failing this long before the one "failing since" alert is raised.
    failing_after: Duration = 3600.0
    max_attempts: int = Field(default=8, gt=0)
    # First retry delay of a failed delivery; doubles on every further failure (max 6 h).
    retry_base: Duration = 15.0
    # Default message length budget for channels without a natural limit.
    max_length: int = Field(default=4000, gt=200)
    # Time zone of the watches' quiet hours, unless a watch names its own.
    timezone: TimeZone = "UTC"
    # Channels told about monitor itself (the watchdog found a hung check or a stalled
    # scheduler); empty: every channel.
    operator_channels: list[str] = Field(default_factory=list)


class ServerConfig(Strict):
    # Base URL of the web UI, used to build the diff links in alerts.
    public_url: str | None = None
    # Where `monitor run` serves the web UI, /healthz and /metrics (host:port).
    listen: str = Field(default="127.0.0.1:8080", pattern=r"^\[?[\w.:-]*\]?:\d{1,5}$")
    # Anyone may read the web UI (watches, diffs, search, feeds) without logging in; logging
    # in is still needed to annotate or edit. Off by default: an archive may hold pages
    # that should not be republished.
    public: bool = False
    # Proxies (addresses or CIDRs) whose X-Forwarded-For and X-Forwarded-Proto are believed;
    # from any other peer those headers are ignored (they would let a client pick the
    # address its failed logins are counted against).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Requests a minute to /api/v1 per token (and per address presenting none); over it: 429.
    api_rate: int = Field(default=600, ge=1)
    # Processes `monitor serve` answers with (default: one; see monitor/web/serve.py).
    workers: int | None = Field(default=None, gt=0)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted proxy {value!r} is not an IP address or network (CIDR)"
                ) from None
        return values

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


class ArchiveConfig(Strict):
    # An RFC 3161 Time-Stamping Authority: new versions are timestamped in batches, one
    # request per batch (monitor/stamper.py); a TSA that is down never holds up archiving.
    tsa_url: str | None = Field(default=None, pattern=r"^https?://")
    # The CA certificate(s) (PEM) a token's signer must chain to; without it a token's
    # signature is still checked, but not who signed it.
    tsa_ca_file: Path | None = None
    # How often the daemon sends a batch (the versions archived since the last one).
    tsa_interval: Duration = Field(default=60.0, ge=1.0)
    tsa_timeout: Duration = 30.0
    # Save Page Now (watches with save_to = ["wayback"], monitor/wayback.py): the API's
    # address (a stand-in's in tests), how often the queue is looked at, the time one
    # request may take, how many submissions a version gets, and how old a version may be
    # when first queued (SPN captures the page as it is now, not as we saw it). The keys
    # come from MONITOR_WAYBACK_ACCESS_KEY / MONITOR_WAYBACK_SECRET_KEY or from
    # `wayback_keys_file` ("access:secret"), never from this file.
    wayback_endpoint: str = Field(default="https://web.archive.org", pattern=r"^https?://[^\s/]+")
    wayback_interval: Duration = Field(default=10.0, ge=0.1)
    wayback_timeout: Duration = Field(default=30.0, gt=0)
    wayback_attempts: int = Field(default=8, ge=1)
    # The pause after a failed try, doubled at each (up to 6 h).
    wayback_retry: Duration = Field(default=60.0, gt=0)
    wayback_stale_retries: int = Field(default=3, ge=0)
    wayback_max_age: Duration = 86400.0
    wayback_keys_file: Path | None = None


# A channel's settings are its own (each module in monitor/channels/ declares them, see
# `ChannelSettings`); `[channels.NAME]` is read as the one its `type` names.
if TYPE_CHECKING:
    ChannelConfig = ChannelSettings
else:
    ChannelConfig = Annotated[
        Union[tuple(kind.settings for kind in CHANNELS)],  # noqa: UP007 (built at run time)
        Field(discriminator="type"),
    ]
CHANNEL_TYPES = tuple(kind.type for kind in CHANNELS)


def channel_settings(data: dict[str, Any]) -> ChannelSettings:
    """`[channels.NAME]` as a table (a dict) read into the settings of its `type`."""
    return _CHANNEL_ADAPTER.validate_python(data)


_CHANNEL_ADAPTER: TypeAdapter[ChannelSettings] = TypeAdapter(ChannelConfig)


# Where `save_to` may send copies of new versions.
SAVE_TARGETS = ("wayback",)

WATCH_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# A URL whose host is a plain name or IPv4 address, with at most a port of digits.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::(?P<port>\d{1,5}))?(?:[/?#]\S*)?")


class WatchConfig(Strict):
    id: str = Field(pattern=WATCH_ID)
    url: str = Field(pattern=r"^https?://[^\s/]+")
    name: str | None = None
    interval: Duration = 900.0
    profile: str | None = None
    language: str | None = None
    # Regular expressions whose matches are masked before comparing versions.
    ignore: list[str] = Field(default_factory=list)
    # CSS selectors of page parts to drop before extraction (banners, widgets, counters).
    ignore_selectors: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    # Minimum significance score (0-1) for an edit to be alerted.
    threshold: float = Field(default=0.0, ge=0.0, le=1.0)
    # Profile-specific settings (e.g. page size of a listing).
    options: dict[str, str | int | bool] = Field(default_factory=dict)
    # Obey robots.txt (default). Turning it off for one watch is logged at every start.
    robots: bool = True
    # Alerts raised in these local hours ("22:00-07:00") wait in the outbox until they end.
    quiet_hours: QuietHours | None = None
    # Time zone of quiet_hours (IANA name); default: [alerts] timezone.
    timezone: TimeZone | None = None
    # Alerts within this window after the first one go out as one message (0: each at once).
    digest: Duration = 0.0
    # Alerts are recorded (history, feed, `monitor alerts`) but not sent.
    muted: bool = False
    # Also alert an edit that did not hold: seen once, gone again by the confirming look
    # (it is archived, marked transient, either way).
    alert_transient: bool = False

    # "browser": render with headless Chromium (pages that need JavaScript, JS challenges).
    fetcher: Literal["http", "browser"] = "http"

    # A full-page screenshot of each new version (headless Chromium: the browser extra);
    # with alert_visual, a look at every check too, alerting when the outlined changed
    # regions cover at least visual_threshold of the page (for pages that are a picture).
    screenshot: bool = False
    alert_visual: bool = False
    visual_threshold: float = Field(default=0.02, gt=0.0, le=1.0)

    # Where each new version is also copied by a third party: "wayback" submits it to the
    # Internet Archive's Save Page Now ([archive] wayback_*, monitor/wayback.py).
    save_to: list[str] = Field(default_factory=list)

    # The documents a statement links to (PDF, Word, OpenDocument, RTF, Excel) are fetched
    # and read with it: a replaced file is part of the statement's change.
    attachments: bool = True
    # Tesseract languages (e.g. ["rus", "kaz", "eng"]) a PDF page without a text layer is
    # read with; empty: scanned pages are not read.
    ocr: list[Annotated[str, Field(pattern=r"^[a-z]{3}(?:_[a-z]+)?$")]] = Field(
        default_factory=list
    )

    # A listing whose every statement becomes a watch of its own (found → "published"),
    # checked often while new and less often as it ages; the listing keeps `interval`.
    discover: bool = False
    discover_schedule: Annotated[list[str], parsed_by(parse_schedule)] = Field(
        default_factory=lambda: ["10m until 1d", "1h until 7d", "6h until 30d", "1d"]
    )

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: str) -> str:
        # What the fetcher would stumble on later: a port out of range, no host name.
        plain = _PLAIN_URL.fullmatch(url)
        if plain and (plain["port"] is None or int(plain["port"]) <= 65535):
            return url  # what urlsplit accepts, told 5x faster (100,000 watches' start)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises on a port that is not 0-65535)
        except ValueError as err:
            raise ValueError(f"not a usable URL: {err}") from None
        if not parts.hostname:
            raise ValueError("not a usable URL: no host name")
        return url

    @field_validator("ignore")
    @classmethod
    def _regexes_compile(cls, patterns: list[str]) -> list[str]:
        from monitor.userregex import UserRegexError, check_user_regex

        for pattern in patterns:
            try:
                check_user_regex(pattern)  # the guarded form the daemon will run
            except UserRegexError as err:
                raise ValueError(f"ignore pattern {err}") from None
        return patterns

    @field_validator("ignore_selectors")
    @classmethod
    def _selectors_compile(cls, selectors: list[str]) -> list[str]:
        import soupsieve

        for selector in selectors:
            try:
                soupsieve.compile(selector)
            except soupsieve.SelectorSyntaxError as err:
                first_line = str(err).splitlines()[0]
                raise ValueError(
                    f"ignore selector {selector!r} is not valid CSS: {first_line}"
                ) from err
        return selectors

    @field_validator("save_to")
    @classmethod
    def _known_targets(cls, targets: list[str]) -> list[str]:
        for target in targets:
            if target not in SAVE_TARGETS:
                known = ", ".join(SAVE_TARGETS)
                raise ValueError(f"unknown target {target!r} (known: {known})")
        return list(dict.fromkeys(targets))

    @field_validator("screenshot")
    @classmethod
    def _browser_installed(cls, wanted: bool) -> bool:
        problem = wanted and missing("browser", "screenshot = true")
        if problem:
            raise ValueError(problem)
        return wanted

    @field_validator("alert_visual")
    @classmethod
    def _needs_screenshots(cls, wanted: bool, info: ValidationInfo) -> bool:
        if wanted and not info.data.get("screenshot"):
            raise ValueError("alert_visual needs screenshot = true")
        return wanted

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, seconds: float) -> float:
        if seconds < 1:
            raise ValueError("interval must be at least 1s")
        return seconds

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def model_post_init(self, context: Any, /) -> None:
        _share_values(self)


# Values most watches have in common (an empty list, "generic", 3600.0, the set of keys a
# `[[watch]]` table gives), one object each instead of one per watch: at 100,000 watches
# a copy per watch was 70 MiB of the daemon's 360. The models are frozen, and nothing
# changes a watch's lists or dicts in place.
_SHARED: dict[Any, Any] = {}
_SHARED_MAX = 10_000
_OWN_VALUES = frozenset({"id", "url", "name"})  # one per watch, nothing to share


def _share_values(watch: BaseModel) -> None:
    values = watch.__dict__
    for name, value in values.items():
        if name in _OWN_VALUES or value is None or value is True or value is False:
            continue
        if isinstance(value, list):
            if len(value) > 8 or not all(isinstance(v, str) for v in value):
                continue
            key: Any = (name, list, *value)
        elif isinstance(value, dict):
            if len(value) > 8:
                continue
            key = (name, dict, *value.items())
        elif isinstance(value, str | float | int):
            key = (name, type(value), value)
        else:
            continue
        values[name] = _shared(key, value)
    fields = watch.__pydantic_fields_set__
    object.__setattr__(watch, "__pydantic_fields_set__", _shared(frozenset(fields), fields))


def _shared(key: Any, value: Any) -> Any:
    try:
        found = _SHARED.get(key)
    except TypeError:  # an unhashable option value
        return value
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[key] = value
    return value


class MonitorConfig(Strict):
    store: StoreConfig = StoreConfig()
    fetch: FetchConfig = FetchConfig()
    alerts: AlertsConfig = AlertsConfig()
    server: ServerConfig = ServerConfig()
    archive: ArchiveConfig = ArchiveConfig()
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    watch: list[WatchConfig] = Field(default_factory=list)
    # Where the config came from; relative paths inside it resolve against the working directory.
    source: Path | None = Field(default=None, exclude=True)

    def get_watch(self, watch_id: str) -> WatchConfig:
        for watch in self.watch:
            if watch.id == watch_id:
                return watch
        known = ", ".join(w.id for w in self.watch) or "none"
        raise KeyError(f"no watch {watch_id!r} in {self.source} (known: {known})")


def config_path(cli_value: str | Path | None) -> Path:
    """--config wins, then $MONITOR_CONFIG, then the shipped default."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("MONITOR_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def load_config(path: str | Path, known_profiles: Iterable[str] | None = None) -> MonitorConfig:
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, None, "", "file not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, None, "", f"not UTF-8 text ({err.reason})") from None
    return parse_config(source, path, known_profiles)


def parse_config(
    source: str, path: str | Path = "<config>", known_profiles: Iterable[str] | None = None
) -> MonitorConfig:
    path = Path(path)
    try:
        raw, rests = _read_toml(source)
    except tomli.TOMLDecodeError as err:
        match = re.search(r"\(at line (\d+), column \d+\)", str(err))
        line = int(match.group(1)) if match else None
        raise ConfigError(path, line, "", f"TOML syntax error: {err}") from None
    try:
        config = _validate(raw, rests, path)
    except ValidationError as err:
        first = err.errors()[0]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key (a typo? see README, Configuration)"
        loc, message = _channel_error(first, _error_loc(first["loc"]), message)
        message = message.removeprefix("Value error, ")
        raise ConfigError(path, locate(source, loc), _field_name(loc), message) from None
    _check_references(config, source, path, known_profiles)
    return config


# A `[[watch]]` header alone on its line: where a file of many watches is cut in pieces.
_WATCH_HEADER = "\n[[watch]]\n"
_FIRST_HEADER = _WATCH_HEADER[1:]
# The start of a `[[watch]]` table read without the TOML parser: an id and a plain URL, as
# `_id_and_url_valid` finds them valid, each a basic string without escapes, on the
# table's first two lines; what follows is the table's rest.
_PLAIN_START = re.compile(
    r'id[ \t]*=[ \t]*"([A-Za-z0-9][A-Za-z0-9._-]{0,63})"[ \t]*\n'
    r'url[ \t]*=[ \t]*"(https?://[A-Za-z0-9][A-Za-z0-9.-]*'
    r"(?::(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[0-5]\d{4}|\d{1,4}))?"  # 0-65535
    r'(?:[/?#][^\s"\\\x00-\x1f\x7f]*)?)"[ \t]*(?:\n|\Z)'
)
# A line of a table's rest that opens another table (or is a nested array: not told apart).
_TABLE_LINE = re.compile(r"^[ \t]*\[", re.M)


def _read_toml(source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The TOML document `source` as `tomli.loads` reads it, but for its plain `[[watch]]`
    tables, which come as (id, url, rest): the text of a table after its id and url (the
    tables of a large file differ in little else), read by the parser once for all the
    tables that have it, into the dict given for it (shared: never changed). A file of
    100,000 watches is read in a fifth of the parser's time (1.1 s of CPU).

    The file is cut at each `[[watch]]` header alone on its line: the text before the
    first, then one piece per table (with what follows it up to the next such header).
    A piece that starts `id = "…"` and `url = "…"` (`_PLAIN_START`) and whose rest opens
    no other table is plain; the parser reads any other piece alone. Each piece begins a
    table of its own wherever it is in the file, so this reads what the parser reads, but
    where pieces could meet: a multi-line string (which may hold such a line), or a key set
    in two pieces (a table split around the watches, or a conflict). The parser reads those
    files whole, and any file a piece of which it refuses, to tell the error and its line."""
    pieces = source.split(_WATCH_HEADER)
    if len(pieces) < 3 or '"""' in source or "'''" in source:
        return tomli.loads(source), {}
    try:
        return _read_pieces(pieces)
    except (tomli.TOMLDecodeError, _Whole):
        return tomli.loads(source), {}


class _Whole(Exception):
    """A file to be read whole (see `_read_toml`)."""


def _read_pieces(pieces: list[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The file cut at `_WATCH_HEADER`, read piece by piece (see `_read_toml`)."""
    head = pieces[0]
    if head.startswith(_FIRST_HEADER):  # the file starts with a table
        pieces[0] = head[len(_FIRST_HEADER) :]
        head = ""
    else:
        del pieces[0]
    raw = tomli.loads(head)
    if "watch" in raw:  # a [[watch]] header not alone on its line, or a `watch` key
        raise _Whole
    tables: list[Any] = []
    rests: dict[str, dict[str, Any] | None] = {}  # a rest's text: its keys, or None
    plain, parse = _PLAIN_START.match, tomli.loads
    unknown: dict[str, Any] = {}
    for piece in pieces:
        found = plain(piece)
        if found is not None:
            rest = piece[found.end() :].rstrip(" \t\n")  # the last table's too
            keys = rests.get(rest, unknown)
            if keys is unknown:
                keys = rests[rest] = _keys_of(rest)
            if keys is not None:
                tables.append((*found.groups(), rest))
                continue
        part = parse("[[watch]]\n" + piece)
        tables += part.pop("watch")
        for key, value in part.items():  # a table after the watch's (`[channels.x]`)
            if key in raw:
                raise _Whole
            raw[key] = value
    raw["watch"] = tables
    return raw, {rest: keys for rest, keys in rests.items() if keys is not None}


def _keys_of(rest: str) -> dict[str, Any] | None:
    """The keys of a table's rest (after its id and url); None if it is not read apart: it
    opens another table, sets the id or url again, or is no TOML (the parser says where)."""
    if _TABLE_LINE.search(rest):
        return None
    try:
        keys = tomli.loads(rest)
    except tomli.TOMLDecodeError:
        return None
    return None if "id" in keys or "url" in keys else keys


def _validate(raw: dict[str, Any], rests: dict[str, dict[str, Any]], path: Path) -> MonitorConfig:
    """The configuration validated; the `[[watch]]` tables one at a time, each table
    dropped once it is a model, so that 100,000 tables and their models are never held
    together (the daemon's peak memory). `rests`: the plain tables' rests (`_read_toml`)."""
    tables = raw.get("watch")
    if not isinstance(tables, list) or not (
        rests or all(isinstance(table, dict) for table in tables)
    ):
        return MonitorConfig.model_validate({**raw, "source": path})
    raw["watch"] = []
    config = MonitorConfig.model_validate({**raw, "source": path})
    watches = []
    # Tables alike but for their id and url (most of a large file) are validated once:
    # the others are copies of the first with their own id and url, checked as the
    # model checks them. A table that fails that is validated in full, for its error.
    alike: dict[Any, tuple[WatchConfig, dict[str, Any]]] = {}
    for index, table in enumerate(tables):
        tables[index] = None
        if type(table) is tuple:  # (id, url, rest), both valid (`_PLAIN_START`)
            watch_id, url, shape = table
            known = alike.get(shape)
            if known is not None:
                watches.append(_copy_of(*known, watch_id, url))
                continue
            table = {"id": watch_id, "url": url, **rests[shape]}
        else:
            shape = _shape(table)
            known = alike.get(shape) if shape is not None else None
            if known is not None and _id_and_url_valid(table):
                watches.append(_copy_of(*known, table["id"], table["url"]))
                continue
        try:
            watch = WatchConfig.model_validate(table)
        except ValidationError as err:
            raise ValidationError.from_exception_data(
                err.title,
                [
                    {**e, "loc": ("watch", index, *e["loc"])}  # type: ignore[typeddict-item]
                    for e in err.errors()
                ],
            ) from None
        if shape is not None and shape not in alike:
            alike[shape] = (watch, _template(watch))
        watches.append(watch)
    # `watch` counts as set, as it does when the tables are validated with the rest.
    return config.model_copy(update={"watch": watches})


# As pydantic (Rust's regex) reads the pattern: its `$` is the end of the text, where
# Python's also takes a final newline before it.
_WATCH_ID = re.compile(WATCH_ID.removesuffix("$") + r"\Z")
_WATCH_URL = re.compile(WatchConfig.model_fields["url"].metadata[0].pattern)


def _shape(table: dict[str, Any]) -> Any:
    """A `[[watch]]` table without its id and url, hashable; None when it cannot be."""
    if not isinstance(table.get("id"), str) or not isinstance(table.get("url"), str):
        return None
    rest = table.copy()
    del rest["id"], rest["url"]
    shape = tuple(rest.items())
    try:
        hash(shape)
        return shape
    except TypeError:  # a list (made a tuple here), an options table: see below
        pass
    shape = tuple((key, tuple(v) if isinstance(v, list) else v) for key, v in shape)
    try:
        hash(shape)
    except TypeError:  # an options table, a list of lists: validated in full
        return None
    return shape


def _copy_of(watch: WatchConfig, template: dict[str, Any], watch_id: str, url: str) -> WatchConfig:
    """`watch` with another id and url, its other values shared (they are frozen), made
    from `template` (`_template`, of `watch`): a copy of a dict whose keys are shared by
    every copy (CPython's split tables) is 290 bytes, where a watch's own is 830 (55 MiB
    of a daemon of 100,000 watches), and it is made in a fifth of the time."""
    values = template.copy()
    values["id"], values["url"] = watch_id, url
    copy = _new(WatchConfig)
    _set_dict(copy, values)
    _set_fields_set(copy, watch.__pydantic_fields_set__)
    _set_extra(copy, None)
    _set_private(copy, None)
    return copy


# BaseModel's slots, set as `object.__setattr__` sets them, without its look-up (a third of
# a copy's time).
_new = WatchConfig.__new__
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[f"__{name}__"].__set__
    for name in ("dict", "pydantic_fields_set", "pydantic_extra", "pydantic_private")
)


def _template(watch: WatchConfig) -> dict[str, Any]:
    """`watch`'s values in a dict with shared keys: set one by one, in the order of the
    fields, on an instance (what `_copy_of` copies)."""
    instance = WatchConfig.__new__(WatchConfig)
    for name, value in watch.__dict__.items():
        _set(instance, name, value)
    return instance.__dict__


_set = object.__setattr__


def _id_and_url_valid(table: dict[str, Any]) -> bool:
    """The table's id and url pass what WatchConfig checks them for."""
    if not _WATCH_ID.match(table["id"]):
        return False
    url = table["url"]
    plain = _PLAIN_URL.fullmatch(url)  # a plain URL passes the url's pattern too
    if plain and (plain["port"] is None or int(plain["port"]) <= 65535):
        return True
    if not _WATCH_URL.search(url):
        return False
    try:
        WatchConfig._url_parses(url)
    except ValueError:
        return False
    return True


def _error_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A validation error's location as the file has it: without pydantic's validator
    steps, and without the channel type a `[channels.NAME]` table was read as."""
    loc = tuple(p for p in loc if p not in ("function-after", "function-before"))
    if len(loc) > 2 and loc[0] == "channels" and loc[2] in CHANNEL_TYPES:
        loc = loc[:2] + loc[3:]
    return loc


def _channel_error(error: Any, loc: tuple[Any, ...], message: str) -> tuple[tuple[Any, ...], str]:
    """A channel table's missing or unknown `type`, told as a field of its own."""
    if error["type"] == "union_tag_not_found":
        return (*loc, "type"), "Field required"
    if error["type"] == "union_tag_invalid":
        known = [repr(name) for name in CHANNEL_TYPES]
        return (*loc, "type"), f"Input should be {', '.join(known[:-1])} or {known[-1]}"
    if error["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "channels":
        key = loc[2]
        kinds = [k.type for k in CHANNELS if key in _setting_names(k.settings)]
        if kinds:
            return (
                loc,
                f"not a setting of this channel's type ({key!r} is one of {', '.join(kinds)})",
            )
    return loc, message


def _setting_names(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@runtime_checkable
class ProfileOptions(Protocol):
    """What the config reader asks of the profiles (`monitor.sites.ProfileCatalog`), given as
    `known_profiles`: the options model of the profile a watch gets. Passed in, not imported,
    so the config stays below the profiles."""

    def options_model(self, name: str | None, url: str) -> type[BaseModel]: ...


def _check_references(
    config: MonitorConfig, source: str, path: Path, known_profiles: Iterable[str] | None
) -> None:
    def refuse(loc: tuple[Any, ...], message: str) -> None:
        raise ConfigError(path, locate(source, loc), _field_name(loc), message)

    def channels_exist(names: list[str], loc: tuple[Any, ...]) -> None:
        for name in names:
            if name not in config.channels:
                known = ", ".join(sorted(config.channels)) or "none defined"
                refuse(loc, f"unknown channel {name!r} (known: {known})")

    channels_exist(config.alerts.operator_channels, ("alerts", "operator_channels"))
    watches = config.watch
    duplicate = _first_duplicate([watch.id for watch in watches])
    profiles = set(known_profiles) if known_profiles is not None else None
    # Asked once: a runtime-checkable protocol's isinstance walks its attributes, 2.7 s of
    # a start with 100,000 watches when it was asked per watch.
    catalog = known_profiles if isinstance(known_profiles, ProfileOptions) else None
    options = _OptionsCheck(catalog) if catalog is not None else None
    passed: tuple[Any, ...] = ()  # the channels, profile and options of a watch that passed
    for index, watch in enumerate(watches[:duplicate]):
        values = watch.__dict__
        looked_at = values["channels"], values["profile"], values["options"]
        if passed and all(map(operator.is_, looked_at, passed)):
            continue  # alike watches share them (`_copy_of`); a named profile's options
        if watch.channels:
            channels_exist(watch.channels, ("watch", index, "channels"))
        if profiles is not None and watch.profile and watch.profile not in profiles:
            known = ", ".join(sorted(profiles))
            refuse(
                ("watch", index, "profile"), f"unknown profile {watch.profile!r} (known: {known})"
            )
        if options is not None:
            problem = options.problem(watch)
            if problem is not None:
                refuse(("watch", index, "options", *problem[0]), problem[1])
        # Without a profile, the options are those of the profile its URL gets.
        passed = looked_at if watch.profile else ()
    if duplicate < len(watches):
        refuse(("watch", duplicate, "id"), "duplicate watch id")


def _first_duplicate(ids: list[str]) -> int:
    """The index of the first id given before, or the number of ids if none is."""
    if len(set(ids)) == len(ids):
        return len(ids)
    seen: set[str] = set()
    for index, watch_id in enumerate(ids):
        if watch_id in seen:
            return index
        seen.add(watch_id)
    return len(ids)


class _OptionsCheck:
    """Whether a watch's options are those its profile takes. Watches of one profile with
    the same options are checked once (a file of 100,000 watches has a handful of kinds);
    a named profile's model is found once."""

    def __init__(self, catalog: ProfileOptions) -> None:
        self.catalog = catalog
        self.models: dict[str, type[BaseModel]] = {}
        self.valid: set[Any] = set()
        self.last_valid: tuple[Any, Any] = (None, None)  # a model and options found valid

    def _model(self, watch: WatchConfig) -> type[BaseModel]:
        model = self.models.get(watch.profile) if watch.profile else None
        if model is None:
            model = self.catalog.options_model(watch.profile, watch.url)
            if watch.profile:
                self.models[watch.profile] = model
        return model

    def problem(self, watch: WatchConfig) -> tuple[tuple[Any, ...], str] | None:
        """None, or where in the options (a location) and what is wrong."""
        model = self._model(watch)
        if model is self.last_valid[0] and watch.options is self.last_valid[1]:
            return None  # the options of the watch before (alike tables share them)
        alike: tuple[Any, ...] | None = (model, tuple(watch.options.items()))
        try:
            if alike in self.valid:
                return None
        except TypeError:  # an unhashable option value: checked on its own
            alike = None
        try:
            model.model_validate(watch.options)
        except ValidationError as err:
            first = err.errors()[0]
            message = first["msg"]
            if first["type"] == "extra_forbidden":
                taken = ", ".join(sorted(_setting_names(model))) or "none"
                message = f"not an option of this watch's profile (it takes: {taken})"
            return tuple(first["loc"]), message
        if alike is not None:
            self.valid.add(alike)
        self.last_valid = (model, watch.options)
        return None


def _field_name(loc: tuple[Any, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("?)([A-Za-z0-9_.-]+)\1\s*=""")


def locate(source: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number for a validation location such as ('watch', 2, 'interval').

    The TOML parser does not keep positions, so we walk the table headers ourselves: the n-th
    `[[watch]]` header opens watch[n], `[channels.x]` opens channels.x, and the key line
    inside that table is the answer. Falls back to the table header line.
    """
    lines = source.splitlines()
    table_path, key = _split_loc(loc)
    array_counts: dict[str, int] = {}
    current: tuple[Any, ...] = ()
    header_line: int | None = None
    own_table_line: int | None = None  # when loc names a table itself, e.g. ('channels', 'x')
    for number, line in enumerate(lines, start=1):
        header = _HEADER.match(line)
        if header:
            name = tuple(part.strip().strip('"') for part in header.group(2).split("."))
            if header.group(1) == "[[":
                index = array_counts.get(".".join(name), 0)
                array_counts[".".join(name)] = index + 1
                current = (*name, index)
            else:
                current = name
            if current == table_path and header_line is None:
                header_line = number
            if current == tuple(loc) and own_table_line is None:
                own_table_line = number
            continue
        if current == table_path and key is not None:
            found = _KEY.match(line)
            if found and found.group(2) == key:
                return number
    found_line = own_table_line or header_line
    if found_line is None and len(loc) > 1:
        # A key inside an inline table (`options = { size = 0 }`): the line of the table's key.
        return locate(source, loc[:-1])
    return found_line


def _split_loc(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], str | None]:
    # The table path is everything up to the last string key that is a field of that table.
    if not loc:
        return (), None
    if len(loc) == 1:
        return (), str(loc[0])
    *table, key = loc
    if isinstance(key, int):  # e.g. ('watch', 0, 'channels', 1): point at the list's key
        return _split_loc(tuple(table))
    return tuple(table), str(key)
