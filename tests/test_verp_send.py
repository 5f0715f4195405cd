"""Where bounces go: ``[delivery] bounce_address`` as every message's envelope sender (MAIL FROM
at a real SMTP server, Return-Path in the outbox), and with ``verp`` each reader's own,
``bounces+TOKEN@…``, which leads back to the issue and the reader."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from smtp_server import SmtpServer, make_issue, make_workspace, write_readers

from digestcli.config import Workspace, load_config
from digestcli.delivery import Backoff, send_issue
from digestcli.errors import ConfigError
from digestcli.message.verp import VerpIndex, verp_sender, verp_token
from digestcli.state.secret import load_secret

ISSUE = make_issue()
FAST = Backoff(first=0.001, most=0.01)


def with_delivery(workspace: Workspace, **settings: object) -> Workspace:
    config = workspace.config
    delivery = config.delivery._replace(**settings)  # type: ignore[arg-type]
    return workspace._replace(config=config._replace(delivery=delivery))


def test_the_bounce_address_is_every_messages_envelope_sender(tmp_path: Path):
    addresses = write_readers(tmp_path, 5)
    with SmtpServer() as server:
        workspace = with_delivery(
            make_workspace(tmp_path, port=server.port), bounce_address="bounces@lanternweekly.net"
        )
        assert send_issue(ISSUE, workspace, backoff=FAST).delivered == 5
        assert {one.mail_from for one in server.received} == {"bounces@lanternweekly.net"}
        assert sorted(one.rcpt_tos[0] for one in server.received) == addresses
        # The From header stays the newsletter's own.
        assert {str(one.parsed()["From"]) for one in server.received} == {
            "The Test Weekly <weekly@example.com>"
        }


def test_without_one_the_envelope_sender_is_the_from_address(tmp_path: Path):
    write_readers(tmp_path, 2)
    with SmtpServer() as server:
        send_issue(ISSUE, make_workspace(tmp_path, port=server.port), backoff=FAST)
        assert {one.mail_from for one in server.received} == {"weekly@example.com"}


def test_with_verp_each_reader_has_an_envelope_sender_that_leads_back_to_them(tmp_path: Path):
    addresses = write_readers(tmp_path, 6)
    with SmtpServer() as server:
        workspace = with_delivery(
            make_workspace(tmp_path, port=server.port, connections=3),
            bounce_address="bounces@lanternweekly.net",
            verp=True,
        )
        assert send_issue(ISSUE, workspace, backoff=FAST).delivered == 6
        senders = {one.rcpt_tos[0]: one.mail_from for one in server.received}
    secret = load_secret(workspace.state)
    assert set(senders) == set(addresses)
    assert len(set(senders.values())) == 6  # one per reader
    index = VerpIndex(secret, [ISSUE.issue_id], lambda issue_id: addresses)
    for address, sender in senders.items():
        assert sender == verp_sender("bounces@lanternweekly.net", ISSUE.issue_id, address, secret)
        local, _, domain = sender.partition("@")
        assert domain == "lanternweekly.net" and local.startswith("bounces+") and len(local) <= 64
        token = verp_token(sender)
        assert token is not None
        # A server that changes the local part's case changes nothing.
        assert verp_token(sender.upper()) == token
        assert index.lookup(token) == (ISSUE.issue_id, address)
    # The issue's part of every token is the same.
    assert len({verp_token(sender)[:5] for sender in senders.values()}) == 1  # type: ignore[index]


def test_a_test_copy_goes_from_the_bounce_address_without_a_token(tmp_path: Path):
    write_readers(tmp_path, 2)
    with SmtpServer() as server:
        workspace = with_delivery(
            make_workspace(tmp_path, port=server.port), bounce_address="bounces@lanternweekly.net", verp=True
        )
        send_issue(ISSUE, workspace, backoff=FAST, test_address="editor@example.org")
        assert [one.mail_from for one in server.received] == ["bounces@lanternweekly.net"]


def test_the_outbox_records_the_envelope_sender_as_return_path(tmp_path: Path):
    addresses = write_readers(tmp_path, 3)
    workspace = with_delivery(
        make_workspace(tmp_path, transport="outbox"), bounce_address="bounces@lanternweekly.net", verp=True
    )
    assert send_issue(ISSUE, workspace).delivered == 3
    secret = load_secret(workspace.state)
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    found = {}
    for key in box.iterkeys():
        message = box[key]
        found[message["To"].rpartition("<")[2].rstrip(">")] = message["Return-Path"]
    assert found == {
        address: f"<{verp_sender('bounces@lanternweekly.net', ISSUE.issue_id, address, secret)}>"
        for address in addresses
    }


def settings(tmp_path: Path, delivery: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(
        '[newsletter]\nfrom = "The Weekly <weekly@lanternweekly.net>"\n\n[delivery]\n' + delivery,
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("delivery", "line", "complaint"),
    [
        (
            'transport = "smtp"\nbounce_address = "not an address"\n',
            2,
            "delivery.bounce_address is not an email",
        ),
        ('bounce_address = "Bounces <bounces@lanternweekly.net>"\n', 1, "delivery.bounce_address is"),
        (f'verp = true\nbounce_address = "{"b" * 43}@lanternweekly.net"\n', 2, "delivery.verp is on, but"),
        ("verp = true\n", 1, "delivery.verp is on, but"),  # no bounce address: the from address
    ],
)
def test_settings_that_cannot_work_are_refused_with_their_line(
    tmp_path: Path, delivery: str, line: int, complaint: str
):
    if delivery == "verp = true\n":
        path = tmp_path / "digest.toml"
        path.write_text(
            f'[newsletter]\nfrom = "{"w" * 43}@lanternweekly.net"\n\n[delivery]\nverp = true\n',
            encoding="utf-8",
        )
        line = 5
    else:
        path = settings(tmp_path, delivery)
        line += 4  # the [newsletter] table comes first
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert complaint in caught.value.message
    assert caught.value.where == f"{path}:{line}"


def test_settings_that_work_are_read(tmp_path: Path):
    path = settings(tmp_path, f'bounce_address = "{"b" * 42}@lanternweekly.net"\nverp = true\n')
    config = load_config(path)
    assert (config.delivery.bounce_address, config.delivery.verp) == (f"{'b' * 42}@lanternweekly.net", True)
