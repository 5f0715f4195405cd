"""A message's bytes as a send writes them: pre-encoded chunks of the issue joined with each reader's
few pieces, which must parse back (stdlib email parser) to the reader's own copy of the issue,
whatever the reader's values hold; the outbox's LF variant; and SMTP's dot-stuffing, skipped only
where no line can start with a dot."""

from __future__ import annotations

import html
import random
import socket
import threading
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from smtp_server import SmtpServer, make_issue

from digestcli.delivery.outbox import OutboxTransport
from digestcli.delivery.smtp import SmtpTransport, _as_smtp_carries_it, _send_chunks
from digestcli.message import Masthead, Message, Personalizer
from digestcli.render import RenderedIssue
from digestcli.subscribers import one_line, parse_subscribers

SECRET = b"a secret for the byte tests"
MASTHEAD = Masthead(
    sender="The Test Weekly <weekly@example.com>",
    unsubscribe_url="https://example.com/unsubscribe?token={token}&list=weekly",
    title="The Test Weekly",
    reply_to="Editor <editor@example.com>",
    unsubscribe_mailto="unsubscribe@example.com",
)
# Values a CSV cell may hold that test the encodings: dots that start a line once encoded, `=`,
# spaces at the ends of lines, non-ASCII, HTML, lengths around a quoted-printable line.
NASTY = [
    ".",
    "..",
    ". leading dot",
    "." + "x" * 74,
    "x" * 74 + ".",
    "x" * 75 + ".y",
    "a=b=c" * 20,
    "=" * 80,
    "trailing space ",
    "Ann & <b>Co</b>",
    'quote " and \\ backslash',
    "Ольга Соколова",
    "é." * 60,
    "김하나 " * 30,
    "tab\there",
    "line\r\nbreak",
    "x" * 2000,
    "",
]
ISSUE = RenderedIssue(
    "bytes-1",
    "The Test Weekly",
    "Hello {{ reader.name }}: {{ reader.city }}",
    "Preheader",
    "<!doctype html>\n<p>Hi {{ reader.name }},</p>\n.{{ reader.city }}\n"
    + "<p>"
    + "Lorem ipsum dolor sit amet, café. " * 40
    + "</p>\n"
    + '<p><a href="{{ reader.site }}">your site</a> {{ reader.name }}</p>\n'
    + '<p><a href="{{ reader.unsubscribe_url }}">Unsubscribe</a> ({{ reader.email }})</p>\n',
    "Hi {{ reader.name }},\n.{{ reader.city }}\n\n"
    + "Lorem ipsum dolor sit amet, café. " * 40
    + "\n.\n..\n{{ reader.name }}.\nUnsubscribe: {{ reader.unsubscribe_url }}\n",
)
COLUMNS = "email,name,city,site"


def readers(count: int = 60, seed: int = 20261120):
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        name, city = rng.choice(NASTY), rng.choice(NASTY)
        site = rng.choice(
            ["https://example.org/a?b=c&d=.e", "javascript:alert(1)", "", "mailto:x@example.org"]
        )
        cells = [f"reader{n}@example.com", name, city, site]
        rows.append(",".join('"' + cell.replace('"', '""') + '"' for cell in cells))
    return parse_subscribers(f"{COLUMNS}\n" + "\n".join(rows) + "\n")


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def display_name(data: bytes) -> str:
    """To's display name as an RFC 2047 reader decodes it (policy.default puts a space between
    two encoded words that split a word; RFC 2047 §6.2 says to drop the space between them)."""
    raw = message_from_bytes(data, policy=policy.compat32)["To"]
    return parseaddr(str(make_header(decode_header(raw))))[0]


def expected_parts(personalizer: Personalizer, reader) -> tuple[str, str]:
    """The reader's text and HTML parts as the rendered issue says, slots filled (LF line ends)."""
    url = personalizer.unsubscribe_url(reader.email)
    values = {**reader.fields, "email": reader.email, "name": reader.name, "unsubscribe_url": url}
    site = one_line(values["site"])
    text, page = ISSUE.text, ISSUE.html
    for field, value in values.items():
        text = text.replace(f"{{{{ reader.{field} }}}}", one_line(value))
        shown = "" if field == "site" and site and not site.startswith(("https:", "mailto:")) else value
        page = page.replace(f"{{{{ reader.{field} }}}}", html.escape(one_line(shown)))
    return text, page


def test_every_readers_message_parses_back_to_their_copy_of_the_issue():
    list_ = readers()
    personalizer = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns)
    for reader in list_.readers:
        message = personalizer.message(reader)
        assert message.size == len(message.data) == sum(map(len, message.chunks))
        lines = message.data.split(b"\r\n")
        assert lines[-1] == b"" and b"\n" not in message.data.replace(b"\r\n", b"")
        assert max(map(len, lines)) <= 998
        assert message.dot_safe and not any(line.startswith(b".") for line in lines)
        email = parsed(message.data)
        assert email.defects == []
        assert email["To"].addresses[0].addr_spec == reader.email
        assert display_name(message.data) == one_line(reader.name)[:200].strip()
        assert email["From"] == "The Test Weekly <weekly@example.com>"
        text, page = expected_parts(personalizer, reader)
        assert email.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
        assert email.get_body(("html",)).get_content().replace("\r\n", "\n") == page


def test_the_issue_is_shared_by_every_message_not_copied():
    list_ = readers(3)
    personalizer = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns)
    first, second = (personalizer.message(one) for one in list_.readers[:2])
    # The issue's chunks (every other one) are the same objects in both: 40 KB of HTML, not copies.
    assert all(a is b for a, b in zip(first.chunks[0::2], second.chunks[0::2], strict=True))
    assert sum(map(len, first.chunks[0::2])) > len(ISSUE.html) + len(ISSUE.text)


def test_the_outbox_variant_is_the_same_message_with_local_line_ends():
    list_ = readers(20, seed=7)
    smtp = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns)
    local = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns, line_end="\n")
    for reader in list_.readers:
        crlf, lf = smtp.message(reader), local.message(reader)
        assert lf.line_end == b"\n" and b"\r" not in lf.data
        # The same bytes but for the line ends and the multipart boundary (random per Personalizer).
        boundary_smtp = parsed(crlf.data).get_boundary()
        boundary_local = parsed(lf.data).get_boundary()
        assert lf.data.replace(boundary_local.encode(), boundary_smtp.encode()) == crlf.data.replace(
            b"\r\n", b"\n"
        ).replace(parsed(crlf.data)["Date"].encode(), parsed(lf.data)["Date"].encode())
    with pytest.raises(ValueError, match="line_end"):
        Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns, line_end="\r")


def test_smtp_dot_stuffs_exactly_the_messages_that_need_it():
    needs = Message("ann@example.com", b"Subject: x\r\n\r\n.line\r\nplain\r\n..two\r\n")
    assert not needs.dot_safe
    (stuffed,) = _as_smtp_carries_it(needs)
    assert stuffed == b"Subject: x\r\n\r\n..line\r\nplain\r\n...two\r\n"
    safe = Message("ann@example.com", (b"Subject: x\r\n\r\n", b"body\r\n"), True)
    assert _as_smtp_carries_it(safe) is safe.chunks  # nothing to stuff: sent as it is
    # A message in local line ends (made for the outbox) goes out in CRLF, stuffed when it needs.
    local = Message("ann@example.com", b"Subject: x\n\n.dot\nend\n", line_end=b"\n")
    assert _as_smtp_carries_it(local) == (b"Subject: x\r\n\r\n..dot\r\nend\r\n",)


def test_values_that_would_start_a_line_with_a_dot_arrive_whole(tmp_path: Path):
    """Through a real server, which takes SMTP's dot-stuffing off: every dot a reader's value
    puts at the start of a line is still there once the message is decoded."""
    list_ = readers(12, seed=3)
    personalizer = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns)
    # Built once: a message built again a second later has another Date.
    messages = {reader.email: personalizer.message(reader) for reader in list_.readers}
    with SmtpServer() as server:
        session = SmtpTransport("127.0.0.1", server.port, security="none").open()
        try:
            for reader in list_.readers:
                assert session.send("weekly@example.com", messages[reader.email]).startswith("250")
        finally:
            session.close()
        received = {one.rcpt_tos[0]: one.data for one in server.received}
    for reader in list_.readers:
        message = messages[reader.email]
        assert received[reader.email] == message.data  # byte for byte, the stuffing undone
        text, _ = expected_parts(personalizer, reader)
        assert parsed(received[reader.email]).get_body(("plain",)).get_content().replace("\r\n", "\n") == text


def test_chunks_larger_than_the_socket_buffer_and_many_of_them_arrive_in_order():
    """sendmsg takes part of the chunks when the socket's buffer is full: the rest follows."""
    chunks = tuple(bytes([65 + n % 26]) * (1 + n * 37 % 5000) for n in range(1500))  # > IOV_MAX
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    got = bytearray()

    def drain() -> None:
        while data := right.recv(7000):
            got.extend(data)

    reader = threading.Thread(target=drain)
    reader.start()

    class Client:  # what _send_chunks needs of smtplib.SMTP
        sock = left

        def close(self) -> None:
            left.close()

    try:
        left.settimeout(10)
        _send_chunks(Client(), chunks, sum(map(len, chunks)))  # type: ignore[arg-type]
    finally:
        left.shutdown(socket.SHUT_WR)
        reader.join(10)
        left.close()
        right.close()
    assert bytes(got) == b"".join(chunks)


def test_the_outbox_writes_each_message_whole_into_new(tmp_path: Path):
    list_ = readers(5, seed=11)
    local = Personalizer(ISSUE, MASTHEAD, SECRET, columns=list_.columns, line_end="\n")
    session = OutboxTransport(tmp_path / "outbox").open()
    replies = [session.send("weekly@example.com", local.message(reader)) for reader in list_.readers]
    # One made for SMTP (CRLF) is written with local line ends too.
    smtp = Personalizer(make_issue(), MASTHEAD, SECRET).message(list_.readers[0])
    replies.append(session.send("weekly@example.com", smtp))
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 6 == len(set(replies))
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    written = {path.name: path.read_bytes() for path in files}
    for reply in replies:
        assert reply.removeprefix("saved as ") in written
    for data in written.values():
        assert b"\r\n" not in data
        assert parsed(data).defects == []
