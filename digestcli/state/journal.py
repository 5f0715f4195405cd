"""The journal: a plain-text, append-only record of every send's story, one file per issue, kept
beside the ledger. During a send it is the ledger's write-ahead record: a reader's state is
written here first, and the ledger's rows follow in groups (see ``state.ledger``), so the last
lines of a send that was killed are only here until the ledger catches up. Afterwards it is a
copy, so that a ledger that is lost, replaced by an old copy or damaged is noticed before anyone
is mailed twice, and can be rebuilt (``digest recover``).

``.digest/journal/<issue id>.log`` holds two kinds of line, tab-separated:

    run      <time>  {"issue_id": ..., "number": ..., "date": ..., "subject": ..., "parts": {...}}  .
    reader   <time>  <state>  <address>  <reply>  .

A ``run`` line is written when a send starts; a ``reader`` line each time the ledger records a
reader's state for the issue (``sending`` before the data can leave, then the outcome). Replaying
the reader lines gives each reader's last state; a reader left ``sending`` is ``unknown``. Each
line is one ``write`` on a file opened for appending and ends in a `.` field, so a line torn by
a crash is told from a whole one and skipped (and ended, so that it cannot swallow the next).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

JOURNAL_DIR = "journal"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_NOT_ONE_FIELD = re.compile(r"[\t\r\n]+")


@dataclass
class Replay:
    """What a journal says about one issue."""

    issue_id: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # each run line's record, oldest first
    states: dict[str, str] = field(default_factory=dict)  # address -> last state (sending as is)


def journal_name(issue_id: str) -> str:
    """The journal's file name for an issue: the id itself when it is safe as a file name (in
    lowercase: on a file system that ignores case, two ids must not share a file)."""
    safe = _UNSAFE.sub("_", issue_id).lstrip(".").lower() or "issue"
    if safe != issue_id:
        import hashlib  # here: it loads OpenSSL, and most ids are safe as they are

        safe += "-" + hashlib.sha256(issue_id.encode("utf-8")).hexdigest()[:8]
    return f"{safe}.log"


class Journal:
    """The journals of one workspace. Appends are safe from several threads."""

    def __init__(self, state_dir: str | Path):
        self.folder = Path(state_dir) / JOURNAL_DIR
        self._files: dict[str, int] = {}
        self._lock = threading.Lock()

    def path(self, issue_id: str) -> Path:
        return self.folder / journal_name(issue_id)

    def close(self) -> None:
        with self._lock:
            files, self._files = self._files, {}
        for fd in files.values():
            os.close(fd)

    def note_run(self, issue_id: str, record: dict[str, Any]) -> None:
        """A send of the issue starts: what it sends (see ``Ledger.begin_run``)."""
        import json  # here: a ledger opened only to read never writes a run line

        line = json.dumps({"issue_id": issue_id, **record}, ensure_ascii=False, sort_keys=True)
        self._append(issue_id, f"run\t{time.time():.3f}\t{line}\t.\n")

    def note(self, issue_id: str, state: str, address: str, reply: str = "") -> None:
        """A reader's state for the issue, as the ledger just recorded it."""
        self.note_all([(issue_id, state, address, reply)])

    def note_all(self, notes: list[tuple[str, str, str, str]]) -> None:
        """Several readers' states, (issue id, state, address, reply) each, in that order: one
        write per issue, each line whole on its own (a kill may tear the last line only)."""
        now = f"{time.time():.3f}"
        lines: dict[str, list[str]] = {}
        for issue_id, state, address, reply in notes:
            if reply and not reply.isprintable():
                reply = _NOT_ONE_FIELD.sub(" ", reply)
            lines.setdefault(issue_id, []).append(f"reader\t{now}\t{state}\t{address}\t{reply[:500]}\t.\n")
        for issue_id, some in lines.items():
            self._append(issue_id, "".join(some))

    def _append(self, issue_id: str, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            fd = self._files.get(issue_id) or self._open(issue_id)
            try:
                while data:  # a short write (a full disk) raises on the next try, never passes unseen
                    data = data[os.write(fd, data) :]
            except BaseException:
                # Part of a line may be written: the file is opened again for the next line, which
                # ends that part first (_open), so that it cannot swallow the next whole line.
                del self._files[issue_id]
                os.close(fd)
                raise

    def position(self, issue_id: str) -> int:
        """Where the issue's journal ends now (its size, the file made if there is none): what the
        ledger's rows include once it has written what it said (``Ledger``'s mark)."""
        with self._lock:
            return os.lseek(self._files.get(issue_id) or self._open(issue_id), 0, os.SEEK_END)

    def tail(self, issue_id: str, start: int) -> tuple[Iterator[list[tuple[str, str, str]]], int]:
        """(state, address, reply) of each whole reader line from byte ``start`` of the issue's
        journal to where it ends now, in the order written, a batch at a time; and where it ends
        (its size; -1 when there is none). What a run killed before its ledger caught up wrote
        only here (see ``Ledger.catch_up``). When the size is less than ``start``, this is not the
        journal the ledger knew, and there are no lines."""
        try:
            handle = self.path(issue_id).open("rb")  # opened first: the size is this file's
        except FileNotFoundError:
            return iter(()), -1
        size = os.fstat(handle.fileno()).st_size
        if size <= start:
            handle.close()
            return iter(()), size
        return _batches(handle, _TAIL_LINE, start, size), size

    def _open(self, issue_id: str) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(issue_id), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # A line torn by a kill is ended first, so that it does not swallow the next one.
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
        except BaseException:
            os.close(fd)  # opened again next time, to end it then
            raise
        self._files[issue_id] = fd
        return fd

    def replay(self, issue_id: str, *, stop: int | None = None) -> Replay:
        """Everything the issue's journal says (up to byte ``stop``, when given); an empty Replay
        when there is none."""
        return _replay(self.path(issue_id), issue_id, stop)

    def replay_all(self) -> Iterator[Replay]:
        """Every journal in the folder, one at a time (a journal of a million readers is a large
        dict: one is held at once), each under the id its run lines give (its file name's stem
        when it has none)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.log")):
            replay = _replay(path, path.stem)
            if replay.runs:
                replay.issue_id = str(replay.runs[0].get("issue_id") or replay.issue_id)
            yield replay


# A whole reader line (one a crash did not tear: it ends in its `.` field): its state and address.
_READER_LINE = re.compile(r"^reader\t[^\t\n]*\t([^\t\n]*)\t([^\t\n]*)(?:\t[^\n]*)?\t\.$", re.MULTILINE)
# The same, with the reply (empty for `sending`).
_TAIL_LINE = re.compile(r"^reader\t[^\t\n]*\t([^\t\n]*)\t([^\t\n]*)\t([^\t\n]*)\t\.$", re.MULTILINE)


def reader_states(
    path: Path, size: int = 1 << 20, *, stop: int | None = None
) -> Iterator[list[tuple[str, str]]]:
    """(state, address) of each whole reader line of one journal file, in the order written (a
    reader's last line is its state), a batch at a time (about ``size`` bytes of the file each),
    up to byte ``stop`` (to the end when None); nothing when there is no file. A journal of a
    million readers is never held in memory, and its lines are found by one regular expression,
    not by Python code per line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return iter(())
    return _batches(handle, _READER_LINE, 0, stop, size)


def _batches(
    handle: BinaryIO, pattern: re.Pattern[str], start: int, stop: int | None, size: int = 1 << 20
) -> Iterator[list[Any]]:
    """``pattern.findall`` over the whole lines of the open file ``handle`` (closed at the end)
    from byte ``start`` to ``stop`` (the end when None), about ``size`` bytes at a time."""
    with handle:
        handle.seek(start)
        rest = b""
        left = -1 if stop is None else max(0, stop - start)
        while left:
            data = handle.read(size if left < 0 else min(size, left))
            if not data:
                break
            left = -1 if left < 0 else left - len(data)
            data = rest + data
            end = data.rfind(b"\n") + 1  # whole lines only: a character is never cut in two
            data, rest = data[:end], data[end:]
            yield pattern.findall(data.decode("utf-8", errors="replace"))
        if rest:
            yield pattern.findall(rest.decode("utf-8", errors="replace"))


def _replay(path: Path, issue_id: str, stop: int | None = None) -> Replay:
    import json

    replay = Replay(issue_id)
    try:
        with path.open("rb") as handle:
            left = -1 if stop is None else stop
            for raw in handle:
                if left >= 0:
                    if left < len(raw):
                        break
                    left -= len(raw)
                parts = raw.decode("utf-8", errors="replace").rstrip("\n").split("\t")
                if parts[-1] != ".":
                    continue  # torn by a crash mid-write: the write it belongs to never finished
                if parts[0] == "reader" and len(parts) >= 4:
                    replay.states[parts[3]] = parts[2]
                elif parts[0] == "run" and len(parts) >= 3:
                    try:
                        record = json.loads(parts[2])
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        replay.runs.append(record)
    except FileNotFoundError:
        pass
    return replay
