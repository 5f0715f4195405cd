"""The SMTP transport: sessions on a relay (SES, Postmark, Mailgun, Postfix...), each reused for many
messages, with TLS that is verified and never silently dropped.

smtplib does the connection, STARTTLS and AUTH; the transaction itself is driven command by command
(``sendmail`` would hide which phase failed) so that every failure can be placed on the right side
of the line between "the data cannot have arrived" and "it may have".

With PIPELINING (RFC 2920), a message costs one round trip: MAIL, RCPT and DATA go out together, and
once the caller has said which message comes next (``announce``), that message's MAIL, RCPT and
DATA go out with the end of this one's data (§3.1: message content may start a group). Their
replies are read by the next ``send``; nothing of the next message's data leaves before its own
``before_data``.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from digestcli.config import SMTP_SECURITIES, Config
from digestcli.delivery.transport import (
    ConnectFailure,
    Hangup,
    PermanentFailure,
    SenderRefused,
    StaleSession,
    TemporaryFailure,
    UncertainDelivery,
)
from digestcli.errors import ConfigError, DeliveryError
from digestcli.message import Message

PASSWORD_ENV = "DIGEST_SMTP_PASSWORD"
# RFC 5321 §4.5.3.2.6: wait 10 minutes for the reply to the end of the data. A server may check the
# message (spam, viruses) before it answers, and giving up early makes the outcome unknown.
DATA_TIMEOUT = 600.0
_CLEAR_TEXT_HINT = (
    'digest does not send mail or a password in the clear; use security = "ssl" for port 465,'
    ' or "none" only for a relay you trust on this machine'
)


class SmtpTransport:
    """Settings for sessions on one SMTP server; ``open()`` makes a ready one."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str = "",
        password: str | None = None,
        connections: int = 1,
        timeout: float = 30.0,
        data_timeout: float = DATA_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if security not in SMTP_SECURITIES:
            raise ConfigError(f"smtp.security is {security!r}; choose one of {', '.join(SMTP_SECURITIES)}")
        if username and not password:
            raise DeliveryError(
                f"{PASSWORD_ENV} is not set, and [smtp] username is {username!r}",
                where=f"{host}:{port}",
                hint=f"export {PASSWORD_ENV} with the password for {username}",
            )
        self.host, self.port = host, port
        self.name = f"{host}:{port}"
        self.security = security
        self.username, self._password = username, password or ""
        self.connections = max(1, connections)
        self.timeout = timeout
        self.data_timeout = max(timeout, data_timeout)  # for the reply to the data only
        # ssl.create_default_context: the system's CAs, hostname checked. Tests pass their own CA.
        self._context = ssl_context or ssl.create_default_context()
        # socket.getfqdn() (smtplib's default) can stall on a reverse DNS lookup; this cannot.
        hostname = socket.gethostname()
        self._local_name = hostname if "." in hostname else ""
        self._greeted = False  # a session was opened: the server has answered as SMTP before

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        environ: Mapping[str, str] = os.environ,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SmtpTransport:
        smtp, delivery = config.smtp, config.delivery
        return cls(
            smtp.host,
            smtp.port,
            security=smtp.security,
            username=smtp.username,
            password=environ.get(PASSWORD_ENV),
            connections=delivery.connections,
            timeout=delivery.timeout,
            ssl_context=ssl_context,
        )

    def open(self, hangup: Hangup | None = None) -> SmtpSession:
        try:
            client = self._connected(hangup)
        except BaseException:
            if hangup is not None:
                hangup.release()
            raise
        self._greeted = True
        return SmtpSession(client, self.timeout, self.data_timeout, hangup)

    def _connected(self, hangup: Hangup | None) -> smtplib.SMTP:
        """A client through the handshake, or the failure as ConnectFailure or DeliveryError."""
        where = self.name
        try:
            return self._handshake(hangup)
        except _NoGreeting:
            said = f"did not answer as an SMTP server (no greeting in {self.timeout:g} s)"
            if self._greeted:  # it did before: a server too busy to answer, for now
                raise ConnectFailure(f"{where} {said}") from None
            # Never: the wrong port or the wrong kind of server, which waiting will not mend.
            hint = "check [smtp] host and port"
            if self.port == 465 and self.security != "ssl":
                hint = 'port 465 speaks TLS from the first byte: set [smtp] security = "ssl"'
            raise DeliveryError(said, where=where, hint=hint) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"the server's certificate cannot be trusted: {exc.verify_message}",
                where=where,
                hint="check [smtp] host (it must match the certificate)",
            ) from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:  # the connection dropped mid-handshake
            raise ConnectFailure(f"connection lost during the TLS handshake ({exc.reason or exc})") from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS failed: {exc.reason or exc}",
                where=where,
                hint='port 465 wants security = "ssl", port 587 "starttls"',
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ConnectFailure(_reply(exc.smtp_code, exc.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectFailure(_failure_text(exc)) from None

    def _handshake(self, hangup: Hangup | None) -> smtplib.SMTP:
        # Given the host up front, smtplib connects at once and keeps the name for TLS's hostname
        # check (SNI and certificate), for SMTP_SSL as for STARTTLS. The hangup sees the socket first.
        client: smtplib.SMTP
        if self.security == "ssl":
            client = _TlsClient(
                self.host,
                self.port,
                hangup=hangup,
                local_hostname="localhost",
                timeout=self.timeout,
                context=self._context,
            )
        else:
            client = _Client(
                self.host, self.port, hangup=hangup, local_hostname="localhost", timeout=self.timeout
            )
        try:
            assert client.sock is not None
            # EHLO wants our name; without a dotted hostname, an address literal is the honest one.
            client.local_hostname = self._local_name or _address_literal(client.sock.getsockname()[0])
            self._hello(client)
            if self.security == "starttls":
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        'the server does not offer STARTTLS, and [smtp] security is "starttls"',
                        where=self.name,
                        hint=_CLEAR_TEXT_HINT,
                    )
                client.starttls(context=self._context)
                self._hello(client)
            if self.username:
                self._login(client)
        except BaseException:
            client.close()
            raise
        return client

    @staticmethod
    def _hello(client: smtplib.SMTP) -> None:
        code, text = client.ehlo()
        if code != 250:
            code, text = client.helo()
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)

    def _login(self, client: smtplib.SMTP) -> None:
        where = self.name
        # The one place a password goes out: on TLS, or in the clear only when the editor said so.
        if self.security != "none" and not isinstance(client.sock, ssl.SSLSocket):
            raise DeliveryError(
                "refusing to log in over an unencrypted connection", where=where, hint=_CLEAR_TEXT_HINT
            )
        if not client.has_extn("auth"):
            raise DeliveryError(
                f"the server does not offer AUTH, and [smtp] username is {self.username!r}",
                where=where,
                hint="remove [smtp] username if this server needs no login",
            )
        # One mechanism, not smtplib.login()'s try-them-all: a wrong password then costs one
        # refusal, not one per mechanism (relays lock accounts out on repeated failures).
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m in offered), None)
        if mechanism is None:
            raise DeliveryError(
                f"no login method in common (the server offers {' '.join(offered) or 'none'})", where=where
            )
        client.user, client.password = self.username, self._password
        try:
            client.auth(mechanism, getattr(client, f"auth_{mechanism.lower().replace('-', '_')}"))
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise  # a temporary refusal: try again like any failed connection
            refusal = _reply(exc.smtp_code, exc.smtp_error)
            raise DeliveryError(
                f"the server refused the login for {self.username!r}: {refusal}",
                where=where,
                hint=f"check [smtp] username and {PASSWORD_ENV}",
            ) from None


class _Client(smtplib.SMTP):
    """smtplib's client, with its socket shown to a Hangup before it connects."""

    def __init__(self, host: str, port: int, *, hangup: Hangup | None, **options: Any):
        self.hangup = hangup  # before smtplib connects, in its __init__
        super().__init__(host, port, **options)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = _open_socket(host, port, timeout, self.hangup)
        self.reached = True
        return sock

    def connect(
        self, host: str = "localhost", port: int = 0, source_address: Any = None
    ) -> tuple[int, bytes]:
        self.reached = False  # the TCP connection is made; what follows is the greeting's wait
        try:
            return super().connect(host, port, source_address)
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            # smtplib reports a greeting that never came as a disconnect "...: timed out".
            if self.reached and _failure_text(exc) == "timed out":
                raise _NoGreeting() from None
            raise


class _NoGreeting(Exception):
    """Connected, but no greeting came in time."""


class _TlsClient(smtplib.SMTP_SSL, _Client):
    """SMTP_SSL's TLS from the first byte, over _Client's socket (SMTP_SSL wraps what it returns)."""

    def __init__(self, host: str, port: int, *, hangup: Hangup | None, **options: Any):
        self.hangup = hangup
        smtplib.SMTP_SSL.__init__(self, host, port, **options)


def _open_socket(host: str, port: int, timeout: float, hangup: Hangup | None) -> socket.socket:
    """socket.create_connection, with each socket shown to ``hangup`` before it connects."""
    errors: list[OSError] = []
    for family, kind, protocol, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, protocol)
        try:
            if hangup is not None:
                hangup.watch(sock)
            sock.settimeout(timeout)
            sock.connect(address)
            # Whole commands are written at once: none waits for an acknowledgment (Nagle) to go,
            # such as the next message's commands written after a TLS record of data.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            errors.append(exc)
        except BaseException:
            sock.close()
            raise
    raise errors[0] if errors else OSError(f"no address found for {host}")


def _address_literal(address: str) -> str:
    """Our address as an EHLO address literal (RFC 5321 §4.1.3): [192.0.2.1], [IPv6:2001:db8::1]."""
    address = address.partition("%")[0]  # a link-local zone (fe80::1%eth0) is ours alone
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


class SmtpSession:
    """One authenticated SMTP connection, carrying one message at a time."""

    def __init__(
        self,
        client: smtplib.SMTP,
        timeout: float = 30.0,
        data_timeout: float = DATA_TIMEOUT,
        hangup: Hangup | None = None,
    ):
        self._client = client
        self._timeout = timeout
        self._data_timeout = max(timeout, data_timeout)
        self._hangup = hangup
        self.usable = True
        self._reused = False  # has carried a transaction: the server may have dropped it since
        # PIPELINING (RFC 2920): MAIL, RCPT and DATA go out together, one round trip instead of three.
        self._pipelining = client.has_extn("pipelining")
        self._size = client.has_extn("size")
        # The message said to come next, and the one whose commands went out with the last data,
        # their replies not read yet.
        self._announced: _Carried | None = None
        self._ahead: _Carried | None = None

    def announce(self, sender: str, message: Message) -> None:
        """The message the caller sends next on this session, if it can tell (with PIPELINING):
        its MAIL, RCPT and DATA go out with the end of the next data sent, a round trip saved.
        If the caller then sends another message instead, it calls ``withdraw`` first."""
        if self._pipelining:
            self._announced = self._carried(sender, message)

    def withdraw(self) -> None:
        """The message announced will not be sent next after all (the last one is to be tried
        again). If its commands went out, the server may have said 354 to its DATA and be waiting
        for data that will not come: only a new connection gets out of that, so this one is closed
        (nothing of the message went out). Called before a wait, not to leave the server waiting."""
        self._announced = None
        if self._ahead is not None:
            self._ahead = None
            self._hang_up()

    def _hang_up(self) -> None:
        """End the connection now, mid-transaction: shut down, not only closed, since the Hangup
        holds a duplicate of the socket that would keep it open until the session is closed."""
        self.usable = False
        sock = self._client.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._client.close()

    def _carried(self, sender: str, message: Message) -> _Carried:
        chunks = _as_smtp_carries_it(message)
        size = message.size if chunks is message.chunks else sum(map(len, chunks))
        mail = f"MAIL FROM:<{sender}>" + (f" SIZE={size}" if self._size else "")
        commands = f"{mail}\r\nRCPT TO:<{message.recipient}>\r\nDATA\r\n".encode("ascii")
        return _Carried(sender, message, chunks, size, commands)

    def send(self, sender: str, message: Message, before_data: Callable[[], None] | None = None) -> str:
        client = self._client
        reused, self._reused = self._reused, True
        ahead, self._ahead = self._ahead, None
        announced, self._announced = self._announced, None  # good for this send only
        if ahead is not None and (ahead.sender != sender or ahead.message is not message):
            # Not withdrawn: the connection waits for another message's data (see withdraw).
            self._hang_up()
            raise StaleSession("the connection was left waiting for another message's data")
        carried = ahead or self._carried(sender, message)
        chunks, size = carried.chunks, carried.size
        replies: list[tuple[int, bytes]] = []
        try:
            if self._pipelining:
                if ahead is None:  # else its commands went out with the last data
                    client.send(carried.commands)
                for _ in range(3):
                    replies.append(_read_reply(client))  # one by one: those before a drop count
            else:
                for command in carried.commands.decode("ascii").split("\r\n")[:3]:
                    client.putcmd(command)
                    replies.append(client.getreply())
                    if replies[-1][0] >= 400:
                        break
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            if reused and not replies:
                raise StaleSession(f"the server had closed the connection ({_failure_text(exc)})") from None
            if not (reused and replies[0][0] == 421):
                raise TemporaryFailure(
                    f"connection lost before the data was sent ({_failure_text(exc)})"
                ) from None
        if reused and replies[0][0] == 421:  # a server's goodbye to an idle connection, read late
            self.usable = False
            raise StaleSession(f"the server had closed the connection: {_reply(*replies[0])}")
        # Which command was refused: 0 MAIL, 1 RCPT, 2 DATA.
        refused = next((n for n, (code, _) in enumerate(replies[:2]) if code not in (250, 251)), None)
        if refused is None and replies[-1][0] != 354:
            refused = len(replies) - 1
        if refused is not None:
            if replies[-1][0] == 354:
                # A server that accepted DATA after refusing the recipient (allowed when pipelining)
                # must be given an empty message's end; it has no one to deliver it to.
                self._end_empty_data()
            self._reset()
            code, text = replies[refused]
            if refused == 0 and 500 <= code < 600:
                raise SenderRefused(_reply(code, text))
            raise _refused(code, text, self, at_recipient=refused == 1, recipient=message.recipient)

        # The server took the recipient and waits for the data: from here it may leave. The caller
        # records that first (the ledger's `sending`); a kill before this point left nothing out.
        # The end-of-data mark is the data's last five bytes, and a server keeps nothing without it:
        # if sendall fails, the mark did not leave, and trying again is safe. Once it has left, only
        # the reply tells us, and a lost reply leaves the outcome unknown.
        if before_data is not None:
            try:
                before_data()
            except BaseException:
                self.usable = False  # mid-transaction, waiting for data that will not come
                raise
        last = chunks[-1] if len(chunks[-1]) >= 2 else b"".join(chunks[-2:])
        end = b".\r\n" if last.endswith(b"\r\n") else b"\r\n.\r\n"
        ended = size + len(end)  # the bytes up to the end of the data (its mark)
        try:
            if announced is None or announced.message is message:
                _send_chunks(client, (*chunks, end), ended)
            else:  # the next message's commands after the end of this one's data, in one group
                self._ahead = announced
                _send_chunks(
                    client, (*chunks, end, announced.commands), ended + len(announced.commands), ended
                )
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            if isinstance(exc, _CutShort) and exc.sent >= ended:  # the mark left, the next commands not
                raise UncertainDelivery(
                    f"connection lost after the data was sent ({_failure_text(exc)})"
                ) from None
            raise TemporaryFailure(f"connection lost while sending the data ({_failure_text(exc)})") from None
        try:
            code, text = self._final_reply()
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            raise UncertainDelivery(f"no reply after the data ({_failure_text(exc)})") from None
        if code == 250:
            return _reply(code, text)
        if code < 400 or code >= 600:
            self.usable = False
            raise UncertainDelivery(f"unexpected reply after the data: {_reply(code, text)}")
        raise _refused(code, text, self)

    def _final_reply(self) -> tuple[int, bytes]:
        # The reply to the data has a longer wait than the rest (RFC 5321 §4.5.3.2.6).
        sock = self._client.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        sock.settimeout(self._data_timeout)
        try:
            return _read_reply(self._client)
        finally:
            if self._client.sock is not None:
                self._client.sock.settimeout(self._timeout)

    def _end_empty_data(self) -> None:
        try:
            self._client.send(b".\r\n")
            self._client.getreply()
        except smtplib.SMTPServerDisconnected:
            self.usable = False

    def _reset(self) -> None:
        if not self.usable:
            return
        try:
            code, _ = self._client.rset()
            self.usable = code == 250
        except smtplib.SMTPServerDisconnected:
            self.usable = False

    def close(self) -> None:
        try:
            if self.usable and self._ahead is None:  # else the server may wait for data: a QUIT would be it
                self._client.quit()
            else:  # mid-transaction or gone: a QUIT would only wait for a reply that may not come
                self._client.close()
        except (smtplib.SMTPException, OSError):
            self._client.close()
        self.usable = False
        if self._hangup is not None:
            self._hangup.release()


class _Carried(NamedTuple):
    """A message as a session sends it: its envelope sender, the data as SMTP carries it (its
    size), and its MAIL, RCPT and DATA commands."""

    sender: str
    message: Message
    chunks: tuple[bytes, ...]
    size: int
    commands: bytes


def _as_smtp_carries_it(message: Message) -> tuple[bytes, ...]:
    """The message's chunks with CRLF line ends, dot-stuffed unless it has no line to stuff."""
    if message.dot_safe and message.line_end == b"\r\n":
        return message.chunks
    data = message.data
    if message.line_end != b"\r\n":
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return (data if message.dot_safe else _dot_stuffed(data),)


class _CutShort(smtplib.SMTPServerDisconnected):
    """The connection failed while sending: ``sent`` bytes had been taken by the socket."""

    def __init__(self, sent: int):
        super().__init__("Server not connected")
        self.sent = sent


def _send_chunks(client: smtplib.SMTP, chunks: tuple[bytes, ...], size: int, mark: int = 0) -> None:
    """``client.send`` of the chunks joined (``size`` bytes), without joining them: one sendmsg
    writes them all from where they are (most of them the issue's own, shared by every message).
    A failure raises _CutShort with the bytes the socket had taken, so that the caller can tell
    whether the data's end went out. TLS cannot gather, and its send takes all or reports none:
    it gets the chunks joined, in two writes when ``mark`` (a byte count) must be told from the
    rest."""
    sock = client.sock
    if sock is None:
        raise _CutShort(0)
    sent = 0
    try:
        if isinstance(sock, ssl.SSLSocket):
            data = memoryview(b"".join(chunks))
            for part in (data[:mark], data[mark:]) if mark else (data,):
                sock.sendall(part)
                sent += len(part)
            return
        sent = sock.sendmsg(chunks[:_MOST_CHUNKS])
        if sent == size:
            return  # nearly always: the socket took it all at once
        views = [memoryview(chunk) for chunk in chunks if chunk]
        done = sent
        while True:
            while views and done >= len(views[0]):
                done -= len(views.pop(0))
            if not views:
                return
            if done:
                views[0] = views[0][done:]
            done = sock.sendmsg(views[:_MOST_CHUNKS])
            sent += done
    except OSError:
        client.close()  # as smtplib's own send does
        raise _CutShort(sent) from None


_MOST_CHUNKS = 512  # per sendmsg; Linux takes up to 1,024 (IOV_MAX)


def _dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line starting with "." gets another, so it cannot end the data."""
    # Digest's own messages never need it, so look first: sre finds "\n." in 40 KB in a third of
    # the time bytes.replace takes to find nothing (it scans the same way as bytes.find).
    if not (data.startswith(b".") or _LINE_STARTING_WITH_A_DOT.search(data)):
        return data
    return (b"." if data.startswith(b".") else b"") + data.replace(b"\n.", b"\n..")


_LINE_STARTING_WITH_A_DOT = re.compile(rb"\n\.")
# RFC 3463 enhanced status codes about the recipient's address (X.1.*) or mailbox (X.2.*).
_ABOUT_THE_MAILBOX = re.compile(r"[45]\.[12]\.\d{1,3}\b")
_ENHANCED_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\b")


_MAX_REPLY_LINE = 8192  # smtplib's limit on a reply line (its _MAXLINE)


def _read_reply(client: smtplib.SMTP) -> tuple[int, bytes]:
    """``client.getreply()``, the same reply and the same errors, read with less work: a message
    takes four replies. It reads from smtplib's own buffered file, so that smtplib's commands
    (RSET, QUIT) that follow find the stream where they expect it."""
    file = client.file
    if file is None or client.debuglevel:
        return client.getreply()  # the first reply on a connection makes the file
    lines = []
    while True:
        try:
            line = file.readline(_MAX_REPLY_LINE + 1)
        except OSError as exc:
            client.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
        if not line:
            client.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAX_REPLY_LINE:
            client.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        try:
            code = int(line[:3])
        except ValueError:
            return -1, b"\n".join(lines)
        if line[3:4] != b"-":
            return code, lines[0] if len(lines) == 1 else b"\n".join(lines)


def _refused(
    code: int, text: bytes, session: SmtpSession, *, at_recipient: bool = False, recipient: str = ""
) -> TemporaryFailure | PermanentFailure:
    reply = _reply(code, text)
    if code == 421 or not 400 <= code < 600:
        session.usable = False  # 421: the server is closing the connection
    if not 500 <= code < 600:
        return TemporaryFailure(reply)
    # A refusal at RCPT is about the reader when its status says so or it has none (a plain "550 no
    # such user"), or when it names the reader ("550 5.7.1 <ann@example.org>: Access denied"). A
    # policy status (5.7.x) with no name in it (SES's "5.7.1 Email address is not verified") may be
    # about the sender or the account: the send loop decides after a few in a row.
    status = reply[4:].lstrip()[:10]
    about_mailbox = bool(_ABOUT_THE_MAILBOX.match(status) or not _ENHANCED_STATUS.match(status))
    names_reader = bool(recipient) and recipient.lower() in reply.lower()
    personal = at_recipient and (about_mailbox or names_reader)
    return PermanentFailure(
        reply, personal=personal, at_recipient=at_recipient, policy=personal and not about_mailbox
    )


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__
