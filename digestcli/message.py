"""Personalizing a rendered issue into one reader's message bytes: headers, MIME, the unsubscribe token.

A send builds thousands of messages from one RenderedIssue, so the work is split in two. Once per
issue, ``Personalizer`` cuts the HTML and text parts at their ``{{ reader.* }}`` slots, encodes every
literal chunk as quoted-printable and pre-encodes the headers and MIME framing that never change.
Per reader, only the few personal values are encoded and everything is joined into bytes: no
template, no ``email.message`` object, no re-encoding of 40 KB of HTML.

Quoted-printable lets the literal chunks be encoded ahead of time: each value is put on a line of
its own between two soft line breaks (``=`` at the end of a line, which decoders drop), so the
chunks around it never change, whatever its length. Every encoded line is kept under 76
characters and no line ever starts with ``.``, so the bytes need no SMTP dot-stuffing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.charset import Charset
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Protocol

from digestcli.draft import SLOT
from digestcli.errors import ConfigError, InputError
from digestcli.render import RenderedIssue

SECRET_ENV = "DIGEST_SECRET"
SECRET_FILE = "secret"
# Fields every reader has whatever the CSV holds.
BUILTIN_FIELDS = frozenset({"email", "name", "unsubscribe_url"})
_CRLF = "\r\n"
_SOFT_BREAK = "=\r\n"
_QP_WIDTH = 75  # characters before a soft break; with the `=` a line is 76, as RFC 2045 asks
# Bytes quoted-printable may leave as they are: printable ASCII except `=`; space and tab too,
# except at the end of a line (handled in _qp_line).
_QP_TABLE = {b: f"={b:02X}" for b in range(256) if not (33 <= b <= 126 and b != 61) and b not in (9, 32)}
_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_MAX_NAME = 200  # characters of a display name kept in To: (a header line must stay under 998)
_TOKEN_SIG_BYTES = 16
_UTF8 = Charset("utf-8")


class Reader(Protocol):
    """What a message needs of a reader (``subscribers.Subscriber`` is one)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Masthead:
    """The newsletter's identity in every message's headers (from ``[newsletter]``)."""

    sender: str  # `Name <address>` or a bare address
    unsubscribe_url: str  # https URL holding `{token}`
    title: str = ""
    reply_to: str = ""
    list_id: str = ""  # derived from the sender's address when empty
    unsubscribe_mailto: str = ""


# -- unsubscribe tokens and the secret that signs them -------------------------------------------


def load_secret(state_dir: str | Path) -> bytes:
    """The key that signs unsubscribe tokens: $DIGEST_SECRET, else one made once and kept in state."""
    from_env = os.environ.get(SECRET_ENV, "")
    if from_env:
        return from_env.encode("utf-8")
    path = Path(state_dir) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two sends starting at once must not each write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="ascii").strip()
        if not secret:
            raise ConfigError(
                "the unsubscribe secret is empty", where=str(path), hint="delete the file"
            ) from None
        return secret.encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="ascii").strip().encode("ascii")


def make_token(address: str, secret: bytes) -> str:
    """A URL-safe token naming ``address``, signed so that nobody can unsubscribe someone else."""
    key = address.strip().lower().encode("utf-8")
    return f"{_b64(key)}.{_b64(_sign(key, secret))}"


def verify_token(token: str, secret: bytes) -> str | None:
    """The address a token was made for, or None when it is malformed or not signed by ``secret``."""
    encoded, _, signature = token.strip().partition(".")
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        address = key.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    if "@" not in address or not hmac.compare_digest(given, _sign(key, secret)):
        return None
    return address


def _sign(key: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe\0" + key, hashlib.sha256).digest()[:_TOKEN_SIG_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- quoted-printable, line by line ---------------------------------------------------------------


def quoted_printable(text: str) -> str:
    """Encode text (any newlines) as quoted-printable with CRLF line ends (RFC 2045 §6.7).

    Differs from binascii.b2a_qp in what the splicing needs: every line, the last one included,
    leaves room for a soft break; no line starts with `.`; and trailing space is always encoded.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CRLF.join(_SOFT_BREAK.join(_qp_line(line)) for line in text.split("\n"))


def _qp_line(line: str) -> list[str]:
    encoded = line.encode("utf-8").decode("latin-1").translate(_QP_TABLE)
    if encoded[-1:] in (" ", "\t"):
        encoded = f"{encoded[:-1]}={ord(encoded[-1]):02X}"
    pieces = []
    while True:
        if encoded[:1] == ".":
            # A line starting with `.` would need SMTP dot-stuffing; `=2E` decodes to the same.
            encoded = "=2E" + encoded[1:]
        if len(encoded) <= _QP_WIDTH:
            pieces.append(encoded)
            return pieces
        cut = _QP_WIDTH
        escape = encoded.rfind("=", cut - 2, cut)  # never split an `=XX` across lines
        if escape != -1:
            cut = escape
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]


# -- headers ------------------------------------------------------------------------------------------


def one_line(value: str) -> str:
    """A value safe for a header: line breaks and control characters become one space."""
    return _ONE_LINE.sub(" ", value).strip()


def header(name: str, value: str) -> str:
    """One header field, RFC 2047-encoded when it is not ASCII, folded, ending in CRLF."""
    value = one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= 78:
        return f"{name}: {value}{_CRLF}"
    if value.isascii():
        return f"{name}: {Header(value, 'us-ascii', header_name=name).encode(linesep=_CRLF)}{_CRLF}"
    return f"{name}: {_encoded_words(name, value)}{_CRLF}"


def address_header(name: str, display: str, address: str) -> str:
    """`To: Display Name <address>` with the name quoted or RFC 2047-encoded as it needs."""
    display = one_line(display)[:_MAX_NAME]
    address = one_line(address)
    if not display:
        return f"{name}: {address}{_CRLF}"
    if display.isascii():
        return f"{name}: {formataddr((display, address))}{_CRLF}"
    return f"{name}: {_encoded_words(name, display)} <{address}>{_CRLF}"


def _encoded_words(name: str, text: str) -> str:
    """RFC 2047 encoded words for non-ASCII text, folded when one word (75 characters) is not enough."""
    word = _UTF8.header_encode(text)
    if len(word) <= 75:
        return word  # the common case, at a tenth of Header's cost
    return Header(text, "utf-8", header_name=name).encode(linesep=_CRLF)


def _split_address(value: str, what: str) -> tuple[str, str]:
    display, address = parseaddr(value)
    if "@" not in address or not address.isascii():
        raise ConfigError(f"newsletter.{what} is not an email address: {value!r}", where="digest.toml")
    return display, address


# -- the per-issue precompiled message -----------------------------------------------------------


@dataclass(frozen=True)
class Message:
    recipient: str  # the envelope recipient (RCPT TO)
    data: bytes  # the whole message, CRLF line ends
    # True when no line starts with ".", so SMTP needs no dot-stuffing (a 30 µs scan of 40 KB).
    transparent: bool = False


class _Part:
    """One text part cut at its slots: encoded literal pieces with the field names between them."""

    def __init__(self, source: str):
        pieces = SLOT.split(source)  # literal, field, literal, field, ..., literal
        literals = [quoted_printable(text) for text in pieces[0::2]]
        self.fields: tuple[str, ...] = tuple(pieces[1::2])
        # Each value sits between soft breaks, so the literals never change whatever it holds.
        last = len(literals) - 1
        self.literals = tuple(
            (_SOFT_BREAK if i else "") + text + (_SOFT_BREAK if i < last else "")
            for i, text in enumerate(literals)
        )

    def fill(self, values: Mapping[str, str]) -> str:
        if not self.fields:
            return self.literals[0]
        out = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            out.append(values[field])
            out.append(literal)
        return "".join(out)


class Personalizer:
    """A rendered issue made ready to become one message per reader, cheaply.

    ``columns`` are the fields the reader list provides; a slot with no source is an error here,
    before the first message is built, rather than a blank in ten thousand inboxes.
    """

    def __init__(
        self,
        issue: RenderedIssue,
        masthead: Masthead,
        secret: bytes,
        *,
        columns: Iterable[str] = (),
        subject_prefix: str = "",
        where: str | None = None,
    ):
        self.issue = issue
        self.secret = secret
        available = BUILTIN_FIELDS | set(columns)
        missing = sorted(issue.slots() - available)
        if missing:
            slots = ", ".join(f"{{{{ reader.{name} }}}}" for name in missing)
            raise InputError(
                f"the issue uses {slots} but the reader list has no such column",
                where=where,
                hint=f"add the column or change the template; columns: {', '.join(sorted(available))}",
            )
        if "{token}" not in masthead.unsubscribe_url or not masthead.unsubscribe_url.startswith("https://"):
            raise ConfigError(
                f"newsletter.unsubscribe_url is {masthead.unsubscribe_url!r}",
                where="digest.toml",
                hint="it must be an https:// URL holding {token}, where each reader's token goes",
            )
        sender_name, self.sender = _split_address(masthead.sender, "from")
        self.domain = self.sender.rpartition("@")[2].lower()
        self._url = masthead.unsubscribe_url
        self._mailto = masthead.unsubscribe_mailto.removeprefix("mailto:").strip()
        self._id_part = re.sub(r"[^A-Za-z0-9.-]+", "-", issue.issue_id).strip("-.") or "issue"

        self._subject = subject_prefix + issue.subject
        # A subject without slots is the same for everyone: encode it once.
        self._fixed_subject = "" if SLOT.search(self._subject) else header("Subject", self._subject)

        list_id = masthead.list_id.strip().strip("<>") or self._derived_list_id()
        title = masthead.title or sender_name
        # The header block is fixed text around the few per-reader fields (see message()).
        top = [address_header("From", sender_name, self.sender)]
        if masthead.reply_to:
            top.append(address_header("Reply-To", *_split_address(masthead.reply_to, "reply_to")))
        # `=_` cannot occur in quoted-printable text, so the boundary can never collide with it.
        boundary = f"=_digest_{secrets.token_hex(12)}"
        tail = [
            address_header("List-Id", title, list_id) if title else f"List-Id: <{list_id}>{_CRLF}",
            f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{_CRLF}",
            f"MIME-Version: 1.0{_CRLF}",
            f'Content-Type: multipart/alternative; boundary="{boundary}"{_CRLF}{_CRLF}',
        ]
        part_head = (
            f'Content-Type: text/{{}}; charset="utf-8"{_CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{_CRLF}{_CRLF}"
        )
        self._top = "".join(top)
        self._tail = "".join(tail)
        self._before_text = f"--{boundary}{_CRLF}{part_head.format('plain')}"
        self._before_html = f"{_CRLF}--{boundary}{_CRLF}{part_head.format('html')}"
        self._end = f"{_CRLF}--{boundary}--{_CRLF}"
        self._text = _Part(issue.text)
        self._html = _Part(issue.html)
        self._date = (0, "")

    def _derived_list_id(self) -> str:
        local = re.sub(r"[^A-Za-z0-9-]+", "-", self.sender.partition("@")[0]).strip("-") or "list"
        return f"{local}.{self.domain}"

    def unsubscribe_url(self, address: str) -> str:
        return self._url.replace("{token}", make_token(address, self.secret))

    def message(self, reader: Reader, *, message_id: str | None = None) -> Message:
        """The reader's whole message as bytes. ``message_id`` defaults to one stable per issue
        and reader, so a copy sent again after an uncertain outcome is recognizable as the same."""
        address = one_line(reader.email)
        token = make_token(address, self.secret)
        url = self._url.replace("{token}", token)
        raw = dict(reader.fields)
        raw["email"] = address
        raw["name"] = reader.name
        raw["unsubscribe_url"] = url

        head = [self._top, address_header("To", reader.name, address)]
        if self._fixed_subject:
            head.append(self._fixed_subject)
        else:
            head.append(header("Subject", SLOT.sub(lambda m: raw[m.group(1)], self._subject)))
        head.append(f"Date: {self._now()}{_CRLF}")
        if message_id is None:
            digest = hmac.new(self.secret, f"{self.issue.issue_id}\0{address.lower()}".encode(), "sha256")
            message_id = f"<{self._id_part}.{digest.hexdigest()[:24]}@{self.domain}>"
        head.append(f"Message-ID: {message_id}{_CRLF}")
        unsubscribe = f"<{url}>"
        if self._mailto:
            unsubscribe += f",{_CRLF} <mailto:{self._mailto}?subject=unsubscribe%20{token}>"
        head.append(f"List-Unsubscribe: {unsubscribe}{_CRLF}")
        head.append(self._tail)

        text_values = {f: _qp_value(one_line(raw[f])) for f in self._text.fields}
        html_values = {f: _qp_value(html.escape(one_line(raw[f]))) for f in self._html.fields}
        body = (
            self._before_text
            + self._text.fill(text_values)
            + self._before_html
            + self._html.fill(html_values)
            + self._end
        )
        # Headers are ASCII by construction (RFC 2047), the body by quoted-printable.
        return Message(address, ("".join(head) + body).encode("ascii"), transparent=True)

    def _now(self) -> str:
        # formatdate costs more than the rest of the header block; a send lasts many seconds.
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(second, localtime=True))
        return self._date[1]


def _qp_value(value: str) -> str:
    if value.isascii() and len(value) <= _QP_WIDTH and "=" not in value and not value.startswith("."):
        return value  # the common case: a plain name or address is its own encoding
    return quoted_printable(value)
