"""A real SMTP server on 127.0.0.1 for the delivery tests (aiosmtpd, in the test process), with a
script saying how it misbehaves for which recipient; plus the workspace and issue those tests mail.

Script actions, one per attempt at a recipient (after the list runs out, the server accepts):
  "550" / "451"       refuse at RCPT with that code
  "rcpt:554 5.7.1 x"  refuse at RCPT with that reply
  "421"               answer 421 at RCPT and close the connection
  "drop"              close the connection at RCPT, without a reply
  "data:552"          take the data, then answer that code instead of 250 ("data:554 text": that reply)
  "drop-after-data"   take the data (it counts as received), then close without a reply
  "close-after-data"  take the data, answer 250, then close the connection (an idle timeout, early)
``mail_refusal`` refuses every MAIL FROM with that reply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from digestcli.config import Config, DeliveryConfig, NewsletterConfig, SmtpConfig, Workspace
from digestcli.render import RenderedIssue

SENDER = "The Test Weekly <weekly@example.com>"
UNSUBSCRIBE_URL = "https://example.com/unsubscribe?token={token}"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = 0.0  # time.monotonic() when the data was in
    started: float = 0.0  # time.monotonic() when its MAIL FROM came: when the client began it

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class ScriptedHandler:
    script: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)  # usernames that tried AUTH
    pipelining: bool = False
    data_delay: float = 0.0  # seconds before answering each message (to catch a send mid-way)
    mail_refusal: str = ""  # the reply to every MAIL FROM, when set
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self, address: str) -> str:
        with self._lock:
            actions = self.script.get(address.lower())
            return actions.pop(0) if actions else "ok"

    def recipients(self) -> Counter[str]:
        with self._lock:
            return Counter(rcpt.lower() for message in self.received for rcpt in message.rcpt_tos)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]):
        if self.mail_refusal:
            return self.mail_refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.__dict__["started"] = time.monotonic()
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]):
        action = self._next(address)
        if action in ("550", "451"):
            return f"{action} {'5.1.1' if action == '550' else '4.3.0'} scripted refusal for <{address}>"
        if action.startswith("rcpt:"):
            return action.removeprefix("rcpt:")
        if action == "421":
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply is out
            return "421 4.3.2 scripted: closing the connection"
        if action == "drop":
            server.transport.close()  # the reply below never leaves
            return "250 OK"
        envelope.rcpt_tos.append(address)
        envelope.__dict__.setdefault("actions", []).append(action)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any):
        actions = envelope.__dict__.get("actions", [])
        refusal = next((a.partition(":")[2] for a in actions if a.startswith("data:")), "")
        if refusal:
            return refusal if " " in refusal else f"{refusal} scripted refusal after the data"
        # Received as soon as the data is in, like a real server that queues before it answers:
        # a client that dies before the 250 has still mailed this reader.
        with self._lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content),
                    time.monotonic(),
                    envelope.__dict__.get("started", 0.0),
                )
            )
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if "drop-after-data" in actions:
            server.transport.close()
        if "close-after-data" in actions:
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply is out
        return "250 2.0.0 queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """``with SmtpServer() as server:`` an aiosmtpd server on 127.0.0.1:``server.port``."""

    def __init__(
        self,
        handler: ScriptedHandler | None = None,
        *,
        starttls: ssl.SSLContext | None = None,  # offer STARTTLS with this server context
        implicit_tls: ssl.SSLContext | None = None,  # TLS from the first byte (port 465 style)
        logins: dict[str, str] | None = None,  # username -> password accepted by AUTH
        auth_require_tls: bool = True,
    ):
        self.handler = handler or ScriptedHandler()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if implicit_tls is not None:
            kwargs["ssl_context"] = implicit_tls
        if logins is not None:
            kwargs["authenticator"] = self._authenticator(logins)
            kwargs["auth_require_tls"] = auth_require_tls
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticator(self, logins: dict[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user, password = data.login.decode(), data.password.decode()
            self.handler.logins.append(user)
            return AuthResult(success=logins.get(user) == password, handled=False)

        return check

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.handler.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server got {len(self.handler.received)} messages, not {count}")
            time.sleep(0.005)


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key; the certificate is its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "digest test server")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- what the tests mail ---------------------------------------------------------------------------


def make_issue(
    subject: str = "The Test Weekly #7: three stories", issue_id: str = "2026-11-20-test"
) -> RenderedIssue:
    story = f"<p>{'Lorem ipsum. ' * 20}</p>"
    html = (
        "<!doctype html>\n<html><body>\n"
        '<p style="margin:0">Hello {{ reader.name }},</p>\n'
        + "".join(
            f'<h2 style="font-family:Georgia">{n}. A story worth reading — café</h2>\n{story}\n'
            for n in range(1, 4)
        )
        + '<p><a href="{{ reader.unsubscribe_url }}">Unsubscribe</a> ({{ reader.email }})</p>\n'
        "</body></html>\n"
    )
    text = (
        "Hello {{ reader.name }},\n\n"
        + "".join(f"{n}. A story worth reading — café\n\n{'Lorem ipsum. ' * 20}\n\n" for n in range(1, 4))
        + "Unsubscribe: {{ reader.unsubscribe_url }}\n"
    )
    return RenderedIssue(issue_id, "The Test Weekly", subject, "Three stories.", html, text)


def make_workspace(
    root: Path,
    *,
    port: int = 25,
    transport: str = "smtp",
    security: str = "none",
    username: str = "",
    connections: int = 2,
    retries: int = 3,
    max_connection_failures: int = 3,
    timeout: float = 5.0,
    rate: float = 0.0,
    mailto: str = "unsubscribe@example.com",
) -> Workspace:
    config = Config(
        newsletter=NewsletterConfig(
            title="The Test Weekly",
            sender=SENDER,
            reply_to="editor@example.com",
            unsubscribe_url=UNSUBSCRIBE_URL,
            unsubscribe_mailto=mailto,
        ),
        delivery=DeliveryConfig(
            transport=transport,
            connections=connections,
            retries=retries,
            max_connection_failures=max_connection_failures,
            timeout=timeout,
            rate=rate,
        ),
        smtp=SmtpConfig(host="127.0.0.1", port=port, security=security, username=username),
    )
    return Workspace(root=root, config=config)


def write_readers(root: Path, count: int, *, extra: str = "") -> list[str]:
    """subscribers.csv with ``count`` readers (plus ``extra`` rows); their addresses."""
    addresses = [f"reader{n:04d}@example.com" for n in range(count)]
    rows = "".join(f"{address},Reader {n}\n" for n, address in enumerate(addresses))
    (root / "subscribers.csv").write_text(f"email,name\n{rows}{extra}", encoding="utf-8")
    return addresses
