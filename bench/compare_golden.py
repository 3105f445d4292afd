"""Golden results of the comparison: `diff.compare` and `learned.compare_masked` over every
old/new pair at hand, recorded whole, so that a faster comparison can be shown to give the
same bytes.

    python bench/compare_golden.py record [--inputs FILE] [--no-tests]
    python bench/compare_golden.py run [--inputs FILE] --out FILE [--monitor-src DIR]
    python bench/compare_golden.py check A B

`record` gathers the pairs once, with this checkout's extraction, into a pickle (default
bench/results/compare-inputs.pickle, git-ignored), so that what is compared does not move
when extraction does:

* the quality corpus (tests/quality): each case's old and new pages read by the profile of
  its URL and by the generic one, statement by statement as `monitor compare` pairs them,
  both ways round;
* the tests' own pairs: the diff, learned-furniture, compare, sites and quality tests run
  (not slow ones) with `diff.compare` and `learned.compare_masked` wrapped to note every
  call's arguments;
* bench/fakesite.py's statements (the changed bench's pages, read by the generic profile)
  with 1 to 400 words edited as the bench edits them;
* seeded mutations of all of those statements: sentences and paragraphs removed, added,
  moved, repeated, split and merged, spacing changed around initials, abbreviations and
  sentence ends, whole runs of paragraphs rewritten; some with ignore rules, some with a
  learned mask (templates, shapes, slots chosen from their paragraphs).

`run` replays them with the monitor in DIR (e.g. a `git archive` export of main) or this
checkout's, writing one line per call: the case's name and the `repr` of what it returned
(every change, score, summary, note, problem). `check` says whether two runs are
byte-identical and names the first cases that differ. `run` also prints the CPU the calls
took.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import monitor_source  # noqa: E402,F401  (the monitor measured, first on sys.path)

INPUTS = BENCH / "results" / "compare-inputs.pickle"
# The tests whose pairs are recorded (their not-slow tests).
TESTS = (
    "tests/test_diff.py",
    "tests/test_diff_cache.py",
    "tests/test_learned_furniture.py",
    "tests/test_compare.py",
    "tests/test_edits_named.py",
    "tests/test_sites.py",
    "tests/test_attachments.py",
    "tests/test_decide.py",
    "tests/test_userregex.py",
    "tests/test_govkz_rendered.py",
    "tests/quality/test_quality.py",
)

# A case: (name, function name, args); function "compare" takes (old, new, ignore),
# "compare_masked" (mask, old, new, ignore).
Case = tuple[str, str, tuple[Any, ...]]


# --- record ------------------------------------------------------------------------------------


def _ignore(rules: Any) -> list[str]:
    """Ignore rules as their patterns (a compiled rule does not pickle)."""
    return [rule if isinstance(rule, str) else rule.pattern for rule in rules or ()]


def record_tests(cases: list[Case]) -> None:
    import pytest

    import monitor.diff
    import monitor.learned

    original_compare = monitor.diff.compare
    original_masked = monitor.learned.compare_masked
    seen: set[bytes] = set()

    def note(function: str, args: tuple[Any, ...]) -> None:
        try:
            data = pickle.dumps((function, args))
        except Exception:  # a pair that does not pickle is left out
            return
        digest = hashlib.sha256(data).digest()
        if digest not in seen:
            seen.add(digest)
            cases.append((f"tests/{len(seen)}", function, args))

    def compare(old: Any, new: Any, ignore: Any = (), *rest: Any, **kwargs: Any) -> Any:
        if not rest and not kwargs:
            note("compare", (old, new, _ignore(ignore)))
        return original_compare(old, new, ignore, *rest, **kwargs)

    def compare_masked(mask: Any, old: Any, new: Any, ignore: Any) -> Any:
        note("compare_masked", (mask, old, new, _ignore(ignore)))
        return original_masked(mask, old, new, ignore)

    monitor.diff.compare = compare  # type: ignore[assignment]
    monitor.learned.compare = compare  # type: ignore[assignment]
    monitor.learned.compare_masked = compare_masked  # type: ignore[assignment]
    try:
        pytest.main(["-q", "-p", "no:cacheprovider", "-m", "not slow", *TESTS])
    finally:
        monitor.diff.compare = original_compare  # type: ignore[assignment]
        monitor.learned.compare = original_compare  # type: ignore[assignment]
        monitor.learned.compare_masked = original_masked  # type: ignore[assignment]


def _statements(body: bytes, url: str, profile_name: str | None) -> dict[str, Any]:
    from monitor.compare import _as_result
    from monitor.sites import get_profile
    from monitor.statement import Target

    extraction = get_profile(profile_name, url).extract(_as_result(body, url), Target(url))
    return {s.key: s for s in extraction.statements}


def record_quality(cases: list[Case], pool: list[Any]) -> None:
    from tests.quality.corpus import load_cases, read_page

    for case in load_cases():
        for profile_name in (None, "generic"):
            try:
                old = _statements(read_page(case["old"]), case["url"], profile_name)
                new = _statements(read_page(case["new"]), case["url"], profile_name)
            except Exception:  # a page a profile cannot read
                continue
            for key in sorted(old.keys() | new.keys()):
                a, b = old.get(key), new.get(key)
                name = f"quality/{case['id']}/{profile_name or 'url'}/{key}"
                cases.append((name, "compare", (a, b, [])))
                cases.append((name + "/reversed", "compare", (b, a, [])))
                pool += [s for s in (a, b) if s is not None and s.paragraphs]


def record_fakesite(cases: list[Case], pool: list[Any]) -> None:
    from fakesite import Corpus, edit_words, make_page

    corpus = Corpus()
    rng = random.Random(28)
    for index in range(24):
        page = make_page(index, corpus)
        url = f"http://127.0.0.1/statement/{index}"
        old = _statements(page.body, url, "generic")
        for edits in (1, 5, 20, 100, 400):
            page.paragraphs = edit_words(page.paragraphs, rng, edits)
            page.render()
            new = _statements(page.body, url, "generic")
            for key in sorted(old.keys() | new.keys()):
                name = f"fakesite/{index}/{edits}/{key}"
                cases.append((name, "compare", (old.get(key), new.get(key), [])))
            pool += [s for s in old.values() if s.paragraphs]
            old = new


# Bits of text that exercise the sentence splitter and the spacing rules.
_SNIPPETS = (
    "г. Астана",
    "Mr. Smith said so.",
    "N. Nazarbayev",
    "No. 5",
    "ст. 12",
    "С.В.Лавров",
    "С.В. Лавров",
    "approx. 40",
    "Prof. Dr. A. B. Jones",
    "т.е.",
    "U.S.A. and U.K.",
    "1,250",
    "3.5 million",
    "14.11.2026",
    "«Quoted.» Then",
    "(Note.) Next",
    "End! Start? Yes… ",
    "  ",
    "",
)


def _split(paragraph: str) -> list[str]:
    """A paragraph cut roughly at sentence ends (the mutations' own, simple cut)."""
    parts, start = [], 0
    for i, char in enumerate(paragraph):
        if char in ".!?" and i + 1 < len(paragraph) and paragraph[i + 1] == " ":
            parts.append(paragraph[start : i + 1])
            start = i + 2
    parts.append(paragraph[start:])
    return [p for p in parts if p]


def _mutate(paragraphs: list[str], rng: random.Random, donors: list[str]) -> list[str]:
    ps = list(paragraphs)
    if not ps:
        return [rng.choice(donors)]
    op = rng.randrange(16)
    i = rng.randrange(len(ps))
    if op == 0:  # a word replaced
        words = ps[i].split(" ")
        words[rng.randrange(len(words))] = rng.choice(donors).split(" ")[0]
        ps[i] = " ".join(words)
    elif op == 1:  # a sentence removed
        parts = _split(ps[i])
        if len(parts) > 1:
            del parts[rng.randrange(len(parts))]
        ps[i] = " ".join(parts)
    elif op == 2:  # a sentence added (from elsewhere)
        parts = _split(ps[i])
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(_split(rng.choice(donors))))
        ps[i] = " ".join(parts)
    elif op == 3:  # a sentence moved to another paragraph
        parts = _split(ps[i])
        moved = parts.pop(rng.randrange(len(parts)))
        ps[i] = " ".join(parts)
        j = rng.randrange(len(ps))
        target = _split(ps[j])
        target.insert(rng.randrange(len(target) + 1), moved)
        ps[j] = " ".join(target)
    elif op == 4:  # a paragraph removed
        del ps[i]
    elif op == 5:  # a paragraph added
        ps.insert(rng.randrange(len(ps) + 1), rng.choice(donors))
    elif op == 6:  # a paragraph moved
        moved = ps.pop(i)
        ps.insert(rng.randrange(len(ps) + 1), moved)
    elif op == 7:  # a paragraph repeated
        ps.insert(rng.randrange(len(ps) + 1), ps[i])
    elif op == 8:  # a paragraph split in two
        parts = _split(ps[i])
        if len(parts) > 1:
            cut = rng.randrange(1, len(parts))
            ps[i : i + 1] = [" ".join(parts[:cut]), " ".join(parts[cut:])]
    elif op == 9 and i + 1 < len(ps):  # two paragraphs merged
        ps[i : i + 2] = [ps[i] + " " + ps[i + 1]]
    elif op == 10:  # spacing changed (a space doubled, dropped after a period, added)
        text = ps[i]
        if text:
            at = rng.randrange(len(text))
            choice = rng.randrange(3)
            if choice == 0 and text[at] == " ":
                text = text[:at] + "  " + text[at + 1 :]
            elif choice == 1:
                text = text.replace(". ", ".", 1)
            else:
                text = text[:at] + " " + text[at:]
            ps[i] = text
    elif op == 11:  # an abbreviation or an initial written in
        text = ps[i]
        words = text.split(" ")
        words.insert(rng.randrange(len(words) + 1), rng.choice(_SNIPPETS))
        ps[i] = " ".join(words)
    elif op == 12:  # a sentence end changed: a period to a comma or back
        text = ps[i]
        if ". " in text and rng.random() < 0.5:
            at = rng.choice([k for k in range(len(text) - 1) if text[k : k + 2] == ". "])
            ps[i] = text[:at] + "," + text[at + 1 :]
        elif ", " in text:
            at = rng.choice([k for k in range(len(text) - 1) if text[k : k + 2] == ", "])
            ps[i] = text[:at] + ". " + text[at + 2 :].capitalize()
    elif op == 13:  # a run of paragraphs rewritten
        count = rng.randint(1, 4)
        ps[i : i + count] = [rng.choice(donors) for _ in range(rng.randint(0, 4))]
    elif op == 14:  # a sentence repeated within its paragraph
        parts = _split(ps[i])
        k = rng.randrange(len(parts))
        parts.insert(rng.randrange(len(parts) + 1), parts[k])
        ps[i] = " ".join(parts)
    else:  # two sentences swapped
        parts = _split(ps[i])
        if len(parts) > 1:
            a, b = rng.sample(range(len(parts)), 2)
            parts[a], parts[b] = parts[b], parts[a]
        ps[i] = " ".join(parts)
    return [p for p in ps if p.strip()] or [rng.choice(donors)]


def _mask(statement: Any, rng: random.Random) -> Any:
    from monitor.learned import Mask, normal, shape

    paragraphs = list(statement.paragraphs)
    rows: list[dict[str, Any]] = []
    normals = [normal(p) for p in paragraphs]
    if paragraphs:
        rows.append({"kind": "template", "pattern": {"shape": shape(rng.choice(normals))}})
        rows.append({"kind": "shape", "pattern": {"shape": shape(rng.choice(normals))}})
        i = rng.randrange(len(normals))
        before = normals[i - 1] if i > 0 else None
        after = normals[i + 1] if i + 1 < len(normals) else None
        slot = {"before": before, "after": after, "run": rng.randint(1, 3)}
        rows.append({"kind": "slot", "pattern": slot})
    return Mask(rng.sample(rows, rng.randint(1, len(rows))) if rows else [])


def record_mutations(cases: list[Case], pool: list[Any], per_statement: int = 6) -> None:
    rng = random.Random(16)
    donors = [p for s in pool for p in s.paragraphs if p.strip()]
    ignores = ([], [], [], [r"\d+"], ["Astana|Астана"], [r"(a|b)+c"])
    seen: set[str] = set()
    for number, statement in enumerate(pool):
        if statement.sha256 in seen:
            continue
        seen.add(statement.sha256)
        for m in range(per_statement):
            paragraphs = list(statement.paragraphs)
            for _ in range(rng.choice((1, 1, 2, 3, 6))):
                paragraphs = _mutate(paragraphs, rng, donors)
            new = replace(statement, paragraphs=tuple(paragraphs))
            if rng.random() < 0.1:
                new = replace(new, title=new.title + " (updated)")
            if rng.random() < 0.1 and statement.figures:
                new = replace(new, figures=statement.figures[1:])
            name = f"mutation/{number}/{m}"
            ignore = rng.choice(ignores)
            cases.append((name, "compare", (statement, new, ignore)))
            cases.append((name + "/reversed", "compare", (new, statement, ignore)))
            if m % 2 == 0:
                mask = _mask(statement, rng)
                cases.append((name + "/masked", "compare_masked", (mask, statement, new, ignore)))


def record(path: Path, tests: bool) -> None:
    cases: list[Case] = []
    pool: list[Any] = []
    started = time.monotonic()
    if tests:  # first: the wrappers must be in place before anything imports `compare`
        record_tests(cases)
        print(f"tests: {len(cases)} pairs", flush=True)
    record_quality(cases, pool)
    print(f"+ quality corpus: {len(cases)} pairs", flush=True)
    record_fakesite(cases, pool)
    print(f"+ fakesite: {len(cases)} pairs", flush=True)
    record_mutations(cases, pool)
    print(f"+ mutations: {len(cases)} pairs", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(cases))
    print(f"{len(cases)} pairs written to {path} in {time.monotonic() - started:.0f} s")


# --- run and check -----------------------------------------------------------------------------


def run(inputs: Path, out: Path) -> None:
    import monitor
    from monitor.diff import compare
    from monitor.learned import compare_masked

    cases: list[Case] = pickle.loads(inputs.read_bytes())
    functions = {"compare": compare, "compare_masked": compare_masked}
    lines = []
    spent = 0.0
    for name, function, args in cases:
        started = time.process_time()
        try:
            result = repr(functions[function](*args))
        except Exception as err:  # an error is a result too
            result = f"raised {type(err).__name__}: {err}"
        spent += time.process_time() - started
        lines.append(f"{name}\t{result}\n")
    out.write_text("".join(lines), "utf-8")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(f"monitor from {Path(monitor.__file__).parent}")
    print(f"{len(cases)} calls, {spent:.2f} s of CPU; results {digest} in {out}")


def check(a: Path, b: Path) -> int:
    first, second = a.read_text("utf-8").splitlines(), b.read_text("utf-8").splitlines()
    if len(first) != len(second):
        print(f"different numbers of cases: {len(first)} and {len(second)}")
        return 1
    differ = [(x, y) for x, y in zip(first, second, strict=True) if x != y]
    for x, y in differ[:5]:
        print(f"- {x[:2000]}\n+ {y[:2000]}\n")
    print(f"{len(first)} cases, {len(differ)} differ")
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("record")
    p.add_argument("--inputs", type=Path, default=INPUTS)
    p.add_argument("--no-tests", action="store_true")
    p = sub.add_parser("run")
    p.add_argument("--inputs", type=Path, default=INPUTS)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--monitor-src", help="import monitor from this directory")
    p = sub.add_parser("check")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.inputs, not args.no_tests)
    elif args.command == "run":
        run(args.inputs, args.out)
    else:
        sys.exit(check(args.a, args.b))


if __name__ == "__main__":
    main()
