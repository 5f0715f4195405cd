"""When a send must stop on its own: the relay cannot be reached for long enough, keeps losing the
reply to the data, or gives the same refusal to reader after reader. The worker threads report
each reply here (under their lock) and act on the verdict; this module decides, and does nothing.

Postfix's way of thinking, kept small: a temporary refusal is retried, but the same one for many
readers in a row is a quota or a throttle that trying sooner will not lift; a permanent refusal
names a reader or it does not, and one that does not, given to readers in a row at several
domains, is about the sender, the account or the message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from digestcli.errors import DeliveryError
from digestcli.subscribers import Subscriber

# Readers in a row (no delivery between, two domains at least) given the same permanent refusal
# before the send stops: a refusal about the sender or the account looks like one about each
# reader until it repeats.
SAME_REFUSALS = 5
# The same, for a refusal that names each reader for a policy reason ("550 5.7.1 <ann@...>: Access
# denied"): one relay refuses some readers that way, another every reader. Only a long run of them
# says it is the relay.
SAME_NAMED_REFUSALS = 20
# Readers in a row given the same temporary refusal (a quota, a throttle) before the send stops:
# trying each reader again and again only hammers an account that is already held back.
SAME_TEMPORARY = 5
# RFC 5321 §4.5.4.1: a retry interval SHOULD be at least 30 minutes.
RETRY_AFTER = 30 * 60
# How long connections may keep failing (no server answering) before the send gives up.
PATIENCE = 60.0


@dataclass
class Verdict:
    """The run must stop: why, and what becomes of the readers the refusal was given to."""

    error: DeliveryError
    rerun_helps: bool = True  # False: only the editor can mend it (the sender, the account)
    held: list[Subscriber] = field(default_factory=list)  # readers not to blame: pending again
    retry_after: float | None = None  # time.time() before which trying again is no use


def refusal_key(reply: str, address: str) -> str:
    """A refusal with what differs from reader to reader taken out (their address, ids, counts),
    so that one refusal given to everyone is seen as one."""
    words = reply.lower().replace(address.lower(), "<reader>").split()
    return " ".join("#" if i and any(c.isdigit() for c in w) else w for i, w in enumerate(words))


class _Streak:
    """Readers in a row given the same refusal, and the refusal (its ``refusal_key``)."""

    def __init__(self) -> None:
        self.key = ""
        self.readers: list[Subscriber] = []

    def add(self, key: str, reader: Subscriber) -> int:
        if key != self.key:
            self.key, self.readers = key, []
        if reader not in self.readers:
            self.readers.append(reader)
        return len(self.readers)

    def domains(self) -> int:
        return len({one.key.rpartition("@")[2] for one in self.readers})

    def clear(self) -> None:
        self.key, self.readers = "", []


class Judge:
    """The replies of one run, and the verdict when they say the run must stop. Not thread-safe:
    the caller holds its own lock around every call."""

    def __init__(
        self,
        where: str,
        *,
        max_connection_failures: int,
        patience: float = PATIENCE,
        same_refusals: int = SAME_REFUSALS,
    ):
        self.where = where  # the transport's name, for the error
        self.max_connection_failures = max_connection_failures
        self.patience = patience
        self.same_refusals = max(2, same_refusals)
        self.connection_failures = 0  # in a row, over all workers
        self.failing_since: float | None = None  # when the current run of failures began
        self.lost_replies = 0  # replies to the data lost in a row (each reader now unknown)
        self.refused = _Streak()  # permanent refusals since the last delivery
        self.named = _Streak()  # refusals naming each reader for a policy reason
        self.throttled = _Streak()  # temporary refusals
        self.given: dict[str, list[Subscriber]] = {}  # refusal -> readers given it this run
        self.held_refusal = ""  # the refusal that stopped the run

    def answered(self, *, delivered: bool = False) -> None:
        """The server answered (a connection works); ``delivered``: and took a message."""
        self.connection_failures = 0
        self.failing_since = None
        self.lost_replies = 0
        if delivered and (self.refused.readers or self.named.readers or self.throttled.readers):
            self.refused.clear()
            self.named.clear()
            self.throttled.clear()

    def connection_failed(self, reply: str, *, lost_reply: bool = False) -> tuple[int, Verdict | None]:
        """A connection failed (or lost the reply to the data): the failures in a row, for the
        backoff, and a verdict once they have failed ``max_connection_failures`` times in a row
        for ``patience`` seconds (lost replies: at once, each is a reader who may get it twice)."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        self.connection_failures += 1
        self.lost_replies += lost_reply
        failures, waited = self.connection_failures, now - self.failing_since
        patient = waited >= self.patience or self.lost_replies >= self.max_connection_failures
        if failures < self.max_connection_failures or not patient:
            return failures, None
        error = DeliveryError(
            f"giving up after {failures} connection failures in a row over {waited:.0f} s; the last: {reply}",
            where=self.where,
            hint="the ledger is up to date: run the send again once the server is back",
        )
        return failures, Verdict(error)

    def temporary(self, reader: Subscriber, reply: str) -> Verdict | None:
        """A temporary refusal on a working connection: a verdict when readers in a row got the
        same one (a quota, a throttle). Their rows say deferred; the next run tries them again."""
        count = self.throttled.add(refusal_key(reply, reader.email), reader)
        if count < SAME_TEMPORARY:
            return None
        after = time.time() + RETRY_AFTER
        error = DeliveryError(
            f"the server refused {count} readers in a row for now: {reply}",
            where=self.where,
            hint=f"try again after {time.strftime('%H:%M', time.localtime(after))}: a quota or a"
            " throttle is not lifted by trying sooner (RFC 5321 asks for 30 minutes at least);"
            " the ledger is up to date",
        )
        return Verdict(error, rerun_helps=False, retry_after=after)

    def permanent(
        self, reader: Subscriber, reply: str, *, named: bool, at_recipient: bool, stopped: bool = False
    ) -> Verdict | None:
        """A 5xx that is not about the reader's mailbox: a verdict when readers in a row, at two
        domains at least, got the same one. Then it is about the sender, the account or the
        message, not them: every reader given it this run (in a row or not: a delivery on
        another connection may come between) is held, pending again. ``named``: it names each
        reader for a policy reason (5.7.x); only a long run stops, and those readers stay failed
        (a relay denying every address must not fail the whole list, but one that really refuses
        just them must not stop every later run at them either; --retry-failed tries them).

        Once a refusal has stopped the run, each later reader given it is held too; when the run
        stopped for another reason (``stopped``), a refusal holds no one."""
        key = refusal_key(reply, reader.email)
        given = self.given.setdefault(key, [])
        given.append(reader)
        keep_failed = named or at_recipient
        if key == self.held_refusal:
            return Verdict(DeliveryError(reply), held=[] if keep_failed else [reader])
        if stopped:
            return None
        streak, limit = (self.named, SAME_NAMED_REFUSALS) if named else (self.refused, self.same_refusals)
        count = streak.add(key, reader)
        # At two domains at least: one domain refusing us by its policy (a firewall, a blocklist)
        # is that domain's affair, and must not hold up the rest of the list.
        if count < limit or streak.domains() < 2:
            return None
        held = list({one.key: one for one in given}.values())
        self.held_refusal = key
        streak.clear()
        error = DeliveryError(
            f"the server gave the same refusal for {len(held)} readers in a row: {reply}",
            where=self.where,
            hint="it is about the sender, the account or the message, not the readers: fix that, then"
            " run the send again"
            + (
                " (those readers stay failed: --retry-failed tries them again)"
                if keep_failed
                else " (those readers are pending again)"
            ),
        )
        return Verdict(error, rerun_helps=False, held=[] if keep_failed else held)
