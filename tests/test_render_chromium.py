"""The sample issue in a real browser engine: headless Chromium at phone and desktop widths.

Skipped when Chromium is not installed. Screenshots land in pytest's tmp_path (kept for the last
few runs under the system temp folder), never in the repository.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from digestcli.config import Config, NewsletterConfig, Workspace
from digestcli.draft import load_draft
from digestcli.render import render_issue

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-20-weekly.md"
CHROMIUM = next(
    (
        found
        for found in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
        if found and Path(found).exists()
    ),
    None,
)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(tmp_path: Path, width: int, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
        f"--window-size={width},3000", *args,
    ]  # fmt: skip
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish in 60 s")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def measuring_page(email_html: str, width: int, dark: bool = False) -> str:
    """A test-only page holding the email in a frame of exactly ``width`` pixels, that writes the
    email's scroll size (and the card's colour) into its own DOM for --dump-dom to show.

    A frame rather than the window: headless Chromium will not lay a window out narrower than
    500 px, so a 375 px window is not a 375 px viewport for scripts.
    """
    script = """
    document.getElementById("email").addEventListener("load", function () {
      var doc = this.contentDocument, root = doc.documentElement;
      var card = doc.querySelector(".card"), column = doc.querySelector(".container");
      document.body.setAttribute("data-measured", [root.scrollWidth, root.scrollHeight,
        Math.round(column.getBoundingClientRect().width), getComputedStyle(card).backgroundColor].join("|"));
    });"""
    return (
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe id="email" style="border:0;width:{width}px;height:2000px" '
        f'srcdoc="{html.escape(email_html, quote=True)}"></iframe>'
        f"<script>{script}</script></body></html>"
    )


def measure(tmp_path: Path, email_html: str, width: int, *flags: str) -> dict[str, int | str]:
    page = tmp_path / f"measure-{width}.html"
    page.write_text(measuring_page(email_html, width), encoding="utf-8")
    result = chromium(
        tmp_path, max(width, 800), "--virtual-time-budget=5000", *flags, "--dump-dom", page.as_uri()
    )
    found = re.search(r'data-measured="(\d+)\|(\d+)\|(\d+)\|([^"]*)"', result.stdout)
    assert found, f"chromium did not measure the page:\n{result.stderr[-2000:]}"
    width, height, column = (int(found.group(n)) for n in (1, 2, 3))
    return {"width": width, "height": height, "column": column, "card": found.group(4)}


@pytest.fixture(scope="module")
def email_html() -> str:
    workspace = Workspace(ROOT, Config(newsletter=NewsletterConfig(title="The Lantern Weekly")))
    return render_issue(load_draft(SAMPLE), workspace).html


@pytest.fixture(scope="module")
def phone(tmp_path_factory, email_html) -> dict[str, int | str]:
    return measure(tmp_path_factory.mktemp("phone"), email_html, 375)


@pytest.fixture(scope="module")
def desktop(tmp_path_factory, email_html) -> dict[str, int | str]:
    return measure(tmp_path_factory.mktemp("desktop"), email_html, 800)


def test_no_horizontal_scroll_on_a_phone_and_a_sane_height(phone):
    assert phone["width"] <= 375, (
        f"the email is {phone['width']}px wide in 375px: readers would scroll sideways"
    )
    assert phone["column"] <= 375
    assert 3000 < phone["height"] < 12000, phone  # twelve stories: long, but not one word per line
    assert phone["card"] == "rgb(255, 255, 255)"


def test_desktop_is_no_wider_than_the_window_and_shorter_than_phone(desktop, phone):
    assert desktop["width"] <= 800 and desktop["column"] == 600
    assert 2000 < desktop["height"] < phone["height"]  # the 600px column needs fewer lines than a phone's


def test_a_wide_element_would_be_caught(tmp_path, email_html):
    # The measurement itself must be able to fail: a 500px block in the email overflows 375px.
    wide = email_html.replace("</body>", '<div style="width:500px">wide</div></body>')
    assert measure(tmp_path, wide, 375)["width"] >= 500


def test_dark_mode_media_query_applies(tmp_path, email_html):
    dark = measure(tmp_path, email_html, 375, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
    assert dark["card"] == "rgb(33, 30, 25)"  # .card's colour in the template's dark palette


@pytest.mark.parametrize("width", [375, 800])
def test_screenshots(tmp_path, email_html, width):
    email = tmp_path / "email.html"
    email.write_text(email_html, encoding="utf-8")
    shot = tmp_path / f"sample-{width}.png"
    chromium(tmp_path, width, f"--screenshot={shot}", email.as_uri())
    assert shot.exists(), "chromium wrote no screenshot"
    assert png_size(shot) == (width, 3000)
    assert shot.stat().st_size > 20_000  # a blank page compresses to almost nothing
