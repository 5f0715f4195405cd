"""Lint on a web page pasted into a draft: the rules that catch it (`items-missing`,
`item-not-heading`, `paragraph-run`, `duplicate-paragraph`, the page chrome of
`leftover-boilerplate`, curly quotes in the front matter) and `digest lint --fix` repairing it."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, VALID_DRAFT

from digestcli.config import LintConfig
from digestcli.draft import parse_draft
from digestcli.errors import InputError
from digestcli.lint import Finding, lint_issue
from digestcli.lint import fix as fixing
from digestcli.lint.fix import fix_file, fix_text

# The spelling check has its own tests; names in these pastes would only add to the noise.
QUIET = {"spelling": "off"}
PASTE_RULES = {"items-missing", "item-not-heading", "paragraph-run", "duplicate-paragraph"}

FRONT = """\
---
title: The Harbour Note
subject: "The Harbour Note #12"
date: 2026-11-27
issue: 12
preheader: "Three stories from the week."
---
"""

# A blog post (Wix-like chrome) copied as plain text: one paragraph a line, no blank lines at all.
GLUED = FRONT + "\n".join(
    [
        "top of page",
        "Writer's pictureJane Doe",
        "Nov 27, 2026",
        "2 min read",
        "Good morning, and welcome to the twelfth Harbour Note, with three stories from the waterfront"
        " this week.",
        "1. Night Ferries Return to the Island Route",
        "The overnight ferry between the harbour and the island left on schedule on Sunday, with 140"
        " passengers and a café that sold out of soup before midnight.",
        "Operators say bookings through March are already at 80% of capacity, which they call a record"
        " for the winter season.",
        "2. Council Approves a $4.6 Billion Seawall",
        "After two years of hearings, the council voted 9–2 to build the wall, which engineers say will"
        " hold back a once-a-century storm.",
        "3. “HarbourGPT” Debuts at D&G Shipping",
        "Good morning, and welcome to the twelfth Harbour Note, with three stories from the waterfront"
        " this week.",
        "Wrapping Up",
        "To read the full report, click here.",
        "12 views0 comments",
        "Post not marked as liked",
        "Recent PostsSee All",
        "bottom of page",
        "",
    ]
)

# A WordPress- or Substack-like paste: paragraphs apart by runs of two to four blank lines.
SPACED = (
    FRONT
    + """\
Skip to content


Author's photo



Hello again, readers: three stories this week, and a short note from the editor at the end.



1. vivo Opens a Repair Shop on Quay Street


2024 was the year the company said it would leave the city, but it has changed its mind since.



1.5 million phones a year pass through its workshops, according to three people who work there.


2. JD.Com Buys a $4.6 Billion Stake in a Ferry Line




3 sources said the deal closed on Friday after months of talks between the two companies.



3. What Comes Next for the Old Pier?



Nobody knows yet, and the owners of the pier are not saying much about it at the moment.



Wrapping Up



Thanks for reading, and see you next week with more stories from around the harbour.



Share this post
Kommentare
Like
"""
)


def lint(text: str, **rules: str) -> list[Finding]:
    config = LintConfig(rules={**QUIET, **rules})
    return lint_issue(parse_draft(text, "d.md"), config)


def places(findings: list[Finding], *rules: str) -> list[tuple[str, int]]:
    return [(f.rule, f.line) for f in findings if not rules or f.rule in rules]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The line (from 1) of the nth line of the text that starts with the needle."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(needle)]
    return found[nth - 1]


# ------------------------------------------------------------------------------- the pastes


def test_a_glued_paste_is_caught_at_every_line() -> None:
    findings = lint(GLUED)
    at = lambda needle, nth=1: line_of(GLUED, needle, nth)  # noqa: E731
    assert places(findings, *PASTE_RULES, "wrapup-missing") == [
        ("items-missing", at("top of page")),
        ("item-not-heading", at("1. Night")),
        ("paragraph-run", at("The overnight")),
        ("item-not-heading", at("2. Council")),
        ("item-not-heading", at("3. “Harbour")),
        ("duplicate-paragraph", at("Good morning", 2)),
        ("wrapup-missing", at("Wrapping Up")),
    ]
    duplicate = next(f for f in findings if f.rule == "duplicate-paragraph")
    assert f"repeats the one at line {at('Good morning')}" in duplicate.message
    chrome = [f.line for f in findings if f.rule == "leftover-boilerplate"]
    assert chrome == [
        at("top of page"),
        at("Writer's"),
        at("2 min read"),
        at("12 views"),
        at("Post not marked"),
        at("Recent Posts"),
        at("bottom of page"),
    ]
    heading = next(f for f in findings if f.rule == "item-not-heading")
    assert "'## 1. Night Ferries Return to the Island Route'" in heading.message and heading.fixable


def test_a_spaced_paste_is_caught_and_numbers_that_start_paragraphs_are_no_headlines() -> None:
    findings = lint(SPACED)
    at = lambda needle: line_of(SPACED, needle)  # noqa: E731
    assert places(findings, *PASTE_RULES, "wrapup-missing") == [
        ("items-missing", at("Skip to")),
        ("item-not-heading", at("1. vivo")),
        ("item-not-heading", at("2. JD.Com")),
        ("item-not-heading", at("3. What")),
        ("wrapup-missing", at("Wrapping Up")),
    ]
    chrome = [f.line for f in findings if f.rule == "leftover-boilerplate"]
    assert chrome == [at("Skip to"), at("Author's"), at("Share this"), at("Kommentare"), at("Like")]


def test_fix_repairs_the_shape_of_a_glued_paste_and_leaves_the_rest() -> None:
    fixed, changes = fix_text(GLUED, LintConfig(rules=QUIET))
    at = lambda needle: line_of(fixed, needle)  # noqa: E731
    assert [(c.rule, c.line) for c in changes] == [
        ("item-not-heading", at("## 1.")),
        ("paragraph-run", at("The overnight")),
        ("item-not-heading", at("## 2.")),
        ("item-not-heading", at("## 3.")),
        ("wrapup-missing", at("## Wrapping Up")),
    ]
    body = fixed.split("---\n", 2)[2]
    assert body.startswith("top of page\nWriter's pictureJane Doe\nNov 27, 2026\n2 min read\nGood morning")
    assert "this week.\n\n## 1. Night Ferries Return to the Island Route\n\nThe overnight ferry" in body
    assert "before midnight.\n\nOperators say" in body
    assert "winter season.\n\n## 2. Council Approves a $4.6 Billion Seawall\n\nAfter two years" in body
    assert "\n\n## 3. “HarbourGPT” Debuts at D&G Shipping\n\nGood morning" in body
    assert "this week.\n\n## Wrapping Up\n\nTo read the full report, click here.\n12 views0 comments" in body
    # Nothing was removed or reworded: the same words, only headings and blank lines added.
    assert re.sub(r"\s+|##", "", fixed) == re.sub(r"\s+", "", GLUED)
    # What is left is what only the editor can decide: the chrome, the repeat, the lost link.
    left = {f.rule for f in lint(fixed)}
    assert left == {"leftover-boilerplate", "duplicate-paragraph", "link-text"}
    assert fix_text(fixed, LintConfig(rules=QUIET)) == (fixed, [])  # a second fix has nothing to do


def test_fix_makes_a_spaced_paste_a_draft_with_only_the_chrome_left() -> None:
    fixed, changes = fix_text(SPACED, LintConfig(rules=QUIET))
    assert {c.rule for c in changes} == {"item-not-heading", "wrapup-missing"}
    assert "\n## 1. vivo Opens a Repair Shop on Quay Street\n" in fixed
    assert "\n## 3. What Comes Next for the Old Pier?\n" in fixed
    assert "\n2024 was the year" in fixed and "\n1.5 million phones" in fixed and "\n3 sources said" in fixed
    issue = parse_draft(fixed, "d.md")
    assert [item.number for item in issue.items] == [1, 2, 3] and issue.wrapup is not None
    assert {f.rule for f in lint(fixed)} == {"leftover-boilerplate"}


# ---------------------------------------------------------------------------- items-missing


def test_a_raw_paste_with_only_its_wrapup_made_a_heading_no_longer_passes(digest, write_draft) -> None:
    paste = SPACED.replace("\nWrapping Up\n", "\n## Wrapping Up\n")
    for chrome in ("Skip to content\n", "Author's photo\n", "Share this post\n", "Kommentare\n", "Like\n"):
        paste = paste.replace(chrome, "")
    path = write_draft(paste.replace("The Harbour Note", "Test Weekly"))
    result = digest("lint", str(path))
    assert result.exit_code == 1
    where = f"{path.relative_to(Path.cwd())}:{line_of(paste, '## Wrapping Up')}:1"
    assert f"{where}: items-missing no items" in result.stdout
    assert "item-not-heading" in result.stdout


def test_items_missing_passes_with_one_item_and_leaves_an_empty_file_to_front_matter() -> None:
    one = VALID_DRAFT.split("## 2.")[0] + "## Wrapping Up\n\nBye for now, and thanks.\n"
    assert places(lint(one), "items-missing") == []
    assert places(lint(FRONT), "items-missing") == []
    assert places(lint(""), "items-missing") == []


# ------------------------------------------------------------------------- item-not-heading

STORY = "\n\nA paragraph about it, long enough to read as one, and ending as sentences end.\n"


@pytest.mark.parametrize(
    "body",
    [
        # A real numbered list in a story: entries with no text of their own.
        "How it works:\n\n1. Borrow a packet of seeds\n2. Plant them in spring\n3. Return a packet\n" + STORY,
        "1. Borrow a packet of seeds\n\n2. Plant them in spring\n" + STORY,
        # An entry wrapped by hand, its second line indented or going on in lower case.
        "1. Borrow a packet of tomato seeds in spring, return a packet from\n   your own harvest.\n"
        "2. Tell us how it went.\n" + STORY,
        "Steps:\n\n1. Borrow a packet of tomato seeds in spring, return one from\nyour own harvest.\n"
        + STORY,
        # Paragraphs that start with a number.
        "2024 was the year the council said it would close the library." + STORY,
        "1.5 million people used the ferry last year, a record." + STORY,
        "3. The council said it would expand, and analysts agreed it was overdue." + STORY,
        # Not text: code, a quote.
        "```\n1. Night Ferries Return\n```\n" + STORY,
        "> 1. Night Ferries Return\n>\n> The ferry is back, with 140 passengers on its first trip.\n" + STORY,
        # A headline already a heading.
        "## 4. Night Ferries Return" + STORY,
    ],
)
def test_item_not_heading_leaves_lists_numbers_and_code_alone(body: str) -> None:
    text = VALID_DRAFT.replace("- a list item\n- and another\n", body)
    assert places(lint(text), "item-not-heading") == []


def test_item_not_heading_finds_an_entry_whose_story_runs_on_below_it() -> None:
    text = VALID_DRAFT.replace(
        "- a list item\n- and another\n",
        "Opening words of the story, at some length, ending as sentences do.\n"
        "4. Night Ferries Return to the Island Route\n"
        "The overnight ferry left on schedule on Sunday, with 140 passengers aboard.\n",
    )
    [finding] = [f for f in lint(text) if f.rule == "item-not-heading"]
    assert finding.line == 22
    fixed, _ = fix_text(text, LintConfig(rules=QUIET))
    assert "do.\n\n## 4. Night Ferries Return to the Island Route\n\nThe overnight" in fixed


def test_a_headline_right_after_a_numbered_list_is_still_a_headline() -> None:
    reasons = (
        "Analysts gave two reasons:\n\n"
        "1. Carriers added forty new ships to the route in the last quarter alone.\n\n"
        "2. Retailers ordered their holiday stock early, so they have little left to import.\n\n"
    )
    text = VALID_DRAFT.replace(
        "## Wrapping Up", reasons + "4. Ferry Fares Frozen Until 2028" + STORY + "\n## Wrapping Up"
    )
    assert places(lint(text), "item-not-heading") == [("item-not-heading", line_of(text, "4. Ferry"))]
    short_list = "How it works:\n\n1. Borrow seeds\n\n2. Plant Them\n\n3. Return a Packet" + STORY
    text = VALID_DRAFT.replace("- a list item\n- and another\n", short_list)
    assert places(lint(text), "item-not-heading") == []


def test_item_not_heading_is_switched_off_in_the_config_and_then_not_fixed() -> None:
    text = VALID_DRAFT.replace("## Wrapping Up", "4. The fourth story" + STORY + "\n## Wrapping Up")
    assert places(lint(text), "item-not-heading") == [("item-not-heading", 24)]
    assert places(lint(text, **{"item-not-heading": "off"}), "item-not-heading") == []
    config = LintConfig(rules={**QUIET, "item-not-heading": "off"})
    assert fix_text(text, config) == (text, [])


# ---------------------------------------------------------------------------- paragraph-run

LONG = [
    "The council met on Tuesday and voted to fund the library for three more years.",
    "Residents who spoke at the meeting asked for longer opening hours on weekends.",
    "The director said she would look at the rota before the new year, and thanked them.",
]


def test_paragraph_run_trips_on_three_lines_and_fix_puts_blank_lines_between() -> None:
    text = VALID_DRAFT.replace("- a list item\n- and another\n", "\n".join(LONG) + "\n")
    [finding] = [f for f in lint(text) if f.rule == "paragraph-run"]
    assert (finding.line, finding.severity, finding.fixable) == (21, "warning", True)
    assert "3 paragraphs" in finding.message and "lines 21–23" in finding.message
    fixed, changes = fix_text(text, LintConfig(rules=QUIET))
    assert [(c.rule, c.line) for c in changes] == [("paragraph-run", 21), ("paragraph-run", 23)]
    assert "\n\n".join(LONG) in fixed and lint(fixed) == []


def test_paragraph_run_trips_on_two_lines_no_hand_wraps_so() -> None:
    short_then_long = [LONG[1], LONG[2]]
    text = VALID_DRAFT.replace("- a list item\n- and another\n", "\n".join(short_then_long) + "\n")
    assert places(lint(text), "paragraph-run") == [("paragraph-run", 21)]
    wide = [LONG[0] + " " + LONG[2], LONG[1]]  # wider than anyone wraps by hand
    text = VALID_DRAFT.replace("- a list item\n- and another\n", "\n".join(wide) + "\n")
    assert places(lint(text), "paragraph-run") == [("paragraph-run", 21)]


def test_a_short_last_paragraph_of_a_paste_is_a_paragraph_of_its_own() -> None:
    story = "\n".join([LONG[0] + " " + LONG[1], "The waiting list passed 300 names within a day."])
    text = VALID_DRAFT.replace("- a list item\n- and another\n", story + "\n")
    assert places(lint(text), "paragraph-run") == [("paragraph-run", 21)]
    fixed, _ = fix_text(text, LintConfig(rules=QUIET))
    assert "weekends.\n\nThe waiting list" in fixed
    # Two short sentences on two lines are the editor's own line break, not a paste.
    text = VALID_DRAFT.replace(
        "A paragraph with", "It rained.\nThe ferry ran all the same.\n\nA paragraph with"
    )
    assert places(lint(text), "paragraph-run") == []


def test_in_a_draft_wrapped_by_hand_a_line_longer_than_its_wrap_is_a_paragraph() -> None:
    intro = textwrap.fill(" ".join([STANDING, *LONG]), 72)
    long_line = LONG[0] + " " + LONG[1]  # 158 characters: nobody wraps there
    story = "\n".join([long_line, LONG[2]])
    text = VALID_DRAFT.replace(INTRO, intro).replace("- a list item\n- and another\n", story + "\n")
    assert places(lint(text), "paragraph-run") == [("paragraph-run", line_of(text, "The council"))]


def test_paragraph_run_passes_paragraphs_wrapped_by_hand_at_any_width() -> None:
    """The sample drafts' paragraphs, wrapped at every width from 40 to 150 characters: a line
    that happens to end a sentence where the next begins one is no run."""
    for draft in sorted((ROOT / "drafts").glob("*.md")):
        text = draft.read_text(encoding="utf-8")
        front, body = text.split("---\n", 2)[1:]
        blocks = re.split(r"\n\s*\n", body)
        for width in range(40, 151):
            wrapped = "\n\n".join(
                b
                if b.lstrip().startswith(("#", "-", "*", ">"))
                else textwrap.fill(" ".join(b.split()), width)
                for b in blocks
            )
            findings = lint(f"---\n{front}---\n{wrapped}\n")
            assert places(findings, *PASTE_RULES, "leftover-boilerplate") == [], (draft.name, width)


def test_paragraph_run_leaves_a_short_line_and_a_list_alone() -> None:
    text = VALID_DRAFT.replace(
        "See you next week.", "Thanks!\nSee you next week, and tell your friends about us."
    )
    assert places(lint(text), "paragraph-run") == []
    bullets = "\n".join(f"- {line}" for line in LONG) + "\n"
    assert places(lint(VALID_DRAFT.replace("- a list item\n- and another\n", bullets)), "paragraph-run") == []


# ---------------------------------------------------------------------- duplicate-paragraph

INTRO = "Hello, and welcome to the seventh issue."
STANDING = "Hello, and welcome to the seventh issue of the newsletter about our harbour town."


def test_a_standing_intro_pasted_twice_is_one_error_at_the_second() -> None:
    text = VALID_DRAFT.replace(INTRO, f"{STANDING}\n\n{STANDING}")
    [finding] = [f for f in lint(text) if f.rule == "duplicate-paragraph"]
    assert (finding.line, finding.severity) == (11, "error")
    assert "repeats the one at line 9" in finding.message


def test_a_story_under_two_headlines_is_found_spacing_aside() -> None:
    story = "The overnight ferry left on schedule on Sunday, with 140 passengers aboard."
    text = VALID_DRAFT.replace("- a list item\n- and another", textwrap.fill(story, 40)).replace(
        "A paragraph with [the council's minutes](https://example.com/minutes).", "  " + story + "  "
    )
    assert places(lint(text), "duplicate-paragraph") == [("duplicate-paragraph", 21)]


def test_a_paragraph_repeated_in_a_glued_run_is_found() -> None:
    glued = "\n".join([LONG[0], STANDING, LONG[1]])
    text = VALID_DRAFT.replace(INTRO, STANDING).replace("- a list item\n- and another", glued)
    assert places(lint(text), "duplicate-paragraph") == [("duplicate-paragraph", 22)]


def test_a_repeated_paragraph_of_several_lines_is_one_finding() -> None:
    story = "\n".join(LONG[:2])  # two lines a hand-wrapped paragraph could have
    text = VALID_DRAFT.replace(INTRO, f"{INTRO}\n\n{story}").replace("- a list item\n- and another", story)
    assert places(lint(text), "duplicate-paragraph") == [("duplicate-paragraph", 24)]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Thanks!", "Thanks!"),
        ("Read more on the council's site.", "Read more on the council's site."),
        (
            "The full minutes are on [the council's site](https://example.com/a), with the votes.",
            "The full minutes are on [the council's site](https://example.com/b), with the votes.",
        ),
    ],
)
def test_short_paragraphs_and_other_links_are_no_repeats(first: str, second: str) -> None:
    text = VALID_DRAFT.replace("A paragraph with", f"{first}\n\nA paragraph with").replace(
        "- a list item\n- and another", second
    )
    assert places(lint(text), "duplicate-paragraph") == []


# ---------------------------------------------------------------------- leftover-boilerplate


@pytest.mark.parametrize(
    "line",
    [
        "top of page",
        "bottom of page",
        "Skip to content",
        "Writer's pictureJane Doe",
        "Writer’s picture Jane Doe Nov 27, 2026",
        "2 min read",
        "Comments",
        "Commentaires",
        "Kommentare",
        "Comentarios",
        "Commenti",
        "3 comments",
        "Share this post",
        "Like",
        "12 views",
        "12 views0 comments",
        "Recent Posts",
        "See All",
        "Recent PostsSee All",
        # The ones a page says louder, in brackets, or on a network of its own.
        "Share!",
        "Back to top!",
        "(12 comments)",
        "Follow us on Flickr",
        "Share on Telegram",
    ],
)
def test_page_chrome_is_leftover_boilerplate(line: str) -> None:
    text = VALID_DRAFT.replace("Another paragraph", f"{line}\n\nAnother paragraph")
    [finding] = [f for f in lint(text) if f.rule == "leftover-boilerplate"]
    assert finding.line == 17 and f"'{line}' looks pasted from a web page (" in finding.message


@pytest.mark.parametrize(
    "text",
    [
        "Readers like the new ferry timetable.",
        "Like many harbour towns, ours has lost its fish market.",
        "The results were\npublished in Nature on Monday.",
        "Published in Nature, the study\nfollowed 4,000 patients for a decade.",
        "Copyright lawyers say the ruling\nwill change how archives are shared.",
        "The comments section was full of praise for the new ferry.",
        "---",
    ],
)
def test_sentences_about_likes_and_comments_are_not_chrome(text: str) -> None:
    draft = VALID_DRAFT.replace("Another paragraph", f"{text}\n\nAnother paragraph")
    assert places(lint(draft), "leftover-boilerplate") == []


# ----------------------------------------------------------------------- front-matter quotes


def test_a_curly_quoted_value_that_breaks_the_yaml_says_so() -> None:
    text = VALID_DRAFT.replace('"Test Weekly #7: three stories"', "“Test Weekly: three stories”")
    [finding] = [f for f in lint(text) if f.rule == "front-matter"]
    assert finding.line == 3 and finding.fixable
    assert finding.message == (
        "'subject' is in curly quotes (“…”), which YAML does not read as quotes:"
        ' write straight quotes ("…") around it'
    )


def test_with_the_yaml_broken_the_last_keys_curly_quotes_are_found_too() -> None:
    """Each line --fix straightens is a finding, the front matter's last key's included."""
    text = VALID_DRAFT.replace('"Test Weekly #7: three stories"', "“Test Weekly: three stories”")
    text = text.replace('"Three short stories for the test suite."', "“Three: short stories.”")
    found = [f for f in lint(text) if f.rule == "front-matter"]
    assert [(f.line, f.fixable) for f in found] == [(3, True), (6, True)]


@pytest.mark.parametrize("value", ["“Test Weekly”", "‘Test Weekly’", "“Test Weekly #7”"])
def test_a_curly_quoted_value_that_parses_is_still_found(value: str) -> None:
    [finding] = [
        f
        for f in lint(VALID_DRAFT.replace("title: Test Weekly", f"title: {value}"))
        if f.rule == "front-matter"
    ]
    assert finding.line == 2 and "'title' is in curly quotes" in finding.message


def test_a_value_that_only_starts_with_a_quoted_word_is_fine() -> None:
    text = VALID_DRAFT.replace('"Test Weekly #7: three stories"', "“HarbourGPT” debuts, and more")
    assert places(lint(text), "front-matter") == []


def test_fix_straightens_curly_quotes_and_escapes_what_is_inside() -> None:
    text = VALID_DRAFT.replace('"Test Weekly #7: three stories"', '“Test: a "quoted" word \\ and more”')
    fixed, changes = fix_text(text, LintConfig(rules=QUIET))
    assert [(c.rule, c.line) for c in changes] == [("front-matter", 3)]
    assert 'subject: "Test: a \\"quoted\\" word \\\\ and more"\n' in fixed
    assert parse_draft(fixed).subject == 'Test: a "quoted" word \\ and more'


def test_a_curly_quote_that_does_not_close_the_value_is_beyond_fix() -> None:
    text = VALID_DRAFT.replace('"Test Weekly #7: three stories"', "“Test: three” stories")
    [finding] = [f for f in lint(text) if f.rule == "front-matter"]
    assert "curly quotes" in finding.message and not finding.fixable
    assert fix_text(text, LintConfig(rules=QUIET)) == (text, [])


# --------------------------------------------------------------------------------- lint --fix


def test_fix_rewrites_only_the_lines_it_fixes_keeping_crlf_and_bom(digest, write_draft) -> None:
    path = write_draft()
    broken = VALID_DRAFT.replace("## 2. The second story", "2. The second story").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + broken.encode())
    result = digest("lint", "--fix", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert path.read_bytes() == b"\xef\xbb\xbf" + VALID_DRAFT.replace("\n", "\r\n").encode()
    assert (
        "drafts/2026-11-20-test.md:15: item-not-heading: made a heading: ## 2. The second story"
        in result.stderr
    )
    assert Path(".digest/before-fix/2026-11-20-test.md").read_bytes() == b"\xef\xbb\xbf" + broken.encode()


def test_fix_prints_each_change_then_what_is_left_and_exits_as_lint(digest, write_draft) -> None:
    path = write_draft(GLUED.replace("The Harbour Note", "Test Weekly"))
    result = digest("lint", "--fix", str(path))
    assert result.exit_code == 1
    changes = [line for line in result.stderr.splitlines() if line.startswith("drafts/")]
    assert [line.split(": ")[1] for line in changes] == [
        "item-not-heading",
        "paragraph-run",
        "item-not-heading",
        "item-not-heading",
        "wrapup-missing",
    ]
    assert "Fixed 5 lines in drafts/2026-11-20-test.md; as it was: .digest/before-fix/" in result.stderr
    left = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("drafts/")}
    assert "item-not-heading" not in left and "duplicate-paragraph" in left
    again = digest("lint", "--fix", str(path))
    assert "Fixed" not in again.stderr and again.stdout == result.stdout


def test_fix_keeps_a_link_a_link_and_the_file_mode(digest, write_draft, workspace: Path) -> None:
    real = workspace / "real.md"
    real.write_text(VALID_DRAFT.replace("## 2. The second", "## 5. The second"), encoding="utf-8")
    os.chmod(real, 0o640)
    link = workspace / "drafts" / "2026-11-20-test.md"
    link.symlink_to(real)
    assert digest("lint", "--fix", str(link)).exit_code == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8") == VALID_DRAFT
    assert real.stat().st_mode & 0o777 == 0o640


def test_fix_refuses_a_draft_changed_while_it_was_being_fixed(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "d.md"
    path.write_text(VALID_DRAFT.replace("## 2. The second", "## 5. The second"), encoding="utf-8")
    real_fix = fixing.fix_text

    def edited_meanwhile(text: str, config: LintConfig, where: object = "<draft>") -> object:
        path.write_text(VALID_DRAFT + "\nA line the editor just typed.\n", encoding="utf-8")
        return real_fix(text, config, where)  # type: ignore[arg-type]

    monkeypatch.setattr(fixing, "fix_text", edited_meanwhile)
    with pytest.raises(InputError, match="changed while it was being fixed; nothing written"):
        fix_file(path, LintConfig(), keep_in=tmp_path / "kept")
    assert path.read_text(encoding="utf-8").endswith("A line the editor just typed.\n")
    assert not (tmp_path / "kept").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["d.md"]  # no temporary file left behind


def test_fix_on_a_clean_draft_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "d.md"
    path.write_text(VALID_DRAFT, encoding="utf-8")
    before = path.stat().st_mtime_ns
    result = fix_file(path, LintConfig(), keep_in=tmp_path / "kept")
    assert result.fixed == () and result.kept is None and result.text == VALID_DRAFT
    assert path.stat().st_mtime_ns == before and not (tmp_path / "kept").exists()


def test_fix_leaves_the_sample_drafts_as_they_are() -> None:
    for draft in sorted((ROOT / "drafts").glob("*.md")):
        text = draft.read_text(encoding="utf-8")
        assert fix_text(text, LintConfig()) == (text, []), draft.name


def test_fix_makes_a_plain_wrapup_line_the_heading() -> None:
    text = VALID_DRAFT.replace("## Wrapping Up", "**Wrapping up:**")
    [finding] = [f for f in lint(text) if f.rule == "wrapup-missing"]
    assert finding.line == 24 and finding.fixable and "'**Wrapping up:**' is text" in finding.message
    fixed, _ = fix_text(text, LintConfig(rules=QUIET))
    assert "\n## Wrapping up\n" in fixed and lint(fixed) == []
    missing = VALID_DRAFT.replace("## Wrapping Up\n\n", "")
    [finding] = [f for f in lint(missing) if f.rule == "wrapup-missing"]
    assert not finding.fixable


# ------------------------------------------------------- lists in stories, hand wraps, chrome words

# A draft with numbered lists inside its stories: a loose list of three in story 1, a list whose
# entries each have a paragraph in story 2, a list of one in story 3.
LISTS = """\
---
title: Pocket Signals
subject: "Pocket Signals #31: Lists"
date: 2026-12-12
issue: 31
preheader: "Lists inside stories"
---

Hello everyone, and welcome back to another week of mobile news from around the world.

## 1. Google's Pixel Sales Double

Google sold twice as many Pixels in the third quarter as a year ago, according to IDC.

The steps Google took, in order:

1. Cut Prices in India

2. Added Carrier Deals in Japan

3. Extended Updates to Seven Years

Analysts expect the growth to continue into next year as the Pixel 11 launches.

## 2. vivo Releases BlueLM

vivo released BlueLM, its own large language model, for the X200 series.

Three things stood out:

1. Launch

The model launches in China first, with other markets to follow in the spring.

2. Size

It comes in two sizes, 7B and 70B parameters, the larger one running in the cloud.

## 3. One Big Reason

The company gave only one reason for the delay, in a short statement on Monday:

1. Regulators

That was all it said, and reporters were not allowed to ask questions afterwards.

## Wrapping Up

See you next week, and thanks for reading the digest as always.
"""


def test_a_numbered_list_inside_a_story_is_no_headline_and_fix_leaves_it() -> None:
    assert places(lint(LISTS), "item-not-heading", "item-numbering") == []
    assert fix_text(LISTS, LintConfig(rules=QUIET)) == (LISTS, [])


def test_the_next_story_written_as_text_after_a_list_is_still_found() -> None:
    text = LISTS.replace("## 3. One Big Reason", "3. One Big Reason")
    assert places(lint(text), "item-not-heading") == [("item-not-heading", line_of(text, "3. One Big"))]
    fixed, changes = fix_text(text, LintConfig(rules=QUIET))
    assert fixed == LISTS and [c.rule for c in changes] == ["item-not-heading"]


def test_fix_does_not_renumber_in_the_run_that_made_headings() -> None:
    """Headings made from text, then a gap in the numbers: the gap is the editor's to read before
    anything is renumbered; the next `--fix` renumbers."""
    text = LISTS.replace("## 2. vivo Releases BlueLM", "2. vivo Releases BlueLM").replace(
        "## 3. One Big Reason", "## 4. One Big Reason"
    )
    [numbering] = [f for f in lint(text) if f.rule == "item-numbering"]
    assert not numbering.fixable and "headings first" in numbering.message
    fixed, changes = fix_text(text, LintConfig(rules=QUIET))
    assert [c.rule for c in changes] == ["item-not-heading"]
    assert "\n## 2. vivo Releases BlueLM\n" in fixed and "\n## 4. One Big Reason\n" in fixed
    [numbering] = [f for f in lint(fixed) if f.rule == "item-numbering"]
    assert numbering.fixable and "3 missing" in numbering.message
    again, changes = fix_text(fixed, LintConfig(rules=QUIET))
    assert [c.rule for c in changes] == ["item-numbering"] and "\n## 3. One Big Reason\n" in again


def test_lint_and_import_agree_on_the_headlines_of_every_paste() -> None:
    """The same check, on the same lines: a paste put in a draft as it is has its bare headlines
    where `digest import` makes its stories."""
    from digestcli.importer.parts import SourceLine, find_parts

    pastes = ROOT / "tests" / "fixtures" / "pastes"
    for path in sorted(pastes.glob("*.txt")):
        paste = path.read_text(encoding="utf-8")
        lines = [SourceLine(n, line) for n, line in enumerate(paste.splitlines(), 1)]
        parts = find_parts(lines, wrapup_heading="Wrapping Up", title_hint=None, markdown=False)
        offset = FRONT.count("\n")
        linted = [f.line - offset for f in lint(FRONT + paste) if f.rule == "item-not-heading"]
        assert linted == [story.line for story in parts.stories], path.name


# Wrapped by hand at about 71 characters, with short sentences that end three lines in a row.
WRAPPED = (
    FRONT
    + """
Hello everyone, and welcome back to another week of mobile news from
around the world. This week was busy, so grab a coffee and settle in.

## 1. Apple Ships iOS 19.2

Apple released iOS 19.2 on Tuesday with a redesigned Control Center and
a fix for the battery drain. Some readers wrote in about it last week.
The update is 2.1 GB on most phones. It installs in about ten minutes.
Older phones get a smaller patch. We tested it on an iPhone 12 and 16.

## Wrapping Up

See you next week, and thanks for reading the digest as always. Bye for now.
"""
)


def test_a_paragraph_wrapped_by_hand_with_short_sentences_is_no_run() -> None:
    assert places(lint(WRAPPED), "paragraph-run") == []
    assert fix_text(WRAPPED, LintConfig(rules=QUIET)) == (WRAPPED, [])
    # The same draft with a pasted paragraph a line, wider than the wrap, is one.
    pasted = WRAPPED.replace(
        "Older phones get a smaller patch. We tested it on an iPhone 12 and 16.\n",
        "Older phones get a smaller patch. We tested it on an iPhone 12 and 16.\n"
        + LONG[0]
        + " "
        + LONG[1]
        + "\n"
        + LONG[2]
        + " "
        + LONG[0]
        + "\n",
    )
    assert places(lint(pasted), "paragraph-run") == [("paragraph-run", line_of(pasted, "The council"))]


@pytest.mark.parametrize(
    "sentence",
    [
        "Privacy policy changes at Meta take effect in January for users in Europe.",
        "Terms of service updated.",
        "Filed under seal, the ruling was made public on Thursday.",
        "Powered by Gemini.",
        "Updated on Friday with the company's response.",
        "More from Apple is expected next week.",
        "Copyright law is changing.",
    ],
)
def test_a_sentence_that_starts_like_chrome_is_no_boilerplate(sentence: str) -> None:
    draft = VALID_DRAFT.replace("Another paragraph", f"{sentence}\n\nAnother paragraph")
    assert places(lint(draft), "leftover-boilerplate") == []


def test_every_curly_quoted_value_is_reported_when_the_yaml_does_not_parse() -> None:
    text = VALID_DRAFT.replace("title: Test Weekly", "title: “Test Weekly”").replace(
        'preheader: "Three short stories for the test suite."', "preheader: ‘Also: a fold’"
    )
    found = [(f.line, f.fixable) for f in lint(text) if f.rule == "front-matter"]
    assert found == [(2, True), (6, True)]
    fixed, changes = fix_text(text, LintConfig(rules=QUIET))
    assert [(c.rule, c.line) for c in changes] == [("front-matter", 2), ("front-matter", 6)]
    assert parse_draft(fixed).front.values["preheader"] == "Also: a fold"


def test_a_second_fix_keeps_the_first_fixs_copy_of_the_paste(digest, write_draft) -> None:
    path = write_draft(GLUED.replace("The Harbour Note", "Test Weekly"))
    first = path.read_bytes()
    digest("lint", "--fix", str(path))
    once = path.read_bytes()
    path.write_bytes(once + b"\n3. Another pasted headline\n\nIts story.\n")  # more pasted, fixed again
    again = path.read_bytes()
    digest("lint", "--fix", str(path))
    kept = sorted(Path(".digest/before-fix").iterdir())
    assert Path(".digest/before-fix/2026-11-20-test.md").read_bytes() == again  # the latest, as before
    assert [p.read_bytes() for p in kept if p.name != "2026-11-20-test.md"] == [first]  # and the paste
