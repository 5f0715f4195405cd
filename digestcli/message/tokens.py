"""Unsubscribe tokens: signing a reader's address into the token their links carry, verifying one,
and finding it in whatever an editor pastes (a link, a ``mailto:``, the bare token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from digestcli.state.secret import read_secret
from digestcli.subscribers import address_key, normalize_address

_TOKEN_SIG_BYTES = 16


def unsubscribe_address(pasted: str, unsubscribe_url: str, state_dir: str | Path) -> str | None:
    """``digest unsubscribe``: the address an editor means by what they paste, an address (checked
    and normalized) or a link, ``mailto:`` or token this workspace made; None when it is neither."""
    try:
        return normalize_address(pasted)
    except ValueError:
        return address_for_token(token_in(pasted, unsubscribe_url), state_dir)


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
