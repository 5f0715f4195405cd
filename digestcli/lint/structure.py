"""The rules on an issue's shape: front matter, intro, numbered items, wrap-up, headlines, subject."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterator

from digestcli.config import LintConfig, NewsletterConfig
from digestcli.draft import (
    DEFAULT_WRAPUP,
    ISSUE_ID,
    Issue,
    Item,
    curly_quote_message,
    curly_quoted,
    issue_id_of,
)
from digestcli.lint import Change, Report, fixes, rule
from digestcli.lint.pasted import bare_headlines, plain_wrapup

REQUIRED = ("title", "subject", "date")
KNOWN = (*REQUIRED, "issue", "preheader", "id")
# The curly quotes a word processor puts around a value, and the one that closes each.
_CLOSING = {"“": "”", "‘": "’", "„": "“", "«": "»"}
_DEFAULTS = LintConfig()  # the limits the rules' summaries name


@rule(
    "front-matter",
    "error",
    "no front matter, YAML that does not parse, a missing `title`, `subject` or `date`, a date that is"
    " not a date, an `issue` that is not a positive whole number, an `id` that is not letters, digits,"
    " `.`, `_`, `-`, a value in curly quotes (“…”: `--fix` makes them straight); an unknown key is a"
    " warning",
    fixable=True,
)
def front_matter(issue: Issue, config: LintConfig) -> Iterator[Report]:
    # Only a value in curly quotes is for --fix to repair; the rest needs the editor.
    for report in _front_matter_problems(issue):
        curly = curly_quoted(issue.lines[report.line - 1]) if 0 < report.line <= len(issue.lines) else None
        fixable = curly is not None and report.message == curly_quote_message(curly)
        yield report._replace(fixable=fixable and _straightened(issue, report.line) is not None)


def _front_matter_problems(issue: Issue) -> Iterator[Report]:
    front = issue.front
    if front.error:
        line, message = front.error
        yield Report(line, 1, message)
        # The YAML is read no further, but a value in curly quotes is seen on its line: each is
        # said, as `--fix` straightens each.
        for other in _front_matter_lines(issue):
            key = curly_quoted(issue.lines[other - 1])
            if other != line and key is not None and _straightened(issue, other) is not None:
                yield Report(other, 1, curly_quote_message(key))
        return
    values = front.values
    where = front.start_line or 1
    for key in values:
        line = front.line_of(key)
        # `“The Lantern”` keeps its quotes as text; `“PhoneGPT” Debuts` is text that starts with one.
        if curly_quoted(issue.lines[line - 1]) == key and _straightened(issue, line) is not None:
            yield Report(line, 1, curly_quote_message(key))
    for key in REQUIRED:
        if key not in values or values[key] is None or str(values[key]).strip() == "":
            state = "is empty" if key in values else "is missing"
            yield Report(
                front.line_of(key) if key in values else where, 1, f"'{key}' {state}: it is required"
            )
    for key in ("title", "subject", "preheader"):
        value = values.get(key)
        if value is not None and not isinstance(value, str):
            yield Report(front.line_of(key), 1, f"'{key}' must be text; put it in quotes")
    if "date" in values and values["date"] is not None and issue.date is None:
        yield Report(
            front.line_of("date"),
            1,
            f"'date' is {values['date']!r}, not a date like {dt.date.today().isoformat()}",
        )
    if "id" in values and not (
        isinstance(values["id"], (str, int))
        and not isinstance(values["id"], bool)
        and ISSUE_ID.fullmatch(str(values["id"]).strip())
    ):
        yield Report(
            front.line_of("id"),
            1,
            f"'id' is {values['id']!r}: use letters, digits, '.', '_' and '-' (up to 100), like"
            f" {issue_id_of({k: v for k, v in values.items() if k != 'id'}, 'weekly-42')}",
        )
    if "issue" in values and issue.number is None:
        yield Report(
            front.line_of("issue"), 1, f"'issue' is {values['issue']!r}, not a positive whole number"
        )
    for key in values:
        if key not in KNOWN:
            close = difflib.get_close_matches(key, KNOWN, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(KNOWN)}"
            yield Report(front.line_of(key), 1, f"unknown key '{key}'{hint}", severity="warning")


def _front_matter_lines(issue: Issue) -> range:
    """The lines between the front matter's fences (from 1), where its keys are."""
    return range(2, issue.front.end_line) if issue.front.end_line > 1 else range(0)


def _straightened(issue: Issue, line: int) -> str | None:
    """A front-matter line with its value's curly quotes made straight YAML quotes, or None when
    the value is not one curly-quoted span (`“PhoneGPT” Debuts` is text that starts with a quote)."""
    text = issue.lines[line - 1]
    key, _, value = text.partition(":")
    raw = value.strip()
    closing = _CLOSING.get(raw[:1])
    if closing is None or len(raw) < 2 or not raw.endswith(closing) or closing in raw[1:-1]:
        return None
    inner = raw[1:-1].replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}:{value[: len(value) - len(value.lstrip())]}"{inner}"'


@fixes("front-matter")
def straighten_quotes(issue: Issue, config: LintConfig) -> Iterator[Change]:
    for line in _front_matter_lines(issue):
        if curly_quoted(issue.lines[line - 1]) is None:
            continue
        fixed = _straightened(issue, line)
        if fixed is not None:
            yield Change(line, (fixed,), f"curly quotes made straight: {fixed.strip()}")


@rule(
    "title-mismatch",
    "warning",
    "a `title` other than `[newsletter] title` (case and surrounding spaces aside): the email's heading"
    " would say one name, and its footer, label and List-Id the other",
)
def title_mismatch(issue: Issue, config: LintConfig) -> Iterator[Report]:
    # The newsletter's title reaches the rules through LintConfig (find_workspace fills it in).
    # A LintConfig made without one, or a digest.toml that never names the newsletter (the title is
    # still the example one), has no name of the editor's to compare with.
    wanted = config.newsletter_title.strip()
    given = issue.title.strip()
    if issue.front.error or wanted in ("", NewsletterConfig().title) or not given:
        return
    if given.casefold() == wanted.casefold():
        return
    yield Report(
        issue.front.line_of("title"),
        1,
        f"title '{given}' is not the newsletter's, '{wanted}' ([newsletter] title in digest.toml):"
        " the heading would say one name, the footer, the email's label and its List-Id the other;"
        " make them agree",
    )


def _first_heading_line(issue: Issue) -> int:
    if issue.items:
        return issue.items[0].line
    if issue.wrapup:
        return issue.wrapup.line
    return issue.intro.line


@rule("items-missing", "error", "no items at all: not one `## N. Headline` story in the draft")
def items_missing(issue: Issue, config: LintConfig) -> Iterator[Report]:
    if issue.items or issue.front.end_line >= len(issue.lines):
        return  # a file that is front matter alone, or none: front-matter says what is wrong
    line = issue.wrapup.line if issue.wrapup else issue.intro.line
    yield Report(
        min(line, len(issue.lines)),
        1,
        "no items: each story starts with a heading '## N. Headline' (1, 2, 3 …) before the wrap-up",
    )


@rule("intro-missing", "error", "no paragraph (the greeting) before item 1")
def intro_missing(issue: Issue, config: LintConfig) -> Iterator[Report]:
    if issue.intro.paragraphs() == 0:
        yield Report(_first_heading_line(issue), 1, "no intro: write a greeting paragraph before item 1")


@rule(
    "item-numbering",
    "error",
    "items not numbered 1, 2, 3 …: a gap, a repeat, disorder (`--fix` renumbers them), a heading"
    " with no number",
    fixable=True,
)
def item_numbering(issue: Issue, config: LintConfig) -> Iterator[Report]:
    fix = "; `digest lint --fix` renumbers the items"
    # With story headlines still written as text, the items are not all there yet: renumbering
    # them now would number around the missing ones. The headings come first.
    pending = next(bare_headlines(issue), None) is not None
    if pending:
        fix = (
            "; make the headlines written as text headings first (`digest lint --fix` does), then look again"
        )
    previous: Item | None = None
    seen: dict[int, Item] = {}
    for item in issue.items:
        if item.number is None:
            yield Report(
                item.line,
                item.column,
                f"{item.label} has no number: items are '## N. Headline'",
                fixable=False,  # --fix renumbers numbers; it does not guess that a heading is an item
            )
            continue
        n = item.number
        if previous is None:
            if n != 1:
                yield Report(item.line, item.column, f"items start at {n}, not 1{fix}", fixable=not pending)
        elif n in seen:
            yield Report(
                item.line,
                item.column,
                f"item {n} appears twice (also at line {seen[n].line}){fix}",
                fixable=not pending,
            )
        elif n < previous.number:  # type: ignore[operator]
            yield Report(
                item.line,
                item.column,
                f"item {n} comes after item {previous.number}: out of order{fix}",
                fixable=not pending,
            )
        elif n != previous.number + 1:  # type: ignore[operator]
            missing = previous.number + 1  # type: ignore[operator]
            gap = f"{missing}" if n == missing + 1 else f"{missing}–{n - 1}"
            yield Report(
                item.line,
                item.column,
                f"item {n} follows item {previous.number}: {gap} missing{fix}",
                fixable=not pending,
            )
        seen.setdefault(n, item)
        previous = item


# The number of an ATX item heading, as draft.ITEM_HEADING reads it ("1.5 million" is no number).
_NUMBER = re.compile(r"^(\s{0,3}##\s+)(\d+)(?=\s*[.)](?!\d))")


@fixes("item-numbering")
def renumbering(issue: Issue, config: LintConfig) -> Iterator[Change]:
    """The numbered item headings renumbered 1, 2, 3 …: headings with no number are left alone
    (lint still reports them), and so is the rest of each line."""
    expected = 1
    for item in issue.items:
        if item.number is None:
            continue
        line = issue.lines[item.line - 1]
        match = _NUMBER.match(line)
        if match and int(match.group(2)) != expected:
            yield Change(
                item.line,
                (f"{match.group(1)}{expected}{line[match.end() :]}",),
                f"item {match.group(2)} renumbered to {expected}",
            )
        expected += 1


@rule("item-headline-empty", "error", "an item heading with a number but no headline: `## 3.`")
def item_headline_empty(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for item in (*issue.items, *issue.after_wrapup):
        if item.number is not None and not item.headline_text:  # no number: item-numbering says so
            yield Report(item.line, item.column, f"{item.label} has no headline text")


@rule("item-body-empty", "error", "an item with no text before the next heading (a comment alone is none)")
def item_body_empty(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for item in (*issue.items, *issue.after_wrapup):
        if item.body.is_empty:
            yield Report(item.line, item.column, f"{item.label} has no text before the next heading")


@rule(
    "wrapup-missing",
    "error",
    f"no `## {DEFAULT_WRAPUP}` (in any case; its name is `[lint] wrapup_heading`); `--fix` makes a"
    f" plain-text `{DEFAULT_WRAPUP}` line the heading",
    fixable=True,
)
def wrapup_missing(issue: Issue, config: LintConfig) -> Iterator[Report]:
    if issue.wrapup is not None:
        return
    plain = plain_wrapup(issue, config)
    if plain is not None:
        yield Report(
            plain,
            1,
            f"'{issue.lines[plain - 1].strip()}' is text, not the wrap-up heading: write"
            f" '## {config.wrapup_heading}' (`digest lint --fix` does)",
        )
        return
    line = max(len(issue.lines), 1)
    yield Report(
        line, 1, f"no '## {config.wrapup_heading}' section: add one after the last item", fixable=False
    )


@rule("wrapup-not-last", "error", "a level-2 heading after the wrap-up, which closes the issue")
def wrapup_not_last(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for item in issue.after_wrapup:
        yield Report(
            item.line,
            item.column,
            f"{item.label} comes after '{config.wrapup_heading}': the wrap-up closes the issue",
        )


@rule("wrapup-empty", "error", "a wrap-up with no text")
def wrapup_empty(issue: Issue, config: LintConfig) -> Iterator[Report]:
    if issue.wrapup is not None and issue.wrapup.body.is_empty:
        yield Report(issue.wrapup.line, 1, f"'{issue.wrapup.heading}' has no text")


def _headline_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


@rule("duplicate-headline", "error", "the same story twice: two headlines alike but for case and punctuation")
def duplicate_headline(issue: Issue, config: LintConfig) -> Iterator[Report]:
    first: dict[str, Item] = {}
    for item in (*issue.items, *issue.after_wrapup):
        key = _headline_key(item.headline_text)
        if not key:
            continue
        if key in first:
            earlier = first[key]
            yield Report(
                item.line,
                item.column,
                f"headline repeats item {earlier.number} (line {earlier.line}): '{item.headline_text}'",
            )
        else:
            first[key] = item


@rule(
    "subject-length",
    "warning",
    f"a subject longer than `[lint] subject_max` ({_DEFAULTS.subject_max}) characters, where inboxes cut it",
)
def subject_length(issue: Issue, config: LintConfig) -> Iterator[Report]:
    n = len(issue.subject)
    if n > config.subject_max:
        yield Report(
            issue.front.line_of("subject"),
            1,
            f"subject is {n} characters; inboxes cut it after about {config.subject_max}",
        )


@rule(
    "headline-length",
    "warning",
    f"a headline longer than `[lint] headline_max` ({_DEFAULTS.headline_max}) characters",
)
def headline_length(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for item in issue.items:
        n = len(item.headline_text)
        if n > config.headline_max:
            yield Report(
                item.line, item.column, f"headline is {n} characters; keep it to {config.headline_max}"
            )


@rule(
    "preheader-missing",
    "warning",
    "no `preheader`: inboxes show the first words of the body beside the subject instead",
)
def preheader_missing(issue: Issue, config: LintConfig) -> Iterator[Report]:
    if issue.front.error is None and not issue.preheader:
        yield Report(
            issue.front.start_line or 1,
            1,
            "no 'preheader': inboxes will preview the first words of the body instead",
        )
