"""The site's Atom feed, ``feed.xml``, through feedgen: every issue in full, newest first.

Nothing in it comes from the clock. An entry's id is the issue's id, its dates are the issue's
date, and the feed's date is the newest issue's, so publishing again with nothing changed gives
the same bytes and the file is left alone; a correction changes the entry's content and reaches
feed readers at the next publish.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from digestcli.config import Config, check_list_id, derived_list_id, split_address
from digestcli.errors import DigestError
from digestcli.publish.links import ARCHIVE, FEED, SiteLinks
from digestcli.publish.pages import WebIssue

# Characters XML 1.0 cannot carry at all; lxml refuses a string holding one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# A jump within the page ("In this issue"): in a feed reader it must name the page it jumps in.
_FRAGMENT_LINK = re.compile(r"""(\bhref=["'])#""", re.IGNORECASE)


@dataclass(frozen=True)
class FeedEntry:
    web: WebIssue
    article: str  # the issue's page's <article>: the entry's content


def feed_id(config: Config) -> str:
    """The feed's id: the list's (``[newsletter] list_id``, or the one made from ``from``), the
    same name the email's List-Id header gives the newsletter."""
    news = config.newsletter
    list_id = check_list_id(news.list_id) or derived_list_id(split_address(news.sender, "newsletter.from")[1])
    return f"urn:digest:{list_id}"


def entry_id(config: Config, issue_id: str) -> str:
    """An issue's id in the feed: the issue's own id, which outlives a renamed draft and a new
    title, under the feed's."""
    return f"{feed_id(config)}:{issue_id}"


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _anchored(article: str, page: str) -> str:
    """The article with its jumps within the page ("#item-3") naming the page."""
    return _FRAGMENT_LINK.sub(lambda match: f"{match.group(1)}{page}#", article)


def atom_feed(entries: Sequence[FeedEntry], config: Config, links: SiteLinks) -> bytes:
    """The Atom document for ``entries`` (newest first), as UTF-8 bytes."""
    from feedgen.feed import FeedGenerator  # here: only a publish pays for feedgen

    title = config.newsletter.title
    feed = FeedGenerator()
    feed.id(feed_id(config))
    feed.title(_xml(title))
    feed.author(name=_xml(title))
    feed.language(config.newsletter.language or "en")
    # Named without a version, so that upgrading digest does not rewrite every site's feed.
    feed.generator("digest")
    if links.absolute:
        feed.link(href=links.url(FEED), rel="self", type="application/atom+xml")
    feed.link(href=links.href(ARCHIVE, source=FEED), rel="alternate", type="text/html")
    if config.web.subscribe_url:
        feed.link(href=config.web.subscribe_url, rel="related", type="text/html", title="Subscribe")
    newest = max((entry.web.date for entry in entries), default=dt.date(1970, 1, 1))
    feed.updated(_midnight(newest))
    for entry in entries:
        web = entry.web
        item = feed.add_entry(order="append")
        item.id(entry_id(config, web.issue.issue_id))
        # A subject made only of a reader's values is empty on the web: the issue's title then.
        item.title(_xml(web.subject or web.view.title or title))
        href = links.href(web.file, source=FEED)
        item.link(href=href, rel="alternate", type="text/html")
        item.published(_midnight(web.date))
        item.updated(_midnight(web.date))
        if web.view.preheader:
            item.summary(_xml(web.view.preheader))
        item.content(_xml(_anchored(entry.article, href)), type="html")
    try:
        data: bytes = feed.atom_str(pretty=True, encoding="UTF-8", xml_declaration=True)
    except ValueError as exc:  # feedgen's word for a field it needs and was not given
        raise DigestError(f"cannot make the feed: {exc}", hint="check [newsletter] title") from None
    return data
