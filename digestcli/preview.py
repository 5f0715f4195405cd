"""A local preview of one draft: a loopback HTTP server that re-renders when the draft or a template changes.

``/`` is the HTML part (with a small toolbar that the email itself never carries), ``/text`` the
plain-text part, ``/email.html`` the HTML part exactly as it would be sent, and ``/version`` a
number the page polls so it reloads itself after each re-render. A draft that does not render
shows as an error page (status 500), and the preview recovers as soon as the draft is fixed.

Only requests addressed to 127.0.0.1, localhost or [::1] are answered: a web page on another site
could otherwise point a host name of its own at 127.0.0.1 (DNS rebinding) and read the draft.
A browser that drops a connection half-way (a reload, a closed tab) is not an error worth a word.
"""

from __future__ import annotations

import html
import re
import threading
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from digestcli.config import Workspace, load_config
from digestcli.draft import load_draft
from digestcli.errors import DigestError
from digestcli.httpserver import LocalServer
from digestcli.render import Rendering, environment, render, template_search_path

POLL_MS = 1000
ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_HOST_HEADER = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::[0-9]{1,5})?")
# What a client going away mid-request looks like from the server's side.


@dataclass(frozen=True)
class Snapshot:
    """The latest render of the draft, or why there is none."""

    version: int  # goes up by one on every re-render, successful or not
    rendering: Rendering | None
    error: str | None


class PreviewServer:
    """Serve one draft on 127.0.0.1; ``port=0`` picks a free port (see ``url``).

    Use ``serve_forever()`` (blocking; a test runs it in a thread) and ``shutdown()`` from any
    other thread.
    """

    def __init__(
        self, draft_path: str | Path, workspace: Workspace, *, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.draft_path = Path(draft_path)
        self.workspace = workspace
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._snapshot = Snapshot(0, None, None)
        self._http = LocalServer(host, port, _handler_for(self))

    @property
    def url(self) -> str:
        return self._http.url

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def shutdown(self) -> None:
        """Stop serving (call it from another thread than ``serve_forever``'s) and close the socket."""
        self._http.shutdown()

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def snapshot(self) -> Snapshot:
        """The current render, redone first if the draft, a template or digest.toml has changed."""
        with self._lock:
            stamp = self._files_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self._snapshot = self._render(self._snapshot.version + 1)
            return self._snapshot

    def _files_stamp(self) -> tuple[Any, ...]:
        files = [self.draft_path]
        if self.workspace.config_path is not None:
            files.append(self.workspace.config_path)
        for folder in template_search_path(self.workspace):
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
        stamp: list[tuple[str, int | None, int | None]] = []
        for path in files:
            try:
                info = path.stat()
                stamp.append((str(path), info.st_mtime_ns, info.st_size))
            except OSError:
                stamp.append((str(path), None, None))
        return tuple(stamp)

    def _render(self, version: int) -> Snapshot:
        try:
            if self.workspace.config_path is not None:
                self.workspace = Workspace(
                    self.workspace.root, load_config(self.workspace.config_path), self.workspace.config_path
                )
            env = environment(self.workspace)
            if env.cache is not None:
                env.cache.clear()  # a template newly added to the workspace now overrides digest's own
            issue = load_draft(self.draft_path, wrapup_heading=self.workspace.config.lint.wrapup_heading)
            return Snapshot(version, render(issue, self.workspace), None)
        except DigestError as exc:
            return Snapshot(version, None, str(exc))
        except Exception:  # the preview shows any failure as a page; it must not die with the draft
            return Snapshot(version, None, traceback.format_exc())


def host_allowed(host: str | None) -> bool:
    """Whether a request's Host header names this machine's loopback (any port, any case)."""
    if host is None:
        return False
    matched = _HOST_HEADER.fullmatch(host.strip().lower())
    return matched is not None and matched.group(1) in ALLOWED_HOSTS


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)


def _poll_script(version: int) -> str:
    return (
        f"<script>(function () {{ var seen = '{version}'; setInterval(function () {{"
        " fetch('/version', {cache: 'no-store'}).then(function (r) { return r.text(); })"
        ".then(function (v) { if (v.trim() !== seen) { location.reload(); } }).catch(function () {});"
        f" }}, {POLL_MS}); }})();</script>"
    )


def _toolbar(server: PreviewServer, snap: Snapshot) -> str:
    assert snap.rendering is not None
    issue = snap.rendering.issue
    warnings = ""
    if snap.rendering.css_warnings:
        listed = "; ".join(html.escape(w) for w in snap.rendering.css_warnings)
        warnings = f'<div style="color:#fbbf24">CSS: {listed}</div>'
    return (
        '<div id="digest-preview" style="font:13px/1.5 system-ui,sans-serif;background:#1f2328;color:#e6e6e6;'
        'padding:8px 14px;text-align:left">'
        f"<strong>Preview</strong> of {html.escape(str(server.draft_path))} · "
        '<a href="/text" style="color:#9cc3ff">plain text</a> · '
        '<a href="/email.html" style="color:#9cc3ff">HTML as sent</a>'
        f"<div>Subject: {html.escape(issue.subject)}</div>"
        f'<div style="color:#aaa">Preheader: {html.escape(issue.preheader)}</div>{warnings}</div>'
    )


def preview_page(server: PreviewServer, snap: Snapshot) -> str:
    """The rendered HTML with the toolbar and the reload script: for the browser, never for mail."""
    assert snap.rendering is not None
    page = snap.rendering.issue.html
    bar = _toolbar(server, snap)
    opened = _BODY_OPEN.search(page)
    page = page[: opened.end()] + bar + page[opened.end() :] if opened else bar + page
    closed = _BODY_CLOSE.search(page)
    script = _poll_script(snap.version)
    return page[: closed.start()] + script + page[closed.start() :] if closed else page + script


def error_page(server: PreviewServer, snap: Snapshot) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Render failed</title></head>'
        '<body style="font:15px/1.5 system-ui,sans-serif;margin:2rem;max-width:60rem">'
        f'<h1 style="color:#b91c1c">{html.escape(str(server.draft_path))} did not render</h1>'
        '<pre style="white-space:pre-wrap;background:#f6f6f6;padding:1rem">'
        f"{html.escape(snap.error or '')}</pre>"
        "<p>Fix the draft or the template and save: this page reloads by itself.</p>"
        f"{_poll_script(snap.version)}</body></html>"
    )


def _handler_for(server: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1 or not host_allowed(hosts[0]):
                allowed = ", ".join(ALLOWED_HOSTS)
                self.close_connection = True
                self._send(
                    HTTPStatus.MISDIRECTED_REQUEST,
                    "text/plain",
                    f"digest preview answers only requests for {allowed} (with or without a port)\n",
                )
                return
            route = self.path.split("?", 1)[0]
            if route not in ("/", "/index.html", "/text", "/email.html", "/version"):
                self._send(HTTPStatus.NOT_FOUND, "text/plain", "not found: try / or /text\n")
                return
            snap = server.snapshot()
            if route == "/version":
                self._send(HTTPStatus.OK, "text/plain", str(snap.version))
            elif snap.rendering is None:
                failed = HTTPStatus.INTERNAL_SERVER_ERROR
                if route == "/text":
                    self._send(failed, "text/plain", f"render failed:\n{snap.error}\n")
                else:
                    self._send(failed, "text/html", error_page(server, snap))
            elif route == "/text":
                self._send(HTTPStatus.OK, "text/plain", snap.rendering.issue.text)
            elif route == "/email.html":
                self._send(HTTPStatus.OK, "text/html", snap.rendering.issue.html)
            else:
                self._send(HTTPStatus.OK, "text/html", preview_page(server, snap))

        def _send(self, status: HTTPStatus, kind: str, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request log would bury the CLI's own output

    return Handler
