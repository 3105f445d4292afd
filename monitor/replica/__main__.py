"""`python -m monitor.replica [--port 8765]`: serve the replica in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from monitor.replica.server import REST_FORMATS, ReplicaSite


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.replica", description="Offline replica of gov.kz (MFA)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rest-format", choices=REST_FORMATS, default="page")
    parser.add_argument("--require-tokens", action="store_true")
    args = parser.parse_args(argv)
    site = ReplicaSite(
        host=args.host,
        port=args.port,
        rest_format=args.rest_format,
        require_tokens=args.require_tokens,
    ).start()
    # The URL alone on the first line, so a parent process can read it from our stdout.
    print(site.url, flush=True)
    print(f"listing: {site.url}/memleket/entities/mfa/press/news?lang=en", flush=True)
    stopped = threading.Event()
    # A parent process (`monitor demo`, a service manager) ends us with SIGTERM: stop cleanly.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopped.set())
    try:
        # The server runs in its own daemon thread; this one only waits to be stopped.
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
