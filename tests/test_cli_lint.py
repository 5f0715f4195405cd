"""`digest lint` as the editor runs it: output format, JSON, exit codes, --fix, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import VALID_DRAFT


def test_clean_drafts_exit_0_with_a_summary(digest, write_draft) -> None:
    write_draft()
    result = digest("lint")
    assert result.exit_code == 0, result.stdout
    assert "All good: 1 draft checked, no findings." in result.stdout


def test_findings_print_path_line_col_rule_message_and_exit_1(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace("[full report]", "[click here]"))
    result = digest("lint")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "drafts/2026-11-20-test.md:26:41: link-text "
        "link text 'click here' says nothing out of context: name what it opens"
    )
    assert lines[-1] == "Found 1 error and 0 warnings in 1 draft."


def test_warnings_alone_pass_unless_strict(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace('preheader: "Three short stories for the test suite."\n', ""))
    assert digest("lint").exit_code == 0
    assert digest("lint", "--strict").exit_code == 1


def test_json_output_has_the_documented_keys(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace("## 2. The second", "## 4. The second"))
    result = digest("lint", "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert findings and all(
        set(f) == {"path", "line", "column", "rule", "severity", "message", "fixable"} for f in findings
    )
    assert findings[0]["rule"] == "item-numbering" and findings[0]["line"] == 15
    assert findings[0]["severity"] == "error"
    assert findings[0]["fixable"] is True


def test_json_output_of_a_clean_draft_is_an_empty_array(digest, write_draft) -> None:
    write_draft()
    assert json.loads(digest("lint", "--format", "json").stdout) == []


def test_fix_renumbers_items_and_changes_nothing_else(digest, write_draft) -> None:
    broken = VALID_DRAFT.replace("## 1. The first", "## 3. The first").replace(
        "## 3. The third", "## 7) The third"
    )
    path = write_draft(broken.replace("\n", "\r\n"))
    result = digest("lint", "--fix", str(path))
    assert result.exit_code == 0, result.stdout
    assert result.stderr.splitlines()[:3] == [
        "drafts/2026-11-20-test.md:11: item-numbering: item 3 renumbered to 1",
        "drafts/2026-11-20-test.md:19: item-numbering: item 7 renumbered to 3",
        "Fixed 2 lines in drafts/2026-11-20-test.md; as it was: .digest/before-fix/2026-11-20-test.md",
    ]
    assert Path(".digest/before-fix/2026-11-20-test.md").read_bytes() == broken.replace("\n", "\r\n").encode()
    expected = broken.replace("## 3. The first", "## 1. The first").replace(
        "## 7) The third", "## 3) The third"
    )
    assert path.read_bytes() == expected.replace("\n", "\r\n").encode()


def test_fix_keeps_a_byte_order_mark(digest, write_draft) -> None:
    path = write_draft()
    path.write_bytes(b"\xef\xbb\xbf" + VALID_DRAFT.replace("## 2. The", "## 5. The").encode())
    assert digest("lint", "--fix", str(path)).exit_code == 0
    assert path.read_bytes() == b"\xef\xbb\xbf" + VALID_DRAFT.encode()


def test_missing_file_exits_2_and_says_which(digest, workspace) -> None:
    result = digest("lint", "drafts/nope.md")
    assert result.exit_code == 2
    assert "error: drafts/nope.md: draft not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_non_utf8_draft_exits_2_with_its_line(digest, write_draft) -> None:
    path = write_draft()
    path.write_bytes(VALID_DRAFT.encode().replace(b"Hello", "H\xe9llo".encode("latin-1")))
    result = digest("lint")
    assert result.exit_code == 2
    assert f"{path}:9: not valid UTF-8" in result.stderr
    assert "save the file as UTF-8" in result.stderr


def test_a_directory_exits_2(digest, workspace) -> None:
    result = digest("lint", "drafts")
    assert result.exit_code == 2 and "is a directory" in result.stderr


def test_one_unreadable_file_does_not_hide_the_others(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace("[full report]", "[here]"))
    result = digest("lint", "drafts/2026-11-20-test.md", "missing.md")
    assert result.exit_code == 2
    assert "link-text" in result.stdout and "missing.md: draft not found" in result.stderr


def test_no_drafts_is_a_usage_error_with_a_hint(digest, workspace) -> None:
    result = digest("lint")
    assert result.exit_code == 2 and "digest new" in result.stderr


def test_rules_are_switched_in_digest_toml(digest, write_draft, workspace: Path) -> None:
    write_draft(VALID_DRAFT.replace("[full report]", "[here]"))
    (workspace / "digest.toml").write_text('[lint.rules]\nlink-text = "warning"\n', encoding="utf-8")
    assert digest("lint").exit_code == 0
    (workspace / "digest.toml").write_text("[lint.rules]\nlink-text = false\n", encoding="utf-8")
    assert "All good" in digest("lint").stdout


def test_an_unknown_rule_in_digest_toml_is_named(digest, write_draft, workspace: Path) -> None:
    write_draft()
    (workspace / "digest.toml").write_text("[lint.rules]\nlink-txt = false\n", encoding="utf-8")
    result = digest("lint")
    assert result.exit_code == 2 and "unknown lint rule 'link-txt'" in result.stderr
    assert "did you mean 'link-text'" in result.stderr


def test_a_broken_digest_toml_is_one_line_with_the_file(digest, workspace: Path) -> None:
    (workspace / "digest.toml").write_text("[delivery\n", encoding="utf-8")
    result = digest("lint")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {workspace / 'digest.toml'}: not valid TOML")


def test_workspace_is_found_from_a_subfolder(digest, write_draft, workspace: Path, monkeypatch) -> None:
    write_draft()
    (workspace / "drafts" / "sub").mkdir()
    monkeypatch.chdir(workspace / "drafts" / "sub")
    assert "1 draft checked" in digest("lint").stdout


def test_the_sample_drafts_are_clean(digest, sample_workspace) -> None:
    result = digest("lint", "--strict")
    assert result.exit_code == 0, result.stdout
    assert len(list(Path("drafts").glob("*.md"))) >= 2


def test_fix_handles_old_mac_line_endings(digest, write_draft) -> None:
    path = write_draft()
    path.write_bytes(VALID_DRAFT.replace("## 2. The", "## 9. The").replace("\n", "\r").encode())
    result = digest("lint", "--fix", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert path.read_bytes() == VALID_DRAFT.replace("\n", "\r").encode()


def test_fix_leaves_a_decimal_headline_alone(digest, write_draft) -> None:
    path = write_draft(VALID_DRAFT.replace("## 3. The third story", "## 1.5 million people flee"))
    before = path.read_bytes()
    digest("lint", "--fix", str(path))
    assert path.read_bytes() == before


def test_workspace_option_applies_to_paths_too(digest, write_draft, workspace: Path, monkeypatch) -> None:
    write_draft()
    monkeypatch.chdir(workspace.parent)
    result = digest("-C", workspace.name, "lint", "drafts/2026-11-20-test.md")
    assert result.exit_code == 0, result.stderr
    missing = digest("-C", "no-such-folder", "lint")
    assert missing.exit_code == 2 and "no-such-folder" in missing.stderr


def test_help_shows_what_the_defaults_are(digest) -> None:
    assert "every draft in drafts/" in digest("lint", "--help").stdout
    assert "from digest.toml" in digest("new", "--help").stdout


def test_a_closed_pipe_is_not_a_traceback(write_draft) -> None:
    import subprocess
    import sys

    many = " ".join(f"[here](https://example.com/{n})" for n in range(300))  # > a pipe's buffer
    path = write_draft(VALID_DRAFT.replace("See you next week.", many))
    for n in range(10):
        (path.parent / f"copy{n}.md").write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run(
        f"'{sys.executable}' -m digestcli lint | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
