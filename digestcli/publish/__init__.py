"""The web edition: every issue as a page, an archive and an Atom feed, in a static site; this module
is the public API.

The rooms inside:

``site``     ``publish_site``, ``publish_issue``, ``PublishReport``: which issues, and the site made
             from them
``pages``    the issue pages, the archive and ``latest/``, from ``templates/web/``
``feed``     the Atom feed (the one feedgen import)
``neutral``  no reader on the web: ``{{ reader.FIELD }}`` slots made neutral
``links``    where each file is, and how one page links to another
``files``    writing only the files whose bytes change, atomically

Importing this package is light: the names load on first use, so that a program that only names
``PublishReport`` does not pay for Jinja2, Markdown and feedgen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestcli.lazy import names_from

if TYPE_CHECKING:
    from digestcli.publish.site import PublishReport, publish_issue, publish_site

__all__ = ["PublishReport", "publish_issue", "publish_site"]

__getattr__, __dir__ = names_from(__name__, {f"{__name__}.site": tuple(__all__)})
