"""The one lint rule registry, and the runner that turns every rule's reports into findings.

Each rule is one small function registered with ``@rule`` under a stable name, with its default
severity, a one-line summary, whether ``digest lint --fix`` repairs it, and what it reads: the
draft (most rules), the workspace's other drafts and ledger (``workspace=True``) or the rendered
email (``rendered=True``). A rule yields ``Report``s; ``run_rules`` applies the ``[lint.rules]``
switches and severities to them, the same way for every kind, and returns ``Finding``s. A fixable
rule has a fix registered with ``@fixes``, which gives the ``Change``s that repair what it found
(``digestcli.lint.fix`` makes them). Nothing here prints, and nothing here imports the renderer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from digestcli.config import LintConfig
from digestcli.draft import Issue
from digestcli.errors import ConfigError

if TYPE_CHECKING:
    from digestcli.render import RenderedIssue
    from digestcli.state.history import Identities

Severity = Literal["error", "warning"]


# NamedTuples, not dataclasses, as in digestcli.draft: quicker to make at start-up.
class Finding(NamedTuple):
    """One problem found: where it is (``path``, ``line`` and ``column``, from 1), the rule that
    found it, its severity after ``[lint.rules]``, the message for the editor, and whether
    ``digest lint --fix`` repairs it. Findings sort by place."""

    path: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str
    fixable: bool = False

    def as_dict(self) -> dict[str, object]:
        """The finding as ``digest lint --format json`` prints it."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "fixable": self.fixable,
        }


class Report(NamedTuple):
    """What a rule says about one problem: where (line and column, from 1) and what.

    ``severity`` overrides the rule's default (an unknown front-matter key is only a warning);
    ``fixable`` False says that this one problem is beyond ``--fix`` although its rule is not
    (a heading with no number at all cannot be renumbered).
    """

    line: int
    column: int
    message: str
    severity: Severity | None = None
    fixable: bool = True


class Change(NamedTuple):
    """One line of a draft as a fix rewrites it: line ``line`` (from 1, as the parser counts)
    becomes ``lines`` (one or more lines, without line breaks), and ``what`` says how, for the
    editor. Every other byte of the draft stays as it was."""

    line: int
    lines: tuple[str, ...]
    what: str


# (subject, config) -> reports. The subject is the parsed Issue, or for a rendered rule the
# RenderedEmail of digestcli.lint.rendered; a workspace rule also gets the Identities.
RuleCheck = Callable[..., Iterable[Report]]


class Rule(NamedTuple):
    """A lint rule as the registry knows it.

    ``name`` is what findings, ``[lint.rules]`` and the docs call it; ``severity`` its default;
    ``summary`` one line on what it finds (the README's rule table is made from it); ``fixable``
    whether ``digest lint --fix`` repairs what it finds. ``workspace`` rules need the other drafts
    and the ledger and run only when lint has them; ``rendered`` rules check the rendered email
    and run only when there is one (``digest lint --rendered``, ``render``, ``send``); ``network``
    rules judge what each link's server answered and run only in the link check
    (``digestcli.linkcheck``: ``digest lint --links``, ``send``), never in ``run_rules``.
    """

    name: str
    severity: Severity
    summary: str
    check: RuleCheck
    fixable: bool = False
    workspace: bool = False
    rendered: bool = False
    network: bool = False

    def as_dict(self) -> dict[str, object]:
        """The rule as ``digest lint --rules --format json`` prints it."""
        return {
            "name": self.name,
            "severity": self.severity,
            "fixable": self.fixable,
            "rendered": self.rendered,
            "workspace": self.workspace,
            "summary": self.summary,
        }


_REGISTRY: dict[str, Rule] = {}  # filled by the rule modules' @rule; read it through all_rules()
# (issue, config) -> the changes that repair what a fixable rule found; filled by @fixes.
Fixer = Callable[[Issue, LintConfig], Iterable[Change]]
_FIXERS: dict[str, Fixer] = {}
# The rule modules, in the order the docs list their rules (each module's rules as written).
_MODULES = ("structure", "pasted", "text", "spelling", "links", "reach", "identity", "rendered")


def rule(
    name: str,
    severity: Severity,
    summary: str,
    *,
    fixable: bool = False,
    workspace: bool = False,
    rendered: bool = False,
    network: bool = False,
) -> Callable[[RuleCheck], RuleCheck]:
    """Register the decorated function as the check of the rule ``name``."""
    if "\n" in summary:
        raise ValueError(f"the summary of lint rule '{name}' must be one line")

    def register(check: RuleCheck) -> RuleCheck:
        known = _REGISTRY.get(name)
        if known and _origin(known.check) != _origin(check):
            raise ValueError(f"lint rule '{name}' is registered twice")
        _REGISTRY[name] = Rule(name, severity, summary, check, fixable, workspace, rendered, network)
        return check

    return register


def fixes(name: str) -> Callable[[Fixer], Fixer]:
    """Register the decorated function as the fix of the rule ``name`` (which says ``fixable``):
    ``digest lint --fix`` calls it when that rule found something it can fix."""

    def register(fixer: Fixer) -> Fixer:
        _FIXERS[name] = fixer
        return fixer

    return register


def fixer_of(name: str) -> Fixer | None:
    """The fix of a rule, or None when it has none."""
    all_rules()
    return _FIXERS.get(name)


def _origin(check: RuleCheck) -> str:
    return f"{check.__module__}.{check.__qualname__}"


def all_rules() -> dict[str, Rule]:
    """Every rule, by name, in the order the docs list them: the draft's structure, its words, its
    links, the workspace, the rendered email."""
    # Imported for their @rule registrations; all of them are light (rendered.py renders nothing).
    for module in _MODULES:
        importlib.import_module(f"digestcli.lint.{module}")
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY, key=_place)}


def _place(name: str) -> int:
    return _MODULES.index(_REGISTRY[name].check.__module__.rsplit(".", 1)[-1])


def check_rule_settings(config: LintConfig, where: str | None = None) -> None:
    """Refuse a [lint.rules] entry that names no rule (a typo would silently do nothing)."""
    if not config.rules:
        return
    import difflib

    known = list(all_rules())
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


def run_rules(
    subject: object,
    path: str,
    config: LintConfig,
    *,
    rendered: bool = False,
    identities: Identities | None = None,
    fixable_only: bool = False,
) -> list[Finding]:
    """Run every rule of one kind (the draft's, or with ``rendered`` the email's) that
    ``[lint.rules]`` leaves on, on ``subject``; the findings, at ``path``, sorted by place.
    Workspace rules run only when ``identities`` is given; with ``fixable_only``, only the rules
    that ``--fix`` repairs run."""
    findings: list[Finding] = []
    for spec in all_rules().values():
        if spec.network or spec.rendered != rendered:
            continue  # a network rule needs the links' answers: digestcli.linkcheck runs it
        if fixable_only and not spec.fixable:
            continue
        if effective_severity(spec.name, spec.severity, config) is None:
            continue
        extra: tuple[Any, ...] = ()
        if spec.workspace:
            if identities is None:
                continue
            extra = (identities,)
        for report in spec.check(subject, config, *extra):
            severity = effective_severity(spec.name, spec.severity, config, report.severity)
            assert severity is not None
            findings.append(
                Finding(
                    path,
                    report.line,
                    report.column,
                    spec.name,
                    severity,
                    report.message,
                    spec.fixable and report.fixable,
                )
            )
    return sorted(findings)


def lint_issue(issue: Issue, config: LintConfig, identities: Identities | None = None) -> list[Finding]:
    """Lint a parsed draft: the findings of every draft rule switched on, sorted by place.

    ``identities`` (the workspace's drafts and the issues sent) lets the rules about the
    workspace run too (``issue-reused``). The rendered email's rules are ``check_rendered``'s, in
    ``digestcli.lint.rendered``. Raises nothing for a broken draft: that is a finding.
    """
    return run_rules(issue, str(issue.path), config, identities=identities)


def send_blockers(
    issue: Issue, rendered: RenderedIssue, config: LintConfig, identities: Identities | None, where: str
) -> list[Finding]:
    """The lint errors that refuse a send: the draft's own, the workspace's (``issue-reused``)
    and the rendered email's, each at ``where``."""
    from digestcli.lint.rendered import check_rendered

    found = [
        *lint_issue(issue, config, identities),
        *check_rendered(rendered, where, config, source=issue.lines),
    ]
    return [f._replace(path=where) for f in errors_in(found)]


def errors_in(findings: Iterable[Finding]) -> Iterator[Finding]:
    """The findings that are errors."""
    return (f for f in findings if f.severity == "error")
