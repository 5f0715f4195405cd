"""The safe fix: renumber items 1..N in place, touching nothing but the numbers."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from digestcli.draft import Issue

_NUMBER = re.compile(r"^(\s{0,3}##\s+)(\d+)(?=\s*[.)])")


def renumber(issue: Issue, text: str) -> tuple[str, int]:
    """The text with numbered item headings renumbered 1, 2, 3 …; and how many changed.

    Headings with no number are left alone (lint still reports them), and so is every other
    byte: line endings, spacing, the headline itself.
    """
    lines = text.split("\n")  # CRLF files keep their "\r" inside each line
    changed = 0
    expected = 1
    for item in issue.items:
        if item.number is None:
            continue
        index = item.line - 1
        match = _NUMBER.match(lines[index])
        if match is None:  # a setext heading or one we did not write: leave it
            expected += 1
            continue
        if int(match.group(2)) != expected:
            lines[index] = f"{match.group(1)}{expected}{lines[index][match.end() :]}"
            changed += 1
        expected += 1
    return "\n".join(lines), changed


def write_atomically(path: Path, text: str, *, bom: bool = False) -> None:
    """Replace a file's contents so that a crash leaves either the old file or the new one."""
    data = ("\ufeff" if bom else "") + text
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
