"""digest serve: the published site over HTTP on 127.0.0.1, files only (the unsubscribe URL it
answers too is tested in test_unsubscribe_endpoint.py)."""

from __future__ import annotations

import http.client
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestcli.config import find_workspace
from digestcli.errors import UsageError
from digestcli.serve import DigestServer


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "digest.toml").write_text('[newsletter]\ntitle = "The Lantern"\n', encoding="utf-8")
    root = tmp_path / "site"
    (root / "2026-11-20-the-lantern-weekly").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>Archive</title>", encoding="utf-8")
    (root / "2026-11-20-the-lantern-weekly" / "index.html").write_text("<p>Issue 42</p>", encoding="utf-8")
    (root / "empty").mkdir()
    (tmp_path / "private.toml").write_text("secret = 1\n", encoding="utf-8")  # beside the site
    return root


class Served:
    def __init__(self, root: Path) -> None:
        self.log = io.StringIO()
        self.server = DigestServer(find_workspace(root), port=0, log_stream=self.log)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(5)


@pytest.fixture
def server(site: Path) -> Iterator[Served]:
    running = Served(site.parent)
    yield running
    running.stop()


def fetch(server: Served, path: str, method: str = "GET") -> tuple[int, bytes, http.client.HTTPResponse]:
    host, port = server.server.url.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request(method, path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body, response


def test_the_archive_and_an_issue_page_are_served(server: Served) -> None:
    status, body, response = fetch(server, "/")
    assert status == 200 and b"Archive" in body
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("Server") == "digest"  # no Python version for the world to see
    status, body, _ = fetch(server, "/2026-11-20-the-lantern-weekly/")
    assert status == 200 and body == b"<p>Issue 42</p>"
    deadline = time.monotonic() + 10  # a line is written as its connection closes
    while len(server.log.getvalue().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = server.log.getvalue().splitlines()
    # One line per request, in the order their connections closed (either may close first).
    assert sorted(line.split()[2:5] for line in lines) == [
        ["GET", "/", "200"],
        ["GET", "/2026-11-20-the-lantern-weekly/", "200"],
    ]


def test_only_the_sites_own_files_are_served(server: Served) -> None:
    assert fetch(server, "/nope/")[0] == 404
    assert fetch(server, "/empty/")[0] == 404  # no directory listing
    status, body, _ = fetch(server, "/../private.toml")
    assert status == 404 and b"secret" not in body
    assert fetch(server, "/index.html", "POST")[0] == 405


def test_a_link_out_of_the_site_or_a_hidden_file_is_not_served(site: Path, server: Served) -> None:
    (site / "passwords").symlink_to(site.parent / "private.toml")
    (site / ".htpasswd").write_text("secret = 2\n", encoding="utf-8")
    for path in ("/passwords", "/.htpasswd"):
        status, body, _ = fetch(server, path)
        assert status == 404 and b"secret" not in body, path


def test_the_workspace_itself_is_never_the_site(digest, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email\nann@example.org\n", encoding="utf-8")
    for args in (("publish", "--all", "--out", "."), ("serve", "--port", "0")):
        if args[0] == "serve":
            with (workspace / "digest.toml").open("a", encoding="utf-8") as toml:
                toml.write('\n[web]\nout = "."\n')
        result = digest(*args)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "is the workspace, or holds it" in result.stderr


def test_no_site_and_no_unsubscribe_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('[serve]\nunsubscribe = "off"\n', encoding="utf-8")
    with pytest.raises(UsageError, match="run `digest publish` first"):
        DigestServer(find_workspace(tmp_path), port=0)


def test_with_no_site_the_unsubscribe_url_is_served_alone(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('[newsletter]\ntitle = "The Lantern"\n', encoding="utf-8")
    running = Served(tmp_path)
    try:
        assert running.server.describe()[0].startswith(
            "Serving no site (`digest publish` makes one) at http://"
        )
        assert fetch(running, "/")[0] == 404
        status, body, _ = fetch(running, "/unsubscribe?token=nonsense")
        assert status == 400 and b"This unsubscribe link does not work" in body
    finally:
        running.stop()
