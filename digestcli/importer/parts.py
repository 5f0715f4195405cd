"""Finding the parts of a paste: the page chrome to remove, the title and date lines, the intro, the
numbered stories, the wrap-up, and the paragraphs in either style a paste has them.

It works on lines, as the editor pasted them (plain text) or as HTML became them (Markdown), and
keeps each line's number in the source so that every line it removes can be named. What it cannot
place stays where it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from digestcli.paste import (
    chrome_label,
    date_in,
    date_of,
    ends_sentence,
    story_headlines,
)


@dataclass(frozen=True)
class SourceLine:
    number: int  # in the source, from 1
    text: str


@dataclass(frozen=True)
class Removed:
    """A line the import left out of the draft: where it was in the source, what it said, and what
    it was taken for ("view count", "title line")."""

    line: int
    text: str
    label: str


@dataclass(frozen=True)
class Story:
    number: int
    headline: str  # as written (Markdown when the paste was HTML)
    line: int  # the headline's line in the source
    body: tuple[str, ...]  # blocks of Markdown


@dataclass
class Parts:
    title: str | None = None  # the newsletter's name, from the title line
    number: int | None = None  # the issue's number, from the title line ("#17", "Issue 59")
    subtitle: str | None = None  # the line under the title that sums up the issue (Substack's)
    date: dt.date | None = None  # from the date line
    intro: list[str] = field(default_factory=list)
    stories: list[Story] = field(default_factory=list)
    wrapup: list[str] | None = None  # None: the paste has no wrap-up line
    removed: list[Removed] = field(default_factory=list)


# Markdown a line may carry around a headline or title: "## 3. Headline", "**3. Headline**".
_HEADING_MARK = re.compile(r"^\s*#{1,6}\s+")
_IMAGE_LINE = re.compile(r"^\s*!\[[^\]]*\]\([^)]*\)\s*$")
_WRAPPED = re.compile(r"^(\*\*|__)(.+)\1$")
# Bullets a plain-text paste brings from a list (Google Docs uses ●, ○ and ■).
_BULLET = re.compile(r"^\s*([●•○◦▪■‣∙·*+-])\s+(.*)$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]\s|\d{1,3}[.)]\s)")
_TITLE_MAX = 100  # characters: a title line is a name, not a sentence
# "#17", "Issue 59", "No. 9" after the newsletter's name, in the languages chrome is found in.
_ISSUE_NUMBER = re.compile(
    r"^(.*?)[\s,:;|·–—-]*(?:#|(?:issue|no\.?|number|nr\.?|n°|n\.|numéro|ausgabe|número|numero|nummer)"
    r"\s*#?)\s*(\d{1,5})\b.*$",
    re.IGNORECASE,
)
_SENTENCES = re.compile(r"[a-z]{2,}[.!?] +[A-Z]")  # a sentence ends inside the line
_WRAPUP_VARIANTS = ("wrapping up", "wrap up", "wrap-up", "wrapup", "in closing")
# After a "Recent Posts" heading, short lines are other posts' titles, up to this many.
_RECENT_POSTS_MAX = 12


def bare(text: str) -> str:
    """A line without the Markdown an HTML heading or a bold line brings: the words alone."""
    text = _HEADING_MARK.sub("", text.strip())
    wrapped = _WRAPPED.match(text)
    return wrapped.group(2).strip() if wrapped else text


def _fold(text: str) -> str:
    return " ".join(bare(text).casefold().split()).rstrip(":.!").strip()


def find_parts(
    lines: Sequence[SourceLine], *, wrapup_heading: str, title_hint: str | None, markdown: bool
) -> Parts:
    """The parts of a paste (see the module's docstring). ``title_hint``: the newsletter's name, to
    tell its title line from the blog's; ``markdown``: the lines are Markdown (from HTML), to be
    kept as they are, rather than plain text."""
    parts = Parts()
    texts = [line.text for line in lines]
    removed: dict[int, str] = {}  # index -> label
    for i, text in enumerate(texts):
        label = chrome_label(text)
        if label is not None:
            removed[i] = label
    # A headline is judged among the lines that stay: chrome between a headline and its first
    # paragraph ("Like", "Share") must not hide the paragraph.
    visible = ["" if i in removed else bare(t) for i, t in enumerate(texts)]
    stories = story_headlines(visible)
    if not stories:
        return parts
    first = min(stories)
    wrapup_folds = {_fold(wrapup_heading), *_WRAPUP_VARIANTS}
    wrapup = next(
        (i for i in range(first + 1, len(texts)) if i not in removed and _fold(texts[i]) in wrapup_folds),
        None,
    )
    if wrapup is not None:  # headlines after the wrap-up are content of the closing, not stories
        stories = {i: s for i, s in stories.items() if i < wrapup}

    title_index = _front(texts, first, removed, parts, title_hint)
    _other_posts(texts, first + 1, removed, {*stories, *([wrapup] if wrapup is not None else [])})

    parts.removed = [
        # (A line of Markdown from HTML may end with a hard break, "\\": no part of what it says.)
        Removed(
            lines[i].number,
            texts[i].strip().removesuffix("\\").rstrip() if markdown else texts[i].strip(),
            label,
        )
        for i, label in sorted(removed.items())
    ]
    kept = [i for i in range(len(texts)) if i not in removed]
    # A paste with not one blank line between its stories has a paragraph on every line.
    last = max(kept)
    one_per_line = all(texts[i].strip() for i in kept if first <= i <= last)
    start = title_index + 1 if title_index is not None else 0
    parts.intro = _blocks([texts[i] for i in kept if start <= i < first], markdown, one_per_line)
    # Each kept line after the first story goes to the story (or the wrap-up) above it.
    bodies: dict[int, list[str]] = {head: [] for head in stories}
    closing: list[str] = []
    owner: list[str] | None = None
    for i in kept:
        if i in stories:
            owner = bodies[i]
        elif i == wrapup:
            owner = closing
        elif owner is not None:
            owner.append(texts[i])
    for head in sorted(stories):
        number, headline = stories[head]
        body = _blocks(bodies[head], markdown, one_per_line)
        parts.stories.append(Story(number, headline, lines[head].number, tuple(body)))
    if wrapup is not None:
        parts.wrapup = _blocks(closing, markdown, one_per_line)
    return parts


def _front(
    texts: Sequence[str], first: int, removed: dict[int, str], parts: Parts, title_hint: str | None
) -> int | None:
    """What comes before the first story: the date line, the title line and the page's header
    above it (the blog's name, the author) are taken out; the rest is the intro. Returns the
    title line's index, None when no line is surely the title (the lines stay in the intro)."""
    for i in range(first):
        if i not in removed and date_of(bare(texts[i])) is not None:
            if parts.date is None:
                parts.date = date_of(bare(texts[i]))
            removed[i] = "date line"
    # The lead: the short lines above the greeting, which start with no sentence (and pictures:
    # the author's, beside the name).
    hint = _fold(title_hint) if title_hint else ""
    lead: list[int] = []
    for i in range(first):
        if i in removed or not texts[i].strip():
            continue
        if not (
            _IMAGE_LINE.match(texts[i])
            or _title_like(texts[i], _line_after(texts, i))
            or _names_the_issue(texts[i], hint)
        ):
            break
        lead.append(i)
    names = [i for i in lead if not _IMAGE_LINE.match(texts[i])]
    title = _title_line(names, texts, hint)
    if title is not None:
        parts.title, parts.number = name_and_number(bare(texts[title]))
        removed[title] = "title line"
        for i in lead:
            if i < title:  # the blog's name, the author, above the newsletter's title
                removed[i] = "page header"
                if _IMAGE_LINE.match(texts[i]):
                    removed[i] = "author picture"
                elif date_in(texts[i]) or (
                    _name_like(texts[i]) and _beside_chrome(i, texts, removed, _BYLINE)
                ):
                    removed[i] = "byline"
        below = [i for i in lead if i > title]
        if below and below[0] in names and _subtitle(below[0], texts, removed):
            parts.subtitle = bare(texts[below[0]])
            removed[below[0]] = "subtitle (the preheader)"
    # Upwards from the date and the reading time: the author's name, the author's picture, the
    # post's counters. A greeting beside the date is no byline: only a name, a picture or a count.
    for i in reversed([i for i in lead if title is None or i > title]):
        if i in removed or not _beside_chrome(i, texts, removed):
            continue
        if _IMAGE_LINE.match(texts[i]):
            removed[i] = "author picture"
        elif _name_like(texts[i]):
            removed[i] = "byline"
        elif bare(texts[i]).isdigit():
            removed[i] = "counter"
    if parts.date is None:  # the date in a byline: "Posted on November 20, 2026 by Mira Chen"
        parts.date = next((d for i in sorted(removed) if i < first and (d := date_in(texts[i]))), None)
    return title


def _names_the_issue(text: str, hint: str) -> bool:
    """A line that starts with the newsletter's name, or carries an issue number, or is a level-1
    heading: a title, even when it asks a question ("Pocket Signals #22: A Quiet Week?")."""
    words = bare(text)
    if len(words) > _TITLE_MAX or _LIST_ITEM.match(text) or words.startswith("!["):
        return False
    if _SENTENCES.search(words) or (ends_sentence(words) and not words.endswith("?")):
        return False  # "Pocket Signals readers, hello!" greets
    return (
        bool(hint and _fold(text).startswith(hint))
        or name_and_number(words)[1] is not None
        or re.match(r"#\s", text.strip()) is not None
    )


def _title_line(names: list[int], texts: Sequence[str], hint: str) -> int | None:
    """Which of the short lines above the greeting is the issue's title: the last that names the
    newsletter (a blog named as its newsletter shows the name above the issue's own title);
    else the last with an issue number; else a level-1 heading; else none (a greeting such as
    "Hi everyone", or a line the editor wrote, is no title)."""
    for found in (
        [i for i in names if hint and _fold(texts[i]).startswith(hint)],
        [i for i in names if name_and_number(bare(texts[i]))[1] is not None],
    ):
        if found:
            return found[-1]
    headings = [i for i in names if re.match(r"#\s", texts[i].strip())]
    return headings[0] if headings else None


def _subtitle(i: int, texts: Sequence[str], removed: dict[int, str]) -> bool:
    """The line under the title sums the issue up (Substack's subtitle): a phrase, not the
    author's name (Ghost's byline, often twice), and not beside the page's chrome."""
    following = _next_line(texts, i)
    repeated = following < len(texts) and texts[following].strip() == texts[i].strip()
    return not _name_like(texts[i]) and not repeated and not _beside_chrome(i, texts, removed)


# The small words inside a person's name: "Anna van der Berg", "Luis de la Cruz".
_NAME_PARTICLES = frozenset(
    ("al", "bin", "da", "de", "del", "der", "di", "dos", "du", "el", "la", "le", "van", "von", "y")
)


def _name_like(text: str) -> bool:
    """A line that reads as a person's name: one to five words, each capitalised."""
    words = bare(text).split()
    return 0 < len(words) <= 5 and all(
        (w[:1].isupper() and not any(c.isdigit() for c in w) and not w.endswith((",", ":", ";", "!", "?")))
        or w in _NAME_PARTICLES
        for w in words
    )


def _line_after(texts: Sequence[str], i: int) -> str:
    return texts[i + 1] if i + 1 < len(texts) else ""


def name_and_number(title: str) -> tuple[str, int | None]:
    """A title line as the newsletter's name and the issue's number: "Harbour Notes #17: Ports &
    Phones" -> ("Harbour Notes", 17); a line with no number is all name."""
    match = _ISSUE_NUMBER.match(title)
    if match is None or not match.group(1).strip():
        return title.strip(), None
    return match.group(1).strip(), int(match.group(2))


def _next_line(texts: Sequence[str], i: int) -> int:
    i += 1
    while i < len(texts) and not texts[i].strip():
        i += 1
    return i


def _title_like(text: str, following: str = "") -> bool:
    """A short line that is not a sentence, nor the first line of a wrapped paragraph (the next
    line carries on in lower case)."""
    words = bare(text)
    if len(words) > _TITLE_MAX or _LIST_ITEM.match(text) or words.startswith("!["):
        return False
    if _SENTENCES.search(words) or following.strip()[:1].islower():
        return False
    return not ends_sentence(words) and not words.rstrip().endswith((",", ":", ";"))


# What sits next to the author's name: the picture, the date, the reading time.
_BYLINE = ("author picture", "date", "reading time")


def _beside_chrome(
    i: int, texts: Sequence[str], removed: dict[int, str], kinds: tuple[str, ...] | None = None
) -> bool:
    """The nearest non-blank line above or below is chrome (not the title line), or with
    ``kinds`` chrome whose label starts with one of them."""
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(texts) and not texts[j].strip():
            j += step
        label = removed.get(j) if 0 <= j < len(texts) else None
        if (
            label is not None
            and label not in ("title line", "page header")
            and (kinds is None or label.startswith(kinds))
        ):
            return True
    return False


def _other_posts(texts: Sequence[str], start: int, removed: dict[int, str], stops: set[int]) -> None:
    """After a "Recent Posts" heading (in the footer, or pasted among the stories as Wix places
    it), short lines are other posts: their titles, counters and excerpts, which are the page's,
    not the issue's. A sentence, a story's headline or the wrap-up ends the listing."""
    listing = 0
    for i in range(start, len(texts)):
        if i in stops:
            listing = 0
            continue
        label = removed.get(i)
        if label is not None:
            if "recent posts" in label or "see-all" in label:
                listing = _RECENT_POSTS_MAX
            continue
        text = texts[i].strip()
        if not text or not listing:
            continue
        if text.isdigit():
            removed[i] = "another post's counter"
        elif _title_like(text):
            removed[i] = "another post's title"
        elif text.endswith(("…", "...")):  # an excerpt, cut short
            removed[i] = "another post's excerpt"
        else:
            listing = 0  # a sentence of the issue's own
            continue
        listing -= 1


def _blocks(lines: Sequence[str], markdown: bool, one_per_line: bool) -> list[str]:
    """Lines as Markdown blocks: paragraphs apart by blank lines however many the paste had, a
    paragraph per line where the lines read so (a paste with no blank line at all), a hard-wrapped
    paragraph kept whole, and list entries together as a list. Markdown made from HTML has its
    blocks apart already: a quote or a table is kept as it is."""
    blocks: list[str] = []
    run: list[str] = []
    for text in [*lines, ""]:
        if text.strip():
            run.append(text.rstrip() if markdown else _plain(text))
            continue
        if run:
            blocks.extend(["\n".join(_demote(t) for t in run)] if markdown else _split_run(run, one_per_line))
            run = []
    return blocks


def _plain(text: str) -> str:
    """A line of plain text as Markdown that shows it as written."""
    text = text.strip()
    bullet = _BULLET.match(text)
    if bullet:
        return f"- {bullet.group(2)}"
    if re.match(r"#{1,6}(\s|$)", text):
        return "\\" + text  # a paragraph that starts with "#" is no heading
    return text


def _split_run(run: list[str], one_per_line: bool) -> list[str]:
    """One run of lines with no blank line between them, as blocks."""
    blocks: list[str] = []
    prose: list[str] = []
    listing: list[str] = []

    def close_prose() -> None:
        if prose:
            blocks.extend(_lines_as_paragraphs(prose) if one_per_line else _paragraphs(prose))
            prose.clear()

    def close_list() -> None:
        if listing:
            blocks.append("\n".join(listing))
            listing.clear()

    for text in run:
        if _LIST_ITEM.match(text) or (listing and text.startswith((" ", "\t"))):
            close_prose()
            listing.append(_demote(text))
        else:
            close_list()
            prose.append(_demote(text))
    close_prose()
    close_list()
    return blocks


def _lines_as_paragraphs(lines: list[str]) -> list[str]:
    """A paste with a paragraph on each line: each line a paragraph, but for a line that goes on
    in lower case on the next ("Hi all," then "welcome to issue 21.")."""
    paragraphs: list[str] = []
    for text in lines:
        above = paragraphs[-1] if paragraphs else ""
        if above and not ends_sentence(above) and not above.startswith(("#", "![")) and text[:1].islower():
            paragraphs[-1] = f"{above}\n{text}"
        else:
            paragraphs.append(text)
    return paragraphs


def _demote(text: str) -> str:
    """A level-1 or level-2 heading that is neither a story nor the wrap-up becomes a level-3
    one: in a draft, level 2 starts a story."""
    match = re.match(r"^(#{1,2})(\s+\S.*)$", text)
    return f"###{match.group(2)}" if match else text


def _paragraphs(lines: list[str]) -> list[str]:
    """Lines that each end a sentence are a paragraph each (the one-per-line paste); lines that
    mostly run on are one hard-wrapped paragraph, kept whole."""
    if len(lines) == 1:
        return lines
    inner = lines[:-1]
    if sum(ends_sentence(t) for t in inner) * 2 < len(inner):
        return ["\n".join(lines)]
    paragraphs: list[str] = []
    current: list[str] = []
    for text in lines:
        current.append(text)
        if ends_sentence(text) or text.startswith(("#", "![")):
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs
