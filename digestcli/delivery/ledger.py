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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from digestcli.subscribers import make_state_dir, state_file_error

LEDGER_DB = "ledger.sqlite3"

PENDING = "pending"  # not tried yet, or stopped before its data went out
SENDING = "sending"  # in flight: data may be on its way
DELIVERED = "delivered"  # the server answered 250 to the data
DEFERRED = "deferred"  # temporary failures used up this run's tries; tried again next run
FAILED = "failed"  # the server refused it for good (5xx); retried only when asked
UNKNOWN = "unknown"  # the data went out but no reply came back; resent only when asked
SKIPPED = "skipped"  # on the suppression list, or no longer in the reader list
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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[Concatenate[Ledger, _P], _R]) -> Callable[Concatenate[Ledger, _P], _R]:
    """SQLite's errors as digest's: a locked or damaged ledger is the editor's to fix, not a bug."""

    def guarded(ledger: Ledger, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(ledger, *args, **kwargs)
        except sqlite3.Error as exc:
            raise state_file_error(exc, ledger.path, "ledger") from None

    guarded.__doc__, guarded.__name__ = method.__doc__, method.__name__
    return guarded


class Ledger:
    """The ledger of a workspace. Safe to share between threads: writes take a lock.

    ``read_only`` opens an existing ledger for reading and changes nothing, not even its schema
    (``digest status``, planning before a send, a dry run).
    """

    busy_timeout = 30.0  # seconds to wait for another program's write to finish

    def __init__(self, state_dir: str | Path, *, read_only: bool = False):
        self.path = Path(state_dir) / LEDGER_DB
        self._lock = threading.Lock()
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
                return
            make_state_dir(self.path.parent)
            # isolation_level=None: every statement outside BEGIN...COMMIT commits on its own.
            self._db = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, "ledger") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------

    @_guarded
    def states(self, issue_id: str) -> dict[str, str]:
        """address -> state for every reader the issue has a row for."""
        with self._lock:
            rows = self._db.execute("SELECT address, state FROM delivery WHERE issue_id = ?", (issue_id,))
            return dict(rows.fetchall())

    @_guarded
    def entry(self, issue_id: str, address: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT issue_id, address, state, attempts, reply, updated FROM delivery"
                " WHERE issue_id = ? AND address = ?",
                (issue_id, address),
            ).fetchone()
        return Entry(*row) if row else None

    @_guarded
    def issues(self) -> list[str]:
        """Every issue the ledger knows, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT issue_id FROM delivery GROUP BY issue_id ORDER BY MIN(created)")
            return [issue_id for (issue_id,) in rows]

    @_guarded
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

    @_guarded
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

    @_guarded
    def plan(self, issue_id: str, wanted: Iterable[str], skipped: Mapping[str, str]) -> None:
        """Record a run's plan: every reader in ``wanted`` has a row (one that was ``skipped`` goes
        back to ``pending``), and every reader in ``skipped`` (address -> why) that is still waiting
        for the issue is ``skipped``: a row that says delivered, failed or unknown keeps saying so.
        Rows of readers in neither are left as they are. See ``plan.plan_readers``, which decides.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT address, state, reply FROM delivery WHERE issue_id = ?", (issue_id,)
                )
                current = {address: (state, reply) for address, state, reply in rows}
                new: list[tuple[str, str, str, str, float, float]] = []
                changed: list[tuple[str, str, float, str, str]] = []
                for address in wanted:
                    found = current.get(address)
                    if address in skipped:
                        continue
                    if found is None:
                        new.append((issue_id, address, PENDING, "", now, now))
                    elif found[0] == SKIPPED:
                        changed.append((PENDING, "", now, issue_id, address))
                for address, why in skipped.items():
                    found = current.get(address)
                    if found is None:
                        new.append((issue_id, address, SKIPPED, why, now, now))
                    elif found[0] in (PENDING, DEFERRED) or (found[0] == SKIPPED and found[1] != why):
                        changed.append((SKIPPED, why, now, issue_id, address))
                self._db.executemany(
                    "INSERT OR IGNORE INTO delivery (issue_id, address, state, reply, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    new,
                )
                self._db.executemany(
                    "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                    " WHERE issue_id = ? AND address = ?",
                    changed,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @_guarded
    def sending(self, issue_id: str, address: str) -> None:
        """Committed before the message's data may leave: the crash-safety line."""
        with self._lock:
            self._db.execute(
                "UPDATE delivery SET state = ?, attempts = attempts + 1, updated = ?"
                " WHERE issue_id = ? AND address = ?",
                (SENDING, time.time(), issue_id, address),
            )

    @_guarded
    def record(self, issue_id: str, address: str, state: str, reply: str) -> None:
        """The outcome of an attempt (or of an interruption: ``pending`` takes the attempt back)."""
        with self._lock:
            self._db.execute(
                "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                + (", attempts = MAX(attempts - 1, 0)" if state == PENDING else "")
                + " WHERE issue_id = ? AND address = ?",
                (state, reply, time.time(), issue_id, address),
            )


def read_states(state_dir: str | Path, issue_id: str) -> dict[str, str]:
    """address -> state for one issue, reading only: no ledger yet means no rows, and none is made."""
    if not (Path(state_dir) / LEDGER_DB).exists():
        return {}
    with Ledger(state_dir, read_only=True) as ledger:
        return ledger.states(issue_id)


def read_status(state_dir: str | Path, issue_id: str | None = None) -> list[IssueStatus]:
    """``digest status``: one issue, or every issue the ledger knows (oldest first).

    Reads only: a workspace that never sent anything has no ledger, and gets none made for it.
    """
    if not (Path(state_dir) / LEDGER_DB).exists():
        return []
    with Ledger(state_dir, read_only=True) as ledger:
        known = ledger.issues()
        return [ledger.status(issue) for issue in known if issue_id in (None, issue)]
