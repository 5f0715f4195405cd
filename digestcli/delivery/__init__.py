"""Delivery: getting a rendered issue to every reader exactly once, through the outbox or SMTP,
with the ledger as the record of who has it."""

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
]
