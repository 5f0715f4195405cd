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

Writes are small transactions (WAL, synchronous=NORMAL: a commit survives the process being
killed, which is the failure that matters here; only a power cut can lose the last few). A send
writes one per message: a delivery (``landed``) is committed with the next ``sending``, which
must be committed before its data leaves anyway, or by ``flush()`` when no message follows soon,
or by ``flush_stale()`` once it has waited ``STALE`` seconds (a server slow to answer the next
message's commands: the send calls it on a timer). Until then the delivered row says ``sending``,
so a kill meanwhile makes it ``unknown``, never ``delivered`` wrongly, and never more rows than
there are connections: each connection's previous reader is written with its next. Batching more
than that would make a kill turn a whole batch into ``unknown``.

A transport whose messages must reach the disk before their delivery is committed (the outbox)
gives ``sync_with`` its ``sync``: every write of deliveries calls it first. Those deliveries are
written in groups (``SYNC_GROUP``, or ``STALE`` seconds), so that each sync is shared: a kill
meanwhile turns up to a group into ``unknown``.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

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

# A delivery not yet written is written after waiting this long (seconds), whatever comes next.
STALE = 0.05
# Deliveries a transport's sync (see sync_with) is shared by, at most.
SYNC_GROUP = 64

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
CREATE TABLE IF NOT EXISTS run_size (
    issue_id TEXT PRIMARY KEY,
    readers INTEGER NOT NULL     -- the issue's rows once its latest run's plan is written (begin_run)
) WITHOUT ROWID;
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


_SENDING = (
    "UPDATE delivery SET state = ?, attempts = attempts + 1, updated = ? WHERE issue_id = ? AND address = ?"
)
_DELIVERED = "UPDATE delivery SET state = ?, reply = ?, updated = ? WHERE issue_id = ? AND address = ?"
# A reader a send reaches with no row yet (add_pending writes them ahead; this is the guarantee).
# Deliveries written with the next `sending` in one statement (its own transaction: a multi-row
# upsert), when fewer than this many and no sync is shared by them; a group (the outbox's) gets a
# transaction of UPDATEs.
_ONE_STATEMENT = 8


@functools.cache
def _upsert(rows: int) -> str:
    """``rows`` rows of (issue_id, address, state, attempts, reply, created, updated), written as
    _DELIVERED (attempts 0: the reply kept) and _SENDING/_NEW_SENDING (attempts 1: one more, the
    last reply left as it was) would write them."""
    return (
        "INSERT INTO delivery (issue_id, address, state, attempts, reply, created, updated) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
        + " ON CONFLICT (issue_id, address) DO UPDATE SET state = excluded.state,"
        " attempts = delivery.attempts + excluded.attempts,"
        " reply = CASE WHEN excluded.attempts THEN delivery.reply ELSE excluded.reply END,"
        " updated = excluded.updated"
    )


_NEW_SENDING = (
    "INSERT INTO delivery (issue_id, address, state, attempts, reply, created, updated)"
    " VALUES (?, ?, ?, 1, '', ?, ?)"
)


class Entry(NamedTuple):
    issue_id: str
    address: str
    state: str
    attempts: int
    reply: str
    updated: float


class SentIssue(NamedTuple):
    """An issue in the register: what it was when it was first sent."""

    issue_id: str
    number: int | None
    date: str
    subject: str
    first_sent: float
    draft: str = ""  # the draft's absolute path at the issue's latest run


class IssueStatus(NamedTuple):
    """What ``digest status`` shows for an issue."""

    issue_id: str
    counts: dict[str, int]  # state -> readers, every state present (zeros included)
    problems: tuple[Entry, ...]  # failed, deferred and unknown rows, with the server's reply
    first: float  # when the issue's first row was written
    last: float  # the latest change
    # Readers the latest run planned that have no row yet: a send writes them as it reaches them
    # (or when it ends), so these are counted as pending (in ``counts``) while it runs or after a kill.
    not_reached: int = 0

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
        # (issue id, address, reply, when) of deliveries not yet written (see landed()): appended
        # by worker threads without the lock (a deque's append and popleft are atomic), drained by
        # the writer with it, so that a delivery never waits on another thread's commit.
        self._landed: deque[tuple[str, str, str, float]] = deque()
        self._sync: Callable[[], None] | None = None  # see sync_with
        # (issue id, address) of deliveries a failed sync kept from being written (see unsynced).
        self._unsynced: list[tuple[str, str]] = []
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
        try:
            if self._landed:
                self.flush()
        finally:
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
    def rows_of(self, issue_id: str, old_id: str) -> str:
        """The id the issue's rows are under: its own, or, in a version 1 ledger that has none
        under it, the draft's file name ``old_id`` (unless that is a registered issue's id; a send
        adopts them)."""
        with self._lock:
            found = self._db.execute(
                "SELECT 1 FROM delivery WHERE issue_id = ? LIMIT 1", (issue_id,)
            ).fetchone()
        if found or not old_id or old_id == issue_id or old_id in self.sent_issues():
            return issue_id
        return old_id

    def state_view(self, issue_id: str) -> Mapping[str, str]:
        """address -> state for the issue, as ``states`` gives it but read as it is asked for:
        what the checks before a send need of a ledger of a million rows, in flat memory."""
        return _States(self, issue_id)

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
    def count(self, issue_id: str) -> int:
        """How many readers the issue has a row for."""
        with self._lock:
            found = self._db.execute("SELECT COUNT(*) FROM delivery WHERE issue_id = ?", (issue_id,))
            return int(found.fetchone()[0])

    @_guarded
    def chunk(self, issue_id: str, after: str, size: int) -> list[tuple[str, str]]:
        """(address, state) of up to ``size`` of the issue's rows, the next after ``after`` by address."""
        with self._lock:
            return self._db.execute(
                "SELECT address, state FROM delivery WHERE issue_id = ? AND address > ?"
                " ORDER BY address LIMIT ?",
                (issue_id, after, size),
            ).fetchall()

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
            try:
                size = self._db.execute(
                    "SELECT readers FROM run_size WHERE issue_id = ?", (issue_id,)
                ).fetchone()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
                size = None  # a read-only look at a ledger older than the table
        for state, count, _, _ in rows:
            counts[state] = count
        not_reached = max(0, int(size[0]) - sum(counts.values())) if size else 0
        counts[PENDING] += not_reached
        first = min((row[2] for row in rows), default=0.0)
        last = max((row[3] for row in rows), default=0.0)
        problems_found = tuple(Entry(*row) for row in problems)
        return IssueStatus(issue_id, counts, problems_found, first, last, not_reached)

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
        Rows of readers in neither are left as they are. See ``plan.plan_readers``, which decides;
        a send records its plan with ``plan_from``, which reads the same from a file.
        """
        with self._lock:
            db = self._db
            db.execute("CREATE TEMP TABLE IF NOT EXISTS plan_wanted (address TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS plan_skipped (address TEXT PRIMARY KEY, why TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM temp.plan_wanted")
                db.execute("DELETE FROM temp.plan_skipped")
                db.executemany(
                    "INSERT OR IGNORE INTO temp.plan_skipped VALUES (?, ?)", sorted(skipped.items())
                )
                db.executemany(
                    "INSERT OR IGNORE INTO temp.plan_wanted VALUES (?)",
                    ((address,) for address in sorted(wanted) if address not in skipped),
                )
                self._apply_plan(issue_id, "temp.plan_wanted", "temp.plan_skipped")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @_guarded
    def plan_from(self, issue_id: str, path: Path, wanted: str, skipped: str, *, new: bool = True) -> None:
        """Record a run's plan as ``plan`` does, read from the SQLite file ``path``: the view or
        table ``wanted`` (address) and ``skipped`` (address, why), none of it through memory. A
        million new rows take a second: they are written in key order, in one transaction.

        ``new=False`` writes all but the rows of readers in ``wanted`` who have none yet: a send
        writes those as it reaches the readers (``add_pending``), and the rest, again with this,
        when it ends; its first message does not wait for a million rows. (A row that is missing
        means pending to every reader of the ledger: a send killed meanwhile loses nothing.)"""
        if not (wanted.isidentifier() and skipped.isidentifier()):
            raise ValueError(f"not table names: {wanted!r}, {skipped!r}")
        with self._lock:
            db = self._db
            db.execute("ATTACH DATABASE ? AS plan", (str(path),))
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._apply_plan(issue_id, f"plan.{wanted}", f"plan.{skipped}", new=new)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("DETACH DATABASE plan")

    def _apply_plan(self, issue_id: str, wanted: str, skipped: str, *, new: bool = True) -> None:
        """The writes of ``plan``, from two tables (lock held, in a transaction). Sorted by address:
        B-tree inserts in key order are three times faster than in list order."""
        now = time.time()
        if new:
            self._db.execute(
                "INSERT INTO delivery (issue_id, address, state, reply, created, updated)"
                f" SELECT ?, address, ?, '', ?, ? FROM {wanted} WHERE true ORDER BY address"
                " ON CONFLICT (issue_id, address) DO UPDATE SET state = excluded.state, reply = '',"
                " updated = excluded.updated WHERE delivery.state = ?",
                (issue_id, PENDING, now, now, SKIPPED),
            )
        else:  # led by the issue's skipped rows: a first send has none
            self._db.execute(
                "UPDATE delivery SET state = ?, reply = '', updated = ? WHERE issue_id = ? AND state = ?"
                f" AND EXISTS (SELECT 1 FROM {wanted} w WHERE w.address = delivery.address)",
                (PENDING, now, issue_id, SKIPPED),
            )
        self._db.execute(
            "INSERT INTO delivery (issue_id, address, state, reply, created, updated)"
            f" SELECT ?, address, ?, why, ?, ? FROM {skipped} WHERE true ORDER BY address"
            " ON CONFLICT (issue_id, address) DO UPDATE SET state = excluded.state,"
            " reply = excluded.reply, updated = excluded.updated"
            " WHERE delivery.state IN (?, ?) OR (delivery.state = ? AND delivery.reply != excluded.reply)",
            (issue_id, SKIPPED, now, now, PENDING, DEFERRED, SKIPPED),
        )

    @_guarded
    def add_pending(self, issue_id: str, addresses: Iterable[str]) -> None:
        """Rows for readers a send is about to mail that have none yet (see ``plan_from``)."""
        now = time.time()
        rows = [(issue_id, address, PENDING, now, now) for address in sorted(addresses)]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO delivery (issue_id, address, state, reply, created, updated)"
                    " VALUES (?, ?, ?, '', ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @_guarded
    def sending(self, issue_id: str, address: str) -> None:
        """Committed before the message's data may leave: the crash-safety line. The deliveries
        ``landed`` since the last write are committed with it, in the same transaction (with a
        ``sync_with``, only a group's worth)."""
        with self._lock:
            landed = self._landed
            if self._sync is not None and len(landed) < SYNC_GROUP and not self._stale(STALE):
                self._set_sending(issue_id, address)  # the deliveries wait for their group
                self._note(issue_id, SENDING, address)
                return
            self._write_landed((issue_id, address))

    def landed(self, issue_id: str, address: str, reply: str) -> None:
        """The server took the message of a reader whose row says ``sending``: written as
        ``delivered`` with the next ``sending`` (one commit for the two), by ``flush()``, or by
        ``flush_stale()``. Until then the row says ``sending``, which a killed run leaves as
        ``unknown``."""
        self._landed.append((issue_id, address, reply, time.monotonic()))

    def unsynced(self) -> list[tuple[str, str]]:
        """(issue id, address) of the deliveries a failed sync kept from being written since the
        last call: their rows stay ``sending``, which the next run makes ``unknown``."""
        with self._lock:
            taken, self._unsynced = self._unsynced, []
        return taken

    def sync_with(self, sync: Callable[[], None] | None) -> None:
        """``sync()`` is called before every write of deliveries, and must raise if what it makes
        durable may not be: a transport's messages reach the disk before the ledger says they
        were delivered (the outbox's, for a power cut). None: no sync."""
        self._sync = sync

    @_guarded
    def flush(self) -> int:
        """Write the deliveries ``landed`` and not yet written; how many there were."""
        with self._lock:
            return self._write_landed(None)

    @_guarded
    def flush_stale(self, age: float = STALE) -> int:
        """``flush()``, if a delivery not yet written has waited ``age`` seconds or more: what a
        send calls on a timer, so that a server slow to answer the next message does not keep a
        delivery unwritten. How many were written. Cheap when none has waited (no lock taken)."""
        if not self._stale(age):
            return 0
        with self._lock:
            return self._write_landed(None)

    def _stale(self, age: float) -> bool:
        try:
            oldest = self._landed[0][3]
        except IndexError:
            return False
        return time.monotonic() - oldest >= age

    def _set_sending(self, issue_id: str, address: str) -> None:
        """The row says ``sending``, one attempt more; a reader with no row yet gets one (lock held)."""
        now = time.time()
        if not self._db.execute(_SENDING, (SENDING, now, issue_id, address)).rowcount:
            self._db.execute(_NEW_SENDING, (issue_id, address, SENDING, now, now))

    def _write_landed(self, sending: tuple[str, str] | None) -> int:
        """The deliveries landed, and then ``sending`` (issue id, address), in one transaction;
        then in the journal, after the ledger as ``record`` does for what says as much as
        ``sending`` or more. How many deliveries (lock held)."""
        landed = []
        with contextlib.suppress(IndexError):
            while True:
                landed.append(self._landed.popleft())
        now = time.time()
        if not landed:
            if sending is not None:
                self._set_sending(*sending)
                self._note(sending[0], SENDING, sending[1])
            return 0
        if self._sync is not None:
            try:
                self._sync()  # what the deliveries say must be on the disk before they say it
            except Exception:
                # Not known to be on the disk: never written as delivered. Their rows stay
                # `sending`, which the next run makes `unknown`: perhaps delivered, perhaps not.
                self._unsynced += [(issue_id, address) for issue_id, address, _, _ in landed]
                raise
            except BaseException:
                self._landed.extendleft(reversed(landed))  # Ctrl-C: still to be written
                raise
        try:
            if self._sync is None and len(landed) < _ONE_STATEMENT:  # a delivery or two, and `sending`
                values: list[Any] = []
                for issue_id, address, reply, _ in landed:
                    values += (issue_id, address, DELIVERED, 0, reply, now, now)
                if sending is not None:
                    values += (*sending, SENDING, 1, "", now, now)
                self._db.execute(_upsert(len(values) // 7), values)
            else:  # a group (the outbox's): the same rows in a transaction of their own
                landed_rows = [(DELIVERED, reply, now, i, address) for i, address, reply, _ in landed]
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(_DELIVERED, landed_rows)
                    if sending is not None:
                        self._set_sending(*sending)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except BaseException:
            self._landed.extendleft(reversed(landed))  # not written: still to be
            raise
        notes = [(issue_id, DELIVERED, address, reply) for issue_id, address, reply, _ in landed]
        if sending is not None:
            notes.append((sending[0], SENDING, sending[1], ""))
        self._note_all(notes)
        return len(landed)

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
            if self._landed:  # the ledger's writes keep the order they were made in
                self._write_landed(None)
            if journal_first:
                self._note(issue_id, state, address, reply)
            if state == DELIVERED and self._sync is not None:
                self._sync()  # on the disk before the ledger says so; a failure leaves it `sending`
            self._db.execute(
                "UPDATE delivery SET state = ?, reply = ?, updated = ?"
                + change
                + " WHERE issue_id = ? AND address = ?",
                (state, reply, time.time(), issue_id, address),
            )
            if not journal_first:
                self._note(issue_id, state, address, reply)

    def _note(self, issue_id: str, state: str, address: str, reply: str = "") -> None:
        self._note_all([(issue_id, state, address, reply)])

    def _note_all(self, notes: list[tuple[str, str, str, str]]) -> None:
        """(issue id, state, address, reply) each to its journal, in as few writes as can be."""
        try:
            if len(notes) == 1:
                self.journal.note(*notes[0])
            else:
                self.journal.note_all(notes)
        except OSError as exc:
            issue_id = notes[0][0]
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
            if self._landed:
                self._write_landed(None)
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
        import json  # here: a ledger opened to read (lint, status) has no use for it

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
        readers: int | None = None,
    ) -> None:
        """A run of the issue starts: register the issue (the first time) and what this run sends,
        here and in the journal. ``readers``: how many rows the issue has once the run's plan is
        written (``SendPlan.readers``), for ``status`` to count those not reached yet."""
        import json

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
                if readers is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO run_size (issue_id, readers) VALUES (?, ?)",
                        (issue_id, readers),
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
        import json

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


class _States(Mapping[str, str]):
    """One issue's rows as a mapping read from the ledger as it is used (``Ledger.state_view``):
    a lookup is a query, and going through them reads them in chunks."""

    _CHUNK = 4096

    def __init__(self, ledger: Ledger, issue_id: str):
        self._ledger, self._issue_id = ledger, issue_id

    def __getitem__(self, address: str) -> str:
        entry = self._ledger.entry(self._issue_id, address)
        if entry is None:
            raise KeyError(address)
        return entry.state

    def __len__(self) -> int:
        return self._ledger.count(self._issue_id)

    def __iter__(self) -> Iterator[str]:
        return (address for address, _ in self.items())

    def items(self) -> Iterator[tuple[str, str]]:  # type: ignore[override]
        after = ""
        while True:
            chunk = self._ledger.chunk(self._issue_id, after, self._CHUNK)
            yield from chunk
            if len(chunk) < self._CHUNK:
                return
            after = chunk[-1][0]

    def values(self) -> Iterator[str]:  # type: ignore[override]
        return (state for _, state in self.items())


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
