"""`digest lint --fix`: the changes the fixable rules ask for, made in the draft in place; every
line they do not touch is kept byte for byte, line breaks and byte-order mark included.

A fix is line by line: each fixable rule's ``@fixes`` function says which lines become what
(``Change``). Fixes run in passes, because one can make work for another (a paragraph run split
apart under a heading just made): lint the fixable rules, make their changes, parse again, until
nothing is left to fix. Renumbering waits for another run once headlines written as text were
made headings: which lines were stories is the editor's to check before any number changes. The
file is written once, atomically, and only if nobody changed it meanwhile; the draft as it was is
kept where the caller says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from digestcli.config import LintConfig
from digestcli.draft import Issue, parse_draft
from digestcli.errors import InputError, read_bytes, write_atomically
from digestcli.lint import Change, fixer_of, run_rules

# Line breaks as the parser counts them: a lone "\r" is one too.
_BREAK = re.compile(r"(\r\n|\r|\n)")
_BOM = b"\xef\xbb\xbf"
# Fixes converge in two or three passes; a bound keeps two fixes that undo each other finite.
MAX_PASSES = 8


@dataclass(frozen=True)
class Fixed:
    """One change made: by which rule, at which line of the draft as now written, and how."""

    rule: str
    line: int
    what: str


@dataclass(frozen=True)
class FixResult:
    """What ``fix_file`` did: the draft's text now, the changes, and where the old one was kept."""

    text: str
    fixed: tuple[Fixed, ...]
    kept: Path | None = None


def renumber(issue: Issue, text: str) -> tuple[str, int]:
    """The text with numbered item headings renumbered 1, 2, 3 …; and how many changed."""
    from digestcli.lint.structure import renumbering

    changes = list(renumbering(issue, LintConfig()))
    return apply(text, changes), len(changes)


def apply(text: str, changes: Iterable[Change]) -> str:
    """The text with each change made (at most one per line); line breaks and every other
    line kept as they were. A line that becomes several is joined with its own line break."""
    parts = _BREAK.split(text)  # line, break, line, break, …, line
    default = parts[1] if len(parts) > 1 else "\n"
    for change in changes:
        index = 2 * (change.line - 1)
        own = parts[index + 1] if index + 1 < len(parts) else default
        parts[index] = own.join(change.lines)
    return "".join(parts)


def fix_text(text: str, config: LintConfig, path: str | Path = "<draft>") -> tuple[str, list[Fixed]]:
    """The draft's text with every fix that ``[lint.rules]`` leaves on made, and the changes, each
    at its line in the text returned."""
    done: list[Fixed] = []
    held: set[str] = set()
    for _ in range(MAX_PASSES):
        issue = parse_draft(text, path, wrapup_heading=config.wrapup_heading)
        rules = dict.fromkeys(
            f.rule for f in run_rules(issue, str(path), config, fixable_only=True) if f.fixable
        )
        if "item-not-heading" in rules:
            held.add("item-numbering")  # see the module's docstring
        chosen: dict[int, tuple[str, Change]] = {}
        for name in (name for name in rules if name not in held):
            fix = fixer_of(name)
            for change in fix(issue, config) if fix else ():
                unchanged = change.lines == (issue.lines[change.line - 1],)
                if not unchanged and change.line not in chosen:  # one change a line a pass
                    chosen[change.line] = (name, change)
        if not chosen:
            break
        text = apply(text, (change for _, change in chosen.values()))
        moved = _shift(change for _, change in chosen.values())
        done = [replace(f, line=moved(f.line)) for f in done]
        done += [
            Fixed(name, moved(line) + _lead(change), change.what) for line, (name, change) in chosen.items()
        ]
    return text, sorted(done, key=lambda f: f.line)


def _lead(change: Change) -> int:
    """How far down its new lines a change's text is (a heading after the blank line put above it)."""
    return next((n for n, text in enumerate(change.lines) if text.strip()), 0)


def _shift(changes: Iterable[Change]) -> Callable[[int], int]:
    """Where each line of the text before the changes is after them."""
    grown = sorted((c.line, len(c.lines) - 1) for c in changes if len(c.lines) != 1)

    def moved(line: int) -> int:
        return line + sum(extra for at, extra in grown if at < line)

    return moved


def fix_file(path: Path, config: LintConfig, *, keep_in: Path | None = None) -> FixResult:
    """``digest lint --fix`` on one draft: make every fix, and if anything changed, keep the draft
    as it was in ``keep_in`` (as ``keep_in/<name>``) and write the new one in its place, atomically,
    its byte-order mark kept. Refuses (InputError) when the file changes while it is being fixed."""
    target = path.resolve()  # a link to a draft stays a link: the draft it points to is fixed
    raw = read_bytes(path, "draft")  # through a link, the draft it points to
    try:
        text = raw.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not valid UTF-8", where=str(path), hint="save the file as UTF-8") from None
    fixed_text, fixed = fix_text(text, config, path)
    if not fixed:
        return FixResult(text, ())
    if read_bytes(path, "draft") != raw:
        raise InputError(
            "changed while it was being fixed; nothing written",
            where=str(path),
            hint="save it, then run `digest lint --fix` again",
        )
    kept = None
    if keep_in is not None:
        kept = keep_in / path.name
        try:
            keep_in.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot keep the draft as it was: {exc.strerror or exc}", where=str(keep_in)
            ) from None
        _keep_earlier(kept)
        write_atomically(kept, raw, like=target, what="draft's copy")
    data = (_BOM if raw.startswith(_BOM) else b"") + fixed_text.encode("utf-8")
    write_atomically(target, data, what="draft")
    return FixResult(fixed_text, tuple(fixed), kept)


def _keep_earlier(kept: Path) -> None:
    """An earlier fix's copy of the draft, moved aside under the time it was kept: a second
    --fix (renumbering waits for one) must not replace the paste as it first was."""
    try:
        when = f"{dt.datetime.fromtimestamp(kept.stat().st_mtime):%Y%m%d-%H%M%S}"
        aside = kept.with_name(f"{kept.stem}.{when}{kept.suffix}")
        n = 1
        while aside.exists():  # two fixes in one second
            n += 1
            aside = kept.with_name(f"{kept.stem}.{when}-{n}{kept.suffix}")
        kept.rename(aside)
    except FileNotFoundError:
        pass  # the first fix of this draft
    except OSError as exc:
        raise InputError(f"cannot keep the earlier copy: {exc.strerror or exc}", where=str(kept)) from None
