"""The send loop: one worker thread per connection, retries, the rate limit, and keeping the ledger
exact whatever stops the run (a refusal, a broken relay, Ctrl-C, SIGKILL). Who gets the issue is
``plan``'s to decide.

Each worker owns one transport session and reuses it for message after message. A reader's row is
committed ``sending`` before its data can leave and settled as soon as the server answers; see
``ledger`` for why that makes a killed run safe to resume. A run stops on its own when the relay
cannot be used: connections (or replies to the data) lost too often in a row, the sender refused,
or the same refusal for several readers in a row.
"""

from __future__ import annotations

import contextlib
import enum
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from types import MappingProxyType

from digestcli.config import Config, Workspace
from digestcli.delivery.ledger import DEFERRED, DELIVERED, FAILED, PENDING, UNKNOWN, Ledger
from digestcli.delivery.outbox import OutboxTransport
from digestcli.delivery.plan import SendPlan, plan_readers, plan_send
from digestcli.delivery.smtp import SmtpTransport
from digestcli.delivery.transport import (
    ConnectFailure,
    Hangup,
    PermanentFailure,
    SenderRefused,
    Session,
    StaleSession,
    TemporaryFailure,
    Transport,
    UncertainDelivery,
)
from digestcli.errors import DeliveryError, UsageError
from digestcli.message import Masthead, Message, Personalizer, load_secret, read_secret
from digestcli.render import RenderedIssue
from digestcli.subscribers import (
    Subscriber,
    SubscriberList,
    SuppressionList,
    load_subscribers,
    make_state_dir,
    normalize_address,
)

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one send at a time is then the editor's to keep
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = "send.lock"
TEST_PREFIX = "[TEST] "
# How long Ctrl-C waits for messages already on the wire to be answered before cutting connections.
INTERRUPT_GRACE = 5.0
# Readers in a row (no delivery between, two domains at least) given the same refusal before the
# send stops: a refusal about the sender or the account looks like one about each reader until it
# repeats.
SAME_REFUSALS = 5

Progress = Callable[[int, int, str], None]  # (delivered so far, messages this run, reader's state)


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: first, doubling each time, never more than most (seconds)."""

    first: float = 1.0
    most: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.most, self.first * 2.0 ** max(0, failures - 1))


@dataclass
class SendSummary:
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
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (address, state, reply)

    @property
    def rate(self) -> float:
        """Messages per second this run (built ones in a dry run)."""
        done = self.built if self.dry_run else self.delivered + self.failed + self.unknown
        return done / self.duration if self.duration > 0 else 0.0


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
    progress: Progress | None = None,
    backoff: Backoff = Backoff(),
) -> SendSummary:
    """Mail ``rendered`` to every reader not yet delivered, recording each outcome in the ledger.

    ``test_address`` sends one copy there only ("[TEST] " subject, no ledger). ``dry_run`` builds
    every message and sends none; it makes no ledger and no secret (a throwaway one signs). ``limit``
    caps the messages this run sends. Who is mailed is ``plan_send``'s plan, made again under the
    send lock. ``progress`` is called from worker threads (one at a time) as each reader's outcome
    is known.

    Raises InputError (the list, or a slot it cannot fill), ConfigError, SendStopped (a
    DeliveryError: the server cannot be used, or refuses the sender; the ledger is exact) or, on
    Ctrl-C, SendInterrupted.
    """
    started = time.monotonic()
    config = workspace.config
    readers = (
        load_subscribers(workspace.path(config.delivery.subscribers)) if subscribers is None else subscribers
    )
    transport = transport or transport_for(workspace)
    if dry_run:
        # Nothing built in a dry run leaves this machine: no need to make a secret for it.
        secret = read_secret(workspace.state) or secrets.token_bytes(32)
    else:
        secret = load_secret(workspace.state)
    personalizer = Personalizer(
        rendered,
        masthead_for(config),
        secret,
        columns=readers.columns,
        subject_prefix=TEST_PREFIX if test_address is not None else "",
        where=str(readers.path),
    )
    summary = SendSummary(
        rendered.issue_id,
        transport.name,
        readers=len(readers.readers),
        skipped=len(readers.skipped),
        dry_run=dry_run,
        test_address=test_address,
    )

    def run(ledger: Ledger | None, build: Callable[[Subscriber], Message]) -> _Run:
        return _Run(
            rendered.issue_id,
            transport,
            ledger,
            build,
            personalizer.sender,
            summary,
            retries=max(1, config.delivery.retries),
            max_connection_failures=max(1, config.delivery.max_connection_failures),
            rate=config.delivery.rate,
            backoff=backoff,
            progress=progress,
        )

    try:
        if test_address is not None:
            reader = _test_reader(test_address, readers)
            domain = personalizer.domain

            def build_test(reader: Subscriber) -> Message:
                # Its own Message-ID: a test copy must not look like the reader's real one.
                return personalizer.message(reader, message_id=make_msgid("test", domain=domain))

            summary.planned = 1
            if dry_run:
                build_test(reader)
                summary.built = 1
            else:
                run(None, build_test).go([reader])
            return summary

        if dry_run:
            plan = plan_send(
                rendered.issue_id,
                workspace,
                readers,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                limit=limit,
            )  # reads only
            _count_plan(plan, summary)
            for done, reader in enumerate(plan.due, 1):
                personalizer.message(reader)
                summary.built = done
                if progress is not None:
                    progress(done, len(plan.due), "built")  # nothing is delivered: count what is built
            return summary

        with _send_lock(workspace.state), Ledger(workspace.state) as ledger:
            summary.recovered = ledger.recover()
            plan = plan_readers(
                rendered.issue_id,
                readers,
                ledger.states(rendered.issue_id),
                SuppressionList(workspace.state).reasons(),
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                limit=limit,
            )
            _count_plan(plan, summary)
            ledger.plan(rendered.issue_id, [r.key for r in (*plan.due, *plan.later)], plan.skipped_rows())
            run(ledger, personalizer.message).go(list(plan.due))
            return summary
    finally:
        summary.duration = time.monotonic() - started


def _count_plan(plan: SendPlan, summary: SendSummary) -> None:
    summary.already_delivered = len(plan.already_delivered)
    summary.suppressed = len(plan.suppressed)
    summary.held_unknown = len(plan.held_unknown)
    summary.held_failed = len(plan.held_failed)
    summary.planned = len(plan.due)
    summary.remaining = len(plan.later)


def _test_reader(address: str, readers: SubscriberList) -> Subscriber:
    """The list's own reader for a test address, so the copy looks like theirs; else a blank one."""
    try:
        email = normalize_address(address)
    except ValueError as exc:
        raise UsageError(f"the test address {address!r} is not valid: {exc}") from None
    for reader in readers.readers:
        if reader.key == email.lower():
            return reader
    fields = dict.fromkeys(readers.columns, "")
    fields.update(email=email, name="")
    return Subscriber(email, "", MappingProxyType(fields), 0)


@contextlib.contextmanager
def _send_lock(state_dir: Path) -> Iterator[None]:
    """One send per workspace at a time: a second would take the first's in-flight rows for dead."""
    make_state_dir(state_dir)
    path = state_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise DeliveryError(
                    f"another send is running in this workspace (pid {holder})",
                    where=str(path),
                    hint="wait for it to finish; the lock goes with the process",
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield  # the kernel drops the lock when the file closes, or the process dies


class _Pace:
    """The rate limit shared by all connections: at most ``rate`` messages a second."""

    def __init__(self, rate: float):
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            stop.wait(slot - now)


def _refusal_key(reply: str, address: str) -> str:
    """A refusal with what differs from reader to reader taken out (their address, ids, counts),
    so that one refusal given to everyone is seen as one."""
    words = reply.lower().replace(address.lower(), "<reader>").split()
    return " ".join("#" if i and any(c.isdigit() for c in w) else w for i, w in enumerate(words))


def _wait(event: threading.Event, timeout: float | None = None) -> bool:
    """Event.wait in short steps: Ctrl-C reaches the main thread between two, however it is sent
    (a SIGINT taken by another thread, or _thread.interrupt_main, wakes no one)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))):
        if deadline is not None and time.monotonic() >= deadline:
            return False
    return True


class _Outcome(enum.Enum):
    DONE = "done"  # the reader has an outcome for this run, or the run is stopping
    RETRY = "retry"  # after a wait (backoff)
    AGAIN = "again"  # at once, the attempt not counted (a stale connection)


class _Worker:
    """One connection's thread and what it holds, so the run can account for it at any moment."""

    def __init__(self) -> None:
        self.hangup = Hangup()
        self.session: Session | None = None
        self.reader: Subscriber | None = None  # taken from the queue; its outcome not yet counted
        self.deferred = False  # the reader's row says deferred (tried, waiting to try again)
        self.in_flight = False  # the reader's row is `sending`
        self.connecting = False


class _Run:
    """One run's workers and the state they share.

    The lock guards the summary, the queue and every worker's fields. A worker's reader is counted
    once: by the worker when its outcome is known, or by the main thread when the run ends without
    it (``_close``); after that, workers count nothing.
    """

    def __init__(
        self,
        issue_id: str,
        transport: Transport,
        ledger: Ledger | None,  # None for a test send: it is not recorded
        build: Callable[[Subscriber], Message],
        sender: str,
        summary: SendSummary,
        *,
        retries: int,
        max_connection_failures: int,
        rate: float,
        backoff: Backoff,
        progress: Progress | None,
        same_refusals: int = SAME_REFUSALS,
    ):
        self.issue_id = issue_id
        self.transport = transport
        self.ledger = ledger
        self.build = build
        self.sender = sender
        self.summary = summary
        self.retries = retries
        self.max_connection_failures = max_connection_failures
        self.same_refusals = max(2, same_refusals)
        self.backoff = backoff
        self.progress = progress
        self.pace = _Pace(rate)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.queue: deque[Subscriber] = deque()
        self.workers: list[_Worker] = []
        self.connection_failures = 0  # in a row, over all workers
        self.refusal = ""  # the last refusal (its _refusal_key) and who got it since a success
        self.refused: list[Subscriber] = []
        self.held_refusal = ""  # the refusal that stopped the run
        self.error: BaseException | None = None
        self.running = 0  # workers not yet finished
        self.flying = 0  # workers with a row `sending`
        self.finished = threading.Event()
        self.quiet = threading.Event()  # no row `sending`
        self.quiet.set()
        self.closed = False

    # -- the main thread ---------------------------------------------------------------------------

    def go(self, readers: list[Subscriber]) -> None:
        self.queue.extend(readers)
        self.workers = [_Worker() for _ in range(min(self.transport.connections, len(readers)))]
        threads = [
            threading.Thread(target=self._work, args=(worker,), name=f"digest-send-{n}", daemon=True)
            for n, worker in enumerate(self.workers)
        ]
        self.running = len(threads)
        if not threads:
            self.finished.set()
        try:
            for thread in threads:
                thread.start()
            # Wait in short steps, so that Ctrl-C reaches this thread while the workers run (see
            # _wait). On an Event, not Thread.join(): a join cut short by KeyboardInterrupt can leave
            # the thread looking finished while it still runs (Python 3.11).
            while not self.finished.wait(0.1):
                if self.stop.is_set():  # an error stops the run
                    self._wind_down()
                    break
        except KeyboardInterrupt:
            self._interrupt()
            self._close()
            raise SendInterrupted(self.summary) from None
        self._close()
        if isinstance(self.error, DeliveryError):
            raise SendStopped(self.error, self.summary) from None
        if self.error is not None:
            raise self.error

    def _wind_down(self) -> None:
        """After an error: messages on the wire get their answer; connections being made are cut."""
        with self.lock:
            connecting = [worker for worker in self.workers if worker.connecting]
        for worker in connecting:
            worker.hangup.cut()
        _wait(self.quiet)
        _wait(self.finished, 2.0)  # the rest end at once (QUIT); no need to hold the editor for it

    def _interrupt(self) -> None:
        self.summary.interrupted = True
        with self.lock:
            self.stop.set()
        try:
            # Let messages already on the wire get their answer; then cut every connection, also
            # those still being made, and wait for the rows in flight to be settled. Workers with
            # no row in flight need no waiting for: the summary counts their readers (_close).
            _wait(self.quiet, INTERRUPT_GRACE)
            for worker in self.workers:
                worker.hangup.cut()
            _wait(self.quiet)
        except KeyboardInterrupt:
            # A second Ctrl-C: go now. Rows still `sending` stay so; the next send marks them
            # unknown, as after a kill (_close counts them unknown already).
            for worker in self.workers:
                worker.hangup.cut()

    def _close(self) -> None:
        """The run is over for the summary: count every reader a worker still holds, and the queue."""
        with self.lock:
            self.closed = True
            summary = self.summary
            summary.remaining += len(self.queue)
            self.queue.clear()
            for worker in self.workers:
                reader, worker.reader = worker.reader, None
                if reader is None:
                    continue
                if worker.in_flight:
                    summary.unknown += 1
                    summary.problems.append(
                        (reader.email, UNKNOWN, "in flight when the send was interrupted")
                    )
                elif worker.deferred:
                    summary.deferred += 1  # tried and deferred already (the row says so)
                else:
                    summary.remaining += 1

    # -- the workers --------------------------------------------------------------------------------

    def _work(self, worker: _Worker) -> None:
        try:
            while True:
                with self.lock:
                    if self.stop.is_set() or not self.queue:
                        break
                    worker.reader, worker.deferred = self.queue.popleft(), False
                self._deliver(worker, worker.reader)
        except BaseException as exc:
            self._fail(exc)
        finally:
            self._leave(worker)
            session, worker.session = worker.session, None
            if session is not None:
                session.close()
            worker.hangup.release()
            with self.lock:
                self.running -= 1
                if not self.running:
                    self.finished.set()

    def _deliver(self, worker: _Worker, reader: Subscriber) -> None:
        """Try one reader until it has an outcome, or the run stops (then ``_work`` leaves it)."""
        message = self.build(reader)
        with self.lock:
            self.summary.built += 1
        attempts = 0
        forgive_stale = True
        while True:
            session = worker.session
            if session is None or not session.usable:
                session = self._reconnect(worker)
                if session is None:  # the run is stopping; this reader was not tried (again)
                    return
            self.pace.wait(self.stop)
            with self.lock:
                if self.stop.is_set():
                    return
                worker.in_flight = True
                self.flying += 1
                self.quiet.clear()
            try:
                self._record_sending(reader)
                attempts += 1
                outcome = self._attempt(
                    worker, reader, session, message, attempts, forgive_stale=forgive_stale
                )
            finally:
                with self.lock:
                    worker.in_flight = False
                    self.flying -= 1
                    if not self.flying:
                        self.quiet.set()
            if outcome is _Outcome.DONE:
                return
            if outcome is _Outcome.AGAIN:
                attempts -= 1
                forgive_stale = False
                continue
            self.stop.wait(self.backoff.delay(attempts))

    def _attempt(
        self,
        worker: _Worker,
        reader: Subscriber,
        session: Session,
        message: Message,
        attempts: int,
        *,
        forgive_stale: bool,
    ) -> _Outcome:
        """One try of one reader, its row `sending`: settle what the server said."""
        try:
            reply = session.send(self.sender, message)
        except TemporaryFailure as failure:
            if isinstance(failure, StaleSession) and forgive_stale:
                # An idle connection the server had closed: reconnect and try again at once, with
                # the attempt taken back; it is no one's failure.
                self._settle(worker, reader, PENDING, failure.reply, final=False)
                return _Outcome.AGAIN
            return self._temporary(worker, reader, failure, attempts, session)
        except SenderRefused as failure:
            self._server_answered()
            # About the sender, not the reader: the row goes back to pending, the attempt with it.
            self._settle(worker, reader, PENDING, failure.reply, final=False)
            self._fail(
                DeliveryError(
                    f"the server refuses the sender <{self.sender}>: {failure.reply}",
                    where=self.transport.name,
                    hint="check [newsletter] from and the account's right to send from it;"
                    " no reader was marked failed: run the send again once it is fixed",
                )
            )
        except PermanentFailure as failure:
            self._server_answered()
            self._settle(worker, reader, FAILED, failure.reply)
            if not failure.personal:
                self._same_refusal(reader, failure.reply, keep_failed=failure.at_recipient)
        except UncertainDelivery as failure:
            self._settle(worker, reader, UNKNOWN, failure.reply)
            # A relay that keeps losing the reply to the data is broken, even if it takes the
            # data: it counts towards giving up like a connection that fails.
            if not self.stop.is_set():
                self._connection_failed(failure.reply)
        except BaseException as exc:
            # A bug, or an error we do not know the phase of: assume the data may be out.
            self._settle(worker, reader, UNKNOWN, f"stopped by an internal error: {exc!r}")
            raise
        else:
            self._server_answered(delivered=True)
            self._settle(worker, reader, DELIVERED, reply)
        return _Outcome.DONE

    def _temporary(
        self, worker: _Worker, reader: Subscriber, failure: TemporaryFailure, attempts: int, session: Session
    ) -> _Outcome:
        """Settle a temporary failure: the reader is done for this run, or to be tried again."""
        if session.usable:
            self._server_answered()  # a 4xx on a live connection is the server working
        elif not self.stop.is_set():
            self._connection_failed(failure.reply)
        if self.stop.is_set() and self.summary.interrupted:
            # Ctrl-C: it did not go out, and this run gave up on it, not the server.
            self._settle(worker, reader, PENDING, failure.reply, final=False)
            return _Outcome.DONE
        if attempts >= self.retries or self.stop.is_set():
            self._settle(worker, reader, DEFERRED, failure.reply)
            return _Outcome.DONE
        # Not in flight while we wait: a kill now must not make it unknown.
        self._settle(worker, reader, DEFERRED, failure.reply, final=False)
        return _Outcome.RETRY

    def _reconnect(self, worker: _Worker) -> Session | None:
        """A new session for the worker (the old one closed), or None when the run is stopping."""
        old, worker.session = worker.session, None
        if old is not None:
            old.close()
        while not self.stop.is_set():
            with self.lock:
                worker.connecting = True
            try:
                worker.session = self.transport.open(worker.hangup)
                return worker.session
            except ConnectFailure as failure:
                if self.stop.is_set():
                    break
                failures = self._connection_failed(failure.reply)
                self.stop.wait(self.backoff.delay(failures))
            finally:
                with self.lock:
                    worker.connecting = False
        return None

    def _fail(self, error: BaseException) -> None:
        with self.lock:
            self.error = self.error or error
            self.stop.set()

    def _connection_failed(self, reply: str) -> int:
        with self.lock:
            self.connection_failures += 1
            failures = self.connection_failures
            if failures >= self.max_connection_failures and self.error is None:
                self.error = DeliveryError(
                    f"giving up after {failures} connection failures in a row; the last: {reply}",
                    where=self.transport.name,
                    hint="the ledger is up to date: run the send again to carry on",
                )
                self.stop.set()
        return failures

    def _server_answered(self, *, delivered: bool = False) -> None:
        with self.lock:
            self.connection_failures = 0
            if delivered:
                self.refusal, self.refused = "", []

    def _same_refusal(self, reader: Subscriber, reply: str, *, keep_failed: bool = False) -> None:
        """Stop when readers in a row all get the same refusal: it is about the sender, the account
        or the message (SES's "Email address is not verified"), not them. They go back to pending,
        and so does anyone the other connections get it for while the run stops.

        ``keep_failed``: the refusal came at RCPT, naming each reader ("554 5.7.1 <addr>: Recipient
        address rejected"). The run still stops (a relay denying every address must not fail the
        whole list), but those few stay failed, so a server that really refuses just them cannot
        stop every later run at the same readers; --retry-failed tries them again."""
        key = _refusal_key(reply, reader.email)
        with self.lock:
            if key == self.held_refusal:
                held = [reader]
            else:
                if key != self.refusal:
                    self.refusal, self.refused = key, []
                self.refused.append(reader)
                # At two domains at least: one domain refusing us by its policy (a firewall, a
                # blocklist) is that domain's affair, and must not hold up the rest of the list.
                domains = {one.key.rpartition("@")[2] for one in self.refused}
                if len(self.refused) < self.same_refusals or len(domains) < 2 or self.error is not None:
                    return
                held, self.refused, self.held_refusal = self.refused, [], key
                self.error = DeliveryError(
                    f"the server gave the same refusal for {len(held)} readers in a row: {reply}",
                    where=self.transport.name,
                    hint="it is about the sender, the account or the message, not the readers: fix"
                    " that, then run the send again"
                    + (
                        " (those readers stay failed: --retry-failed tries them again)"
                        if keep_failed
                        else " (those readers are pending again)"
                    ),
                )
                self.stop.set()
            if keep_failed:
                return
            if not self.closed:
                summary = self.summary
                summary.failed -= len(held)
                summary.remaining += len(held)
                emails = {one.email for one in held}
                summary.problems[:] = [p for p in summary.problems if not (p[0] in emails and p[1] == FAILED)]
        if self.ledger is not None:
            for one in held:
                self.ledger.record(self.issue_id, one.key, PENDING, f"held back after: {reply}")

    def _record_sending(self, reader: Subscriber) -> None:
        if self.ledger is not None:
            self.ledger.sending(self.issue_id, reader.key)

    def _leave(self, worker: _Worker) -> None:
        """The worker stops before its reader's next try: count the reader as the row says."""
        with self.lock:
            reader, worker.reader = worker.reader, None
            if reader is None or self.closed:
                return
            if worker.deferred:
                self.summary.deferred += 1  # tried and deferred already (the row says so)
            else:
                self.summary.remaining += 1

    def _settle(
        self, worker: _Worker, reader: Subscriber, state: str, reply: str, *, final: bool = True
    ) -> None:
        """Record an outcome; ``final``: the reader is done for this run (counted, let go of)."""
        with self.lock:
            worker.deferred = state == DEFERRED
            if final and not self.closed and worker.reader is reader:
                worker.reader = None
                summary = self.summary
                if state == DELIVERED:
                    summary.delivered += 1
                elif state == DEFERRED:
                    summary.deferred += 1
                elif state == FAILED:
                    summary.failed += 1
                elif state == UNKNOWN:
                    summary.unknown += 1
                if state != DELIVERED:
                    summary.problems.append((reader.email, state, reply))
                if self.progress is not None:
                    self.progress(summary.delivered, summary.planned, state)
        # After the count: if the ledger cannot take it, the summary still says what the server did.
        if self.ledger is not None:
            self.ledger.record(self.issue_id, reader.key, state, reply)
