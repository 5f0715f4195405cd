"""Golden files: each tests/golden/NAME.md renders to exactly NAME.html and NAME.txt beside it.

After a deliberate change to the templates or the renderer, regenerate them with

    DIGEST_REGENERATE=1 pytest tests/test_render_golden.py

and read the diff (``git diff tests/golden``) before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from digestcli.config import Config, NewsletterConfig, Workspace
from digestcli.draft import load_draft
from digestcli.render import render_issue

GOLDEN = Path(__file__).resolve().parent / "golden"
DRAFTS = sorted(GOLDEN.glob("*.md"))
REGENERATE = os.environ.get("DIGEST_REGENERATE") == "1"

# Fixed settings, not the repository's digest.toml: a change there must not break the goldens.
WORKSPACE = Workspace(
    root=GOLDEN,  # no templates/ folder here, so digest's own templates are the ones under test
    config=Config(
        newsletter=NewsletterConfig(
            title="The Kitchen Sink",
            postal_address="1 Test Lane, Springfield 10001",
            language="en",
        )
    ),
)


def _diff(expected: str, actual: str, name: str, limit: int = 80) -> str:
    lines = list(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            f"{name} (golden)",
            f"{name} (now)",
        )
    )
    shown = "".join(lines[:limit])
    more = f"\n... {len(lines) - limit} more diff lines" if len(lines) > limit else ""
    return f"{shown}{more}\nIf the change is intended: DIGEST_REGENERATE=1 pytest tests/test_render_golden.py"


def test_there_are_golden_drafts():
    assert DRAFTS, f"no drafts in {GOLDEN}"


@pytest.mark.parametrize("draft", DRAFTS, ids=lambda p: p.stem)
@pytest.mark.parametrize("part", ["html", "txt"])
def test_render_matches_golden(draft: Path, part: str):
    rendered = render_issue(load_draft(draft), WORKSPACE)
    actual = rendered.html if part == "html" else rendered.text
    golden = draft.with_suffix(f".{part}")
    if REGENERATE:
        golden.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert golden.exists(), (
        f"{golden.name} is missing: DIGEST_REGENERATE=1 pytest tests/test_render_golden.py"
    )
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        pytest.fail(_diff(expected, actual, golden.name), pytrace=False)
