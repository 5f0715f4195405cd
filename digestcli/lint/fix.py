"""The fix `digest lint --fix` makes for `item-numbering`: renumber items 1..N in place, nothing else."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from digestcli.draft import Issue
from digestcli.errors import InputError

# The number of an ATX item heading, as draft.ITEM_HEADING reads it ("1.5 million" is no number).
_NUMBER = re.compile(r"^(\s{0,3}##\s+)(\d+)(?=\s*[.)](?!\d))")
# Line breaks as the parser counts them: a lone "\r" is one too.
_BREAK = re.compile(r"(\r\n|\r|\n)")


def renumber(issue: Issue, text: str) -> tuple[str, int]:
    """The text with numbered item headings renumbered 1, 2, 3 …; and how many changed.

    Headings with no number are left alone (lint still reports them), and so is every other
    byte: line endings, spacing, the headline itself.
    """
    parts = _BREAK.split(text)  # line, break, line, break, …, line
    changed = 0
    expected = 1
    for item in issue.items:
        if item.number is None:
            continue
        index = 2 * (item.line - 1)
        match = _NUMBER.match(parts[index])
        if match and int(match.group(2)) != expected:
            parts[index] = f"{match.group(1)}{expected}{parts[index][match.end() :]}"
            changed += 1
        expected += 1
    return "".join(parts), changed


def fix_file(path: Path, issue: Issue, text: str) -> tuple[str, int]:
    """``digest lint --fix`` on one draft: renumber it, and if anything changed write it back (a
    byte-order mark it had, kept). The text as it now is, and how many headings changed."""
    fixed, changed = renumber(issue, text)
    if changed:
        try:
            with path.open("rb") as handle:
                bom = handle.read(3) == b"\xef\xbb\xbf"
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
        write_atomically(path, fixed, bom=bom)
    return fixed, changed


def write_atomically(path: Path, text: str, *, bom: bool = False) -> None:
    """Replace a file's contents so that a crash leaves either the old file or the new one."""
    data = ("\ufeff" if bom else "") + text
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write next to it: {exc.strerror or exc}", where=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write: {exc.strerror or exc}", where=str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
