"""Writing the site's files: only those whose bytes change, each atomically.

An unchanged site is left exactly as it was (an upload tool, a CDN and a feed reader see nothing
new), and a page being replaced is never seen half-written by a server reading it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from digestcli.errors import DigestError, replace_file

# What digest's own pages say of themselves (web/*.html.j2 and latest/): how an issue's folder
# left by an earlier publish is told from a folder the editor put in the site.
GENERATOR_MARK = b'<meta name="generator" content="digest">'
_WRITE_HINT = "choose a folder digest can write, with --out DIR or [web] out in digest.toml"


class SiteWriter:
    """Writes files under ``out`` and keeps count: the paths written, and how many were unchanged."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []
        self.unchanged = 0
        try:
            out.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise DigestError("the site's folder is a file", where=str(out), hint=_WRITE_HINT) from None
        except OSError as exc:
            raise _cannot_write(exc, out) from None

    def write(self, relative: PurePosixPath, data: bytes) -> bool:
        """Write ``data`` at ``relative`` unless the file holds those bytes already; whether it wrote."""
        target = self.out.joinpath(*relative.parts)
        try:
            if target.read_bytes() == data:
                self.unchanged += 1
                return False
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise DigestError(
                "is a folder, where the site needs a file",
                where=str(target),
                hint="move it out of the site's folder",
            ) from None
        except OSError:
            pass  # unreadable: replaced below, or the write says why not
        try:
            # The usual permissions (the umask's), which a web server can read; not synced: a
            # page lost to a power cut is written again by the next publish.
            replace_file(target, data, sync=False)
        except OSError as exc:
            raise _cannot_write(exc, target) from None
        self.written.append(target)
        return True

    def stale(self, keep: set[str]) -> list[Path]:
        """Issue folders an earlier publish wrote that this one did not (an issue whose date or
        title changed, a draft no longer published): named, never deleted, as the site's folder
        may hold files of the editor's own."""
        found = []
        for folder in sorted(self.out.iterdir()) if self.out.is_dir() else ():
            if folder.name in keep or not folder.is_dir():
                continue
            try:
                with (folder / "index.html").open("rb") as page:
                    head = page.read(4096)
            except OSError:
                continue
            if GENERATOR_MARK in head:
                found.append(folder)
        return found


def _cannot_write(exc: OSError, where: Path) -> DigestError:
    return DigestError(
        f"cannot write the site: {exc.strerror or exc}",
        where=str(where),
        hint=_WRITE_HINT,
    )
