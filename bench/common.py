"""What the send benchmarks share: the workspace they send from, the SMTP sink they send to
(postfix's ``smtp-sink`` when it is installed, else a small asyncio sink in a process of its own),
and the figures read from a running process (its own peak RSS, its CPU time so far).

    python bench/common.py --sink PORT      # the asyncio sink alone, until SIGTERM
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRAFT = ROOT / "drafts" / "2026-11-20-weekly.md"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
SETTINGS = """\
[newsletter]
title = "The Lantern Weekly"
from = "The Lantern Weekly <lantern@lanternweekly.net>"
unsubscribe_url = "https://lanternweekly.net/unsubscribe?token={{token}}"
postal_address = "4 Quay Street, Riverton 20410"

[lint]
check_links = false

[web]
publish_on_send = false

[delivery]
transport = "{transport}"
connections = {connections}
rate = 0

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
"""


def make_workspace(
    root: Path, readers: Path, *, port: int, transport: str = "smtp", connections: int = 4
) -> Path:
    """A workspace in ``root`` that mails the sample issue to the list at ``readers`` (linked)."""
    (root / "drafts").mkdir(parents=True)
    shutil.copy(DRAFT, root / "drafts" / DRAFT.name)
    (root / "subscribers.csv").symlink_to(readers)
    (root / "digest.toml").write_text(
        SETTINGS.format(transport=transport, port=port, connections=connections), encoding="utf-8"
    )
    return root / "drafts" / DRAFT.name


# -- the sinks ---------------------------------------------------------------------------------------


class SinkProtocol(asyncio.Protocol):
    """Just enough SMTP (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, QUIT): 250 to everything."""

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


def run_python_sink(port: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(SinkProtocol, "127.0.0.1", port, backlog=512)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print("ready", flush=True)
        await stop
        server.close()
        print(f"msg={SinkProtocol.count}", flush=True)

    asyncio.run(serve())


class Sink:
    """A sink on a free port, stopped with the number of messages it took (None from postfix's,
    which counts only to a terminal)."""

    def __init__(self, *, postfix: bool) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  closed in stop()
        self.postfix = postfix
        if postfix:
            command = [SMTP_SINK, f"127.0.0.1:{self.port}", "1024"]
            if os.geteuid() == 0:
                command[1:1] = ["-u", "nobody"]  # smtp-sink will not run as root
            self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.DEVNULL)
        else:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--sink", str(self.port)], stdout=self.log
            )
        _wait_for_port(self.port)

    def stop(self) -> int | None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.seek(0)
        counts = re.findall(rb"msg=(\d+)", self.log.read())
        self.log.close()
        if self.postfix:
            return None
        return int(counts[-1]) if counts else 0


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit(f"the sink on 127.0.0.1:{port} did not start")


# -- a running process, seen from outside ----------------------------------------------------------


def cpu_of(pid: int) -> float:
    """A running process's CPU seconds so far (user + system), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def own_peak(pid: int) -> int:
    """A running process's own peak RSS in KiB (VmHWM, since its exec). Not ru_maxrss: that
    counts the memory of the process it was started from too (this one's, before the exec)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        run_python_sink(int(sys.argv[2]))
