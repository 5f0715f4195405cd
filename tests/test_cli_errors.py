"""The CLI's error paths: a bug in digest, Ctrl-C, a workspace with no digest.toml, and the SMTP
login guards that keep a password off the wire."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest
from conftest import VALID_DRAFT
from fault_smtp import FaultServer
from smtp_server import make_workspace, write_readers

from digestcli.delivery import SendStopped, SmtpTransport, send_issue
from digestcli.errors import DeliveryError, ExitCode
from digestcli.state import recovery as recovery_module


def boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


def test_a_bug_in_digest_exits_with_its_own_code_and_one_line(
    digest, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery_module, "recover_ledger", boom)
    result = digest("recover")
    assert result.exit_code == ExitCode.CRASH == 70  # not 1, which means findings
    assert result.stderr.startswith("internal error: RuntimeError: boom (run again with --debug")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    with pytest.raises(RuntimeError, match="boom"):
        digest("--debug", "recover")


def test_ctrl_c_in_a_command_exits_130_with_one_line(
    digest, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(recovery_module, "recover_ledger", interrupted)
    result = digest("recover")
    assert result.exit_code == ExitCode.INTERRUPTED == 130
    assert result.stderr == "interrupted\n"


def test_a_workspace_with_no_digest_toml_runs_on_the_defaults(digest, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "2026-11-20-test.md").write_text(VALID_DRAFT, encoding="utf-8")
    (tmp_path / "subscribers.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert digest("lint").exit_code == 0
    sent = digest("send", "drafts/2026-11-20-test.md", "--yes")
    assert sent.exit_code == 0, sent.stdout + sent.stderr
    # The built-in example settings are fine for the outbox, and said to be examples.
    assert "digest.toml (none yet)" in sent.stderr and "newsletter.from" in sent.stderr
    assert len(mailbox.Maildir(tmp_path / "outbox", create=False)) == 1
    assert "1 reader: 1 delivered" in digest("status").stdout


def test_a_password_never_crosses_a_connection_that_did_not_become_encrypted(tmp_path: Path) -> None:
    # security = "starttls" but the server offers no STARTTLS: refused before any AUTH.
    write_readers(tmp_path, 2)
    with FaultServer(logins={"editor": "hunter2"}) as server:
        workspace = make_workspace(tmp_path, port=server.port, security="starttls", username="editor")
        transport = SmtpTransport.from_config(workspace.config, environ={"DIGEST_SMTP_PASSWORD": "hunter2"})
        with pytest.raises(SendStopped, match="does not offer STARTTLS") as caught:
            send_issue(_issue(), workspace, transport=transport)
        assert server.logins == [] and server.received == []
        assert "ledger is up to date" not in str(caught.value)


def test_a_username_for_a_server_that_offers_no_auth_is_refused(tmp_path: Path) -> None:
    write_readers(tmp_path, 1)
    with FaultServer() as server:  # no logins: AUTH is not offered
        workspace = make_workspace(tmp_path, port=server.port, security="none", username="editor")
        transport = SmtpTransport.from_config(workspace.config, environ={"DIGEST_SMTP_PASSWORD": "x"})
        with pytest.raises(DeliveryError, match="does not offer AUTH") as caught:
            send_issue(_issue(), workspace, transport=transport)
        assert "remove [smtp] username" in (caught.value.hint or "")
        assert server.received == []


def _issue():
    from smtp_server import make_issue

    return make_issue()
