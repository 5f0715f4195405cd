"""A second run of an issue, read as it is at scale: the ledger and the journal compared in SQLite,
``digest status`` during or after a killed send, the list's scratch files on the workspace's disk,
and the address memory's version."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from digestcli.errors import DeliveryError
from digestcli.state import DELIVERED, FAILED, PENDING, SENDING, UNKNOWN
from digestcli.state.history import IssueFacts, assess, journal_gaps
from digestcli.state.journal import Journal, journal_name, reader_states
from digestcli.state.ledger import Ledger, read_status
from digestcli.subscribers import SCRATCH_DIR, load_subscribers

ISSUE = "2026-11-30-weekly"
FACTS = IssueFacts(ISSUE, 7, "2026-11-30", "Weekly")


def _journal(state: Path, lines: list[str]) -> Path:
    path = state / "journal" / journal_name(ISSUE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _reader(state: str, address: str, reply: str = "") -> str:
    return f"reader\t1.0\t{state}\t{address}\t{reply}\t.\n"


def _ledger(state: Path, rows: dict[str, str]) -> None:
    with Ledger(state) as ledger:
        ledger.plan(ISSUE, list(rows), {})
        for address, final in rows.items():
            if final != PENDING:
                ledger.sending(ISSUE, address)
                ledger.record(ISSUE, address, final, "a reply")


# Every pair the rank rule has to settle: (the ledger's state or None, the journal's lines).
CASES = {
    "a@x.org": (DELIVERED, [SENDING, DELIVERED]),
    "b@x.org": (FAILED, [SENDING, DELIVERED]),  # an older ledger copy: a gap (delivered)
    "c@x.org": (UNKNOWN, [DELIVERED]),  # a gap (delivered)
    "d@x.org": (None, [SENDING]),  # no row, in flight: a gap (unknown)
    "e@x.org": (None, [SENDING, FAILED]),  # no row, failed: not a gap (nobody has it)
    "f@x.org": (DELIVERED, [SENDING]),  # the ledger says more
    "g@x.org": (UNKNOWN, [SENDING]),  # as much
    "h@x.org": (PENDING, [DELIVERED, SENDING]),  # the last line wins: unknown
    "i@x.org": (None, [DELIVERED]),
}


def _case_files(state: Path) -> None:
    _ledger(state, {a: s for a, (s, _) in CASES.items() if s is not None})
    lines = [_reader(s, a) for a, (_, states) in CASES.items() for s in states]
    lines.insert(3, "reader\t1.0\tdelivered\tz@x.org\t250 ok")  # torn by a kill: not whole
    lines.insert(4, "\n")
    _journal(state, lines)


def test_the_journal_is_read_as_a_replay_reads_it(tmp_path: Path):
    _case_files(tmp_path)
    found = [pair for batch in reader_states(Journal(tmp_path).path(ISSUE), size=40) for pair in batch]
    last = {address: state for state, address in found}
    assert last == Journal(tmp_path).replay(ISSUE).states
    assert "z@x.org" not in last


def test_assess_on_the_ledger_finds_what_the_in_memory_comparison_finds(tmp_path: Path):
    _case_files(tmp_path)
    expected = journal_gaps(
        {a: s for a, (s, _) in CASES.items() if s is not None}, Journal(tmp_path).replay(ISSUE).states
    )
    assert expected == {DELIVERED: 3, UNKNOWN: 2}
    with Ledger(tmp_path, read_only=True) as ledger:
        streamed = assess(tmp_path, ledger, FACTS, {}, states=ledger.state_view(ISSUE))
        in_memory = assess(tmp_path, ledger, FACTS, {}, states=ledger.states(ISSUE))
    assert streamed.gaps == in_memory.gaps == expected
    assert streamed.had_it == in_memory.had_it == 4  # the rows of a, c, f, g
    assert not (tmp_path / SCRATCH_DIR).exists() or not any((tmp_path / SCRATCH_DIR).iterdir())


def test_assess_without_a_ledger_counts_every_reader_the_journal_says_may_have_it(tmp_path: Path):
    _journal(tmp_path, [*(_reader(SENDING, f"r{n}@x.org") for n in range(5)), _reader(FAILED, "r0@x.org")])
    assessment = assess(tmp_path, None, FACTS, {})
    assert assessment.gaps == {UNKNOWN: 4}
    assert assessment.had_it == 0


def test_assess_reads_the_rows_a_version_1_ledger_keeps_under_the_file_name(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.plan("weekly", ["a@x.org"], {})
        ledger.sending("weekly", "a@x.org")
        ledger.record("weekly", "a@x.org", DELIVERED, "250 ok")
    _journal(tmp_path, [_reader(DELIVERED, "a@x.org")])
    with Ledger(tmp_path, read_only=True) as ledger:
        assert assess(tmp_path, ledger, FACTS, {}, rows_of="weekly").gaps == {}
        assert assess(tmp_path, ledger, FACTS, {}).gaps == {DELIVERED: 1}


def test_status_counts_the_readers_a_killed_send_never_reached_as_pending(digest, workspace: Path):
    state = workspace / ".digest"
    with Ledger(state) as ledger:
        ledger.begin_run(
            ISSUE, number=7, date="2026-11-30", subject="Weekly", draft="", parts={}, readers=3000
        )
        ledger.add_pending(ISSUE, [f"r{n:04d}@x.org" for n in range(512)])
        for n in range(5):
            ledger.sending(ISSUE, f"r{n:04d}@x.org")
            if n < 4:
                ledger.record(ISSUE, f"r{n:04d}@x.org", DELIVERED, "250 ok")
    [status] = read_status(state)
    assert status.total == 3000
    assert status.not_reached == 3000 - 512
    assert status.counts[PENDING] == 3000 - 512 + 507
    shown = digest("status")
    assert shown.exit_code == 0
    assert "3,000 readers: 2995 pending (2488 not yet reached), 1 sending, 4 delivered" in shown.stdout


def test_status_of_a_finished_run_or_an_older_ledger_has_nothing_unreached(tmp_path: Path):
    with Ledger(tmp_path) as ledger:
        ledger.begin_run(ISSUE, number=7, date="", subject="", draft="", parts={}, readers=2)
        ledger.plan(ISSUE, ["a@x.org", "b@x.org", "c@x.org"], {})  # more rows than planned: none missing
        ledger._db.execute("DROP TABLE run_size")  # a ledger from before the table
    [status] = read_status(tmp_path)  # read-only: the table is not made
    assert (status.total, status.not_reached) == (3, 0)
    with Ledger(tmp_path) as ledger:  # opened to write: made again, empty
        assert ledger.status(ISSUE).not_reached == 0


def _list(tmp_path: Path, count: int = 3) -> Path:
    path = tmp_path / "subscribers.csv"
    path.write_text("email\n" + "".join(f"r{n}@example.com\n" for n in range(count)), encoding="utf-8")
    return path


def test_the_list_copy_is_kept_under_the_state_folder_and_leaves_no_trace(tmp_path: Path):
    state = tmp_path / ".digest"
    abandoned = state / SCRATCH_DIR / "digest-list-999999999-x"  # a pid no process has
    readers = load_subscribers(_list(tmp_path), scratch_in=state)
    assert readers.database_path.parent.parent == state / SCRATCH_DIR
    assert readers.count == 3
    readers.close()
    assert not state.exists()  # made for the list, removed with it: a dry run leaves nothing

    abandoned.mkdir(parents=True)
    (state / "ledger.sqlite3").write_bytes(b"")
    again = load_subscribers(_list(tmp_path), scratch_in=state)
    assert not abandoned.exists()
    again.close()
    assert state.is_dir() and not any((state / SCRATCH_DIR).iterdir())  # tmp/ was there before


def test_a_full_disk_names_the_scratch_folder_not_the_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import digestcli.subscribers as subscribers

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(subscribers.shutil, "copyfile", full)  # a full disk cannot be made here
    state = tmp_path / ".digest"
    with pytest.raises(DeliveryError) as raised:
        load_subscribers(_list(tmp_path), scratch_in=state)
    assert "no space left for digest's scratch files" in str(raised.value.message)
    assert raised.value.where == str(state / SCRATCH_DIR)
    assert "subscribers.csv" not in str(raised.value)
    assert not state.exists()


def test_the_quick_checks_reserved_domains_are_email_validators():
    from email_validator import SPECIAL_USE_DOMAIN_NAMES, __version__

    from digestcli.subscribers import _RESERVED_TLDS, CHECK_RULES, checker_version

    assert sorted(tld.removeprefix(".") for tld in _RESERVED_TLDS) == sorted(SPECIAL_USE_DOMAIN_NAMES)
    assert checker_version() == f"{__version__}+rules{CHECK_RULES}"


def test_the_plan_counts_every_row_the_issue_has_once_it_is_written(tmp_path: Path):
    from digestcli.delivery.plan import plan_readers

    state = tmp_path / ".digest"
    _ledger(state, {"gone@example.com": DELIVERED, "left@example.com": PENDING, "r0@example.com": FAILED})
    readers = load_subscribers(_list(tmp_path, 5), scratch_in=state)
    plan = plan_readers(ISSUE, readers, state)
    assert plan.unlisted == 1  # left@ is marked skipped; gone@ keeps its row
    assert plan.readers == 5 + 2
    readers.close()
