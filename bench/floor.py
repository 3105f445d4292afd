"""The floor: a bare Python process doing only the HTTP part of a check cycle.

    python bench/floor.py --base http://127.0.0.1:PORT --pages 1000 [--etags FILE] [--client curl]

GETs `/statement/0 .. N-1` with aiohttp (`--concurrency` in flight: bench/run.py passes
monitor's own number), reading every body, and nothing else: no parsing, no store. The
issue's floor is this aiohttp loop. `--client curl` does the same with libcurl (pycurl's
multi interface in its own perform/select loop, no event loop): the floor of the transport
monitor uses by default, for seeing monitor's own overhead apart from its transport's. With
`--etags` (a JSON list, one ETag per page) each request carries If-None-Match, so an
unchanged site answers 304s.
`bench/run.py` times the whole process, interpreter start-up included, as it does monitor;
the JSON printed on stdout adds the time of the request loop alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path


async def fetch_all(base: str, pages: int, etags: list[str] | None, concurrency: int) -> Counter:
    import aiohttp

    statuses: Counter = Counter()
    queue = iter(range(pages))

    async def worker(session: aiohttp.ClientSession) -> None:
        # A fixed pool of workers over one shared iterator: no task per URL to schedule.
        for index in queue:
            headers = {"If-None-Match": etags[index]} if etags else {}
            async with session.get(f"{base}/statement/{index}", headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return statuses


def fetch_all_curl(base: str, pages: int, etags: list[str] | None, concurrency: int) -> Counter:
    import pycurl

    statuses: Counter = Counter()
    queue = iter(range(pages))
    multi = pycurl.CurlMulti()
    body: list[bytes] = []  # read and dropped, as the aiohttp loop reads every body

    def start(handle: pycurl.Curl) -> bool:
        index = next(queue, None)
        if index is None:
            return False
        handle.setopt(pycurl.URL, f"{base}/statement/{index}")
        handle.setopt(pycurl.HTTPHEADER, [f"If-None-Match: {etags[index]}"] if etags else [])
        multi.add_handle(handle)
        return True

    running = 0
    for _ in range(concurrency):
        handle = pycurl.Curl()
        handle.setopt(pycurl.WRITEFUNCTION, body.append)
        running += start(handle)
    while running:
        multi.perform()
        while True:
            queued, succeeded, failed = multi.info_read()
            for handle in succeeded + [entry[0] for entry in failed]:
                multi.remove_handle(handle)
                statuses[handle.getinfo(pycurl.RESPONSE_CODE)] += 1
                body.clear()
                running += start(handle) - 1
            if not queued:
                break
        if running:
            multi.select(1.0)
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--pages", type=int, required=True)
    parser.add_argument("--etags", type=Path, help="JSON list of ETags: send If-None-Match")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--client", choices=("aiohttp", "curl"), default="aiohttp")
    args = parser.parse_args()
    etags = json.loads(args.etags.read_text()) if args.etags else None
    started = time.perf_counter()
    try:
        if args.client == "curl":
            statuses = fetch_all_curl(args.base, args.pages, etags, args.concurrency)
        else:
            statuses = asyncio.run(fetch_all(args.base, args.pages, etags, args.concurrency))
    except ImportError as err:
        sys.exit(f"floor: {err.name} is missing: pip install -r bench/requirements.txt")
    seconds = time.perf_counter() - started
    print(json.dumps({"loop_seconds": seconds, "status": dict(statuses)}))


if __name__ == "__main__":
    main()
