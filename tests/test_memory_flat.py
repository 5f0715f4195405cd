"""Memory stays flat as the list grows: ``digest send`` of 5,000 and then of 50,000 readers, each a
process of its own mailing a local SMTP sink, and the second's peak RSS (the child's own resident
high-water mark, VmHWM; see ``send`` for why not its ``ru_maxrss``) at most 1.2 times the first's.

The sink only takes what it is sent (a small asyncio server in a process of its own), and the
messages are small: the send itself is what is measured.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, VALID_DRAFT
from smtp_server import free_port

SETTINGS = """\
[newsletter]
title = "Test Weekly"
from = "Test Weekly <weekly@lantern-weekly.org>"
postal_address = "12 Riverside Walk, Springfield 10001"
unsubscribe_url = "https://lantern-weekly.org/unsubscribe?token={{token}}"

[lint]
check_links = false

[web]
publish_on_send = false

[delivery]
transport = "smtp"
connections = 4
rate = 0

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
"""


class _Sink(asyncio.Protocol):
    """Enough SMTP to take mail: 250 to every command, 354 to DATA, 250 after each message."""

    taken = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pending = b""
        self.data = False
        transport.write(b"220 sink\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.pending += chunk
        answers = []
        while True:
            if self.data:
                end = self.pending.find(b"\r\n.\r\n")
                if end < 0:
                    self.pending = self.pending[-4:]  # the end may be split between two reads
                    break
                self.pending, self.data = self.pending[end + 5 :], False
                _Sink.taken += 1
                answers.append(b"250 taken\r\n")
                continue
            line, found, rest = self.pending.partition(b"\r\n")
            if not found:
                break
            self.pending = rest
            verb = line[:4].upper()
            if verb == b"DATA":
                self.data = True
                self.pending = b"\r\n" + self.pending  # an empty message ends at once
                answers.append(b"354 go on\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"".join(answers) + b"221 bye\r\n")
                self.transport.close()
                return
            elif verb in (b"EHLO", b"HELO"):
                answers.append(b"250-sink\r\n250 PIPELINING\r\n")  # what a relay offers: digest's usual path
            else:
                answers.append(b"250 ok\r\n")
        if answers:
            self.transport.write(b"".join(answers))


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Sink, "127.0.0.1", port)
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print("ready", flush=True)
        await stop
        server.close()
        print(f"taken {_Sink.taken}", flush=True)

    asyncio.run(main())


def start_sink(port: int) -> subprocess.Popen[bytes]:
    # This file's own sink, everywhere: the same server in CI as on a machine with postfix's.
    command = [sys.executable, __file__, str(port)]
    sink = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return sink
        time.sleep(0.02)
    sink.kill()
    raise AssertionError(f"the SMTP sink on 127.0.0.1:{port} did not start")


def own_peak(pid: int) -> int:
    """A running process's own peak RSS in KiB (VmHWM: since its exec), 0 when unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def send(folder: Path, readers: int, port: int) -> tuple[int, int]:
    """``digest send --yes`` of ``readers`` readers in a process of its own: how many the ledger
    says were delivered, and the process's peak RSS in KiB.

    The peak is the child's own (/proc's VmHWM, watched as it runs): its ``ru_maxrss`` counts the
    memory of the process it was started from as well (the kernel keeps the largest RSS of every
    program the process ever ran, the pytest process's before the exec among them)."""
    (folder / "drafts").mkdir(parents=True)
    draft = folder / "drafts" / "2026-11-20-test.md"
    draft.write_text(VALID_DRAFT, encoding="utf-8")
    (folder / "digest.toml").write_text(SETTINGS.format(port=port), encoding="utf-8")
    with (folder / "subscribers.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        out.writelines(f"reader{n:06d}@example.com,Reader {n},Oslo\n" for n in range(readers))
    env = dict(os.environ, DIGEST_SECRET="memory-test", PYTHONPATH=str(ROOT), NO_COLOR="1")
    with (folder / "stderr.txt").open("wb") as errors:
        child = subprocess.Popen(
            [sys.executable, "-m", "digestcli", "-C", str(folder), "send", str(draft), "--yes"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        deadline = time.monotonic() + 300
        peak = 0
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, own_peak(child.pid))
            if time.monotonic() > deadline:
                child.kill()
                raise AssertionError(f"digest send of {readers:,} readers took over 300 s")
            time.sleep(0.01)
    child.returncode = os.waitstatus_to_exitcode(status)
    said = (folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")
    assert child.returncode == 0, said[-2000:]
    with sqlite3.connect(folder / ".digest" / "ledger.sqlite3") as db:
        delivered = db.execute("SELECT COUNT(*) FROM delivery WHERE state = 'delivered'").fetchone()[0]
    if not peak:  # ru_maxrss would count this test process's memory from before the exec
        pytest.skip("the child's own peak needs /proc (Linux)")
    return int(delivered), peak


def test_peak_memory_is_flat_from_5k_to_50k_readers(tmp_path: Path) -> None:
    # Bytecode first: a process that compiles digest's modules (the first after an edit) peaks
    # higher for it, which would hide the growth this test looks for, or invent some.
    compileall.compile_dir(ROOT / "digestcli", quiet=1)
    port = free_port()
    sink = start_sink(port)
    try:
        small = send(tmp_path / "small", 5_000, port)
        large = send(tmp_path / "large", 50_000, port)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=30)
    assert (small[0], large[0]) == (5_000, 50_000)  # every reader mailed: the whole send was measured
    ratio = large[1] / small[1]
    print(
        f"peak RSS: 5,000 readers {small[1] / 1024:.0f} MiB, 50,000 {large[1] / 1024:.0f} MiB, x{ratio:.2f}"
    )
    assert ratio <= 1.2, f"peak RSS grew {ratio:.2f} times from 5,000 to 50,000 readers"


if __name__ == "__main__":
    serve(int(sys.argv[1]))
