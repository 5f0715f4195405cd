"""Unsubscribe tokens: sealing a reader's address into the token their links carry, opening one,
and finding it in whatever an editor pastes (a link, a ``mailto:``, the bare token).

A token is ``v2.`` and the base64url of the reader's address encrypted with AES-SIV (RFC 5297,
``cryptography``) under a key derived from the workspace secret with HKDF-SHA256. Anyone who
sees the link (a reader who forwards it, a link scanner, a log) sees random-looking characters,
not the address; only the secret opens it, so ``digest unsubscribe`` and an unsubscribe endpoint
need the secret and nothing else (not the list). AES-SIV is deterministic authenticated
encryption: a reader's token is the same in every issue (as before), a token changed by one
character fails to open, and nothing but "these two tokens are one reader" leaks. The token grows
with the address: 45 characters for ``ann@example.org``, under 100 up to a 56-character address.

Tokens made before version 2 (``<base64url of the address>.<HMAC-SHA256 of it, 16 bytes>``, the
address readable by anyone) are still accepted: readers unsubscribe from old issues for months.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from digestcli.state import address_key
from digestcli.state.secret import read_secret
from digestcli.subscribers import normalize_address

if TYPE_CHECKING:  # cryptography is loaded only when a token is made or opened
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

V2_PREFIX = "v2."
_V2_INFO = b"digest unsubscribe token v2"  # HKDF's info: this key is for nothing else
_V2_AAD = b"v2"
_TOKEN_SIG_BYTES = 16  # the old form's signature
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def unsubscribe_address(pasted: str, unsubscribe_url: str, state_dir: str | Path) -> str | None:
    """``digest unsubscribe``: the address an editor means by what they paste, an address (checked
    and normalized) or a link, ``mailto:`` or token this workspace made; None when it is neither."""
    try:
        return normalize_address(pasted)
    except ValueError:
        return address_for_token(token_in(pasted, unsubscribe_url), state_dir)


def address_for_token(token: str, state_dir: str | Path) -> str | None:
    """``digest unsubscribe TOKEN``: the address the token holds, or None when it is not one this
    workspace made (also when the workspace has no secret yet: then it made none)."""
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


def make_token(address: str, secret: bytes) -> str:
    """A URL-safe token that only ``secret`` can open to ``address`` (normalized): ``v2.`` and the
    address encrypted with AES-SIV, so that nobody can read it or make one for someone else."""
    key = address_key(address).encode("utf-8")
    return V2_PREFIX + _b64(_cipher(secret).encrypt(key, [_V2_AAD]))


def verify_token(token: str, secret: bytes) -> str | None:
    """The address a token was made for, or None when it is malformed, altered, or not made with
    ``secret``. Takes the current form (``v2.…``) and the old signed one (``<address>.<sig>``)."""
    token = token.strip()
    key = _open_v2(token, secret) if token.startswith(V2_PREFIX) else _open_v1(token, secret)
    try:
        address = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return address if address and "@" in address else None


def _open_v2(token: str, secret: bytes) -> bytes | None:
    sealed = _unb64(token[len(V2_PREFIX) :])
    if sealed is None:
        return None
    from cryptography.exceptions import InvalidTag

    try:
        return _cipher(secret).decrypt(sealed, [_V2_AAD])
    except (InvalidTag, ValueError):  # ValueError: too short to hold the 16-byte tag
        return None


def _open_v1(token: str, secret: bytes) -> bytes | None:
    """The address in a token of the first form, which signed it but left it readable."""
    encoded, _, signature = token.partition(".")
    key, given = _unb64(encoded), _unb64(signature)
    if key is None or given is None or not hmac.compare_digest(given, _sign(key, secret)):
        return None
    return key


@functools.lru_cache(maxsize=8)
def _cipher(secret: bytes) -> AESSIV:
    """AES-256-SIV keyed by HKDF-SHA256 of the workspace secret (made once per secret)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return AESSIV(HKDF(algorithm=SHA256(), length=64, salt=None, info=_V2_INFO).derive(secret))


def _sign(key: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe\0" + key, hashlib.sha256).digest()[:_TOKEN_SIG_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """The bytes of unpadded base64url, or None unless ``text`` is exactly what ``_b64`` writes:
    the decoder alone would skip stray characters and ignore a last character's spare bits, and
    then a token altered by one character could still open."""
    if not _BASE64URL.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return raw if _b64(raw) == text else None
