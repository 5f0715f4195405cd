"""What a transport is to the send loop: something that opens sessions, each of which carries many
messages one after another; the ways a message can fail to arrive; and the Hangup that lets Ctrl-C
cut a connection from another thread.

The failure kinds are drawn along the one line that matters for never mailing anyone twice:
whether the message's data may have reached the server (only UncertainDelivery says it may).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Protocol

from digestcli.message import Message


class Session(Protocol):
    """One open connection (or the outbox), used by one thread (another cuts it through its Hangup).

    A session may also have ``announce(sender, message)``, told which message the send loop sends
    next so that its commands can go out early, and ``withdraw()``, told that the one announced is
    not next after all (``SmtpSession``: pipelining across messages)."""

    @property
    def usable(self) -> bool:
        """False once the connection is gone: the send loop opens a new session."""
        ...

    def send(self, sender: str, message: Message, before_data: Callable[[], None] | None = None) -> str:
        """Deliver one message; returns the server's final reply. Raises one of the failures below.

        ``before_data`` is called once the message is accepted for delivery and just before its
        data can leave (after the server accepted the recipient and DATA): from then on, and not
        before, it may arrive. A failure raised before the call means nothing went out."""
        ...

    def close(self) -> None:
        """End the session politely (QUIT); never raises."""
        ...


class Transport(Protocol):
    """Sessions to one destination. A transport may also have ``sync()``: the messages it has
    taken are made durable, which the ledger calls before it writes them delivered (the outbox's
    files; ``Ledger.sync_with``). A server's 250 needs none."""

    name: str  # for messages to the editor: "smtp.example.com:587", "outbox ./outbox"
    connections: int  # sessions the send loop runs in parallel

    def open(self, hangup: Hangup | None = None) -> Session:
        """A ready session (connected, TLS, logged in). Raises ConnectFailure when worth trying
        again, DeliveryError when it is not (no STARTTLS, login refused, bad certificate).
        ``hangup`` is shown every socket as soon as it exists, so that it can cut the connection
        from another thread while it is still being made."""
        ...


class Hangup:
    """A way to cut one worker's connection from another thread (Ctrl-C), also while it is still
    connecting or shaking hands, which no session object exists for yet.

    It keeps a duplicate of the connection's socket: shutting that down ends the connection under
    whatever wraps the original (TLS replaces the socket object during STARTTLS). Once cut, it stays
    cut: a new connection fails at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cut = False
        self._socket: socket.socket | None = None

    def watch(self, sock: socket.socket) -> None:
        """Called by a transport with each new socket, before it connects."""
        duplicate = sock.dup()
        with self._lock:
            previous, self._socket = self._socket, duplicate
            cut = self._cut
        if previous is not None:
            previous.close()
        if cut:
            self.release()
            raise ConnectFailure("not connecting: the send is stopping")

    def release(self) -> None:
        """The connection is closed: let go of the duplicate, which would keep it open."""
        with self._lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Failure(Exception):
    """A message or session that did not work out, with the server's reply (or what happened)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class TemporaryFailure(Failure):
    """The message did not go out, and may be tried again (4xx, connection lost before the data)."""


class PermanentFailure(Failure):
    """The server refused the message for good (5xx); trying again would get the same answer.

    ``personal``: the refusal is about this reader (no such mailbox, mailbox full, or a refusal
    that names the reader's address), not about the message or the sender.
    ``at_recipient``: it came at RCPT, naming the reader (even when its status is about policy).
    ``policy``: personal, but for a policy reason (5.7.x): a relay that denies every address says
    it the same way, so many in a row still stop the send.
    """

    def __init__(
        self, reply: str, *, personal: bool = False, at_recipient: bool = False, policy: bool = False
    ):
        super().__init__(reply)
        self.personal = personal
        self.at_recipient = at_recipient
        self.policy = policy


class Stopping(Exception):
    """Raised by a send's ``before_data`` when the run is stopping: the data must not leave."""


class SenderRefused(PermanentFailure):
    """The server refused the sender (5xx to MAIL FROM): no reader can be mailed until it is fixed."""


class StaleSession(TemporaryFailure):
    """A reused connection turned out closed (the server dropped it while idle) before any reply to
    the first command: nothing went out, and the reader is not to blame."""


class UncertainDelivery(Failure):
    """The data went out but no final reply came back: the message may or may not be delivered."""


class ConnectFailure(Failure):
    """A session could not be opened this time (refused, timed out, 421 greeting)."""
