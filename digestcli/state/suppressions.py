"""The suppression list: addresses never to mail again (unsubscribed, bounced, complained), kept in
the workspace state so that a reader who left stays out when an old copy of the list comes back.

Addresses are stored as the send keys readers (``subscribers.address_key``: case folded). The
full address check is the caller's (``digest unsubscribe`` validates what it is given); this
module only refuses what cannot be an address at all, and imports no validator.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from digestcli.errors import UsageError
from digestcli.state import state_database

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained")
SUPPRESSIONS_DB = "suppressions.sqlite3"
_SCHEMA = """CREATE TABLE IF NOT EXISTS suppression (address TEXT PRIMARY KEY,
    reason TEXT NOT NULL, added REAL NOT NULL, note TEXT NOT NULL);"""
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str  # one of SUPPRESSION_REASONS
    added: float  # seconds since the epoch
    note: str = ""


class SuppressionList:
    """Addresses never to mail again, kept in the workspace state (SQLite)."""

    busy_timeout = 10.0  # seconds to wait for another program's write to finish

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / SUPPRESSIONS_DB

    def _database(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return state_database(self.path, "suppression list", _SCHEMA, self.busy_timeout)

    def add(self, address: str, reason: str = "unsubscribed", note: str = "") -> Suppression:
        """Suppress an address (validated and normalized first); adding it again keeps the first entry."""
        if reason not in SUPPRESSION_REASONS:
            raise UsageError(
                f"unknown suppression reason {reason!r}", hint=f"use one of {', '.join(SUPPRESSION_REASONS)}"
            )
        key = address.strip().lower()  # as subscribers.address_key: the same reader, whatever the case
        if not _ADDRESS.fullmatch(key):
            raise UsageError(f"not an email address: {address!r}", hint="one address, like ann@example.org")
        with self._database() as db:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO suppression VALUES (?, ?, ?, ?)", (key, reason, time.time(), note)
                )
            row = db.execute(
                "SELECT address, reason, added, note FROM suppression WHERE address = ?", (key,)
            ).fetchone()
        return Suppression(*row)

    def remove(self, address: str) -> bool:
        """Take an address off the list (a reader who subscribed again); True if it was there."""
        with self._database() as db, db:
            cursor = db.execute("DELETE FROM suppression WHERE address = ?", (address.strip().lower(),))
        return cursor.rowcount > 0

    def entries(self) -> list[Suppression]:
        if not self.path.exists():
            return []
        with self._database() as db:
            rows = db.execute("SELECT address, reason, added, note FROM suppression ORDER BY added, address")
            return [Suppression(*row) for row in rows]

    def reasons(self) -> dict[str, str]:
        """address key -> reason, for every suppressed address."""
        return {entry.address: entry.reason for entry in self.entries()}
