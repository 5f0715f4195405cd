"""`digest send`, `digest status` and `digest unsubscribe` as the editor runs them, through the
outbox and against a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import mailbox
from pathlib import Path

from conftest import VALID_DRAFT
from smtp_server import ScriptedHandler, SmtpServer


def smtp_workspace(
    workspace: Path, port: int, readers: int = 5, *, patience: float = 60, failures: int = 5
) -> list[str]:
    (workspace / "digest.toml").write_text(
        "[newsletter]\n"
        'title = "Test Weekly"\n'
        'from = "Test Weekly <weekly@lantern-weekly.org>"\n'
        'postal_address = "12 Riverside Walk, Springfield 10001"\n'
        'unsubscribe_url = "https://lantern-weekly.org/unsubscribe?token={token}"\n'
        "[delivery]\n"
        'transport = "smtp"\n'
        "connections = 2\n"
        "retries = 2\n"
        f"patience = {patience}\n"
        f"max_connection_failures = {failures}\n"
        "[smtp]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'security = "none"\n',
        encoding="utf-8",
    )
    addresses = [f"reader{n}@example.com" for n in range(readers)]
    rows = "".join(f"{a},Reader {n}\n" for n, a in enumerate(addresses))
    (workspace / "subscribers.csv").write_text(f"email,name\n{rows}", encoding="utf-8")
    return addresses


def test_the_readme_main_job_sends_the_sample_through_the_outbox(digest, sample_workspace: Path) -> None:
    result = digest("send", "drafts/2026-11-20-weekly.md", "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    readers = len((sample_workspace / "subscribers.csv").read_text(encoding="utf-8").splitlines()) - 1
    assert len(mailbox.Maildir(sample_workspace / "outbox", create=False)) == readers
    assert f"{readers} readers in subscribers.csv" in result.stdout
    assert f"Sends      {readers} messages now\n" in result.stdout
    assert "Details: digest status drafts/2026-11-20-weekly.md" in result.stdout

    again = digest("send", "drafts/2026-11-20-weekly.md", "--yes")
    assert again.exit_code == 0
    assert f"0 messages now; not to {readers} already have it" in again.stdout
    assert "Nothing to send now." in again.stdout
    assert len(mailbox.Maildir(sample_workspace / "outbox", create=False)) == readers

    status = digest("status", "drafts/2026-11-20-weekly.md")
    assert f"{readers} readers: {readers} delivered" in status.stdout


def test_send_over_smtp_reaches_every_reader_once(digest, write_draft, workspace: Path) -> None:
    with SmtpServer() as server:
        addresses = smtp_workspace(workspace, server.port)
        draft = write_draft()
        result = digest("send", str(draft), "--yes")
        assert result.exit_code == 0, result.stdout + result.stderr
        assert "smtp 127.0.0.1:" in result.stdout
        assert sorted(server.handler.recipients()) == sorted(addresses)
        assert set(server.handler.recipients().values()) == {1}
        assert digest("send", str(draft), "--yes").exit_code == 0
        assert len(server.received) == len(addresses)


def test_failures_are_reported_with_the_reply_and_exit_1(digest, write_draft, workspace: Path) -> None:
    handler = ScriptedHandler(script={"reader1@example.com": ["550"]})
    with SmtpServer(handler) as server:
        smtp_workspace(workspace, server.port)
        draft = write_draft()
        result = digest("send", str(draft), "--yes")
        assert result.exit_code == 1
        assert "reader1@example.com" in result.stdout and "550" in result.stdout
        status = digest("status", str(draft))
        assert "4 delivered" in status.stdout and "1 failed" in status.stdout
        assert "failed   reader1@example.com" in status.stdout
        retry = digest("send", str(draft), "--yes")
        assert "not to 4 already have it; 1 refused earlier (--retry-failed)" in retry.stdout
        assert digest("send", str(draft), "--yes", "--retry-failed").exit_code == 0
        assert handler.recipients()["reader1@example.com"] == 1


def test_a_refusing_server_is_one_line_with_host_and_port(digest, write_draft, workspace: Path) -> None:
    from smtp_server import free_port

    port = free_port()  # nothing listens here
    smtp_workspace(workspace, port, patience=0.5, failures=1)  # gives up after about a second
    result = digest("send", str(write_draft()), "--yes")
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_refuses_a_draft_with_lint_errors(digest, write_draft, workspace: Path) -> None:
    draft = write_draft(VALID_DRAFT.replace("## 2. The second", "## 5. The second"))
    result = digest("send", str(draft), "--yes")
    assert result.exit_code == 1
    assert "item-numbering" in result.stdout and "nothing was sent" in result.stderr
    assert not (workspace / "outbox").exists()


def test_send_asks_first_and_no_sends_nothing(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\n", encoding="utf-8")
    draft = write_draft()
    declined = digest("send", str(draft), input="n\n")
    assert declined.exit_code == 1 and "Nothing sent" in declined.stdout
    assert not (workspace / "outbox").exists()
    accepted = digest("send", str(draft), input="y\n")
    assert accepted.exit_code == 0
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 1


def test_dry_run_and_test_copy_record_nothing(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")
    draft = write_draft()
    dry = digest("send", str(draft), "--dry-run")
    assert dry.exit_code == 0 and "drop --dry-run to send" in dry.stdout
    assert not (workspace / "outbox").exists() or not len(mailbox.Maildir(workspace / "outbox"))

    test = digest("send", str(draft), "--test", "me@example.com")
    assert test.exit_code == 0 and "Test copy sent to me@example.com" in test.stdout
    [message] = mailbox.Maildir(workspace / "outbox", create=False)
    assert message["To"].endswith("<me@example.com>") or message["To"] == "me@example.com"
    assert message["Subject"].startswith("[TEST] ")
    assert "Nothing sent" in digest("status", str(draft)).stdout


def test_bad_csv_rows_are_reported_with_line_numbers(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text(
        "email,name\na@example.com,A\nnot-an-address,B\nA@EXAMPLE.COM,A again\n", encoding="utf-8"
    )
    result = digest("send", str(write_draft()), "--yes")
    assert result.exit_code == 0, result.stderr
    assert "skipped subscribers.csv:3:" in result.stderr and "skipped subscribers.csv:4:" in result.stderr
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 1


def test_unsubscribe_keeps_a_reader_out_of_the_next_send(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")
    result = digest("unsubscribe", "B@example.com")
    assert result.exit_code == 0 and "is unsubscribed" in result.stdout
    assert "b@example.com" in digest("unsubscribe", "--list").stdout
    assert digest("send", str(write_draft()), "--yes").exit_code == 0
    [message] = mailbox.Maildir(workspace / "outbox", create=False)
    assert "a@example.com" in message["To"]


def test_unsubscribe_rejects_garbage(digest, workspace: Path) -> None:
    result = digest("unsubscribe", "nobody")
    assert result.exit_code == 2 and "neither an address nor a valid unsubscribe token" in result.stderr


def test_no_answer_at_the_prompt_sends_nothing(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\n", encoding="utf-8")
    result = digest("send", str(write_draft()), input="")
    assert result.exit_code == 1 and "Nothing sent" in result.stdout
    assert not (workspace / "outbox").exists()


def test_limit_sends_part_of_the_list_and_is_not_a_failure(digest, write_draft, workspace: Path) -> None:
    rows = "".join(f"r{n}@example.com\n" for n in range(5))
    (workspace / "subscribers.csv").write_text(f"email\n{rows}", encoding="utf-8")
    draft = write_draft()
    first = digest("send", str(draft), "--yes", "--limit", "2")
    assert first.exit_code == 0, first.stdout
    assert "3 not sent yet: raise --limit, or run the command again" in first.stdout
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 2
    assert digest("send", str(draft), "--yes").exit_code == 0
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 5


def test_unsubscribe_takes_the_link_from_a_message(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\n", encoding="utf-8")
    assert digest("send", str(write_draft()), "--test", "a@example.com").exit_code == 0
    [message] = mailbox.Maildir(workspace / "outbox", create=False)
    link = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
    assert link.startswith("https://example.com/unsubscribe?token=")
    result = digest("unsubscribe", link)
    assert result.exit_code == 0, result.stderr
    assert "a@example.com is unsubscribed" in result.stdout


def test_an_empty_test_address_is_refused_not_a_full_send(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")
    result = digest("send", str(write_draft()), "--yes", "--test", "")
    assert result.exit_code == 2 and "test address" in result.stderr
    assert not (workspace / "outbox").exists() or not len(mailbox.Maildir(workspace / "outbox"))


def test_a_reader_who_left_the_list_is_not_pending_for_ever(digest, write_draft, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")
    draft = write_draft()
    assert digest("send", str(draft), "--yes", "--limit", "1").exit_code == 0
    (workspace / "subscribers.csv").write_text("email\na@example.com\n", encoding="utf-8")
    again = digest("send", str(draft), "--yes")
    assert "Nothing to send now." in again.stdout
    status = digest("status", str(draft)).stdout
    assert "pending" not in status and "1 delivered, 1 skipped" in status


def test_every_skipped_row_is_reported_the_first_on_screen_all_in_a_file(
    digest, write_draft, workspace: Path
) -> None:
    bad = "".join(f"not-an-address-{n},Nobody\n" for n in range(25))
    (workspace / "subscribers.csv").write_text(f"email,name\nann@example.org,Ann\n{bad}", encoding="utf-8")
    draft = write_draft()
    result = digest("send", str(draft), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("skipped subscribers.csv:") == 20
    assert (
        "… and 5 more skipped rows: all 25 are in .digest/skipped-rows.txt (--verbose lists them here)"
        in (result.stderr)
    )
    written = (workspace / ".digest" / "skipped-rows.txt").read_text(encoding="utf-8")
    assert written.count("invalid address 'not-an-address-") == 25 and "subscribers.csv:27:" in written
    verbose = digest("send", str(draft), "--dry-run", "--verbose")
    assert verbose.stderr.count("skipped subscribers.csv:") == 25
