"""The one rule registry: every rule described, `digest lint --rules`, the README's table made from it,
and `fixable` meaning what `--fix` does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import VALID_DRAFT

from digestcli.config import LintConfig
from digestcli.draft import locate, parse_draft
from digestcli.errors import ConfigError
from digestcli.lint import Finding, all_rules, check_rule_settings, fixer_of, lint_issue
from digestcli.lint.catalog import BEGIN, END, REGENERATE, markdown_table, table_in, with_table
from digestcli.lint.fix import renumber

ROOT = Path(__file__).resolve().parent.parent
RULES = all_rules()


def lint(text: str) -> list[Finding]:
    return lint_issue(parse_draft(text, "d.md"), LintConfig())


def test_the_readme_rule_table_is_the_registrys() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN in readme and END in readme, f"the README's rule table needs its markers: {BEGIN} {END}"
    assert table_in(readme) == markdown_table(), (
        f"the README's rule table differs from the rule registry: regenerate it with `{REGENERATE}`"
    )
    assert with_table(readme) == readme


def test_with_table_replaces_only_what_is_between_the_markers() -> None:
    stale = f"# Title\n\n{BEGIN}\n| old | table |\n{END}\n\nAfter.\n"
    fresh = with_table(stale)
    assert fresh == f"# Title\n\n{BEGIN}\n{markdown_table()}{END}\n\nAfter.\n"
    assert with_table(fresh) == fresh
    with pytest.raises(ValueError, match="markers"):
        with_table("# no markers here\n")


def test_every_rule_has_a_name_a_severity_and_a_one_line_summary() -> None:
    assert len(RULES) >= 20
    for name, spec in RULES.items():
        assert spec.name == name and re.fullmatch(r"[a-z]+(-[a-z]+)*", name)
        assert spec.severity in ("error", "warning")
        assert spec.summary.strip() and "\n" not in spec.summary
        assert not (spec.rendered and spec.workspace)
    assert {n for n, s in RULES.items() if s.workspace} == {"issue-reused"}
    assert {n for n, s in RULES.items() if s.rendered} == {
        "html-size",
        "image-alt",
        "template-syntax",
        "text-missing-link",
    }


def test_the_table_has_a_row_per_rule_in_registry_order() -> None:
    rows = markdown_table().splitlines()
    assert rows[0] == "| rule | severity | fixable | what it finds |"
    assert [row.split(" | ")[0] for row in rows[2:]] == [f"| `{name}`" for name in RULES]
    assert "| `item-numbering` | error | yes | items not numbered 1, 2, 3 …" in markdown_table()
    assert "| `html-size` | error | no | (rendered) " in markdown_table()
    assert "| `issue-reused` | error | no | (workspace) " in markdown_table()


FIXABLE = ["front-matter", "item-numbering", "wrapup-missing", "item-not-heading", "paragraph-run"]


def test_fixable_is_what_fix_repairs() -> None:
    assert [name for name, spec in RULES.items() if spec.fixable] == FIXABLE
    assert all(fixer_of(name) is not None for name in FIXABLE)
    assert not any(fixer_of(name) for name in RULES if name not in FIXABLE)
    broken = (
        VALID_DRAFT.replace("## 1. The first", "## 4. The first")
        .replace("## 2. The second", "## 4. The second")
        .replace("## 3. The third", "## 2. The third")
    )
    findings = lint(broken)
    assert findings and all(f.fixable and f.rule == "item-numbering" for f in findings)
    fixed, changed = renumber(parse_draft(broken, "d.md"), broken)
    assert changed == 3 and lint(fixed) == []


def test_a_heading_with_no_number_is_beyond_fix() -> None:
    text = VALID_DRAFT.replace("## 3. The third story", "## The third story")
    [finding] = lint(text)
    assert finding.rule == "item-numbering" and not finding.fixable
    assert renumber(parse_draft(text, "d.md"), text) == (text, 0)


def test_findings_of_other_rules_are_not_fixable() -> None:
    findings = lint(VALID_DRAFT.replace("[full report]", "[click here]").replace("issue: 7", "issue: x"))
    assert {f.rule for f in findings} == {"link-text", "front-matter"}
    assert not any(f.fixable for f in findings)
    assert all(f.as_dict()["fixable"] is False for f in findings)


def test_rule_settings_know_the_rendered_rules_too() -> None:
    check_rule_settings(LintConfig(rules={"html-size": "off", "text-missing-link": "error"}))
    with pytest.raises(ConfigError, match="did you mean 'image-alt'"):
        check_rule_settings(LintConfig(rules={"image-alt-text": "off"}))


def test_locate_finds_the_first_needle_in_a_range_of_lines() -> None:
    lines = ("one", "two [x](a)", "three [x](b)", "four")
    assert locate(lines, "[x]") == (2, 5)
    assert locate(lines, "[x]", first=3) == (3, 7)
    assert locate(lines, "four", first=1, last=3) is None
    assert locate(lines, "", "nope", "hre") == (3, 2)  # in order; an empty needle skipped
    assert locate(lines, "four", last=99) == (4, 1)
    assert locate((), "x") is None


# `digest lint --rules`


def test_rules_lists_every_rule_one_line_each(digest) -> None:
    result = digest("lint", "--rules")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(RULES)
    numbering = next(line for line in lines if line.startswith("item-numbering "))
    assert numbering.split()[1:3] == ["error", "fixable"] and RULES["item-numbering"].summary in numbering
    preheader = next(line for line in lines if line.startswith("preheader-missing "))
    assert preheader.split()[1:3] == ["warning", "-"]
    assert "(rendered)" in next(line for line in lines if line.startswith("image-alt "))


def test_rules_as_json(digest) -> None:
    result = digest("lint", "--rules", "--format", "json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [r["name"] for r in listed] == list(RULES)
    assert all(set(r) == {"name", "severity", "fixable", "rendered", "workspace", "summary"} for r in listed)
    assert [r["name"] for r in listed if r["fixable"]] == FIXABLE


def test_rules_needs_no_workspace_and_checks_nothing(digest, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digest.toml").write_text("[lint.rules]\nno-such-rule = false\n", encoding="utf-8")
    assert digest("lint", "--rules").exit_code == 0
    result = digest("lint", "--rules", "drafts/x.md")
    assert result.exit_code == 2 and "--rules lists the rules and checks nothing" in result.stderr


def test_rules_is_in_the_help_with_an_example(digest) -> None:
    text = digest("lint", "--help").stdout
    assert "--rules" in text and "digest lint --rules" in text


def test_the_summary_counts_what_fix_can_repair(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace("## 2. The second", "## 3. The second"))
    result = digest("lint")
    assert result.stdout.splitlines()[-1] == (
        "Found 2 errors and 0 warnings in 1 draft. 2 findings can be fixed with `digest lint --fix`."
    )
    write_draft(VALID_DRAFT.replace("## 3. The third story", "## The third story"))
    assert "--fix" not in digest("lint").stdout.splitlines()[-1]
