"""The outbox transport, digest's default: every message lands in a local Maildir, no server needed.

The editor can open the outbox in a mail client (mutt -f outbox, Thunderbird's Maildir support) to
see exactly what each reader would get, with the envelope sender in a ``Return-Path`` field as a
mail server's local delivery writes it.

Each message is written as Maildir asks (into ``tmp/`` under a name no other file has, then moved
into ``new/``), so a reader of the folder never sees half a message, and one the send was killed
writing is never in ``new/``. The files hold local line ends (LF): the Personalizer builds them so
(``line_end``), rather than each message being converted here. They are not synced to the disk
one by one (``mailbox.Maildir.add`` does, which made the outbox slower than a mail server): like
the ledger's commits, a message written survives the process being killed, and only a power cut
can lose the last few.
"""

from __future__ import annotations

import contextlib
import itertools
import mailbox
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from digestcli.delivery.transport import Hangup, TemporaryFailure
from digestcli.errors import DeliveryError
from digestcli.message import Message

_MOST_CHUNKS = 512  # per writev; Linux takes up to 1,024 (IOV_MAX)


class OutboxTransport:
    connections = 1  # one writer; the disk is not the bottleneck a server round trip is
    line_end = "\n"  # Maildir files hold local line ends; CRLF is only how SMTP carries them

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"outbox {self.path}"

    def open(self, hangup: Hangup | None = None) -> OutboxSession:
        return OutboxSession(self.path)  # nothing to hang up: a disk write does not wait on anyone


class OutboxSession:
    usable = True
    _counter = itertools.count()  # with the time and the process id, a name no other file has

    def __init__(self, path: Path):
        try:
            mailbox.Maildir(path, factory=None, create=True)  # makes tmp/, new/ and cur/
            # Maildir() takes any existing path on trust; a file there would fail every message.
            if not all((path / sub).is_dir() for sub in ("tmp", "new", "cur")):
                raise NotADirectoryError(f"{path} is not a Maildir (no tmp/, new/ and cur/ in it)")
        except OSError as exc:
            raise DeliveryError(
                f"cannot make the outbox: {exc}",
                where=str(path),
                hint="check [delivery] outbox: it must be a folder digest can write, or not exist yet",
            ) from None
        self._tmp = f"{path / 'tmp'}{os.sep}"
        self._new = f"{path / 'new'}{os.sep}"
        # The host part of a Maildir name, with the two characters a name may not hold escaped.
        self._host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        self._pid = os.getpid()

    def send(self, sender: str, message: Message, before_data: Callable[[], None] | None = None) -> str:
        if before_data is not None:
            before_data()
        # A message made for SMTP (CRLF) is made local here; a Personalizer's for the outbox is.
        chunks = message.chunks if message.line_end == b"\n" else (message.data.replace(b"\r\n", b"\n"),)
        # The envelope sender, where a local delivery puts it (and bounces would go).
        chunks = (f"Return-Path: <{sender}>\n".encode(), *chunks)
        now = time.time()
        name = f"{int(now)}.M{int(now % 1 * 1e6)}P{self._pid}Q{next(self._counter)}.{self._host}"
        try:
            self._write(self._tmp + name, chunks)
            os.rename(self._tmp + name, self._new + name)
        except OSError as exc:
            # Written into tmp/ and moved into new/ last: a failure leaves no message.
            # Unusable: the send loop reopens the outbox, and a disk that stays full or read-only
            # ends the send like a server that stays unreachable.
            self.usable = False
            with contextlib.suppress(OSError):
                os.unlink(self._tmp + name)
            raise TemporaryFailure(f"cannot write to the outbox: {exc}") from None
        return f"saved as {name}"

    @staticmethod
    def _write(path: str, chunks: tuple[bytes, ...]) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            views = [memoryview(chunk) for chunk in chunks if chunk]
            while views:  # a short write (a full disk) raises on the next try, never passes unseen
                written = os.writev(fd, views[:_MOST_CHUNKS])
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if written:
                    views[0] = views[0][written:]
        finally:
            os.close(fd)

    def close(self) -> None:
        pass
