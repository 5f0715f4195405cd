"""Rules on links: text a reader can act on, and targets a mail client can open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from markdown_it.token import Token

from digestcli.config import LintConfig
from digestcli.draft import Issue
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
SCHEMES = {"http", "https", "mailto"}
_CLICK_HERE = re.compile(r"\bclick (here|this|below)\b", re.IGNORECASE)


def all_inlines(issue: Issue) -> Iterator[tuple[Token, int, int]]:
    """Every inline run in the issue: (token, first line, last line), headings included."""
    for item in (*issue.items, *issue.after_wrapup):
        yield item.heading, item.line, item.line
    for section in issue.sections:
        for token, line in section.inlines():
            assert token.map is not None
            yield token, line, token.map[1] - 1 + section.line_offset


def locate(issue: Issue, first: int, last: int, *needles: str) -> tuple[int, int]:
    """The line and column of the first needle found between two lines (inclusive)."""
    for needle in needles:
        if not needle:
            continue
        for line in range(first, min(last, len(issue.lines)) + 1):
            col = issue.lines[line - 1].find(needle)
            if col >= 0:
                return line, col + 1
    return first, 1


def links(issue: Issue) -> Iterator[tuple[str, str, int, int, str]]:
    """(kind, target, first line, last line, visible text) for every link and image."""
    for token, first, last in all_inlines(issue):
        children = token.children or []
        for i, child in enumerate(children):
            if child.type == "link_open":
                text = []
                for inner in children[i + 1 :]:
                    if inner.type == "link_close":
                        break
                    if inner.type in ("text", "code_inline"):
                        text.append(inner.content)
                    if inner.type == "image":
                        text.append(inner.content or "[image]")
                yield "link", str(child.attrs.get("href", "")), first, last, "".join(text)
            elif child.type == "image":
                yield "image", str(child.attrs.get("src", "")), first, last, child.content


@rule("link-text", "error", 'link text that says nothing out of context ("click here", "read more")')
def link_text(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for kind, _target, first, last, text in links(issue):
        folded = " ".join(text.casefold().split()).strip(" .:!…→»")
        if kind == "link" and folded in VAGUE_TEXT:
            line, col = locate(issue, first, last, f"[{text}]", text)
            yield Report(line, col, f"link text '{text}' says nothing out of context: name what it opens")
    for token, first, last in all_inlines(issue):
        children = token.children or []
        if any(c.type == "link_open" for c in children):
            continue
        match = _CLICK_HERE.search(token.content)
        if match:
            line, col = locate(issue, first, last, match.group(0))
            yield Report(line, col, f"'{match.group(0)}' but there is no link here: add the link or reword")


@rule("link-url", "error", "an empty or relative link target, or a scheme other than http, https, mailto")
def link_url(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for kind, target, first, last, text in links(issue):
        what = "image" if kind == "image" else "link"
        line, col = locate(issue, first, last, f"]({target}" if target else "]()", f"[{text}]", target)
        target = target.strip()
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
        elif scheme not in SCHEMES or (kind == "image" and scheme == "mailto"):
            allowed = "http or https" if kind == "image" else "http, https or mailto"
            yield Report(line, col, f"{what} target '{target}' uses '{scheme}:'; email allows {allowed}")
        elif scheme in ("http", "https") and not parts.netloc:
            yield Report(line, col, f"{what} target '{target}' has no host")
