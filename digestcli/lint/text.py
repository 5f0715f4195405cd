"""The rules on an issue's words: text left from the scaffold, and debris pasted from a web page."""

from __future__ import annotations

import re
from collections.abc import Iterator

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.lint import Report, rule
from digestcli.paste import chrome_label, ends_sentence

# In capitals only: "todo" in a URL or "tk" in a name is not a placeholder. Lorem ipsum in any case.
_PLACEHOLDER = re.compile(r"\b(TODO|TKTK|TK|FIXME|XXX)\b|(?i:lorem ipsum)")


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
    'lines a web page adds around a post, pasted with it, spaced or glued together: "Top of page",'
    ' "Skip to content", "Writer\'s pictureJane Doe", "2 min read", "12 views", "Comments" (and'
    ' "Commentaires", "Kommentare", "Comentarios", "Commenti" …), "Share this post", "Like",'
    ' "Recent Posts", "See All"',
)
def leftover_boilerplate(issue: Issue, config: LintConfig) -> Iterator[Report]:
    body = list(_body_lines(issue))
    for index, (number, line) in enumerate(body):
        text = line.strip()
        if not text or _inside_a_sentence(body, index):
            continue
        label = chrome_label(text)
        if label is None:
            continue
        yield Report(
            number,
            len(line) - len(line.lstrip()) + 1,
            f"'{text}' looks pasted from a web page ({label}): delete it",
        )


def _inside_a_sentence(body: list[tuple[int, str]], index: int) -> bool:
    """Whether a line is part of a sentence wrapped over several lines: it goes on from the line
    above ("published in Nature" below "… the study was"), or the line below goes on from it
    ("Published in Nature, the study" above "followed 4,000 patients"). Chrome stands alone."""
    number, line = body[index]
    above = body[index - 1][1] if index > 0 and body[index - 1][0] == number - 1 else ""
    below = body[index + 1][1] if index + 1 < len(body) and body[index + 1][0] == number + 1 else ""
    text = line.strip()
    if above.strip() and not ends_sentence(above) and text[:1].islower() and not chrome_label(above):
        return True
    below = below.strip()
    return bool(below) and below[:1].islower() and not ends_sentence(text) and not chrome_label(below)
