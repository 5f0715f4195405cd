"""A send against a relay that misbehaves on cue (tests/fault_smtp.py): a quota, an outage, refusals
that name the reader, a refused login, a server that never greets, a kill or a SIGTERM mid-send;
and the parts of the CLI around a send that such days exercise (example settings, pasted
unsubscribe links, a test copy without a list)."""

from __future__ import annotations

import mailbox
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from fault_smtp import FaultServer, Received
from smtp_server import make_issue, make_workspace, write_readers

from digestcli.config import Workspace
from digestcli.delivery import Backoff, SendStopped, SendSummary, judgement, send_issue
from digestcli.delivery import workers as workers_module
from digestcli.errors import DeliveryError
from digestcli.render import RenderedIssue
from digestcli.state.ledger import DEFERRED, DELIVERED, FAILED, PENDING, SENDING, UNKNOWN, Ledger

TESTS = Path(__file__).resolve().parent
FAST = Backoff(first=0.001, most=0.01)
ISSUE = make_issue()
QUOTA = "454 4.7.0 Daily message quota exceeded"
UNVERIFIED = "554 5.7.1 Message rejected: Email address is not verified"
DRAFT_NAME = "2026-11-20-test.md"  # what conftest's write_draft names it
# A [newsletter] section with nothing left from the examples: an SMTP send is allowed to go out.
OWN_NEWSLETTER = (
    "[newsletter]\n"
    'title = "Test Weekly"\n'
    'from = "Test Weekly <weekly@lantern-weekly.org>"\n'
    'postal_address = "12 Riverside Walk, Springfield 10001"\n'
    'unsubscribe_url = "https://lantern-weekly.org/unsubscribe?token={token}"\n'
)
# Run as its own process so that it can be killed; argv: workspace, port, this folder.
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


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


class Calls:
    """A rule's ``when``: matches the addresses ``match`` accepts (all by default) and keeps each
    one it matched, so a test can count what the server was asked and wait for the first time."""

    def __init__(self, match: Callable[[str], bool] | None = None) -> None:
        self.match = match
        self.seen: list[str] = []
        self.first = threading.Event()

    def __call__(self, address: str) -> bool:
        if self.match is not None and not self.match(address):
            return False
        self.seen.append(address)
        self.first.set()
        return True


def send(workspace: Workspace, **options) -> SendSummary:
    options.setdefault("backoff", FAST)
    return send_issue(options.pop("issue", ISSUE), workspace, **options)


def states(root: Path, issue_id: str = ISSUE.issue_id) -> dict[str, str]:
    with Ledger(root / ".digest") as ledger:
        return ledger.states(issue_id)


def the_only_issue(root: Path) -> str:
    with Ledger(root / ".digest") as ledger:
        (issue_id,) = ledger.issues()
        return issue_id


def readers_at_domains(root: Path, count: int, domains: int) -> list[str]:
    """A list spread over several domains: a refusal repeated across domains is the relay's, so
    a test of per-reader refusals must not pass only because every reader shares one domain."""
    addresses = [f"reader{n}@domain{n % domains}.example" for n in range(count)]
    (root / "subscribers.csv").write_text("email\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    return addresses


def parsed(message: Received) -> EmailMessage:
    found = message_from_bytes(message.data, policy=policy.default)
    assert isinstance(found, EmailMessage)
    return found


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return body.get_content()


def write_settings(
    root: Path, port: int, *, newsletter: str = OWN_NEWSLETTER, transport: str = "smtp", connections: int = 1
) -> Path:
    path = root / "digest.toml"
    path.write_text(
        newsletter + "[delivery]\n"
        f'transport = "{transport}"\n'
        f"connections = {connections}\n"
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'security = "none"\n',
        encoding="utf-8",
    )
    return path


def wait_while_alive(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for ``ready``, failing at once (not after the timeout) if the process ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the send ended before the test could stop it"
        assert time.monotonic() < deadline, "the send never got that far"
        time.sleep(0.01)


# -- a quota, a throttle ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "refusal"),
    [("mail", QUOTA), ("rcpt", "451 4.7.1 try later")],
    ids=["quota-at-mail", "throttle-at-rcpt"],
)
def test_a_quota_stops_the_send_at_once_and_says_when_to_come_back(
    tmp_path: Path, server: FaultServer, stage: str, refusal: str
):
    addresses = write_readers(tmp_path, 50)
    asked = Calls()
    server.rule(stage, refusal, when=asked)
    workspace = make_workspace(tmp_path, port=server.port, connections=2, retries=3)
    started = time.monotonic()
    with pytest.raises(SendStopped) as caught:
        send(workspace)
    assert time.monotonic() - started < 10  # a generous bound: it must not work through the list

    error = caught.value
    assert refusal in error.message
    summary = error.summary
    assert summary.retry_after is not None
    assert abs(summary.retry_after - (time.time() + judgement.RETRY_AFTER)) < 120
    when = re.search(r"try again after (\d\d:\d\d)", error.hint or "")
    assert when is not None, error.hint
    assert when.group(1) == time.strftime("%H:%M", time.localtime(summary.retry_after))
    # Every try under a quota counts against the account: a few readers' tries, not 50 x 3.
    assert 1 <= len(asked.seen) <= judgement.SAME_TEMPORARY * 3 + 2
    assert (summary.delivered, summary.failed) == (0, 0)
    assert summary.deferred + summary.remaining == 50
    after = states(tmp_path)
    assert set(after) == set(addresses)
    assert set(after.values()) <= {PENDING, DEFERRED}  # no `sending`, no one failed for a quota
    assert server.received == []

    server.clear_rules()
    again = send(workspace)
    assert again.delivered == 50
    assert server.recipients() == dict.fromkeys(addresses, 1)
    assert set(states(tmp_path).values()) == {DELIVERED}


# -- an outage ---------------------------------------------------------------------------------------


def test_an_outage_shorter_than_the_patience_is_waited_out(tmp_path: Path, server: FaultServer):
    addresses = write_readers(tmp_path, 20)
    workspace = make_workspace(tmp_path, port=server.port, connections=2)
    said: list[str] = []
    server.outage(2.0)
    summary = send(
        workspace,
        patience=6,
        backoff=Backoff(0.2, 1.0),
        progress=lambda delivered, total, state: said.append(state),
    )
    assert any(state.startswith("retrying: ") for state in said)  # the outage was really met
    assert (summary.delivered, summary.deferred, summary.unknown) == (20, 0, 0)
    assert server.recipients() == dict.fromkeys(addresses, 1)
    assert set(states(tmp_path).values()) == {DELIVERED}


def test_an_outage_longer_than_the_patience_stops_the_send(tmp_path: Path, server: FaultServer):
    addresses = write_readers(tmp_path, 20)
    workspace = make_workspace(tmp_path, port=server.port, connections=2)
    server.down()
    with pytest.raises(SendStopped) as caught:
        send(workspace, patience=0.5, backoff=Backoff(0.2, 1.0))
    error = caught.value
    assert "connection failures" in error.message
    assert error.where == f"127.0.0.1:{server.port}"
    assert (error.summary.delivered, error.summary.remaining) == (0, 20)
    assert states(tmp_path) == dict.fromkeys(addresses, PENDING)


# -- refusals: about the reader, or about the sender -------------------------------------------------


def test_refusals_that_name_the_reader_fail_only_those_readers(tmp_path: Path, server: FaultServer):
    addresses = readers_at_domains(tmp_path, 60, domains=4)
    denied = set(addresses[2::3])
    server.rule("rcpt", "550 5.7.1 <{rcpt}>: Access denied", when=lambda rcpt: rcpt in denied)
    workspace = make_workspace(tmp_path, port=server.port, connections=2)
    summary = send(workspace)  # no SendStopped: deliveries come between the refusals
    assert (summary.delivered, summary.failed, summary.remaining) == (40, 20, 0)
    assert server.recipients() == {address: 1 for address in addresses if address not in denied}
    assert {address for address, state in states(tmp_path).items() if state == FAILED} == denied
    assert {address for address, _, _ in summary.problems} == denied
    assert all(f"<{address}>: Access denied" in reply for address, _, reply in summary.problems)


def test_a_policy_refusal_without_an_address_for_everyone_stops_the_send(tmp_path: Path, server: FaultServer):
    addresses = readers_at_domains(tmp_path, 12, domains=4)
    server.rule("data", UNVERIFIED, when=lambda rcpt: rcpt != addresses[0])
    # One connection: the first reader's delivery surely comes before the first refusal (with
    # two, it may not; see the next test).
    workspace = make_workspace(tmp_path, port=server.port, connections=1)
    with pytest.raises(SendStopped) as caught:
        send(workspace)
    error = caught.value
    assert f"same refusal for {judgement.SAME_REFUSALS} readers in a row" in error.message
    assert UNVERIFIED in error.message
    assert (error.summary.delivered, error.summary.failed) == (1, 0)
    after = states(tmp_path)
    assert after[addresses[0]] == DELIVERED
    assert {after[address] for address in addresses[1:]} == {PENDING}  # it was not about them


def test_a_refusal_that_stops_the_send_fails_no_reader_whatever_the_order_of_replies(
    tmp_path: Path, server: FaultServer
):
    addresses = readers_at_domains(tmp_path, 12, domains=4)
    # Two connections, and replies that come back in this order: reader1 refused, reader0
    # delivered, then five refusals in a row. Without the delays the same order comes about by
    # chance, in about half the runs.
    server.rule("dot", delay=0.3, when=lambda rcpt: rcpt == addresses[0])
    server.rule("data", UNVERIFIED, delay=0.6, when=lambda rcpt: rcpt == addresses[2])
    server.rule("data", UNVERIFIED, when=lambda rcpt: rcpt != addresses[0])
    workspace = make_workspace(tmp_path, port=server.port, connections=2)
    with pytest.raises(SendStopped, match="same refusal for"):
        send(workspace)
    after = states(tmp_path)
    assert after[addresses[0]] == DELIVERED
    assert FAILED not in after.values(), {a: s for a, s in after.items() if s == FAILED}


# -- a refused login ----------------------------------------------------------------------------------


def test_a_refused_login_is_tried_once_not_once_per_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    addresses = write_readers(tmp_path, 10)
    with FaultServer(logins={"editor": "right"}) as server:
        workspace = make_workspace(tmp_path, port=server.port, username="editor", connections=4)
        with pytest.raises(DeliveryError) as caught:
            send(workspace)
        error = caught.value
        assert "refused the login for 'editor'" in error.message
        assert "535 5.7.8 Authentication credentials invalid" in error.message  # the server's words
        assert error.where == f"127.0.0.1:{server.port}"
        # Relays lock an account out after a few bad passwords: four connections, one attempt.
        assert server.logins == [("editor", False)]
        assert server.received == []
    assert states(tmp_path) == dict.fromkeys(addresses, PENDING)


def test_a_refused_login_is_tried_once_even_if_the_failing_thread_is_slow_to_say_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    write_readers(tmp_path, 10)
    fail = workers_module.Dispatch._fail

    def descheduled(self, *args, **kwargs):  # the thread losing the CPU, as it may at any moment
        time.sleep(0.05)
        return fail(self, *args, **kwargs)

    monkeypatch.setattr(workers_module.Dispatch, "_fail", descheduled)
    with FaultServer(logins={"editor": "right"}) as server:
        workspace = make_workspace(tmp_path, port=server.port, username="editor", connections=4)
        with pytest.raises(DeliveryError, match="refused the login"):
            send(workspace)
        assert server.logins == [("editor", False)]


# -- a kill while the server is slow, a server that never greets ------------------------------------


def test_a_kill_while_the_server_is_slow_at_rcpt_leaves_no_unknown(tmp_path: Path, server: FaultServer):
    addresses = write_readers(tmp_path, 9)
    script = tmp_path / "send.py"
    script.write_text(SENDER_SCRIPT, encoding="utf-8")
    at_rcpt = Calls()
    server.rule("rcpt", delay=2.0, when=at_rcpt)  # slow, then the normal answer
    sender = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(server.port), str(TESTS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_while_alive(sender, at_rcpt.first.is_set)
        time.sleep(0.5)  # every connection is now waiting for its reply to RCPT
        assert sender.poll() is None
        os.kill(sender.pid, signal.SIGKILL)
    finally:
        sender.kill()
        sender.wait()
    assert sender.returncode == -signal.SIGKILL

    # Nothing was past RCPT: no data can have left, so no row may claim it might have.
    at_kill = states(tmp_path)
    assert at_kill == dict.fromkeys(addresses, PENDING)
    assert server.received == []

    server.clear_rules()
    summary = send(make_workspace(tmp_path, port=server.port, connections=3))
    assert summary.recovered == 0
    assert (summary.delivered, summary.unknown) == (9, 0)
    assert server.recipients() == dict.fromkeys(addresses, 1)
    assert set(states(tmp_path).values()) == {DELIVERED}


def test_a_server_that_never_greets_is_named_at_once(tmp_path: Path, server: FaultServer):
    addresses = write_readers(tmp_path, 5)
    server.rule("greeting", action="silence")
    workspace = make_workspace(tmp_path, port=server.port, connections=2, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        send(workspace, patience=600)  # a retry loop would show as a hang, not as a quick error
    assert time.monotonic() - started < 5
    text = str(caught.value)
    assert "did not answer as an SMTP server (no greeting in 1 s)" in text
    assert f"127.0.0.1:{server.port}" in text
    assert server.connections == 1
    assert states(tmp_path) == dict.fromkeys(addresses, PENDING)


# -- example settings ---------------------------------------------------------------------------------


def test_example_settings_are_refused_over_smtp_and_only_warned_otherwise(
    digest, write_draft, workspace: Path, server: FaultServer
):
    (workspace / "subscribers.csv").write_text("email\nann@lantern-weekly.org\n", encoding="utf-8")
    draft = str(write_draft())
    settings = write_settings(workspace, server.port, newsletter="")  # no [newsletter]: examples

    refused = digest("send", draft, "--yes")
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert "newsletter.from" in refused.stderr
    assert str(settings.resolve()) in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (server.connections, server.received) == (0, [])

    dry = digest("send", draft, "--dry-run")
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert "warning:" in dry.stderr and "newsletter.from" in dry.stderr
    assert server.connections == 0

    write_settings(workspace, server.port, newsletter="", transport="outbox")
    outbox = digest("send", draft, "--yes")
    assert outbox.exit_code == 0, outbox.stdout + outbox.stderr
    assert "warning:" in outbox.stderr and "newsletter.from" in outbox.stderr
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 1
    assert server.received == []


# -- a reader's value as a link's target ------------------------------------------------------------


def issue_with_a_reader_link() -> RenderedIssue:
    base = make_issue(issue_id="2026-11-20-links")
    html = base.html.replace(
        '<p><a href="{{ reader.unsubscribe_url }}">',
        '<p>Your <a href="{{ reader.site }}">site</a>.</p>\n<p><a href="{{ reader.unsubscribe_url }}">',
    )
    assert html != base.html
    return RenderedIssue(base.issue_id, base.title, base.subject, base.preheader, html, base.text)


def test_a_reader_value_that_starts_a_link_opens_only_what_a_link_may(tmp_path: Path, server: FaultServer):
    evil, fine = "eve@example.net", "fred@example.net"
    (tmp_path / "subscribers.csv").write_text(
        f"email,name,site\n{evil},Eve,javascript:alert(1)\n{fine},Fred,https://ok.example/\n",
        encoding="utf-8",
    )
    issue = issue_with_a_reader_link()
    summary = send(make_workspace(tmp_path, port=server.port), issue=issue)
    assert summary.delivered == 2
    html = {message.rcpt_tos[0]: html_of(parsed(message)) for message in server.received}
    assert "javascript:" not in html[evil].lower()
    assert 'href="https://ok.example/"' in html[fine]
    assert summary.links_left_out == [(evil, "site", "javascript:alert(1)")]
    # The lint side is link-slot's, tested with the other rules (tests/test_lint_rules.py).


def test_the_readers_name_is_guarded_too_when_it_starts_a_link(tmp_path: Path, server: FaultServer):
    # `name` is a field every reader has, but its value comes from the CSV like any other.
    (tmp_path / "subscribers.csv").write_text("email,name\neve@example.net,javascript:alert(1)\n", "utf-8")
    base = make_issue(issue_id="2026-11-20-names")
    html = base.html.replace("Hello {{ reader.name }},", 'Hello <a href="{{ reader.name }}">you</a>,')
    assert html != base.html
    issue = RenderedIssue(base.issue_id, base.title, base.subject, base.preheader, html, base.text)
    summary = send(make_workspace(tmp_path, port=server.port), issue=issue)
    assert summary.delivered == 1
    assert 'href=""' in html_of(parsed(server.received[0]))
    assert summary.links_left_out == [("eve@example.net", "name", "javascript:alert(1)")]


def test_a_progress_callback_that_fails_does_not_hang_the_send_or_leave_a_row_sending(
    tmp_path: Path, server: FaultServer
):
    addresses = write_readers(tmp_path, 12)

    def broken(delivered: int, total: int, state: str) -> None:
        raise OSError(5, "Input/output error")  # a terminal that went away

    summary = send(make_workspace(tmp_path, port=server.port, connections=3), progress=broken)
    assert summary.delivered == 12
    assert server.recipients() == dict.fromkeys(addresses, 1)
    assert set(states(tmp_path).values()) == {DELIVERED}


def test_a_ledger_that_fails_before_the_data_leaves_the_reader_pending(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch
):
    addresses = write_readers(tmp_path, 3)

    def full(self: Ledger, issue_id: str, address: str) -> None:
        raise DeliveryError("cannot write the journal: No space left on device")

    monkeypatch.setattr(Ledger, "sending", full)
    with pytest.raises(SendStopped, match="No space left"):
        send(make_workspace(tmp_path, port=server.port, connections=1))
    assert server.received == []  # nothing left
    assert set(states(tmp_path).values()) == {PENDING}, "no reader may be unknown: none was sent"
    monkeypatch.undo()
    assert send(make_workspace(tmp_path, port=server.port)).delivered == 3
    assert server.recipients() == dict.fromkeys(addresses, 1)


# -- the CLI: pasted unsubscribe links, status of a missing draft, a test copy without a list -------


def unsubscribe_links(outbox: Path) -> dict[str, tuple[str, str]]:
    """reader -> (the https link, the mailto:) of List-Unsubscribe in each message of the outbox."""
    links = {}
    for message in mailbox.Maildir(outbox, create=False):
        header = "".join(str(message["List-Unsubscribe"]).split())  # unfolded; no spaces inside
        url, mailto = re.findall(r"<([^>]*)>", header)
        links[parseaddr(message["To"])[1]] = (url, mailto)
    return links


def test_unsubscribe_takes_a_link_pasted_in_any_of_the_usual_shapes(digest, write_draft, workspace: Path):
    (workspace / "digest.toml").write_text(
        '[newsletter]\ntitle = "Test Weekly"\nunsubscribe_mailto = "leave@example.com"\n', encoding="utf-8"
    )
    readers = [f"reader{n}@example.net" for n in range(5)]
    (workspace / "subscribers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    assert digest("send", str(write_draft()), "--yes").exit_code == 0
    links = unsubscribe_links(workspace / "outbox")
    assert set(links) == set(readers)
    assert all(url.startswith("https://example.com/unsubscribe?token=") for url, _ in links.values())

    def broken(url: str) -> str:  # a mail client wrapping the link mid-token
        cut = url.index("token=") + 12
        return f"{url[:cut]} \n{url[cut:]}"

    pasted = {
        readers[0]: f"<{links[readers[0]][0]}>",
        readers[1]: broken(links[readers[1]][0]),
        readers[2]: links[readers[2]][0].replace("?token=", "?utm_source=x&token="),
        readers[3]: links[readers[3]][1],
    }
    assert pasted[readers[3]].startswith("mailto:leave@example.com?subject=unsubscribe%20")
    for done, (reader, text) in enumerate(pasted.items(), 1):
        result = digest("unsubscribe", text)
        assert result.exit_code == 0, f"{text!r}: {result.stderr}"
        assert f"{reader} is unsubscribed" in result.stdout
        listed = digest("unsubscribe", "--list").stdout
        assert {line.split()[0] for line in listed.splitlines() if line.strip()} == set(readers[:done])


def test_status_of_a_missing_draft_is_one_line_naming_it(digest, workspace: Path):
    result = digest("status", "drafts/nope.md")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "drafts/nope.md" in lines[0]


def test_a_test_copy_needs_no_reader_list(digest, write_draft, workspace: Path):
    assert not (workspace / "subscribers.csv").exists()
    result = digest("send", str(write_draft()), "--test", "me@example.org")
    assert result.exit_code == 0, result.stdout + result.stderr
    [message] = mailbox.Maildir(workspace / "outbox", create=False)
    assert parseaddr(message["To"])[1] == "me@example.org"
    assert message["Subject"].startswith("[TEST] ")


# -- SIGTERM ------------------------------------------------------------------------------------------


def start_cli_send(root: Path, draft: Path) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("DIGEST_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-c", "from digestcli.cli import main; main()", "send", str(draft), "--yes"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("signals", [1, 2], ids=["one-sigterm", "two-sigterms"])
def test_sigterm_stops_a_cli_send_with_the_ledger_settled(
    write_draft, workspace: Path, server: FaultServer, signals: int
):
    readers = [f"reader{n}@lantern-readers.org" for n in range(20)]
    (workspace / "subscribers.csv").write_text("email\n" + "\n".join(readers) + "\n", encoding="utf-8")
    draft = write_draft()
    write_settings(workspace, server.port, connections=1)
    server.rule("dot", delay=0.5)  # each message waits for its reply: one is in flight at the signal
    sender = start_cli_send(workspace, draft)
    try:
        wait_while_alive(sender, lambda: len(server.received) >= 3)
        sender.send_signal(signal.SIGTERM)
        if signals == 2:
            time.sleep(0.1)  # while the first waits for the message in flight
            sender.send_signal(signal.SIGTERM)
        _, stderr = sender.communicate(timeout=20)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.communicate()
    assert sender.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert re.search(r"[Ii]nterrupted by SIGTERM", stderr), stderr

    found = states(workspace, the_only_issue(workspace))
    assert set(found) == set(readers)
    assert SENDING not in found.values()
    unknown = {address for address, state in found.items() if state == UNKNOWN}
    delivered = {address for address, state in found.items() if state == DELIVERED}
    assert len(unknown) <= 1
    received = set(server.recipients())
    assert delivered <= received <= delivered | unknown  # never more than it knows, nor less
    assert len(received) < len(readers)
    assert set(found.values()) <= {DELIVERED, UNKNOWN, PENDING}
