"""Front matter read without PyYAML (draft._simple_front_matter) must give exactly what PyYAML
gives, or step aside: every case here is run both ways."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from digestcli import draft

ROOT = Path(__file__).resolve().parent.parent


def by_yaml(lines: list[str]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """What the PyYAML path of draft._front_matter makes of these lines (None: not a mapping)."""
    import yaml

    loader = draft._loader_class()("\n".join(lines))
    try:
        node = loader.get_single_node()
        values = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    if not isinstance(values, dict) or not isinstance(node, yaml.MappingNode):
        return None
    return {str(k): v for k, v in values.items()}, {
        str(k.value): k.start_mark.line + 2 for k, _ in node.value
    }


def front_matter_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    close = next(n for n in range(1, len(lines)) if lines[n].strip() in ("---", "..."))
    return lines[1:close]


DRAFTS = sorted(
    p
    for p in itertools.chain(ROOT.glob("drafts/*.md"), ROOT.glob("tests/**/*.md"))
    if p.read_text(encoding="utf-8").startswith("---\n") and "\n---" in p.read_text(encoding="utf-8")[4:]
)

VALUES = [
    "Example Weekly",
    '"Night trains: back"',
    "'Single quoted'",
    '"It\'s a “quote”"',
    '"with \\"escapes\\""',
    "'it''s doubled'",
    "42",
    "042",
    "0",
    "0x1A",
    "1_000",
    "4.5",
    "1e3",
    ".inf",
    "2026-11-20",
    "2026-13-45",
    "2026-11-20 09:00",
    "yes",
    "No",
    "ON",
    "off",
    "null",
    "~",
    "y",
    "n",
    "Ann's issue",
    "a # comment",
    "a#b",
    "http://example.com/x",
    "text: with colon",
    "ends with colon:",
    "café ☕ weekly",
    "the-lantern-weekly-42",
    "[1, 2]",
    "{a: 1}",
    "&anchor value",
    "*alias",
    "!tag value",
    "|",
    ">",
    "-5",
    "+5",
    "trailing spaces   ",
    "tab\tinside",
    "%percent",
    "@at",
    "`tick`",
    "?question",
    "question?",
    "two  spaces",
    "\u2028",
    "x\u0085y",
]
KEYS = ["title", "subject", "id", "on", "yes", "preheader", "my-key", "_under", "Capital"]


@pytest.mark.parametrize("path", DRAFTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_draft_in_the_project_reads_the_same_both_ways(path: Path) -> None:
    lines = front_matter_lines(path)
    fast = draft._simple_front_matter(lines)
    if fast is not None:
        assert fast == by_yaml(lines)


def test_the_sample_draft_is_read_without_yaml() -> None:
    lines = front_matter_lines(ROOT / "drafts" / "2026-11-20-weekly.md")
    assert draft._simple_front_matter(lines) is not None


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("key", KEYS)
def test_a_value_reads_the_same_both_ways_or_goes_to_yaml(key: str, value: str) -> None:
    lines = ["title: Example Weekly", f"{key}: {value}"] if key != "title" else [f"title: {value}"]
    fast = draft._simple_front_matter(lines)
    if fast is not None:
        assert fast == by_yaml(lines), (key, value)


def test_the_fast_path_takes_the_common_forms() -> None:
    lines = [
        'title: "The Lantern"',
        "id: the-lantern-weekly-42",
        "issue: 42",
        "date: 2026-11-20",
        "",
        "x: 'y'",
    ]
    assert draft._simple_front_matter(lines) == (
        {"title": "The Lantern", "id": "the-lantern-weekly-42", "issue": 42, "date": "2026-11-20", "x": "y"},
        {"title": 2, "id": 3, "issue": 4, "date": 5, "x": 7},
    )
    for odd in ("flag: yes", "n: 042", "a: b: c", "t: 'it''s'", "k: ~", "  indented: 1", "# a comment"):
        assert draft._simple_front_matter([odd]) is None, odd


def test_lint_of_the_sample_loads_no_yaml(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from digestcli.cli import main\n"
        "sys.argv = ['digest', 'lint', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('yaml' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "drafts" / "2026-11-20-weekly.md")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr
