"""The reader list: reading subscribers.csv into validated, de-duplicated readers, and the
suppression list (unsubscribed, bounced, complained) that every send respects.

The CSV is the editor's file; the suppression list is digest's own record in the workspace state,
so that an unsubscribe holds even when an old copy of the CSV comes back.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from email_validator import EmailNotValidError, validate_email

from digestcli.errors import InputError, UsageError, read_text

# Fields digest fills itself; a CSV column of the same name would be silently shadowed.
COMPUTED_FIELDS = frozenset({"unsubscribe_url"})
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained")
SUPPRESSIONS_DB = "suppressions.sqlite3"
_DELIMITERS = (",", ";", "\t")
_NOT_SLOT_CHAR = re.compile(r"[^a-z0-9_]")
# Line breaks and other control characters never belong in a personal field: they would end up
# in a header (To:) or break the layout. Tabs become spaces too.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


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


@dataclass(frozen=True)
class SubscriberList:
    path: Path
    columns: tuple[str, ...]  # slot names, in file order
    readers: tuple[Subscriber, ...]
    skipped: tuple[SkippedRow, ...]


def address_key(address: str) -> str:
    # The local part is case-sensitive in theory; in practice no provider treats Ann@ and ann@ as
    # two people, and mailing both would mail one person twice.
    return address.strip().lower()


def normalize_address(address: str) -> str:
    """A validated, normalized address; raises ValueError with the validator's reason."""
    try:
        # allow_smtputf8=False: the transports speak plain SMTP, so an address that needs the
        # SMTPUTF8 extension is refused here, by line, rather than by a server mid-send.
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.ascii_email or result.normalized


def column_name(header: str) -> str:
    """A header as a template slot name: `First Name` -> `first_name`, `E-mail` -> `e_mail`."""
    name = _NOT_SLOT_CHAR.sub("_", header.strip().lower())
    return f"_{name}" if name[:1].isdigit() else name


def clean_field(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def load_subscribers(path: str | Path) -> SubscriberList:
    """Read and validate subscribers.csv; bad rows are skipped and reported, never fatal."""
    path = Path(path)
    return parse_subscribers(read_text(path, "subscriber list"), path)


def parse_subscribers(text: str, path: str | Path = "<subscribers>") -> SubscriberList:
    path = Path(path)
    text = text.removeprefix("\ufeff")
    lines: list[str] = []

    def physical_lines() -> Iterator[str]:
        # Keep each physical line as read, so a skipped row can be quoted exactly and a quoted
        # field spanning lines still gets the line it starts on.
        for line in io.StringIO(text, newline=""):
            lines.append(line)
            yield line

    rows = csv.reader(physical_lines(), delimiter=_sniff_delimiter(text))
    header: list[str] | None = None
    consumed = 0  # physical lines read before the current row
    readers: list[Subscriber] = []
    skipped: list[SkippedRow] = []
    seen: dict[str, int] = {}
    try:
        for row in rows:
            start, consumed = consumed + 1, rows.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines separate nothing and hold no one
            raw = "".join(lines[start - 1 : consumed]).rstrip("\r\n")
            if header is None:
                header = _read_header(row, path, start)
                continue
            reader_or_reason = _read_row(row, header, start)
            if isinstance(reader_or_reason, str):
                skipped.append(SkippedRow(start, raw, reader_or_reason))
                continue
            first = seen.get(reader_or_reason.key)
            if first is not None:
                skipped.append(SkippedRow(start, raw, f"duplicate of line {first}"))
                continue
            seen[reader_or_reason.key] = start
            readers.append(reader_or_reason)
    except csv.Error as exc:
        raise InputError(
            f"not readable as CSV: {exc}",
            where=f"{path}:{consumed + 1}",
            hint="check the quotes on that line",
        ) from None
    if header is None:
        raise InputError(
            "the subscriber list is empty", where=f"{path}:1", hint="add a header row: email,name"
        )
    return SubscriberList(path, tuple(header), tuple(readers), tuple(skipped))


def _sniff_delimiter(text: str) -> str:
    # The header row decides: it is the one line whose shape we know (no addresses with commas,
    # rarely quoted). csv.Sniffer guesses from data rows too and trips over names like "Lee, Ann".
    first = next((line for line in text.splitlines() if line.strip()), "")
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


def _read_header(row: list[str], path: Path, line: int) -> list[str]:
    names = [column_name(cell) for cell in row]
    where = f"{path}:{line}"
    if "email" not in names:
        found = ", ".join(repr(cell.strip()) for cell in row)
        raise InputError(
            f"no 'email' column in the header row (found {found})",
            where=where,
            hint="the first row must name the columns, one of them 'email'",
        )
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
    return names


def _read_row(row: list[str], header: list[str], line: int) -> Subscriber | str:
    """A reader, or the reason the row cannot be one."""
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        return (
            f"{len(row)} fields but the header has {len(header)}"
            " (a value holding the delimiter needs double quotes)"
        )
    values = {name: clean_field(row[i]) if i < len(row) else "" for i, name in enumerate(header)}
    address = values["email"]
    if not address:
        return "no email address"
    try:
        values["email"] = normalize_address(address)
    except ValueError as exc:
        return f"invalid address {address!r}: {exc}"
    values.setdefault("name", "")
    return Subscriber(values["email"], values["name"], MappingProxyType(values), line)


# -- suppression list ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str  # one of SUPPRESSION_REASONS
    added: float  # seconds since the epoch
    note: str = ""


class SuppressionList:
    """Addresses never to mail again, kept in the workspace state (SQLite)."""

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / SUPPRESSIONS_DB

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS suppression ("
            " address TEXT PRIMARY KEY, reason TEXT NOT NULL, added REAL NOT NULL, note TEXT NOT NULL)"
        )
        return db

    def add(self, address: str, reason: str = "unsubscribed", note: str = "") -> Suppression:
        """Suppress an address (validated and normalized first); adding it again keeps the first entry."""
        if reason not in SUPPRESSION_REASONS:
            raise UsageError(
                f"unknown suppression reason {reason!r}", hint=f"use one of {', '.join(SUPPRESSION_REASONS)}"
            )
        try:
            key = address_key(normalize_address(address))
        except ValueError as exc:
            raise UsageError(f"not an email address: {address!r} ({exc})") from None
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT OR IGNORE INTO suppression VALUES (?, ?, ?, ?)", (key, reason, time.time(), note)
                )
            row = db.execute(
                "SELECT address, reason, added, note FROM suppression WHERE address = ?", (key,)
            ).fetchone()
        finally:
            db.close()
        return Suppression(*row)

    def remove(self, address: str) -> bool:
        """Take an address off the list (a reader who subscribed again); True if it was there."""
        db = self._connect()
        try:
            with db:
                cursor = db.execute("DELETE FROM suppression WHERE address = ?", (address_key(address),))
        finally:
            db.close()
        return cursor.rowcount > 0

    def entries(self) -> list[Suppression]:
        if not self.path.exists():
            return []
        db = self._connect()
        try:
            rows = db.execute("SELECT address, reason, added, note FROM suppression ORDER BY added, address")
            return [Suppression(*row) for row in rows]
        finally:
            db.close()

    def reasons(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """address key -> reason, for every suppressed address (or only those among ``keys``)."""
        entries = {entry.address: entry.reason for entry in self.entries()}
        if keys is None:
            return entries
        return {key: entries[key] for key in keys if key in entries}
