"""The rules on an issue's words: text left from the scaffold, and debris pasted from a web page."""

from __future__ import annotations

import re
from collections.abc import Iterator

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.lint import Report, rule

# In capitals only: "todo" in a URL or "tk" in a name is not a placeholder. Lorem ipsum in any case.
_PLACEHOLDER = re.compile(r"\b(TODO|TKTK|TK|FIXME|XXX)\b|(?i:lorem ipsum)")

# Whole lines that a blog or site builder adds around a post, matched after folding case.
_BOILERPLATE = [
    re.compile(p)
    for p in (
        r"(top|bottom) of (the )?page",
        r"back to top",
        r"skip to (main )?content",
        r"\d*\s*comments?",
        r"\d+\s+(likes?|views?)",
        r"writer['’]s picture\b.*",
        r"(share|like|tweet|pin it|email)( (this|on \w+))?",
        r"share (this )?(post|article|story)",
        r"post not marked as liked",
        r"\d+ min(ute)? read",
        r"recent posts",
        r"see all",
        r"(follow|like) us( on \w+)?",
        r"(previous|next) post",
    )
]


def _body_lines(issue: Issue) -> Iterator[tuple[int, str]]:
    """Lines after the front matter that are not inside a fenced code block."""
    in_fence = False
    for number, line in enumerate(issue.lines, start=1):
        if number <= issue.front.end_line:
            continue
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, line


@rule(
    "placeholder",
    "error",
    "text left from `digest new` (`TODO`), `TK`, `TKTK`, `FIXME`, `XXX` (in capitals), lorem ipsum",
)
def placeholder(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for number, line in enumerate(issue.lines, start=1):
        for match in _PLACEHOLDER.finditer(line):
            word = match.group(0)
            yield Report(
                number, match.start() + 1, f"'{word}' is a placeholder: replace it with the real text"
            )


@rule(
    "leftover-boilerplate",
    "error",
    'lines pasted from a web page: "Top of page", "Bottom of page", a lone "Comments", "Writer\'s'
    ' picture …", "Share on Facebook", "2 min read", "Recent posts"',
)
def leftover_boilerplate(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for number, line in _body_lines(issue):
        text = line.strip()
        folded = " ".join(text.casefold().strip("#*_>-•|[]()").split()).strip(" .:!")
        if folded and len(folded) <= 60 and any(p.fullmatch(folded) for p in _BOILERPLATE):
            yield Report(
                number,
                len(line) - len(line.lstrip()) + 1,
                f"'{text}' looks pasted from a web page: delete it",
            )
