"""The links and images of a rendered email's HTML, for the rules that check it (lint/rendered.py):
apart, so that a lint of the draft alone does not import the HTML parser."""

from __future__ import annotations

from html.parser import HTMLParser


class Page(HTMLParser):
    """The links and images of an HTML document, gathered in one pass of the standard library parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []

    @classmethod
    def read(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.links.append((values["href"] or "").strip())
        elif tag == "img":
            self.images.append(values)

    handle_startendtag = handle_starttag
