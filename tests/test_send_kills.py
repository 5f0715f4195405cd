"""`digest send` killed again and again (SIGKILL and SIGTERM at random moments), then run to the end:
every valid reader gets the issue exactly once, except readers the ledger marks `unknown` (at most
one per connection per SIGKILL), who got it once or not at all."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import VALID_DRAFT
from fault_smtp import FaultServer
from smtp_server import write_readers

from digestcli.draft import load_draft
from digestcli.state.ledger import DELIVERED, PENDING, SENDING, UNKNOWN, Ledger

SEED = int(os.environ.get("DIGEST_KILL_SEED", "20261120"))  # printed with every failure
CONNECTIONS = 3
KILLS = {signal.SIGKILL: 11, signal.SIGTERM: 11}  # the order is shuffled
NEW_MESSAGES = (5, 25)  # each round is killed once the server has this many more messages
# A round may overshoot its target by the messages on the wire when the kill lands, and a little more.
OVERSHOOT = CONNECTIONS + 2
DRAFT_NAME = "2026-11-20-test.md"
INVALID_ROWS = "not-an-address,Broken Row\n@example.com,No Local Part\n"


def kill_workspace(root: Path, port: int, readers: int) -> list[str]:
    (root / "digest.toml").write_text(
        "[newsletter]\n"
        'title = "Kill Test"\n'
        'from = "Kill Test <weekly@lantern-weekly.org>"\n'
        'postal_address = "12 Riverside Walk, Springfield 10001"\n'
        'unsubscribe_url = "https://lantern-weekly.org/unsubscribe?token={token}"\n'
        "[delivery]\n"
        'transport = "smtp"\n'
        f"connections = {CONNECTIONS}\n"
        "retries = 2\n"
        "patience = 5\n"
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'security = "none"\n',
        encoding="utf-8",
    )
    (root / "drafts").mkdir()
    (root / "drafts" / DRAFT_NAME).write_text(VALID_DRAFT, encoding="utf-8")
    return write_readers(root, readers, extra=INVALID_ROWS)


def start_send(root: Path, round_no: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "DIGEST_DEBUG"}
    env["NO_COLOR"] = "1"
    # Files, not pipes: a pipe nobody reads could fill up and block the send.
    out_path, err_path = root / f"stdout-{round_no:02d}.txt", root / f"stderr-{round_no:02d}.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from digestcli.cli import main; main()",
                "send",
                f"drafts/{DRAFT_NAME}",
                "--yes",
            ],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )


def output_of(root: Path, round_no: int) -> str:
    out = (root / f"stdout-{round_no:02d}.txt").read_text(encoding="utf-8", errors="replace")
    err = (root / f"stderr-{round_no:02d}.txt").read_text(encoding="utf-8", errors="replace")
    return f"--- stdout\n{out}--- stderr\n{err}"


def test_many_kills_and_a_resume_mail_every_reader_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    kinds = [kind for kind, count in KILLS.items() for _ in range(count)]
    rng.shuffle(kinds)
    targets = [rng.randint(*NEW_MESSAGES) for _ in kinds]
    # Enough readers that the kills cannot finish the list (484 with the default seed): every
    # round ends in a kill, and the last run still has some 100 readers to mail.
    readers = sum(targets) + OVERSHOOT * len(kinds) + 50
    why = f"(seed {SEED})"
    with FaultServer() as server:
        addresses = kill_workspace(tmp_path, server.port, readers)
        issue_id = load_draft(tmp_path / "drafts" / DRAFT_NAME).issue_id
        server.rule("dot", delay=0.01)  # messages in flight (data in, no 250 yet) when a kill lands
        sigkills = 0
        seen_sending: set[str] = set()  # rows `sending` after a SIGKILL: each may become unknown
        for round_no, (kind, target) in enumerate(zip(kinds, targets, strict=True)):
            before = len(server.received)
            sender = start_send(tmp_path, round_no)
            try:
                deadline = time.monotonic() + 20
                while len(server.received) - before < target and sender.poll() is None:
                    assert time.monotonic() < deadline, f"round {round_no}: the send never got going {why}"
                    time.sleep(0.002)
                assert sender.poll() is None, (
                    f"round {round_no}: the send ended (exit {sender.returncode}) before it could be"
                    f" killed: the list is too short or the server too fast {why}\n"
                    + output_of(tmp_path, round_no)
                )
                sender.send_signal(kind)
                sender.wait(30)
            finally:
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
            detail = f"round {round_no}, {kind.name} after {target} new messages {why}\n" + output_of(
                tmp_path, round_no
            )
            if kind == signal.SIGTERM:
                assert sender.returncode == 143, detail
                assert "Traceback" not in output_of(tmp_path, round_no), detail
            else:
                assert sender.returncode == -signal.SIGKILL, detail
                sigkills += 1

            with Ledger(tmp_path / ".digest") as ledger:
                states = ledger.states(issue_id)
            received = server.recipients()
            assert max(received.values()) == 1, f"a reader got the issue twice: {detail}"
            sending = {address for address, state in states.items() if state == SENDING}
            if kind == signal.SIGTERM:
                assert not sending, f"rows left in flight after SIGTERM: {sorted(sending)}; {detail}"
            else:
                assert len(sending) <= CONNECTIONS, (
                    f"more in flight than connections: {sorted(sending)}; {detail}"
                )
                seen_sending |= sending
            # The ledger never claims more than the server has, nor forgets what went out.
            delivered = {address for address, state in states.items() if state == DELIVERED}
            assert delivered <= set(received), f"delivered but never received: {detail}"
            maybe = {address for address, state in states.items() if state in (SENDING, UNKNOWN)}
            assert set(received) <= delivered | maybe, f"received but the ledger does not know: {detail}"
            assert set(states.values()) <= {PENDING, SENDING, DELIVERED, UNKNOWN}, detail

        final_round = len(kinds)
        sender = start_send(tmp_path, final_round)
        try:
            sender.wait(60)
        finally:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
        final = output_of(tmp_path, final_round)
        assert sender.returncode in (0, 1), final
        assert "Traceback" not in final, final
        received = server.recipients()
        total_messages = len(server.received)

    with Ledger(tmp_path / ".digest") as ledger:
        states = ledger.states(issue_id)
    assert sigkills == KILLS[signal.SIGKILL], why
    assert set(states) == set(addresses), f"not every valid reader has a row, or others do {why}"
    assert set(received) <= set(addresses), f"mail to someone not on the list {why}"
    assert set(states.values()) <= {DELIVERED, UNKNOWN}, f"left unfinished: {sorted(set(states.values()))}"
    assert max(received.values()) == 1, f"a reader got the issue twice {why}"
    delivered = {address for address, state in states.items() if state == DELIVERED}
    unknown = {address for address, state in states.items() if state == UNKNOWN}
    assert all(received[address] == 1 for address in delivered), f"delivered but not received {why}"
    assert all(received[address] <= 1 for address in unknown), why
    assert len(unknown) <= CONNECTIONS * sigkills, why
    assert len(unknown) <= len(seen_sending), why
    # Exactly the readers in flight at a SIGKILL are unknown: none after a SIGTERM, none forgotten.
    assert unknown == seen_sending, f"unknown {sorted(unknown)} != in flight {sorted(seen_sending)} {why}"
    got_one = {address for address in unknown if received[address]}
    assert total_messages == len(delivered) + len(got_one), why
