"""HTML to the Markdown of a draft: a saved blog post or HTML from the clipboard, with its links,
emphasis, images (and their alt text) and lists kept.

Two libraries do the work: readability-lxml finds the article in a page full of menus, sidebars and
footers (as a browser's reader view does), and markdownify writes it as Markdown. Readability only
points at the article: the element of the page that holds what it found, widened to the
``<article>`` around it, is converted whole, so nothing inside it is left out (readability's own
summary drops what it judges clutter: an embedded post, a correction note, a table, the title and
the byline). That element is used only when it keeps every story the whole page has; a fragment
from the clipboard, or a page readability misjudges, is converted whole. Either way the chrome left
in it is found line by line, like a plain paste's, and listed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import lxml.etree
import lxml.html
from markdownify import MarkdownConverter
from readability import Document

from digestcli.errors import InputError
from digestcli.importer.parts import bare
from digestcli.paste import story_headlines

# Elements that are the page, never the article: dropped before either conversion.
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*>")  # its `?` before `>` forgotten, too
_NOT_ARTICLE = ("script", "style", "noscript", "template", "iframe", "svg", "button", "nav")


@dataclass(frozen=True)
class HtmlArticle:
    markdown: str  # the article as Markdown, one block after another
    first_line: int  # the line of the page the article starts on, for naming lines in the page
    whole: bool  # the whole page was converted: no article kept every story
    date: dt.date | None  # the date the page gives its post (<time datetime>, article metadata)


def to_markdown(html: str, where: str = "the page") -> HtmlArticle:
    """The article in a page, as Markdown (see the module's docstring). A page with no HTML in it
    is an InputError at ``where``."""
    # An XHTML page's `<?xml ... encoding=...?>` says how bytes were decoded, which they have been.
    html = _XML_DECLARATION.sub("", html, count=1)
    try:
        page = lxml.html.document_fromstring(html)
    except lxml.etree.ParserError:  # empty, or nothing but comments
        raise InputError("no HTML to import in it", where=where, hint="save the page again, whole") from None
    except ValueError as exc:  # lxml refuses text that still names an encoding of its own
        hint = "save the page again as HTML"
        raise InputError(f"cannot read it as HTML: {exc}", where=where, hint=hint) from None
    date = _published(page)
    for element in page.xpath("|".join(f"//{tag}" for tag in _NOT_ARTICLE)):
        element.drop_tree()
    whole = _convert(lxml.html.tostring(page, encoding="unicode"))
    body = page.find("body")
    start = (body.sourceline if body is not None else None) or 1
    wanted = _stories(whole)
    for element in _articles(page):
        markdown = _convert(lxml.html.tostring(element, encoding="unicode"))
        # It must keep every story and something above them (the title, the greeting):
        # readability judges text by its density and its class names, and a short headline, or
        # one whose id has "com-" in it, can fall outside what it keeps.
        if _stories(markdown) >= wanted and _first_story_line(markdown) > 0:
            return HtmlArticle(markdown, element.sourceline or start, False, date)
    return HtmlArticle(whole, start, True, date)


def _articles(page: lxml.html.HtmlElement) -> Iterator[lxml.html.HtmlElement]:
    """The element that holds the article as readability finds it, then as the page marks it up
    (``<article>``, ``<main>``), best first."""
    found = _reader_view(page)
    if found is not None:
        yield found
    for path in ("//article", "//main", "//*[@role='main']"):
        elements = page.xpath(path)
        if elements:  # the longest: a page lists other posts as <article>s too
            yield max(elements, key=lambda element: len(element.text_content()))


# The blocks of text readability's summary is made of, to find each again in the page.
_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "blockquote", "td", "th", "figcaption")


def _reader_view(page: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The element of the page that holds every block of readability's summary (each block found
    again by its text, where the page has it once), or the ``<article>`` around that element."""
    source = lxml.html.tostring(page, encoding="unicode")
    try:
        summary = Document(source).summary(html_partial=True)
        view = lxml.html.fragment_fromstring(summary, create_parent="div")
    except Exception:  # readability gives up on some pages (an empty body, odd trees)
        return None
    kept = {_words(e) for e in view.iter(*_BLOCKS)}
    places: dict[str, list[lxml.html.HtmlElement]] = {}
    for element in page.iter(*_BLOCKS):
        words = _words(element)
        if words in kept and words:
            places.setdefault(words, []).append(element)
    found = [elements[0] for elements in places.values() if len(elements) == 1]
    if not found:
        return None
    holder = _common_ancestor(found)
    article = next((a for a in holder.iterancestors("article")), None)
    return holder if holder.tag == "article" or article is None else article


def _words(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _common_ancestor(elements: Sequence[lxml.html.HtmlElement]) -> lxml.html.HtmlElement:
    """The deepest element that holds all of ``elements``."""
    first = elements[0]
    chain = [first, *first.iterancestors()]
    depth = 0
    for element in elements[1:]:
        lineage = {id(e) for e in (element, *element.iterancestors())}
        while id(chain[depth]) not in lineage:
            depth += 1
    return chain[depth]


class _Converter(MarkdownConverter):
    """markdownify as a draft wants it: ATX headings, ``-`` bullets, ``*`` emphasis."""

    def __init__(self) -> None:
        super().__init__(
            heading_style="ATX",
            bullets="-",
            strong_em_symbol="*",
            newline_style="backslash",
            escape_misc=False,
            keep_inline_images_in=["td", "th"],
            bs4_options="lxml",
        )


def _convert(html: str) -> str:
    text = _Converter().convert(html)
    # markdownify leaves blank lines by the handful and spaces at line ends: the paste rules
    # take care of paragraphs, but the lines should be clean.
    # A <br> between blocks (Google Docs puts them there) is a hard break with nothing to break:
    # markdownify writes it as a line of a lone backslash, which would show as one.
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip() != "\\")


def _stories(markdown: str) -> int:
    return len(story_headlines([bare(line) for line in markdown.splitlines()]))


def _first_story_line(markdown: str) -> int:
    """How many non-blank lines come before the first story: 0 when the title and intro are lost."""
    lines = [bare(line) for line in markdown.splitlines()]
    first = min(story_headlines(lines), default=len(lines))
    return sum(1 for line in lines[:first] if line.strip())


def _published(page: lxml.html.HtmlElement) -> dt.date | None:
    """The post's date as the page's metadata gives it."""
    candidates = [
        *page.xpath("//meta[@property='article:published_time' or @itemprop='datePublished']/@content"),
        *page.xpath("//*[@itemprop='datePublished']/@datetime"),
        *page.xpath("//time/@datetime"),
    ]
    for value in candidates:
        try:
            return dt.date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            continue
    return None
