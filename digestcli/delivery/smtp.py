"""The SMTP transport: sessions on a relay (SES, Postmark, Mailgun, Postfix...), each reused for many
messages, with TLS that is verified and never silently dropped.

smtplib does the connection, STARTTLS and AUTH; the transaction itself is driven command by command
(``sendmail`` would hide which phase failed) so that every failure can be placed on the right side
of the line between "the data cannot have arrived" and "it may have".
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
from collections.abc import Mapping

from digestcli.config import Config
from digestcli.delivery.transport import ConnectFailure, PermanentFailure, TemporaryFailure, UncertainDelivery
from digestcli.errors import ConfigError, DeliveryError
from digestcli.message import Message

PASSWORD_ENV = "DIGEST_SMTP_PASSWORD"
SECURITIES = ("starttls", "ssl", "none")
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
        ssl_context: ssl.SSLContext | None = None,
    ):
        if security not in SECURITIES:
            raise ConfigError(f"smtp.security is {security!r}; choose one of {', '.join(SECURITIES)}")
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
        # ssl.create_default_context: the system's CAs, hostname checked. Tests pass their own CA.
        self._context = ssl_context or ssl.create_default_context()
        # socket.getfqdn() (smtplib's default) can stall on a reverse DNS lookup; this cannot.
        hostname = socket.gethostname()
        self._local_name = hostname if "." in hostname else ""

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

    def open(self) -> SmtpSession:
        where = self.name
        try:
            return SmtpSession(self._handshake())
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
            raise ConnectFailure(_describe(exc)) from None

    def _handshake(self) -> smtplib.SMTP:
        # Given the host up front, smtplib connects at once and keeps the name for TLS's hostname
        # check (SNI and certificate), for SMTP_SSL as for STARTTLS.
        client: smtplib.SMTP
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(
                self.host, self.port, local_hostname="localhost", timeout=self.timeout, context=self._context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, local_hostname="localhost", timeout=self.timeout)
        try:
            assert client.sock is not None
            # EHLO wants our name; without a dotted hostname, an address literal is the honest one.
            client.local_hostname = self._local_name or f"[{client.sock.getsockname()[0]}]"
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


class SmtpSession:
    """One authenticated SMTP connection, carrying one message at a time."""

    def __init__(self, client: smtplib.SMTP):
        self._client = client
        self.usable = True
        # PIPELINING (RFC 2920): MAIL, RCPT and DATA go out together, one round trip instead of three.
        self._pipelining = client.has_extn("pipelining")
        self._size = client.has_extn("size")

    def send(self, sender: str, message: Message) -> str:
        client = self._client
        mail = f"MAIL FROM:<{sender}>" + (f" SIZE={len(message.data)}" if self._size else "")
        commands = (mail, f"RCPT TO:<{message.recipient}>", "DATA")
        replies: list[tuple[int, bytes]] = []
        try:
            if self._pipelining:
                client.send("".join(f"{command}\r\n" for command in commands))
                replies = [client.getreply() for _ in commands]
            else:
                for command in commands:
                    client.putcmd(command)
                    replies.append(client.getreply())
                    if replies[-1][0] >= 400:
                        break
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            raise TemporaryFailure(f"connection lost before the data was sent ({_describe(exc)})") from None
        refusal = next(((code, text) for code, text in replies[:2] if code not in (250, 251)), None)
        if refusal is None and replies[-1][0] != 354:
            refusal = replies[-1]
        if refusal is not None:
            if replies[-1][0] == 354:
                # A server that accepted DATA after refusing the recipient (allowed when pipelining)
                # must be given an empty message's end; it has no one to deliver it to.
                self._end_empty_data()
            self._reset()
            raise _refused(*refusal, self)

        # From here the data is on its way. The end-of-data mark is its last five bytes, and a server
        # keeps nothing without it: if sendall fails, the mark did not leave, and trying again is safe.
        # Once it has left, only the reply tells us, and a lost reply leaves the outcome unknown.
        payload = message.data if message.transparent else _dot_stuffed(message.data)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        try:
            client.send(payload + b".\r\n")
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            raise TemporaryFailure(f"connection lost while sending the data ({_describe(exc)})") from None
        try:
            code, text = client.getreply()
        except smtplib.SMTPServerDisconnected as exc:
            self.usable = False
            raise UncertainDelivery(f"no reply after the data ({_describe(exc)})") from None
        if code == 250:
            return _reply(code, text)
        if code < 400 or code >= 600:
            self.usable = False
            raise UncertainDelivery(f"unexpected reply after the data: {_reply(code, text)}")
        raise _refused(code, text, self)

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
            self._client.quit()
        except (smtplib.SMTPException, OSError):
            self._client.close()
        self.usable = False

    def abort(self) -> None:
        sock = self._client.sock
        if sock is not None:
            # socket.socket's own shutdown, not SSLSocket's: that one also tears down the TLS
            # object, which the thread blocked in recv() is still using.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: a line starting with "." gets another, so it cannot end the data."""
    return (b"." if data.startswith(b".") else b"") + data.replace(b"\n.", b"\n..")


def _refused(code: int, text: bytes, session: SmtpSession) -> TemporaryFailure | PermanentFailure:
    reply = _reply(code, text)
    if code == 421 or not 400 <= code < 600:
        session.usable = False  # 421: the server is closing the connection
    return PermanentFailure(reply) if 500 <= code < 600 else TemporaryFailure(reply)


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__
