"""What the workspace's past says about sending an issue now: an id or number that belongs to
another issue, a ledger that knows less than the journal, a draft changed since readers got it.

These are the checks that stand between an ordinary mistake (a draft copied as next week's start,
a deleted ledger, an edit mid-send) and readers mailed twice or the wrong issue. ``digest lint``
reports the first (``issue-reused``); ``digest send`` refuses on all three unless told otherwise.
"""

from __future__ import annotations

import contextlib
import operator
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from digestcli.state import DELIVERED, LEDGER_DB, SENDING, STATES, UNKNOWN, rank

if TYPE_CHECKING:  # the ledger (SQLite) is loaded only when there is one to read
    import sqlite3

    from digestcli.state.ledger import Ledger, SentIssue

# What a run sends, part by part, as the editor would name it.
PARTS = {
    "subject": "the subject",
    "preheader": "the preheader",
    "html": "the HTML part",
    "text": "the text part",
}
# Journal states that mean "this reader may have the issue".
_HAS_IT = (DELIVERED, UNKNOWN, SENDING)


class IssueFacts(NamedTuple):
    """The few facts about an issue the checks need (from a draft, or a rendered issue)."""

    issue_id: str
    number: int | None
    date: str
    subject: str
    path: Path | None = None  # the draft
    id_given: bool = True  # the front matter's own `id`, not one derived from title and number


class Identities(NamedTuple):
    """Which ids the drafts in drafts/ have, and which issues the ledger has sent."""

    # The empty defaults are shared: read-only.
    drafts: Mapping[str, tuple[Path, ...]] = MappingProxyType({})
    sent: Mapping[str, SentIssue] = MappingProxyType({})


def fingerprint(**parts: str) -> dict[str, str]:
    """A short hash of each part of what a run sends, so that the next run can tell what changed."""
    import hashlib  # here: only a send hashes, and lint starts faster without

    return {name: hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] for name, text in parts.items()}


def changed_parts(before: Mapping[str, Any] | None, now: Mapping[str, str]) -> list[str]:
    """The parts that differ from the last run's (as the editor names them), in PARTS order."""
    if not before:
        return []
    return [PARTS.get(name, name) for name in now if before.get(name) != now[name]]


def identity_problems(issue: IssueFacts, identities: Identities) -> list[str]:
    """Why this issue's id or number is taken: by another draft, or by an issue already sent."""
    problems = []
    here = issue.path.resolve() if issue.path else None
    others = [p for p in identities.drafts.get(issue.issue_id, ()) if p.resolve() != here]
    if others:
        problems.append(
            f"{_shown(others[0])} has the same issue id '{issue.issue_id}': give one of them its own"
            " `id:` in the front matter (`digest new --like DRAFT` starts from an earlier draft"
            " with a new id)"
        )
    if here is not None and not issue.id_given:
        # The derived id changed (the title or the number was edited) on a draft already sent:
        # as a new id it would be mailed to everyone again.
        for other in identities.sent.values():
            if other.draft == str(here) and other.issue_id != issue.issue_id:
                problems.append(
                    f"this draft was sent as '{other.issue_id}'"
                    + (f" (issue {other.number})" if other.number is not None else "")
                    + f", and its id is now '{issue.issue_id}' because its title or number changed:"
                    f" if it is the same issue, undo that change (or add `id: {other.issue_id}`);"
                    " if it is a new one, give it an `id:` of its own"
                )
                break
    sent = identities.sent.get(issue.issue_id)
    if sent is not None:
        differs = []
        if sent.number is not None and issue.number is not None and sent.number != issue.number:
            differs.append(f"issue {sent.number}, not {issue.number}")
        if sent.date and issue.date and sent.date != issue.date:
            differs.append(f"dated {sent.date}, not {issue.date}")
        if differs:
            problems.append(
                f"the id '{issue.issue_id}' was already sent as another issue ({', '.join(differs)}):"
                " if it is the same issue, undo that change; if it is a copy of an earlier draft,"
                " give it an `id:` of its own"
            )
    if issue.number is not None:
        for other in identities.sent.values():
            if other.number == issue.number and other.issue_id != issue.issue_id:
                problems.append(
                    f"issue number {issue.number} was already sent as '{other.issue_id}'"
                    + (f" ({other.date})" if other.date else "")
                    + f": set `issue:` to {_next_number(identities)}, or give the draft that issue's `id:`"
                    " if it is the same issue"
                )
                break
    return problems


def _next_number(identities: Identities) -> int:
    return max((s.number for s in identities.sent.values() if s.number is not None), default=0) + 1


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def journal_gaps(ledger_states: Mapping[str, str], journal_states: Mapping[str, str]) -> Counter[str]:
    """Readers the journal says may have the issue (delivered, unknown, in flight) whose ledger row
    is missing or says less: state in the journal -> how many. Empty when the ledger is whole."""
    gaps: Counter[str] = Counter()
    for address, state in journal_states.items():
        # The journal says more than the ledger: delivered where the ledger says unknown or
        # failed (an older copy; --retry-failed would mail them again), or anything at all.
        if state in _HAS_IT and rank(state) > rank(ledger_states.get(address)):
            gaps[UNKNOWN if state == SENDING else state] += 1
    return gaps


def describe_gaps(gaps: Mapping[str, int]) -> str:
    parts = [f"{count:,} {state}" for state, count in sorted(gaps.items())]
    return ", ".join(parts)


def read_identities(state_dir: Path, ids_of: Mapping[Path, str]) -> Identities:
    """Identities of a workspace, reading only: ``ids_of`` is each draft's id (``draft.draft_ids``)."""
    return Identities(drafts_by_id(ids_of), read_sent(state_dir))


def drafts_by_id(ids_of: Mapping[Path, str]) -> dict[str, tuple[Path, ...]]:
    by_id: dict[str, list[Path]] = {}
    for path, issue_id in ids_of.items():
        by_id.setdefault(issue_id, []).append(path)
    return {issue_id: tuple(paths) for issue_id, paths in by_id.items()}


def read_sent(state_dir: Path) -> dict[str, SentIssue]:
    """The ledger's register of issues sent; empty when there is no ledger (none is made)."""
    if not (state_dir / LEDGER_DB).exists():
        return {}
    from digestcli.state.ledger import Ledger

    with Ledger(state_dir, read_only=True) as ledger:
        return ledger.sent_issues()


class Assessment(NamedTuple):
    """What the past says about sending an issue now (see ``assess``)."""

    conflicts: tuple[str, ...] = ()  # the id or number is another issue's
    # The journal knows readers the ledger does not. (The empty default is shared: read-only.)
    gaps: Mapping[str, int] = MappingProxyType({})
    changed: tuple[str, ...] = ()  # parts that differ from what readers already got
    had_it: int = 0  # readers who may have an earlier version (delivered, unknown, in flight)
    previous_subject: str = ""


def assess(
    state_dir: Path,
    ledger: Ledger | None,
    issue: IssueFacts,
    parts: Mapping[str, str],
    *,
    states: Mapping[str, str] | None = None,
    rows_of: str | None = None,
) -> Assessment:
    """The checks ``digest send`` makes before sending ``issue`` (whose parts hash to ``parts``).
    ``ledger`` is None when there is none (lost, or never made): the journal is read all the same.
    ``rows_of``: the id the issue's rows are under in the ledger (``Ledger.rows_of``), its own by
    default. ``states``: the issue's rows as a dict, when the caller holds them already (a view
    of the ledger, ``Ledger.state_view``, is read from the ledger itself instead).

    A ledger and a journal of a million readers are compared in SQLite, one join over a scratch
    copy of the journal's last word on each reader, never in memory."""
    from digestcli.state.journal import Journal

    # A run's lines past its open mark are that run's, still writing its rows or killed before
    # they caught up (a send catches up first, under the lock): no gap, whatever they say.
    stop = ledger.open_mark(issue.issue_id) if ledger is not None else None
    if isinstance(states, dict):  # small, and already in memory
        replay = Journal(state_dir).replay(issue.issue_id, stop=stop)
        gaps = journal_gaps(states, replay.states)
        had_it = sum(1 for state in states.values() if state in _HAS_IT)
    else:
        where = ledger.path if ledger is not None else None
        gaps, had_it = _compare(state_dir, where, issue.issue_id, rows_of or issue.issue_id, stop)
    sent = ledger.sent_issues() if ledger is not None else {}
    conflicts = identity_problems(issue, Identities({}, sent))
    changed: list[str] = []
    previous = ""
    if had_it:
        last = ledger.last_run(issue.issue_id) if ledger is not None else None
        changed = changed_parts(last, parts)
        previous = str((last or {}).get("subject_text", ""))
    return Assessment(tuple(conflicts), dict(gaps), tuple(changed), had_it, previous)


# The journal is copied into the scratch file a batch at a time, each batch in key order (B-tree
# inserts in order are fast); a reader's last line wins, as in a replay.
_address = operator.itemgetter(1)


def _rank_sql(column: str) -> str:
    """``rank(column)`` as SQL (``digestcli.state.rank``)."""
    whens = " ".join(f"WHEN '{state}' THEN {rank(state)}" for state in STATES)
    return f"(CASE {column} {whens} ELSE {rank(None)} END)"


def _compare(
    state_dir: Path, ledger_path: Path | None, issue_id: str, rows_of: str, stop: int | None
) -> tuple[Counter[str], int]:
    """``journal_gaps`` and how many readers the ledger says may have the issue, read from the
    ledger file and the journal (up to byte ``stop``, when given) as they are: the journal's
    replay goes to a scratch SQLite file under the state folder, which is compared with the
    ledger's rows in one join."""
    import sqlite3  # here: `digest lint` reads no state file unless there is one

    from digestcli.state import state_file_error
    from digestcli.state.journal import Journal, reader_states
    from digestcli.subscribers import scratch_database

    has_it = ", ".join(f"'{state}'" for state in _HAS_IT)
    gaps: Counter[str] = Counter()
    journal_path = Journal(state_dir).path(issue_id)
    if not journal_path.is_file() or journal_path.stat().st_size == 0:
        if ledger_path is None:
            return gaps, 0
        try:
            with contextlib.closing(_read_only(ledger_path)) as db:
                return gaps, _had_it(db, "main", rows_of, has_it)
        except sqlite3.Error as exc:
            raise state_file_error(exc, ledger_path, "ledger") from None
    with scratch_database(state_dir, "journal") as db:
        db.execute("CREATE TABLE said (address TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID")
        upsert = (
            "INSERT INTO said (state, address) VALUES (?, ?)"
            " ON CONFLICT (address) DO UPDATE SET state = excluded.state"
        )
        db.execute("BEGIN")
        for batch in reader_states(journal_path, stop=stop):
            batch.sort(key=_address)  # stable: a reader's lines stay in the order written
            db.executemany(upsert, batch)
        db.execute("COMMIT")
        said = f"said.state IN ({has_it})"
        if ledger_path is None:
            query = f"SELECT state, COUNT(*) FROM said WHERE {said} GROUP BY state"
            rows = db.execute(query).fetchall()
            had_it = 0
        else:
            try:
                db.execute("ATTACH DATABASE ? AS ledger", (f"{ledger_path.resolve().as_uri()}?mode=ro",))
                rows = db.execute(
                    f"SELECT said.state, COUNT(*) FROM said LEFT JOIN ledger.delivery AS d"
                    f" ON d.issue_id = ? AND d.address = said.address"
                    f" WHERE {said} AND {_rank_sql('said.state')} > {_rank_sql('d.state')}"
                    " GROUP BY said.state",
                    (rows_of,),
                ).fetchall()
                had_it = _had_it(db, "ledger", rows_of, has_it)
            except sqlite3.Error as exc:
                raise state_file_error(exc, ledger_path, "ledger") from None
    for state, count in rows:
        gaps[UNKNOWN if state == SENDING else state] += count
    return gaps, had_it


def _had_it(db: sqlite3.Connection, schema: str, rows_of: str, has_it: str) -> int:
    found = db.execute(
        f"SELECT COUNT(*) FROM {schema}.delivery WHERE issue_id = ? AND state IN ({has_it})", (rows_of,)
    )
    return int(found.fetchone()[0])


def _read_only(path: Path) -> sqlite3.Connection:
    import sqlite3

    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
