"""Benchmark: digest's whole send path (CSV, personalizing, SMTP pool, ledger) mailing 10,000
readers through 4 connections to a local sink, and postfix's smtp-source against the same sink.

    python bench/send_bench.py [--readers 10000] [--connections 4]

The sink runs in its own process (``--sink``), so it does not compete with the sender for the GIL:
an asyncio server that speaks just enough SMTP (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET,
QUIT), answers 250 and throws the data away. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRAFT = ROOT / "drafts" / "2026-11-20-weekly.md"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"


# -- the sink (its own process) ----------------------------------------------------------------------


class SinkProtocol(asyncio.Protocol):
    count = 0  # messages taken, over all connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = bytearray()
        self.in_data = False
        self.scan = 0  # where to look for the end of the data next
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        replies = []
        start = 0
        while True:
            if self.in_data:
                end = buffer.find(b"\r\n.\r\n", max(start, self.scan - 4))
                if end < 0:
                    self.scan = len(buffer)
                    break
                SinkProtocol.count += 1
                replies.append(b"250 2.0.0 taken\r\n")
                self.in_data = False
                start = end + 5
                continue
            end = buffer.find(b"\r\n", start)
            if end < 0:
                break
            verb = bytes(buffer[start : start + 4]).upper()
            if verb == b"DATA":
                replies.append(b"354 go ahead\r\n")
                self.in_data = True
                start = self.scan = end  # the CRLF ending DATA may begin the terminator
                continue
            start = end + 2
            if verb == b"EHLO":
                replies.append(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n")
            elif verb == b"QUIT":
                replies.append(b"221 bye\r\n")
                self.transport.write(b"".join(replies))
                self.transport.close()
                return
            else:
                replies.append(b"250 OK\r\n")
        del buffer[:start]
        self.scan -= start
        if replies:
            self.transport.write(b"".join(replies))


def run_sink(port: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(SinkProtocol, "127.0.0.1", port, backlog=512)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print("ready", flush=True)
        await stop
        server.close()
        print(SinkProtocol.count, flush=True)

    asyncio.run(serve())


class Sink:
    """The sink process: started on a free port, stopped with the number of messages it took."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(self.port)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the sink did not start")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return int(out.strip().splitlines()[-1])


# -- the sender (this process) ------------------------------------------------------------------------


def the_issue():
    """The sample draft rendered by digest's own renderer; a synthetic issue if that fails."""
    from digestcli.config import find_workspace
    from digestcli.render import RenderedIssue

    try:
        from digestcli.draft import load_draft
        from digestcli.render import render_issue

        return render_issue(load_draft(DRAFT), find_workspace(ROOT)), f"rendered {DRAFT.relative_to(ROOT)}"
    except Exception as exc:  # the renderer is another module's work; the bench must still run
        story = "<p style='font-family:Georgia,serif;line-height:1.6'>" + "Lorem ipsum dolor sit amet. " * 40
        html = (
            "<html><body><p>Hi {{ reader.name }},</p>"
            + "".join(f"<h2>{n}. A story</h2>{story}</p>\n" for n in range(1, 13))
            + '<a href="{{ reader.unsubscribe_url }}">Unsubscribe</a></body></html>\n'
        )
        text = (
            "Hi {{ reader.name }},\n"
            + "Lorem ipsum dolor sit amet.\n" * 300
            + "{{ reader.unsubscribe_url }}\n"
        )
        issue = RenderedIssue("bench", "Bench", "The Bench Weekly #1", "", html, text)
        return issue, f"synthetic ~40 KB issue (render failed: {exc!r})"


def write_readers(path: Path, count: int) -> None:
    names = ["Ann Lee", "Ольга Соколова", "김하나", "José Álvarez", "Bo Chen", "Zoë Andersen"]
    cities = ["Oslo", "Kyiv", "Seoul", "Sevilla", "Chengdu", "Aarhus"]
    rows = (f"reader{n:05d}@example.com,{names[n % 6]},{cities[n % 6]}\n" for n in range(count))
    path.write_text("email,name,city\n" + "".join(rows), encoding="utf-8")


def bench_digest(readers: int, connections: int) -> tuple[float, int, int, str]:
    """(seconds, messages the sink took, bytes of one message, which issue)."""
    from digestcli.config import Config, DeliveryConfig, NewsletterConfig, SmtpConfig, Workspace
    from digestcli.delivery import SmtpTransport, send_issue
    from digestcli.message import Personalizer, load_secret
    from digestcli.subscribers import load_subscribers

    issue, which = the_issue()
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        root = Path(folder)
        write_readers(root / "subscribers.csv", readers)
        sink = Sink()
        config = Config(
            newsletter=replace(NewsletterConfig(), sender="The Lantern Weekly <lantern@example.com>"),
            delivery=DeliveryConfig(transport="smtp", connections=connections, rate=0),
            smtp=SmtpConfig(host="127.0.0.1", port=sink.port, security="none"),
        )
        workspace = Workspace(root=root, config=config)
        try:
            started = time.perf_counter()
            summary = send_issue(issue, workspace, transport=SmtpTransport.from_config(config))
            seconds = time.perf_counter() - started
        finally:
            taken = sink.stop()
        if summary.delivered != readers:
            raise SystemExit(f"only {summary.delivered} of {readers} delivered: {summary.problems[:3]}")
        # One message's size, for smtp-source to send the same amount.
        sample = load_subscribers(root / "subscribers.csv").readers[0]
        size = len(Personalizer(issue, _masthead(config), load_secret(root / ".digest")).message(sample).data)
    return seconds, taken, size, which


def _masthead(config):
    from digestcli.delivery import masthead_for

    return masthead_for(config)


def bench_smtp_source(messages: int, sessions: int, size: int, *, reuse: bool) -> tuple[float, int]:
    sink = Sink()
    command = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    command += ["-d"] if reuse else []
    command += ["-f", "lantern@example.com", "-t", "reader@example.com", f"127.0.0.1:{sink.port}"]
    try:
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    finally:
        taken = sink.stop()
    return seconds, taken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return

    os.environ.setdefault("DIGEST_SECRET", "bench")
    seconds, taken, size, which = bench_digest(args.readers, args.connections)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rate = args.readers / seconds
    print(f"issue:            {which}; {size:,} bytes per message")
    print(f"digest send:      {args.readers:,} readers, {args.connections} connections, sink took {taken:,}")
    print(f"  total time      {seconds:.2f} s (CSV, personalizing, SMTP, ledger: end to end)")
    print(f"  rate            {rate:,.0f} messages/s")
    print(f"  peak memory     {peak_mb:,.0f} MB (ru_maxrss of the sender)")
    if not os.path.exists(SMTP_SOURCE):
        print("smtp-source:      not installed; no comparison")
        return
    for reuse, label in ((False, "as asked (new connection per message)"), (True, "-d (connections reused)")):
        source_seconds, source_taken = bench_smtp_source(args.readers, args.connections, size, reuse=reuse)
        source_rate = args.readers / source_seconds
        print(f"smtp-source {label}: sink took {source_taken:,}")
        print(f"  rate            {source_rate:,.0f} messages/s in {source_seconds:.2f} s")
        print(f"  digest / it     {rate / source_rate:.2f}")


if __name__ == "__main__":
    main()
