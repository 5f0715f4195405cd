"""The unsubscribe endpoint's pages (confirm, done, refused), from ``templates/serve/`` (a
workspace's own first, file by file), with the headers that keep them private: nothing cached,
no referrer, no framing, and a Content-Security-Policy that allows the page's own style alone."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from digestcli.config import Workspace, check_unsubscribe_mailto, split_address

PAGES = ("confirm.html.j2", "done.html.j2", "refused.html.j2")


@dataclass(frozen=True)
class Page:
    """An answer ready to be written: status, body and the headers that go with it."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def private_headers(nonce: str) -> tuple[tuple[str, str], ...]:
    """Headers for a page that may hold a reader's token (in the form) and must not leak it
    (the server adds ``Referrer-Policy: no-referrer`` and ``nosniff`` to every answer)."""
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return (
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Security-Policy", policy),
        ("Cache-Control", "no-store"),
        ("X-Frame-Options", "DENY"),
        ("X-Robots-Tag", "noindex, nofollow"),
    )


class Pages:
    """The endpoint's pages for one workspace, through the environment every template of digest
    goes through (``render.templates``: the workspace's own first, HTML escaped, a misspelt name
    an error with its line), each filled with the newsletter's name and language. Every page is
    filled once at start-up, so that a broken template stops the server there, not on a reader."""

    def __init__(self, workspace: Workspace) -> None:
        from digestcli.render.templates import environment, render_template

        news = workspace.config.newsletter
        self._env = environment(workspace, "web")
        self._fill = render_template
        _, sender = split_address(news.sender, "newsletter.from")
        contact = split_address(news.reply_to, "newsletter.reply_to")[1] if news.reply_to else sender
        self._common: dict[str, Any] = {
            "newsletter": news.title,
            "language": news.language,
            "contact": contact,
            "mailto": check_unsubscribe_mailto(news.unsubscribe_mailto),
        }
        for name in PAGES:
            self.render(name, 200, action="/", token="t", heading="h", message="m", other_way=True)

    def render(self, name: str, status: int, **context: Any) -> Page:
        nonce = secrets.token_urlsafe(16)
        html = self._fill(self._env, f"serve/{name}", {**self._common, **context, "nonce": nonce})
        return Page(status, html.encode("utf-8"), private_headers(nonce))

    def refused(
        self,
        status: int,
        heading: str,
        message: str,
        *,
        retry_after: int | None = None,
        other_way: bool = False,
    ) -> Page:
        """A page that says why nothing was done; ``other_way`` adds the unsubscribe address,
        for a reader whose link did not work."""
        page = self.render("refused.html.j2", status, heading=heading, message=message, other_way=other_way)
        if retry_after is None:
            return page
        return Page(page.status, page.body, (*page.headers, ("Retry-After", str(retry_after))))
