"""The rule on an issue's identity: an id or number that belongs to another draft or to an issue sent.

A draft copied as next week's start would otherwise be taken for last week's, and not sent.
"""

from __future__ import annotations

from collections.abc import Iterator

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.lint import Report, rule
from digestcli.state.history import Identities, IssueFacts, identity_problems


@rule(
    "issue-reused",
    "error",
    "the issue's `id` is another draft's in `drafts/`, or was sent as another issue (another number"
    " or date); or its `issue` number was sent under another id",
    workspace=True,
)
def issue_reused(issue: Issue, config: LintConfig, identities: Identities) -> Iterator[Report]:
    date = issue.date.isoformat() if issue.date else ""
    front = issue.front
    facts = IssueFacts(
        issue.issue_id, issue.number, date, issue.subject, issue.path, id_given="id" in front.values
    )
    line = front.line_of("id") if "id" in front.values else front.line_of("issue")
    for problem in identity_problems(facts, identities):
        yield Report(line, 1, problem)
