"""Running one of digest's HTTP servers (the preview, ``digest serve``): listening with one clear
error when the address is taken, quiet about browsers that leave mid-answer, a cap on connections
served at once, stopped from another thread."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from digestcli.errors import UsageError

# What a client going away mid-request looks like from the server's side.
CLIENT_GONE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


# What a connection over the cap is told, before it is closed: no thread is started for it.
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 19\r\nConnection: close\r\n\r\nToo busy; try again."
)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    slots: threading.BoundedSemaphore | None = None  # connections served at once, when capped

    def process_request(self, request: Any, client_address: Any) -> None:
        # One thread per connection, as ThreadingHTTPServer does, but never more than the cap: a
        # flood of slow connections would otherwise cost a thread (and its stack) each.
        if self.slots is not None and not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self.slots is not None:
                self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return  # the browser reloaded or closed the tab: nothing went wrong here
        super().handle_error(request, client_address)


class LocalServer:
    """A threading HTTP server on ``host:port`` (``port=0`` picks a free one; see ``url``). Use
    ``serve_forever()`` (blocking; a test runs it in a thread) and ``shutdown()`` from another."""

    def __init__(
        self, host: str, port: int, handler: Callable[..., Any], *, max_connections: int | None = None
    ) -> None:
        try:
            self._server = _QuietServer((host, port), handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose another --port, or 0 for any free one",
            ) from None
        if max_connections is not None:
            self._server.slots = threading.BoundedSemaphore(max_connections)
        self._serving = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_forever(self) -> None:
        self._serving.set()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._serving.clear()

    def shutdown(self) -> None:
        """Stop serving and close the socket (from another thread than ``serve_forever``'s)."""
        if self._serving.is_set():  # socketserver's shutdown() would wait forever on a server never started
            self._server.shutdown()
        self._server.server_close()
