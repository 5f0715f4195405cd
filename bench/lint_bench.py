"""How long `digest lint` takes as a whole process, against the cost of importing Typer and Rich,
with the spelling check on (the default) and off.

Prints a table of medians; asserts nothing. Run: python bench/lint_bench.py [--runs N]

The processes run as an installed digest does: without PYTHONDONTWRITEBYTECODE (which makes
Python compile every module at each start; some machines set it), so that Python keeps its
compiled modules. The spelling dictionary is read from the user's cache (made by the first lint
after an install or an upgrade of pyspellchecker); the "first lint" row times that first one,
with an empty cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
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
            f"A second paragraph of story {n}, with “curly quotes” and a name: Айгерим Сапарова.\n"
        )
    parts.append("\n## Wrapping Up\n\nThat is all. Read the [full report](https://example.com/report).\n")
    return "".join(parts)


def workspace(folder: Path, *, spelling: bool) -> Path:
    """A copy of the sample workspace's settings and words, with the 12-item sample and a
    1,000-item draft, and the spelling check on or off."""
    folder.mkdir()
    (folder / "drafts").mkdir()
    settings = (ROOT / "digest.toml").read_text(encoding="utf-8")
    if not spelling:
        settings += "\n[lint.rules]\nspelling = false\n"
    (folder / "digest.toml").write_text(settings, encoding="utf-8")
    if (ROOT / "words.txt").exists():
        shutil.copy(ROOT / "words.txt", folder / "words.txt")
    shutil.copy(SAMPLE, folder / "drafts" / "sample.md")
    (folder / "drafts" / "big.md").write_text(big_draft(1000), encoding="utf-8")
    typo = (
        SAMPLE.read_text(encoding="utf-8")
        .replace("Using 400 cheap", "Using 400 chaep", 1)
        .replace("id: the-lantern-weekly-42", "id: the-lantern-weekly-43", 1)
        .replace("issue: 42", "issue: 43", 1)
    )
    (folder / "drafts" / "typo.md").write_text(typo, encoding="utf-8")
    return folder


def timed(argv: list[str], runs: int, env: dict[str, str]) -> tuple[float, int]:
    [(median, code)] = interleaved([argv], runs, env)
    return median, code


def interleaved(commands: list[list[str]], runs: int, env: dict[str, str]) -> list[tuple[float, int]]:
    """Each command's median time and last exit code, the commands run in turn (A B C A B C …),
    so that a change in the machine's load weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in commands]
    codes = [0] * len(commands)
    for _ in range(runs):
        for n, argv in enumerate(commands):
            start = time.perf_counter()
            codes[n] = subprocess.run(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env
            ).returncode
            times[n].append(time.perf_counter() - start)
    return [(statistics.median(t), code) for t, code in zip(times, codes, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    few = max(3, args.runs // 3)

    with tempfile.TemporaryDirectory() as tmp:
        on = workspace(Path(tmp) / "on", spelling=True)
        off = workspace(Path(tmp) / "off", spelling=False)

        def lint(folder: Path, draft: str) -> list[str]:
            return [py, "-m", "digestcli", "-C", str(folder), "lint", f"drafts/{draft}"]

        timed(lint(on, "sample.md"), 1, env)  # the cache made, Python's compiled modules written
        (baseline, _), (small_off, _), (small_on, code_small) = interleaved(
            [[py, "-c", "import typer, rich"], lint(off, "sample.md"), lint(on, "sample.md")], args.runs, env
        )
        (large_off, _), (large_on, code_large) = interleaved(
            [lint(off, "big.md"), lint(on, "big.md")], few, env
        )
        typo, code_typo = timed(lint(on, "typo.md"), few, env)
        firsts = []
        for n in range(few):
            cold = dict(env, XDG_CACHE_HOME=str(Path(tmp) / f"cache-{n}"))
            firsts.append(timed(lint(on, "sample.md"), 1, cold)[0])
        first = statistics.median(firsts)

        sys.path.insert(0, str(ROOT))
        from digestcli.config import LintConfig
        from digestcli.draft import load_draft
        from digestcli.lint import lint_issue

        big = on / "drafts" / "big.md"
        in_process = {}
        for name, config in (("off", LintConfig(rules={"spelling": "off"})), ("on", LintConfig())):
            lint_issue(load_draft(big), config)  # warm: rules registered, dictionary loaded
            start = time.perf_counter()
            findings = lint_issue(load_draft(big), config)
            in_process[name] = (time.perf_counter() - start, len(findings))

    rows = [
        ("python -c 'import typer, rich'", baseline, ""),
        ("digest lint, 12 items, spelling off", small_off, f"{small_off / baseline:.2f}x"),
        ("digest lint, 12 items, spelling on", small_on, f"{small_on / baseline:.2f}x; exit {code_small}"),
        ("digest lint, 12 items, first lint (cache made)", first, f"{first / baseline:.2f}x"),
        ("digest lint, 12 items, one typo (suggestions)", typo, f"{typo / baseline:.2f}x; exit {code_typo}"),
        ("digest lint, 1,000 items, spelling off", large_off, ""),
        ("digest lint, 1,000 items, spelling on", large_on, f"exit {code_large}"),
        ("load_draft+lint_issue, 1,000 items, spelling off", *_note(in_process["off"])),
        ("load_draft+lint_issue, 1,000 items, spelling on", *_note(in_process["on"])),
    ]
    print("Whole processes without PYTHONDONTWRITEBYTECODE, as an installed digest runs.")
    print(f"{'what':50} {'median':>9}  note")
    for what, seconds, note in rows:
        print(f"{what:50} {seconds * 1000:7.1f}ms  {note}")


def _note(measured: tuple[float, int]) -> tuple[float, str]:
    seconds, findings = measured
    return seconds, f"{findings} findings"


if __name__ == "__main__":
    main()
