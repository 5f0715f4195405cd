"""The suppression list's history and dates, and `digest unsubscribe --list --format json` / `--undo`."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.delivery import send_issue
from digestcli.errors import UsageError
from digestcli.state.suppressions import ADDED, SUPPRESSIONS_DB, UNDONE, SuppressionList


def test_since_is_iso_8601_with_the_offset(tmp_path: Path):
    entry = SuppressionList(tmp_path).add("Ann@Example.org", "bounced")
    since = dt.datetime.fromisoformat(entry.since)
    assert since.tzinfo is not None
    assert abs(since.timestamp() - entry.added) < 1


def test_add_many_keeps_the_first_entry_and_writes_the_history(tmp_path: Path):
    suppressions = SuppressionList(tmp_path)
    suppressions.add("ann@example.org", "unsubscribed")
    entries = suppressions.add_many(
        [("ANN@example.org", "bounced", "a later bounce"), ("bo@example.org", "complained", "ARF")]
    )
    assert [(e.address, e.reason) for e in entries] == [
        ("ann@example.org", "unsubscribed"),
        ("bo@example.org", "complained"),
    ]
    # The history says what happened: the second add of ann changed nothing, so it is not there.
    assert [(c.address, c.change, c.reason) for c in suppressions.history()] == [
        ("ann@example.org", ADDED, "unsubscribed"),
        ("bo@example.org", ADDED, "complained"),
    ]
    with pytest.raises(UsageError, match="unknown suppression reason"):
        suppressions.add_many([("cy@example.org", "annoyed", "")])
    assert "cy@example.org" not in suppressions.reasons()


def test_undo_puts_a_reader_back_and_remembers_when(tmp_path: Path):
    suppressions = SuppressionList(tmp_path)
    assert suppressions.undo("nobody@example.org") is None  # no list yet: nothing to undo
    suppressions.add("ann@example.org", "bounced")
    was = suppressions.undo("Ann@Example.org", note="the mailbox was full, not dead")
    assert was is not None and was.reason == "bounced"
    assert suppressions.reasons() == {}
    assert suppressions.undo("ann@example.org") is None
    history = suppressions.history("ann@example.org")
    assert [(c.change, c.reason) for c in history] == [(ADDED, "bounced"), (UNDONE, "bounced")]
    assert history[1].note == "the mailbox was full, not dead"
    assert suppressions.last_undone("ann@example.org") == history[1].at
    # Suppressed again later: a new entry, a new date, the history grows.
    again = suppressions.add("ann@example.org", "unsubscribed")
    assert again.added >= history[1].at and again.reason == "unsubscribed"
    assert len(suppressions.history("ann@example.org")) == 3


def test_a_list_from_before_the_history_still_opens(tmp_path: Path):
    with sqlite3.connect(tmp_path / SUPPRESSIONS_DB) as db:
        db.execute(
            "CREATE TABLE suppression (address TEXT PRIMARY KEY, reason TEXT NOT NULL, added REAL NOT NULL,"
            " note TEXT NOT NULL)"
        )
        db.execute("INSERT INTO suppression VALUES ('old@example.org', 'bounced', 1700000000.0, '')")
    suppressions = SuppressionList(tmp_path)
    assert suppressions.reasons() == {"old@example.org": "bounced"}
    assert suppressions.undo("old@example.org") is not None
    assert [c.change for c in suppressions.history()] == [UNDONE]


# -- the command ------------------------------------------------------------------------------------


def test_list_as_json(workspace: Path, digest):
    assert json.loads(digest("unsubscribe", "--list", "--format", "json").stdout) == []
    digest("unsubscribe", "ann@example.org")
    digest("unsubscribe", "bo@example.org", "--reason", "bounced")
    listed = json.loads(digest("unsubscribe", "--list", "--format", "json").stdout)
    assert [(e["address"], e["reason"]) for e in listed] == [
        ("ann@example.org", "unsubscribed"),
        ("bo@example.org", "bounced"),
    ]
    assert all(set(e) == {"address", "reason", "since"} for e in listed)
    assert all(dt.datetime.fromisoformat(e["since"]).tzinfo is not None for e in listed)
    text = digest("unsubscribe", "--list")
    assert text.stdout.splitlines()[0].startswith("ann@example.org  unsubscribed  20")
    assert text.stderr.strip() == "2 addresses suppressed."


def test_undo_from_the_command_line_and_the_next_send_mails_the_reader(workspace: Path, digest):
    write_readers(workspace, 2)
    result = digest("unsubscribe", "reader0000@example.com", "--reason", "bounced")
    assert result.exit_code == 0
    ws = make_workspace(workspace, transport="outbox")
    assert send_issue(make_issue(issue_id="w-1"), ws).delivered == 1

    result = digest("unsubscribe", "--undo", "Reader0000@example.com")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("reader0000@example.com is back (it was bounced since 20")
    assert json.loads(digest("unsubscribe", "--list", "--format", "json").stdout) == []
    assert send_issue(make_issue(issue_id="w-2"), ws).delivered == 2

    again = digest("unsubscribe", "--undo", "reader0000@example.com")
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        "error: reader0000@example.com is not on the suppression list: nothing to undo"
        " (digest unsubscribe --list shows who is)"
    )
    history = SuppressionList(workspace / ".digest").history("reader0000@example.com")
    assert [(c.change, c.note) for c in history] == [(ADDED, ""), (UNDONE, "digest unsubscribe --undo")]


def test_the_old_uses_still_work(workspace: Path, digest):
    assert digest("unsubscribe").exit_code == 2
    assert digest("unsubscribe", "nobody").exit_code == 2
    result = digest("unsubscribe", "Cy@Example.org", "--reason", "complained")
    assert result.stdout.strip() == "cy@example.org is complained: no further issues will be sent to it."
