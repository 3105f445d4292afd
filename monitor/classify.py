"""Is this response the page, or something standing in for it?

Error pages, maintenance notices, captchas and WAF challenges, login walls, soft-404s (an
error page served with 200) and truncated documents are *problems* with a reason, never
content: taken as content they would read as "the whole statement was deleted". The same
holds for an extraction that is suddenly empty or tiny next to the previous version
(`suspicious_shrink`), which the check stage asks about with both statements in hand.

Markers are kept narrow on purpose. A vendor's name or script appears on ordinary pages too
(Cloudflare injects `/cdn-cgi/challenge-platform/` scripts into normal pages; Variti and
DDoS-Guard proxy whole sites), so most body markers count only on a *thin* page: one with
little visible text, as a challenge or error page is and a statement page is not.
"""

from __future__ import annotations

import html
import re
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.fetched import FetchResult

if TYPE_CHECKING:
    from monitor.statement import Statement

# Visible text below this many characters: a stand-in page, not a statement with its site's
# navigation around it (the shortest real pages in tests/quality carry several thousand).
THIN_TEXT = 1200
_SCAN_BYTES = 300_000

# (who, markers): any marker on a thin page means a challenge from `who`.
_CHALLENGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Cloudflare",
        (
            "cf_chl_opt",
            "cf-browser-verification",
            "cf-challenge",
            "challenge-form",
            "enable javascript and cookies to continue",
            "attention required! | cloudflare",
        ),
    ),
    ("DDoS-Guard", ("ddos-guard", "__ddg1", "ddos_guard")),
    ("Qrator", ("/__qrator/", "qrator_jsid", "qauth.js")),
    ("Variti", ("variti", "ipp_uid", "ipp_key")),
    # F5 BIG-IP ASM / "TSPD" bot defence; mid.ru has answered scrapers with it.
    ("F5 bot defence", ("bobcmn", "/tspd/", "tspd_101")),
    (
        "anti-bot",
        (
            "checking your browser",
            "проверка браузера",
            "please enable javascript",
            "включите javascript",
            "are you a robot",
            "я не робот",
            "не робот",
            "g-recaptcha",
            "h-captcha",
            "smartcaptcha",
            "captcha",
        ),
    ),
)
# These say "challenge" on a page of any size: the stub mid.ru serves to plain clients while
# its JavaScript check runs, and Cloudflare's interstitial title.
_STRONG_CHALLENGES: tuple[tuple[str, str], ...] = (
    ("mid.ru anti-bot stub", "data processing... please, wait"),
    ("Cloudflare", "<title>just a moment...</title>"),
    ("DDoS-Guard", "<title>ddos-guard</title>"),
)
# Servers that put a challenge in front of a site; with a thin page that is the challenge.
_CHALLENGE_SERVERS = (("ddos-guard", "DDoS-Guard"), ("variti", "Variti"), ("qrator", "Qrator"))

_PHRASE_END = r"\s*(?:$|[|:–—\-·•])"
_ERROR_PHRASES = (
    r"page not found|not found|file not found|страница не найдена|запрашиваемая страница не "
    r"найдена|бет табылмады|internal server error|server error|bad gateway|service "
    r"(?:temporarily )?unavailable|gateway time-?out|access denied|forbidden|доступ запрещ[её]н"
    r"|ошибка сервера|сервис недоступен|request rejected|запрос отклон[её]н"
)
# An error page's title: a status code alone or with its phrase, or the phrase itself, at the
# start. "500 tonnes of aid" or "Forbidden weapons …" are statements, not errors.
_ERROR_TITLE = re.compile(
    rf"^\s*(?:(?:error|ошибка|http)\s*)?[45]\d\d(?:\s*[-:|–—.]?\s*(?:{_ERROR_PHRASES}))?"
    rf"{_PHRASE_END}|^\s*(?:(?:error|ошибка)\s*[-:]?\s*)?(?:{_ERROR_PHRASES}){_PHRASE_END}"
    rf"|^\s*(?:error|ошибка){_PHRASE_END}",
    re.I,
)
_SOFT_404_TEXT = (
    "page not found",
    "page you requested",
    "page you are looking for",
    "страница не найдена",
    "запрашиваемая страница",
    "страница, которую вы ищете",
    "бет табылмады",
)
_MAINTENANCE_TITLE = re.compile(
    r"maintenance mode|under maintenance|site maintenance|scheduled maintenance|down for "
    r"maintenance|технические работы|технических работ|профилактические работы|техническое "
    r"обслуживание|сайт временно недоступен|техникалық жұмыстар",
    re.I,
)
_MAINTENANCE_TEXT = (
    "maintenance",
    "temporarily unavailable",
    "технические работы",
    "технических работ",
    "профилактически",
    "техническое обслуживание",
    "временно недоступен",
    "техникалық жұмыстар",
)
_LOGIN_TITLE = re.compile(
    rf"^\s*(?:sign in|sign-in|log in|login|log on|authori[sz]ation required|вход|войти"
    rf"|авторизация|вход в систему|кіру){_PHRASE_END}",
    re.I,
)
_LOGIN_PATH = re.compile(r"/(login|signin|sign-in|auth|sso|account/login|user/login)\b", re.I)

_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
# A block runs to the first end tag of its name. Written as runs of anything but "<", each
# "<" tried as that end tag once (possessive: nothing to give back), rather than `.*?`,
# which tries the end tag at every character of a script: the same blocks, found in a
# quarter of the time (a real page's inline scripts were most of classifying it).
_INVISIBLE_BLOCKS = re.compile(
    r"<(script|style|noscript|template|svg)\b[^<]*+(?:<(?!/\1\s*>)[^<]*+)*+</\1\s*>"
    r"|<!--.*?-->",
    re.I | re.S,
)
_TAG = re.compile(r"<[^>]+>")


# A page's visible markup is read for its text this much at a time (up to a tag's end): a
# statement page shows enough of it within its first few kilobytes.
_THIN_PREFIX = 8192
# The characters of a page searched for markers.
_HEAD = 60_000
# The only characters `str.lower()` turns into ASCII letters besides ASCII's own: with
# neither in a page, an ASCII marker is in its lower-cased text exactly when it is in its
# bytes lower-cased as ASCII (bytes.lower, many times faster than str.lower).
_LOWER_TO_ASCII = ("\u0130", "\u212a")


class _Page:
    """What classification needs from a body, read once; the costly parts only when asked."""

    def __init__(self, raw: str, tail: bytes, is_html: bool, utf8: bytes | None = None) -> None:
        self._raw = raw
        self._tail = tail
        self.is_html = is_html
        # `raw` encoded as UTF-8, when that is the body's start as it came (valid UTF-8).
        self._utf8 = utf8

    @classmethod
    def read(cls, result: FetchResult) -> _Page:
        scanned = result.body[:_SCAN_BYTES]
        try:  # valid UTF-8 decodes as it does ignoring errors, and its text encodes back
            raw, utf8 = scanned.decode("utf-8"), scanned
        except UnicodeDecodeError:
            raw, utf8 = scanned.decode("utf-8", errors="ignore"), None
        media = (result.header("content-type") or "").lower()
        start = raw.lstrip("\ufeff \t\r\n")[:1]
        is_html = "html" in media or ("json" not in media and start == "<")
        return cls(raw, result.body[-200_000:], is_html, utf8)

    @cached_property
    def title(self) -> str:
        title_match = _TITLE.search(self._raw)
        title = html.unescape(_TAG.sub(" ", title_match.group(1))) if title_match else ""
        return " ".join(title.split())

    @cached_property
    def head(self) -> str:
        """The first characters, lower-cased, for markers."""
        return self._raw[:_HEAD].lower()

    @cached_property
    def _ascii_head(self) -> bytes | None:
        """`head` as bytes lower-cased as ASCII; None when that could differ from `head` for
        an ASCII marker (see `_LOWER_TO_ASCII`)."""
        if any(c in self._raw for c in _LOWER_TO_ASCII):
            return None
        if self._utf8 is not None and len(self._raw) <= _HEAD:
            return self._utf8.lower()  # the head is all of it: its bytes, not encoded again
        return self._raw[:_HEAD].encode("utf-8").lower()

    def has_ascii_marker(self, marker: str) -> bool:
        """Whether a lower-case ASCII marker is in `head`, without lower-casing the head as
        str (a third of classifying a page of Cyrillic text)."""
        ascii_head = self._ascii_head
        if ascii_head is None:
            return marker in self.head
        return marker.encode() in ascii_head

    @cached_property
    def closed(self) -> bool:
        """The document reaches </html> or </body> (only a whole document can be seen to end
        early; a fragment has no closing tag)."""
        document = self._raw.lstrip("\ufeff \t\r\n")[:15].lower()
        if not document.startswith(("<!doctype html", "<html")):
            return True
        # Written in lower case, as almost every page writes them, they are found without
        # lower-casing the tail (a copy of up to 200 KB), searched for from the end, where
        # they stand (`in` reads the whole tail up to them).
        if self._tail.rfind(b"</html") >= 0 or self._tail.rfind(b"</body") >= 0:
            return True
        tail = self._tail.lower()
        return b"</html" in tail or b"</body" in tail

    @cached_property
    def thin(self) -> bool:
        """Little visible text (roughly as a browser shows it): a stand-in page."""
        # The page without its invisible blocks, read only as far as it must be: its text is
        # counted a piece at a time, each piece ending at a tag's end, and once the count
        # reaches `THIN_TEXT` the page is not thin (a statement page shows that much in its
        # first kilobytes). A piece that ends at a tag's end reads as it would in the whole
        # page (no tag or entity runs on past a ">"), so the count is the whole page's.
        raw = self._raw
        text = _TextCount()
        gaps: list[str] = []  # the visible markup since the text last counted
        last = waiting = 0
        for block in _INVISIBLE_BLOCKS.finditer(raw):
            gaps.append(raw[last : block.start()])
            last = block.end()
            waiting += len(gaps[-1]) + 1
            # Counted on once enough has come and a tag's end with it (what waits holds
            # none: the gap that completes it brings one).
            if waiting >= _THIN_PREFIX and ">" in gaps[-1]:
                gaps.append("")  # a block reads as a space
                if text.read(" ".join(gaps)):
                    return False
                gaps.clear()
                waiting = len(text.rest)
        gaps.append(raw[last:])
        return not text.read(" ".join(gaps), end=True)


class _TextCount:
    """The characters of text (white space not counted) of visible markup read piece by
    piece: counted up to its last tag end, `_THIN_PREFIX` characters or so at a time."""

    def __init__(self) -> None:
        self.count = 0
        self.rest = ""  # the markup after the last tag end counted

    def read(self, markup: str, end: bool = False) -> bool:
        """Count what `markup` completes; whether the count has reached `THIN_TEXT`. `end`:
        the last piece, counted whole."""
        rest = self.rest + markup
        start = 0
        while True:
            cut = rest.find(">", start + _THIN_PREFIX) + 1 or rest.rfind(">") + 1
            if cut <= start and end:
                cut = len(rest)
            if cut <= start:
                break
            self.count += _text_length(rest[start:cut])
            start = cut
            if self.count >= THIN_TEXT:
                return True
        self.rest = rest[start:]
        return False


def _text_length(markup: str) -> int:
    """How many characters of text markup shows, white space not counted (exact below
    `THIN_TEXT`: no more words are split off than that takes)."""
    return sum(map(len, html.unescape(_TAG.sub(" ", markup)).split(None, THIN_TEXT)))


def classify_unusable(result: FetchResult) -> str | None:
    """A reason when the response is not content (error, challenge, maintenance, …)."""
    if result.problem:
        return result.problem
    if result.status is None:
        return "no response"
    redirect = _suspicious_redirect(result)
    if redirect:
        return redirect
    page = _Page.read(result)
    status = result.status
    challenge = _challenge(result, page)
    if challenge:
        return f"{challenge} (HTTP {status})"
    if status >= 400:
        if _maintenance(page, any_size=True):
            return f"maintenance page (HTTP {status})"
        return f"HTTP {status}"
    if not page.is_html:
        return None
    if _maintenance(page):
        return f"maintenance page served with HTTP {status}: {_quote(page.title)}"
    if _ERROR_TITLE.search(page.title):
        return f"error page served with HTTP {status}: {_quote(page.title)}"
    if page.thin and any(marker in page.head for marker in _SOFT_404_TEXT):
        return f"'page not found' page served with HTTP {status} (soft 404)"
    if _LOGIN_TITLE.search(page.title) or (page.thin and 'type="password"' in page.head):
        return f"login wall: the page asks to sign in (HTTP {status})"
    if not page.closed and len(result.body) > 0:
        return "truncated response: the document ends before </body></html>"
    return None


def suspicious_shrink(old: Statement | None, new: Statement | None) -> str | None:
    """A reason when `new` is empty or tiny next to `old`: more likely a broken page than an edit.

    For the check stage, with the last stored version and the new extraction. A real edit that
    cuts most of a statement is rare; a half-loaded page, a template change that hides the
    body, or a CMS placeholder is not — so this is a problem to retry, not an alert.
    """
    if old is None or new is None:
        return None
    old_words = sum(len(p.split()) for p in old.paragraphs)
    new_words = sum(len(p.split()) for p in new.paragraphs)
    if old_words >= 20 and new_words == 0:
        return f"the statement text is empty now (it had {old_words} words)"
    if old_words >= 60 and new_words < old_words * 0.3:
        return f"the statement text shrank from {old_words} to {new_words} words"
    if old.title and not new.title:
        return "the statement has no title now"
    return None


def _challenge(result: FetchResult, page: _Page) -> str | None:
    if (result.header("cf-mitigated") or "").lower() == "challenge":
        return "Cloudflare challenge page"
    for who, marker in _STRONG_CHALLENGES:
        if page.has_ascii_marker(marker):
            return f"{who} (bot challenge page)"
    if not page.thin:
        return None
    server = (result.header("server") or "").lower()
    for name, who in _CHALLENGE_SERVERS:
        if name in server and (result.status or 0) in (200, 401, 403, 429, 503):
            return f"{who} challenge page"
    for who, markers in _CHALLENGES:
        if any(marker in page.head for marker in markers):
            return f"{who} captcha or bot challenge page"
    return None


def _maintenance(page: _Page, any_size: bool = False) -> bool:
    if _MAINTENANCE_TITLE.search(page.title):
        return True
    return (any_size or page.thin) and any(marker in page.head for marker in _MAINTENANCE_TEXT)


def _suspicious_redirect(result: FetchResult) -> str | None:
    """A redirect to the home page or a login page means the statement is not being shown."""
    if not result.redirects:
        return None
    asked, landed = urlsplit(result.request.url), urlsplit(result.url)
    if landed.path in ("", "/") and asked.path not in ("", "/"):
        return f"redirected to the home page ({result.url})"
    if _LOGIN_PATH.search(landed.path) and not _LOGIN_PATH.search(asked.path):
        return f"redirected to a login page ({result.url})"
    return None


def _quote(title: str) -> str:
    return f"“{title[:80]}”" if title else "(no title)"
