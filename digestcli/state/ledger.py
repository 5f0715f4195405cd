"""The ledger: one row per (issue, reader) in SQLite, recording what was tried and what the server said,
and a register of the issues sent, with what each run sent.

A send resumes from the ledger, so it must never claim more than it knows. The rule that makes a
SIGKILL safe: a row is committed as ``sending`` only once the server has accepted the recipient and
the data is about to leave (before that, a kill leaves it ``pending``: nothing went out), and as
``delivered`` only after the server's 250. A row still ``sending`` when a new run starts was in
flight when the last one died; it becomes ``unknown`` (perhaps delivered, perhaps not) and is sent
again only when the editor asks for it.

Issues are keyed on their id (``Issue.issue_id``), not the draft's file name, so a renamed or moved
draft keeps its ledger. Every reader state written here is also appended to the issue's journal
(``journal``), which is what notices a lost ledger and rebuilds it.

Writes are one small transaction each (WAL, synchronous=NORMAL: a commit survives the process being
killed, which is the failure that matters here; only a power cut can lose the last few). Batching
them would make a kill turn a whole batch into ``unknown``; at about 20 µs a commit it is not worth it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from digestcli.errors import DeliveryError
from digestcli.state import (
    DEFERRED,
    DELIVERED,
    FAILED,
    LEDGER_DB,
    PENDING,
    SENDING,
    SKIPPED,
    STATES,
    UNKNOWN,
    make_state_dir,
    rank,
    state_file_error,
)
from digestcli.state.journal import Journal

SCHEMA_VERSION = 2  # 1: rows keyed on the draft's file name, no issue register
_SCHEMA = """
CREATE TABLE IF NOT EXISTS issue (
    issue_id TEXT PRIMARY KEY,
    number INTEGER,              -- the front matter's `issue`, when it has one
    date TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    draft TEXT NOT NULL DEFAULT '',  -- the draft's path at its latest run
    first_sent REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run (
    issue_id TEXT NOT NULL,
    started REAL NOT NULL,
    parts TEXT NOT NULL          -- JSON: part name -> hash of what the run sends (see begin_run)
);
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
class SentIssue:
    """An issue in the register: what it was when it was first sent."""

    issue_id: str
    number: int | None
    date: str
    subject: str
    first_sent: float
    draft: str = ""  # the draft's absolute path at the issue's latest run


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
        self.journal = Journal(state_dir)
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
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, "ledger") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.journal.close()

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
    def legacy_states(self, old_id: str) -> dict[str, str]:
        """The rows a version 1 ledger keeps under a draft's file name, unless that name is a
        registered issue's id (then they are that issue's)."""
        if old_id in self.sent_issues():
            return {}
        return self.states(old_id)

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
            self._note(issue_id, SENDING, address)

    @_guarded
    def record(self, issue_id: str, address: str, state: str, reply: str, *, counted: bool = True) -> None:
        """The outcome of an attempt (or of an interruption: ``pending`` takes the attempt back).

        ``counted``: ``sending`` counted the attempt already. An attempt that ended before its
        data could leave (refused at RCPT, say) never was ``sending``: it is counted here, and a
        ``pending`` has nothing to take back."""
        if state == PENDING:
            change = ", attempts = MAX(attempts - 1, 0)" if counted else ""
        else:
            change = "" if counted else ", attempts = attempts + 1"
        # A record that says less than `sending` goes to the journal first, one that says as much or
        # more goes after the ledger: a kill between the two then leaves the journal saying no more
        # than the ledger, and the next send is not refused for a gap that is not there.
        journal_first = rank(state) < rank(SENDING)
        with self._lock:
            if journal_first:
                self._note(issue_id, state, address, reply)
            self._db.execute(
                "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                + change
                + " WHERE issue_id = ? AND address = ?",
                (state, reply, time.time(), issue_id, address),
            )
            if not journal_first:
                self._note(issue_id, state, address, reply)

    def _note(self, issue_id: str, state: str, address: str, reply: str = "") -> None:
        try:
            self.journal.note(issue_id, state, address, reply)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write the journal: {exc.strerror or exc}",
                where=str(self.journal.path(issue_id)),
                hint=f"check that {self.journal.folder} is a folder you can write, with room on its disk",
            ) from None

    @_guarded
    def settle_in_flight(self, issue_id: str, addresses: Iterable[str], reply: str) -> int:
        """Rows of ``addresses`` still ``sending`` become ``unknown`` (a rushed stop: their workers
        may never say). A row a worker settled meanwhile keeps its outcome; one it settles later
        gets it then. How many were still in flight."""
        count = 0
        with self._lock:
            for address in addresses:
                cursor = self._db.execute(
                    "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                    " WHERE issue_id = ? AND address = ? AND state = ?",
                    (UNKNOWN, reply, time.time(), issue_id, address, SENDING),
                )
                if cursor.rowcount:
                    count += 1
                    self._note(issue_id, UNKNOWN, address, reply)
        return count

    # -- the register of issues -------------------------------------------------------------------

    @_guarded
    def sent_issues(self) -> dict[str, SentIssue]:
        """Every issue in the register (none in a ledger older than the register)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT issue_id, number, date, subject, first_sent, draft FROM issue ORDER BY first_sent"
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return {}  # a read-only look at a version 1 ledger
                raise
        return {row[0]: SentIssue(*row) for row in rows}

    @_guarded
    def last_run(self, issue_id: str) -> dict[str, Any] | None:
        """What the issue's latest run sent (``begin_run``'s ``parts``), or None."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT parts FROM run WHERE issue_id = ? ORDER BY started DESC, rowid DESC LIMIT 1",
                    (issue_id,),
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        if row is None:
            return None
        parts = json.loads(row[0])
        return parts if isinstance(parts, dict) else None

    @_guarded
    def begin_run(
        self,
        issue_id: str,
        *,
        number: int | None,
        date: str,
        subject: str,
        draft: str,
        parts: Mapping[str, str],
    ) -> None:
        """A run of the issue starts: register the issue (the first time) and what this run sends,
        here and in the journal."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO issue (issue_id, number, date, subject, draft, first_sent)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (issue_id, number, date, subject, draft, now),
                )
                self._db.execute("UPDATE issue SET draft = ? WHERE issue_id = ?", (draft, issue_id))
                self._db.execute(
                    "INSERT INTO run (issue_id, started, parts) VALUES (?, ?, ?)",
                    (issue_id, now, json.dumps(dict(parts), sort_keys=True)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            record = {
                "number": number,
                "date": date,
                "subject": subject,
                "draft": draft,
                "parts": dict(parts),
            }
            try:
                self.journal.note_run(issue_id, record)
            except OSError as exc:
                raise DeliveryError(
                    f"cannot write the journal: {exc.strerror or exc}", where=str(self.journal.path(issue_id))
                ) from None

    @_guarded
    def adopt(self, old_id: str, issue_id: str) -> int:
        """Rows a version 1 ledger keeps under the draft's file name move to the issue's id (once,
        and only while that name is no registered issue's and the id has no rows yet); the
        readers who have the issue are written to its journal. How many rows moved."""
        if old_id == issue_id:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                registered = self._db.execute("SELECT 1 FROM issue WHERE issue_id = ?", (old_id,)).fetchone()
                taken = self._db.execute(
                    "SELECT 1 FROM delivery WHERE issue_id = ? LIMIT 1", (issue_id,)
                ).fetchone()
                if registered or taken:
                    self._db.execute("COMMIT")
                    return 0
                moved = self._db.execute(
                    "UPDATE delivery SET issue_id = ? WHERE issue_id = ?", (issue_id, old_id)
                ).rowcount
                rows = self._db.execute(
                    "SELECT address, state, reply FROM delivery WHERE issue_id = ? AND state IN (?, ?, ?, ?)",
                    (issue_id, DELIVERED, UNKNOWN, FAILED, SENDING),
                ).fetchall()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if moved:
                self.journal.note_run(issue_id, {"adopted_from": old_id})
            for address, state, reply in rows:
                self._note(issue_id, state, address, reply)
        return moved

    @_guarded
    def restore(self, issue_id: str, states: Mapping[str, str], runs: Iterable[Mapping[str, Any]]) -> int:
        """Bring back what a journal knows and this ledger does not: readers it has no row for, or
        a row that says less (pending, deferred, skipped) than the journal; a reader the journal
        left ``sending`` is ``unknown``. The issue's register entry and runs too, when missing.
        How many reader rows changed."""
        now = time.time()
        changed = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current = dict(
                    self._db.execute(
                        "SELECT address, state FROM delivery WHERE issue_id = ?", (issue_id,)
                    ).fetchall()
                )
                for address, state in states.items():
                    if state == SENDING:
                        state = UNKNOWN
                    if state not in (DELIVERED, UNKNOWN, FAILED) or rank(state) <= rank(current.get(address)):
                        continue  # the ledger says as much already
                    self._db.execute(
                        "INSERT INTO delivery (issue_id, address, state, attempts, reply, created, updated)"
                        " VALUES (?, ?, ?, 1, 'restored from the journal', ?, ?)"
                        " ON CONFLICT (issue_id, address) DO UPDATE SET state = excluded.state,"
                        " reply = excluded.reply, updated = excluded.updated",
                        (issue_id, address, state, now, now),
                    )
                    changed += 1
                runs = list(runs)
                has_runs = self._db.execute("SELECT 1 FROM run WHERE issue_id = ?", (issue_id,)).fetchone()
                if runs and not has_runs:
                    first = runs[0]
                    number = first.get("number")
                    self._db.execute(
                        "INSERT OR IGNORE INTO issue (issue_id, number, date, subject, draft, first_sent)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            issue_id,
                            number if isinstance(number, int) else None,
                            str(first.get("date") or ""),
                            str(first.get("subject") or ""),
                            str(first.get("draft") or ""),
                            now,
                        ),
                    )
                    for run in runs:
                        parts = run.get("parts")
                        self._db.execute(
                            "INSERT INTO run (issue_id, started, parts) VALUES (?, ?, ?)",
                            (issue_id, now, json.dumps(parts if isinstance(parts, dict) else {})),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return changed


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
