"""The rendered sample against caniemail.com's support tables, through the npm package doiuse-email.

Every HTML element, attribute and CSS feature the email uses that a Gmail, Apple Mail or Outlook
client does not support at all must be accepted, with its reason, in
templates/caniemail-baseline.json; anything else fails, and so does an accepted entry the email no
longer needs (the baseline says what is true, not what once was). "Partial" support is not a
failure: caniemail marks nearly every property partial somewhere.

``.ci/run`` installs doiuse-email beside axe-core (``npm install --prefix TOOLS_CACHE``); without
node or the package these tests skip, saying which.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from browser import TOOLS_CACHE

from digestcli.config import find_workspace
from digestcli.draft import load_draft
from digestcli.render import render_issue

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-20-weekly.md"
BASELINE = ROOT / "templates" / "caniemail-baseline.json"
FAMILIES = ("gmail", "apple-mail", "outlook")
GLOBS = tuple(f"{family}.*" for family in FAMILIES)  # doiuse-email's names: FAMILY.PLATFORM
NODE = shutil.which("node")
# doiuse-email reports "`FEATURE` is not supported by `FAMILY.PLATFORM`", one line per client.
UNSUPPORTED = re.compile(r"^`(?P<feature>.+)` is not supported by `(?P<client>[a-z-]+\.[a-z-]+)`$")
CHECK = """
const { doIUseEmail } = require('doiuse-email');
let html = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { html += chunk; });
process.stdin.on('end', () => {
  const result = doIUseEmail(html, { emailClients: JSON.parse(process.argv[1]) });
  process.stdout.write(JSON.stringify({ errors: result.errors || [], warnings: result.warnings || [] }));
});
"""


@functools.cache
def node_modules() -> Path | None:
    """The node_modules folder holding doiuse-email: the ``.ci/run`` cache, else npm's global one."""
    cache = TOOLS_CACHE / "node_modules"
    if (cache / "doiuse-email" / "package.json").is_file():
        return cache
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run(
                [npm, "root", "-g"], capture_output=True, text=True, timeout=20, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = ""
        if root and (Path(root) / "doiuse-email" / "package.json").is_file():
            return Path(root)
    return None


def _missing() -> str | None:
    if NODE is None:
        return "node is not installed (apt-get install nodejs npm; .ci/run does)"
    if node_modules() is None:
        return (
            f"doiuse-email is not installed: run npm install --prefix "
            f'"{TOOLS_CACHE}" doiuse-email@0.4.1 (.ci/run does)'
        )
    return None


needs_doiuse = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def doiuse(html: str, clients: tuple[str, ...] = GLOBS) -> dict[str, Any]:
    """doiuse-email's verdict on ``html`` for ``clients`` (its globs): ``errors`` and ``warnings``."""
    assert NODE is not None
    env = {**os.environ, "NODE_PATH": str(node_modules())}
    try:
        result = subprocess.run(
            [NODE, "-e", CHECK, json.dumps(list(clients))],
            input=html, capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError("doiuse-email did not finish in 60 s") from timeout
    assert result.returncode == 0, f"doiuse-email failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return json.loads(result.stdout)


def unsupported(verdict: dict[str, Any]) -> set[tuple[str, str]]:
    """The (feature, client) pairs doiuse-email says are not supported at all."""
    pairs = set()
    for message in verdict["errors"]:
        found = UNSUPPORTED.match(message)
        assert found, f"doiuse-email said something this test cannot read: {message!r}"
        pairs.add((found["feature"], found["client"]))
    return pairs


def accepted() -> dict[str, dict[str, Any]]:
    return json.loads(BASELINE.read_text(encoding="utf-8"))["accepted"]


def checker() -> str:
    """The doiuse-email found, as the baseline names the one it was made with."""
    modules = node_modules()
    assert modules is not None
    version = json.loads((modules / "doiuse-email" / "package.json").read_text(encoding="utf-8"))["version"]
    made_with = json.loads(BASELINE.read_text(encoding="utf-8"))["checker"]
    found = f"doiuse-email {version}"
    return found if found == made_with else f"{found} (the baseline was made with {made_with})"


@pytest.fixture(scope="module")
def sample_html() -> str:
    return render_issue(load_draft(SAMPLE), find_workspace(ROOT)).html


@needs_doiuse
def test_the_sample_uses_nothing_gmail_apple_mail_or_outlook_lacks_beyond_the_baseline(sample_html):
    found = unsupported(doiuse(sample_html))
    allowed = {(feature, client) for feature, entry in accepted().items() for client in entry["clients"]}
    new = sorted(found - allowed)
    gone = sorted(allowed - found)
    assert not new, (
        f"{checker()}: the email uses what these clients do not support (caniemail.com): "
        + "; ".join(f"{feature} in {client}" for feature, client in new)
        + f". Do without it, or accept it with a reason in {BASELINE.relative_to(ROOT)}"
    )
    assert not gone, (
        f"{checker()}: {BASELINE.relative_to(ROOT)} accepts what the email no longer needs: "
        + "; ".join(f"{feature} in {client}" for feature, client in gone)
        + ". Remove it there."
    )


def test_every_accepted_feature_says_why_and_names_only_those_clients():
    entries = accepted()
    assert entries
    for feature, entry in entries.items():
        assert len(entry["reason"].split()) >= 8, f"{feature}: say why it is accepted"
        assert entry["clients"] == sorted(set(entry["clients"])), f"{feature}: clients sorted, once each"
        for client in entry["clients"]:
            assert client.split(".")[0] in FAMILIES, f"{feature}: {client} is not a checked client"
    assert json.loads(BASELINE.read_text(encoding="utf-8"))["clients"] == list(GLOBS)


@needs_doiuse
def test_the_check_can_fail():
    # visibility, which Gmail drops, is what the preheader used to be hidden with.
    page = '<!DOCTYPE html><html><body><div style="visibility:hidden">x</div></body></html>'
    assert ("visibility", "gmail.desktop-webmail") in unsupported(doiuse(page))
    assert not unsupported(doiuse("<!DOCTYPE html><html><body><p>x</p></body></html>", ("apple-mail.*",)))
