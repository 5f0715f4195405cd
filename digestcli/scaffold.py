"""Scaffolding a new draft in `drafts/`: from the `draft.md.j2` template, or from an earlier draft
(``--like``) with a new identity."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from digestcli.config import Workspace
from digestcli.draft import draft_ids, front_matter_of, load_draft
from digestcli.draft import slugify as draft_slugify
from digestcli.errors import InputError, UsageError
from digestcli.state.history import read_identities, read_sent

TEMPLATE = "draft.md.j2"


@dataclass(frozen=True)
class NewDraft:
    path: Path
    issue: int
    items: int


def slugify(text: str) -> str:
    return draft_slugify(text) or "issue"


def next_issue_number(drafts: Path, state_dir: Path | None = None) -> int:
    """One more than the highest `issue:` among the drafts and the issues the ledger has sent;
    drafts that cannot be read count as none."""
    highest = 0
    for path in drafts.glob("*.md") if drafts.is_dir() else ():
        try:
            values = front_matter_of(path)
        except InputError:
            continue
        number = values.get("issue")
        if isinstance(number, int) and not isinstance(number, bool):
            highest = max(highest, number)
    if state_dir is not None:
        sent = read_sent(state_dir).values()
        highest = max([highest, *(s.number for s in sent if s.number is not None)])
    return highest + 1


def _new_id(title: str, number: int, taken: set[str]) -> str:
    base = f"{slugify(title)}-{number}"
    candidate, n = base, 1
    while candidate in taken:  # an id already used by a draft or an issue sent: never reuse it
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def new_draft(
    workspace: Workspace,
    *,
    title: str | None = None,
    date: dt.date | None = None,
    items: int = 5,
    slug: str | None = None,
    like: Path | None = None,
) -> NewDraft:
    """Write a new draft and return where; never overwrites an existing file. ``like``: start from
    that earlier draft instead of the template (see ``_new_like``)."""
    from digestcli.render.templates import TemplateError, environment  # Jinja2, loaded on first use

    if items < 1:
        raise UsageError("--items must be at least 1")
    config = workspace.config
    date = date or dt.date.today()
    drafts = workspace.drafts
    number = next_issue_number(drafts, workspace.state)
    identities = read_identities(workspace.state, draft_ids(drafts))
    taken = {*identities.drafts, *identities.sent}
    if like is not None:
        return _new_like(like, workspace, date=date, number=number, title=title, slug=slug, taken=taken)
    title = title or config.newsletter.title
    path = drafts / f"{date.isoformat()}-{slugify(slug or title)}.md"

    try:
        template = environment(workspace, "draft").get_template(TEMPLATE)
        text = template.render(
            title=title,
            id=_new_id(title, number, taken),
            date=date.isoformat(),
            issue=number,
            items=items,
            wrapup_heading=config.lint.wrapup_heading,
            subject_max=config.lint.subject_max,
        )
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or TEMPLATE
        line = getattr(exc, "lineno", None)
        raise UsageError(f"template error: {exc}", where=f"{where}:{line}" if line else where) from None

    _write_new(path, text)
    return NewDraft(path, number, items)


def _new_like(
    like: Path,
    workspace: Workspace,
    *,
    date: dt.date,
    number: int,
    title: str | None,
    slug: str | None,
    taken: set[str],
) -> NewDraft:
    """A copy of an earlier draft as the next issue: every line kept, but a new `id`, the next
    `issue` number and the new `date`; the subject is marked TODO so lint holds it until it is
    rewritten (last week's subject would otherwise go out again)."""
    source = load_draft(like, wrapup_heading=workspace.config.lint.wrapup_heading)
    front = source.front
    if front.error or not front.start_line:
        line, message = front.error or (1, "no front matter")
        raise InputError(f"cannot start from this draft: {message}", where=f"{like}:{line}")
    title = title or source.title or workspace.config.newsletter.title
    values = {
        "id": _new_id(title, number, taken),
        "issue": str(number),
        "date": date.isoformat(),
    }
    if title != source.title:
        values["title"] = json.dumps(title, ensure_ascii=False)
    if source.subject and not source.subject.startswith("TODO"):
        values["subject"] = json.dumps(f"TODO: {source.subject}", ensure_ascii=False)
    lines = list(source.lines)
    for key, value in values.items():
        if key in front.key_lines:
            lines[front.key_lines[key] - 1] = f"{key}: {value}"
    missing = [f"{key}: {value}" for key, value in values.items() if key not in front.key_lines]
    lines[front.start_line : front.start_line] = missing  # just after the opening ---
    path = workspace.drafts / f"{date.isoformat()}-{slugify(slug or title)}.md"
    _write_new(path, "\n".join(lines) + "\n")
    return NewDraft(path, number, len(source.items))


def _write_new(path: Path, text: str) -> None:
    drafts = path.parent
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
