"""The rules on what an issue's links and images answer when asked: broken, moved, heavy.

They are ``network`` rules: ``lint_issue`` never runs them. ``digestcli.linkcheck`` asks every URL
(``digest lint --links``, and ``digest send`` before it asks to send) and gives each rule the
places of one file with their URL's ``Answer``; a rule only judges, and asks nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.lint import Report, rule

if TYPE_CHECKING:
    from digestcli.linkcheck import Answer, Checked

_DEFAULTS = LintConfig()
_FAILURES = {  # Answer.failure -> words, when an answer comes without its own
    "dns": "its name does not resolve",
    "refused": "the connection was refused",
    "unreachable": "the host cannot be reached",
    "timeout": "no answer in time",
    "tls": "the TLS handshake failed",
    "redirects": "too many redirects (a loop?)",
    "protocol": "the server broke off the answer",
}
_HOME_PAGES = ("", "/", "/index.html", "/index.htm", "/index.php")


def why_broken(answer: Answer) -> str | None:
    """Why the URL counts as broken (no answer; 404, 410 or a 5xx), or None when it does not."""
    if answer.status is None:
        return answer.detail or _FAILURES.get(answer.failure, "no answer")
    status = answer.status
    if status not in (404, 410) and status < 500:
        return None
    said = f"{status} {answer.reason}".strip()
    words = f"the server answers {said}" if status >= 500 else said
    return f"{words} (after redirecting to {answer.final_url})" if answer.final_url else words


@rule(
    "link-broken",
    "error",
    "(network) a link whose server answers 404, 410 or a 5xx, or cannot be reached: a name that does"
    " not resolve, a refused connection, a TLS failure, no answer in `[lint] link_timeout`"
    f" ({_DEFAULTS.link_timeout:g}) seconds",
    network=True,
)
def link_broken(issue: Issue | None, config: LintConfig, checked: Checked) -> Iterator[Report]:
    for place, answer in checked:
        why = why_broken(answer) if place.kind == "link" else None
        if why:
            yield Report(place.line, place.column, f"link {place.target} is broken: {why}")


@rule(
    "link-redirect",
    "warning",
    "(network) a link that redirects for good (301, 308), or to another site or to a site's home page:"
    " link where it goes",
    network=True,
)
def link_redirect(issue: Issue | None, config: LintConfig, checked: Checked) -> Iterator[Report]:
    for place, answer in checked:
        if place.kind != "link" or answer.redirect is None or not answer.final_url:
            continue
        if answer.status is None or answer.status >= 400:
            continue  # broken, which link-broken says
        start, end = urlsplit(answer.url), urlsplit(answer.final_url)
        home = end.path in _HOME_PAGES and not end.query and start.path not in _HOME_PAGES
        elsewhere = _site(start.hostname) != _site(end.hostname)
        permanent = answer.redirect in (301, 308)
        if not (home or elsewhere or permanent):
            continue  # to another page of the same site, for now: the site's own business
        how = f" for good ({answer.redirect})" if permanent else ""
        if home:
            message = f"redirects{how} to the site's home page, {answer.final_url}: the page may be gone"
        elif elsewhere:
            message = f"redirects{how} to another site, {answer.final_url}: check it, and link there"
        else:
            message = f"redirects{how} to {answer.final_url}: link there instead"
        yield Report(place.line, place.column, f"link {place.target} {message}")


@rule(
    "image-broken",
    "error",
    "(network) an image whose server answers 404, 410 or a 5xx, cannot be reached, or sends something"
    " that is not an image",
    network=True,
)
def image_broken(issue: Issue | None, config: LintConfig, checked: Checked) -> Iterator[Report]:
    for place, answer in checked:
        if place.kind != "image":
            continue
        why = why_broken(answer)
        if why is None and answer.image is False and answer.status is not None and answer.status < 300:
            sent = answer.content_type or "something else"
            why = f"it is not an image: the server sends {sent}"
        if why:
            yield Report(place.line, place.column, f"image {place.target} is broken: {why}")


@rule(
    "image-heavy",
    "warning",
    f"(network) an image over `[lint] image_max_kb` ({_DEFAULTS.image_max_kb:,} KB) or wider than"
    f" `[lint] image_max_width` ({_DEFAULTS.image_max_width:,} px), which readers on a phone wait for",
    network=True,
)
def image_heavy(issue: Issue | None, config: LintConfig, checked: Checked) -> Iterator[Report]:
    for place, answer in checked:
        if place.kind != "image" or why_broken(answer) or answer.image is False:
            continue
        over = []
        if config.image_max_kb and answer.size is not None and answer.size > config.image_max_kb * 1024:
            more = "" if answer.size_exact else " or more"
            over.append(
                f"weighs {_kb(answer.size)}{more}, over `[lint] image_max_kb` ({config.image_max_kb:,} KB)"
            )
        if config.image_max_width and answer.width and answer.width > config.image_max_width:
            over.append(
                f"is {answer.width:,} px wide, over `[lint] image_max_width` ({config.image_max_width:,} px)"
            )
        if over:
            yield Report(
                place.line, place.column, f"image {place.target} {' and '.join(over)}: use a smaller copy"
            )


def _site(host: str | None) -> str:
    """A host as a site: ``www.example.com`` and ``example.com`` are one."""
    return (host or "").lower().rstrip(".").removeprefix("www.")


def _kb(size: int) -> str:
    return f"{size / 1024:,.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:,.1f} MB"
