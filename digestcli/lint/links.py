"""The rules on an issue's links: text a reader can act on, and targets a mail client can open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from markdown_it.token import Token

from digestcli.config import LintConfig
from digestcli.draft import ANY_SLOT, IMAGE_SCHEMES, LINK_SCHEMES, Issue, locate
from digestcli.lint import Report, rule

VAGUE_TEXT = {
    "click here",
    "click",
    "here",
    "read more",
    "more",
    "link",
    "this link",
    "this",
    "go",
    "click this",
}
_CLICK_HERE = re.compile(r"\bclick (here|this|below)\b", re.IGNORECASE)


def _either(schemes: frozenset[str]) -> str:
    """Schemes as a message names them: "http, https or mailto"."""
    *most, final = sorted(schemes)
    return f"{', '.join(most)} or {final}" if most else final


def _listed(schemes: frozenset[str]) -> str:
    """Schemes as the rule table names them: "`http`, `https`, `mailto`"."""
    return ", ".join(f"`{s}`" for s in sorted(schemes))


def all_inlines(issue: Issue) -> Iterator[tuple[Token, int, int]]:
    """Every inline run in the issue: (token, first line, last line), headings included."""
    for item in (*issue.items, *issue.after_wrapup):
        yield item.heading, item.line, item.line
    for section in issue.sections:
        for token, line in section.inlines():
            assert token.map is not None
            yield token, line, token.map[1] - 1 + section.line_offset


def locate_link(issue: Issue, first: int, last: int, target: str, text: str) -> tuple[int, int]:
    """Where a link's text starts: the "[" before its "](target", else where its text is."""
    for line in range(first, min(last, len(issue.lines)) + 1):
        source = issue.lines[line - 1]
        end = source.find(f"]({target}") if target else -1
        if end >= 0:
            return line, source.rfind("[", 0, end) + 1 or end + 1
    return locate(issue.lines, f"[{text}]", f"[{text}", text, first=first, last=last) or (first, 1)


def links(issue: Issue) -> Iterator[tuple[str, str, int, int, str]]:
    """(kind, target, first line, last line, visible text) for every link and image."""
    for token, first, last in all_inlines(issue):
        href: str | None = None
        text: list[str] = []
        for child in token.children or ():
            if child.type == "link_open":
                href, text = str(child.attrs.get("href", "")), []
            elif child.type == "link_close" and href is not None:
                yield "link", href, first, last, " ".join("".join(text).split())
                href = None
            elif child.type == "image":
                yield "image", str(child.attrs.get("src", "")), first, last, child.content
                if href is not None:
                    text.append(child.content or "[image]")
            elif href is not None and child.type in ("text", "code_inline"):
                text.append(child.content)
            elif href is not None and child.type in ("softbreak", "hardbreak"):
                text.append(" ")


@rule(
    "link-text",
    "error",
    'link text that means nothing out of context ("click here", "here", "read more", "link"), and'
    ' "click here" with no link at all',
)
def link_text(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for kind, target, first, last, text in links(issue):
        folded = " ".join(text.casefold().split()).strip(" .:!…→»")
        if kind == "link" and folded in VAGUE_TEXT:
            line, col = locate_link(issue, first, last, target, text)
            yield Report(line, col, f"link text '{text}' says nothing out of context: name what it opens")
    for token, first, last in all_inlines(issue):
        children = token.children or []
        if any(c.type == "link_open" for c in children):
            continue
        match = _CLICK_HERE.search(token.content)
        if match:
            line, col = locate(issue.lines, match.group(0), first=first, last=last) or (first, 1)
            yield Report(line, col, f"'{match.group(0)}' but there is no link here: add the link or reword")


@rule(
    "link-url",
    "error",
    f"an empty or relative link target, a scheme other than {_listed(LINK_SCHEMES)}"
    f" (images: {_listed(IMAGE_SCHEMES)})",
)
def link_url(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for kind, target, first, last, text in links(issue):
        what = "image" if kind == "image" else "link"
        if target:
            line, col = locate_link(issue, first, last, target, text)
        else:
            line, col = locate(issue.lines, "]()", first=first, last=last) or (first, 1)
        target = target.strip()
        if ANY_SLOT.fullmatch(target) or ANY_SLOT.match(target):
            continue  # a per-reader link ({{ reader.prefs_url }}), filled in and checked at send time
        if not target:
            yield Report(line, col, f"{what} '{text}' has no target")
            continue
        parts = urlsplit(target)
        scheme = parts.scheme.lower()
        if not scheme:
            yield Report(
                line,
                col,
                f"{what} target '{target}' is relative: mail clients cannot open it; "
                "write a full https:// address",
            )
        elif scheme not in (IMAGE_SCHEMES if kind == "image" else LINK_SCHEMES):
            allowed = _either(IMAGE_SCHEMES if kind == "image" else LINK_SCHEMES)
            yield Report(line, col, f"{what} target '{target}' uses '{scheme}:'; email allows {allowed}")
        elif scheme in ("http", "https") and not parts.netloc:
            yield Report(line, col, f"{what} target '{target}' has no host")


@rule(
    "link-slot",
    "warning",
    "a link whose whole target is a reader's value (`[site]({{reader.site}})`): each reader's value is"
    f" checked when the issue is sent, and one that is not an {_either(LINK_SCHEMES)} link is left out"
    " of that reader's message",
)
def link_slot(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for kind, target, first, last, text in links(issue):
        match = ANY_SLOT.match(target.strip())
        if kind != "link" or not match or match.group(1) in ("unsubscribe_url", "email"):
            continue  # digest makes unsubscribe_url itself; an address alone is no link target
        line, col = locate_link(issue, first, last, target, text)
        yield Report(
            line,
            col,
            f"link '{text}' opens whatever the list's '{match.group(1)}' column holds: each value is"
            f" checked when the issue is sent, and one that is not an {_either(LINK_SCHEMES)} link is"
            " left out of that reader's message",
        )
