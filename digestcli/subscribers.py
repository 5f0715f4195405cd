"""The reader list: reading subscribers.csv into validated, de-duplicated readers.

The CSV is the editor's file; who must not be mailed again is digest's own record in the
workspace state (``state.suppressions``), so that an unsubscribe holds when an old CSV comes back.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from email_validator import EmailNotValidError, validate_email

from digestcli.errors import InputError, read_text

# Fields digest fills itself; a CSV column of the same name would be silently shadowed.
COMPUTED_FIELDS = frozenset({"unsubscribe_url"})
_DELIMITERS = (",", ";", "\t")
_NOT_SLOT_CHAR = re.compile(r"[^a-z0-9_]")
# Line breaks and other control characters never belong in a personal field or a header value:
# they would end up in a header (To:) or break the layout. Tabs become spaces too.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


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


def one_line(value: str) -> str:
    """A value safe for a header or a personal field: line breaks and control characters become
    one space. The one guard every value on its way into a message goes through."""
    return _NOT_ONE_LINE.sub(" ", value).strip()


def load_subscribers(path: str | Path) -> SubscriberList:
    """Read and validate subscribers.csv; bad rows are skipped and reported, never fatal."""
    path = Path(path)
    return parse_subscribers(read_text(path, "subscriber list"), path)


def parse_subscribers(text: str, path: str | Path = "<subscribers>") -> SubscriberList:
    path = Path(path)
    text = text.removeprefix("\ufeff")
    # Physical lines as they stand, so a skipped row can be quoted exactly, a quoted field spanning
    # lines still gets the line it starts on, and reading can start again after a broken row.
    lines = list(io.StringIO(text, newline=""))
    delimiter = _sniff_delimiter(text)
    header: list[str] | None = None
    readers: list[Subscriber] = []
    skipped: list[SkippedRow] = []
    seen: dict[str, int] = {}
    done = 0  # physical lines behind us
    while done < len(lines):
        base = done
        # Not lines[base:]: a list with thousands of broken rows restarts here thousands of times.
        rows = csv.reader((lines[i] for i in range(base, len(lines))), delimiter=delimiter)
        try:
            for row in rows:
                start, done = done + 1, base + rows.line_num
                if not any(cell.strip() for cell in row):
                    continue  # blank lines separate nothing and hold no one
                if header is None:
                    if done > start:
                        raise InputError(
                            "a quote in the header row is never closed",
                            where=f"{path}:{start}",
                            hint="check the quotes on that line",
                        )
                    header = _read_header(row, path, start)
                    continue
                if done > start:
                    runaway = _runaway(lines, start, done, delimiter, header)
                    if runaway:
                        # Read on from the next line: the rows the open quote swallowed come back.
                        skipped.append(SkippedRow(start, lines[start - 1].rstrip("\r\n"), runaway))
                        done = start
                        break
                raw = "".join(lines[start - 1 : done]).rstrip("\r\n")
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
            else:
                break  # the end of the file
        except csv.Error as exc:
            start = done + 1
            if header is None:
                raise InputError(
                    f"not readable as CSV: {exc}",
                    where=f"{path}:{start}",
                    hint="check the quotes on that line",
                ) from None
            line = lines[start - 1].rstrip("\r\n")
            skipped.append(SkippedRow(start, line, _unreadable(exc, line)))
            done = start
    if header is None:
        raise InputError(
            "the subscriber list is empty", where=f"{path}:1", hint="add a header row: email,name"
        )
    return SubscriberList(path, tuple(header), tuple(readers), tuple(skipped))


def _unreadable(exc: csv.Error, line: str) -> str:
    """Why csv gave up on a row starting on ``line``: most often a field past its size limit,
    which is a quote left open only when the line's own quotes do not pair up."""
    if "field limit" not in str(exc):
        return f"not readable as CSV ({exc}): check the quotes on this line"
    limit = csv.field_size_limit()
    if line.count('"') % 2 == 0:
        return f"a field longer than {limit:,} characters (this line is {len(line):,} characters)"
    return f"a quote opened on this line is not closed within {limit:,} characters: check the quotes"


def _runaway(lines: list[str], start: int, end: int, delimiter: str, header: list[str]) -> str:
    """Why a row spanning several lines is a quote left open rather than a line break in a
    quoted field ("" when it looks deliberate); the caller then starts reading again after it."""
    raw = "".join(lines[start - 1 : end])
    try:
        # A quoted field with line breaks in it, closed where it should be, reads strictly as one
        # row no wider than the header: that is a note in a cell, not a quote left open.
        rows = list(csv.reader(io.StringIO(raw), delimiter=delimiter, strict=True))
        if len(rows) == 1 and len(rows[0]) <= len(header):
            return ""
    except csv.Error:
        pass
    if end == len(lines) and raw.count('"') % 2:
        return f"a quote opened on this line is never closed (it runs to the end of the file, line {end})"
    email = header.index("email")
    for number in range(start + 1, end + 1):
        cells = next(csv.reader([lines[number - 1]], delimiter=delimiter), [])
        if len(cells) > email and "@" in cells[email]:
            try:
                normalize_address(cells[email])
            except ValueError:
                continue
            return f"a quote opened on this line runs on into the row on line {number}"
    return ""


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
    values = {name: one_line(row[i]) if i < len(row) else "" for i, name in enumerate(header)}
    address = values["email"]
    if not address:
        return "no email address"
    try:
        values["email"] = normalize_address(address)
    except ValueError as exc:
        return f"invalid address {address!r}: {exc}"
    values.setdefault("name", "")
    return Subscriber(values["email"], values["name"], MappingProxyType(values), line)
