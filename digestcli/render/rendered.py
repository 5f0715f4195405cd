"""What a render produces (``RenderedIssue``, ``Rendering``) and writing it to ``out/``.

Light on purpose: ``message/`` and ``delivery/`` hold a ``RenderedIssue`` without rendering, so
importing this module brings in neither Jinja2 nor premailer nor lxml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from digestcli.draft import SLOT
from digestcli.errors import DigestError


@dataclass(frozen=True)
class RenderedIssue:
    issue_id: str  # the issue's identity (Issue.issue_id): what the ledger knows it by
    title: str
    subject: str  # may hold slots
    preheader: str
    html: str  # a whole inlined HTML document; slots intact
    text: str  # the plain-text part; slots intact
    number: int | None = None  # the front matter's `issue`
    date: str = ""  # the front matter's date, YYYY-MM-DD
    name: str = ""  # the draft's file stem: names the files in out/
    id_given: bool = False  # the id is the front matter's own, not derived from title and number

    def slots(self) -> set[str]:
        """The reader fields the rendered parts ask for."""
        return {m.group(1) for part in (self.subject, self.html, self.text) for m in SLOT.finditer(part)}


@dataclass(frozen=True)
class Rendering:
    """What one render produced: the issue, what premailer's CSS parser said, and where time went."""

    issue: RenderedIssue
    css_warnings: tuple[str, ...]  # e.g. "Property: Unknown Property name. [12:5: colr]"
    seconds: dict[str, float]  # "markdown", "jinja", "inline", "total"


class Written(NamedTuple):
    path: Path
    size: int  # bytes on disk


def write_rendered(rendered: RenderedIssue, out_dir: str | Path) -> list[Written]:
    """Write ``<name>.html`` and ``<name>.txt`` (the draft's file name) into ``out_dir`` (created if
    needed)."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix, body in ((".html", rendered.html), (".txt", rendered.text)):
            path = folder / f"{rendered.name or rendered.issue_id}{suffix}"
            data = body.encode("utf-8")
            path.write_bytes(data)
            written.append(Written(path, len(data)))
    except OSError as exc:
        raise DigestError(f"cannot write: {exc.strerror or exc}", where=str(exc.filename or folder)) from None
    return written
