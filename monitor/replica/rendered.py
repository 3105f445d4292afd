"""gov.kz pages: the app's empty shell, and the same page as a browser shows it once the
single-page app has run.

A plain HTTP client gets the shell: the mount point and the script that asks the API. A
browser runs the script, which builds the statement or listing from the API's answer;
Chromium's `page.content()` (what `fetcher = "browser"` reads) and "Save page as" then hold
that markup. `page()` builds the same markup in Python (the replica's `prerender` mode and
`ReplicaSite.rendered_page`), from the same templates the script fills in the browser, so
both ways give one markup.

The class names a browser-driven scraper waits for are the ones public scrapers of gov.kz
use (listing cards `div.card-news-list__item`, each title inside `div.inner-html`, the date
in `p.typography.typography__variant-caption`, paging by `button[aria-label="Next page"]`,
the statement's title as `article h1`); the rest (wrappers, the body's container, the
furniture) is ours, and the `govkz` profile does not key on it: it finds the body by its
prose, not by a class name.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

ENTITY_PATH = "/memleket/entities/mfa"
APP_SCRIPT_PATH = "/static/js/main.3b9a7d21.js"
CARDS_PER_PAGE = 10

# The app's fixed texts per language.
UI: dict[str, dict[str, str]] = {
    "en": {
        "ministry": "Ministry of Foreign Affairs of the Republic of Kazakhstan",
        "menu": "About the Ministry|Activities|Press center|Documents|Contacts",
        "home": "Home",
        "press": "Press center",
        "news": "News",
        "share": "Share",
        "other": "Other news",
        "views": "Views",
        "footer": "© 2026 Ministry of Foreign Affairs of the Republic of Kazakhstan. "
        "All rights reserved.",
        "hotline": "Call center for citizens abroad: 1414",
        "not_found": "Page not found",
        "not_found_text": "The page you requested does not exist or has been removed.",
        "months": "January|February|March|April|May|June|July|August|September|October"
        "|November|December",
    },
    "ru": {
        "ministry": "Министерство иностранных дел Республики Казахстан",
        "menu": "О министерстве|Деятельность|Пресс-центр|Документы|Контакты",
        "home": "Главная",
        "press": "Пресс-центр",
        "news": "Новости",
        "share": "Поделиться",
        "other": "Другие новости",
        "views": "Просмотров",
        "footer": "© 2026 Министерство иностранных дел Республики Казахстан. Все права защищены.",
        "hotline": "Единый контакт-центр для граждан за рубежом: 1414",
        "not_found": "Страница не найдена",
        "not_found_text": "Запрашиваемая страница не существует или была удалена.",
        "months": "января|февраля|марта|апреля|мая|июня|июля|августа|сентября|октября"
        "|ноября|декабря",
    },
    "kk": {
        "ministry": "Қазақстан Республикасы Сыртқы істер министрлігі",
        "menu": "Министрлік туралы|Қызмет|Баспасөз орталығы|Құжаттар|Байланыс",
        "home": "Басты бет",
        "press": "Баспасөз орталығы",
        "news": "Жаңалықтар",
        "share": "Бөлісу",
        "other": "Басқа жаңалықтар",
        "views": "Қаралым",
        "footer": "© 2026 Қазақстан Республикасы Сыртқы істер министрлігі. "
        "Барлық құқықтар қорғалған.",
        "hotline": "Шетелдегі азаматтарға арналған бірыңғай байланыс орталығы: 1414",
        "not_found": "Бет табылмады",
        "not_found_text": "Сұралған бет жоқ немесе жойылған.",
        "months": "қаңтар|ақпан|наурыз|сәуір|мамыр|маусым|шілде|тамыз|қыркүйек|қазан|қараша"
        "|желтоқсан",
    },
}

# The app's markup, filled by `_fill` here and by `fill` in the shell's script: `{name}` is
# a value, nothing else in a template is a brace.
TEMPLATES: dict[str, str] = {
    "app": """<div class="app">
<header class="header"><div class="container header__inner">
<a class="header__logo" href="{entity}?lang={lang}"><img src="/static/media/emblem.svg" alt="">
<span class="typography typography__variant-subtitle1">{ministry}</span></a>
<div class="lang-switch">{languages}</div>
<button class="header__search" aria-label="Search">⌕</button>
</div><nav class="menu"><ul class="menu__list">{menu}</ul></nav></header>
<main class="main"><div class="container">{content}
</div></main>
<footer class="footer"><div class="container">
<p class="typography typography__variant-body2">{hotline}</p>
<p class="typography typography__variant-caption">{footer}</p>
</div></footer>
</div>""",
    "menu_item": '<li class="menu__item"><a class="menu__link" href="{entity}/{n}?lang={lang}">'
    "{label}</a></li>",
    "lang_item": '<a class="lang-switch__item{active}" href="?lang={code}">{label}</a>',
    "statement": """
<div class="breadcrumbs"><nav aria-label="breadcrumb"><ol class="breadcrumbs__list">
<li class="breadcrumbs__item"><a href="/?lang={lang}">{home}</a></li>
<li class="breadcrumbs__item"><a href="{entity}/press/news?lang={lang}">{press}</a></li>
<li class="breadcrumbs__item" aria-current="page">{news}</li>
</ol></nav></div>
<div class="news-detail">
<div class="news-detail__main">
<article class="news-detail__article">
<h1 class="typography typography__variant-h1 news-detail__title">{title}</h1>
<div class="news-detail__info">
<p class="typography typography__variant-caption categories__item color_grey">{date}</p>
<p class="typography typography__variant-caption news-detail__views" title="{views_label}">
<svg class="icon" width="16" height="16" viewBox="0 0 24 24" aria-hidden="true">
<path d="M12 5C7 5 2.7 8.1 1 12c1.7 3.9 6 7 11 7s9.3-3.1 11-7c-1.7-3.9-6-7-11-7z"></path>
</svg><span>{views}</span></p>
</div>
<div class="news-detail__content"><div class="inner-html">{body}</div></div>
<div class="news-detail__share">
<p class="typography typography__variant-body2">{share}:</p>
<a class="share-button" href="https://www.facebook.com/sharer/sharer.php?u={shared}">Facebook</a>
<a class="share-button" href="https://t.me/share/url?url={shared}">Telegram</a>
<a class="share-button" href="https://wa.me/?text={shared}">WhatsApp</a>
</div>
</article>
</div>
<div class="news-detail__aside">
<h2 class="typography typography__variant-h4">{other}</h2>
<div class="card-news-list card-news-list--column">{cards}</div>
</div>
</div>""",
    "card": """
<div class="card-news-list__item"><a class="card-news" href="{href}">
<div class="card-news__image"><img src="/uploads/news/{id}/cover.jpg" alt="" loading="lazy">
</div>
<div class="card-news__content">
<div class="typography typography__variant-h6 card-news__title">
<div class="inner-html">{title}</div></div>
<div class="categories">
<p class="typography typography__variant-caption categories__item color_grey">{date}</p>
</div></div></a></div>""",
    "listing": """
<div class="breadcrumbs"><nav aria-label="breadcrumb"><ol class="breadcrumbs__list">
<li class="breadcrumbs__item"><a href="/?lang={lang}">{home}</a></li>
<li class="breadcrumbs__item" aria-current="page">{press}</li>
</ol></nav></div>
<h1 class="typography typography__variant-h2">{news}</h1>
<div class="card-news-list">{cards}</div>
<div class="pagination">
<button class="pagination__arrow" aria-label="Previous page"{previous}>‹</button>{numbers}
<button class="pagination__arrow" aria-label="Next page"{following}>›</button>
</div>""",
    "page_button": '<button class="pagination__item{active}" aria-label="Page {n}"{current}>'
    "{n}</button>",
    "not_found": """
<div class="not-found"><h2 class="typography typography__variant-h2">{not_found}</h2>
<p class="typography typography__variant-body1">{not_found_text}</p>
<a class="not-found__link" href="/?lang={lang}">{home}</a></div>""",
}

# The shell: no statement text, only the mount point and the app's script. The hash/token
# pair is embedded the way the real site carries it, so a client that must send them has
# to read them from here. `$root` is empty as served, the app's markup once rendered.
_SHELL = """<!DOCTYPE html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<script>
window.__API_HASH__ = "$api_hash";
window.__API_TOKEN__ = "$api_token";
</script>
<script defer src="$script"></script>
</head>
<body>
<noscript>You need to enable JavaScript to run this app.</noscript>
<div id="root">$root</div>
</body>
</html>
"""
# The app's bundle, served apart from the pages as a real bundle is (its texts, "page not
# found" among them, are then not in every page).
_APP_SCRIPT = """(function () {
  var TEMPLATES = $templates;
  var UI = $ui;
  var ENTITY = "$entity", PER_PAGE = $per_page;
  var root = document.getElementById("root");
  if (root.children.length) return;  // rendered already
  var lang = new URLSearchParams(location.search).get("lang") || "ru";
  if (!UI[lang]) lang = "ru";
  var ui = UI[lang];
  function fill(name, values) {
    return TEMPLATES[name].replace(/\\{(\\w+)\\}/g, function (m, key) {
      return key in values ? values[key] : (key in ui ? ui[key] : m);
    });
  }
  function escape(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function wall(created) { return created.match(/^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2})/); }
  function shownDate(created) {
    var d = wall(created);
    return Number(d[3]) + " " + ui.months.split("|")[Number(d[2]) - 1] + " " + d[1] + ", "
      + d[4] + ":" + d[5];
  }
  function cardDate(created) { var d = wall(created); return d[3] + "." + d[2] + "." + d[1]; }
  function card(item) {
    return fill("card", {href: ENTITY + "/press/news/details/" + item.id + "?lang=" + lang,
      id: item.id, title: escape(item.title), date: cardDate(item.created_date)});
  }
  function show(title, content) {
    var menu = ui.menu.split("|").map(function (label, n) {
      return fill("menu_item", {entity: ENTITY, n: n, lang: lang, label: label});
    }).join("");
    var languages = Object.keys(UI).map(function (code) {
      return fill("lang_item", {code: code, label: code === "kk" ? "ҚАЗ" : code.toUpperCase(),
                                active: code === lang ? " lang-switch__item--active" : ""});
    }).join("");
    document.title = title + " | " + ui.ministry;
    root.innerHTML = fill("app", {entity: ENTITY, lang: lang, languages: languages, menu: menu,
                                  content: content});
  }
  function notFound() { show(ui.not_found, fill("not_found", {lang: lang})); }
  function api(query) {
    return fetch("$api" + query, {headers: {"Accept-Language": lang,
      "hash": window.__API_HASH__, "token": window.__API_TOKEN__}})
      .then(function (response) { return response.ok ? response.json() : null; });
  }
  function items(data) { return Array.isArray(data) ? data : data.content; }
  var details = location.pathname.match(/\\/details\\/(\\d+)/);
  if (details) {
    Promise.all([api("/" + details[1]),
                 api("?sort-by=created_date:DESC&projects=eq:mfa&page=1&size=5")])
      .then(function (answers) {
        var item = answers[0];
        if (!item) return notFound();
        var others = (answers[1] ? items(answers[1]) : []).filter(function (other) {
          return other.id !== item.id;
        }).slice(0, 4);
        var shared = "https%3A%2F%2Fwww.gov.kz" + ENTITY.replace(/\\//g, "%2F")
          + "%2Fpress%2Fnews%2Fdetails%2F" + item.id;
        show(item.title, fill("statement", {entity: ENTITY, lang: lang, title: escape(item.title),
          date: shownDate(item.created_date), views: item.views, views_label: ui.views,
          body: item.body, shared: shared, cards: others.map(card).join("")}));
      });
    return;
  }
  var number = location.pathname.match(/\\/(\\d+)\\/?$$/);
  var page = Number(number ? number[1]
    : new URLSearchParams(location.search).get("page") || 1);
  api("?sort-by=created_date:DESC&projects=eq:mfa&page=" + page + "&size=" + PER_PAGE)
    .then(function (data) {
      if (!data) return notFound();
      var list = items(data);
      var last = data.totalPages || (list.length < PER_PAGE ? page : page + 1);
      var numbers = "";
      for (var n = 1; n <= last; n++) {
        numbers += fill("page_button", {n: n,
          active: n === page ? " pagination__item--active" : "",
          current: n === page ? ' aria-current="true"' : ""});
      }
      show(ui.news, fill("listing", {lang: lang, cards: list.map(card).join(""), numbers: numbers,
        previous: page <= 1 ? ' disabled=""' : "", following: page >= last ? ' disabled=""' : ""}));
    });
})();
"""
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_SHELL_TITLE = "Ministry of Foreign Affairs of the Republic of Kazakhstan | Official Website"


def shell(lang: str, api_hash: str, api_token: str, root: str = "") -> str:
    """The page as served: the app's empty mount point (or `root`, the app's markup once
    rendered) and its script."""
    values = {
        "lang": lang,
        "title": _SHELL_TITLE,
        "api_hash": api_hash,
        "api_token": api_token,
        "root": root,
        "script": APP_SCRIPT_PATH,
    }
    return re.sub(r"\$(\w+)", lambda m: values[m[1]], _SHELL)


def app_script(api_path: str) -> str:
    """The app's script: asks the API and builds the page from `TEMPLATES`."""
    values = {
        "templates": json.dumps(TEMPLATES, ensure_ascii=False),
        "ui": json.dumps(UI, ensure_ascii=False),
        "entity": ENTITY_PATH,
        "per_page": str(CARDS_PER_PAGE),
        "api": api_path,
    }
    # $$ is a literal dollar (a regex's end).
    return re.sub(r"\$(\$|\w+)", lambda m: "$" if m[1] == "$" else values[m[1]], _APP_SCRIPT)


def _shown_date(created_date: str, ui: Mapping[str, str]) -> str:
    """The statement's date as its page shows it: "3 November 2026, 10:15"."""
    moment = datetime.fromisoformat(created_date)
    month = ui["months"].split("|")[moment.month - 1]
    return f"{moment.day} {month} {moment.year}, {moment:%H:%M}"


def _card_date(created_date: str) -> str:
    return f"{datetime.fromisoformat(created_date):%d.%m.%Y}"


def statement_page(
    shell_values: Mapping[str, str],
    item: Mapping[str, Any],
    lang: str,
    others: Iterable[Mapping[str, Any]] = (),
) -> str:
    """A statement page as rendered: title, date and views, the body, share links and a
    column of other news. `item` is the API item the app was given."""
    ui = UI[lang]
    shared = f"https%3A%2F%2Fwww.gov.kz{ENTITY_PATH.replace('/', '%2F')}%2Fpress%2Fnews%2F"
    content = _fill(
        "statement",
        ui,
        entity=ENTITY_PATH,
        lang=lang,
        title=html.escape(str(item["title"]), quote=False),
        date=_shown_date(str(item["created_date"]), ui),
        views=str(item.get("views", 0)),
        views_label=ui["views"],
        body=str(item["body"]),
        shared=f"{shared}details%2F{item['id']}",
        cards="".join(_card(other, lang) for other in others),
    )
    return _page(shell_values, lang, str(item["title"]), content)


def listing_page(
    shell_values: Mapping[str, str],
    items: Iterable[Mapping[str, Any]],
    lang: str,
    page: int,
    last: int,
) -> str:
    """A press listing as rendered: one card per statement and the pager."""
    ui = UI[lang]
    numbers = "".join(
        _fill(
            "page_button",
            ui,
            n=str(n),
            active=" pagination__item--active" if n == page else "",
            current=' aria-current="true"' if n == page else "",
        )
        for n in range(1, last + 1)
    )
    content = _fill(
        "listing",
        ui,
        lang=lang,
        cards="".join(_card(item, lang) for item in items),
        numbers=numbers,
        previous=' disabled=""' if page <= 1 else "",
        following=' disabled=""' if page >= last else "",
    )
    return _page(shell_values, lang, ui["news"], content)


def not_found_page(shell_values: Mapping[str, str], lang: str) -> str:
    """The app's own view for a statement the API does not have (the server answers 200)."""
    ui = UI[lang]
    return _page(shell_values, lang, ui["not_found"], _fill("not_found", ui, lang=lang))


def _card(item: Mapping[str, Any], lang: str) -> str:
    return _fill(
        "card",
        UI[lang],
        href=f"{ENTITY_PATH}/press/news/details/{item['id']}?lang={lang}",
        id=str(item["id"]),
        title=html.escape(str(item["title"]), quote=False),
        date=_card_date(str(item["created_date"])),
    )


def _page(shell_values: Mapping[str, str], lang: str, title: str, content: str) -> str:
    ui = UI[lang]
    menu = "".join(
        _fill("menu_item", ui, entity=ENTITY_PATH, n=str(n), lang=lang, label=label)
        for n, label in enumerate(ui["menu"].split("|"))
    )
    languages = "".join(
        _fill(
            "lang_item",
            ui,
            code=code,
            label="ҚАЗ" if code == "kk" else code.upper(),
            active=" lang-switch__item--active" if code == lang else "",
        )
        for code in UI
    )
    app = _fill(
        "app", ui, entity=ENTITY_PATH, lang=lang, languages=languages, menu=menu, content=content
    )
    page = shell(lang, root=app, **shell_values)
    # The app sets the document's title, as the browser's serialisation then shows it.
    full_title = html.escape(f"{title} | {ui['ministry']}", quote=False)
    return page.replace(f"<title>{_SHELL_TITLE}</title>", f"<title>{full_title}</title>", 1)


def _fill(name: str, ui: Mapping[str, str], **values: str) -> str:
    def value(match: re.Match[str]) -> str:
        key = match[1]
        return values[key] if key in values else ui.get(key, match[0])

    return _PLACEHOLDER.sub(value, TEMPLATES[name])
