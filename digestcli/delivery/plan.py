"""Who gets an issue in a run, decided in one place: ``plan_send`` shows it before the editor is
asked, and ``send_issue`` follows it under the send lock, so what is shown is what happens.

The plan is made in the list's scratch SQLite file (``subscribers``), with the ledger and the
suppression list attached read-only: a table of the readers who are not due (delivered already,
suppressed, held back) and one of the ledger's waiting rows whose reader left the list. Everything
else is due. Counting the groups, and reading them back in list order, is SQL: a plan for a
million readers holds none of them in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from digestcli.config import Workspace
from digestcli.render import RenderedIssue
from digestcli.state import (
    DEFERRED,
    DELIVERED,
    FAILED,
    LEDGER_DB,
    PENDING,
    SENDING,
    UNKNOWN,
    state_file_error,
)
from digestcli.state.history import Assessment, IssueFacts, assess, fingerprint
from digestcli.state.ledger import Ledger
from digestcli.state.suppressions import SUPPRESSIONS_DB
from digestcli.subscribers import Readers, SubscriberList, load_subscribers

NOT_LISTED = "no longer in the reader list"
# Why a reader of the list is not due (the `held` column of a plan's table).
_HAS_IT, _SUPPRESSED, _UNKNOWN, _FAILED = 1, 2, 3, 4


@dataclass(frozen=True)
class PlanTables:
    """Where a plan is written down: the scratch file and its two views, in the shape
    ``Ledger.plan_from`` reads (``wanted``: address; ``skipped``: address, why)."""

    path: Path
    wanted: str
    skipped: str


@dataclass(frozen=True)
class SendPlan:
    """Every reader of the list in exactly one group, each group in list order."""

    issue_id: str
    due: Readers  # mailed this run (after the limit)
    later: Readers  # due, but beyond the limit: left pending for the next run
    already_delivered: Readers
    suppressed: Readers  # on the suppression list (and not delivered already)
    held_unknown: Readers  # unknown from an earlier run; resend_unknown lifts this
    held_failed: Readers  # refused for good earlier; retry_failed lifts this
    # Ledger rows still waiting for the issue (pending, deferred) for readers no longer in the
    # list: the run marks them skipped rather than leave them pending for ever.
    unlisted: int = 0
    # The issue's rows once the plan is written: every listed reader, and the rows of those no
    # longer listed (``digest status`` counts the ones a send has not reached yet as pending).
    readers: int = 0
    tables: PlanTables | None = None
    assessment: Assessment = field(default_factory=Assessment)  # what the past says (plan_send only)


def read_list(workspace: Workspace) -> SubscriberList:
    """The workspace's reader list, read as its settings say ([delivery] subscribers, encoding,
    columns), with what its address memory knows."""
    delivery = workspace.config.delivery
    return load_subscribers(
        workspace.path(delivery.subscribers),
        state=workspace.state,
        encoding=delivery.encoding,
        columns=delivery.columns,
        scratch_in=workspace.state,  # on the workspace's disk (.digest/tmp/), not in a RAM-backed /tmp
    )


def facts_of(rendered: RenderedIssue, draft: str | Path = "") -> IssueFacts:
    """What the identity checks need of a rendered issue; ``draft`` is the draft's path."""
    return IssueFacts(
        rendered.issue_id,
        rendered.number,
        rendered.date,
        rendered.subject,
        Path(draft) if draft else None,
        id_given=rendered.id_given,
    )


def parts_of(rendered: RenderedIssue) -> dict[str, str]:
    """A hash of each part of what a run sends, so that a later run can say what changed."""
    return fingerprint(
        subject=rendered.subject, preheader=rendered.preheader, html=rendered.html, text=rendered.text
    )


def plan_send(
    rendered: RenderedIssue,
    workspace: Workspace,
    subscribers: SubscriberList,
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
    draft: str | Path = "",
) -> SendPlan:
    """What ``send_issue`` would do now with the same options, for the editor to see before saying
    yes, with what the past says about it (``assessment``). Reads the ledger, the journal and the
    suppression list; creates and changes nothing in the workspace (but for the rows a killed send
    left only in its journal, written into the ledger first: see ``Ledger``).

    A row another send has in flight right now counts as unknown here, as it will for the next run
    if that send dies. Raises InputError or DeliveryError when the ledger cannot be read.
    """
    issue_id = rendered.issue_id
    parts = parts_of(rendered)
    facts = facts_of(rendered, draft)
    rows_of = issue_id
    if (workspace.state / LEDGER_DB).exists():
        with Ledger(workspace.state, read_only=True) as ledger:
            if rendered.name:
                rows_of = ledger.rows_of(issue_id, rendered.name)  # a send adopts them (Ledger.adopt)
            assessment = assess(workspace.state, ledger, facts, parts, rows_of=rows_of)
    else:
        assessment = assess(workspace.state, None, facts, parts)
    plan = plan_readers(
        issue_id,
        subscribers,
        workspace.state,
        rows_of=rows_of,
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        limit=limit,
    )
    return dataclasses.replace(plan, assessment=assessment)


@contextlib.contextmanager
def _scratch_room(readers: SubscriberList) -> Iterator[None]:
    """A full disk under the list's scratch files, as one line naming their folder."""
    try:
        yield
    except sqlite3.Error as exc:
        from digestcli.subscribers import is_full, scratch_error

        if not is_full(exc):
            raise
        raise scratch_error(exc, readers.database_path.parent.parent) from None


def plan_readers(
    issue_id: str,
    readers: SubscriberList,
    state_dir: Path,
    *,
    rows_of: str | None = None,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
) -> SendPlan:
    """The plan from what the ledger in ``state_dir`` says of the issue (its rows under
    ``rows_of``, by default the issue's id) and the suppression list there.

    A reader delivered already stays so; then one suppressed is suppressed; then one unknown or
    refused from an earlier run is held back unless asked; everyone else is due, the first
    ``limit`` of them now, in list order. A scratch file the disk has no room for is said as one
    line naming its folder."""
    with _scratch_room(readers):
        db = readers.database
        held, unlisted = readers.table_name("held"), readers.table_name("unlisted")
        db.execute(
            f"CREATE TABLE {held} (line INTEGER PRIMARY KEY, held INTEGER NOT NULL,"
            " why TEXT NOT NULL DEFAULT '')"
        )
        # Rows of readers no longer in the list, whatever their state: those still waiting (pending,
        # deferred) are marked skipped; all count in the rows the issue has once the plan is written.
        db.execute(f"CREATE TABLE {unlisted} (address TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID")
        ledger_path, suppressions_path = state_dir / LEDGER_DB, state_dir / SUPPRESSIONS_DB
        if ledger_path.exists():
            with _attached(db, ledger_path, "ledger"):
                db.execute("BEGIN")
                # Both led by the ledger's rows for the issue: on a first send there are none.
                kind = (DELIVERED, _HAS_IT, FAILED, _FAILED, _UNKNOWN)
                held_back = (DELIVERED, UNKNOWN, SENDING, resend_unknown, FAILED, retry_failed)
                db.execute(
                    f"INSERT INTO {held} (line, held) SELECT r.line,"
                    " CASE d.state WHEN ? THEN ? WHEN ? THEN ? ELSE ? END"
                    " FROM ledger.delivery d JOIN reader r ON r.key = d.address WHERE d.issue_id = ?"
                    " AND (d.state = ? OR d.state IN (?, ?) AND NOT ? OR d.state = ? AND NOT ?)",
                    (*kind, rows_of or issue_id, *held_back),
                )
                db.execute(
                    f"INSERT INTO {unlisted} (address, state) SELECT d.address, d.state"
                    " FROM ledger.delivery d WHERE d.issue_id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM reader r WHERE r.key = d.address)",
                    (rows_of or issue_id,),
                )
                db.execute("COMMIT")
        if suppressions_path.exists():
            with _attached(db, suppressions_path, "suppression list"):
                db.execute(
                    f"INSERT INTO {held} (line, held, why) SELECT r.line, ?, s.reason"
                    " FROM suppressions.suppression s JOIN reader r ON r.key = s.address WHERE true"
                    " ON CONFLICT (line) DO UPDATE SET held = excluded.held, why = excluded.why"
                    " WHERE held != ?",
                    (_SUPPRESSED, _HAS_IT),
                )
        counts = dict(db.execute(f"SELECT held, COUNT(*) FROM {held} GROUP BY held").fetchall())
        due_total = readers.count - sum(counts.values())
        cut = due_total if limit is None else min(due_total, max(0, limit))
        is_due = f"NOT EXISTS (SELECT 1 FROM {held} h WHERE h.line = r.line)"
        last_now = _line_of(db, is_due, cut) if cut < due_total else _end_of(readers)
        group = f"JOIN {held} h ON h.line = r.line"
        wanted, skipped = readers.table_name("wanted"), readers.table_name("skipped")
        db.execute(f"CREATE VIEW {wanted} AS SELECT r.key AS address FROM reader r WHERE {is_due}")
        db.execute(
            f"CREATE VIEW {skipped} AS SELECT r.key AS address, 'suppressed: ' || h.why AS why"
            f" FROM reader r {group} WHERE h.held = {_SUPPRESSED}"
            f" UNION ALL SELECT address, {_quoted(NOT_LISTED)} FROM {unlisted}"
            f" WHERE state IN ({_quoted(PENDING)}, {_quoted(DEFERRED)})"
        )
        off_list = dict(
            db.execute(f"SELECT state IN (?, ?), COUNT(*) FROM {unlisted} GROUP BY 1", (PENDING, DEFERRED))
        )
        return SendPlan(
            issue_id,
            due=Readers(readers, f"{is_due} AND r.line <= ?", (last_now,), cut),
            later=Readers(readers, f"{is_due} AND r.line > ?", (last_now,), due_total - cut),
            already_delivered=Readers(readers, "h.held = ?", (_HAS_IT,), counts.get(_HAS_IT, 0), join=group),
            suppressed=Readers(readers, "h.held = ?", (_SUPPRESSED,), counts.get(_SUPPRESSED, 0), join=group),
            held_unknown=Readers(readers, "h.held = ?", (_UNKNOWN,), counts.get(_UNKNOWN, 0), join=group),
            held_failed=Readers(readers, "h.held = ?", (_FAILED,), counts.get(_FAILED, 0), join=group),
            unlisted=off_list.get(1, 0),
            readers=readers.count + sum(off_list.values()),
            tables=PlanTables(readers.database_path, wanted, skipped),
        )


def _end_of(readers: SubscriberList) -> int:
    """A line past every reader's."""
    last = readers.database.execute("SELECT MAX(line) FROM reader").fetchone()[0]
    return int(last or 0)


def _line_of(db: sqlite3.Connection, is_due: str, cut: int) -> int:
    """The line of the ``cut``-th due reader (0 when ``cut`` is 0): the last one mailed now."""
    if cut <= 0:
        return 0
    row = db.execute(
        f"SELECT r.line FROM reader r WHERE {is_due} ORDER BY r.line LIMIT 1 OFFSET ?", (cut - 1,)
    ).fetchone()
    return int(row[0])


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _attached:
    """A state file attached read-only to the scratch file's connection, and its failures said as
    the editor can act on them."""

    def __init__(self, db: sqlite3.Connection, path: Path, what: str):
        self.db, self.path, self.what = db, path, what
        self.name = "ledger" if what == "ledger" else "suppressions"

    def __enter__(self) -> None:
        try:
            self.db.execute("ATTACH DATABASE ? AS ?", (f"{self.path.resolve().as_uri()}?mode=ro", self.name))
        except sqlite3.Error as exc:
            raise state_file_error(exc, self.path, self.what) from None

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.execute("DETACH DATABASE ?", (self.name,))
        if isinstance(exc, sqlite3.Error):
            from digestcli.subscribers import is_full

            if is_full(exc):
                return  # the scratch file's disk, not the state file: plan_readers says so
            raise state_file_error(exc, self.path, self.what) from None
