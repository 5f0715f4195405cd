"""The preview server, run for real on loopback in a thread."""

from __future__ import annotations

import html
import http.client
import os
import re
import shutil
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import browser
import pytest
from browser import needs_chromium

from digestcli.config import Config, NewsletterConfig, Workspace, find_workspace
from digestcli.errors import UsageError
from digestcli.preview import FIRST_LINES, PreviewServer

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


# -- the toolbar and the sample reader -----------------------------------------------------------

READERS = "email,name,city\nzoe.first@example.org,Zoë First,Tromsø\nyan.second@example.org,Yan Second,Lima\n"


def edit_draft(workspace: Workspace, old: str, new: str) -> None:
    draft = workspace.drafts / SAMPLE.name
    text = draft.read_text(encoding="utf-8")
    assert old in text
    draft.write_text(text.replace(old, new, 1), encoding="utf-8")
    touch_later(draft)


def toolbar(page: str) -> str:
    """The preview's bar, from its opening tag to its end."""
    found = re.search(
        r'<div id="digest-preview".*?(?:</details>|Lint: all good</div>)</div>', page, re.DOTALL
    )
    assert found, "no toolbar"
    return found.group(0)


GREETING = "Hello again. This week"


def test_the_first_reader_of_the_list_fills_the_slots(server, workspace):
    (workspace.root / "subscribers.csv").write_text(READERS, encoding="utf-8")
    edit_draft(workspace, GREETING, "Hello {{ reader.name }} in {{reader.city}}. This week")
    edit_draft(workspace, 'subject: "The Lantern', 'subject: "For {{ reader.name }}: The Lantern')
    status, _, page = get(server.url)
    assert status == 200
    assert "{{" not in page and "reader.email" not in page and "reader.name" not in page
    assert "Hello Zoë First in Tromsø. This week" in page
    assert "as zoe.first@example.org." in page  # the footer's {{ reader.email }}
    bar = toolbar(page)
    assert "Subject: For Zoë First: The Lantern #41" in bar
    assert "Reader: Zoë First &lt;zoe.first@example.org&gt; (the first reader of subscribers.csv)" in bar
    token = re.search(r'href="https://example\.com/unsubscribe\?token=([^"]+)"', page)
    assert token and token.group(1).startswith("v2."), "a token in the unsubscribe link, as a send makes"

    _, _, text = get(server.url + "text")
    assert (
        "Hello Zoë First in Tromsø. This week" in text
        and "zoe.first@example.org" in text
        and "{{" not in text
    )
    _, _, sent = get(server.url + "email.html")
    assert "Hello Zoë First in Tromsø." in sent and 'id="digest-preview"' not in sent

    # Another first reader: the list is watched like the draft.
    list_path = workspace.root / "subscribers.csv"
    list_path.write_text("email,name,city\nyan.second@example.org,Yan Second,Lima\n", encoding="utf-8")
    touch_later(list_path)
    assert "Hello Yan Second in Lima." in get(server.url)[2]


def test_a_made_up_reader_when_there_is_no_list(server, workspace):
    edit_draft(workspace, GREETING, "Hello {{ reader.name }} in {{ reader.city }}. This week")
    _, _, page = get(server.url)
    assert "{{" not in page
    assert "Hello Sam Reader in [city]. This week" in page and "reader@example.com" in page
    assert "made up: there is no subscribers.csv" in toolbar(page)


def test_a_slot_the_list_has_no_column_for_is_said_in_the_toolbar(server, workspace):
    (workspace.root / "subscribers.csv").write_text(
        "email,name\nzoe.first@example.org,Zoë\n", encoding="utf-8"
    )
    edit_draft(workspace, GREETING, "Hello {{ reader.name }} in {{ reader.city }}. This week")
    status, _, page = get(server.url)
    assert status == 200 and "Hello Zoë in . This week" in page
    assert "{{" not in get(server.url + "email.html")[2], "the slot is empty, as in a test send"
    assert "the issue uses {{ reader.city }} but the reader list has no such column" in html.unescape(
        toolbar(page)
    )
    assert "a send stops here" in toolbar(page)


def test_the_toolbar_shows_the_lint_findings(server, workspace):
    _, _, page = get(server.url)
    assert "Lint: all good" in toolbar(page)
    edit_draft(workspace, "## 2. ", "## 4. ")
    edit_draft(workspace, GREETING, "Hello again, click here. This week")
    _, _, page = get(server.url)
    bar = toolbar(page)
    assert "Lint: 4 errors, 0 warnings" in bar, bar  # 4 for 2, then 3 out of order, then 4 twice
    numbering = re.search(
        r'data-rule="item-numbering"[^>]*>(\d+):\d+ <strong>item-numbering</strong> ([^<]*)', bar
    )
    assert numbering and "item 4 follows item 1" in html.unescape(numbering.group(2))
    assert numbering.group(1) == str(_line_of(workspace, "## 4. "))
    assert 'data-rule="link-text"' in bar and f"{_line_of(workspace, 'click here')}:" in bar
    assert "Subject: The Lantern #41: the bridge reopens &amp; a record harvest" in bar


def _line_of(workspace: Workspace, text: str) -> int:
    lines = (workspace.drafts / SAMPLE.name).read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_a_front_matter_error_shows_in_place_of_the_subject(server, workspace):
    edit_draft(workspace, 'subject: "The Lantern #41', 'subject: "The Lantern #41: still open')
    edit_draft(workspace, 'record harvest"\n', "record harvest\n")
    status, kind, page = get(server.url)
    assert (status, kind) == (200, "text/html; charset=utf-8"), "a page, with the error in its bar"
    bar = toolbar(page)
    error = re.search(r"Subject: <span[^>]*>none: line (\d+): front matter is not valid YAML", bar)
    assert error, bar
    assert f'data-rule="front-matter" style="color:#ff8a80">{error.group(1)}:1 ' in bar
    assert "The Old Mill Bridge reopens" in page and "Traceback" not in page
    edit_draft(workspace, "record harvest\n", 'record harvest"\n')
    assert "Subject: The Lantern #41: still open" in toolbar(get(server.url)[2])


def test_lint_runs_once_per_change_not_per_request(server, workspace, monkeypatch):
    import digestcli.lint

    calls: list[Path] = []
    real = digestcli.lint.lint_issue

    def counted(issue, *args, **kwargs):
        calls.append(issue.path)
        return real(issue, *args, **kwargs)

    monkeypatch.setattr(digestcli.lint, "lint_issue", counted)
    for route in ("", "text", "email.html", "", "version", ""):
        assert get(server.url + route)[0] == 200
    assert len(calls) == 1
    edit_draft(workspace, "The Old Mill Bridge reopens", "The Old Mill Bridge opens")
    for route in ("", "text", ""):
        get(server.url + route)
    assert len(calls) == 2


def test_a_failure_of_digest_itself_is_one_line_not_a_traceback(server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the renderer fell over")

    monkeypatch.setattr("digestcli.preview.render", broken)
    status, _, page = get(server.url)
    assert status == 500 and "Traceback" not in page
    assert "internal error: RuntimeError: the renderer fell over (digest preview --debug" in page


@needs_chromium
def test_chromium_shows_the_toolbar_above_the_email_with_the_readers_values(server, workspace, tmp_path):
    (workspace.root / "subscribers.csv").write_text(READERS, encoding="utf-8")
    edit_draft(workspace, GREETING, "Hello {{ reader.name }}, click here. This week")
    result = browser._chromium(
        tmp_path / "profile", 900, 900, "--virtual-time-budget=3000", "--dump-dom", server.url
    )
    dom = result.stdout
    assert re.search(r'<body[^>]*>\s*<div id="digest-preview"', dom), browser._stderr(result)
    assert 'data-rule="link-text"' in dom and "Hello Zoë First, click here." in dom
    assert "{{" not in dom


def test_a_readers_link_that_a_send_leaves_out_is_left_out_here_too(server, workspace):
    (workspace.root / "subscribers.csv").write_text(
        "email,name,site\nzoe.first@example.org,Zoë,javascript:alert(1)\n", encoding="utf-8"
    )
    edit_draft(workspace, GREETING, "See [your page]({{reader.site}}). This week")
    _, _, page = get(server.url)
    assert "See <a" in page and "your page</a>. This week" in page
    assert "javascript:" not in get(server.url + "email.html")[2]
    assert "{{ reader.site }} starts a link" in html.unescape(toolbar(page))
    assert "left out of their message" in toolbar(page)


def test_a_list_that_cannot_be_read_is_said_and_a_made_up_reader_stands_in(server, workspace):
    (workspace.root / "subscribers.csv").write_text(
        "address,name\nzoe.first@example.org,Zoë\n", encoding="utf-8"
    )
    status, _, page = get(server.url)
    bar = html.unescape(toolbar(page))
    assert status == 200 and "the list cannot be read" in bar and "no 'email' column" in bar
    assert "Reader: Sam Reader <reader@example.com> (made up: subscribers.csv cannot be read)" in bar


# -- the sample reader, read as a send reads the list ----------------------------------------------


@pytest.fixture
def serve(tmp_path: Path):
    """Start a preview of the sample draft in a workspace with a digest.toml of ``settings`` and a
    list of ``rows`` (bytes, as the file holds them)."""
    started: list[tuple[PreviewServer, threading.Thread]] = []

    def start(settings: str, rows: bytes) -> tuple[PreviewServer, Workspace]:
        (tmp_path / "drafts").mkdir(exist_ok=True)
        shutil.copy(SAMPLE, tmp_path / "drafts" / SAMPLE.name)
        (tmp_path / "digest.toml").write_text(
            f'[newsletter]\ntitle = "The Lantern Weekly"\n{settings}', encoding="utf-8"
        )
        (tmp_path / "subscribers.csv").write_bytes(rows)
        ws = find_workspace(tmp_path)
        preview = PreviewServer(ws.drafts / SAMPLE.name, ws, port=0)
        thread = threading.Thread(target=preview.serve_forever, daemon=True)
        thread.start()
        started.append((preview, thread))
        return preview, ws

    yield start
    for preview, thread in started:
        preview.shutdown()
        thread.join(timeout=5)


def reader_shown(page: str) -> str:
    found = re.search(r"Reader: ([^(]*) \(", html.unescape(toolbar(page)))
    assert found, toolbar(page)
    return found.group(1)


def test_a_mailchimp_export_gives_its_first_reader_still_subscribed(serve):
    preview, ws = serve(
        "",
        (
            "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,UNSUB_TIME\n"
            "not-an-address,Nobody,Atall,1,2024-01-01 10:00:00,\n"
            "lee.left@example.org,Lee,Left,2,2024-01-01 10:00:00,2026-03-01 09:00:00\n"
            "zoe.first@example.org,Zoë,First,5,2024-01-01 10:00:00,\n"
            "yan.second@example.org,Yan,Second,3,2024-01-01 10:00:00,\n"
        ).encode(),
    )
    edit_draft(ws, GREETING, "Hello {{ reader.first_name }} ({{ reader.name }}). This week")
    status, _, page = get(preview.url)
    assert status == 200 and "Hello Zoë (Zoë First). This week" in page
    assert reader_shown(page) == "Zoë First <zoe.first@example.org>"
    assert "the list cannot be read" not in toolbar(page)


def test_the_columns_setting_names_the_address_and_the_name(serve):
    preview, ws = serve(
        '[delivery]\ncolumns = { email = "Courriel", name = "Nom complet" }\n',
        "Nom complet;Courriel;Ville\nZoë First;zoe.first@example.org;Tromsø\n".encode(),
    )
    edit_draft(ws, GREETING, "Hello {{ reader.name }} in {{ reader.ville }}. This week")
    page = get(preview.url)[2]
    assert "Hello Zoë First in Tromsø. This week" in page
    assert reader_shown(page) == "Zoë First <zoe.first@example.org>"


def test_a_cp1252_list_is_read_as_the_encoding_setting_says(serve):
    rows = "email,name,city\nzoe.first@example.org,Zoë First,Tromsø\n".encode("cp1252")
    preview, ws = serve('[delivery]\nencoding = "cp1252"\n', rows)
    edit_draft(ws, GREETING, "Hello {{ reader.name }} in {{ reader.city }}. This week")
    page = get(preview.url)[2]
    assert "Hello Zoë First in Tromsø. This week" in page
    assert reader_shown(page) == "Zoë First <zoe.first@example.org>"

    # Without the setting, the send's own error, with the list's file and line, in the toolbar.
    (ws.root / "digest.toml").write_text('[newsletter]\ntitle = "The Lantern Weekly"\n', encoding="utf-8")
    touch_later(ws.root / "digest.toml")
    bar = html.unescape(toolbar(get(preview.url)[2]))
    assert f"the list cannot be read: {ws.root / 'subscribers.csv'}:2: not valid UTF-8 (byte 0xeb)" in bar
    assert 'encoding = "cp1252"' in bar
    assert "Reader: Sam Reader <reader@example.com> (made up: subscribers.csv cannot be read)" in bar


@pytest.fixture
def lists_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many lines each list the preview reads has (the real reading, counted)."""
    import digestcli.delivery.plan
    import digestcli.subscribers

    counts: list[int] = []
    real = digestcli.subscribers.load_subscribers

    def counted(path, **kwargs):
        with open(path, "rb") as handle:
            counts.append(sum(1 for _ in handle))
        return real(path, **kwargs)

    monkeypatch.setattr(digestcli.subscribers, "load_subscribers", counted)
    monkeypatch.setattr(digestcli.delivery.plan, "load_subscribers", counted)
    return counts


def test_a_long_list_is_read_only_as_far_as_its_first_reader(serve, lists_read):
    rows = "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(100_000))
    preview, _ = serve("", f"email,name\n{rows}".encode())
    page = get(preview.url)[2]
    assert reader_shown(page) == "Reader 0 <reader0@example.org>"
    assert lists_read and max(lists_read) <= FIRST_LINES[0]


def test_a_first_reader_whose_row_runs_past_the_first_lines_is_read_whole(serve, lists_read):
    """Rows of readers who left fill the first lines; the first reader's row starts on the last of
    them and goes on to the next (a quoted name over two lines)."""
    gone = "".join(f"left{n}@example.org,Left {n},unsubscribed\n" for n in range(FIRST_LINES[0] - 2))
    rest = "".join(f"reader{n}@example.org,Reader {n},active\n" for n in range(FIRST_LINES[1] + 10))
    rows = f'email,name,status\n{gone}zoe.first@example.org,"Zoë\nFirst",active\n{rest}'
    preview, _ = serve("", rows.encode())
    page = get(preview.url)[2]
    assert reader_shown(page) == "Zoë First <zoe.first@example.org>"
    # The first lines, then more of them; never the whole list.
    assert lists_read == [FIRST_LINES[0], FIRST_LINES[1]]
