"""Publishing the web edition: which issues make the site, and the site made from them
(``publish_site``, ``publish_issue``) with a report of what was written.

The site is a pure function of its issues, templates and settings: every publish renders every
issue (once each) and writes only the files whose bytes changed. Which issues: those the ledger
says were sent, the drafts named, and with ``all_drafts`` every draft in drafts/ that lints clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from digestcli.config import Workspace
from digestcli.draft import Issue, draft_ids, load_draft
from digestcli.errors import DigestError
from digestcli.publish.feed import FeedEntry, atom_feed
from digestcli.publish.files import SiteWriter
from digestcli.publish.links import ARCHIVE, FEED, LATEST, SiteLinks
from digestcli.publish.neutral import Neutralizer
from digestcli.publish.pages import Pages, WebIssue
from digestcli.render.view import issue_view

_NOTHING = (
    "nothing to publish: no issue has been sent from this workspace yet; name a draft"
    " (digest publish DRAFT) or publish every draft that lints clean (--all)"
)


@dataclass
class PublishReport:
    """What a publish did: the files it wrote, how many it left as they were (their content had not
    changed), how many issues the site has, and notes on drafts left out and why."""

    written: list[Path] = field(default_factory=list)
    unchanged: int = 0
    issues: int = 0
    notes: list[str] = field(default_factory=list)
    out: Path = field(default_factory=lambda: Path("site"))  # the site's folder

    @property
    def archive(self) -> Path:
        """The site's front page, the archive: what ``digest publish --open`` opens."""
        return self.out / str(ARCHIVE)


def publish_site(
    workspace: Workspace,
    drafts: Sequence[Path] = (),
    *,
    out: Path | None = None,
    all_drafts: bool = False,
) -> PublishReport:
    """Publish the web edition into ``out`` (default ``[web] out``): the issues sent, the
    ``drafts`` named, and with ``all_drafts`` every draft in drafts/ that lints clean.

    A draft named that cannot be read raises ``InputError``; a draft of an issue sent that is gone
    or unreadable, and a draft with lint errors under ``all_drafts``, is left out with a note.
    Raises ``DigestError`` when the site cannot be written, or a template cannot be filled in.
    """
    choice = _Choice(workspace)
    for path in drafts:
        choice.add(choice.load(path), named=True)
    choice.add_sent()
    if all_drafts:
        choice.add_clean_drafts()
    return _publish(workspace, choice, out)


def publish_issue(workspace: Workspace, issue: Issue, *, out: Path | None = None) -> PublishReport:
    """Publish one issue's page, as a send starts: the site is made again from the issues sent and
    this one, so that the archive, the feed, ``latest/`` and the previous issue's link to the next
    take it in too (only the files that change are written)."""
    choice = _Choice(workspace)
    choice.add(issue, named=True)
    choice.add_sent()
    return _publish(workspace, choice, out)


class _Choice:
    """The issues a publish takes, one per issue id, first come first kept (the drafts named, then
    the issues sent, then the other drafts), with a note for each one left out."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.issues: dict[str, Issue] = {}
        self.notes: list[str] = []
        self._paths: set[Path] = set()
        self._ids: dict[Path, str] | None = None

    def load(self, path: Path) -> Issue:
        return load_draft(path, wrapup_heading=self.workspace.config.lint.wrapup_heading)

    def add(self, issue: Issue, *, named: bool = False) -> None:
        """Take ``issue`` unless its id is taken; ``named``: the editor asked for this very draft,
        so a draft of the same id already taken is worth a note."""
        here = issue.path.resolve()
        if here in self._paths:
            return
        self._paths.add(here)
        taken = self.issues.get(issue.issue_id)
        if taken is not None:
            if named:
                self.notes.append(
                    f"{self._shown(issue.path)}: not published: {self._shown(taken.path)} has its id"
                    f" ({issue.issue_id})"
                )
            return
        if issue.date is None:
            self.notes.append(
                f"{self._shown(issue.path)}: not published: it has no `date:` (an issue's address"
                " and its place in the archive come from its date)"
            )
            return
        self.issues[issue.issue_id] = issue

    def _draft_ids(self) -> dict[Path, str]:
        if self._ids is None:
            self._ids = draft_ids(self.workspace.drafts)
        return self._ids

    def add_sent(self) -> None:
        """The issues in the ledger's register, each from the draft it was last sent from; a draft
        since renamed or moved within drafts/ is found again by its id."""
        from digestcli.state.history import read_sent

        for sent in read_sent(self.workspace.state).values():
            if sent.issue_id in self.issues:
                continue
            recorded = Path(sent.draft) if sent.draft else None
            issue, why = None, "the ledger does not say which draft it was sent from"
            if recorded is not None and recorded.is_file():
                try:
                    issue = self.load(recorded)
                except DigestError as exc:
                    why = str(exc)
                else:
                    # Last week's draft edited into this week's: the issue sent may be elsewhere.
                    why = f"its draft {self._shown(recorded)} now holds issue {issue.issue_id}"
            elif recorded is not None:
                why = f"its draft {self._shown(recorded)} is gone"
            if issue is None or issue.issue_id != sent.issue_id:
                issue = self._renamed(sent.issue_id)  # renamed or moved: the id is the issue's
            if issue is None:
                self.notes.append(
                    f"issue {sent.issue_id} (sent) not published: {why}, and no draft in"
                    f" {self._shown(self.workspace.drafts)}/ has its id; name the draft to publish it"
                )
                continue
            self.add(issue)

    def _renamed(self, issue_id: str) -> Issue | None:
        found = [path for path, known in self._draft_ids().items() if known == issue_id]
        if len(found) != 1:
            return None
        try:
            return self.load(found[0])
        except DigestError:
            return None

    def add_clean_drafts(self) -> None:
        """Every draft in drafts/ that lints clean (the issues sent are in already, whatever
        their findings: they are public)."""
        from digestcli.lint import errors_in, lint_issue
        from digestcli.state.history import read_identities

        ids = self._draft_ids()
        identities = read_identities(self.workspace.state, ids)  # for issue-reused
        for path in sorted(ids):
            if path.resolve() in self._paths or ids[path] in self.issues:
                continue
            try:
                issue = self.load(path)
            except DigestError as exc:
                self.notes.append(f"not published: {exc}")
                continue
            errors = list(errors_in(lint_issue(issue, self.workspace.config.lint, identities)))
            if errors:
                count = f"{len(errors)} lint error{'s' if len(errors) != 1 else ''}"
                shown = self._shown(path)
                self.notes.append(f"{shown}: not published: {count} (digest lint {shown} shows them)")
                continue
            self.add(issue)

    def _shown(self, path: Path) -> str:
        """A path as the editor knows it: relative to the workspace when inside it."""
        try:
            return str(path.resolve().relative_to(self.workspace.root.resolve()))
        except ValueError:
            return str(path)


def _publish(workspace: Workspace, choice: _Choice, out: Path | None) -> PublishReport:
    config = workspace.config
    report = PublishReport(out=workspace.site_folder(out))
    report.notes.extend(choice.notes)
    site = _arranged(choice.issues.values(), Neutralizer(config.web.reader_name), report.notes)
    if not site:
        report.notes.append(_NOTHING if not report.notes else "nothing left to publish")
        return report
    links = SiteLinks(config.web.base_url)
    pages = Pages(workspace, links)
    writer = SiteWriter(report.out)
    entries = []
    for position, web in enumerate(site):
        older = site[position + 1] if position + 1 < len(site) else None
        newer = site[position - 1] if position > 0 else None
        page = pages.issue(web, older, newer)
        writer.write(web.file, page.html.encode("utf-8"))
        entries.append(FeedEntry(web, page.article))
    writer.write(ARCHIVE, pages.archive(site).encode("utf-8"))
    writer.write(FEED, atom_feed(entries, config, links))
    writer.write(LATEST, pages.latest(site[0]).encode("utf-8"))
    keep = {web.slug for web in site} | {LATEST.parts[0]}
    for folder in writer.stale(keep):
        report.notes.append(
            f"{folder.name}/ in the site is from an earlier publish and is not among the issues"
            " published now (its date or title changed, or its draft is gone): delete it if it should go"
        )
    report.written = writer.written
    report.unchanged = writer.unchanged
    report.issues = len(site)
    return report


def _arranged(issues: Iterable[Issue], neutral: Neutralizer, notes: list[str]) -> list[WebIssue]:
    """The issues as the site shows them, newest first, one per address: two issues that would
    share a folder (the same date and title) keep the first and note the other."""
    site: dict[str, WebIssue] = {}
    for issue in issues:
        assert issue.date is not None  # _Choice.add keeps dated issues only
        taken = site.get(issue.web_slug)
        if taken is not None:
            notes.append(
                f"issue {issue.issue_id} not published: its address, {issue.web_slug}/, is issue"
                f" {taken.issue.issue_id}'s (the same date and title); give one of them another title"
            )
            continue
        site[issue.web_slug] = WebIssue(issue, neutral.view(issue_view(issue)), issue.date)
    return sorted(site.values(), key=lambda web: (web.date, web.view.number or 0, web.slug), reverse=True)
