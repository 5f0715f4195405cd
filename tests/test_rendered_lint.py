"""Lint rules on the rendered email: html-size, image-alt, template-syntax, text-missing-link."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from digestcli.config import Config, LintConfig, NewsletterConfig, Workspace
from digestcli.draft import load_draft, parse_draft
from digestcli.lint import Finding, all_rules
from digestcli.lint.rendered import CLIP_BYTES, WARN_BYTES, check_rendered
from digestcli.render import RenderedIssue, render_issue

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-20-weekly.md"
LINT = LintConfig()


@pytest.fixture(scope="module")
def rendered() -> RenderedIssue:
    workspace = Workspace(ROOT, Config(newsletter=NewsletterConfig(title="The Lantern Weekly")))
    return render_issue(load_draft(SAMPLE), workspace)


def rules(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


def test_rule_names_and_light_import():
    rendered_rules = {name: spec.summary for name, spec in all_rules().items() if spec.rendered}
    assert set(rendered_rules) == {"html-size", "image-alt", "template-syntax", "text-missing-link"}
    assert all(isinstance(s, str) and s and "\n" not in s for s in rendered_rules.values())
    # `digest lint` reads the rule names on every run: that must not pull in the renderer.
    probe = (
        "import sys, digestcli.lint as l; assert any(r.rendered for r in l.all_rules().values()); "
        "print(sorted(m for m in ('jinja2', 'premailer', 'lxml', 'digestcli.render') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sample_issue_is_clean(rendered):
    assert check_rendered(rendered, str(SAMPLE), LINT) == []


def test_html_size_thresholds(rendered):
    def padded(total: int) -> RenderedIssue:
        filler = "x" * (total - len(rendered.html.encode("utf-8")))
        return dataclasses.replace(rendered, html=rendered.html.replace("</body>", f"<p>{filler}</p></body>"))

    assert check_rendered(padded(WARN_BYTES - 100), "d.md", LINT) == []
    warn = check_rendered(padded(WARN_BYTES + 100), "d.md", LINT)
    assert [(f.rule, f.severity, f.line) for f in warn] == [("html-size", "warning", 1)]
    clip = check_rendered(padded(CLIP_BYTES + 100), "d.md", LINT)
    assert [(f.rule, f.severity) for f in clip] == [("html-size", "error")]
    assert "102 KB" in clip[0].message and "Gmail" in clip[0].message
    # UTF-8 bytes, not characters: 40,000 Korean syllables are 120,000 bytes.
    korean = dataclasses.replace(
        rendered, html=rendered.html.replace("</body>", "<p>" + "가" * 40000 + "</p></body>")
    )
    assert rules(check_rendered(korean, "d.md", LINT)) == ["html-size"]


def test_rule_settings_are_respected(rendered):
    big = dataclasses.replace(rendered, html=rendered.html + "x" * CLIP_BYTES)
    assert check_rendered(big, "d.md", LintConfig(rules={"html-size": "off"})) == []
    [finding] = check_rendered(big, "d.md", LintConfig(rules={"html-size": "warning"}))
    assert finding.severity == "warning"
    near = dataclasses.replace(rendered, html=rendered.html + "x" * (WARN_BYTES - len(rendered.html) + 10))
    [finding] = check_rendered(near, "d.md", LintConfig(rules={"html-size": "error"}))
    assert finding.severity == "error"


def test_image_alt(tmp_path):
    draft = "---\ntitle: T\nsubject: S\ndate: 2026-01-01\n---\n\nHello.\n\n## 1. One\n\n![](https://example.com/a.png)\n"
    issue = parse_draft(draft, tmp_path / "d.md")
    out = render_issue(issue, Workspace(tmp_path, Config()))
    [finding] = check_rendered(out, "d.md", LINT, source=issue.lines)
    assert (finding.rule, finding.severity, finding.line) == ("image-alt", "error", 11)
    assert "https://example.com/a.png" in finding.message
    decorative = out.html.replace('alt=""', 'alt="" role="presentation"')
    assert check_rendered(dataclasses.replace(out, html=decorative), "d.md", LINT) == []


def test_template_syntax_left_in_either_part(rendered):
    assert check_rendered(rendered, "d.md", LINT) == []  # slots alone are fine
    html = rendered.html.replace("</body>", "<p>{{ issue.titel }}</p></body>")
    text = rendered.text + "{% if reader %}x{% endif %}\n{# note #}\n"
    found = check_rendered(dataclasses.replace(rendered, html=html, text=text), "d.md", LINT)
    messages = [f.message for f in found if f.rule == "template-syntax"]
    assert len(messages) == 4
    assert any("'{{ issue.titel }}' left in the HTML part" in m for m in messages)
    assert any("'{% if reader %}' left in the text part" in m for m in messages)
    assert any("'{# note #}'" in m for m in messages)
    bad_slot = dataclasses.replace(rendered, subject="Hi {{ reader.first-name }}")
    assert rules(check_rendered(bad_slot, "d.md", LINT)) == ["template-syntax"]


def test_template_syntax_from_the_draft_names_its_line(tmp_path):
    draft = "---\ntitle: T\nsubject: S\ndate: 2026-01-01\n---\n\nHello {{ name }}.\n\n## 1. One\n\nBody.\n"
    issue = parse_draft(draft, tmp_path / "d.md")
    out = render_issue(issue, Workspace(tmp_path, Config()))
    found = check_rendered(out, "d.md", LINT, source=issue.lines)
    assert {(f.rule, f.line) for f in found} == {("template-syntax", 7)}
    assert len(found) == 2  # once for each part


def test_text_missing_link(rendered):
    url = "https://example.com/utility/bill-guide"
    assert url in rendered.text
    broken = dataclasses.replace(rendered, text=rendered.text.replace(url, "https://example.com/elsewhere"))
    lines = load_draft(SAMPLE).lines
    [finding] = check_rendered(broken, "d.md", LINT, source=lines)
    assert (finding.rule, finding.severity) == ("text-missing-link", "warning")
    assert url in finding.message
    assert url in lines[finding.line - 1]  # the draft line with the link
    no_unsubscribe = dataclasses.replace(
        rendered, text=rendered.text.replace("{{ reader.unsubscribe_url }}", "")
    )
    assert rules(check_rendered(no_unsubscribe, "d.md", LINT)) == ["text-missing-link"]
