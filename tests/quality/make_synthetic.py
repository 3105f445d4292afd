"""Make before/after pairs from real pages nobody here wrote: one real edit or one piece of
injected furniture noise per pair, written to pages/bench/ and synthetic.toml.

    python tests/quality/make_synthetic.py [--benchmark DIR]

The pages are the shared article-extraction benchmark's half (MIT, Scrapinghub): real news
and blog pages as fetched, with a human-written ground truth of each article body. The ground
truth says which text nodes are the article, so every edit lands in the article body and
every piece of noise is injected inside it (after one of its paragraphs), where a sidebar
rule cannot reach it.

Edits (must alert, and name the changed words): a word in a sentence replaced, a number
changed, a sentence removed, the page heading renamed (everywhere the page repeats it), a
figure with its caption removed, a button-like link ("Download the data") removed.
Noise (must not alert): a view counter incremented, a "most read" / "latest news" list
reordered with one new item, a carousel rotated, a cookie banner reworded, a date / clock /
weather widget moved on, share counts changed. A third kind combines both: noise moves and
an edit lands in the same pair (must alert and name the edit).

All edits are made on the page's bytes as a string (decoded with surrogateescape, so any
charset survives), never by re-serialising a parsed tree: the rest of the page stays byte for
byte as the site served it. Deterministic: the choices come from random.Random seeded with the
page key and the case, so a re-run writes the same files (gzip without a timestamp).

Held-out third: a case is held out when int(sha256(id), 16) % 3 == 0. Held-out cases get
their furniture markup (class names, wording) and edit vocabulary from a second pool that no
tuning case uses, so tuning to the generator's vocabulary does not score on the held-out third.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
OUT_DIR = PAGES / "bench"
OUT_TOML = HERE / "synthetic.toml"
REPO = HERE.parent.parent
DEFAULT_BENCHMARK = REPO.parent / "shared" / "benchmarks" / "article-extraction"
MAX_PAGE_BYTES = 100_000  # keeps the corpus a few MB; still 33 pages from 26 sites
SOURCE = "scrapinghub/article-extraction-benchmark (shared half), html/{key}.html.gz"
LICENCE = "MIT (Copyright (c) 2020 Scrapinghub)"


def is_heldout(case_id: str) -> bool:
    return int(hashlib.sha256(case_id.encode()).hexdigest(), 16) % 3 == 0


# ---------------------------------------------------------------------------------------------
# Reading a page: text nodes, which of them are article paragraphs

SKIP_CONTENT = ("script", "style", "noscript", "textarea", "title", "template", "svg")
TAG = re.compile(r"<!--.*?-->|<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>", re.S)
CONTAINERS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "td", "div", "body"}


@dataclass
class TextNode:
    start: int  # offset of the text in the page string
    end: int
    container: str  # nearest enclosing block element (approximate, from the tag stream)

    def raw(self, page: str) -> str:
        return page[self.start : self.end]


def text_nodes(page: str) -> list[TextNode]:
    nodes: list[TextNode] = []
    container = ""
    position = 0
    body = page.lower().find("<body")
    position = max(body, 0)
    while True:
        match = TAG.search(page, position)
        end = match.start() if match else len(page)
        if end > position and page[position:end].strip():
            nodes.append(TextNode(position, end, container))
        if not match:
            return nodes
        closing, name = match.group(1), (match.group(2) or "").lower()
        position = match.end()
        if not closing and name in SKIP_CONTENT:
            close = page.lower().find(f"</{name}", position)
            position = len(page) if close < 0 else close
            continue
        if name in CONTAINERS:
            container = "" if closing else name


def squash(text: str) -> str:
    return " ".join(html.unescape(text).split())


def article_nodes(page: str, body_text: str) -> list[TextNode]:
    """Text nodes inside <p> elements whose text the human ground truth has in the article."""
    truth = " ".join(body_text.split())
    return [
        node
        for node in text_nodes(page)
        if node.container == "p"
        and len(squash(node.raw(page))) >= 60
        and squash(node.raw(page)) in truth
    ]


def end_of_paragraph(page: str, node: TextNode) -> int:
    close = page.lower().find("</p>", node.end)
    return close + len("</p>")


# ---------------------------------------------------------------------------------------------
# Vocabulary: pool 0 for tuning cases, pool 1 for held-out ones (never both)

REPLACEMENT_WORDS = (
    ("provisionally", "reluctantly", "formally", "quietly", "partially"),
    ("tentatively", "unexpectedly", "officially", "secretly", "temporarily"),
)
REPLACEMENT_WORDS_RU = (("временно", "официально"), ("частично", "неожиданно"))
BUTTONS = (
    (
        '<p><a class="btn btn-primary" href="/files/data-{n}.csv">Download the data (CSV)</a></p>',
        "Download the data",
    ),
    (
        '<div class="button-row"><a class="button" href="/documents/full-text-{n}.pdf" '
        'role="button">Read the full text (PDF, 212 KB)</a></div>',
        "Read the full text",
    ),
)
INJECTED_FIGURES = (
    (
        '<figure class="wp-caption"><img src="/uploads/photo-{n}.jpg" alt="Delegates at the '
        'opening session"><figcaption>Delegates at the opening session of the forum on '
        "Monday.</figcaption></figure>",
        "Delegates at the opening session",
    ),
    (
        '<div class="image-block"><figure><img src="/media/{n}.jpeg" alt=""><figcaption '
        'class="caption">The signing ceremony took place in the main hall.</figcaption>'
        "</figure></div>",
        "The signing ceremony took place",
    ),
)


VIEW_LABELS = (
    ("Views: {n}", "Просмотров: {n}"),  # tuning
    ("Read {n} times", "Қаралым: {n}"),  # held out
)


def views_snippet(pool: int, label: str, count: int) -> str:
    text = label.format(n=f"{count:,}".replace(",", " "))
    return (
        f'<div class="post-views"><span class="views-count">{text}</span></div>',
        f'<p class="article-hits"><i class="icon-eye"></i> {text}</p>',
    )[pool]


def list_snippet(pool: int, items: list[tuple[str, str]]) -> str:
    lis = "".join(f'<li><a href="{html.escape(u)}">{html.escape(t)}</a></li>' for t, u in items)
    return (
        f'<aside class="most-read"><h4>Most read</h4><ol>{lis}</ol></aside>',
        f'<div class="widget latest-posts"><h3>Latest news</h3><ul>{lis}</ul></div>',
    )[pool]


def carousel_snippet(pool: int, items: list[tuple[str, str]]) -> str:
    if pool == 0:
        slides = "".join(
            f'<div class="carousel-item{" active" if i == 0 else ""}"><a href="{html.escape(u)}">'
            f'<img src="/slides/{i}.jpg" alt="{html.escape(t)}"><div class="carousel-caption">'
            f"{html.escape(t)}</div></a></div>"
            for i, (t, u) in enumerate(items)
        )
        return f'<div class="carousel slide" data-ride="carousel">{slides}</div>'
    slides = "".join(
        f'<li class="{"flex-active-slide" if i == 0 else ""}"><a href="{html.escape(u)}">'
        f'<img src="/featured/{i}.jpg" alt=""><p class="flex-caption">{html.escape(t)}</p></a></li>'
        for i, (t, u) in enumerate(items)
    )
    return f'<div class="flexslider featured"><ul class="slides">{slides}</ul></div>'


COOKIE_TEXTS = (
    (
        "We use cookies to improve your experience on our site. By continuing to browse you "
        "agree to our use of cookies.",
        "We and our partners use cookies and similar technologies to personalise content and "
        "measure traffic. You can change your choice at any time.",
    ),
    (
        "This website stores cookies on your computer to remember your preferences.",
        "This site uses essential and analytics cookies. Read our privacy notice to learn "
        "more about how we use them.",
    ),
)


def cookie_snippet(pool: int, version: int) -> str:
    text = COOKIE_TEXTS[pool][version]
    button = ("Accept", "Accept all")[version]
    return (
        f'<div id="cookie-notice" class="cookie-banner" role="dialog"><p>{text} '
        f'<a href="/privacy">Cookie policy</a></p><button>{button}</button></div>',
        f'<div class="cc-window gdpr-consent"><span class="cc-message">{text}</span>'
        f'<a class="cc-btn cc-allow">{button}</a></div>',
    )[pool]


DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")


def clock_snippet(pool: int, rng: random.Random) -> str:
    day, month, date = rng.randrange(7), rng.randrange(8), rng.randrange(1, 28)
    hour, minute = rng.randrange(24), rng.randrange(60)
    if pool == 0:
        return (
            f'<div class="date-widget"><span class="today">{DAYS[day]}, {date} {MONTHS[month]} '
            f'2019</span> <span class="clock">{hour:02}:{minute:02}</span></div>'
        )
    return (
        f'<div class="weather-widget"><span class="city">Astana</span> '
        f'<span class="temp">{rng.randrange(-20, 30):+d}°C</span> '
        f'<span class="local-time">{hour:02}:{minute:02}</span></div>'
    )


def share_snippet(pool: int, url: str, counts: tuple[int, int]) -> str:
    quoted = html.escape(url)
    if pool == 0:
        return (
            '<div class="share-buttons">'
            f'<a class="share-facebook" href="https://www.facebook.com/sharer/sharer.php?u={quoted}">'
            f'Facebook <span class="share-count">{counts[0]}</span></a> '
            f'<a class="share-twitter" href="https://twitter.com/intent/tweet?url={quoted}">'
            f'Twitter <span class="share-count">{counts[1]}</span></a></div>'
        )
    return (
        '<ul class="social-links">'
        f'<li><a href="https://www.linkedin.com/shareArticle?url={quoted}">LinkedIn</a> '
        f"<b>{counts[0]}</b></li>"
        f'<li><a href="https://vk.com/share.php?url={quoted}">VK</a> <b>{counts[1]}</b></li>'
        f'<li class="total">{counts[0] + counts[1]} shares</li></ul>'
    )


# ---------------------------------------------------------------------------------------------
# Operations on one page


@dataclass
class Page:
    key: str
    url: str
    text: str  # the page's bytes decoded with surrogateescape
    body: str  # the ground-truth article body
    paragraphs: list[TextNode]
    headlines: list[tuple[str, str]] = field(default_factory=list)  # other pages' (title, url)

    @property
    def russian(self) -> bool:
        return self.language == "ru"

    @property
    def language(self) -> str:
        match = re.search(r"<html[^>]*\blang=[\"']?([a-zA-Z]{2})", self.text, re.I)
        if len(re.findall("[а-яА-Я]", self.body)) > 50:
            return "ru"
        return match.group(1).lower() if match else "en"


class NotApplicable(Exception):
    pass


@dataclass
class Edit:
    new: str
    fragments: list[str]
    why: str


WORD = re.compile(r"(?<![\w&#;])([^\W\d_]{6,})(?![\w])")
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?![\w]|[.,]\d)")


def _nodes_from(page: Page, rng: random.Random) -> list[TextNode]:
    nodes = list(page.paragraphs)
    if not nodes:
        raise NotApplicable("no article paragraph found in the page")
    rng.shuffle(nodes)
    return nodes


def edit_word(page: Page, rng: random.Random, pool: int) -> Edit:
    words = REPLACEMENT_WORDS_RU[pool] if page.russian else REPLACEMENT_WORDS[pool]
    for node in _nodes_from(page, rng):
        raw = node.raw(page.text)
        candidates = [m for m in WORD.finditer(raw) if m.group(1).lower() == m.group(1)]
        if candidates:
            match = rng.choice(candidates)
            old = match.group(1)
            new = rng.choice([w for w in words if w != old])
            at = node.start + match.start(1)
            text = page.text[:at] + new + page.text[at + len(old) :]
            why = f"one word in an article sentence: {old!r} -> {new!r}"
            return Edit(text, [old, new], why)
    raise NotApplicable("no plain word to replace")


def edit_number(page: Page, rng: random.Random, pool: int) -> Edit:
    for node in _nodes_from(page, rng):
        raw = node.raw(page.text)
        candidates = list(NUMBER.finditer(raw))
        if candidates:
            match = rng.choice(candidates)
            old = match.group(1)
            value = int(old.replace(",", "")) + rng.randrange(2, 9)
            new = f"{value:,}" if "," in old else str(value)
            at = node.start + match.start(1)
            text = page.text[:at] + new + page.text[at + len(old) :]
            return Edit(text, [old, new], f"a number in the article changed: {old} -> {new}")
    raise NotApplicable("no number in the article text")


SENTENCE = re.compile(r"(?<=[.!?]) +(?=[A-ZА-Я])")


def edit_sentence_removed(page: Page, rng: random.Random, pool: int) -> Edit:
    for node in _nodes_from(page, rng):
        raw = node.raw(page.text)
        if "&" in raw:
            continue
        sentences = SENTENCE.split(raw)
        if len(sentences) < 2:
            continue
        index = rng.randrange(1, len(sentences))
        sentence = sentences[index]
        words = sentence.split()
        if len(words) < 6:
            continue
        kept = " ".join(s for i, s in enumerate(sentences) if i != index)
        text = page.text[: node.start] + kept + page.text[node.end :]
        fragment = " ".join(words[1:4])
        return Edit(text, [fragment], f"a sentence removed from an article paragraph: {fragment!r}")
    raise NotApplicable("no paragraph of two plain sentences")


def edit_heading(page: Page, rng: random.Random, pool: int) -> Edit:
    lower = page.text.lower()
    start = lower.find("<h1", max(lower.find("<body"), 0))
    end = lower.find("</h1>", start)
    if start < 0 or end < 0:
        raise NotApplicable("no <h1> heading")
    inner = [n for n in text_nodes(page.text) if start < n.start < end]
    if len(inner) != 1:
        raise NotApplicable("the heading is not one text node")
    raw = inner[0].raw(page.text).strip()
    words = raw.split()
    candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[^\W\d_]{4,}", w)]
    if len(words) < 3 or not candidates or "&" in raw:
        raise NotApplicable("the heading has no plain word to rename")
    index = rng.choice(candidates)
    vocabulary = REPLACEMENT_WORDS_RU[pool] if page.russian else REPLACEMENT_WORDS[pool]
    replacement = rng.choice(vocabulary)
    if words[index][0].isupper():
        replacement = replacement.capitalize()
    renamed = " ".join(replacement if i == index else w for i, w in enumerate(words))
    # A CMS rename changes every copy of the heading: <title>, og:title, JSON-LD, the <h1>.
    text = page.text.replace(raw, renamed)
    return Edit(text, [words[index], replacement], f"page heading renamed: {raw!r} -> {renamed!r}")


FIGURE = re.compile(r"<figure\b.*?</figure>", re.S | re.I)
FIGCAPTION = re.compile(r"<figcaption\b[^>]*>(.*?)</figcaption>", re.S | re.I)


def edit_figure_removed(page: Page, rng: random.Random, pool: int) -> Edit:
    first, last = page.paragraphs[0].start, page.paragraphs[-1].end
    for match in FIGURE.finditer(page.text, first, last):
        caption = FIGCAPTION.search(match.group(0))
        if not caption:
            continue
        words = re.sub(r"<[^>]+>", " ", caption.group(1)).split()
        plain = [w for w in words if re.fullmatch(r"[^\W\d_]+", w)]
        if len(plain) < 4 or "&" in caption.group(1):
            continue
        fragment = " ".join(words[:3])
        text = page.text[: match.start()] + page.text[match.end() :]
        return Edit(text, [fragment], f"a photo with its caption removed: {fragment!r}…")
    raise NotApplicable("no captioned figure inside the article")


def inject_after_paragraph(page: Page, rng: random.Random, snippet: str, text: str) -> str:
    nodes = page.paragraphs
    node = nodes[min(len(nodes) - 1, max(0, len(nodes) // 3 + rng.randrange(2)))]
    at = end_of_paragraph(text, TextNode(node.start, node.end, "p"))
    if at < len("</p>"):
        raise NotApplicable("paragraph not closed")
    return text[:at] + snippet + text[at:]


def edit_button_removed(page: Page, rng: random.Random, pool: int) -> tuple[str, Edit]:
    template, fragment = BUTTONS[pool]
    snippet = template.format(n=rng.randrange(100, 999))
    old = inject_after_paragraph(page, random.Random(rng.random()), snippet, page.text)
    why = f"button-like link removed (injected into the old version): {fragment!r}"
    return old, Edit(page.text, [fragment], why)


def edit_injected_figure_removed(page: Page, rng: random.Random, pool: int) -> tuple[str, Edit]:
    template, fragment = INJECTED_FIGURES[pool]
    snippet = template.format(n=rng.randrange(100, 999))
    old = inject_after_paragraph(page, random.Random(rng.random()), snippet, page.text)
    why = f"a photo with its caption removed (injected into the old version): {fragment!r}…"
    return old, Edit(page.text, [fragment], why)


# Each noise maker returns the (old, new) snippets to inject at the same place.
NoiseMaker = Callable[[Page, random.Random, int], tuple[str, str, str]]


def noise_views(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    count = rng.randrange(200, 9000)
    grown = count + rng.randrange(1, 60)
    # Government sites in several languages label the counter in the page's language or not.
    label = VIEW_LABELS[pool][1] if page.russian else rng.choice(VIEW_LABELS[pool])
    return (
        views_snippet(pool, label, count),
        views_snippet(pool, label, grown),
        f"view counter inside the article: {count} -> {grown}",
    )


def _headlines(page: Page, rng: random.Random, n: int) -> list[tuple[str, str]]:
    return rng.sample(page.headlines, n)


def noise_list(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    items = _headlines(page, rng, 6)
    old, new = items[:5], [items[5], *items[:4]]
    rng.shuffle(new)
    return (
        list_snippet(pool, old),
        list_snippet(pool, new),
        "most-read / latest-news list inside the article reordered, one story in, one out",
    )


def noise_carousel(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    items = _headlines(page, rng, 4)
    turned = items[1:] + items[:1]
    return (
        carousel_snippet(pool, items),
        carousel_snippet(pool, turned),
        "feature carousel inside the article rotated by one slide",
    )


def noise_cookie(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    return cookie_snippet(pool, 0), cookie_snippet(pool, 1), "cookie banner reworded"


def noise_clock(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    return (
        clock_snippet(pool, rng),
        clock_snippet(pool, rng),
        "date / clock / weather widget inside the article moved on",
    )


def noise_share(page: Page, rng: random.Random, pool: int) -> tuple[str, str, str]:
    counts = (rng.randrange(10, 3000), rng.randrange(0, 500))
    grown = (counts[0] + rng.randrange(1, 200), counts[1] + rng.randrange(1, 40))
    return (
        share_snippet(pool, page.url, counts),
        share_snippet(pool, page.url, grown),
        f"share counts changed: {counts} -> {grown}",
    )


EDITS: dict[str, Callable[..., object]] = {
    "word": edit_word,
    "number": edit_number,
    "sentence-removed": edit_sentence_removed,
    "heading": edit_heading,
    "figure-removed": edit_figure_removed,
    "button-removed": edit_button_removed,
}
NOISES: dict[str, NoiseMaker] = {
    "views": noise_views,
    "most-read": noise_list,
    "carousel": noise_carousel,
    "cookie": noise_cookie,
    "clock": noise_clock,
    "share": noise_share,
}


# ---------------------------------------------------------------------------------------------
# Writing cases


@dataclass
class Case:
    id: str
    old: str
    new: str
    url: str
    alert: bool
    kind: str
    why: str
    source: str
    language: str
    fragments: list[str] = field(default_factory=list)

    def toml(self, xfail: str | None) -> str:
        lines = [
            "[[case]]",
            f"id = {json.dumps(self.id)}",
            f"old = {json.dumps(self.old)}",
            f"new = {json.dumps(self.new)}",
            f"url = {json.dumps(self.url)}",
            f"alert = {'true' if self.alert else 'false'}",
            f"kind = {json.dumps(self.kind)}",
        ]
        if self.fragments:
            lines.append(f"fragments = {json.dumps(self.fragments, ensure_ascii=False)}")
        lines += [
            f"why = {json.dumps(self.why, ensure_ascii=False)}",
            'group = "bench-synthetic"',
            f"language = {json.dumps(self.language)}",
            f"source = {json.dumps(self.source)}",
            f"licence = {json.dumps(LICENCE)}",
            f"heldout = {'true' if is_heldout(self.id) else 'false'}",
        ]
        if xfail:
            lines.append(f"xfail_reason = {json.dumps(xfail, ensure_ascii=False)}")
        return "\n".join(line for line in lines if line) + "\n"


def write_page(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8", errors="surrogateescape")
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(data)


def page_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.S | re.I)
    title = squash(match.group(1)) if match else ""
    undecodable = any("\udc80" <= ch <= "\udcff" for ch in title)
    return title if 15 <= len(title) <= 140 and not undecodable else None


def load_pages(benchmark: Path) -> list[Page]:
    truth = json.loads((benchmark / "ground-truth.json").read_text("utf-8"))
    pages = []
    for key in sorted(truth):
        raw = gzip.decompress((benchmark / "html" / f"{key}.html.gz").read_bytes())
        text = raw.decode("utf-8", errors="surrogateescape")
        body = truth[key]["articleBody"]
        page = Page(key, truth[key]["url"], text, body, article_nodes(text, body))
        if len(raw) <= MAX_PAGE_BYTES and len(page.paragraphs) >= 3:
            pages.append(page)
    # Every page's list and carousel items are other pages' real titles and addresses.
    headlines = [(t, p.url) for p in pages if (t := page_title(p.text))]
    for page in pages:
        page.headlines = [h for h in headlines if h[1] != page.url]
    return pages


def try_edit(page: Page, name: str, case_id: str) -> tuple[str, Edit] | None:
    """(old page text, edit) for one edit of a page, or None when the page has no place for
    it. Edits without a place in the page as served (a figure, a button) inject it into the
    old version instead."""
    pool = int(is_heldout(case_id))
    rng = random.Random(case_id)
    try:
        result = EDITS[name](page, rng, pool)
    except NotApplicable:
        if name != "figure-removed":
            return None
        result = edit_injected_figure_removed(page, rng, pool)
    if isinstance(result, tuple):
        return result
    assert isinstance(result, Edit)
    return page.text, result


def make_cases(pages: list[Page]) -> list[tuple[Case, dict[str, str]]]:
    """Per page (i-th in key order): two edits, one noise, every other page a noise + edit."""
    edit_names, noise_names = list(EDITS), list(NOISES)
    made: list[tuple[Case, dict[str, str]]] = []
    for i, page in enumerate(pages):
        short = page.key[:8]
        folder = f"bench/{short}"
        files: dict[str, str] = {f"{folder}/original.html.gz": page.text}
        source = SOURCE.format(key=page.key)

        wanted = [edit_names[i % 6], edit_names[(i + 3) % 6]]
        for name in wanted:
            for step in range(6):  # fall back to the next edit the page allows
                candidate = edit_names[(edit_names.index(name) + step) % 6]
                case_id = f"bench-{short}-{candidate}"
                if any(c.id == case_id for c, _ in made):
                    continue
                done = try_edit(page, candidate, case_id)
                if done:
                    old_text, edit = done
                    old = f"{folder}/original.html.gz"
                    if old_text != page.text:
                        old = f"{folder}/{candidate}-old.html.gz"
                        files[old] = old_text
                    new = f"{folder}/{candidate}.html.gz"
                    files[new] = edit.new
                    made.append(
                        (
                            Case(
                                case_id,
                                old,
                                new,
                                page.url,
                                True,
                                "edited",
                                edit.why,
                                source,
                                page.language,
                                edit.fragments,
                            ),
                            files,
                        )
                    )
                    break

        noise = noise_names[i % 6]
        case_id = f"bench-{short}-{noise}"
        pool = int(is_heldout(case_id))
        rng = random.Random(case_id)
        before, after, why = NOISES[noise](page, rng, pool)
        place = random.Random(case_id + "/place")
        if noise == "cookie" and place.random() < 0.5:
            # Half the banners sit where sites put them: right before </body>.
            at = page.text.lower().rfind("</body>")
            old_text = page.text[:at] + before + page.text[at:]
            new_text = page.text[:at] + after + page.text[at:]
        else:
            seed = place.random()
            old_text = inject_after_paragraph(page, random.Random(seed), before, page.text)
            new_text = inject_after_paragraph(page, random.Random(seed), after, page.text)
        files[f"{folder}/{noise}-a.html.gz"] = old_text
        files[f"{folder}/{noise}-b.html.gz"] = new_text
        made.append(
            (
                Case(
                    case_id,
                    f"{folder}/{noise}-a.html.gz",
                    f"{folder}/{noise}-b.html.gz",
                    page.url,
                    False,
                    "unchanged",
                    why,
                    source,
                    page.language,
                ),
                files,
            )
        )

        if i % 2 == 0:
            # Noise and an edit in one pair: the edit must be named, the noise not alerted.
            noise = noise_names[(i + 2) % 6]
            edit_name = ("word", "number", "sentence-removed")[(i // 2) % 3]
            case_id = f"bench-{short}-{noise}+{edit_name}"
            pool = int(is_heldout(case_id))
            rng = random.Random(case_id)
            try:
                edit = EDITS[edit_name](page, rng, pool)
            except NotApplicable:
                continue
            assert isinstance(edit, Edit)
            before, after, why = NOISES[noise](page, rng, pool)
            seed = random.Random(case_id + "/place").random()
            old_text = inject_after_paragraph(page, random.Random(seed), before, page.text)
            new_text = inject_after_paragraph(page, random.Random(seed), after, edit.new)
            files[f"{folder}/{noise}+{edit_name}-a.html.gz"] = old_text
            files[f"{folder}/{noise}+{edit_name}-b.html.gz"] = new_text
            made.append(
                (
                    Case(
                        case_id,
                        f"{folder}/{noise}+{edit_name}-a.html.gz",
                        f"{folder}/{noise}+{edit_name}-b.html.gz",
                        page.url,
                        True,
                        "edited",
                        f"{why}; and {edit.why}",
                        source,
                        page.language,
                        edit.fragments,
                    ),
                    files,
                )
            )
    return made


def existing_xfails() -> dict[str, str]:
    import tomllib

    if not OUT_TOML.exists():
        return {}
    cases = tomllib.loads(OUT_TOML.read_text("utf-8")).get("case", [])
    return {c["id"]: c["xfail_reason"] for c in cases if c.get("xfail_reason")}


def render(made: list[tuple[Case, dict[str, str]]], xfails: dict[str, str]) -> str:
    header = (
        "# Generated by tests/quality/make_synthetic.py from the shared article-extraction\n"
        "# benchmark's pages (MIT, Scrapinghub); do not edit by hand except xfail_reason,\n"
        "# which a re-run keeps. Fields as in cases.toml; README.md says what they mean.\n\n"
    )
    return header + "\n".join(case.toml(xfails.get(case.id)) for case, _ in made)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, default=DEFAULT_BENCHMARK)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files on disk differ"
    )
    args = parser.parse_args()
    pages = load_pages(args.benchmark)
    made = make_cases(pages)
    contents = {n: t for _, files in made for n, t in files.items()}
    used = {n for c, _ in made for n in (c.old, c.new)}
    toml = render(made, existing_xfails())
    on_disk = {str(p.relative_to(PAGES)) for p in OUT_DIR.rglob("*.gz")}
    if args.check:
        differ = sorted(on_disk ^ used)
        differ += [
            name
            for name in sorted(used & on_disk)
            if gzip.decompress((PAGES / name).read_bytes())
            != contents[name].encode("utf-8", errors="surrogateescape")
        ]
        if OUT_TOML.read_text("utf-8") != toml:
            differ.append(OUT_TOML.name)
        for name in differ:
            print(f"differs from what the generator makes: {name}")
        return 1 if differ else 0
    for name in sorted(used):
        write_page(PAGES / name, contents[name])
    for stale in on_disk - used:
        (PAGES / stale).unlink()
    OUT_TOML.write_text(toml, "utf-8")
    print(f"{len(pages)} pages, {len(made)} cases, {len(used)} files -> {OUT_TOML.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
