"""The default transport: a Maildir outbox, one parseable message per reader, no server."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.delivery import OutboxTransport, plan_send, read_status, send_issue, transport_for
from digestcli.errors import DeliveryError, InputError
from digestcli.state.ledger import DELIVERED, FAILED, PENDING, SKIPPED, UNKNOWN, Ledger
from digestcli.state.suppressions import SuppressionList
from digestcli.subscribers import load_subscribers

ISSUE = make_issue()


def outbox_messages(path: Path) -> list[bytes]:
    maildir = mailbox.Maildir(path, factory=None, create=False)
    return [maildir.get_bytes(key) for key in maildir.iterkeys()]


def test_one_message_per_reader_in_the_maildir(tmp_path: Path):
    addresses = write_readers(tmp_path, 12, extra="broken,Row\n")
    workspace = make_workspace(tmp_path, transport="outbox")
    transport = transport_for(workspace)
    assert isinstance(transport, OutboxTransport)
    assert transport.name == f"outbox {tmp_path / 'outbox'}"

    summary = send_issue(ISSUE, workspace)
    assert (summary.delivered, summary.skipped, summary.failed) == (12, 1, 0)
    raw = outbox_messages(tmp_path / "outbox")
    assert len(raw) == 12
    parsed = [message_from_bytes(data, policy=policy.default) for data in raw]
    assert sorted(message["To"].addresses[0].addr_spec for message in parsed) == addresses
    for message in parsed:
        assert message.defects == []
        assert message["Subject"] == ISSUE.subject
        assert message.get_body(("html",)).get_content().startswith("<!doctype html>")
        assert (
            "Unsubscribe: https://example.com/unsubscribe?token="
            in message.get_body(("plain",)).get_content()
        )
    assert all(b"\r\n" not in data for data in raw)  # Maildir holds local line ends

    with Ledger(workspace.state) as ledger:
        assert set(ledger.states(ISSUE.issue_id).values()) == {DELIVERED}
    assert send_issue(ISSUE, workspace).delivered == 0
    assert len(outbox_messages(tmp_path / "outbox")) == 12


def test_a_slot_the_list_cannot_fill_stops_before_any_message(tmp_path: Path):
    write_readers(tmp_path, 3)
    workspace = make_workspace(tmp_path, transport="outbox")
    issue = make_issue(subject="Weather for {{ reader.city }}")
    with pytest.raises(InputError, match=r"\{\{ reader.city \}\}"):
        send_issue(issue, workspace)
    assert not (tmp_path / "outbox").exists()


def test_dry_run_writes_nothing(tmp_path: Path):
    write_readers(tmp_path, 3)
    workspace = make_workspace(tmp_path, transport="outbox")
    summary = send_issue(ISSUE, workspace, dry_run=True)
    assert (summary.built, summary.delivered) == (3, 0)
    assert not (tmp_path / "outbox").exists()


def test_an_outbox_that_cannot_be_made_is_a_clear_error(tmp_path: Path):
    write_readers(tmp_path, 2)
    (tmp_path / "outbox").write_text("a file where the outbox should be", encoding="utf-8")
    workspace = make_workspace(tmp_path, transport="outbox")
    with pytest.raises(DeliveryError, match="cannot make the outbox") as caught:
        send_issue(ISSUE, workspace)
    assert caught.value.where == str(tmp_path / "outbox")
    with Ledger(workspace.state) as ledger:
        assert set(ledger.states(ISSUE.issue_id).values()) == {PENDING}


def test_one_send_at_a_time(tmp_path: Path):
    fcntl = pytest.importorskip("fcntl")
    write_readers(tmp_path, 2)
    workspace = make_workspace(tmp_path, transport="outbox")
    workspace.state.mkdir()
    with open(workspace.state / "send.lock", "w", encoding="utf-8") as held:
        held.write("4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(DeliveryError, match=r"another send is running in this workspace \(pid 4242\)"):
            send_issue(ISSUE, workspace)
    assert send_issue(ISSUE, workspace).delivered == 2


def test_dry_run_and_plan_make_nothing_in_the_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    write_readers(tmp_path, 3)
    workspace = make_workspace(tmp_path, transport="outbox")
    readers = load_subscribers(tmp_path / "subscribers.csv")
    plan = plan_send(ISSUE, workspace, readers)
    assert [r.email for r in plan.due] == [r.email for r in readers.readers]
    assert send_issue(ISSUE, workspace, dry_run=True).built == 3
    assert not workspace.state.exists()  # no ledger, no secret, no lock file


def test_plan_send_says_what_send_issue_then_does(tmp_path: Path):
    addresses = write_readers(tmp_path, 10)
    workspace = make_workspace(tmp_path, transport="outbox")
    assert send_issue(ISSUE, workspace, limit=4).delivered == 4
    SuppressionList(workspace.state).add(addresses[5])
    with Ledger(workspace.state) as ledger:  # as earlier runs might have left them
        for address, state in ((addresses[6], UNKNOWN), (addresses[7], FAILED)):
            ledger.sending(ISSUE.issue_id, address)
            ledger.record(ISSUE.issue_id, address, state, "a reply")
    ledger_bytes = (workspace.state / "ledger.sqlite3").read_bytes()

    readers = load_subscribers(tmp_path / "subscribers.csv")
    plan = plan_send(ISSUE, workspace, readers, limit=1)
    assert (workspace.state / "ledger.sqlite3").read_bytes() == ledger_bytes
    emails = lambda group: [reader.email for reader in group]  # noqa: E731
    assert emails(plan.already_delivered) == addresses[:4]
    assert emails(plan.due) == [addresses[4]]
    assert emails(plan.later) == addresses[8:]
    assert emails(plan.suppressed) == [addresses[5]]
    assert emails(plan.held_unknown) == [addresses[6]]
    assert emails(plan.held_failed) == [addresses[7]]
    lifted = plan_send(ISSUE, workspace, readers, resend_unknown=True, retry_failed=True)
    assert emails(lifted.due) == [addresses[4], *addresses[6:]]

    summary = send_issue(ISSUE, workspace, limit=1)
    assert (summary.planned, summary.delivered, summary.remaining) == (1, 1, 2)
    assert (summary.already_delivered, summary.suppressed) == (4, 1)
    assert (summary.held_unknown, summary.held_failed) == (1, 1)


def test_readers_who_left_the_list_are_not_left_pending(tmp_path: Path):
    addresses = write_readers(tmp_path, 5)
    workspace = make_workspace(tmp_path, transport="outbox")
    SuppressionList(workspace.state).add(addresses[1])  # unsubscribed...
    assert send_issue(ISSUE, workspace, limit=2).delivered == 2  # addresses 0 and 2; 3, 4 wait
    (status,) = read_status(workspace.state)
    assert (status.counts[SKIPPED], status.counts[PENDING]) == (1, 2)

    # ...and then taken off the CSV, with one reader still waiting for the issue.
    kept = [addresses[0], addresses[2], addresses[3]]
    (tmp_path / "subscribers.csv").write_text("email\n" + "".join(f"{a}\n" for a in kept), encoding="utf-8")
    assert send_issue(ISSUE, workspace).delivered == 1
    (status,) = read_status(workspace.state)
    assert status.counts[PENDING] == 0
    assert (status.counts[DELIVERED], status.counts[SKIPPED]) == (3, 2)
    with Ledger(workspace.state) as ledger:
        assert ledger.entry(ISSUE.issue_id, addresses[1]).reply == "suppressed: unsubscribed"  # type: ignore[union-attr]
        assert ledger.entry(ISSUE.issue_id, addresses[4]).reply == "no longer in the reader list"  # type: ignore[union-attr]


def test_a_damaged_ledger_stops_the_send_with_the_file_named(tmp_path: Path):
    write_readers(tmp_path, 2)
    workspace = make_workspace(tmp_path, transport="outbox")
    workspace.state.mkdir()
    (workspace.state / "ledger.sqlite3").write_bytes(b"garbage " * 1000)
    for attempt in (
        lambda: send_issue(ISSUE, workspace),
        lambda: send_issue(ISSUE, workspace, dry_run=True),
        lambda: plan_send(ISSUE, workspace, load_subscribers(tmp_path / "subscribers.csv")),
    ):
        with pytest.raises(InputError) as caught:
            attempt()
        assert caught.value.where == str(workspace.state / "ledger.sqlite3")
    assert not (tmp_path / "outbox").exists()
