"""Checks a draft against the format and the common mistakes; returns findings, prints nothing.

Each rule is one small function registered under a stable name. A rule yields ``Report``s; the
runner turns them into ``Finding``s with the path, rule name and configured severity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from digestcli.config import LintConfig
from digestcli.draft import Issue, load_draft
from digestcli.errors import ConfigError

if TYPE_CHECKING:
    from digestcli.state.history import Identities

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
        }


@dataclass(frozen=True)
class Report:
    """What a rule says: where and what. ``severity`` overrides the rule's default."""

    line: int
    column: int
    message: str
    severity: Severity | None = None


# (issue, config) -> reports; a rule about the workspace also gets its Identities.
RuleCheck = Callable[..., Iterable[Report]]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: Severity
    summary: str
    check: RuleCheck
    workspace: bool = False  # needs the other drafts and the ledger: runs only when lint has them


RULES: dict[str, Rule] = {}


def rule(
    name: str, severity: Severity, summary: str, *, workspace: bool = False
) -> Callable[[RuleCheck], RuleCheck]:
    def register(check: RuleCheck) -> RuleCheck:
        RULES[name] = Rule(name, severity, summary, check, workspace)
        return check

    return register


def _load_rules() -> None:
    # Imported for their @rule registrations.
    from digestcli.lint import identity, links, structure, text  # noqa: F401


def check_rule_settings(config: LintConfig, where: str | None = None) -> None:
    """Refuse a [lint.rules] entry that names no rule (a typo would silently do nothing)."""
    if not config.rules:
        return
    import difflib

    from digestcli.lint.rendered import RENDERED_RULES

    _load_rules()
    known = [*RULES, *RENDERED_RULES]
    for name in config.rules:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"the rules: {', '.join(known)}"
            raise ConfigError(f"unknown lint rule '{name}' in [lint.rules]", where=where, hint=hint)


def effective_severity(
    name: str, default: Severity, config: LintConfig, reported: Severity | None = None
) -> Severity | None:
    """The severity of one finding, or None when its rule is switched off.

    A severity set in [lint.rules] wins; else the finding's own (an unknown front-matter key is
    only a warning), else the rule's default. `true` switches a rule on without changing either.
    """
    setting = config.rules.get(name, "on")
    if setting == "off":
        return None
    if setting in ("warning", "error"):
        return setting  # type: ignore[return-value]
    return reported or default


def lint_issue(issue: Issue, config: LintConfig, identities: Identities | None = None) -> list[Finding]:
    """Every finding of every rule switched on, sorted by place. ``identities`` (the workspace's
    drafts and sent issues) lets the rules about the workspace run too (``issue-reused``)."""
    _load_rules()
    findings: list[Finding] = []
    for spec in RULES.values():
        if effective_severity(spec.name, spec.severity, config) is None:
            continue
        extra: tuple[Any, ...] = ()
        if spec.workspace:
            if identities is None:
                continue
            extra = (identities,)
        for report in spec.check(issue, config, *extra):
            severity = effective_severity(spec.name, spec.severity, config, report.severity)
            assert severity is not None
            findings.append(
                Finding(str(issue.path), report.line, report.column, spec.name, severity, report.message)
            )
    return sorted(findings)


def lint_file(path: Path, config: LintConfig) -> list[Finding]:
    """Lint one draft file; raises InputError when it cannot be read."""
    return lint_issue(load_draft(path, wrapup_heading=config.wrapup_heading), config)


def errors_in(findings: Iterable[Finding]) -> Iterator[Finding]:
    return (f for f in findings if f.severity == "error")
