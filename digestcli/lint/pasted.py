"""The rules on a web page pasted into a draft and not yet repaired: story headlines that are not
headings, paragraphs run together into one block, a paragraph twice, a wrap-up that is not a
heading.

A paste's shapes (a bare ``N. Headline``, a line that reads as a whole paragraph) are
``digestcli.paste``'s, which ``digest import`` reads pastes with too; here they are looked for
where the Markdown parser left them: in top-level paragraphs and numbered-list entries, never in
code, quotes or headings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.lint import Change, Report, fixes, rule
from digestcli.paste import chrome_label, ends_sentence, reads_as_paragraph, starts_sentence, story_headlines

# A paragraph shorter than this ("Thanks!", "See you next week.") may well be said twice.
_DUPLICATE_MIN_WORDS = 8
_DUPLICATE_MIN_CHARS = 40
_WRAP_MIN = 40  # a shorter line is no wrapped line of a paragraph: a title, a date line


class _Block(NamedTuple):
    """A run of lines the parser made one paragraph: a top-level paragraph, or the first paragraph
    of a numbered-list entry (whose first line carries the entry's number)."""

    first: int  # file line of its first line
    last: int  # file line of its last line
    entry: bool  # a numbered-list entry


def _blocks(issue: Issue) -> Iterator[_Block]:
    for section in issue.sections:
        tokens = section.tokens
        tops = [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting != -1]
        for k, i in enumerate(tops):
            token = tokens[i]
            stop = tops[k + 1] if k + 1 < len(tops) else len(tokens)
            if token.type == "paragraph_open" and token.map:
                first, end = (n + section.line_offset for n in token.map)
                yield _Block(first, end - 1, False)
            elif token.type == "ordered_list_open":
                for j in range(i, stop):
                    if (
                        tokens[j].type == "list_item_open"
                        and tokens[j].level == 1
                        and tokens[j + 1].type == "paragraph_open"
                        and tokens[j + 1].map
                    ):
                        first, end = tokens[j + 1].map  # type: ignore[misc]
                        yield _Block(first + section.line_offset, end - 1 + section.line_offset, True)


def bare_headlines(issue: Issue) -> Iterator[tuple[int, int, str]]:
    """Each line that is a story headline written as text: its line, number and headline. What is
    one is ``digestcli.paste.story_headlines``'s to say, as for ``digest import``: read down the
    draft with its ``##`` items' numbers, among the lines of its paragraphs and numbered lists."""
    candidates = {n - 1 for block in _blocks(issue) for n in range(block.first, block.last + 1)}
    headings = {item.line - 1: item.number for item in (*issue.items, *issue.after_wrapup)}
    found = story_headlines(issue.lines, headings=headings, candidates=candidates)
    for index, (number, headline) in sorted(found.items()):
        yield index + 1, number, headline


@rule(
    "item-not-heading",
    "error",
    "a story headline written as text, a line or a numbered-list entry `3. Headline` standing alone"
    " before a paragraph, as a pasted page has them (`--fix` makes it `## 3. Headline`)",
    fixable=True,
)
def item_not_heading(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for line, number, headline in bare_headlines(issue):
        yield Report(
            line,
            _indent(issue.lines[line - 1]) + 1,
            f"'{number}. {headline}' looks like a story headline but is not a heading: write"
            f" '## {number}. {headline}' (`digest lint --fix` does)",
        )


@fixes("item-not-heading")
def make_headings(issue: Issue, config: LintConfig) -> Iterator[Change]:
    for line, number, headline in bare_headlines(issue):
        heading = f"## {number}. {headline}"
        yield Change(line, _apart(issue, line, heading), f"made a heading: {heading}")


def _apart(issue: Issue, line: int, heading: str) -> tuple[str, ...]:
    """A new heading, with a blank line on each side where its neighbours are text, as a draft
    has its headings."""
    above = line > issue.front.end_line + 1 and issue.lines[line - 2].strip() != ""
    below = line < len(issue.lines) and issue.lines[line].strip() != ""
    return (*([""] if above else []), heading, *([""] if below else []))


def _runs(issue: Issue) -> Iterator[tuple[int, int]]:
    """Each run of lines in one paragraph that each read as a whole paragraph: (first, last). In
    a draft wrapped by hand, a line that ends a sentence where the wrap would have ended it
    anyway is no paragraph's end: the run is broken there."""
    lines = issue.lines
    headlines = {line for line, _, _ in bare_headlines(issue)}
    blocks = list(_blocks(issue))
    width = _hand_wrap_width(lines, blocks, headlines)
    for block in blocks:
        start: int | None = None
        for line in range(block.first, block.last + 2):
            text = lines[line - 1] if line <= block.last else ""
            whole = line not in headlines and starts_sentence(text) and ends_sentence(text)
            # In a draft not wrapped by hand, a short sentence on a line of its own ("The waiting
            # list passed 300 names.") is a paragraph too, next to one that reads as a paragraph.
            whole = whole and (reads_as_paragraph(text) or (width == 0 and len(text.split()) > 1))
            if whole and start is None:
                start = line
            elif not whole and start is not None:
                yield from _split_at_wraps(lines, start, line - 1, width)
                start = None


def _split_at_wraps(lines: tuple[str, ...], first: int, last: int, width: int) -> Iterator[tuple[int, int]]:
    """The runs in lines first..last (each a whole sentence or more): two lines or more, apart
    where a hand wrap at ``width`` would have broken the line anyway, with one line at least that
    reads as a paragraph."""
    start = first
    for line in range(first, last + 1):
        if line == last or (width and _wrapped(lines, line, width)):
            if line > start and any(reads_as_paragraph(lines[n - 1]) for n in range(start, line + 1)):
                yield start, line
            start = line + 1


def _hand_wrap_width(lines: tuple[str, ...], blocks: list[_Block], headlines: set[int]) -> int:
    """The width the draft's paragraphs are wrapped at by hand (the longest line that breaks in
    the middle of a sentence), or 0 when they are not. A paste's lines each end a sentence; a
    draft wrapped by hand may have short sentences that end many of its lines, so two lines
    broken mid-sentence (or more of them than lines ending one) say it is wrapped by hand."""
    middle: list[int] = []
    ends = 0
    for block in blocks:
        for line in range(block.first, block.last):
            text = lines[line - 1].rstrip()
            if line in headlines or len(text.strip()) < _WRAP_MIN or text.endswith(":"):
                continue  # a title, a date, a headline or a list's lead says nothing of wrapping
            if ends_sentence(text):
                ends += 1
            else:
                middle.append(len(text))
    return max(middle) if len(middle) >= 2 or len(middle) > ends else 0


def _wrapped(lines: tuple[str, ...], line: int, width: int) -> bool:
    """Whether the line ends where a hand wrap at ``width`` would end it: it is no longer than
    that, and the next line's first word would not have fit on it."""
    text = lines[line - 1].rstrip()
    following = lines[line].split()
    return len(text) <= width and bool(following) and len(text) + 1 + len(following[0]) > width


@rule(
    "paragraph-run",
    "warning",
    "lines that each read as a whole paragraph (long, ending a sentence) with no blank line between,"
    " which render as one block, as a paste with a paragraph a line has them (`--fix` puts blank"
    " lines between)",
    fixable=True,
)
def paragraph_run(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for first, last in _runs(issue):
        count = last - first + 1
        yield Report(
            first,
            _indent(issue.lines[first - 1]) + 1,
            f"{count} paragraphs with no blank line between them (lines {first}–{last}) render as"
            " one block: put a blank line after each (`digest lint --fix` does)",
        )


@fixes("paragraph-run")
def separate_paragraphs(issue: Issue, config: LintConfig) -> Iterator[Change]:
    for first, last in _runs(issue):
        for line in range(first, last):
            yield Change(line, (issue.lines[line - 1], ""), "blank line put after it")


def _paragraphs(issue: Issue) -> Iterator[tuple[int, str, bool]]:
    """Each paragraph the parser made (its first line, its text, True), then the paragraphs a paste
    glued into it, each on its own (False): a paragraph ends where a line ends a sentence and the
    next begins one. Headlines written as text and page chrome are no paragraphs."""
    lines = issue.lines
    apart = {line for line, _, _ in bare_headlines(issue)}
    for block in _blocks(issue):
        texts: list[str] = []
        pieces: list[tuple[int, list[str]]] = []
        for line in range(block.first, block.last + 1):
            text = lines[line - 1]
            if line == block.first and block.entry:
                text = re.sub(r"^\s*\d+[.)]", "", text)  # the entry's number is not its text
            if line in apart or chrome_label(text) is not None:
                pieces.append((line + 1, []))
                continue
            if not pieces or (
                starts_sentence(text)
                and (ends_sentence(lines[line - 2]) or reads_as_paragraph(text))
                and line > block.first
            ):
                pieces.append((line, []))
            pieces[-1][1].extend(text.split())
            texts.extend(text.split())
        if not texts:
            continue
        whole = " ".join(texts)
        yield block.first, whole, True
        for start, words in pieces:
            if words and " ".join(words) != whole:
                yield start, " ".join(words), False


@rule(
    "duplicate-paragraph",
    "error",
    f"the same paragraph twice (spacing aside), as a paste can bring a standing intro or a story;"
    f" paragraphs under {_DUPLICATE_MIN_WORDS} words are let be",
)
def duplicate_paragraph(issue: Issue, config: LintConfig) -> Iterator[Report]:
    first: dict[str, int] = {}
    repeated_block = False
    for line, text, whole in _paragraphs(issue):
        if whole:
            repeated_block = False
        elif repeated_block:
            continue  # the paragraph as a whole is reported: not each of its parts again
        if len(text) < _DUPLICATE_MIN_CHARS or len(text.split()) < _DUPLICATE_MIN_WORDS:
            continue
        if text in first:
            repeated_block = whole
            yield Report(
                line,
                _indent(issue.lines[line - 1]) + 1,
                f"this paragraph repeats the one at line {first[text]}: delete one of them",
            )
        else:
            first[text] = line


def _fold(text: str) -> str:
    return " ".join(text.strip().strip("*_").casefold().split()).rstrip(":!.")


def plain_wrapup(issue: Issue, config: LintConfig) -> int | None:
    """The line of the last plain-text line that says the wrap-up heading ("Wrapping Up", as a
    paste has it) alone, or None."""
    wanted = _fold(config.wrapup_heading)
    found = None
    for block in _blocks(issue):
        for line in range(block.first, block.last + 1):
            if _fold(issue.lines[line - 1]) == wanted:
                found = line
    return found


@fixes("wrapup-missing")
def make_wrapup_heading(issue: Issue, config: LintConfig) -> Iterator[Change]:
    line = plain_wrapup(issue, config)
    if issue.wrapup is None and line is not None:
        heading = "## " + issue.lines[line - 1].strip().strip("*_").strip().rstrip(":")
        yield Change(line, _apart(issue, line, heading), f"made the wrap-up heading: {heading}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
