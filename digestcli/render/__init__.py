"""Rendering: an Issue made into the two parts of an email, once per issue; this module is the public API.

The rooms inside:

``compose``    ``render``, ``render_issue``: the steps below, in order, once per issue
``view``       the issue as the templates see it (``issue_view``) and the ``SlotReader``
``text``       the plain-text part's prose: wrapping, numbered link references
``templates``  the template search path and the one Jinja2 environment factory (email and scaffold)
``inline``     CSS inlining: the one module that imports premailer
``links``      which link and image targets an email may keep live
``rendered``   what a render produces (``RenderedIssue``, ``Rendering``) and writing it to ``out/``

Importing this package is light: ``RenderedIssue`` comes with it (``message/`` and ``delivery/``
need it without rendering), and the rest loads on the first use of a name that needs it, so a
command that does not render never pays for Jinja2, premailer and lxml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestcli.lazy import names_from
from digestcli.render.rendered import RenderedIssue, Rendering, Written, write_rendered

if TYPE_CHECKING:
    from digestcli.render.compose import render, render_issue
    from digestcli.render.inline import inline_css
    from digestcli.render.links import link_is_live
    from digestcli.render.templates import environment, packaged_templates, template_search_path
    from digestcli.render.text import readable_url
    from digestcli.render.view import issue_view

__all__ = [
    "RenderedIssue",
    "Rendering",
    "Written",
    "environment",
    "inline_css",
    "issue_view",
    "link_is_live",
    "packaged_templates",
    "readable_url",
    "render",
    "render_issue",
    "template_search_path",
    "write_rendered",
]

# Loaded on first use: each module -> the names it defines.
_HOMES = {
    f"{__name__}.compose": ("render", "render_issue"),
    f"{__name__}.inline": ("inline_css",),
    f"{__name__}.links": ("link_is_live",),
    f"{__name__}.templates": ("environment", "packaged_templates", "template_search_path"),
    f"{__name__}.text": ("readable_url",),
    f"{__name__}.view": ("issue_view",),
}

__getattr__, __dir__ = names_from(__name__, _HOMES)
