"""The Message-ID of each reader's copy of an issue: ``<ISSUE-PART.SIGNATURE@domain>``, stable for
the issue and the reader (a copy sent again is known as the same), and signed with the workspace
secret, so that ``digest bounces`` can tell a report about digest's own mail, and whose it was."""

from __future__ import annotations

import hmac
import re

_NOT_IN_ID = re.compile(r"[^A-Za-z0-9.-]+")


def id_part(issue_id: str) -> str:
    """The issue's part of its Message-IDs: its id with what a Message-ID may not hold made '-'."""
    return _NOT_IN_ID.sub("-", issue_id).strip("-.") or "issue"


def id_signature(secret: bytes, issue_id: str, address: str) -> str:
    """The reader's part: 24 hex digits of an HMAC of the issue and the address (any case)."""
    return hmac.digest(secret, f"{issue_id}\0{address.lower()}".encode(), "sha256").hex()[:24]
