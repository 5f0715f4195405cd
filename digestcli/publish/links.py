"""Where each file of the site is, and how one page names another: absolute under ``[web] base_url``,
relative otherwise.

Relative links name ``index.html`` outright, because a folder opened from ``file://`` shows a
listing, not its index; absolute ones end in ``/``, the address a web server answers and the one
the email's "View in your browser" link uses (``render.compose.web_url``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

ARCHIVE = PurePosixPath("index.html")
FEED = PurePosixPath("feed.xml")
LATEST = PurePosixPath("latest/index.html")


def issue_file(slug: str) -> PurePosixPath:
    """An issue's page, relative to the site's folder."""
    return PurePosixPath(slug) / "index.html"


@dataclass(frozen=True)
class SiteLinks:
    """Links between the site's files. ``base_url`` is ``[web] base_url``, "" when the site has no
    address yet."""

    base_url: str = ""

    @property
    def absolute(self) -> bool:
        return bool(self.base_url)

    def href(self, target: PurePosixPath, *, source: PurePosixPath) -> str:
        """How the file at ``source`` links to the file at ``target`` (both relative to the site)."""
        if self.base_url:
            return self.url(target)
        up = "../" * (len(source.parts) - 1)
        return f"{up}{target}"

    def url(self, target: PurePosixPath) -> str:
        """A file's public address, "" without a ``base_url``; a folder's index is the folder."""
        if not self.base_url:
            return ""
        path = str(target)
        if target.name == "index.html":
            path = str(target.parent) + "/" if target.parent.parts else ""
        return self.base_url.rstrip("/") + "/" + path
