"""Benchmark: ``digest send`` as an editor runs it (a process of its own: start-up, lint, render, the
list, the plan, personalizing, the ledger and the transport), through SMTP to a local sink and
through the outbox, at 10k and 100k readers (1M with --million), beside postfix's
``smtp-source -d`` on the same sink with the same sessions and message size.

    python bench/send_bench.py                      # 10k and 100k, SMTP and outbox
    python bench/send_bench.py --readers 10000 --transport smtp
    python bench/send_bench.py --million            # adds 1M readers (SMTP only)
    python bench/send_bench.py --readers 20000 --transport smtp --bare   # and a bare client
    python bench/send_bench.py --readers 10000 --tree /tmp/old-tree . --repeat 2
                                                    # two copies of digest in turns, twice

Figures for each run:

- msg/s: messages over the time from the first message to the end of the process;
- wall: from the process's start to its end;
- CPU µs/msg: the process's CPU time (user + system) over the messages, whole and from the first
  message on (the send alone: read from /proc when the first message is seen);
- peak RSS: the process's own high-water mark (VmHWM, read as it runs; see common.own_peak);
- first msg: seconds from the process's start to the first message delivered (the journal's
  first ``delivered`` line);
- smtp-source -d: postfix's own client on the same sink, sessions and message size, measured in
  the same run, and digest's msg/s as a share of it;
- with --bare: a bare Python client (smtplib on one thread a session, pre-built messages of the
  same size, one round trip a message as digest's: the next envelope goes with the data's end) on
  the same sink: its msg/s and CPU µs/msg, what Python and smtplib alone cost, against which
  digest's own per-message work shows.

The sink is postfix's ``smtp-sink`` when it is installed (it is C: the sender is the one measured),
else a small asyncio sink in a process of its own. On a busy machine trust the CPU figures over
the rates. Figures are printed, never asserted.

The outbox's figures depend on the disk's recent past. On ext4 without a journal, a file is
slower to create for five minutes after many others were deleted: the kernel skips inodes deleted
that recently (fs/ext4/ialloc.c, ``recently_deleted``, only without a journal), reading the inode
table for each. This script deletes its outbox files when it ends, so the outbox of an invocation
started within five minutes of the last one's end runs slower (a fifth slower, and more CPU in
the kernel, on the machine the README's figures come from); it says so when the scratch folder is
on such a filesystem.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import ROOT, SMTP_SINK, Sink, cpu_of, make_workspace, own_peak

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"

# -- digest send, in a process of its own -------------------------------------------------------------


@dataclass
class Run:
    label: str
    messages: int
    wall: float  # process start to end
    first: float  # process start to the first message delivered
    cpu: float  # seconds, user + system, the whole process
    cpu_at_first: float  # ... up to the first message
    peak_rss: int  # bytes
    message_size: int = 0

    @property
    def rate(self) -> float:
        return (self.messages - 1) / (self.wall - self.first) if self.wall > self.first else 0.0

    @property
    def cpu_per_message(self) -> float:
        return self.cpu / self.messages * 1e6

    @property
    def send_cpu_per_message(self) -> float:
        return (self.cpu - self.cpu_at_first) / max(1, self.messages - 1) * 1e6


def write_readers(path: Path, count: int) -> None:
    names = ["Ann Lee", "Ольга Соколова", "김하나", "José Álvarez", "Bo Chen", "Zoë Andersen"]
    cities = ["Oslo", "Kyiv", "Seoul", "Sevilla", "Chengdu", "Aarhus"]
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        step = 100_000
        for start in range(0, count, step):
            out.write(
                "".join(
                    f"reader{n:07d}@example.com,{names[n % 6]},{cities[n % 6]}\n"
                    for n in range(start, min(count, start + step))
                )
            )


def run_digest(workspace: Path, draft: Path, tree: Path | None, label: str) -> Run:
    """``digest send DRAFT --yes`` in its own process, watched from outside."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["DIGEST_SECRET"] = "bench"
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    journal = workspace / ".digest" / "journal"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "digestcli", "-C", str(workspace), "send", str(draft), "--yes"],
        env=env,
        cwd=workspace,  # not here: `-m` puts the working folder first on the path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    first = cpu_at_first = None
    peak = 0  # the process's own high-water mark (see common.own_peak), read as it runs
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)  # Popen.poll would lose the usage
        if pid:
            break
        peak = max(peak, own_peak(process.pid))
        if first is None and _delivered_yet(journal):
            first = time.perf_counter() - started
            cpu_at_first = cpu_of(process.pid)
        time.sleep(0.002 if first is None else 0.02)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"digest send exited {process.returncode}:\n{errors[-3000:]}")
    messages = _delivered_count(workspace)
    return Run(
        label,
        messages,
        wall,
        first if first is not None else wall,
        usage.ru_utime + usage.ru_stime,
        cpu_at_first if cpu_at_first is not None else 0.0,
        peak * 1024,
    )


def _delivered_yet(journal: Path) -> bool:
    try:
        for log in journal.iterdir():
            with log.open("rb") as handle:
                if b"\tdelivered\t" in handle.read():
                    return True
    except FileNotFoundError:
        pass
    return False


def _delivered_count(workspace: Path) -> int:
    import sqlite3

    with sqlite3.connect(workspace / ".digest" / "ledger.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM delivery WHERE state = 'delivered'").fetchone()[0])


def message_size(workspace: Path, draft: Path, tree: Path | None) -> int:
    """The bytes of one reader's message as SMTP carries them: a dry-run-free look via --test to
    the outbox would touch the ledger's neighbours, so the library builds one in a child process."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from digestcli.config import find_workspace\n"
        "from digestcli.delivery import masthead_for\n"
        "from digestcli.draft import load_draft\n"
        "from digestcli.message import Personalizer\n"
        "from digestcli.render import render_issue\n"
        "from digestcli.subscribers import load_subscribers\n"
        "ws = find_workspace(Path(sys.argv[1]))\n"
        "issue = render_issue(load_draft(Path(sys.argv[2])), ws)\n"
        "readers = load_subscribers(Path(sys.argv[1]) / 'subscribers.csv')\n"
        "reader = next(iter(readers.readers))\n"
        "p = Personalizer(issue, masthead_for(ws.config), b'bench' * 8, columns=readers.columns)\n"
        "print(len(p.message(reader).data))\n"
    )
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run(
        [sys.executable, "-c", code, str(workspace), str(draft)],
        env=env,
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def bench_smtp_source(messages: int, sessions: int, size: int, *, postfix_sink: bool) -> float:
    """smtp-source -d's messages per second, and a check that the sink took them all."""
    sink = Sink(postfix=postfix_sink)
    command = [SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    command += ["-f", "lantern@lanternweekly.net", "-t", "reader@example.com", f"127.0.0.1:{sink.port}"]
    try:
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    finally:
        taken = sink.stop()
    if taken is not None and taken != messages:
        print(f"  (smtp-source: the sink took {taken:,} of {messages:,})")
    return messages / seconds


def bare_client(port: int, messages: int, sessions: int, size: int) -> None:
    """The bare client (``--bare``), in a process of its own: prints nothing, its CPU is read by
    the parent."""
    import smtplib
    import threading

    line = b"y" * 74 + b"\r\n"
    head = b"From: <lantern@lanternweekly.net>\r\nSubject: bare\r\n\r\n"
    data = head + line * ((size - len(head)) // len(line)) + b".\r\n"

    def session(count: int) -> None:
        client = smtplib.SMTP("127.0.0.1", port, timeout=30)
        client.ehlo()
        assert client.sock is not None
        sock = client.sock

        def envelope(n: int) -> bytes:
            return f"MAIL FROM:<lantern@lanternweekly.net>\r\nRCPT TO:<r{n}@example.com>\r\nDATA\r\n".encode()

        # digest's exchange: one round trip a message, the next envelope sent with this data's end.
        sock.sendall(envelope(0))
        expected = [250, 250, 354]
        for n in range(count):
            for code in expected:
                got = client.getreply()[0]
                if got != code:
                    raise SystemExit(f"the bare client got {got}, not {code}")
            sock.sendall(data + envelope(n + 1) if n + 1 < count else data)
            expected = [250, 250, 250, 354] if n + 1 < count else [250]
        for code in expected:
            got = client.getreply()[0]
            if got != code:
                raise SystemExit(f"the bare client got {got}, not {code}")
        client.quit()

    threads = [threading.Thread(target=session, args=(messages // sessions,)) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def bench_bare(messages: int, sessions: int, size: int, *, postfix_sink: bool) -> tuple[float, float]:
    """The bare client's messages per second and CPU µs per message (user + system)."""
    sink = Sink(postfix=postfix_sink)
    messages -= messages % sessions
    command = [sys.executable, __file__, "--bare-client", str(sink.port), str(messages), str(sessions)]
    command.append(str(size))
    try:
        started = time.perf_counter()
        process = subprocess.Popen(command)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    finally:
        taken = sink.stop()
    if status != 0:
        raise SystemExit(f"the bare client failed (status {status})")
    if taken is not None and taken != messages:
        print(f"  (bare client: the sink took {taken:,} of {messages:,})")
    return messages / seconds, (usage.ru_utime + usage.ru_stime) / messages * 1e6


def bench_size(readers: int, args: argparse.Namespace, scratch: Path) -> None:
    """Every transport, every tree (``--tree``, taken in turns ``--repeat`` times) at one size."""
    postfix_sink = os.path.exists(SMTP_SINK) and not args.python_sink
    base = Path(tempfile.mkdtemp(prefix=f"{readers}-", dir=scratch))
    readers_csv = base / "readers.csv"
    write_readers(readers_csv, readers)
    trees: list[Path | None] = [tree.resolve() for tree in args.tree] or [None]
    for round_no in range(args.repeat):
        for tree in trees:
            for transport in args.transport:
                if transport == "outbox" and readers > 100_000:
                    if round_no == 0 and tree == trees[0]:
                        print(f"outbox  {readers:>9,} readers  skipped: {readers * 36 // 1000:,} MB of files")
                    continue
                root = Path(tempfile.mkdtemp(prefix=transport, dir=base))
                print(one_run(readers, readers_csv, root, transport, tree, args, postfix_sink), flush=True)
                if transport == "smtp":
                    shutil.rmtree(root, ignore_errors=True)
                # The outbox's files stay until the end: deleting 10,000s of files makes the next
                # ones slow to create on ext4 without a journal for five minutes (see above).


def one_run(
    readers: int,
    readers_csv: Path,
    root: Path,
    transport: str,
    tree: Path | None,
    args: argparse.Namespace,
    postfix_sink: bool,
) -> str:
    sink = Sink(postfix=postfix_sink) if transport == "smtp" else None
    draft = make_workspace(
        root, readers_csv, transport=transport, port=sink.port if sink else 25, connections=args.connections
    )
    try:
        run = run_digest(root, draft, tree, transport)
    finally:
        taken = sink.stop() if sink else None
    label = f"[{tree.name if tree else 'here'}] " if args.tree else ""
    line = (
        f"{label}{transport:7} {readers:>9,} readers  {run.rate:7,.0f} msg/s  wall {run.wall:6.1f} s"
        f"  CPU {run.cpu_per_message:4.0f} µs/msg (send {run.send_cpu_per_message:4.0f})"
        f"  peak RSS {run.peak_rss / 2**20:5.0f} MiB  first msg {run.first:5.2f} s"
    )
    if taken is not None and taken != run.messages:
        line += f"  (the sink took {taken:,}, the ledger says {run.messages:,} delivered)"
    if transport == "smtp":
        size = message_size(root, draft, tree)
        if os.path.exists(SMTP_SOURCE):
            source = bench_smtp_source(
                min(readers, 100_000), args.connections, size, postfix_sink=postfix_sink
            )
            line += (
                f"  | smtp-source -d {source:,.0f} msg/s ({size:,} B):"
                f" ratio {run.rate / source:.2f} (wall {run.messages / run.wall / source:.2f})"
            )
        else:
            line += "  | smtp-source not installed: no ratio (apt-get install postfix)"
        if args.bare:
            rate, cpu = bench_bare(min(readers, 100_000), args.connections, size, postfix_sink=postfix_sink)
            line += f"  | bare smtplib client {rate:,.0f} msg/s, CPU {cpu:.0f} µs/msg"
    return line


def ext4_without_journal(path: Path) -> bool:
    """Whether ``path`` (which exists) is on an ext4 filesystem without a journal (see the module):
    /sys/fs/ext4 has a folder for each ext4 filesystem, named as its device is in /sys/dev/block."""
    device = os.stat(path).st_dev
    name = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve().name
    try:
        return (Path("/sys/fs/ext4") / name / "journal_task").read_text().strip() == "<none>"
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also 1,000,000 readers (SMTP only)")
    parser.add_argument("--transport", choices=("smtp", "outbox"), nargs="+", default=["smtp", "outbox"])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--tree",
        type=Path,
        nargs="+",
        default=[],
        help="run the digest package found in each folder, in turns",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every tree and transport")
    parser.add_argument("--python-sink", action="store_true", help="the asyncio sink even with postfix's")
    parser.add_argument(
        "--bare", action="store_true", help="also a bare smtplib client on the same sink (SMTP rows)"
    )
    parser.add_argument("--bare-client", type=int, nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_client:
        bare_client(*args.bare_client)
        return
    sizes = list(args.readers) + ([1_000_000] if args.million else [])
    sink = "postfix smtp-sink" if os.path.exists(SMTP_SINK) and not args.python_sink else "asyncio sink"
    trees = ", ".join(str(tree) for tree in args.tree) or str(ROOT)
    print(f"digest from {trees}; {args.connections} connections; {sink}; {os.cpu_count()} cores")
    scratch = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    if "outbox" in args.transport and ext4_without_journal(scratch):
        print(
            f"note: {scratch.parent} is on ext4 without a journal: an outbox run within five minutes of"
            " deleting many files (the last invocation's) is slower; leave five minutes between them"
        )
    try:
        for readers in sizes:
            bench_size(readers, args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
