"""The send loop: who gets this issue, one worker thread per connection, retries, the rate limit, and
keeping the ledger exact whatever stops the run (a refusal, Ctrl-C, SIGKILL).

Each worker owns one transport session and reuses it for message after message. A reader's row is
committed ``sending`` before its data can leave and settled as soon as the server answers; see
``ledger`` for why that makes a killed run safe to resume.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from types import MappingProxyType

from digestcli.config import Config, Workspace
from digestcli.delivery.ledger import (
    DEFERRED,
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    UNKNOWN,
    Ledger,
)
from digestcli.delivery.outbox import OutboxTransport
from digestcli.delivery.smtp import SmtpTransport
from digestcli.delivery.transport import (
    ConnectFailure,
    PermanentFailure,
    Session,
    TemporaryFailure,
    Transport,
    UncertainDelivery,
)
from digestcli.errors import DeliveryError, UsageError
from digestcli.message import Masthead, Message, Personalizer, load_secret
from digestcli.render import RenderedIssue
from digestcli.subscribers import (
    Subscriber,
    SubscriberList,
    SuppressionList,
    load_subscribers,
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
    every message and sends none. ``limit`` caps the messages this run sends. ``progress`` is
    called from worker threads (one at a time) as each reader's outcome is known.

    Raises InputError (the list, or a slot it cannot fill), ConfigError, SendStopped (a
    DeliveryError: the server cannot be used; the ledger is exact) or, on Ctrl-C, SendInterrupted.
    """
    started = time.monotonic()
    config = workspace.config
    readers = (
        load_subscribers(workspace.path(config.delivery.subscribers)) if subscribers is None else subscribers
    )
    transport = transport or transport_for(workspace)
    secret = load_secret(workspace.state)
    personalizer = Personalizer(
        rendered,
        masthead_for(config),
        secret,
        columns=readers.columns,
        subject_prefix=TEST_PREFIX if test_address else "",
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
        if test_address:
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

        with contextlib.ExitStack() as stack:
            if not dry_run:
                stack.enter_context(_send_lock(workspace.state))
            ledger = stack.enter_context(Ledger(workspace.state))
            if not dry_run:
                summary.recovered = ledger.recover()
            suppressions = SuppressionList(workspace.state).reasons()
            queue = _plan(
                readers,
                ledger.states(rendered.issue_id),
                suppressions,
                summary,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
            )
            if limit is not None and len(queue) > limit:
                summary.remaining = len(queue) - max(0, limit)
                queue = queue[: max(0, limit)]
            summary.planned = len(queue)
            if dry_run:
                for done, reader in enumerate(queue, 1):
                    personalizer.message(reader)
                    summary.built = done
                    if progress is not None:
                        progress(done, len(queue), "built")  # nothing is delivered: count what is built
                return summary
            keys = [reader.key for reader in readers.readers]
            ledger.plan(rendered.issue_id, keys, {k: suppressions[k] for k in keys if k in suppressions})
            run(ledger, personalizer.message).go(queue)
            return summary
    finally:
        summary.duration = time.monotonic() - started


def _plan(
    readers: SubscriberList,
    states: dict[str, str],
    suppressions: dict[str, str],
    summary: SendSummary,
    *,
    resend_unknown: bool,
    retry_failed: bool,
) -> list[Subscriber]:
    """The readers this run mails, in list order, counting the ones it leaves alone and why."""
    queue = []
    for reader in readers.readers:
        state = states.get(reader.key, PENDING)
        if state == SENDING:  # only seen in a dry run, which does not recover the ledger
            state = UNKNOWN
        if state == DELIVERED:
            summary.already_delivered += 1
        elif reader.key in suppressions:
            summary.suppressed += 1
        elif state == UNKNOWN and not resend_unknown:
            summary.held_unknown += 1
        elif state == FAILED and not retry_failed:
            summary.held_failed += 1
        else:
            queue.append(reader)
    return queue


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
    state_dir.mkdir(parents=True, exist_ok=True)
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


class _Run:
    """One run's workers and the state they share."""

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
    ):
        self.issue_id = issue_id
        self.transport = transport
        self.ledger = ledger
        self.build = build
        self.sender = sender
        self.summary = summary
        self.retries = retries
        self.max_connection_failures = max_connection_failures
        self.backoff = backoff
        self.progress = progress
        self.pace = _Pace(rate)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.queue: deque[Subscriber] = deque()
        self.sessions: set[Session] = set()
        self.connection_failures = 0  # in a row, over all workers
        self.error: BaseException | None = None
        self.running = 0  # workers not yet finished
        self.finished = threading.Event()

    # -- the main thread ---------------------------------------------------------------------------

    def go(self, readers: list[Subscriber]) -> None:
        self.queue.extend(readers)
        workers = [
            threading.Thread(target=self._work, name=f"digest-send-{n}", daemon=True)
            for n in range(min(self.transport.connections, len(readers)))
        ]
        self.running = len(workers)
        if not workers:
            self.finished.set()
        try:
            for worker in workers:
                worker.start()
            # Wait in short steps, so that Ctrl-C reaches this thread while the workers run. On an
            # Event, not Thread.join(): a join cut short by KeyboardInterrupt can leave the thread
            # looking finished while it still runs (Python 3.11), and we must wait for its ledger write.
            while not self.finished.wait(0.2):
                pass
        except KeyboardInterrupt:
            self._interrupt()
            self._finish()
            raise SendInterrupted(self.summary) from None
        self._finish()
        if isinstance(self.error, DeliveryError):
            raise SendStopped(self.error, self.summary) from None
        if self.error is not None:
            raise self.error

    def _interrupt(self) -> None:
        self.summary.interrupted = True
        self.stop.set()
        # Let messages already on the wire get their answer; then cut what is still waiting.
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: cut right away
            self.finished.wait(INTERRUPT_GRACE)
        with self.lock:
            sessions = list(self.sessions)
        for session in sessions:
            session.abort()
        while True:  # cut loose, the workers settle their last rows in moments; wait for that
            try:
                if self.finished.wait(0.2):
                    return
            except KeyboardInterrupt:
                continue

    def _finish(self) -> None:
        self.summary.remaining += len(self.queue)
        self.queue.clear()

    # -- the workers --------------------------------------------------------------------------------

    def _work(self) -> None:
        session: Session | None = None
        try:
            while not self.stop.is_set():
                try:
                    reader = self.queue.popleft()
                except IndexError:
                    break
                session = self._deliver(reader, session)
        except BaseException as exc:
            with self.lock:
                self.error = self.error or exc
            self.stop.set()
        finally:
            if session is not None:
                self._drop(session)
            with self.lock:
                self.running -= 1
                if not self.running:
                    self.finished.set()

    def _deliver(self, reader: Subscriber, session: Session | None) -> Session | None:
        """Try one reader until it has an outcome, or the run stops; returns the session to reuse."""
        attempts = 0
        try:
            message = self.build(reader)
        except BaseException:
            self._untouched(reader, attempts)
            raise
        with self.lock:
            self.summary.built += 1
        while True:
            if session is None or not session.usable:
                if session is not None:
                    self._drop(session)
                try:
                    session = self._connect()
                except BaseException:  # a refusal no retry can mend (no STARTTLS, login refused)
                    self._untouched(reader, attempts)
                    raise
                if session is None:  # the run is stopping; this reader was not tried
                    self._untouched(reader, attempts)
                    return None
            self.pace.wait(self.stop)
            if self.stop.is_set():
                self._untouched(reader, attempts)
                return session
            self._record_sending(reader)
            attempts += 1
            try:
                reply = session.send(self.sender, message)
            except TemporaryFailure as failure:
                if session.usable:
                    self._server_answered()  # a 4xx on a live connection is the server working
                else:
                    self._connection_failed(failure.reply)
                if self.stop.is_set() and self.summary.interrupted:
                    # Ctrl-C: it did not go out, and this run gave up on it, not the server.
                    self._settle(reader, PENDING, failure.reply, count=False)
                    with self.lock:
                        self.summary.remaining += 1
                    return session
                if attempts >= self.retries or self.stop.is_set():
                    self._settle(reader, DEFERRED, failure.reply)
                    return session
                # Not in flight while we wait: a kill now must not make it unknown.
                self._settle(reader, DEFERRED, failure.reply, count=False)
                self.stop.wait(self.backoff.delay(attempts))
                continue
            except PermanentFailure as failure:
                self._server_answered()
                self._settle(reader, FAILED, failure.reply)
            except UncertainDelivery as failure:
                self._settle(reader, UNKNOWN, failure.reply)
            except BaseException as exc:
                # A bug or an error we do not know the phase of: assume the data may be out.
                self._settle(reader, UNKNOWN, f"stopped by an internal error: {exc!r}")
                raise
            else:
                self._server_answered()
                self._settle(reader, DELIVERED, reply)
            return session

    def _connect(self) -> Session | None:
        while not self.stop.is_set():
            try:
                session = self.transport.open()
            except ConnectFailure as failure:
                failures = self._connection_failed(failure.reply)
                self.stop.wait(self.backoff.delay(failures))
                continue
            with self.lock:
                self.sessions.add(session)
            if self.stop.is_set():  # Ctrl-C came while connecting
                self._drop(session)
                return None
            return session
        return None

    def _drop(self, session: Session) -> None:
        with self.lock:
            self.sessions.discard(session)
        session.close()

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

    def _server_answered(self) -> None:
        with self.lock:
            self.connection_failures = 0

    def _record_sending(self, reader: Subscriber) -> None:
        if self.ledger is not None:
            self.ledger.sending(self.issue_id, reader.key)

    def _untouched(self, reader: Subscriber, attempts: int) -> None:
        """The run stopped before this reader's next try: leave the row for the next run."""
        with self.lock:
            if attempts:
                self.summary.deferred += 1  # tried and deferred already (the row says so)
            else:
                self.summary.remaining += 1

    def _settle(self, reader: Subscriber, state: str, reply: str, *, count: bool = True) -> None:
        if self.ledger is not None:
            self.ledger.record(self.issue_id, reader.key, state, reply)
        if not count:
            return
        with self.lock:
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
