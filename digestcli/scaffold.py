"""Scaffolding: a new workspace (``digest init``), and a new draft in `drafts/` from the
`draft.md.j2` template or from an earlier draft (``--like``) with a new identity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from digestcli.config import CONFIG_NAME, Config, NewsletterConfig, Workspace, example_settings, load_config
from digestcli.draft import draft_ids, front_matter_of, load_draft, yaml_string
from digestcli.draft import slugify as draft_slugify
from digestcli.errors import ConfigError, InputError, UsageError, create_whole
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


def new_id(title: str, number: int, taken: set[str]) -> str:
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
            id=new_id(title, number, taken),
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

    write_new_draft(path, text)
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
        "id": new_id(title, number, taken),
        "issue": str(number),
        "date": date.isoformat(),
    }
    if title != source.title:
        values["title"] = yaml_string(title)
    if source.subject and not source.subject.startswith("TODO"):
        values["subject"] = yaml_string(f"TODO: {source.subject}")
    lines = list(source.lines)
    for key, value in values.items():
        if key in front.key_lines:
            lines[front.key_lines[key] - 1] = f"{key}: {value}"
    missing = [f"{key}: {value}" for key, value in values.items() if key not in front.key_lines]
    lines[front.start_line : front.start_line] = missing  # just after the opening ---
    path = workspace.drafts / f"{date.isoformat()}-{slugify(slug or title)}.md"
    write_new_draft(path, "\n".join(lines) + "\n")
    return NewDraft(path, number, len(source.items))


def write_new_draft(path: Path, text: str) -> None:
    drafts = path.parent
    try:
        drafts.mkdir(parents=True, exist_ok=True)
        create_whole(path, text)
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


# -- a new workspace --------------------------------------------------------------------------

# The templates a new workspace gets copies of: the ones an editor is meant to change. The web
# edition's (templates/web/) are left to digest: a copy would stop its fixes reaching the site.
STARTER_TEMPLATES = {
    "draft.md.j2": "what `digest new` starts from: your standing greeting and wrap-up go here",
    "email.html.j2": "the email's HTML and its CSS",
    "email.txt.j2": "the email's plain-text part",
}
EXAMPLE_READERS = (
    ("ann.example@example.com", "Ann Example"),
    ("bo.sample@example.org", "Bo Sample"),
    ("chidi.test@example.net", "Chidi Test"),
)


@dataclass(frozen=True)
class Part:
    """A file or folder of a new workspace, and whether ``digest init`` made it or found it there."""

    path: Path  # relative to the workspace
    about: str
    created: bool
    folder: bool = False

    @property
    def name(self) -> str:
        return f"{self.path.as_posix()}/" if self.folder else self.path.as_posix()


@dataclass(frozen=True)
class _Planned:
    path: Path  # relative to the workspace
    about: str
    content: str | None = None  # None: a folder


@dataclass(frozen=True)
class NewWorkspace:
    root: Path
    parts: tuple[Part, ...]

    @property
    def created(self) -> list[Part]:
        return [part for part in self.parts if part.created]

    @property
    def kept(self) -> list[Part]:
        return [part for part in self.parts if not part.created]


def init_workspace(root: Path, *, title: str | None = None) -> NewWorkspace:
    """Make ``root`` a workspace: a commented digest.toml with every setting, drafts/, copies of the
    templates an editor changes, an example subscribers.csv. Never overwrites: what is already
    there is kept and reported as such. A part in the way (a file where a folder must go) is
    refused before anything is written."""
    from digestcli.config_doc import commented_config
    from digestcli.render.templates import packaged_templates

    if root.exists() and not root.is_dir():
        raise InputError(
            "is a file, not a folder", where=str(root), hint="name a new folder, or an existing one"
        )
    default = NewsletterConfig()
    title = (title or default.title).strip()
    if not title or any(ord(char) < 32 or ord(char) == 127 for char in title):
        raise UsageError(f"--title {title!r} must be one line of text")
    settings = {
        "newsletter.title": title,
        "newsletter.from": f"{_display_name(title)} <digest@example.com>",
        "newsletter.postal_address": default.postal_address,
        "newsletter.unsubscribe_url": default.unsubscribe_url,
    }
    header = f"digest.toml: the settings of {title}, found from this folder and every folder in it."
    packaged = packaged_templates()
    plan = [
        _Planned(
            Path(CONFIG_NAME),
            "every setting, with what it does and its default",
            commented_config(settings, header=header),
        ),
        _Planned(Path("drafts"), "the issues, one Markdown file each"),
        _Planned(Path("templates"), "your own templates, each overriding digest's of the same name"),
        *(
            _Planned(Path("templates", name), about, _read_template(packaged / name))
            for name, about in STARTER_TEMPLATES.items()
        ),
    ]
    readers = Path(_existing_config(root).delivery.subscribers)
    if not readers.is_absolute() and ".." not in readers.parts:  # never write outside the workspace
        example = "email,name\n" + "".join(f"{address},{name}\n" for address, name in EXAMPLE_READERS)
        plan.append(_Planned(readers, "an example list of three readers: put yours in its place", example))
    for planned in plan:  # every clash first, so that a refusal leaves nothing half made
        _check_free(root, planned)
    return NewWorkspace(root, tuple(_make(root, planned) for planned in plan))


def next_steps(made: NewWorkspace, *, folder: str | None = None) -> list[str]:
    """What to do after ``digest init``, one line each; ``folder``: where to `cd` first (None when
    already there). Raises ConfigError when a digest.toml that was already there does not load."""
    from digestcli.delivery.smtp import PASSWORD_ENV

    config = load_config(made.root / CONFIG_NAME)
    to_set = [example.key.removeprefix("newsletter.") for example in example_settings(config)]
    if config.newsletter.title == NewsletterConfig().title:
        to_set.insert(0, "title")
    steps = [f"cd {folder}"] if folder else []
    if to_set:
        steps.append(f"Set your own {', '.join(to_set)} in digest.toml (SMTP sends refuse the examples)")
    steps += [
        "Put your standing greeting and wrap-up into templates/draft.md.j2",
        "digest new --items 12         start the first issue in drafts/",
        "digest import PASTE.txt       or start it from an issue copied from a web page",
        "digest lint                   until it says All good",
        "digest preview DRAFT          see it in a browser, reloaded as you edit",
        "digest send DRAFT --test YOU  a copy to yourself; then digest send DRAFT",
        f'To mail for real: transport = "smtp" and [smtp] in digest.toml, the password in ${PASSWORD_ENV}',
    ]
    return steps


def _existing_config(root: Path) -> Config:
    """The settings already there (where they put the list), else the defaults; a digest.toml that
    does not load is reported after the workspace is made (see ``next_steps``), not before."""
    path = root / CONFIG_NAME
    if not path.is_file():
        return Config()
    try:
        return load_config(path)
    except ConfigError:
        return Config()


def _display_name(title: str) -> str:
    """The title as the display name of an address: quoted when it holds what a bare name may not."""
    if any(char in title for char in '()<>@,;:\\".[]'):
        return '"' + title.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return title


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read digest's own template: {exc.strerror or exc}",
            where=str(path),
            hint="reinstall digest",
        ) from None


def _check_free(root: Path, planned: _Planned) -> None:
    target = root / planned.path
    name = planned.path.as_posix()
    if planned.content is None and target.exists() and not target.is_dir():
        raise InputError(
            f"is a file; {name}/ must be a folder",
            where=str(target),
            hint="move it aside and run digest init again",
        )
    if planned.content is not None and target.exists() and not target.is_file():
        raise InputError(
            f"is a folder; {name} must be a file",
            where=str(target),
            hint="move it aside and run digest init again",
        )


def _make(root: Path, planned: _Planned) -> Part:
    """Make one part, or find it there already (and leave it as it was)."""
    target = root / planned.path
    try:
        if planned.content is None:
            created = not target.is_dir()
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            create_whole(target, planned.content)
            created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise InputError(
            f"cannot write: {exc.strerror or exc}",
            where=str(exc.filename or target),
            hint="choose a folder you can write to",
        ) from None
    return Part(planned.path, planned.about, created, folder=planned.content is None)
