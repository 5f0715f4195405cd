"""The outbox transport, digest's default: every message lands in a local Maildir, no server needed.

The editor can open the outbox in a mail client (mutt -f outbox, Thunderbird's Maildir support) to
see exactly what each reader would get, with the envelope sender in a ``Return-Path`` field as a
mail server's local delivery writes it.

Each message is written as Maildir asks (into ``tmp/`` under a name no other file has, then moved
into ``new/``), so a reader of the folder never sees half a message, and one the send was killed
writing is never in ``new/``. The files hold local line ends (LF): the Personalizer builds them so
(``line_end``), rather than each message being converted here. They are not synced to the disk
one by one as they are written (``mailbox.Maildir.add`` does, which made the outbox slower than a
mail server) but in groups, by ``sync()``, which the ledger calls before it writes their deliveries
(``Ledger.sync_with``): the ledger never says delivered for a message a power cut could still take.
On Linux 5.8 and later, with the outbox on a local disk's filesystem, a group is synced by one
``syncfs`` of it (a tenth of the time of an fsync per file), through one descriptor of the outbox
opened before its first message is written: syncfs reports a failed write-back that happened since
that descriptor was opened, as fsync does for its file. Elsewhere (a network or FUSE filesystem,
an overlay, another system) each file is fsynced, then the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import mailbox
import os
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path

from digestcli.delivery.transport import Hangup, TemporaryFailure
from digestcli.errors import DeliveryError
from digestcli.message import Message

_MOST_CHUNKS = 512  # per writev; Linux takes up to 1,024 (IOV_MAX)
# Messages written and not yet synced, at most: a send with no ledger (a test send) has no one to
# call sync() but the session, and open files are a limited resource.
_MOST_UNSYNCED = 256
_CLOSED = -1  # in the unsynced queue: a message whose file is closed already (syncfs syncs it)


# Filesystems on a local disk, whose syncfs writes back and flushes what fsync would: not a FUSE or
# network one (whose syncfs need not reach the server), nor an overlay (whose write-back errors
# are the layer's below).
_LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs"})


def filesystem_sync(path: str | Path | None = None) -> Callable[[int], None] | None:
    """syncfs(2): every file of the filesystem holding ``fd`` written back, in one call that waits
    for it, where it also reports a failed write-back (Linux 5.8 and later), and, for ``path``, on a
    local disk's filesystem. Else None."""
    if path is not None and filesystem_type(path) not in _LOCAL_FILESYSTEMS:
        return None
    system = os.uname()
    try:
        release = tuple(int(part) for part in system.release.split("-")[0].split(".")[:2])
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, AttributeError, OSError):
        return None
    if system.sysname != "Linux" or release < (5, 8):
        return None
    syncfs.argtypes = [ctypes.c_int]

    def sync(fd: int) -> None:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return sync


def filesystem_type(path: str | Path) -> str:
    """The type of the filesystem ``path`` (or the nearest folder above it that exists) is on, as
    /proc/self/mountinfo says ("ext4", "overlay", "fuse.sshfs"); "" when it cannot be told."""
    place = Path(os.path.abspath(path))
    while not place.exists() and place != place.parent:
        place = place.parent
    place = place.resolve()
    best, kind = -1, ""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields, _, rest = line.partition(" - ")
                parts = fields.split()
                if len(parts) < 5 or not rest:
                    continue
                point = Path(parts[4].replace("\\040", " "))
                depth = len(point.parts)
                if depth >= best and (point == place or point in place.parents):
                    best, kind = depth, rest.split()[0]
    except OSError:
        return ""
    return kind


class OutboxTransport:
    connections = 1  # one writer; the disk is not the bottleneck a server round trip is
    line_end = "\n"  # Maildir files hold local line ends; CRLF is only how SMTP carries them

    def __init__(self, path: str | Path, *, syncfs: Callable[[int], None] | bool | None = True):
        """``syncfs``: how a group of messages is synced (see the module): True for syncfs where
        the system has it, None for an fsync per file, or a function like ``filesystem_sync()``'s."""
        self.path = Path(path)
        self.name = f"outbox {self.path}"
        self._syncfs = filesystem_sync(self.path) if syncfs is True else (syncfs or None)
        self._folder = -1  # the descriptor syncfs is given, opened before the first message
        # Messages in new/ not yet synced: their open files (or _CLOSED, with syncfs), appended by
        # the session, drained by sync() (a deque's append and popleft are atomic: the ledger's
        # writer may call it from any thread).
        self._unsynced: deque[int] = deque()
        self._syncing = threading.Lock()
        self._broken: DeliveryError | None = None  # a sync that failed: what is unsynced is unknown

    def open(self, hangup: Hangup | None = None) -> OutboxSession:
        # Nothing to hang up: a disk write does not wait on anyone.
        session = OutboxSession(self.path, self._written, self.sync)
        if self._syncfs is not None and self._folder < 0:
            # Before any message is written: syncfs reports the write-back errors that came after
            # its descriptor was opened, and no other program's syncfs takes them from this one.
            try:
                self._folder = os.open(self.path / "new", os.O_RDONLY | os.O_DIRECTORY)
            except OSError as exc:
                raise DeliveryError(f"cannot open the outbox: {exc}", where=str(self.path)) from None
            weakref.finalize(self, os.close, self._folder)
        return session

    def _written(self, fd: int) -> int:
        """Keep a message's file for sync(), which the ledger calls before it says delivered;
        how many messages are unsynced."""
        if self._syncfs is not None:
            try:
                os.close(fd)  # syncfs finds it on its own
            except OSError as exc:  # a write the filesystem failed, told at close
                self._broken = self._broken or _unsynced_error(self.path, exc)
            fd = _CLOSED
        self._unsynced.append(fd)
        return len(self._unsynced)

    def sync(self) -> None:
        """Every message written so far is on the disk, and its name in new/: each file is synced,
        then the folder, once for them all. Raises DeliveryError if that cannot be said (then and
        ever after: data the disk failed to write is not written by asking again)."""
        with self._syncing:
            if self._broken is not None:
                raise self._broken
            unsynced = self._unsynced
            if not unsynced:
                return
            try:
                with contextlib.suppress(IndexError):
                    while True:
                        fd = unsynced.popleft()
                        if fd == _CLOSED:
                            continue
                        try:
                            os.fsync(fd)
                        except BaseException:
                            unsynced.appendleft(fd)  # not synced: still to be (or closed below)
                            raise
                        os.close(fd)
                if self._syncfs is not None:
                    self._syncfs(self._folder)  # the files and the folder at once
                else:
                    folder = os.open(self.path / "new", os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        os.fsync(folder)
                    finally:
                        os.close(folder)
            except OSError as exc:
                self._broken = _unsynced_error(self.path, exc)
                with contextlib.suppress(IndexError, OSError):
                    while True:
                        if (fd := unsynced.popleft()) != _CLOSED:
                            os.close(fd)
                raise self._broken from None


def _unsynced_error(path: Path, exc: OSError) -> DeliveryError:
    return DeliveryError(
        f"cannot sync the outbox to its disk: {exc.strerror or exc}",
        where=str(path),
        hint="check the disk; the messages of this run may be incomplete (see digest status)",
    )


class OutboxSession:
    usable = True
    _counter = itertools.count()  # with the time and the process id, a name no other file has

    def __init__(self, path: Path, written: Callable[[int], int], sync: Callable[[], None]):
        self._written, self._sync = written, sync
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
        fd = -1
        try:
            fd = self._write(self._tmp + name, chunks)
            os.rename(self._tmp + name, self._new + name)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            # Written into tmp/ and moved into new/ last: a failure leaves no message.
            # Unusable: the send loop reopens the outbox, and a disk that stays full or read-only
            # ends the send like a server that stays unreachable.
            self.usable = False
            with contextlib.suppress(OSError):
                os.unlink(self._tmp + name)
            raise TemporaryFailure(f"cannot write to the outbox: {exc}") from None
        if self._written(fd) >= _MOST_UNSYNCED:
            self._sync()
        return f"saved as {name}"

    @staticmethod
    def _write(path: str, chunks: tuple[bytes, ...]) -> int:
        """The file written, still open (its descriptor)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            views = [memoryview(chunk) for chunk in chunks if chunk]
            while views:  # a short write (a full disk) raises on the next try, never passes unseen
                written = os.writev(fd, views[:_MOST_CHUNKS])
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if written:
                    views[0] = views[0][written:]
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        # What this session wrote is synced now, also for a send no ledger syncs for (a test send).
        # A failure is kept by the transport and raised to the ledger's next write of deliveries.
        with contextlib.suppress(DeliveryError):
            self._sync()
