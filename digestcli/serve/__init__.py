"""``digest serve``: the workspace's web edition (``[web] out``, written by ``digest publish``) and
its one-click unsubscribe URL (``[newsletter] unsubscribe_url``) over HTTP, for a look before
uploading or, behind a reverse proxy with TLS, for readers at any hour.

The site is files and nothing else: no directory listings, nothing outside the site's folder, no
script. The unsubscribe URL shows a confirm page to a GET and unsubscribes on a POST (RFC 8058's
one-click, or the page's button), straight into this workspace's suppression list or, for a
server apart from the sending workspace, by mail to ``unsubscribe_mailto`` (``[serve]
unsubscribe``). ``server`` holds the HTTP side and its limits, ``unsubscribe`` the endpoint,
``relay`` the mail, ``guard`` the rate limit and the log, ``pages`` the pages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from digestcli.config import Workspace
from digestcli.errors import UsageError
from digestcli.httpserver import LocalServer
from digestcli.serve.guard import RateLimit, RequestLog
from digestcli.serve.server import MAX_CONNECTIONS, Application, handler_for
from digestcli.state.secret import SECRET_ENV, read_secret

if TYPE_CHECKING:  # the endpoint's modules are loaded only when unsubscribe is on
    from digestcli.serve.relay import UnsubscribeRelay
    from digestcli.serve.unsubscribe import UnsubscribeEndpoint

__all__ = ["DigestServer"]


class DigestServer:
    """Serve a workspace's site and unsubscribe URL on ``host:port`` (``port=0`` picks a free one;
    see ``url``). Use ``serve_forever()`` (blocking) and ``shutdown()`` from another thread.

    ``behind_proxy`` (default: ``[serve] behind_proxy``) trusts X-Forwarded-For for the client's
    address; ``relay_delays`` sets the mail relay's retry schedule (tests)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        behind_proxy: bool | None = None,
        log_stream: TextIO | None = None,
        debug: bool = False,
        relay_delays: tuple[float, ...] | None = None,
    ) -> None:
        settings = workspace.config.serve
        site = workspace.site_folder()  # refused when it is the workspace, or holds it
        self.site: Path | None = site if site.is_dir() else None
        self.mode = settings.unsubscribe
        if self.site is None and self.mode == "off":
            raise UsageError(
                f"no site to serve: {site} is not a folder, and [serve] unsubscribe is off",
                hint="run `digest publish` first",
            )
        self.workspace = workspace
        self.log = RequestLog(log_stream)
        self.behind_proxy = settings.behind_proxy if behind_proxy is None else behind_proxy
        self.relay: UnsubscribeRelay | None = None
        self.endpoint = None if self.mode == "off" else self._endpoint(relay_delays)
        self.app = Application(
            site=self.site,
            endpoint=self.endpoint,
            limit=RateLimit(settings.requests_per_minute),
            log=self.log,
            behind_proxy=self.behind_proxy,
            debug=debug,
        )
        self._http = LocalServer(host, port, handler_for(self.app), max_connections=MAX_CONNECTIONS)

    def _endpoint(self, relay_delays: tuple[float, ...] | None) -> UnsubscribeEndpoint:
        from digestcli.serve.pages import Pages
        from digestcli.serve.unsubscribe import (
            DirectRecorder,
            Recorder,
            UnsubscribeEndpoint,
            UnsubscribeRoute,
        )

        config = self.workspace.config
        recorder: Recorder
        if self.mode == "mail":
            from digestcli.serve.relay import RETRY_DELAYS, UnsubscribeRelay

            self.relay = UnsubscribeRelay(
                config, self.workspace.state, retry_delays=relay_delays or RETRY_DELAYS, log=self.log.write
            )
            recorder = self.relay
        else:
            recorder = DirectRecorder(self.workspace.state)
        route = UnsubscribeRoute(config.newsletter.unsubscribe_url)
        return UnsubscribeEndpoint(route, recorder, Pages(self.workspace), self.workspace.state)

    @property
    def url(self) -> str:
        return self._http.url

    def describe(self, show: Callable[[Path], str] = str) -> list[str]:
        """What the server does, for its start-up: the first line says where unsubscribes go.
        ``show`` writes a path as the editor would type it."""
        site = f"{show(self.site)}/" if self.site is not None else "no site (`digest publish` makes one)"
        if self.endpoint is None:
            return [f"Serving {site} at {self.url}; unsubscribe is off ([serve] unsubscribe) (Ctrl-C stops)"]
        route, recorder = self.endpoint.route, self.endpoint.recorder
        lines = [
            f"Serving {site} at {self.url}; unsubscribes at {route.path} are {recorder.describe()}"
            f' ([serve] unsubscribe = "{self.mode}") (Ctrl-C stops)'
        ]
        if self.behind_proxy:
            lines.append("Behind a reverse proxy: each client is the last address in X-Forwarded-For.")
        if read_secret(self.workspace.state) is None:
            lines.append(
                f"warning: no unsubscribe secret ({show(self.workspace.state / 'secret')} or {SECRET_ENV}):"
                " every link is refused until there is one; on a server of its own, set"
                f" {SECRET_ENV} to the sending workspace's secret"
            )
        return lines

    def serve_forever(self) -> None:
        if self.relay is not None:
            self.relay.start()
        self._http.serve_forever()

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop taking requests, let those being answered finish (``grace`` seconds at most), and
        stop the mail relay (what it has not sent stays queued for the next start)."""
        self._http.shutdown()
        self.app.wait_idle(grace)
        if self.relay is not None:
            self.relay.stop(grace)
