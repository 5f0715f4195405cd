"""What a transport is to the send loop: something that opens sessions, each of which carries many
messages one after another, and the three ways a message can fail to arrive.

The failure kinds are drawn along the one line that matters for never mailing anyone twice:
whether the message's data may have reached the server.
"""

from __future__ import annotations

from typing import Protocol

from digestcli.message import Message


class Session(Protocol):
    """One open connection (or the outbox). Used by a single thread, except ``abort``."""

    @property
    def usable(self) -> bool:
        """False once the connection is gone: the send loop opens a new session."""
        ...

    def send(self, sender: str, message: Message) -> str:
        """Deliver one message; returns the server's final reply. Raises one of the failures below."""
        ...

    def close(self) -> None:
        """End the session politely (QUIT); never raises."""
        ...

    def abort(self) -> None:
        """Cut the connection from another thread, to stop a send that is waiting on the network."""
        ...


class Transport(Protocol):
    name: str  # for messages to the editor: "smtp.example.com:587", "outbox ./outbox"
    connections: int  # sessions the send loop runs in parallel

    def open(self) -> Session:
        """A ready session (connected, TLS, logged in). Raises ConnectFailure when worth trying
        again, DeliveryError when it is not (no STARTTLS, login refused, bad certificate)."""
        ...


class Failure(Exception):
    """A message or session that did not work out, with the server's reply (or what happened)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


class TemporaryFailure(Failure):
    """The message did not go out, and may be tried again (4xx, connection lost before the data)."""


class PermanentFailure(Failure):
    """The server refused the message for good (5xx); trying again would get the same answer."""


class UncertainDelivery(Failure):
    """The data went out but no final reply came back: the message may or may not be delivered."""


class ConnectFailure(Failure):
    """A session could not be opened this time (refused, timed out, 421 greeting)."""
