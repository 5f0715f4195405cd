"""Rendering one issue, once: the view, both templates, the text part tidied, the CSS inlined.

The result serves every reader: ``{{ reader.FIELD }}`` slots stay in place for ``digestcli.message``
to fill at send time, so nothing here runs per subscriber.
"""

from __future__ import annotations

import time

from digestcli.config import Workspace
from digestcli.draft import Issue, canonical_slots
from digestcli.render.inline import inline_css
from digestcli.render.rendered import RenderedIssue, Rendering
from digestcli.render.templates import HTML_TEMPLATE, TEXT_TEMPLATE, environment, render_template
from digestcli.render.text import tidy_text
from digestcli.render.view import SlotReader, issue_view


def render_issue(issue: Issue, workspace: Workspace) -> RenderedIssue:
    """Render an issue's HTML and text parts, with per-reader slots left in place."""
    return render(issue, workspace).issue


def web_url(issue: Issue, workspace: Workspace) -> str:
    """The issue's page in the web edition, when ``[web] base_url`` says where the site is; ""
    otherwise (the email then has no "View in your browser" link)."""
    base = workspace.config.web.base_url
    return f"{base.rstrip('/')}/{issue.web_slug}/" if base else ""


def render(issue: Issue, workspace: Workspace) -> Rendering:
    """Like ``render_issue``, and also report premailer's CSS warnings and the time each step took."""
    started = time.perf_counter()
    view = issue_view(issue)
    after_markdown = time.perf_counter()
    env = environment(workspace)
    context = {
        "newsletter": workspace.config.newsletter,
        "issue": view,
        "reader": SlotReader(),
        "web_url": web_url(issue, workspace),
    }
    html_source = render_template(env, HTML_TEMPLATE, context)
    text = tidy_text(render_template(env, TEXT_TEMPLATE, context))
    after_jinja = time.perf_counter()
    html, warnings = inline_css(html_source)
    done = time.perf_counter()
    rendered = RenderedIssue(
        issue_id=issue.issue_id,
        title=view.title or workspace.config.newsletter.title,
        subject=canonical_slots(issue.subject),
        preheader=issue.preheader,
        html=html,
        text=text,
        number=issue.number,
        date=issue.date.isoformat() if issue.date else "",
        name=issue.path.stem,
        id_given="id" in issue.front.values,
    )
    seconds = {
        "markdown": after_markdown - started,
        "jinja": after_jinja - after_markdown,
        "inline": done - after_jinja,
        "total": done - started,
    }
    return Rendering(rendered, warnings, seconds)
