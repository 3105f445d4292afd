"""Main-content extraction: the `generic` profile against trafilatura, on real pages.

    python bench/extraction.py               # generic + trafilatura (installs it on first use)
    python bench/extraction.py --no-peers    # generic only, no installation
    python bench/extraction.py --pages       # and each tuned page's F1, worst first

The pages are the shared half of the public article-extraction benchmark
(../shared/benchmarks/article-extraction, human-written ground truth, MIT); the score is the
benchmark's own metric, imported from its `score.py`. Our text of a page is what
`monitor extract` calls its body text: the first statement's paragraphs, one per line.
Trafilatura runs with its defaults (`trafilatura.extract`, fallbacks on), as its users and
the benchmark's published table run it. Both are given the page's bytes and timed per page,
parse included, on the same pages in the same run; a page's time is the best of --repeat
timings (3; see `run`), ms per page the mean of those. `--repeat 1` is one timing a page.

The pages are split: every third key, in sorted order, is *held out* — never looked at while
tuning the extractor — and scored separately, so that a rule fitted to single pages shows as
a gap between the two parts.

Trafilatura is installed into bench/.venv-extraction (git-ignored, made with
--system-site-packages so that the installed monitor is importable there).
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
BENCHMARK = REPO.parent / "shared" / "benchmarks" / "article-extraction"
VENV = REPO / "bench" / ".venv-extraction"
PEERS = ("trafilatura==2.3.1", "lxml_html_clean")  # trafilatura's justext needs the latter

sys.path.insert(0, str(REPO))
import peers  # noqa: E402  (bench/, this script's folder)

from monitor.inspect import body_text, extract_page  # noqa: E402
from monitor.sites import get_profile  # noqa: E402

Extractor = Callable[[bytes, str], str]


def load_metric(folder: Path) -> ModuleType:
    """The benchmark's own `score.py` (its `page` and `score` functions)."""
    spec = importlib.util.spec_from_file_location("article_extraction_score", folder / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"{folder}/score.py: cannot load the benchmark's metric")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_pages(folder: Path) -> tuple[dict[str, dict[str, str]], dict[str, bytes]]:
    truth = json.loads((folder / "ground-truth.json").read_text())
    pages = {}
    for key in truth:
        pages[key] = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
    return truth, pages


def held_out(keys: list[str]) -> set[str]:
    """Every third key in sorted order: scored, never tuned on."""
    return {key for index, key in enumerate(sorted(keys)) if index % 3 == 2}


def generic_extractor() -> Extractor:
    profile = get_profile("generic", "https://example.org/")

    def extract(body: bytes, url: str) -> str:
        return body_text(extract_page(body, url, profile))

    return extract


def trafilatura_extractor() -> Extractor:
    import trafilatura

    from monitor.sites.xpaths import stock

    def extract(body: bytes, url: str) -> str:
        # As it ships: our reading puts its XPath prunes, made in Python, in its lists.
        with stock():
            return trafilatura.extract(body, url=url) or ""

    return extract


def run(
    extractors: dict[str, Extractor],
    truth: dict[str, dict[str, str]],
    pages: dict[str, bytes],
    repeat: int = 3,
) -> dict[str, tuple[dict[str, str], dict[str, float]]]:
    """Each extractor's text and seconds per page, the best of `repeat` timings.

    As `timeit` measures: the extractors take turns page by page (in alternating order, so
    neither always runs on a warm cache or after the other's garbage), the garbage collector
    is off inside a timed call and runs between calls, and the fastest of the rounds is the
    page's time — on a shared machine the others' load only ever adds to a timing. One page
    first, untimed, so imports do not count."""
    first = next(iter(pages))
    results: dict[str, tuple[dict[str, str], dict[str, float]]] = {}
    for name, extract in extractors.items():
        extract(pages[first], truth[first].get("url", ""))
        results[name] = ({}, {})
    order = list(extractors.items())
    for round_ in range(repeat):
        for index, (key, body) in enumerate(pages.items()):
            url = truth[key].get("url", "")
            turns = order if (index + round_) % 2 == 0 else order[::-1]
            for name, extract in turns:
                gc.collect()
                gc.disable()
                try:
                    started = time.perf_counter()
                    text = extract(body, url)
                    took = time.perf_counter() - started
                finally:
                    gc.enable()
                best = results[name][1].get(key)
                results[name][1][key] = took if best is None else min(best, took)
                results[name][0][key] = text
    return results


def figures(
    metric: ModuleType,
    truth: dict[str, dict[str, str]],
    texts: dict[str, str],
    seconds: dict[str, float],
    keys: set[str],
) -> tuple[float, float, float, float]:
    """(F1, precision, recall, ms per page) on `keys`, by the benchmark's metric."""
    part = {key: truth[key] for key in sorted(keys)}
    f1, precision, recall = metric.score(part, {k: {"articleBody": texts[k]} for k in part})
    return f1, precision, recall, 1000 * sum(seconds[k] for k in part) / len(part)


def page_f1(metric: ModuleType, truth: str, text: str) -> float:
    tp, fp, fn = metric.page(truth, text)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-peers", action="store_true", help="generic only; install nothing")
    parser.add_argument("--pages", action="store_true", help="print each page's F1, worst first")
    parser.add_argument("--benchmark", type=Path, default=BENCHMARK, help="benchmark folder")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timings per page and extractor, the best kept"
    )
    parser.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.no_peers and not peers.available(("trafilatura",)):
        if args.in_venv:
            print("trafilatura could not be imported in the bench venv", file=sys.stderr)
            return 1
        peers.reexec_in_venv(VENV, PEERS, __file__)

    metric = load_metric(args.benchmark)
    truth, pages = load_pages(args.benchmark)
    parts = {"all": set(truth), "tuned": set(truth) - held_out(list(truth))}
    parts["held-out"] = held_out(list(truth))
    extractors = {"generic": generic_extractor()}
    if not args.no_peers:
        import trafilatura

        extractors[f"trafilatura {trafilatura.__version__}"] = trafilatura_extractor()
    results = run(extractors, truth, pages, max(1, args.repeat))

    print(
        f"{len(truth)} pages of {args.benchmark.name}; held out: every third key;"
        f" ms per page: the best of {max(1, args.repeat)} timings"
    )
    print(f"{'part':<9} {'extractor':<19} {'F1':>6} {'prec':>6} {'recall':>6} {'ms/page':>8}")
    table: dict[tuple[str, str], tuple[float, float, float, float]] = {}
    for part, keys in parts.items():
        for name, (texts, seconds) in results.items():
            table[part, name] = figures(metric, truth, texts, seconds, keys)
            f1, precision, recall, ms = table[part, name]
            line = f"{part:<9} {name:<19} {f1:6.3f} {precision:6.3f} {recall:6.3f} {ms:8.1f}"
            print(line + f"  ({len(keys)} pages)")
    names = list(results)
    if len(names) == 2:
        print("ratios generic / trafilatura (quality >= 1.0 and time <= 1.0 is the target):")
        for part in parts:
            ours, theirs = table[part, names[0]], table[part, names[1]]
            print(f"  {part:<9} F1 {ours[0] / theirs[0]:.3f}   time {ours[3] / theirs[3]:.3f}")
    if args.pages:
        # The tuned pages only: the held-out ones are scored, never looked at one by one.
        rows = []
        for key in sorted(parts["tuned"]):
            expected = truth[key]["articleBody"]
            scores = [page_f1(metric, expected, texts[key]) for texts, _ in results.values()]
            rows.append((scores[0], scores[1:], key))
        print("tuned pages, worst first: generic, trafilatura, key, URL")
        for ours, theirs, key in sorted(rows):
            peer = " ".join(f"{f:.3f}" for f in theirs)
            print(f"{ours:.3f} {peer:>6} {key[:16]} {truth[key].get('url', '')[:70]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
