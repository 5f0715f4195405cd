"""Running one of digest's HTTP servers (the preview, the site): listening with one clear error when
the address is taken, quiet about browsers that leave mid-answer, stopped from another thread."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

from digestcli.errors import UsageError

_CLIENT_GONE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return  # the browser reloaded or closed the tab: nothing went wrong here
        super().handle_error(request, client_address)


class LocalServer:
    """A threading HTTP server on ``host:port`` (``port=0`` picks a free one; see ``url``). Use
    ``serve_forever()`` (blocking; a test runs it in a thread) and ``shutdown()`` from another."""

    def __init__(self, host: str, port: int, handler: Callable[..., Any]) -> None:
        try:
            self._server = _QuietServer((host, port), handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose another --port, or 0 for any free one",
            ) from None
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
