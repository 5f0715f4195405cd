"""Scaffolding a new draft in `drafts/` from the `draft.md.j2` template."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from digestcli.config import Workspace, template_search_path
from digestcli.draft import front_matter_of
from digestcli.errors import InputError, UsageError

TEMPLATE = "draft.md.j2"


@dataclass(frozen=True)
class NewDraft:
    path: Path
    issue: int
    items: int


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "issue"


def next_issue_number(drafts: Path) -> int:
    """One more than the highest `issue:` among the drafts; drafts that cannot be read count as none."""
    highest = 0
    for path in drafts.glob("*.md"):
        try:
            values = front_matter_of(path)
        except InputError:
            continue
        number = values.get("issue")
        if isinstance(number, int) and not isinstance(number, bool):
            highest = max(highest, number)
    return highest + 1


def new_draft(
    workspace: Workspace,
    *,
    title: str | None = None,
    date: dt.date | None = None,
    items: int = 5,
    slug: str | None = None,
) -> NewDraft:
    """Write a new draft and return where; never overwrites an existing file."""
    import jinja2

    if items < 1:
        raise UsageError("--items must be at least 1")
    config = workspace.config
    title = title or config.newsletter.title
    date = date or dt.date.today()
    drafts = workspace.drafts
    number = next_issue_number(drafts) if drafts.is_dir() else 1
    path = drafts / f"{date.isoformat()}-{slugify(slug or title)}.md"

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_search_path(workspace)]),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["yaml"] = lambda value: json.dumps(str(value), ensure_ascii=False)  # JSON strings are YAML
    try:
        template = env.get_template(TEMPLATE)
        text = template.render(
            title=title,
            date=date.isoformat(),
            issue=number,
            items=items,
            wrapup_heading=config.lint.wrapup_heading,
            subject_max=config.lint.subject_max,
        )
    except jinja2.TemplateError as exc:
        where = getattr(exc, "filename", None) or TEMPLATE
        line = getattr(exc, "lineno", None)
        raise UsageError(f"template error: {exc}", where=f"{where}:{line}" if line else where) from None

    try:
        drafts.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        if not drafts.is_dir():
            raise InputError("is a file; drafts/ must be a folder", where=str(drafts)) from None
        raise UsageError(
            "already exists; digest never overwrites a draft",
            where=str(path),
            hint="choose another --slug or --date",
        ) from None
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", where=str(path)) from None
    return NewDraft(path, number, items)
