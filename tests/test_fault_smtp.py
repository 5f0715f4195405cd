"""The fault-injecting SMTP server on its own, as smtplib sees it: real SMTP first, then each fault."""

from __future__ import annotations

import base64
import smtplib
import socket
import time
from collections.abc import Iterator

import pytest
from fault_smtp import FaultServer

MESSAGE = (
    b"From: editor@example.com\r\n"
    b"To: reader@example.com\r\n"
    b"Subject: Test Weekly\r\n"
    b"\r\n"
    b"A first line.\r\n"
    b".A line that starts with a dot, stuffed on the wire.\r\n"
    b"..And one with two.\r\n"
    b".\r\n"
    b"\xc3\xa9t\xc3\xa9, in 8 bits.\r\n"
)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def connect(server: FaultServer, timeout: float = 2.0) -> smtplib.SMTP:
    client = smtplib.SMTP(server.host, server.port, timeout=timeout, local_hostname="test.invalid")
    client.ehlo()
    return client


def pipelined(client: smtplib.SMTP, sender: str, recipient: str) -> list[int]:
    """MAIL, RCPT and DATA in one write, the way the project's transport sends them."""
    client.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
    return [client.getreply()[0] for _ in range(3)]


# -- speaking SMTP ------------------------------------------------------------------------------


def test_ehlo_offers_the_extensions(server: FaultServer) -> None:
    client = connect(server)
    assert client.has_extn("pipelining")
    assert client.has_extn("8bitmime")
    assert int(client.esmtp_features["size"]) > len(MESSAGE)
    assert not client.has_extn("auth")  # no logins configured
    client.quit()


def test_a_message_arrives_byte_exact_without_pipelining() -> None:
    with FaultServer(pipelining=False, size=False) as server:
        client = connect(server)
        assert not client.has_extn("pipelining")
        assert not client.has_extn("size")
        assert client.sendmail("editor@example.com", ["Reader@Example.com"], MESSAGE) == {}
        client.quit()

        (message,) = server.received
        assert message.data == MESSAGE
        assert message.mail_from == "editor@example.com"
        assert message.rcpt_tos == ["Reader@Example.com"]
        assert server.recipients() == {"reader@example.com": 1}
        assert server.connections == 1


def test_pipelined_commands_are_answered_in_order(server: FaultServer) -> None:
    client = connect(server)
    assert pipelined(client, "editor@example.com", "reader@example.com") == [250, 250, 354]
    client.send(MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    code, text = client.getreply()
    assert code == 250
    assert b"queued" in text
    before = time.monotonic()
    server.wait_for(1)
    assert server.received[0].data == MESSAGE
    assert server.received[0].at <= before
    # The session goes on: a second message on the same connection, after RSET and NOOP.
    assert client.rset()[0] == 250
    assert client.noop()[0] == 250
    client.sendmail("editor@example.com", ["other@example.com"], b"Subject: two\r\n\r\nbody\r\n")
    client.quit()
    assert server.recipients() == {"reader@example.com": 1, "other@example.com": 1}


def test_helo_works_and_mistakes_in_order_get_5xx(server: FaultServer) -> None:
    client = smtplib.SMTP(server.host, server.port, timeout=2)
    assert client.mail("editor@example.com")[0] == 503  # before any EHLO
    assert client.helo("test.invalid")[0] == 250
    assert client.rcpt("reader@example.com")[0] == 503  # before MAIL
    assert client.docmd("DATA")[0] == 503
    assert client.docmd("MAIL", "editor@example.com")[0] == 501
    assert client.docmd("FROBNICATE")[0] == 500
    assert client.mail("editor@example.com")[0] == 250
    assert client.mail("editor@example.com")[0] == 503  # nested
    client.quit()


# -- rules --------------------------------------------------------------------------------------


def test_a_rcpt_rule_refuses_the_chosen_readers_by_name(server: FaultServer) -> None:
    server.rule("rcpt", "550 5.1.1 <{rcpt}> unknown, from {sender}", when=lambda a: a.startswith("b"))
    client = connect(server)
    refused = client.sendmail("editor@example.com", ["a@example.com", "b@example.com"], MESSAGE)
    assert refused == {"b@example.com": (550, b"5.1.1 <b@example.com> unknown, from editor@example.com")}
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("editor@example.com", ["b2@example.com"], MESSAGE)
    client.quit()
    assert [m.rcpt_tos for m in server.received] == [["a@example.com"]]


def test_data_without_an_accepted_recipient_is_refused_and_no_data_mode(server: FaultServer) -> None:
    server.rule("rcpt", "450 4.2.1 mailbox busy")
    client = connect(server)
    assert pipelined(client, "editor@example.com", "reader@example.com") == [250, 450, 554]
    assert client.noop()[0] == 250  # still reading commands, not data
    client.quit()
    assert server.received == []


def test_times_uses_a_rule_up_and_the_first_match_wins(server: FaultServer) -> None:
    server.rule("mail", "451 4.3.0 try later", times=2)
    server.rule("mail", "452 4.3.1 never reached", times=1)
    client = connect(server)
    codes = []
    for _ in range(4):
        codes.append(client.mail("editor@example.com")[0])
        client.rset()
    assert codes == [451, 451, 452, 250]
    server.rule("mail", "550 5.7.1 no")
    server.clear_rules()
    assert client.mail("editor@example.com")[0] == 250
    client.quit()


def test_rules_are_checked(server: FaultServer) -> None:
    with pytest.raises(ValueError, match="stage"):
        server.rule("helo", "250 ok")
    with pytest.raises(ValueError, match="action"):
        server.rule("mail", action="drop")
    with pytest.raises(ValueError, match="code"):
        server.rule("mail", "ok")
    with pytest.raises(ValueError, match="reply"):
        server.rule("mail", "550 no", action="close")


def test_a_failed_ehlo_falls_back_to_helo(server: FaultServer) -> None:
    server.rule("ehlo", "502 5.5.1 no EHLO here", times=1)
    client = smtplib.SMTP(server.host, server.port, timeout=2)
    client.ehlo_or_helo_if_needed()
    assert not client.does_esmtp
    assert client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE) == {}
    client.quit()


def test_close_at_dot_counts_as_received_but_the_client_sees_a_disconnect(server: FaultServer) -> None:
    server.rule("dot", action="close", when=lambda a: a == "reader@example.com")
    client = connect(server)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE)
    server.wait_for(1)
    assert server.received[0].data == MESSAGE


def test_a_refusal_at_dot_is_not_received(server: FaultServer) -> None:
    server.rule("dot", "552 5.3.4 too big")
    client = connect(server)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE)
    assert refused.value.smtp_code == 552
    client.quit()
    assert server.received == []


def test_silence_at_dot_after_a_delay_counts_as_received(server: FaultServer) -> None:
    server.rule("dot", action="silence", delay=0.05)
    client = connect(server, timeout=0.3)
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE)
    assert len(server.received) == 1


def test_a_delay_alone_keeps_the_normal_answer(server: FaultServer) -> None:
    server.rule("rcpt", delay=0.2)
    client = connect(server)
    client.mail("editor@example.com")
    started = time.monotonic()
    assert client.rcpt("reader@example.com")[0] == 250
    assert time.monotonic() - started >= 0.2
    client.quit()


def test_silence_at_greeting_times_the_client_out(server: FaultServer) -> None:
    server.rule("greeting", action="silence")
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        smtplib.SMTP(server.host, server.port, timeout=0.5)
    assert 0.4 <= time.monotonic() - started < 2


@pytest.mark.parametrize("stage", ["connect", "greeting"])
def test_a_421_before_the_session_closes_it(server: FaultServer, stage: str) -> None:
    server.rule(stage, "421 4.3.2 too busy")
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP(server.host, server.port, timeout=2)
    assert refused.value.smtp_code == 421


def test_421_at_mail_closes_the_connection(server: FaultServer) -> None:
    server.rule("mail", "421 4.3.2 shutting down")
    client = connect(server)
    assert client.mail("editor@example.com") == (421, b"4.3.2 shutting down")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()


def test_close_at_rcpt_drops_the_connection(server: FaultServer) -> None:
    server.rule("rcpt", action="close")
    client = connect(server)
    client.mail("editor@example.com")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.rcpt("reader@example.com")


# -- outages ------------------------------------------------------------------------------------


def test_an_outage_refuses_connections_then_serves_on_the_same_port(server: FaultServer) -> None:
    port = server.port
    server.outage(0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(server.host, port, timeout=1)
    while True:
        try:
            client = smtplib.SMTP(server.host, port, timeout=1)
            break
        except ConnectionRefusedError:
            assert time.monotonic() - started < 3, "still refusing long after the outage"
            time.sleep(0.02)
    assert time.monotonic() - started >= 0.4
    assert server.port == port
    client.ehlo()
    assert client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE) == {}
    client.quit()
    assert server.connections == 1  # the refused attempts never reached the server


def test_down_and_up_by_hand_leave_open_connections_be(server: FaultServer) -> None:
    client = connect(server)
    server.down()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1)
    assert client.noop()[0] == 250  # only the listener is gone
    server.up()
    connect(server).quit()
    server.drop_connections()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()


# -- logins -------------------------------------------------------------------------------------


@pytest.fixture
def login_server() -> Iterator[FaultServer]:
    with FaultServer(logins={"editor": "s3cret"}) as running:
        yield running


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial_response", [True, False])
def test_auth_with_a_right_and_a_wrong_password(
    login_server: FaultServer, mechanism: str, initial_response: bool
) -> None:
    client = connect(login_server)
    assert client.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    authobject = getattr(client, f"auth_{mechanism.lower()}")

    client.user, client.password = "editor", "wrong"
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.auth(mechanism, authobject, initial_response_ok=initial_response)
    assert refused.value.smtp_code == 535
    assert client.mail("editor@example.com")[0] == 530

    client.user, client.password = "editor", "s3cret"
    assert client.auth(mechanism, authobject, initial_response_ok=initial_response)[0] == 235
    assert client.sendmail("editor@example.com", ["reader@example.com"], MESSAGE) == {}
    client.quit()
    assert login_server.logins == [("editor", False), ("editor", True)]
    assert len(login_server.received) == 1


def test_an_auth_rule_answers_for_the_chosen_user(login_server: FaultServer) -> None:
    login_server.rule("auth", "454 4.7.0 try again later", when=lambda user: user == "editor", times=1)
    client = connect(login_server)
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.auth("PLAIN", lambda challenge=None: "\0editor\0s3cret")
    assert refused.value.smtp_code == 454
    client.user, client.password = "editor", "s3cret"
    assert client.auth("PLAIN", client.auth_plain)[0] == 235
    client.quit()
    assert login_server.logins == [("editor", False), ("editor", True)]


def test_a_malformed_or_aborted_auth_is_refused(login_server: FaultServer) -> None:
    client = connect(login_server)
    assert client.docmd("AUTH", "CRAM-MD5")[0] == 504
    assert client.docmd("AUTH", "PLAIN !!!")[0] == 501
    assert client.docmd("AUTH", "PLAIN " + base64.b64encode(b"no separators").decode())[0] == 501
    assert client.docmd("AUTH", "LOGIN")[0] == 334
    assert client.docmd("*")[0] == 501
    client.quit()
    assert login_server.logins == []


# -- stopping -----------------------------------------------------------------------------------


def test_exit_is_prompt_with_a_silent_connection_open() -> None:
    server = FaultServer()
    with server:
        server.rule("greeting", action="silence")
        silent = socket.create_connection((server.host, server.port), timeout=2)
        deadline = time.monotonic() + 2
        while server.connections < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.connections == 1
        started = time.monotonic()
    assert time.monotonic() - started < 1
    assert silent.recv(100) == b""  # the server closed its side
    silent.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=1)


def test_a_failure_inside_the_server_is_raised_at_exit() -> None:
    def broken(address: str) -> bool:
        raise KeyError(address)

    with pytest.raises(RuntimeError, match="KeyError"), FaultServer() as server:
        server.rule("rcpt", "550 5.1.1 no", when=broken)
        client = connect(server)
        client.mail("editor@example.com")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.rcpt("reader@example.com")


def test_wait_for_gives_up_with_an_assertion(server: FaultServer) -> None:
    with pytest.raises(AssertionError, match="received 0"):
        server.wait_for(1, timeout=0.05)
