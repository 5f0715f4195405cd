"""A local preview of one draft as a reader gets it: a loopback HTTP server that renders and lints it
again whenever the draft, a template, digest.toml or the list changes.

``/`` is the HTML part (with a small toolbar that the email itself never carries), ``/text`` the
plain-text part, ``/email.html`` the HTML part exactly as it would be sent, and ``/version`` a
number the page polls so it reloads itself after each re-render. A draft that does not render
shows as an error page (status 500), and the preview recovers as soon as the draft is fixed.

Each part is shown as a sample reader gets it: the first reader of the list (a made-up one when
there is none) fills the ``{{ reader.* }}`` slots, through the same code a send uses. The toolbar
shows the subject and preheader, the lint findings (the draft's and the rendered email's) and the
front matter's errors. All of it is done once per change of the draft, a template, digest.toml
or the list, never per request; the unsubscribe link carries a token no one can use.

Only requests addressed to 127.0.0.1, localhost or [::1] are answered: a web page on another site
could otherwise point a host name of its own at 127.0.0.1 (DNS rebinding) and read the draft.
A browser that drops a connection half-way (a reload, a closed tab) is not an error worth a word.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import html
import re
import secrets
import tempfile
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import MappingProxyType
from typing import Any

from digestcli.config import Workspace, load_config
from digestcli.draft import Issue, load_draft
from digestcli.errors import DigestError, InputError
from digestcli.httpserver import LocalServer
from digestcli.lint import Finding
from digestcli.render import RenderedIssue, Rendering, environment, render, template_search_path
from digestcli.subscribers import Subscriber

POLL_MS = 1000
ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_HOST_HEADER = re.compile(r"(\[[^\]]*\]|[^:\[\]]*)(?::[0-9]{1,5})?")

# Who fills the slots when the workspace has no list to take a reader from.
MADE_UP_READER = ("reader@example.com", "Sam Reader")


@dataclass(frozen=True)
class SampleReader:
    """The reader whose values fill the preview's slots, and where they come from."""

    reader: Subscriber
    source: str  # "the first reader of subscribers.csv", "made up: there is no subscribers.csv"
    made_up: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The latest render of the draft, as the sample reader gets it, with what lint found; or why
    there is none."""

    version: int  # goes up by one on every re-render, successful or not
    rendering: Rendering | None
    error: str | None
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # what else the editor must know: a slot the list cannot fill …
    sample: SampleReader | None = None
    subject: str = ""  # the parts with the sample reader's values in the slots
    html: str = ""
    text: str = ""
    page: str = ""  # ``html`` with the toolbar and the reload script: what ``/`` serves


class PreviewServer:
    """Serve one draft on 127.0.0.1; ``port=0`` picks a free port (see ``url``).

    Use ``serve_forever()`` (blocking; a test runs it in a thread) and ``shutdown()`` from any
    other thread.
    """

    def __init__(
        self,
        draft_path: str | Path,
        workspace: Workspace,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        debug: bool = False,
    ) -> None:
        self.draft_path = Path(draft_path)
        self.workspace = workspace
        self.debug = debug  # a failure of digest itself shows its traceback, not one line
        # Signs the preview's unsubscribe link: never the workspace's key, so that a click on
        # "Unsubscribe" in the preview unsubscribes no one.
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        # The list is read again only when it changes: a long one takes a while to read.
        self._sample: tuple[tuple[Any, ...], SampleReader, tuple[str, ...]] | None = None
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
        files = [self.draft_path, self.workspace.path(self.workspace.config.delivery.subscribers)]
        if self.workspace.config_path is not None:
            files.append(self.workspace.config_path)
        for folder in template_search_path(self.workspace):
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
        return self._files_stamp_of(files)

    @staticmethod
    def _files_stamp_of(files: list[Path]) -> tuple[Any, ...]:
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
            rendering = render(issue, self.workspace)
        except DigestError as exc:
            return Snapshot(version, None, str(exc))
        except Exception as exc:  # the preview shows any failure as a page; it must not die with the draft
            return Snapshot(version, None, self._internal(exc))
        notes: list[str] = []
        findings = self._lint(issue, rendering.issue, notes)
        try:
            sample = self._sample_reader(notes)
            subject, html_part, text = personalized(
                rendering.issue, self.workspace, sample, self._secret, notes
            )
        except Exception as exc:  # the page still shows, with its slots as they are
            sample, subject, html_part, text = (
                None,
                rendering.issue.subject,
                rendering.issue.html,
                rendering.issue.text,
            )
            notes.append(f"the sample reader's values were not filled in: {self._internal(exc)}")
        snap = Snapshot(
            version, rendering, None, tuple(findings), tuple(notes), sample, subject, html_part, text
        )
        return dataclasses.replace(snap, page=preview_page(self, snap))

    def _sample_reader(self, notes: list[str]) -> SampleReader:
        delivery = self.workspace.config.delivery
        path = self.workspace.path(delivery.subscribers)
        # The settings it is read by too: digest.toml may change them.
        stamp = (*self._files_stamp_of([path]), delivery.encoding, tuple(sorted(delivery.columns.items())))
        if self._sample is None or self._sample[0] != stamp:
            found: list[str] = []
            self._sample = (stamp, sample_reader(self.workspace, found), tuple(found))
        notes.extend(self._sample[2])
        return self._sample[1]

    def _lint(self, issue: Issue, rendered: RenderedIssue, notes: list[str]) -> list[Finding]:
        """What `digest lint --rendered` would say of the draft, as `digest send` checks it."""
        from digestcli.draft import draft_ids
        from digestcli.lint import check_rule_settings, lint_issue
        from digestcli.lint.rendered import check_rendered
        from digestcli.state.history import read_identities

        ws = self.workspace
        try:
            check_rule_settings(ws.config.lint, str(ws.config_path) if ws.config_path else None)
        except DigestError as exc:
            notes.append(str(exc))
        try:
            identities = read_identities(ws.state, draft_ids(ws.drafts))  # for issue-reused
        except DigestError as exc:
            identities = None
            notes.append(f"issues sent not checked: {exc}")
        try:
            return [
                *lint_issue(issue, ws.config.lint, identities),
                *check_rendered(rendered, str(self.draft_path), ws.config.lint, source=issue.lines),
            ]
        except Exception as exc:  # a failing check must not take the preview with it
            notes.append(f"lint did not run: {self._internal(exc)}")
            return []

    def _internal(self, exc: Exception) -> str:
        """A failure of digest itself: one line, or the traceback under --debug."""
        if self.debug:
            return traceback.format_exc()
        if isinstance(exc, DigestError):
            return str(exc)
        return f"internal error: {type(exc).__name__}: {exc} (digest preview --debug shows the traceback)"


def sample_reader(workspace: Workspace, notes: list[str]) -> SampleReader:
    """The first reader of the workspace's list a send would mail; a made-up one when there is none
    to take (no list, a list that cannot be read, which ``notes`` then says, or no valid row)."""
    path = workspace.path(workspace.config.delivery.subscribers)
    name = path.name
    if not path.exists():
        return _made_up(f"made up: there is no {name}")
    try:
        first = first_reader(workspace)
    except DigestError as exc:
        notes.append(f"the list cannot be read: {exc}")
        return _made_up(f"made up: {name} cannot be read")
    if first is None:
        return _made_up(f"made up: {name} has no reader that can be mailed")
    return SampleReader(first, f"the first reader of {name}")


# How many of the list's lines are read for its first reader, before more are (a list may open
# with rows its export marks as unsubscribed); past the last, the whole list is read.
FIRST_LINES = (200, 20_000)
_LONGEST_LINE = 1 << 20  # characters; a longer line (a quote left open?) is the whole list's to read


def first_reader(workspace: Workspace) -> Subscriber | None:
    """The first reader of the workspace's list a send would mail, read as a send reads the list
    (``delivery.plan.read_list``: [delivery] encoding and columns, exports' headers and the rows
    they mark as gone), from as few of its first lines as it takes: a list of a million readers
    is not read to show one. None when the list has no reader to mail. Raises the send's own
    InputError for a list that cannot be read.

    The first lines are read as a list of their own; what they give is taken only when it cannot
    change with the rest of the file: a reader whose row is followed by another (the last row of
    the lines may go on past them). Any error is left for the whole list to say, with its own file
    and line. The one thing the rest could change is a later row of the same reader marked as gone
    (two exports pasted one after the other): the preview shows them, a send leaves them out.
    """
    from digestcli.delivery.plan import read_list

    for lines in FIRST_LINES:
        head = _first_lines(workspace, lines)
        if head is None:  # the file is no longer, or they cannot be read: the whole list says so
            break
        found = _settled_first(workspace, head)
        if found is not None:
            return found
    readers = read_list(workspace)
    try:
        return next(iter(readers.all), None)  # read from the list's copy: not all of them
    finally:
        readers.close()


def _first_lines(workspace: Workspace, count: int) -> str | None:
    """The list's first ``count`` lines, when it has more (None when it has not, or when they
    cannot be read as its encoding says: errors are the whole list's to report)."""
    delivery = workspace.config.delivery
    lines: list[str] = []
    try:
        with open(workspace.path(delivery.subscribers), encoding=delivery.encoding, newline="") as handle:
            for _ in range(count + 1):
                line = handle.readline(_LONGEST_LINE)
                if not line or (len(line) == _LONGEST_LINE and not line.endswith(("\n", "\r"))):
                    return None
                lines.append(line)
    except (OSError, LookupError, UnicodeError):
        return None
    return "".join(lines[:count])


def _settled_first(workspace: Workspace, head: str) -> Subscriber | None:
    """The first reader of ``head`` (the list's first lines), if the rest of the list cannot
    change it: another row starts after it. None when there is none such, or an error."""
    from digestcli.subscribers import load_subscribers

    delivery = workspace.config.delivery
    with tempfile.TemporaryDirectory(prefix="digest-preview-") as folder:
        part = Path(folder, "first-lines.csv")
        part.write_text(head, encoding="utf-8", newline="")
        try:
            readers = load_subscribers(
                part, state=workspace.state, encoding="utf-8", columns=delivery.columns
            )
        except DigestError:
            return None
        try:
            found = iter(readers.all)
            first = next(found, None)
            if first is None:
                return None
            if next(found, None) is not None:
                return first
            # Few skipped rows in so few lines: all read, so that none is left open.
            last_skipped = max((row.line for row in readers.skipped_rows()), default=0)
            return first if last_skipped > first.line else None
        finally:
            readers.close()


def _made_up(source: str) -> SampleReader:
    email_address, name = MADE_UP_READER
    fields = MappingProxyType({"email": email_address, "name": name})
    return SampleReader(Subscriber(email_address, name, fields, 0), source, made_up=True)


def personalized(
    rendered: RenderedIssue, workspace: Workspace, sample: SampleReader, secret: bytes, notes: list[str]
) -> tuple[str, str, str]:
    """(subject, HTML part, text part) of the message ``sample`` would get: built by the send's own
    ``Personalizer``, so the preview shows what a send does (the link guard, a slot the list has
    no column for) and read back from the message's bytes. ``notes`` gets what a send would say."""
    from digestcli.delivery.send import masthead_for
    from digestcli.message.personalize import Personalizer

    reader = sample.reader
    slots = sorted(rendered.slots())
    where = str(workspace.path(workspace.config.delivery.subscribers))
    if sample.made_up:
        # Made-up values for the slots no made-up reader has, so each one shows where it lands.
        fields = {**{slot: f"[{slot}]" for slot in slots}, **reader.fields}
        reader = Subscriber(reader.email, reader.name, MappingProxyType(fields), 0)
    masthead = masthead_for(workspace.config)
    try:
        personalizer = Personalizer(rendered, masthead, secret, columns=reader.fields, where=where)
    except InputError as exc:  # a slot the list has no column for: a send stops on it
        notes.append(f"{exc}: a send stops here")
        fields = {**dict.fromkeys(slots, ""), **reader.fields}
        reader = Subscriber(reader.email, reader.name, MappingProxyType(fields), reader.line)
        personalizer = Personalizer(rendered, masthead, secret, columns=fields)
    message = email.message_from_bytes(personalizer.message(reader).data, policy=email.policy.default)
    parts: dict[str, str] = {}
    for part in message.walk():
        if not part.is_multipart():
            parts[part.get_content_type()] = part.get_content().replace("\r\n", "\n")
    for _, field, value in personalizer.links_left_out():
        notes.append(
            f"{{{{ reader.{field} }}}} starts a link, and {sample.reader.email}'s value {value!r} is no"
            " http, https or mailto link: it is left out of their message"
        )
    return str(message["Subject"] or ""), parts["text/html"], parts["text/plain"]


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


_BAR = "font:13px/1.5 system-ui,sans-serif;background:#1f2328;color:#e6e6e6;padding:8px 14px;text-align:left"
_LINK = "color:#9cc3ff"
_MUTED = "color:#aaa"
_COLOURS = {"error": "#ff8a80", "warning": "#fbbf24"}
FINDINGS_SHOWN = 12  # more would push the email itself off the screen; `digest lint` has them all


def _toolbar(server: PreviewServer, snap: Snapshot) -> str:
    """The preview's bar above the email: the subject (or why there is none), the preheader, the
    sample reader, and what lint found."""
    assert snap.rendering is not None
    issue = snap.rendering.issue
    esc = html.escape
    rows = [
        f"<strong>Preview</strong> of {esc(str(server.draft_path))} · "
        f'<a href="/text" style="{_LINK}">plain text</a> · '
        f'<a href="/email.html" style="{_LINK}">HTML as sent</a>',
        f"<div>Subject: {_subject_html(snap)}</div>",
        f'<div style="{_MUTED}">Preheader: {esc(issue.preheader) or "none"}</div>',
    ]
    if snap.sample is not None:
        reader = snap.sample.reader
        who = f"{esc(reader.name)} &lt;{esc(reader.email)}&gt;" if reader.name else esc(reader.email)
        rows.append(f'<div style="{_MUTED}">Reader: {who} ({esc(snap.sample.source)})</div>')
    rows.extend(f'<div style="color:{_COLOURS["warning"]}">{esc(note)}</div>' for note in snap.notes)
    if snap.rendering.css_warnings:
        listed = "; ".join(esc(w) for w in snap.rendering.css_warnings)
        rows.append(f'<div style="color:{_COLOURS["warning"]}">CSS: {listed}</div>')
    rows.append(_findings_html(snap.findings))
    return f'<div id="digest-preview" style="{_BAR}">{"".join(rows)}</div>'


def _subject_html(snap: Snapshot) -> str:
    """The subject as the sample reader sees it; when there is none, why (the front matter's error)."""
    assert snap.rendering is not None
    if snap.subject.strip():
        return html.escape(snap.subject)
    problems = [f for f in snap.findings if f.rule == "front-matter" and f.severity == "error"]
    why = f"line {problems[0].line}: {problems[0].message}" if problems else "the front matter has none"
    return f'<span style="color:{_COLOURS["error"]}">none: {html.escape(why)}</span>'


def _findings_html(findings: Sequence[Finding]) -> str:
    if not findings:
        return '<div style="color:#86efac">Lint: all good</div>'
    errors = sum(f.severity == "error" for f in findings)
    counts = f"{_plural(errors, 'error')}, {_plural(len(findings) - errors, 'warning')}"
    lines = [
        f'<div class="digest-finding" data-rule="{f.rule}" style="color:{_COLOURS[f.severity]}">'
        f"{f.line}:{f.column} <strong>{f.rule}</strong> {html.escape(f.message)}</div>"
        for f in findings[:FINDINGS_SHOWN]
    ]
    if len(findings) > FINDINGS_SHOWN:
        lines.append(
            f'<div style="{_MUTED}">… and {len(findings) - FINDINGS_SHOWN} more: run digest lint</div>'
        )
    return (
        f'<details open style="margin-top:4px"><summary style="cursor:pointer">Lint: {counts}</summary>'
        f"{''.join(lines)}</details>"
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def preview_page(server: PreviewServer, snap: Snapshot) -> str:
    """The HTML part as the sample reader gets it, with the toolbar and the reload script: for the
    browser, never for mail."""
    page = snap.html
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
                self._send(HTTPStatus.OK, "text/plain", snap.text)
            elif route == "/email.html":
                self._send(HTTPStatus.OK, "text/html", snap.html)
            else:
                self._send(HTTPStatus.OK, "text/html", snap.page)

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
