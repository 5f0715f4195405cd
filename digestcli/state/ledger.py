"""The ledger: one row per (issue, reader) in SQLite, recording what was tried and what the server said,
and a register of the issues sent, with what each run sent.

A send resumes from the ledger, so it must never claim more than it knows. The rule that makes a
SIGKILL safe: a reader is recorded as ``sending`` only once the server has accepted the recipient
and the data is about to leave (before that, a kill leaves it ``pending``: nothing went out), and
as ``delivered`` only after the server's 250. A row still ``sending`` when a new run starts was in
flight when the last one died; it becomes ``unknown`` (perhaps delivered, perhaps not) and is sent
again only when the editor asks for it.

Issues are keyed on their id (``Issue.issue_id``), not the draft's file name, so a renamed or moved
draft keeps its ledger. Every reader state written here is also appended to the issue's journal
(``journal``), which is what notices a lost ledger and rebuilds it.

A send's reader states are written ahead to the journal, the ledger's write-ahead record: a
reader's ``sending`` is one append there (one ``write``, which a SIGKILL cannot undo), made before
the message's data may leave, and the rows follow into SQLite in groups (``GROUP`` rows, or once
the oldest has waited ``STALE`` seconds), each group's transaction also moving the issue's mark
(``journal_mark``: how many bytes of the journal the rows include, and whether a run is writing
them). A run that ends closes its mark; one that is killed leaves it open, and the journal's lines
past it are written into the rows (``catch_up``): by the next send under the send lock
(``recover``), before it reads them; and by a program that opens the ledger while no send runs
(one that only reads it does so when the file can be written and what is left is a moment's work,
``ASIDE_MOST``; else it reads the rows as they are). So every row reads as if each state had
been committed on its own, for half the cost of a commit a message.

A delivery (``landed``) is appended with the next ``sending``, which must be appended before its
data leaves anyway, or by ``flush()`` when no message follows soon, or by ``flush_stale()`` once it
has waited ``STALE`` seconds (a server slow to answer the next message's commands: the send calls
it on a timer). Until then the journal says ``sending``, so a kill meanwhile makes the reader
``unknown``, never ``delivered`` wrongly, and never more readers than there are connections.

A transport whose messages must reach the disk before their delivery is said (the outbox) gives
``sync_with`` its ``sync``: every append of deliveries calls it first. Those deliveries are said
in groups (``SYNC_GROUP``, or ``STALE`` seconds), so that each sync is shared: a kill meanwhile
turns up to a group into ``unknown``.

SQLite runs in WAL mode with synchronous=NORMAL, and the journal is not synced line by line: a
state survives the process being killed, which is the failure that matters here; only a power cut
can lose the last few.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Concatenate, Literal, NamedTuple, ParamSpec, TypeVar

from digestcli.errors import DeliveryError, DigestError
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
    no_send_running,
    rank,
    state_file_error,
)
from digestcli.state.journal import Journal

# A delivery not yet said, or a row not yet written, is after waiting this long (seconds).
STALE = 0.05
# Deliveries a transport's sync (see sync_with) is shared by, at most.
SYNC_GROUP = 64
# Rows the journal may be ahead of SQLite by, at most (about two a message: a delivery, a sending).
GROUP = 128
# Bytes of journal a program that only reads the ledger catches up, at most (about 40,000 lines, a
# tenth of a second); a killed run leaves a group's worth, a few kilobytes.
ASIDE_MOST = 4 << 20

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
CREATE TABLE IF NOT EXISTS journal_mark (
    issue_id TEXT PRIMARY KEY,
    applied INTEGER NOT NULL,    -- bytes of the issue's journal the delivery rows include
    open INTEGER NOT NULL        -- 1 while a run writes the rows after its journal (see catch_up)
) WITHOUT ROWID;
"""


# A row as a send writes it from its journal (see _row): (issue_id, address, state, attempts,
# reply, created, updated). attempts 1: a `sending`, one attempt more, the last reply kept; 0: an
# outcome, its reply written. A reader with no row yet gets one (add_pending writes them ahead;
# this is the guarantee).
_UPSERT = (
    "INSERT INTO delivery (issue_id, address, state, attempts, reply, created, updated)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (issue_id, address) DO UPDATE SET state = excluded.state,"
    " attempts = delivery.attempts + excluded.attempts,"
    " reply = CASE WHEN excluded.attempts THEN delivery.reply ELSE excluded.reply END,"
    " updated = excluded.updated"
)
# What catch_up does with a journal missing or shorter than its mark (see there).
Lost = Literal["skip", "raise", "accept"]
_MARK = (
    "INSERT INTO journal_mark (issue_id, applied, open) VALUES (?, ?, ?)"
    " ON CONFLICT (issue_id) DO UPDATE SET applied = excluded.applied, open = excluded.open"
)


def _row(issue_id: str, state: str, address: str, reply: str, now: float) -> tuple[Any, ...]:
    """The row _UPSERT writes for a journal line (issue, state, address, reply)."""
    if state == SENDING:
        return (issue_id, address, SENDING, 1, "", now, now)
    return (issue_id, address, state, 0, reply, now, now)


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
    (``digest status``, planning before a send, a dry run), but for one thing: the rows a killed
    run left only in its journal are written into it first (``catch_up``), when no send runs and
    the file can be written, so that what is read is what happened.
    """

    busy_timeout = 30.0  # seconds to wait for another program's write to finish

    def __init__(self, state_dir: str | Path, *, read_only: bool = False, busy_timeout: float | None = None):
        """``busy_timeout``: seconds to wait for another program's write (the class's default)."""
        if busy_timeout is not None:
            self.busy_timeout = busy_timeout
        self.path = Path(state_dir) / LEDGER_DB
        self.journal = Journal(state_dir)
        self._lock = threading.Lock()
        # (issue id, address, reply, when) of deliveries not yet said (see landed()): appended
        # by worker threads without the lock (a deque's append and popleft are atomic), drained by
        # the writer with it, so that a delivery never waits on another thread's write.
        self._landed: deque[tuple[str, str, str, float]] = deque()
        # Rows said in the journal and not yet written here (see _write_group), oldest first, and
        # since when (time.monotonic()) the oldest has waited.
        self._unwritten: list[tuple[Any, ...]] = []
        self._unwritten_since = 0.0
        self._marked: set[str] = set()  # issues whose journal mark this ledger opened
        self._sync: Callable[[], None] | None = None  # see sync_with
        # (issue id, address) of deliveries a failed sync kept from being said (see unsynced).
        self._unsynced: list[tuple[str, str]] = []
        try:
            if read_only:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(
                    uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
                # A killed run's last lines, caught up while they are few (a moment's work; more
                # is a send's to do, under its lock, while this reads the rows as they are).
                behind = self._behind()
                writable = os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)
                if 0 < behind <= ASIDE_MOST and writable:
                    self._catch_up_aside(Path(state_dir))
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
            if self._behind():
                with no_send_running(self.path.parent) as free:
                    if free:
                        self._catch_up()
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, "ledger") from None

    def close(self) -> None:
        try:
            self._finish()
        finally:
            with self._lock:
                self._db.close()
            self.journal.close()

    @_guarded
    def _finish(self) -> None:
        """Everything said is written, and the marks this ledger opened are closed: the rows and
        the journal agree, and nothing is left for ``catch_up``."""
        with self._lock:
            self._flush()
            if self._marked:
                with self._transaction():
                    for issue_id in self._marked:
                        self._db.execute(_MARK, (issue_id, self._position(issue_id), 0))
                self._marked.clear()

    @staticmethod
    def _catch_up_aside(state_dir: Path) -> None:
        """``catch_up`` through a connection of its own, for a ledger opened to read, if no send
        runs and it can be done at once; else the rows are read as they are (a send catches them
        up first, under its lock). Never an error: reading must go on."""
        with contextlib.suppress(DigestError, OSError, sqlite3.Error), no_send_running(state_dir) as free:
            if free:
                with Ledger(state_dir, busy_timeout=0.2) as writer:
                    writer.catch_up()

    def _open_marks(self) -> dict[str, int]:
        """issue id -> where its rows end in its journal, for each issue whose mark is open: a run
        writes them, or was killed before they caught up (see ``catch_up``)."""
        try:
            return dict(self._db.execute("SELECT issue_id, applied FROM journal_mark WHERE open"))
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}  # a ledger older than the mark
            raise

    def _behind(self) -> int:
        """How many bytes of journal runs left past their marks (see ``catch_up``); cheap."""
        behind = 0
        for issue_id, applied in self._open_marks().items():
            with contextlib.suppress(OSError):
                behind += max(0, self.journal.path(issue_id).stat().st_size - applied)
        return behind

    @_guarded
    def catch_up(self, *, lost: Lost = "skip") -> int:
        """Write into the rows what a run that was killed said only in its journal (the lines past
        its open mark), as the run would have written them, and close its mark; how many lines.
        Call it while holding the send lock: a live run's mark is open too.

        ``lost``: what to do when a journal is missing or shorter than its mark says (deleted or
        replaced since): "skip" it (leave the mark open, for a send to say), "raise" the
        DeliveryError that says so (a send), or "accept" that its last lines are gone and close
        the mark (``digest recover``)."""
        with self._lock:
            return self._catch_up(lost)

    def _catch_up(self, lost: Lost = "skip") -> int:
        count = 0
        for issue_id, applied in self._open_marks().items():
            path = self.journal.path(issue_id)
            try:
                batches, end = self.journal.tail(issue_id, applied)
                if end < applied:
                    if lost == "skip":
                        continue
                    if lost != "accept":
                        raise DeliveryError(
                            f"the journal of issue '{issue_id}' is missing or shorter than the ledger"
                            f" knows it ({max(end, 0):,} of {applied:,} bytes): it was deleted or"
                            " replaced, and the last messages of the send that stopped cannot be read back",
                            where=str(path),
                            hint="put the journal back (from a backup); or run `digest recover` to go on"
                            " without it: readers that send reached last may then get the issue twice",
                        )
                    end = applied
                now = time.time()
                with self._transaction():
                    for batch in batches:  # closes the file once read through
                        rows = [_row(issue_id, *line, now) for line in batch if line[0] in STATES]
                        self._db.executemany(_UPSERT, rows)
                        count += len(rows)
                    self._db.execute(_MARK, (issue_id, end, 0))
            except OSError as exc:
                raise DeliveryError(
                    f"cannot read the journal: {exc.strerror or exc}",
                    where=str(path),
                    hint="a stopped send left the ledger behind it: check the file's permissions",
                ) from None
        return count

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE, then COMMIT, or ROLLBACK if anything fails, the commit included (lock
        held): what is written in it is written whole or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            self.close()
            return
        # Something stopped the work already, and is what to say: what could not be written now
        # is in the journal, past an open mark, and is caught up from there.
        with contextlib.suppress(Exception):
            self.close()

    @_guarded
    def open_mark(self, issue_id: str) -> int | None:
        """Where the issue's rows end in its journal while its mark is open (a run writes them, or
        was killed before they caught up: the lines past it are that run's), else None."""
        with self._lock:
            return self._open_marks().get(issue_id)

    # -- reading ----------------------------------------------------------------------------------

    @_guarded
    def states(self, issue_id: str) -> dict[str, str]:
        """address -> state for every reader the issue has a row for."""
        with self._lock:
            self._write_group()
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
            self._write_group()
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
            self._write_group()
            found = self._db.execute("SELECT COUNT(*) FROM delivery WHERE issue_id = ?", (issue_id,))
            return int(found.fetchone()[0])

    @_guarded
    def chunk(self, issue_id: str, after: str, size: int) -> list[tuple[str, str]]:
        """(address, state) of up to ``size`` of the issue's rows, the next after ``after`` by address."""
        with self._lock:
            self._write_group()
            return self._db.execute(
                "SELECT address, state FROM delivery WHERE issue_id = ? AND address > ?"
                " ORDER BY address LIMIT ?",
                (issue_id, after, size),
            ).fetchall()

    @_guarded
    def issues(self) -> list[str]:
        """Every issue the ledger knows, oldest first."""
        with self._lock:
            self._write_group()
            rows = self._db.execute("SELECT issue_id FROM delivery GROUP BY issue_id ORDER BY MIN(created)")
            return [issue_id for (issue_id,) in rows]

    @_guarded
    def status(self, issue_id: str) -> IssueStatus:
        with self._lock:
            self._write_group()
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
        """Turn every row left ``sending`` by a run that died into ``unknown``, once what it said
        only in its journal is written (``catch_up``); how many there were.

        Call it only while holding the send lock: a live run's rows are ``sending`` too.
        """
        with self._lock:
            self._write_group()
            self._catch_up("raise")
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
            self._write_group()
            db = self._db
            db.execute("CREATE TEMP TABLE IF NOT EXISTS plan_wanted (address TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS plan_skipped (address TEXT PRIMARY KEY, why TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            with self._transaction():
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
            self._write_group()
            db = self._db
            db.execute("ATTACH DATABASE ? AS plan", (str(path),))
            try:
                with self._transaction():
                    self._apply_plan(issue_id, f"plan.{wanted}", f"plan.{skipped}", new=new)
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
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO delivery (issue_id, address, state, reply, created, updated)"
                " VALUES (?, ?, ?, '', ?, ?)",
                rows,
            )

    @_guarded
    def sending(self, issue_id: str, address: str) -> None:
        """Said before the message's data may leave: the crash-safety line. The deliveries
        ``landed`` since the last are said with it, in the same append (with a ``sync_with``, only
        a group's worth)."""
        with self._lock:
            if len(self._unwritten) >= GROUP:
                self._write_group()  # before this reader is said: a failure leaves it pending
            if self._sync is not None and len(self._landed) < SYNC_GROUP and not self._stale(STALE):
                self._say([(issue_id, SENDING, address, "")])  # the deliveries wait for their group
            else:
                self._say_landed((issue_id, address))

    def landed(self, issue_id: str, address: str, reply: str) -> None:
        """The server took the message of a reader said to be ``sending``: said ``delivered`` with
        the next ``sending`` (one append for the two), by ``flush()``, or by ``flush_stale()``.
        Until then the journal says ``sending``, which a killed run leaves as ``unknown``."""
        self._landed.append((issue_id, address, reply, time.monotonic()))

    def unsynced(self) -> list[tuple[str, str]]:
        """(issue id, address) of the deliveries a failed sync kept from being said since the
        last call: they stay ``sending``, which the next run makes ``unknown``."""
        with self._lock:
            taken, self._unsynced = self._unsynced, []
        return taken

    def sync_with(self, sync: Callable[[], None] | None) -> None:
        """``sync()`` is called before every append of deliveries, and must raise if what it makes
        durable may not be: a transport's messages reach the disk before the ledger says they
        were delivered (the outbox's, for a power cut). None: no sync."""
        self._sync = sync

    @_guarded
    def flush(self) -> int:
        """Say and write the deliveries ``landed`` and not yet said, and write every row said;
        how many deliveries there were."""
        with self._lock:
            return self._flush()

    def _flush(self) -> int:
        """``flush`` (lock held): before any other write, so that the ledger's writes keep the
        order they were made in."""
        count = self._say_landed(None)
        self._write_group()
        return count

    @_guarded
    def flush_stale(self, age: float = STALE) -> int:
        """``flush()``, if a delivery not yet said or a row not yet written has waited ``age``
        seconds or more: what a send calls on a timer, so that a server slow to answer the next
        message keeps no delivery unsaid, and another program reading the ledger (``digest
        status``) is never long behind. How many deliveries were said. Cheap when none has waited
        (no lock taken)."""
        if not self._stale(age) and not (self._unwritten and time.monotonic() - self._unwritten_since >= age):
            return 0
        with self._lock:
            return self._flush()

    def _stale(self, age: float) -> bool:
        try:
            oldest = self._landed[0][3]
        except IndexError:
            return False
        return time.monotonic() - oldest >= age

    def _say_landed(self, sending: tuple[str, str] | None) -> int:
        """The deliveries landed, and then ``sending`` (issue id, address), in one append to the
        journal. How many deliveries (lock held)."""
        landed = []
        with contextlib.suppress(IndexError):
            while True:
                landed.append(self._landed.popleft())
        if not landed:
            if sending is not None:
                self._say([(sending[0], SENDING, sending[1], "")])
            return 0
        if self._sync is not None:
            try:
                self._sync()  # what the deliveries say must be on the disk before they say it
            except Exception:
                # Not known to be on the disk: never said delivered. They stay `sending`, which
                # the next run makes `unknown`: perhaps delivered, perhaps not.
                self._unsynced += [(issue_id, address) for issue_id, address, _, _ in landed]
                raise
            except BaseException:
                self._landed.extendleft(reversed(landed))  # Ctrl-C: still to be said
                raise
        notes = [(issue_id, DELIVERED, address, reply) for issue_id, address, reply, _ in landed]
        if sending is not None:
            notes.append((sending[0], SENDING, sending[1], ""))
        try:
            self._say(notes)
        except BaseException:
            self._landed.extendleft(reversed(landed))  # not said: still to be
            raise
        return len(landed)

    def _say(self, notes: list[tuple[str, str, str, str]]) -> None:
        """(issue id, state, address, reply) each to its journal, in one append per issue, and to
        the rows to be written (lock held): said, they are the ledger's, whatever happens next."""
        for issue_id, _, _, _ in notes:
            if issue_id not in self._marked:
                self._open_mark(issue_id)
        self._note_all(notes)
        now = time.time()
        if not self._unwritten:
            self._unwritten_since = time.monotonic()
        self._unwritten += [_row(*note, now) for note in notes]

    def _open_mark(self, issue_id: str) -> None:
        """The issue's mark, open at where its journal ends, committed before a line is said past
        it (lock held): a run killed before its first group is caught up too."""
        self._db.execute(_MARK, (issue_id, self._position(issue_id), 1))
        self._marked.add(issue_id)

    def _write_group(self) -> None:
        """The rows said and not yet written, in one transaction that also moves each issue's mark
        to where its journal ends now (lock held). Kept to be written again if it fails."""
        rows = self._unwritten
        if not rows:
            return
        marks = [(issue_id, self._position(issue_id), 1) for issue_id in {row[0] for row in rows}]
        with self._transaction():
            self._db.executemany(_UPSERT, rows)
            self._db.executemany(_MARK, marks)
        self._unwritten = []

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
            self._flush()
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
            raise self._journal_error(exc, notes[0][0]) from None

    def _position(self, issue_id: str) -> int:
        """Where the issue's journal ends (``Journal.position``), its failure said as digest's."""
        try:
            return self.journal.position(issue_id)
        except OSError as exc:
            raise self._journal_error(exc, issue_id) from None

    def _journal_error(self, exc: OSError, issue_id: str) -> DeliveryError:
        return DeliveryError(
            f"cannot write the journal: {exc.strerror or exc}",
            where=str(self.journal.path(issue_id)),
            hint=f"check that {self.journal.folder} is a folder you can write, with room on its disk",
        )

    @_guarded
    def settle_in_flight(self, issue_id: str, addresses: Iterable[str], reply: str) -> int:
        """Rows of ``addresses`` still ``sending`` become ``unknown`` (a rushed stop: their workers
        may never say). A row a worker settled meanwhile keeps its outcome; one it settles later
        gets it then. How many were still in flight."""
        count = 0
        with self._lock:
            self._flush()
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
            self._write_group()
            with self._transaction():
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
            self._write_group()
            with self._transaction():
                registered = self._db.execute("SELECT 1 FROM issue WHERE issue_id = ?", (old_id,)).fetchone()
                taken = self._db.execute(
                    "SELECT 1 FROM delivery WHERE issue_id = ? LIMIT 1", (issue_id,)
                ).fetchone()
                if registered or taken:
                    return 0
                moved = self._db.execute(
                    "UPDATE delivery SET issue_id = ? WHERE issue_id = ?", (issue_id, old_id)
                ).rowcount
                rows = self._db.execute(
                    "SELECT address, state, reply FROM delivery WHERE issue_id = ? AND state IN (?, ?, ?, ?)",
                    (issue_id, DELIVERED, UNKNOWN, FAILED, SENDING),
                ).fetchall()
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
            self._write_group()
            with self._transaction():
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
    """address -> state for one issue, reading only (a killed send's rows caught up first, see
    ``Ledger``): no ledger yet means no rows, and none is made."""
    if not (Path(state_dir) / LEDGER_DB).exists():
        return {}
    with Ledger(state_dir, read_only=True) as ledger:
        return ledger.states(issue_id)


def read_status(state_dir: str | Path, issue_id: str | None = None) -> list[IssueStatus]:
    """``digest status``: one issue, or every issue the ledger knows (oldest first).

    Reads only (a killed send's rows caught up first, see ``Ledger``): a workspace that never sent
    anything has no ledger, and gets none made for it.
    """
    if not (Path(state_dir) / LEDGER_DB).exists():
        return []
    with Ledger(state_dir, read_only=True) as ledger:
        known = ledger.issues()
        return [ledger.status(issue) for issue in known if issue_id in (None, issue)]
