"""How long `digest lint` takes as a whole process, against the cost of importing Typer and Rich.

Prints a table of medians; asserts nothing. Run: python bench/lint_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-20-weekly.md"


def big_draft(items: int) -> str:
    parts = [
        '---\ntitle: Bench Weekly\nsubject: "A long issue"\ndate: 2026-11-20\n'
        "issue: 1\n"
        'preheader: "Many stories."\n---\n\nHello, this is a long issue.\n'
    ]
    for n in range(1, items + 1):
        parts.append(
            f"\n## {n}. Story number {n} about the harbour & the council’s $4.2M plan\n\n"
            f"A paragraph with [the source for story {n}](https://example.com/story/{n}) and text.\n\n"
            "A second paragraph, with “curly quotes” and a name: Айгерим Сапарова.\n"
        )
    parts.append("\n## Wrapping Up\n\nThat is all. Read the [full report](https://example.com/report).\n")
    return "".join(parts)


def timed(argv: list[str], runs: int) -> tuple[float, int]:
    times = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    digest = [py, "-m", "digestcli"]

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.md"
        big.write_text(big_draft(1000), encoding="utf-8")

        baseline, _ = timed([py, "-c", "import typer, rich"], args.runs)
        small, code_small = timed([*digest, "lint", str(SAMPLE)], args.runs)
        large, code_large = timed([*digest, "lint", str(big)], max(3, args.runs // 3))

        sys.path.insert(0, str(ROOT))
        from digestcli.config import LintConfig
        from digestcli.draft import load_draft
        from digestcli.lint import lint_issue

        lint_issue(load_draft(big), LintConfig())  # warm: rules registered, regexes compiled
        start = time.perf_counter()
        findings = lint_issue(load_draft(big), LintConfig())
        in_process = time.perf_counter() - start

    rows = [
        ("python -c 'import typer, rich'", baseline, ""),
        ("digest lint (12 items, whole process)", small, f"{small / baseline:.2f}x; exit {code_small}"),
        ("digest lint (1,000 items, whole process)", large, f"exit {code_large}"),
        ("load_draft+lint_issue (1,000 items)", in_process, f"{len(findings)} findings"),
    ]
    print(f"{'what':44} {'median':>9}  note")
    for what, seconds, note in rows:
        print(f"{what:44} {seconds * 1000:7.1f}ms  {note}")


if __name__ == "__main__":
    main()
