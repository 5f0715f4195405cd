"""Sending an issue: the modes (a real send, a dry run, a test copy), the checks made under the send
lock before anyone is mailed, and the lock itself. The worker threads are ``workers``'; who gets
the issue is ``plan``'s to decide.

Before a real send, under the lock, the past is asked (``state.history``): an id or number that
belongs to another issue refuses the send; so does a ledger that knows less than the journal (it
was lost or replaced: the readers it forgot would be mailed twice), unless ``send_duplicates``; so
does a draft changed since readers got it, unless ``allow_changed``.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterable
from email.utils import make_msgid
from pathlib import Path
from types import MappingProxyType

from digestcli.config import Config, Workspace, split_address
from digestcli.delivery.outbox import OutboxTransport
from digestcli.delivery.plan import SendPlan, facts_of, parts_of, plan_readers, plan_send, read_list
from digestcli.delivery.smtp import SmtpTransport
from digestcli.delivery.summary import SendSummary
from digestcli.delivery.transport import Transport
from digestcli.delivery.workers import (
    DEFAULT_BACKOFF,
    INTERRUPT_GRACE,
    Backoff,
    Dispatch,
    Interrupted,
    Progress,
)
from digestcli.errors import ConfigError, DeliveryError, UsageError
from digestcli.message import Masthead, Message, Personalizer
from digestcli.render import RenderedIssue
from digestcli.state import LEDGER_DB, RECOVER_HINT, address_key, send_lock
from digestcli.state.history import Assessment, assess, describe_gaps
from digestcli.state.ledger import Ledger
from digestcli.state.secret import load_secret, read_secret
from digestcli.subscribers import Subscriber, SubscriberList, normalize_address

TEST_PREFIX = "[TEST] "

__all__ = ["Backoff", "SendSummary"]


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the send; the ledger is consistent. ``summary`` says how far it got."""

    def __init__(self, summary: SendSummary):
        super().__init__()
        self.summary = summary


class SendStopped(DeliveryError):
    """The send could not go on (see the message); the ledger is exact, a new run carries on."""

    def __init__(self, error: DeliveryError, summary: SendSummary):
        super().__init__(error.message, where=error.where, hint=error.hint)
        self.summary = summary


class IssueReused(DeliveryError):
    """The issue's id or number belongs to an issue already sent."""


class LedgerBehind(DeliveryError):
    """The journal knows readers who have the issue that the ledger does not: it was lost or replaced."""


class DraftChanged(DeliveryError):
    """The issue changed since readers got it; ``parts`` names what changed."""

    def __init__(
        self, message: str, *, parts: tuple[str, ...], where: str | None = None, hint: str | None = None
    ):
        super().__init__(message, where=where, hint=hint)
        self.parts = parts


def masthead_for(config: Config) -> Masthead:
    news = config.newsletter
    return Masthead(
        sender=news.sender,
        unsubscribe_url=news.unsubscribe_url,
        title=news.title,
        reply_to=news.reply_to,
        list_id=news.list_id,
        unsubscribe_mailto=news.unsubscribe_mailto,
    )


def transport_for(workspace: Workspace) -> Transport:
    """The transport ``[delivery] transport`` names."""
    config = workspace.config
    if config.delivery.transport == "smtp":
        return SmtpTransport.from_config(config)
    return OutboxTransport(workspace.path(config.delivery.outbox))


def envelope_of(config: Config, issue_id: str, secret: bytes) -> Callable[[Subscriber], str] | None:
    """With ``[delivery] verp``, each reader's envelope sender, ``bounces+TOKEN@domain`` of the
    bounce address (``message.verp``); None when every message has the same one. The issue's part
    of the token is made once here; per reader, one HMAC."""
    if not config.delivery.verp:
        return None
    from digestcli.message.verp import senders_for

    bounce = config.delivery.bounce_address or split_address(config.newsletter.sender, "newsletter.from")[1]
    try:
        sender = senders_for(bounce, issue_id, secret)
    except ValueError as exc:  # a local part with no room for the token
        raise ConfigError(
            f"delivery.verp is on, but {exc}", hint="set a shorter delivery.bounce_address"
        ) from None
    return lambda reader: sender(reader.key)


def refusal_for(
    assessment: Assessment,
    rendered: RenderedIssue,
    ledger_path: Path,
    *,
    allow_changed: bool,
    send_duplicates: bool,
) -> DeliveryError | None:
    """The error that must stop a send of ``rendered`` now, if any (see the module's docstring)."""
    if assessment.conflicts:
        return IssueReused(
            assessment.conflicts[0],
            where=rendered.name or rendered.issue_id,
            hint="nothing was sent",
        )
    if assessment.gaps and not send_duplicates:
        count = sum(assessment.gaps.values())
        return LedgerBehind(
            f"the ledger has no record of {count:,} readers that the journal says have issue"
            f" '{rendered.issue_id}' ({describe_gaps(assessment.gaps)}): it was lost, damaged or"
            " replaced by an older copy",
            where=str(ledger_path),
            hint=f"{RECOVER_HINT}; or --send-duplicates mails them again, so they get it twice",
        )
    if assessment.changed and not allow_changed:
        parts = ", ".join(assessment.changed)
        return DraftChanged(
            f"the issue changed since {assessment.had_it:,} readers got it: {parts}",
            parts=assessment.changed,
            where=rendered.name or rendered.issue_id,
            hint="--allow-changed sends this version to the rest; or undo the change",
        )
    return None


def settings_warnings(workspace: Workspace, transport: Transport, *, dry_run: bool = False) -> list[str]:
    """Settings that still hold example values: a ConfigError naming them when the send would put
    them in front of real readers (SMTP, not a dry run); else the warnings to show."""
    from digestcli.config import example_settings

    found = example_settings(workspace.config)
    if not found:
        return []
    where = (
        str(workspace.config_path) if workspace.config_path else f"{workspace.root}/digest.toml (none yet)"
    )
    listed = "; ".join(f"{one.key} = {one.value!r} ({one.why})" for one in found)
    if isinstance(transport, SmtpTransport) and not dry_run:
        keys = ", ".join(one.key for one in found)
        raise ConfigError(
            f"refusing to send through SMTP with example settings: {listed}",
            where=where,
            hint=f"set {keys} to your newsletter's own; the outbox and --dry-run only warn",
        )
    keys = ", ".join(one.key for one in found)
    return [f"{where}: {keys} still hold example values: fine for a try, set them before sending to readers"]


def send_issue(
    rendered: RenderedIssue,
    workspace: Workspace,
    *,
    subscribers: SubscriberList | None = None,
    transport: Transport | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    test_address: str | None = None,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    allow_changed: bool = False,
    send_duplicates: bool = False,
    progress: Progress | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    interrupt_grace: float = INTERRUPT_GRACE,
    patience: float | None = None,
    draft: str = "",
) -> SendSummary:
    """Mail ``rendered`` to every reader not yet delivered, recording each outcome in the ledger.

    ``test_address`` sends one copy there only ("[TEST] " subject, no ledger; no list is needed).
    ``dry_run`` builds every message and sends none; it makes no ledger and no secret (a throwaway
    one signs). ``limit`` caps the messages this run sends. Who is mailed is ``plan_send``'s plan,
    made again under the send lock. ``progress`` is called from worker threads (one at a time) as
    each reader's outcome is known. ``patience``: seconds of failing connections before giving up
    (default ``[delivery] patience``). ``draft`` is the draft's path, kept in the ledger's register.

    Raises InputError (the list, or a slot it cannot fill), ConfigError, IssueReused, LedgerBehind,
    DraftChanged (nothing sent), SendStopped (a DeliveryError: the server cannot be used, or
    refuses the sender; the ledger is exact) or, on Ctrl-C, SendInterrupted.
    """
    started = time.monotonic()
    config = workspace.config
    draft_path = str(Path(draft).resolve()) if draft else ""
    readers = subscribers
    if readers is None and not (
        test_address is not None and not workspace.path(config.delivery.subscribers).exists()
    ):
        readers = read_list(workspace)
    transport = transport or transport_for(workspace)
    if dry_run:
        # Nothing built in a dry run leaves this machine: no need to make a secret for it.
        secret = read_secret(workspace.state) or secrets.token_bytes(32)
    else:
        secret = load_secret(workspace.state)
    columns = readers.columns if readers is not None else tuple(sorted(rendered.slots()))
    personalizer = Personalizer(
        rendered,
        masthead_for(config),
        secret,
        columns=columns,
        subject_prefix=TEST_PREFIX if test_address is not None else "",
        where=str(readers.path) if readers is not None else None,
        line_end=getattr(transport, "line_end", "\r\n"),  # LF for the outbox's files
    )
    summary = SendSummary(
        rendered.issue_id,
        transport.name,
        readers=readers.count if readers is not None else 0,
        skipped=readers.skipped_count if readers is not None else 0,
        dry_run=dry_run,
        test_address=test_address,
    )

    def dispatch(ledger: Ledger | None, build: Callable[[Subscriber], Message]) -> Dispatch:
        return Dispatch(
            rendered.issue_id,
            transport,
            ledger,
            build,
            config.delivery.bounce_address or personalizer.sender,
            summary,
            envelope=envelope_of(config, rendered.issue_id, secret) if test_address is None else None,
            retries=max(1, config.delivery.retries),
            max_connection_failures=max(1, config.delivery.max_connection_failures),
            rate=config.delivery.rate,
            backoff=backoff,
            progress=progress,
            patience=patience if patience is not None else config.delivery.patience,
            interrupt_grace=interrupt_grace,
        )

    counted = False  # the run has counted every reader it planned into the summary

    def go(run: Dispatch, due: Iterable[Subscriber]) -> None:
        nonlocal counted
        try:
            run.go(due)
            counted = True
        except Interrupted:
            counted = True
            raise SendInterrupted(summary) from None
        except DeliveryError as error:
            counted = True
            raise SendStopped(error, summary) from None
        finally:
            summary.links_left_out = personalizer.links_left_out()

    try:
        if test_address is not None:
            reader = _test_reader(test_address, readers, columns)
            domain = personalizer.domain

            def build_test(reader: Subscriber) -> Message:
                # Its own Message-ID: a test copy must not look like the reader's real one.
                return personalizer.message(reader, message_id=make_msgid("test", domain=domain))

            summary.planned = 1
            if dry_run:
                build_test(reader)
                summary.built = 1
            else:
                go(dispatch(None, build_test), [reader])
            return summary
        assert readers is not None

        if dry_run:
            plan = plan_send(
                rendered,
                workspace,
                readers,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                limit=limit,
                draft=draft_path,
            )  # reads only
            refusal = refusal_for(
                plan.assessment,
                rendered,
                workspace.state / LEDGER_DB,
                allow_changed=allow_changed,
                send_duplicates=send_duplicates,
            )
            if refusal is not None:
                raise refusal
            _count_plan(plan, summary)
            for done, reader in enumerate(plan.due, 1):
                personalizer.message(reader)
                summary.built = done
                if progress is not None:
                    progress(done, len(plan.due), "built")  # nothing is delivered: count what is built
            summary.links_left_out = personalizer.links_left_out()
            return summary

        with send_lock(workspace.state), Ledger(workspace.state) as ledger:
            summary.recovered = ledger.recover()
            if rendered.name:
                ledger.adopt(rendered.name, rendered.issue_id)  # a ledger from before issue ids
            parts = parts_of(rendered)
            assessment = assess(
                workspace.state,
                ledger,
                facts_of(rendered, draft_path),
                parts,
            )
            refusal = refusal_for(
                assessment,
                rendered,
                ledger.path,
                allow_changed=allow_changed,
                send_duplicates=send_duplicates,
            )
            if refusal is not None:
                raise refusal
            plan = plan_readers(
                rendered.issue_id,
                readers,
                workspace.state,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                limit=limit,
            )
            _count_plan(plan, summary)
            tables = plan.tables
            assert tables is not None
            # Rows for the readers it mails are written as the run reaches them, the others when it
            # ends (a million take a second): the first message waits for none of them.
            ledger.plan_from(rendered.issue_id, tables.path, tables.wanted, tables.skipped, new=False)
            readers.remember(workspace.state)  # what email-validator said, for the next read
            if plan.due:
                ledger.begin_run(
                    rendered.issue_id,
                    number=rendered.number,
                    date=rendered.date,
                    subject=rendered.subject,
                    draft=draft_path,
                    parts={**parts, "subject_text": rendered.subject},
                    readers=plan.readers,
                )
            due = plan.due.ahead(lambda keys: ledger.add_pending(rendered.issue_id, keys))
            try:
                go(dispatch(ledger, personalizer.message), due)  # read from the list as it is sent
            except BaseException:
                with contextlib.suppress(Exception, KeyboardInterrupt):  # what stopped it is what to say
                    ledger.plan_from(rendered.issue_id, tables.path, tables.wanted, tables.skipped)
                raise
            ledger.plan_from(rendered.issue_id, tables.path, tables.wanted, tables.skipped)
            return summary
    except SendInterrupted:
        raise
    except KeyboardInterrupt:
        # Ctrl-C before the first message could leave (reading, locking, planning): nobody was
        # mailed, and the readers planned for this run are still to be sent. Or after the run, as
        # the plan's last rows were written: the summary has every reader already.
        summary.interrupted = True
        if not counted:
            summary.remaining += summary.planned
        raise SendInterrupted(summary) from None
    finally:
        summary.duration = time.monotonic() - started


def record_plan(
    rendered: RenderedIssue,
    workspace: Workspace,
    readers: SubscriberList,
    *,
    transport: Transport | None = None,
    draft: str = "",
) -> SendSummary:
    """When nothing is due, the ledger still learns who left the list and which rows a killed run
    left in flight, so that ``digest status`` tells the truth; nobody is mailed. (The plan is made
    again under the send lock: whatever it finds due now, another send having just let go of it,
    waits for a run the editor has confirmed.)"""
    return send_issue(
        rendered,
        workspace,
        subscribers=readers,
        transport=transport,
        limit=0,
        allow_changed=True,
        send_duplicates=True,  # nobody is mailed: a gap is for the next real send to refuse
        draft=draft,
    )


def _count_plan(plan: SendPlan, summary: SendSummary) -> None:
    summary.already_delivered = len(plan.already_delivered)
    summary.suppressed = len(plan.suppressed)
    summary.held_unknown = len(plan.held_unknown)
    summary.held_failed = len(plan.held_failed)
    summary.planned = len(plan.due)
    summary.remaining = len(plan.later)


def _test_reader(address: str, readers: SubscriberList | None, columns: tuple[str, ...]) -> Subscriber:
    """The list's own reader for a test address, so the copy looks like theirs; else a blank one."""
    try:
        email = normalize_address(address)
    except ValueError as exc:
        raise UsageError(f"the test address {address!r} is not valid: {exc}") from None
    found = readers.find(address_key(email)) if readers is not None else None
    if found is not None:
        return found
    fields = dict.fromkeys(columns, "")
    fields.update(email=email, name="")
    return Subscriber(email, "", MappingProxyType(fields), 0)
