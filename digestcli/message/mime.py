"""The message's encodings: quoted-printable bodies whose lines can be spliced, and header fields
folded to RFC 5322's limits with RFC 2047 encoded words where text is not plain ASCII."""

from __future__ import annotations

import base64
import re
from email.utils import formataddr

from digestcli.subscribers import one_line

CRLF = "\r\n"
SOFT_BREAK = "=\r\n"
QP_WIDTH = 75  # characters before a soft break; with the `=` a line is 76, as RFC 2045 asks
# Bytes quoted-printable may leave as they are: printable ASCII except `=`; space and tab too,
# except at the end of a line (handled in _qp_line).
_QP_TABLE = {b: f"={b:02X}" for b in range(256) if not (33 <= b <= 126 and b != 61) and b not in (9, 32)}
# Characters of a per-reader value kept in a header (a name in To:, a slot in the subject): a CSV
# cell can hold anything, and a subject of 10,000 characters helps no one.
MAX_HEADER_VALUE = 200
_FOLD_AT = 78  # RFC 5322 §2.1.1: a line SHOULD be no longer than 78 characters...
_MAX_LINE = 998  # ...and MUST be no longer than 998
# RFC 2047 "Q" encoding, restricted to what §5(3) allows in a phrase (a display name), so one
# table serves every header: letters, digits and !*+-/ as they are, space as `_`.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE = {b: "_" if b == 32 else f"={b:02X}" for b in range(256) if b not in _Q_SAFE}
# RFC 5322 specials in a display name: formataddr quotes a name holding one (email.utils' rule).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_WORD_FRAME = len("=?utf-8?q??=")  # an encoded word is at most 75 characters, this frame included


def quoted_printable(text: str) -> str:
    """Encode text (any newlines) as quoted-printable with CRLF line ends (RFC 2045 §6.7).

    Differs from binascii.b2a_qp in what the splicing needs: every line, the last one included,
    leaves room for a soft break; no line starts with `.`; and trailing space is always encoded.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CRLF.join(SOFT_BREAK.join(_qp_line(line)) for line in text.split("\n"))


def quoted_printable_line(line: str) -> str:
    """One line of text (no line breaks) as quoted-printable: ``quoted_printable(line)``, sooner
    for the plain ASCII of nearly every value a reader's message holds (a name, a link)."""
    if line.isascii() and line.isprintable():  # then only `=` needs encoding
        return SOFT_BREAK.join(_qp_pieces(line.replace("=", "=3D")))
    return quoted_printable(line)


def _qp_line(line: str) -> list[str]:
    return _qp_pieces(line.encode("utf-8").decode("latin-1").translate(_QP_TABLE))


def _qp_pieces(encoded: str) -> list[str]:
    """An encoded line cut into pieces that fit a line each (joined by soft breaks)."""
    if encoded[-1:] in (" ", "\t"):
        encoded = f"{encoded[:-1]}={ord(encoded[-1]):02X}"
    pieces = []
    while True:
        if encoded[:1] == ".":
            # A line starting with `.` would need SMTP dot-stuffing; `=2E` decodes to the same.
            encoded = "=2E" + encoded[1:]
        if len(encoded) <= QP_WIDTH:
            pieces.append(encoded)
            return pieces
        cut = QP_WIDTH
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
            return f"{name}: {value}{CRLF}"
        folded = _fold_words(f"{name}:", value)
        if folded is not None:
            return folded
    return f"{name}: {(CRLF + ' ').join(_encoded_words(value, _FOLD_AT - len(name) - 2))}{CRLF}"


def address_header(name: str, display: str, address: str) -> str:
    """`To: Display Name <address>`, the name quoted or RFC 2047-encoded as it needs, cut to
    MAX_HEADER_VALUE characters, and the address on a line of its own when both do not fit one."""
    display = one_line(display)[:MAX_HEADER_VALUE].strip()
    address = one_line(address)
    if not display:
        return f"{name}: {address}{CRLF}"
    if display.isascii() and "=?" not in display:
        if _SPECIALS.search(display):  # quoted, as formataddr does
            words = [formataddr((display, address)).removesuffix(f" <{address}>")]
        else:
            words = [display]  # the common case: formataddr would leave it as it is
    else:
        words = _encoded_words(display, _FOLD_AT - len(name) - 2)
    line = f"{name}: {' '.join(words)} <{address}>"
    if len(line) <= _FOLD_AT:
        return line + CRLF
    return f"{name}: {(CRLF + ' ').join(words)}{CRLF} <{address}>{CRLF}"


def _fold_words(start: str, value: str) -> str | None:
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
    return CRLF.join(lines) + CRLF


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
    room = room // 4 * 3  # bytes that fit in base64
    if len(raw) <= room:
        return [f"=?utf-8?b?{base64.b64encode(raw).decode('ascii')}?="]  # the common case: a name
    chunks: list[bytes] = []
    chunk = b""
    for char in text:
        piece = char.encode("utf-8")
        if len(chunk) + len(piece) > room:
            chunks.append(chunk)
            chunk, room = b"", (75 - _WORD_FRAME) // 4 * 3
        chunk += piece
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=" for chunk in chunks]


def list_unsubscribe(url: str, mailto: str) -> str:
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
    return CRLF.join(lines) + CRLF
