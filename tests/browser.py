"""Test support: look at static HTML pages (the web edition's site folder) in headless Chromium.

* ``screenshot(page, width, out)`` takes a PNG of the page laid out ``width`` CSS pixels wide and
  returns the page's own ``(scrollWidth, scrollHeight)``, so a test can assert there is no sideways
  scroll (``scroll_width <= width``).
* ``axe_violations(page)`` runs axe-core on the page and returns its violations.
* ``find_axe()`` says where ``axe.min.js`` is (``.ci/run`` installs it into ``AXE_CACHE``).

No browser driver: every call starts ``chromium --headless`` (about a second each) with its own
throw-away profile, so calls are safe in parallel (pytest-xdist). Pages are loaded from where they
are, by their file:// address, so relative links, images and stylesheets resolve as on the site.

The page is always laid out inside an iframe of exactly ``width`` pixels: headless Chromium will
not make a window narrower than 500 px, so a 375 px window is not a 375 px viewport.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

CHROMIUM: str | None = next(
    (
        found
        for found in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
        if found and Path(found).exists()
    ),
    None,
)
#: Where ``.ci/run`` installs the npm test tools (``npm install --prefix``).
TOOLS_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digest-test-tools"
AXE_CACHE = TOOLS_CACHE / "node_modules" / "axe-core" / "axe.min.js"

#: Viewport height the page is measured in (its scrollHeight is never less than this).
VIEWPORT_HEIGHT = 800
#: Screenshots stop here, however long the page is.
MAX_SHOT_HEIGHT = 12_000
TIMEOUT = 60  # seconds for one Chromium run

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@functools.cache
def find_axe() -> Path | None:
    """``axe.min.js``: ``$DIGEST_AXE`` if set, else the ``.ci/run`` cache, else the global npm root."""
    if os.environ.get("DIGEST_AXE"):
        return Path(os.environ["DIGEST_AXE"])  # explicit: axe_violations() says so if it is missing
    if AXE_CACHE.is_file():
        return AXE_CACHE
    npm = shutil.which("npm")
    if npm:
        try:
            root = subprocess.run(
                [npm, "root", "-g"], capture_output=True, text=True, timeout=20, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            root = ""
        if root and (Path(root) / "axe-core" / "axe.min.js").is_file():
            return Path(root) / "axe-core" / "axe.min.js"
    return None


AXE_MISSING = (
    f"axe-core is not installed: set DIGEST_AXE to axe.min.js, or run "
    f'npm install --prefix "{TOOLS_CACHE}" axe-core@4 (.ci/run does)'
)


#: Skips a test when Chromium or axe-core is missing, saying which and how to install axe.
needs_axe = needs_chromium if CHROMIUM is None else pytest.mark.skipif(find_axe() is None, reason=AXE_MISSING)


def _chromium(profile: Path, width: int, height: int, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--window-size={width},{height}", *args,
    ]  # fmt: skip
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError(f"chromium did not finish in {TIMEOUT} s: {' '.join(command)}") from timeout


def _stderr(result: subprocess.CompletedProcess[str]) -> str:
    return f"chromium exited {result.returncode}; its stderr ends:\n{result.stderr[-3000:]}"


def _page(html_path: Path) -> Path:
    page = Path(html_path).resolve()
    assert page.is_file(), f"no such page: {page}"
    return page


def _frame_page(src: str, width: int, height: int, script: str = "") -> str:
    """A page holding ``src`` in a borderless iframe of exactly width x height at its top left."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        f'<iframe id="page" style="display:block;border:0;width:{width}px;height:{height}px" '
        f'src="{html.escape(src, quote=True)}"></iframe><script>{script}</script></body></html>'
    )


_MEASURE = """
document.getElementById("page").addEventListener("load", function () {
  var frame = this;
  function measure() {
    var root = frame.contentDocument && frame.contentDocument.documentElement;
    document.body.setAttribute("data-measured", root ? root.scrollWidth + "x" + root.scrollHeight : "none");
  }
  var fonts = frame.contentDocument && frame.contentDocument.fonts;
  (fonts ? fonts.ready : Promise.resolve()).then(function () { setTimeout(measure, 50); });
});"""


def measure(html_path: Path, width: int) -> tuple[int, int]:
    """The page's ``(scrollWidth, scrollHeight)`` in a ``width`` x ``VIEWPORT_HEIGHT`` viewport."""
    page = _page(html_path)
    with tempfile.TemporaryDirectory(prefix="digest-browser-") as temp:
        wrapper = Path(temp) / "measure.html"
        wrapper.write_text(_frame_page(page.as_uri(), width, VIEWPORT_HEIGHT, _MEASURE), encoding="utf-8")
        result = _chromium(
            Path(temp) / "profile", max(width, 800), VIEWPORT_HEIGHT + 200,
            "--allow-file-access-from-files",  # the wrapper reads the framed file:// page's DOM
            "--virtual-time-budget=5000", "--dump-dom", wrapper.as_uri(),
        )  # fmt: skip
    found = re.search(r'data-measured="(\d+)x(\d+)"', result.stdout)
    assert found, f"chromium did not measure {page}:\n{_stderr(result)}"
    return int(found.group(1)), int(found.group(2))


def screenshot(html_path: Path, width: int, out: Path) -> tuple[int, int]:
    """A PNG of the whole page (up to ``MAX_SHOT_HEIGHT``) laid out ``width`` pixels wide, written
    to ``out``; returns the page's ``(scroll_width, scroll_height)`` measured in the page itself."""
    page = _page(html_path)
    scroll_width, scroll_height = measure(page, width)
    height = min(scroll_height, MAX_SHOT_HEIGHT)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="digest-browser-") as temp:
        wrapper = Path(temp) / "shot.html"
        wrapper.write_text(_frame_page(page.as_uri(), width, height), encoding="utf-8")
        result = _chromium(
            Path(temp) / "profile", width, height,
            "--virtual-time-budget=5000", f"--screenshot={out}", wrapper.as_uri(),
        )  # fmt: skip
    assert out.is_file(), f"chromium wrote no screenshot of {page}:\n{_stderr(result)}"
    return scroll_width, scroll_height


_RUN_AXE = """
window.addEventListener("load", function () {
  function report(text) {
    var pre = document.createElement("pre");
    pre.id = "axe-result";
    pre.textContent = text;
    document.body.appendChild(pre);
  }
  axe.run(document, {resultTypes: ["violations"]}).then(function (result) {
    report(JSON.stringify(result.violations.map(function (v) {
      return {id: v.id, impact: v.impact, description: v.description, help: v.help,
              helpUrl: v.helpUrl, nodes: v.nodes.length,
              targets: v.nodes.map(function (n) { return String(n.target); })};
    })));
  }, function (error) { report(JSON.stringify({error: String(error)})); });
});"""


def _insert_in_head(text: str, snippet: str) -> str:
    """``snippet`` as early in the document's head as it can go without losing the doctype."""
    for pattern in (r"<head\b[^>]*>", r"<html\b[^>]*>", r"<!doctype[^>]*>"):
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return text[: found.end()] + snippet + text[found.end() :]
    return snippet + text


def _insert_at_end(text: str, snippet: str) -> str:
    ends = [found.start() for found in re.finditer(r"</body\s*>", text, re.IGNORECASE)]
    return text[: ends[-1]] + snippet + text[ends[-1] :] if ends else text + snippet


@functools.cache
def _axe_source(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def axe_violations(html_path: Path) -> list[dict[str, Any]]:
    """axe-core's violations on the page: dicts with ``id``, ``impact`` (``minor`` .. ``critical``),
    ``description``, ``help``, ``helpUrl``, ``nodes`` (how many elements) and ``targets`` (their
    selectors). Skips when axe-core is not installed; fails when Chromium brings back no result.

    axe runs in a copy of the page (in a temporary folder) with axe inlined; a ``<base href>``
    pointing at the page's real location keeps its relative links, images and styles resolving.
    """
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    axe = find_axe()
    if axe is None:
        pytest.skip(AXE_MISSING)
    assert axe.is_file(), f"axe.min.js is not at {axe} (DIGEST_AXE={os.environ.get('DIGEST_AXE')!r})"
    page = _page(html_path)
    text = page.read_text(encoding="utf-8")
    base = page.as_uri()
    own_base = re.search(r"""<base\b[^>]*\bhref\s*=\s*["']?([^"'\s>]+)""", text, re.IGNORECASE)
    if own_base:  # the first <base href> wins: ours, so it must say what the page's own would
        base = urljoin(base, html.unescape(own_base.group(1)))
    text = _insert_in_head(text, f'<base href="{html.escape(base, quote=True)}">')
    text = _insert_at_end(text, f"<script>{_axe_source(axe)}</script><script>{_RUN_AXE}</script>")
    with tempfile.TemporaryDirectory(prefix="digest-axe-") as temp:
        copy = Path(temp) / "page.html"
        copy.write_text(text, encoding="utf-8")
        result = _chromium(
            Path(temp) / "profile", 1280, 1000, "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()
        )
    found = re.findall(r'<pre id="axe-result">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"axe brought back no result for {page}:\n{_stderr(result)}"
    violations = json.loads(html.unescape(found[-1]))
    assert isinstance(violations, list), f"axe failed on {page}: {violations}"
    return violations


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The violations axe rates ``serious`` or ``critical``."""
    return [violation for violation in violations if violation["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation, for assertion messages."""
    return "\n".join(
        f"{v['impact']}: {v['id']} ({v['nodes']} elements: {', '.join(v['targets'][:3])}) {v['help']}"
        for v in violations
    )
