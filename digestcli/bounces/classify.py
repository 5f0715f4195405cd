"""Telling what one message in the bounce mailbox is: a hard or soft bounce, a complaint, an
unsubscribe request, an auto-reply, a report too odd to tell, or no report at all.

``classify`` reads a parsed message once and never raises: whatever the MIME, charset or size,
the worst outcome is ``unrecognised`` with a reason. It decides in this order, the first match
winning, because each later test is looser than the ones before it:

1. an ``X-Digest-Unsubscribe`` header (``digest serve`` passing on a one-click unsubscribe);
2. an abuse report (ARF, RFC 5965): a complaint;
3. a delivery status notification (RFC 3464): ``failed`` with a permanent status is hard,
   blocked or soft (below); 4.x.x is soft, and ``delayed`` is a soft bounce marked ``delayed``
   (the server is still trying); a DSN that only says ``delivered`` or ``relayed`` is ignored like
   an auto-reply;
4. a bounce in no standard form (mail from a mailer daemon, ``X-Failed-Recipients``, or a bounce
   subject backed by a bounce's text): hard, blocked or soft only when its SMTP codes or its
   words say so plainly, otherwise ``unrecognised``; the failed addresses come from flufl.bounce
   (GNU Mailman's detectors for the formats found in the wild), then from the text itself;
5. an auto-reply (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, "Out of office", ...): never a
   bounce, even when it quotes one of our messages;
6. an unsubscribe: sent to the unsubscribe address, or whose subject or the sender's own text
   (never the quoted message below it) asks for it; a ``possible-unsubscribe`` when the subject
   or text that asks also names another address, another person or another list ("please
   unsubscribe my wife", "take me off the volunteer list"): a person must read it;
7. anything else is ``other``: the editor's own mail, to be left exactly as it is.

Only a failure that says the address is gone is hard: an enhanced status 5.1.x (but 5.1.7 and
5.1.8, which are about the sender's address), 5.2.1 (mailbox disabled), or 5.0.0 and 5.5.x (and a
bare 5xx reply) whose words say the user is unknown. A refusal about the sending rather than the
reader, 5.7.x (authentication, DMARC, a banned IP), 5.3.x, 5.4.x, 5.6.x, or policy, spam or
blocklist words, is ``blocked``: the editor has something to fix, and the reader did nothing.
Any other permanent failure is soft: counted, and the soft-bounce limit removes an address that
keeps failing. A full mailbox (enhanced status X.2.2, or the words) is soft whatever the class of
its code: RFC 3463 allows 5.2.2 for a mailbox that will empty again, and one full week should not
remove a reader for good. Where one report names several recipients of different severity, the
harder wins for the report (hard, then blocked, then soft) and ``failures`` keeps each
recipient's own verdict.

The report only says what the message says. Whether a named reader, token, Message-ID or List-Id
is one of ours is for the code that acts on the report.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import functools
import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.errors import MessageDefect
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

from digestcli.message.verp import verp_token

KINDS = (
    "hard",
    "soft",
    "blocked",
    "complaint",
    "unsubscribe",
    "possible-unsubscribe",
    "autoreply",
    "unrecognised",
    "other",
)
# Which of a report's failures stands for the whole report: the one that does most.
_RANK = {"hard": 3, "blocked": 2, "soft": 1}

# Bounds that keep a huge or hostile message cheap: parts visited, text read of one part.
_MAX_PARTS = 60
_MAX_DEPTH = 8
_MAX_TEXT = 64 * 1024
_MAX_DIAGNOSTIC = 240
# flufl.bounce reads every line of every part with each of its detectors: above this many
# characters of payload it is given the readable parts only.
_FLUFL_MAX_PAYLOAD = 256 * 1024

# Headers of the report itself that can hold the address it was sent to (the VERP address).
_DELIVERY_HEADERS = ("to", "delivered-to", "x-original-to", "envelope-to")
_UNSUBSCRIBE_TO_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class Failure:
    """One recipient of a bounce and what the report says of it."""

    address: str
    kind: str  # "hard", "blocked" or "soft"
    status: str = ""  # enhanced status code, "5.1.1"
    diagnostic: str = ""
    original_address: str = ""  # a DSN's Original-Recipient, when it differs from the address
    delayed: bool = False  # soft, and only a delay: the server is still trying to deliver it


@dataclass(frozen=True)
class Report:
    """What one message in the bounce mailbox is, and whom and what it names.

    ``kind`` is one of KINDS: hard, soft (bounces), blocked (a refusal about the sending, not
    the reader), complaint (an abuse report), unsubscribe, possible-unsubscribe (asks, but names
    another address, person or list: for the editor to read), autoreply (machine mail that is
    not a failure: auto-replies, vacation notices, DSNs that say "delivered", read receipts;
    ignored), unrecognised (a report that cannot be told for sure: listed for the editor, never
    guessed), other (not a report: leave it alone).

    Addresses are as the report writes them (case kept, no angle brackets). Message-IDs keep their
    angle brackets, as in a header; List-Ids are the part inside the brackets, lower-cased; VERP
    tokens are lower-cased. For an unsubscribe, ``recipients`` is the sender's address; for one
    passed on by ``digest serve`` it is empty and ``unsubscribe_token`` names the reader.
    """

    kind: str
    # Readers named: a DSN's Original- and Final-Recipient, an ARF's Original-Rcpt-To (else the
    # quoted To), a plain bounce's failed addresses (else the quoted To when it holds one).
    recipients: tuple[str, ...] = ()
    # From local+TOKEN@domain in the report's To, Delivered-To, X-Original-To, Envelope-To, and
    # in the quoted original's Return-Path (an ARF's Original-Mail-From).
    verp_tokens: tuple[str, ...] = ()
    # The quoted original's (message/rfc822, text/rfc822-headers, or pasted into the text), and
    # the report's own In-Reply-To: a reply names the message it answers.
    original_message_ids: tuple[str, ...] = ()
    original_list_ids: tuple[str, ...] = ()
    status: str = ""  # enhanced status code ("5.1.1") when the report gives one
    diagnostic: str = ""  # the server's own words, one line
    subject: str = ""  # decoded
    message_id: str = ""  # the report's own
    # From an `X-Digest-Unsubscribe` header, or the token a List-Unsubscribe mailto puts in the
    # subject (`unsubscribe TOKEN`): the acting code verifies it before believing it.
    unsubscribe_token: str = ""
    reason: str = ""  # a few words on why it is this kind
    # Each failed recipient with its own verdict (several when an alias expanded); the report's
    # kind is the hardest of them.
    failures: tuple[Failure, ...] = field(default=())
    delayed: bool = False  # a soft bounce that only says the message is delayed
    # For an unsubscribe, how it asks: "serve" (X-Digest-Unsubscribe), "address" (sent to the
    # unsubscribe address), "subject" or "text" (the sender's own words).
    asked: str = ""
    # The report's own In-Reply-To and References: the messages a reply answers.
    reply_ids: tuple[str, ...] = ()
    # The quoted original's Subject (decoded) and Date, as written: which issue it was.
    original_subjects: tuple[str, ...] = ()
    original_dates: tuple[str, ...] = ()


class BodyUnreadable(MessageDefect):
    """The parser gave up on the body (MIME nested beyond its recursion limit, for one): only the
    header was read."""


def read_message(data: bytes) -> Message:
    """Parse the bytes of one mail for ``classify``. Never raises: where the parser gives up on
    the body, the header alone is read and the message carries a ``BodyUnreadable`` defect
    (which ``classify`` reports).

    The legacy compat32 policy, not the modern one: ``classify`` reads raw fields and decodes
    what it needs itself, and the modern policy's parser builds a header object for every
    field it looks at, six times slower (0.9 ms against 0.14 ms a report) for the same reports.
    ``classify`` takes a message parsed with either."""
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except Exception as error:  # RecursionError on deep nesting, and what else the parser trips on
        try:
            message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
        except Exception:
            message = Message(policy=email.policy.compat32)
        message.defects.append(BodyUnreadable(f"{type(error).__name__}"))
        return message


def classify_bytes(data: bytes, *, unsubscribe_address: str = "", newsletter: str = "") -> Report:
    """``classify`` for a message still in bytes; never raises either."""
    return classify(read_message(data), unsubscribe_address=unsubscribe_address, newsletter=newsletter)


def classify(message: Message, *, unsubscribe_address: str = "", newsletter: str = "") -> Report:
    """What ``message`` is (see the module's docstring for the rules and their order).

    ``unsubscribe_address``: the address of ``[newsletter] unsubscribe_mailto``; a message sent
    to it is an unsubscribe request unless it is a bounce or an auto-reply. ``newsletter``: its
    title, whose words name this list ("take me off The Weekly list"), not another one."""
    try:
        report = _Reading(message).classify(unsubscribe_address, newsletter)
        if any(isinstance(defect, BodyUnreadable) for defect in getattr(message, "defects", ())):
            report = replace(
                report, reason=f"{report.reason} (the body could not be parsed; read as raw text)"
            )
        return report
    except Exception as error:
        # Malformed mail reaches corners of the email package that raise (odd headers, broken
        # encodings). One such message must not stop the reading of a mailbox of thousands.
        subject, message_id = "", ""
        try:
            subject = _decoded(_first(_headers(message), "subject"))
            message_id = _first(_headers(message), "message-id")
        except Exception:
            pass
        return Report(
            "unrecognised",
            subject=subject,
            message_id=message_id,
            reason=f"could not be read ({type(error).__name__}: {str(error)[:80]})",
        )


def answered_subject(subject: str) -> str:
    """The subject a reply or forward answers ("Re: The Weekly #42" -> "The Weekly #42"), or ""
    when ``subject`` has no reply or forward prefix."""
    stripped = _REPLY_PREFIX.sub("", subject, count=1).strip()
    return stripped if stripped != subject.strip() else ""


# -- reading a message once ---------------------------------------------------------------------

_Headers = dict[str, list[str]]


def _headers(message: Message) -> _Headers:
    """The header fields by lower-cased name, each value unfolded to one line, raw (undecoded)."""
    found: _Headers = {}
    for name, value in message.raw_items():
        found.setdefault(name.lower(), []).append(_one_line(_clean(str(value))))
    return found


def _clean(text: str) -> str:
    """Text free of the lone surrogates the parser uses for bytes it could not decode."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        return text.encode("utf-8", "replace").decode("utf-8", "replace")


_SPACES = re.compile(r"\s+")


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _first(headers: _Headers, name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _decoded(value: str) -> str:
    """An RFC 2047 header value decoded (the raw value where it cannot be)."""
    if "=?" not in value:
        return value
    try:
        return _one_line(str(make_header(decode_header(value))))
    except Exception:
        return value


def _addresses(values: Iterable[str]) -> list[str]:
    """The addresses in header values; none that a bad byte has garbled (U+FFFD), which could
    match no reader."""
    found = []
    for _, address in getaddresses(list(values)):
        address = address.strip().strip("<>").strip()
        if "@" in address and "\ufffd" not in address:
            found.append(address)
    return found


@dataclass
class _Parts:
    """What a walk of the message finds, the quoted original kept apart from the report's text."""

    texts: list[tuple[str, str]] = field(default_factory=list)  # (subtype, text) of the report
    dsn_blocks: list[_Headers] = field(default_factory=list)  # the per-recipient DSN fields
    has_dsn: bool = False
    feedback: _Headers | None = None  # ARF's machine-readable part
    originals: list[_Headers] = field(default_factory=list)  # headers of the quoted originals
    has_mdn: bool = False
    count: int = 0
    payload_size: int = 0


def _walk(part: Message, found: _Parts, depth: int = 0) -> None:
    if found.count >= _MAX_PARTS or depth > _MAX_DEPTH:
        return
    found.count += 1
    ctype, params = _content_type(part)
    if ctype in ("message/delivery-status", "message/global-delivery-status"):
        found.has_dsn = True
        blocks = _blocks(part)
        found.dsn_blocks.extend(blocks[1:] if blocks and _is_per_message(blocks[0]) else blocks)
    elif ctype == "message/feedback-report":
        blocks = _blocks(part)
        merged: _Headers = {}
        for block in blocks:
            for name, values in block.items():
                merged.setdefault(name, []).extend(values)
        found.feedback = merged
    elif ctype == "message/disposition-notification":
        found.has_mdn = True
    elif ctype in ("message/rfc822", "message/global"):
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            found.originals.append(_headers(inner[0]))
        else:
            found.originals.append(_parse_headers(_payload_text(part)))
    elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
        found.originals.append(_parse_headers(_payload_text(part)))
    elif part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    _walk(sub, found, depth + 1)
    elif ctype.startswith(("text/", "multipart/")):  # a multipart here has no boundary
        text = _payload_text(part, params.get("charset"))
        found.payload_size += len(text)
        subtype = ctype.partition("/")[2]
        found.texts.append((subtype, _html_text(text) if subtype == "html" else text))
    else:
        payload = part.get_payload()
        if isinstance(payload, str):
            found.payload_size += len(payload)


def _is_per_message(block: _Headers) -> bool:
    """The first block of a DSN describes the message (Reporting-MTA); the rest, recipients."""
    return not ("final-recipient" in block or "original-recipient" in block or "action" in block)


def _blocks(part: Message) -> list[_Headers]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [_headers(block) for block in payload if isinstance(block, Message)]
    text = _payload_text(part)
    return [_parse_headers(block) for block in _BLANK_LINE.split(text) if block.strip()]


_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")
_HEADER_PARSER = HeaderParser(policy=email.policy.compat32)


def _parse_headers(text: str) -> _Headers:
    return _headers(_HEADER_PARSER.parsestr(text.lstrip()[:_MAX_TEXT]))


def _payload_text(part: Message, charset: str | None = None) -> str:
    """A leaf part's text, decoded from its transfer encoding and charset, at most _MAX_TEXT."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return _clean(payload[:_MAX_TEXT]) if isinstance(payload, str) else ""
    raw = raw[: _MAX_TEXT * 2]
    try:
        text = raw.decode(charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        text = raw.decode("utf-8", "replace")
    return text[:_MAX_TEXT]


_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def _content_type(part: Message) -> tuple[str, dict[str, str]]:
    """A part's media type (lower case; text/plain when missing or invalid, as RFC 2045 says) and
    its parameters. Read from the raw field: the modern email policy parses the whole field
    again on every access, which cost more than the rest of the classification."""
    raw = next((str(value) for name, value in part.raw_items() if name.lower() == "content-type"), "")
    ctype = raw.partition(";")[0].strip().lower()
    if ctype.count("/") != 1 or " " in ctype:
        ctype = "text/plain"
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(raw)
    }
    return ctype, params


_HTML_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d|p|div|tr|li|hr|pre|/pre)\b[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]*>")
# Where mail clients put the message a reply quotes: it becomes a ">" line, as in plain text.
_HTML_QUOTE = re.compile(
    r"<blockquote\b|<div\b[^>]*(?:gmail_quote|divRplyFwdMsg|moz-cite-prefix|yahoo_quoted|appendonsend)[^>]*>",
    re.IGNORECASE,
)


def _html_text(markup: str) -> str:
    """HTML as text good enough to search: tags dropped, blocks on their own lines, a quoted
    message marked with a ">" line."""
    text = _HTML_DROP.sub(" ", markup)
    text = _HTML_QUOTE.sub(lambda m: "\n>\n" + m.group(0), text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    return html.unescape(text)


# -- what is said where -------------------------------------------------------------------------

# Where a bounce's own text ends and the copy of the original message begins.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t]*(?:"
    r"-{2,}\s*(?:this is a copy of|below this line is a copy|original message|forwarded message"
    r"|start of returned message|returned mail follows|undelivered message|message headers follow"
    r"|original headers)"
    r"|original message headers:"
    r")",
    re.IGNORECASE | re.MULTILINE,
)
# Header lines of an original pasted into a bounce's text.
_PASTED_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*\r?\n?[ \t]*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_PASTED_LIST_ID = re.compile(r"^List-Id:[^\n]*?<([^>\s]+)>", re.IGNORECASE | re.MULTILINE)
_PASTED_RETURN_PATH = re.compile(r"^Return-Path:[ \t]*<([^>\s]*)>", re.IGNORECASE | re.MULTILINE)
_PASTED_TO = re.compile(r"^To:[ \t]*([^\n]+)", re.IGNORECASE | re.MULTILINE)
_ANGLE_ID = re.compile(r"<[^<>\s]+>")
_LIST_ID = re.compile(r"<([^<>\s]+)>")
# An address whose local part holds a "+": a VERP address is one (its token after the last "+").
_PLUS_ADDRESS = re.compile(r"[^\s<>@\",;:()]+\+[^\s<>@\",;:()]*@[A-Za-z0-9.-]+")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# A basic SMTP reply code where an SMTP reply is quoted: at a line's start or after a colon,
# quote or bracket, followed by a space or the continuation dash.
_SMTP_CODE = re.compile(r"(?:^|[\s:'\"(\[])([45][0-5]\d)(?:[ -](?=\S)|$)", re.MULTILINE)
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)

_DAEMON_LOCALS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster", "mdaemon"}
)
_DAEMON_NAMES = re.compile(
    r"^(?:mail delivery (?:system|subsystem|service|agent)|mail administrator|mailer-daemon"
    r"|postmaster|mail system)$",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|return(?:ed)? to sender|delivery status notification"
    r"|delivery (?:has )?failed|delivery failure|failure notice|mail delivery failed"
    r"|could not (?:be )?deliver|not (?:be(?:en)? )?delivered|message not delivered|non-?deliver"
    r"|delivery (?:problem|delayed|notification)|mail system error|delayed mail|warning: message"
    r"|address not found|unzustellbar|nicht zustellbar|non remis|no se pudo entregar",
    re.IGNORECASE,
)
# The opening words of bounces that say what they are.
_BOUNCE_TEXT = re.compile(
    r"this is the mail system at host|created automatically by mail delivery software"
    r"|this is the qmail-send program|wasn't able to deliver your message"
    r"|delivery has failed to these recipients|message (?:couldn't|could not|wasn't) (?:be )?delivered"
    r"|delivery to the following recipients? (?:failed|was aborted)|address not found"
    r"|unable to deliver (?:your )?message|could not be delivered to one or more"
    r"|transcript of session follows|the original message was received at|has not yet been delivered"
    r"|delivery (?:is|has been) delayed|delivery incomplete|message you sent has not been delivered",
    re.IGNORECASE,
)
# Words that say the address is gone: what makes a permanent failure hard.
_UNKNOWN_WORDS = re.compile(
    r"user unknown|unknown (?:user|recipient|mailbox|address)"
    r"|no such (?:user|recipient|mailbox|person|address)"
    r"|user not found|mailbox (?:not found|does not exist|disabled)"
    r"|(?:does not|doesn't|no longer) exists?|address not found|recipient not found|recipnotfound"
    r"|invalid (?:recipient|mailbox)|unrouteable address|addressee unknown"
    r"|account (?:has been |is )?(?:disabled|deactivated|closed)|(?:mailbox|account) (?:is )?inactive"
    r"|doesn't have an? [\w.-]+ account|no mailbox here by that name|couldn't be found|could not be found"
    r"|host or domain name not found|domain (?:does not exist|not found)|not our customer",
    re.IGNORECASE,
)
# Words that say a failure is for good, without saying why: soft, unless the address is gone.
_PERMANENT_WORDS = re.compile(
    r"permanent error|permanently failed|failed permanently|permanent failure|permanent fatal errors",
    re.IGNORECASE,
)
# Words that say the receiving server refused the sending (its authentication, reputation, IP or
# content), not the reader: a block, never a reason to remove the reader.
_POLICY_WORDS = re.compile(
    r"\bpolicy\b|\bpolicies\b|\bspam\b|spamhaus|\bblock(?:ed|list|listed)?\b|black ?list|deny ?list"
    r"|\bbanned\b|reputation|\bdmarc\b|\bspf\b|\bdkim\b|authenticat|not authori[sz]ed|access denied"
    r"|relay(?:ing)? (?:denied|not permitted|access denied)|\brbl\b|\bdnsbl\b|listed (?:at|on|in|by)"
    r"|content rejected|message rejected|sender (?:address )?rejected|junk|\bvirus\b|malware|phish",
    re.IGNORECASE,
)
# Words of a warning that a message is late, not lost: the server is still trying.
_DELAY_WORDS = re.compile(
    r"not yet been delivered|not been delivered yet|delivery (?:is|has been) delayed|\bdelayed\b"
    r"|will (?:be )?retr(?:y|ied)|will keep trying|still trying|warning: message"
    r"|delivery status notification \(delay\)",
    re.IGNORECASE,
)
_GAVE_UP = re.compile(r"giv(?:en|ing) up|gave up|too long in the queue|retry timeout exceeded", re.IGNORECASE)
_SOFT_WORDS = re.compile(
    r"temporar(?:y|ily)|try again later|will be retried|will retry|will keep trying|still trying"
    r"|not yet been delivered|delivery (?:is|has been) delayed|delayed|deferred|greylist",
    re.IGNORECASE,
)
_FULL_WORDS = re.compile(
    r"mailbox (?:is )?full|over (?:its |the )?quota|quota exceeded|exceeded (?:the |its )?(?:storage|quota)"
    r"|insufficient (?:system )?storage|out of storage|mailbox has exceeded",
    re.IGNORECASE,
)

# Subjects that only a machine writes: a person's subject about a vacation is not among them.
_AUTO_SUBJECT = re.compile(
    r"^(?:out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autosvar"
    r"|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|respuesta autom[áa]tica"
    r"|fuera de la oficina|risposta automatica|fuori ufficio|automatisch antwoord"
    r"|vacation (?:reply|notice|message|auto-?reply))\b",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(
    r"^(?:(?:re|aw|fw|fwd|wg|tr|sv|vs|antw|rif|ref|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)
_UNSUBSCRIBE_WORDS = (
    r"unsubscribe|unsub|remove me|take me off|opt[ -]?out|stop sending|d[ée]sabonne[rz]?"
    r"|d[ée]sinscri(?:re|vez|ption)|abmelden|abbestellen|austragen|dar(?:me|se)? de baja"
    r"|cancelar (?:mi |la )?suscripci[óo]n|uitschrijven|afmelden|disiscrivi(?:mi|ti)?|cancellami"
)
# A subject that is the request and nothing else: "Unsubscribe", "Please remove me", "unsubscribe
# TOKEN" (RFC 2369 mailto), "Unsubscribe from The Weekly"; not "The unsubscribe link is broken".
_SUBJECT_ASKS = re.compile(
    rf"^(?:please[, ]*|pls[, ]*|bitte[, ]*)?(?:{_UNSUBSCRIBE_WORDS}|stop)(?:\s+me)?"
    r"(?:\s+(?:please|pls|bitte|svp|thanks|thank you))?(?:\s+from\b.*|\s+[\w-]+\.[\w-]+)?[\s.!]*$",
    re.IGNORECASE,
)
_TEXT_ASKS = re.compile(rf"\b(?:{_UNSUBSCRIBE_WORDS})", re.IGNORECASE)
# The words as a name for a thing, not a request: "the unsubscribe link", "opt-out cookies".
_NOUN_BEFORE = re.compile(r"\b(?:the|an?|your|this|that|my|his|her|their|our)\s*$", re.IGNORECASE)
_NOUN_AFTER = re.compile(
    r"^(?:-|\s+)(?:links?|buttons?|pages?|forms?|urls?|cookies?|options?|process|features?|footers?"
    r"|instructions|requests?|e-?mails?|address|headers?|settings?|rates?|box|checkbox)\b",
    re.IGNORECASE,
)
# Words that make a sentence about unsubscribing something other than a request to do it now.
_HEDGES = re.compile(
    r"\b(?:not|never|don't|dont|do not|won't|wouldn't|nicht|kein\w*|pas|jamais|no|but|almost|nearly"
    r"|about to|thought|consider\w*|was going to|if|whether|how|why|aber|fast|mais|presque)\b",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")
# A reply whose own text is longer than this is a letter for the editor to read, whatever it says.
_OWN_TEXT_MAX_WORDS = 40
_SENTENCE_MAX_WORDS = 12
_SUBJECT_TOKEN = re.compile(r"^unsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$", re.IGNORECASE)
# Where a reply's own text ends: a quoted line, the client's attribution line (in the languages
# mail clients write it), a forwarded or "Original Message" block, an Outlook header block, a
# signature. Cutting too early only ever hides words: it never makes an unsubscribe of a reply.
_ATTRIBUTION_VERBS = (
    r"wrote|writes|schrieb|skrev|kirjoitti|escribi[óo]|escreveu|a [ée]crit|ha scritto|schreef"
    r"|napisa[łl](?:\(a\)|a)?|написал(?:\(а\)|а)?|írta|yazd[ıi]|έγραψε|napsal|napísal|scrise|kirjutas"
)
_HEADER_NAMES = (
    r"From|Von|De|Da|Van|Från|Fra|Frá|От|Od|Lähettäjä|Feladó|Kimden|Από|Expéditeur|Remitente|Mittente"
    r"|Afzender|Avsändare|Afsender|Nadawca|Отправитель|差出人|寄件者|发件人|발신|보낸 사람"
)
_QUOTE_STARTS = re.compile(
    r"^[ \t]*>"
    # "On <date>, <name> wrote:", "Am ... schrieb ...:", "Le ... a écrit :", perhaps over two lines
    # (an attribution is short: the bounds keep a long line cheap)
    r"|^[ \t]*(?:On|Am|Le|El|Il|Op|Den|Em|W dniu|Dne|Pe)\s[^\n]{0,300}(?:\n[^\n]{0,300})?"
    rf"\b(?:{_ATTRIBUTION_VERBS})\b[^\n]{{0,300}}[:：][ \t]*$"
    # "<name> schrieb am <date>:", "<date>, <name> написал:": the verb anywhere on one line (that
    # line ending with a colon is looked for first: a long line without one costs one pass)
    rf"|^(?=[^\n]*[:：][ \t]*$)[^\n]*(?<!\w)(?:{_ATTRIBUTION_VERBS})(?!\w)[^\n]*[:：][ \t]*$"
    # "-----Original Message-----", "-------- Mensaje original --------", "---------- Forwarded
    # message ---------": any words between dashes
    r"|^[ \t]*-{2,}[ \t]*[^\n-][^\n]{0,60}?-{2,}[ \t]*$"
    r"|^[ \t]*-{2,}[ \t]*(?:original message|forwarded message|urspr[üu]ngliche nachricht|message d'origine"
    r"|mensaje original|mensagem original|messaggio originale|oorspronkelijk bericht|originalmeddelande"
    r"|исходное сообщение|weitergeleitete nachricht|message transf[ée]r[ée])"
    r"|^[ \t]*Begin forwarded message:"
    r"|^[ \t]*_{8,}[ \t]*$"
    rf"|^[ \t]*\*?(?:{_HEADER_NAMES})\*?[ \t]*[:：]"
    r"|^-- ?$",
    re.IGNORECASE | re.MULTILINE,
)
# What names something other than the sender and this list, in a text that asks to unsubscribe:
# then a person must read it ("please unsubscribe my wife", "take me off the volunteer list",
# "stop sending it to my old work address", "remove me from your Sunday list").
_LIST_NOUNS = re.compile(
    r"(?<![\w'-])([\w'-]{1,40})[ \t]+(?:list|lists|newsletters?|mailings?|e-?mails|mails|group|digest"
    r"|editions?|bulletins?|updates|letters?|issues)\b",
    re.IGNORECASE,
)
# Words before "list" (or "emails"...) that mean this one: "this list", "your mailing list".
_THIS_LIST = frozenset(
    re.findall(
        r"\S+",
        "this the your ur our my that these those mailing email e-mail mail news newsletter distribution"
        " subscription subscriber subscribers contact all any every future further more of from",
    )
)
_OTHER_LISTS = re.compile(
    r"\b(?:rotas?|rosters?|channels?|slack|whatsapp|telegram|discord|signal group|group chat|chats?"
    r"|committee|volunteers?|team|calendar|meetings?|forums?|threads?|club|class|choir|board|rota)\b",
    re.IGNORECASE,
)
_SOMEONE_ELSE = re.compile(
    r"\b(?:unsubscribe|remove|take|drop|delete|sign|opt|stop sending|stop emailing|stop mailing)"
    r"\s+(?:(?:off|out)\s+)?"
    r"(?:my\s+(?!address|e-?mail|account|subscription|name|mail|inbox|details|self\b)\w+"
    r"|her|him|them|his|their|[\w.-]+'s)\b"
    r"|\b(?:for|on behalf of)\s+(?:my\s+(?!address|e-?mail|account|self\b)\w+|her|him|them)\b"
    r"|\bmy\s+(?:old|other|former|previous|second|work|business|personal|private|office|new)"
    r"(?:\s+\w+)?\s+(?:address|e-?mail|account|inbox|mailbox)\b"
    r"|\bsending\s+(?:it|this|them|these|that|the\s+\w+)?\s*to\s+(?!me\b)"
    r"|\bkeep\s+me\b|\bstill\s+(?:want|get|receive|read)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w'-]+")
# An address in a person's text; its local part starts at a boundary, so a long word costs little.
_TEXT_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+"
)
# Gmail in Russian, Japanese, Chinese...: "<date>, <name> <address>:", the address perhaps wrapped
# from the line before. Searched from the "@" on, which keeps a long line cheap.
_ADDRESS_ATTRIBUTION = re.compile(r"@[^\s<>@]+>[ \t]*[:：][ \t]*$", re.MULTILINE)
# How much of a reply is read for the sender's own words: a request is a few lines at the top.
_OWN_TEXT_SCAN = 4096


@dataclass
class _Bounce:
    kind: str  # hard, blocked, soft or "" (unclear)
    status: str
    diagnostic: str
    reason: str


class _Reading:
    """One message read once: its headers, its parts, and what they say."""

    def __init__(self, message: Message):
        self.message = message
        self.headers = _headers(message)
        self.subject = _decoded(_first(self.headers, "subject"))
        self.message_id = _first(self.headers, "message-id")
        self.parts = _Parts()
        _walk(message, self.parts)
        self.sender = parseaddr(_first(self.headers, "from"))[1].strip()
        self.report_type = _content_type(message)[1].get("report-type", "").lower()
        self._own: list[str] = []
        self._quoted: list[str] | None = None

    # -- the decision, in order -------------------------------------------------------------------

    def classify(self, unsubscribe_address: str, newsletter: str = "") -> Report:
        token = _first(self.headers, "x-digest-unsubscribe")
        if token:
            return self._report(
                "unsubscribe", unsubscribe_token=token, asked="serve", reason="passed on by digest serve"
            )
        if self.parts.feedback is not None or self.report_type == "feedback-report":
            return self._complaint()
        if self.parts.dsn_blocks:
            return self._dsn()
        if self._looks_bounced():
            return self._plain_bounce()
        autoreply = self._autoreply()
        if autoreply:
            return self._report("autoreply", reason=autoreply)
        return self._unsubscribe(unsubscribe_address, newsletter) or self._report(
            "other", reason="not a report"
        )

    def _report(self, kind: str, **fields: Any) -> Report:
        """A report of ``kind`` with what every report names, and ``fields``."""
        named = Report(
            kind,
            verp_tokens=self._verp_tokens(),
            original_message_ids=self._original_ids(),
            original_list_ids=self._original_list_ids(),
            subject=self.subject,
            message_id=self.message_id,
            reply_ids=_unique(
                _ANGLE_ID.findall(
                    " ".join(self.headers.get("in-reply-to", []) + self.headers.get("references", []))
                )
            ),
            original_subjects=_unique(
                _decoded(v) for o in self.parts.originals for v in o.get("subject", [])[:1]
            ),
            original_dates=_unique(v for o in self.parts.originals for v in o.get("date", [])[:1]),
        )
        return replace(named, **fields)

    # -- complaints ----------------------------------------------------------------------------

    def _complaint(self) -> Report:
        feedback = self.parts.feedback or {}
        recipients = _addresses(feedback.get("original-rcpt-to", []))
        where = "Original-Rcpt-To"
        if not recipients:
            recipients = [a for original in self.parts.originals for a in _addresses(original.get("to", []))]
            where = "the quoted message's To"
        feedback_type = (_first(feedback, "feedback-type") or "abuse").lower()
        if feedback_type == "not-spam":
            return self._report("autoreply", reason="feedback report: not spam")
        return self._report(
            "complaint",
            recipients=_unique(recipients),
            diagnostic=feedback_type,
            reason=f"abuse report (ARF, {feedback_type})" + (f"; reader from {where}" if recipients else ""),
        )

    # -- delivery status notifications -----------------------------------------------------------

    def _dsn(self) -> Report:
        failures: list[Failure] = []
        other_actions: list[str] = []
        for block in self.parts.dsn_blocks:
            failure = _dsn_failure(block)
            if failure is None:
                other_actions.append(_first(block, "action").lower() or "no action")
            else:
                failures.append(failure)
        if not failures:
            if other_actions and all(
                a.startswith(("delivered", "relayed", "expanded")) for a in other_actions
            ):
                return self._report(
                    "autoreply", reason=f"delivery notice: {', '.join(sorted(set(other_actions)))}"
                )
            return self._plain_bounce(dsn_without_failures=True)
        main = max(failures, key=lambda f: _RANK[f.kind])  # the first of the hardest
        recipients = _unique(a for f in failures for a in (f.original_address, f.address) if a)
        if len(failures) == 1:
            reason = f"DSN: {_dsn_words(main)}"
            if not recipients:
                reason += "; the recipient's address is unreadable"
        else:
            kinds = [f.kind for f in failures]
            counts = ", ".join(f"{kinds.count(k)} {k}" for k in ("hard", "blocked", "soft") if k in kinds)
            reason = f"DSN for {len(failures)} recipients ({counts})"
            if len(set(kinds)) > 1:
                reason += f"; counted {main.kind}, see failures for each"
        return self._report(
            main.kind,
            recipients=recipients,
            status=main.status,
            diagnostic=main.diagnostic,
            reason=reason,
            failures=tuple(failures),
            delayed=all(f.delayed for f in failures),
        )

    # -- bounces in no standard form ------------------------------------------------------------

    def _looks_bounced(self) -> bool:
        if "x-failed-recipients" in self.headers:
            return True
        local, _, _ = self.sender.lower().partition("@")
        display = parseaddr(_first(self.headers, "from"))[0].strip()
        if local in _DAEMON_LOCALS or _DAEMON_NAMES.match(display):
            return True
        if self.report_type == "delivery-status" or self.parts.has_dsn:
            return True
        if not _BOUNCE_SUBJECT.search(self.subject):
            return False
        # A bounce-like subject alone could be a reader's "my issue was not delivered": it takes
        # a machine's envelope or a bounce's own words as well.
        null_sender = _first(self.headers, "return-path").replace(" ", "") in ("<>", "")
        return (null_sender and "return-path" in self.headers) or bool(
            _BOUNCE_TEXT.search(self._own_text_of_bounce())
        )

    def _own_text_of_bounce(self) -> str:
        return "\n".join(self._bounce_texts())

    def _bounce_texts(self) -> list[str]:
        """The report's own words: each text part up to where the copy of the original begins."""
        if self._quoted is None:
            own, quoted = [], []
            for _, text in self.parts.texts:
                cut = _ORIGINAL_STARTS.search(text)
                own.append(text[: cut.start()] if cut else text)
                quoted.append(text[cut.start() :] if cut else text)
            self._own, self._quoted = own, quoted
        return self._own

    def _quoted_texts(self) -> list[str]:
        self._bounce_texts()
        return self._quoted or []

    def _plain_bounce(self, *, dsn_without_failures: bool = False) -> Report:
        own = self._own_text_of_bounce()
        verdict = _severity(f"{own}\n{self.subject}")
        recipients, where = self._failed_addresses(own)
        kind = verdict.kind or "unrecognised"
        reason = verdict.reason
        # A warning that the server is still trying ("has not yet been delivered"): a delay.
        delayed = (
            kind == "soft"
            and bool(_DELAY_WORDS.search(f"{own}\n{self.subject}"))
            and not _GAVE_UP.search(own)
        )
        if delayed:
            reason += "; a delay: the server is still trying"
        if dsn_without_failures:
            reason = f"DSN with no failed recipient; {reason}"
        if recipients and where:
            reason += f"; recipient from {where}"
        if not recipients and not self._verp_tokens() and kind != "unrecognised":
            reason += "; names no recipient"
        failures = tuple(
            Failure(a, kind, verdict.status, verdict.diagnostic, delayed=delayed) for a in recipients
        )
        return self._report(
            kind,
            recipients=tuple(recipients),
            status=verdict.status,
            diagnostic=verdict.diagnostic,
            reason=reason,
            failures=failures if kind in _RANK else (),
            delayed=delayed,
        )

    def _failed_addresses(self, own: str) -> tuple[tuple[str, ...], str]:
        """The addresses a bounce says failed, and where they were found."""
        not_readers = self._not_reader_addresses()

        def readers(found: Iterable[str]) -> tuple[str, ...]:
            return _unique(
                a
                for a in found
                if a.lower() not in not_readers and a.partition("@")[0].lower() not in _DAEMON_LOCALS
            )

        found = readers(_addresses(self.headers.get("x-failed-recipients", [])))
        if found:
            return found, "X-Failed-Recipients"
        found = readers(self._flufl_addresses())
        if found:
            return found, ""
        found = readers(m.group(0) for m in _ADDRESS.finditer(own))
        if found:
            return found, "the report's text"
        to = [a for original in self.parts.originals for a in _addresses(original.get("to", []))]
        if not to:
            to = _addresses(m.group(1) for text in self._quoted_texts() for m in _PASTED_TO.finditer(text))
        # Digest sends each reader a message of their own: one address in its To is the reader.
        quoted_to = readers(to)
        if len(quoted_to) == 1:
            return quoted_to, "the quoted message's To"
        return (), ""

    def _not_reader_addresses(self) -> set[str]:
        """Addresses in a bounce that are the report's or the newsletter's, never a reader's."""
        own = {"from", "to", "cc", "delivered-to", "x-original-to", "envelope-to", "return-path", "reply-to"}
        found = {a.lower() for name in own for a in _addresses(self.headers.get(name, []))}
        for original in self.parts.originals:
            for name in ("from", "sender", "return-path", "reply-to"):
                found.update(a.lower() for a in _addresses(original.get(name, [])))
        for text in self._quoted_texts():
            found.update(m.group(1).lower() for m in _PASTED_RETURN_PATH.finditer(text) if m.group(1))
        return found

    def _flufl_addresses(self) -> list[str]:
        """The failed addresses flufl.bounce finds (permanent and temporary alike: the severity is
        judged here, from the codes and words, the same way for every format)."""
        all_failures = _flufl()
        if self.parts.payload_size > _FLUFL_MAX_PAYLOAD or self.parts.count >= _MAX_PARTS:
            message = _readable_copy(self.parts)
        else:
            message = self.message
        try:
            with _legacy_policy(message):
                temporary, permanent = all_failures(message)
        except Exception:  # a detector tripped on a malformed message: the text fallback follows
            return []
        return sorted(_clean(a.decode("ascii", "replace")) for a in (permanent | temporary))

    # -- auto-replies and unsubscribes -----------------------------------------------------------

    def _autoreply(self) -> str:
        auto_submitted = _first(self.headers, "auto-submitted").lower()
        if auto_submitted and not auto_submitted.startswith("no"):
            return f"Auto-Submitted: {auto_submitted.split(';')[0]}"
        for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
            value = _first(self.headers, name).lower()
            if name in self.headers and value not in ("no", "false", "0"):
                return f"{name.title()} header"
        if _first(self.headers, "precedence").lower() == "auto_reply":
            return "Precedence: auto_reply"
        if self.parts.has_mdn or self.report_type == "disposition-notification":
            return "read receipt"
        match = _AUTO_SUBJECT.match(_REPLY_PREFIX.sub("", self.subject))
        if match:
            return f"subject: {match.group(0).strip()}"
        return ""

    def _unsubscribe(self, unsubscribe_address: str, newsletter: str) -> Report | None:
        asked, why = "", ""
        wanted = _bare_address(unsubscribe_address)
        to = {a.lower() for name in _UNSUBSCRIBE_TO_HEADERS for a in _addresses(self.headers.get(name, []))}
        if wanted and wanted in to:
            asked, why = "address", "sent to the unsubscribe address"
        subject = _REPLY_PREFIX.sub("", self.subject).strip()
        token_match = _SUBJECT_TOKEN.match(subject)
        own = _own_words(self.parts.texts)
        if not asked and _SUBJECT_ASKS.match(subject):
            asked, why = "subject", "subject asks to unsubscribe"
        if not asked and _text_asks(own):
            asked, why = "text", "the sender's own text asks to unsubscribe"
        if not asked:
            return None
        if not self.sender or "@" not in self.sender:
            return self._report("unrecognised", reason=f"{why}, but it has no sender address")
        if asked in ("subject", "text"):
            # Words alone ask only for the sender, and only to leave this list.
            mine = {self.sender.lower(), wanted} | to
            other = _names_other(own, mine, newsletter, asking_only=True)
            if asked == "subject" and not other:
                other = _names_other(subject, mine, newsletter)
            if other:
                return self._report(
                    "possible-unsubscribe",
                    recipients=(self.sender,),
                    asked=asked,
                    reason=f"{why}, but {other}",
                )
        return self._report(
            "unsubscribe",
            recipients=(self.sender,),
            unsubscribe_token=token_match.group(1) if token_match else "",
            asked=asked,
            reason=why,
        )

    # -- what every report names ----------------------------------------------------------------

    def _verp_tokens(self) -> tuple[str, ...]:
        values = [v for name in _DELIVERY_HEADERS for v in self.headers.get(name, [])]
        for original in self.parts.originals:
            values.extend(original.get("return-path", []))
        if self.parts.feedback:
            values.extend(self.parts.feedback.get("original-mail-from", []))
        for text in self._quoted_texts() if not self.parts.originals else ():
            values.extend(m.group(0) for m in _PASTED_RETURN_PATH.finditer(text))
        # The token follows the last "+": a bounce address may hold one of its own (weekly+bounces@).
        tokens = (verp_token(m.group(0)) for value in values for m in _PLUS_ADDRESS.finditer(value))
        return _unique(token for token in tokens if token)

    def _original_ids(self) -> tuple[str, ...]:
        ids = [
            m.group(0)
            for o in self.parts.originals
            for v in o.get("message-id", [])[:1]
            for m in _ANGLE_ID.finditer(v)
        ]
        if not self.parts.originals:
            ids.extend(m.group(1) for text in self._quoted_texts() for m in _PASTED_MESSAGE_ID.finditer(text))
        ids.extend(_ANGLE_ID.findall(_first(self.headers, "in-reply-to")))
        return _unique(ids)

    def _original_list_ids(self) -> tuple[str, ...]:
        ids = [
            m.group(1)
            for o in self.parts.originals
            for v in o.get("list-id", [])
            for m in _LIST_ID.finditer(v)
        ]
        if not self.parts.originals:
            ids.extend(m.group(1) for text in self._quoted_texts() for m in _PASTED_LIST_ID.finditer(text))
        return _unique(i.lower() for i in ids)


def _dsn_failure(block: _Headers) -> Failure | None:
    """The failure one per-recipient DSN block reports, or None when it reports none."""
    action = _first(block, "action").lower()
    status_match = _ENHANCED.search(_first(block, "status"))
    status = ".".join(status_match.groups()) if status_match else ""
    diagnostic = _diagnostic(_first(block, "diagnostic-code"))
    if not status:
        code = _ENHANCED.search(diagnostic)
        status = ".".join(code.groups()) if code else ""
    if action.startswith(("delivered", "relayed", "expanded")):
        return None
    if not action and not status.startswith(("4", "5")):
        return None
    # A recipient too garbled to read still tells the severity; the VERP token can name them.
    final = _recipient(_first(block, "final-recipient"))
    original = _recipient(_first(block, "original-recipient"))
    address, also = final or original, original if original != final else ""
    if action.startswith("delayed"):
        return Failure(address, "soft", status, diagnostic, also, delayed=True)
    full = status.endswith(".2.2") or bool(_FULL_WORDS.search(diagnostic))
    if status.startswith("4") or full:
        kind = "soft"
    elif status.startswith("5"):
        # Exim and others write 5.0.0 in Status and the server's own code in the diagnostic.
        said = _ENHANCED.search(diagnostic) if status.endswith(".0.0") else None
        kind = _permanent(".".join(said.groups()) if said and said.group(1) == "5" else status, diagnostic)
    elif action.startswith(("failed", "failure", "error")):
        smtp = _SMTP_CODE.search(diagnostic)
        kind = "soft" if smtp and smtp.group(1).startswith("4") else _permanent("", diagnostic)
    else:
        return None
    return Failure(address, kind, status, diagnostic, also)


def _permanent(status: str, words: str) -> str:
    """Hard, blocked or soft, for a permanent failure with enhanced ``status`` ("" when it has
    none) and the server's ``words`` (see the module's docstring)."""
    _, subject, detail = [*status.split("."), "", "", ""][:3]
    if subject == "1" and detail not in ("7", "8"):  # 5.1.7, 5.1.8: the sender's address
        return "hard"
    if (subject, detail) == ("2", "1"):
        return "hard"
    if subject in ("1", "3", "4", "6", "7"):
        return "blocked"
    if _UNKNOWN_WORDS.search(words):
        return "hard"
    if _POLICY_WORDS.search(words):
        return "blocked"
    return "soft"


def _dsn_words(failure: Failure) -> str:
    words = f"{failure.kind} ({failure.status or 'no status'})"
    if failure.delayed:
        words += ", delayed: the server is still trying"
    elif failure.kind == "soft" and failure.status.startswith("5"):
        full = failure.status.endswith(".2.2") or _FULL_WORDS.search(failure.diagnostic)
        words += (
            ", a full mailbox counts as soft"
            if full
            else ", a permanent failure that does not say the address is gone"
        )
    elif failure.kind == "blocked":
        words += ", refused for a reason about the sending, not the reader"
    return words


def _recipient(value: str) -> str:
    """The address of a DSN's `Final-Recipient: rfc822; user@example.net` ("" if garbled)."""
    kind, semicolon, address = value.partition(";")
    address = (address if semicolon else kind).strip().strip("<>").strip()
    return address if "@" in address and "\ufffd" not in address and " " not in address else ""


def _diagnostic(value: str) -> str:
    kind, semicolon, text = value.partition(";")
    text = text if semicolon and " " not in kind.strip() else value
    return _one_line(text)[:_MAX_DIAGNOSTIC]


def _severity(text: str) -> _Bounce:
    """Hard, blocked or soft from a bounce's own words: enhanced status codes first, then SMTP
    reply codes, then plain words; "" where the evidence is missing or points both ways. A
    permanent code wins over a temporary one (as for a DSN), and a full mailbox is soft (see the
    module docstring)."""
    enhanced = [m for m in _ENHANCED.finditer(text) if m.group(1) in "45"]
    permanent = [m for m in enhanced if m.group(1) == "5" and m.group(2, 3) != ("2", "2")]
    if permanent:
        judged = [(m, _permanent(".".join(m.groups()), text)) for m in permanent]
        chosen, kind = max(judged, key=lambda pair: _RANK[pair[1]])
        status = ".".join(chosen.groups())
        reason = f"status {status} in the text" + _KIND_WORDS.get(kind, "")
        return _Bounce(kind, status, _line_at(text, chosen.start()), reason)
    full_status = next((m for m in enhanced if m.group(2, 3) == ("2", "2")), None)
    full = full_status or _FULL_WORDS.search(text)
    if full:
        status = ".".join(full_status.groups()) if full_status else ""
        return _Bounce("soft", status, _line_at(text, full.start()), "mailbox full")
    if enhanced:
        status = ".".join(enhanced[0].groups())
        return _Bounce("soft", status, _line_at(text, enhanced[0].start()), f"status {status} in the text")
    codes = list(_SMTP_CODE.finditer(text))
    # 552 is RFC 5321's "exceeded storage allocation": a full mailbox.
    failed = next((m for m in codes if m.group(1).startswith("5") and m.group(1) != "552"), None)
    reply = failed or next((m for m in codes if m.group(1) == "552"), None) or (codes[0] if codes else None)
    if reply:
        kind = _permanent("", text) if failed else "soft"
        reason = f"SMTP reply {reply.group(1)} in the text" + (
            " (storage exceeded)" if reply.group(1) == "552" else ""
        )
        return _Bounce(kind, "", _line_at(text, reply.start(1)), reason + _KIND_WORDS.get(kind, ""))
    unknown, soft_words = _UNKNOWN_WORDS.search(text), _SOFT_WORDS.search(text)
    permanent_words, policy = _PERMANENT_WORDS.search(text), _POLICY_WORDS.search(text)
    if (unknown or permanent_words) and soft_words:
        return _Bounce("", "", "", "a bounce whose text says both permanent and temporary")
    if unknown:
        return _Bounce("hard", "", _line_at(text, unknown.start()), f'"{unknown.group(0).lower()}"')
    if policy and not soft_words:
        return _Bounce("blocked", "", _line_at(text, policy.start()), f'"{policy.group(0).lower()}"')
    found = permanent_words or soft_words
    if found:
        return _Bounce("soft", "", _line_at(text, found.start()), f'"{found.group(0).lower()}"')
    return _Bounce("", "", "", "a bounce that says neither permanent nor temporary")


_KIND_WORDS = {
    "blocked": ": refused for a reason about the sending, not the reader",
    "soft": ": permanent, but it does not say the address is gone",
}


def _line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return _one_line(text[start : end if end != -1 else len(text)])[:_MAX_DIAGNOSTIC]


def _own_words(texts: list[tuple[str, str]]) -> str:
    """The sender's own text of a reply: the first plain part (else the HTML one) up to the first
    quoted line, attribution line, forwarded block or signature."""
    chosen = next((t for s, t in texts if s == "plain"), None)
    if chosen is None:
        chosen = next((t for _, t in texts), "")
    chosen = chosen[:_OWN_TEXT_SCAN]
    cut = _QUOTE_STARTS.search(chosen)
    end = cut.start() if cut else len(chosen)
    attribution = _ADDRESS_ATTRIBUTION.search(chosen, 0, end)
    if attribution:
        end = chosen.rfind("\n", 0, attribution.start()) + 1
    return chosen[:end]


def _text_asks(own: str) -> bool:
    """Whether a reply's own text asks to unsubscribe: a short text with a short sentence that
    says so, with no negation or hedge in it ("I almost unsubscribed, but...")."""
    if len(own.split()) > _OWN_TEXT_MAX_WORDS:
        return False
    return bool(_asking_sentences(own))


def _asking_sentences(text: str) -> list[str]:
    """The sentences of ``text`` that ask to unsubscribe (see ``_text_asks``)."""
    return [
        sentence
        for sentence in _SENTENCES.split(text)
        if len(sentence.split()) <= _SENTENCE_MAX_WORDS and not _HEDGES.search(sentence) and _asks(sentence)
    ]


def _asks(sentence: str) -> bool:
    """Whether the sentence uses the unsubscribe words as a request, not as the name of a thing
    ("the unsubscribe link is broken", "the piece on opt-out cookies")."""
    for match in _TEXT_ASKS.finditer(sentence):
        if _NOUN_BEFORE.search(sentence[: match.start()]) or _NOUN_AFTER.match(sentence[match.end() :]):
            continue
        return True
    return False


def _names_other(text: str, mine: set[str], newsletter: str, *, asking_only: bool = False) -> str:
    """What in ``text`` names another address, person or list than the sender and this list,
    in a few words; "" when nothing does. ``mine``: the sender's and the newsletter's addresses.
    With ``asking_only``, only the sentences that ask are read for persons and lists (an address
    anywhere counts)."""
    for match in _TEXT_ADDRESS.finditer(text):
        if match.group(0).lower() not in mine:
            return f"it names another address ({match.group(0)})"
    title_words = {word.lower() for word in _WORD.findall(newsletter)}
    for sentence in _asking_sentences(text) if asking_only else [text]:
        someone = _SOMEONE_ELSE.search(sentence)
        if someone:
            return f'it may be about someone or something else ("{someone.group(0).strip()}")'
        other = _OTHER_LISTS.search(sentence)
        if other:
            return f'it names another list ("{other.group(0)}")'
        for listed in _LIST_NOUNS.finditer(sentence):
            word = listed.group(1).lower()
            if word not in _THIS_LIST and word not in title_words:
                return f'it names another list ("{listed.group(0)}")'
    return ""


def _bare_address(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("mailto:"):
        value = value[len("mailto:") :].partition("?")[0]
    return parseaddr(value)[1].strip().lower()


@functools.cache
def _flufl() -> Callable[[Message], tuple[frozenset[bytes], frozenset[bytes]]]:
    """flufl.bounce's ``all_failures``, imported on first need (only plain bounces need it)."""
    from flufl.bounce import all_failures

    # It logs each detector it runs, and a detector's exception with its traceback before
    # raising it: this module catches the exception, and the traceback is noise on stderr.
    logging.getLogger("flufl.bounce").disabled = True
    return all_failures


@contextlib.contextmanager
def _legacy_policy(message: Message) -> Iterator[None]:
    """The message and its parts read with the compat32 policy for a while: flufl.bounce reads
    header fields dozens of times, and the modern policy parses a field anew on each read (about
    80% of the time spent on a plain bounce). Restored after, whatever happens."""
    parts = list(message.walk())
    saved = [part.policy for part in parts]
    for part in parts:
        part.policy = email.policy.compat32
    try:
        yield
    finally:
        for part, policy in zip(parts, saved, strict=True):
            part.policy = policy


def _readable_copy(parts: _Parts) -> Message:
    """A small message of the report's readable text only, for flufl.bounce on a huge report."""
    copy = EmailMessage()
    copy.set_content("\n\n".join(text for _, text in parts.texts)[:_FLUFL_MAX_PAYLOAD])
    return copy


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in order, the first of each case-insensitive duplicate kept."""
    seen: set[str] = set()
    kept = []
    for item in items:
        key = item.lower()
        if item and key not in seen:
            seen.add(key)
            kept.append(item)
    return tuple(kept)
