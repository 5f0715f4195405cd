"""The email's plain-text part: Markdown walked into wrapped text with numbered link references.

Render calls this once per issue; the text template only arranges the pieces, and ``tidy_text``
evens out the whitespace it leaves. Widths are counted in terminal columns (a Korean or Japanese
character takes two), so a line that "fits" in 78 columns also looks that way in a reader's
fixed-width font.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from digestcli.draft import SLOT, canonical_slots

WIDTH = 78
QUOTE_INDENT = "    "
CODE_INDENT = "    "

# A slot such as `{{ reader.name }}` holds spaces but must never be split across lines.

_GLUE = "\x1f"  # stands in for a space inside a slot while wrapping; not whitespace to the wrapper
_NON_ASCII_ESCAPES = re.compile(r"(?:%[89A-Fa-f][0-9A-Fa-f])+")
_TAG = re.compile(r"<!--.*?-->|<[^>]*>", re.DOTALL)
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_BLOCK_END_TAG = re.compile(r"</(p|div|li|h[1-6]|tr|td|th|table|blockquote)\s*>|<br\s*/?>", re.IGNORECASE)


def display_width(text: str) -> int:
    """Columns the text takes in a fixed-width font: wide East Asian characters count two."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or char in "\u200b\u200c\u200d\ufeff":
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


def wrap(text: str, width: int = WIDTH, first: str = "", rest: str = "") -> str:
    """Greedy word wrap by display width; ``first``/``rest`` prefix the first and later lines.

    A word wider than the line (a URL) stays whole on a line of its own; only a run of wide
    characters (Japanese written without spaces) is broken between characters, as it may be.
    Newlines in ``text`` are hard breaks.
    """
    text = SLOT.sub(lambda m: m.group(0).replace(" ", _GLUE), text)
    out: list[str] = []
    prefix = first
    for hard_line in text.split("\n"):
        line = ""
        for word in (w for w in re.split(r"[ \t\r]+", hard_line) if w):
            room = width - display_width(prefix)
            candidate = f"{line} {word}" if line else word
            if display_width(candidate) <= room:
                line = candidate
                continue
            if display_width(word) > width - display_width(rest) and any(_is_wide(c) for c in word):
                # Fill the line character by character, then carry on below.
                line = f"{line} " if line else ""
                for char in word:
                    if line.strip() and display_width(line + char) > width - display_width(prefix):
                        out.append(prefix + line.rstrip())
                        prefix, line = rest, ""
                    line += char
                continue
            if line:
                out.append(prefix + line)
                prefix = rest
            line = word
        out.append(prefix + line)
        prefix = rest
    return "\n".join(row.rstrip() for row in out).replace(_GLUE, " ")


def underline(text: str, char: str = "-", width: int = WIDTH) -> str:
    """The text wrapped, with a line of ``char`` under it as wide as its widest line."""
    wrapped = wrap(text, width)
    rule_width = max((display_width(row) for row in wrapped.splitlines()), default=0)
    return f"{wrapped}\n{char * max(rule_width, 3)}"


@dataclass(frozen=True)
class Reference:
    """A link's target, listed below the text that cites it as ``[number]``."""

    number: int
    url: str


@dataclass(frozen=True)
class TextSection:
    heading: str  # "" for the intro
    body: str
    links: tuple[Reference, ...]  # in order of first citation within the section


class TextWriter:
    """Writes one issue's sections in reading order; a URL keeps one number across the whole issue."""

    def __init__(self, link_is_live: Callable[[str], bool], width: int = WIDTH):
        self._link_is_live = link_is_live
        self._width = width
        self._numbers: dict[str, int] = {}
        self._cited: dict[str, int] = {}  # links cited in the section being written

    def section(self, tokens: Sequence[Token], heading: Sequence[Token] = ()) -> TextSection:
        """A block of Markdown (and optionally its heading's inline children) as text."""
        self._cited = {}
        heading_text = self._inline(SyntaxTreeNode(list(heading)).children) if heading else ""
        body = "\n\n".join(self._blocks(SyntaxTreeNode(list(tokens)).children, self._width))
        links = tuple(Reference(number, url) for url, number in self._cited.items())
        return TextSection(" ".join(heading_text.split()), body, links)

    # Blocks: each returns its lines, without surrounding blank lines.

    def _blocks(self, nodes: Iterable[SyntaxTreeNode], width: int) -> list[str]:
        blocks = []
        for node in nodes:
            rendered = self._block(node, width)
            if rendered.strip():
                blocks.append(rendered)
        return blocks

    def _block(self, node: SyntaxTreeNode, width: int) -> str:
        kind = node.type
        if kind == "paragraph":
            return wrap(self._inline(node.children), width)
        if kind == "heading":
            return underline(self._inline(node.children), "~", width)
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node, width)
        if kind == "blockquote":
            inner = "\n\n".join(self._blocks(node.children, width - len(QUOTE_INDENT)))
            return "\n".join(QUOTE_INDENT + row if row else "" for row in inner.splitlines())
        if kind in ("fence", "code_block"):
            return self._code(node.content, width)
        if kind == "hr":
            return "· · ·"
        if kind == "html_block":
            return wrap(_strip_tags(node.content), width)
        if kind == "table":
            return self._table(node, width)
        if kind == "inline":  # a tight list item's text, outside any paragraph
            return wrap(self._inline(node.children), width)
        return "\n\n".join(self._blocks(node.children, width))

    def _list(self, node: SyntaxTreeNode, width: int) -> str:
        ordered = node.type == "ordered_list"
        start = int(str(node.attrs.get("start", 1))) if ordered else 1
        count = len(node.children)
        marker_width = len(f"{start + count - 1}. ") if ordered else 2
        # A tight list (no blank lines between items in the draft) stays tight in the text part.
        tight = all(c.hidden for item in node.children for c in item.children if c.type == "paragraph")
        rows = []
        for index, item in enumerate(node.children):
            marker = f"{start + index}." if ordered else "-"
            marker = marker.ljust(marker_width)
            inner_blocks = self._blocks(item.children, width - marker_width)
            inner = ("\n" if tight else "\n\n").join(inner_blocks)
            lines = inner.splitlines() or [""]
            indent = " " * marker_width
            rows.append("\n".join([marker + lines[0], *(indent + row if row else "" for row in lines[1:])]))
        return ("\n" if tight else "\n\n").join(rows)

    def _code(self, content: str, width: int) -> str:
        room = max(width - len(CODE_INDENT), 20)
        rows = []
        for row in content.expandtabs(4).rstrip("\n").splitlines():
            # Code cannot be re-flowed, but an over-long line is cut rather than breaking the width.
            while display_width(row) > room:
                cut = room
                while display_width(row[:cut]) > room:
                    cut -= 1
                rows.append(CODE_INDENT + row[:cut])
                row = row[cut:]
            rows.append((CODE_INDENT + row).rstrip())
        return "\n".join(rows)

    def _table(self, node: SyntaxTreeNode, width: int) -> str:
        rows: list[list[str]] = []
        for section in node.children:  # thead, tbody
            for tr in section.children:
                rows.append([" ".join(self._inline(cell.children).split()) for cell in tr.children])
        if not rows:
            return ""
        columns = max(len(r) for r in rows)
        rows = [r + [""] * (columns - len(r)) for r in rows]
        widths = [max(display_width(r[c]) for r in rows) for c in range(columns)]
        if sum(widths) + 2 * (columns - 1) <= width:

            def line(cells: list[str]) -> str:
                padded = (c + " " * (w - display_width(c)) for c, w in zip(cells, widths, strict=True))
                return "  ".join(padded).rstrip()

            rule = "  ".join("-" * w for w in widths)
            return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])
        # Too wide for columns: one block per row, each cell named by its header.
        header, body = rows[0], rows[1:]
        blocks = [
            "\n".join(
                wrap(f"{h}: {v}" if h else v, width, rest="  ") for h, v in zip(header, r, strict=True) if v
            )
            for r in body
        ]
        return "\n\n".join(blocks)

    # Inlines

    def _inline(self, nodes: Iterable[SyntaxTreeNode]) -> str:
        parts: list[str] = []
        for node in nodes:
            kind = node.type
            if kind == "inline":
                parts.append(self._inline(node.children))
            elif kind in ("text", "code_inline"):
                parts.append(node.content)
            elif kind == "softbreak":
                parts.append(" ")
            elif kind == "hardbreak":
                parts.append("\n")
            elif kind == "image":
                parts.append(_plain(node.children) or "")
            elif kind == "html_inline":
                if _BREAK_TAG.fullmatch(node.content.strip()):
                    parts.append("\n")
            elif kind == "link":
                parts.append(self._link(node))
            else:  # em, strong, s: the words stay, the emphasis marks go
                parts.append(self._inline(node.children))
        return "".join(parts)

    def _link(self, node: SyntaxTreeNode) -> str:
        href = str(node.attrs.get("href", ""))
        text = self._inline(node.children)
        if not self._link_is_live(href) or href.startswith("#"):
            return text
        shown = text.strip()
        if node.info == "auto" or shown in (href, href.removeprefix("mailto:")):
            return shown or href  # the URL is already in the text
        if href not in self._numbers:
            self._numbers[href] = len(self._numbers) + 1
        number = self._numbers[href]
        self._cited.setdefault(readable_url(href), number)
        return f"{text} [{number}]" if shown else f"[{number}]"


def readable_url(url: str) -> str:
    """A URL with its percent-encoded non-ASCII letters shown as letters, as browsers show them.

    ASCII escapes (``%20``, ``%2F``) stay: decoding those could change where the link goes.
    """

    def decode(match: re.Match[str]) -> str:
        try:
            letters = bytes.fromhex(match.group(0).replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)
        # An invisible or space-like character would end the URL where a mail client looks for it.
        return letters if all(c.isprintable() and not c.isspace() for c in letters) else match.group(0)

    return _NON_ASCII_ESCAPES.sub(decode, url)


def _plain(nodes: Iterable[SyntaxTreeNode]) -> str:
    """An image's alt text: the words of its description, without links or emphasis."""
    parts = []
    for node in nodes:
        if node.type in ("text", "code_inline"):
            parts.append(node.content)
        elif node.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        else:
            parts.append(_plain(node.children))
    return "".join(parts)


def _strip_tags(source: str) -> str:
    """Raw HTML an editor put in a draft, as the words a reader would see."""
    source = _BLOCK_END_TAG.sub("\n", source)
    text = html.unescape(_TAG.sub("", source))
    rows = (" ".join(row.split()) for row in text.splitlines())
    return "\n".join(row for row in rows if row)


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
