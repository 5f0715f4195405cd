"""The ledger on its own: rows per (issue, reader), the in-flight rule, recovery, status."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from digestcli.errors import DeliveryError, InputError
from digestcli.state.journal import Journal
from digestcli.state.ledger import (
    DEFERRED,
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    SKIPPED,
    STATES,
    UNKNOWN,
    Ledger,
    read_states,
    read_status,
)

ISSUE = "2026-11-20-weekly"


def test_plan_sending_record(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@example.com", "b@example.com", "c@example.com"], {"c@example.com": "bounced"})
        assert ledger.states(ISSUE) == {
            "a@example.com": PENDING,
            "b@example.com": PENDING,
            "c@example.com": SKIPPED,
        }
        ledger.sending(ISSUE, "a@example.com")
        assert ledger.states(ISSUE)["a@example.com"] == SENDING
        ledger.record(ISSUE, "a@example.com", DELIVERED, "250 2.0.0 queued")
        entry = ledger.entry(ISSUE, "a@example.com")
        assert entry is not None
        assert (entry.state, entry.attempts, entry.reply) == (DELIVERED, 1, "250 2.0.0 queued")
        # Planning again (a second run) keeps what is known and adds what is new.
        ledger.plan(ISSUE, ["a@example.com", "b@example.com", "c@example.com", "d@example.com"], {})
        assert ledger.states(ISSUE) == {
            "a@example.com": DELIVERED,
            "b@example.com": PENDING,
            "c@example.com": PENDING,  # off the suppression list: mail them again
            "d@example.com": PENDING,
        }
        # A reader who unsubscribed since, and one who did after being delivered.
        ledger.plan(
            ISSUE, ["a@example.com", "b@example.com"], {"a@example.com": "unsubscribed", "b@example.com": "x"}
        )
        assert ledger.states(ISSUE)["a@example.com"] == DELIVERED
        assert ledger.states(ISSUE)["b@example.com"] == SKIPPED


def test_a_send_taken_back_does_not_count_as_an_attempt(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@example.com"], {})
        ledger.sending(ISSUE, "a@example.com")
        ledger.record(ISSUE, "a@example.com", PENDING, "interrupted before the data")
        entry = ledger.entry(ISSUE, "a@example.com")
        assert entry is not None and (entry.state, entry.attempts) == (PENDING, 0)


def _killed(ledger: Ledger) -> None:
    """The process ends now (SIGKILL): what it held in memory is gone, its files stay as they are."""
    ledger._landed.clear()
    ledger._unwritten.clear()
    ledger._marked.clear()
    ledger.close()


def test_sending_is_said_at_once_and_recovered_as_unknown(tmp_path: Path):
    ledger = Ledger(tmp_path)
    ledger.plan(ISSUE, ["a@example.com", "b@example.com"], {})
    ledger.sending(ISSUE, "a@example.com")
    # Said in the journal at once (before any data may leave), where a kill cannot undo it; the row
    # itself waits for its group.
    assert Journal(tmp_path).replay(ISSUE).states == {"a@example.com": SENDING}
    other = sqlite3.connect(tmp_path / "ledger.sqlite3")
    row = other.execute("SELECT state FROM delivery WHERE address = 'a@example.com'").fetchone()
    assert row == (PENDING,)
    other.close()
    # SIGKILL now: the process ends with the row unwritten. Another program opening the ledger
    # while no send runs writes what the journal said past the ledger's mark first...
    _killed(ledger)
    assert read_states(tmp_path, ISSUE) == {"a@example.com": SENDING, "b@example.com": PENDING}
    # ... and the next run, which holds the send lock, turns it into unknown.
    with Ledger(tmp_path) as next_run:
        assert next_run.recover() == 1
        assert next_run.states(ISSUE) == {"a@example.com": UNKNOWN, "b@example.com": PENDING}
        assert next_run.recover() == 0


def test_status_counts_and_problems(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, [f"r{n}@example.com" for n in range(6)], {"r5@example.com": "unsubscribed"})
        outcomes = [
            (DELIVERED, "250 ok"),
            (DELIVERED, "250 ok"),
            (FAILED, "550 5.1.1 no such user"),
            (DEFERRED, "451 4.3.0 later"),
            (UNKNOWN, "no reply after the data (timed out)"),
        ]
        for n, (state, reply) in enumerate(outcomes):
            ledger.sending(ISSUE, f"r{n}@example.com")
            ledger.record(ISSUE, f"r{n}@example.com", state, reply)
        ledger.plan("2026-11-27-weekly", ["r0@example.com"], {})
    (status,) = read_status(tmp_path, ISSUE)
    assert set(status.counts) == set(STATES)
    assert status.counts[DELIVERED] == 2
    assert status.counts[FAILED] == status.counts[DEFERRED] == status.counts[UNKNOWN] == 1
    assert status.counts[SKIPPED] == 1
    assert status.total == 6
    assert {(p.address, p.state, p.reply) for p in status.problems} == {
        ("r2@example.com", FAILED, "550 5.1.1 no such user"),
        ("r3@example.com", DEFERRED, "451 4.3.0 later"),
        ("r4@example.com", UNKNOWN, "no reply after the data (timed out)"),
    }
    assert status.first <= status.last
    assert [s.issue_id for s in read_status(tmp_path)] == [ISSUE, "2026-11-27-weekly"]
    assert read_status(tmp_path, "never-sent") == []


def test_read_status_makes_no_ledger(tmp_path: Path):
    assert read_status(tmp_path / ".digest") == []
    assert not (tmp_path / ".digest").exists()


def test_plan_leaves_readers_it_is_not_told_about_alone(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@example.com"], {"b@example.com": "suppressed: unsubscribed"})
        # b has left the list too: the next run mentions neither, and b must not turn pending.
        ledger.plan(ISSUE, ["a@example.com"], {})
        assert ledger.states(ISSUE) == {"a@example.com": PENDING, "b@example.com": SKIPPED}
        ledger.plan(ISSUE, [], {"a@example.com": "no longer in the reader list"})
        assert ledger.states(ISSUE)["a@example.com"] == SKIPPED
        assert ledger.entry(ISSUE, "a@example.com").reply == "no longer in the reader list"  # type: ignore[union-attr]


def test_reading_changes_nothing(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@example.com"], {})
    before = (tmp_path / "ledger.sqlite3").read_bytes()
    assert read_states(tmp_path, ISSUE) == {"a@example.com": PENDING}
    assert [s.counts[PENDING] for s in read_status(tmp_path)] == [1]
    assert (tmp_path / "ledger.sqlite3").read_bytes() == before
    assert read_states(tmp_path / "elsewhere", ISSUE) == {}
    assert not (tmp_path / "elsewhere").exists()


def test_a_damaged_ledger_or_another_programs_database_is_a_clear_error(tmp_path: Path):
    (tmp_path / "ledger.sqlite3").write_bytes(b"not a database at all " * 100)
    for attempt in (
        lambda: Ledger(tmp_path),
        lambda: read_status(tmp_path),
        lambda: read_states(tmp_path, ISSUE),
    ):
        with pytest.raises(InputError) as caught:
            attempt()
        assert caught.value.where == str(tmp_path / "ledger.sqlite3")
        assert "not a digest ledger" in caught.value.message and "digest recover" in (caught.value.hint or "")
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / "ledger.sqlite3")
    db.execute("CREATE TABLE delivery (x)")
    db.close()
    with pytest.raises(InputError, match="not a digest ledger"):
        read_states(other, ISSUE)


def test_a_locked_ledger_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@example.com"], {})
    holder = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(Ledger, "busy_timeout", 0.05)
    try:
        with Ledger(tmp_path) as ledger, pytest.raises(DeliveryError) as caught:
            ledger.sending(ISSUE, "a@example.com")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.where == str(tmp_path / "ledger.sqlite3")
    assert "locked" in caught.value.message and "close it and try again" in (caught.value.hint or "")


@pytest.mark.parametrize("grouped", [False, True], ids=["one-statement", "transaction"])
def test_deliveries_are_written_alike_one_at_a_time_or_in_a_group(tmp_path: Path, grouped: bool):
    """A send's usual write (a delivery and the next `sending`, one upsert) and a group's (the
    outbox's, UPDATEs in a transaction) leave the same rows: the reply kept, one attempt each, a
    reader with no row yet given one."""
    readers = [f"r{n}@example.com" for n in range(12)]
    with Ledger(tmp_path / ".digest") as ledger:
        ledger.add_pending("i", readers[:10])  # the last two have no row until they are reached
        ledger.record("i", readers[0], "deferred", "451 try later", counted=False)  # an earlier attempt
        if grouped:
            ledger.sync_with(lambda: None)  # a shared sync: deliveries wait for their group
        for address in readers:
            ledger.sending("i", address)
            ledger.landed("i", address, f"250 ok {address}")
        ledger.flush()
        entries = [ledger.entry("i", address) for address in readers]
    assert [e.state for e in entries if e] == ["delivered"] * 12
    assert [e.reply for e in entries if e] == [f"250 ok {a}" for a in readers]
    assert [e.attempts for e in entries if e] == [2] + [1] * 11


def test_a_delivery_recorded_directly_is_synced_first_and_unsaid_when_the_sync_fails(tmp_path: Path):
    """record(delivered) (a reader settled after the run closed) waits for the transport's sync like
    a delivery written with the next `sending`: never `delivered` for what the disk may not have."""
    synced: list[int] = []
    with Ledger(tmp_path / ".digest") as ledger:
        ledger.add_pending("i", ["a@example.com", "b@example.com"])
        ledger.sync_with(lambda: synced.append(1))
        ledger.sending("i", "a@example.com")
        ledger.record("i", "a@example.com", DELIVERED, "saved")
        assert synced and ledger.entry("i", "a@example.com").state == DELIVERED  # type: ignore[union-attr]

        def failing() -> None:
            raise DeliveryError("cannot sync the outbox to its disk")

        ledger.sync_with(failing)
        ledger.sending("i", "b@example.com")
        with pytest.raises(DeliveryError):
            ledger.record("i", "b@example.com", DELIVERED, "saved")
        assert ledger.entry("i", "b@example.com").state == SENDING  # type: ignore[union-attr]


# -- the journal as the ledger's write-ahead record ---------------------------------------------------


def test_a_run_killed_before_its_rows_are_written_is_caught_up_as_it_would_have_written_them(
    tmp_path: Path,
):
    readers = ["a@x.org", "b@x.org", "c@x.org", "d@x.org"]
    run = Ledger(tmp_path)
    run.plan(ISSUE, readers, {})
    run.record(ISSUE, "d@x.org", DEFERRED, "451 later", counted=False)  # written at once, as before
    run.sending(ISSUE, "a@x.org")
    run.landed(ISSUE, "a@x.org", "250 ok a")
    run.sending(ISSUE, "b@x.org")  # says a's delivery too
    run.landed(ISSUE, "b@x.org", "250 ok b")
    run.sending(ISSUE, "c@x.org")  # and b's
    run.landed(ISSUE, "c@x.org", "250 ok c")  # never said: the kill comes first
    _killed(run)
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:  # the file as the kill left it
        assert dict(db.execute("SELECT address, state FROM delivery")) == dict.fromkeys(readers, PENDING) | {
            "d@x.org": DEFERRED
        }
    journal = tmp_path / "journal" / f"{ISSUE}.log"
    with Ledger(tmp_path) as after:  # no send runs: caught up on opening
        entries = {address: after.entry(ISSUE, address) for address in readers}
        mark = after._db.execute("SELECT applied, open FROM journal_mark").fetchone()
    assert {a: (e.state, e.attempts, e.reply) for a, e in entries.items() if e} == {
        "a@x.org": (DELIVERED, 1, "250 ok a"),
        "b@x.org": (DELIVERED, 1, "250 ok b"),
        "c@x.org": (SENDING, 1, ""),  # perhaps delivered: the next send makes it unknown
        "d@x.org": (DEFERRED, 1, "451 later"),
    }
    assert mark == (journal.stat().st_size, 0)
    with Ledger(tmp_path) as next_run:
        assert next_run.recover() == 1
        assert next_run.states(ISSUE)["c@x.org"] == UNKNOWN


def test_a_live_runs_lines_are_neither_caught_up_by_a_reader_nor_a_gap(tmp_path: Path):
    from digestcli.state import send_lock
    from digestcli.state.history import IssueFacts, assess

    facts = IssueFacts(ISSUE, 1, "2026-11-20", "The Weekly")
    with send_lock(tmp_path):  # a send runs (here, in this process)
        run = Ledger(tmp_path)
        run.plan(ISSUE, ["a@x.org", "b@x.org"], {})
        run.sending(ISSUE, "a@x.org")
        run.landed(ISSUE, "a@x.org", "250 ok")
        run.sending(ISSUE, "b@x.org")
        # `digest status` and the screen before another send read the rows as they are, and take
        # the lines past the run's mark for what they are: the run's own, not a lost ledger's.
        assert read_states(tmp_path, ISSUE) == dict.fromkeys(["a@x.org", "b@x.org"], PENDING)
        with Ledger(tmp_path, read_only=True) as reader:
            assessment = assess(tmp_path, reader, facts, {})
        assert assessment.gaps == {} and assessment.had_it == 0
        _killed(run)
    # The send is gone: the next reader catches the ledger up, and the whole journal is compared.
    assert read_states(tmp_path, ISSUE) == {"a@x.org": DELIVERED, "b@x.org": SENDING}
    with Ledger(tmp_path, read_only=True) as reader:
        assessment = assess(tmp_path, reader, facts, {})
    assert assessment.gaps == {} and assessment.had_it == 2


def test_a_run_that_ends_leaves_nothing_to_catch_up_and_an_old_copy_is_still_behind(tmp_path: Path):
    from digestcli.state.history import IssueFacts, assess

    with Ledger(tmp_path) as run:
        run.plan(ISSUE, ["a@x.org", "b@x.org"], {})
        run.sending(ISSUE, "a@x.org")
        run.landed(ISSUE, "a@x.org", "250 ok")
    copy = {p.name: p.read_bytes() for p in tmp_path.glob("ledger.sqlite3*")}
    with Ledger(tmp_path) as run:  # a later run
        run.sending(ISSUE, "b@x.org")
        run.landed(ISSUE, "b@x.org", "250 ok")
    for path in tmp_path.glob("ledger.sqlite3*"):
        path.unlink()
    for name, data in copy.items():  # the old copy comes back: its mark was closed
        (tmp_path / name).write_bytes(data)
    with Ledger(tmp_path, read_only=True) as reader:
        assert reader.states(ISSUE) == {"a@x.org": DELIVERED, "b@x.org": PENDING}
        assessment = assess(tmp_path, reader, IssueFacts(ISSUE, 1, "2026-11-20", "The Weekly"), {})
    assert assessment.gaps == {DELIVERED: 1}  # refused, as a lost ledger is: `digest recover`


def test_the_next_send_catches_up_under_its_own_lock_before_it_recovers(tmp_path: Path):
    from digestcli.state import send_lock

    run = Ledger(tmp_path)
    run.plan(ISSUE, ["a@x.org", "b@x.org", "c@x.org"], {})
    for address in ("a@x.org", "b@x.org", "c@x.org"):
        run.sending(ISSUE, address)
        if address != "c@x.org":
            run.landed(ISSUE, address, "250 ok")
    _killed(run)  # c's data was on the wire
    with send_lock(tmp_path), Ledger(tmp_path) as next_run:
        # Opened under the send's own lock, the ledger is not caught up on opening...
        rows = dict(next_run._db.execute("SELECT address, state FROM delivery").fetchall())
        assert rows == dict.fromkeys(["a@x.org", "b@x.org", "c@x.org"], PENDING)
        # ... but by recover(), before it turns what was in flight into unknown.
        assert next_run.recover() == 1
        assert next_run.states(ISSUE) == {"a@x.org": DELIVERED, "b@x.org": DELIVERED, "c@x.org": UNKNOWN}


def test_a_reader_that_cannot_catch_up_reads_the_rows_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from digestcli import state

    run = Ledger(tmp_path)
    run.plan(ISSUE, ["a@x.org"], {})
    run.sending(ISSUE, "a@x.org")
    _killed(run)
    # Another program writes the ledger (a database browser): no error, the rows as they are,
    # and no long wait: the reader's catch-up waits for the ledger a moment at most.
    holder = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    connect = sqlite3.connect
    waits: list[float] = []  # how long each connection that may write waits for the ledger

    def watched(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        if not kwargs.get("uri"):  # a read-only one is opened by URI, and never waits on a writer
            waits.append(kwargs["timeout"])
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", watched)
    try:
        assert read_states(tmp_path, ISSUE) == {"a@x.org": PENDING}
    finally:
        monkeypatch.undo()
        holder.execute("ROLLBACK")
        holder.close()
    assert waits and max(waits) <= 1  # it tried, briefly
    # Without advisory locks (Windows) a running send cannot be told from none: never caught up.
    monkeypatch.setattr(state, "fcntl", None)
    assert read_states(tmp_path, ISSUE) == {"a@x.org": PENDING}
    monkeypatch.undo()
    assert read_states(tmp_path, ISSUE) == {"a@x.org": SENDING}


def test_what_stopped_a_run_is_what_is_said_when_its_ledger_cannot_be_closed(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan(ISSUE, ["a@x.org"], {})
    holder = sqlite3.connect(tmp_path / "ledger.sqlite3", isolation_level=None)
    try:
        stopped = pytest.raises(RuntimeError, match="the run stopped")
        with stopped, Ledger(tmp_path, busy_timeout=0.05) as ledger:
            ledger.sending(ISSUE, "a@x.org")
            holder.execute("BEGIN IMMEDIATE")  # the rows cannot be written now
            raise RuntimeError("the run stopped")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert read_states(tmp_path, ISSUE) == {"a@x.org": SENDING}  # from the journal


def test_a_line_cut_short_by_a_full_disk_never_swallows_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import errno
    import os

    from digestcli.state import journal as journal_module

    run = Ledger(tmp_path)
    run.plan(ISSUE, ["a@x.org", "b@x.org"], {})
    write = os.write
    cut = []

    def full_once(fd: int, data: bytes) -> int:
        if not cut and b"a@x.org" in data:
            cut.append(1)
            return write(fd, data[:20])  # half a line, then the disk is full
        if cut == [1]:
            cut.append(2)
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(journal_module.os, "write", full_once)
    with pytest.raises(DeliveryError, match="cannot write the journal"):
        run.sending(ISSUE, "a@x.org")  # a's data never leaves
    run.sending(ISSUE, "b@x.org")  # room again: b's data leaves
    monkeypatch.undo()
    _killed(run)
    assert read_states(tmp_path, ISSUE) == {"a@x.org": PENDING, "b@x.org": SENDING}


def test_a_journal_lost_before_its_ledger_caught_up_stops_the_send_until_recover_accepts_it(tmp_path: Path):
    from digestcli.state import send_lock
    from digestcli.state.recovery import recover_ledger

    run = Ledger(tmp_path)
    run.plan(ISSUE, ["a@x.org", "b@x.org"], {})
    run.begin_run(ISSUE, number=1, date="2026-11-20", subject="The Weekly", draft="", parts={})
    run.sending(ISSUE, "a@x.org")
    run.landed(ISSUE, "a@x.org", "250 ok")
    run.sending(ISSUE, "b@x.org")
    _killed(run)
    (tmp_path / "journal" / f"{ISSUE}.log").unlink()  # deleted: who was mailed last is gone
    assert read_states(tmp_path, ISSUE) == dict.fromkeys(["a@x.org", "b@x.org"], PENDING)  # reading goes on
    with send_lock(tmp_path), Ledger(tmp_path) as next_run, pytest.raises(DeliveryError) as caught:
        next_run.recover()
    assert "missing or shorter than the ledger knows it" in caught.value.message
    assert "digest recover" in (caught.value.hint or "")
    with send_lock(tmp_path):
        recover_ledger(tmp_path)  # the editor accepts it
    with send_lock(tmp_path), Ledger(tmp_path) as next_run:
        assert next_run.recover() == 0


def test_a_journal_that_stays_full_is_one_clear_error_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import errno
    import os

    from digestcli.state import journal as journal_module

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to count open files")
    run = Ledger(tmp_path)
    run.plan(ISSUE, ["a@x.org", "b@x.org"], {})
    run.sending(ISSUE, "a@x.org")
    write = os.write

    def full(fd: int, data: bytes) -> int:
        if len(data) > 1:
            write(fd, data[:10])  # a line cut short...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...and no room for its end

    monkeypatch.setattr(journal_module.os, "write", full)
    with pytest.raises(DeliveryError, match="cannot write the journal"):
        run.sending(ISSUE, "b@x.org")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(DeliveryError, match="cannot write the journal"):
            run.flush()  # the rows' mark needs the journal's end: reopening it fails again
    assert len(os.listdir("/proc/self/fd")) == before
    monkeypatch.undo()
    run.close()
    assert read_states(tmp_path, ISSUE) == {"a@x.org": SENDING, "b@x.org": PENDING}
