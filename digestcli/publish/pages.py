"""The site's HTML: each issue's page (and its ``<article>``, which the feed carries), the archive and
``latest/``, filled in from the web templates with no reader in them.

The web templates (``templates/web/``) go through the same environment factory as the email's, so
a workspace's own ``templates/web/issue.html.j2`` overrides digest's the same way.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from digestcli.config import Workspace
from digestcli.draft import Issue
from digestcli.publish.links import ARCHIVE, FEED, LATEST, SiteLinks, issue_file
from digestcli.publish.neutral import WebReader
from digestcli.render.templates import environment, render_template
from digestcli.render.view import IssueView

ISSUE_TEMPLATE = "web/issue.html.j2"
ARCHIVE_TEMPLATE = "web/archive.html.j2"
DESCRIPTION_MAX = 200  # characters: about what search results and link previews show

# Spelled out here, as in the email's dateline: strftime's month names follow the machine's locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip
_ARTICLE = re.compile(r"<article\b[^>]*>(.*)</article\s*>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_MAIN = re.compile(r"<main\b[^>]*>(.*)</main\s*>", re.DOTALL | re.IGNORECASE)


def long_date(day: dt.date) -> str:
    """`20 November 2026`, whatever the machine's locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


@dataclass(frozen=True)
class WebIssue:
    """An issue as the site shows it: the draft, its view with no reader in it, and its date (an
    issue without one has no place in the site: its address and its order come from the date)."""

    issue: Issue
    view: IssueView
    date: dt.date

    @property
    def slug(self) -> str:
        return self.issue.web_slug

    @property
    def file(self) -> PurePosixPath:
        return issue_file(self.slug)

    @property
    def subject(self) -> str:
        return self.view.subject or self.view.title

    @property
    def headlines(self) -> tuple[str, ...]:
        return tuple(item.headline for item in self.view.items)


@dataclass(frozen=True)
class Neighbour:
    """The issue before or after, as a page links to it."""

    href: str
    subject: str
    date_text: str


@dataclass(frozen=True)
class IssuePage:
    """What an issue's page knows beyond the issue (``page`` in ``web/issue.html.j2``)."""

    url: str  # its public address; "" without [web] base_url
    date_iso: str
    date_text: str
    description: str
    archive_href: str
    feed_href: str
    subscribe_url: str
    previous: Neighbour | None  # the older issue
    next: Neighbour | None  # the newer issue


@dataclass(frozen=True)
class ArchivePage:
    """``page`` in ``web/archive.html.j2``."""

    url: str
    archive_href: str
    feed_href: str
    latest_href: str
    subscribe_url: str


@dataclass(frozen=True)
class ArchiveEntry:
    """An issue as the archive lists it."""

    href: str
    subject: str
    number: int | None
    date_iso: str
    date_text: str
    headlines: tuple[str, ...]


@dataclass(frozen=True)
class RenderedPage:
    html: str  # the whole page
    article: str  # the page's <article>, for the feed


class Pages:
    """Fills in the web templates for one workspace's site, linked as ``links`` says."""

    def __init__(self, workspace: Workspace, links: SiteLinks) -> None:
        self._config = workspace.config
        self._links = links
        self._env = environment(workspace, "web")
        self._reader = WebReader(self._config.web.reader_name)

    def _context(self, **values: Any) -> dict[str, Any]:
        return {"newsletter": self._config.newsletter, "reader": self._reader, **values}

    def issue(self, web: WebIssue, older: WebIssue | None, newer: WebIssue | None) -> RenderedPage:
        """An issue's page, linked to the issues on either side of it (older, newer)."""
        here = web.file

        def neighbour(other: WebIssue | None) -> Neighbour | None:
            if other is None:
                return None
            return Neighbour(self._links.href(other.file, source=here), other.subject, long_date(other.date))

        page = IssuePage(
            url=self._links.url(here),
            date_iso=web.date.isoformat(),
            date_text=long_date(web.date),
            description=description(web.view),
            archive_href=self._links.href(ARCHIVE, source=here),
            feed_href=self._links.href(FEED, source=here),
            subscribe_url=self._config.web.subscribe_url,
            previous=neighbour(older),
            next=neighbour(newer),
        )
        source = render_template(self._env, ISSUE_TEMPLATE, self._context(issue=web.view, page=page))
        return RenderedPage(source, article_of(source))

    def archive(self, issues: Sequence[WebIssue]) -> str:
        """The archive: ``issues`` as given (newest first), each with its headlines."""
        page = ArchivePage(
            url=self._links.url(ARCHIVE),
            archive_href=self._links.href(ARCHIVE, source=ARCHIVE),
            feed_href=self._links.href(FEED, source=ARCHIVE),
            latest_href=self._links.href(LATEST, source=ARCHIVE),
            subscribe_url=self._config.web.subscribe_url,
        )
        entries = [
            ArchiveEntry(
                href=self._links.href(web.file, source=ARCHIVE),
                subject=web.subject,
                number=web.view.number,
                date_iso=web.date.isoformat(),
                date_text=long_date(web.date),
                headlines=web.headlines,
            )
            for web in issues
        ]
        return render_template(self._env, ARCHIVE_TEMPLATE, self._context(page=page, issues=entries))

    def latest(self, newest: WebIssue) -> str:
        """``latest/``: a stable address that sends the browser on to the newest issue.

        A page of its own rather than a server's redirect, since a static host may offer none.
        """
        href = html.escape(self._links.href(newest.file, source=LATEST))
        canonical = html.escape(self._links.url(newest.file)) or href
        subject = html.escape(newest.subject)
        lang = html.escape(self._config.newsletter.language or "en")
        return (
            "<!DOCTYPE html>\n"
            f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{subject}</title>\n"
            f'<link rel="canonical" href="{canonical}">\n'
            f'<meta http-equiv="refresh" content="0; url={href}">\n'
            '<meta name="robots" content="noindex">\n'
            '<meta name="generator" content="digest">\n'
            "</head>\n<body>\n"
            f'<p>The latest issue: <a href="{href}">{subject}</a></p>\n'
            "</body>\n</html>\n"
        )


def description(view: IssueView) -> str:
    """A line on the issue for link previews and search results: its preheader, else the
    opening words of its greeting."""
    # From the greeting's HTML, not its text part, which cites its links as [1].
    text = " ".join((view.preheader or html.unescape(_TAG.sub(" ", view.intro.html))).split())
    if len(text) <= DESCRIPTION_MAX:
        return text
    cut = text[: DESCRIPTION_MAX - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.–—") + "…"


def article_of(page: str) -> str:
    """A page's ``<article>``, the issue alone, for the feed; the page's ``<main>`` (or the whole
    page) when a workspace's own template has no article."""
    for pattern in (_ARTICLE, _MAIN):
        found = pattern.search(page)
        if found:
            return found.group(1).strip() + "\n"
    return page
