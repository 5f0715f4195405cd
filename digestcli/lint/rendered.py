"""The rules on the rendered email rather than the draft: size, image alt text, template leftovers, links.

They are registered with the others (``rendered=True``), so importing this module stays light:
``digest lint`` reads the registry on every run. Rendering is the caller's business; the rules
run on a ``RenderedIssue`` that already exists, through ``check_rendered``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote

from digestcli.config import LintConfig
from digestcli.draft import SLOT, locate
from digestcli.lint import Finding, Report, rule, run_rules

if TYPE_CHECKING:
    from digestcli.lint.page import Page
    from digestcli.render import RenderedIssue

# Gmail hides everything past about 102 KB of HTML behind "[Message clipped] View entire message",
# and the unsubscribe link in the footer goes with it.
CLIP_BYTES = 102 * 1024
WARN_BYTES = 90 * 1024

_TEMPLATE_SYNTAX = re.compile(r"\{\{.{0,40}?\}\}|\{%.{0,40}?%\}|\{#.{0,40}?#\}|\{[{%#]", re.DOTALL)


class RenderedEmail(NamedTuple):
    """What a rendered rule checks: the email, its HTML read once, and the draft's lines."""

    rendered: RenderedIssue
    page: Page
    source: Sequence[str] = ()

    def where(self, *needles: str) -> tuple[int, int]:
        """The draft's line holding the first needle found, at column 1 (a rendered finding is
        about the email, which has no columns of the draft's); line 1 when none is there (it came
        from the template, or it is about the email as a whole), as linters do."""
        found = locate(self.source, *needles)
        return (found[0], 1) if found else (1, 1)


def check_rendered(
    rendered: RenderedIssue, path: str, config: LintConfig, *, source: Sequence[str] = ()
) -> list[Finding]:
    """Findings on a rendered issue; ``source`` (the draft's lines) lets a finding name its line."""
    from digestcli.lint.page import Page  # html.parser: only once an email is rendered

    email = RenderedEmail(rendered, Page.read(rendered.html), tuple(source))
    return run_rules(email, path, config, rendered=True)


@rule(
    "html-size",
    "error",
    f"the HTML part over {CLIP_BYTES // 1024} KiB, which Gmail clips, hiding the rest and the unsubscribe"
    f" link; over {WARN_BYTES // 1024} KiB is a warning",
    rendered=True,
)
def html_size(email: RenderedEmail, config: LintConfig) -> Iterator[Report]:
    size = len(email.rendered.html.encode("utf-8"))
    if size > CLIP_BYTES:
        yield Report(
            1,
            1,
            f"the HTML part is {size / 1024:.1f} KB; Gmail clips messages over 102 KB, hiding the rest "
            "and the unsubscribe link: shorten the issue or the template",
        )
    elif size > WARN_BYTES:
        message = f"the HTML part is {size / 1024:.1f} KB, close to the 102 KB where Gmail clips it"
        yield Report(1, 1, message, severity="warning")


@rule(
    "image-alt",
    "error",
    'an image without alt text (one marked decorative, `role="presentation"`, is fine)',
    rendered=True,
)
def image_alt(email: RenderedEmail, config: LintConfig) -> Iterator[Report]:
    for attrs in email.page.images:
        if attrs.get("role") == "presentation" or attrs.get("aria-hidden") == "true":
            continue  # a decorative image, marked as such: screen readers skip it
        if not (attrs.get("alt") or "").strip():
            src = attrs.get("src") or ""
            message = f"image '{src}' has no alt text: describe it, as in ![what it shows](...)"
            yield Report(*email.where(src), message)


@rule(
    "template-syntax",
    "error",
    "template syntax (`{{`, `{%`, `{#`) left in the subject, the HTML or the text part; only"
    " `{{ reader.FIELD }}` slots are filled in at send time",
    rendered=True,
)
def template_syntax(email: RenderedEmail, config: LintConfig) -> Iterator[Report]:
    rendered = email.rendered
    parts = (("subject", rendered.subject), ("HTML part", rendered.html), ("text part", rendered.text))
    for part, body in parts:
        seen: set[str] = set()
        for match in _TEMPLATE_SYNTAX.finditer(SLOT.sub("", body)):
            snippet = " ".join(match.group(0).split())
            if snippet in seen:
                continue
            seen.add(snippet)
            yield Report(
                *email.where(match.group(0), snippet),
                f"template syntax '{snippet}' left in the {part}: only {{{{ reader.FIELD }}}} slots are "
                "filled in at send time",
            )


@rule(
    "text-missing-link",
    "warning",
    "a link in the HTML part that the plain-text part lacks (readers of the text see no way to it)",
    rendered=True,
)
def text_missing_link(email: RenderedEmail, config: LintConfig) -> Iterator[Report]:
    from digestcli.render.text import readable_url  # how the text part shows a non-ASCII URL

    text = email.rendered.text
    for href in dict.fromkeys(email.page.links):  # each target once, in order
        if not href or href.startswith("#"):
            continue
        forms = {href, unquote(href), readable_url(href)}
        if href.lower().startswith("mailto:"):
            address = href[len("mailto:") :].split("?", 1)[0]
            forms |= {address, unquote(address)}
        if not any(form and form in text for form in forms):
            message = f"link to '{href}' is in the HTML part but not in the text part"
            yield Report(*email.where(href, unquote(href)), message)
