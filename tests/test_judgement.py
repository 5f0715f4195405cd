"""When a send must stop: the judgement on its own, reply by reply, without a server."""

from __future__ import annotations

from types import MappingProxyType

from digestcli.delivery.judgement import SAME_REFUSALS, SAME_TEMPORARY, Judge
from digestcli.subscribers import Subscriber

UNVERIFIED = "554 5.7.1 Message rejected: Email address is not verified"


def reader(n: int, domain: str = "") -> Subscriber:
    email = f"r{n}@{domain or f'd{n % 3}.example'}"
    return Subscriber(email, "", MappingProxyType({"email": email}), n)


def judge() -> Judge:
    return Judge("relay:587", max_connection_failures=3, patience=0.0)


def test_the_same_refusal_at_several_domains_stops_and_holds_everyone_given_it() -> None:
    j = judge()
    verdicts = [
        j.permanent(reader(n), UNVERIFIED, named=False, at_recipient=False) for n in range(SAME_REFUSALS)
    ]
    assert verdicts[:-1] == [None] * (SAME_REFUSALS - 1)
    last = verdicts[-1]
    assert last is not None and not last.rerun_helps
    assert [one.email for one in last.held] == [reader(n).email for n in range(SAME_REFUSALS)]
    assert f"same refusal for {SAME_REFUSALS} readers in a row" in last.error.message
    # A later reader given it is held too.
    after = j.permanent(reader(99), UNVERIFIED, named=False, at_recipient=False)
    assert after is not None and [one.email for one in after.held] == [reader(99).email]


def test_one_domain_refusing_everyone_is_that_domains_affair() -> None:
    j = judge()
    assert all(
        j.permanent(reader(n, "one.example"), UNVERIFIED, named=False, at_recipient=False) is None
        for n in range(SAME_REFUSALS * 3)
    )


def test_a_delivery_between_starts_the_count_again() -> None:
    j = judge()
    for n in range(SAME_REFUSALS - 1):
        assert j.permanent(reader(n), UNVERIFIED, named=False, at_recipient=False) is None
    j.answered(delivered=True)
    assert j.permanent(reader(50), UNVERIFIED, named=False, at_recipient=False) is None


def test_a_run_stopped_for_another_reason_holds_no_one_on_a_refusal() -> None:
    j = judge()
    for n in range(SAME_REFUSALS - 1):
        j.permanent(reader(n), UNVERIFIED, named=False, at_recipient=False)
    assert j.permanent(reader(9), UNVERIFIED, named=False, at_recipient=False, stopped=True) is None


def test_refusals_naming_each_reader_stop_only_after_a_long_run_and_hold_no_one() -> None:
    j = judge()
    found = [
        j.permanent(reader(n), f"550 5.7.1 <{reader(n).email}>: Access denied", named=True, at_recipient=True)
        for n in range(20)
    ]
    assert found[:-1] == [None] * 19
    assert found[-1] is not None and found[-1].held == []  # they stay failed


def test_the_same_temporary_refusal_in_a_row_says_when_to_come_back() -> None:
    j = judge()
    verdicts = [
        j.temporary(reader(n), "454 4.7.0 Daily message quota exceeded") for n in range(SAME_TEMPORARY)
    ]
    assert verdicts[:-1] == [None] * (SAME_TEMPORARY - 1)
    last = verdicts[-1]
    assert last is not None and last.retry_after is not None and "try again after" in (last.error.hint or "")


def test_connections_fail_for_the_patience_before_giving_up_but_lost_replies_at_once() -> None:
    patient = Judge("relay:587", max_connection_failures=2, patience=3600.0)
    assert patient.connection_failed("refused") == (1, None)
    assert patient.connection_failed("refused")[1] is None  # two in a row, but not for an hour
    lost = Judge("relay:587", max_connection_failures=2, patience=3600.0)
    lost.connection_failed("no reply after the data", lost_reply=True)
    failures, verdict = lost.connection_failed("no reply after the data", lost_reply=True)
    assert failures == 2 and verdict is not None and "connection failures in a row" in verdict.error.message
