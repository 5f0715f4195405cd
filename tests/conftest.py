"""Shared fixtures: a fresh workspace, a draft writer, and the CLI run as a user would run it."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # test-only modules, e.g. smtp_server

VALID_DRAFT = textwrap.dedent(
    """\
    ---
    title: Test Weekly
    subject: "Test Weekly #7: three stories"
    date: 2026-11-20
    issue: 7
    preheader: "Three short stories for the test suite."
    ---

    Hello, and welcome to the seventh issue.

    ## 1. The first story

    A paragraph with [the council's minutes](https://example.com/minutes).

    ## 2. The second story

    Another paragraph, with a quotation: “we measured [it] twice.”

    ## 3. The third story

    - a list item
    - and another

    ## Wrapping Up

    See you next week. Everything is in the [full report](https://example.com/report).
    """
)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workspace (a folder with digest.toml and drafts/), made the current folder."""
    (tmp_path / "drafts").mkdir()
    (tmp_path / "digest.toml").write_text('[newsletter]\ntitle = "Test Weekly"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_DEBUG", raising=False)
    return tmp_path


@pytest.fixture
def sample_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's own sample workspace."""
    for name in ("digest.toml", "subscribers.csv"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "drafts", tmp_path / "drafts")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_draft(workspace: Path) -> Callable[..., Path]:
    def write(text: str = VALID_DRAFT, name: str = "2026-11-20-test.md") -> Path:
        path = workspace / "drafts" / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def digest() -> Callable[..., Result]:
    """Run `digest ARGS...` in-process, as the console script would, and capture its output."""
    from digestcli.cli import app

    def run(*args: str, input: str | None = None) -> Result:
        env = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
        result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


# -- under CI, a missing tool is a failure, not a skip ----------------------------------------------

# Skips that say what the machine is, not what it lacks: no install can lift them.
MACHINE_SKIPS = (
    "running as root, and the immutable attribute",
    "needs /proc",
    "could not import 'fcntl'",
    "syncfs needs Linux 5.8 or later",  # the kernel's, which no install changes
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``DIGEST_CI=1`` (set by .ci/run, which installs Chromium, axe-core, doiuse-email,
    Dovecot and chattr), a test that skips for want of one fails instead, saying what was missing: a run that
    skipped them would pass without having looked."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("DIGEST_CI") != "1" or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(machine in reason for machine in MACHINE_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = f"CI must run this test, but it skipped: {reason} (.ci/run installs what it needs)"
