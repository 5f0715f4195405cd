"""Personalizing a rendered issue into one reader's message bytes: headers, MIME, the unsubscribe token.

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

import base64
import contextlib
import hashlib
import hmac
import html
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from digestcli.config import (
    check_list_id,
    check_unsubscribe_mailto,
    check_unsubscribe_url,
    derived_list_id,
    split_address,
)
from digestcli.draft import SLOT
from digestcli.errors import ConfigError, InputError
from digestcli.render import RenderedIssue
from digestcli.state import make_state_dir
from digestcli.subscribers import address_key, one_line

SECRET_ENV = "DIGEST_SECRET"
SECRET_FILE = "secret"
# Fields every reader has whatever the CSV holds.
BUILTIN_FIELDS = frozenset({"email", "name", "unsubscribe_url"})
# Of those, the ones digest makes or checks itself: a link to them needs no guard.
_DIGESTS_OWN = frozenset({"email", "unsubscribe_url"})
_CRLF = "\r\n"
_SOFT_BREAK = "=\r\n"
_QP_WIDTH = 75  # characters before a soft break; with the `=` a line is 76, as RFC 2045 asks
# Bytes quoted-printable may leave as they are: printable ASCII except `=`; space and tab too,
# except at the end of a line (handled in _qp_line).
_QP_TABLE = {b: f"={b:02X}" for b in range(256) if not (33 <= b <= 126 and b != 61) and b not in (9, 32)}
# Characters of a per-reader value kept in a header (a name in To:, a slot in the subject): a CSV
# cell can hold anything, and a subject of 10,000 characters helps no one.
MAX_HEADER_VALUE = 200
_FOLD_AT = 78  # RFC 5322 §2.1.1: a line SHOULD be no longer than 78 characters...
_MAX_LINE = 998  # ...and MUST be no longer than 998
_TOKEN_SIG_BYTES = 16
# RFC 2047 "Q" encoding, restricted to what §5(3) allows in a phrase (a display name), so one
# table serves every header: letters, digits and !*+-/ as they are, space as `_`.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE = {b: "_" if b == 32 else f"={b:02X}" for b in range(256) if b not in _Q_SAFE}
_WORD_FRAME = len("=?utf-8?q??=")  # an encoded word is at most 75 characters, this frame included
# The end of HTML just before a link's target: `<a href="`.
_LINK_START = re.compile(r"""\bhref\s*=\s*["']?\s*$""", re.IGNORECASE)
# What a link a reader's own value makes may open (the same as a draft's own links may).
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
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


# -- unsubscribe tokens and the secret that signs them -------------------------------------------


def load_secret(state_dir: str | Path) -> bytes:
    """The key that signs unsubscribe tokens: $DIGEST_SECRET, else the one kept in the workspace
    state, made there the first time (a send needs one; see ``read_secret`` to only look)."""
    found = read_secret(state_dir)
    if found is not None:
        return found
    path = Path(state_dir) / SECRET_FILE
    make_state_dir(path.parent)
    # Written whole under a temporary name, then linked into place: two sends starting at once
    # both end up with the first one's secret, and no one ever reads a half-written file.
    try:
        fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise ConfigError(
            f"cannot make the unsubscribe secret: {exc.strerror or exc}",
            where=str(path),
            hint=f"check that {path.parent} is a folder you can write, or set {SECRET_ENV}",
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process got there first: its secret it is
        except OSError:  # a file system without hard links: the next best, O_EXCL
            with contextlib.suppress(FileExistsError):
                _write_exclusively(path, Path(temporary).read_bytes())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    found = read_secret(state_dir)
    if found is None:
        raise ConfigError("the unsubscribe secret vanished as it was made", where=str(path))
    return found


def read_secret(state_dir: str | Path) -> bytes | None:
    """The signing key if there is one ($DIGEST_SECRET or the workspace's); never makes one."""
    from_env = os.environ.get(SECRET_ENV, "")
    if from_env:
        return from_env.encode("utf-8")
    path = Path(state_dir) / SECRET_FILE
    for wait in (0.0, 0.01, 0.05, 0.2):  # an O_EXCL writer (no hard links) may be mid-write
        if wait:
            time.sleep(wait)
        try:
            secret = path.read_bytes().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the unsubscribe secret: {exc.strerror or exc}", where=str(path)
            ) from None
        if secret:
            return secret
    raise ConfigError(
        "the unsubscribe secret is empty",
        where=str(path),
        hint="delete the file; digest makes a new one (links in issues already sent stop working)",
    )


def address_for_token(token: str, state_dir: str | Path) -> str | None:
    """``digest unsubscribe TOKEN``: the address the token names, or None when it is not one this
    workspace signed (also when the workspace has no secret yet: then it signed nothing)."""
    secret = read_secret(state_dir)
    return None if secret is None else verify_token(token, secret)


def token_in(pasted: str, unsubscribe_url: str) -> str:
    """The token in what an editor pastes from an unsubscribe request: the link as a mail client
    shows it (in <...>, broken over lines, with other query parameters, tracking added), the
    ``mailto:`` of List-Unsubscribe, or the bare token."""
    text = "".join(pasted.split()).strip("<>\"'")
    if text.lower().startswith("mailto:"):
        subject = parse_qs(urlsplit(text).query).get("subject", [""])[0]
        return subject.split()[-1] if subject.split() else ""
    if "://" not in text:
        return text
    template = urlsplit(unsubscribe_url)
    # The query parameter the setting puts the token in (`?token={token}`), wherever it is now.
    for key, values in parse_qs(template.query, keep_blank_values=True).items():
        if any("{token}" in value for value in values):
            found = parse_qs(urlsplit(text).query).get(key)
            if found:
                return found[0]
    # Or in the path (`https://example.org/u/{token}`).
    before, _, after = template.path.partition("{token}")
    if before or after:
        match = re.search(re.escape(before) + r"([^/?#]+)" + re.escape(after), urlsplit(text).path)
        if match:
            return unquote(match.group(1))
    return ""


def _write_exclusively(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)


def make_token(address: str, secret: bytes) -> str:
    """A URL-safe token naming ``address``, signed so that nobody can unsubscribe someone else."""
    key = address_key(address).encode("utf-8")
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


def header(name: str, value: str) -> str:
    """One header field ending in CRLF: folded at spaces to 78 characters where it can be, in RFC
    2047 encoded words when it is not ASCII or a word would not fit a line. Unfolded and decoded,
    it gives back ``value`` exactly (after ``one_line``)."""
    value = one_line(value)
    if value.isascii() and "=?" not in value:  # "=?" could be read as the start of an encoded word
        if len(name) + 2 + len(value) <= _FOLD_AT:
            return f"{name}: {value}{_CRLF}"
        folded = _fold(f"{name}:", value)
        if folded is not None:
            return folded
    return f"{name}: {(_CRLF + ' ').join(_encoded_words(value, _FOLD_AT - len(name) - 2))}{_CRLF}"


def address_header(name: str, display: str, address: str) -> str:
    """`To: Display Name <address>`, the name quoted or RFC 2047-encoded as it needs, cut to
    MAX_HEADER_VALUE characters, and the address on a line of its own when both do not fit one."""
    display = one_line(display)[:MAX_HEADER_VALUE].strip()
    address = one_line(address)
    if not display:
        return f"{name}: {address}{_CRLF}"
    if display.isascii() and "=?" not in display:
        shown = formataddr((display, address)).removesuffix(f" <{address}>")
        words = [shown]
    else:
        words = _encoded_words(display, _FOLD_AT - len(name) - 2)
    line = f"{name}: {' '.join(words)} <{address}>"
    if len(line) <= _FOLD_AT:
        return line + _CRLF
    return f"{name}: {(_CRLF + ' ').join(words)}{_CRLF} <{address}>{_CRLF}"


def _fold(start: str, value: str) -> str | None:
    """``start`` and ``value`` folded at spaces (CRLF put before one, so unfolding restores it);
    None if a word is too long for any line."""
    lines = []
    line = start
    for word in value.split(" "):
        # Fold before this word unless the line holds nothing yet (no line may be only spaces).
        if len(line) + 1 + len(word) > _FOLD_AT and line.strip() and line != start:
            lines.append(line)
            line = ""
        line += " " + word
        if len(line) > _MAX_LINE:
            return None
    lines.append(line)
    return _CRLF.join(lines) + _CRLF


def _encoded_words(text: str, first: int = 75) -> list[str]:
    """``text`` as RFC 2047 encoded words of at most 75 characters (the first at most ``first``,
    to fit the line it starts), each of whole characters so each decodes on its own, in "Q" or
    "B" encoding whichever is shorter. Readers drop the space between two encoded words."""
    raw = text.encode("utf-8")
    quoted = raw.decode("latin-1").translate(_Q_TABLE)
    room = min(first, 75) - _WORD_FRAME
    if len(quoted) <= -(-len(raw) // 3) * 4:
        if len(quoted) <= room:
            return [f"=?utf-8?q?{quoted}?="]  # the common case: a name, a short subject
        words, word = [], ""
        for char in text:
            code = char.encode("utf-8").decode("latin-1").translate(_Q_TABLE)
            if len(word) + len(code) > room:
                words.append(f"=?utf-8?q?{word}?=")
                word, room = "", 75 - _WORD_FRAME
            word += code
        words.append(f"=?utf-8?q?{word}?=")
        return words
    chunks: list[bytes] = []
    chunk = b""
    room = room // 4 * 3  # bytes that fit in base64
    for char in text:
        piece = char.encode("utf-8")
        if len(chunk) + len(piece) > room:
            chunks.append(chunk)
            chunk, room = b"", (75 - _WORD_FRAME) // 4 * 3
        chunk += piece
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks]


def _list_unsubscribe(url: str, mailto: str) -> str:
    """List-Unsubscribe (RFC 2369), one entry a line. A URL too long for a line is folded inside
    its brackets, where RFC 2369 §2 says whitespace is ignored; it takes an unusual URL and an
    unusual address to need it."""
    text = f"List-Unsubscribe: <{url}>" + ("," if mailto else "")
    lines = [text[:_MAX_LINE]]
    rest = text[_MAX_LINE:]
    while rest:  # every cut falls inside the brackets or just after them: whitespace is ignored
        lines.append(" " + rest[: _MAX_LINE - 1])
        rest = rest[_MAX_LINE - 1 :]
    if mailto:
        lines.append(f" <{mailto}>")
    return _CRLF.join(lines) + _CRLF


# -- the per-issue precompiled message -----------------------------------------------------------


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
        head.append(f"Date: {self._now()}{_CRLF}")
        if message_id is None:
            digest = hmac.new(self.secret, f"{self.issue.issue_id}\0{address.lower()}".encode(), "sha256")
            message_id = f"<{self._id_part}.{digest.hexdigest()[:24]}@{self.domain}>"
        head.append(f"Message-ID: {message_id}{_CRLF}")
        mailto = f"mailto:{self._mailto}?subject=unsubscribe%20{token}" if self._mailto else ""
        head.append(_list_unsubscribe(url, mailto))
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
    if value.isascii() and len(value) <= _QP_WIDTH and "=" not in value and not value.startswith("."):
        return value  # the common case: a plain name or address is its own encoding
    return quoted_printable(value)
