"""Everything digest keeps in the workspace's ``.digest/`` folder, and how its failures are said.

The ledger (who has which issue), the journal beside it (the same story in plain text, so that a
lost or damaged ledger is noticed and can be rebuilt), and the helpers every state file shares.
Nothing here imports the rendering stack or the address validator: ``digest lint`` and
``digest status`` read the state and must start fast.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from digestcli.errors import DeliveryError, DigestError, InputError

if TYPE_CHECKING:
    import sqlite3

    from digestcli.subscribers import SkippedRow

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one send at a time is then the editor's to keep
    fcntl = None  # type: ignore[assignment]


def address_key(address: str) -> str:
    """A reader's key in every state file (the ledger, the suppression list) and in the list: the
    address in lowercase. The local part is case-sensitive in theory; in practice no provider
    treats Ann@ and ann@ as two people, and mailing both would mail one person twice."""
    return address.strip().lower()


# A reader's state for an issue, in the ledger and the journal alike.
PENDING = "pending"  # not tried yet, or stopped before its data went out
SENDING = "sending"  # in flight: data may be on its way
DELIVERED = "delivered"  # the server answered 250 to the data
DEFERRED = "deferred"  # temporary failures used up this run's tries; tried again next run
FAILED = "failed"  # the server refused it for good (5xx); retried only when asked
UNKNOWN = "unknown"  # the data went out but no reply came back; resent only when asked
SKIPPED = "skipped"  # on the suppression list, or no longer in the reader list
STATES = (PENDING, SENDING, DELIVERED, DEFERRED, FAILED, UNKNOWN, SKIPPED)
# How much a state says the reader has had: of two records of one reader (the ledger, the journal),
# the one that says more is believed, so that no record that says less can lead to a second copy.
_RANK = {DELIVERED: 3, UNKNOWN: 2, SENDING: 2, FAILED: 1}


def rank(state: str | None) -> int:
    return _RANK.get(state or PENDING, 0)


LEDGER_DB = "ledger.sqlite3"
LOCK_FILE = "send.lock"
RECOVER_HINT = "`digest recover` rebuilds it from the journal in .digest/journal/"


def make_state_dir(state_dir: Path) -> None:
    """The workspace's state folder (.digest/), made when first needed."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot make the state folder: {exc.strerror or exc}",
            where=str(state_dir),
            hint="it must be a folder digest can write (.digest/ in the workspace)",
        ) from None


def state_file_error(exc: sqlite3.Error, path: Path, what: str) -> DigestError:
    """An SQLite failure on one of digest's state files, said as what the editor can do about it."""
    import sqlite3  # here: `digest lint` reads no state file unless there is one

    text = str(exc)
    where = str(path)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return DeliveryError(
            f"the {what} is locked ({text})",
            where=where,
            hint=f"another program holds the {what} (a send still running, or a database browser);"
            " close it and try again",
        )
    damaged = "not a database" in text or "malformed" in text
    if damaged or "no such table" in text or "no such column" in text:
        if what == "ledger":
            # Moving a damaged ledger aside would make digest forget who has each issue, and the
            # next send would mail them again: the journal is what brings that back.
            hint = (
                "run `digest recover`: it moves this file aside and rebuilds the ledger from the"
                " journal in .digest/journal/ (moving it aside by hand would make digest forget who"
                " has each issue, and mail them again)"
            )
        else:
            hint = "move the file aside; digest starts a new one"
        return InputError(f"not a digest {what}, or a damaged one ({text})", where=where, hint=hint)
    if isinstance(exc, sqlite3.OperationalError) and ("readonly" in text or "unable to open" in text):
        return InputError(
            f"cannot write the {what} ({text})",
            where=where,
            hint=f"check that {path.parent} is a folder you can write",
        )
    return DeliveryError(f"the {what} failed: {text}", where=where)


@contextlib.contextmanager
def state_database(path: Path, what: str, schema: str, timeout: float) -> Iterator[sqlite3.Connection]:
    """A connection to one of the small SQLite files in the state (WAL, ``schema`` applied), its
    failures said as the editor can act on them (``state_file_error``); closed on leaving."""
    import sqlite3  # here: `digest lint` opens no state file unless it needs one

    make_state_dir(path.parent)
    try:
        db = sqlite3.connect(path, timeout=timeout)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
            yield db
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise state_file_error(exc, path, what) from None


@contextlib.contextmanager
def send_lock(state_dir: Path) -> Iterator[None]:
    """One send (or ledger recovery) per workspace at a time: a second would take the first's
    in-flight rows for dead."""
    make_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                _flock_soon(handle.fileno())
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise DeliveryError(
                    f"another send is running in this workspace (pid {holder})",
                    where=str(path),
                    hint="wait for it to finish; the lock goes with the process",
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield  # the kernel drops the lock when the file closes, or the process dies


def _flock_soon(fd: int, patience: float = 1.0) -> None:
    """The send lock, waiting ``patience`` seconds at most: a program reading the ledger holds it
    for a moment when it catches the ledger up (``no_send_running``); a send holds it throughout.
    Raises BlockingIOError when it is still held."""
    import time

    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def no_send_running(state_dir: Path) -> Iterator[bool]:
    """True, holding the send lock meanwhile, when no send (nor ledger recovery) runs in the
    workspace; False when one does, this process's own included. Never waits, never raises for
    the lock: for what may be done only while no send runs, and can be left undone. Without
    advisory locks (Windows) it cannot be told: False."""
    if fcntl is None:
        yield False
        return
    try:
        handle = open(state_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True


SKIPPED_ROWS = "skipped-rows.txt"


def write_skipped_rows(
    state_dir: Path, list_path: Path, rows: Iterable[SkippedRow], count: int | None = None
) -> Path:
    """Every row of the list that could not be read, with its line and reason, into a file in the
    state (replaced at each send): the screen shows only the first few. ``count``: how many rows
    there are, when ``rows`` is a stream (written as it comes). Returns its path."""
    make_state_dir(state_dir)
    path = state_dir / SKIPPED_ROWS
    if count is None:
        rows = list(rows)
        count = len(rows)
    try:
        with path.open("w", encoding="utf-8") as out:
            out.write(f"# {count:,} rows of {list_path} were skipped\n")
            for row in rows:
                raw = row.raw if len(row.raw) <= 200 else f"{row.raw[:200]}… ({len(row.raw):,} characters)"
                out.write(f"{list_path}:{row.line}: {row.reason}\n    {raw}\n")
    except OSError as exc:
        raise InputError(f"cannot write the skipped rows: {exc.strerror or exc}", where=str(path)) from None
    return path
