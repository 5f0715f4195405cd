"""CSS inlining for email: the ``<style>`` rules moved into style attributes (the one premailer import).

Also where links and images whose scheme email must not carry become inert, and where cssutils'
warnings are collected rather than printed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lxml import etree
from premailer import Premailer

from digestcli.draft import ANY_SLOT
from digestcli.render.links import link_is_live

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
