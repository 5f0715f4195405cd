"""The outbox transport, digest's default: every message lands in a local Maildir, no server needed.

The editor can open the outbox in a mail client (mutt -f outbox, Thunderbird's Maildir support) to
see exactly what each reader would get.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from pathlib import Path

from digestcli.delivery.transport import Hangup, TemporaryFailure
from digestcli.errors import DeliveryError
from digestcli.message import Message


class OutboxTransport:
    connections = 1  # one writer; the disk is not the bottleneck a server round trip is

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"outbox {self.path}"

    def open(self, hangup: Hangup | None = None) -> OutboxSession:
        return OutboxSession(self.path)  # nothing to hang up: a disk write does not wait on anyone


class OutboxSession:
    usable = True

    def __init__(self, path: Path):
        try:
            self._maildir = mailbox.Maildir(path, factory=None, create=True)
            # Maildir() takes any existing path on trust; a file there would fail every message.
            if not all((path / sub).is_dir() for sub in ("tmp", "new", "cur")):
                raise NotADirectoryError(f"{path} is not a Maildir (no tmp/, new/ and cur/ in it)")
        except OSError as exc:
            raise DeliveryError(
                f"cannot make the outbox: {exc}",
                where=str(path),
                hint="check [delivery] outbox: it must be a folder digest can write, or not exist yet",
            ) from None

    def send(self, sender: str, message: Message, before_data: Callable[[], None] | None = None) -> str:
        if before_data is not None:
            before_data()
        # Maildir files hold local line ends; CRLF is only how SMTP carries them.
        try:
            key = self._maildir.add(message.data.replace(b"\r\n", b"\n"))
        except OSError as exc:
            # Maildir.add writes into tmp/ and links into new/ last: a failure leaves no message.
            # Unusable: the send loop reopens the outbox, and a disk that stays full or read-only
            # ends the send like a server that stays unreachable.
            self.usable = False
            raise TemporaryFailure(f"cannot write to the outbox: {exc}") from None
        return f"saved as {key}"

    def close(self) -> None:
        pass
