"""The rule registry as people read it: `digest lint --rules`, its JSON, and the README's rule table.

The README's table is generated, never typed: between its two marker comments it holds exactly
what ``markdown_table()`` gives, and a test says so. After changing a rule, regenerate it with

    python3 -m digestcli.lint.catalog --write README.md

(without ``--write`` the table is printed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digestcli.lint import Rule, all_rules

BEGIN = "<!-- rules: begin (generated: python3 -m digestcli.lint.catalog --write README.md) -->"
END = "<!-- rules: end -->"
REGENERATE = "python3 -m digestcli.lint.catalog --write README.md"


def _finds(spec: Rule) -> str:
    """What a rule finds, marked with what it needs beyond the draft."""
    needs = "(rendered) " if spec.rendered else "(workspace) " if spec.workspace else ""
    return needs + spec.summary


def rule_lines() -> list[str]:
    """One line per rule, as `digest lint --rules` prints them: name, severity, fixable, summary."""
    rules = list(all_rules().values())
    width = max(len(spec.name) for spec in rules)
    return [
        f"{spec.name:<{width}}  {spec.severity:<7}  {'fixable' if spec.fixable else '-':<7}  {_finds(spec)}"
        for spec in rules
    ]


def rules_json() -> str:
    """Every rule as a JSON array of objects, as `digest lint --rules --format json` prints it."""
    return json.dumps([spec.as_dict() for spec in all_rules().values()], ensure_ascii=False, indent=2)


def markdown_table() -> str:
    """The README's rule table: rule | severity | fixable | what it finds, one row per rule."""
    rows = ["| rule | severity | fixable | what it finds |", "| --- | --- | --- | --- |"]
    for spec in all_rules().values():
        finds = _finds(spec).replace("|", "\\|")
        rows.append(f"| `{spec.name}` | {spec.severity} | {'yes' if spec.fixable else 'no'} | {finds} |")
    return "\n".join(rows) + "\n"


def with_table(readme: str) -> str:
    """The README's text with the generated table between the markers; ValueError without them."""
    start = readme.find(BEGIN)
    end = readme.find(END, start + 1)
    if start < 0 or end < 0:
        raise ValueError(f"no rule table markers: the table goes between lines '{BEGIN}' and '{END}'")
    return f"{readme[: start + len(BEGIN)]}\n{markdown_table()}{readme[end:]}"


def table_in(readme: str) -> str:
    """The table as it stands between the README's markers ('' when they are missing)."""
    start = readme.find(BEGIN)
    end = readme.find(END, start + 1)
    return readme[start + len(BEGIN) : end].lstrip("\n") if start >= 0 and end >= 0 else ""


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(markdown_table())
        return 0
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        text = path.read_text(encoding="utf-8")
        try:
            updated = with_table(text)
        except ValueError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            return 2
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            print(f"{path}: rule table regenerated", file=sys.stderr)
        return 0
    print("usage: python3 -m digestcli.lint.catalog [--write README.md]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
