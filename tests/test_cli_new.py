"""`digest new`: the scaffold, its numbering, and that it never overwrites."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from digestcli.config import LintConfig
from digestcli.draft import load_draft
from digestcli.lint import lint_issue


def test_new_writes_a_draft_that_fails_lint_until_filled_in(digest, workspace: Path) -> None:
    result = digest("new", "--items", "3", "--date", "2026-11-27")
    assert result.exit_code == 0, result.stderr
    path = workspace / "drafts" / "2026-11-27-test-weekly.md"
    assert f"Created drafts/{path.name} (issue 1, 3 items)" in result.stdout
    issue = load_draft(path)
    assert issue.title == "Test Weekly" and issue.date == dt.date(2026, 11, 27) and issue.number == 1
    assert [item.number for item in issue.items] == [1, 2, 3]
    assert issue.wrapup is not None

    rules = {f.rule for f in lint_issue(load_draft(path), LintConfig())}
    assert rules == {"placeholder"}, "the scaffold is structurally valid; only its placeholders fail"
    assert digest("lint").exit_code == 1


def test_filling_in_the_placeholders_passes_lint(digest, workspace: Path) -> None:
    digest("new", "--items", "2", "--date", "2026-11-27")
    path = workspace / "drafts" / "2026-11-27-test-weekly.md"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"TODO: ?", "", text).replace("https://example.com/", "https://example.com/story")
    path.write_text(text, encoding="utf-8")
    result = digest("lint", str(path))
    assert result.exit_code == 0, result.stdout


def test_issue_number_follows_the_highest_in_drafts(digest, workspace: Path) -> None:
    (workspace / "drafts" / "old.md").write_text("---\ntitle: x\nissue: 41\n---\n", encoding="utf-8")
    (workspace / "drafts" / "junk.md").write_bytes(b"\xff\xfe not utf-8")
    result = digest("new", "--date", "2026-11-27", "--slug", "weekly")
    assert result.exit_code == 0, result.stderr
    assert load_draft(workspace / "drafts" / "2026-11-27-weekly.md").number == 42


def test_new_never_overwrites(digest, workspace: Path) -> None:
    assert digest("new", "--date", "2026-11-27").exit_code == 0
    path = workspace / "drafts" / "2026-11-27-test-weekly.md"
    path.write_text("my work", encoding="utf-8")
    result = digest("new", "--date", "2026-11-27")
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--slug" in result.stderr
    assert path.read_text(encoding="utf-8") == "my work"


def test_title_option_and_default_date(digest, workspace: Path) -> None:
    result = digest("new", "--title", "Café Wöchentlich: Ausgabe")
    assert result.exit_code == 0, result.stderr
    path = workspace / "drafts" / f"{dt.date.today().isoformat()}-cafe-wochentlich-ausgabe.md"
    assert load_draft(path).title == "Café Wöchentlich: Ausgabe"


def test_bad_date_is_a_usage_error(digest, workspace: Path) -> None:
    result = digest("new", "--date", "27/11/2026")
    assert result.exit_code == 2 and "not a date like" in result.stderr


def test_a_workspace_template_overrides_the_scaffold(digest, workspace: Path) -> None:
    (workspace / "templates").mkdir()
    (workspace / "templates" / "draft.md.j2").write_text("---\ntitle: {{ title | yaml }}\n---\nMine\n")
    assert digest("new", "--date", "2026-11-27").exit_code == 0
    assert (workspace / "drafts" / "2026-11-27-test-weekly.md").read_text().endswith("Mine\n")


def test_a_slug_with_a_slash_is_made_safe(digest, workspace: Path) -> None:
    result = digest("new", "--date", "2026-11-27", "--slug", "a/b")
    assert result.exit_code == 0, result.stderr
    assert (workspace / "drafts" / "2026-11-27-a-b.md").is_file()


def test_drafts_being_a_file_is_one_clear_line(digest, workspace: Path) -> None:
    (workspace / "drafts").rmdir()
    (workspace / "drafts").write_text("oops", encoding="utf-8")
    result = digest("new")
    assert result.exit_code == 2 and "drafts/ must be a folder" in result.stderr


def test_the_scaffold_is_the_template_filled_in_line_for_line(digest, workspace: Path) -> None:
    # The template's block tags keep their lines: a blank line between the greeting and each item.
    assert digest("new", "--items", "2", "--date", "2026-11-27", "--title", 'Café "Weekly"').exit_code == 0
    text = (workspace / "drafts" / "2026-11-27-cafe-weekly.md").read_text(encoding="utf-8")
    story = (
        "TODO: one to three paragraphs for story {n}, with [a descriptive link](https://example.com/TODO).\n"
    )
    assert text == (
        "---\n"
        "id: cafe-weekly-1\n"
        'title: "Café \\"Weekly\\""\n'
        'subject: "TODO: the subject line, under 78 characters"\n'
        "date: 2026-11-27\n"
        "issue: 1\n"
        'preheader: "TODO: one sentence that inboxes show beside the subject"\n'
        "---\n"
        "\n"
        "TODO: the greeting. A paragraph or two that says what this issue holds.\n"
        "\n"
        "## 1. TODO: headline 1\n"
        "\n" + story.format(n=1) + "\n"
        "## 2. TODO: headline 2\n"
        "\n" + story.format(n=2) + "\n"
        "## Wrapping Up\n"
        "\n"
        "TODO: the closing words, and a link to the [full report](https://example.com/TODO).\n"
    )
