"""Bringing a ledger back after it was lost, damaged or replaced by an old copy: a damaged file is
moved aside (never deleted), and every reader a journal knows of and the ledger does not is
written back (``digest recover``)."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from digestcli.state import LEDGER_DB, state_file_error
from digestcli.state.ledger import Ledger


@dataclass(frozen=True)
class Recovery:
    """What ``recover_ledger`` did."""

    moved_aside: Path | None  # the damaged ledger, kept under another name
    restored: dict[str, int]  # issue id -> reader rows brought back from its journal
    journals: int  # journals read


def recover_ledger(state_dir: str | Path) -> Recovery:
    """Rebuild what the ledger lost from the journals: a damaged ledger is moved aside (never
    deleted) and a new one made; every reader a journal says has an issue, or was refused it, and
    the ledger does not know of, is written back. Safe to run again: it adds only what is missing.
    Call it while holding the send lock."""
    state_dir = Path(state_dir)
    path = state_dir / LEDGER_DB
    moved: Path | None = None
    if path.exists() and not _readable(path):
        moved = path.with_name(f"{LEDGER_DB}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.replace(moved.with_name(moved.name + suffix))
    restored: dict[str, int] = {}
    journals = 0
    with Ledger(state_dir) as ledger:
        ledger.catch_up(lost="accept")  # a killed run's last lines first, as it would have written them
        for replay in ledger.journal.replay_all():
            journals += 1
            count = ledger.restore(replay.issue_id, replay.states, replay.runs)
            if count:
                restored[replay.issue_id] = count
    return Recovery(moved, restored, journals)


def _readable(path: Path) -> bool:
    """Whether the ledger reads through (a damaged page shows in quick_check). Only damage says
    no: a ledger that cannot be opened or is locked is an error here, never moved aside."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=Ledger.busy_timeout)
        try:
            ok = db.execute("PRAGMA quick_check").fetchone()
            db.execute("SELECT COUNT(*) FROM delivery").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "not a database" in text or "malformed" in text or "no such table" in text:
            return False
        raise state_file_error(exc, path, "ledger") from None
    return bool(ok) and ok[0] == "ok"
