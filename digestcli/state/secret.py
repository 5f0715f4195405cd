"""The key that signs unsubscribe tokens: ``$DIGEST_SECRET``, or one made once and kept in the
workspace state (``.digest/secret``), so that links in issues sent months ago still verify."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from pathlib import Path

from digestcli.errors import ConfigError
from digestcli.state import make_state_dir

SECRET_ENV = "DIGEST_SECRET"
SECRET_FILE = "secret"


def load_secret(state_dir: str | Path) -> bytes:
    """The key that signs unsubscribe tokens: $DIGEST_SECRET, else the one kept in the workspace
    state, made there the first time (a send needs one; see ``read_secret`` to only look)."""
    found = read_secret(state_dir)
    if found is not None:
        return found
    path = Path(state_dir) / SECRET_FILE
    make_state_dir(path.parent)
    # Written whole under a temporary name, then linked into place: two sends starting at once
    # both end up with the first one's secret, and no one ever reads a half-written file.
    try:
        fd, temporary = tempfile.mkstemp(prefix=".secret-", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise ConfigError(
            f"cannot make the unsubscribe secret: {exc.strerror or exc}",
            where=str(path),
            hint=f"check that {path.parent} is a folder you can write, or set {SECRET_ENV}",
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process got there first: its secret it is
        except OSError:  # a file system without hard links: the next best, O_EXCL
            with contextlib.suppress(FileExistsError):
                _write_exclusively(path, Path(temporary).read_bytes())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    found = read_secret(state_dir)
    if found is None:
        raise ConfigError("the unsubscribe secret vanished as it was made", where=str(path))
    return found


def read_secret(state_dir: str | Path) -> bytes | None:
    """The signing key if there is one ($DIGEST_SECRET or the workspace's); never makes one."""
    from_env = os.environ.get(SECRET_ENV, "")
    if from_env:
        return from_env.encode("utf-8")
    path = Path(state_dir) / SECRET_FILE
    for wait in (0.0, 0.01, 0.05, 0.2):  # an O_EXCL writer (no hard links) may be mid-write
        if wait:
            time.sleep(wait)
        try:
            secret = path.read_bytes().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the unsubscribe secret: {exc.strerror or exc}", where=str(path)
            ) from None
        if secret:
            return secret
    raise ConfigError(
        "the unsubscribe secret is empty",
        where=str(path),
        hint="delete the file; digest makes a new one (links in issues already sent stop working)",
    )


def _write_exclusively(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
