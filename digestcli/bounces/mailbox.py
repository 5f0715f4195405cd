"""Where returned mail is read from: the IMAP folder of ``[bounces]``, or a Maildir folder or mbox
file named with ``--from``; each hands out messages in batches and takes back the ones handled.

IMAP goes through IMAPClient (UIDs, MOVE, folder names and the server's literals handled by a
library that has done it for a decade, on top of the standard library's imaplib). Every message
is fetched with ``BODY.PEEK``, so reading one changes none of its flags (``\\Seen`` included):
mail that is not a report is left exactly as it was. A dry run selects the folder read-only.
Handled reports are moved to ``[bounces] done_folder`` (made when missing), or flagged ``\\Seen``
where they are when it is empty.

A local Maildir or mbox is only read, never changed: it is a copy synced by other means, and the
workspace's feedback file remembers which reports were acted on.
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from digestcli.config import BouncesConfig
from digestcli.errors import DeliveryError, InputError, UsageError

if TYPE_CHECKING:
    from imapclient import IMAPClient

PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"
FETCH_BATCH = 200  # messages per FETCH of whole messages: a few MB at a time
HEADER_BATCH = 2000  # messages per FETCH of the Message-ID alone
HANDLED_KEYWORD = b"$DigestHandled"  # with done_folder = "": set beside \Seen, where the server allows
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_FROM_HINT = "--from takes a Maildir folder (with cur/ and new/ in it) or an mbox file"


@dataclass(frozen=True)
class Incoming:
    """One message of the mailbox: its place there, its Message-ID, and its bytes (None when it
    was not fetched, because its Message-ID says it was read before)."""

    ref: Any  # an IMAP UID, or a local mailbox's key
    message_id: str
    raw: bytes | None


class Mailbox(Protocol):
    name: str  # as the summary says where it read: "INBOX on host:993 (user)", or a path
    changes_mailbox: bool  # whether handled() moves or flags anything

    def count(self) -> int: ...

    def read(self, known: Callable[[str], bool]) -> Iterator[list[Incoming]]: ...

    def handled(self, refs: Sequence[Any]) -> None: ...

    def close(self) -> None: ...


def message_id_of(header: bytes) -> str:
    """The Message-ID in a message's header block (unfolded), or ""."""
    end = header.find(b"\n\n")
    end2 = header.find(b"\r\n\r\n")
    ends = [e for e in (end, end2) if e >= 0]
    match = _MESSAGE_ID.search(header, 0, min(ends) if ends else len(header))
    if not match:
        return ""
    return " ".join(match.group(1).decode("utf-8", "replace").split())


# -- a local copy ---------------------------------------------------------------------------------


class LocalMailbox:
    """A Maildir folder or an mbox file, read only."""

    changes_mailbox = False

    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)
        self._box = _open_local(path)
        keys = list(self._box.iterkeys())
        # A Maildir's names start with the time of delivery: sorted, they are read oldest first.
        self._keys = sorted(keys) if isinstance(self._box, mailbox.Maildir) else keys

    def count(self) -> int:
        return len(self._keys)

    def read(self, known: Callable[[str], bool]) -> Iterator[list[Incoming]]:
        batch: list[Incoming] = []
        for key in self._keys:
            try:
                raw = self._box.get_bytes(key)
            except (OSError, KeyError) as exc:  # a message taken away since the listing: gone
                if isinstance(exc, FileNotFoundError | KeyError):
                    continue
                raise InputError(f"cannot read a message: {exc}", where=self.name) from None
            batch.append(Incoming(key, message_id_of(raw[:65536]), raw))
            if len(batch) == FETCH_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def handled(self, refs: Sequence[Any]) -> None:
        pass  # a copy: what was acted on is remembered in the workspace, not marked here

    def close(self) -> None:
        self._box.close()


def _open_local(path: Path) -> mailbox.Mailbox[Any]:
    where = str(path)
    if not path.exists():
        raise InputError("no such folder or file", where=where, hint=_FROM_HINT)
    try:
        if path.is_dir():
            if not all((path / sub).is_dir() for sub in ("cur", "new")):
                raise InputError(
                    "is a folder but not a Maildir (no cur/ and new/ in it)", where=where, hint=_FROM_HINT
                )
            return mailbox.Maildir(path, factory=None, create=False)
        with path.open("rb") as handle:
            start = handle.read(5)
        if start and start != b"From ":
            raise InputError(
                "is not an mbox file (it does not start with 'From ')", where=where, hint=_FROM_HINT
            )
        return mailbox.mbox(path, factory=None, create=False)
    except PermissionError:
        raise InputError("permission denied", where=where, hint="check its permissions") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=where) from None


# -- IMAP -----------------------------------------------------------------------------------------


class ImapMailbox:
    """A folder on an IMAP server, logged in and selected (read-only for a dry run)."""

    def __init__(
        self,
        settings: BouncesConfig,
        *,
        password: str | None,
        dry_run: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self.name = f"{settings.folder} on {self.where} ({settings.username})"
        self.changes_mailbox = not dry_run
        self.dry_run = dry_run
        if settings.username and not password:
            raise DeliveryError(
                f"{PASSWORD_ENV} is not set, and [bounces] username is {settings.username!r}",
                where=self.where,
                hint=f"export {PASSWORD_ENV} with the password for {settings.username}",
            )
        if not settings.username:
            raise UsageError(
                "[bounces] username is empty",
                where=self.where,
                hint="set the mailbox's login name in digest.toml",
            )
        # ssl.create_default_context: the system's CAs (SSL_CERT_FILE points elsewhere), host checked.
        self._context = ssl_context or ssl.create_default_context()
        self._client = self._connect(password or "")
        self._uids: list[int] = []
        self._done_ready = False
        try:
            self._select()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_settings(
        cls,
        settings: BouncesConfig,
        *,
        dry_run: bool = False,
        environ: Mapping[str, str] = os.environ,
        ssl_context: ssl.SSLContext | None = None,
    ) -> ImapMailbox:
        return cls(settings, password=environ.get(PASSWORD_ENV), dry_run=dry_run, ssl_context=ssl_context)

    # -- connecting -------------------------------------------------------------------------------

    def _connect(self, password: str) -> IMAPClient:
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        settings = self.settings
        with self._errors("connecting"):
            client = IMAPClient(
                settings.host,
                port=settings.port,
                ssl=settings.security == "ssl",
                ssl_context=self._context,
                timeout=settings.timeout,
            )
        try:
            with self._errors("starting TLS"):
                if settings.security == "starttls":
                    if not client.has_capability("STARTTLS"):
                        raise DeliveryError(
                            'the server does not offer STARTTLS, and [bounces] security is "starttls"',
                            where=self.where,
                            hint='digest sends no password in the clear; use security = "ssl" for port 993,'
                            ' or "none" only for a server on this machine',
                        )
                    client.starttls(self._context)
            with self._errors("logging in"):
                try:
                    client.login(settings.username, password)
                except LoginError as exc:
                    said = _said(exc)
                    raise DeliveryError(
                        f"the server refused the login for {settings.username!r}"
                        + (f": {said}" if said else ""),
                        where=self.where,
                        hint=f"check [bounces] username and {PASSWORD_ENV}",
                    ) from None
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def _select(self) -> None:
        folder = self.settings.folder
        with self._errors(f"opening {folder}"):
            if not self._client.folder_exists(folder):
                names = [name for _, _, name in self._client.list_folders()]
                raise DeliveryError(
                    f"no folder {folder!r} in the mailbox",
                    where=self.where,
                    hint=f"set [bounces] folder to one of: {', '.join(sorted(map(str, names))[:12])}",
                )
            selected = self._client.select_folder(folder, readonly=self.dry_run)
            permanent = selected.get(b"PERMANENTFLAGS", ())
            self._keywords = b"\\*" in permanent
            # Reports handled in place (done_folder = "") carry HANDLED_KEYWORD: not listed again.
            wanted = ["NOT", "KEYWORD", HANDLED_KEYWORD.decode()] if self._keywords else ["ALL"]
            self._uids = sorted(self._client.search(wanted))

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Socket, TLS and IMAP failures as one line naming host:port."""
        from imapclient.exceptions import IMAPClientError

        where = self.where
        try:
            yield
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"the server's certificate cannot be trusted: {exc.verify_message}",
                where=where,
                hint="check [bounces] host (it must match the certificate); SSL_CERT_FILE names other CAs",
            ) from None
        except ssl.SSLError as exc:
            hint = 'port 993 wants security = "ssl", port 143 "starttls"'
            raise DeliveryError(
                f"TLS failed while {doing}: {exc.reason or exc}", where=where, hint=hint
            ) from None
        except ConnectionRefusedError:
            raise DeliveryError(
                "connection refused",
                where=where,
                hint="check [bounces] host and port; is the server running?",
            ) from None
        except socket.gaierror as exc:
            raise DeliveryError(
                f"cannot find the server: {exc.strerror or exc}", where=where, hint="check [bounces] host"
            ) from None
        except TimeoutError:
            hint = "check [bounces] host and port, or raise [bounces] timeout"
            if doing == "connecting" and self.settings.security != "ssl":
                hint = (
                    "a server that says nothing may speak TLS from the first byte (port 993):"
                    ' set [bounces] security = "ssl"'
                )
            raise DeliveryError(
                f"no answer in {self.settings.timeout:g} s while {doing}", where=where, hint=hint
            ) from None
        except (IMAPClientError, OSError) as exc:
            said = _said(exc) or type(exc).__name__
            hint = None
            if doing == "connecting" and self.settings.security != "ssl" and self.settings.port == 993:
                hint = 'port 993 speaks TLS from the first byte: set [bounces] security = "ssl"'
            raise DeliveryError(f"IMAP failed while {doing}: {said}", where=where, hint=hint) from None

    # -- reading ----------------------------------------------------------------------------------

    def count(self) -> int:
        return len(self._uids)

    def read(self, known: Callable[[str], bool]) -> Iterator[list[Incoming]]:
        """The folder's messages in batches; one whose Message-ID ``known`` recognises is not
        fetched whole (a mailbox read every week keeps what digest left in it)."""
        header_item = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
        for start in range(0, len(self._uids), HEADER_BATCH):
            uids = self._uids[start : start + HEADER_BATCH]
            with self._errors("reading"):
                headers = self._client.fetch(uids, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            ids = {uid: message_id_of(headers.get(uid, {}).get(header_item, b"") or b"") for uid in uids}
            wanted = [uid for uid in uids if uid in headers and not (ids[uid] and known(ids[uid]))]
            bodies: dict[int, bytes] = {}
            for at in range(0, len(wanted), FETCH_BATCH):
                chunk = wanted[at : at + FETCH_BATCH]
                with self._errors("reading"):
                    fetched = self._client.fetch(chunk, [b"BODY.PEEK[]"])
                bodies.update({uid: data.get(b"BODY[]") or b"" for uid, data in fetched.items()})
                batch = [Incoming(uid, ids[uid], bodies.pop(uid)) for uid in chunk if uid in bodies]
                if batch:
                    yield batch
            skipped = [Incoming(uid, ids[uid], None) for uid in uids if uid in headers and uid not in wanted]
            if skipped:
                yield skipped

    # -- what was handled ---------------------------------------------------------------------------

    def handled(self, refs: Sequence[Any]) -> None:
        """Move handled reports to the done folder, or flag them \\Seen where they are."""
        if not refs or self.dry_run:
            return
        uids = list(refs)
        done = self.settings.done_folder.strip()
        client = self._client
        with self._errors("moving handled reports" if done else "flagging handled reports"):
            if not done:
                client.add_flags(
                    uids, [b"\\Seen", HANDLED_KEYWORD] if self._keywords else [b"\\Seen"], silent=True
                )
                return
            if not self._done_ready:
                if not client.folder_exists(done):
                    client.create_folder(done)
                    with contextlib.suppress(Exception):
                        client.subscribe_folder(done)
                self._done_ready = True
            if client.has_capability("MOVE"):
                client.move(uids, done)
            else:  # RFC 6851 is newer than some servers: copy, then delete only these messages
                client.copy(uids, done)
                client.add_flags(uids, [b"\\Deleted"], silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.logout()
        with contextlib.suppress(Exception):
            self._client.shutdown()


def _said(exc: BaseException) -> str:
    """What the server said, without imaplib's wrapping (b'...' and "select failed:")."""
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return " ".join(text.split())


def open_mailbox(
    settings: BouncesConfig,
    source: Path | None,
    *,
    dry_run: bool = False,
    environ: Mapping[str, str] = os.environ,
    ssl_context: ssl.SSLContext | None = None,
) -> Mailbox:
    """The mailbox ``digest bounces`` reads: ``source`` when given, else ``[bounces]``'s IMAP folder."""
    if source is not None:
        return LocalMailbox(source)
    if not settings.host:
        raise UsageError(
            "no mailbox to read: [bounces] host is not set",
            hint="set [bounces] host, username and folder in digest.toml, or read a local copy with"
            " --from PATH (a Maildir folder or an mbox file)",
        )
    return ImapMailbox.from_settings(settings, dry_run=dry_run, environ=environ, ssl_context=ssl_context)
