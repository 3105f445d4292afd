"""gov.kz pages as a browser shows them once the single-page app has run.

What Chromium's `page.content()` gives for a statement or a listing (and what "Save page as"
keeps): the shell's <head> and scripts, and inside the app's mount point the markup the app
built from the API answer. The class names a browser-driven scraper waits for are the ones
public scrapers of gov.kz use (listing cards `div.card-news-list__item`, each title inside
`div.inner-html`, the date in `p.typography.typography__variant-caption`, paging by
`button[aria-label="Next page"]`, the statement's title as `article h1`); the rest of the
markup (wrappers, the body's container, furniture) is ours and deliberately not what the
`govkz` profile keys on: it finds the body by its prose, not by a class name.

The same structure is built by the shell's script in a real browser (see `server._SHELL`),
so `fetcher = "browser"` on the replica sees this markup too.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

ENTITY_PATH = "/memleket/entities/mfa"
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
        "footer": "© 2026 Министерство иностранных дел Республики Казахстан. "
        "Все права защищены.",
        "hotline": "Единый контакт-центр для граждан за рубежом: 1414",
        "not_found": "Страница не найдена",
        "not_found_text": "Запрашиваемая страница не существует или была удалена.",
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
    },
}
_MONTHS = {
    "en": "January February March April May June July August September October November "
    "December".split(),
    "ru": "января февраля марта апреля мая июня июля августа сентября октября ноября "
    "декабря".split(),
    "kk": "қаңтар ақпан наурыз сәуір мамыр маусым шілде тамыз қыркүйек қазан қараша "
    "желтоқсан".split(),
}


def shown_date(created_date: str, lang: str) -> str:
    """The statement's date as its page shows it: "3 November 2026, 10:15"."""
    moment = datetime.fromisoformat(created_date)
    return f"{moment.day} {_MONTHS[lang][moment.month - 1]} {moment.year}, {moment:%H:%M}"


def card_date(created_date: str) -> str:
    """The date on a listing card: "03.11.2026"."""
    return f"{datetime.fromisoformat(created_date):%d.%m.%Y}"


def details_path(item_id: int, lang: str) -> str:
    return f"{ENTITY_PATH}/press/news/details/{item_id}?lang={lang}"


def statement_page(
    item: Mapping[str, Any], lang: str, others: Iterable[Mapping[str, Any]] = ()
) -> str:
    """A statement page as rendered: title, date and views, the body, share links, and a
    column of other news. `item` is the API item the app was given."""
    ui = UI[lang]
    title = html.escape(str(item["title"]))
    cards = "".join(_card(other, lang) for other in others)
    date = shown_date(str(item["created_date"]), lang)
    shared = f"https%3A%2F%2Fwww.gov.kz{ENTITY_PATH.replace('/', '%2F')}%2Fpress%2Fnews%2Fdetails%2F"
    shared += str(item["id"])
    body = f"""
<div class="breadcrumbs"><nav aria-label="breadcrumb"><ol class="breadcrumbs__list">
<li class="breadcrumbs__item"><a href="/?lang={lang}">{ui["home"]}</a></li>
<li class="breadcrumbs__item"><a href="{ENTITY_PATH}/press/news?lang={lang}">{ui["press"]}</a></li>
<li class="breadcrumbs__item" aria-current="page">{ui["news"]}</li>
</ol></nav></div>
<div class="news-detail">
<div class="news-detail__main">
<article class="news-detail__article">
<h1 class="typography typography__variant-h1 news-detail__title">{title}</h1>
<div class="news-detail__info">
<p class="typography typography__variant-caption categories__item color_grey">{date}</p>
<p class="typography typography__variant-caption news-detail__views" title="{ui["views"]}">\
{_EYE}<span>{item.get("views", 0)}</span></p>
</div>
<div class="news-detail__content"><div class="inner-html">{item["body"]}</div></div>
<div class="news-detail__share"><p class="typography typography__variant-body2">{ui["share"]}:</p>
<a class="share-button" href="https://www.facebook.com/sharer/sharer.php?u={shared}">Facebook</a>
<a class="share-button" href="https://t.me/share/url?url={shared}">Telegram</a>
<a class="share-button" href="https://wa.me/?text={shared}">WhatsApp</a></div>
</article>
</div>
<div class="news-detail__aside">
<h2 class="typography typography__variant-h4">{ui["other"]}</h2>
<div class="card-news-list card-news-list--column">{cards}</div>
</div>
</div>"""
    return _document(lang, f"{item['title']} | {ui['ministry']}", body)


def listing_page(items: Iterable[Mapping[str, Any]], lang: str, page: int, last_page: int) -> str:
    """A press listing as rendered: one card per statement and the pager."""
    ui = UI[lang]
    cards = "".join(_card(item, lang) for item in items)
    previous = ' disabled=""' if page <= 1 else ""
    following = ' disabled=""' if page >= last_page else ""
    numbers = "".join(
        f'<button class="pagination__item{" pagination__item--active" if n == page else ""}" '
        f'aria-label="Page {n}"{_CURRENT if n == page else ""}>{n}</button>'
        for n in range(1, last_page + 1)
    )
    body = f"""
<div class="breadcrumbs"><nav aria-label="breadcrumb"><ol class="breadcrumbs__list">
<li class="breadcrumbs__item"><a href="/?lang={lang}">{ui["home"]}</a></li>
<li class="breadcrumbs__item" aria-current="page">{ui["press"]}</li>
</ol></nav></div>
<h1 class="typography typography__variant-h2">{ui["news"]}</h1>
<div class="card-news-list">{cards}</div>
<div class="pagination"><button class="pagination__arrow" aria-label="Previous page"{previous}>‹</button>\
{numbers}<button class="pagination__arrow" aria-label="Next page"{following}>›</button></div>"""
    return _document(lang, f"{ui['news']} | {ui['ministry']}", body)


def not_found_page(lang: str) -> str:
    """The app's own view for a statement the API does not have (the server answers 200)."""
    ui = UI[lang]
    body = f"""
<div class="not-found"><h2 class="typography typography__variant-h2">{ui["not_found"]}</h2>
<p class="typography typography__variant-body1">{ui["not_found_text"]}</p>
<a class="not-found__link" href="/?lang={lang}">{ui["home"]}</a></div>"""
    return _document(lang, f"{ui['not_found']} | {ui['ministry']}", body)


def _card(item: Mapping[str, Any], lang: str) -> str:
    return f"""
<div class="card-news-list__item"><a class="card-news" href="{details_path(item["id"], lang)}">
<div class="card-news__image"><img src="/uploads/news/{item["id"]}/cover.jpg" alt="" loading="lazy"></div>
<div class="card-news__content"><div class="typography typography__variant-h6 card-news__title">\
<div class="inner-html">{html.escape(str(item["title"]))}</div></div>
<div class="categories"><p class="typography typography__variant-caption categories__item color_grey">\
{card_date(str(item["created_date"]))}</p></div></div></a></div>"""


_CURRENT = ' aria-current="true"'
_EYE = (
    '<svg class="icon" width="16" height="16" viewBox="0 0 24 24" aria-hidden="true">'
    '<path d="M12 5C7 5 2.7 8.1 1 12c1.7 3.9 6 7 11 7s9.3-3.1 11-7c-1.7-3.9-6-7-11-7z"/></svg>'
)


def _document(lang: str, title: str, content: str) -> str:
    ui = UI[lang]
    menu = "".join(
        f'<li class="menu__item"><a class="menu__link" href="{ENTITY_PATH}/{n}?lang={lang}">'
        f"{label}</a></li>"
        for n, label in enumerate(ui["menu"].split("|"))
    )
    languages = "".join(
        f'<a class="lang-switch__item{" lang-switch__item--active" if code == lang else ""}" '
        f'href="?lang={code}">{code.upper() if code != "kk" else "ҚАЗ"}</a>'
        for code in UI
    )
    return f"""<!DOCTYPE html><html lang="{lang}"><head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/static/css/main.8c1f2e4b.css">
<script defer="" src="/static/js/main.3b9a7d21.js"></script>
</head><body>
<noscript>You need to enable JavaScript to run this app.</noscript>
<div id="root"><div class="app">
<header class="header"><div class="container header__inner">
<a class="header__logo" href="{ENTITY_PATH}?lang={lang}"><img src="/static/media/emblem.svg" alt="">\
<span class="typography typography__variant-subtitle1">{ui["ministry"]}</span></a>
<div class="lang-switch">{languages}</div>
<button class="header__search" aria-label="Search">⌕</button>
</div><nav class="menu"><ul class="menu__list">{menu}</ul></nav></header>
<main class="main"><div class="container">{content}
</div></main>
<footer class="footer"><div class="container">
<p class="typography typography__variant-body2">{ui["hotline"]}</p>
<p class="typography typography__variant-caption">{ui["footer"]}</p>
</div></footer>
</div></div>
</body></html>
"""
