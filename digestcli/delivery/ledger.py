"""The ledger: one row per (issue, reader) in SQLite, recording what was tried and what the server said.

A send resumes from the ledger, so it must never claim more than it knows. The rule that makes a
SIGKILL safe: a row is committed as ``sending`` before its message's data can reach the server, and
as ``delivered`` only after the server's 250. A row still ``sending`` when a new run starts was in
flight when the last one died; it becomes ``unknown`` (perhaps delivered, perhaps not) and is sent
again only when the editor asks for it.

Writes are one small transaction each (WAL, synchronous=NORMAL: a commit survives the process being
killed, which is the failure that matters here; only a power cut can lose the last few). Batching
them would make a kill turn a whole batch into ``unknown``; at about 20 µs a commit it is not worth it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LEDGER_DB = "ledger.sqlite3"

PENDING = "pending"  # not tried yet, or stopped before its data went out
SENDING = "sending"  # in flight: data may be on its way
DELIVERED = "delivered"  # the server answered 250 to the data
DEFERRED = "deferred"  # temporary failures used up this run's tries; tried again next run
FAILED = "failed"  # the server refused it for good (5xx); retried only when asked
UNKNOWN = "unknown"  # the data went out but no reply came back; resent only when asked
SKIPPED = "skipped"  # on the suppression list
STATES = (PENDING, SENDING, DELIVERED, DEFERRED, FAILED, UNKNOWN, SKIPPED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery (
    issue_id TEXT NOT NULL,
    address TEXT NOT NULL,       -- the reader's key: the normalized address, lowercase
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT NOT NULL DEFAULT '',  -- the server's last reply, or why there is none
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (issue_id, address)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Entry:
    issue_id: str
    address: str
    state: str
    attempts: int
    reply: str
    updated: float


@dataclass(frozen=True)
class IssueStatus:
    """What ``digest status`` shows for an issue."""

    issue_id: str
    counts: dict[str, int]  # state -> readers, every state present (zeros included)
    problems: tuple[Entry, ...]  # failed, deferred and unknown rows, with the server's reply
    first: float  # when the issue's first row was written
    last: float  # the latest change

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Ledger:
    """The ledger of a workspace. Safe to share between threads: writes take a lock."""

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / LEDGER_DB
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: every statement outside BEGIN...COMMIT commits on its own.
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------

    def states(self, issue_id: str) -> dict[str, str]:
        """address -> state for every reader the issue has a row for."""
        with self._lock:
            rows = self._db.execute("SELECT address, state FROM delivery WHERE issue_id = ?", (issue_id,))
            return dict(rows.fetchall())

    def entry(self, issue_id: str, address: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT issue_id, address, state, attempts, reply, updated FROM delivery"
                " WHERE issue_id = ? AND address = ?",
                (issue_id, address),
            ).fetchone()
        return Entry(*row) if row else None

    def issues(self) -> list[str]:
        """Every issue the ledger knows, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT issue_id FROM delivery GROUP BY issue_id ORDER BY MIN(created)")
            return [issue_id for (issue_id,) in rows]

    def status(self, issue_id: str) -> IssueStatus:
        with self._lock:
            counts = dict.fromkeys(STATES, 0)
            rows = self._db.execute(
                "SELECT state, COUNT(*), MIN(created), MAX(updated) FROM delivery"
                " WHERE issue_id = ? GROUP BY state",
                (issue_id,),
            ).fetchall()
            problems = self._db.execute(
                "SELECT issue_id, address, state, attempts, reply, updated FROM delivery"
                " WHERE issue_id = ? AND state IN (?, ?, ?) ORDER BY state, updated",
                (issue_id, FAILED, DEFERRED, UNKNOWN),
            ).fetchall()
        for state, count, _, _ in rows:
            counts[state] = count
        first = min((row[2] for row in rows), default=0.0)
        last = max((row[3] for row in rows), default=0.0)
        return IssueStatus(issue_id, counts, tuple(Entry(*row) for row in problems), first, last)

    # -- writing ----------------------------------------------------------------------------------

    def recover(self) -> int:
        """Turn every row left ``sending`` by a run that died into ``unknown``; how many there were.

        Call it only while holding the send lock: a live run's rows are ``sending`` too.
        """
        with self._lock:
            cursor = self._db.execute(
                "UPDATE delivery SET state = ?, reply = 'in flight when an earlier send stopped', updated = ?"
                " WHERE state = ?",
                (UNKNOWN, time.time(), SENDING),
            )
            return cursor.rowcount

    def plan(self, issue_id: str, wanted: Iterable[str], suppressed: dict[str, str]) -> None:
        """Make sure every reader of this run has a row, and that suppression is up to date.

        A reader suppressed since the last run is ``skipped`` if still waiting for the issue (a row
        that says delivered, failed or unknown keeps saying so); one who has come off the list goes
        back to ``pending``.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO delivery (issue_id, address, state, created, updated)"
                    " VALUES (?, ?, ?, ?, ?)",
                    ((issue_id, address, PENDING, now, now) for address in wanted),
                )
                self._db.execute(
                    "UPDATE delivery SET state = ?, reply = '', updated = ? WHERE issue_id = ? AND state = ?",
                    (PENDING, now, issue_id, SKIPPED),
                )
                self._db.executemany(
                    "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                    " WHERE issue_id = ? AND address = ? AND state IN (?, ?)",
                    (
                        (SKIPPED, f"suppressed: {reason}", now, issue_id, address, PENDING, DEFERRED)
                        for address, reason in suppressed.items()
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def sending(self, issue_id: str, address: str) -> None:
        """Committed before the message's data may leave: the crash-safety line."""
        with self._lock:
            self._db.execute(
                "UPDATE delivery SET state = ?, attempts = attempts + 1, updated = ?"
                " WHERE issue_id = ? AND address = ?",
                (SENDING, time.time(), issue_id, address),
            )

    def record(self, issue_id: str, address: str, state: str, reply: str) -> None:
        """The outcome of an attempt (or of an interruption: ``pending`` takes the attempt back)."""
        with self._lock:
            self._db.execute(
                "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                + (", attempts = MAX(attempts - 1, 0)" if state == PENDING else "")
                + " WHERE issue_id = ? AND address = ?",
                (state, reply, time.time(), issue_id, address),
            )


def read_status(state_dir: str | Path, issue_id: str | None = None) -> list[IssueStatus]:
    """``digest status``: one issue, or every issue the ledger knows (oldest first).

    Reads only: a workspace that never sent anything has no ledger, and gets none made for it.
    """
    if not (Path(state_dir) / LEDGER_DB).exists():
        return []
    with Ledger(state_dir) as ledger:
        known = ledger.issues()
        return [ledger.status(issue) for issue in known if issue_id in (None, issue)]
