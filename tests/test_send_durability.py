"""What the ledger says delivered is so, and is said soon: a delivery is written while the server
is slow to answer the next message, the outbox's messages are on the disk before their delivery is
written, and a Ctrl-C as a finished run writes its last rows does not unsay the run."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fault_smtp import FaultServer
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.delivery import Backoff, OutboxTransport, SendInterrupted, SendStopped, send_issue
from digestcli.delivery.outbox import filesystem_sync, filesystem_type
from digestcli.errors import DeliveryError
from digestcli.state.journal import Journal
from digestcli.state.ledger import DELIVERED, PENDING, SENDING, UNKNOWN, Ledger

TESTS = Path(__file__).resolve().parent
ISSUE = make_issue()
SENDER_SCRIPT = textwrap.dedent(
    """\
    import sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[3])
    from smtp_server import make_issue, make_workspace
    from digestcli.delivery import Backoff, send_issue

    workspace = make_workspace(Path(sys.argv[1]), port=int(sys.argv[2]), connections=1)
    send_issue(make_issue(), workspace, backoff=Backoff(0.001, 0.01))
    """
)


def states(root: Path) -> dict[str, str]:
    with Ledger(root / ".digest", read_only=True) as ledger:
        return ledger.states(ISSUE.issue_id)


def test_a_delivery_is_written_while_the_server_is_slow_to_answer_the_next_message(tmp_path: Path):
    addresses = write_readers(tmp_path, 40)
    script = tmp_path / "send.py"
    script.write_text(SENDER_SCRIPT, encoding="utf-8")
    slow = addresses[5]
    with FaultServer() as server:
        # One connection; the next reader's RCPT is answered after 5 seconds. The one before was
        # delivered (250) and its row must say so within the wait, not after it.
        server.rule("rcpt", delay=5.0, when=lambda address: address == slow, times=1)
        sender = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(server.port), str(TESTS)])
        try:
            deadline = time.monotonic() + 30
            while len(server.received) < 5:
                assert sender.poll() is None, "the send ended before the slow reply"
                assert time.monotonic() < deadline, "the send never got going"
                time.sleep(0.01)
            time.sleep(1.0)  # well inside the delay: the RCPT of `slow` is unanswered
            os.kill(sender.pid, signal.SIGKILL)
        finally:
            sender.kill()
            sender.wait()
        assert sender.returncode == -signal.SIGKILL
        received = server.recipients()
    assert set(received) == set(addresses[:5])
    at_kill = states(tmp_path)
    assert {address for address, state in at_kill.items() if state == DELIVERED} == set(addresses[:5])
    assert SENDING not in at_kill.values()  # nothing was in flight: the slow reader's data never left
    # The next run mails the rest, and nobody is unknown or mailed twice.
    with FaultServer() as server:
        summary = send_issue(ISSUE, make_workspace(tmp_path, port=server.port), backoff=Backoff(0.001, 0.01))
        assert set(server.recipients()) == set(addresses[5:])
    assert (summary.recovered, summary.delivered) == (0, 35)
    assert set(states(tmp_path).values()) == {DELIVERED}


class RecordingOutbox(OutboxTransport):
    """The outbox, noting the reader of every message it syncs: with an fsync per file, read from
    the file as its fsync is called (so that no other thread can have closed it yet); with syncfs,
    every message in new/ as it is called."""

    def __init__(self, path: Path, *, per_file: bool):
        self.synced: set[str] = set()
        self.syncs = 0
        whole = filesystem_sync()
        if not per_file and whole is None:
            pytest.skip("syncfs needs Linux 5.8 or later")

        def syncfs(fd: int) -> None:
            for name in (path / "new").iterdir():
                self._note(name)
            assert whole is not None
            whole(fd)

        super().__init__(path, syncfs=None if per_file else syncfs)

    def _note(self, target: Path) -> None:
        message = message_from_bytes(target.read_bytes(), policy=policy.default)
        self.synced.add(message["To"].addresses[0].addr_spec)

    def fsync(self, fd: int) -> None:
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if target.is_file() and self.path.resolve() in target.parents:  # not the journal's
            self._note(target)
        REAL_FSYNC(fd)

    def sync(self) -> None:
        super().sync()
        self.syncs += 1


REAL_FSYNC = os.fsync


@pytest.mark.parametrize("per_file", [True, False], ids=["fsync-per-file", "syncfs"])
def test_the_outbox_is_synced_before_a_delivery_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_file: bool
):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name an open file")
    addresses = write_readers(tmp_path, 300)
    transport = RecordingOutbox(tmp_path / "outbox", per_file=per_file)
    written: list[str] = []
    early: list[str] = []

    # Every line the journal (the ledger's write-ahead record, where a delivery is said first) is
    # given, seen before it is written: a delivery said for a message not yet synced is caught.
    append = Journal._append

    def watched(journal: Journal, issue_id: str, text: str) -> None:
        for line in text.splitlines():
            fields = line.split("\t")
            if fields[0] == "reader" and fields[2] == DELIVERED:
                written.append(fields[3])
                if fields[3] not in transport.synced:
                    early.append(fields[3])
        append(journal, issue_id, text)

    monkeypatch.setattr(Journal, "_append", watched)
    monkeypatch.setattr(os, "fsync", transport.fsync)
    summary = send_issue(ISSUE, make_workspace(tmp_path, transport="outbox"), transport=transport)
    assert summary.delivered == 300
    assert sorted(written) == addresses  # every delivery was said, once
    assert early == []
    assert transport.synced == set(addresses)
    # In groups: far fewer syncs than messages (each group shares the folder's sync).
    assert 1 <= transport.syncs <= 300 // 8
    assert not transport._unsynced  # nothing left to sync
    # No message's file left open (syncfs's one descriptor is of the folder).
    messages = [n for n in open_files() if "outbox" in n and Path(n).parent.name in ("new", "tmp")]
    assert messages == []


def open_files() -> list[str]:
    """What this process has open (a descriptor closed while it is listed is left out)."""
    names = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
    return names


@pytest.mark.parametrize("per_file", [True, False], ids=["fsync-per-file", "syncfs"])
def test_a_failed_sync_writes_no_delivery_it_was_to_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_file: bool
):
    write_readers(tmp_path, 200)
    real_fsync = os.fsync
    calls = 0

    def failing(sync: Callable[[int], None], after: int) -> Callable[[int], None]:
        def call(fd: int) -> None:
            nonlocal calls
            calls += 1
            if calls > after:  # the disk fails some way into the send
                raise OSError(errno.EIO, "Input/output error")
            sync(fd)

        return call

    if per_file:
        transport = OutboxTransport(tmp_path / "outbox", syncfs=None)
        monkeypatch.setattr(os, "fsync", failing(real_fsync, 100))
    else:
        whole = filesystem_sync()
        if whole is None:
            pytest.skip("syncfs needs Linux 5.8 or later")
        transport = OutboxTransport(tmp_path / "outbox", syncfs=failing(whole, 1))
    with pytest.raises(SendStopped) as stopped:
        send_issue(ISSUE, make_workspace(tmp_path, transport="outbox"), transport=transport)
    assert "cannot sync the outbox" in stopped.value.message
    monkeypatch.setattr(os, "fsync", real_fsync)
    found = states(tmp_path)
    delivered = [address for address, state in found.items() if state == DELIVERED]
    # Only messages synced before the failure (fewer than 100 files: the folder takes a sync too;
    # with syncfs, the first group).
    assert 0 < len(delivered) < 100
    assert set(found.values()) <= {DELIVERED, PENDING, SENDING, UNKNOWN}
    # The summary says what the ledger says: a message whose sync failed is not counted delivered.
    summary = stopped.value.summary
    assert summary.delivered == len(delivered)
    in_doubt = [address for address, state in found.items() if state in (SENDING, UNKNOWN)]
    assert summary.unknown == len(in_doubt)


def test_ctrl_c_while_a_finished_run_writes_its_plan_keeps_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_readers(tmp_path, 60)
    plan_from = Ledger.plan_from

    def interrupted_at_the_end(ledger: Ledger, *args: object, new: bool = True, **kwargs: object) -> None:
        if new:  # the plan's last rows, written once the run is over: Ctrl-C lands here
            raise KeyboardInterrupt
        plan_from(ledger, *args, new=new, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Ledger, "plan_from", interrupted_at_the_end)
    with FaultServer() as server:
        with pytest.raises(SendInterrupted) as interrupted:
            send_issue(ISSUE, make_workspace(tmp_path, port=server.port), backoff=Backoff(0.001, 0.01))
        assert len(server.recipients()) == 60
    summary = interrupted.value.summary
    assert (summary.delivered, summary.remaining, summary.planned) == (60, 0, 60)
    assert summary.interrupted
    assert set(states(tmp_path).values()) == {DELIVERED}


def test_ctrl_c_while_a_finished_run_closes_counts_every_reader_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_readers(tmp_path, 60)
    flush = Ledger.flush
    main = threading.main_thread()
    cut: list[bool] = []

    def interrupted_once(ledger: Ledger) -> int:
        if threading.current_thread() is main and not cut:  # the run's close, on the main thread
            cut.append(True)
            raise KeyboardInterrupt
        return flush(ledger)

    monkeypatch.setattr(Ledger, "flush", interrupted_once)
    with FaultServer() as server:
        with pytest.raises(SendInterrupted) as interrupted:
            send_issue(ISSUE, make_workspace(tmp_path, port=server.port), backoff=Backoff(0.001, 0.01))
        assert len(server.recipients()) == 60
    assert cut
    summary = interrupted.value.summary
    assert (summary.delivered, summary.remaining, summary.planned) == (60, 0, 60)
    assert set(states(tmp_path).values()) == {DELIVERED}


def test_sending_a_reader_with_no_row_makes_one(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.add_pending("i", ["a@x.org"])
        ledger.sending("i", "a@x.org")
        ledger.sending("i", "b@x.org")  # no row yet: one is made, not a change of nothing
        assert ledger.states("i") == {"a@x.org": SENDING, "b@x.org": SENDING}
        entry = ledger.entry("i", "b@x.org")
        assert entry is not None and entry.attempts == 1
        ledger.landed("i", "b@x.org", "250 ok")
        ledger.flush()
        assert ledger.states("i")["b@x.org"] == DELIVERED


def test_the_outbox_syncs_a_whole_filesystem_only_on_a_local_disk() -> None:
    if not Path("/proc/self/mountinfo").is_file():
        pytest.skip("needs /proc to tell a filesystem's type")
    assert filesystem_type("/proc") == "proc"
    assert filesystem_sync("/proc") is None  # not a disk's: each file is fsynced
    root = filesystem_type("/")
    assert root  # whatever it is, it is told
    assert (filesystem_sync("/") is not None) == (
        root in {"ext4", "xfs", "btrfs"} and filesystem_sync() is not None
    )


@pytest.mark.parametrize(
    ("kind", "one_syncfs"),
    [
        ("ext4", True),
        ("xfs", True),
        ("btrfs", True),
        ("f2fs", True),
        ("overlay", False),  # write-back errors are the layer's below
        ("fuse.sshfs", False),  # syncfs need not reach the server
        ("nfs4", False),
        ("tmpfs", False),
        ("", False),  # not told
    ],
)
def test_which_filesystems_an_outbox_syncs_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, one_syncfs: bool
) -> None:
    if filesystem_sync() is None:
        pytest.skip("syncfs needs Linux 5.8 or later")
    from digestcli.delivery import outbox as outbox_module

    monkeypatch.setattr(outbox_module, "filesystem_type", lambda path: kind)
    assert (filesystem_sync(tmp_path) is not None) == one_syncfs
    transport = OutboxTransport(tmp_path / "outbox")  # else an fsync a file, then the folder
    assert (transport._syncfs is not None) == one_syncfs


def test_a_file_the_filesystem_fails_to_close_stops_the_send_at_the_next_sync(tmp_path: Path):
    whole = filesystem_sync()
    if whole is None:
        pytest.skip("syncfs needs Linux 5.8 or later")
    transport = OutboxTransport(tmp_path / "outbox", syncfs=whole)
    transport.open()
    fd = os.open(tmp_path / "message", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    transport._written(fd)  # closing it again fails, as a write the filesystem failed is told at close
    with pytest.raises(DeliveryError, match="cannot sync the outbox"):
        transport.sync()
