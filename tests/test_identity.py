"""An issue's identity and its history: renamed, moved and copied drafts, a reused number, a lost or
damaged ledger, a draft changed mid-send, and a ledger from before issue ids."""

from __future__ import annotations

import mailbox
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import VALID_DRAFT

from digestcli.config import LintConfig
from digestcli.draft import issue_id_of, load_draft, parse_draft
from digestcli.lint import lint_issue
from digestcli.state.history import Identities, read_identities
from digestcli.state.journal import Journal, journal_name
from digestcli.state.ledger import DELIVERED, LEDGER_DB, Ledger, SentIssue

DRAFT = "2026-11-20-test.md"


@pytest.fixture
def outbox_workspace(workspace: Path) -> Path:
    """The conftest workspace with a list of six readers; sends go to the outbox."""
    rows = "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(6))
    (workspace / "subscribers.csv").write_text(f"email,name\n{rows}", encoding="utf-8")
    return workspace


def delivered(workspace: Path) -> int:
    outbox = workspace / "outbox"
    return len(mailbox.Maildir(outbox, create=False)) if outbox.exists() else 0


# -- the id ----------------------------------------------------------------------------------------------


def test_the_id_comes_from_the_front_matter_else_title_and_number_else_date() -> None:
    assert issue_id_of({"id": "lantern-42", "title": "X", "issue": 1}, "file") == "lantern-42"
    assert issue_id_of({"title": "The Lantern Weekly", "issue": 42}, "file") == "the-lantern-weekly-42"
    assert issue_id_of({"title": "Café Notes", "date": "2026-11-20"}, "file") == "cafe-notes-2026-11-20"
    assert issue_id_of({}, "2026-11-20-weekly") == "2026-11-20-weekly"


def test_a_draft_keeps_its_id_wherever_it_is(workspace: Path) -> None:
    first = parse_draft(VALID_DRAFT, workspace / "drafts" / "a.md")
    moved = parse_draft(VALID_DRAFT, workspace / "elsewhere" / "b.md")
    assert first.issue_id == moved.issue_id == "test-weekly-7"


def lint_with(text: str, path: Path, identities: Identities) -> list[str]:
    issue = parse_draft(text, path)
    return [
        f"{f.line}: {f.message}"
        for f in lint_issue(issue, LintConfig(), identities)
        if f.rule == "issue-reused"
    ]


def test_lint_finds_two_drafts_with_one_id(workspace: Path) -> None:
    a = workspace / "drafts" / "a.md"
    b = workspace / "drafts" / "b.md"
    text = VALID_DRAFT.replace("issue: 7\n", "issue: 7\nid: weekly-7\n")
    a.write_text(text, encoding="utf-8")
    b.write_text(text, encoding="utf-8")
    identities = read_identities(workspace / ".digest", {a: "weekly-7", b: "weekly-7"})
    found = lint_with(text, a, identities)
    assert (
        len(found) == 1 and found[0].startswith("6: ") and "b.md has the same issue id 'weekly-7'" in found[0]
    )
    assert lint_with(text, a, read_identities(workspace / ".digest", {a: "weekly-7"})) == []


def test_lint_finds_an_id_or_number_already_sent_as_another_issue(workspace: Path) -> None:
    sent = {
        "weekly-6": SentIssue("weekly-6", 6, "2026-11-13", "Last week", 0.0),
        "weekly-7": SentIssue("weekly-7", 7, "2026-11-20", "This week", 0.0),
    }
    path = workspace / "drafts" / DRAFT
    # Last week's draft copied as this week's start, with its id kept.
    copied = VALID_DRAFT.replace("issue: 7\n", "issue: 8\nid: weekly-7\n").replace("2026-11-20", "2026-11-27")
    found = lint_with(copied, path, Identities({}, sent))
    assert any("'weekly-7' was already sent as another issue (issue 7, not 8" in f for f in found)
    # A new id with a number already sent under another one.
    renumbered = VALID_DRAFT.replace("issue: 7\n", "issue: 6\nid: weekly-new\n")
    found = lint_with(renumbered, path, Identities({}, sent))
    assert any(
        "issue number 6 was already sent as 'weekly-6'" in f and "set `issue:` to 8" in f for f in found
    )
    # The same issue again (a resumed send) is no conflict.
    same = VALID_DRAFT.replace("issue: 7\n", "issue: 7\nid: weekly-7\n")
    assert lint_with(same, path, Identities({}, sent)) == []


def test_digest_lint_reports_an_id_reused_by_another_draft(digest, workspace: Path) -> None:
    text = VALID_DRAFT.replace("issue: 7\n", "issue: 7\nid: weekly-7\n")
    (workspace / "drafts" / "a.md").write_text(text, encoding="utf-8")
    (workspace / "drafts" / "b.md").write_text(text.replace("issue: 7", "issue: 8"), encoding="utf-8")
    result = digest("lint")
    assert result.exit_code == 1
    assert "drafts/a.md:6:1: issue-reused drafts/b.md has the same issue id 'weekly-7'" in result.stdout


# -- sending: renamed, moved, copied, reused ---------------------------------------------------------------


def test_a_renamed_or_moved_draft_is_not_sent_again(digest, write_draft, outbox_workspace: Path) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes").exit_code == 0
    assert delivered(outbox_workspace) == 6
    renamed = draft.rename(draft.with_name("renamed.md"))
    again = digest("send", str(renamed), "--yes")
    assert again.exit_code == 0 and "0 messages now; not to 6 already have it" in again.stdout
    (outbox_workspace / "archive").mkdir()
    moved = renamed.rename(outbox_workspace / "archive" / "issue-7.md")
    assert "0 messages now" in digest("send", str(moved), "--yes").stdout
    assert delivered(outbox_workspace) == 6
    assert "6 delivered" in digest("status", str(moved)).stdout


def test_a_new_issue_under_an_old_file_name_is_sent_to_everyone(
    digest, write_draft, outbox_workspace: Path
) -> None:
    assert digest("send", str(write_draft()), "--yes").exit_code == 0
    # Next week's issue saved, in another folder, under the same file name.
    other = outbox_workspace / "next"
    other.mkdir()
    shutil.copytree(outbox_workspace / "drafts", other / "drafts")
    shutil.copy(outbox_workspace / "digest.toml", other)
    shutil.copy(outbox_workspace / "subscribers.csv", other)
    next_week = VALID_DRAFT.replace("issue: 7", "issue: 8").replace("2026-11-20", "2026-11-27")
    (other / "drafts" / DRAFT).write_text(next_week, encoding="utf-8")
    shutil.copytree(outbox_workspace / ".digest", other / ".digest")
    result = digest("-C", str(other), "send", f"drafts/{DRAFT}", "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Sends      6 messages now\n" in result.stdout
    assert len(mailbox.Maildir(other / "outbox", create=False)) == 6


def test_a_copied_draft_with_its_id_kept_is_refused(digest, write_draft, outbox_workspace: Path) -> None:
    with_id = VALID_DRAFT.replace("issue: 7\n", "issue: 7\nid: test-weekly-7\n")
    assert digest("send", str(write_draft(with_id)), "--yes").exit_code == 0
    (outbox_workspace / "drafts" / DRAFT).unlink()
    copy = with_id.replace("issue: 7", "issue: 8").replace("2026-11-20", "2026-11-27")
    result = digest("send", str(write_draft(copy, "2026-11-27-test.md")), "--yes")
    assert result.exit_code == 1
    assert "issue-reused the id 'test-weekly-7' was already sent as another issue" in result.stdout
    assert "nothing was sent" in result.stderr
    assert delivered(outbox_workspace) == 6


def test_an_issue_number_already_sent_under_another_id_is_refused(
    digest, write_draft, outbox_workspace: Path
) -> None:
    assert digest("send", str(write_draft()), "--yes").exit_code == 0
    (outbox_workspace / "drafts" / DRAFT).unlink()
    again = VALID_DRAFT.replace("title: Test Weekly", "title: Test Weekly Extra")
    result = digest("send", str(write_draft(again, "extra.md")), "--yes")
    assert result.exit_code == 1
    assert "issue number 7 was already sent as 'test-weekly-7'" in result.stdout
    assert delivered(outbox_workspace) == 6


# -- a lost or damaged ledger ---------------------------------------------------------------------------


def test_a_lost_ledger_is_noticed_and_recovered(digest, write_draft, outbox_workspace: Path) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "4").exit_code == 0
    for path in (outbox_workspace / ".digest").glob(f"{LEDGER_DB}*"):
        path.unlink()
    refused = digest("send", str(draft), "--yes")
    assert refused.exit_code == 1
    assert (
        "the ledger has no record of 4 readers that the journal says have issue 'test-weekly-7'"
        in refused.stderr
    )
    assert "digest recover" in refused.stderr and "--send-duplicates" in refused.stderr
    assert delivered(outbox_workspace) == 4

    recovered = digest("recover")
    assert (
        recovered.exit_code == 0
        and "test-weekly-7: 4 readers brought back from the journal" in recovered.stdout
    )
    assert "already knows everything" in digest("recover").stdout  # a second run adds nothing
    rest = digest("send", str(draft), "--yes")
    assert rest.exit_code == 0 and "2 messages now; not to 4 already have it" in rest.stdout
    assert delivered(outbox_workspace) == 6


def test_send_duplicates_mails_the_forgotten_readers_again(
    digest, write_draft, outbox_workspace: Path
) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes").exit_code == 0
    (outbox_workspace / ".digest" / LEDGER_DB).unlink()
    result = digest("send", str(draft), "--yes", "--send-duplicates")
    assert result.exit_code == 0 and "6 messages now" in result.stdout
    assert delivered(outbox_workspace) == 12


def test_a_damaged_ledger_is_moved_aside_and_rebuilt(digest, write_draft, outbox_workspace: Path) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "3").exit_code == 0
    state = outbox_workspace / ".digest"
    for path in state.glob(f"{LEDGER_DB}-*"):
        path.unlink()
    (state / LEDGER_DB).write_bytes(b"this is not a database " * 200)
    refused = digest("send", str(draft), "--yes")
    assert refused.exit_code == 2 and "damaged" in refused.stderr and "digest recover" in refused.stderr

    recovered = digest("recover")
    assert recovered.exit_code == 0 and "Moved the damaged ledger aside" in recovered.stdout
    aside = list(state.glob(f"{LEDGER_DB}.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    rest = digest("send", str(draft), "--yes")
    assert rest.exit_code == 0 and "3 messages now; not to 3 already have it" in rest.stdout
    assert delivered(outbox_workspace) == 6


# -- a draft changed mid-send --------------------------------------------------------------------------


def test_a_changed_draft_on_resume_is_asked_about(digest, write_draft, outbox_workspace: Path) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "2").exit_code == 0
    write_draft(VALID_DRAFT.replace("three stories", "three stories, corrected"))

    # --yes alone does not answer this question; with no answer, nothing is sent.
    refused = digest("send", str(draft), "--yes")
    assert refused.exit_code == 1
    assert "Changed    the subject, the HTML part, since 2 readers got this issue" in refused.stdout
    assert "(it was: Test Weekly #7: three stories)" in refused.stdout
    assert delivered(outbox_workspace) == 2

    answered = digest("send", str(draft), "--yes", "--limit", "1", input="y\n")
    assert answered.exit_code == 0 and delivered(outbox_workspace) == 3

    # The version now sent is the new one: resuming it again asks nothing; --allow-changed for scripts.
    assert "Changed" not in digest("send", str(draft), "--yes", "--limit", "1").stdout
    write_draft(VALID_DRAFT.replace("Hello, and welcome", "Hi, and welcome"))
    scripted = digest("send", str(draft), "--yes", "--allow-changed")
    assert scripted.exit_code == 0 and "Changed" not in scripted.stdout
    assert delivered(outbox_workspace) == 6


def test_the_library_refuses_a_changed_draft_without_allow_changed(
    outbox_workspace: Path, write_draft
) -> None:
    from digestcli.config import find_workspace
    from digestcli.delivery import DraftChanged, send_issue
    from digestcli.render import render_issue

    ws = find_workspace(outbox_workspace)
    first = render_issue(load_draft(write_draft()), ws)
    send_issue(first, ws, limit=3)
    changed = render_issue(load_draft(write_draft(VALID_DRAFT.replace("A paragraph", "One paragraph"))), ws)
    with pytest.raises(DraftChanged) as caught:
        send_issue(changed, ws)
    assert caught.value.parts == ("the HTML part", "the text part")
    assert send_issue(changed, ws, allow_changed=True).delivered == 3


# -- a ledger from before issue ids ---------------------------------------------------------------------


def test_a_version_1_ledger_is_adopted_by_the_next_send(digest, write_draft, outbox_workspace: Path) -> None:
    draft = write_draft()
    state = outbox_workspace / ".digest"
    state.mkdir()
    db = sqlite3.connect(state / LEDGER_DB)
    db.execute(
        "CREATE TABLE delivery (issue_id TEXT NOT NULL, address TEXT NOT NULL, state TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, reply TEXT NOT NULL DEFAULT '', created REAL NOT NULL,"
        " updated REAL NOT NULL, PRIMARY KEY (issue_id, address)) WITHOUT ROWID"
    )
    now = time.time()
    db.executemany(
        "INSERT INTO delivery VALUES (?, ?, ?, 1, '250 ok', ?, ?)",
        [(draft.stem, f"reader{n}@example.org", DELIVERED, now, now) for n in range(4)],
    )
    db.commit()
    db.close()

    assert "4 delivered" in digest("status", str(draft)).stdout
    result = digest("send", str(draft), "--yes")
    assert result.exit_code == 0 and "2 messages now; not to 4 already have it" in result.stdout
    with Ledger(state) as ledger:
        assert set(ledger.states("test-weekly-7").values()) == {DELIVERED}
        assert ledger.states(draft.stem) == {}
    # The adopted readers are in the journal too: losing the ledger now is noticed for them as well.
    assert len(Journal(state).replay("test-weekly-7").states) == 6


# -- digest new --like ----------------------------------------------------------------------------------


def test_new_like_starts_from_an_earlier_draft_with_a_new_identity(
    digest, write_draft, outbox_workspace: Path
) -> None:
    earlier = write_draft(VALID_DRAFT.replace("issue: 7\n", "issue: 7\nid: test-weekly-7\n"))
    assert digest("send", str(earlier), "--yes").exit_code == 0
    result = digest("new", "--like", str(earlier), "--date", "2026-11-27")
    assert result.exit_code == 0, result.stderr
    made = outbox_workspace / "drafts" / "2026-11-27-test-weekly.md"
    issue = load_draft(made)
    assert (issue.issue_id, issue.number, str(issue.date)) == ("test-weekly-8", 8, "2026-11-27")
    assert issue.subject == "TODO: Test Weekly #7: three stories"
    assert [item.headline for item in issue.items] == [item.headline for item in load_draft(earlier).items]
    lint = digest("lint", str(made))
    assert "issue-reused" not in lint.stdout and "placeholder" in lint.stdout


def test_new_writes_an_id_that_no_draft_or_issue_has(digest, workspace: Path) -> None:
    assert digest("new", "--date", "2026-11-27").exit_code == 0
    made = load_draft(workspace / "drafts" / "2026-11-27-test-weekly.md")
    assert made.front.values["id"] == "test-weekly-1"


# -- the journal ----------------------------------------------------------------------------------------


def test_the_journal_replays_the_last_state_and_skips_a_torn_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.note_run("weekly-7", {"number": 7, "parts": {"subject": "abc"}})
    journal.note("weekly-7", "sending", "a@example.org")
    journal.note("weekly-7", "delivered", "a@example.org", "250 2.0.0\tqueued\nas 12")
    journal.note("weekly-7", "sending", "b@example.org")
    journal.close()
    with journal.path("weekly-7").open("a", encoding="utf-8") as handle:
        handle.write("reader\t1.0\tdelivered\tb@exam")  # a kill in the middle of a write
    replay = Journal(tmp_path).replay("weekly-7")
    assert replay.states == {"a@example.org": "delivered", "b@example.org": "sending"}
    assert replay.runs == [{"issue_id": "weekly-7", "number": 7, "parts": {"subject": "abc"}}]
    assert Journal(tmp_path).replay("other").states == {}
    # The next run ends the torn line before it writes: its own lines are read, the torn one not.
    later = Journal(tmp_path)
    later.note("weekly-7", "delivered", "c@example.org")
    later.close()
    assert Journal(tmp_path).replay("weekly-7").states == {
        "a@example.org": "delivered",
        "b@example.org": "sending",
        "c@example.org": "delivered",
    }


def test_journal_names_are_safe_file_names() -> None:
    assert journal_name("weekly-7") == "weekly-7.log"
    odd = journal_name("../2026/11 weekly")
    assert "/" not in odd and " " not in odd and not odd.startswith(".")
    assert odd != journal_name("__2026_11_weekly")
    assert journal_name("Weekly-7") != journal_name("weekly-7")  # one file on a case-blind disk


# -- what a review found ------------------------------------------------------------------------------


def test_a_draft_without_an_id_whose_number_changes_mid_send_is_refused(
    digest, write_draft, outbox_workspace: Path
) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "3").exit_code == 0
    write_draft(VALID_DRAFT.replace("issue: 7", "issue: 8"))  # its derived id is now test-weekly-8
    result = digest("send", str(draft), "--yes")
    assert result.exit_code == 1
    assert (
        "this draft was sent as 'test-weekly-7' (issue 7), and its id is now 'test-weekly-8'" in result.stdout
    )
    assert delivered(outbox_workspace) == 3
    # The fix it names: the draft's own id, the issue's old one.
    write_draft(VALID_DRAFT.replace("issue: 7", "issue: 7\nid: test-weekly-7"))
    assert digest("send", str(draft), "--yes").exit_code == 0
    assert delivered(outbox_workspace) == 6


def test_an_older_copy_of_the_ledger_is_behind_the_journal_even_where_it_says_failed(tmp_path: Path) -> None:
    from digestcli.state.history import journal_gaps

    # The copy says failed (or unknown); the journal, that the reader got it since (--retry-failed).
    assert journal_gaps({"a@x.org": "failed"}, {"a@x.org": "delivered"}) == {"delivered": 1}
    assert journal_gaps({"a@x.org": "unknown"}, {"a@x.org": "delivered"}) == {"delivered": 1}
    assert journal_gaps({"a@x.org": "delivered"}, {"a@x.org": "sending"}) == {}
    assert journal_gaps({"a@x.org": "unknown"}, {"a@x.org": "sending"}) == {}
    with Ledger(tmp_path) as ledger:
        ledger.plan("w-1", ["a@x.org"], {})
        ledger.record("w-1", "a@x.org", "failed", "550")
        assert ledger.restore("w-1", {"a@x.org": "delivered"}, []) == 1
        assert ledger.states("w-1") == {"a@x.org": "delivered"}


def test_an_outcome_that_says_less_goes_to_the_journal_first(tmp_path: Path) -> None:
    # A kill between the two writes must leave the journal saying no more than the ledger.
    with Ledger(tmp_path) as ledger:
        ledger.plan("w-1", ["a@x.org"], {})
        ledger.sending("w-1", "a@x.org")

        def full(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

        ledger.journal.note = full  # type: ignore[method-assign]
        with pytest.raises(Exception, match="cannot write the journal"):
            ledger.record("w-1", "a@x.org", "pending", "connection lost while sending the data")
        assert ledger.states("w-1") == {"a@x.org": "sending"}  # not written: the journal came first


def test_recover_never_moves_aside_a_ledger_it_cannot_open(tmp_path: Path) -> None:
    from digestcli.errors import DigestError
    from digestcli.state.recovery import recover_ledger

    (tmp_path / LEDGER_DB).mkdir()  # not damaged: unopenable (as a file with no read right is)
    with pytest.raises(DigestError):
        recover_ledger(tmp_path)
    assert (tmp_path / LEDGER_DB).is_dir()
    assert not list(tmp_path.glob(f"{LEDGER_DB}.damaged-*"))


def test_a_locked_ledger_is_not_taken_for_a_damaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestcli.errors import DigestError
    from digestcli.state import recovery as recovery_module

    with Ledger(tmp_path) as ledger:
        ledger.plan("w-1", ["a@x.org"], {})
    holder = sqlite3.connect(tmp_path / LEDGER_DB, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(Ledger, "busy_timeout", 0.05)
    try:
        with pytest.raises(DigestError, match="locked"):
            recovery_module.recover_ledger(tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob(f"{LEDGER_DB}.damaged-*"))


def test_a_dry_run_of_a_changed_draft_says_so_and_asks_nothing(
    digest, write_draft, outbox_workspace: Path
) -> None:
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "2").exit_code == 0
    write_draft(VALID_DRAFT.replace("three stories", "three stories, corrected"))
    result = digest("send", str(draft), "--dry-run")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Changed    the subject" in result.stdout and "[y/N]" not in result.stdout
    assert delivered(outbox_workspace) == 2
