"""How long the link check takes: 100 links against loopback servers that wait 200 ms per request.

The servers listen on 127.0.0.1, 127.0.0.2, … (one host each to the client), and the check asks
at most ``PER_HOST`` at once of any one: it should take about the slowest host's time, links per
host / per-host limit × delay, never the sum of the delays. Then the same check again, answered
by the cache. Prints the figures; asserts nothing. Nothing leaves this machine.

Run: python bench/links_bench.py [--links 100] [--hosts 5] [--delay 0.2] [--per-host 4]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from digestcli.config import Config, Workspace
from digestcli.draft import parse_draft
from digestcli.linkcheck import POOL, check_issue_links


class Host:
    """An HTTP server on one loopback address that answers 200 to anything after ``delay``, and
    counts requests and the most it served at once."""

    def __init__(self, address: str, delay: float):
        self.requests = self.active = self.most = 0
        lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                with lock:
                    host.requests += 1
                    host.active += 1
                    host.most = max(host.most, host.active)
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with lock:
                    host.active -= 1

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{address}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def draft(lines: list[str]) -> str:
    return (
        '---\ntitle: Bench Weekly\nsubject: "Links"\ndate: 2026-11-20\n---\n\n'
        + "\n\n".join(lines)
        + "\n\n## 1. A story\n\nText.\n\n## Wrapping Up\n\nBye.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds each request waits")
    parser.add_argument("--per-host", type=int, default=4)
    args = parser.parse_args()

    hosts = [Host(f"127.0.0.{n}", args.delay) for n in range(1, args.hosts + 1)]
    try:
        stories = [
            f"Story {n}: [the source]({hosts[n % len(hosts)].base}/story/{n})." for n in range(args.links)
        ]
        issue = parse_draft(draft(stories), "drafts/bench.md")
        with tempfile.TemporaryDirectory() as folder:
            workspace = Workspace(root=Path(folder), config=Config())
            # A process's first check imports httpx and asyncio and reads the templates: timed apart.
            started = time.perf_counter()
            check_issue_links(parse_draft(draft([f"[one]({hosts[0].base}/)"]), "w.md"), workspace)
            warm_up = time.perf_counter() - started
            for host in hosts:
                host.requests = host.most = 0
            started = time.perf_counter()
            first = check_issue_links(issue, workspace, per_host=args.per_host)
            took = time.perf_counter() - started
            started = time.perf_counter()
            second = check_issue_links(issue, workspace, per_host=args.per_host)
            cached = time.perf_counter() - started
    finally:
        for host in hosts:
            host.close()

    per_host = max(math.ceil(args.links / len(hosts)), 1)
    slowest = math.ceil(per_host / args.per_host) * args.delay
    serial = args.links * args.delay
    each = f"{per_host} each, {args.delay * 1000:.0f} ms per request"
    print(f"links              {args.links} over {len(hosts)} hosts ({each})")
    print(f"limits             {POOL} at once, {args.per_host} per host")
    print(f"one at a time      {serial:6.2f} s  (the sum of the delays)")
    print(f"slowest host       {slowest:6.2f} s  ({per_host} links, {args.per_host} at a time)")
    print(f"check              {took:6.2f} s  ({first.asked} asked, {len(first.findings)} findings)")
    print(f"again, cached      {cached:6.3f} s  ({second.from_cache} from the cache, {second.asked} asked)")
    print(f"first use          {warm_up:6.2f} s  (one link, the imports with it: once per process)")
    most = max(host.most for host in hosts)
    print(f"most at once       {most} per host; {sum(host.requests for host in hosts)} requests")


if __name__ == "__main__":
    main()
