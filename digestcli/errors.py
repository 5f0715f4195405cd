"""The one error family digest raises, and the exit code each member maps to."""

from __future__ import annotations

import os
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # findings, or work that did not complete
    USAGE = 2  # bad options, unreadable input, a broken configuration
    CRASH = 70  # a bug in digest (sysexits' EX_SOFTWARE): never a finding, never the editor's doing
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class DigestError(Exception):
    """An error meant for the editor: what went wrong, where, and what to do next.

    The CLI prints ``str(error)`` as one line and exits with ``exit_code``; the traceback is
    shown only under ``--debug``.
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class InputError(DigestError):
    """A file digest was asked to read is missing, unreadable or not UTF-8."""

    exit_code = ExitCode.USAGE


class ConfigError(DigestError):
    """``digest.toml`` is malformed or names a setting that does not exist."""

    exit_code = ExitCode.USAGE


class UsageError(DigestError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = ExitCode.USAGE


class DeliveryError(DigestError):
    """A send could not go on: the server refuses us, or the list cannot be read."""

    exit_code = ExitCode.FAILURE


def read_bytes(path: str | os.PathLike[str], what: str = "file") -> bytes:
    """Read a file whole, turning every way that can fail into an InputError."""
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", where=str(p), hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"is a directory, not a {what}", where=str(p)) from None
    except PermissionError:
        raise InputError("permission denied", where=str(p), hint="check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=str(p)) from None


def read_text(path: str | os.PathLike[str], what: str = "file") -> str:
    """Read a UTF-8 text file, turning every way that can fail into an InputError."""
    p = Path(path)
    raw = read_bytes(p, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            where=f"{p}:{line}",
            hint="save the file as UTF-8 and try again",
        ) from None
    return text.removeprefix("\ufeff")


def create_whole(path: Path, text: str) -> None:
    """Write a new file (FileExistsError if there is one: nothing is overwritten), whole or not at
    all: a write that fails (a full disk) leaves no half file that a later run would take as made."""
    handle = path.open("x", encoding="utf-8")
    try:
        with handle:
            handle.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes, *, like: Path | None = None, what: str = "file") -> None:
    """Replace a file's contents so that a crash leaves either the old file or the new one (synced
    before it takes the name), with the permissions of the old one or of ``like`` (a new file gets
    the umask's, as any editor's would), its folder made if missing. Failing is an InputError."""
    try:
        replace_file(path, data, like=like)
    except OSError as exc:
        raise InputError(f"cannot write the {what}: {exc.strerror or exc}", where=str(path)) from None


def replace_file(path: Path, data: bytes, *, like: Path | None = None, sync: bool = True) -> None:
    """``write_atomically``'s work, its failures left as they are (OSError): a temporary file beside
    ``path`` takes its name once written whole (and, with ``sync``, on the disk), so that a reader
    never sees half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open, not tempfile: the file gets the usual permissions (the umask's), not owner-only.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        model = like or path
        if model.exists():
            os.chmod(temporary, model.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
