"""Personalizing a rendered issue into one reader's message bytes, once per issue the slow part.

A send builds thousands of messages from one RenderedIssue, so the work is split in two. Once per
issue, ``Personalizer`` cuts the HTML and text parts at their ``{{ reader.* }}`` slots, encodes every
literal chunk as quoted-printable and pre-encodes the headers and MIME framing that never change,
as bytes. Per reader, only the few personal values are encoded (a kilobyte of header fields and the
slots' values), and the message is the issue's chunks with the reader's between them: no template,
no ``email.message`` object, no re-encoding or even copying of 40 KB of HTML (``Message.chunks``).

Quoted-printable lets the literal chunks be encoded ahead of time: each value is put on a line of
its own between two soft line breaks (``=`` at the end of a line, which decoders drop), so the
chunks around it never change, whatever its length. Every body line is kept under 77 characters
and every header line under 999 octets (folded, RFC 2047 encoded words where a word is too long),
so any transport can carry the bytes as they are; no line starts with a dot either, so SMTP need not
dot-stuff them (``Message.dot_safe``).
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

from digestcli.config import (
    check_list_id,
    check_unsubscribe_mailto,
    check_unsubscribe_url,
    derived_list_id,
    split_address,
)
from digestcli.draft import LINK_SCHEMES, SLOT  # a reader's link may open what a draft's may
from digestcli.errors import InputError
from digestcli.message.ids import id_part, id_signature
from digestcli.message.mime import (
    CRLF,
    MAX_HEADER_VALUE,
    QP_WIDTH,
    SOFT_BREAK,
    address_header,
    header,
    list_unsubscribe,
    quoted_printable,
    quoted_printable_line,
)
from digestcli.message.tokens import make_token
from digestcli.render import RenderedIssue
from digestcli.subscribers import one_line

# Fields every reader has whatever the CSV holds.
BUILTIN_FIELDS = frozenset({"email", "name", "unsubscribe_url"})
# Of those, the ones digest makes or checks itself: a link to them needs no guard.
_DIGESTS_OWN = frozenset({"email", "unsubscribe_url"})
# The end of HTML just before a link's target: `<a href="`.
_LINK_START = re.compile(r"""\bhref\s*=\s*["']?\s*$""", re.IGNORECASE)
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")


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


class Message:
    """One reader's message: the envelope recipient and the message's bytes.

    The bytes are kept as the chunks they were built from (most of them the issue's own, shared by
    every message), so that a transport can write them out as they are (``chunks``) instead of
    copying 40 KB into one piece first; ``data`` is that one piece, made when asked for.

    ``dot_safe``: no line starts with "." (SMTP's dot-stuffing would change nothing), checked
    where it could happen (the reader's values and header fields); the issue's own parts are
    quoted-printable, where a leading dot is `=2E`. ``line_end``: CRLF, as SMTP carries mail, or
    LF for a transport that stores it as a local file (see ``Personalizer``).
    """

    __slots__ = ("_data", "chunks", "dot_safe", "line_end", "recipient", "size")

    def __init__(
        self,
        recipient: str,
        data: bytes | tuple[bytes, ...],
        dot_safe: bool = False,
        *,
        line_end: bytes = b"\r\n",
        size: int | None = None,  # of the chunks together, when the maker knows it
    ):
        self.recipient = recipient  # the envelope recipient (RCPT TO)
        self.chunks: tuple[bytes, ...] = (data,) if isinstance(data, bytes) else data
        self._data: bytes | None = data if isinstance(data, bytes) else None
        self.size = sum(map(len, self.chunks)) if size is None else size
        self.dot_safe = dot_safe
        self.line_end = line_end

    @property
    def data(self) -> bytes:
        """The whole message in one piece."""
        if self._data is None:
            self._data = b"".join(self.chunks)
        return self._data

    def __repr__(self) -> str:
        return f"Message({self.recipient!r}, {self.size:,} bytes)"


class _Part:
    """One text part cut at its slots: encoded literal pieces with the field names between them.

    ``link_targets``: in an HTML part, the fields that start a link's target (``href="{{ reader.x
    }}"``), where the value decides the link's scheme (see ``Personalizer``'s link guard)."""

    def __init__(self, source: str, *, html: bool = False):
        pieces = SLOT.split(source)  # literal, field, literal, field, ..., literal
        literals = [quoted_printable(text) for text in pieces[0::2]]
        self.fields: tuple[str, ...] = tuple(pieces[1::2])
        self.link_targets: frozenset[str] = frozenset(
            field
            for before, field in zip(pieces[0::2], pieces[1::2], strict=False)
            if html and _LINK_START.search(before) and field not in _DIGESTS_OWN
        )
        # Each value sits between soft breaks, so the literals never change whatever it holds.
        last = len(literals) - 1
        self.literals = tuple(
            (SOFT_BREAK if i else "") + text + (SOFT_BREAK if i < last else "")
            for i, text in enumerate(literals)
        )


class _Layout:
    """A message as fixed bytes with holes between them, laid out once per issue.

    A hole is a number: 0 is the reader's header fields (To ... List-Unsubscribe), 1.. a field's
    value in the text part, then the fields' values in the HTML part. A message's chunks are then
    ``literals[0], hole, literals[1], hole, ..., literals[-1]``, each hole filled.
    """

    def __init__(self) -> None:
        self._pieces: list[bytes | int] = []

    def text(self, text: str) -> None:
        self._pieces.append(text.encode("ascii"))

    def hole(self, number: int) -> None:
        self._pieces.append(number)

    def done(self) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
        literals: list[bytes] = [b""]
        holes: list[int] = []
        for piece in self._pieces:
            if isinstance(piece, bytes):
                literals[-1] += piece
            else:
                holes.append(piece)
                literals.append(b"")
        return tuple(literals), tuple(holes)


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
        line_end: str = CRLF,
    ):
        self.issue = issue
        self.secret = secret
        if line_end not in (CRLF, "\n"):
            raise ValueError(f"line_end must be CRLF or LF, not {line_end!r}")
        # LF for a transport that keeps messages as local files (Maildir): made so once per issue
        # here, and per reader in the few bytes that are the reader's, rather than over 40 KB.
        self._local = line_end == "\n"
        self._line_end = line_end.encode("ascii")
        available = BUILTIN_FIELDS | set(columns)
        missing = sorted(issue.slots() - available)
        if missing:
            slots = ", ".join(f"{{{{ reader.{name} }}}}" for name in missing)
            raise InputError(
                f"the issue uses {slots} but the reader list has no such column",
                where=where,
                hint=f"add the column or change the template; columns: {', '.join(sorted(available))}",
            )
        # The settings' own checks (config.py), for a Masthead made in code as much as from a file.
        self._url = check_unsubscribe_url(masthead.unsubscribe_url)
        self._url_before, _, self._url_after = self._url.partition("{token}")
        sender_name, self.sender = split_address(masthead.sender, "newsletter.from")
        self.domain = self.sender.rpartition("@")[2].lower()
        self._mailto = check_unsubscribe_mailto(masthead.unsubscribe_mailto)
        self._issue_id = issue.issue_id
        self._id_before, self._id_after = f"Message-ID: <{id_part(issue.issue_id)}.", f"@{self.domain}>{CRLF}"

        self._subject = subject_prefix + issue.subject
        # A subject without slots is the same for everyone: encode it once.
        self._fixed_subject = "" if SLOT.search(self._subject) else header("Subject", self._subject)

        list_id = check_list_id(masthead.list_id) or derived_list_id(self.sender)
        title = masthead.title or sender_name
        # The header block is fixed text around the few per-reader fields (see message()).
        top = [address_header("From", sender_name, self.sender)]
        if masthead.reply_to:
            top.append(address_header("Reply-To", *split_address(masthead.reply_to, "newsletter.reply_to")))
        # `=_` cannot occur in quoted-printable text, so the boundary can never collide with it.
        boundary = f"=_digest_{secrets.token_hex(12)}"
        tail = [
            address_header("List-Id", title, list_id) if title else f"List-Id: <{list_id}>{CRLF}",
            f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}",
            f"MIME-Version: 1.0{CRLF}",
            f'Content-Type: multipart/alternative; boundary="{boundary}"{CRLF}{CRLF}',
        ]
        part_head = (
            f'Content-Type: text/{{}}; charset="utf-8"{CRLF}'
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        )
        text, html_part = _Part(issue.text), _Part(issue.html, html=True)
        self._html_links = html_part.link_targets
        # Each field's value is encoded once per reader and part, wherever the part repeats it.
        self._text_fields = tuple(dict.fromkeys(text.fields))
        self._html_fields = tuple(dict.fromkeys(html_part.fields))
        text_hole = {field: 1 + n for n, field in enumerate(self._text_fields)}
        html_hole = {field: 1 + len(text_hole) + n for n, field in enumerate(self._html_fields)}

        # Everything but the reader's values is encoded here, once: the message is then one join.
        layout = _Layout()
        layout.text("".join(top))
        layout.hole(0)  # To, Subject (when personal), Date, Message-ID, List-Unsubscribe
        layout.text("".join(tail))
        for before, part, hole_of in (
            (f"--{boundary}{CRLF}{part_head.format('plain')}", text, text_hole),
            (f"{CRLF}--{boundary}{CRLF}{part_head.format('html')}", html_part, html_hole),
        ):
            layout.text(before + part.literals[0])
            for field, literal in zip(part.fields, part.literals[1:], strict=True):
                layout.hole(hole_of[field])
                layout.text(literal)
        layout.text(f"{CRLF}--{boundary}--{CRLF}")
        self._literals, holes = layout.done()
        if self._local:
            self._literals = tuple(literal.replace(b"\r\n", b"\n") for literal in self._literals)
        self._holes = holes
        self._size = 2 * len(self._literals) - 1
        self._literal_size = sum(map(len, self._literals))
        # Quoted-printable never starts a line with a dot (`=2E`), nor does a header line: only the
        # reader's pieces are looked at before SMTP skips dot-stuffing (Message.dot_safe).
        assert not any(_starts_a_line_with_a_dot(literal) for literal in self._literals)
        self._date = (0, "")
        self._left_out: list[tuple[str, str, str]] = []  # appended from several threads: atomic

    def unsubscribe_url(self, address: str) -> str:
        return self._url_before + make_token(address, self.secret) + self._url_after

    def message(self, reader: Reader, *, message_id: str | None = None) -> Message:
        """The reader's whole message as bytes. ``message_id`` defaults to one stable per issue
        and reader, so a copy sent again after an uncertain outcome is recognizable as the same."""
        address = one_line(reader.email)
        token = make_token(address, self.secret)
        url = self._url_before + token + self._url_after
        name = reader.name
        fields = reader.fields
        # Digest's own values are one line already (the URL is checked printable ASCII, no space).
        own = {"email": address, "unsubscribe_url": url}

        def value(field: str) -> str:
            """A field's value on one line (every value goes through ``one_line``)."""
            found = own.get(field)
            if found is not None:
                return found
            return one_line(name if field == "name" else fields[field])

        head = [address_header("To", name, address)]
        if self._fixed_subject:
            head.append(self._fixed_subject)
        else:
            head.append(header("Subject", SLOT.sub(lambda m: _capped(value(m.group(1))), self._subject)))
        head.append(self._now())
        if message_id is None:
            signature = id_signature(self.secret, self._issue_id, address)
            head.append(f"{self._id_before}{signature}{self._id_after}")
        else:
            head.append(f"Message-ID: {message_id}{CRLF}")
        mailto = f"mailto:{self._mailto}?subject=unsubscribe%20{token}" if self._mailto else ""
        head.append(list_unsubscribe(url, mailto))

        encoded: dict[str, str] = {}  # each value's quoted-printable, made once (a name is in both parts)

        def qp(text: str) -> str:
            found = encoded.get(text)
            if found is None:
                found = encoded[text] = _qp_value(text)
            return found

        values = ["".join(head)]
        values += [qp(value(field)) for field in self._text_fields]
        blanked = self._guard_links(value, address) if self._html_links else ()
        values += ["" if field in blanked else qp(html.escape(value(field))) for field in self._html_fields]
        # Headers are ASCII by construction (RFC 2047), the values by quoted-printable.
        pieces = [piece.encode("ascii") for piece in values]
        if self._local:
            pieces = [piece.replace(b"\r\n", b"\n") for piece in pieces]
        chunks = [b""] * self._size
        chunks[0::2] = self._literals
        chunks[1::2] = filled = [pieces[hole] for hole in self._holes]
        size = self._literal_size + sum(map(len, filled))
        # Each piece starts a line: a "\n" before each finds a dot that starts any of their lines.
        dot_safe = b"\n." not in b"\n" + b"\n".join(pieces)
        return Message(address, tuple(chunks), dot_safe, line_end=self._line_end, size=size)

    def _guard_links(self, value: Callable[[str], str], address: str) -> frozenset[str]:
        """A reader's value that starts a link's target must open only what a draft's own links
        may (http, https, mailto): `javascript:` from a CSV cell must not become a live link.
        Such a value is left out of the HTML part (the text part shows it as text) and noted;
        the fields left out are returned."""
        blanked = []
        for field in self._html_links:
            given = value(field)
            scheme = _SCHEME.match(given)
            if given and not (scheme and scheme.group(1).lower() in LINK_SCHEMES):
                self._left_out.append((address, field, given))
                blanked.append(field)
        return frozenset(blanked)

    def links_left_out(self) -> list[tuple[str, str, str]]:
        """(address, field, value) for every link target left out so far (see ``_guard_links``)."""
        return list(self._left_out)

    def _now(self) -> str:
        # formatdate costs more than the rest of the header block; a send lasts many seconds.
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, f"Date: {formatdate(second, localtime=True)}{CRLF}")
        return self._date[1]


def _starts_a_line_with_a_dot(piece: bytes) -> bool:
    return piece[:1] == b"." or b"\n." in piece


def _capped(value: str) -> str:
    return one_line(value)[:MAX_HEADER_VALUE].strip()


def _qp_value(value: str) -> str:
    if value.isascii() and len(value) <= QP_WIDTH and "=" not in value and not value.startswith("."):
        return value  # the common case: a plain name or address is its own encoding
    return quoted_printable_line(value)  # one_line has made it one line
