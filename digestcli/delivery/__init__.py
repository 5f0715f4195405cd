"""Delivery: getting a rendered issue to every reader exactly once, through the outbox or SMTP,
with the ledger as the record of who has it."""

from digestcli.delivery.ledger import STATES, IssueStatus, Ledger, read_status
from digestcli.delivery.outbox import OutboxTransport
from digestcli.delivery.plan import SendPlan, plan_send
from digestcli.delivery.send import (
    Backoff,
    SendInterrupted,
    SendStopped,
    SendSummary,
    masthead_for,
    send_issue,
    transport_for,
)
from digestcli.delivery.smtp import SmtpTransport
from digestcli.delivery.transport import Hangup, Session, Transport

__all__ = [
    "STATES",
    "Backoff",
    "Hangup",
    "IssueStatus",
    "Ledger",
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
    "send_issue",
    "transport_for",
]
