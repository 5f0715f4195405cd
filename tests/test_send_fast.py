"""What makes a send cheap per message without weakening what the ledger promises: a delivery
said with the next reader's `sending` (one append to the journal a message, the rows written in
groups), readers taken and built a few at a time, a progress callback that costs nothing per
message; and the counts still exact."""

from __future__ import annotations

import _thread
import sqlite3
from pathlib import Path

import pytest
from smtp_server import ScriptedHandler, SmtpServer, make_issue, make_workspace, write_readers

from digestcli.delivery import Backoff, SendInterrupted, send_issue
from digestcli.delivery.workers import throttled
from digestcli.state import ledger as ledger_module
from digestcli.state.journal import Journal
from digestcli.state.ledger import DELIVERED, FAILED, PENDING, SENDING, UNKNOWN, Ledger

ISSUE = make_issue()
FAST = Backoff(first=0.001, most=0.01)


def on_disk(state: Path, issue_id: str = ISSUE.issue_id) -> dict[str, str]:
    """The rows as another process sees them (not through the writer's connection)."""
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        rows = db.execute("SELECT address, state FROM delivery WHERE issue_id = ?", (issue_id,))
        return dict(rows.fetchall())


def journal_lines(state: Path, issue_id: str) -> list[list[str]]:
    """[state, address] of each reader line of the issue's journal, in order."""
    lines = (state / "journal" / f"{issue_id}.log").read_text().splitlines()
    return [line.split("\t")[2:4] for line in lines if line.startswith("reader")]


def test_a_delivery_is_said_with_the_next_sending_in_one_append_and_written_in_a_group(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan("i", ["a@x.org", "b@x.org", "c@x.org"], {})
        ledger.sending("i", "a@x.org")
        ledger.landed("i", "a@x.org", "250 ok")
        # Not said yet: until then the journal says sending, what a kill would leave (unknown).
        assert journal_lines(tmp_path, "i") == [["sending", "a@x.org"]]
        ledger.sending("i", "b@x.org")
        assert journal_lines(tmp_path, "i")[1:] == [["delivered", "a@x.org"], ["sending", "b@x.org"]]
        # The rows follow in a group: the file itself does not have them yet...
        assert set(on_disk(tmp_path, "i").values()) == {PENDING}
        # ... and the writer's own reads write them first.
        entry = ledger.entry("i", "a@x.org")
        assert entry is not None and (entry.state, entry.attempts, entry.reply) == (DELIVERED, 1, "250 ok")
        assert on_disk(tmp_path, "i") == {"a@x.org": DELIVERED, "b@x.org": SENDING, "c@x.org": PENDING}
        ledger.landed("i", "b@x.org", "250 ok too")
        assert ledger.flush() == 1 and ledger.flush() == 0
        assert on_disk(tmp_path, "i")["b@x.org"] == DELIVERED
        ledger.sending("i", "c@x.org")
        ledger.landed("i", "c@x.org", "250")
    assert on_disk(tmp_path, "i")["c@x.org"] == DELIVERED  # close() writes what is left
    # The journal says the same, in the order the ledger said it.
    replay = Journal(tmp_path).replay("i")
    assert replay.states == dict.fromkeys(["a@x.org", "b@x.org", "c@x.org"], DELIVERED)
    assert journal_lines(tmp_path, "i") == [
        ["sending", "a@x.org"],
        ["delivered", "a@x.org"],
        ["sending", "b@x.org"],
        ["delivered", "b@x.org"],
        ["sending", "c@x.org"],
        ["delivered", "c@x.org"],
    ]
    # ... and the run's mark is closed at the journal's end: nothing is left to catch up.
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        mark = db.execute("SELECT applied, open FROM journal_mark WHERE issue_id = 'i'").fetchone()
    assert mark == ((tmp_path / "journal" / "i.log").stat().st_size, 0)


def test_rows_are_written_once_a_group_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ledger_module, "GROUP", 4)
    readers = [f"r{n}@x.org" for n in range(7)]
    with Ledger(tmp_path) as ledger:
        ledger.plan("i", readers, {})
        for address in readers[:3]:
            ledger.sending("i", address)
            ledger.landed("i", address, "250")
        # Five rows said (three sending, two delivered), none written yet: the group is full.
        assert set(on_disk(tmp_path, "i").values()) == {PENDING}
        ledger.sending("i", readers[3])  # writes the five first, then says r2's delivery and r3
        assert on_disk(tmp_path, "i") == {
            "r0@x.org": DELIVERED,
            "r1@x.org": DELIVERED,
            "r2@x.org": SENDING,
            **dict.fromkeys(readers[3:], PENDING),
        }


def test_a_kill_before_the_delivery_is_written_leaves_the_reader_unknown_never_delivered(tmp_path: Path):
    ledger = Ledger(tmp_path)
    ledger.plan("i", ["a@x.org", "b@x.org"], {})
    ledger.sending("i", "a@x.org")
    ledger.landed("i", "a@x.org", "250 ok")
    # SIGKILL now: the process ends without closing the ledger. The next run recovers.
    with Ledger(tmp_path) as next_run:
        assert next_run.recover() == 1
        assert next_run.states("i") == {"a@x.org": UNKNOWN, "b@x.org": PENDING}
    ledger._landed.clear()  # the killed process's memory, gone with it
    ledger.close()


def test_other_writes_keep_their_order_after_a_delivery_not_yet_written(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan("i", ["a@x.org", "b@x.org"], {})
        ledger.sending("i", "a@x.org")
        ledger.landed("i", "a@x.org", "250 ok")
        ledger.record("i", "b@x.org", FAILED, "550 no such user", counted=False)
        assert on_disk(tmp_path, "i") == {"a@x.org": DELIVERED, "b@x.org": FAILED}
        ledger.sending("i", "b@x.org")
        ledger.landed("i", "b@x.org", "250")
        assert ledger.settle_in_flight("i", ["b@x.org"], "interrupted") == 0  # b is delivered
        assert on_disk(tmp_path, "i")["b@x.org"] == DELIVERED


def test_throttled_progress_passes_failures_and_the_last_message_at_once():
    calls: list[tuple[int, int, str]] = []
    tell = throttled(lambda *args: calls.append(args), every=3600)
    tell(1, 5, DELIVERED)  # the first
    for done in (2, 3):
        tell(done, 5, DELIVERED)  # within the hour: skipped
    tell(3, 5, FAILED)
    tell(3, 5, "retrying: 421 busy")
    tell(4, 5, DELIVERED)
    tell(5, 5, DELIVERED)  # the last
    assert calls == [(1, 5, DELIVERED), (3, 5, FAILED), (3, 5, "retrying: 421 busy"), (5, 5, DELIVERED)]
    every_time: list[int] = []
    tell = throttled(lambda done, total, state: every_time.append(done), every=0)
    for done in range(1, 4):
        tell(done, 10, DELIVERED)
    assert every_time == [1, 2, 3]


def test_a_long_list_through_several_connections_mails_everyone_once(tmp_path: Path):
    addresses = write_readers(tmp_path, 700)  # enough that workers take readers a batch at a time
    with SmtpServer() as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=3)
        summary = send_issue(ISSUE, workspace, backoff=FAST)
        assert server.handler.recipients() == dict.fromkeys(addresses, 1)
    assert (summary.delivered, summary.remaining, summary.built) == (700, 0, 700)
    assert on_disk(workspace.state) == dict.fromkeys(addresses, DELIVERED)
    assert Journal(workspace.state).replay(ISSUE.issue_id).states == dict.fromkeys(addresses, DELIVERED)


def test_an_interrupted_long_send_counts_every_reader_it_held(tmp_path: Path):
    addresses = write_readers(tmp_path, 900)
    handler = ScriptedHandler(data_delay=0.002)
    with SmtpServer(handler) as server:
        workspace = make_workspace(tmp_path, port=server.port, connections=4)

        def interrupt(delivered: int, total: int, state: str) -> None:
            if delivered == 150:
                _thread.interrupt_main()

        with pytest.raises(SendInterrupted) as caught:
            send_issue(ISSUE, workspace, backoff=FAST, progress=interrupt)
        summary = caught.value.summary
        received = handler.recipients()
    found = on_disk(workspace.state)
    assert SENDING not in found.values()
    delivered = {address for address, state in found.items() if state == DELIVERED}
    assert delivered == set(received) and max(received.values()) == 1
    # Every reader is counted once: delivered, or left for the next run (taken and built, or not).
    assert summary.delivered == len(delivered) < 900
    assert summary.delivered + summary.remaining == 900
    assert set(found.values()) == {DELIVERED, PENDING}

    with SmtpServer() as server:
        rest = send_issue(ISSUE, make_workspace(tmp_path, port=server.port, connections=4), backoff=FAST)
        assert rest.delivered == 900 - len(delivered)
        assert set(server.handler.recipients()) == set(addresses) - delivered
