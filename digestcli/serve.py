"""``digest serve``: the workspace's web edition (``[web] out``, written by ``digest publish``) over
HTTP, one line logged per request, for a look before uploading or behind a reverse proxy.

It serves files and nothing else: no directory listings, nothing outside the site's folder, no
script. The one-click unsubscribe endpoint joins it with the bounces work (#11).
"""

from __future__ import annotations

import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from digestcli.config import Workspace
from digestcli.errors import UsageError
from digestcli.httpserver import LocalServer


class _SiteHandler(SimpleHTTPRequestHandler):
    server_version = "digest"
    sys_version = ""

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

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class SiteServer:
    """Serve ``site`` on ``host:port`` (``port=0`` picks a free one; see ``url``). Use
    ``serve_forever()`` (blocking) and ``shutdown()`` from another thread."""

    def __init__(self, site: Path, *, host: str = "127.0.0.1", port: int = 8080):
        if not site.is_dir():
            raise UsageError(f"no site to serve: {site} is not a folder", hint="run `digest publish` first")
        self.site = site
        self._http = LocalServer(host, port, partial(_SiteHandler, directory=str(site)))

    @classmethod
    def for_workspace(cls, workspace: Workspace, **options: Any) -> SiteServer:
        return cls(workspace.site_folder(), **options)

    @property
    def url(self) -> str:
        return self._http.url

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def shutdown(self) -> None:
        self._http.shutdown()
