"""trafilatura's XPath selections, made in Python over lxml's tree walk.

trafilatura prunes a page with XPath expressions of one shape: every element below the
context whose name is one of a few and whose attributes pass some tests, e.g.
`.//*[self::div or self::section][re:test(@id, '…') or contains(@class, '…')]`. libxml2
evaluates such a predicate for every element of the page, with node-sets allocated for each
test, and every `re:test` is a call back into Python: on a real page the expressions were a
third of reading it (fakesite's statement: 6.8 M of 24 M instructions; the benchmark's real
pages: 37 M of 120 M). The same selection made here, the element names filtered by lxml's
walk in C and the tests on the few elements left, costs a tenth of that.

`install()` compiles each expression of trafilatura's lists that it can read (the grammar
below) into a `Selection` and puts it in the list in its place; any other expression stays
as it is. What an expression selects is defined by XPath 1.0 and EXSLT: a `Selection`
gives the same elements in the same order (tests/test_trafilatura_xpaths.py compares both
on generated trees and on every tree trafilatura asks about while it reads the quality
corpus's pages). The grammar:

    path      := term ('|' term)*
    term      := '(' steps ')' '[1]' | steps
    steps     := './/' (name | '*') predicate* ['[1]']
    predicate := '[' or ']'
    or        := and ('or' and)*;   and := unary ('and' unary)*
    unary     := 'not(' or ')' | '(' or ')' | 'self::' name | './/' name | attribute
               | attribute '=' literal | contains(string, literal)
               | starts-with(string, literal) | re:test(string, literal [, literal])
    string    := attribute ('|' attribute)* | translate(string, literal, literal)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Text = Callable[[Any], str]


class Unsupported(ValueError):
    """An expression outside the grammar: it stays an XPath."""


_TOKEN = re.compile(
    r"\s*(?:(?P<literal>'[^']*'|\"[^\"]*\")|(?P<descend>\.//)|(?P<axis>::)"
    r"|(?P<name>[A-Za-z_][\w.-]*(?::(?!:)[A-Za-z_][\w.-]*)?)|(?P<number>\d+)"
    r"|(?P<symbol>[()\[\],|=@*]))"
)


def _tokens(path: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    path = path.strip()
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise Unsupported(f"cannot read {path[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(path) and path[position].isspace():
            position += 1
    return tokens


class _Parser:
    def __init__(self, path: str) -> None:
        self.tokens = _tokens(path)
        self.at = 0
        self.names: dict[str, Any] = {}  # what its expressions refer to (`name`)

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise Unsupported(f"expected {value or kind}, found {token!r}")
        self.at += 1
        return token

    def literal(self) -> str:
        return self.take(kind="literal")[1:-1]

    # path := term ('|' term)*
    def path(self) -> Callable[[Any], list[Any]]:
        terms = [self.term()]
        while self.peek()[1] == "|":
            self.take("|")
            terms.append(self.term())
        if self.peek()[0] != "end":
            raise Unsupported(f"unexpected {self.peek()[1]!r}")
        if len(terms) == 1:
            return terms[0]
        return _union(terms)

    def term(self) -> Callable[[Any], list[Any]]:
        if self.peek()[1] == "(":
            self.take("(")
            steps = self.steps()
            self.take(")")
            self.take("[")
            self.take("1")
            self.take("]")
            return _first(steps)
        return self.steps()

    def steps(self) -> Callable[[Any], list[Any]]:
        self.take(".//")
        name = self.take("*") if self.peek()[1] == "*" else self.take(kind="name")
        tags: tuple[Any, ...] = (name,)
        if name == "*":
            # `*[self::a or self::b]…`: the walk yields only those names (in C).
            names = self.self_tests()
            tags = names if names else (_element_class(),)
        tests: list[str] = []
        first_child = False
        while self.peek()[1] == "[":
            if first_child:
                raise Unsupported("a predicate after [1]")
            self.take("[")
            if self.peek()[0] == "number":
                self.take("1")
                first_child = True
            else:
                tests.append(self.or_())
            self.take("]")
        return _descendants(tags, tests, first_child, self.names)

    def self_tests(self) -> tuple[str, ...]:
        """The names of a first predicate made only of `self::name` tests joined by "or"
        (consumed), else () (nothing consumed)."""
        names: list[str] = []
        offset = 1
        if self.peek()[1] != "[":
            return ()
        while True:
            step = [self.peek(offset + i) for i in range(3)]
            if [token for _, token in step[:2]] != ["self", "::"] or step[2][0] != "name":
                return ()
            names.append(step[2][1])
            offset += 3
            if self.peek(offset) == ("name", "or"):
                offset += 1
                continue
            if self.peek(offset)[1] != "]":
                return ()
            self.at += offset + 1
            return tuple(names)

    # A test or a string is made as a Python expression over the element `e`, and a step's
    # tests as one function (`_descendants`): no call per test and element, where a lambda
    # per test, joined by any() and all() over generators, cost five times the selection's
    # walk. Literals are written with repr(); what else an expression uses (a compiled
    # pattern, a translation table) it finds by a name in `self.names`.
    def name(self, value: Any) -> str:
        """A name for `value` in the namespace of the expressions."""
        name = f"_{len(self.names)}"
        self.names[name] = value
        return name

    def or_(self) -> str:
        return self.joined("or", self.and_)

    def and_(self) -> str:
        return self.joined("and", self.unary)

    def joined(self, word: str, operand: Callable[[], str]) -> str:
        """Operands joined by `word` ("or", "and"), evaluated from the left until one
        decides, as any() and all() did."""
        tests = [operand()]
        while self.peek() == ("name", word):
            self.take(word)
            tests.append(operand())
        return tests[0] if len(tests) == 1 else "(" + f" {word} ".join(tests) + ")"

    def unary(self) -> str:
        kind, token = self.peek()
        if token == "(":
            self.take("(")
            test = self.or_()
            self.take(")")
            return test
        if token == ".//":
            self.take(".//")
            descendant = self.take(kind="name")
            return f"(next(e.iterdescendants({descendant!r}), None) is not None)"
        if token == "@":
            names = self.attributes()
            if self.peek()[1] != "=":
                if len(names) != 1:
                    raise Unsupported("a union of attributes as a test")
                return f"(e.get({names[0]!r}) is not None)"
            self.take("=")
            value = self.literal()
            if len(names) != 1:
                raise Unsupported("a union of attributes compared")
            return f"(e.get({names[0]!r}) == {value!r})"
        if kind != "name":
            raise Unsupported(f"unexpected {token!r}")
        if token == "self" and self.peek(1)[1] == "::":
            self.take("self")
            self.take("::")
            tag = self.take(kind="name")
            return f"(e.tag == {tag!r})"
        self.take(kind="name")
        self.take("(")
        if token == "not":
            inner = self.or_()
            self.take(")")
            return f"(not {inner})"
        if token in ("contains", "starts-with"):
            text = self.string()
            self.take(",")
            part = self.literal()
            self.take(")")
            if token == "contains":
                return f"({part!r} in {text})"
            return f"{text}.startswith({part!r})"
        if token == "re:test":
            text = self.string()
            self.take(",")
            pattern = self.literal()
            flags = ""
            if self.peek()[1] == ",":
                self.take(",")
                flags = self.literal()
            self.take(")")
            # As lxml's EXSLT re:test: Python's re, IGNORECASE when the flags hold "i".
            search = re.compile(pattern, re.IGNORECASE if "i" in flags else 0).search
            return f"({self.name(search)}({text}) is not None)"
        raise Unsupported(f"the function {token}")

    def attributes(self) -> list[str]:
        names = []
        while True:
            self.take("@")
            names.append(self.take(kind="name"))
            if not (self.peek()[1] == "|" and self.peek(1)[1] == "@"):
                return names
            self.take("|")

    def string(self) -> str:
        """A string argument: the string-value of a node-set of attributes (the first in
        document order, "" when empty), or a translate() of one."""
        if self.peek() == ("name", "translate"):
            self.take("translate")
            self.take("(")
            text = self.string()
            self.take(",")
            source = self.literal()
            self.take(",")
            target = self.literal()
            self.take(")")
            table: dict[int, int | None] = {}
            for index, character in enumerate(source):  # the first occurrence counts
                table.setdefault(
                    ord(character), ord(target[index]) if index < len(target) else None
                )
            return f"{text}.translate({self.name(table)})"
        if self.peek()[1] != "@":
            raise Unsupported(f"a string from {self.peek()[1]!r}")
        names = self.attributes()
        if len(names) == 1:
            return f"(e.get({names[0]!r}) or '')"
        return f"{self.name(_first_attribute(tuple(names)))}(e)"


def _first_attribute(names: tuple[str, ...]) -> Text:
    """The value of whichever of `names` the element has first (attributes are in document
    order as written), "" when it has none."""

    def text(element: Any) -> str:
        found = [name for name in names if element.get(name) is not None]
        if not found:
            return ""
        if len(found) > 1:
            order = element.keys()
            found.sort(key=order.index)
        return element.get(found[0]) or ""

    return text


def _element_class() -> Any:
    from lxml import etree

    return etree.Element


def _descendants(
    tags: tuple[Any, ...], tests: list[str], first_child: bool, names: dict[str, Any]
) -> Callable[[Any], list[Any]]:
    """`.//name[tests…]` in document order (`[1]` after the tests: of each parent's
    children, only the first that passes): one function, its condition the tests'
    expressions over the element `e`, `names` what they refer to (see `_Parser.name`)."""
    condition = " and ".join(tests) or "True"
    if first_child:
        body = (
            "    parents = set()\n"
            "    for e in node.iterdescendants(*_tags):\n"
            f"        if {condition}:\n"
            "            parent = e.getparent()\n"
            "            if parent in parents:\n"
            "                continue\n"
            "            parents.add(parent)\n"
            "            found.append(e)\n"
        )
    else:
        body = (
            "    for e in node.iterdescendants(*_tags):\n"
            f"        if {condition}:\n"
            "            found.append(e)\n"
        )
    source = f"def select(node):\n    found = []\n{body}    return found\n"
    namespace: dict[str, Any] = {**names, "_tags": tags}
    exec(compile(source, "<monitor.sites.xpaths>", "exec"), namespace)
    select: Callable[[Any], list[Any]] = namespace["select"]
    return select


def _first(steps: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    def select(node: Any) -> list[Any]:
        return steps(node)[:1]

    return select


def _union(terms: list[Callable[[Any], list[Any]]]) -> Callable[[Any], list[Any]]:
    def select(node: Any) -> list[Any]:
        found: set[Any] = set()
        for term in terms:
            found.update(term(node))
        if len(found) <= 1:
            return list(found)
        return [element for element in node.iterdescendants() if element in found]

    return select


def compile_path(path: str) -> Callable[[Any], list[Any]]:
    """A function of a context element giving what `path` selects from it (see the
    module's grammar); `Unsupported` when `path` is outside it."""
    return _Parser(path).path()


class Selection:
    """An XPath expression of trafilatura's, evaluated by `compile_path`: called as the
    `lxml.etree.XPath` it replaces is (with the context element), with its `path`."""

    def __init__(self, path: str, original: Any = None) -> None:
        self.path = path
        self.original = original  # the XPath it stands in for (see `stock`)
        self._select = compile_path(path)

    def __call__(self, node: Any) -> list[Any]:
        return self._select(node)

    def __repr__(self) -> str:
        return f"Selection({self.path.strip()[:60]!r}…)"


# The lists of trafilatura.xpaths a reading evaluates (fast mode, comments off).
LISTS = (
    "BODY_XPATH",
    "RAW_TREE_PRUNE_XPATH",
    "REMOVE_COMMENTS_AND_LISTS_XPATH",
    "REMOVE_COMMENTS_XPATH",
    "OVERALL_DISCARD_XPATH",
    "TEASER_DISCARD_XPATH",
    "DISCARD_IMAGE_ELEMENTS",
    "PRECISION_DISCARD_XPATH",
)


def install() -> int:
    """Replace, in place, each expression of trafilatura's `LISTS` that `compile_path`
    reads by its `Selection` (trafilatura's modules hold the same list objects); how many
    were replaced. Idempotent."""
    from trafilatura import xpaths

    replaced = 0
    for name in LISTS:
        expressions = getattr(xpaths, name, None)
        if not isinstance(expressions, list):
            continue
        for index, expression in enumerate(expressions):
            if isinstance(expression, Selection):
                continue
            path = getattr(expression, "path", None)
            if not isinstance(path, str):
                continue
            try:
                expressions[index] = Selection(path, expression)
            except Unsupported:
                continue
            replaced += 1
    return replaced


@contextmanager
def stock() -> Iterator[None]:
    """trafilatura's own XPath expressions back in its lists for the time of the block: the
    extraction bench times trafilatura as it ships, beside our reading in one process."""
    from trafilatura import xpaths

    swapped = []
    for name in LISTS:
        expressions = getattr(xpaths, name, None)
        if not isinstance(expressions, list):
            continue
        for index, expression in enumerate(expressions):
            if isinstance(expression, Selection) and expression.original is not None:
                expressions[index] = expression.original
                swapped.append((expressions, index, expression))
    try:
        yield
    finally:
        for expressions, index, expression in swapped:
            expressions[index] = expression
