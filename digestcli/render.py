"""Turns an Issue into the two parts of an email, once per issue (Markdown, Jinja2, then premailer).

The templates (``email.html.j2``, ``email.txt.j2``) see this context:

``newsletter``
    the ``[newsletter]`` settings: ``title``, ``postal_address``, ``language``, ``sender`` …
``issue``
    an ``IssueView``: ``id``, ``title``, ``subject``, ``preheader``, ``date``, ``dateline``,
    ``number``, ``intro``, ``items``, ``wrapup`` and ``after_wrapup``. A section (``intro``, an
    item's ``body``, the wrap-up's ``body``) offers ``html`` and, for the text part, ``text`` and
    its ``links`` (``number``, ``url``).
``reader``
    ``{{ reader.FIELD }}`` renders as that very slot; ``digestcli.message`` fills it per reader
    at send time, so one render serves every subscriber.

The text template also has the filters ``wrap`` and ``underline`` (78 columns, wide characters
counted as two).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, cast
from urllib.parse import urlsplit

import jinja2
from lxml import etree
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markupsafe import Markup
from premailer import Premailer

from digestcli import config as config_module
from digestcli.config import Workspace
from digestcli.draft import ANY_SLOT, ITEM_HEADING, SLOT, Issue, Item, Section, canonical_slots, markdown
from digestcli.errors import DigestError
from digestcli.plaintext import Reference, TextWriter, underline, wrap


@dataclass(frozen=True)
class RenderedIssue:
    issue_id: str  # the issue's identity (Issue.issue_id): what the ledger knows it by
    title: str
    subject: str  # may hold slots
    preheader: str
    html: str  # a whole inlined HTML document; slots intact
    text: str  # the plain-text part; slots intact
    number: int | None = None  # the front matter's `issue`
    date: str = ""  # the front matter's date, YYYY-MM-DD
    name: str = ""  # the draft's file stem: names the files in out/
    id_given: bool = False  # the id is the front matter's own, not derived from title and number

    def slots(self) -> set[str]:
        """The reader fields the rendered parts ask for."""
        return {m.group(1) for part in (self.subject, self.html, self.text) for m in SLOT.finditer(part)}


HTML_TEMPLATE = "email.html.j2"
TEXT_TEMPLATE = "email.txt.j2"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Rendering:
    """What one render produced: the issue, what premailer's CSS parser said, and where time went."""

    issue: RenderedIssue
    css_warnings: tuple[str, ...]  # e.g. "Property: Unknown Property name. [12:5: colr]"
    seconds: dict[str, float]  # "markdown", "jinja", "inline", "total"


class Written(NamedTuple):
    path: Path
    size: int  # bytes on disk


# ── The template context ─────────────────────────────────────────────────────────────────────


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


class Reader:
    """The reader as templates see them at render time: every field renders as its own slot."""

    def __getattr__(self, field: str) -> str:
        if field.startswith("_"):  # keep Python's and Jinja's own probes (__html__ …) working
            raise AttributeError(field)
        return f"{{{{ reader.{field} }}}}"

    def __getitem__(self, field: str) -> str:
        return self.__getattr__(field)


# ── Environment ──────────────────────────────────────────────────────────────────────────────


def environment(workspace: Workspace) -> jinja2.Environment:
    """The Jinja2 environment for a workspace: its own templates first, then digest's, file by file."""
    return _environment(tuple(config_module.template_search_path(workspace)))


def _autoescape(name: str | None) -> bool:
    return name is not None and re.search(r"\.html?(\.|$)", name) is not None


@lru_cache(maxsize=16)
def _environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,  # a misspelt name in a template fails loudly, with its line
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,  # the preview edits templates while the server runs
    )
    env.filters["wrap"] = wrap
    env.filters["underline"] = underline
    return env


# ── Rendering ────────────────────────────────────────────────────────────────────────────────


def render_issue(issue: Issue, workspace: Workspace) -> RenderedIssue:
    """Render an issue's HTML and text parts, with per-reader slots left in place."""
    return render(issue, workspace).issue


def render(issue: Issue, workspace: Workspace) -> Rendering:
    """Like ``render_issue``, and also report premailer's CSS warnings and the time each step took."""
    started = time.perf_counter()
    view = issue_view(issue)
    after_markdown = time.perf_counter()
    env = environment(workspace)
    context = {"newsletter": workspace.config.newsletter, "issue": view, "reader": Reader()}
    html_source = _render_template(env, HTML_TEMPLATE, context)
    text = tidy_text(_render_template(env, TEXT_TEMPLATE, context))
    after_jinja = time.perf_counter()
    html, warnings = inline_css(html_source)
    done = time.perf_counter()
    rendered = RenderedIssue(
        issue_id=issue.issue_id,
        title=view.title or workspace.config.newsletter.title,
        subject=canonical_slots(issue.subject),
        preheader=issue.preheader,
        html=html,
        text=text,
        number=issue.number,
        date=issue.date.isoformat() if issue.date else "",
        name=issue.path.stem,
        id_given="id" in issue.front.values,
    )
    seconds = {
        "markdown": after_markdown - started,
        "jinja": after_jinja - after_markdown,
        "inline": done - after_jinja,
        "total": done - started,
    }
    return Rendering(rendered, warnings, seconds)


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


def _render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        loader = env.loader
        folders = ", ".join(loader.searchpath) if isinstance(loader, jinja2.FileSystemLoader) else ""
        hint = "restore it, or reinstall digest"
        raise DigestError(f"template '{exc.name}' not found", where=folders or None, hint=hint) from None
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise DigestError(f"template syntax error: {exc.message}", where=where) from None
    except jinja2.TemplateError as exc:  # UndefinedError and friends, raised while rendering
        where = _template_line(exc) or name
        raise DigestError(f"template error: {exc.message or exc}", where=where) from None


def _template_line(exc: BaseException) -> str | None:
    """The template file and line a render error came from: Jinja maps its frames back to templates."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def tidy_text(text: str) -> str:
    """The text part's whitespace made regular: no trailing spaces, at most one blank line in a row."""
    rows = [row.rstrip() for row in canonical_slots(text).splitlines()]
    out: list[str] = []
    for row in rows:
        if row or (out and out[-1]):
            out.append(row)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def link_is_live(href: str, *, image: bool = False) -> bool:
    """Whether a target may stay live in an email: http(s), mailto (not for images), an anchor, a slot."""
    target = re.sub(r"[\x00-\x20\x7f]", "", canonical_slots(href))  # browsers drop these inside a scheme
    if SLOT.match(target):
        return True  # a reader's own URL (the unsubscribe link), filled in at send time
    if not image and len(target) > 1 and target.startswith("#"):
        return True  # the "In this issue" list's jump to an item
    try:
        scheme = urlsplit(target).scheme.lower()
    except ValueError:  # "http://[oops" and the like
        return False
    return scheme in (IMAGE_SCHEMES if image else LINK_SCHEMES)


# ── CSS inlining ─────────────────────────────────────────────────────────────────────────────

# cssutils, premailer's CSS parser, logs to stderr through this logger unless told otherwise.
_CSS_LOG = logging.getLogger("CSSUTILS")
_CSS_LOCK = threading.Lock()  # the logger is global: one inlining at a time may own it
# Properties email needs that cssutils does not know; warning about them every render is noise.
_EMAIL_PROPERTIES = re.compile(
    r"^(mso-|-webkit-|-ms-|-moz-|-apple-|text-decoration-|(color-scheme|supported-color-schemes|word-break"
    r"|overflow-wrap|hyphens|box-sizing|object-fit)$)"
)
_PROPERTY_WARNING = re.compile(r"Unknown Property name\. \[\d+:\d+: ([^\]]+)\]")
_POSITION = re.compile(r"\[\d+:\d+: ")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _css_warnings_captured() -> Iterator[_Collect]:
    with _CSS_LOCK:
        collect = _Collect()
        handlers, propagate = list(_CSS_LOG.handlers), _CSS_LOG.propagate
        for handler in handlers:
            _CSS_LOG.removeHandler(handler)
        _CSS_LOG.addHandler(collect)
        _CSS_LOG.propagate = False
        try:
            yield collect
        finally:
            _CSS_LOG.removeHandler(collect)
            for handler in handlers:
                _CSS_LOG.addHandler(handler)
            _CSS_LOG.propagate = propagate


def inline_css(html: str) -> tuple[str, tuple[str, ...]]:
    """Move the ``<style>`` rules into style attributes; return the document and the CSS warnings.

    Media queries (dark mode, phones) and pseudo-classes cannot be inlined and stay in ``<style>``.
    Slots are swapped for inert words first: the HTML serializer would percent-encode the braces
    and spaces of a slot inside ``href``. Links with a scheme email must not carry lose their
    target on the way.
    """
    prefix = "digest-slot--"
    while prefix in html:  # never mistake the editor's own words for a slot
        prefix = "x" + prefix

    def protect(match: re.Match[str]) -> str:
        return f"{prefix}{match.group(1)}--"

    tree = etree.fromstring(ANY_SLOT.sub(protect, html), etree.HTMLParser()).getroottree()
    _neutralize(tree, prefix)
    premailer = Premailer(
        allow_network=False,  # never fetch <link rel=stylesheet> or external_styles
        allow_loading_external_files=False,
        keep_style_tags=False,  # only what cannot be inlined stays in <style>
        strip_important=False,  # media queries need !important to beat the inlined styles
        cache_css_parsing=False,  # a cached parse would report its warnings only the first time
        disable_link_rewrites=True,
        disable_basic_attributes=["height"],  # height:auto would become the invalid height="auto"
    )
    with _css_warnings_captured() as collect:
        inlined = premailer.transform(tree.getroot())
    out = etree.tostring(inlined, method="html", encoding="unicode", pretty_print=True)
    restored = re.sub(re.escape(prefix) + r"([A-Za-z_][A-Za-z0-9_]*)--", r"{{ reader.\1 }}", out)
    return restored, _useful_warnings(collect.messages)


def _neutralize(tree: Any, slot_prefix: str) -> None:
    """Make links and images whose scheme email must not carry inert, keeping their words."""

    def live(target: str, *, image: bool = False) -> bool:
        return target.startswith(slot_prefix) or link_is_live(target, image=image)

    for element in tree.iter("a", "img", "script"):
        if element.tag == "script":  # mail clients drop scripts; a sender should never send one
            element.getparent().remove(element)
        elif element.tag == "a" and "href" in element.attrib and not live(element.get("href")):
            element.tag = "span"
            del element.attrib["href"]
        elif element.tag == "img" and not live(element.get("src", ""), image=True):
            alt = element.get("alt", "")
            element.attrib.clear()
            element.tag = "span"
            element.text = alt


def _useful_warnings(messages: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    useful = []
    for message in messages:
        unknown = _PROPERTY_WARNING.search(message)
        if unknown and _EMAIL_PROPERTIES.match(unknown.group(1).strip()):
            continue
        key = _POSITION.sub("[", message)  # the <style> block and a style attribute say it twice
        if key not in seen:
            seen.add(key)
            useful.append(message)
    return tuple(useful)


# ── Writing out/ ─────────────────────────────────────────────────────────────────────────────


def write_rendered(rendered: RenderedIssue, out_dir: str | Path) -> list[Written]:
    """Write ``<name>.html`` and ``<name>.txt`` (the draft's file name) into ``out_dir`` (created if
    needed)."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, body in ((".html", rendered.html), (".txt", rendered.text)):
            path = folder / f"{rendered.name or rendered.issue_id}{suffix}"
            data = body.encode("utf-8")
            path.write_bytes(data)
            written.append(Written(path, len(data)))
    except OSError as exc:
        raise DigestError(f"cannot write: {exc.strerror or exc}", where=str(exc.filename or folder)) from None
    return written
