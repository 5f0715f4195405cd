"""The preview server, run for real on loopback in a thread."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from digestcli.config import Config, NewsletterConfig, Workspace
from digestcli.errors import UsageError
from digestcli.preview import PreviewServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-13-weekly.md"


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode("utf-8")


def touch_later(path: Path) -> None:
    """Move the mtime on, so a change is seen even on a file system with coarse timestamps."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "drafts").mkdir()
    shutil.copy(SAMPLE, tmp_path / "drafts" / SAMPLE.name)
    return Workspace(tmp_path, Config(newsletter=NewsletterConfig(title="The Lantern Weekly")))


@pytest.fixture
def server(workspace: Workspace):
    preview = PreviewServer(workspace.drafts / SAMPLE.name, workspace, port=0)
    thread = threading.Thread(target=preview.serve_forever, daemon=True)
    thread.start()
    yield preview
    preview.shutdown()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_serves_html_and_text_on_loopback(server):
    assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0/")
    status, kind, page = get(server.url)
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert "The Old Mill Bridge reopens" in page and "Ліна Коваленко" in page
    assert 'id="digest-preview"' in page and 'href="/text"' in page  # the toolbar, in the preview only
    assert "fetch('/version'" in page
    status, kind, text = get(server.url + "text")
    assert (status, kind) == (200, "text/plain; charset=utf-8")
    assert text.startswith("The Lantern Weekly\n") and "1. The Old Mill Bridge reopens" in text
    status, _, email = get(server.url + "email.html")
    assert status == 200 and 'id="digest-preview"' not in email and "fetch(" not in email
    assert get(server.url + "nope")[0] == 404


def test_rerenders_when_the_draft_changes(server, workspace):
    _, _, before = get(server.url + "version")
    draft = workspace.drafts / SAMPLE.name
    draft.write_text(
        draft.read_text(encoding="utf-8").replace("The Old Mill Bridge reopens", "The New Mill Bridge opens"),
        encoding="utf-8",
    )
    touch_later(draft)
    _, _, after = get(server.url + "version")
    assert int(after) == int(before) + 1
    status, _, page = get(server.url)
    assert status == 200 and "The New Mill Bridge opens" in page and "The Old Mill Bridge" not in page
    assert "1. The New Mill Bridge opens" in get(server.url + "text")[2]
    assert get(server.url + "version")[2] == after  # nothing changed since: no re-render


def test_rerenders_when_a_workspace_template_appears(server, workspace):
    assert get(server.url + "text")[2].startswith("The Lantern Weekly")
    (workspace.root / "templates").mkdir()
    (workspace.root / "templates" / "email.txt.j2").write_text(
        "Own text for {{ issue.title }}\n", encoding="utf-8"
    )
    assert get(server.url + "text")[2] == "Own text for The Lantern Weekly\n"


def test_broken_draft_shows_an_error_page_then_recovers(server, workspace):
    draft = workspace.drafts / SAMPLE.name
    good = draft.read_bytes()
    draft.write_bytes(b"---\ntitle: \xff\xfe broken\n---\n")  # not UTF-8
    touch_later(draft)
    status, kind, page = get(server.url)
    assert (status, kind) == (500, "text/html; charset=utf-8")
    assert "did not render" in page and "not valid UTF-8" in page and "fetch('/version'" in page
    status, _, text = get(server.url + "text")
    assert status == 500 and "not valid UTF-8" in text
    draft.unlink()
    status, _, page = get(server.url)
    assert status == 500 and "draft not found" in page
    draft.write_bytes(good)
    status, _, page = get(server.url)
    assert status == 200 and "The Old Mill Bridge reopens" in page


def test_broken_template_shows_an_error_page(server, workspace):
    (workspace.root / "templates").mkdir()
    (workspace.root / "templates" / "email.html.j2").write_text("<p>{% if %}</p>\n", encoding="utf-8")
    status, _, page = get(server.url)
    assert status == 500 and "template syntax error" in page and "email.html.j2:1" in page


def test_a_port_in_use_is_a_usage_error(server, workspace):
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(UsageError) as caught:
        PreviewServer(workspace.drafts / SAMPLE.name, workspace, port=port)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_shutdown_without_serving_does_not_hang(workspace):
    with PreviewServer(workspace.drafts / SAMPLE.name, workspace) as preview:
        assert preview.url.startswith("http://127.0.0.1:")


def raw_get(server: PreviewServer, host: str | None, path: str = "/") -> tuple[int, str, str]:
    """A request with exactly the Host header given (none at all for None), as a rebinding page sends."""
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode("utf-8")
    finally:
        connection.close()


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}", "localhost:x", None]
)
def test_a_request_for_another_host_is_refused(server, host: str | None):
    port = server.url.rsplit(":", 1)[1].strip("/")
    for path in ("/", "/text", "/email.html", "/version", "/nope"):
        status, kind, body = raw_get(server, host and host.format(port=port), path)
        assert (status, kind) == (421, "text/plain; charset=utf-8")
        assert "127.0.0.1, localhost, [::1]" in body
        assert "Mill Bridge" not in body and len(body) < 200


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "LocalHost", "127.0.0.1:{port}", "[::1]:{port}", "[::1]"]
)
def test_a_request_for_loopback_is_answered(server, host: str):
    port = server.url.rsplit(":", 1)[1].strip("/")
    status, _, page = raw_get(server, host.format(port=port))
    assert status == 200 and "The Old Mill Bridge reopens" in page


def test_two_host_headers_are_refused(server):
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /text HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n")
        answer = client.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.0 421 ") and b"Mill Bridge" not in answer


def test_a_browser_resetting_the_connection_is_not_reported(server, capfd):
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    capfd.readouterr()
    for _ in range(3):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET /text HTTP/1.1\r\nHost: loc")  # half a request, then a reset (RST)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    assert get(server.url + "version")[0] == 200  # still serving, and every reset was handled
    time.sleep(0.2)
    assert capfd.readouterr().err == ""
