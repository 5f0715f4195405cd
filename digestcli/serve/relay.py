"""Passing unsubscribes on by mail, for a ``digest serve`` that runs apart from the sending
workspace (an always-on server, while the editor sends from a laptop): each verified request is
queued in this server's state, then mailed to ``[newsletter] unsubscribe_mailto`` through the
``[smtp]`` relay, where ``digest bounces`` reads it, so the mailbox stays the one channel the
sending workspace reads.

The mail carries the reader's own token in ``X-Digest-Unsubscribe``: ``digest bounces`` opens it
with the workspace secret, so a mail made by anyone else names no reader, and whoever holds a
reader's token could have pressed the reader's button anyway. Its Message-ID is made from the
token and the time of the request: one request mailed twice (a lost reply from the relay) is
recognised as one, and a new request from a reader put back on the list since is a new mail.
Asking again while a request waits in the queue changes nothing; asking again after it went out
queues it anew (``digest bounces`` says "already suppressed" when nothing changed meanwhile).

Why a queue rather than mailing while the reader waits: the page is answered as soon as the
request is written to the queue (SQLite, committed), which is quick whatever the relay does, and
true: it is recorded, and it goes out when the relay is back (tried again after 30 s, then less
and less often, up to every 30 minutes, and at the next start). Answering 503 instead would
leave it to a mail provider's one-click POST, which is not known to retry, and to a reader who
would rather press "report spam".
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from digestcli.config import Config, check_unsubscribe_mailto, split_address
from digestcli.delivery.transport import Failure, Transport
from digestcli.errors import DigestError
from digestcli.message import Message
from digestcli.state import address_key, state_database

RELAY_DB = "unsubscribe-relay.sqlite3"
UNSUBSCRIBE_HEADER = "X-Digest-Unsubscribe"
RETRY_DELAYS = (30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)  # seconds, after each failed try
_BATCH = 50
_SCHEMA = """CREATE TABLE IF NOT EXISTS relay (reader TEXT PRIMARY KEY, token TEXT NOT NULL,
    how TEXT NOT NULL, asked REAL NOT NULL, attempts INTEGER NOT NULL, next_try REAL NOT NULL,
    sent REAL, last_error TEXT NOT NULL);"""


def unsubscribe_mail(token: str, sender: str, to: str, *, asked: float, how: str) -> bytes:
    """The mail that passes one reader's request on: To the unsubscribe address, subject
    "unsubscribe", the token in ``X-Digest-Unsubscribe``; no address of the reader in it."""
    from email import policy
    from email.message import EmailMessage
    from email.utils import formataddr, formatdate

    name, address = split_address(sender, "newsletter.from")
    domain = address.rpartition("@")[2]
    message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))  # a token is one long word
    message["From"] = formataddr((name, address))
    message["To"] = to
    message["Subject"] = "unsubscribe"
    message["Date"] = formatdate(asked, usegmt=True)
    # The request's time in it: a reader put back and unsubscribing again makes a new mail.
    request = hashlib.sha256(f"{token}\0{asked!r}".encode()).hexdigest()[:32]
    when = time.strftime("%Y%m%dT%H%M%S", time.gmtime(asked))
    message["Message-ID"] = f"<unsubscribe.{when}.{request}@{domain}>"
    message[UNSUBSCRIBE_HEADER] = token
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation notice is sent back to it
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(asked))
    message.set_content(
        f"A reader unsubscribed on the newsletter's unsubscribe page ({how}) at {stamp}.\n\n"
        f"`digest bounces` reads the token in the {UNSUBSCRIBE_HEADER} header and adds the reader\n"
        "to the suppression list of the workspace that sends the newsletter.\n"
    )
    return message.as_bytes()


class UnsubscribeRelay:
    """A ``Recorder`` that queues each request in the state and mails it on from a thread of its
    own (``start``/``stop``); ``deliver_due`` is one pass of that thread, for tests and tools."""

    def __init__(
        self,
        config: Config,
        state_dir: Path,
        *,
        transport: Transport | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        log: Callable[[str], None] = lambda text: None,
    ) -> None:
        news = config.newsletter
        self.to = check_unsubscribe_mailto(news.unsubscribe_mailto)
        if not self.to:  # load_config refuses this already; a Config made in code may not be checked
            raise DigestError(
                "unsubscribes are to be mailed on, and newsletter.unsubscribe_mailto is empty",
                hint='set newsletter.unsubscribe_mailto, or [serve] unsubscribe = "direct"',
            )
        self.sender_header = news.sender
        self.sender = split_address(news.sender, "newsletter.from")[1]
        if transport is None:
            from digestcli.delivery.smtp import SmtpTransport

            transport = SmtpTransport.from_config(config)
        self.transport = transport
        self.path = Path(state_dir) / RELAY_DB
        self.retry_delays = tuple(retry_delays) or RETRY_DELAYS
        self._log = log
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _database(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return state_database(self.path, "unsubscribe relay queue", _SCHEMA, 10.0)

    def describe(self) -> str:
        waiting = self.waiting()
        later = f"; {waiting} from before still to go" if waiting else ""
        return f"mailed to {self.to} through {self.transport.name}, for `digest bounces`{later}"

    def record(self, address: str, token: str, how: str) -> None:
        """Queue the request and wake the thread: once while it waits (asking again changes
        nothing), anew once it has gone out (the reader may have been put back since)."""
        with self._database() as db, db:
            db.execute(
                "INSERT INTO relay VALUES (?, ?, ?, ?, 0, 0, NULL, '') ON CONFLICT (reader) DO UPDATE SET"
                " token = excluded.token, how = excluded.how, asked = excluded.asked, attempts = 0,"
                " next_try = 0, sent = NULL, last_error = '' WHERE relay.sent IS NOT NULL",
                (address_key(address), token, how, time.time()),
            )
        self._wake.set()

    def waiting(self) -> int:
        """Requests queued and not yet through to the relay."""
        if not self.path.exists():
            return 0
        with self._database() as db:
            return int(db.execute("SELECT count(*) FROM relay WHERE sent IS NULL").fetchone()[0])

    def deliver_due(self) -> int:
        """Mail every queued request whose time has come, on one connection; returns how many
        went through. A failure puts the rest off by the next retry delay, never drops one."""
        with self._database() as db:
            rows = db.execute(
                "SELECT reader, token, how, asked, attempts FROM relay"
                " WHERE sent IS NULL AND next_try <= ? ORDER BY asked LIMIT ?",
                (time.time(), _BATCH),
            ).fetchall()
        if not rows:
            return 0
        try:
            session = self.transport.open()
        except (Failure, DigestError) as exc:
            self._put_off(rows, str(exc))
            return 0
        through = 0
        try:
            for number, (reader, token, how, asked, _) in enumerate(rows):
                data = unsubscribe_mail(token, self.sender_header, self.to, asked=asked, how=how)
                try:
                    session.send(self.sender, Message(self.to, data))
                except (Failure, DigestError) as exc:
                    self._put_off(rows[number:], str(exc))
                    break
                with self._database() as db, db:
                    db.execute(
                        "UPDATE relay SET sent = ?, last_error = '' WHERE reader = ?", (time.time(), reader)
                    )
                through += 1
        finally:
            session.close()
        if through:
            self._log(f"unsubscribe relay: {through} passed on to {self.to} ({self.waiting()} waiting)")
        return through

    def _put_off(self, rows: Sequence[tuple[str, str, str, float, int]], reason: str) -> None:
        now = time.time()
        delay = self.retry_delays[0]
        with self._database() as db, db:
            for reader, _, _, _, attempts in rows:
                delay = self.retry_delays[min(attempts, len(self.retry_delays) - 1)]
                db.execute(
                    "UPDATE relay SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE reader = ?",
                    (now + delay, reason, reader),
                )
        self._log(
            f"unsubscribe relay: {self.transport.name}: {reason}; {len(rows)} kept in the queue,"
            f" next try in {delay:g} s"
        )

    def _pause(self) -> float:
        """Seconds until the next queued request is due (at most a minute)."""
        with self._database() as db:
            row = db.execute("SELECT min(next_try) FROM relay WHERE sent IS NULL").fetchone()
        if row[0] is None:
            return 60.0
        return min(60.0, max(0.05, float(row[0]) - time.time()))

    def start(self) -> None:
        """Mail what is queued (also what an earlier run left), and then each new request."""
        if self._thread is None:
            # The queue is made here, before any request: two first connections at once (the
            # thread's and a request's) could each try to switch a new file to WAL, and one of
            # them be refused. And a restart is when a mended relay setting is tried: at once.
            with self._database() as db, db:
                db.execute("UPDATE relay SET next_try = 0 WHERE sent IS NULL")
            self._thread = threading.Thread(target=self._run, name="unsubscribe relay", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (it ends the mail in hand first); what is left stays queued."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        pause = 0.0
        while not self._stopping.is_set():
            self._wake.wait(pause)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.deliver_due()
                pause = self._pause()
            except DigestError as exc:  # the queue itself (locked, unwritable): said, and tried again
                self._log(f"unsubscribe relay: {exc}")
                pause = self.retry_delays[0]
            except Exception as exc:  # a bug must not end the thread: the queue would never move
                self._log(f"unsubscribe relay: internal error: {type(exc).__name__}: {exc}")
                pause = self.retry_delays[-1]
