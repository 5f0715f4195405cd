"""Delivery: getting a rendered issue to every reader exactly once, through the outbox or SMTP,
with the ledger as the record of who has it.

The names below load with the module that holds them, on first use: ``digest status`` reads the
ledger through this package without loading the renderer that the sending modules need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestcli.lazy import names_from

if TYPE_CHECKING:
    from digestcli.delivery.outbox import OutboxTransport
    from digestcli.delivery.plan import SendPlan, plan_send
    from digestcli.delivery.send import (
        DraftChanged,
        IssueReused,
        LedgerBehind,
        SendInterrupted,
        SendStopped,
        masthead_for,
        record_plan,
        refusal_for,
        send_issue,
        settings_warnings,
        transport_for,
    )
    from digestcli.delivery.smtp import SmtpTransport
    from digestcli.delivery.summary import SendSummary
    from digestcli.delivery.transport import Hangup, Session, Transport
    from digestcli.delivery.workers import Backoff
    from digestcli.state import STATES
    from digestcli.state.ledger import IssueStatus, Ledger, read_status

_HOMES = {
    "digestcli.delivery.outbox": ("OutboxTransport",),
    "digestcli.delivery.plan": ("SendPlan", "plan_send"),
    "digestcli.delivery.send": (
        "DraftChanged",
        "IssueReused",
        "LedgerBehind",
        "SendInterrupted",
        "SendStopped",
        "masthead_for",
        "record_plan",
        "refusal_for",
        "send_issue",
        "settings_warnings",
        "transport_for",
    ),
    "digestcli.delivery.smtp": ("SmtpTransport",),
    "digestcli.delivery.summary": ("SendSummary",),
    "digestcli.delivery.transport": ("Hangup", "Session", "Transport"),
    "digestcli.delivery.workers": ("Backoff",),
    "digestcli.state": ("STATES",),
    "digestcli.state.ledger": ("IssueStatus", "Ledger", "read_status"),
}
__all__ = [
    "STATES",
    "Backoff",
    "DraftChanged",
    "Hangup",
    "IssueReused",
    "IssueStatus",
    "Ledger",
    "LedgerBehind",
    "OutboxTransport",
    "SendInterrupted",
    "SendPlan",
    "SendStopped",
    "SendSummary",
    "Session",
    "SmtpTransport",
    "Transport",
    "masthead_for",
    "plan_send",
    "read_status",
    "record_plan",
    "refusal_for",
    "send_issue",
    "settings_warnings",
    "transport_for",
]  # the names _HOMES holds, written out for type checkers


__getattr__, __dir__ = names_from(__name__, _HOMES)
