"""Command line: `monitor run | check | history | show | diff | compare | extract | export | verify
| demo | …`.

Exit codes scripts can trust: 0 success, 1 a check or verification found a problem,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import progress
from monitor.collector import collector_paused
from monitor.sites import profile_catalog, profile_names
from monitor.store.records import FIRST_SEEN, FurnitureRow, StoreError, VersionWithDocumentRow

# The configuration's models (pydantic, the channels' settings) and the store (SQLAlchemy)
# are imported by `_config`, `_store` and `_in_force`, which every command but `--help`
# calls first: imported here, they were most of the CPU of `monitor --help` (0.6 of 0.9 s).
if TYPE_CHECKING:
    from monitor.config import MonitorConfig
    from monitor.export import ExportCount
    from monitor.store import Store
    from monitor.watches import Watches

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (journald, Loki, ELK)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from monitor.config import ConfigError  # after the arguments: see the imports above

    handler = logging.StreamHandler(sys.stderr)
    if getattr(args, "log_format", "text") == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    # httpx logs every request at INFO; that is our job, at our level.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as err:
        print(f"monitor: configuration error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, KeyError) as err:
        message = err.args[0] if err.args else str(err)
        print(f"monitor: {message}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as err:  # damage, a missing blob, a database that cannot be opened
        print(f"monitor: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `monitor history … | head`
        sys.stderr.close()
        return EXIT_OK


def _common(suppress: bool) -> argparse.ArgumentParser:
    # The options work before and after the subcommand; the subcommand's copy must not
    # overwrite a value given before it with its default, hence SUPPRESS there.
    default: dict[str, object] = {"default": argparse.SUPPRESS} if suppress else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="configuration file (default: $MONITOR_CONFIG or config/monitor.toml)",
        **default,  # type: ignore[arg-type]
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging", **default)  # type: ignore[arg-type]
    common.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="log lines as text (default) or one JSON object per line",
        **({"default": argparse.SUPPRESS} if suppress else {"default": "text"}),  # type: ignore[arg-type]
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch government statement pages; alert on new, edited, removed statements.",
        parents=[_common(suppress=False)],
    )
    common = _common(suppress=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=[common], description=help)
        p.set_defaults(handler=handler)
        return p

    p = command("run", cmd_run, "run the daemon: check every watch on its schedule")
    p.add_argument(
        "--no-web", action="store_true", help="do not serve the web UI, /healthz and /metrics"
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="override [server] listen")
    p = command("check", cmd_check, "check watches now, once, and deliver alerts")
    p.add_argument("watch", nargs="?", help="watch id (default: all)")
    p.add_argument("--once", action="store_true", help="check once and exit (the default)")
    p = command("history", cmd_history, "list the statements and versions of a watch")
    p.add_argument("watch")
    p.add_argument("--key", help="only this statement (e.g. en/12345)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = command("show", cmd_show, "print one stored version")
    p.add_argument("watch")
    p.add_argument("version", type=int, help="version number: 1, 2, 3 … (from history)")
    p.add_argument("--key", help="the statement (when the watch has several)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--raw", action="store_true", help="the raw response body, as received")
    group.add_argument("--text", action="store_true", help="the extracted text (default)")
    p = command("diff", cmd_diff, "show what changed between two stored versions")
    p.add_argument("watch")
    p.add_argument("a", nargs="?", type=int, help="older version number (default: before B)")
    p.add_argument("b", nargs="?", type=int, help="newer version number (default: latest edit)")
    p.add_argument("--key", help="the statement (when the watch has several)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = command("compare", cmd_compare, "compare two saved pages and say if it would alert")
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--url", default="https://example.org/", help="URL the pages came from")
    p.add_argument("--profile", help=f"site profile ({', '.join(profile_names())})")
    p.add_argument("--ignore", action="append", default=[], help="regex to mask (repeatable)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = command("extract", cmd_extract, "what a profile reads from saved pages (.gz ok)")
    from monitor.inspect import add_arguments as extract_arguments

    extract_arguments(p)
    p = command("export", cmd_export, "export stored versions as WARC 1.1 or JSON lines")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--warc", type=Path, metavar="FILE", help="WARC 1.1 file (.gz: gzipped)")
    what.add_argument("--wacz", type=Path, metavar="FILE", help="WACZ 1.1 package (WARC inside)")
    what.add_argument("--format", choices=["jsonl"], help="one JSON object per version")
    p.add_argument("--output", type=Path, help="file for --format (default: standard output)")
    p.add_argument("--watch", help="only this watch (default: all)")
    p.add_argument("--since", help="only versions seen since: 2024-05-01, 2024-05-01T10:00Z, 7d")
    p.add_argument(
        "--include-secrets",
        action="store_true",
        help="keep URL credentials and the Authorization, Cookie and hash/token headers "
        "monitor sent (default: redacted)",
    )
    p = command("verify", cmd_verify, "re-hash every stored blob and check references")
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove orphaned blobs only (bytes, in files or the database, that no blob row names)",
    )
    p.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="check an export (JSON lines, WARC or WACZ) on its own: hashes and hash chains",
    )
    p.add_argument(
        "--timestamps",
        action="store_true",
        help="also check the trusted timestamps (RFC 3161): each token, and what it covers",
    )
    p.add_argument(
        "--tsa-ca-file",
        type=Path,
        metavar="PEM",
        help="CA the tokens' signer must chain to (default: [archive] tsa_ca_file)",
    )
    p = command("demo", cmd_demo, "offline demo: replica gov.kz, a real edit, the alert")
    p.add_argument("--timeout", type=float, default=60.0)
    p = command("alerts", cmd_alerts, "the alert outbox: list, re-send dead letters, test")
    p.add_argument("--failed", action="store_true", help="only dead letters (delivery gave up)")
    p.add_argument("--limit", type=int, default=50, help="newest N deliveries (default 50)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    actions = p.add_subparsers(dest="action", metavar="{resend,test}")
    q = actions.add_parser("resend", parents=[common], help="send a dead letter again, now")
    q.add_argument("id", type=int, help="delivery id (from `monitor alerts --failed`)")
    q.add_argument("--queue", action="store_true", help="re-queue it for the daemon instead")
    q.set_defaults(handler=cmd_alerts_resend)
    q = actions.add_parser("test", parents=[common], help="send a sample alert to a channel")
    q.add_argument("channel", help="channel name from the config")
    q.set_defaults(handler=cmd_alerts_test)
    p = command("serve", cmd_serve, "serve the review web UI on the archive (no checks)")
    p.add_argument("--listen", metavar="HOST:PORT", help="override [server] listen")
    p.add_argument(
        "--workers", type=int, metavar="N", help="serving processes (override [server] workers)"
    )
    p = command("user", cmd_user_list, "web UI users: list them, or add one")
    actions = p.add_subparsers(dest="action", metavar="{add,list}")
    q = actions.add_parser(
        "add",
        parents=[common],
        help="add a user; the password comes from standard input "
        "or $MONITOR_PASSWORD, never from the command line",
    )
    q.add_argument("name")
    q.add_argument("--role", choices=["viewer", "editor", "admin"], default="viewer")
    q.add_argument("--replace", action="store_true", help="change an existing user")
    q.set_defaults(handler=cmd_user_add)
    q = actions.add_parser("list", parents=[common], help="list users and their roles")
    q.set_defaults(handler=cmd_user_list)
    p = command("token", cmd_token_list, "API tokens: list them, add one (shown once), revoke one")
    actions = p.add_subparsers(dest="action", metavar="{add,list,revoke}")
    q = actions.add_parser("add", parents=[common], help="make a token for /api/v1; shown once")
    q.add_argument("name", help="what the token is for, e.g. newsroom-bot")
    q.add_argument("--role", choices=["viewer", "editor", "admin"], default="viewer")
    q.set_defaults(handler=cmd_token_add)
    q = actions.add_parser("list", parents=[common], help="list tokens (never the tokens)")
    q.set_defaults(handler=cmd_token_list)
    q = actions.add_parser("revoke", parents=[common], help="end a token at once")
    q.add_argument("name")
    q.set_defaults(handler=cmd_token_revoke)
    p = command("watches", cmd_watches_export, "watch lists in (urlwatch, changedetection.io, ...)")
    actions = p.add_subparsers(dest="action", metavar="{import,export}")
    q = actions.add_parser(
        "import",
        parents=[common],
        help="read urlwatch's urls.yaml, a changedetection.io backup, OPML or a list of URLs; "
        "show what would be added, add it with --apply",
    )
    q.add_argument("file", type=Path)
    q.add_argument(
        "--apply", action="store_true", help="add them (kept in the store, like the UI's)"
    )
    q.set_defaults(handler=cmd_watches_import)
    q = actions.add_parser("export", parents=[common], help="write the watches (file's and UI's)")
    q.add_argument("--format", choices=["toml", "json", "opml"], default="toml")
    q.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    q.set_defaults(handler=cmd_watches_export)
    p = command(
        "furniture",
        cmd_furniture,
        "what was learned to be furniture (per watch and host), and undoing it: "
        "`monitor furniture [WATCH]`, `monitor furniture forget WATCH ID|--all`",
    )
    p.add_argument("words", nargs="*", metavar="WATCH | forget WATCH ID")
    p.add_argument("--all", action="store_true", help="with forget: every item of the watch")
    p.add_argument("--relearn", action="store_true", help="learn from the archive now, first")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p = command("feed", cmd_feed, "write the Atom feed of alerts, for one watch or all")
    p.add_argument("--watch", help="watch id (default: all watches)")
    p.add_argument("--output", type=Path, help="file to write (default: standard output)")
    p.add_argument("--limit", type=int, default=100, help="newest N alerts (default 100)")
    return parser


def _config(args: argparse.Namespace) -> MonitorConfig:
    """The configuration, loaded without the cyclic garbage collector, which then leaves it
    and everything imported so far alone (`gc.freeze`): none of it is garbage, and with
    10,000 watches the collector's passes over their models cost a third of the start-up
    of `monitor check` (the config's load 0.09 s, opening the store 0.06 s and reading
    the watches' states 0.12 s of CPU, against 0.09, 0.01 and 0.06 s without them).
    `cmd_check` and `cmd_run` hold it off from their first import to here, and
    `python -m monitor` while it imports this module: the collector's passes over the
    modules those imports build (SQLAlchemy, pydantic, asyncio) were 4 % of a `check
    --once` start-up's instructions (callgrind), and none of it is garbage either."""
    from monitor.config import config_path, load_config  # see the imports at the top

    with collector_paused():
        return load_config(config_path(args.config), known_profiles=profile_catalog())


def _store(config: MonitorConfig) -> Store:
    from monitor.store import Store  # see the imports at the top

    return Store.from_config(config.store)


def _in_force(config: MonitorConfig, store: Store, discovered: bool = True) -> Watches:
    """The watches in force: the file's, the store's and (unless not `discovered`) the
    statement watches discovering listings found (see watches.py)."""
    from monitor.watches import load_watches  # see the imports at the top

    return load_watches(config, store, discovered=discovered)


# --- commands ------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    # Its imports, like the config, make no garbage: the collector is held off (`_config`).
    with collector_paused():
        from monitor.isolate import start_forkserver

        # The workers' forkserver imports the parsers on the other core while this process
        # imports the daemon's modules (the store's SQLAlchemy, the config's models: half a
        # second of CPU) and reads a config of (maybe) 100,000 watches: the daemon's first
        # checks, which wait for the workers, then need not wait for it. (`python -m
        # monitor run` has started it before importing this module: see __main__.py.)
        start_forkserver()
        from monitor.scheduler import Daemon  # after the forkserver's start, on purpose

        config = _config(args)
    if args.listen:
        server = config.server.model_copy(update={"listen": args.listen})
        config = config.model_copy(update={"server": server})
    with _store(config) as store:
        store.hold_writer_lock("run")
        daemon = Daemon(config, store, serve_web=not args.no_web)
        if not daemon.runtime.watches.base.watch:  # discovered ones need a listing
            raise UsageError(f"{config.source}: no [[watch]] configured")
        asyncio.run(daemon.run())
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    with collector_paused():  # its imports, like the config, make no garbage (`_config`)
        from monitor.isolate import start_forkserver
        from monitor.wiring import build

        config = _config(args)
    if config.store.url is None and not _has_files(config.store.path):
        # A new archive: no answer can be a 304 or the same bytes again, every page is
        # read. The workers' forkserver loads the parsers (0.2 s of CPU) on the other core
        # while this process imports and creates the store, not at the first page.
        # (A run over an archive that exists may read nothing: its workers wait for work.)
        # `python -m monitor` has started it already, before importing this module, when
        # it could tell from the config file as written (__main__.workers_wanted_at_once).
        start_forkserver()
    with _store(config) as store:
        store.hold_writer_lock("check")
        runtime = build(config, store)
        watches = [runtime.config.get_watch(args.watch)] if args.watch else runtime.config.watch
        with progress.shown("check", "watches", len(watches)):
            outcomes = asyncio.run(runtime.check_once(watches))
        failure = store.write_failure
    # One write for all the lines: under PYTHONUNBUFFERED (common in services and CI) a
    # print per watch was two system calls each, 20,000 for a run over 10,000 watches.
    sys.stdout.write(
        "".join(
            f"{outcome.watch_id}: {outcome.outcome} "
            f"({outcome.versions} new versions, {outcome.alerts} alerts)"
            f"{f' — {outcome.detail}' if outcome.detail else ''}\n"
            for outcome in outcomes
        )
    )
    if failure:
        print(f"monitor: {failure}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_PROBLEM if any(o.outcome == "problem" for o in outcomes) else EXIT_OK


def _has_files(directory: Path) -> bool:
    try:
        return any(directory.iterdir())
    except OSError:  # none yet (or unreadable: the store says so when it opens)
        return False


def _documents(store: Store, watch_id: str, key: str | None = None) -> list[dict]:
    """The statements of a watch, each with its watch id; a discovering listing's are those
    of the statement watches it found (where its statements are archived)."""
    documents = [dict(d) for w in store.family(watch_id) for d in store.documents(w)]
    if key:
        documents = [d for d in documents if d["key"] == key]
        if not documents:
            raise UsageError(f"no statement {key!r} in watch {watch_id!r} (see `monitor history`)")
    return documents


def _statement_of(store: Store, watch_id: str, key: str | None) -> dict:
    """The one statement a command about versions means: `--key`, or the watch's only one."""
    documents = _documents(store, watch_id, key)
    if len(documents) != 1:
        keys = ", ".join(d["key"] for d in documents[:5]) or "none stored yet"
        raise UsageError(
            f"watch {watch_id!r} has {len(documents)} statements: name one with --key ({keys})"
        )
    return documents[0]


def _numbered(store: Store, document: dict[str, Any], number: int) -> VersionWithDocumentRow:
    row = store.version_at(document["id"], number)
    if row is None:
        raise UsageError(
            f"no version {number} of {document['key']} (see `monitor history "
            f"{document['watch_id']} --key {document['key']}`)"
        )
    return row


def cmd_history(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(config) as store:
        _in_force(config, store).config.get_watch(args.watch)
        rows = []
        for document in _documents(store, args.watch, args.key):
            versions = [dict(v) for v in store.versions(document["id"])]
            for v in versions:
                v["version"] = v["seq"]  # the number users cite; `id` is the database's
            rows.append({**document, "versions": versions})
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print(f"{args.watch}: nothing stored yet (run `monitor check {args.watch}`)")
    for doc in rows:
        removed = f"  [removed {doc['removed_at']}]" if doc["removed_at"] else ""
        where = f"  ({doc['watch_id']})" if doc["watch_id"] != args.watch else ""
        print(f"{doc['key']}  {doc['published'] or ''}  {doc['title']}{removed}{where}")
        for v in doc["versions"]:
            summary = f"  {v['summary']}" if v["summary"] != FIRST_SEEN else ""
            mark = f" [{v['confirmation']}]" if v["confirmation"] in _UNSETTLED else ""
            print(
                f"    #{v['seq']:<4} {v['observed_at']}  {v['kind']:<9}{mark} "
                f"{v['score']:.2f}{summary}"
            )
    return EXIT_OK


# Versions that did not (or not yet) stand: marked wherever versions are listed.
_UNSETTLED = ("pending", "transient")


def cmd_show(args: argparse.Namespace) -> int:
    from monitor.extract import Statement

    config = _config(args)
    with _store(config) as store:
        row = _numbered(store, _statement_of(store, args.watch, args.key), args.version)
        if args.raw:
            response = store.response(row["response_id"]) if row["response_id"] else None
            if response is None:
                raise UsageError(f"version {args.version} has no stored response")
            sys.stdout.buffer.write(store.read_blob(response["body_sha256"]))
            return EXIT_OK
        if row["text_sha256"] is None:
            print(f"version {args.version} records the removal of {row['key']}")
            return EXIT_OK
        print(Statement.from_json(store.read_blob(row["text_sha256"])).render_text(), end="")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from monitor.diff import compare, render_inline
    from monitor.extract import Statement

    config = _config(args)
    with _store(config) as store:
        watch = _in_force(config, store).config.get_watch(args.watch)
        b_number = args.b if args.b is not None else args.a
        if b_number is None and args.key is None:
            latest = store.latest_change(args.watch)
            if latest is None:
                print(f"{args.watch}: no edits recorded yet")
                return EXIT_OK
            document: dict[str, Any] = {**latest, "id": latest["document_id"]}
        else:
            document = _statement_of(store, args.watch, args.key)
        if b_number is None:
            b_number = store.last_seq(document["id"])
        b = _numbered(store, document, b_number)
        a: VersionWithDocumentRow | None
        if args.a is not None and args.b is not None:
            a = _numbered(store, document, args.a)
        else:
            a = store.version_at(document["id"], b["seq"] - 1)
            if a is None:
                raise UsageError(f"version {b_number} is the first of {document['key']}")

        def load(row) -> Statement | None:
            sha = row["text_sha256"]
            return Statement.from_json(store.read_blob(sha)) if sha else None

        old, new = load(a), load(b)
    result = compare(old, new, watch.ignore)
    if args.format == "json":
        print(json.dumps(_diff_json(result), ensure_ascii=False, indent=2))
        return EXIT_OK
    color = sys.stdout.isatty()
    print(f"{b['key']}: version #{a['seq']} → #{b['seq']}")
    print(f"Summary: {result.summary} (score {result.score:.2f})")
    for change in result.changes:
        print(f"\n{change.where}:")
        print("  " + render_inline(change.before, change.after, color=color))
    return EXIT_OK


def _diff_json(result) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {
        "score": result.score,
        "summary": result.summary,
        "removed": result.removed,
        "added": result.added,
        "changes": [change.__dict__ for change in result.changes],
        "timed_out": result.timed_out,
        "problems": result.problems,
    }


def cmd_compare(args: argparse.Namespace) -> int:
    from monitor.compare import compare_pages
    from monitor.userregex import UserRegexError, check_user_regex

    for path in (args.old, args.new):
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    for pattern in args.ignore:
        try:
            check_user_regex(pattern)
        except UserRegexError as err:
            raise UsageError(f"--ignore {err}") from None
    verdict = compare_pages(
        args.old.read_bytes(), args.new.read_bytes(), args.url, args.profile, args.ignore
    )
    if args.format == "json":
        print(json.dumps(verdict, ensure_ascii=False, indent=2))
    else:
        print(f"{verdict['kind']}: alert={verdict['alert']} score={verdict['score']:.2f}")
        print(verdict["summary"])
    return EXIT_OK


def cmd_extract(args: argparse.Namespace) -> int:
    from monitor.inspect import run

    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    if args.export is not None:
        return _verify_export(args.export, args.timestamps, args.tsa_ca_file)
    config = _config(args)
    stamps = None
    with _store(config) as store, progress.shown("verify", "blobs"):
        report = store.verify(repair=args.repair)
        if args.timestamps:
            from monitor.stamper import verify_timestamps

            trusted = _trusted_cas(args.tsa_ca_file or config.archive.tsa_ca_file)
            stamps, waiting = verify_timestamps(store, trusted)
    for line in report.orphans:
        print(f"warning: {line}")
    for line in report.damage:
        print(f"DAMAGE: {line}")
    print(
        f"verified {report.versions} versions, {report.blobs} blobs, "
        f"{report.references} references: "
        f"{len(report.damage)} damaged, {len(report.orphans)} orphans"
        + (f", {report.repaired} removed" if args.repair else "")
    )
    if stamps is not None:
        _print_timestamps(stamps, trusted is not None, waiting)
    damaged = report.damage or (stamps is not None and stamps.damage)
    return EXIT_PROBLEM if damaged else EXIT_OK


def _trusted_cas(path: Path | None) -> list | None:  # type: ignore[type-arg]
    """The CA certificates a token's signer must chain to (None: none given)."""
    from monitor.timestamps import TokenError, load_ca_file

    if path is None:
        return None
    try:
        return load_ca_file(path)
    except TokenError as err:
        raise UsageError(str(err)) from None


def _print_timestamps(stamps: Any, chained: bool, waiting: int | None) -> None:
    for line in stamps.damage:
        print(f"DAMAGE: {line}")
    for batch_id, info in sorted(stamps.tokens.items()):
        print(f"timestamp batch {batch_id}: {info.gen_time} by {info.tsa} (serial {info.serial})")
    print(
        f"verified {stamps.batches} trusted timestamps covering {stamps.versions} versions: "
        f"{len(stamps.damage)} damaged"
        + (f", {waiting} versions waiting for one" if waiting is not None else "")
        + ("" if chained else "; signers not checked against a CA (give --tsa-ca-file)")
    )


def _verify_export(path: Path, timestamps: bool = False, ca_file: Path | None = None) -> int:
    """`verify --export FILE`: an export checked on its own, without the archive."""
    from monitor.export import verify_export
    from monitor.wacz import is_wacz, verify_wacz

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    trusted = _trusted_cas(ca_file) if timestamps else None
    stamps = None
    if timestamps:
        from monitor.timestamps import TimestampReport

        stamps = TimestampReport()
    if is_wacz(path):
        report = verify_wacz(path, stamps, trusted)
    else:
        try:
            report = verify_export(path, stamps, trusted)
        except (ValueError, KeyError, OSError) as err:
            print(f"monitor: {path}: not a readable JSON lines or WARC export ({err})")
            return EXIT_PROBLEM
    for line in report.damage:
        print(f"DAMAGE: {line}")
    print(f"verified {report.checked} versions in {path}: {len(report.damage)} damaged")
    if stamps is not None:
        _print_timestamps(stamps, trusted is not None, None)
    return EXIT_PROBLEM if report.damage or (stamps is not None and stamps.damage) else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from monitor.export import parse_since

    config = _config(args)
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as err:
        raise UsageError(f"--since: {err}") from None
    if args.output and (args.warc or args.wacz):
        raise UsageError("--output goes with --format; --warc and --wacz name their own file")
    with _store(config) as store:
        if args.watch and not any(store.has_versions(w) for w in store.family(args.watch)):
            raise UsageError(f"no versions stored for watch {args.watch!r}")
        secrets = args.include_secrets
        if args.since:  # counted as the versions go by
            total = None
        elif args.watch:
            total = sum(store.version_count(w) for w in store.family(args.watch))
        else:
            total = store.version_count()
        with progress.shown("export", "versions", total):
            count = _export(args, store, since, secrets)
        if count is None:
            return EXIT_PROBLEM
    # Said once the bar has gone: printed under a live bar, rich would wrap a long path.
    wrote = _wrote(args, count)
    if wrote:
        print(wrote)
    if count.skipped:
        # Everything else is written; what a damaged blob kept out is named, and the exit
        # status tells scripts the export is incomplete.
        print(
            f"monitor: export incomplete, {len(count.skipped)} part(s) left out "
            "(damaged or missing blobs; run `monitor verify`):",
            file=sys.stderr,
        )
        for line in count.skipped:
            print(f"  {line}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def _wrote(args: argparse.Namespace, count: ExportCount) -> str | None:
    """What an export to a file says it wrote (nothing when it wrote to standard output)."""
    if args.warc or args.wacz:
        where = args.warc or args.wacz
        return f"wrote {count.versions} versions ({count.records} records) to {where}"
    if args.output:
        return f"wrote {count.versions} versions to {args.output}"
    return None


def _export(
    args: argparse.Namespace, store: Store, since: str | None, secrets: bool
) -> ExportCount | None:
    """The export `args` ask for; None when it could not be made (said on stderr)."""
    from monitor.export import write_jsonl, write_warc

    if args.warc:
        count = write_warc(store, args.warc, args.watch, since, secrets)
    elif args.wacz:
        from monitor.wacz import WACZError, write_wacz

        try:
            count = write_wacz(store, args.wacz, args.watch, since, secrets)
        except WACZError as err:
            print(f"monitor: {err}", file=sys.stderr)
            return None
    elif args.output:
        count = write_jsonl(store, args.output, args.watch, since, secrets)
    else:
        count = write_jsonl(store, sys.stdout, args.watch, since, secrets)
    return count


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(timeout=args.timeout)


def cmd_alerts(args: argparse.Namespace) -> int:
    from monitor.alerts import Deliverer

    config = _config(args)
    with _store(config) as store:
        entries = Deliverer.from_config(store, config).outbox(failed=args.failed, limit=args.limit)
    if args.format == "json":
        print(json.dumps([entry.__dict__ for entry in entries], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not entries:
        print("no failed deliveries" if args.failed else "no alerts yet")
    for e in entries:
        print(
            f"#{e.id:<6} {e.status:<8} {e.created_at}  {e.watch}  {e.kind:<9} → {e.channel}"
            f"  ({e.attempts} attempt{'' if e.attempts == 1 else 's'})  {e.title[:80]}"
        )
        if e.detail:
            print(f"        {e.detail}")
    return EXIT_OK


def cmd_alerts_resend(args: argparse.Namespace) -> int:
    from monitor.alerts import Deliverer
    from monitor.channels import ChannelError

    config = _config(args)
    with _store(config) as store:
        if args.queue:
            if not store.requeue(args.id):
                raise UsageError(f"no dead-lettered delivery {args.id} (see `monitor alerts`)")
            print(f"delivery {args.id} is back in the outbox; the daemon sends it next round")
            return EXIT_OK
        try:
            asyncio.run(Deliverer.from_config(store, config).resend(args.id))
        except LookupError as err:
            raise UsageError(str(err.args[0])) from None
        except ChannelError as err:
            print(f"monitor: delivery {args.id} failed again: {err}", file=sys.stderr)
            return EXIT_PROBLEM
    print(f"delivery {args.id} sent")
    return EXIT_OK


def cmd_alerts_test(args: argparse.Namespace) -> int:
    from monitor.alerts import send_test
    from monitor.channels import ChannelError

    config = _config(args)
    channel = config.channels.get(args.channel)
    if channel is None:
        known = ", ".join(sorted(config.channels)) or "none"
        raise UsageError(f"no channel {args.channel!r} in {config.source} (known: {known})")
    try:
        problems = asyncio.run(send_test(args.channel, channel, config.server.public_url))
    except ChannelError as err:
        print(f"monitor: channel {args.channel}: sample not delivered: {err}", file=sys.stderr)
        return EXIT_PROBLEM
    for problem in problems:
        print(
            f"monitor: channel {args.channel}: {problem} (the sample went out with the default)",
            file=sys.stderr,
        )
    if problems:
        return EXIT_PROBLEM
    print(f"channel {args.channel}: sample alert sent")
    return EXIT_OK


def cmd_feed(args: argparse.Namespace) -> int:
    from monitor.atom import feed_bytes, write_feed

    config = _config(args)
    with _store(config) as store:
        config = _in_force(config, store).config
        if args.watch:
            config.get_watch(args.watch)
        data = feed_bytes(store, config, args.watch, limit=args.limit)
    if args.output is None:
        sys.stdout.buffer.write(data)
    else:
        write_feed(args.output, data)
        print(f"wrote {args.output} ({len(data)} bytes)")
    return EXIT_OK


def cmd_furniture(args: argparse.Namespace) -> int:
    """`monitor furniture [WATCH]` lists learned furniture; `monitor furniture forget WATCH
    ID|--all` says an item is not furniture (it is never learned again)."""
    from monitor.store.furniture import host_of

    forget, words = _furniture_words(args)
    config = _config(args)
    with _store(config) as store:
        watches = _furniture_watches(store, config, words[:1])
        if args.relearn:
            _relearn(store, watches)
        if forget:
            return _forget_furniture(store, watches, words, args.all)
        if words:
            scopes = [("watch", words[0]), ("host", host_of(watches[words[0]]))]
            rows = store.furniture_items(scopes)
        else:
            rows = store.all_furniture()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not rows:
        print("nothing learned yet" + (f" for {words[0]} or its host" if words else ""))
    for row in rows:
        _print_furniture(row)
    return EXIT_OK


def _furniture_words(args: argparse.Namespace) -> tuple[bool, list[str]]:
    """Whether the command forgets, and its words after `forget`: [WATCH] or WATCH [ID]."""
    words = list(args.words)
    forget = bool(words) and words[0] == "forget"
    if forget:
        words = words[1:]
        if not words or len(words) > 2 or (len(words) == 2) == args.all:
            raise UsageError("usage: monitor furniture forget WATCH ID|--all")
    elif len(words) > 1 or args.all:
        raise UsageError("usage: monitor furniture [WATCH] | forget WATCH ID|--all")
    return forget, words


def _furniture_watches(store: Store, config: MonitorConfig, named: list[str]) -> dict[str, str]:
    """The URL of each watch the command is about: the one `named`, or all stored."""
    known = {row["id"]: row["url"] for row in store.watch_rows()}
    if not named:
        return known
    watch_id = named[0]
    in_force = _in_force(config, store).config.watch
    url = next((w.url for w in in_force if w.id == watch_id), known.get(watch_id))
    if url is None:
        raise UsageError(f"no watch {watch_id!r} (see `monitor history`)")
    return {watch_id: url}


def _relearn(store: Store, watches: dict[str, str]) -> None:
    from monitor.learned import LearnedFurniture
    from monitor.store.furniture import host_of

    learning = LearnedFurniture(store)
    for watch_id in watches:
        learning.learn_watch(watch_id)
    for host in sorted({host_of(url) for url in watches.values()}):
        learning.learn_host(host)


def _forget_furniture(store: Store, watches: dict[str, str], words: list[str], every: bool) -> int:
    import getpass

    from monitor.store.furniture import host_of

    watch_id = words[0]
    scopes = [("watch", watch_id), ("host", host_of(watches[watch_id]))]
    items = store.furniture_items(scopes, forgotten=False)
    if not every:
        try:
            wanted = int(words[1])
        except ValueError:
            raise UsageError(f"ID must be a number, not {words[1]!r}") from None
        items = [item for item in items if item["id"] == wanted]
        if not items:
            raise UsageError(
                f"no learned item {wanted} of watch {watch_id!r} or its host "
                f"(see `monitor furniture {watch_id}`)"
            )
    store.forget_furniture([item["id"] for item in items], f"cli:{getpass.getuser()}")
    for item in items:
        where = "its host " + item["scope_id"] if item["scope"] == "host" else "this watch"
        print(f"#{item['id']} is not furniture (for {where}): «{item['example']}»")
    if not items:
        print(f"{watch_id}: nothing learned to forget")
    return EXIT_OK


def _print_furniture(row: FurnitureRow) -> None:
    if row["forgotten_at"]:
        state = f"NOT FURNITURE (said {row['forgotten_by']}, {row['forgotten_at']})"
    else:
        state = f"since {row['learned_at']}"
    print(f"#{row['id']:<5} {row['scope']} {row['scope_id']}  {row['kind']:<8} {state}")
    print(f"       why: {row['reason']}")
    print(f"       «{row['example']}»")


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.web.serve import serve

    config = _config(args)
    with _store(config) as store:
        serve(config, store, args.listen or config.server.listen, args.workers)
    return EXIT_OK


def cmd_user_add(args: argparse.Namespace) -> int:
    import getpass
    import os

    from monitor.web.auth import hash_password

    config = _config(args)
    # Never from argv: command lines are visible to every user (ps, /proc) and shell history.
    password = os.environ.get("MONITOR_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the passwords differ")
    elif password is None:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        hashed = hash_password(password)
    except ValueError as err:
        raise UsageError(str(err)) from None
    with _store(config) as store:
        if store.user(args.name) is not None and not args.replace:
            raise UsageError(f"user {args.name!r} exists (use --replace to change it)")
        store.put_user(args.name, hashed, args.role)
        store.delete_sessions(args.name)  # a new password ends the old sessions
    print(f"user {args.name} ({args.role}) saved")
    return EXIT_OK


def cmd_token_add(args: argparse.Namespace) -> int:
    import getpass

    from monitor.web.api import new_token, token_hash

    config = _config(args)
    token = new_token()
    with _store(config) as store:
        if not store.add_token(args.name, token_hash(token), args.role, f"cli:{getpass.getuser()}"):
            raise UsageError(f"a token {args.name!r} exists (names are not reused; pick another)")
    print(f"token {args.name} ({args.role}); it is shown this once, keep it safe:")
    print(token)
    print("use it as:  Authorization: Bearer <token>   (e.g. curl -H ... /api/v1/changes)")
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(config) as store:
        for row in store.tokens():
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "in force"
            used = row["last_used_at"] or "never used"
            print(f"{row['name']}\t{row['role']}\t{state}\t{used}\tby {row['created_by']}")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(config) as store:
        if not store.revoke_token(args.name):
            raise UsageError(f"no token {args.name!r} in force")
    print(f"token {args.name} revoked")
    return EXIT_OK


def cmd_watches_import(args: argparse.Namespace) -> int:
    from monitor.overrides import WatchError, validate_watch, watch_settings
    from monitor.sites import get_profile
    from monitor.watchlists import WatchListError, describe, read_watch_list

    config = _config(args)
    with _store(config) as store:
        in_force = _in_force(config, store, discovered=False).config  # not discovered
        try:
            found = read_watch_list(
                args.file,
                taken_ids=[w.id for w in in_force.watch],
                watched_urls={w.url: w.id for w in in_force.watch},
            )
        except (WatchListError, OSError) as err:
            raise UsageError(str(err)) from None
        accepted = []
        for line in describe(found):
            print(line)
        for proposed in found.watches:
            try:
                watch = validate_watch(config, proposed.settings)
            except WatchError as err:
                print(f"  ! {proposed.id}: not added: {err}")
                continue
            profile = get_profile(watch.profile, watch.url).name
            print(f"  = {proposed.id}: profile {profile}")
            accepted.append(watch)
        if not args.apply:
            print(f"{len(accepted)} watch(es) would be added; run again with --apply to add them")
            return EXIT_OK
        for watch in accepted:
            stored = watch_settings(watch)
            stored.pop("id")
            store.put_ui_watch(watch.id, stored, f"import:{found.format}")
    print(
        f"{len(accepted)} watch(es) added to the store; a running daemon checks them after "
        "its next reload (SIGHUP, or saving any watch in the web UI)"
    )
    return EXIT_OK


def cmd_watches_export(args: argparse.Namespace) -> int:
    from monitor.overrides import watch_settings
    from monitor.watchlists import write_watch_list

    config = _config(args)
    with _store(config) as store:
        in_force = _in_force(config, store, discovered=False).config  # not discovered
        watches = [watch_settings(w) for w in in_force.watch]
    text = write_watch_list(watches, getattr(args, "format", "toml"))
    if getattr(args, "output", None):
        args.output.write_text(text, encoding="utf-8")
        print(f"{len(watches)} watch(es) written to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with _store(config) as store:
        for row in store.users():
            print(f"{row['username']}\t{row['role']}\t{row['updated_at']}")
    return EXIT_OK
