"""The suppression list: addresses never to mail again (unsubscribed, bounced, complained), kept in
the workspace state so that a reader who left stays out when an old copy of the list comes back.

Every change is also written to a history (added, with its reason; undone, with the date), so that
a reader put back and later suppressed again leaves a trail the editor can read.

Addresses are stored as the send keys readers (``subscribers.address_key``: case folded). The
full address check is the caller's (``digest unsubscribe`` validates what it is given); this
module only refuses what cannot be an address at all, and imports no validator.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from digestcli.errors import UsageError
from digestcli.state import address_key, state_database

SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained")
SUPPRESSIONS_DB = "suppressions.sqlite3"
_SCHEMA = """CREATE TABLE IF NOT EXISTS suppression (address TEXT PRIMARY KEY,
    reason TEXT NOT NULL, added REAL NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suppression_history (address TEXT NOT NULL,
    change TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL, note TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS suppression_history_address ON suppression_history (address, at);"""
ADDED, UNDONE = "added", "undone"  # the changes the history records
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str  # one of SUPPRESSION_REASONS
    added: float  # seconds since the epoch
    note: str = ""

    @property
    def since(self) -> str:
        """When it was added, in ISO 8601 with the local offset (``2026-11-21T09:14:03+01:00``)."""
        return iso_time(self.added)


@dataclass(frozen=True)
class Change:
    """A line of the history: an address added (with its reason) or put back."""

    address: str
    change: str  # ADDED or UNDONE
    reason: str
    at: float
    note: str = ""


def iso_time(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


class SuppressionList:
    """Addresses never to mail again, kept in the workspace state (SQLite)."""

    busy_timeout = 10.0  # seconds to wait for another program's write to finish

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / SUPPRESSIONS_DB

    def _database(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return state_database(self.path, "suppression list", _SCHEMA, self.busy_timeout)

    def add(self, address: str, reason: str = "unsubscribed", note: str = "") -> Suppression:
        """Suppress an address (validated and normalized first); adding it again keeps the first entry."""
        return self.add_many([(address, reason, note)])[0]

    def add_many(self, entries: Iterable[tuple[str, str, str]]) -> list[Suppression]:
        """Suppress each (address, reason, note) in one transaction; an address already on the list
        keeps its first entry. The entries as they stand after, in the order given."""
        wanted = [(_key(address), _reason(reason), note) for address, reason, note in entries]
        if not wanted:
            return []
        now = time.time()
        with self._database() as db:
            with db:
                for key, reason, note in wanted:
                    added = db.execute(
                        "INSERT OR IGNORE INTO suppression VALUES (?, ?, ?, ?)", (key, reason, now, note)
                    ).rowcount
                    if added:
                        db.execute(
                            "INSERT INTO suppression_history VALUES (?, ?, ?, ?, ?)",
                            (key, ADDED, reason, now, note),
                        )
            return [
                Suppression(
                    *db.execute(
                        "SELECT address, reason, added, note FROM suppression WHERE address = ?", (key,)
                    ).fetchone()
                )
                for key, _, _ in wanted
            ]

    def undo(self, address: str, note: str = "") -> Suppression | None:
        """Put a reader back: the address leaves the list, and the history says when (and why,
        in ``note``). The entry it had, or None when it was not on the list."""
        key = address_key(address)
        if not self.path.exists():
            return None
        with self._database() as db, db:
            row = db.execute(
                "SELECT address, reason, added, note FROM suppression WHERE address = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM suppression WHERE address = ?", (key,))
            db.execute(
                "INSERT INTO suppression_history VALUES (?, ?, ?, ?, ?)",
                (key, UNDONE, row[1], time.time(), note),
            )
        return Suppression(*row)

    def history(self, address: str | None = None) -> list[Change]:
        """Every change, oldest first; only one address's when given."""
        if not self.path.exists():
            return []
        query = "SELECT address, change, reason, at, note FROM suppression_history"
        arguments: tuple[str, ...] = ()
        if address is not None:
            query += " WHERE address = ?"
            arguments = (address_key(address),)
        with self._database() as db:
            return [Change(*row) for row in db.execute(query + " ORDER BY at, rowid", arguments)]

    def last_undone(self, address: str) -> float | None:
        """When the address was last put back, or None (never, or no list yet)."""
        undone = [change.at for change in self.history(address) if change.change == UNDONE]
        return undone[-1] if undone else None

    def undone(self) -> dict[str, float]:
        """address -> when it was last put back, for every address ever put back."""
        if not self.path.exists():
            return {}
        with self._database() as db:
            rows = db.execute(
                "SELECT address, MAX(at) FROM suppression_history WHERE change = ? GROUP BY address",
                (UNDONE,),
            )
            return dict(rows.fetchall())

    def entries(self) -> list[Suppression]:
        if not self.path.exists():
            return []
        with self._database() as db:
            rows = db.execute("SELECT address, reason, added, note FROM suppression ORDER BY added, address")
            return [Suppression(*row) for row in rows]

    def reasons(self) -> dict[str, str]:
        """address key -> reason, for every suppressed address."""
        return {entry.address: entry.reason for entry in self.entries()}


def _key(address: str) -> str:
    key = address_key(address)
    if not _ADDRESS.fullmatch(key):
        raise UsageError(f"not an email address: {address!r}", hint="one address, like ann@example.org")
    return key


def _reason(reason: str) -> str:
    if reason not in SUPPRESSION_REASONS:
        raise UsageError(
            f"unknown suppression reason {reason!r}", hint=f"use one of {', '.join(SUPPRESSION_REASONS)}"
        )
    return reason
