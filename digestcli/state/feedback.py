"""What came back after a send, kept in the workspace state: each reader's bounces, complaints and
unsubscribes per issue, and every report already read (by its Message-ID), so that reading the
same mailbox twice acts on nothing twice.

The send ledger says what digest did; this says what the world answered, in a file of its own
(``.digest/feedback.sqlite3``), so that a send and ``digest bounces`` never write the same file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from digestcli.state import state_database, state_file_error

_T = TypeVar("_T")

FEEDBACK_DB = "feedback.sqlite3"
# What a reader's message came back as (classify's kinds that say something about a reader): a
# delay is a soft bounce that only says the server is still trying; a block is a refusal about
# the sending (authentication, reputation, policy), never about the reader.
HARD, SOFT, COMPLAINT, UNSUBSCRIBE = "hard", "soft", "complaint", "unsubscribe"
DELAYED, BLOCKED = "delayed", "blocked"
KINDS = (HARD, SOFT, DELAYED, BLOCKED, COMPLAINT, UNSUBSCRIBE)
BOUNCE_WARNING = 0.05  # providers review a sender above 5% bounces (Amazon SES; pause at 10%)
COMPLAINT_WARNING = 0.001  # and above 0.1% complaints (Gmail's and Yahoo's bulk-sender rules)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    issue_id TEXT NOT NULL,      -- '' when the report named no issue (an unsubscribe by mail)
    address TEXT NOT NULL,       -- the reader's key, as in the ledger
    kind TEXT NOT NULL,          -- hard | soft | delayed | blocked | complaint | unsubscribe
    status TEXT NOT NULL DEFAULT '',      -- the DSN's status code, 5.1.1
    diagnostic TEXT NOT NULL DEFAULT '',  -- the receiving server's words
    at REAL NOT NULL,
    report TEXT NOT NULL,        -- the report's key (see report_key)
    PRIMARY KEY (issue_id, address, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS feedback_address ON feedback (address);
CREATE TABLE IF NOT EXISTS report (
    key TEXT PRIMARY KEY,        -- its Message-ID, or sha256: of its bytes when it has none
    kind TEXT NOT NULL,          -- what it was (classify's kind, or not-ours)
    outcome TEXT NOT NULL,       -- what digest did about it
    read REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Feedback:
    """One thing a reader's message for an issue came back as."""

    issue_id: str
    address: str
    kind: str  # one of KINDS
    status: str = ""
    diagnostic: str = ""
    at: float = 0.0
    report: str = ""


@dataclass(frozen=True)
class Seen:
    """A report read before: what it was and what was done."""

    kind: str
    outcome: str


@dataclass(frozen=True)
class Rates:
    """An issue's bounce and complaint rates, as providers judge a sender by them."""

    mailed: int  # readers whose message went out (delivered, unknown, or refused for good)
    hard: int  # hard bounces reported, and readers the server refused at the send
    soft: int
    complaints: int
    unsubscribes: int
    blocked: int = 0  # readers whose server refused the sending, not them

    @property
    def bounce_rate(self) -> float:
        return self.hard / self.mailed if self.mailed else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.mailed if self.mailed else 0.0

    def warnings(self) -> list[str]:
        found = []
        if self.bounce_rate > BOUNCE_WARNING:
            found.append(
                f"{self.bounce_rate:.1%} of this issue's readers bounced: providers review a sender above"
                f" {BOUNCE_WARNING:.0%} (Amazon SES may pause one at 10%); run `digest bounces` before every"
                " send, and check where the list's addresses came from"
            )
        if self.complaint_rate > COMPLAINT_WARNING:
            found.append(
                f"{self.complaint_rate:.2%} of this issue's readers reported it as spam: Gmail and Yahoo"
                f" want fewer than {COMPLAINT_WARNING:.1%}; make unsubscribing easy and mail only readers"
                " who asked for the newsletter"
            )
        if self.blocked:
            found.append(
                f"{self.blocked:,} of this issue's readers' servers refused it for a reason about the"
                " sending, not the reader (authentication, DMARC, a blocklisted IP or the content): fix"
                " SPF, DKIM and DMARC or the sending IP's reputation; `digest status` lists the replies"
            )
        return found


def report_key(message_id: str, raw: bytes) -> str:
    """How a report is remembered: its Message-ID, or a hash of its bytes when it has none."""
    text = " ".join(message_id.split())
    if text:
        return text
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


class FeedbackStore:
    """The workspace's feedback file. ``read_only`` never makes or changes it (a dry run, status)."""

    busy_timeout = 10.0

    def __init__(self, state_dir: str | Path, *, read_only: bool = False):
        self.path = Path(state_dir) / FEEDBACK_DB
        self.read_only = read_only
        self._stack = contextlib.ExitStack()
        self._db: sqlite3.Connection | None = None
        if not read_only or self.path.exists():
            self._db = self._stack.enter_context(
                state_database(self.path, "feedback file", _SCHEMA, self.busy_timeout)
            )

    def close(self) -> None:
        self._stack.close()
        self._db = None

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, query: str, arguments: tuple[Any, ...] = ()) -> list[Any]:
        if self._db is None:
            return []
        return self._guard(lambda db: db.execute(query, arguments).fetchall())

    def _guard(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        assert self._db is not None
        try:
            return work(self._db)
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, "feedback file") from None

    # -- reports read before ----------------------------------------------------------------------

    def seen(self, key: str) -> Seen | None:
        """What the report with ``key`` was, when it was read before; else None."""
        rows = self._rows("SELECT kind, outcome FROM report WHERE key = ?", (key,))
        return Seen(str(rows[0][0]), str(rows[0][1])) if rows else None

    def record(self, reports: Iterable[tuple[str, str, str]], feedback: Iterable[Feedback]) -> None:
        """Remember reports (key, kind, outcome) and what they said of readers, in one transaction;
        a reader's second report of one kind for one issue keeps the first."""
        if self.read_only:
            raise RuntimeError("a read-only feedback store records nothing")
        now = time.time()

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    "INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (f.issue_id, f.address, f.kind, f.status, f.diagnostic, f.at or now, f.report)
                        for f in feedback
                    ],
                )
                db.executemany(
                    "INSERT OR IGNORE INTO report VALUES (?, ?, ?, ?)",
                    [(key, kind, outcome, now) for key, kind, outcome in reports],
                )

        self._guard(write)

    # -- what came back ---------------------------------------------------------------------------

    def of_reader(self, address: str) -> list[Feedback]:
        """Everything a reader's messages came back as, oldest first."""
        rows = self._rows(
            "SELECT issue_id, address, kind, status, diagnostic, at, report FROM feedback"
            " WHERE address = ? ORDER BY at",
            (address,),
        )
        return [Feedback(*row) for row in rows]

    def of_issue(self, issue_id: str) -> list[Feedback]:
        rows = self._rows(
            "SELECT issue_id, address, kind, status, diagnostic, at, report FROM feedback"
            " WHERE issue_id = ? ORDER BY kind, at",
            (issue_id,),
        )
        return [Feedback(*row) for row in rows]

    def counts(self, issue_id: str) -> dict[str, int]:
        """kind -> readers, for one issue (every kind present, zeros included)."""
        counts = dict.fromkeys(KINDS, 0)
        for kind, count in self._rows(
            "SELECT kind, COUNT(*) FROM feedback WHERE issue_id = ? GROUP BY kind", (issue_id,)
        ):
            counts[kind] = count
        return counts

    def hard_bounced(self, issue_id: str) -> Iterator[str]:
        for (address,) in self._rows(
            "SELECT address FROM feedback WHERE issue_id = ? AND kind = ?", (issue_id, HARD)
        ):
            yield str(address)


def issue_rates(state_dir: str | Path, issue_id: str, states: dict[str, int], failed: Iterable[str]) -> Rates:
    """An issue's rates from the ledger's counts (state -> readers) and the readers it refused at
    the send (``failed``): a hard bounce reported for a reader the server already refused is one."""
    from digestcli.state import DELIVERED, FAILED, SENDING, UNKNOWN

    mailed = sum(states.get(state, 0) for state in (DELIVERED, UNKNOWN, SENDING, FAILED))
    with FeedbackStore(state_dir, read_only=True) as store:
        counts = store.counts(issue_id)
        refused = set(failed)
        hard = len(refused | set(store.hard_bounced(issue_id))) if refused else counts[HARD]
    return Rates(mailed, hard, counts[SOFT], counts[COMPLAINT], counts[UNSUBSCRIBE], counts[BLOCKED])


def read_issue_feedback(state_dir: str | Path, issue_id: str) -> list[Feedback]:
    """Every reader's feedback for one issue, reading only."""
    with FeedbackStore(state_dir, read_only=True) as store:
        return store.of_issue(issue_id)


_SAID = {
    HARD: "bounced",
    SOFT: "soft bounce",
    DELAYED: "delayed",
    BLOCKED: "blocked",
    COMPLAINT: "complained",
    UNSUBSCRIBE: "unsubscribed",
}
STATUS_SHOWN = 20  # readers listed under an issue in `digest status DRAFT`


def status_lines(state_dir: str | Path, status: Any, *, detailed: bool) -> tuple[list[str], list[str]]:
    """``digest status``'s lines on what came back for an issue (``status``: the ledger's
    IssueStatus), and its warnings: the rates whenever there is anything to rate, and with
    ``detailed`` each reader's bounce, complaint or unsubscribe (the first few)."""
    from digestcli.state import FAILED

    failed = [row.address for row in status.problems if row.state == FAILED]
    rates = issue_rates(state_dir, status.issue_id, status.counts, failed)
    rows = read_issue_feedback(state_dir, status.issue_id) if detailed else []
    if not (rates.hard or rates.soft or rates.complaints or rates.unsubscribes or rates.blocked or rows):
        return [], []
    lines = [
        f"  came back: {rates.hard:,} bounced ({rates.bounce_rate:.1%} of {rates.mailed:,} mailed),"
        f" {rates.soft:,} soft bounces, {rates.complaints:,} complaints ({rates.complaint_rate:.2%}),"
        f" {rates.unsubscribes:,} unsubscribes" + (f", {rates.blocked:,} blocked" if rates.blocked else "")
    ]
    if rows:
        lines.append("What came back:")
        for row in rows[:STATUS_SHOWN]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.at))
            said = " ".join(part for part in (row.status, row.diagnostic) if part)
            lines.append(f"  {_SAID.get(row.kind, row.kind):12} {row.address} ({when}) {said}".rstrip())
        if len(rows) > STATUS_SHOWN:
            lines.append(f"  … and {len(rows) - STATUS_SHOWN:,} more")
    return lines, rates.warnings()
