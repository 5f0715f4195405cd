"""digest serve: the published site over HTTP on 127.0.0.1, files only."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from digestcli.errors import UsageError
from digestcli.serve import SiteServer


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "2026-11-20-the-lantern-weekly").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>Archive</title>", encoding="utf-8")
    (root / "2026-11-20-the-lantern-weekly" / "index.html").write_text("<p>Issue 42</p>", encoding="utf-8")
    (root / "empty").mkdir()
    (tmp_path / "digest.toml").write_text("secret = 1\n", encoding="utf-8")  # beside the site
    return root


@pytest.fixture
def server(site: Path) -> Iterator[SiteServer]:
    running = SiteServer(site, port=0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    thread.join(5)


def get(server: SiteServer, path: str) -> tuple[int, bytes, http.client.HTTPResponse]:
    host, port = server.url.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body, response


def test_the_archive_and_an_issue_page_are_served(server: SiteServer, capfd) -> None:
    status, body, response = get(server, "/")
    assert status == 200 and b"Archive" in body
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    status, body, _ = get(server, "/2026-11-20-the-lantern-weekly/")
    assert status == 200 and body == b"<p>Issue 42</p>"
    assert '"GET / HTTP/1.1" 200' in capfd.readouterr().err  # one line logged per request


def test_only_the_sites_own_files_are_served(server: SiteServer) -> None:
    assert get(server, "/nope/")[0] == 404
    assert get(server, "/empty/")[0] == 404  # no directory listing
    status, body, _ = get(server, "/../digest.toml")
    assert status == 404 and b"secret" not in body


def test_a_link_out_of_the_site_or_a_hidden_file_is_not_served(site: Path, server: SiteServer) -> None:
    (site / "passwords").symlink_to(site.parent / "digest.toml")
    (site / ".htpasswd").write_text("secret = 2\n", encoding="utf-8")
    for path in ("/passwords", "/.htpasswd"):
        status, body, _ = get(server, path)
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


def test_no_site_yet_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="run `digest publish` first"):
        SiteServer(tmp_path / "site", port=0)
