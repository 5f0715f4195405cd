"""Turning what the editor pasted (a web page copied as text, a saved blog post, HTML from the
clipboard) into a draft in `drafts/`, listing every line of page chrome it left out.

``read_paste`` reads the source (a file or standard input, text or HTML); ``import_paste`` finds
its parts (``parts``), writes the front matter a draft needs (the next issue number, an id, a
suggested subject and preheader) and the draft itself, never over an existing file.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from digestcli.config import NewsletterConfig, Workspace
from digestcli.draft import draft_ids, parse_draft, yaml_string
from digestcli.errors import DigestError, InputError, read_bytes, read_text
from digestcli.importer.parts import Parts, Removed, SourceLine, find_parts
from digestcli.scaffold import new_id, next_issue_number, slugify, write_new_draft
from digestcli.state.history import read_identities

__all__ = ["Imported", "Paste", "Removed", "import_paste", "read_paste"]

STDIN = "-"
_PREHEADER_MAX = 110  # characters: what most inboxes show beside the subject
_HTML_SUFFIXES = (".html", ".htm", ".xhtml")
# What HTML starts with, to tell a saved page or clipboard HTML from a plain-text paste.
_LOOKS_HTML = re.compile(
    r"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body|meta|article|main"
    r"|div|section|p|h[1-6]|ul|ol|span|b|strong|a)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
# Longest first: the UTF-32 little-endian mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# An XHTML page's XML declaration, which opens the file: <?xml version="1.0" encoding="...">.
_XML_ENCODING = re.compile(rb"""\A\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")


@dataclass(frozen=True)
class Paste:
    """A source as read: its name for messages (a path, or "standard input"), its text, and
    whether it is HTML."""

    name: str
    text: str
    html: bool


@dataclass(frozen=True)
class Imported:
    """What an import made: the draft's text and where it was written (None with ``--stdout``),
    the lines it left out, and the facts of its front matter."""

    draft: str
    path: Path | None
    removed: tuple[Removed, ...]
    stories: int
    title: str
    date: dt.date
    issue: int
    # HTML: where the article was found, the page around it (menus, sidebars, footer) left out
    article: str | None = None


class NoStories(DigestError):
    """The paste has no numbered story at all: nothing to make a draft of (exit 1)."""


def read_paste(source: str | None, stdin: BinaryIO | None = None) -> Paste:
    """Read a paste from a file, or from ``stdin`` when ``source`` is None or ``-``. A file must be
    UTF-8, except an HTML page that names its own encoding in ``<meta charset>``."""
    if source is None or source == STDIN:
        if stdin is None:
            raise InputError("no standard input to read", hint="name a file to import")
        raw = stdin.read()
        text = _decode(raw, "standard input", _declared_charset(raw))
        return Paste("standard input", text, _looks_like_html(text))
    path = Path(source)
    if path.suffix.lower() in _HTML_SUFFIXES and path.is_file():
        raw = read_bytes(path, "file")
        text = _decode(raw, str(path), _declared_charset(raw))
        return Paste(str(path), text, True)
    text = read_text(path, "file")
    return Paste(str(path), text, _looks_like_html(text))


def _looks_like_html(text: str) -> bool:
    return _LOOKS_HTML.match(text[:2000]) is not None


def _declared_charset(raw: bytes) -> str | None:
    """The encoding a page is in: its byte-order mark's, else the one it names in ``<meta charset>``
    (a saved page need not be UTF-8), else in an XML declaration (an XHTML page), if Python knows
    it. A page that names UTF-16 or UTF-32 in a tag written in ASCII is not in it (a browser reads
    it as UTF-8, and so does this)."""
    for mark, encoding in _BOMS:
        if raw.startswith(mark):
            return encoding
    match = _CHARSET.search(raw[:4096]) or _XML_ENCODING.match(raw[:4096])
    if match is None:
        return None
    try:
        encoding = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    return "utf-8" if encoding.startswith(("utf-16", "utf-32")) else encoding


def _decode(raw: bytes, name: str, charset: str | None) -> str:
    encoding = charset or "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        hint = "save it as UTF-8 and import again"
        if name == "standard input":
            hint = "pipe UTF-8 text, or save it to a UTF-8 file and import that"
        raise InputError(
            f"not valid {encoding} (byte 0x{raw[exc.start]:02x})", where=f"{name}:{line}", hint=hint
        ) from None
    return text.removeprefix("\ufeff")


def import_paste(
    paste: Paste,
    workspace: Workspace,
    *,
    date: dt.date | None = None,
    title: str | None = None,
    subject: str | None = None,
    slug: str | None = None,
    write: bool = True,
) -> Imported:
    """Make a draft of a paste, and write it to ``drafts/DATE-SLUG.md`` unless ``write`` is False.
    Raises ``NoStories`` when the paste has no numbered story, before writing anything."""
    config = workspace.config
    configured = config.newsletter.title if config.newsletter.title != NewsletterConfig().title else None
    source_date: dt.date | None = None
    first_line = 1
    note: str | None = None
    text = paste.text
    if paste.html:
        from digestcli.importer.html import to_markdown  # markdownify and readability: here only

        article = to_markdown(text, paste.name)
        text, source_date, first_line = article.markdown, article.date, article.first_line
        if not article.whole:
            found = f"from line {first_line}" if first_line > 1 else "as a reader view finds it"
            note = f"the article {found}; the page's menus, sidebars and footer around it are left out"
    lines = [SourceLine(n, line) for n, line in enumerate(_lines(text), start=1)]
    parts = find_parts(
        lines,
        wrapup_heading=config.lint.wrapup_heading,
        title_hint=title or configured,
        markdown=paste.html,
    )
    if not parts.stories:
        raise NoStories(
            "no numbered stories found; a story starts with a line like '1. Headline' (nothing written)",
            where=paste.name,
        )
    removed = tuple(_in_source(parts.removed, paste, first_line) if paste.html else parts.removed)
    title = title or configured or parts.title or config.newsletter.title
    date = date or parts.date or source_date or dt.date.today()
    number = next_issue_number(workspace.drafts, workspace.state)
    if number == 1 and parts.number:
        number = parts.number  # a workspace with no issue yet goes on from the pasted one's number
    identities = read_identities(workspace.state, draft_ids(workspace.drafts))
    issue_id = new_id(title, number, {*identities.drafts, *identities.sent})

    body = _body(parts, config.lint.wrapup_heading)
    parsed = parse_draft(body)
    headlines = [item.headline_text for item in parsed.items]
    intro = parsed.intro
    first_words = " ".join(token.content for token, _ in intro.inlines())
    subject = subject or suggest_subject(title, number, headlines, config.lint.subject_max)
    used = _headlines_in(subject, headlines)
    preheader = parts.subtitle or suggest_preheader(headlines[used:], first_words)
    front = [
        "---",
        f"id: {issue_id}",
        f"title: {yaml_string(title)}",
        f"subject: {yaml_string(subject)}",
        f"date: {date.isoformat()}",
        f"issue: {number}",
        *([f"preheader: {yaml_string(preheader)}"] if preheader else []),
        "---",
    ]
    draft = "\n".join(front) + "\n\n" + body
    path = None
    if write:
        path = workspace.drafts / f"{date.isoformat()}-{slugify(slug or title)}.md"
        write_new_draft(path, draft)
    return Imported(draft, path, removed, len(parts.stories), title, date, number, note)


def _lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Invisible marks a web page carries (zero-width spaces and joiners, a byte-order mark).
    text = text.translate({0x200B: None, 0x200C: None, 0x2060: None, 0xFEFF: None})
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _body(parts: Parts, wrapup_heading: str) -> str:
    blocks = list(parts.intro)
    for story in parts.stories:
        blocks.append(f"## {story.number}. {story.headline}")
        blocks.extend(story.body)
    if parts.wrapup is not None:
        blocks.append(f"## {wrapup_heading}")
        blocks.extend(parts.wrapup)
    return "\n\n".join(blocks) + "\n"


def suggest_subject(title: str, number: int, headlines: list[str], limit: int) -> str:
    """``Title #N: first headline, second headline & more``, with as many headlines as fit in
    ``limit`` characters; else the first headline alone, with the title or without; else the
    first headline shortened at a word."""
    prefix = f"{title} #{number}: "
    chosen: list[str] = []
    for headline in headlines:
        more = " & more" if len(chosen) + 1 < len(headlines) else ""
        if len(prefix + ", ".join([*chosen, headline]) + more) > limit:
            break
        chosen.append(headline)
    if chosen:
        return prefix + ", ".join(chosen) + (" & more" if len(chosen) < len(headlines) else "")
    if not headlines:
        return _shorten(title, limit)
    for candidate in (prefix + headlines[0], headlines[0]):
        if len(candidate) <= limit:
            return candidate
    return _shorten(headlines[0], limit)


def _headlines_in(subject: str, headlines: list[str]) -> int:
    """How many of the first headlines the subject names (the preheader says the next ones)."""
    count = 0
    for headline in headlines:
        if headline not in subject:
            break
        count += 1
    return max(count, 1)


def suggest_preheader(headlines: list[str], intro: str) -> str:
    """``Also this week: headline; headline; and 9 more``, within what inboxes show; the intro's
    first words when there are no more headlines."""
    chosen: list[str] = []
    for headline in headlines:
        rest = len(headlines) - len(chosen) - 1
        if len(_also([*chosen, headline], rest)) > _PREHEADER_MAX:
            break
        chosen.append(headline)
    if chosen:
        return _also(chosen, len(headlines) - len(chosen))
    return _shorten(" ".join(intro.split()), _PREHEADER_MAX)


def _also(headlines: list[str], more: int) -> str:
    return "Also this week: " + "; ".join(headlines) + (f"; and {more} more" if more else "")


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


def _in_source(removed: list[Removed], paste: Paste, first_line: int) -> list[Removed]:
    """Lines removed from the Markdown an HTML page became, numbered by where their text is in the
    HTML: each looked for from the article's first line on, after the one before it (a page
    repeats "Share" and "Like")."""
    import html

    # Each line of the page as written (an image's alt text is in its tag), then as the words it
    # shows ("Posted on <time>December 4, 2026</time> by Mira Chen").
    source = [
        html.unescape(line).casefold()
        + "\n"
        + " ".join(html.unescape(re.sub(r"<[^>]*>", " ", line)).casefold().split())
        for line in _lines(paste.text)
    ]
    found: list[Removed] = []
    at, previous = first_line - 1, ""
    for line in removed:
        words = _plain_words(line.text)
        start = at + 1 if words == previous else at
        number = next(
            (n for n in range(start, len(source)) if words and words in source[n]),
            next((n for n in range(start, len(source)) if words[:12] and words[:12] in source[n]), None),
        )
        if number is not None:
            at, previous = number, words
        found.append(Removed(at + 1, line.text, line.label))
    return found


def _plain_words(markdown: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"^#{1,6}\s+|[*_\\]", "", text)
    return " ".join(text.split()).casefold()
