"""The one-click unsubscribe endpoint: which requests ask to unsubscribe, the token and the form
they carry (RFC 8058's ``List-Unsubscribe=One-Click``, or the confirm page's button), and the
answer. A GET only ever shows the confirm page: link scanners and mail security gateways open
every link in a message, and must not unsubscribe anyone by doing so.

Recording the reader is a ``Recorder``'s: ``DirectRecorder`` writes this workspace's suppression
list; ``relay.UnsubscribeRelay`` passes the request on by mail, for a server apart from the
sending workspace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from digestcli.errors import DigestError
from digestcli.message.tokens import token_in, verify_token
from digestcli.serve.pages import Page, Pages
from digestcli.state.secret import read_secret
from digestcli.state.suppressions import SUPPRESSIONS_DB, SuppressionList

ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058 §3.1: the POST's one key and value
MAX_FORM_FIELDS = 16
RETRY_AFTER = 60  # seconds, when the request could not be recorded just now


class Recorder(Protocol):
    """Where an unsubscribe goes once its token is verified."""

    def describe(self) -> str:
        """Where unsubscribes go, for the server's start-up line."""
        ...

    def record(self, address: str, token: str, how: str) -> None:
        """Record that ``address`` (verified, from ``token``) asked to leave; ``how`` says by
        which way (one-click or the page). Idempotent. Raises DigestError when it could not be
        recorded: the reader is then told to try again, never that it is done."""
        ...


class DirectRecorder:
    """The server shares the sending workspace: the reader goes straight into its suppression
    list, which a send running at the same time waits for (SQLite's busy timeout) and reads."""

    def __init__(self, state_dir: Path) -> None:
        self.suppressions = SuppressionList(state_dir)

    def describe(self) -> str:
        return f"written to this workspace's suppression list (.digest/{SUPPRESSIONS_DB})"

    def record(self, address: str, token: str, how: str) -> None:
        self.suppressions.add(address, "unsubscribed", note=f"{how}, digest serve")


@dataclass(frozen=True)
class UnsubscribeRoute:
    """The path of ``[newsletter] unsubscribe_url`` and where its token sits: in the query
    (``/unsubscribe?token={token}``) or in the path (``/u/{token}``)."""

    url: str  # the setting, holding {token}

    @property
    def _parts(self) -> tuple[str, str, str]:
        path = urlsplit(self.url).path or "/"
        before, slot, after = path.partition("{token}")
        return before, slot, after

    @property
    def path(self) -> str:
        """The path as the setting has it, ``{token}`` and all: for the start-up line, and for
        the log, which shows no query and no token."""
        before, slot, after = self._parts
        return before + slot + after

    def matches(self, target: str) -> bool:
        path = urlsplit(target).path
        before, slot, after = self._parts
        if not slot:
            return path == before
        middle = path[len(before) : len(path) - len(after)] if len(path) > len(before) + len(after) else ""
        return path.startswith(before) and path.endswith(after) and bool(middle) and "/" not in middle

    def shown(self, target: str) -> str | None:
        """How a request for ``target`` is written in the log when it may hold a token: the
        route's path for the route itself, the part before the token and "…" for anything else
        under it (``/u/TOKEN/extra``, ``//u/TOKEN``, ``/%75/TOKEN``: a token a reader's mail
        client mangled is a token all the same); None when ``target`` is nowhere near it."""
        if self.matches(target):
            return self.path
        before, slot, _ = self._parts
        if not slot:
            return None  # the token sits in the query, which the log never shows
        path = _request_path(target)
        return f"{before}…" if path.startswith(before) and len(path) > len(before) else None

    def token(self, target: str) -> str:
        """The token in a request's target (path and query), "" when there is none."""
        parts = urlsplit(target)
        return token_in(f"https://digest.invalid{parts.path}?{parts.query}", self.url).strip()

    def form_action(self, target: str) -> str:
        """Where the confirm page's button posts. With the token in the query, to the bare path:
        the token goes in the form's body, and stays out of the proxy's access log."""
        before, slot, _ = self._parts
        return urlsplit(target).path if slot else before


def _request_path(target: str) -> str:
    """The path of a request target, decoded and with runs of "/" made one, as a file server
    reads it (``urlsplit`` alone takes ``//u/TOKEN`` for a host and a path)."""
    path = target.partition("?")[0].partition("#")[0] if target.startswith("/") else urlsplit(target).path
    return re.sub(r"/{2,}", "/", unquote(path))


def read_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """The fields of a form post, the first value of each; None when the body is no form.

    RFC 8058 says the one-click POST SHOULD be ``multipart/form-data`` and MAY be
    ``application/x-www-form-urlencoded`` (what Gmail and Yahoo send, and what a browser's form
    sends): both are read."""
    kind, _, _ = content_type.partition(";")
    kind = kind.strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
            pairs = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            return {}
        return {key: values[0] for key, values in pairs.items()}
    if kind == "multipart/form-data":
        return _multipart(content_type, body)
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    # The email package reads MIME multiparts; a form is one with a Content-Disposition per part.
    from email import policy
    from email.parser import BytesParser

    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    if not message.is_multipart():
        return fields
    for part in list(message.iter_parts())[:MAX_FORM_FIELDS]:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            fields[name] = payload.decode("utf-8", "replace").strip()
    return fields


class UnsubscribeEndpoint:
    """Answers the unsubscribe URL: a GET shows the confirm page, a POST unsubscribes."""

    def __init__(self, route: UnsubscribeRoute, recorder: Recorder, pages: Pages, state_dir: Path) -> None:
        self.route = route
        self.recorder = recorder
        self.pages = pages
        self.state_dir = state_dir
        verify_token("v2.AAAAAAAAAAAAAAAAAAAAAA", b"warm-up")  # loads the cipher now, not on a reader's time

    def _address(self, token: str) -> str | None:
        # Read at each request: the secret may be made (the first send) after the server starts.
        secret = read_secret(self.state_dir)
        return None if secret is None or not token else verify_token(token, secret)

    def _bad_link(self) -> Page:
        return self.pages.refused(
            HTTPStatus.BAD_REQUEST,
            "This unsubscribe link does not work",
            "It may have been cut short or changed on its way here. Open the link in the email"
            " again, or copy all of it into the address bar.",
            other_way=True,
        )

    def get(self, target: str) -> Page:
        """The confirm page, for a valid token only; nothing is written, whatever the token."""
        token = self.route.token(target)
        if self._address(token) is None:
            return self._bad_link()
        return self.pages.render(
            "confirm.html.j2", HTTPStatus.OK, action=self.route.form_action(target), token=token
        )

    def post(self, target: str, content_type: str, body: bytes) -> Page:
        """Unsubscribe the reader the token names, by RFC 8058 one-click or the page's button."""
        form = read_form(content_type, body)
        if form is None:
            return self.pages.refused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "Not an unsubscribe request",
                "An unsubscribe request is a form: application/x-www-form-urlencoded or multipart/form-data.",
            )
        if form.get(ONE_CLICK[0]) == ONE_CLICK[1]:
            how = "one-click (RFC 8058)"
        elif "confirm" in form:
            how = "confirmed on the unsubscribe page"
        else:
            return self.pages.refused(
                HTTPStatus.BAD_REQUEST,
                "Not an unsubscribe request",
                "The form holds neither List-Unsubscribe=One-Click nor the page's button.",
            )
        token = form.get("token") or self.route.token(target)
        address = self._address(token)
        if address is None:
            return self._bad_link()
        try:
            self.recorder.record(address, token, how)
        except DigestError:
            # Nothing is said to be done that is not: the reader (or the mail provider) tries again.
            return self.pages.refused(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "Your request could not be recorded just now",
                "Nothing was changed. Please try again in a minute.",
                retry_after=RETRY_AFTER,
            )
        return self.pages.render("done.html.j2", HTTPStatus.OK)
