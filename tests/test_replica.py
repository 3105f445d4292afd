"""The gov.kz replica over real HTTP: API shapes, languages, GraphQL, mutations and outages."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import Any

import pytest

from monitor.replica import LANGS, STATEMENTS, ReplicaSite

API = "/api/v1/public/content-manager/news"
LISTING_PAGE = "/memleket/entities/mfa/press/news?lang=en"
# A statement id from the seed data, and its English title.
SEED_ID = STATEMENTS[0]["id"]
SEED_EN = STATEMENTS[0]["texts"]["en"]
# Bypass any proxy from the environment: the replica is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def call(
    url: str,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    payload: Any = None,
    raw: bytes | None = None,
) -> Reply:
    """One HTTP request; error statuses come back as replies, not exceptions."""
    data = raw if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, error.headers, error.read())


def listing(site: ReplicaSite, lang: str | None = "en", *, page: int = 1, size: int = 20) -> Reply:
    query = f"?sort-by=created_date:DESC&projects=eq:mfa&page={page}&size={size}"
    return call(site.url + API + query, headers={"Accept-Language": lang} if lang else {})


def graphql(
    site: ReplicaSite,
    query: str,
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    payload = {"query": query, "variables": variables}
    return call(site.url + "/graphql", payload=payload, headers=headers)


def news_query(args: str = '_lang:"en"', fields: str = "id title") -> str:
    return f"{{ news({args}) {{ {fields} }} }}"


def titles(reply: Reply) -> list[str]:
    data = reply.json()
    items = data["content"] if isinstance(data, dict) else data
    return [item["title"] for item in items]


@pytest.fixture
def site() -> Iterator[ReplicaSite]:
    with ReplicaSite() as running:
        yield running


# --- seed data ---------------------------------------------------------------------------------


def test_seed_statements_look_like_ministry_releases() -> None:
    assert len(STATEMENTS) == 8
    assert len({s["id"] for s in STATEMENTS}) == 8
    dates = [datetime.fromisoformat(s["created_date"]) for s in STATEMENTS]
    assert len(set(dates)) == 8
    assert all((d.year, d.month) == (2026, 11) for d in dates)
    bodies = []
    for statement in STATEMENTS:
        assert set(statement["texts"]) == set(LANGS)
        for text in statement["texts"].values():
            assert text["title"] and text["slug"] and text["short_description"]
            assert 3 <= text["body"].count("<p>") <= 6
            bodies.append(text["body"])
    kazakh = " ".join(t["title"] + t["body"] for s in STATEMENTS for t in [s["texts"]["kk"]])
    assert set("әғқңөұүһі") <= set(kazakh)
    assert any(re.search(r'href="/uploads/[^"]+\.pdf"', body) for body in bodies)
    assert any('href="https://' in body for body in bodies)


# --- pages and REST ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        LISTING_PAGE,
        f"/memleket/entities/mfa/press/news/details/{SEED_ID}?lang=ru",
        f"/memleket/entities/mfa/press/article/details/{SEED_ID}?lang=kk",
    ],
)
def test_spa_shell_pages_hold_no_statement_text(site: ReplicaSite, path: str) -> None:
    reply = call(site.url + path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert reply.headers["Date"]
    assert '<div id="root">' in reply.text
    assert f'window.__API_HASH__ = "{site.api_hash}"' in reply.text
    assert f'window.__API_TOKEN__ = "{site.api_token}"' in reply.text
    for text in STATEMENTS[0]["texts"].values():
        assert text["title"] not in reply.text


def test_rest_paged_answer_is_sorted_newest_first_and_paginated(site: ReplicaSite) -> None:
    pages = [listing(site, page=page, size=3) for page in (1, 2, 3, 4)]
    assert pages[0].headers["Content-Type"] == "application/json; charset=utf-8"
    first = pages[0].json()
    assert {k: first[k] for k in ("totalElements", "totalPages", "number", "size")} == {
        "totalElements": 8,
        "totalPages": 3,
        "number": 0,
        "size": 3,
    }
    items = [item for reply in pages for item in reply.json()["content"]]
    assert [len(reply.json()["content"]) for reply in pages] == [3, 3, 2, 0]
    dates = [datetime.fromisoformat(item["created_date"]) for item in items]
    assert dates == sorted(dates, reverse=True)
    assert sorted(item["id"] for item in items) == sorted(s["id"] for s in STATEMENTS)
    assert set(items[0]) >= {"id", "title", "slug", "created_date", "short_description", "body"}
    assert items[0]["projects"] == "mfa"


def test_rest_list_format_answers_a_bare_list() -> None:
    with ReplicaSite(rest_format="list") as site:
        data = listing(site, size=5).json()
    assert isinstance(data, list)
    assert len(data) == 5


@pytest.mark.parametrize(
    ("header", "lang"),
    [("en", "en"), ("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("kk-KZ", "kk"), (None, "ru"), ("de", "ru")],
)
def test_accept_language_picks_the_language(
    site: ReplicaSite, header: str | None, lang: str
) -> None:
    newest = max(STATEMENTS, key=lambda s: s["created_date"])
    assert titles(listing(site, header))[0] == newest["texts"][lang]["title"]
    item = call(f"{site.url}{API}/{SEED_ID}", headers={"Accept-Language": header or ""}).json()
    assert item["title"] == STATEMENTS[0]["texts"][lang]["title"]


@pytest.mark.parametrize("query", ["page=0", "size=500", "page=x", "sort-by=title:ASC"])
def test_rest_rejects_bad_parameters(site: ReplicaSite, query: str) -> None:
    reply = call(f"{site.url}{API}?{query}")
    assert reply.status == 400
    assert reply.json()["status"] == 400


def test_rest_projects_filter_for_another_agency_is_empty(site: ReplicaSite) -> None:
    assert call(f"{site.url}{API}?projects=eq:mvd").json()["content"] == []


def test_views_counter_counts_every_api_answer(site: ReplicaSite) -> None:
    def views() -> int:
        return int(call(f"{site.url}{API}/{SEED_ID}").json()["views"])

    before = views()
    listing(site)
    assert views() == before + 2  # the listing counted one view, the second fetch another


# --- GraphQL -----------------------------------------------------------------------------------


def test_graphql_returns_requested_fields_page_and_language(site: ReplicaSite) -> None:
    args = '_lang:"kk", projects:"contains:mfa", _size:3, _page:2, _sort:"created_date:DESC"'
    reply = graphql(site, news_query(args, "id title created_date"))
    assert reply.status == 200
    news = reply.json()["data"]["news"]
    assert all(set(item) == {"id", "title", "created_date"} for item in news)
    rest = listing(site, "kk", page=2, size=3).json()["content"]
    assert [(n["id"], n["title"]) for n in news] == [(r["id"], r["title"]) for r in rest]


def test_graphql_defaults_and_variables(site: ReplicaSite) -> None:
    named = "query News($size: Int, $lang: String) { news(_size: $size, _lang: $lang) { id } }"
    assert len(graphql(site, named, {"size": 2, "lang": "ru"}).json()["data"]["news"]) == 2
    # Without _lang the header decides; without _size a page holds 10 (all 8 here).
    news = graphql(site, "{ news { title } }", headers={"Accept-Language": "en"}).json()["data"][
        "news"
    ]
    assert len(news) == 8
    assert news[-1]["title"] == SEED_EN["title"]
    ascending = graphql(site, news_query('_sort:"created_date:ASC"')).json()["data"]["news"]
    assert ascending[0]["id"] == SEED_ID
    other = graphql(site, news_query('projects:"contains:mvd"')).json()["data"]["news"]
    assert other == []


@pytest.mark.parametrize(
    "query",
    [
        "{ news { id title",
        "{ news { id secret } }",
        '{ news(_colour:"red") { id } }',
        "{ news(_size: $missing) { id } }",
        '{ news(_size:"ten") { id } }',
        "{ news(_size:0) { id } }",
        '{ news(_lang:"de") { id } }',
        "{ news { } }",
        "{ ministers { id } }",
    ],
)
def test_graphql_rejects_malformed_queries(site: ReplicaSite, query: str) -> None:
    reply = graphql(site, query)
    assert reply.status == 400
    assert reply.json()["errors"][0]["message"]


def test_graphql_rejects_a_body_that_is_not_json(site: ReplicaSite) -> None:
    reply = call(site.url + "/graphql", raw=b"{not json", headers={"Content-Type": "text/plain"})
    assert reply.status == 400
    assert "errors" in reply.json()


# --- mutations ---------------------------------------------------------------------------------


def test_edit_is_visible_in_both_apis(site: ReplicaSite) -> None:
    site.edit(SEED_ID, "en", title="Amended title", body="<p>New body.</p>")
    item = call(f"{site.url}{API}/{SEED_ID}", headers={"Accept-Language": "en"}).json()
    assert (item["title"], item["body"]) == ("Amended title", "<p>New body.</p>")
    assert item["short_description"] == SEED_EN["short_description"]
    # Other languages are untouched.
    russian = call(f"{site.url}{API}/{SEED_ID}").json()
    assert russian["title"] == STATEMENTS[0]["texts"]["ru"]["title"]
    site.edit(SEED_ID, "en", created_date="2026-11-30T09:00:00.000+05:00")
    news = graphql(site, news_query(fields="id title")).json()["data"]["news"]
    assert news[0] == {"id": SEED_ID, "title": "Amended title"}


def test_edit_never_touches_the_seed_module(site: ReplicaSite) -> None:
    site.replace_text(SEED_ID, "en", "Aktau", "Atyrau")
    assert "Atyrau" not in STATEMENTS[0]["texts"]["en"]["body"]
    with ReplicaSite() as fresh:
        assert "Atyrau" not in call(f"{fresh.url}{API}/{SEED_ID}").text


def test_replace_text_changes_the_body_or_complains(site: ReplicaSite) -> None:
    assert site.replace_text(SEED_ID, "en", "14 rounds", "15 rounds") == 1
    body = call(f"{site.url}{API}/{SEED_ID}", headers={"Accept-Language": "en"}).json()["body"]
    assert "15 rounds" in body and "14 rounds" not in body
    with pytest.raises(ValueError):
        site.replace_text(SEED_ID, "en", "no such words", "x")
    with pytest.raises(KeyError):
        site.replace_text(1, "en", "Aktau", "x")
    with pytest.raises(ValueError):
        site.replace_text(SEED_ID, "de", "Aktau", "x")


def test_added_statement_is_newest_and_remove_restore_round_trip(site: ReplicaSite) -> None:
    new_id = site.add({"en": {"title": "Breaking statement", "body": "<p>Text.</p>"}})
    assert titles(listing(site))[0] == "Breaking statement"
    # Without a Russian version it is absent from the Russian listing and item endpoint.
    assert listing(site, "ru").json()["totalElements"] == 8
    assert call(f"{site.url}{API}/{new_id}").status == 404

    site.remove(new_id)
    assert "Breaking statement" not in titles(listing(site))
    reply = call(f"{site.url}{API}/{new_id}", headers={"Accept-Language": "en"})
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    site.restore(new_id)
    assert titles(listing(site))[0] == "Breaking statement"
    with pytest.raises(ValueError):
        site.add({"en": {"title": "Duplicate", "body": "<p>x</p>"}}, id=new_id)


def test_control_endpoints_drive_the_site_from_another_process(site: ReplicaSite) -> None:
    def control(action: str, **payload: Any) -> Reply:
        return call(f"{site.url}/__replica__/{action}", payload=payload)

    assert control("edit", id=SEED_ID, lang="en", title="Via HTTP").json()["ok"] is True
    assert control("edit", id=SEED_ID, lang="en", old="Aktau", new="Atyrau").json()["replaced"] == 2
    added = control("add", texts={"en": {"title": "Added via HTTP", "body": "<p>x</p>"}}).json()
    assert titles(listing(site))[:2] == ["Added via HTTP", STATEMENTS[-1]["texts"]["en"]["title"]]
    assert control("remove", id=added["id"]).status == 200
    assert "Added via HTTP" not in titles(listing(site))
    assert control("restore", id=added["id"]).status == 200
    assert control("mode", mode="maintenance").json() == {"ok": True, "mode": "maintenance"}
    assert site.mode == "maintenance"

    assert control("edit", id=1, lang="en", title="x").status == 404
    assert control("edit", id="1", lang="en", title="x").status == 400
    assert control("mode", mode="sideways").status == 400
    assert control("explode").status == 404
    assert control("add", texts={"en": "not an object"}).status == 400
    state = call(f"{site.url}/__replica__/state").json()
    assert state["mode"] == "maintenance" and len(state["statements"]) == 9
    # Control traffic is not client traffic.
    assert not any(path.startswith("/__replica__") for _, path in site.requests)


# --- outages and defences ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "marker"),
    [
        ("error", 500, "500 Internal Server Error"),
        ("captcha", 200, "Just a moment..."),
        ("maintenance", 503, "Технические работы"),
    ],
)
@pytest.mark.parametrize("path", [LISTING_PAGE, API, f"{API}/{SEED_ID}"])
def test_outage_modes_answer_html_on_every_route(
    site: ReplicaSite, mode: str, status: int, marker: str, path: str
) -> None:
    site.set_mode(mode)
    reply = call(site.url + path)
    assert reply.status == status
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert marker in reply.text
    assert graphql(site, news_query()).status == status
    site.set_mode("ok")
    assert call(site.url + path).status == 200


def test_graphql_off_and_rest_off_switch_one_api_off(site: ReplicaSite) -> None:
    site.set_mode("graphql_off")
    assert graphql(site, news_query()).status == 404
    assert listing(site).status == 200
    site.set_mode("rest_off")
    assert listing(site).status == 404
    assert call(f"{site.url}{API}/{SEED_ID}").status == 404
    assert graphql(site, news_query()).status == 200
    with pytest.raises(ValueError):
        site.set_mode("sideways")


def test_down_mode_drops_connections_until_brought_back(site: ReplicaSite) -> None:
    site.set_mode("down")
    with pytest.raises(OSError):  # URLError and http.client.RemoteDisconnected alike
        listing(site)
    httpx = pytest.importorskip("httpx")
    with pytest.raises(httpx.TransportError):
        httpx.get(site.url + LISTING_PAGE, timeout=5)
    # The control endpoint still answers, so another process can end the outage.
    assert call(f"{site.url}/__replica__/mode", payload={"mode": "ok"}).status == 200
    assert listing(site).status == 200


def test_keep_alive_client_survives_posts_and_outages(site: ReplicaSite) -> None:
    # The daemon fetches with a pooled httpx client: bodies must be consumed and a dropped
    # connection must not poison the pool once the site is back.
    httpx = pytest.importorskip("httpx")
    with httpx.Client(base_url=site.url, timeout=5) as client:
        for _ in range(2):
            assert client.post("/graphql", json={"query": news_query()}).status_code == 200
            assert client.get(API, headers={"Accept-Language": "en"}).status_code == 200
        site.set_mode("down")
        with pytest.raises(httpx.TransportError):
            client.get(API)
        site.set_mode("ok")
        assert client.get(API).status_code == 200


def test_require_tokens_demands_the_headers_from_the_shell() -> None:
    with ReplicaSite(require_tokens=True) as site:
        refused = listing(site)
        assert refused.status == 401
        assert refused.json()["status"] == 401
        shell = call(site.url + LISTING_PAGE).text
        found = dict(re.findall(r'window\.__API_(HASH|TOKEN)__ = "([^"]+)"', shell))
        assert found == {"HASH": site.api_hash, "TOKEN": site.api_token}
        headers = {"hash": found["HASH"], "token": found["TOKEN"], "Accept-Language": "en"}
        assert call(f"{site.url}{API}?page=1&size=2", headers=headers).status == 200
        assert call(f"{site.url}{API}/{SEED_ID}", headers=headers).status == 200
        assert call(f"{site.url}{API}/{SEED_ID}", headers={**headers, "token": "x"}).status == 401


# --- housekeeping ------------------------------------------------------------------------------


def test_requests_are_logged_and_restart_keeps_the_address(site: ReplicaSite) -> None:
    site.clear_requests()
    call(site.url + LISTING_PAGE)
    graphql(site, news_query())
    assert site.requests == [("GET", LISTING_PAGE), ("POST", "/graphql")]
    url = site.url
    site.stop()
    with pytest.raises(OSError):
        call(url + LISTING_PAGE)
    site.start()
    assert site.url == url
    assert call(url + LISTING_PAGE).status == 200


def test_unknown_paths_and_methods(site: ReplicaSite) -> None:
    assert call(site.url + "/favicon.ico").status == 404
    assert call(site.url + "/graphql").status == 405
    head = call(site.url + LISTING_PAGE, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) > 0
