"""The reader list: subscribers.csv read as a stream into validated, de-duplicated readers.

Reading a list keeps none of it in memory, however long it is. One pass checks every row and
writes down, for each reader, only the line the row starts on and the address key, in a scratch
SQLite file beside a copy of the CSV (in the system's temporary folder, removed with the list).
Duplicates are found there by sorting the keys; a send's plan is made there against the ledger
(``delivery.plan``); and the readers a send mails are read again from the copy, row by row, as
they are mailed (``Readers``). The copy is what makes the second reading say what the first did,
whatever happens to the editor's file meanwhile.

Addresses are checked by email-validator's rules (no DNS). A quick check settles the plain ASCII
addresses that make up nearly every list, giving exactly what email-validator would; anything
else goes to email-validator itself, and its answers are kept in the workspace state
(``state.addresses``) so that the next read of the list does not ask again.

The columns of lists other services export, and the readers they mark as gone, are
``exports``'s to recognise.

The CSV is the editor's file; who must not be mailed again is digest's own record in the
workspace state (``state.suppressions``), so that an unsubscribe holds when an old CSV comes back.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import errno
import io
import itertools
import operator
import os
import re
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from digestcli.errors import DeliveryError, InputError
from digestcli.exports import Mark, find_columns, gone
from digestcli.state import address_key

if TYPE_CHECKING:
    from digestcli.state.addresses import AddressMemory

# Fields digest fills itself; a CSV column of the same name would be silently shadowed.
COMPUTED_FIELDS = frozenset({"unsubscribe_url"})
_DELIMITERS = (",", ";", "\t")
_NOT_SLOT_CHAR = re.compile(r"[^a-z0-9_]")
# Line breaks and other control characters never belong in a personal field or a header value:
# they would end up in a header (To:) or break the layout. Tabs become spaces too.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")

# The quick check: an address email-validator takes exactly as it is, but for the domain's case
# (it lowercases domains). A dot-atom local part of ASCII atext; a domain of at most 63 characters
# (so no label is longer) made of labels of letters and digits with single inner hyphens ("--" is
# for Punycode and reserved labels: email-validator's to judge); at least one dot; a last label
# ending in a letter. Possessive quantifiers: no backtracking, a quarter of a microsecond. Then two
# lists: special-use top-level domains it refuses, and mailbox names it lowercases (RFC 2142).
# Anything else goes to email-validator (tests/test_subscribers.py runs both over many tricky
# addresses, and finds the same answers).
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_PLAIN_ADDRESS = re.compile(
    rf"[{_ATEXT}]++(?:\.[{_ATEXT}]++)*+@(?=[^@]{{1,63}}\Z)"
    r"(?:[A-Za-z0-9]++(?:-[A-Za-z0-9]++)*+\.)++[A-Za-z0-9]++(?:-[A-Za-z0-9]++)*+(?<=[A-Za-z])"
)
_RESERVED_TLDS = (".arpa", ".invalid", ".local", ".localhost", ".onion", ".test")
# The version of the rules above: bumped whenever the quick check or its lists change, so that the
# address memory (state/addresses.py), kept per rules and validator version, starts afresh.
CHECK_RULES = 1


def checker_version() -> str:
    """What decided an address: email-validator's version and the quick check's rules."""
    from email_validator import __version__

    return f"{__version__}+rules{CHECK_RULES}"


# The same for an address all in lowercase: what lists are made of, and then nothing is left to
# do but the special-use names (the key is the address itself).
_PLAIN_LOWERCASE = re.compile(
    r"[a-z0-9!#$%&'*+\-/=?^_`{|}~]++(?:\.[a-z0-9!#$%&'*+\-/=?^_`{|}~]++)*+@(?=[^@]{1,63}\Z)"
    r"(?:[a-z0-9]++(?:-[a-z0-9]++)*+\.)++[a-z0-9]++(?:-[a-z0-9]++)*+(?<=[a-z])"
)
_CASELESS_MAILBOXES: tuple[str, ...] = ("info@", "marketing@", "sales@", "support@", "abuse@", "noc@")
_CASELESS_MAILBOXES += ("security@", "postmaster@", "hostmaster@", "usenet@", "news@", "webmaster@")
_CASELESS_MAILBOXES += ("www@", "uucp@", "ftp@")

_SCRATCH_PREFIX = "digest-list-"
SCRATCH_DIR = "tmp"  # in the state folder (.digest/tmp/): scratch files that never outlive the process
_BATCH = 4096  # rows written to the scratch file at a time (a multiple of _ROWS_A_STATEMENT)
_CHUNK = 512  # readers fetched from it at a time (no statement stays open between two)
_SCRATCH_SCHEMA = """
CREATE TABLE reader (line INTEGER PRIMARY KEY, key TEXT NOT NULL,
    email TEXT NOT NULL);  -- the normalized address, "" when the file has it so already
CREATE TABLE skipped (line INTEGER PRIMARY KEY, reason TEXT NOT NULL,
    raw TEXT);  -- NULL when it can be read from the copy (all but broken rows), when shown
CREATE TABLE span (line INTEGER PRIMARY KEY, lines INTEGER NOT NULL);  -- rows over several lines
CREATE TABLE gone (line INTEGER PRIMARY KEY, key TEXT, why TEXT NOT NULL);  -- an export says so
CREATE TABLE checked (address TEXT PRIMARY KEY, email TEXT NOT NULL, reason TEXT NOT NULL)
    WITHOUT ROWID;  -- email-validator's answers in this read, for the address memory
"""


@dataclass(frozen=True)
class Subscriber:
    """One reader: the address digest sends to, a display name, and every CSV column as a field."""

    email: str  # normalized, ASCII (domain in IDNA form)
    name: str
    fields: Mapping[str, str]  # slot name -> value, including `email` and `name`
    line: int  # where the reader's row starts in the CSV

    @property
    def key(self) -> str:
        """What makes two rows the same reader: the address, case folded."""
        return address_key(self.email)


@dataclass(frozen=True)
class SkippedRow:
    line: int
    raw: str  # the row as it stands in the file, for the editor to find
    reason: str


def plain_address(address: str) -> str | None:
    """``address`` as email-validator normalizes it, when it is a plain ASCII address the quick
    check can settle; None for anything else (which only email-validator can decide)."""
    if len(address) > 254 or not _PLAIN_ADDRESS.fullmatch(address):
        return None
    return _plain_case(address)


def _plain_case(address: str) -> str | None:
    """The last of the quick check, on an address of the right shape (see ``_PLAIN_ADDRESS``)."""
    if address.islower():  # nearly always
        return None if address.endswith(_RESERVED_TLDS) else address
    lower = address.lower()
    if lower.endswith(_RESERVED_TLDS) or lower.startswith(_CASELESS_MAILBOXES):
        return None
    local, _, domain = address.partition("@")
    return f"{local}@{domain.lower()}"


def normalize_address(address: str) -> str:
    """A validated, normalized address; raises ValueError with the validator's reason."""
    address = address.strip()
    quick = plain_address(address)
    if quick is not None:
        return quick
    return _validate(address)


def _validate(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email  # 70 ms: only when needed

    try:
        # allow_smtputf8=False: the transports speak plain SMTP, so an address that needs the
        # SMTPUTF8 extension is refused here, by line, rather than by a server mid-send.
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.ascii_email or result.normalized


def column_name(header: str) -> str:
    """A header as a template slot name: `First Name` -> `first_name`, `E-mail` -> `e_mail`."""
    name = _NOT_SLOT_CHAR.sub("_", header.strip().lower())
    return f"_{name}" if name[:1].isdigit() else name


def one_line(value: str) -> str:
    """A value safe for a header or a personal field: line breaks and control characters become
    one space. The one guard every value on its way into a message goes through."""
    if value.isprintable():  # nearly always, and then nothing for the pattern to find
        return value.strip()
    return _NOT_ONE_LINE.sub(" ", value).strip()


# -- the list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where a reader's parts are in a row."""

    names: tuple[str, ...]  # slot names, in file order
    email: int  # the address column
    name: tuple[int, ...] = ()  # the name column, or first and last name's (exports.Columns)
    marks: tuple[Mark, ...] = ()  # columns by which an export marks a reader as gone


class SubscriberList:
    """A reader list as read: its columns and counts; its readers and skipped rows are read from
    the list's copy when they are wanted, in list order, and never all held at once.

    ``readers`` and ``skipped`` give them all as tuples, for small lists; a send iterates
    ``Readers`` (``all``, or a plan's groups) instead.
    """

    def __init__(self, path: Path, layout: _Layout, scratch: _Scratch):
        self.path = path
        self.columns = layout.names
        self._layout = layout
        self._scratch = scratch
        db = scratch.db
        self.count: int = db.execute("SELECT COUNT(*) FROM reader").fetchone()[0]
        self.skipped_count: int = db.execute("SELECT COUNT(*) FROM skipped").fetchone()[0]
        self.duplicates: int = db.execute(
            "SELECT COUNT(*) FROM skipped WHERE reason LIKE 'duplicate of line %'"
        ).fetchone()[0]
        # Readers the list's own export marks as gone (unsubscribed, cleaned, bounced...): why -> how many.
        self.gone: dict[str, int] = dict(
            db.execute("SELECT why, COUNT(*) FROM gone GROUP BY why ORDER BY why")
        )
        self._tables = 0

    def __len__(self) -> int:
        return self.count

    @property
    def all(self) -> Readers:
        return Readers(self, "1", (), self.count)

    @property
    def readers(self) -> tuple[Subscriber, ...]:
        """Every reader, in list order (all in memory: for small lists)."""
        return tuple(self.all)

    @property
    def skipped(self) -> tuple[SkippedRow, ...]:
        """Every skipped row, in list order (all in memory: for small lists)."""
        return tuple(self.skipped_rows())

    @property
    def database(self) -> sqlite3.Connection:
        """The scratch file's connection: table ``reader`` (line, key, email), one row per reader;
        a plan adds its own tables (``delivery.plan``)."""
        return self._scratch.db

    @property
    def database_path(self) -> Path:
        return self._scratch.path

    def table_name(self, stem: str) -> str:
        """A name for a new table in the scratch file, never given before."""
        self._tables += 1
        return f"{stem}_{self._tables}"

    def find(self, key: str) -> Subscriber | None:
        """The reader whose address key is ``key``, if the list has one."""
        row = self._scratch.db.execute("SELECT line FROM reader WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return next(iter(Readers(self, "r.line = ?", (row[0],), 1)), None)

    def skipped_rows(self) -> Iterator[SkippedRow]:
        """The rows left out, in list order: unreadable, invalid, duplicates."""
        db = self._scratch.db
        copy: _PhysicalLines | None = None
        last = 0
        try:
            while True:
                chunk = db.execute(
                    "SELECT s.line, s.reason, s.raw, coalesce(p.lines, 1) FROM skipped s"
                    " LEFT JOIN span p ON p.line = s.line WHERE s.line > ? ORDER BY s.line LIMIT ?",
                    (last, _CHUNK),
                ).fetchall()
                if not chunk:
                    return
                for line, reason, raw, lines in chunk:
                    if raw is None:  # the row as it stands, from the copy
                        copy = copy or _PhysicalLines(self._scratch.copy, self._scratch.encoding)
                        raw = copy.take(line, lines)
                    yield SkippedRow(line, raw, reason)
                last = chunk[-1][0]
        finally:
            if copy is not None:
                copy.close()

    def remember(self, state_dir: Path) -> int:
        """Keep what email-validator said in this read in the workspace's address memory, for the
        next read of the list; how many answers. Makes the file only when there is something."""
        rows = self._scratch.db.execute("SELECT address, email, reason FROM checked").fetchall()
        if not rows:
            return 0
        from digestcli.state.addresses import AddressMemory

        return AddressMemory(state_dir, checker_version()).remember(rows)

    def close(self) -> None:
        """Remove the list's copy and scratch file (done anyway when the list is let go of)."""
        self._scratch.remove()

    def stream(
        self,
        join: str,
        where: str,
        params: tuple[object, ...],
        ahead: Callable[[list[str]], None] | None = None,
    ) -> Iterator[Subscriber]:
        """The readers a query picks (``reader r`` joined with ``join``, filtered by ``where``), in
        list order, each read from the copy as it is reached. ``ahead`` is given the keys of each
        few hundred readers before the first of them is."""
        query = (
            f"SELECT r.line, r.email, r.key FROM reader r {join} WHERE ({where}) AND r.line > ?"
            " ORDER BY r.line LIMIT ?"
        )
        db = self._scratch.db
        rows = _Rows(self._scratch, self.path)
        try:
            runs = iter(rows)
            first, run = 0, list[list[str]]()  # the last run read: its rows start on first, first + 1, ...
            last = 0
            while True:
                chunk = db.execute(query, (*params, last, _CHUNK)).fetchall()
                if not chunk:
                    return
                if ahead is not None:
                    ahead([key for _, _, key in chunk])
                for line, email, _ in chunk:
                    while line >= first + len(run):
                        first, found, _ = next(runs, (line + 1, None, ""))
                        if found is None and first > line:
                            break
                        run = found or []
                    if not first <= line < first + len(run):
                        raise InputError(
                            f"the copy of the list no longer has the row on line {line}",
                            where=str(self._scratch.copy),
                            hint="read the list again (run the command again)",
                        )
                    yield self._reader(run[line - first], line, email)
                last = chunk[-1][0]
        finally:
            rows.close()

    def _reader(self, row: list[str], line: int, email: str) -> Subscriber:
        columns = self.columns
        values = {name: one_line(row[i]) if i < len(row) else "" for i, name in enumerate(columns)}
        address = email or values[columns[self._layout.email]]
        values["email"] = address
        # The reader's name: its column, or first and last name (an export's First Name, Last Name).
        values["name"] = name = " ".join(filter(None, (values[columns[i]] for i in self._layout.name)))
        return Subscriber(address, name, MappingProxyType(values), line)


class Readers:
    """Some of a list's readers (all of them, or a group of a send's plan): ``len`` of them, in
    list order, read from the list's copy each time they are iterated, never held in memory.
    ``ahead``: see ``SubscriberList.stream``."""

    def __init__(
        self,
        source: SubscriberList,
        where: str,
        params: tuple[object, ...],
        count: int,
        *,
        join: str = "",
        ahead: Callable[[list[str]], None] | None = None,
    ):
        self.source = source
        self._where, self._params, self._join = where, params, join
        self._count = count
        self._ahead = ahead

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Subscriber]:
        stream = self.source.stream(self._join, self._where, self._params, self._ahead)
        return _Counted(stream if self._count else iter(()), self._count)

    def __repr__(self) -> str:
        return f"<{self._count:,} readers of {self.source.path}>"

    def ahead(self, ahead: Callable[[list[str]], None]) -> Readers:
        """The same readers, with ``ahead`` given the keys of each few hundred before they are read."""
        return Readers(self.source, self._where, self._params, self._count, join=self._join, ahead=ahead)


class _Counted(Iterator[Subscriber]):
    """An iterator that knows how many it has left (``operator.length_hint``): a run that stops
    can count the readers it did not reach without reading them."""

    def __init__(self, readers: Iterator[Subscriber], count: int):
        self._readers, self._left = readers, count

    def __next__(self) -> Subscriber:
        reader = next(self._readers)
        self._left -= 1
        return reader

    def __length_hint__(self) -> int:
        return max(0, self._left)


def load_subscribers(
    path: str | Path,
    *,
    state: Path | None = None,
    encoding: str = "utf-8",
    columns: Mapping[str, str] | None = None,
    scratch_in: Path | None = None,
) -> SubscriberList:
    """Read and check subscribers.csv; bad rows are skipped and reported, never fatal. ``state``:
    the workspace's state folder, whose address memory spares email-validator the addresses it
    answered before (read only: ``SubscriberList.remember`` adds to it). ``encoding``: the file's,
    when it is not UTF-8 (never guessed). ``columns``: which column is which, when the header does
    not say it in words digest knows (``exports``). ``scratch_in``: the state folder whose ``tmp/``
    holds the list's copy and scratch file while the list is in use (made when needed, and removed
    again when left empty); the system's temporary folder when None."""
    path = Path(path)
    scratch = _Scratch.make(scratch_in)
    scratch.columns = dict(columns or {})
    try:
        shutil.copyfile(path, scratch.copy)
    except BaseException as exc:
        scratch.remove()
        if isinstance(exc, OSError) and exc.errno in _FULL:
            raise scratch_error(exc, scratch.folder.parent) from None
        if isinstance(exc, OSError):
            raise _unreadable_file(exc, path) from None
        raise
    return _read(path, scratch, encoding, state)


def parse_subscribers(text: str, path: str | Path = "<subscribers>") -> SubscriberList:
    """A list from its text (``path`` names it in messages)."""
    scratch = _Scratch.make()
    try:
        scratch.copy.write_text(text, encoding="utf-8", newline="")
    except BaseException:
        scratch.remove()
        raise
    return _read(Path(path), scratch, "utf-8", None)


def _unreadable_file(exc: OSError, path: Path) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError("subscriber list not found", where=str(path), hint="check the path")
    if isinstance(exc, IsADirectoryError):
        return InputError("is a directory, not a subscriber list", where=str(path))
    if isinstance(exc, PermissionError):
        return InputError("permission denied", where=str(path), hint="check the file's permissions")
    return InputError(f"cannot read: {exc.strerror or exc}", where=str(path))


def _read(path: Path, scratch: _Scratch, encoding: str, state: Path | None) -> SubscriberList:
    """The one pass over a list: every row checked, readers and skipped rows written down."""
    try:
        scratch.encoding = encoding
        rows = _Rows(scratch, path)
        try:
            layout = _check_all(rows, scratch, _Checker(scratch.db, state))
        finally:
            rows.close()
        _drop_gone(scratch.db)
        _drop_duplicates(scratch.db)
        return SubscriberList(path, layout, scratch)
    except BaseException as exc:
        scratch.remove()
        if is_full(exc):
            raise scratch_error(exc, scratch.folder.parent) from None
        raise


def _check_all(rows: _Rows, scratch: _Scratch, checker: _Checker) -> _Layout:
    """Every row checked: readers and skipped rows written down (a skipped row's text only when
    it cannot be read from the copy again: the first line of a broken one)."""
    db = scratch.db
    readers: list[int | str] = []  # line, key, email, line, key, email, ...: see _insert_readers
    skipped: list[tuple[int, str, str | None]] = []
    spans: list[tuple[int, int]] = []
    db.execute("BEGIN")
    check: _RowCheck | None = None
    for first, run, why in rows:
        if run is None:
            skipped.append((first, why, rows.raw))
            continue
        if check is None:
            assert rows.layout is not None
            check = _RowCheck(rows.layout, checker, readers, skipped)
        if rows.behind != first + len(run) - 1:  # one row, over several lines
            spans.append((first, rows.behind - first + 1))
        check.run(first, run)
        if len(readers) >= _BATCH * 3:
            _insert_readers(db, readers)
        if len(check.gone) >= _BATCH:
            db.executemany("INSERT INTO gone (line, key, why) VALUES (?, ?, ?)", check.gone)
            check.gone.clear()
        if len(skipped) >= _BATCH:
            db.executemany("INSERT INTO skipped (line, reason, raw) VALUES (?, ?, ?)", skipped)
            skipped.clear()
    _insert_readers(db, readers)
    db.executemany("INSERT INTO skipped (line, reason, raw) VALUES (?, ?, ?)", skipped)
    db.executemany("INSERT INTO span (line, lines) VALUES (?, ?)", spans)
    if check is not None:
        db.executemany("INSERT INTO gone (line, key, why) VALUES (?, ?, ?)", check.gone)
    db.execute("COMMIT")
    if rows.layout is None:
        raise InputError(
            "the subscriber list is empty", where=f"{rows.shown}:1", hint="add a header row: email,name"
        )
    return rows.layout


class _RowCheck:
    """The checks of the first pass, a run of rows at a time. The rows every list is made of (as
    wide as the header, a plain lowercase address) are checked by C code alone (``map`` over the
    run); the others one at a time. Python code per row costs a microsecond: a list has millions."""

    def __init__(
        self,
        layout: _Layout,
        checker: _Checker,
        readers: list[int | str],
        skipped: list[tuple[int, str, str | None]],
    ):
        self.width, self.email, self.marks = len(layout.names), layout.email, layout.marks
        self.checker, self.readers, self.skipped = checker, readers, skipped
        self.gone: list[tuple[int, str | None, str]] = []  # (line, key, why): an export's mark

    def run(self, first: int, run: list[list[str]]) -> None:
        count, email = len(run), self.email
        if self.marks or max(map(len, run)) > self.width or min(map(len, run)) <= email:
            self.one_by_one(first, run)
            return
        cells = [row[email] for row in run]
        if not all(map(str.isprintable, cells)):
            self.one_by_one(first, run)
            return
        addresses = list(map(str.strip, cells))
        if max(map(len, addresses)) > 254 or any(map(_reserved, addresses)):
            self.one_by_one(first, run)
            return
        # bool at once: a list of match objects kept alive costs four times the matching.
        plain = list(map(bool, map(_PLAIN_LOWERCASE.fullmatch, addresses)))
        lines = range(first, first + count)
        if all(plain):  # nearly always: as they are, key and all
            self.readers += itertools.chain.from_iterable(
                zip(lines, addresses, itertools.repeat("", count), strict=True)
            )
            return
        fine = list(itertools.compress(lines, plain))
        self.readers += itertools.chain.from_iterable(
            zip(fine, itertools.compress(addresses, plain), itertools.repeat("", len(fine)), strict=True)
        )
        taken = set(fine)
        self.one_by_one(first, run, lambda line: line not in taken)

    def one_by_one(
        self, first: int, run: list[list[str]], wanted: Callable[[int], bool] | None = None
    ) -> None:
        width, at = self.width, self.email
        quick, readers, skipped = _PLAIN_ADDRESS.fullmatch, self.readers, self.skipped
        for start, row in enumerate(run, first):
            if wanted is not None and not wanted(start):
                continue
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                why = f"{len(row)} fields but the header has {width}"
                skipped.append((start, f"{why} (a value holding the delimiter needs double quotes)", None))
                continue
            address = one_line(row[at]) if at < len(row) else ""
            email = _plain_case(address) if len(address) <= 254 and quick(address) else None
            marked = gone(self.marks, row) if self.marks else ""
            if marked:  # counted, never mailed: also from another row with the same address
                email = email or (self.checker.check(address)[0] if address else "")
                self.gone.append((start, email.lower() or None, marked))
                continue
            if email is None:
                if not address:
                    skipped.append((start, "no email address", None))
                    continue
                email, why = self.checker.check(address)
                if why:
                    skipped.append((start, f"invalid address {address!r}: {why}", None))
                    continue
            # "" rather than NULL: binding None costs sqlite3 an adapter lookup, a third of the insert.
            readers += (start, email.lower(), "" if email == address else email)


_reserved = operator.methodcaller("endswith", _RESERVED_TLDS)
_ROWS_A_STATEMENT = 512
_INSERT_READERS = "INSERT INTO reader (line, key, email) VALUES " + ",".join(
    ["(?, ?, ?)"] * _ROWS_A_STATEMENT
)


def _insert_readers(db: sqlite3.Connection, flat: list[int | str]) -> None:
    """Write down readers given as one flat list (emptied): many rows a statement, which halves
    the cost of a row next to one statement each (executemany)."""
    size = _ROWS_A_STATEMENT * 3
    whole = len(flat) - len(flat) % size
    for at in range(0, whole, size):
        db.execute(_INSERT_READERS, flat[at : at + size])
    rest = flat[whole:]
    rows = zip(rest[::3], rest[1::3], rest[2::3], strict=True)
    db.executemany("INSERT INTO reader (line, key, email) VALUES (?, ?, ?)", rows)
    flat.clear()


def _drop_gone(db: sqlite3.Connection) -> None:
    """A reader an export marks as gone on one row is gone on every row: an unsubscribe in one
    export file wins over the same address still subscribed in another pasted after it."""
    if db.execute("SELECT 1 FROM gone WHERE key IS NOT NULL LIMIT 1").fetchone() is None:
        return
    db.execute("BEGIN")
    db.execute(
        "CREATE TEMP TABLE gone_key AS"
        " SELECT key, MIN(why) AS why FROM gone WHERE key IS NOT NULL GROUP BY key"
    )
    db.execute(
        "INSERT INTO gone (line, key, why)"
        " SELECT r.line, r.key, g.why FROM reader r JOIN gone_key g USING (key)"
    )
    db.execute("DELETE FROM reader WHERE key IN (SELECT key FROM gone_key)")
    db.execute("DROP TABLE gone_key")
    db.execute("COMMIT")


def _drop_duplicates(db: sqlite3.Connection) -> None:
    """The second and later rows of one reader become skipped rows, naming the first. Sorting the
    keys once (an index) is what finds them: no set of a million addresses in memory."""
    db.execute("CREATE INDEX reader_key ON reader (key)")
    db.execute("BEGIN")
    db.execute(
        "CREATE TEMP TABLE duplicate AS SELECT r.line, f.first FROM reader r JOIN"
        " (SELECT key, MIN(line) AS first FROM reader GROUP BY key HAVING COUNT(*) > 1) f"
        " ON r.key = f.key AND r.line > f.first"
    )
    db.execute("INSERT INTO skipped (line, reason) SELECT line, 'duplicate of line ' || first FROM duplicate")
    db.execute("DELETE FROM reader WHERE line IN (SELECT line FROM duplicate)")
    db.execute("DROP TABLE duplicate")
    db.execute("COMMIT")


class _Checker:
    """email-validator for the addresses the quick check leaves to it, asked once per address:
    the workspace's address memory first, then the validator, whose answers are written down."""

    def __init__(self, db: sqlite3.Connection, state: Path | None):
        self._db = db
        self._state = state
        self._memory: AddressMemory | None = None

    def check(self, address: str) -> tuple[str, str]:
        """(normalized, "") or ("", why it is not valid)."""
        memory = self._open_memory()
        found = memory.recall(address) if memory is not None else None
        if found is not None:
            return found
        try:
            answer = (_validate(address), "")
        except ValueError as exc:
            answer = ("", str(exc))
        self._db.execute(
            "INSERT OR IGNORE INTO checked (address, email, reason) VALUES (?, ?, ?)", (address, *answer)
        )
        return answer

    def _open_memory(self) -> AddressMemory | None:
        if self._state is None:
            return None
        if self._memory is None:
            from digestcli.state.addresses import AddressMemory

            self._memory = AddressMemory(self._state, checker_version())
        return self._memory


# -- reading the file ---------------------------------------------------------------------------


_FULL = (errno.ENOSPC, errno.EDQUOT)


def scratch_folder(state_dir: Path) -> tuple[Path, tuple[Path, ...]]:
    """The state folder's ``tmp/``, made when needed (the state folder too, as a send makes it),
    and the folders made now, innermost first (removed again when left empty: a dry run leaves no
    trace). Where a list's copy and scratch files go: on the workspace's disk, never in a system
    temporary folder that may be memory. Nothing in it outlives the process that made it."""
    from digestcli.state import make_state_dir

    folder = state_dir / SCRATCH_DIR
    made = [path for path in (folder, state_dir) if not path.is_dir()]
    make_state_dir(state_dir)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise scratch_error(exc, folder) from None
    return folder, tuple(made)


def _remove_if_empty(folders: tuple[Path, ...]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty: another run, or the send, put files there
            folder.rmdir()


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the quota) is full: an OSError's errno, SQLite's FULL."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return False


def scratch_error(exc: BaseException, folder: Path) -> DeliveryError:
    """A scratch file that cannot be written, said as the editor can act on it."""
    if is_full(exc):
        return DeliveryError(
            "no space left for digest's scratch files",
            where=str(folder),
            hint="free some space on that disk and try again (a list of a million readers needs"
            " about 150 MB there while it is read)",
        )
    what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return DeliveryError(
        f"cannot write digest's scratch files: {what}",
        where=str(folder),
        hint="check that it is a folder you can write",
    )


@contextlib.contextmanager
def scratch_database(state_dir: Path, stem: str) -> Generator[sqlite3.Connection, None, None]:
    """A scratch SQLite file in the state folder's ``tmp/`` (``scratch_folder``), removed on
    leaving; a full disk is said as one line naming the folder."""
    folder, made = scratch_folder(state_dir)
    _remove_abandoned(folder)
    try:
        handle, name = tempfile.mkstemp(
            prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-{stem}-", suffix=".sqlite3", dir=folder
        )
        os.close(handle)
    except OSError as exc:
        raise scratch_error(exc, folder) from None
    path = Path(name)
    try:
        db = sqlite3.connect(path.as_uri(), uri=True, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            yield db
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        if not is_full(exc):
            raise
        raise scratch_error(exc, folder) from None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        _remove_if_empty(made)


class _Scratch:
    """A list's copy and scratch SQLite file, in a folder of their own in the state folder's
    ``tmp/`` (``scratch_folder``), or the temporary folder for a list read without a workspace."""

    def __init__(self, folder: Path, made: tuple[Path, ...] = ()):
        self.folder = folder
        self.copy = folder / "list.csv"
        self.path = folder / "list.sqlite3"
        self.encoding = "utf-8"
        self.columns: Mapping[str, str] = {}  # [delivery] columns
        # Nothing here outlives the process: no journal, no syncing.
        # uri=True: a plan attaches the ledger and the suppression list by URI, read-only.
        self.db = sqlite3.connect(self.path.as_uri(), uri=True, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCRATCH_SCHEMA)
        self._finalizer = weakref.finalize(self, _remove_scratch, self.db, folder, made)

    @classmethod
    def make(cls, state_dir: Path | None = None) -> _Scratch:
        """In ``state_dir``'s ``tmp/`` (``scratch_folder``), or the system's temporary folder when
        None; scratch folders that processes which died left there are removed first."""
        where, made = scratch_folder(state_dir) if state_dir is not None else (None, ())
        _remove_abandoned(where)
        try:
            folder = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-", dir=where))
        except OSError as exc:
            _remove_if_empty(made)
            raise scratch_error(exc, where or Path(tempfile.gettempdir())) from None
        try:
            return cls(folder, made)
        except BaseException as exc:
            shutil.rmtree(folder, ignore_errors=True)
            _remove_if_empty(made)
            if is_full(exc):
                raise scratch_error(exc, folder.parent) from None
            raise

    def remove(self) -> None:
        self._finalizer()


def _remove_scratch(db: sqlite3.Connection, folder: Path, made: tuple[Path, ...] = ()) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.close()
    shutil.rmtree(folder, ignore_errors=True)
    _remove_if_empty(made)


def _remove_abandoned(where: Path | None = None) -> None:
    """Scratch folders and files of processes that died without removing theirs (killed mid-send)."""
    try:
        entries = list(os.scandir(where or tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(_SCRATCH_PREFIX):
            continue
        pid = entry.name[len(_SCRATCH_PREFIX) :].partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        except OSError:
            pass  # alive, or another user's


class _Rows:
    """The rows of a list after its header, each with the line it starts on: the one reading that
    both the first pass (checking) and every later one (sending) go through, so that their line
    numbers agree.

    csv reads the file's lines itself (no Python code per line). A second reader trails behind
    and fetches a row's physical lines only when they are needed: a row over several lines, to
    tell a note with line breaks in a quoted cell from a quote left open, and a broken row, which
    is skipped at its first line while reading starts again on the next (a quote left open would
    swallow the rows after it otherwise).
    """

    def __init__(self, scratch: _Scratch, shown: Path):
        self.shown = shown
        self.copy = scratch.copy
        self.encoding = scratch.encoding
        self.mapping = scratch.columns
        self.layout: _Layout | None = None
        self.behind = 0  # physical lines behind us: the row just read ends on this line
        self.raw = ""  # the first line of the broken row just read
        self.handle = _open_text(self.copy, self.encoding, shown)
        self._trail = _PhysicalLines(self.copy, self.encoding)
        # The header row decides the delimiter: it is the one line whose shape we know (no
        # addresses with commas, rarely quoted). csv.Sniffer guesses from data rows too and trips
        # over names like "Lee, Ann".
        self._first: list[str] = []
        with self._decoding():
            for line in self.handle:
                self._first.append(line.removeprefix("\ufeff") if not self._first else line)
                if line.strip():
                    break
        self.delimiter = _sniff_delimiter(self._first[-1] if self._first else "")

    def close(self) -> None:
        self.handle.close()
        self._trail.close()

    def __iter__(self) -> Iterator[tuple[int, list[list[str]] | None, str]]:
        """The rows after the header in runs: (line, rows, "") for rows starting on ``line``,
        ``line + 1``, ... (each on one line; or one row over the lines up to ``behind``), and
        (line, None, why) for a row that cannot be read (its first line is then ``raw``).

        Runs of whole lines are read by csv alone, a thousand rows at a time: Python code per
        row costs a microsecond, and a list has a million rows. A run with a row over several
        lines, or a row csv cannot read, is read again one row at a time (``_one_by_one``)."""
        source: Iterator[str] = itertools.chain(self._first, self.handle)
        self._first = []
        source = yield from self._one_by_one(source, 0)  # the header
        while True:
            before = self.behind
            reader = csv.reader(source, delimiter=self.delimiter)
            try:
                with self._decoding():
                    rows: list[list[str]] | None = list(itertools.islice(reader, _BATCH))
            except csv.Error:
                rows = None
            end = before + reader.line_num
            if rows is None or end - before != len(rows):
                # Again, row by row, from the run's first line: which row has several lines?
                source = itertools.chain(self._trail.lines(before + 1, end), source)
                source = yield from self._one_by_one(source, end)
                continue
            if not rows:
                return
            self.behind = end
            if all(rows) and all(map(str.strip, map(operator.itemgetter(0), rows))):
                yield before + 1, rows, ""  # no blank row: nearly always
                continue
            blank = [i for i, row in enumerate(rows) if not any(cell.strip() for cell in row)]
            if not blank:
                yield before + 1, rows, ""
                continue
            # Blank lines separate nothing and hold no one: the runs between them.
            first = 0
            for i in [*blank, len(rows)]:
                if i > first:
                    self.behind = before + i
                    yield before + 1 + first, rows[first:i], ""
                first = i + 1
            self.behind = end

    def _one_by_one(
        self, source: Iterator[str], until: int
    ) -> Generator[tuple[int, list[list[str]] | None, str], None, Iterator[str]]:
        """Rows read one at a time from ``source``, each a run of its own, until one ends on line
        ``until`` or after (and the header is read), or the file ends; then the source to read on."""
        while True:
            reader = csv.reader(source, delimiter=self.delimiter)
            base = done = self.behind  # lines behind us when this reader started
            broken: tuple[int, int, str] | None = None
            try:
                with self._decoding():
                    for row in reader:
                        start, done = done + 1, base + reader.line_num
                        blank = not (row and row[0].strip()) and not any(cell.strip() for cell in row)
                        if done > start and self.layout is not None and not blank:
                            runaway = self._runaway(start, done)
                            if runaway:
                                broken = (start, done, runaway)
                                break
                        self.behind = done
                        if self.layout is None:
                            if blank:
                                continue
                            if done > start:
                                raise InputError(
                                    "a quote in the header row is never closed",
                                    where=f"{self.shown}:{start}",
                                    hint="check the quotes on that line",
                                )
                            self.layout = _read_header(row, self.shown, start, self.mapping)
                        elif not blank:  # blank lines separate nothing and hold no one
                            yield start, [row], ""
                        if self.layout is not None and done >= until:
                            return source
                    else:
                        return source  # the end of the file
            except csv.Error as exc:
                start = done + 1
                if self.layout is None:
                    raise InputError(
                        f"not readable as CSV: {exc}",
                        where=f"{self.shown}:{start}",
                        hint="check the quotes on that line",
                    ) from None
                end = max(start, base + reader.line_num)
                broken = (start, end, _unreadable(exc, self._trail.take(start, 1)))
            # Read on from the line after the broken row's first: the rows it swallowed come back.
            start, end, why = broken
            self.behind = start
            self.raw = self._trail.take(start, 1)
            source = itertools.chain(self._trail.lines(start + 1, end), source)
            yield start, None, why
            if start >= until:
                return source

    def _runaway(self, start: int, end: int) -> str:
        """Why the row on lines ``start`` to ``end`` is a quote left open rather than line breaks
        in a quoted field ("" when it looks deliberate)."""
        assert self.layout is not None
        lines = self._trail.lines(start, end)
        raw = "".join(lines)
        try:
            # A quoted field with line breaks in it, closed where it should be, reads strictly as
            # one row no wider than the header: that is a note in a cell, not a quote left open.
            rows = list(csv.reader(io.StringIO(raw), delimiter=self.delimiter, strict=True))
            if len(rows) == 1 and len(rows[0]) <= len(self.layout.names):
                return ""
        except csv.Error:
            pass
        if raw.count('"') % 2 and not self._trail.has(end + 1):
            return f"a quote opened on this line is never closed (it runs to the end of the file, line {end})"
        email = self.layout.email
        for number in range(start + 1, end + 1):
            cells = next(csv.reader([lines[number - start]], delimiter=self.delimiter), [])
            if len(cells) > email and "@" in cells[email]:
                try:
                    normalize_address(cells[email])
                except ValueError:
                    continue
                return f"a quote opened on this line runs on into the row on line {number}"
        return ""

    @contextlib.contextmanager
    def _decoding(self) -> Iterator[None]:
        """Bytes the encoding cannot read refuse the list, at their line: never guessed at."""
        try:
            yield
        except UnicodeDecodeError as exc:
            line, byte = _undecodable(self.copy, self.encoding)
            utf8 = self.encoding.replace("_", "-").lower() in ("utf-8", "utf8")
            name = "UTF-8" if utf8 else self.encoding
            if not utf8:
                hint = f"check that the file is {self.encoding}, or name its own in [delivery] encoding"
            elif _starts_utf16(self.copy):
                hint = 'it is UTF-16 (Excel\'s "Unicode Text"): set [delivery] encoding = "utf-16"'
            else:
                hint = (
                    'save it as "CSV UTF-8" (in Excel: File > Save As > CSV UTF-8), or name its encoding'
                    ' in digest.toml: [delivery] encoding = "cp1252" (what Excel\'s plain "CSV" is)'
                )
            raise InputError(
                f"not valid {name} (byte 0x{byte if byte is not None else exc.object[exc.start]:02x})",
                where=f"{self.shown}:{line}",
                hint=hint,
            ) from None


def _open_text(path: Path, encoding: str, shown: Path) -> io.TextIOWrapper:
    try:
        return open(path, encoding=encoding, newline="")
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}",
            where=str(shown),
            hint='name one Python knows in [delivery] encoding, such as "utf-8" or "cp1252"',
        ) from None


def _starts_utf16(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) in (b"\xff\xfe", b"\xfe\xff")


def _undecodable(path: Path, encoding: str) -> tuple[int, int | None]:
    """The line of the first byte ``encoding`` cannot read, and that byte (read again to find it:
    the decoder says where in its chunk, not on which line)."""
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as handle:
        for number, line in enumerate(handle, 1):
            if line.isascii():
                continue
            for char in line:
                if "\udc80" <= char <= "\udcff":
                    return number, ord(char) - 0xDC00
    return 1, None


class _PhysicalLines:
    """A list's copy, line by line, for the rows that are needed as they stand (a row to quote, a
    row to read again). Lines are asked for in order, give or take the row being read."""

    def __init__(self, copy: Path, encoding: str):
        self.handle = open(copy, encoding=encoding, errors="surrogateescape", newline="")  # noqa: SIM115
        self.read = 0  # lines read so far
        self.kept: collections.deque[tuple[int, str]] = collections.deque()  # the latest ones read

    def lines(self, start: int, end: int) -> list[str]:
        """Lines ``start`` to ``end`` (fewer at the end of the file); earlier ones are let go of."""
        kept = self.kept
        while kept and kept[0][0] < start:
            kept.popleft()
        self._read_to(end, start)
        return [text for number, text in kept if number <= end]

    def has(self, line: int) -> bool:
        """Whether the file has a line ``line`` (lines already kept stay kept)."""
        self._read_to(line, line)
        return self.read >= line

    def take(self, start: int, count: int) -> str:
        """A row as it stands: its ``count`` lines from ``start``."""
        return "".join(self.lines(start, start + count - 1)).rstrip("\r\n")

    def close(self) -> None:
        self.handle.close()

    def _read_to(self, end: int, keep_from: int) -> None:
        if not self.kept and keep_from - 1 > self.read:  # lines no one needs: skipped by C code
            collections.deque(itertools.islice(self.handle, keep_from - 1 - self.read), maxlen=0)
            self.read = keep_from - 1
        while self.read < end:
            text = next(self.handle, None)
            if text is None:
                return
            self.read += 1
            if self.read == 1:
                text = text.removeprefix("\ufeff")
            if self.read >= keep_from:
                self.kept.append((self.read, text))


def _unreadable(exc: csv.Error, line: str) -> str:
    """Why csv gave up on a row starting on ``line``: most often a field past its size limit,
    which is a quote left open only when the line's own quotes do not pair up."""
    if "field limit" not in str(exc):
        return f"not readable as CSV ({exc}): check the quotes on this line"
    limit = csv.field_size_limit()
    if line.count('"') % 2 == 0:
        return f"a field longer than {limit:,} characters (this line is {len(line):,} characters)"
    return f"a quote opened on this line is not closed within {limit:,} characters: check the quotes"


def _sniff_delimiter(first: str) -> str:
    counts = {d: _count_unquoted(first, d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _count_unquoted(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            count += 1
    return count


def _read_header(row: list[str], path: Path, line: int, mapping: Mapping[str, str]) -> _Layout:
    names = [column_name(cell) for cell in row]
    where = f"{path}:{line}"
    found = find_columns(row, mapping, where)
    for index, name in enumerate(names):
        if not name.strip("_"):
            names[index] = f"column_{index + 1}"  # an unnamed column still keeps its place
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"two columns are both named '{name}'", where=where, hint="rename one of them")
        if name in COMPUTED_FIELDS:
            raise InputError(
                f"column '{name}' is filled in by digest for each reader",
                where=where,
                hint="rename the column",
            )
    return _Layout(tuple(names), found.email, found.name, found.marks)
