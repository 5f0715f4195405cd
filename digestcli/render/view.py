"""The issue as the templates see it: ``issue_view`` renders each section's Markdown once, to HTML and text.

The templates (``email.html.j2``, ``email.txt.j2``) see this context:

``newsletter``
    the ``[newsletter]`` settings: ``title``, ``postal_address``, ``language``, ``sender`` …
``issue``
    an ``IssueView``: ``id``, ``title``, ``subject``, ``preheader``, ``date``, ``dateline``,
    ``number``, ``intro``, ``items``, ``wrapup`` and ``after_wrapup``. A section (``intro``, an
    item's ``body``, the wrap-up's ``body``) offers ``html`` and, for the text part, ``text`` and
    its ``links`` (``number``, ``url``).
``reader``
    a ``SlotReader``: ``{{ reader.FIELD }}`` renders as that very slot; ``digestcli.message`` fills
    it per reader at send time, so one render serves every subscriber.

The text template also has the filters ``wrap`` and ``underline`` (78 columns, wide characters
counted as two).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup

from digestcli.draft import ITEM_HEADING, Issue, Item, Section, canonical_slots, markdown
from digestcli.render.links import link_is_live
from digestcli.render.text import Reference, TextWriter

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class SectionView:
    html: Markup
    text: str
    links: tuple[Reference, ...]


@dataclass(frozen=True)
class ItemView:
    number: int  # as the editor numbered it; its position when the heading has no number
    anchor: str  # the id the "In this issue" list links to
    headline: str  # plain words, for the contents list and the text part's contents
    headline_html: Markup
    headline_text: str  # for the text part: links shown as [n]
    body: SectionView


@dataclass(frozen=True)
class WrapUpView:
    heading: str
    body: SectionView


@dataclass(frozen=True)
class IssueView:
    id: str
    title: str
    subject: str
    preheader: str
    date: dt.date | None
    dateline: str  # "Issue 42 · 20 November 2026"; "" when the draft gives neither
    number: int | None
    intro: SectionView
    items: tuple[ItemView, ...]
    wrapup: WrapUpView | None
    after_wrapup: tuple[ItemView, ...]  # headings below the wrap-up: lint flags them, render keeps them


class SlotReader:
    """The reader as templates see them at render time: every field renders as its own slot.

    Not a subscriber: the real reader (``digestcli.message.Reader``) fills the slots at send time.
    """

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):  # keep Python's and Jinja's own probes (__html__ …) working
            raise AttributeError(field)
        return f"{{{{ reader.{field} }}}}"

    def __getitem__(self, field: str) -> str:
        return self.__getattr__(field)


def issue_view(issue: Issue) -> IssueView:
    """The issue as templates see it: every section's Markdown rendered once, to HTML and to text."""
    md = markdown()
    html = cast(RendererHTML, md.renderer)
    writer = TextWriter(link_is_live)

    def section(body: Section, heading: tuple[Token, ...] = ()) -> tuple[SectionView, str]:
        text = writer.section(body.tokens, heading)
        # Markup: the Markdown renderer escaped the editor's text; autoescape must not do it twice.
        body_html = Markup(html.render(list(body.tokens), md.options, issue.env))
        return SectionView(body_html, text.body, text.links), text.heading

    def item_view(item: Item, position: int) -> ItemView:
        heading = _headline_tokens(item)
        body, headline_text = section(item.body, heading)
        return ItemView(
            number=item.number if item.number is not None else position,
            anchor=f"item-{position}",
            headline=item.headline_text,
            headline_html=Markup(html.renderInline(list(heading), md.options, issue.env)),
            headline_text=headline_text,
            body=body,
        )

    intro, _ = section(issue.intro)
    items = tuple(item_view(item, n) for n, item in enumerate(issue.items, 1))
    wrapup = None
    if issue.wrapup is not None:
        wrapup = WrapUpView(issue.wrapup.heading, section(issue.wrapup.body)[0])
    extra = tuple(item_view(item, n) for n, item in enumerate(issue.after_wrapup, len(items) + 1))
    return IssueView(
        id=issue.path.stem,
        title=issue.title,
        subject=canonical_slots(issue.subject),
        preheader=issue.preheader,
        date=issue.date,
        dateline=_dateline(issue),
        number=issue.number,
        intro=intro,
        items=items,
        wrapup=wrapup,
        after_wrapup=extra,
    )


def _headline_tokens(item: Item) -> tuple[Token, ...]:
    """The heading's inline children without the leading "3. ", which the template places itself."""
    children = list(item.heading.children or ())
    if item.number is not None and children and children[0].type == "text":
        match = ITEM_HEADING.match(children[0].content.lstrip())
        if match:
            children[0] = children[0].copy(content=match.group(2))
    return tuple(children)


def _dateline(issue: Issue) -> str:
    parts = []
    if issue.number is not None:
        parts.append(f"Issue {issue.number}")
    if issue.date is not None:
        # Spelled out by hand: strftime's month names follow the machine's locale.
        parts.append(f"{issue.date.day} {_MONTHS[issue.date.month - 1]} {issue.date.year}")
    return " · ".join(parts)
