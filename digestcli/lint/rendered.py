"""Checks on the rendered email rather than the draft: size, image alt text, template leftovers, links.

Importing this module stays light (``RENDERED_RULES`` is read by ``digest lint`` for every run);
rendering itself is the caller's business, and the one import of ``render`` happens inside
``check_rendered``, when a rendered issue already exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import unquote

from digestcli.config import LintConfig
from digestcli.draft import SLOT
from digestcli.lint import Finding, Severity, effective_severity

if TYPE_CHECKING:
    from digestcli.render import RenderedIssue

RENDERED_RULES: dict[str, str] = {
    "html-size": "the HTML part is over 102 KB, where Gmail clips it (a warning from 90 KB)",
    "image-alt": "an image in the HTML part has no alt text",
    "template-syntax": "Jinja syntax ({{, {%, {#) left in the email, except {{ reader.FIELD }} slots",
    "text-missing-link": "a link in the HTML part that the plain-text part does not carry",
}
_SEVERITY: dict[str, Severity] = {
    "html-size": "error",
    "image-alt": "error",
    "template-syntax": "error",
    "text-missing-link": "warning",
}

# Gmail hides everything past about 102 KB of HTML behind "[Message clipped] View entire message",
# and the unsubscribe link in the footer goes with it.
CLIP_BYTES = 102 * 1024
WARN_BYTES = 90 * 1024

_TEMPLATE_SYNTAX = re.compile(r"\{\{.{0,40}?\}\}|\{%.{0,40}?%\}|\{#.{0,40}?#\}|\{[{%#]", re.DOTALL)


def check_rendered(
    rendered: RenderedIssue, path: str, config: LintConfig, *, source: Sequence[str] = ()
) -> list[Finding]:
    """Findings on a rendered issue; ``source`` (the draft's lines) lets a finding name its line."""
    findings = []
    page = _Page.read(rendered.html)
    checks = {
        "html-size": _html_size(rendered),
        "image-alt": _image_alt(page, source),
        "template-syntax": _template_syntax(rendered, source),
        "text-missing-link": _text_missing_link(rendered, page, source),
    }
    for name, reports in checks.items():
        if effective_severity(name, _SEVERITY[name], config) is None:
            continue
        for line, message, own_severity in reports:
            severity = effective_severity(name, _SEVERITY[name], config, own_severity)
            assert severity is not None
            # A finding on the email as a whole points at the draft's first line, as linters do.
            findings.append(Finding(path, max(line, 1), 1, name, severity, message))
    return sorted(findings)


_Report = tuple[int, str, Severity | None]  # line (0: the rendered email as a whole), message, severity


def _html_size(rendered: RenderedIssue) -> Iterator[_Report]:
    size = len(rendered.html.encode("utf-8"))
    if size > CLIP_BYTES:
        yield (
            0,
            (
                f"the HTML part is {size / 1024:.1f} KB; Gmail clips messages over 102 KB, hiding the rest "
                "and the unsubscribe link: shorten the issue or the template"
            ),
            None,
        )
    elif size > WARN_BYTES:
        yield 0, f"the HTML part is {size / 1024:.1f} KB, close to the 102 KB where Gmail clips it", "warning"


def _image_alt(page: _Page, source: Sequence[str]) -> Iterator[_Report]:
    for attrs in page.images:
        if attrs.get("role") == "presentation" or attrs.get("aria-hidden") == "true":
            continue  # a decorative image, marked as such: screen readers skip it
        if not (attrs.get("alt") or "").strip():
            src = attrs.get("src") or ""
            message = f"image '{src}' has no alt text: describe it, as in ![what it shows](...)"
            yield _line_of(source, src), message, None


def _template_syntax(rendered: RenderedIssue, source: Sequence[str]) -> Iterator[_Report]:
    parts = (("subject", rendered.subject), ("HTML part", rendered.html), ("text part", rendered.text))
    for part, body in parts:
        seen: set[str] = set()
        for match in _TEMPLATE_SYNTAX.finditer(SLOT.sub("", body)):
            snippet = " ".join(match.group(0).split())
            if snippet in seen:
                continue
            seen.add(snippet)
            yield (
                _line_of(source, match.group(0), snippet),
                (
                    f"template syntax '{snippet}' left in the {part}: only {{{{ reader.FIELD }}}} slots are "
                    "filled in at send time"
                ),
                None,
            )


def _text_missing_link(rendered: RenderedIssue, page: _Page, source: Sequence[str]) -> Iterator[_Report]:
    from digestcli.plaintext import readable_url  # how the text part shows a non-ASCII URL

    text = rendered.text
    for href in dict.fromkeys(page.links):  # each target once, in order
        if not href or href.startswith("#"):
            continue
        forms = {href, unquote(href), readable_url(href)}
        if href.lower().startswith("mailto:"):
            address = href[len("mailto:") :].split("?", 1)[0]
            forms |= {address, unquote(address)}
        if not any(form and form in text for form in forms):
            message = f"link to '{href}' is in the HTML part but not in the text part"
            yield _line_of(source, href, unquote(href)), message, None


def _line_of(source: Sequence[str], *needles: str) -> int:
    """The draft line that holds one of the needles; 0 when none does (say, it came from the template)."""
    for needle in needles:
        if not needle:
            continue
        for number, line in enumerate(source, 1):
            if needle in line:
                return number
    return 0


class _Page(HTMLParser):
    """The links and images of an HTML document, gathered in one pass of the standard library parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []

    @classmethod
    def read(cls, html: str) -> _Page:
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
