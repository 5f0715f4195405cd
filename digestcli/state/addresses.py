"""What email-validator said about the addresses the quick check could not settle, kept in the
workspace state (``.digest/addresses.sqlite3``) so that the next read of the list asks it again
only about addresses it has never seen.

Only the unusual addresses are kept (an internationalized domain, a quoted local part, an invalid
one with its reason): plain ones are checked faster than they could be looked up. Every answer is
kept with the validator's version and the version of digest's own quick check
(``subscribers.checker_version``); a new version of either starts afresh, its rules may have changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from digestcli.state import make_state_dir, state_file_error

ADDRESSES_DB = "addresses.sqlite3"
_SCHEMA = """CREATE TABLE IF NOT EXISTS address (address TEXT PRIMARY KEY,
    email TEXT NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checker (version TEXT NOT NULL);"""


class AddressMemory:
    """The answers kept for one workspace, for one version of the validator.

    Reading opens the file read-only (a dry run makes nothing); ``remember`` makes it when needed.
    A memory that cannot be read is no memory: the addresses are checked again, never refused.
    """

    busy_timeout = 5.0

    def __init__(self, state_dir: str | Path, version: str):
        self.path = Path(state_dir) / ADDRESSES_DB
        self.version = version
        self._db: sqlite3.Connection | None = None
        self._opened = False

    def recall(self, address: str) -> tuple[str, str] | None:
        """(normalized address, "") or ("", why it is invalid) when this address was checked before."""
        db = self._reader()
        if db is None:
            return None
        try:
            row = db.execute("SELECT email, reason FROM address WHERE address = ?", (address,)).fetchone()
        except sqlite3.Error:
            self._db = None  # damaged or changed under us: check the addresses again
            return None
        return (row[0], row[1]) if row else None

    def remember(self, answers: Iterable[tuple[str, str, str]]) -> int:
        """Keep (address, normalized, reason) answers; how many. Makes the file when there are some."""
        rows = sorted(answers)
        if not rows:
            return 0
        self.close()
        make_state_dir(self.path.parent)
        try:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                db.execute("BEGIN IMMEDIATE")
                found = db.execute("SELECT version FROM checker").fetchone()
                if found is None or found[0] != self.version:
                    db.execute("DELETE FROM address")
                    db.execute("DELETE FROM checker")
                    db.execute("INSERT INTO checker (version) VALUES (?)", (self.version,))
                db.executemany(
                    "INSERT OR REPLACE INTO address (address, email, reason) VALUES (?, ?, ?)", rows
                )
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, "address memory") from None
        return len(rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db, self._opened = None, False

    def _reader(self) -> sqlite3.Connection | None:
        if self._opened:
            return self._db
        self._opened = True
        if not self.path.exists():
            return None
        try:
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.busy_timeout
            )
        except sqlite3.Error:
            return None
        try:
            found = db.execute("SELECT version FROM checker").fetchone()
        except sqlite3.Error:
            found = None
        if found is None or found[0] != self.version:
            db.close()
            return None
        self._db = db
        return db
