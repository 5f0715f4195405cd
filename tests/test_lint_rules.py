"""Every lint rule: a draft that trips it (at the right line) and the valid draft that does not."""

from __future__ import annotations

import pytest
from conftest import VALID_DRAFT

from digestcli.config import LintConfig, NewsletterConfig
from digestcli.draft import parse_draft
from digestcli.lint import Finding, all_rules, lint_issue

RULES = all_rules()


def lint(text: str, **settings: object) -> list[Finding]:
    config = LintConfig(**settings)  # type: ignore[arg-type]
    return lint_issue(parse_draft(text, "d.md", wrapup_heading=config.wrapup_heading), config)


def of(rule: str, findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def test_the_valid_draft_has_no_findings() -> None:
    assert lint(VALID_DRAFT) == []


def test_every_rule_is_covered_below() -> None:
    covered = {case[0] for case in CASES}
    # Rules about the workspace (other drafts, the ledger) are tested in test_identity.py, rules
    # about the rendered email in test_rendered_lint.py, and network rules in test_linkcheck.py.
    alone = {n for n, s in RULES.items() if not s.workspace and not s.rendered and not s.network}
    assert alone == covered, "a rule without a test case"


# (rule, change to VALID_DRAFT as (old, new), expected line of the first finding)
CASES = [
    ("front-matter", ('subject: "Test Weekly #7: three stories"\n', ""), 1),
    ("front-matter", ("date: 2026-11-20", "date: 2026-13-45"), 4),
    ("front-matter", ("issue: 7", "issue: -3"), 5),
    ("front-matter", ("issue: 7", "issue: seven"), 5),
    ("front-matter", ("issue: 7", "issue: 7\nid: weekly/7"), 6),
    ("front-matter", ("title: Test Weekly", "title: Test: Weekly: Broken"), 2),
    ("front-matter", ("---\ntitle", "title"), 1),
    ("front-matter", ('"Test Weekly #7: three stories"', "“Test Weekly #7: three stories”"), 3),
    ("front-matter", ("title: Test Weekly", "title: “Test Weekly”"), 2),
    ("items-missing", ("## 1. The first story", "## Wrapping Up"), 11),
    ("item-not-heading", ("## 2. The second story", "2. The second story"), 15),
    (
        "paragraph-run",
        (
            "Another paragraph, with a quotation: “we measured [it] twice.”",
            "The council met on Tuesday and voted to fund the library for three more years.\n"
            "Residents who spoke at the meeting asked for longer opening hours on weekends.\n"
            "The library's director said she would look at the rota before the new year.",
        ),
        17,
    ),
    (
        "duplicate-paragraph",
        ("- a list item\n- and another", "Another paragraph, with a quotation: “we measured [it] twice.”"),
        21,
    ),
    ("intro-missing", ("Hello, and welcome to the seventh issue.\n", ""), 10),
    ("item-numbering", ("## 2. The second", "## 3. The second"), 15),
    ("item-numbering", ("## 3. The third", "## 2. The third"), 19),
    ("item-numbering", ("## 1. The first", "## 2. The first"), 11),
    ("item-numbering", ("## 2. The second story", "## The second story"), 15),
    ("item-headline-empty", ("## 2. The second story", "## 2."), 15),
    ("item-body-empty", ("Another paragraph, with a quotation: “we measured [it] twice.”\n", ""), 15),
    ("wrapup-missing", ("## Wrapping Up", "## 4. Wrapping Up"), 26),
    (
        "wrapup-not-last",
        ("See you next week.", "See you.\n\n## 4. A late story\n\nText.\n\nSee you next week."),
        28,
    ),
    (
        "wrapup-empty",
        ("See you next week. Everything is in the [full report](https://example.com/report).\n", ""),
        24,
    ),
    ("placeholder", ("Another paragraph", "TK paragraph"), 17),
    ("placeholder", ("A paragraph with", "Lorem ipsum dolor with"), 13),
    ("placeholder", ("See you next week.", "TODO: sign off."), 26),
    ("link-text", ("[the council's minutes]", "[click here]"), 13),
    ("link-slot", ("(https://example.com/minutes)", "({{reader.site}})"), 13),
    ("link-text", ("Another paragraph,", "Click here to read another paragraph,"), 17),
    ("link-text", ("[full report]", "[Read more]"), 26),
    ("link-url", ("(https://example.com/minutes)", "(minutes.html)"), 13),
    ("link-url", ("(https://example.com/minutes)", "(javascript:alert(1))"), 13),
    ("link-url", ("(https://example.com/minutes)", "()"), 13),
    ("link-url", ("(https://example.com/minutes)", "(ftp://example.com/minutes)"), 13),
    ("duplicate-headline", ("## 3. The third story", "## 3. The First Story!"), 19),
    ("leftover-boilerplate", ("- and another\n", "- and another\n\nTop of Page\n"), 24),
    ("leftover-boilerplate", ("Another paragraph", "Comments\n\nAnother paragraph"), 17),
    ("leftover-boilerplate", ("Another paragraph", "Writer's picture Jane Doe\n\nAnother paragraph"), 17),
    ("leftover-boilerplate", ("Another paragraph", "Share on Facebook\n\nAnother paragraph"), 17),
    ("leftover-boilerplate", ("Another paragraph", "Writer's pictureJane Doe\n\nAnother paragraph"), 17),
    ("leftover-boilerplate", ("Another paragraph", "12 views0 comments\n\nAnother paragraph"), 17),
    ("subject-length", ("#7: three stories", "#7: " + "a very long subject line " * 4), 3),
    ("headline-length", ("The second story", "A headline " * 9), 15),
    ("preheader-missing", ('preheader: "Three short stories for the test suite."\n', ""), 1),
    ("title-mismatch", ("title: Test Weekly", "title: The Test Weekly"), 2),
    ("spelling", ("Another paragraph", "Moroever, another paragraph"), 17),
    ("spelling", ("## 3. The third story", "## 3. The thrid story"), 19),
    ("repeated-word", ("See you next week.", "See you next\nnext week."), 27),
]


@pytest.mark.parametrize(("rule", "change", "line"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_trips_on_its_mistake(rule: str, change: tuple[str, str], line: int) -> None:
    old, new = change
    assert old in VALID_DRAFT, "the test's change no longer applies to the valid draft"
    # As in a workspace whose digest.toml names the newsletter as the draft does ("Test Weekly").
    findings = of(rule, lint(VALID_DRAFT.replace(old, new, 1), newsletter_title="Test Weekly"))
    assert findings, f"{rule} did not trip"
    assert findings[0].line == line
    assert findings[0].severity == RULES[rule].severity or rule == "front-matter"


def test_findings_point_at_the_column_of_the_item_number() -> None:
    finding, repeat = of("item-numbering", lint(VALID_DRAFT.replace("## 2. The second", "## 3. The second")))
    assert (finding.line, finding.column) == (15, 4)
    assert repeat.line == 19 and "appears twice" in repeat.message
    assert "2 missing" in finding.message and "--fix" in finding.message


def test_numbering_reports_a_repeat_and_disorder_once_each() -> None:
    text = VALID_DRAFT.replace("## 2. The second", "## 1. The second").replace(
        "## 3. The third", "## 2. The third"
    )
    messages = [f.message for f in of("item-numbering", lint(text))]
    assert len(messages) == 1 and "appears twice" in messages[0]
    text = VALID_DRAFT.replace("## 2. The second", "## 3. The second").replace(
        "## 3. The third", "## 2. The third"
    )
    messages = [f.message for f in of("item-numbering", lint(text))]
    assert len(messages) == 2 and "out of order" in messages[1]


def test_title_mismatch_ignores_case_and_spaces_and_needs_the_newsletter_title() -> None:
    assert lint(VALID_DRAFT, newsletter_title="Test Weekly") == []
    assert lint(VALID_DRAFT, newsletter_title="  test WEEKLY ") == []
    assert lint(VALID_DRAFT.replace("title: Test Weekly", 'title: " Test weekly"')) == []
    [finding] = lint(VALID_DRAFT, newsletter_title="The Lantern Weekly")
    assert (finding.rule, finding.severity, finding.line) == ("title-mismatch", "warning", 2)
    assert "'Test Weekly'" in finding.message and "'The Lantern Weekly'" in finding.message
    assert "[newsletter] title" in finding.message
    # A LintConfig made without the newsletter's title (no workspace) has nothing to compare with,
    # nor has a digest.toml that never names the newsletter (its title is the example one).
    assert lint(VALID_DRAFT.replace("title: Test Weekly", "title: Another Weekly")) == []
    assert lint(VALID_DRAFT, newsletter_title=NewsletterConfig().title) == []
    # A missing title is front-matter's finding alone.
    text = VALID_DRAFT.replace("title: Test Weekly\n", "")
    assert not of("title-mismatch", lint(text, newsletter_title="Test Weekly"))
    assert not lint(VALID_DRAFT, newsletter_title="Other", rules={"title-mismatch": "off"})


def test_the_sample_workspace_agrees_with_itself() -> None:
    from conftest import ROOT

    from digestcli.config import find_workspace
    from digestcli.draft import load_draft

    config = find_workspace(ROOT).config.lint
    assert config.newsletter_title == "The Lantern Weekly"
    for draft in sorted((ROOT / "drafts").glob("*.md")):
        assert not of("title-mismatch", lint_issue(load_draft(draft), config)), draft.name


def test_square_brackets_that_are_not_links_are_not_findings() -> None:
    text = VALID_DRAFT.replace("Another paragraph", "He said “[its] cost was $4.2M [sic]” and [more]")
    assert lint(text) == []


def test_wrapup_heading_is_case_insensitive_and_configurable() -> None:
    assert lint(VALID_DRAFT.replace("## Wrapping Up", "## wrapping up")) == []
    renamed = VALID_DRAFT.replace("## Wrapping Up", "## Until next time")
    assert of("wrapup-missing", lint(renamed))
    assert lint(renamed, wrapup_heading="Until Next Time") == []


def test_unknown_front_matter_key_is_a_warning_with_a_suggestion() -> None:
    [finding] = lint(VALID_DRAFT.replace("issue: 7", "issue: 7\nsubjet: typo"))
    assert finding.severity == "warning" and "did you mean 'subject'" in finding.message


def test_a_headline_of_85_characters_passes_by_default() -> None:
    headline = ("Council votes to fund the Eastside Library expansion after two years of many hearings")[:85]
    assert len(headline) == 85
    assert lint(VALID_DRAFT.replace("The second story", headline)) == []


def test_limits_and_rule_switches_come_from_the_config() -> None:
    long_subject = VALID_DRAFT.replace("#7: three stories", "#7: " + "x" * 70)
    assert of("subject-length", lint(long_subject))
    assert not of("subject-length", lint(long_subject, subject_max=100))
    assert not lint(long_subject, rules={"subject-length": "off"})
    [finding] = lint(long_subject, rules={"subject-length": "error"})
    assert finding.severity == "error"


@pytest.mark.parametrize(
    "text", ["", "\n\n", "---\n", "---\n---\n", "just some text\n", "---\n- a\n- b\n---\nHi\n"]
)
def test_broken_files_are_findings_not_crashes(text: str) -> None:
    assert of("front-matter", lint(text))


def test_crlf_and_bom_free_text_keeps_line_numbers() -> None:
    crlf = VALID_DRAFT.replace("## 2. The second", "## 3. The second").replace("\n", "\r\n")
    findings = of("item-numbering", lint(crlf))
    assert [f.line for f in findings] == [15, 19]


# Inputs that once broke the parser or misled a rule.


def test_a_headline_starting_with_a_decimal_is_not_a_number() -> None:
    text = VALID_DRAFT.replace("## 3. The third story", "## 1.5 million people flee")
    [finding] = of("item-numbering", lint(text))
    assert "heading '1.5 million people flee' has no number" in finding.message
    issue = parse_draft(text)
    assert issue.items[2].number is None and issue.items[2].headline_text == "1.5 million people flee"


def test_a_heading_inside_a_quote_or_list_belongs_to_its_item() -> None:
    text = VALID_DRAFT.replace("- and another", "- and another\n\n> ## 4. Quoted heading\n>\n> text")
    issue = parse_draft(text)
    assert [item.number for item in issue.items] == [1, 2, 3]
    assert lint(text) == []


def test_yaml_aliases_are_refused_without_expanding_them() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    text = VALID_DRAFT.replace("title: Test Weekly\n", f"{bomb}title: *i\n")
    [finding] = of("front-matter", lint(text))
    assert "alias" in finding.message and finding.line == 3


def test_a_deep_outline_does_not_swallow_the_rest_of_the_draft() -> None:
    outline = "\n".join("  " * depth + "- level" for depth in range(12))
    text = VALID_DRAFT.replace("- a list item\n- and another", outline)
    issue = parse_draft(text)
    assert issue.wrapup is not None and len(issue.items) == 3


def test_per_reader_link_targets_are_not_relative_links() -> None:
    text = VALID_DRAFT.replace("(https://example.com/minutes)", "({{ reader.prefs_url }})")
    assert of("link-url", lint(text)) == []
    text = VALID_DRAFT.replace("(https://example.com/minutes)", "({{reader.prefs_url}})")
    assert of("link-url", lint(text)) == []


def test_vague_link_text_split_over_two_lines_is_found() -> None:
    text = VALID_DRAFT.replace("[full report]", "[read\nmore]")
    [finding] = of("link-text", lint(text))
    assert "'read more'" in finding.message


def test_vague_link_text_points_at_its_bracket() -> None:
    text = VALID_DRAFT.replace("Another paragraph,", "Where to go? [**here**](https://example.com/x),")
    [finding] = of("link-text", lint(text))
    assert (finding.line, finding.column) == (17, 14)


def test_switching_a_rule_on_keeps_its_severities() -> None:
    text = VALID_DRAFT.replace("issue: 7", "issue: 7\nsubjet: typo")
    [finding] = lint(text, rules={"front-matter": "on"})
    assert finding.severity == "warning"


def test_an_item_holding_only_a_comment_is_empty() -> None:
    body = "Another paragraph, with a quotation: “we measured [it] twice.”"
    text = VALID_DRAFT.replace(body, "<!-- later -->")
    [finding] = of("item-body-empty", lint(text))
    assert finding.line == 15


def test_placeholders_are_capitals_only() -> None:
    assert lint(VALID_DRAFT.replace("/minutes)", "/todo-list)").replace("Another", "My todo list")) == []
    assert of("placeholder", lint(VALID_DRAFT.replace("Another", "TODO")))


def test_a_bare_heading_is_named_without_none() -> None:
    findings = lint(VALID_DRAFT.replace("## 2. The second story", "##"))
    assert findings and all("None" not in f.message for f in findings)
