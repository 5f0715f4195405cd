"""Acting on what came back: for each message of the bounce mailbox, which reader and issue it is
about (if it is about mail digest sent at all), and what that changes: a reader suppressed, a soft
bounce counted, a report left for the editor; then the summary of a run.

A report counts as one of ours only when something digest put in its message confirms it: the
VERP token of the envelope sender, digest's own Message-ID (``<issue.HMAC@domain>``, which only
the workspace secret makes), or the list's List-Id in the quoted original (providers such as
Amazon SES replace the Message-ID; the issue is then the one whose subject or date the quoted
original has). A report about any other mail, the editor's own included, is counted as "not
ours" and left where it is. A block (a refusal about the sending) and a delay are recorded and
listed, and never count against the reader.

An unsubscribe by mail counts only for an address on the list, or when its token
(``X-Digest-Unsubscribe`` from ``digest serve``, or the one the ``List-Unsubscribe`` mailto puts
in the subject) opens with the workspace secret. A mail sent to the unsubscribe address is its
sender's request. Words alone (a subject, or the sender's own text, that asks) are acted on only
when the mail is about the newsletter: a reply to one of digest's messages (its In-Reply-To or
References), or a subject "Re: <an issue's subject>"; any other, and one whose words name
another address, person or list, is a possible unsubscribe, listed and left for the editor.

Each batch is settled in an order that a crash cannot turn into a lost or doubled action: the
suppressions first (adding one twice changes nothing), then the reports remembered by Message-ID
with what they said of each reader, then the mailbox (moved or flagged). A report remembered is
never acted on again; one whose move did not happen is moved at the next run.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parseaddr, parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from digestcli.bounces.classify import Report, answered_subject, classify, read_message
from digestcli.bounces.mailbox import Incoming, Mailbox
from digestcli.config import (
    Workspace,
    check_list_id,
    check_unsubscribe_mailto,
    derived_list_id,
    split_address,
)
from digestcli.message.ids import id_part, id_signature
from digestcli.message.tokens import verify_token
from digestcli.message.verp import VerpIndex
from digestcli.state import DELIVERED, LEDGER_DB, SENDING, UNKNOWN, address_key
from digestcli.state.feedback import (
    BLOCKED,
    COMPLAINT,
    DELAYED,
    HARD,
    SOFT,
    UNSUBSCRIBE,
    Feedback,
    FeedbackStore,
    report_key,
)
from digestcli.state.secret import read_secret
from digestcli.state.suppressions import SuppressionList

if TYPE_CHECKING:
    from digestcli.subscribers import SubscriberList

# What a reader's message came back as -> the suppression reason it leads to.
REASONS = {HARD: "bounced", COMPLAINT: "complained", UNSUBSCRIBE: "unsubscribed"}
MAILED = (DELIVERED, UNKNOWN, SENDING)  # a message went out (failed: refused at the send)
# What became of a report, as remembered: acted on (moved away), or left where it was.
ACTED, LEFT = "acted", "left"
_OUR_MESSAGE_ID = re.compile(r"<([^<>@\s]+)\.([0-9a-f]{24})@([^<>@\s]+)>")
# A message's Date is written after its issue's run began, by the same clock, in whole seconds.
_DATE_SLACK = 1.0
_SLOT = re.compile(r"\{\{\s*reader\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}")  # as in a draft's subject


@dataclass(frozen=True)
class ReaderOutcome:
    """What a report changed for one reader."""

    address: str
    issue_id: str
    kind: str  # hard, soft, delayed, blocked, complaint, unsubscribe
    action: str  # what was done (or would be, in a dry run), in words
    suppressed: str = ""  # the reason the reader was suppressed with by this report, if it was
    status: str = ""
    diagnostic: str = ""
    note: str = ""  # how the issue was found, when the report does not name it for sure


@dataclass(frozen=True)
class LeftReport:
    """A report left in the mailbox for the editor: unrecognised, or not about digest's mail."""

    subject: str
    sender: str
    date: str
    why: str
    kind: str = ""


@dataclass
class BounceRun:
    """What ``digest bounces`` read and did."""

    source: str
    dry_run: bool = False
    read: int = 0  # messages looked at
    hard: int = 0
    soft: int = 0
    delayed: int = 0  # delay warnings: recorded, not counted toward the soft-bounce limit
    blocked: int = 0  # refusals about the sending: recorded, never suppress anyone
    complaints: int = 0
    unsubscribes: int = 0
    possible_unsubscribes: int = 0  # asked, but not surely this reader and this list: left
    ignored: int = 0  # auto-replies about our mail, and unsubscribe mails whose token is forged
    unrecognised: int = 0
    not_ours: int = 0
    not_reports: int = 0  # the editor's own mail: left exactly as it was
    already: int = 0  # reports acted on by an earlier run
    handled: int = 0  # reports moved or flagged in the mailbox
    readers: list[ReaderOutcome] = field(default_factory=list)
    unrecognised_reports: list[LeftReport] = field(default_factory=list)
    possible_reports: list[LeftReport] = field(default_factory=list)
    not_ours_reports: list[LeftReport] = field(default_factory=list)
    ignored_reports: list[LeftReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def suppressed(self) -> list[ReaderOutcome]:
        return [outcome for outcome in self.readers if outcome.suppressed]

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "hard": self.hard,
            "soft": self.soft,
            "delayed": self.delayed,
            "blocked": self.blocked,
            "complaints": self.complaints,
            "unsubscribes": self.unsubscribes,
            "possible_unsubscribes": self.possible_unsubscribes,
            "ignored": self.ignored,
            "unrecognised": self.unrecognised,
            "not_ours": self.not_ours,
            "not_reports": self.not_reports,
            "already_handled": self.already,
            "suppressed": len(self.suppressed),
        }


# -- whose mail it was ------------------------------------------------------------------------------


class Readers:
    """What the ledger knows, asked the way reports need it: issues in the order they were sent,
    whether a reader was mailed an issue, and digest's Message-IDs traced back to their reader."""

    def __init__(self, ws: Workspace, secret: bytes | None):
        from digestcli.state.ledger import Ledger

        self.secret = secret
        self._ledger: Ledger | None = None
        self.first_sent: dict[str, float] = {}  # issue -> when it was first sent (0: unknown)
        self._subjects: list[tuple[str, re.Pattern[str]]] = []  # issue -> its subject, as a pattern
        if (ws.state / LEDGER_DB).exists():
            self._ledger = Ledger(ws.state, read_only=True)
            registered = self._ledger.sent_issues()
            # Issues from before the register first, then the registered ones as they were sent.
            self.first_sent = {issue: 0.0 for issue in self._ledger.issues() if issue not in registered}
            for issue in sorted(registered, key=lambda issue: registered[issue].first_sent):
                self.first_sent[issue] = registered[issue].first_sent
                if registered[issue].subject.strip():
                    self._subjects.append((issue, _subject_pattern(registered[issue].subject)))
        issues = list(self.first_sent)
        self.issues = issues  # oldest first
        self._by_id_part: dict[str, list[str]] = {}
        for issue in issues:
            self._by_id_part.setdefault(id_part(issue), []).append(issue)
        self.verp = VerpIndex(secret, issues, self.states_of) if secret is not None and issues else None
        self._message_ids: dict[str, dict[str, str]] = {}  # issue -> HMAC hex -> address
        self._states: dict[tuple[str, str], str | None] = {}

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()

    def states_of(self, issue_id: str) -> Iterable[str]:
        return self._ledger.states(issue_id) if self._ledger is not None else {}

    def state(self, issue_id: str, address: str) -> str | None:
        key = (issue_id, address)
        if key not in self._states:
            entry = self._ledger.entry(issue_id, address) if self._ledger is not None else None
            self._states[key] = entry.state if entry is not None else None
            if len(self._states) > 100_000:  # a cache, not a copy of the ledger
                self._states.clear()
                self._states[key] = entry.state if entry is not None else None
        return self._states[key]

    def latest_mailed(self, address: str) -> str | None:
        """The newest issue the reader was mailed, or None."""
        for issue in reversed(self.issues):
            if self.state(issue, address) in MAILED:
                return issue
        return None

    def with_subject(self, subject: str) -> list[str]:
        """The issues (oldest first) whose subject ``subject`` is, a reader's name and all."""
        text = " ".join(subject.split())
        return [issue for issue, pattern in self._subjects if pattern.fullmatch(text)]

    def issue_of(self, address: str, report: Report) -> tuple[str | None, str]:
        """The issue a report names only by its quoted original's Subject or Date (its Message-ID
        replaced, no VERP token), among those the reader was mailed; and how it was found, in
        words, when that is less than sure. None when the reader was mailed none."""
        # Few ledger look-ups: a report's reader is looked up in the issues it could be about.
        subjects = {issue for subject in report.original_subjects for issue in self.with_subject(subject)}
        named = [issue for issue in self.issues if issue in subjects and self.state(issue, address) in MAILED]
        if len(named) == 1:
            return named[0], ""
        when = _timestamp(report.original_dates)
        if when is not None:
            # The newest issue mailed to the reader whose run had begun when the message was written.
            for issue in reversed(named or self.issues):
                began = 0 < self.first_sent.get(issue, 0.0) <= when + _DATE_SLACK
                if began and (named or self.state(issue, address) in MAILED):
                    return issue, ""
        if named:
            return named[-1], "the newest issue with the quoted subject (several have it)"
        latest = self.latest_mailed(address)
        if latest is None:
            return None, ""
        return latest, "the report names no issue: taken as the newest mailed to the reader"

    def on_list(self, address: str) -> bool:
        return any(self.state(issue, address) is not None for issue in reversed(self.issues))

    def by_message_id(
        self, message_id: str, sender_domain: str, candidates: list[str]
    ) -> list[tuple[str, str]]:
        """(issue, reader) for one of digest's own Message-IDs, or [] when it is not one."""
        match = _OUR_MESSAGE_ID.fullmatch(message_id.strip())
        if match is None or self.secret is None or match.group(3).lower() != sender_domain:
            return []
        part, signature = match.group(1), match.group(2)
        for issue in self._by_id_part.get(part, ()):
            for address in candidates:
                if hmac.compare_digest(id_signature(self.secret, issue, address), signature):
                    return [(issue, address)]
            # No recipient named (or another one): trace the signature through the issue's readers.
            if issue not in self._message_ids:
                secret = self.secret
                self._message_ids[issue] = {
                    id_signature(secret, issue, address): address for address in self.states_of(issue)
                }
            found = self._message_ids[issue].get(signature)
            if found is not None:
                return [(issue, found)]
        return []


def _subject_pattern(subject: str) -> re.Pattern[str]:
    """An issue's subject as a pattern for the subject of one reader's message: its reader slots
    (``{{ reader.name }}``) match any words; spaces and case as a mail client may change them."""
    parts = _SLOT.split(" ".join(subject.split()))
    return re.compile(".+?".join(re.escape(part) for part in parts), re.IGNORECASE)


def _timestamp(dates: Iterable[str]) -> float | None:
    """The first readable Date of ``dates`` as seconds since the epoch, or None."""
    for value in dates:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            continue
        # "-0000" (RFC 5322: UTC, the sender's zone unknown) parses without a zone.
        return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp()
    return None


def _address(text: str) -> str:
    """A report's way of writing an address (``rfc822;<Ann@X.org>``) as the ledger's key."""
    text = text.strip()
    if ";" in text:
        text = text.split(";", 1)[1]
    return text.strip().strip("<>").strip().lower()


# -- acting -------------------------------------------------------------------------------------------


@dataclass
class _Settled:
    """One batch's changes, written together."""

    suppress: list[tuple[str, str, str]] = field(default_factory=list)  # address, reason, note
    feedback: list[Feedback] = field(default_factory=list)
    reports: list[tuple[str, str, str]] = field(default_factory=list)  # key, kind, outcome
    handled: list[Any] = field(default_factory=list)  # mailbox refs to move or flag

    def acted(self, key: str, kind: str, ref: Any) -> None:
        """A report acted on: remembered, and moved out of the way (or flagged) in the mailbox."""
        self.reports.append((key, kind, ACTED))
        self.handled.append(ref)


class Bounces:
    """One run of ``digest bounces`` over a workspace."""

    def __init__(self, ws: Workspace, *, dry_run: bool = False, subscribers: Container[str] = ()):
        """``subscribers``: the reader list's addresses, asked only of an unsubscribe whose sender
        the ledger has never mailed (``ListedReaders``)."""
        self.ws = ws
        self.dry_run = dry_run
        news = ws.config.newsletter
        _, sender = split_address(news.sender, "newsletter.from")
        self.sender_domain = sender.rpartition("@")[2].lower()
        self.list_id = (check_list_id(news.list_id) or derived_list_id(sender)).lower()
        self.unsubscribe_address = check_unsubscribe_mailto(news.unsubscribe_mailto)
        self.title = news.title
        self.soft_limit = ws.config.bounces.soft_bounce_limit
        self.secret = read_secret(ws.state)
        self.readers = Readers(ws, self.secret)
        self.store = FeedbackStore(ws.state, read_only=dry_run)
        self.suppressions = SuppressionList(ws.state)
        self.suppressed = self.suppressions.reasons()  # address -> reason, kept current in the run
        self.undone = self.suppressions.undone()  # address -> when it was last put back
        self._subscribers = subscribers
        self._keys: dict[str, str] = {}  # reports met in this run -> ACTED, LEFT or "" (listed)
        self._soft: dict[str, set[str]] = {}  # address -> issues soft-bounced, known to this run
        self._bounced_issues: dict[str, set[str]] = {}  # address -> issues with a bounce on record

    def close(self) -> None:
        self.readers.close()
        self.store.close()

    def __enter__(self) -> Bounces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, mailbox: Mailbox, progress: Callable[[int, int], None] | None = None) -> BounceRun:
        started = time.monotonic()
        run = BounceRun(mailbox.name, dry_run=self.dry_run)
        total = mailbox.count()
        for batch in mailbox.read(self._known):
            settled = _Settled()
            for incoming in batch:
                self._one(incoming, run, settled)
            self._settle(settled, mailbox, run)
            if progress is not None:
                progress(run.read, total)
        run.seconds = time.monotonic() - started
        return run

    def _known(self, message_id: str) -> bool:
        return message_id in self._keys or self.store.seen(message_id) is not None

    def _settle(self, settled: _Settled, mailbox: Mailbox, run: BounceRun) -> None:
        if self.dry_run:
            return
        if settled.suppress:
            self.suppressions.add_many(settled.suppress)
        if settled.reports or settled.feedback:
            self.store.record(settled.reports, settled.feedback)
        if settled.handled and mailbox.changes_mailbox:
            mailbox.handled(settled.handled)
            run.handled += len(settled.handled)

    # -- one message ------------------------------------------------------------------------------

    def _one(self, incoming: Incoming, run: BounceRun, settled: _Settled) -> None:
        run.read += 1
        key = report_key(incoming.message_id, incoming.raw or b"")
        if key in self._keys:
            run.already += 1  # the same report twice in the mailbox: the first one counts
            if self._keys[key] == ACTED:
                settled.handled.append(incoming.ref)  # and the copy goes where it went
            return
        self._keys[key] = ""
        seen = self.store.seen(key)
        if seen is not None:
            if seen.outcome != LEFT:
                run.already += 1
                settled.handled.append(incoming.ref)  # a move an earlier run did not get to
            elif seen.kind == "other":
                run.not_reports += 1
            else:
                run.already += 1
            return
        if incoming.raw is None:  # not fetched, yet not known: it vanished from the record since
            return
        message = read_message(incoming.raw)  # never raises: one odd mail must not stop every run
        report = classify(message, unsubscribe_address=self.unsubscribe_address, newsletter=self.title)
        kind = report.kind
        if kind == "other":
            run.not_reports += 1
            settled.reports.append((key, kind, LEFT))  # never fetched whole again
        elif kind == "unrecognised":
            run.unrecognised += 1  # left, and listed again at every run until the editor acts
            run.unrecognised_reports.append(
                _left(report, message, report.reason or "not a form digest knows")
            )
        elif kind == "autoreply":
            self._autoreply(report, message, key, incoming, run, settled)
        elif kind in ("unsubscribe", "possible-unsubscribe"):
            self._unsubscribe(report, message, key, incoming, run, settled)
        else:
            self._bounce_or_complaint(report, message, key, incoming, run, settled)
        if settled.reports and settled.reports[-1][0] == key:
            self._keys[key] = settled.reports[-1][2]  # for a copy of it later in the mailbox

    def _not_ours(
        self, report: Report, message: Message, why: str, key: str, run: BounceRun, settled: _Settled
    ) -> None:
        run.not_ours += 1
        run.not_ours_reports.append(_left(report, message, why))
        settled.reports.append((key, report.kind, LEFT))

    def _targets(self, report: Report) -> tuple[list[_Target], str]:
        """(issue, reader, note) for each reader the report is about, and why it is not ours
        when there are none."""
        found: list[_Target] = []
        verp = self.readers.verp
        for token in report.verp_tokens:
            hit = verp.lookup(token) if verp is not None else None
            if hit is not None and _Target(*hit) not in found:
                found.append(_Target(*hit))
        if found:
            return found, ""
        named = [_address(r) for r in report.recipients]
        named += [_address(f.original_address) for f in report.failures if f.original_address]
        named = [address for address in dict.fromkeys(named) if "@" in address]
        for message_id in report.original_message_ids:
            for issue, address in self.readers.by_message_id(message_id, self.sender_domain, named):
                if _Target(issue, address) not in found:
                    found.append(_Target(issue, address))
        if found:
            return found, ""
        if self.list_id in (list_id.strip("<> ").lower() for list_id in report.original_list_ids):
            for address in named:
                named_issue, note = self.readers.issue_of(address, report)
                if named_issue is not None:
                    found.append(_Target(named_issue, address, note))
            if found:
                return found, ""
            return (
                [],
                "its List-Id is this list's, but it names no reader digest mailed"
                f" ({', '.join(named) or 'none'})",
            )
        if report.verp_tokens:
            return [], "its VERP token is not one this workspace made for a reader in the ledger"
        return [], "about mail digest did not send (no VERP token, Message-ID or List-Id of this list)"

    def _bounce_or_complaint(
        self,
        report: Report,
        message: Message,
        key: str,
        incoming: Incoming,
        run: BounceRun,
        settled: _Settled,
    ) -> None:
        targets, why = self._targets(report)
        if not targets:
            self._not_ours(report, message, why, key, run, settled)
            return
        failures = {_address(f.address): f for f in report.failures}
        for target in targets:
            failure = failures.get(target.address)
            if report.kind == COMPLAINT:
                kind = COMPLAINT
            elif failure is not None:
                kind = DELAYED if failure.delayed else failure.kind
            else:
                kind = DELAYED if report.delayed else report.kind
            status = failure.status if failure is not None else report.status
            diagnostic = failure.diagnostic if failure is not None else report.diagnostic
            self._reader(kind, target, status, diagnostic, key, run, settled)
        settled.acted(key, report.kind, incoming.ref)

    def _reader(
        self,
        kind: str,
        target: _Target,
        status: str,
        diagnostic: str,
        key: str,
        run: BounceRun,
        settled: _Settled,
    ) -> None:
        """Record what came back for one reader and act: count it, suppress them."""
        issue, address = target.issue, target.address
        setattr(run, _COUNTERS[kind], getattr(run, _COUNTERS[kind]) + 1)
        settled.feedback.append(Feedback(issue, address, kind, status, diagnostic, time.time(), key))
        if kind in _NOT_DELIVERED:
            if address not in self._bounced_issues:
                self._bounced_issues[address] = self._recorded_bounces(address)
            self._bounced_issues[address].add(issue)
        reason, note = REASONS.get(kind, ""), ""
        if kind == SOFT:
            self._soft.setdefault(address, set()).add(issue)
            streak = self._soft_streak(address, issue)
            if len(streak) >= self.soft_limit:
                reason = "bounced"
                note = f"{len(streak)} soft bounces in a row: {', '.join(streak)}"
                action = f"soft bounce {len(streak)} of {self.soft_limit}: "
            else:
                action = f"soft bounce {len(streak)} of {self.soft_limit}, counted"
        elif kind == DELAYED:
            action = "delayed: recorded, not counted (the server is still trying)"
        elif kind == BLOCKED:
            action = "blocked: about the sending, not the reader; never suppressed"
        else:
            action = ""
            note = f"{kind} report for {issue}" + (
                f": {status} {diagnostic}".rstrip() if status or diagnostic else ""
            )
        suppressed = ""
        if reason:
            earlier = self.suppressed.get(address)
            if earlier is not None:
                action += f"already suppressed ({earlier})"
            else:
                self.suppressed[address] = reason
                settled.suppress.append((address, reason, note[:300]))
                suppressed = reason
                action += f"{'would be suppressed' if self.dry_run else 'suppressed'}: {reason}"
        run.readers.append(
            ReaderOutcome(address, issue, kind, action, suppressed, status, diagnostic, target.note)
        )

    def _recorded_bounces(self, address: str) -> set[str]:
        return {f.issue_id for f in self.store.of_reader(address) if f.kind in _NOT_DELIVERED}

    def _soft_streak(self, address: str, issue: str) -> list[str]:
        """The issues in a row, around ``issue``, on which the reader soft-bounced: walking the
        issues they were mailed, oldest first, a delivery that did not bounce ends the row. An
        issue they were not mailed (suppressed, not yet on the list) neither counts nor ends it;
        issues before the reader was last put back (``digest unsubscribe --undo``) do not count."""
        recorded = {f.issue_id for f in self.store.of_reader(address) if f.kind == SOFT}
        soft = recorded | self._soft.get(address, set())
        bounced = self._bounced_issues.get(address, set()) | soft
        undone = self.undone.get(address)
        issues = self.readers.issues
        if issue not in issues:
            return [issue]
        at = issues.index(issue)
        streak = [issue]

        def walk(order: Iterable[str]) -> Iterable[str]:
            for other in order:
                if undone is not None and self.readers.first_sent.get(other, 0.0) < undone:
                    return
                state = self.readers.state(other, address)
                if other in soft:
                    yield other
                elif state in MAILED and other not in bounced:
                    return  # delivered, and nothing came back: the mailbox works
                # not mailed, refused at the send, or hard-bounced: neither counts nor ends it

        streak[:0] = reversed(list(walk(reversed(issues[:at]))))
        streak += list(walk(issues[at + 1 :]))
        return streak

    def _autoreply(
        self,
        report: Report,
        message: Message,
        key: str,
        incoming: Incoming,
        run: BounceRun,
        settled: _Settled,
    ) -> None:
        targets, why = self._targets(report)
        if not targets:  # an out-of-office answering the editor's own mail: theirs to read
            self._not_ours(report, message, why, key, run, settled)
            return
        run.ignored += 1
        run.ignored_reports.append(_left(report, message, "an auto-reply: never a bounce"))
        settled.acted(key, report.kind, incoming.ref)

    def _unsubscribe(
        self,
        report: Report,
        message: Message,
        key: str,
        incoming: Incoming,
        run: BounceRun,
        settled: _Settled,
    ) -> None:
        token = report.unsubscribe_token.strip()
        address = verify_token(token, self.secret) if token and self.secret is not None else None
        if report.asked == "serve" and address is None:
            # Claims to come from `digest serve`, with a token this workspace never made.
            run.ignored += 1
            run.ignored_reports.append(
                _left(report, message, "its X-Digest-Unsubscribe token does not verify: forged or altered")
            )
            settled.acted(key, report.kind, incoming.ref)
            return
        issue = ""
        if address is None or report.kind != "unsubscribe":
            named = [_address(r) for r in report.recipients if "@" in r]
            address = next((a for a in named if self._on_list(a)), None)
            if address is None:
                why = f"from {', '.join(named) or 'no address'}, which is not on the list"
                self._not_ours(report, message, why, key, run, settled)
                return
            if report.kind != "unsubscribe":  # classify found it names someone or something else
                self._possible(report, message, address, report.reason, key, run, settled)
                return
            if report.asked != "address":  # words alone: only about this newsletter
                issue, why = self._about_newsletter(report, address)
                if why:
                    self._possible(report, message, address, why, key, run, settled)
                    return
        address = _key(_address(address))  # suppressed under the key a send looks for
        # The issue answered, else the newest the reader was mailed: where their record shows it.
        issue = issue or self.readers.latest_mailed(address) or ""
        self._reader(UNSUBSCRIBE, _Target(issue, address), "", "", key, run, settled)
        settled.acted(key, report.kind, incoming.ref)

    def _about_newsletter(self, report: Report, address: str) -> tuple[str, str]:
        """Whether a mail whose words ask to unsubscribe is about this newsletter: (the issue it
        answers, "") when it is, ("", why not) when nothing says so."""
        for message_id in report.reply_ids:
            for issue, reader in self.readers.by_message_id(message_id, self.sender_domain, [address]):
                if reader != address:
                    return "", f"it answers the copy of {issue} sent to another reader ({reader})"
                return issue, ""
        answered = answered_subject(report.subject)
        if answered:
            issues = [
                i for i in self.readers.with_subject(answered) if self.readers.state(i, address) in MAILED
            ]
            if issues:
                return issues[-1], ""
        return "", (
            "words alone ask, and nothing says it is about the newsletter (not sent to the unsubscribe"
            " address, not a reply to an issue)"
        )

    def _possible(
        self,
        report: Report,
        message: Message,
        address: str,
        why: str,
        key: str,
        run: BounceRun,
        settled: _Settled,
    ) -> None:
        """A mail that may be an unsubscribe: listed for the editor and left in the mailbox as it
        is, at every run, until the reader is on the suppression list."""
        run.possible_unsubscribes += 1
        earlier = self.suppressed.get(_key(_address(address)))
        if earlier is not None:
            why = f"{why} (already suppressed: {earlier})"
            settled.reports.append((key, report.kind, LEFT))  # nothing left to decide
        else:
            why = f"{why}; if it is one: digest unsubscribe {_address(address)}"
        run.possible_reports.append(_left(report, message, why))

    def _on_list(self, address: str) -> bool:
        return self.readers.on_list(address) or address in self.suppressed or address in self._subscribers


class _Target(NamedTuple):
    """A reader a report is about, the issue it was about, and how that issue was found when
    the report does not say for sure."""

    issue: str
    address: str
    note: str = ""


_COUNTERS = {
    HARD: "hard",
    SOFT: "soft",
    DELAYED: "delayed",
    BLOCKED: "blocked",
    COMPLAINT: "complaints",
    UNSUBSCRIBE: "unsubscribes",
}
# A reader's message that came back this way did not reach them: it does not count as delivered
# when soft bounces are counted in a row.
_NOT_DELIVERED = (HARD, SOFT, BLOCKED)


def _left(report: Report, message: Message, why: str) -> LeftReport:
    sender = parseaddr(str(message.get("From", "")))[1] if message.get("From") else ""
    return LeftReport(report.subject, sender, str(message.get("Date", "") or ""), why, report.kind)


class ListedReaders(Container[str]):
    """Whether an address is on the workspace's reader list (``address in listed``).

    The list is read when first asked (an unsubscribe from an address the ledger has never
    mailed), the way ``digest send`` reads it (``delivery.plan.read_list``: the same settings, the
    same errors), and each address is looked up by its key in the list's scratch file: none of a
    long list is held in memory. A reader the list's own export marks as gone (unsubscribed,
    cleaned) counts as on it: the list names them, and asking to leave is theirs to do. A list
    that does not exist is an empty one: bounces can be read before there is a list.
    """

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._list: SubscriberList | None = None
        self._read = False
        self._gone_too = False  # whether the list has readers its export marks as gone

    def __contains__(self, address: object) -> bool:
        """Whether ``address`` is on the list, as written or as the list normalizes it (a Unicode
        domain is there in its ASCII form)."""
        if not isinstance(address, str) or "@" not in address:
            return False
        listed = self._open()
        if listed is None:
            return False
        db = listed.database
        for key in _keys_of(address):
            if db.execute("SELECT 1 FROM reader WHERE key = ?", (key,)).fetchone() is not None:
                return True
            if self._gone_too and db.execute("SELECT 1 FROM gone WHERE key = ?", (key,)).fetchone():
                return True
        return False

    def close(self) -> None:
        if self._list is not None:
            self._list.close()
            self._list = None

    def __enter__(self) -> ListedReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> SubscriberList | None:
        if not self._read:
            from digestcli.delivery.plan import read_list

            self._read = True
            if self.ws.path(self.ws.config.delivery.subscribers).exists():
                self._list = read_list(self.ws)
                if any(self._list.gone.values()):
                    # The rows an export marks as gone are not indexed by key as readers are:
                    # looked up for every unsubscribe, they are indexed once here.
                    index = self._list.table_name("gone_by_key")
                    self._list.database.execute(f"CREATE INDEX {index} ON gone (key)")
                    self._gone_too = True
        return self._list


def _key(address: str) -> str:
    """The key a reader is under in the list, the ledger and the suppression list: the address
    as the list normalizes it (a domain in Unicode in its ASCII form); as written when it does not
    normalize."""
    return _keys_of(address)[-1]


def _keys_of(address: str) -> list[str]:
    """The list keys ``address`` may be under: as written, and as the list normalizes addresses
    (a domain in Unicode is kept in its ASCII form there)."""
    from digestcli.subscribers import normalize_address

    keys = [address_key(address)]
    try:
        normalized = address_key(normalize_address(address))
    except ValueError:
        return keys
    return keys if normalized in keys else [*keys, normalized]


def read_bounces(
    ws: Workspace,
    mailbox: Mailbox,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BounceRun:
    """``digest bounces``: read every message of ``mailbox`` and act on the reports about
    digest's mail (nothing is changed anywhere with ``dry_run``)."""
    with ListedReaders(ws) as listed, Bounces(ws, dry_run=dry_run, subscribers=listed) as bounces:
        return bounces.run(mailbox, progress)


# -- what a run says ----------------------------------------------------------------------------------

SHOWN = 50  # readers and reports listed on screen, per kind


def summary_lines(run: BounceRun) -> list[str]:
    """The end of a run, for people: the counts, each reader affected, what was left and why."""
    lines = [
        f"Read       {run.read:,} messages from {run.source}"
        + (f" in {run.seconds:.1f} s" if run.seconds >= 0.1 else ""),
    ]
    counts = (
        f"{run.hard:,} hard, {run.soft:,} soft, {run.delayed:,} delayed, {run.blocked:,} blocked,"
        f" {run.complaints:,} complaints, {run.unsubscribes:,} unsubscribes,"
        f" {run.possible_unsubscribes:,} possible unsubscribes, {run.ignored:,} ignored,"
        f" {run.unrecognised:,} unrecognised, {run.not_ours:,} not ours"
    )
    lines.append(f"Reports    {counts}")
    if run.blocked:
        lines.append(
            f"Blocked    {run.blocked:,} refused for a reason about the sending, not the reader"
            " (authentication, DMARC, a blocklisted IP, the content): fix SPF, DKIM and DMARC or the"
            " sending IP's reputation; nobody is suppressed for it"
        )
    others = []
    if run.not_reports:
        others.append(f"{run.not_reports:,} not reports (left as they were)")
    if run.already:
        others.append(f"{run.already:,} handled by an earlier run")
    if others:
        lines.append(f"Also       {'; '.join(others)}")
    would = "would be " if run.dry_run else ""
    if run.readers:
        suppressed = len(run.suppressed)
        lines.append(f"Readers    {len(run.readers):,} affected; {suppressed:,} {would}suppressed")
        for outcome in run.readers[:SHOWN]:
            said = " ".join(part for part in (outcome.status, outcome.diagnostic) if part)
            issue = outcome.issue_id or "(no issue)"
            lines.append(
                f"  {outcome.kind:11} {outcome.address}  {issue}  {outcome.action}"
                + (f" ({outcome.note})" if outcome.note else "")
                + (f"  [{said[:120]}]" if said else "")
            )
        if len(run.readers) > SHOWN:
            lines.append(f"  … and {len(run.readers) - SHOWN:,} more (--format json lists them all)")
    for title, reports in (
        (
            "Unrecognised (left in the mailbox: read them; `digest unsubscribe ADDRESS --reason bounced`"
            " for a bounce)",
            run.unrecognised_reports,
        ),
        ("Possible unsubscribes (left in the mailbox for you to read)", run.possible_reports),
        ("Not ours (left in the mailbox)", run.not_ours_reports),
    ):
        if reports:
            lines.append(f"{title}:")
            for left in reports[:SHOWN]:
                lines.append(
                    f"  {left.subject or '(no subject)'!r} from {left.sender or 'no sender'}: {left.why}"
                )
            if len(reports) > SHOWN:
                lines.append(f"  … and {len(reports) - SHOWN:,} more")
    if run.dry_run:
        lines.append("Dry run: nothing was changed, in the mailbox or the workspace.")
    elif run.handled:
        lines.append(f"Handled    {run.handled:,} reports moved or flagged in the mailbox")
    return lines


def summary_json(run: BounceRun) -> dict[str, Any]:
    def left(report: LeftReport) -> dict[str, str]:
        return {
            "subject": report.subject,
            "from": report.sender,
            "date": report.date,
            "kind": report.kind,
            "why": report.why,
        }

    return {
        "source": run.source,
        "dry_run": run.dry_run,
        "counts": run.counts(),
        "readers": [
            {
                "address": o.address,
                "issue": o.issue_id,
                "kind": o.kind,
                "action": o.action,
                "suppressed": o.suppressed or None,
                "status": o.status,
                "diagnostic": o.diagnostic,
                "note": o.note,
            }
            for o in run.readers
        ],
        "unrecognised": [left(r) for r in run.unrecognised_reports],
        "possible_unsubscribes": [left(r) for r in run.possible_reports],
        "not_ours": [left(r) for r in run.not_ours_reports],
        "ignored": [left(r) for r in run.ignored_reports],
    }
