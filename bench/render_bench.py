"""Times rendering one issue: Markdown, Jinja2 and premailer inlining, and optionally `digest render`.

    python bench/render_bench.py [DRAFT] [--runs N]

Prints the median of N runs for each step of ``render()`` in this process (the first, cold run
is shown apart: it pays for imports and cssutils' warm-up), then, if a ``digest`` command is on
PATH and works, the whole ``digest render DRAFT --out TMP`` process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DRAFT = ROOT / "drafts" / "2026-11-20-weekly.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("draft", nargs="?", type=Path, default=DEFAULT_DRAFT)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    from digestcli.config import find_workspace
    from digestcli.draft import load_draft
    from digestcli.render import render  # loads digestcli.render.compose and the stack below it

    imported = time.perf_counter() - started
    workspace = find_workspace(args.draft.resolve().parent)
    issue = load_draft(args.draft, wrapup_heading=workspace.config.lint.wrapup_heading)

    cold = render(issue, workspace)
    runs = [render(issue, workspace).seconds for _ in range(args.runs)]

    def median_ms(step: str) -> float:
        return statistics.median(r[step] for r in runs) * 1000

    size = len(cold.issue.html.encode("utf-8"))
    text_chars = len(cold.issue.text)
    print(f"{args.draft.name}: {len(issue.items)} items, HTML {size / 1024:.1f} KB, text {text_chars} chars")
    print(f"import digestcli.render's render (+ jinja2, premailer, lxml): {imported * 1000:.0f} ms")
    print()
    print(f"{'step':<28}{'cold run':>12}{f'median of {args.runs}':>16}")
    rows = [
        ("Markdown (HTML + text)", "markdown"),
        ("Jinja2 (both templates)", "jinja"),
        ("premailer inlining", "inline"),
        ("render_issue total", "total"),
    ]
    for label, step in rows:
        print(f"{label:<28}{cold.seconds[step] * 1000:>10.1f} ms{median_ms(step):>13.1f} ms")
    print(f"{'Jinja2 + Markdown':<28}{'':>12}{median_ms('markdown') + median_ms('jinja'):>13.1f} ms")

    print()
    whole_process(args.draft, max(3, args.runs // 4))
    return 0


def whole_process(draft: Path, runs: int) -> None:
    """`digest render` as a user runs it: interpreter start, imports, one render, two files written."""
    digest = shutil.which("digest")
    if digest is None:
        print("digest render (whole process): skipped, no `digest` on PATH")
        return
    times = []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(runs):
            started = time.perf_counter()
            command = [digest, "render", str(draft), "--out", out]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                # The CLI may answer in a Rich panel: keep the words, drop the box around them.
                said = [line.strip(" │╭╮╰╯─") for line in (result.stderr + result.stdout).splitlines()]
                reason = next((line for line in reversed(said) if line), f"exit {result.returncode}")
                print(f"digest render (whole process): skipped, the command failed: {reason}")
                return
    print(f"digest render (whole process): median of {runs}: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())
