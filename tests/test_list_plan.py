"""A send's plan made in the list's scratch file against the ledger: its groups, counted and read
back in list order; the ledger's rows written in bulk, or as the send reaches the readers."""

from __future__ import annotations

from pathlib import Path

import pytest
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.delivery import read_status, send_issue
from digestcli.delivery.plan import NOT_LISTED, plan_readers
from digestcli.errors import DeliveryError
from digestcli.state.ledger import DELIVERED, FAILED, PENDING, SKIPPED, UNKNOWN, Ledger
from digestcli.state.suppressions import SuppressionList
from digestcli.subscribers import parse_subscribers

ISSUE = "weekly-9"


def ledger_rows(state: Path) -> dict[str, tuple[str, str]]:
    with Ledger(state) as ledger:
        return {
            address: (entry.state, entry.reply)
            for address in ledger.states(ISSUE)
            if (entry := ledger.entry(ISSUE, address)) is not None
        }


def a_past(state: Path) -> None:
    """Rows an earlier run left: one reader of each kind, one who left the list, one skipped."""
    with Ledger(state) as ledger:
        ledger.plan(ISSUE, ["r0@x.org", "r1@x.org", "r2@x.org", "r3@x.org", "gone@x.org"], {"r4@x.org": "x"})
        for address, outcome in (("r0@x.org", DELIVERED), ("r1@x.org", UNKNOWN), ("r2@x.org", FAILED)):
            ledger.sending(ISSUE, address)
            ledger.record(ISSUE, address, outcome, "a reply")
    SuppressionList(state).add("r5@x.org", "bounced")
    SuppressionList(state).add("r0@x.org")  # delivered already: stays delivered


def test_the_groups_are_counted_and_read_in_list_order(tmp_path: Path) -> None:
    state = tmp_path / ".digest"
    a_past(state)
    readers = parse_subscribers("email\n" + "".join(f"r{n}@x.org\n" for n in range(9)))
    plan = plan_readers(ISSUE, readers, state, limit=2)
    emails = lambda group: [reader.email for reader in group]  # noqa: E731
    assert emails(plan.already_delivered) == ["r0@x.org"]
    assert emails(plan.held_unknown) == ["r1@x.org"] and emails(plan.held_failed) == ["r2@x.org"]
    assert emails(plan.suppressed) == ["r5@x.org"]
    assert emails(plan.due) == ["r3@x.org", "r4@x.org"] and emails(plan.due) == emails(plan.due)
    assert emails(plan.later) == ["r6@x.org", "r7@x.org", "r8@x.org"]
    assert [len(g) for g in (plan.due, plan.later, plan.suppressed)] == [2, 3, 1]
    assert plan.unlisted == 1  # gone@x.org, still pending

    lifted = plan_readers(ISSUE, readers, state, resend_unknown=True, retry_failed=True)
    assert emails(lifted.due) == [
        "r1@x.org",
        "r2@x.org",
        "r3@x.org",
        "r4@x.org",
        "r6@x.org",
        "r7@x.org",
        "r8@x.org",
    ]


def test_the_ledger_learns_the_same_plan_in_bulk_or_as_the_send_reaches_the_readers(tmp_path: Path) -> None:
    readers = parse_subscribers("email\n" + "".join(f"r{n}@x.org\n" for n in range(9)))
    results = []
    for way in ("at once", "as reached"):
        state = tmp_path / way / ".digest"
        a_past(state)
        plan = plan_readers(ISSUE, readers, state)
        assert plan.tables is not None
        path, wanted, skipped = plan.tables.path, plan.tables.wanted, plan.tables.skipped
        with Ledger(state) as ledger:
            if way == "at once":
                ledger.plan_from(ISSUE, path, wanted, skipped)
            else:
                ledger.plan_from(ISSUE, path, wanted, skipped, new=False)
                assert ledger.entry(ISSUE, "r6@x.org") is None  # not reached yet: no row
                assert ledger.entry(ISSUE, "r4@x.org").state == PENDING  # type: ignore[union-attr]
                assert ledger.entry(ISSUE, "gone@x.org").state == SKIPPED  # type: ignore[union-attr]
                reached = list(plan.due.ahead(lambda keys: ledger.add_pending(ISSUE, keys)))
                assert [r.email for r in reached] == [
                    "r3@x.org",
                    "r4@x.org",
                    "r6@x.org",
                    "r7@x.org",
                    "r8@x.org",
                ]
                assert ledger.entry(ISSUE, "r6@x.org").state == PENDING  # type: ignore[union-attr]
                ledger.plan_from(ISSUE, path, wanted, skipped)  # what the run did not reach
        results.append({address: found for address, (found, _) in ledger_rows(state).items()})
        assert ledger_rows(state)["gone@x.org"] == (SKIPPED, NOT_LISTED)
        assert ledger_rows(state)["r5@x.org"] == (SKIPPED, "suppressed: bounced")
    assert results[0] == results[1]
    assert results[0]["r4@x.org"] == PENDING  # was skipped, back in the list and due: pending again
    assert results[0]["r0@x.org"] == DELIVERED and results[0]["r1@x.org"] == UNKNOWN


def test_the_state_view_reads_what_states_gives(tmp_path: Path) -> None:
    state = tmp_path / ".digest"
    a_past(state)
    with Ledger(state) as ledger:
        view = ledger.state_view(ISSUE)
        assert dict(view.items()) == ledger.states(ISSUE) and len(view) == len(ledger.states(ISSUE))
        assert view.get("r1@x.org") == UNKNOWN and view.get("nobody@x.org") is None
        assert sorted(view.values()) == sorted(ledger.states(ISSUE).values())
        assert view == ledger.states(ISSUE)


def test_every_reader_has_a_row_after_a_run_that_stopped_before_reaching_them(tmp_path: Path) -> None:
    write_readers(tmp_path, 1300)  # more than one chunk of readers (512) read ahead
    (tmp_path / "outbox").write_text("a file where the outbox should be", encoding="utf-8")
    workspace = make_workspace(tmp_path, transport="outbox")
    with pytest.raises(DeliveryError, match="cannot make the outbox"):
        send_issue(make_issue(), workspace)
    (status,) = read_status(workspace.state)
    assert status.counts[PENDING] == 1300 and status.total == 1300

    (tmp_path / "outbox").unlink()
    summary = send_issue(make_issue(), workspace, limit=700)
    assert (summary.delivered, summary.remaining) == (700, 600)
    (status,) = read_status(workspace.state)
    assert (status.counts[DELIVERED], status.counts[PENDING]) == (700, 600)
