"""A send killed with SIGKILL mid-way, then run again: nobody mailed twice, nobody forgotten."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from smtp_server import ScriptedHandler, SmtpServer, make_issue, make_workspace, write_readers

from digestcli.delivery import Backoff, send_issue
from digestcli.state.ledger import DELIVERED, PENDING, SENDING, UNKNOWN, Ledger

TESTS = Path(__file__).resolve().parent
SENDER_SCRIPT = textwrap.dedent(
    """\
    import sys
    from pathlib import Path

    sys.path.insert(0, sys.argv[3])
    from smtp_server import make_issue, make_workspace
    from digestcli.delivery import Backoff, send_issue

    workspace = make_workspace(Path(sys.argv[1]), port=int(sys.argv[2]), connections=3)
    send_issue(make_issue(), workspace, backoff=Backoff(0.001, 0.01))
    """
)


def test_sigkill_mid_send_then_resume(tmp_path: Path):
    addresses = write_readers(tmp_path, 150)
    script = tmp_path / "send.py"
    script.write_text(SENDER_SCRIPT, encoding="utf-8")
    # Slow answers keep messages in flight (data in, 250 not yet out) when the kill lands.
    handler = ScriptedHandler(data_delay=0.02)
    with SmtpServer(handler) as server:
        sender = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(server.port), str(TESTS)])
        try:
            deadline = time.monotonic() + 30
            while len(server.received) < 30:
                assert sender.poll() is None, "the send ended before it could be killed"
                assert time.monotonic() < deadline, "the send never got going"
                time.sleep(0.002)
            os.kill(sender.pid, signal.SIGKILL)
        finally:
            sender.kill()
            sender.wait()
        assert sender.returncode == -signal.SIGKILL
        mailed_before = handler.recipients()
        assert 30 <= len(mailed_before) < 150
        with Ledger(tmp_path / ".digest") as ledger:
            at_kill = ledger.states(make_issue().issue_id)
        # The kill may land while messages are in flight (then their rows say `sending`), or
        # between two (then none do): the guarantee holds either way.
        assert set(at_kill.values()) <= {PENDING, SENDING, DELIVERED}
        in_flight = {address for address, state in at_kill.items() if state == SENDING}
        assert len(in_flight) <= 3  # at most one message per connection
        delivered_at_kill = {address for address, state in at_kill.items() if state == DELIVERED}
        assert delivered_at_kill <= set(mailed_before)  # the ledger never claims more than it knows
        assert set(mailed_before) <= delivered_at_kill | in_flight  # nor forgets what went out

        handler.data_delay = 0
        workspace = make_workspace(tmp_path, port=server.port, connections=3)
        summary = send_issue(make_issue(), workspace, backoff=Backoff(0.001, 0.01))

    received = handler.recipients()
    assert max(received.values()) == 1, "a reader got the issue twice"
    with Ledger(workspace.state) as ledger:
        states = ledger.states(make_issue().issue_id)
    assert set(states) == set(addresses)
    # The second run completes everyone except those in flight at the kill: they are unknown.
    unknown = {address for address, state in states.items() if state == UNKNOWN}
    assert unknown == in_flight
    assert summary.recovered == len(unknown)
    assert {address for address, state in states.items() if state == DELIVERED} == set(addresses) - unknown
    assert summary.delivered == 150 - len(delivered_at_kill) - len(unknown)
    # Every delivered reader got exactly one copy; the unknown ones got one or none.
    assert all(received[address] == 1 for address, state in states.items() if state == DELIVERED)
    assert all(received[address] <= 1 for address in unknown)
