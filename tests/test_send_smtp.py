"""Sending over SMTP to a real server on 127.0.0.1 that misbehaves on cue (tests/smtp_server.py)."""

from __future__ import annotations

import _thread
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from smtp_server import (
    ScriptedHandler,
    SmtpServer,
    make_issue,
    make_workspace,
    self_signed_certificate,
    server_tls_context,
    write_readers,
)

from digestcli.config import Workspace
from digestcli.delivery import (
    Backoff,
    SendInterrupted,
    SendStopped,
    SendSummary,
    SmtpTransport,
    judgement,
    send_issue,
)
from digestcli.delivery import transport as transport_module
from digestcli.errors import DeliveryError
from digestcli.state.ledger import (
    DEFERRED,
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    UNKNOWN,
    Ledger,
    read_status,
)
from digestcli.state.suppressions import SuppressionList

FAST = Backoff(first=0.001, most=0.01)
ISSUE = make_issue()


@pytest.fixture
def server():
    with SmtpServer() as running:
        yield running


def send(workspace: Workspace, **options) -> SendSummary:
    options.setdefault("backoff", FAST)
    return send_issue(options.pop("issue", ISSUE), workspace, **options)


def states(workspace: Workspace) -> dict[str, str]:
    with Ledger(workspace.state) as ledger:
        return ledger.states(ISSUE.issue_id)


def test_every_reader_once_and_a_second_run_sends_nothing(tmp_path: Path, server: SmtpServer):
    bad_rows = "not-an-address,Nobody\nREADER0001@example.com,Duplicate\n"
    addresses = write_readers(tmp_path, 30, extra=bad_rows)
    workspace = make_workspace(tmp_path, port=server.port, connections=3)
    calls = []
    summary = send(
        workspace, progress=lambda delivered, total, state: calls.append((delivered, total, state))
    )
    assert (summary.delivered, summary.failed, summary.deferred, summary.unknown) == (30, 0, 0, 0)
    assert summary.skipped == 2 and summary.readers == 30 and summary.planned == 30
    assert summary.transport == f"127.0.0.1:{server.port}"
    assert server.handler.recipients() == dict.fromkeys(addresses, 1)
    assert all(message.mail_from == "weekly@example.com" for message in server.received)
    assert sorted(calls) == [(n, 30, DELIVERED) for n in range(1, 31)]
    assert set(states(workspace).values()) == {DELIVERED}

    again = send(workspace)
    assert (again.delivered, again.planned, again.already_delivered) == (0, 0, 30)
    assert len(server.received) == 30


def test_received_message_decodes_to_the_readers_own_copy(tmp_path: Path, server: SmtpServer):
    (tmp_path / "subscribers.csv").write_text(
        'email,name\nolga@example.net,Ольга Соколова\nevil@example.com,"<script>x</script>"\n',
        encoding="utf-8",
    )
    issue = make_issue(subject="Ежедневник — {{ reader.name }}: café")
    send(make_workspace(tmp_path, port=server.port), issue=issue)
    by_recipient = {message.rcpt_tos[0]: message.parsed() for message in server.received}
    olga = by_recipient["olga@example.net"]
    assert olga["Subject"] == "Ежедневник — Ольга Соколова: café"
    assert str(olga["To"]) == "Ольга Соколова <olga@example.net>"
    assert "Hello Ольга Соколова," in olga.get_body(("plain",)).get_content()
    assert "Hello Ольга Соколова," in olga.get_body(("html",)).get_content()
    evil = by_recipient["evil@example.com"].get_body(("html",)).get_content()
    assert "<script>" not in evil and "&lt;script&gt;x&lt;/script&gt;" in evil


@pytest.mark.parametrize("pipelining", [False, True])
def test_550_fails_some_and_the_rest_are_delivered(tmp_path: Path, pipelining: bool):
    addresses = write_readers(tmp_path, 10)
    handler = ScriptedHandler(pipelining=pipelining)
    handler.script = {addresses[2]: ["550"], addresses[7]: ["data:554"]}
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port)
        summary = send(workspace)
        assert (summary.delivered, summary.failed) == (8, 2)
        assert server.handler.recipients() == {
            a: 1 for a in addresses if a not in (addresses[2], addresses[7])
        }
        (status,) = read_status(workspace.state)
        assert status.counts[FAILED] == 2
        replies = {p.address: p.reply for p in status.problems}
        assert replies[addresses[2]].startswith("550 5.1.1 scripted refusal")
        assert replies[addresses[7]].startswith("554 scripted refusal after the data")
        assert {address for address, state, _ in summary.problems} == {addresses[2], addresses[7]}

        # Failed readers stay failed unless the editor asks for them again.
        assert send(workspace).planned == 0
        retried = send(workspace, retry_failed=True)
        assert (retried.planned, retried.delivered) == (2, 2)
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)


@pytest.mark.parametrize("pipelining", [False, True])
def test_temporary_refusals_and_lost_connections_are_retried(tmp_path: Path, pipelining: bool):
    addresses = write_readers(tmp_path, 12)
    handler = ScriptedHandler(pipelining=pipelining)
    handler.script = {
        addresses[1]: ["451"],
        addresses[3]: ["451", "451"],
        addresses[5]: ["421"],
        addresses[8]: ["drop"],
        addresses[10]: ["data:451"],
    }
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port, retries=3, connections=2)
        summary = send(workspace)
        assert (summary.delivered, summary.deferred, summary.failed, summary.unknown) == (12, 0, 0, 0)
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)
        with Ledger(workspace.state) as ledger:
            attempts = {a: ledger.entry(ISSUE.issue_id, a).attempts for a in addresses}  # type: ignore[union-attr]
        assert attempts[addresses[3]] == 3
        assert attempts[addresses[1]] == attempts[addresses[5]] == attempts[addresses[8]] == 2
        assert attempts[addresses[0]] == 1


def test_still_refused_after_the_retries_is_deferred_to_the_next_run(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 4)
    server.handler.script = {addresses[0]: ["451"] * 3}
    workspace = make_workspace(tmp_path, port=server.port, retries=3)
    summary = send(workspace)
    assert (summary.delivered, summary.deferred) == (3, 1)
    assert states(workspace)[addresses[0]] == DEFERRED
    assert summary.problems == [(addresses[0], DEFERRED, f"451 4.3.0 scripted refusal for <{addresses[0]}>")]
    again = send(workspace)
    assert (again.planned, again.delivered) == (1, 1)
    assert server.handler.recipients() == dict.fromkeys(addresses, 1)


def test_a_drop_after_the_data_is_unknown_and_resent_only_when_asked(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 6)
    server.handler.script = {addresses[4]: ["drop-after-data"]}
    workspace = make_workspace(tmp_path, port=server.port)
    summary = send(workspace)
    assert (summary.delivered, summary.unknown) == (5, 1)
    assert states(workspace)[addresses[4]] == UNKNOWN
    assert server.handler.recipients()[addresses[4]] == 1  # it did arrive: resending would double it

    again = send(workspace)
    assert (again.planned, again.held_unknown) == (0, 1)
    assert server.handler.recipients()[addresses[4]] == 1

    resent = send(workspace, resend_unknown=True)
    assert (resent.planned, resent.delivered) == (1, 1)
    assert server.handler.recipients()[addresses[4]] == 2
    assert set(states(workspace).values()) == {DELIVERED}


def test_too_many_connection_failures_stop_the_send(tmp_path: Path):
    write_readers(tmp_path, 5)
    port = SmtpServer().port  # nothing listens there
    workspace = make_workspace(tmp_path, port=port, max_connection_failures=3)
    with pytest.raises(SendStopped) as caught:
        send(workspace, patience=0)
    error = caught.value
    assert error.where == f"127.0.0.1:{port}"
    assert "3 connection failures in a row" in error.message
    assert error.summary.delivered == 0 and error.summary.remaining == 5
    assert set(states(workspace).values()) == {PENDING}


def test_a_server_that_drops_every_message_stops_the_send(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 20)
    server.handler.script = {address: ["drop"] * 10 for address in addresses}
    workspace = make_workspace(
        tmp_path, port=server.port, connections=1, max_connection_failures=4, retries=5
    )
    with pytest.raises(SendStopped, match="4 connection failures in a row"):
        send(workspace, patience=0)
    assert server.received == []
    assert SENDING not in states(workspace).values()
    assert set(states(workspace).values()) <= {PENDING, DEFERRED}


def test_suppressed_readers_are_not_mailed(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 5)
    workspace = make_workspace(tmp_path, port=server.port)
    SuppressionList(workspace.state).add(addresses[1].upper())
    SuppressionList(workspace.state).add(addresses[3], "bounced")
    summary = send(workspace)
    assert (summary.delivered, summary.suppressed) == (3, 2)
    assert set(server.handler.recipients()) == {addresses[0], addresses[2], addresses[4]}
    assert states(workspace)[addresses[1]] == "skipped"


def test_limit_test_address_and_dry_run(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 6)
    workspace = make_workspace(tmp_path, port=server.port)

    dry = send(workspace, dry_run=True)
    assert (dry.built, dry.delivered, dry.planned) == (6, 0, 6)
    assert server.received == []

    test = send(workspace, test_address="Editor@Example.org")
    assert test.delivered == 1
    (copy,) = server.received
    assert copy.rcpt_tos == ["Editor@example.org"]
    assert copy.parsed()["Subject"] == "[TEST] The Test Weekly #7: three stories"
    assert read_status(workspace.state) == []  # a test copy is not in the ledger

    limited = send(workspace, limit=2)
    assert (limited.delivered, limited.remaining) == (2, 4)
    assert set(server.handler.recipients()) == {"editor@example.org", *addresses[:2]}
    rest = send(workspace)
    assert (rest.delivered, rest.already_delivered) == (4, 2)


def test_ctrl_c_leaves_the_ledger_consistent(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 100)
    server.handler.data_delay = 0.01  # long enough a run for the interrupt to land mid-way
    workspace = make_workspace(tmp_path, port=server.port, connections=2)

    def interrupt_after_five(delivered: int, total: int, state: str) -> None:
        if delivered == 5:
            _thread.interrupt_main()  # what Ctrl-C does: KeyboardInterrupt in the main thread

    with pytest.raises(SendInterrupted) as caught:
        send(workspace, progress=interrupt_after_five)
    summary = caught.value.summary
    assert summary.interrupted
    found = states(workspace)
    assert SENDING not in found.values()
    delivered = {a for a, state in found.items() if state == DELIVERED}
    assert delivered == set(server.handler.recipients())
    assert summary.delivered == len(delivered) < 100
    assert summary.delivered + summary.remaining == 100
    assert set(found.values()) == {DELIVERED, PENDING}

    server.handler.data_delay = 0
    send(workspace)
    assert server.handler.recipients() == dict.fromkeys(addresses, 1)


def ctrl_c_once_data_is_in(server: SmtpServer, times: int = 1, gap: float = 0.3) -> None:
    """Ctrl-C (``times`` times, ``gap`` apart) once the server holds a message's data: the send is
    then waiting for the reply, however long it took to get there on a busy machine."""

    def press() -> None:
        server.wait_for(1, timeout=30)
        for n in range(times):
            if n:
                time.sleep(gap)
            _thread.interrupt_main()

    threading.Thread(target=press, daemon=True).start()


def test_ctrl_c_while_waiting_for_the_reply_to_the_data_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    addresses = write_readers(tmp_path, 3)
    handler = ScriptedHandler(data_delay=1.0)
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=1)
        ctrl_c_once_data_is_in(server)
        with pytest.raises(SendInterrupted) as caught:
            send(workspace, interrupt_grace=0.05)
        assert caught.value.summary.unknown == 1
        assert states(workspace) == {addresses[0]: UNKNOWN, addresses[1]: PENDING, addresses[2]: PENDING}


# -- TLS and AUTH -----------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path)  # needs cryptography, one of the test extras


def test_starttls_not_offered_is_refused_before_anything_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2")
    write_readers(tmp_path, 3)
    # The server would take AUTH in the clear; digest must not offer it the chance.
    with SmtpServer(logins={"editor": "hunter2"}, auth_require_tls=False) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="starttls", username="editor")
        with pytest.raises(DeliveryError) as caught:
            send(workspace)
        assert caught.value.where == f"127.0.0.1:{server.port}"
        assert "does not offer STARTTLS" in caught.value.message
        assert server.received == []
        assert server.handler.logins == []
        assert set(states(workspace).values()) == {PENDING}


def test_starttls_with_a_trusted_certificate_and_login(
    tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
):
    addresses = write_readers(tmp_path, 4)
    context = server_tls_context(*certificate)
    with SmtpServer(starttls=context, logins={"editor": "hunter2"}) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="starttls", username="editor")
        trust = ssl.create_default_context(cafile=str(certificate[0]))
        transport = SmtpTransport.from_config(
            workspace.config, environ={"DIGEST_SMTP_PASSWORD": "hunter2"}, ssl_context=trust
        )
        summary = send(workspace, transport=transport)
        assert summary.delivered == 4
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)
        assert server.handler.logins == ["editor"] * 2  # one login per connection

        wrong = SmtpTransport.from_config(
            workspace.config, environ={"DIGEST_SMTP_PASSWORD": "nope"}, ssl_context=trust
        )
        with pytest.raises(DeliveryError, match="refused the login for 'editor'"):
            send(workspace, transport=wrong, test_address="editor@example.com")


def test_an_untrusted_certificate_is_refused(tmp_path: Path, certificate: tuple[Path, Path]):
    write_readers(tmp_path, 2)
    with SmtpServer(starttls=server_tls_context(*certificate)) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="starttls")
        with pytest.raises(DeliveryError, match="certificate cannot be trusted"):
            send(workspace)  # the system's CAs do not know the test certificate
        assert server.received == []


def test_implicit_tls(tmp_path: Path, certificate: tuple[Path, Path]):
    addresses = write_readers(tmp_path, 3)
    with SmtpServer(implicit_tls=server_tls_context(*certificate)) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="ssl")
        trust = ssl.create_default_context(cafile=str(certificate[0]))
        summary = send(workspace, transport=SmtpTransport.from_config(workspace.config, ssl_context=trust))
        assert summary.delivered == 3
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)


def test_login_in_the_clear_only_when_security_is_none(tmp_path: Path):
    write_readers(tmp_path, 1)
    with SmtpServer(logins={"editor": "hunter2"}, auth_require_tls=False) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="none", username="editor")
        transport = SmtpTransport.from_config(workspace.config, environ={"DIGEST_SMTP_PASSWORD": "hunter2"})
        assert send(workspace, transport=transport).delivered == 1
        assert server.handler.logins == ["editor"]


def test_a_username_without_a_password_is_an_error_before_connecting(tmp_path: Path):
    workspace = make_workspace(tmp_path, port=1, username="editor")
    with pytest.raises(DeliveryError, match="DIGEST_SMTP_PASSWORD is not set"):
        SmtpTransport.from_config(workspace.config, environ={})


def test_the_session_dot_stuffs_a_message_that_needs_it(server: SmtpServer):
    from digestcli.message import Message

    data = b"Subject: dots\r\n\r\n.\r\n..two\r\nmiddle\r\n.\r\nend"
    session = SmtpTransport("127.0.0.1", server.port, security="none").open()
    try:
        assert session.send("weekly@example.com", Message("ann@example.com", data)).startswith("250")
    finally:
        session.close()
    (received,) = server.received
    assert received.data == data + b"\r\n"


def _scripted_relay(
    script: list[tuple[int, bytes]], pause_before: int = -1
) -> tuple[int, list[list[bytes]], list[int], threading.Thread]:
    """A relay on one connection that follows ``script``: (lines to read, perhaps none, or DATA_END
    for a message's data to its end; then what to answer, perhaps nothing). What it read before each
    answer is kept, for a test to see what the client sent without waiting for a reply, and the
    steps answered so far, in order; the answer of step ``pause_before`` waits 0.2 s first."""
    listener = socket.create_server(("127.0.0.1", 0))
    read: list[list[bytes]] = []
    answered: list[int] = []

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
        with connection:
            connection.settimeout(5)
            lines = connection.makefile("rb")
            connection.sendall(b"220 relay ready\r\n")
            for step, (count, answer) in enumerate(script):
                got = [lines.readline()] if count else []
                while got and got[-1] and (len(got) < count if count != DATA_END else got[-1] != b".\r\n"):
                    got.append(lines.readline())
                read.append(got)
                if step == pause_before:
                    time.sleep(0.2)
                answered.append(step)
                connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], read, answered, thread


DATA_END = -1


def test_the_next_message_s_commands_go_out_with_the_end_of_the_data():
    """With PIPELINING, a message announced as the next one has its MAIL, RCPT and DATA sent with
    the end of this one's data: the relay has them before it answers, one round trip a message."""
    from digestcli.message import Message

    first = Message("ann@example.com", b"Subject: one\r\n\r\nfirst\r\n")
    second = Message("bo@example.com", b"Subject: two\r\n\r\nsecond\r\n")
    port, read, answered, relay = _scripted_relay(
        [
            (1, b"250-relay\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n"),  # EHLO
            (3, b"250 sender ok\r\n250 recipient ok\r\n354 go on\r\n"),  # MAIL, RCPT, DATA
            (DATA_END, b""),  # the first message's data: no answer yet...
            # ...for the second message's commands must be here already.
            (3, b"250 first queued\r\n"),
            (0, b"250 sender ok\r\n250 recipient ok\r\n354 go on\r\n"),  # a moment later
            (DATA_END, b"250 second queued\r\n"),
            (1, b"221 bye\r\n"),
        ],
        pause_before=4,
    )
    # The second's data may leave (its ledger row says `sending`) only once the relay said 354 to
    # its DATA: its before_data comes after that answer, and before any of its data is read.
    leaving: list[int] = []  # the relay's answers sent when it was called
    session = SmtpTransport("127.0.0.1", port, security="none", timeout=5).open()
    session.announce("weekly@example.com", second)  # type: ignore[attr-defined]
    assert session.send("weekly@example.com", first) == "250 first queued"
    reply = session.send("weekly@example.com", second, lambda: leaving.append(len(answered)))
    assert reply == "250 second queued"
    session.close()
    relay.join(10)
    assert read[2][-2:] == [b"first\r\n", b".\r\n"]
    assert read[3] == [
        b"MAIL FROM:<weekly@example.com> SIZE=%d\r\n" % second.size,
        b"RCPT TO:<bo@example.com>\r\n",
        b"DATA\r\n",
    ]
    assert read[5][-2:] == [b"second\r\n", b".\r\n"]
    assert read[6] == [b"quit\r\n"]  # smtplib's spelling
    assert leaving == [5]  # after the 354 (the fifth answer, held back), before the data's reply


def test_a_message_tried_again_after_another_was_announced_gets_a_new_connection(server: SmtpServer):
    """The next message's DATA went out with the end of this one's data; when this one is refused
    for now and is to be tried again, the relay waits for the other's data, and only a new
    connection gets out of that: ``withdraw`` closes it (a send without it finds out and says so).
    Nothing of the other went out; QUIT is not sent into the data."""
    from digestcli.delivery.transport import StaleSession, TemporaryFailure
    from digestcli.message import Message

    first = Message("ann@example.com", b"Subject: one\r\n\r\nfirst\r\n")
    second = Message("bo@example.com", b"Subject: two\r\n\r\nsecond\r\n")
    server.handler.pipelining = True
    server.handler.script = {"ann@example.com": ["data:451", "data:451"]}
    transport = SmtpTransport("127.0.0.1", server.port, security="none", timeout=30)
    session = transport.open()
    session.announce("weekly@example.com", second)  # type: ignore[attr-defined]
    with pytest.raises(TemporaryFailure):
        session.send("weekly@example.com", first)
    assert session.usable  # the relay answered: the reader was refused, not the connection
    session.withdraw()  # type: ignore[attr-defined]
    assert not session.usable
    session.close()

    session = transport.open()
    session.announce("weekly@example.com", second)  # type: ignore[attr-defined]
    with pytest.raises(TemporaryFailure):
        session.send("weekly@example.com", first)
    with pytest.raises(StaleSession):  # not withdrawn
        session.send("weekly@example.com", first)
    assert not session.usable
    session.close()

    again = transport.open()
    again.announce("weekly@example.com", second)  # type: ignore[attr-defined]
    assert again.send("weekly@example.com", first).startswith("250")
    # Closed with the second's DATA accepted: a QUIT now would be taken as its data, and its reply
    # waited for until the timeout (30 s); the connection is dropped instead.
    closing = threading.Thread(target=again.close)
    closing.start()
    closing.join(10)
    assert not closing.is_alive()
    assert server.handler.recipients() == {"ann@example.com": 1}


def test_withdrawing_ends_the_connection_at_once_though_a_hangup_holds_it():
    """The Hangup keeps a duplicate of the socket, so closing the session's own would leave the
    connection open, and the relay waiting for the announced message's data, until the session is
    closed after the retry's wait: withdraw shuts it down at once."""
    from digestcli.delivery.transport import Hangup, TemporaryFailure
    from digestcli.message import Message

    first = Message("ann@example.com", b"Subject: one\r\n\r\nfirst\r\n")
    second = Message("bo@example.com", b"Subject: two\r\n\r\nsecond\r\n")
    port, read, _, relay = _scripted_relay(
        [
            (1, b"250-relay\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n"),  # EHLO
            (3, b"250 sender ok\r\n250 recipient ok\r\n354 go on\r\n"),
            (DATA_END, b""),
            (3, b"451 4.3.0 try again later\r\n250 sender ok\r\n250 recipient ok\r\n354 go on\r\n"),
            (DATA_END, b""),  # the second's data, which never comes: the end of the connection
        ]
    )
    hangup = Hangup()
    session = SmtpTransport("127.0.0.1", port, security="none", timeout=5).open(hangup)
    session.announce("weekly@example.com", second)  # type: ignore[attr-defined]
    with pytest.raises(TemporaryFailure):
        session.send("weekly@example.com", first)
    session.withdraw()  # type: ignore[attr-defined]
    relay.join(3)  # the session is not closed yet, and the Hangup still holds its duplicate
    assert not relay.is_alive()
    assert read[4] == [b""]  # the end of the stream, not the second's data
    session.close()


def test_refusals_after_the_data_keep_every_try_with_the_next_message_announced(tmp_path: Path):
    """A reader refused for now after its data, twice, is tried a third time and delivered, each
    try counted once, and no connection failure is reported: the connection left waiting for the
    next reader's data is closed before the wait and a new one made, at no one's expense."""
    addresses = write_readers(tmp_path, 40)  # enough that readers are taken a few at a time
    handler = ScriptedHandler(pipelining=True)
    handler.script = {addresses[1]: ["data:451", "data:451"]}
    told: list[str] = []
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port, retries=3, connections=1)
        summary = send(workspace, progress=lambda done, planned, state: told.append(state))
        assert (summary.delivered, summary.deferred) == (40, 0)
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)
    with Ledger(workspace.state) as ledger:
        attempts = [ledger.entry(ISSUE.issue_id, a).attempts for a in addresses]  # type: ignore[union-attr]
    assert attempts == [1, 3] + [1] * 38
    assert not [state for state in told if state.startswith("retrying")]


def test_the_bytes_that_left_before_a_failed_send_are_counted():
    """A send that fails part way says how much the socket took: the caller tells from it whether
    the data's end went out (then the outcome is unknown) or not (then it is safe to try again)."""
    from digestcli.delivery.smtp import _CutShort, _send_chunks

    class Sock:  # takes 10 bytes, then the connection is gone
        taken = 0

        def sendmsg(self, buffers: list[bytes]) -> int:
            if self.taken:
                raise ConnectionResetError("reset")
            self.taken = 10
            return 10

    class Client:
        sock = Sock()

        def close(self) -> None:
            pass

    with pytest.raises(_CutShort) as caught:
        _send_chunks(Client(), (b"x" * 8, b"y" * 8), 16)  # type: ignore[arg-type]
    assert caught.value.sent == 10


# -- a relay that fails the whole run, not one reader ------------------------------------------------


def test_a_relay_that_keeps_losing_the_reply_to_the_data_stops_the_send(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 10)
    server.handler.script = {address: ["drop-after-data"] for address in addresses}
    workspace = make_workspace(tmp_path, port=server.port, connections=1, max_connection_failures=3)
    with pytest.raises(SendStopped) as caught:
        send(workspace)
    error = caught.value
    assert error.where == f"127.0.0.1:{server.port}"
    assert "3 connection failures in a row" in error.message and "no reply after the data" in error.message
    assert error.summary.unknown == 3 and error.summary.remaining == 7
    found = states(workspace)
    assert [found[a] for a in addresses] == [UNKNOWN] * 3 + [PENDING] * 7


def test_the_reply_to_the_data_has_its_own_longer_timeout(tmp_path: Path):
    addresses = write_readers(tmp_path, 2)
    with SmtpServer(ScriptedHandler(data_delay=0.3)) as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=1)
        patient = SmtpTransport("127.0.0.1", server.port, security="none", timeout=0.1, data_timeout=3.0)
        assert send(workspace, transport=patient).delivered == 2
        assert SmtpTransport("127.0.0.1", 25, security="none").data_timeout == 600.0  # RFC 5321's 10 minutes

        impatient = SmtpTransport("127.0.0.1", server.port, security="none", timeout=0.1, data_timeout=0.1)
        summary = send(
            workspace, transport=impatient, resend_unknown=True, issue=make_issue(issue_id="other")
        )
        assert summary.unknown >= 1
        assert "no reply after the data (timed out)" in summary.problems[0][2]
        assert server.handler.recipients()[addresses[0]] == 2  # it arrived; only the reply was late


@pytest.mark.parametrize("pipelining", [False, True])
@pytest.mark.parametrize(
    "refusal",
    ["530 5.7.0 Authentication required", "553 5.7.1 <weekly@example.com>: Sender address rejected"],
)
def test_a_refused_sender_stops_the_send_and_fails_no_reader(tmp_path: Path, pipelining: bool, refusal: str):
    write_readers(tmp_path, 8)
    handler = ScriptedHandler(pipelining=pipelining, mail_refusal=refusal)
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=2)
        with pytest.raises(SendStopped) as caught:
            send(workspace)
        error = caught.value
        assert error.where == f"127.0.0.1:{server.port}"
        assert "refuses the sender <weekly@example.com>" in error.message and refusal in error.message
        assert (error.summary.failed, error.summary.delivered, error.summary.remaining) == (0, 0, 8)
        assert set(states(workspace).values()) == {PENDING}
        with Ledger(workspace.state) as ledger:
            assert {ledger.entry(ISSUE.issue_id, a).attempts for a in states(workspace)} == {0}  # type: ignore[union-attr]
        assert server.received == []


def readers_at_domains(root: Path, count: int, domains: int) -> list[str]:
    addresses = [f"reader{n}@domain{n % domains}.example" for n in range(count)]
    (root / "subscribers.csv").write_text("email\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    return addresses


def test_the_same_refusal_for_readers_in_a_row_stops_the_send(tmp_path: Path, server: SmtpServer):
    addresses = readers_at_domains(tmp_path, 12, domains=4)
    ses = "554 Message rejected: Email address is not verified. The following identities failed the check"
    server.handler.script = {a: [f"data:{ses}: {a}"] for a in addresses[1:]}  # the first gets through
    workspace = make_workspace(tmp_path, port=server.port, connections=1)
    with pytest.raises(SendStopped) as caught:
        send(workspace)
    error = caught.value
    assert error.where == f"127.0.0.1:{server.port}"
    assert f"same refusal for {judgement.SAME_REFUSALS} readers in a row" in error.message
    assert ses in error.message
    assert (error.summary.delivered, error.summary.failed) == (1, 0)
    assert error.summary.remaining == 11 and error.summary.problems == []
    found = states(workspace)
    assert found[addresses[0]] == DELIVERED
    assert {found[a] for a in addresses[1:]} == {PENDING}  # the refusal was not about them


def test_a_policy_refusal_at_rcpt_for_everyone_stops_the_send(tmp_path: Path, server: SmtpServer):
    addresses = readers_at_domains(tmp_path, 9, domains=3)
    server.handler.script = {a: ["rcpt:554 5.7.1 Relay access denied"] for a in addresses}
    workspace = make_workspace(tmp_path, port=server.port, connections=2)
    with pytest.raises(SendStopped, match="Relay access denied"):
        send(workspace)
    found = states(workspace)
    refused = [a for a, state in found.items() if state == FAILED]
    # The readers the relay named stay failed (at most those in flight on the two connections
    # when the fifth came back); everyone else is still pending, not failed for a relay fault.
    assert 5 <= len(refused) <= 6
    assert {found[a] for a in addresses if a not in refused} == {PENDING}


def test_readers_refused_by_policy_at_rcpt_cannot_stop_every_later_run(tmp_path: Path, server: SmtpServer):
    addresses = readers_at_domains(tmp_path, 9, domains=3)
    refused = addresses[:5]
    server.handler.script = {a: ["rcpt:554 5.7.1 Recipient address rejected"] * 9 for a in refused}
    workspace = make_workspace(tmp_path, port=server.port, connections=1)
    with pytest.raises(SendStopped, match="Recipient address rejected"):
        send(workspace)
    summary = send(workspace)  # the same server: the five stay failed, the rest get the issue
    assert summary.delivered == 4
    assert {a for a, state in states(workspace).items() if state == FAILED} == set(refused)


def test_one_domain_refusing_by_policy_does_not_stop_the_send(tmp_path: Path, server: SmtpServer):
    addresses = [f"reader{n}@strict.example" for n in range(7)] + ["last@example.com"]
    (tmp_path / "subscribers.csv").write_text("email\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    server.handler.script = {a: ["rcpt:550 5.7.1 Blocked by the domain's policy"] for a in addresses[:7]}
    summary = send(make_workspace(tmp_path, port=server.port, connections=1))
    assert (summary.failed, summary.delivered) == (7, 1)


def test_readers_refused_one_by_one_at_rcpt_are_failed_and_the_send_goes_on(
    tmp_path: Path, server: SmtpServer
):
    addresses = write_readers(tmp_path, 12)
    gone = addresses[1:10]  # nine in a row: an old list
    server.handler.script = {a: ["550"] for a in gone[:5]}
    server.handler.script.update({a: ["rcpt:550 no such user here"] for a in gone[5:]})
    workspace = make_workspace(tmp_path, port=server.port, connections=1)
    summary = send(workspace)
    assert (summary.delivered, summary.failed) == (3, 9)
    assert {a for a, state in states(workspace).items() if state == FAILED} == set(gone)


def test_a_connection_the_server_closed_while_idle_costs_no_attempt(tmp_path: Path, server: SmtpServer):
    addresses = write_readers(tmp_path, 6)
    server.handler.script = {addresses[1]: ["close-after-data"], addresses[3]: ["close-after-data"]}
    # One try and one connection failure would each be fatal here if the stale connection counted.
    # The rate limit leaves the connection idle between messages, for the server to close it.
    workspace = make_workspace(
        tmp_path, port=server.port, connections=1, retries=1, max_connection_failures=1, rate=20.0
    )
    slow_start = Backoff(first=5.0, most=5.0)  # a backoff would show in the run's length
    summary = send(workspace, backoff=slow_start)
    assert (summary.delivered, summary.deferred) == (6, 0)
    assert summary.duration < 4
    assert server.handler.recipients() == dict.fromkeys(addresses, 1)
    with Ledger(workspace.state) as ledger:
        assert {ledger.entry(ISSUE.issue_id, a).attempts for a in addresses} == {1}  # type: ignore[union-attr]


def test_the_rate_limit_spreads_the_messages(tmp_path: Path, server: SmtpServer):
    write_readers(tmp_path, 9)
    workspace = make_workspace(tmp_path, port=server.port, connections=3, rate=20.0)
    assert send(workspace).delivered == 9
    # When each message was begun (its MAIL FROM): what the pace decides, without the jitter of
    # the round trips and the data that follow.
    times = sorted(message.started for message in server.received)
    # Nine messages at 20 a second take 8 intervals of 50 ms: 0.4 s, give or take the scheduler.
    assert 0.3 <= times[-1] - times[0] <= 1.5
    assert min(later - earlier for earlier, later in zip(times, times[3:], strict=False)) >= 0.1


# -- Ctrl-C while connecting, and twice --------------------------------------------------------------


def test_ctrl_c_while_connecting_exits_at_once(tmp_path: Path):
    import socket
    import time

    addresses = write_readers(tmp_path, 4)
    with socket.socket() as silent:  # accepts connections (the kernel does) and never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        workspace = make_workspace(tmp_path, port=port, connections=2, timeout=30.0)

        def interrupt_once_connecting() -> None:
            connection, _ = silent.accept()  # the send is connecting now: Ctrl-C
            time.sleep(0.1)
            _thread.interrupt_main()
            connection.close()

        threading.Thread(target=interrupt_once_connecting, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(SendInterrupted) as caught:
            send(workspace)
        assert time.monotonic() - started < 3  # not the 30 s the greeting would be waited for
    summary = caught.value.summary
    assert (summary.delivered, summary.remaining) == (0, 4)
    assert states(workspace) == dict.fromkeys(addresses, PENDING)


def test_a_second_ctrl_c_exits_without_waiting_for_the_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    addresses = write_readers(tmp_path, 3)
    with SmtpServer(ScriptedHandler(data_delay=3.0)) as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=1, timeout=30.0)
        ctrl_c_once_data_is_in(server, times=2)
        with pytest.raises(SendInterrupted) as caught:
            send(workspace, interrupt_grace=30.0)
        hurried = time.monotonic()
        assert hurried - server.received[0].at < 2.5  # not the 30 s grace, nor the 3 s reply
        summary = caught.value.summary
        assert (summary.unknown, summary.remaining) == (1, 2)
        # The message in flight may have arrived: its row says so, now or after the next run recovers it.
        assert states(workspace)[addresses[0]] in (SENDING, UNKNOWN)
        server.handler.data_delay = 0
        again = send(workspace, backoff=FAST)
        assert again.held_unknown == 1 and again.delivered == 2
        assert states(workspace)[addresses[0]] == UNKNOWN


# -- sessions are closed once, whatever happens --------------------------------------------------------


class _Session:
    def __init__(self, log: list[str], number: int, behaviour: str):
        self.log, self.number, self.behaviour, self.usable = log, number, behaviour, True

    def send(self, sender: str, message, before_data=None) -> str:
        if self.behaviour == "lost":
            self.usable = False
            raise transport_module.TemporaryFailure("connection lost before the data was sent")
        raise RuntimeError("a bug in the transport")

    def close(self) -> None:
        self.log.append(f"close {self.number}")


class _Transport:
    name = "fake"
    connections = 1

    def __init__(self) -> None:
        self.log: list[str] = []
        self.behaviours = iter(["lost", "bug"])

    def open(self, hangup=None) -> _Session:
        session = _Session(self.log, len(self.log), next(self.behaviours))
        self.log.append(f"open {session.number}")
        return session


def test_a_session_opened_again_and_then_failing_is_closed_once(tmp_path: Path):
    write_readers(tmp_path, 1)
    transport = _Transport()
    with pytest.raises(RuntimeError, match="a bug in the transport"):
        send(make_workspace(tmp_path, transport="smtp"), transport=transport)
    opened = [entry for entry in transport.log if entry.startswith("open")]
    assert len(opened) == 2
    assert sorted(transport.log) == sorted([*opened, *(e.replace("open", "close") for e in opened)])


def test_ehlo_address_literals():
    from digestcli.delivery.smtp import _address_literal

    assert _address_literal("192.0.2.1") == "[192.0.2.1]"
    assert _address_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert _address_literal("fe80::1%eth0") == "[IPv6:fe80::1]"


def test_replies_are_read_as_smtplib_reads_them():
    """The session's own reply reading gives what smtplib's getreply gives, reply for reply, from
    the same stream: multi-line replies, a broken code, a line too long, the end of the stream."""
    import smtplib

    from digestcli.delivery.smtp import _read_reply

    streams = [
        b"250 2.0.0 ok\r\n250-first\r\n250-second\r\n250 third\r\nxyz not a code\r\n354 go on\r\n",
        b"250 " + b"x" * 9000 + b"\r\n",
        b"250-cut short\r\n",
        None,  # a relay that says nothing: the wait times out
    ]
    results = []
    for read in (_read_reply, smtplib.SMTP.getreply):
        got: list[object] = []
        for stream in streams:
            left, right = socket.socketpair()
            if stream is None:
                left.settimeout(0.05)
            else:
                right.sendall(stream)
                right.close()
            client = smtplib.SMTP()
            client.sock, client.file = left, left.makefile("rb")
            while True:  # to the first error
                try:
                    got.append(read(client))
                except smtplib.SMTPException as exc:
                    got.append((type(exc).__name__, str(exc), client.file is None))
                    break
            left.close()
            right.close()
        results.append(got)
    ours, smtplibs = results
    assert ours == smtplibs
    assert ours == [
        (250, b"2.0.0 ok"),
        (250, b"first\nsecond\nthird"),
        (-1, b"not a code"),
        (354, b"go on"),
        ("SMTPServerDisconnected", "Connection unexpectedly closed", True),
        ("SMTPResponseException", "(500, 'Line too long.')", True),
        ("SMTPServerDisconnected", "Connection unexpectedly closed", True),
        ("SMTPServerDisconnected", "Connection unexpectedly closed: timed out", True),
    ]


def test_over_tls_the_data_s_end_and_the_next_commands_are_written_apart():
    """A TLS write reports all or nothing: the data up to its end mark and the next message's
    commands are two writes, so that a failure in the second is known to come after the end left
    (the outcome is then unknown, never tried again)."""
    from digestcli.delivery.smtp import _CutShort, _send_chunks

    class Sock(ssl.SSLSocket):  # takes one write, then the connection is gone
        def __init__(self) -> None:
            self.written: list[bytes] = []

        def sendall(self, data: object, flags: int = 0) -> None:
            if self.written:
                raise ConnectionResetError("reset")
            self.written.append(bytes(data))  # type: ignore[call-overload]

    class Client:
        sock = Sock()

        def close(self) -> None:
            pass

    chunks = (b"data\r\n", b".\r\n", b"MAIL FROM:<a@example.com>\r\n")
    with pytest.raises(_CutShort) as caught:
        _send_chunks(Client(), chunks, sum(map(len, chunks)), 9)  # type: ignore[arg-type]
    assert caught.value.sent == 9
    assert Client.sock.written == [b"data\r\n.\r\n"]
