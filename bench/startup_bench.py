"""How long digest's quick commands take to start, against the floor: `python -c "import typer, rich"`.

Times whole processes, interleaved (floor, then each command, round after round) so that a busy
machine slows every row alike; prints each row's median and its ratio to the floor's median.
Asserts nothing. Run: python bench/startup_bench.py [--runs N] [--importtime]

Rows: `digest --help`, `digest status` (a workspace with a ledger of one sent issue),
`digest lint` on the 12-item sample draft (spelling on, the default). The processes run as an
installed digest does: without PYTHONDONTWRITEBYTECODE, so that Python keeps its compiled modules
(some machines set it; it makes every start compile every module). Run it with the Python of a
virtual environment digest is installed in, as a user's would be: a system Python's site-packages
may hold .pth files that every start of it imports, the floor's too, which flatters the ratios.
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
DIGEST = [sys.executable, "-m", "digestcli"]


def workspace(folder: Path) -> Path:
    """The sample workspace with one issue sent through the outbox, so that `status` has a ledger."""
    (folder / "drafts").mkdir(parents=True)
    for name in ("digest.toml", "subscribers.csv", "words.txt"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, folder / name)
    shutil.copy(SAMPLE, folder / "drafts" / SAMPLE.name)
    env = environment()
    subprocess.run(
        [*DIGEST, "send", f"drafts/{SAMPLE.name}", "--yes", "--ignore-links"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    return folder


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    env["NO_COLOR"] = "1"
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # lint's 1 is a finding; anything else is a broken row
        raise SystemExit(f"{' '.join(argv[1:])} exited {done.returncode}: {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds (default 15)")
    parser.add_argument(
        "--importtime", action="store_true", help="also print the top imports of each command"
    )
    options = parser.parse_args()
    env = environment()
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace(Path(tmp) / "ws")
        rows = {
            'python -c "import typer, rich"': [sys.executable, "-c", "import typer, rich"],
            "digest --help": [*DIGEST, "--help"],
            "digest status": [*DIGEST, "status"],
            "digest lint (12 items)": [*DIGEST, "lint", f"drafts/{SAMPLE.name}"],
        }
        for argv in rows.values():  # warm: compiled modules and the spelling cache written
            timed(argv, ws, env)
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(options.runs):
            for name, argv in rows.items():
                times[name].append(timed(argv, ws, env))
        floor = statistics.median(next(iter(times.values())))
        print(f"{'command':<34} {'median ms':>10} {'× floor':>8}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<34} {median * 1000:>10.1f} {median / floor:>8.2f}")
        if options.importtime:
            for name, argv in list(rows.items())[1:]:
                result = subprocess.run(
                    [argv[0], "-X", "importtime", *argv[1:]], cwd=ws, env=env, capture_output=True, text=True
                )
                lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
                top = sorted(lines[1:], key=lambda line: -int(line.split("|")[1]))[:8]
                print(f"\n{name}: largest imports (cumulative µs)")
                for line in top:
                    print("  " + line.removeprefix("import time:").strip())


if __name__ == "__main__":
    main()
