"""The draft format: a Markdown file with YAML front matter, parsed into an ``Issue``.

Parsing is forgiving on purpose: a half-written draft still becomes an ``Issue`` (with empty or
missing parts), so that ``digest lint`` can point at every problem at once. Every part keeps the
line it came from, counted from 1 in the file as the editor sees it.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

from digestcli.errors import DigestError, read_text

DEFAULT_WRAPUP = "Wrapping Up"
# "3. Headline" or "3) Headline"; not "1.5 million people", which is a headline with no number.
ITEM_HEADING = re.compile(r"^(\d+)\s*[.)](?!\d)\s*(.*)$", re.DOTALL)

# A per-reader value, filled in at send time by digestcli.message: `{{ reader.name }}`.
SLOT = re.compile(r"\{\{\s*reader\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# A slot as it may reach a link target: written by hand, or percent-encoded by markdown-it
# (`https://x/?e={{reader.email}}` becomes `...%7B%7Breader.email%7D%7D`).
ANY_SLOT = re.compile(
    r"(?:\{|%7[Bb]){2}(?:\s|%20|\+)*"  # {{ or %7B%7B, then spaces, plain or encoded
    r"reader\.([A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\s|%20|\+)*(?:\}|%7[Dd]){2}"
)


# What a link in an issue may open, for every part of digest that checks or writes one (lint,
# render, the per-reader values filled in at send time): mail clients follow these and nothing else.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})


def canonical_slots(text: str) -> str:
    """Every way a slot may be written (spaced, unspaced, percent-encoded) as ``{{ reader.FIELD }}``."""
    return ANY_SLOT.sub(lambda m: f"{{{{ reader.{m.group(1)} }}}}", text)


_FENCE = re.compile(r"^(---|\.\.\.)\s*$")
# An issue id as front matter may give it: it names files in the workspace state, so it is kept to
# letters, digits and a few marks, and starts with a letter or digit.
ISSUE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def slugify(text: str) -> str:
    """Text as a lowercase ASCII slug: `The Lantern Weekly` -> `the-lantern-weekly`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def issue_id_of(values: dict[str, Any], fallback: str) -> str:
    """An issue's identity, which the ledger keys every send on, so that renaming or moving the
    draft changes nothing: the front matter's ``id``; else ``<title>-<issue>`` (``<title>-<date>``
    when there is no issue number) as a slug; else ``fallback`` (the file name, the old way)."""
    given = values.get("id")
    if isinstance(given, (str, int)) and not isinstance(given, bool) and str(given).strip():
        return str(given).strip()
    title = slugify(str(values.get("title") or "")) or "issue"
    number = values.get("issue")
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return f"{title}-{number}"
    date = values.get("date")
    if isinstance(date, (dt.date, str)) and str(date).strip():
        day = str(date).strip()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            return f"{title}-{day}"
    return fallback


@cache
def markdown() -> MarkdownIt:
    """The one Markdown dialect digest reads: CommonMark plus tables and strikethrough."""
    # maxNesting: commonmark's 20 silently stops parsing inside a deep outline, losing the rest.
    md = MarkdownIt("commonmark", {"typographer": False, "maxNesting": 100}).enable(
        ["table", "strikethrough"]
    )
    # Keep every link, whatever its scheme, so that lint can name a bad one instead of the
    # parser silently turning it into text; render drops the schemes email must not carry.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


# The parts of a parsed draft are NamedTuples, not dataclasses: `digest lint` makes these classes
# on every start, and a frozen dataclass takes five to ten times as long to make. (Issue is a
# dataclass: lint.spelling keeps a weak reference to it, which a tuple cannot have.)
class FrontMatter(NamedTuple):
    values: dict[str, Any]
    key_lines: dict[str, int]  # key -> line of the key in the file
    start_line: int  # line of the opening fence; 0 when there is no front matter
    end_line: int  # line of the closing fence
    error: tuple[int, str] | None = None  # (line, message) when it could not be read

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.start_line or 1)


class Section(NamedTuple):
    """A run of Markdown blocks: the intro, an item's body or the wrap-up's body."""

    tokens: tuple[Token, ...]
    line: int  # first line of the section's content (or where it would be)
    line_offset: int  # add to a token's map[0] to get its line in the file (1-based)

    @property
    def is_empty(self) -> bool:
        return not any(
            (t.type == "inline" and t.content.strip())
            or (t.type in _CONTENT_BLOCKS and not _COMMENT.fullmatch(t.content.strip()))
            for t in self.tokens
        )

    def inlines(self) -> Iterator[tuple[Token, int]]:
        """Every inline run of the section with the file line it starts on."""
        for token in self.tokens:
            if token.type == "inline" and token.map is not None:
                yield token, token.map[0] + self.line_offset

    def paragraphs(self) -> int:
        return sum(1 for t in self.tokens if t.type == "paragraph_open" and t.level == 0)


_CONTENT_BLOCKS = {"fence", "code_block", "hr", "html_block"}
_COMMENT = re.compile(r"(<!--.*?-->\s*)+", re.DOTALL)  # an HTML comment is a note, not content


class Item(NamedTuple):
    """A numbered story: ``## N. Headline`` and the blocks below it."""

    number: int | None  # None when the heading carries no number
    headline: str  # the headline's Markdown source, without its number
    heading: Token  # the heading's inline token (for rendering the headline)
    line: int  # line of the heading
    column: int  # column where the number (or headline) starts
    body: Section

    @property
    def label(self) -> str:
        """How a message names the item: "item 3", or the heading that has no number."""
        if self.number is not None:
            return f"item {self.number}"
        return f"heading '{self.headline}'" if self.headline else "an empty heading"

    @property
    def headline_text(self) -> str:
        return inline_text(self.heading, skip_number=self.number is not None)


class WrapUp(NamedTuple):
    heading: str
    line: int
    body: Section


@dataclass(frozen=True)
class Issue:
    """One draft, parsed: its front matter, the intro, the numbered items and the wrap-up, each
    with the line it came from. A draft lint has not passed parses too (missing parts are empty),
    so that every problem can be reported at once; ``issue_id`` is what the ledger knows it by."""

    path: Path
    front: FrontMatter
    intro: Section
    items: tuple[Item, ...]
    wrapup: WrapUp | None
    # level-2 headings after the wrap-up: they are content the reader would find in the wrong place
    after_wrapup: tuple[Item, ...] = ()
    lines: tuple[str, ...] = field(default=(), repr=False)
    env: dict[str, Any] = field(default_factory=dict, repr=False)  # markdown-it references

    # Typed views of the front matter, with safe fallbacks for a draft that lint has not passed.
    @property
    def title(self) -> str:
        return _text(self.front.values.get("title"))

    @property
    def subject(self) -> str:
        return _text(self.front.values.get("subject"))

    @property
    def preheader(self) -> str:
        return _text(self.front.values.get("preheader"))

    @property
    def date(self) -> dt.date | None:
        value = self.front.values.get("date")
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                return None
        return None

    @property
    def issue_id(self) -> str:
        """The issue's identity (see ``issue_id_of``): what the ledger knows it by."""
        return issue_id_of(self.front.values, self.path.stem)

    @property
    def web_slug(self) -> str:
        """The issue's folder in the web edition: its date and its id, `2026-11-20-the-lantern-
        weekly-42`. From the id (which comes from the title and number unless the draft names it),
        never the file name: a renamed draft keeps its URL, a corrected title does too (the links
        in mail already sent must keep working), and two issues of one day cannot share a page."""
        slug = slugify(self.issue_id) or "issue"
        if self.date is None or self.date.isoformat() in slug:
            return slug
        return f"{self.date.isoformat()}-{slug}"

    @property
    def number(self) -> int | None:
        value = self.front.values.get("issue")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    @property
    def sections(self) -> Iterator[Section]:
        yield self.intro
        for item in self.items:
            yield item.body
        if self.wrapup:
            yield self.wrapup.body
        for extra in self.after_wrapup:
            yield extra.body


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def inline_text(token: Token, *, skip_number: bool = False) -> str:
    """The reader-visible text of an inline token: Markdown syntax gone, code kept."""
    kinds = ("text", "code_inline", "softbreak", "hardbreak")
    parts = [" " if c.type.endswith("break") else c.content for c in token.children or () if c.type in kinds]
    text = "".join(parts).strip()
    if skip_number:
        match = ITEM_HEADING.match(text)
        if match:
            text = match.group(2).strip()
    return text


def locate(
    lines: Sequence[str], *needles: str, first: int = 1, last: int | None = None
) -> tuple[int, int] | None:
    """Where a piece of text is in a draft: the (line, column), both from 1, of the first needle
    found between lines ``first`` and ``last`` (inclusive; ``last`` None: to the end); needles are
    tried in order, an empty one skipped. None when no needle is there."""
    end = len(lines) if last is None else min(last, len(lines))
    for needle in needles:
        if not needle:
            continue
        for number in range(max(first, 1), end + 1):
            column = lines[number - 1].find(needle)
            if column >= 0:
                return number, column + 1
    return None


def load_draft(path: str | Path, *, wrapup_heading: str = DEFAULT_WRAPUP) -> Issue:
    """Read and parse a draft; raises InputError when the file cannot be read as UTF-8."""
    path = Path(path)
    return parse_draft(read_text(path, "draft"), path, wrapup_heading=wrapup_heading)


def parse_draft(text: str, path: str | Path = "<draft>", *, wrapup_heading: str = DEFAULT_WRAPUP) -> Issue:
    # Split as markdown-it counts lines (on newlines only), so token lines and ours agree.
    lines = tuple(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    if lines and lines[-1] == "":
        lines = lines[:-1]
    front, body_start = _front_matter(lines)
    body = "\n".join(lines[body_start:])
    env: dict[str, Any] = {}
    tokens = markdown().parse(body, env)
    offset = body_start + 1  # token.map lines are 0-based from the body's first line

    # Split the token stream at every level-2 heading.
    chunks: list[tuple[Token | None, Token | None, list[Token]]] = [(None, None, [])]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        # Only top-level headings: a "## 3." inside a quote or a list is part of that block.
        if token.type == "heading_open" and token.tag == "h2" and token.level == 0:
            chunks.append((token, tokens[i + 1], []))
            i += 3  # heading_open, inline, heading_close
            continue
        chunks[-1][2].append(token)
        i += 1

    def section(heading: Token | None, body_tokens: list[Token]) -> Section:
        if body_tokens and body_tokens[0].map:
            line = body_tokens[0].map[0] + offset
        elif heading is not None and heading.map:
            line = heading.map[1] + offset
        else:
            line = offset
        return Section(tuple(body_tokens), line, offset)

    intro = section(None, chunks[0][2])
    items: list[Item] = []
    after: list[Item] = []
    wrapup: WrapUp | None = None
    wanted = _fold(wrapup_heading)
    for heading, inline, body_tokens in chunks[1:]:
        assert heading is not None and inline is not None and heading.map is not None
        line = heading.map[0] + offset
        source = inline.content.strip()
        if wrapup is None and _fold(source) == wanted:
            wrapup = WrapUp(source, line, section(heading, body_tokens))
            continue
        match = ITEM_HEADING.match(source)
        number = int(match.group(1)) if match else None
        headline = match.group(2).strip() if match else source
        raw_line = lines[line - 1] if line - 1 < len(lines) else ""
        column = _column_of(raw_line, source)
        item = Item(number, headline, inline, line, column, section(heading, body_tokens))
        (after if wrapup is not None else items).append(item)
    return Issue(Path(path), front, intro, tuple(items), wrapup, tuple(after), lines, env)


def _fold(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(":!.")


def _column_of(line: str, text: str) -> int:
    found = line.find(text[:20]) if text else -1
    return found + 1 if found >= 0 else len(line) - len(line.lstrip("# ")) + 1


def _first_alias(source: str) -> int | None:
    """The file line of the first YAML alias in the front matter, if any."""
    if "*" not in source:
        return None
    import yaml

    try:
        for token in yaml.scan(source, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AliasToken):
                return int(token.start_mark.line) + 2
    except yaml.YAMLError:
        return None  # the loader below reports the syntax error with its line
    return None


@cache
def _loader_class() -> Any:
    """YAML that leaves dates as text: lint then says what is wrong with a bad one, instead of
    YAML raising on `2026-13-45`. (PyYAML loads on first use: most front matter never needs it.)"""
    import yaml

    class FrontMatterLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
            first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

    return FrontMatterLoader


# The front matter digest writes and editors type: flat `key: value` lines whose values YAML reads
# as plain text, quoted text without escapes, a date or a whole number. Such lines are read here
# without loading PyYAML (a tenth of lint's start-up); anything else goes to PyYAML, which gives
# the same values (tests/test_draft_front_matter.py runs both over every case).
_SIMPLE_LINE = re.compile(
    r"(?P<key>[A-Za-z_][\w-]*): +(?:"
    r'"(?P<double>[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]*)"'
    r"|'(?P<single>[^'\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]*)'"
    r"|(?P<number>0|[1-9][0-9]{0,17})"
    r"|(?P<plain>[A-Za-z0-9][^:#\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\"'`{}\[\],&*!|>%@?]*?)"
    r") *"
)
# Plain words YAML 1.1 reads as true, false or nothing, in each of the spellings it knows.
_NOT_TEXT = frozenset(
    spelling
    for word in ("yes", "no", "true", "false", "on", "off", "null")
    for spelling in (word, word.title(), word.upper())
)
_YAML_NUMBER = re.compile(r"[-+]?[0-9.]|[0-9]")  # a plain value starting so may be a number or a date


def _simple_front_matter(source_lines: Sequence[str]) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The values and key lines of front matter in the simple form above, or None to ask PyYAML."""
    values: dict[str, Any] = {}
    key_lines: dict[str, int] = {}
    for n, line in enumerate(source_lines):
        if not line.strip(" "):
            continue
        match = _SIMPLE_LINE.fullmatch(line)
        if match is None:
            return None
        key = match["key"]
        if key in values or key in _NOT_TEXT:
            return None  # PyYAML's way with a repeated key, or a key it reads as true, is its own
        if match["double"] is not None:
            value: Any = match["double"]
        elif match["single"] is not None:
            value = match["single"]
        elif match["number"] is not None:
            value = int(match["number"])
        else:
            value = match["plain"]
            if value in _NOT_TEXT or (_YAML_NUMBER.match(value) and not _DATE_TEXT.fullmatch(value)):
                return None
        values[key] = value
        key_lines[key] = n + 2
    return values, key_lines


_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# A front-matter line whose value opens with a typographic quote: `subject: “Night trains: back”`.
_CURLY_VALUE = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*:\s+([“‘„«])")


def curly_quoted(line: str) -> str | None:
    """The key of a front-matter line whose value opens with a curly quote (“ ‘ „ «), else None.
    YAML takes only straight quotes as quotes: it keeps curly ones as part of the text, and a
    ': ' or ' #' inside them breaks or cuts the value."""
    match = _CURLY_VALUE.match(line)
    return match.group(1) if match else None


def curly_quote_message(key: str) -> str:
    """What lint says of a value in curly quotes: what it is, and the fix."""
    return (
        f"'{key}' is in curly quotes (“…”), which YAML does not read as quotes:"
        ' write straight quotes ("…") around it'
    )


def _front_matter(lines: tuple[str, ...]) -> tuple[FrontMatter, int]:
    """Split off the front matter; returns it and the index of the body's first line."""
    if not lines or lines[0].strip() != "---":
        return FrontMatter({}, {}, 0, 0, (1, "no front matter: a draft starts with a '---' line")), 0
    close = next((n for n in range(1, len(lines)) if _FENCE.match(lines[n])), None)
    if close is None:
        return FrontMatter({}, {}, 1, 1, (1, "front matter is never closed: add a '---' line after it")), 1
    source = "\n".join(lines[1:close])
    end = close + 1
    alias = _first_alias(source)
    if alias is not None:
        # Five flat keys never need aliases, and nested ones can expand into gigabytes.
        return FrontMatter(
            {}, {}, 1, end, (alias, "front matter uses a YAML alias (*): write the value out")
        ), end
    simple = _simple_front_matter(lines[1:close])
    if simple is not None:
        return FrontMatter(simple[0], simple[1], 1, end), close + 1
    import yaml

    loader = _loader_class()(source)
    try:
        node = loader.get_single_node()
        values = loader.construct_document(node) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        hint = (
            "; quote values that contain ': ' or start with a special character"
            if "mapping" in problem
            else ""
        )
        message = f"front matter is not valid YAML: {problem}{hint}"
        curly = curly_quoted(lines[line - 1]) if 1 < line <= close else None
        if curly is not None:  # the editor did quote it, with a word processor's quotes
            message = curly_quote_message(curly)
        return FrontMatter({}, {}, 1, end, (line, message)), close + 1
    finally:
        loader.dispose()
    if not isinstance(values, dict):
        return FrontMatter({}, {}, 1, end, (2, "front matter must be 'key: value' lines")), close + 1
    key_lines = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key_lines[str(key_node.value)] = key_node.start_mark.line + 2
    return FrontMatter({str(k): v for k, v in values.items()}, key_lines, 1, end), close + 1


def front_matter_of(path: Path) -> dict[str, Any]:
    """Just the front matter values of a draft (for listing drafts without parsing them whole)."""
    text = read_text(path, "draft")
    head: list[str] = []
    for n, line in enumerate(text.split("\n")):
        head.append(line.rstrip("\r"))
        if n > 0 and _FENCE.match(head[-1]):
            break
    return _front_matter(tuple(head))[0].values


def draft_ids(folder: Path) -> dict[Path, str]:
    """Each draft in a folder and its issue id, from the front matter alone; a draft that cannot
    be read is left out (lint reports it on its own)."""
    found: dict[Path, str] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.md")):
        try:
            found[path] = issue_id_of(front_matter_of(path), path.stem)
        except DigestError:
            continue
    return found


def yaml_string(value: object) -> str:
    """A value as a quoted YAML string, for front matter (a JSON string is valid YAML)."""
    import json

    return json.dumps(str(value), ensure_ascii=False)
