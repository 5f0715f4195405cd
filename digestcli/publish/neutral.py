"""No reader in the web edition: every ``{{ reader.FIELD }}`` slot of an issue made neutral.

``{{ reader.name }}`` becomes ``[web] reader_name`` ("Hi there"); any other slot becomes nothing,
and a link or image whose target holds a reader's value (other than the name) goes, its words (or
alt text) kept: `https://x.example/{{ reader.token }}/u` without its token is only a dead link.
The email keeps its slots for the send; the site is one page for everyone, so nothing personal
may reach it.
"""

from __future__ import annotations

import dataclasses
import html
import re
from urllib.parse import quote

from markupsafe import Markup

from digestcli.draft import ANY_SLOT
from digestcli.render.view import IssueView, ItemView, SectionView, WrapUpView

# markdown-it writes `<a href="…">`; raw HTML in a draft may quote with ' or not at all.
_ATTRIBUTE = r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))"""
_LINK = re.compile(r"<a\b(?P<attrs>[^>]*)>(?P<words>.*?)</a\s*>", re.DOTALL | re.IGNORECASE)
_IMAGE = re.compile(r"<img\b(?P<attrs>[^>]*?)/?>", re.IGNORECASE)
_HREF = re.compile(r"\bhref" + _ATTRIBUTE, re.IGNORECASE)
_SRC = re.compile(r"\bsrc" + _ATTRIBUTE, re.IGNORECASE)
_ALT = re.compile(r"\balt" + _ATTRIBUTE, re.IGNORECASE)
_URL_ATTRIBUTE = re.compile(r"(\b(?:href|src)\s*=\s*)(\"[^\"]*\"|'[^']*')", re.IGNORECASE)


class WebReader:
    """The reader as the web templates see them: no one in particular.

    ``name`` is ``[web] reader_name``; every other field is "", so a workspace's own template that
    greets ``{{ reader.name }}`` or prints ``{{ reader.email }}`` shows nothing personal.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):  # keep Python's and Jinja's own probes (__html__ …) working
            raise AttributeError(field)
        return self._name if field == "name" else ""

    def __getitem__(self, field: str) -> str:
        return self.__getattr__(field)


class Neutralizer:
    """Slots out of text, HTML and a whole ``IssueView``, for one ``reader_name``."""

    def __init__(self, reader_name: str) -> None:
        self.reader_name = reader_name

    def _value(self, match: re.Match[str]) -> str:
        return self.reader_name if match.group(1) == "name" else ""

    def text(self, text: str) -> str:
        """Plain text (a subject, a headline) with its slots filled in neutrally, and the spaces an
        emptied slot leaves behind folded."""
        if not ANY_SLOT.search(text):
            return text
        return " ".join(ANY_SLOT.sub(self._value, text).split())

    def html(self, source: str) -> Markup:
        """HTML from the renderer with every slot gone: links and images that pointed at a slot
        dropped (their words kept), slots in other addresses emptied, the rest filled in."""
        if "reader" not in source:  # the common case: an issue with no slot at all
            return Markup(source)
        dropped = _IMAGE.sub(self._image, _LINK.sub(self._link, source))
        addressed = _URL_ATTRIBUTE.sub(self._address, dropped)
        return Markup(ANY_SLOT.sub(lambda m: html.escape(self._value(m)), addressed))

    def _link(self, match: re.Match[str]) -> str:
        href = _attribute(_HREF, match.group("attrs"))
        if href is not None and self._personal(href):
            return match.group("words")
        return match.group(0)

    def _image(self, match: re.Match[str]) -> str:
        src = _attribute(_SRC, match.group("attrs"))
        if src is not None and self._personal(src):
            return html.escape(html.unescape(_attribute(_ALT, match.group("attrs")) or ""))
        return match.group(0)

    def _personal(self, target: str) -> bool:
        """Whether an address holds a reader's value other than their name (which the site has a
        neutral one for): emptied, it would lead nowhere, or somewhere for no one."""
        return any(found.group(1) != "name" for found in ANY_SLOT.finditer(html.unescape(target)))

    def _address(self, match: re.Match[str]) -> str:
        # Inside an address the name is percent-encoded, never left with its spaces and quotes.
        value = ANY_SLOT.sub(lambda m: quote(self._value(m), safe=""), match.group(2))
        return match.group(1) + value

    def section(self, section: SectionView) -> SectionView:
        # The text part is not on the site; it is made neutral all the same, for a workspace's own
        # template that shows it. A reference to a reader's own address goes with its link.
        links = tuple(r for r in section.links if not ANY_SLOT.search(r.url))
        return SectionView(self.html(section.html), self.text(section.text), links)

    def item(self, item: ItemView) -> ItemView:
        return dataclasses.replace(
            item,
            headline=self.text(item.headline),
            headline_html=self.html(item.headline_html),
            headline_text=self.text(item.headline_text),
            body=self.section(item.body),
        )

    def view(self, view: IssueView) -> IssueView:
        """The whole issue as the web templates see it: no slot anywhere in it."""
        wrapup = None
        if view.wrapup is not None:
            wrapup = WrapUpView(self.text(view.wrapup.heading), self.section(view.wrapup.body))
        return dataclasses.replace(
            view,
            title=self.text(view.title),
            subject=self.text(view.subject),
            preheader=self.text(view.preheader),
            intro=self.section(view.intro),
            items=tuple(self.item(item) for item in view.items),
            wrapup=wrapup,
            after_wrapup=tuple(self.item(item) for item in view.after_wrapup),
        )


def _attribute(pattern: re.Pattern[str], attrs: str) -> str | None:
    found = pattern.search(attrs)
    if found is None:
        return None
    return next(group for group in found.groups() if group is not None)
