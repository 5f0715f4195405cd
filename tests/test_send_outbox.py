"""The default transport: a Maildir outbox, one parseable message per reader, no server."""

from __future__ import annotations

import mailbox
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.delivery import OutboxTransport, send_issue, transport_for
from digestcli.delivery.ledger import DELIVERED, PENDING, Ledger
from digestcli.errors import DeliveryError, InputError

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
