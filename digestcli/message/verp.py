"""VERP: an envelope sender per issue and reader (``bounces+TOKEN@example.org``), so that a bounce
names the reader it is about even when its text is garbled, and the way back from a token to them.

The token is 21 characters of lowercase base32 (RFC 4648, no padding): 5 for the issue (3 bytes of
HMAC-SHA256 of the issue's id) and 16 for the reader (10 bytes of HMAC-SHA256 of their address
key), both under the workspace secret. Nobody without the secret can make or read one, it holds
neither the address nor the issue, and base32 survives a server that changes the case of the local
part. Only the workspace can turn it back into a reader: ``VerpIndex`` hashes the readers of the
issues it is asked about, once each, and keeps the 10-byte digests (about 100 bytes a reader).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable

from digestcli.state import address_key

ISSUE_CHARS = 5  # 3 bytes of base32
READER_CHARS = 16  # 10 bytes of base32
TOKEN_CHARS = ISSUE_CHARS + READER_CHARS
LOCAL_PART_MAX = 64  # octets, RFC 5321 §4.5.3.1.1
_TOKEN = re.compile(rf"[a-z2-7]{{{TOKEN_CHARS}}}")
_ISSUE_LABEL = b"verp-issue:"
_READER_LABEL = b"verp-reader:"


def verp_sender(bounce_address: str, issue_id: str, address: str, secret: bytes) -> str:
    """The envelope sender of ``issue_id``'s message to ``address``: ``local+TOKEN@domain`` of
    ``bounce_address``. Raises ValueError when the bounce address has no room for the token
    (see ``check_bounce_address``, which a workspace's settings pass through first)."""
    return senders_for(bounce_address, issue_id, secret)(address)


def senders_for(bounce_address: str, issue_id: str, secret: bytes) -> Callable[[str], str]:
    """``verp_sender`` for one issue, as a function of the reader's address: the bounce address
    checked and split, and the issue's part of the token made, once. Raises ValueError as it does."""
    local, domain = _split(bounce_address)
    before, after = f"{local}+{issue_part(issue_id, secret)}", f"@{domain}"

    def sender(address: str) -> str:
        return before + reader_part(address, secret) + after

    return sender


def check_bounce_address(bounce_address: str) -> str:
    """Why ``bounce_address`` cannot carry a VERP token, or "" when it can: its local part plus
    ``+`` and the token must stay within 64 octets, and must not be quoted."""
    try:
        _split(bounce_address)
    except ValueError as exc:
        return str(exc)
    return ""


def _split(bounce_address: str) -> tuple[str, str]:
    local, at, domain = bounce_address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{bounce_address!r} is not an address")
    if local.startswith('"'):
        raise ValueError(f"{bounce_address!r} has a quoted local part, which VERP cannot extend")
    room = LOCAL_PART_MAX - 1 - TOKEN_CHARS
    if len(local.encode("utf-8")) > room:
        raise ValueError(
            f"the local part of {bounce_address!r} is longer than {room} characters: with the"
            f" {TOKEN_CHARS}-character VERP token it would pass the {LOCAL_PART_MAX} octets mail servers take"
        )
    return local, domain


def issue_part(issue_id: str, secret: bytes) -> str:
    """The token's first 5 characters: which issue."""
    return _base32(hmac.new(secret, _ISSUE_LABEL + issue_id.encode("utf-8"), hashlib.sha256).digest()[:3])


def reader_part(address: str, secret: bytes) -> str:
    """The token's last 16 characters: which reader (the same in every issue)."""
    return _base32(_reader_digest(address_key(address), secret))


def _reader_digest(key: str, secret: bytes) -> bytes:
    return hmac.new(secret, _READER_LABEL + key.encode("utf-8"), hashlib.sha256).digest()[:10]


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def verp_token(address: str) -> str | None:
    """The token of a ``local+TOKEN@domain`` address, lower-cased (a server may have changed its
    case), or None when the address carries none."""
    local = address.strip().strip("<>").rpartition("@")[0]
    _, plus, token = local.rpartition("+")
    token = token.lower()
    return token if plus and _TOKEN.fullmatch(token) else None


class VerpIndex:
    """From a token back to its issue and reader, for the issues and readers of the send ledger.

    ``issues`` are the ledger's issue ids; ``readers_of(issue_id)`` gives the addresses an issue
    was sent to. An issue's readers are hashed the first time a token names that issue (one
    HMAC a reader, about 2 µs), so a run that meets bounces of two issues hashes two lists, and
    memory holds one 10-byte digest per distinct reader, not per issue.
    """

    def __init__(self, secret: bytes, issues: Iterable[str], readers_of: Callable[[str], Iterable[str]]):
        self._secret = secret
        self._readers_of = readers_of
        self._issues: dict[str, list[str]] = {}  # issue part -> issue ids (a collision is 1 in 16M)
        for issue_id in issues:
            self._issues.setdefault(issue_part(issue_id, secret), []).append(issue_id)
        self._hashed: set[str] = set()  # issues whose readers are in _readers
        self._readers: dict[bytes, str] = {}  # reader digest -> address key

    def lookup(self, token: str) -> tuple[str, str] | None:
        """(issue id, address key) for a token this workspace made for a reader in the ledger;
        None for any other (altered, made with another secret, an issue or reader not sent)."""
        token = token.strip().lower()
        if not _TOKEN.fullmatch(token):
            return None
        digest = base64.b32decode(token[ISSUE_CHARS:].upper())
        for issue_id in self._issues.get(token[:ISSUE_CHARS], ()):
            self._hash_readers(issue_id)
            address = self._readers.get(digest)
            if address is not None:
                return issue_id, address
        return None

    def _hash_readers(self, issue_id: str) -> None:
        if issue_id in self._hashed:
            return
        self._hashed.add(issue_id)
        readers, secret = self._readers, self._secret
        for address in self._readers_of(issue_id):
            key = address_key(address)
            readers.setdefault(_reader_digest(key, secret), key)
