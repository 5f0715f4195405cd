"""`digest render`, `digest preview` and `digest lint --rendered` as the editor runs them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import VALID_DRAFT


def test_render_writes_both_parts_and_reports_sizes(digest, sample_workspace: Path) -> None:
    result = digest("render", "drafts/2026-11-20-weekly.md")
    assert result.exit_code == 0, result.stdout + result.stderr
    html = sample_workspace / "out" / "2026-11-20-weekly.html"
    text = sample_workspace / "out" / "2026-11-20-weekly.txt"
    assert f"Wrote out/{html.name}  {html.stat().st_size / 1024:.1f} KB" in result.stdout
    assert f"Wrote out/{text.name}" in result.stdout
    assert "No findings." in result.stdout
    assert "Night trains return" in html.read_text(encoding="utf-8")
    assert "Night trains return" in text.read_text(encoding="utf-8")


def test_render_out_option(digest, write_draft, tmp_path: Path) -> None:
    path = write_draft()
    target = tmp_path / "elsewhere"
    assert digest("render", str(path), "--out", str(target)).exit_code == 0
    assert sorted(p.name for p in target.iterdir()) == ["2026-11-20-test.html", "2026-11-20-test.txt"]


def test_render_exits_1_on_a_rendered_error(digest, write_draft) -> None:
    path = write_draft(VALID_DRAFT.replace("- and another", "- and another ![](https://example.com/a.png)"))
    result = digest("render", str(path))
    assert result.exit_code == 1
    assert "image-alt" in result.stdout
    assert "drafts/2026-11-20-test.md:22:" in result.stdout, "the finding points at the draft's line"


def test_render_of_a_missing_draft_exits_2(digest, workspace) -> None:
    result = digest("render", "drafts/none.md")
    assert result.exit_code == 2 and "draft not found" in result.stderr


def test_lint_rendered_adds_the_rendered_checks(digest, write_draft) -> None:
    write_draft(VALID_DRAFT.replace("- and another", "- and another ![](https://example.com/a.png)"))
    assert digest("lint").exit_code == 0
    result = digest("lint", "--rendered")
    assert result.exit_code == 1 and "image-alt" in result.stdout


def test_preview_serves_the_draft_and_stops_cleanly_on_ctrl_c(write_draft) -> None:
    path = write_draft()
    proc = subprocess.Popen(
        [sys.executable, "-m", "digestcli", "preview", str(path), "--no-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        with urllib.request.urlopen(url.group(0) + "text", timeout=30) as response:
            assert "THE FIRST STORY" in response.read().decode("utf-8").upper()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "Stopped." in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
