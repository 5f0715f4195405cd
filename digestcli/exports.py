"""The reader list as other services export it: which column holds the address and which the
name, whatever the service calls them, and which readers the export marks as gone.

A new editor arrives with a CSV from Mailchimp (``Email Address``, ``First Name``, ``Last
Name``; unsubscribed and cleaned readers in files of their own, with ``UNSUB_TIME`` or
``CLEAN_TIME``), Substack (``email``, ``email_disabled``), Buttondown (``email``,
``subscriber_type``), Ghost (``email``, ``name``, ``subscribed_to_emails``), listmonk (``email``,
``name``, ``status``) or a blog's member export (``user_email``, ``display_name``). The usual
headers are recognised; ``[delivery] columns`` names the others. A reader an export marks as
unsubscribed, cleaned or bounced is left out of the send and counted, never mailed: the export
is the service's record of who left, and digest's own suppression list is not written from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from digestcli.errors import InputError

# What each part of a reader is called in the exports digest knows, as slot names
# (``subscribers.column_name``: lowercase, runs of other characters as "_"), best first.
ADDRESS_HEADERS = (
    "email",
    "email_address",
    "e_mail",
    "e_mail_address",
    "emailaddress",
    "user_email",
    "subscriber_email",
    "mail",
)
NAME_HEADERS = ("name", "full_name", "fullname", "display_name", "subscriber_name")
FIRST_NAME_HEADERS = ("first_name", "firstname", "fname", "given_name")
LAST_NAME_HEADERS = ("last_name", "lastname", "lname", "surname", "family_name")
# A column whose value says where the reader stands (Buttondown, listmonk, many blog exports).
STATUS_HEADERS = ("status", "subscription_status", "subscriber_status", "member_status", "subscriber_type")
# Statuses that mean "do not mail", as slot names ("Hard bounce" -> hard_bounce), and the word the
# confirmation screen counts them under.
GONE = {
    "unsubscribed": "unsubscribed",
    "unsubscribe": "unsubscribed",
    "opted_out": "unsubscribed",
    "opt_out": "unsubscribed",
    "optout": "unsubscribed",
    "removed": "unsubscribed",
    "deleted": "unsubscribed",
    "cleaned": "cleaned",
    "bounced": "bounced",
    "bounce": "bounced",
    "hard_bounce": "bounced",
    "hard_bounced": "bounced",
    "undeliverable": "bounced",
    "complained": "complained",
    "spam": "complained",
    "spammy": "complained",
    "spam_complaint": "complained",
    "blocklisted": "blocklisted",
    "blacklisted": "blocklisted",
    "banned": "blocklisted",
}
# A column that, filled in, says when the reader left (Mailchimp's own export files).
LEFT_WHEN = {
    "unsub_time": "unsubscribed",
    "unsubscribed_at": "unsubscribed",
    "unsubscribe_date": "unsubscribed",
    "unsubscription_date": "unsubscribed",
    "clean_time": "cleaned",
    "cleaned_at": "cleaned",
    "bounced_at": "bounced",
}
# Yes/no columns: one that says the reader gets email (Ghost), one that says they do not (Substack).
SUBSCRIBED_FLAGS = ("subscribed", "subscribed_to_emails", "email_subscribed", "newsletter")
DISABLED_FLAGS = ("email_disabled", "unsubscribed", "emails_disabled", "do_not_email")
_NO = frozenset({"false", "no", "n", "0", "off", "non", "nein", "nee", "nej"})
_YES = frozenset({"true", "yes", "y", "1", "on", "oui", "ja", "si", "sí"})
# The parts [delivery] columns can name.
ROLES = ("email", "name", "first_name", "last_name", "status", "subscribed")
_NOT_SLOT_CHAR = re.compile(r"[^a-z0-9]+")


def slot(value: str) -> str:
    """A header or a status as a slot name: `Hard Bounce` -> hard_bounce."""
    return _NOT_SLOT_CHAR.sub("_", value.strip().lower()).strip("_")


@dataclass(frozen=True)
class Mark:
    """A column that can mark a reader as gone, and how to read it."""

    column: int
    kind: str  # "status" (a word), "when" (filled in: gone), "subscribed" (no: gone), "disabled" (yes: gone)
    gone: str = ""  # for "when", "subscribed", "disabled": what a reader so marked is counted as

    def why(self, value: str) -> str:
        """What the export says of the reader ("" when nothing: mail them)."""
        if self.kind == "status":
            return GONE.get(slot(value), "")
        value = value.strip().lower()
        if self.kind == "when":
            return self.gone if value else ""
        if self.kind == "subscribed":
            return self.gone if value in _NO else ""
        return self.gone if value in _YES else ""


@dataclass(frozen=True)
class Columns:
    """Which column is which, in a list's header row."""

    email: int
    name: tuple[int, ...]  # one column, or first name and last name; () for none
    marks: tuple[Mark, ...]  # columns that can mark a reader as gone


def find_columns(header: Sequence[str], mapping: Mapping[str, str], where: str) -> Columns:
    """The columns of a header row (its cells as written), by ``mapping`` (``[delivery] columns``:
    part -> header as written) first, then by the usual headers, each compared as a ``slot`` (so
    `E-mail:` and `Email  Address` are found too). Raises InputError when there is no address
    column, or a mapped one is missing."""
    names = [slot(cell) for cell in header]
    mapped: dict[str, int] = {}
    for role, wanted in mapping.items():
        found = [
            i for i, name in enumerate(names) if name == slot(wanted) or header[i].strip() == wanted.strip()
        ]
        if not found:
            cells = ", ".join(repr(cell.strip()) for cell in header)
            raise InputError(
                f"no column {wanted!r} in the header row (found {cells})",
                where=where,
                hint=f"digest.toml names it in [delivery] columns as the {role.replace('_', ' ')}: use a"
                " header the list has",
            )
        mapped[role] = found[0]
    email = mapped.get("email", _first(names, ADDRESS_HEADERS))
    if email is None:
        cells = ", ".join(repr(cell.strip()) for cell in header)
        raise InputError(
            f"no 'email' column in the header row (found {cells})",
            where=where,
            hint="the first row must name the columns, one of them 'email' (or 'Email Address',"
            " 'E-mail' ...); or say which it is in digest.toml:"
            ' [delivery] columns = { email = "Courriel" }',
        )
    return Columns(email, _name_columns(names, mapped), _marks(names, mapped))


def _name_columns(names: Sequence[str], mapped: Mapping[str, int]) -> tuple[int, ...]:
    """The column with the whole name, else first and last name (as mapped, then as found)."""
    if "name" in mapped:
        return (mapped["name"],)
    if "first_name" not in mapped and "last_name" not in mapped:
        whole = _first(names, NAME_HEADERS)
        if whole is not None:
            return (whole,)
    first = mapped.get("first_name", _first(names, FIRST_NAME_HEADERS))
    last = mapped.get("last_name", _first(names, LAST_NAME_HEADERS))
    return tuple(i for i in (first, last) if i is not None)


def _marks(names: Sequence[str], mapped: Mapping[str, int]) -> tuple[Mark, ...]:
    if "status" in mapped or "subscribed" in mapped:  # the editor said: only those
        found = [Mark(mapped["status"], "status")] if "status" in mapped else []
        if "subscribed" in mapped:
            found.append(Mark(mapped["subscribed"], "subscribed", "unsubscribed"))
        return tuple(found)
    found = []
    for i, name in enumerate(names):
        if name in STATUS_HEADERS:
            found.append(Mark(i, "status"))
        elif name in LEFT_WHEN:
            found.append(Mark(i, "when", LEFT_WHEN[name]))
        elif name in SUBSCRIBED_FLAGS:
            found.append(Mark(i, "subscribed", "unsubscribed"))
        elif name in DISABLED_FLAGS:
            found.append(Mark(i, "disabled", "unsubscribed"))
    return tuple(found)


def _first(names: Sequence[str], candidates: Sequence[str]) -> int | None:
    for candidate in candidates:
        if candidate in names:
            return names.index(candidate)
    return None


def gone(marks: Sequence[Mark], row: Sequence[str]) -> str:
    """Why the export says the reader of ``row`` is gone ("" when it does not)."""
    for mark in marks:
        if mark.column < len(row):
            why = mark.why(row[mark.column])
            if why:
                return why
    return ""
