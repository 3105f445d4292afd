"""Alert quality on the labelled corpus (tests/quality): precision, recall, per-case verdicts.

    python bench/quality.py                  # monitor + peers (installs them on first use)
    python bench/quality.py --no-peers       # monitor only, no installation
    python bench/quality.py --show-heldout   # also name the held-out cases (lead only)

The corpus has a tuning set and a held-out third (cases with `heldout = true`, chosen by
hash of the case id: see tests/quality/README.md). Precision and recall are printed for each
separately, and for each source group within them; per-case verdicts are printed for the
tuning set only, so that nobody tunes to the held-out pages by reading this output.

Three comparisons, all on the same before/after pairs:

1. monitor as shipped (site profile chosen from the URL): the verdict of every case, then
   precision and recall, counting an alert as the positive class. A problem page is a
   negative: it must not alert.
2. The generic extractor against trafilatura: every HTML pair again with the profile forced
   to `generic`, once with monitor's own main-content extraction and once with trafilatura's
   (same response classification, same diff; only the text extraction differs), with the
   extraction time per page.
3. The plain-text pipelines of changedetection.io (inscriptis) and urlwatch (html2text):
   page to text, and any difference is an alert. Their alert counts on noise and problem pages
   are what their users complain about.

Peers are installed into bench/.venv-quality (git-ignored, made with --system-site-packages
so that the installed monitor is importable there); nothing of theirs is a project dependency.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / "bench" / ".venv-quality"
PEERS = (
    "trafilatura==2.0.0",
    "lxml_html_clean",  # trafilatura needs it and lxml no longer bundles it
    "inscriptis==2.7.0",
    "html2text==2025.4.15",
)

sys.path.insert(0, str(REPO))
import peers  # noqa: E402  (bench/, this script's folder)

from monitor.compare import compare_pages  # noqa: E402
from monitor.extract import (  # noqa: E402
    Extraction,
    Link,
    Profile,
    Statement,
    Target,
    classify_unusable,
    normalize_text,
    normalize_url,
    split_attachments,
)
from monitor.fetch import FetchResult  # noqa: E402
from tests.quality.corpus import load_cases  # noqa: E402
from tests.quality.corpus import read_page as read  # noqa: E402


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    unnamed: int = 0  # alerted, but a labelled fragment was not among removed/added/summary
    wrong_kind: int = 0

    def add(self, case: dict[str, Any], verdict: dict[str, Any]) -> bool:
        expected, got = case["alert"], bool(verdict["alert"])
        self.tp += expected and got
        self.fn += expected and not got
        self.fp += got and not expected
        self.tn += not expected and not got
        named = [*verdict["removed"], *verdict["added"], verdict["summary"]]
        missing = [f for f in case.get("fragments", []) if not any(f in t for t in named)]
        self.unnamed += bool(got and missing)
        self.wrong_kind += verdict["kind"] != case["kind"]
        return expected == got and not missing and verdict["kind"] == case["kind"]

    def line(self) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return (
            f"precision {precision:.3f}  recall {recall:.3f}  (alerts: {self.tp} right, "
            f"{self.fp} false; {self.fn} edits missed; {self.unnamed} alerted without naming "
            f"the edit; {self.wrong_kind} wrong kind)"
        )


def split_name(case: dict[str, Any]) -> str:
    return "held-out" if case["heldout"] else "tuning"


def run_monitor(cases: list[dict[str, Any]], show_heldout: bool) -> None:
    print(f"monitor compare on {len(cases)} labelled pairs (profile chosen from the URL)\n")
    scores: dict[tuple[str, str], Score] = {}
    hidden = 0
    for case in cases:
        verdict = compare_pages(read(case["old"]), read(case["new"]), case["url"])
        split = split_name(case)
        ok = False
        for key in ((split, "all"), (split, case["group"])):
            ok = scores.setdefault(key, Score()).add(case, verdict)
        if case["heldout"] and not show_heldout:
            hidden += 1
            continue
        expected = "ALERT" if case["alert"] else case["kind"]
        got = "ALERT" if verdict["alert"] else verdict["kind"]
        xfail = " (xfail)" if case.get("xfail_reason") else ""
        print(
            f"  {'ok  ' if ok else 'FAIL'} {case['id']:<40} want {expected:<9} got {got:<9} ",
            end="",
        )
        print(verdict["summary"][:80] + xfail)
    if hidden:
        print(f"  … {hidden} held-out cases scored below, not named (--show-heldout names them)")
    print()
    for split in ("tuning", "held-out"):
        total = scores.get((split, "all"))
        if total is None:
            continue
        cases_in = total.tp + total.fp + total.fn + total.tn
        print(f"monitor, {split} ({cases_in} cases): {total.line()}")
        for (s, group), score in sorted(scores.items()):
            if s == split and group != "all":
                n = score.tp + score.fp + score.fn + score.tn
                print(f"    {group:<22} {n:>4} cases  {score.line()}")
    print()


class TrafilaturaProfile(Profile):
    """Generic profile with trafilatura doing the main-content extraction (bench only)."""

    name = "bench-trafilatura"

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        import trafilatura
        from lxml import etree

        reason = classify_unusable(result)
        if reason:
            return Extraction(problem=reason)
        xml = trafilatura.extract(
            result.text(),
            url=result.url,
            output_format="xml",
            include_links=True,
            include_comments=False,
            with_metadata=True,
        )
        if not xml:
            return Extraction(problem="no statement text found on the page (empty extraction)")
        doc = etree.fromstring(xml.encode())
        paragraphs = [
            text
            for element in doc.iter("p", "head", "item", "cell", "quote")
            if (text := normalize_text("".join(element.itertext())))
        ]
        links = [
            Link(normalize_url(str(ref.get("target")), result.url), normalize_text(ref.text or ""))
            for ref in doc.iter("ref")
            if ref.get("target")
        ]
        links, attachments = split_attachments(links)
        title = normalize_text(doc.get("title") or "")
        statement = Statement(
            key="page",
            url=result.url,
            title=title,
            paragraphs=tuple(p for p in paragraphs if p != title),
            published=doc.get("date"),
            language=target.language,
            links=tuple(links),
            attachments=tuple(attachments),
        )
        return Extraction(statements=[statement])


def run_extractors(cases: list[dict[str, Any]]) -> None:
    html_cases = [c for c in cases if not c["url"].startswith("https://www.gov.kz/")]
    print(f"generic main-content extraction on {len(html_cases)} HTML pairs (profile forced)\n")
    print(f"  {'extractor':<22} {'false alerts':>12} {'missed':>7} {'unnamed':>8} {'ms/page':>8}")
    for label, profile in (
        ("monitor generic", "generic"),
        ("trafilatura 2.0", TrafilaturaProfile()),
    ):
        scores = {"tuning": Score(), "held-out": Score()}
        failures = []
        started = time.perf_counter()
        for case in html_cases:
            verdict = compare_pages(read(case["old"]), read(case["new"]), case["url"], profile)
            if not scores[split_name(case)].add(case, verdict) and not case["heldout"]:
                failures.append(case["id"])
        ms = (time.perf_counter() - started) * 1000 / (2 * len(html_cases))
        fp = sum(s.fp for s in scores.values())
        fn = sum(s.fn for s in scores.values())
        unnamed = sum(s.unnamed for s in scores.values())
        print(f"  {label:<22} {fp:>12} {fn:>7} {unnamed:>8} {ms:>8.1f}")
        for split, score in scores.items():
            print(f"  {'':<22} {split:<9} {score.line()}")
        print(f"  {'':<22} tuning cases failed: {', '.join(failures) or '-'}")
    print()


def run_text_peers(cases: list[dict[str, Any]]) -> None:
    import html2text
    from inscriptis import get_text

    def h2t(raw: bytes) -> str:
        converter = html2text.HTML2Text()
        converter.body_width = 0
        return converter.handle(raw.decode("utf-8", errors="replace"))

    pipelines: dict[str, Callable[[bytes], str]] = {
        "changedetection.io-style (inscriptis)": lambda raw: get_text(raw.decode("utf-8")),
        "urlwatch-style (html2text)": h2t,
    }
    noise = [c for c in cases if not c["alert"]]
    edits = [c for c in cases if c["alert"]]
    print("plain-text pipelines: page -> text, any difference = alert\n")
    print(f"  {'pipeline':<40} {'alerts on noise/problem':>24} {'edits alerted':>14}")
    for label, to_text in pipelines.items():
        false = sum(to_text(read(c["old"])) != to_text(read(c["new"])) for c in noise)
        caught = sum(to_text(read(c["old"])) != to_text(read(c["new"])) for c in edits)
        print(f"  {label:<40} {f'{false} of {len(noise)}':>24} {f'{caught} of {len(edits)}':>14}")
    print()


def update_xfail(cases: list[dict[str, Any]]) -> None:
    """Rewrite the xfail_reason lines of the external case files from today's verdicts."""
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    failing = {
        c["id"]
        for c in cases
        if c["file"] != "cases.toml"
        and not Score().add(c, compare_pages(read(c["old"]), read(c["new"]), c["url"]))
    }
    for name in ("synthetic.toml", "real.toml"):
        path = REPO / "tests" / "quality" / name
        if not path.exists():
            continue
        head, *blocks = path.read_text("utf-8").split("[[case]]\n")
        out = [head]
        for block in blocks:
            lines = [
                line
                for line in block.rstrip("\n").splitlines()
                if not line.startswith("xfail_reason")
            ]
            case_id = tomllib.loads("\n".join(lines))["id"]
            if case_id in failing:
                lines.append(f'xfail_reason = "fails on {revision} (bench/quality.py)"')
            out.append("\n".join(lines) + ("\n\n" if block.endswith("\n\n") else "\n"))
        path.write_text("[[case]]\n".join(out), "utf-8")
    print(f"{len(failing)} external cases marked xfail at {revision}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peers", action="store_true", help="monitor only; install nothing")
    parser.add_argument(
        "--show-heldout", action="store_true", help="name the held-out cases' verdicts too"
    )
    parser.add_argument(
        "--update-xfail",
        action="store_true",
        help="mark the failing cases of synthetic.toml and real.toml with xfail_reason (and "
        "unmark the passing ones), so that the test asserts today's score; monitor only",
    )
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.no_peers and not peers.available(("html2text", "inscriptis", "trafilatura")):
        if args.in_venv:
            print("peers could not be imported in the bench venv", file=sys.stderr)
            return 1
        peers.reexec_in_venv(VENV, PEERS, __file__)
    cases = load_cases()
    if args.update_xfail:
        update_xfail(cases)
        return 0
    run_monitor(cases, args.show_heldout)
    if not args.no_peers:
        run_extractors(cases)
        run_text_peers(cases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
