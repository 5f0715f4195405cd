"""digest serve's one-click unsubscribe: real HTTP requests to a real server on 127.0.0.1, the
suppression list and the relay queue in SQLite, an aiosmtpd server for the mail mode."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from smtp_server import SmtpServer, make_issue

from digestcli.config import find_workspace
from digestcli.errors import ConfigError, DigestError
from digestcli.httpserver import LocalServer
from digestcli.message import Masthead, Personalizer, make_token, verify_token
from digestcli.serve import DigestServer
from digestcli.serve.guard import RateLimit, bucket_key, client_address
from digestcli.state.secret import load_secret
from digestcli.state.suppressions import SuppressionList

ROOT = Path(__file__).resolve().parent.parent
READER = "Ann.Reader@Example.org"
TITLE = "The Lantern Weekly"
MAILTO = "unsubscribe@lantern.example.org"


class LogStream:
    """What the server logs, kept for the test (written from the server's threads)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self.lines.extend(line for line in text.splitlines() if line)

    def flush(self) -> None:
        pass

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[str]:
        """The lines, once there are ``count``: a request's line is written as its connection
        closes, which may be just after the client has read the answer."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            return list(self.lines)


def write_settings(
    root: Path, extra: str = "", *, url: str = "https://lantern.example.org/unsubscribe?token={token}"
) -> None:
    (root / "digest.toml").write_text(
        "[newsletter]\n"
        f'title = "{TITLE}"\n'
        'from = "The Lantern <lantern@lantern.example.org>"\n'
        f'unsubscribe_url = "{url}"\n'
        f'unsubscribe_mailto = "{MAILTO}"\n'
        "\n[serve]\nrequests_per_minute = 0\n" + extra,
        encoding="utf-8",
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_settings(tmp_path)
    return tmp_path


@pytest.fixture
def secret(root: Path) -> bytes:
    return load_secret(root / ".digest")


class Running:
    """A DigestServer running in a thread, and what it logs."""

    def __init__(self, root: Path, **options: Any) -> None:
        self.log = LogStream()
        self.server = DigestServer(find_workspace(root), port=0, log_stream=self.log, **options)  # type: ignore[arg-type]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self.server.url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(5)

    def request(
        self, method: str, target: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, http.client.HTTPResponse]:
        return request(self.host, self.port, method, target, body, headers)


def request(
    host: str,
    port: int,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection(host, port, timeout=20)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8"), response
    finally:
        connection.close()


def one_click(running: Running, target: str, *, multipart: bool = False) -> tuple[int, str, Any]:
    """The POST Gmail and Yahoo send (RFC 8058 §3.1)."""
    if multipart:
        body = (
            b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            b"One-Click\r\n--XyZ--\r\n"
        )
        kind = "multipart/form-data; boundary=XyZ"
    else:
        body, kind = b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"
    return running.request("POST", target, body, {"Content-Type": kind})


@pytest.fixture
def serve(root: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**options: Any) -> Running:
        running = Running(root, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def suppressed(root: Path) -> dict[str, tuple[str, str]]:
    return {
        entry.address: (entry.reason, entry.note) for entry in SuppressionList(root / ".digest").entries()
    }


class Form(HTMLParser):
    """The confirm page's form, read as a browser reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action, self.method = values.get("action", ""), values.get("method", "")
        if tag in ("input", "button") and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


def v1_token(address: str, secret: bytes) -> str:
    """A token of the first form, made as issues sent before version 2 carry it."""
    key = address.strip().lower().encode()
    signature = hmac.new(secret, b"unsubscribe\0" + key, hashlib.sha256).digest()[:16]

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(key)}.{b64(signature)}"


# -- GET: the confirm page, and nothing written -------------------------------------------------------


def test_a_get_shows_the_confirm_page_and_writes_nothing(root: Path, secret: bytes, serve) -> None:
    running = serve()
    token = make_token(READER, secret)
    status, body, response = running.request("GET", f"/unsubscribe?token={token}")
    assert status == 200
    assert f"<h1>Unsubscribe from {TITLE}?</h1>" in body and '<html lang="en">' in body
    form = Form()
    form.feed(body)
    assert form.method == "post" and form.action == "/unsubscribe"  # the token goes in the body
    assert form.fields == {"token": token, "confirm": "yes"}
    assert body.count(token) == 1, "the token is in the form's hidden field and nowhere else"
    assert "ann.reader" not in body.lower(), "the page does not show the reader's address"
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("X-Frame-Options") == "DENY"
    policy = response.getheader("Content-Security-Policy") or ""
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and f'<style nonce="{nonce.group(1)}">' in body
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    # A HEAD (as a link checker sends) answers the same, without the page.
    status, body, response = running.request("HEAD", f"/unsubscribe?token={token}")
    assert status == 200 and body == "" and response.getheader("Cache-Control") == "no-store"
    assert suppressed(root) == {}
    assert not (root / ".digest" / "suppressions.sqlite3").exists(), "a GET opens no database"


# -- POST: one-click and the page's button --------------------------------------------------------------


def test_the_one_click_post_of_a_real_message_unsubscribes_the_reader(
    root: Path, secret: bytes, serve
) -> None:
    news = find_workspace(root).config.newsletter
    masthead = Masthead(news.sender, news.unsubscribe_url, news.title, "", "", news.unsubscribe_mailto)
    message = Personalizer(make_issue(), masthead, secret).message(_Reader(READER))
    parsed = message_from_bytes(message.data, policy=policy.default)
    # What a mailbox provider reads: the https URL in List-Unsubscribe, and the body to post it.
    url = re.search(r"<(https://[^>]+)>", str(parsed["List-Unsubscribe"]))
    assert url and str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    target = urlsplit(url.group(1))
    running = serve()
    for _ in range(2):  # the second says the same and changes nothing
        status, body, response = running.request(
            "POST",
            f"{target.path}?{target.query}",
            str(parsed["List-Unsubscribe-Post"]).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, body
        assert f"You're unsubscribed from {TITLE}." in body
        assert response.getheader("Cache-Control") == "no-store"
        assert response.getheader("Location") is None  # RFC 8058: no redirect
    assert suppressed(root) == {
        "ann.reader@example.org": ("unsubscribed", "one-click (RFC 8058), digest serve")
    }


def test_a_multipart_one_click_post_is_read_too(root: Path, secret: bytes, serve) -> None:
    running = serve()
    status, body, _ = one_click(running, f"/unsubscribe?token={make_token(READER, secret)}", multipart=True)
    assert status == 200, body
    assert "ann.reader@example.org" in suppressed(root)


def test_the_pages_button_unsubscribes(root: Path, secret: bytes, serve) -> None:
    running = serve()
    _, page, _ = running.request("GET", f"/unsubscribe?token={make_token(READER, secret)}")
    form = Form()
    form.feed(page)
    assert suppressed(root) == {}
    status, body, _ = running.request(
        "POST",
        form.action,
        urlencode(form.fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and f"You're unsubscribed from {TITLE}." in body
    assert suppressed(root)["ann.reader@example.org"] == (
        "unsubscribed",
        "confirmed on the unsubscribe page, digest serve",
    )


def test_an_old_v1_token_still_unsubscribes(root: Path, secret: bytes, serve) -> None:
    token = v1_token("old.reader@example.org", secret)
    assert verify_token(token, secret) == "old.reader@example.org"  # the form the test makes is right
    running = serve()
    assert running.request("GET", f"/unsubscribe?token={token}")[0] == 200
    assert one_click(running, f"/unsubscribe?token={token}")[0] == 200
    assert "old.reader@example.org" in suppressed(root)


def test_a_token_in_the_path_works_and_is_never_logged(tmp_path: Path) -> None:
    write_settings(tmp_path, url="https://lantern.example.org/u/{token}/")
    secret = load_secret(tmp_path / ".digest")
    token = make_token(READER, secret)
    running = Running(tmp_path)
    try:
        status, page, _ = running.request("GET", f"/u/{token}/")
        form = Form()
        form.feed(page)
        assert status == 200 and form.action == f"/u/{token}/"
        assert one_click(running, f"/u/{token}/")[0] == 200
        assert running.request("GET", "/u/")[0] == 404  # no token: not the unsubscribe URL
    finally:
        running.stop()
    assert "ann.reader@example.org" in suppressed(tmp_path)
    assert "/u/{token}/" in running.log.text() and token not in running.log.text()


@pytest.mark.parametrize(
    "target",
    [
        "/u/{token}/",  # a trailing slash a mail client added: not the route, and still a token
        "/u/{token}/confirm",
        "//u/{token}",
        "/%75/{token}",
        "/u/{token}%2F",
    ],
)
def test_a_token_under_the_routes_path_is_never_logged(tmp_path: Path, target: str) -> None:
    write_settings(tmp_path, url="https://lantern.example.org/u/{token}")
    secret = load_secret(tmp_path / ".digest")
    token = make_token(READER, secret)
    running = Running(tmp_path)
    try:
        status = running.request("GET", target.format(token=token))[0]
        running.request("GET", "/about.html")
        lines = running.log.wait_for(2)
    finally:
        running.stop()
    assert status in (200, 400, 404)
    assert token not in running.log.text() and token[3:20] not in running.log.text()
    # Each line is written as its connection closes: the two may come in either order.
    paths = sorted(line.split()[3] for line in lines)
    assert "/about.html" in paths  # a path elsewhere is shown as it is
    paths.remove("/about.html")
    assert paths[0] in ("/u/…", "/u/{token}"), lines


def test_a_workspace_template_overrides_the_page_and_a_broken_one_stops_the_start(
    root: Path, secret: bytes, serve
) -> None:
    own = root / "templates" / "serve"
    own.mkdir(parents=True)
    (own / "confirm.html.j2").write_text(
        '{% extends "serve/base.html.j2" %}{% block title %}Abmelden{% endblock %}'
        '{% block main %}<h1>{{ newsletter }} abbestellen?</h1><form method="post" action="{{ action }}">'
        '<input type="hidden" name="token" value="{{ token }}"><button name="confirm">Abmelden</button>'
        "</form>{% endblock %}",
        encoding="utf-8",
    )
    running = serve()
    status, body, _ = running.request("GET", f"/unsubscribe?token={make_token(READER, secret)}")
    assert status == 200 and f"<h1>{TITLE} abbestellen?</h1>" in body
    broken = root / "broken"
    broken.mkdir()
    write_settings(broken)
    (broken / "templates" / "serve").mkdir(parents=True)
    (broken / "templates" / "serve" / "done.html.j2").write_text("<h1>{{ newsletter }}</h1>\n{% if %}\n")
    with pytest.raises(DigestError, match=r"done\.html\.j2:2"):
        DigestServer(find_workspace(broken), port=0)


# -- refused: bad tokens, bad requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "nonsense", "v2.", "v2.AAAA", "v3.abcdef", "v1.abc.def", "%00%ff", "a" * 300],
)
def test_a_bad_token_is_a_clear_400_and_writes_nothing(root: Path, secret: bytes, serve, token: str) -> None:
    running = serve()
    for method in ("GET", "POST"):
        if method == "GET":
            status, body, _ = running.request("GET", f"/unsubscribe?token={token}")
        else:
            status, body, _ = one_click(running, f"/unsubscribe?token={token}")
        assert status == 400, (method, body)
        assert "This unsubscribe link does not work" in body and "Traceback" not in body
        assert f"mailto:{MAILTO}?subject=unsubscribe" in body  # the other way to leave
    assert suppressed(root) == {}


def test_a_token_made_with_another_secret_is_refused(root: Path, secret: bytes, serve) -> None:
    running = serve()
    status, _, _ = one_click(running, f"/unsubscribe?token={make_token(READER, b'another workspace')}")
    assert status == 400 and suppressed(root) == {}


def _altered(token: str, at: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    old = token[at]
    new = alphabet[(alphabet.index(old) + 1) % len(alphabet)] if old in alphabet else "A"
    return token[:at] + new + token[at + 1 :]


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_token_altered_by_one_character_anywhere_is_refused(
    root: Path, secret: bytes, serve, version: str
) -> None:
    token = make_token(READER, secret) if version == "v2" else v1_token(READER, secret)
    running = serve()
    # The prefix, the first, middle and last characters of what follows, and every other one.
    positions = sorted({0, 3, len(token) // 2, len(token) - 1, *range(len(token))})
    for at in positions:
        altered = _altered(token, at)
        if verify_token(altered, secret) is not None:
            pytest.fail(f"a token altered at {at} still opens: {altered}")
    for at in (0, 3, len(token) // 2, len(token) - 1):  # over HTTP: start, middle, end
        altered = _altered(token, at)
        assert running.request("GET", f"/unsubscribe?token={altered}")[0] == 400, at
        assert one_click(running, f"/unsubscribe?token={altered}")[0] == 400, at
    assert suppressed(root) == {}


def test_requests_that_are_not_an_unsubscribe_are_refused_plainly(root: Path, secret: bytes, serve) -> None:
    running = serve()
    target = f"/unsubscribe?token={make_token(READER, secret)}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        ("POST", target, b"hello=world", form, 400, "Not an unsubscribe request"),
        ("POST", target, b"{}", {"Content-Type": "application/json"}, 415, "Not an unsubscribe request"),
        ("POST", target, b"\xff\xfe=1", form, 400, "Not an unsubscribe request"),
        ("PUT", target, b"x", form, 405, "Not allowed"),
        ("DELETE", target, None, {}, 405, "Not allowed"),
        ("POST", "/index.html", b"List-Unsubscribe=One-Click", form, 405, "Not allowed"),
    ]
    for method, path, body, headers, expected, words in cases:
        status, text, response = running.request(method, path, body, headers)
        assert status == expected and words in text, (method, path, body, status, text)
        if status == 405:
            assert response.getheader("Allow")
    assert suppressed(root) == {}


def _raw(running: Running, data: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection((running.host, running.port), timeout=10) as sock:
        sock.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_large_body_long_headers_and_chunks_are_refused_unread(root: Path, secret: bytes, serve) -> None:
    running = serve()
    target = f"/unsubscribe?token={make_token(READER, secret)}"
    # 10 MB announced, none sent: the answer comes at once, without waiting for the body.
    answer = _raw(
        running,
        f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 10000000\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.0 413 "), answer[:80]
    answer = _raw(
        running,
        f"POST {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.0 411 "), answer[:80]
    many = "".join(f"X-Filler-{n}: {'y' * 1000}\r\n" for n in range(20))  # 20 KB of headers
    answer = _raw(running, f"GET {target} HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 431 "), answer[:80]
    assert b"the header block is over 16 KiB" in answer and b"65536" not in answer
    answer = _raw(running, f"GET /{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 414 "), answer[:80]
    assert suppressed(root) == {}
    log = "\n".join(running.log.wait_for(4))
    for status in ("413", "411", "431", "414"):
        assert f" {status} " in log, log


@pytest.mark.parametrize(
    ("line", "status"),
    [(b"GET / HTTP/2.0", 505), (b"GARBAGE", 400), (b"GET / HTTP/1.1 extra", 400), (b"\x00\xff /", 400)],
)
def test_a_malformed_request_line_is_answered_and_logged_like_any_other(
    root: Path, serve, capfd: pytest.CaptureFixture[str], line: bytes, status: int
) -> None:
    running = serve()
    answer = _raw(running, line + b"\r\nHost: x\r\n\r\n")
    assert answer.startswith(f"HTTP/1.0 {status} ".encode()), answer[:80]
    [logged] = running.log.wait_for(1)
    assert logged.split()[2:5] == ["-", "-", str(status)], logged
    assert "Traceback" not in capfd.readouterr().err


def test_connections_over_the_cap_are_told_to_come_back(tmp_path: Path) -> None:
    from http.server import BaseHTTPRequestHandler

    server = LocalServer("127.0.0.1", 0, BaseHTTPRequestHandler, max_connections=1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.url.removeprefix("http://").rstrip("/").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10) as idle:  # holds the one slot
            idle.sendall(b"GET / HTTP/1.0\r\n")  # and never finishes its request
            time.sleep(0.2)
            with socket.create_connection((host, int(port)), timeout=10) as second:
                answer = second.recv(1024)
        assert answer.startswith(b"HTTP/1.0 503 ") and b"Retry-After: 5" in answer
    finally:
        server.shutdown()
        thread.join(5)


def test_a_bug_is_a_500_page_and_one_log_line_not_a_traceback(root: Path, secret: bytes, serve) -> None:
    running = serve()
    endpoint = running.server.endpoint
    assert endpoint is not None

    def broken(target: str) -> None:
        raise KeyError("a bug")

    endpoint.get = broken  # type: ignore[method-assign]
    status, body, _ = running.request("GET", f"/unsubscribe?token={make_token(READER, secret)}")
    assert status == 500 and "Something went wrong on our side" in body and "Traceback" not in body
    lines = running.log.wait_for(2)
    assert (
        "internal error: KeyError at test_unsubscribe_endpoint.py:" in lines[0]
        and "a bug" not in lines[0]
        and lines[1].split()[2:5]
        == [
            "GET",
            "/unsubscribe",
            "500",
        ]
    )
    assert "Traceback" not in running.log.text()


# -- rate limit and log ----------------------------------------------------------------------------------


def test_the_rate_limit_answers_429_with_retry_after(root: Path, secret: bytes) -> None:
    write_settings(root, "")
    text = (root / "digest.toml").read_text().replace("requests_per_minute = 0", "requests_per_minute = 3")
    (root / "digest.toml").write_text(text)
    running = Running(root)
    target = f"/unsubscribe?token={make_token(READER, secret)}"
    try:
        assert [running.request("GET", target)[0] for _ in range(3)] == [200, 200, 200]
        status, body, response = one_click(running, target)
        assert status == 429 and "Too many requests" in body
        assert int(response.getheader("Retry-After") or 0) >= 1
        assert suppressed(root) == {}, "a refused request does nothing"
        # X-Forwarded-For is not believed unless the server is told it is behind a proxy.
        assert running.request("GET", target, headers={"X-Forwarded-For": "203.0.113.9"})[0] == 429
    finally:
        running.stop()
    proxied = Running(root, behind_proxy=True)
    try:
        for _ in range(3):
            proxied.request("GET", target, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
        assert (
            proxied.request("GET", target, headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})[0] == 429
        )
        # Another client behind the same proxy has its own bucket; a forged first entry changes nothing.
        assert proxied.request("GET", target, headers={"X-Forwarded-For": "203.0.113.8"})[0] == 200
        assert proxied.request("GET", target, headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.7"})[0] == 429
    finally:
        proxied.stop()


def test_a_token_bucket_refills_and_groups_ipv6_by_64() -> None:
    now = [100.0]
    limit = RateLimit(60, clock=lambda: now[0])
    assert all(limit.wait("192.0.2.1") == 0 for _ in range(60))
    assert limit.wait("192.0.2.1") == pytest.approx(1.0)
    now[0] += 2.5
    assert limit.wait("192.0.2.1") == 0 and limit.wait("192.0.2.1") == 0
    assert limit.wait("192.0.2.1") > 0
    assert limit.wait("192.0.2.2") == 0  # each client its own bucket
    assert bucket_key("2001:db8:1:2:aaaa::1") == bucket_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert bucket_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert RateLimit(0).wait("anyone") == 0
    assert client_address("127.0.0.1", "10.0.0.1, 198.51.100.4", behind_proxy=True) == "198.51.100.4"
    assert client_address("127.0.0.1", "198.51.100.4", behind_proxy=False) == "127.0.0.1"
    assert client_address("127.0.0.1", "garbage", behind_proxy=True) == "127.0.0.1"


def test_the_log_has_one_line_per_request_and_no_token_or_address(root: Path, secret: bytes, serve) -> None:
    (root / "site").mkdir()
    (root / "site" / "index.html").write_text("<p>Archive</p>", encoding="utf-8")
    running = serve()
    token = make_token(READER, secret)
    asks = [
        lambda: running.request("GET", f"/unsubscribe?token={token}&utm_source=mail"),
        lambda: one_click(running, f"/unsubscribe?token={token}"),
        lambda: one_click(running, "/unsubscribe?token=broken"),
        lambda: running.request("GET", "/?token=" + token),
    ]
    for count, ask in enumerate(asks, 1):
        ask()
        lines = running.log.wait_for(count)  # a line is written as its connection closes
    time.sleep(0.2)  # and no more come
    assert len(running.log.lines) == len(lines) == 4, lines
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ c-[0-9a-f]{10} (GET|POST) (/unsubscribe|/) \d{3} \d+\.\dms"
    for line in lines:
        assert re.fullmatch(pattern, line), line
    assert [line.split()[4] for line in lines] == ["200", "200", "400", "200"]
    text = running.log.text().lower()
    assert token.lower() not in text and "ann.reader" not in text and "127.0.0.1" not in text
    assert len({line.split()[1] for line in lines}) == 1  # one client, one pseudonym


# -- safe while a send runs ---------------------------------------------------------------------------


def _hold_write_lock(path: Path, seconds: float, ready: threading.Event) -> None:
    db = sqlite3.connect(path, timeout=5)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")  # as a send's write transaction: other writers must wait
    db.execute("CREATE TABLE IF NOT EXISTS held (n INTEGER)")
    db.execute("INSERT INTO held VALUES (1)")
    ready.set()
    time.sleep(seconds)
    db.commit()
    db.close()


def test_the_suppression_list_waits_for_another_writer(root: Path) -> None:
    suppressions = SuppressionList(root / ".digest")
    suppressions.add("first@example.org")  # the file exists, as it does once a send has run
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(suppressions.path, 0.5, ready))
    holder.start()
    ready.wait(5)
    started = time.monotonic()
    suppressions.add("second@example.org")
    waited = time.monotonic() - started
    holder.join()
    assert {entry.address for entry in suppressions.entries()} == {"first@example.org", "second@example.org"}
    assert waited > 0.2, "the add did wait for the other transaction (else the lock was not held)"


def test_a_post_while_a_send_holds_the_databases_still_succeeds(root: Path, secret: bytes, serve) -> None:
    state = root / ".digest"
    SuppressionList(state).add("first@example.org")
    running = serve()
    holders = []
    for name in ("suppressions.sqlite3", "ledger.sqlite3"):
        ready = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(state / name, 0.8, ready))
        holder.start()
        ready.wait(5)
        holders.append(holder)
    status, body, _ = one_click(running, f"/unsubscribe?token={make_token(READER, secret)}")
    for holder in holders:
        holder.join()
    assert status == 200, body
    assert set(suppressed(root)) == {"first@example.org", "ann.reader@example.org"}


def test_a_database_locked_too_long_is_503_and_claims_nothing(
    root: Path, secret: bytes, serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    suppressions = SuppressionList(root / ".digest")
    suppressions.add("first@example.org")
    monkeypatch.setattr(SuppressionList, "busy_timeout", 0.2)
    running = serve()
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(suppressions.path, 1.5, ready))
    holder.start()
    ready.wait(5)
    status, body, response = one_click(running, f"/unsubscribe?token={make_token(READER, secret)}")
    holder.join()
    assert status == 503 and "could not be recorded" in body and "unsubscribed" not in body.lower()
    assert response.getheader("Retry-After") == "60"
    assert set(suppressed(root)) == {"first@example.org"}
    assert one_click(running, f"/unsubscribe?token={make_token(READER, secret)}")[0] == 200  # and later it is


# -- mail mode: a server apart from the sending workspace ---------------------------------------------


def mail_settings(root: Path, port: int) -> None:
    write_settings(
        root,
        f'unsubscribe = "mail"\n\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        "\n[delivery]\ntimeout = 5\n",
    )


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """A server's own folder holding only digest.toml, with the sending workspace's secret in
    DIGEST_SECRET, as the README says to set one up."""
    secret = b"the sending workspace's secret"
    monkeypatch.setenv("DIGEST_SECRET", secret.decode())
    server_root = tmp_path / "server"
    server_root.mkdir()
    return server_root, secret


def test_mail_mode_passes_the_request_on_with_the_token(remote: tuple[Path, bytes]) -> None:
    root, secret = remote
    token = make_token(READER, secret)
    with SmtpServer() as smtp:
        mail_settings(root, smtp.port)
        running = Running(root)
        try:
            assert (
                "mailed to unsubscribe@lantern.example.org through 127.0.0.1:" in running.server.describe()[0]
            )
            status, body, _ = one_click(running, f"/unsubscribe?token={token}")
            assert status == 200 and f"You're unsubscribed from {TITLE}." in body
            smtp.wait_for(1)
            time.sleep(0.3)
        finally:
            running.stop()
        assert len(smtp.received) == 1
        received = smtp.received[0]
    assert received.rcpt_tos == [MAILTO] and received.mail_from == "lantern@lantern.example.org"
    mail = received.parsed()
    assert str(mail["Subject"]) == "unsubscribe"
    header = str(mail["X-Digest-Unsubscribe"])
    assert header == token and verify_token(header, secret) == "ann.reader@example.org"
    assert str(mail["Message-ID"]).endswith("@lantern.example.org>")
    assert b"ann.reader" not in received.data.lower(), "the reader's address is not in the mail"
    assert suppressed(root) == {}, "the server apart writes no suppression of its own"
    assert token not in running.log.text()


def test_mail_mode_with_the_relay_down_queues_and_delivers_when_it_is_back(
    remote: tuple[Path, bytes],
) -> None:
    root, secret = remote
    smtp = SmtpServer()  # its port chosen, not listening yet
    mail_settings(root, smtp.port)
    running = Running(root, relay_delays=(0.3,))
    try:
        for _ in range(2):  # pressed twice while it waits in the queue: one request, one mail
            status, body, _ = one_click(running, f"/unsubscribe?token={make_token(READER, secret)}")
            assert status == 200 and "You're unsubscribed" in body  # it is recorded: in the queue
        deadline = time.monotonic() + 10
        while "kept in the queue" not in running.log.text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "kept in the queue" in running.log.text()
        assert running.server.relay is not None and running.server.relay.waiting() == 1
        with smtp:
            smtp.wait_for(1)
            deadline = time.monotonic() + 10
            while running.server.relay.waiting() and time.monotonic() < deadline:
                time.sleep(0.05)
        assert running.server.relay.waiting() == 0
    finally:
        running.stop()
    assert len(smtp.received) == 1
    assert str(smtp.received[0].parsed()["X-Digest-Unsubscribe"]) == make_token(READER, secret)


def test_a_reader_put_back_can_unsubscribe_again_through_mail_mode(
    remote: tuple[Path, bytes], tmp_path: Path
) -> None:
    """The server apart mails a second request after the first went out, and `digest bounces` in
    the sending workspace acts on it: the reader was put back (`digest unsubscribe --undo`) since."""
    from digestcli.bounces.act import read_bounces
    from digestcli.bounces.mailbox import LocalMailbox

    root, secret = remote
    sending = tmp_path / "sending"  # the editor's workspace: the same secret, through DIGEST_SECRET
    sending.mkdir()
    (sending / "digest.toml").write_text(
        f'[newsletter]\ntitle = "{TITLE}"\nfrom = "The Lantern <lantern@lantern.example.org>"\n'
        f'unsubscribe_mailto = "{MAILTO}"\n',
        encoding="utf-8",
    )
    workspace = find_workspace(sending)
    maildir = tmp_path / "unsubscribe-mailbox"

    def read_mailbox(mails: list[bytes]) -> list[tuple[str, str, str]]:
        import mailbox

        box = mailbox.Maildir(maildir, factory=None, create=True)
        for data in mails:
            box.add(data)
        run = read_bounces(workspace, LocalMailbox(maildir))
        return [(r.address, r.kind, r.suppressed) for r in run.readers]

    token = make_token(READER, secret)
    with SmtpServer() as smtp:
        mail_settings(root, smtp.port)
        running = Running(root)
        try:
            assert one_click(running, f"/unsubscribe?token={token}")[0] == 200
            smtp.wait_for(1)
            assert read_mailbox([smtp.received[0].data]) == [
                ("ann.reader@example.org", "unsubscribe", "unsubscribed")
            ]
            assert SuppressionList(workspace.state).undo("ann.reader@example.org") is not None  # put back
            assert one_click(running, f"/unsubscribe?token={token}")[0] == 200  # and unsubscribing again
            smtp.wait_for(2)
        finally:
            running.stop()
        first, second = (received.parsed() for received in smtp.received)
    assert str(first["X-Digest-Unsubscribe"]) == str(second["X-Digest-Unsubscribe"]) == token
    assert first["Message-ID"] != second["Message-ID"]
    assert read_mailbox([smtp.received[1].data]) == [
        ("ann.reader@example.org", "unsubscribe", "unsubscribed")
    ]
    assert {e.address: e.reason for e in SuppressionList(workspace.state).entries()} == {
        "ann.reader@example.org": "unsubscribed"
    }


def test_mail_mode_sends_what_an_earlier_run_left_in_the_queue(remote: tuple[Path, bytes]) -> None:
    root, secret = remote
    smtp = SmtpServer()
    mail_settings(root, smtp.port)
    first = Running(root, relay_delays=(60.0,))
    try:
        assert one_click(first, f"/unsubscribe?token={make_token(READER, secret)}")[0] == 200
    finally:
        first.stop()
    with smtp:
        second = Running(root)
        try:
            assert "1 from before still to go" in second.server.describe()[0]
            smtp.wait_for(1)
        finally:
            second.stop()


def test_mail_mode_needs_the_unsubscribe_address(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('[newsletter]\ntitle = "X"\n\n[serve]\nunsubscribe = "mail"\n')
    with pytest.raises(ConfigError) as raised:
        find_workspace(tmp_path)
    assert str(raised.value).startswith(f'{tmp_path / "digest.toml"}:5: serve.unsubscribe is "mail"')
    (tmp_path / "digest.toml").write_text('[serve]\nunsubscribe = "sometimes"\n')
    with pytest.raises(
        ConfigError,
        match=r"digest.toml:2: 'serve.unsubscribe' is 'sometimes'; choose one of direct, mail, off",
    ):
        find_workspace(tmp_path)


# -- the command, as a service manager runs it ------------------------------------------------------


def _start_serve(root: Path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    env.pop("DIGEST_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "digestcli", "serve", "--port", "0", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stderr.readline()  # type: ignore[union-attr]
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())  # type: ignore[union-attr]
    return proc, found.group(1), line


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_digest_serve_unsubscribes_logs_and_stops_cleanly(
    root: Path, secret: bytes, stop: signal.Signals
) -> None:
    proc, port, first_line = _start_serve(root, "--behind-proxy")
    try:
        assert "unsubscribes at /unsubscribe are written to this workspace's suppression list" in first_line
        assert '[serve] unsubscribe = "direct"' in first_line
        token = make_token(READER, secret)
        status, body, _ = request("127.0.0.1", int(port), "GET", f"/unsubscribe?token={token}")
        assert status == 200 and "Unsubscribe from" in body
        assert suppressed(root) == {}
        status, body, _ = request(
            "127.0.0.1",
            int(port),
            "POST",
            f"/unsubscribe?token={token}",
            b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": "198.51.100.23"},
        )
        assert status == 200 and "You're unsubscribed" in body
        assert "ann.reader@example.org" in suppressed(root)
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
        err = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
    assert "Stopped." in err and "Traceback" not in err
    assert "Behind a reverse proxy" in err
    logged = [line for line in err.splitlines() if " /unsubscribe " in line]
    assert len(logged) == 2 and logged[1].split()[2:5] == ["POST", "/unsubscribe", "200"]
    assert token not in err and "ann.reader" not in err.lower() and "198.51.100.23" not in err


class _Reader:
    def __init__(self, email: str) -> None:
        self.email = email
        self.name = "Ann"
        self.fields: dict[str, str] = {}
