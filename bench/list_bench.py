"""Benchmark: what the reader list costs before the first message leaves, and whether memory stays
flat as the list grows. Each figure is a process of its own, started from nothing:

- plan: read the list and plan the send (``load_subscribers`` and ``plan_send``, what the
  confirmation screen and ``--dry-run`` do before building any message): wall time, CPU time and
  peak RSS;
- send: ``digest send --yes`` through SMTP to a sink on loopback (common.Sink: postfix's
  ``smtp-sink``, else an asyncio one): the time from the process's start to the first message
  delivered (the journal's first ``delivered`` line), and the peak RSS. By default the send is
  stopped (SIGTERM, a clean stop) once that first
  message is out; ``--full`` lets it mail the whole list, so the peak includes the send itself.

Peak RSS is each process's own (``VmHWM`` in /proc, watched as it runs), not ``ru_maxrss``,
which also counts the memory of the process that started it.

The list has N readers (10k and 100k by default, 1M with --million) with a few rows of the kinds
real lists have: duplicates in another case, invalid addresses, addresses the quick check hands to
email-validator (an internationalized domain, a quoted local part). Every run is a first run: a
new workspace, no ledger and no remembered addresses (``--again`` adds a second run of the same
list in the same workspace).

    python bench/list_bench.py                       # 10k and 100k
    python bench/list_bench.py --million             # adds 1M
    python bench/list_bench.py --readers 50000 --full
    python bench/list_bench.py --tree /tmp/old-tree  # another copy of digest, same bench

Figures are printed, never asserted. The machine may be shared: CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SMTP_SINK, Sink, cpu_of, make_workspace, own_peak

PLAN = """\
import resource, sys, time
from pathlib import Path
from digestcli.config import find_workspace
from digestcli.delivery import plan_send
from digestcli.draft import load_draft
from digestcli.render import render_issue
from digestcli.subscribers import load_subscribers
ws = find_workspace(Path(sys.argv[1]))
rendered = render_issue(load_draft(Path(sys.argv[2])), ws)
started, cpu = time.perf_counter(), time.process_time()
readers = load_subscribers(Path(sys.argv[1]) / "subscribers.csv")
plan = plan_send(rendered, ws, readers)
print(len(plan.due), len(readers.skipped), time.perf_counter() - started, time.process_time() - cpu)
"""


def write_readers(path: Path, count: int) -> None:
    """``count`` rows: almost all plain, one in 1,000 each of a duplicate (in capitals), an invalid
    address and an address only email-validator can settle."""
    names = ["Ann Lee", "Ольга Соколова", "김하나", "José Álvarez", "Bo Chen", "Zoë Andersen"]
    cities = ["Oslo", "Kyiv", "Seoul", "Sevilla", "Chengdu", "Aarhus"]
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        rows = []
        for n in range(count):
            address = f"reader{n:07d}@example.com"
            if n % 1000 == 999:
                address = f"READER{n - 500:07d}@EXAMPLE.COM"  # a duplicate of an earlier row
            elif n % 1000 == 998:
                address = f"reader{n:07d}@example"  # no dot in the domain: invalid
            elif n % 1000 == 997:
                address = f"reader{n:07d}@bücher.example"  # an internationalized domain
            rows.append(f"{address},{names[n % 6]},{cities[n % 6]}\n")
            if len(rows) == 100_000:
                out.write("".join(rows))
                rows = []
        out.write("".join(rows))


def environment(tree: Path | None) -> dict[str, str]:
    return dict(os.environ, DIGEST_SECRET="bench", NO_COLOR="1", PYTHONPATH=str(tree or ROOT))


def run_plan(base: Path, draft: Path, tree: Path | None) -> str:
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", PLAN, str(base), str(draft)],
            env=environment(tree),
            cwd=base,  # not this checkout: `python -c` puts the current folder first on sys.path
            stdout=out,
            stderr=errors,
        )
        peak = 0
        while not os.wait4(child.pid, os.WNOHANG)[0]:
            peak = max(peak, own_peak(child.pid))
            time.sleep(0.005)
        wall = time.perf_counter() - started
        out.seek(0)
        errors.seek(0)
        found, said = out.read().decode(), errors.read().decode("utf-8", "replace")
    if len(found.split()) != 4:
        raise SystemExit(f"planning failed:\n{said[-3000:]}")
    due, skipped, seconds, cpu = found.split()
    return (
        f"plan: {int(due):,} due, {int(skipped):,} skipped; list+plan {float(seconds):5.2f} s"
        f" (CPU {float(cpu):5.2f} s); process {wall:5.2f} s; peak RSS {peak / 1024:5.0f} MiB"
    )


def run_send(base: Path, draft: Path, tree: Path | None, *, full: bool) -> str:
    journal = base / ".digest" / "journal"
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (read after the child is gone)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "digestcli", "-C", str(base), "send", str(draft), "--yes"],
        env=environment(tree),
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    first = None
    cpu_at_first = 0.0
    seen = sum(log.stat().st_size for log in journal.iterdir()) if journal.exists() else 0  # an earlier run's
    peak = 0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, own_peak(child.pid))
        if first is None:
            found, seen = _delivered(journal, seen)
            if found:
                first = time.perf_counter() - started
                cpu_at_first = cpu_of(child.pid)
                if not full:
                    child.send_signal(signal.SIGTERM)
        time.sleep(0.005)
    wall = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)
    if first is None:
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace")
        raise SystemExit(f"digest send exited {code} before any message was delivered:\n{said[-3000:]}")
    if os.environ.get("LIST_BENCH_STDERR"):
        errors.seek(0)
        print(errors.read().decode("utf-8", "replace")[-2000:])
    until = f"whole send {wall:6.1f} s" if full else "stopped after it"
    return (
        f"send: first message {first:5.2f} s from start (CPU {cpu_at_first:5.2f} s; {until});"
        f" peak RSS {peak / 1024:5.0f} MiB; CPU {usage.ru_utime + usage.ru_stime:6.2f} s"
    )


def _delivered(journal: Path, seen: int) -> tuple[bool, int]:
    """Whether a journal line says delivered; reads each log from where it left off."""
    try:
        logs = list(journal.iterdir())
    except FileNotFoundError:
        return False, seen
    for log in logs:
        with log.open("rb") as handle:
            handle.seek(max(0, seen - 20))
            data = handle.read()
            if b"\tdelivered\t" in data:
                return True, seen
            seen = max(0, seen - 20) + len(data)
    return False, seen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--million", action="store_true", help="also 1,000,000 readers")
    parser.add_argument("--full", action="store_true", help="mail the whole list, not just the first message")
    parser.add_argument("--again", action="store_true", help="also a second run of the same list")
    parser.add_argument("--skip-plan", action="store_true", help="only the send")
    parser.add_argument("--tree", type=Path, help="run the digest package found in this folder")
    args = parser.parse_args()
    postfix = os.path.exists(SMTP_SINK)
    tree = args.tree.resolve() if args.tree else None
    sizes = list(args.readers) + ([1_000_000] if args.million else [])
    sink_name = "postfix smtp-sink" if postfix else "asyncio sink"
    print(f"digest from {tree or ROOT}; {os.cpu_count()} cores; {sink_name}; 4 connections", flush=True)
    # A first send beforehand, not counted: the first run on a machine pays for compiling the package
    # and filling caches (the spelling check's word list), which every later run finds made.
    with tempfile.TemporaryDirectory(prefix="digest-list-bench-") as folder:
        write_readers(Path(folder) / "readers.csv", 100)
        sink = Sink(postfix=postfix)
        try:
            draft = make_workspace(Path(folder) / "ws", Path(folder) / "readers.csv", port=sink.port)
            run_send(Path(folder) / "ws", draft, tree, full=True)
        finally:
            sink.stop()
    for count in sizes:
        with tempfile.TemporaryDirectory(prefix="digest-list-bench-") as folder:
            base = Path(folder)
            readers = base / "readers.csv"
            write_readers(readers, count)
            sink = Sink(postfix=postfix)
            try:
                draft = make_workspace(base / "ws", readers, port=sink.port)
                if not args.skip_plan:
                    print(f"{count:>9,} readers  {run_plan(base / 'ws', draft, tree)}", flush=True)
                print(
                    f"{count:>9,} readers  {run_send(base / 'ws', draft, tree, full=args.full)}", flush=True
                )
                if args.again:
                    again = run_send(base / "ws", draft, tree, full=args.full)
                    print(f"{count:>9,} readers  again: {again}", flush=True)
            finally:
                sink.stop()


if __name__ == "__main__":
    main()
