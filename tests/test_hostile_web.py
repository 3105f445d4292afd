"""Hostile visitors of the web UI and hostile readers of its output, over real HTTP against
`monitor run` / `monitor serve` (issue 27): a login flood that must not starve the daemon,
guesses spread over names or behind a forged X-Forwarded-For, copied session cookies and
CSRF tokens, foreign Host headers, and secrets — credentials in a watch URL, captured
gov.kz `hash`/`token` headers — that must never reach a page, a feed, an alert or an
export."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from monitor.config import ConfigError, load_config
from monitor.export import write_jsonl
from monitor.extract import Statement
from monitor.replica import ReplicaSite
from monitor.sites import profile_names
from monitor.store import CheckRecord, NewVersion, Store
from monitor.web.auth import LoginBudget, Throttled
from monitor.web.guard import forwarded_client, host_name
from tests.conftest import QuietHandler, Receiver, monitor_cli, serve_on_loopback, write_config
from tests.evidence import archive_one_exchange
from tests.test_hostile import Health
from tests.webui import PASSWORD, add_user, csrf, login, serving

# --- logins --------------------------------------------------------------------------------

# Budgets as monitor/web/auth.py sets them.
PER_ADDRESS = LoginBudget().limits["address"]
# The review's flood lasted 15 s; 12 are enough for the budget to be spent (each refused
# guess costs one argon2 run, ~0.3-0.7 s here, one at a time) and the rest throttled.
FLOOD_SECONDS = 12.0


def _guess(client: httpx.Client, name: str, password: str = "wrong guess", **headers: str) -> int:
    if "monitor_csrf" not in client.cookies:
        client.get("/login", headers=headers)
    data = {"username": name, "password": password, "csrf": csrf(client)}
    return client.post("/login", data=data, headers=headers).status_code


def _with_server_keys(config: Path, keys: str) -> None:
    config.write_text(config.read_text().replace("[server]\n", f"[server]\n{keys}\n"))


@pytest.mark.process
def test_a_login_flood_leaves_healthz_and_the_checks_alone(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    """8 clients guessing passwords as fast as they can, against the daemon itself: argon2
    runs off the event loop and at most a budget's worth of times, so /healthz answers
    within 100 ms throughout and the watch keeps its 1-second schedule. A forged
    X-Forwarded-For from an untrusted peer does not lift the lockout afterwards. The daemon
    hashes at argon2's own cost (`real_hashes`), as in production: that cost is the story."""
    config = write_config(tmp_path, replica, interval="1s")
    assert add_user(config, "admin", "admin").returncode == 0
    db = tmp_path / "store" / "index.sqlite"
    with serving(config, "run", real_hashes=True) as url:
        stop = threading.Event()
        latencies: list[float] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def flood(number: int) -> None:
            # Each guess waits for its answer however long the hashing queue takes (eight
            # guesses in line behind one niced hashing process, on a busy machine): one
            # given up on would be hashed and charged, yet not counted here.
            with httpx.Client(base_url=url, timeout=300) as client:
                guess = 0
                while not stop.is_set():
                    guess += 1
                    status = _guess(client, f"user{number}-{guess}")
                    with lock:
                        statuses.append(status)

        def probe() -> None:
            with httpx.Client(base_url=url, timeout=5) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    answer = client.get("/healthz")
                    latencies.append(time.perf_counter() - started)
                    assert answer.status_code == 200
                    time.sleep(0.02)

        httpx.get(url + "/login")  # templates compiled before the clock starts
        checks_before = _count(db, "SELECT COUNT(*) FROM check_run")
        threads = [threading.Thread(target=flood, args=(n,)) for n in range(8)]
        threads.append(threading.Thread(target=probe))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(FLOOD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads), "a guess never got its answer"
        elapsed = time.monotonic() - started
        checks = _count(db, "SELECT COUNT(*) FROM check_run") - checks_before

        took = sorted(latencies)
        print(
            f"flood: {len(statuses)} attempts, {statuses.count(401)} hashed and refused, "
            f"{statuses.count(429)} throttled; /healthz {len(took)} probes, median "
            f"{statistics.median(took) * 1000:.1f} ms, p95 {took[len(took) * 95 // 100] * 1000:.1f}"
            f" ms, max {took[-1] * 1000:.1f} ms; {checks} checks in {elapsed:.1f} s; "
            f"load {os.getloadavg()[0]:.1f}"
        )
        assert set(statuses) <= {401, 429}
        # Never more argon2 runs than the address's budget, however many names and clients.
        assert statuses.count(401) <= PER_ADDRESS
        # Every answer within 100 ms (argon2 runs in a process of its own: a hashing thread
        # at a low priority once held the GIL while descheduled, up to 213 ms). Before issue
        # 27: median 4.8 s, 2 checks in 17 s. On a machine whose run queue is longer than its
        # CPUs, the bound of the other hostile tests (tests/test_hostile.py, Health).
        assert len(took) > 100
        if os.getloadavg()[0] < (os.cpu_count() or 1):
            assert took[-1] < 0.1, f"/healthz took {took[-1]:.3f} s"
        else:
            assert took[len(took) * 95 // 100] < 0.1, took[-20:]
            assert took[-1] < 1.0, took[-20:]
        assert checks >= elapsed * 0.6  # the 1 s watch kept (most of) its schedule

        # The peer is 127.0.0.1, which [server] trusted_proxies does not list: the header
        # naming another client is ignored, and the right password waits like any guess.
        with httpx.Client(base_url=url, timeout=300) as client:
            # (On a busy machine the flood may end before the budget is spent.)
            hashed = statuses.count(401)
            while _guess(client, f"one-more-name-{hashed}") == 401:
                hashed += 1
            assert hashed == PER_ADDRESS
            forged = {"X-Forwarded-For": "203.0.113.77"}
            assert _guess(client, "admin", PASSWORD, **forged) == 429


@pytest.mark.process
def test_guesses_spread_over_many_names_are_throttled(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    assert add_user(config, "ann", "editor").returncode == 0
    with serving(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers = [_guess(client, f"name{n}") for n in range(PER_ADDRESS)]
        assert answers == [401] * PER_ADDRESS
        assert _guess(client, "yet-another-name") == 429
        assert _guess(client, "ann", PASSWORD) == 429  # the address waits, whatever it tries


@pytest.mark.process
def test_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    """Behind a proxy listed in trusted_proxies each client has its own budget; the client
    is the right-most address the proxy reports, so a made-up address written further left
    by the client changes nothing."""
    config = write_config(tmp_path, None)
    _with_server_keys(config, 'trusted_proxies = ["127.0.0.1/32", "::1"]')
    assert add_user(config, "ann", "editor").returncode == 0
    with serving(config) as url, httpx.Client(base_url=url, timeout=30) as client:
        guesser = {"X-Forwarded-For": "203.0.113.1"}
        for n in range(PER_ADDRESS):
            assert _guess(client, f"name{n}", **guesser) == 401
        assert _guess(client, "ann", PASSWORD, **guesser) == 429
        # The same guesser claiming to be someone else, in front of the proxy's own entry.
        spoofed = {"X-Forwarded-For": "198.51.100.9, 203.0.113.1"}
        assert _guess(client, "ann", PASSWORD, **spoofed) == 429
        # Another client behind the proxy logs in.
        assert _guess(client, "ann", PASSWORD, **{"X-Forwarded-For": "203.0.113.2"}) == 303


def test_the_login_budget_counts_ipv6_by_64_and_has_an_overall_ceiling() -> None:
    budget = LoginBudget(per_name=5, per_address=3, overall=5, window=60)
    for host in ("2001:db8::1", "2001:db8::2", "2001:db8::3"):
        budget.charge(host, "x" + host)
    with pytest.raises(Throttled):
        budget.charge("2001:db8::ffff", "fresh")  # same /64: one host's addresses
    budget.charge("2001:db8:1::1", "a")
    keys = budget.charge("192.0.2.1", "b")
    with pytest.raises(Throttled):
        budget.charge("192.0.2.200", "c")  # five failures overall: everyone waits
    budget.refund(keys)  # a success gives its charge back
    budget.charge("192.0.2.200", "c")


def test_forwarded_client_and_host_name() -> None:
    from monitor.web.guard import _networks

    trusted = _networks(("10.0.0.0/8",))
    assert forwarded_client("192.0.2.5", ["203.0.113.1"], trusted) == "192.0.2.5"
    assert forwarded_client("10.0.0.2", ["203.0.113.1, 10.0.0.3"], trusted) == "203.0.113.1"
    assert forwarded_client("10.0.0.2", ["evil", "203.0.113.1"], trusted) == "203.0.113.1"
    assert forwarded_client("10.0.0.2", ["junk"], trusted) == "10.0.0.2"
    assert forwarded_client("10.0.0.2", [], ()) == "10.0.0.2"
    assert host_name("Example.ORG:8080") == "example.org"
    assert host_name("[::1]:80") == "::1"


# --- sessions, CSRF, Host, caching -------------------------------------------------------------


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """`monitor serve` with three users; yields the store's directory and the base URL."""
    tmp = tmp_path_factory.mktemp("hostile-ui")
    config = write_config(tmp, None)
    _with_server_keys(config, 'public_url = "http://monitor.example.org/"')
    for name, role in (("admin", "admin"), ("ed", "editor"), ("ed2", "editor")):
        assert add_user(config, name, role).returncode == 0
    with serving(config) as url:
        yield tmp / "store", url


def test_logout_revokes_a_copied_cookie(ui: tuple[Path, str]) -> None:
    store, url = ui
    editor = login(url, "ed")
    thief = httpx.Client(base_url=url, timeout=30, follow_redirects=False)
    thief.cookies.set("monitor_session", editor.cookies["monitor_session"])
    assert thief.get("/watches/new").status_code == 200
    sessions = "SELECT COUNT(*) FROM web_session WHERE username = 'ed'"
    assert _count(store / "index.sqlite", sessions) == 1
    assert editor.post("/logout", data={"csrf": csrf(editor)}).status_code == 303
    answer = thief.get("/watches/new")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert _count(store / "index.sqlite", sessions) == 0


def test_a_password_change_ends_the_users_sessions(ui: tuple[Path, str]) -> None:
    _config, url = ui
    victim = login(url, "ed2")
    assert victim.get("/watches/new").status_code == 200
    admin = login(url, "admin")
    changed = admin.post(
        "/users",
        data={
            "username": "ed2",
            "password": "a brand new password",
            "role": "editor",
            "csrf": csrf(admin),
        },
    )
    assert changed.status_code == 303
    assert victim.get("/watches/new").status_code == 303
    login(url, "ed2", "a brand new password")


def test_a_csrf_token_of_another_session_is_refused(ui: tuple[Path, str]) -> None:
    _config, url = ui
    first, second = login(url, "admin"), login(url, "admin")  # the same user, twice
    assert csrf(first) != csrf(second)
    form = {"username": "mallory", "password": "mallory's password", "role": "admin"}
    assert second.post("/users", data={**form, "csrf": csrf(first)}).status_code == 403
    # Nor a token made before logging in (the login form's), even with its cookie.
    anonymous = httpx.Client(base_url=url, timeout=30)
    anonymous.get("/login")
    second.cookies.set("monitor_csrf", csrf(anonymous))
    assert second.post("/users", data={**form, "csrf": csrf(anonymous)}).status_code == 403
    assert "mallory" not in second.get("/users").text
    third = login(url, "admin")
    assert third.post("/users", data={**form, "csrf": csrf(third)}).status_code == 303


def test_a_foreign_host_header_is_refused(ui: tuple[Path, str]) -> None:
    _config, url = ui
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/login", headers={"Host": "rebound.attacker.example"}).status_code == 400
        assert client.get("/login", headers={"Host": "monitor.example.org"}).status_code == 200
        assert client.get("/login", headers={"Host": "localhost:1"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "probe.internal"}).status_code == 200
        # /metrics names watches and failures: the Host rule holds there too, and a scraper
        # of the listen address, a loopback name or the public URL's host is answered.
        port = url.rsplit(":", 1)[1]
        rebound = client.get("/metrics", headers={"Host": "rebound.attacker.example"})
        assert rebound.status_code == 400
        for host in (f"127.0.0.1:{port}", "localhost", "monitor.example.org"):
            answer = client.get("/metrics", headers={"Host": host})
            assert answer.status_code == 200 and "monitor_" in answer.text, host


def test_pages_behind_a_login_and_exports_are_not_cached(ui: tuple[Path, str]) -> None:
    _config, url = ui
    admin = login(url, "admin")
    for path in ("/", "/users", "/watches/new", "/feed.atom"):
        answer = admin.get(path)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store", path


def test_a_port_out_of_range_is_a_clear_error_not_a_crash(
    ui: tuple[Path, str], tmp_path: Path
) -> None:
    _config, url = ui
    editor = login(url, "ed")
    form = {"id": "bad-port", "url": "https://example.org:99999/", "interval": "1h"}
    answer = editor.post("/watches/new", data={**form, "csrf": csrf(editor)})
    assert answer.status_code == 400 and "Port out of range" in answer.text
    config = write_config(tmp_path, None)
    text = config.read_text() + '\n[[watch]]\nid = "p"\nurl = "http://127.0.0.1:70000/"\n'
    config.write_text(text)
    with pytest.raises(ConfigError, match="Port out of range"):
        load_config(config, known_profiles=profile_names())
    result = monitor_cli(config, "check")
    assert result.returncode == 2 and "Port out of range" in result.stderr
    assert "Traceback" not in result.stderr


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute(sql).fetchone()[0])


# --- secrets ---------------------------------------------------------------------------------

USER, SECRET = "rdr-7f3a", "pw-Zq9-never-shown"
PAGE = """<html lang="en"><head><title>Statement</title></head><body><article>
<h1>Comment of the MFA spokesperson</h1><p>{text}</p>
<p>Press service, see <a href="/statement">the statement</a>.</p></article></body></html>"""


@dataclass
class LockedSite:
    """A page behind HTTP basic authentication."""

    url: str = ""
    text: str = "Kazakhstan supports the dialogue between the parties."
    authorized: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def locked() -> Iterator[LockedSite]:
    state = LockedSite()
    expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            if self.path == "/robots.txt":
                self.send(404, b"", "text/plain")
            elif self.headers.get("Authorization") != expected:
                with state.lock:
                    state.refused += 1
                self.send(401, b"who are you?", "text/plain", {"WWW-Authenticate": "Basic"})
            else:
                with state.lock:
                    state.authorized += 1
                body = PAGE.format(text=state.text).encode()
                self.send(200, body, "text/html; charset=utf-8")

    for base in serve_on_loopback(Handler):
        state.url = base
        yield state


@pytest.mark.process
def test_credentials_in_a_watch_url_are_used_and_never_shown(
    tmp_path: Path, locked: LockedSite, receiver: Receiver
) -> None:
    host = locked.url.removeprefix("http://")
    config = write_config(tmp_path, None, receiver, languages=())
    config.write_text(
        config.read_text()
        + f"""
[[watch]]
id = "locked"
url = "http://{USER}:{SECRET}@{host}/statement"
profile = "generic"
channels = ["console", "hook"]
"""
    )
    _with_server_keys(config, 'public_url = "http://ui.test"')
    first = monitor_cli(config, "check")
    assert first.returncode == 0 and "locked: changed" in first.stdout, first.stderr
    locked.text = "Kazakhstan no longer supports the dialogue between the parties."
    second = monitor_cli(config, "check")
    assert second.returncode == 0 and "1 alerts" in second.stdout, second.stdout + second.stderr
    assert locked.authorized >= 2  # kept for the request
    [alert] = receiver.alerts("edited")
    assert alert["url"] == f"http://***@{host}/statement"
    seen = {"alert": json.dumps(receiver.posts), "check output": first.stdout + second.stdout}
    seen["check errors"] = first.stderr + second.stderr

    jsonl = monitor_cli(config, "export", "--format", "jsonl")
    versions = [line for line in jsonl.stdout.splitlines() if "type" not in json.loads(line)]
    assert jsonl.returncode == 0 and len(versions) == 2  # (then the chain heads' line)
    seen["jsonl"] = jsonl.stdout
    warc = tmp_path / "out.warc.gz"
    assert monitor_cli(config, "export", "--warc", str(warc)).returncode == 0
    seen["warc"] = gzip.decompress(warc.read_bytes()).decode("utf-8", "replace")
    assert f"WARC-Target-URI: http://***@{host}/statement" in seen["warc"]
    assert f"Host: {host}\r\n" in seen["warc"]

    assert add_user(config, "admin", "admin").returncode == 0
    db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    key, document = db.execute("SELECT key, id FROM document").fetchone()
    [version] = db.execute(
        "SELECT id FROM version WHERE document_id = ? AND seq = 2", (document,)
    ).fetchone()
    with serving(config) as url:
        admin = login(url, "admin")
        for path in (
            "/",
            "/?q=locked",
            "/watch/locked",
            "/watch/locked/edit",
            f"/watch/locked/statement?key={key}",
            f"/watch/locked/diff?key={key}&b=2",
            f"/watch/locked/version/{version}",
            f"/watch/locked/version/{version}/headers.json",
            f"/watch/locked/version/{version}/statement.json",
            "/feed.atom",
            "/watch/locked/feed.atom",
            "/watch/locked/export.jsonl",
        ):
            answer = admin.get(path, follow_redirects=True)  # (version ids: 301 to numbers)
            assert answer.status_code == 200, path
            seen[path] = answer.text
        exported = admin.get("/watch/locked/export.warc.gz")
        seen["UI warc"] = gzip.decompress(exported.content).decode("utf-8", "replace")
        assert f"http://***@{host}/statement" in seen["/watch/locked"]

        # The edit form shows the URL as ***; sent back unchanged, the credentials stay.
        form = {"url": f"http://***@{host}/statement", "interval": "1h", "profile": "generic"}
        saved = admin.post("/watch/locked/edit", data={**form, "csrf": csrf(admin)})
        assert saved.status_code == 303, saved.text
        [stored] = db.execute("SELECT config FROM ui_watch WHERE id = 'locked'").fetchone()
        assert json.loads(stored)["url"] == f"http://{USER}:{SECRET}@{host}/statement"
    for where, text in seen.items():
        assert SECRET not in text and USER not in text, where
    # The operator may ask for them.
    full = monitor_cli(config, "export", "--format", "jsonl", "--include-secrets")
    assert f"{USER}:{SECRET}@" in full.stdout


def test_captured_request_headers_are_redacted_in_exports(tmp_path: Path) -> None:
    """gov.kz's browser-issued `hash`/`token` and any Authorization/Cookie monitor sent are
    evidence kept in the archive, and secrets in an export unless asked for."""
    secrets = {
        "hash": "H-4b1d-secret",
        "token": "T-77aa-secret",
        "Authorization": "Bearer A-90ff-secret",
        "Cookie": "sid=C-12ee-secret",
    }
    with Store(tmp_path / "store") as store:
        archive_one_exchange(
            store,
            request_headers={**secrets, "Accept-Language": "ru"},
            headers=[("content-type", "application/json")],
        )
        lines = tmp_path / "out.jsonl"
        write_jsonl(store, lines)
        [facts, _heads] = [json.loads(line) for line in lines.read_text().splitlines()]
        sent = facts["response"]["request_headers"]
        assert sent == {**dict.fromkeys(secrets, "[redacted]"), "Accept-Language": "ru"}
    config = tmp_path / "monitor.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "store"}"\n')
    warc = tmp_path / "out.warc"
    assert monitor_cli(config, "export", "--warc", str(warc)).returncode == 0
    redacted = warc.read_bytes().decode("utf-8", "replace")
    assert "hash: [redacted]\r\n" in redacted and "Accept-Language: ru\r\n" in redacted
    full = tmp_path / "full.warc"
    assert monitor_cli(config, "export", "--warc", str(full), "--include-secrets").returncode == 0
    for value in secrets.values():
        assert value not in redacted and value not in lines.read_text()
        assert value in full.read_bytes().decode("utf-8", "replace")


# --- a hostile diff --------------------------------------------------------------------------


def _words(count: int, seed: int | None = None) -> str:
    words = [f"w{n}" for n in range(count)]
    if seed is not None:
        random.Random(seed).shuffle(words)
    return " ".join(words)


@pytest.mark.process
def test_a_hostile_diff_is_a_problem_page_and_the_server_answers_throughout(
    tmp_path: Path,
) -> None:
    """A statement whose one paragraph is 60,000 words, and a next version with the same
    words shuffled: the word diff needs far more than the worker's time limit (2 s here).
    `monitor serve` computes it in a worker: the diff page says why it cannot show the
    diff, /healthz answers within 100 ms meanwhile, and the next diff is shown as usual."""
    config = write_config(tmp_path, None)
    text = config.read_text().replace('timeout = "10s"', 'timeout = "10s"\nworker_timeout = "2s"')
    config.write_text(text + '\n[[watch]]\nid = "hostile"\nurl = "https://gov.example/h"\n')
    url_of = "https://gov.example/h"

    def statement(key: str, *paragraphs: str) -> bytes:
        return Statement(key, url_of, "Statement", paragraphs).to_json()

    with Store(tmp_path / "store") as store:
        store.sync_watch("hostile", url_of, "generic")
        for number, (kind, texts) in enumerate(
            [
                ("baseline", {"huge": (_words(60_000),), "small": ("The old sentence.",)}),
                ("edited", {"huge": (_words(60_000, seed=1),), "small": ("The new sentence.",)}),
            ]
        ):
            at = f"2026-11-25T1{number}:00:00.000Z"
            store.commit_check(
                CheckRecord("hostile", at, 5, "changed", 200),
                store.state("hostile"),
                versions=[
                    NewVersion(key, url_of, "Statement", None, "en", kind, statement(key, *body))
                    for key, body in texts.items()
                ],
            )
    assert add_user(config, "vi", "viewer").returncode == 0
    with serving(config) as url:
        reader = login(url, "vi")
        port = int(url.rsplit(":", 1)[1])
        with Health(port) as health:
            time.sleep(0.5)
            since = time.monotonic()
            # Twice: the worker killed at its limit is replaced, and the same diff fails the
            # same way (and the server is watched for twice as long).
            answers = [reader.get("/watch/hostile/diff?key=huge&b=2") for _ in range(2)]
            took = time.monotonic() - since
            time.sleep(0.3)
            until = time.monotonic()
            benign = reader.get("/watch/hostile/diff?key=small&b=2")
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert "could not be compared" in answer.text
            assert "over the time limit of 2 s" in answer.text
            assert "No change between these versions" not in answer.text
        assert took >= 4.0  # the worker ran until its limit, each time
        health.assert_prompt(since, until)
        assert benign.status_code == 200 and "could not be compared" not in benign.text
        assert "new" in benign.text and "old" in benign.text
