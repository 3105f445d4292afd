"""Golden readings: every page at hand read by the profiles, written whole, so that a faster
reading can be shown to give the same statements byte for byte.

    python bench/extract_golden.py --out FILE [--monitor-src DIR]
    cmp A B

The pages: every page of the quality corpus (tests/quality, its cases' old and new pages
under their URLs), every page of the public extraction benchmark (../shared/benchmarks/
article-extraction, under its URLs) and bench/fakesite.py's statements (first versions, the
same pages with words edited, and the captcha page). Each is read by the generic profile
and by the profile its URL chooses, with a plain target and with one that drops a few
selectors and names a language, as the worker reads it (`isolate.read_answer`). One line
per reading: its name, then every field of the extraction and of each statement (the
statement's canonical JSON and hash included), or the exception it raised. The CPU the
readings took is printed (compare it between runs of the same machine only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from monitor_source import REPO  # noqa: E402  (the monitor measured, first on sys.path)

BENCHMARK = REPO.parent / "shared" / "benchmarks" / "article-extraction"
QUALITY = REPO / "tests" / "quality"
FAKESITE_PAGES = 40


def pages() -> list[tuple[str, str, bytes]]:
    """(name, URL, bytes) of every page, in a fixed order."""
    found: list[tuple[str, str, bytes]] = []
    seen: set[tuple[str, str]] = set()
    for name in ("cases.toml", "synthetic.toml", "real.toml"):
        path = QUALITY / name
        if not path.exists():
            continue
        for case in tomllib.loads(path.read_text("utf-8"))["case"]:
            for side in ("old", "new"):
                if (case[side], case["url"]) in seen:
                    continue
                seen.add((case[side], case["url"]))
                data = (QUALITY / "pages" / case[side]).read_bytes()
                if case[side].endswith(".gz"):
                    data = gzip.decompress(data)
                found.append((f"quality/{case[side]}", case["url"], data))
    if BENCHMARK.exists():
        truth = json.loads((BENCHMARK / "ground-truth.json").read_text())
        for key in sorted(truth):
            data = gzip.decompress((BENCHMARK / "html" / f"{key}.html.gz").read_bytes())
            found.append(
                (f"benchmark/{key}", truth[key].get("url") or "https://example.org/", data)
            )
    from fakesite import CAPTCHA_PAGE, Corpus, edit_words, make_page

    corpus = Corpus()
    rng = random.Random(7)
    for index in range(FAKESITE_PAGES):
        page = make_page(index, corpus)
        url = f"http://127.0.0.1:8000/statement/{index}"
        found.append((f"fakesite/{index}", url, page.body))
        page.paragraphs = edit_words(page.paragraphs, rng, 1 + index % 7)
        page.render()
        found.append((f"fakesite/{index}-edited", url, page.body))
    found.append(("fakesite/captcha", "http://127.0.0.1:8000/statement/0", CAPTCHA_PAGE))
    return found


def describe(value: object) -> str:
    from monitor.statement import Extraction

    if not isinstance(value, tuple):
        return repr(value)
    extraction, blobs = value
    assert isinstance(extraction, Extraction)
    parts = [
        f"problem={extraction.problem!r} gone={extraction.gone} window={extraction.window_start!r}"
        f" listing={extraction.is_listing} archive={extraction.from_archive}"
        f" attachment_problems={extraction.attachment_problems!r}"
    ]
    for statement in extraction.statements:
        parts.append(f"  {statement!r}")
        parts.append(f"  json={statement.to_json()!r}")
        parts.append(f"  sha256={statement.sha256}")
    parts.append(f"  blobs={sorted((k, len(v)) for k, v in blobs.items())!r}")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--monitor-src", default=str(REPO))
    args = parser.parse_args()

    import monitor
    from monitor.compare import _as_result
    from monitor.isolate import read_answer
    from monitor.sites import get_profile
    from monitor.statement import Target

    print(f"monitor from {Path(monitor.__file__).parent}", file=sys.stderr)
    spent = 0.0
    readings = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for name, url, body in pages():
            own = get_profile(None, url)
            profiles = [("generic", get_profile("generic", url))]
            if own.name != "generic":
                profiles.append((own.name, own))
            targets = [
                ("plain", Target(url)),
                ("dropping", Target(url, language="ru", drop_selectors=(".share", "nav", "aside"))),
            ]
            for profile_name, profile in profiles:
                for target_name, target in targets:
                    result = _as_result(body, url)
                    started = time.process_time()
                    try:
                        value: object = read_answer(profile, result, target, "0" * 64, False)
                    except Exception as err:  # what it raised is the reading
                        value = f"raised {type(err).__name__}: {err}"
                    spent += time.process_time() - started
                    readings += 1
                    out.write(f"{name} {url} {profile_name} {target_name}\n{describe(value)}\n")
    print(f"{readings} readings, {spent:.2f} s CPU ({spent * 1000 / readings:.2f} ms each)")


if __name__ == "__main__":
    main()
