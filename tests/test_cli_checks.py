"""The pre-send checks as the editor meets them: the house word list and a broken link refusing
a send, against an HTTP server on 127.0.0.1."""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import VALID_DRAFT


class _Pages(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        self.send_response(200 if self.path == "/ok" else 404)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pages() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_words_are_added_sorted_and_listed(digest, workspace: Path) -> None:
    added = digest("words", "add", "Pinduoduo", "BlueLM", "Meituan")
    assert added.exit_code == 0 and "Added 3 words to words.txt" in added.stdout
    assert digest("words", "add", "meituan").stdout.startswith("Added 0 words to words.txt (1 already there)")
    assert digest("words", "list").stdout.split() == ["BlueLM", "Meituan", "Pinduoduo"]
    lint = digest("lint", "--add-word", "Zorblax")
    assert "Added Zorblax to words.txt" in lint.stderr
    assert "Zorblax" in (workspace / "words.txt").read_text(encoding="utf-8")


def test_a_broken_link_refuses_the_send_unless_ignored(
    digest, write_draft, workspace: Path, pages: str
) -> None:
    (workspace / "subscribers.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    draft = write_draft(
        VALID_DRAFT.replace("https://example.com/minutes", f"{pages}/ok").replace(
            "https://example.com/report", f"{pages}/gone"
        )
    )
    refused = digest("send", str(draft), "--yes")
    assert refused.exit_code == 1, refused.stdout + refused.stderr
    assert "Links      2 links checked; 1 broken" in refused.stdout
    assert "link-broken" in refused.stdout and f"{pages}/gone" in refused.stdout
    assert "nothing was sent" in refused.stderr and "--ignore-links" in refused.stderr
    assert not (workspace / "outbox").exists()

    lint = digest("lint", "--links", str(draft))
    assert lint.exit_code == 1 and "link-broken" in lint.stdout

    sent = digest("send", str(draft), "--yes", "--ignore-links")
    assert sent.exit_code == 0, sent.stdout + sent.stderr
    assert len(mailbox.Maildir(workspace / "outbox", create=False)) == 1
