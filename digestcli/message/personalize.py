"""Personalizing a rendered issue into one reader's message bytes, once per issue the slow part.

A send builds thousands of messages from one RenderedIssue, so the work is split in two. Once per
issue, ``Personalizer`` cuts the HTML and text parts at their ``{{ reader.* }}`` slots, encodes every
literal chunk as quoted-printable and pre-encodes the headers and MIME framing that never change.
Per reader, only the few personal values are encoded and everything is joined into bytes: no
template, no ``email.message`` object, no re-encoding of 40 KB of HTML.

Quoted-printable lets the literal chunks be encoded ahead of time: each value is put on a line of
its own between two soft line breaks (``=`` at the end of a line, which decoders drop), so the
chunks around it never change, whatever its length. Every body line is kept under 77 characters
and every header line under 999 octets (folded, RFC 2047 encoded words where a word is too long),
so any transport can carry the bytes as they are; no line starts with a dot either, so SMTP need not
dot-stuff them (``Message.dot_safe``).
"""

from __future__ import annotations

import hmac
import html
import re
import secrets
import time
from collections.abc import Iterable, Mapping
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
from digestcli.message.mime import (
    CRLF,
    MAX_HEADER_VALUE,
    QP_WIDTH,
    SOFT_BREAK,
    address_header,
    header,
    list_unsubscribe,
    quoted_printable,
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


@dataclass(frozen=True)
class Message:
    recipient: str  # the envelope recipient (RCPT TO)
    data: bytes  # the whole message, CRLF line ends
    # No line of ``data`` starts with "." (SMTP's dot-stuffing would change nothing): true of every
    # message a Personalizer builds, whose body is quoted-printable (a leading dot is `=2E`) and
    # whose header lines start with a field name or, folded, a space.
    dot_safe: bool = False


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
        # The settings' own checks (config.py), for a Masthead made in code as much as from a file.
        self._url = check_unsubscribe_url(masthead.unsubscribe_url)
        sender_name, self.sender = split_address(masthead.sender, "newsletter.from")
        self.domain = self.sender.rpartition("@")[2].lower()
        self._mailto = check_unsubscribe_mailto(masthead.unsubscribe_mailto)
        self._id_part = re.sub(r"[^A-Za-z0-9.-]+", "-", issue.issue_id).strip("-.") or "issue"

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
        self._top = "".join(top)
        self._tail = "".join(tail)
        self._before_text = f"--{boundary}{CRLF}{part_head.format('plain')}"
        self._before_html = f"{CRLF}--{boundary}{CRLF}{part_head.format('html')}"
        self._end = f"{CRLF}--{boundary}--{CRLF}"
        self._text = _Part(issue.text)
        self._html = _Part(issue.html, html=True)
        self._date = (0, "")
        self._left_out: list[tuple[str, str, str]] = []  # appended from several threads: atomic

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
            head.append(header("Subject", SLOT.sub(lambda m: _capped(raw[m.group(1)]), self._subject)))
        head.append(f"Date: {self._now()}{CRLF}")
        if message_id is None:
            digest = hmac.new(self.secret, f"{self.issue.issue_id}\0{address.lower()}".encode(), "sha256")
            message_id = f"<{self._id_part}.{digest.hexdigest()[:24]}@{self.domain}>"
        head.append(f"Message-ID: {message_id}{CRLF}")
        mailto = f"mailto:{self._mailto}?subject=unsubscribe%20{token}" if self._mailto else ""
        head.append(list_unsubscribe(url, mailto))
        head.append(self._tail)

        text_values = {f: _qp_value(one_line(raw[f])) for f in self._text.fields}
        if self._html.link_targets:
            self._guard_links(raw, address)
        html_values = {f: _qp_value(html.escape(one_line(raw[f]))) for f in self._html.fields}
        body = (
            self._before_text
            + self._text.fill(text_values)
            + self._before_html
            + self._html.fill(html_values)
            + self._end
        )
        # Headers are ASCII by construction (RFC 2047), the body by quoted-printable.
        return Message(address, ("".join(head) + body).encode("ascii"), dot_safe=True)

    def _guard_links(self, values: dict[str, str], address: str) -> None:
        """A reader's value that starts a link's target must open only what a draft's own links
        may (http, https, mailto): `javascript:` from a CSV cell must not become a live link.
        Such a value is left out of the HTML part (the text part shows it as text) and noted."""
        for field in self._html.link_targets:
            value = one_line(values[field])
            scheme = _SCHEME.match(value)
            if value and not (scheme and scheme.group(1).lower() in LINK_SCHEMES):
                self._left_out.append((address, field, value))
                values[field] = ""

    def links_left_out(self) -> list[tuple[str, str, str]]:
        """(address, field, value) for every link target left out so far (see ``_guard_links``)."""
        return list(self._left_out)

    def _now(self) -> str:
        # formatdate costs more than the rest of the header block; a send lasts many seconds.
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(second, localtime=True))
        return self._date[1]


def _capped(value: str) -> str:
    return one_line(value)[:MAX_HEADER_VALUE].strip()


def _qp_value(value: str) -> str:
    if value.isascii() and len(value) <= QP_WIDTH and "=" not in value and not value.startswith("."):
        return value  # the common case: a plain name or address is its own encoding
    return quoted_printable(value)
