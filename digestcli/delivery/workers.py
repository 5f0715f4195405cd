"""The send's worker threads: one per connection, each taking readers from a shared queue, trying
each until it has an outcome, and keeping the ledger and the summary exact whatever stops them.

A reader is recorded ``sending`` only once the server has accepted the recipient and DATA (the
transport's ``before_data``), and settled once the server answers: a refusal at once, a delivery
with the next reader's ``sending`` (one append to the journal a message; ``Ledger.landed``), before
anything that may wait, or by a timer once it has waited ``Ledger.flush_stale``'s bound (a server
slow to answer the next message's commands); see ``state.ledger`` for why that makes a killed run
safe to resume.
The run stops when the server refuses the sender or the login (tried once per run: the first
connection is made alone, before the others), on Ctrl-C, or when ``judgement`` says the relay
cannot be used: connections failing past ``patience``, or the same refusal for reader after reader.
"""

from __future__ import annotations

import contextlib
import enum
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from digestcli.delivery.judgement import PATIENCE, SAME_REFUSALS, Judge, Verdict
from digestcli.delivery.summary import SendSummary
from digestcli.delivery.transport import (
    ConnectFailure,
    Hangup,
    PermanentFailure,
    SenderRefused,
    Session,
    StaleSession,
    Stopping,
    TemporaryFailure,
    Transport,
    UncertainDelivery,
)
from digestcli.errors import DeliveryError
from digestcli.message import Message
from digestcli.state import DEFERRED, DELIVERED, FAILED, PENDING, UNKNOWN
from digestcli.state.ledger import STALE, Ledger
from digestcli.subscribers import Subscriber

# How long Ctrl-C waits for messages already on the wire to be answered before cutting connections.
INTERRUPT_GRACE = 5.0
# (delivered so far, messages this run, the reader's state; or "retrying: <why>" when connections
# start failing). Called from the worker threads.
Progress = Callable[[int, int, str], None]
# A wait longer than this first writes the deliveries not yet in the ledger (see Ledger.landed):
# the ledger's own limit on how long one may wait unwritten.
LONG_WAIT = STALE
# Readers a worker takes from the queue at a time, at most, and builds the messages of in a row:
# built one by one between two server round trips, a message costs twice the CPU (the code and its
# data are no longer in the processor's caches). Fewer near the end of the list, so that the last
# readers are shared out among the connections.
BATCH = 16


def throttled(progress: Progress, every: float = 0.1) -> Progress:
    """``progress`` called for a delivery at most once every ``every`` seconds, and for the last
    message; any other state (a failure, "retrying: ...") at once. A progress bar redrawn more
    often looks no different, and at thousands of messages a second its every update would cost
    more than building a message."""
    last = 0.0

    def tell(delivered: int, planned: int, state: str) -> None:
        nonlocal last
        if state == DELIVERED and delivered < planned:
            now = time.monotonic()
            if now - last < every:
                return
            last = now
        progress(delivered, planned, state)

    return tell


@dataclass(frozen=True)
class Backoff:
    """Waits between tries: first, doubling each time, never more than most (seconds)."""

    first: float = 1.0
    most: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.most, self.first * 2.0 ** min(max(0, failures - 1), 32))


DEFAULT_BACKOFF = Backoff()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM, SIGHUP) stopped the run; the ledger is settled."""


def wait(event: threading.Event, timeout: float | None = None) -> bool:
    """Event.wait in short steps: Ctrl-C reaches the main thread between two, however it is sent
    (a SIGINT taken by another thread, or _thread.interrupt_main, wakes no one)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))):
        if deadline is not None and time.monotonic() >= deadline:
            return False
    return True


class _Pace:
    """The rate limit shared by all connections: at most ``rate`` messages a second."""

    def __init__(self, rate: float):
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return bool(self._interval)

    def wait(self, stop: threading.Event, before_long_wait: Callable[[], None]) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            if slot - now > LONG_WAIT:
                before_long_wait()
            stop.wait(slot - now)


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
        self.in_flight = False  # the reader's row is `sending`: its data may be on the wire
        self.connecting = False
        self.built = 0  # messages built by this worker
        # Readers taken from the queue after ``reader``, their messages built: their outcomes are
        # not counted yet either.
        self.taken: list[Subscriber] = []
        self.messages: deque[Message] = deque()


class Dispatch:
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
        envelope: Callable[[Subscriber], str] | None = None,
        retries: int,
        max_connection_failures: int,
        rate: float,
        backoff: Backoff,
        progress: Progress | None,
        patience: float = PATIENCE,
        interrupt_grace: float = INTERRUPT_GRACE,
        same_refusals: int = SAME_REFUSALS,
    ):
        self.issue_id = issue_id
        self.transport = transport
        self.ledger = ledger
        self.build = build
        self.sender = sender  # the envelope sender (MAIL FROM)...
        self.envelope = envelope  # ...or each reader's own (VERP), when given
        self.summary = summary
        self.retries = retries
        self.interrupt_grace = interrupt_grace
        self.backoff = backoff
        self.progress = progress
        self.pace = _Pace(rate)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.queue: Iterator[Subscriber] = iter(())
        self.workers: list[_Worker] = []
        self.judge = Judge(
            transport.name,
            max_connection_failures=max_connection_failures,
            patience=patience,
            same_refusals=same_refusals,
        )
        self.error: BaseException | None = None
        self.running = 0  # workers not yet finished
        self.flying = 0  # workers with a row `sending`
        self.finished = threading.Event()
        self.quiet = threading.Event()  # no row `sending`
        self.quiet.set()
        self.closed = False
        # Each reader's outcome in this run but delivery, once known (address, state, reply), and
        # the deliveries counted: the summary is made from these when the run ends, never patched
        # along the way. (A delivery is final; other outcomes may change: see _refused.)
        self.outcomes: dict[str, tuple[str, str, str]] = {}
        self.delivered = 0
        # The first connection is made alone: a refused login is then tried once, not once a worker.
        self.first_open = threading.Lock()
        self.opened = threading.Event()
        self.telling = threading.Lock()  # the progress callback is called by one worker at a time
        self.ended = threading.Event()  # the run is closed: the ledger's timer stops
        self.timer_done = threading.Event()  # ...and has (its last write failed or not)
        self.timer_done.set()  # no timer yet

    # -- the main thread ---------------------------------------------------------------------------

    def go(self, readers: Iterable[Subscriber]) -> None:
        """Send to ``readers``, taken one at a time as connections are free (a list, or a stream
        of any length); returns when every one has an outcome or the run stopped.

        Raises Interrupted on Ctrl-C (the ledger settled), the DeliveryError that stopped the run,
        or the exception of a bug in a worker."""
        connections = self.transport.connections
        self.queue = iter(readers)
        self.left = operator.length_hint(readers)  # readers not yet taken (0: not known)
        self.workers = [
            _Worker() for _ in range(min(connections, operator.length_hint(readers, connections)))
        ]
        threads = [
            threading.Thread(target=self._work, args=(worker,), name=f"digest-send-{n}", daemon=True)
            for n, worker in enumerate(self.workers)
        ]
        self.running = len(threads)
        if not threads:
            self.finished.set()
        if self.ledger is not None:
            # A transport whose messages must be on the disk before the ledger says delivered.
            self.ledger.sync_with(getattr(self.transport, "sync", None))
            threads.append(
                threading.Thread(target=self._keep_written, name="digest-send-ledger", daemon=True)
            )
            self.timer_done.clear()
        try:
            for thread in threads:
                thread.start()
            # Wait in short steps, so that Ctrl-C reaches this thread while the workers run (see
            # wait). On an Event, not Thread.join(): a join cut short by KeyboardInterrupt can leave
            # the thread looking finished while it still runs (Python 3.11).
            while not self.finished.wait(0.1):
                if self.stop.is_set():  # an error stops the run
                    self._wind_down()
                    break
        except KeyboardInterrupt:
            try:
                self._interrupt()
            finally:  # also when settling the rows in flight fails (a disk that fails its sync)
                self._close_counted()
            raise Interrupted() from None
        self._close_counted()
        if self.error is not None:
            raise self.error

    def _close_counted(self) -> None:
        """``_close``, once more if Ctrl-C cuts it short: every reader has an outcome; count them
        (once) and say so."""
        try:
            self._close()
        except KeyboardInterrupt:
            self.summary.interrupted = True
            with contextlib.suppress(KeyboardInterrupt):
                self._close()
            raise Interrupted() from None

    def _keep_written(self) -> None:
        """The ledger's timer: a delivery waits for the next ``sending`` no longer than its bound,
        however long the server takes to answer the next message's commands."""
        assert self.ledger is not None
        try:
            while not self.ended.wait(LONG_WAIT):
                self.ledger.flush_stale(LONG_WAIT)
        except BaseException as exc:
            self._fail(exc)  # the ledger cannot be written: the run stops, as a worker's would
        finally:
            self.timer_done.set()

    def _wind_down(self) -> None:
        """After an error: messages on the wire get their answer; connections being made are cut."""
        with self.lock:
            connecting = [worker for worker in self.workers if worker.connecting]
        for worker in connecting:
            worker.hangup.cut()
        # Messages on the wire get their answer (the data timeout bounds each); a worker that
        # died without settling its row cannot hold this up: finished is set all the same.
        while not self.quiet.is_set() and not self.finished.is_set():
            wait(self.quiet, 0.5)
        wait(self.finished, 2.0)  # the rest end at once (QUIT); no need to hold the editor for it

    def _interrupt(self) -> None:
        self.summary.interrupted = True
        with self.lock:
            self.stop.set()
        try:
            # Let messages already on the wire get their answer; then cut every connection, also
            # those still being made, and wait for the rows in flight to be settled. Workers with
            # no row in flight need no waiting for: the summary counts their readers (_close).
            wait(self.quiet, self.interrupt_grace)
            for worker in self.workers:
                worker.hangup.cut()
            wait(self.quiet)
            wait(self.finished, 1.0)  # a worker settling its last reply does so before the count
        except KeyboardInterrupt:
            # A second Ctrl-C: go now, but leave no row `sending`. Cut connections make the
            # workers settle their rows at once; those that have not within a second become
            # unknown here (a worker that learns the outcome later records it instead).
            for worker in self.workers:
                worker.hangup.cut()
            with contextlib.suppress(KeyboardInterrupt):
                wait(self.quiet, 1.0)
            self._settle_stragglers("in flight when the send was interrupted")

    def _settle_stragglers(self, reply: str) -> None:
        with self.lock:
            flying = [w.reader.key for w in self.workers if w.in_flight and w.reader is not None]
        if self.ledger is not None and flying:
            self.ledger.settle_in_flight(self.issue_id, flying, reply)

    def _close(self) -> None:
        """The run is over: every reader a worker still holds, and the queue, gets its outcome, the
        summary is counted from the outcomes, and the ledger has every delivery. Again is harmless:
        the count is made once (the ledger's flush is tried again)."""
        self.ended.set()
        # A write the timer has begun ends first: if it fails, the run's error says why, and the
        # deliveries it could not write are not counted delivered (_uncount_unsynced).
        wait(self.timer_done, 10.0)
        with self.lock:
            if not self.closed:
                untaken = operator.length_hint(self.queue, -1)  # not reached: pending
                if untaken < 0:
                    untaken = sum(1 for _ in self.queue)
                self.queue = iter(())
                for worker in self.workers:
                    self._let_go(worker)
                self.summary.count(self.outcomes.values())
                self.summary.delivered += self.delivered
                self.summary.remaining += untaken
                self.summary.built += sum(worker.built for worker in self.workers)
                self.closed = True
        # After `closed`: a worker that learns an outcome from now on writes it itself (_settle).
        if self.ledger is not None:
            try:
                self.ledger.flush()
            finally:
                self._uncount_unsynced(self.ledger)

    def _uncount_unsynced(self, ledger: Ledger) -> None:
        """Deliveries a failed sync kept out of the ledger are not known to be on the disk: the
        summary counts them unknown, as the ledger will (their rows stay `sending`)."""
        lost = [address for issue_id, address in ledger.unsynced() if issue_id == self.issue_id]
        if lost:
            self.summary.delivered -= len(lost)
            reason = "written to the outbox, but the sync of its disk failed"
            self.summary.count((address, UNKNOWN, reason) for address in lost)

    def _flush(self) -> None:
        """The deliveries not yet in the ledger are written now: something may wait a while."""
        if self.ledger is not None:
            self.ledger.flush()

    def _let_go(self, worker: _Worker) -> None:
        """The outcome of the readers a worker holds without one, as their rows say (lock held)."""
        for one in worker.taken:  # not tried
            self.outcomes[one.key] = (one.email, PENDING, "")
        worker.taken = []
        reader, worker.reader = worker.reader, None
        if reader is None:
            return
        if worker.in_flight:
            outcome = (reader.email, UNKNOWN, "in flight when the send was interrupted")
        elif worker.deferred:
            outcome = (reader.email, DEFERRED, "")  # tried and deferred already (the row says so)
        else:
            outcome = (reader.email, PENDING, "")
        self.outcomes[reader.key] = outcome

    # -- the workers --------------------------------------------------------------------------------

    def _work(self, worker: _Worker) -> None:
        try:
            while True:
                with self.lock:  # once a message: the next reader taken, or the next few
                    if self.stop.is_set():
                        break
                    todo = None
                    if worker.taken:
                        reader = worker.reader = worker.taken.pop(0)
                        worker.deferred = False
                    else:
                        worker.taken = self._take()
                        todo = list(worker.taken)
                if todo is None:
                    self._deliver(worker, reader, worker.messages.popleft())
                elif not todo:
                    break  # no one left
                else:  # their messages built in a row (see BATCH); taken one by one above
                    worker.messages = deque(map(self.build, todo))
                    worker.built += len(todo)
        except BaseException as exc:
            self._fail(exc)
        finally:
            if worker.in_flight:  # the worker died with its data perhaps out: unknown, not sending
                with contextlib.suppress(Exception):
                    if self.ledger is not None and worker.reader is not None:
                        self.ledger.settle_in_flight(self.issue_id, [worker.reader.key], "stopped mid-send")
                self._landed(worker)
            self._leave(worker)
            session, worker.session = worker.session, None
            if session is not None:
                session.close()
            worker.hangup.release()
            with self.lock:
                self.running -= 1
                if not self.running:
                    self.finished.set()

    def _take(self) -> list[Subscriber]:
        """The next readers for a worker (lock held): up to BATCH, fewer as the list runs out."""
        some = max(1, min(BATCH, self.left // (8 * len(self.workers))))
        taken = list(islice(self.queue, some))
        self.left = max(0, self.left - len(taken))
        return taken

    def _deliver(self, worker: _Worker, reader: Subscriber, message: Message) -> None:
        """Try one reader until it has an outcome, or the run stops (then ``_work`` leaves it)."""
        sender = self.sender if self.envelope is None else self.envelope(reader)
        attempts = 0
        forgive_stale = True
        while True:
            session = worker.session
            if session is None or not session.usable:
                session = self._reconnect(worker)
                if session is None:  # the run is stopping; this reader was not tried (again)
                    return
            self.pace.wait(self.stop, self._flush)
            if self.stop.is_set():
                return
            attempts += 1
            outcome = self._attempt(
                worker, reader, session, message, attempts, sender=sender, forgive_stale=forgive_stale
            )
            if outcome is _Outcome.DONE:
                return
            if outcome is _Outcome.AGAIN:
                attempts -= 1
                forgive_stale = False
                continue
            withdraw = getattr(session, "withdraw", None)
            if withdraw is not None:
                withdraw()  # the message announced after this one is not next after all
            self._flush()
            self.stop.wait(self.backoff.delay(attempts))

    def _take_off(self, worker: _Worker, reader: Subscriber) -> None:
        """``before_data``: the data is about to leave. Record it so, unless the run is stopping.

        In flight only once ``sending`` is recorded (a ledger that fails here leaves the reader
        pending: nothing went out); and a stop that came meanwhile still keeps the data in."""
        if self.stop.is_set():
            raise Stopping()
        if self.ledger is not None:
            self.ledger.sending(self.issue_id, reader.key)
        with self.lock:
            worker.in_flight = True
            self.flying += 1
            self.quiet.clear()
            if self.stop.is_set():
                raise Stopping()

    def _landed(self, worker: _Worker) -> None:
        with self.lock:
            if worker.in_flight:
                worker.in_flight = False
                self.flying -= 1
                if not self.flying:
                    self.quiet.set()

    def _attempt(
        self,
        worker: _Worker,
        reader: Subscriber,
        session: Session,
        message: Message,
        attempts: int,
        *,
        sender: str,
        forgive_stale: bool,
    ) -> _Outcome:
        """One try of one reader: settle what the server said."""
        self._announce(worker, session)
        try:
            reply = session.send(sender, message, lambda: self._take_off(worker, reader))
        except Stopping:
            # Accepted for delivery, and let go before the data: nothing went out.
            self._settle(worker, reader, PENDING, "the send stopped before its data was sent", final=False)
            return _Outcome.DONE
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
                    " no reader was marked failed",
                ),
                rerun_helps=False,
            )
        except PermanentFailure as failure:
            self._server_answered()
            self._settle(worker, reader, FAILED, failure.reply)
            if not failure.personal or failure.policy:  # a reader's own mailbox says nothing of the run
                self._refused(reader, failure)
        except UncertainDelivery as failure:
            self._settle(worker, reader, UNKNOWN, failure.reply)
            # A relay that keeps losing the reply to the data is broken, even if it takes the data,
            # and each loss is a reader who may get the issue twice: no patience for that.
            if not self.stop.is_set():
                self._connection_failed(failure.reply, lost_reply=True)
        except BaseException as exc:
            # A bug, or an error we do not know the phase of: the data may be out if it was about to.
            if worker.in_flight:
                self._settle(worker, reader, UNKNOWN, f"stopped by an internal error: {exc!r}")
            else:
                self._settle(worker, reader, PENDING, f"stopped by an internal error: {exc!r}", final=False)
            raise
        else:
            self._delivered(worker, reader, reply)
        return _Outcome.DONE

    def _announce(self, worker: _Worker, session: Session) -> None:
        """Tell a session that can use it (SMTP with PIPELINING) which message comes after this
        one: its commands go out with this one's data, a round trip saved. Not under a rate limit
        (the server would wait for its data for the next slot) nor when the run is stopping."""
        announce = getattr(session, "announce", None)
        taken = worker.taken  # replaced, never changed, by other threads (_let_go)
        if announce is None or not worker.messages or not taken or self.pace.limited or self.stop.is_set():
            return
        coming = taken[0]
        announce(self.sender if self.envelope is None else self.envelope(coming), worker.messages[0])

    def _delivered(self, worker: _Worker, reader: Subscriber, reply: str) -> None:
        """``_settle`` of a delivery, the outcome of nearly every message, under the lock once."""
        if not worker.in_flight or self.ledger is None:  # a transport that skipped before_data
            self._server_answered(delivered=True)
            self._settle(worker, reader, DELIVERED, reply)
            return
        with self.lock:
            self.judge.answered(delivered=True)
            worker.deferred = False
            counted = not self.closed and worker.reader is reader
            if counted:
                worker.reader = None
                self.delivered += 1
            if not self.closed:  # else _close has flushed the ledger: write it now (below)
                # With the next `sending`, or when the run closes (see Ledger.landed).
                self.ledger.landed(self.issue_id, reader.key, reply)
            worker.in_flight = False
            self.flying -= 1
            if not self.flying:
                self.quiet.set()
            delivered, planned, closed = self.delivered, self.summary.planned, self.closed
        if closed:
            self.ledger.record(self.issue_id, reader.key, DELIVERED, reply)
        if counted:
            self._tell(delivered, planned, DELIVERED)

    def _temporary(
        self, worker: _Worker, reader: Subscriber, failure: TemporaryFailure, attempts: int, session: Session
    ) -> _Outcome:
        """Settle a temporary failure: the reader is done for this run, or to be tried again."""
        if session.usable:
            self._server_answered()  # a 4xx on a live connection is the server working
            self._throttled(reader, failure.reply)
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
        self._flush()  # a connection can take long to make
        while not self.stop.is_set():
            failure: ConnectFailure | None = None
            with self.lock:
                worker.connecting = True
            try:
                if self.opened.is_set():
                    worker.session = self._open(worker)
                else:
                    with self.first_open:  # the others wait here until one connection worked
                        if self.stop.is_set():
                            break
                        # Stopped (below) before the lock is let go: no one waiting on it tries.
                        worker.session = self._open(worker)
                        self.opened.set()
                return worker.session
            except ConnectFailure as caught:
                failure = caught
            except DeliveryError:
                break
            finally:
                with self.lock:
                    worker.connecting = False
            if self.stop.is_set():
                break
            failures = self._connection_failed(failure.reply)
            self._flush()
            self.stop.wait(self.backoff.delay(failures))
        return None

    def _open(self, worker: _Worker) -> Session:
        try:
            return self.transport.open(worker.hangup)
        except ConnectFailure:
            raise
        except DeliveryError as error:
            self._fail(error, rerun_helps=False)  # no STARTTLS, a refused login, a bad certificate
            raise

    def _fail(self, error: BaseException, *, rerun_helps: bool = True) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
                self.summary.rerun_helps = rerun_helps
            self.stop.set()

    def _connection_failed(self, reply: str, *, lost_reply: bool = False) -> int:
        """Count a failed connection (or a lost reply) with the judge; the failures in a row."""
        with self.lock:
            failures, verdict = self.judge.connection_failed(reply, lost_reply=lost_reply)
            delivered, planned = self.delivered, self.summary.planned
            if verdict is not None:
                self._stop_for(verdict)
        if failures == 1 and not self.stop.is_set():
            self._tell(delivered, planned, f"retrying: {reply}")  # an outage begins: say so
        return failures

    def _server_answered(self, *, delivered: bool = False) -> None:
        with self.lock:
            self.judge.answered(delivered=delivered)

    def _throttled(self, reader: Subscriber, reply: str) -> None:
        with self.lock:
            verdict = self.judge.temporary(reader, reply)
            if verdict is not None:
                self._stop_for(verdict)

    def _refused(self, reader: Subscriber, failure: PermanentFailure) -> None:
        """A 5xx not about the reader's mailbox: the judge may say the run must stop, and which
        readers are not to blame after all (pending again, here and in the ledger)."""
        with self.lock:
            verdict = self.judge.permanent(
                reader,
                failure.reply,
                named=failure.personal,
                at_recipient=failure.at_recipient,
                stopped=self.error is not None,
            )
            if verdict is None:
                return
            self._stop_for(verdict)
            held = verdict.held
            if not self.closed:
                for one in held:  # not about them after all: pending again
                    self.outcomes[one.key] = (one.email, PENDING, "")
        if self.ledger is not None:
            for one in held:
                self.ledger.record(self.issue_id, one.key, PENDING, f"held back after: {failure.reply}")

    def _stop_for(self, verdict: Verdict) -> None:
        """The judge says stop (lock held): the first verdict is the run's error."""
        if self.error is None:
            self.error = verdict.error
            self.summary.rerun_helps = verdict.rerun_helps
            if verdict.retry_after is not None:
                self.summary.retry_after = verdict.retry_after
        self.stop.set()

    def _leave(self, worker: _Worker) -> None:
        """The worker stops before its reader's next try: count the reader as the row says."""
        with self.lock:
            if self.closed:
                worker.reader, worker.taken = None, []
                return
            self._let_go(worker)

    def _settle(
        self, worker: _Worker, reader: Subscriber, state: str, reply: str, *, final: bool = True
    ) -> None:
        """Record an outcome; ``final``: the reader is done for this run (counted, let go of)."""
        counted = None
        try:
            with self.lock:
                worker.deferred = state == DEFERRED
                if final and not self.closed and worker.reader is reader:
                    worker.reader = None
                    if state == DELIVERED:
                        self.delivered += 1
                    else:
                        self.outcomes[reader.key] = (reader.email, state, reply)
                    counted = (self.delivered, self.summary.planned)
                # A delivery goes to the ledger with the next `sending`, or when the run closes
                # (under the lock, so that _close cannot have written the others already).
                later = state == DELIVERED and worker.in_flight and not self.closed
                if later and self.ledger is not None:
                    self.ledger.landed(self.issue_id, reader.key, reply)
            # After the count: if the ledger cannot take it, the summary still says what the server did.
            if self.ledger is not None and not later:
                self.ledger.record(self.issue_id, reader.key, state, reply, counted=worker.in_flight)
        finally:
            self._landed(worker)
        if counted is not None:
            self._tell(*counted, state)

    def _tell(self, delivered: int, planned: int, state: str) -> None:
        """The progress callback, which must not stop a send: one that fails is not called again."""
        progress = self.progress
        if progress is None:
            return
        try:
            with self.telling:  # one call at a time, as the callback was promised
                progress(delivered, planned, state)
        except Exception:
            self.progress = None
