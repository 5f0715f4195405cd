"""Where templates are found, and the one Jinja2 environment factory: for the email, the web edition
and the draft scaffold.

A workspace's own ``templates/`` overrides digest's, file by file. Every template digest fills in
(``email.html.j2``, ``email.txt.j2``, ``web/issue.html.j2``, ``web/archive.html.j2``,
``draft.md.j2``) goes through ``environment``; the kinds differ in one option only, whitespace (see
``environment``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from digestcli.config import Workspace
from digestcli.draft import yaml_string
from digestcli.errors import ConfigError, DigestError
from digestcli.render.text import underline, wrap

HTML_TEMPLATE = "email.html.j2"
TEXT_TEMPLATE = "email.txt.j2"

Kind = Literal["email", "web", "draft"]
TemplateError = jinja2.TemplateError  # what a template that cannot be filled in raises, for callers


def packaged_templates() -> Path:
    """The default templates: inside the package when installed, else the checkout's top level."""
    package = Path(__file__).resolve().parent.parent  # digestcli/
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("digest's own templates are missing", hint="reinstall digest")


def template_search_path(workspace: Workspace) -> list[Path]:
    """Where templates are looked up, first match wins: the workspace's, then digest's own."""
    own = workspace.templates
    return [own, packaged_templates()] if own.is_dir() else [packaged_templates()]


def environment(workspace: Workspace, kind: Kind = "email") -> jinja2.Environment:
    """The Jinja2 environment for a workspace: its own templates first, then digest's, file by file.

    ``email`` (the HTML and text parts) and ``web`` (the site's pages, ``templates/web/``) drop the
    line a block tag (``{% for %}``) stands on; ``draft`` (the ``digest new`` scaffold, Markdown
    where every newline counts) keeps the template's lines as written. All escape HTML in ``.html``
    templates only, fail loudly on an undefined name, and have the filters ``wrap``, ``underline``
    and ``yaml``. One environment per search path and kind, kept for the process: templates are
    compiled once, and reloaded when their file changes.
    """
    return _environment(tuple(template_search_path(workspace)), kind)


def _autoescape(name: str | None) -> bool:
    return name is not None and re.search(r"\.html?(\.|$)", name) is not None


@lru_cache(maxsize=16)
def _environment(search_path: tuple[Path, ...], kind: Kind) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,  # a misspelt name in a template fails loudly, with its line
        trim_blocks=kind != "draft",
        lstrip_blocks=kind != "draft",
        keep_trailing_newline=True,
        auto_reload=True,  # the preview edits templates while the server runs
    )
    env.filters["wrap"] = wrap
    env.filters["underline"] = underline
    env.filters["yaml"] = yaml_string
    return env


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Fill in one of the email's templates; a missing or broken template is a ``DigestError`` that
    names the file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        loader = env.loader
        folders = ", ".join(loader.searchpath) if isinstance(loader, jinja2.FileSystemLoader) else ""
        hint = "restore it, or reinstall digest"
        raise DigestError(f"template '{exc.name}' not found", where=folders or None, hint=hint) from None
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name}:{exc.lineno}"
        raise DigestError(f"template syntax error: {exc.message}", where=where) from None
    except jinja2.TemplateError as exc:  # UndefinedError and friends, raised while rendering
        where = _template_line(exc) or name
        raise DigestError(f"template error: {exc.message or exc}", where=where) from None


def _template_line(exc: BaseException) -> str | None:
    """The template file and line a render error came from: Jinja maps its frames back to templates."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found
