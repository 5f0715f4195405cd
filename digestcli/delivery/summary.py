"""What a send did, reader by reader counted: the summary ``digest send`` prints at the end."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from digestcli.state import DEFERRED, DELIVERED, FAILED, PENDING, UNKNOWN


@dataclass
class SendSummary:
    """One run of a send: who was left out before it began, and what happened to the rest."""

    issue_id: str
    transport: str
    readers: int = 0  # valid, distinct readers in the list
    skipped: int = 0  # rows of the list skipped: invalid or duplicate addresses
    suppressed: int = 0  # readers on the suppression list, not mailed
    already_delivered: int = 0  # delivered by an earlier run
    held_unknown: int = 0  # unknown from an earlier run, not resent (resend_unknown lifts this)
    held_failed: int = 0  # failed in an earlier run, not retried (retry_failed lifts this)
    recovered: int = 0  # rows a killed run left in flight, found and marked unknown now
    planned: int = 0  # messages this run set out to send (after the limit)
    delivered: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    built: int = 0  # messages built (all of them in a dry run)
    remaining: int = 0  # left pending: beyond the limit, or not reached before the send stopped
    duration: float = 0.0  # seconds
    dry_run: bool = False
    test_address: str | None = None
    interrupted: bool = False
    retry_after: float | None = None  # time.time() before which a throttled relay is not worth trying
    rerun_helps: bool = True  # False when the send stopped on something the editor must fix first
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (address, state, reply)
    # Per-reader link targets left out of a message: (address, field, value); see Personalizer.links_left_out.
    links_left_out: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self, outcomes: Iterable[tuple[str, str, str]]) -> None:
        """Count a run's outcomes, one (address, state, reply) per reader the run set out to mail.
        ``pending`` is a reader not reached, or handed back: it adds to ``remaining``."""
        for address, state, reply in outcomes:
            if state == DELIVERED:
                self.delivered += 1
                continue
            if state == PENDING:
                self.remaining += 1
                continue
            if state == DEFERRED:
                self.deferred += 1
            elif state == FAILED:
                self.failed += 1
            elif state == UNKNOWN:
                self.unknown += 1
            if reply:
                self.problems.append((address, state, reply))

    @property
    def rate(self) -> float:
        """Messages per second this run (built ones in a dry run)."""
        done = self.built if self.dry_run else self.delivered + self.failed + self.unknown
        return done / self.duration if self.duration > 0 else 0.0
