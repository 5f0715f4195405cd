"""How long `digest import` takes: a 12-story paste (text and HTML) as a whole process, against
the cost of importing Typer and Rich, and a generated 1,000-story paste in both paragraph styles.

Prints medians of CPU time (user + system, the figure a busy machine disturbs least) and wall
time; asserts nothing. Run: python bench/import_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASTES = ROOT / "tests" / "fixtures" / "pastes"
sys.path.insert(0, str(ROOT))

from digestcli.config import Config, NewsletterConfig, Workspace  # noqa: E402
from digestcli.importer import Paste, import_paste  # noqa: E402


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process(argv: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """Median CPU and wall seconds of a command run as its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(runs):
        before, start = children_cpu(), time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
        wall.append(time.perf_counter() - start)
        cpu.append(children_cpu() - before)
    return statistics.median(cpu), statistics.median(wall)


def big_paste(stories: int, *, one_per_line: bool) -> str:
    """A Wix-like paste of ``stories`` stories: chrome, then headlines and two paragraphs each,
    apart by blank-line runs or one per line."""
    gap = "\n" if one_per_line else "\n\n\n"
    parts = ["top of page", "Writer's pictureBench Writer", "Nov 20, 2026", "2 min read", "Bench Notes #1"]
    parts.append("Good morning, and welcome to a very long issue of the bench digest for this week.")
    for n in range(1, stories + 1):
        parts.append(f"{n}. Port Number {n} Commits $4.{n % 10} Billion to D&G-Style “Quiet” Cranes")
        parts.append(f"2024 was the year port {n} ordered its cranes, the operator said in a statement.")
        parts.append(
            "1.5 million containers passed its quay last year, a record, and the new cranes are due."
        )
    parts += ["Wrapping Up", "That is all. To read the full report, click here.", "12 views0 comments"]
    return gap.join(parts) + "\n"


def in_process(text: str, runs: int) -> tuple[float, float, int]:
    """Median CPU and wall seconds of import_paste on a text (nothing written), and its stories."""
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(Path(folder), Config(newsletter=NewsletterConfig(title="Bench Notes")))
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(runs):
            before, start = time.process_time(), time.perf_counter()
            made = import_paste(Paste("bench", text, False), ws, date=dt.date(2026, 11, 20), write=False)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - before)
    return statistics.median(cpu), statistics.median(wall), made.stories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "digest.toml").write_text('[newsletter]\ntitle = "Harbour Notes"\n', encoding="utf-8")
        python = sys.executable
        rows.append(
            ("python -c 'import typer, rich'", *process([python, "-c", "import typer, rich"], runs, cwd))
        )
        for name in ("wix-blank-runs.txt", "saved-post.html"):
            argv = [python, "-m", "digestcli", "import", str(PASTES / name), "--stdout"]
            rows.append((f"digest import {name} --stdout", *process(argv, runs, cwd)))
    print(f"As whole processes, median of {runs} runs (CPU = user + system):")
    for label, cpu, wall in rows:
        print(f"  {label:<48} CPU {cpu * 1000:7.0f} ms   wall {wall * 1000:7.0f} ms")

    print(f"\nIn process, a generated paste, median of {max(runs // 2, 3)} runs:")
    for one_per_line in (False, True):
        text = big_paste(1000, one_per_line=one_per_line)
        cpu, wall, stories = in_process(text, max(runs // 2, 3))
        style = "one paragraph per line" if one_per_line else "blank-line runs"
        lines = text.count("\n")
        print(
            f"  {stories:,} stories, {lines:,} lines, {style:<23} CPU {cpu * 1000:7.0f} ms   "
            f"wall {wall * 1000:7.0f} ms   ({cpu / stories * 1e6:.0f} µs a story)"
        )


if __name__ == "__main__":
    main()
