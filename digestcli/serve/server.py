"""The HTTP side of ``digest serve``: one handler for the site's files and the unsubscribe URL,
with the limits a process facing the internet (behind a reverse proxy) needs: methods, the
request line, the header block and the body all capped, a rate limit per client, a cap on
connections at once, a timeout on every read, security headers, one log line per request.

Built on the standard library's ``http.server``: the work is two routes and static files, the
reverse proxy in front does TLS, keep-alive and slow clients, and what is left (request
parsing) is what ``http.server`` does, with the limits below added where it has none.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from digestcli.httpserver import CLIENT_GONE
from digestcli.serve.guard import RateLimit, RequestLog, client_address, printable
from digestcli.serve.pages import Page

if TYPE_CHECKING:
    from digestcli.serve.unsubscribe import UnsubscribeEndpoint

MAX_REQUEST_LINE = 8 * 1024  # bytes: an unsubscribe link is ~150; a proxy's own limit is 8 KiB too
MAX_HEADER_BLOCK = 16 * 1024  # bytes, all header lines together
MAX_BODY = 8 * 1024  # bytes: an unsubscribe form is under 200
MAX_CONNECTIONS = 64  # served at once; more are answered 503 at once
READ_TIMEOUT = 15.0  # seconds for each read from a client
METHODS = ("GET", "HEAD", "POST")


class _HeaderBlockTooLong(http.client.LineTooLong):
    """The header block passed its cap: ``http.server`` answers 431 with this text."""

    def __init__(self, cap: int) -> None:
        # Not LineTooLong's own text, which names http.client's 64 KiB line limit.
        http.client.HTTPException.__init__(self, f"the header block is over {cap // 1024} KiB")


class _HeaderBudget:
    """The request's reader while its headers are parsed: past ``budget`` bytes of header lines
    it raises ``LineTooLong``, which ``http.server`` answers 431 (it alone allows 100 lines of
    64 KiB each)."""

    def __init__(self, raw: Any, budget: int) -> None:
        self._raw = raw
        self._cap = self._budget = budget

    def readline(self, size: int = -1) -> bytes:
        limit = self._budget + 1 if size < 0 else min(size, self._budget + 1)
        line: bytes = self._raw.readline(limit)
        self._budget -= len(line)
        if self._budget < 0:
            raise _HeaderBlockTooLong(self._cap)
        return line


class Application:
    """What every request of one server shares: the site, the endpoint, the guard and the log."""

    def __init__(
        self,
        *,
        site: Path | None,
        endpoint: UnsubscribeEndpoint | None,
        limit: RateLimit,
        log: RequestLog,
        behind_proxy: bool,
        debug: bool = False,
    ) -> None:
        self.site = site
        self.endpoint = endpoint
        self.limit = limit
        self.log = log
        self.behind_proxy = behind_proxy
        self.debug = debug
        self._active = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def in_flight(self) -> Any:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being answered (at most ``timeout`` seconds)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)


class Handler(SimpleHTTPRequestHandler):
    """One connection of ``digest serve``: one request (HTTP/1.0), then closed."""

    server_version = "digest"
    # What a request line too broken to say its version is answered as: with a status line
    # (http.server's HTTP/0.9 default answers with the page alone, which no client reads).
    default_request_version = "HTTP/1.0"
    timeout = READ_TIMEOUT
    app: Application  # set on the subclass made for each server (see ``handler_for``)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._status = 0
        self._started = time.perf_counter()
        self._shown = "-"
        self._client = "-"
        site = self.app.site
        # With no site, a folder that cannot exist: every file is "not found".
        super().__init__(*args, directory=str(site or Path(os.devnull) / "no-site"), **kwargs)

    # -- reading the request, within limits --------------------------------------------------------

    def handle(self) -> None:
        with self.app.in_flight():
            super().handle()

    def handle_one_request(self) -> None:
        self._started = time.perf_counter()
        self.command = ""
        self._client = str(self.client_address[0])  # until the headers say otherwise (a proxy)
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            raw, self.rfile = self.rfile, _HeaderBudget(self.rfile, MAX_HEADER_BLOCK)  # type: ignore[assignment]
            try:
                parsed = self.parse_request()
            finally:
                self.rfile = raw
            if not parsed:
                return
            self._client = client_address(
                self.client_address[0],
                self.headers.get("X-Forwarded-For"),
                behind_proxy=self.app.behind_proxy,
            )
            self._shown = self._path_shown()
            wait = self.app.limit.wait(self._client)
            if wait:
                self._too_many(wait)
            elif self.command not in METHODS:
                self._answer(
                    self._refusal(HTTPStatus.METHOD_NOT_ALLOWED, "Not allowed", "Only GET and POST are."),
                    ("Allow", ", ".join(METHODS)),
                )
            else:
                self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            if not self._status:
                self._status = HTTPStatus.REQUEST_TIMEOUT  # logged; the client is too slow to tell
        finally:
            if self._status:
                # None when the request line could not be read (http.server's parse_request).
                method = printable(self.command or "", 16)
                self.app.log.request(self._client, method, self._shown, self._status, self._started)

    def _path_shown(self) -> str:
        endpoint = self.app.endpoint
        if endpoint is not None:
            shown = endpoint.route.shown(self.path)
            if shown is not None:
                return shown  # never the token, wherever it sits
        return printable(urlsplit(self.path).path or "/")

    def _dispatch(self) -> None:
        endpoint = self.app.endpoint
        try:
            if endpoint is not None and endpoint.route.matches(self.path):
                if self.command == "POST":
                    body = self._body()
                    if body is not None:
                        self._answer(endpoint.post(self.path, self.headers.get("Content-Type", ""), body))
                else:
                    self._answer(endpoint.get(self.path))
            elif self.command == "POST":
                self._answer(
                    self._refusal(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        "Not allowed",
                        "Only the unsubscribe page takes a POST.",
                    ),
                    ("Allow", "GET, HEAD"),
                )
            elif self.command == "GET":
                super().do_GET()
            else:
                super().do_HEAD()
        except (TimeoutError, *CLIENT_GONE):
            raise
        except Exception as exc:  # a bug: the reader gets a page, the log one line (or --debug's traceback)
            # Where, not what: the exception's text could hold a token or an address.
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            place = f"{Path(frame.filename).name}:{frame.lineno}"
            self.app.log.write(f"internal error: {type(exc).__name__} at {place} (--debug shows it)")
            if self.app.debug:
                traceback.print_exc(file=sys.stderr)
            if not self._status:
                self._answer(
                    self._refusal(
                        HTTPStatus.INTERNAL_SERVER_ERROR,
                        "Something went wrong on our side",
                        "Nothing was changed. Please try again later.",
                    )
                )
            self.close_connection = True

    def _body(self) -> bytes | None:
        """The request's body, or None once it has been refused (no length, too long, cut short)."""
        if "Transfer-Encoding" in self.headers:
            self._answer(
                self._refusal(HTTPStatus.LENGTH_REQUIRED, "Length required", "Send a Content-Length.")
            )
            return None
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdigit():
            self._answer(
                self._refusal(HTTPStatus.BAD_REQUEST, "Bad request", "The Content-Length is not a number.")
            )
            return None
        if int(length) > MAX_BODY:
            self._answer(
                self._refusal(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    "Too large",
                    f"An unsubscribe request is a short form, under {MAX_BODY // 1024} KiB.",
                )
            )
            return None
        body = self.rfile.read(int(length))
        if len(body) < int(length):
            self.close_connection = True
            self._status = HTTPStatus.BAD_REQUEST  # the client left mid-body: nobody to answer
            return None
        return body

    # -- answering ----------------------------------------------------------------------------------

    def _refusal(self, status: int, heading: str, message: str) -> Page:
        endpoint = self.app.endpoint
        if endpoint is not None:
            return endpoint.pages.refused(status, heading, message)
        text = f"{heading}: {message}\n".encode()
        return Page(
            status, text, (("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"))
        )

    def _too_many(self, wait: float) -> None:
        seconds = max(1, int(wait + 0.999))
        page = self._refusal(
            HTTPStatus.TOO_MANY_REQUESTS, "Too many requests", f"Please try again in {seconds} seconds."
        )
        self._answer(page, ("Retry-After", str(seconds)))

    def _answer(self, page: Page, *extra: tuple[str, str]) -> None:
        self.send_response(page.status)
        for name, value in (*page.headers, *extra):
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page.body)

    def version_string(self) -> str:
        return self.server_version  # no Python version for the world to see

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = int(code)
        super().send_response(code, message)

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request, written at its end (handle_one_request), and nothing else

    # -- the site's files ---------------------------------------------------------------------------

    def translate_path(self, path: str) -> str:
        # The file asked for, followed through any link, must still be inside the site; a name
        # starting with a dot (.git, .htpasswd) is never part of a page.
        found = super().translate_path(path)
        root = Path(self.directory).resolve()
        target = Path(found).resolve()
        missing = str(root / ".digest-not-found")  # answered 404, like any file not there
        if target != root and root not in target.parents:
            return missing
        if any(part.startswith(".") for part in target.relative_to(root).parts):
            return missing
        return found

    def list_directory(self, path: str | Path) -> None:  # type: ignore[override]
        # A folder without an index.html is no page of the site: no listing of what else is there.
        self.send_error(HTTPStatus.NOT_FOUND, "No such page")


def handler_for(app: Application) -> type[Handler]:
    """A handler class bound to one server's application."""
    return type("DigestHandler", (Handler,), {"app": app})
