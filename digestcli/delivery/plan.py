"""Who gets an issue in a run, decided in one place: ``plan_send`` shows it before the editor is
asked, and ``send_issue`` follows it under the send lock, so what is shown is what happens."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from digestcli.config import Workspace
from digestcli.render import RenderedIssue
from digestcli.state import DEFERRED, DELIVERED, FAILED, LEDGER_DB, PENDING, SENDING, UNKNOWN
from digestcli.state.history import Assessment, IssueFacts, assess, fingerprint
from digestcli.state.ledger import Ledger
from digestcli.state.suppressions import SuppressionList
from digestcli.subscribers import Subscriber, SubscriberList

NOT_LISTED = "no longer in the reader list"


@dataclass(frozen=True)
class SendPlan:
    """Every reader of the list in exactly one group, in list order."""

    issue_id: str
    due: tuple[Subscriber, ...]  # mailed this run (after the limit)
    later: tuple[Subscriber, ...]  # due, but beyond the limit: left pending for the next run
    already_delivered: tuple[Subscriber, ...]
    suppressed: tuple[Subscriber, ...]  # on the suppression list (and not delivered already)
    held_unknown: tuple[Subscriber, ...]  # unknown from an earlier run; resend_unknown lifts this
    held_failed: tuple[Subscriber, ...]  # refused for good earlier; retry_failed lifts this
    # Ledger rows still waiting for the issue (pending, deferred) for readers no longer in the
    # list: the run marks them skipped rather than leave them pending for ever.
    unlisted: tuple[str, ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)  # suppressed reader's key -> reason
    assessment: Assessment = field(default_factory=Assessment)  # what the past says (plan_send only)

    def skipped_rows(self) -> dict[str, str]:
        """What the ledger marks skipped: address key -> why."""
        rows = {reader.key: f"suppressed: {self.reasons.get(reader.key, '')}" for reader in self.suppressed}
        rows.update(dict.fromkeys(self.unlisted, NOT_LISTED))
        return rows


def facts_of(rendered: RenderedIssue, draft: str | Path = "") -> IssueFacts:
    """What the identity checks need of a rendered issue; ``draft`` is the draft's path."""
    return IssueFacts(
        rendered.issue_id,
        rendered.number,
        rendered.date,
        rendered.subject,
        Path(draft) if draft else None,
        id_given=rendered.id_given,
    )


def parts_of(rendered: RenderedIssue) -> dict[str, str]:
    """A hash of each part of what a run sends, so that a later run can say what changed."""
    return fingerprint(
        subject=rendered.subject, preheader=rendered.preheader, html=rendered.html, text=rendered.text
    )


def plan_send(
    rendered: RenderedIssue,
    workspace: Workspace,
    subscribers: SubscriberList,
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
    draft: str | Path = "",
) -> SendPlan:
    """What ``send_issue`` would do now with the same options, for the editor to see before saying
    yes, with what the past says about it (``assessment``). Reads the ledger, the journal and the
    suppression list; creates and changes nothing.

    A row another send has in flight right now counts as unknown here, as it will for the next run
    if that send dies. Raises InputError or DeliveryError when the ledger cannot be read.
    """
    issue_id = rendered.issue_id
    parts = parts_of(rendered)
    facts = facts_of(rendered, draft)
    if (workspace.state / LEDGER_DB).exists():
        with Ledger(workspace.state, read_only=True) as ledger:
            states = ledger.states(issue_id)
            if not states and rendered.name:
                states = ledger.legacy_states(rendered.name)  # a send adopts them (Ledger.adopt)
            assessment = assess(workspace.state, ledger, facts, parts, states=states)
    else:
        states = {}
        assessment = assess(workspace.state, None, facts, parts)
    plan = plan_readers(
        issue_id,
        subscribers,
        states,
        SuppressionList(workspace.state).reasons(),
        resend_unknown=resend_unknown,
        retry_failed=retry_failed,
        limit=limit,
    )
    return dataclasses.replace(plan, assessment=assessment)


def plan_readers(
    issue_id: str,
    readers: SubscriberList,
    states: Mapping[str, str],
    suppressions: Mapping[str, str],
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
) -> SendPlan:
    """The plan from what the ledger says (address key -> state) and the suppression list."""
    due: list[Subscriber] = []
    delivered: list[Subscriber] = []
    suppressed: list[Subscriber] = []
    unknown: list[Subscriber] = []
    failed: list[Subscriber] = []
    for reader in readers.readers:
        state = states.get(reader.key, PENDING)
        if state == SENDING:  # in flight in a send running now, or in one that died
            state = UNKNOWN
        if state == DELIVERED:
            delivered.append(reader)
        elif reader.key in suppressions:
            suppressed.append(reader)
        elif state == UNKNOWN and not resend_unknown:
            unknown.append(reader)
        elif state == FAILED and not retry_failed:
            failed.append(reader)
        else:
            due.append(reader)
    cut = len(due) if limit is None else max(0, limit)
    listed = {reader.key for reader in readers.readers}
    unlisted = tuple(
        address for address, state in states.items() if state in (PENDING, DEFERRED) and address not in listed
    )
    return SendPlan(
        issue_id,
        due=tuple(due[:cut]),
        later=tuple(due[cut:]),
        already_delivered=tuple(delivered),
        suppressed=tuple(suppressed),
        held_unknown=tuple(unknown),
        held_failed=tuple(failed),
        unlisted=unlisted,
        reasons={reader.key: suppressions[reader.key] for reader in suppressed},
    )
