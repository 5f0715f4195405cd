"""Times `digest publish` on a long-running newsletter: 200 generated issues, then publishing again.

    python bench/publish_bench.py [--issues N] [--items N]

Writes N weekly drafts (12 stories each, like the sample) into a temporary workspace and prints,
for each step, the time taken, the files written and left unchanged, and the site's size:
publishing them all into an empty folder, publishing again with nothing changed, publishing after
a correction to one issue's body, and after a change to one headline. Then `--all` (which lints
every draft first) once. Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

STORY = (
    "The council met on Tuesday and, after a long evening, agreed to [the plan](https://example.com/{n}/{i})"
    " that residents had asked for since spring. Work starts next month; the budget is ${n}.{i}M."
)


def draft(number: int, day: dt.date, items: int) -> str:
    stories = "\n\n".join(
        f"## {i}. Story {i} of issue {number}: something happened on the riverside\n\n"
        + STORY.format(n=number, i=i)
        + "\n\n> A quotation from someone who was there, to make the body look like a real one."
        for i in range(1, items + 1)
    )
    return (
        "---\n"
        f"id: bench-weekly-{number}\n"
        "title: The Bench Weekly\n"
        f'subject: "The Bench Weekly #{number}: {items} stories from the week"\n'
        f"date: {day.isoformat()}\n"
        f"issue: {number}\n"
        f'preheader: "Issue {number}: {items} stories, about five minutes."\n'
        "---\n\n"
        f"Good morning, and welcome to issue {number}. Here is the week in {items} stories.\n\n"
        f"{stories}\n\n## Wrapping Up\n\nThat's the week. Everything is in the"
        f" [full report](https://example.com/report/{number}).\n"
    )


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()

    from digestcli.config import find_workspace
    from digestcli.publish import PublishReport, publish_site

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "digest.toml").write_text(
            '[newsletter]\ntitle = "The Bench Weekly"\n\n[web]\nbase_url = "https://bench.example.org/"\n',
            encoding="utf-8",
        )
        drafts = root / "drafts"
        drafts.mkdir()
        first = dt.date(2022, 1, 7)
        paths = []
        for n in range(1, args.issues + 1):
            path = drafts / f"issue-{n:04d}.md"
            path.write_text(draft(n, first + dt.timedelta(weeks=n - 1), args.items), encoding="utf-8")
            paths.append(path)
        workspace = find_workspace(root)
        print(f"{args.issues} issues of {args.items} stories each, base_url set")
        print()
        print(f"{'step':<46}{'time':>10}{'written':>10}{'unchanged':>11}")

        def step(label: str, **options: object) -> PublishReport:
            started = time.perf_counter()
            report = publish_site(workspace, paths, **options)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            print(f"{label:<46}{seconds * 1000:>8.0f} ms{len(report.written):>10}{report.unchanged:>11}")
            return report

        report = step("first publish (empty folder)")
        step("again, nothing changed")
        middle = paths[len(paths) // 2]
        edit(middle, "long evening", "longer evening")
        step("after a correction to one issue's body")
        edit(middle, "Story 1 of", "Story one of")
        step("after a change to one headline")
        paths = []  # --all finds the drafts itself, and lints each one first
        step("--all (every draft linted), nothing changed", all_drafts=True)

        site = report.out
        files = [p for p in site.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        feed = (site / "feed.xml").stat().st_size
        print()
        print(f"site: {len(files)} files, {size / 1024 / 1024:.1f} MB (feed.xml {feed / 1024 / 1024:.1f} MB)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"peak memory (this process): {peak / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
