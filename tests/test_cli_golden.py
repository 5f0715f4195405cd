"""Golden files for what the editor reads and what a reader receives: the send's screen, digest
status, and one message's bytes. Times, dates and random boundaries are replaced by fixed marks;
everything else must match byte for byte.

After a deliberate change, regenerate with `DIGEST_REGENERATE=1 python3 -m pytest
tests/test_cli_golden.py` and read the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import VALID_DRAFT

GOLDEN = Path(__file__).resolve().parent / "golden" / "cli"


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DIGEST_REGENERATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="")
    expected = path.read_bytes().decode("utf-8")  # as written: a message's lines end in CRLF
    assert actual == expected, f"{name} differs from its golden file (DIGEST_REGENERATE=1 regenerates it)"


def steady(text: str) -> str:
    """Marks for what changes from run to run: durations, rates, dates and times."""
    text = re.sub(r"\d+\.\d s; [\d,]+ msg/s", "<seconds> s; <rate> msg/s", text)
    return re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "<date time>", text)


def a_workspace(workspace: Path) -> Path:
    (workspace / "digest.toml").write_text(
        "[newsletter]\n"
        'title = "Test Weekly"\n'
        'from = "Test Weekly <weekly@lantern-weekly.org>"\n'
        'postal_address = "12 Riverside Walk, Springfield 10001"\n'
        'unsubscribe_url = "https://lantern-weekly.org/unsubscribe?token={token}"\n',
        encoding="utf-8",
    )
    (workspace / "subscribers.csv").write_text(
        "email,name\nann@example.org,Ann Lee\nbo@example.org,Bo Chen\nnot-an-address,Nobody\n"
        "olga@example.net,Ольга Соколова\n",
        encoding="utf-8",
    )
    draft = workspace / "drafts" / "2026-11-20-test.md"
    draft.write_text(VALID_DRAFT, encoding="utf-8")
    return draft


def test_the_send_screen_and_status(digest, workspace: Path) -> None:
    a_workspace(workspace)
    sent = digest("send", "drafts/2026-11-20-test.md", "--yes", "--limit", "2")
    assert sent.exit_code == 0, sent.stderr
    check("send.txt", steady(sent.stdout))
    check("send.stderr.txt", steady(sent.stderr))
    again = digest("send", "drafts/2026-11-20-test.md", "--yes")
    check("send-again.txt", steady(again.stdout))
    check("status.txt", steady(digest("status").stdout))
    check("status-issue.txt", steady(digest("status", "drafts/2026-11-20-test.md").stdout))


def test_the_lint_screen_and_its_json(digest, workspace: Path) -> None:
    broken = (
        VALID_DRAFT.replace("## 2. The second", "## 3. The second")
        .replace("[the council's minutes]", "[click here]")
        .replace('preheader: "Three short stories for the test suite."\n', "")
    )
    (workspace / "drafts" / "2026-11-20-test.md").write_text(broken, encoding="utf-8")
    result = digest("lint")
    assert result.exit_code == 1
    check("lint.txt", result.stdout)
    check("lint.json", digest("lint", "--format", "json").stdout)
    check("lint-rules.txt", digest("lint", "--rules").stdout)


def test_one_message_byte_for_byte(workspace: Path, monkeypatch) -> None:
    from digestcli.config import find_workspace
    from digestcli.delivery import masthead_for
    from digestcli.draft import load_draft
    from digestcli.message import Personalizer
    from digestcli.render import render_issue
    from digestcli.subscribers import load_subscribers

    monkeypatch.setenv("DIGEST_SECRET", "a secret for the golden file")
    draft = a_workspace(workspace)
    ws = find_workspace(workspace)
    readers = load_subscribers(workspace / "subscribers.csv")
    personalizer = Personalizer(
        render_issue(load_draft(draft), ws),
        masthead_for(ws.config),
        b"a secret for the golden file",
        columns=readers.columns,
    )
    olga = readers.readers[2]
    data = personalizer.message(olga).data.decode("ascii")
    boundary = re.search(r'boundary="([^"]+)"', data)
    assert boundary is not None
    data = data.replace(boundary.group(1), "<boundary>")
    data = re.sub(r"^Date: .*$", "Date: <date>", data, count=1, flags=re.MULTILINE)
    check("message.eml", data)
