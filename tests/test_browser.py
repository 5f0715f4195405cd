"""The browser harness (tests/browser.py) measures, photographs and audits pages, and can fail.

About six Chromium starts of a second or so each; skipped without Chromium (axe tests without axe).
"""

from __future__ import annotations

import struct
import textwrap
import zlib
from pathlib import Path

import pytest
from browser import (
    AXE_CACHE,
    axe_violations,
    describe,
    find_axe,
    measure,
    needs_axe,
    needs_chromium,
    screenshot,
    serious,
)


def png(width: int, height: int, rgb: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """A solid-colour PNG, so a page's image has a known natural size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\x00" + bytes(rgb) * width) * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def site(tmp_path: Path, body: str, head: str = "", lang: str = ' lang="en"') -> Path:
    """A site folder (index.html, tall.png) with one ``slug/index.html`` page; returns that page."""
    root = tmp_path / "site"
    (root / "slug").mkdir(parents=True)
    (root / "index.html").write_text('<!DOCTYPE html><html lang="en"><title>Home</title></html>')
    (root / "tall.png").write_bytes(png(300, 1500))
    page = root / "slug" / "index.html"
    page.write_text(
        f"<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset='utf-8'>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}\n</head>\n<body>\n{textwrap.dedent(body)}\n</body>\n</html>\n",
        encoding="utf-8",
    )
    return page


@needs_chromium
def test_screenshot_of_a_narrow_page_from_its_real_location(tmp_path):
    # tall.png is 300 x 1500 and sits one folder up: only if ../tall.png resolves is the page this tall.
    page = site(tmp_path, '<main><h1>Narrow</h1><img src="../tall.png" alt="A blue block"></main>')
    shot = tmp_path / "shots" / "narrow-375.png"
    scroll_width, scroll_height = screenshot(page, 375, shot)
    assert scroll_width <= 375
    assert 1500 < scroll_height < 2000, scroll_height
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert struct.unpack(">II", data[16:24]) == (375, scroll_height)  # the whole page, 375 wide


@needs_chromium
def test_a_wide_fixed_width_element_overflows_a_phone(tmp_path):
    page = site(tmp_path, '<main><h1>Wide</h1><div style="width:600px">a fixed-width table</div></main>')
    scroll_width, _ = measure(page, 375)
    assert scroll_width >= 600 > 375  # a reader would scroll sideways, and the harness sees it
    assert measure(page, 800)[0] <= 800


FAULTY = """\
<img src="../tall.png">
<img src="../tall.png">
<form><input type="text" name="email"></form>
"""

CLEAN = """\
<header><p>The Lantern Weekly</p></header>
<main>
  <h1>Issue 7</h1>
  <h2>The first story</h2>
  <p>Read <a href="../index.html">all issues</a>.</p>
  <img src="../tall.png" alt="A blue block" width="300" height="1500">
  <form><label for="email">Your email</label> <input id="email" type="email" name="email"></form>
</main>
<footer><p>Sent with digest.</p></footer>
"""


@needs_axe
def test_axe_finds_known_faults_with_their_impacts(tmp_path):
    violations = {v["id"]: v for v in axe_violations(site(tmp_path, FAULTY, lang=""))}
    assert {"image-alt", "label", "html-has-lang"} <= violations.keys(), describe(list(violations.values()))
    assert violations["image-alt"]["impact"] == "critical"
    assert violations["image-alt"]["nodes"] == 2
    assert violations["label"]["impact"] == "critical"
    assert violations["label"]["nodes"] == 1
    assert violations["html-has-lang"]["impact"] == "serious"
    assert all(v["description"] for v in violations.values())


@needs_axe
def test_axe_passes_a_clean_page(tmp_path):
    violations = axe_violations(site(tmp_path, CLEAN, head="<title>Issue 7 — The Lantern Weekly</title>"))
    assert serious(violations) == [], describe(violations)


@needs_chromium
def test_axe_fails_loudly_when_no_result_comes_back(tmp_path, monkeypatch):
    broken = tmp_path / "axe.min.js"
    broken.write_text("/* not axe: window.axe is never defined */")
    monkeypatch.setenv("DIGEST_AXE", str(broken))
    find_axe.cache_clear()
    try:
        with pytest.raises(AssertionError, match=r"axe brought back no result(.|\n)*stderr"):
            axe_violations(site(tmp_path, CLEAN))
    finally:
        find_axe.cache_clear()


def test_find_axe_prefers_digest_axe_then_the_ci_cache(tmp_path, monkeypatch):
    find_axe.cache_clear()
    try:
        monkeypatch.setenv("DIGEST_AXE", str(tmp_path / "missing.js"))
        assert find_axe() == tmp_path / "missing.js"
        find_axe.cache_clear()
        with pytest.raises(AssertionError, match=r"axe\.min\.js is not at"):
            axe_violations(site(tmp_path, CLEAN))
        monkeypatch.delenv("DIGEST_AXE")
        find_axe.cache_clear()
        if AXE_CACHE.is_file():
            assert find_axe() == AXE_CACHE
        else:
            assert find_axe() is None or find_axe().name == "axe.min.js"
    finally:
        find_axe.cache_clear()
