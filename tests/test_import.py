"""`digest import`: each paste in tests/fixtures/pastes/ gives the draft and the list of lines left
out that tests/golden/import/ holds, and a draft that `digest lint` faults for the paste's real
problems only; bad input exits 1 or 2 with one line, and nothing is ever written over.

After a deliberate change to the importer, regenerate the golden files with

    DIGEST_REGENERATE=1 pytest tests/test_import.py

and read the diff (``git diff tests/golden/import``) before committing it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import lxml.html
import pytest
from typer.testing import CliRunner

from digestcli.cli import app
from digestcli.draft import load_draft, parse_draft

HERE = Path(__file__).resolve().parent
PASTES = HERE / "fixtures" / "pastes"
GOLDEN = HERE / "golden" / "import"
REGENERATE = os.environ.get("DIGEST_REGENERATE") == "1"

# The house word list of the newsletters the pastes come from: names the dictionary lacks, the
# greetings of a bilingual digest, and the "pre" of "pre-orders" (which the spelling check reads
# as a word of its own).
WORDS = "Maersk\nBonjour\nguten\nMerci\ndanke\nHuawei\npre\n"


@dataclass(frozen=True)
class Case:
    paste: str
    title: str | None  # [newsletter] title in digest.toml; None: not set, the paste's title line
    rules: frozenset[str]  # what `digest lint` must find in the draft, and nothing else
    stories: int = 12


CASES = {
    "wix-blank-runs": Case("wix-blank-runs.txt", "Harbour Notes", frozenset({"link-text"})),
    "substack-one-per-line": Case("substack-one-per-line.txt", "Tidewater Dispatch", frozenset()),
    # Story 6 is missing from the paste: lint reports the gap, the import does not renumber.
    "bilingual-chrome": Case(
        "bilingual-chrome.txt", "Lake & Ledger", frozenset({"item-numbering", "link-text"})
    ),
    "google-doc": Case("google-doc.txt", None, frozenset({"link-text"})),
    "saved-post-html": Case("saved-post.html", "Harbour Notes", frozenset({"link-text"})),
    # Numbered lists inside stories (apart by blank lines, each entry with a paragraph), a headline
    # with a full stop, sentences that start like chrome ("Updated on", "More from", "Powered by").
    "wordpress-lists": Case("wordpress-lists.txt", "Pocket Signals", frozenset({"link-text"}), 8),
    # One paragraph a line: a list whose last entry is right above the next story's headline.
    "substack-list-then-story": Case(
        "substack-list-then-story.txt", "Pocket Signals", frozenset({"link-text"}), 5
    ),
    # An embedded post, a correction note and a table that a reader view drops; the title and the
    # byline inside <article>, above the post's text.
    "saved-post-extras-html": Case("saved-post-extras.html", "Pocket Signals", frozenset({"link-text"}), 4),
}


def _workspace(root: Path, title: str | None) -> Path:
    (root / "drafts").mkdir(parents=True)
    settings = '[newsletter]\nlanguage = "en"\n' + (f'title = "{title}"\n' if title else "")
    (root / "digest.toml").write_text(settings, encoding="utf-8")
    (root / "words.txt").write_text(WORDS, encoding="utf-8")
    return root


def _run(*args: str, input: bytes | str | None = None) -> tuple[int, str, str]:
    env = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    result = CliRunner().invoke(app, list(args), input=input, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _compare(golden: Path, actual: str) -> None:
    if REGENERATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8", newline="\n")
        return
    assert golden.exists(), f"{golden.name} is missing: DIGEST_REGENERATE=1 pytest tests/test_import.py"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), "golden", "now"
        )
        pytest.fail(
            "".join(diff) + f"\nIf intended: DIGEST_REGENERATE=1 pytest {Path(__file__).name}", pytrace=False
        )


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_DEBUG", raising=False)
    return tmp_path


@pytest.mark.parametrize("name", sorted(CASES))
def test_paste_gives_its_golden_draft_and_lint_finds_only_its_real_problems(name: str, here: Path) -> None:
    case = CASES[name]
    ws = _workspace(here / "ws", case.title)
    shutil.copy(PASTES / case.paste, ws / case.paste)
    os.chdir(ws)

    code, out, err = _run("import", case.paste)
    assert code == 0, err
    drafts = sorted((ws / "drafts").glob("*.md"))
    assert len(drafts) == 1
    draft = drafts[0]
    assert out.startswith(f"Created drafts/{draft.name} ({case.stories} stories, issue ")
    _compare(GOLDEN / f"{name}.md", draft.read_text(encoding="utf-8"))
    # What was left out, line by line, as the command printed it.
    _compare(GOLDEN / f"{name}.out", out)

    code, out, err = _run("lint", str(draft), "--format", "json")
    findings = json.loads(out)
    assert {f["rule"] for f in findings} == case.rules, findings
    assert code == (1 if any(f["severity"] == "error" for f in findings) else 0)
    if "link-text" in case.rules:  # the lost (or empty) "click here" link, found at its line
        lines = draft.read_text(encoding="utf-8").splitlines()
        [at] = [n for n, line in enumerate(lines, 1) if "click here" in line]
        assert [f["line"] for f in findings if f["rule"] == "link-text"] == [at]

    code, out, err = _run("render", str(draft))
    assert code == 0, err + out


def test_the_golden_drafts_have_the_pastes_shape() -> None:
    """What the golden files say, checked apart from them: a regenerated golden that lost a story,
    the greeting or the wrap-up fails here."""
    for name, case in CASES.items():
        issue = load_draft(GOLDEN / f"{name}.md")
        numbers = [item.number for item in issue.items]
        assert len(numbers) == case.stories and issue.wrapup is not None and not issue.intro.is_empty, name
        assert issue.subject and issue.preheader and issue.date is not None, name
        assert all(not item.body.is_empty for item in issue.items), name
    bilingual = load_draft(GOLDEN / "bilingual-chrome.md")
    assert [item.number for item in bilingual.items] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]
    for name in ("wordpress-lists", "substack-list-then-story", "saved-post-extras-html"):
        issue = load_draft(GOLDEN / f"{name}.md")
        assert [item.number for item in issue.items] == list(range(1, CASES[name].stories + 1)), name


def test_removed_lines_are_listed_with_their_line_in_the_paste(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    shutil.copy(PASTES / "wix-blank-runs.txt", ws / "paste.txt")
    os.chdir(ws)
    code, out, _ = _run("import", "paste.txt")
    assert code == 0
    source = (ws / "paste.txt").read_text(encoding="utf-8").splitlines()
    listed = [line for line in out.splitlines() if line.startswith("  paste.txt:")]
    assert len(listed) == 20
    for entry in listed:
        where, _label, text = entry.strip().split(": ", 2)
        number = int(where.split(":")[1])
        assert source[number - 1].strip() == text, entry
    draft = next((ws / "drafts").glob("*.md")).read_text(encoding="utf-8")
    for entry in listed:  # none of them is in the draft, and every other line of the paste is
        assert entry.split(": ", 2)[2] not in draft.replace("## ", "")
    removed = {int(e.strip().split(":")[1]) for e in listed}
    for number, line in enumerate(source, 1):
        if line.strip() and number not in removed:
            assert line.strip() in draft, f"line {number} went missing: {line!r}"


def test_html_keeps_links_emphasis_images_and_lists(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    code, out, err = _run("import", str(PASTES / "saved-post.html"), "--stdout")
    assert code == 0, err
    assert "[annual supplier report](https://harbour.example.org/sources/apple-suppliers)" in out
    assert "*on the device*" in out and "**6,500 visitors**" in out
    assert "![Four container cranes on a quay at dusk, booms raised](" in out
    assert "- wind power from the Dutch coast in summer," in out
    assert "1. Carriers added 40 new ships" in out
    # the page around the article: its menu, its other posts, its footer
    for chrome in ("Archive", "You might also like", "Powered by Ghost", "Harbour Notes #16"):
        assert chrome not in out
    assert not list((ws / "drafts").glob("*.md")), "--stdout writes nothing"
    assert out.startswith("---\nid: harbour-notes-18\n") and "Left out 5 lines" in err  # report: stderr
    assert "date: 2026-11-27" in out  # from the page's metadata and its date line


def test_clipboard_html_from_standard_input(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    fragment = (
        "<meta charset='utf-8'><p>Hello, readers. Two stories this week.</p>"
        "<p><b>1. Cranes Arrive in Rotterdam</b></p><p>They came by sea, <a href='https://x.example/c'>"
        "already built</a>.</p><p><b>2. A Cable Under the Sea</b></p><p>It is long.</p>"
        "<p>Wrapping Up</p><p>See you next week.</p>"
    )
    code, out, err = _run("import", "-", "--date", "2026-12-04", "--stdout", input=fragment.encode())
    assert code == 0, err
    assert "## 1. Cranes Arrive in Rotterdam" in out and "## 2. A Cable Under the Sea" in out
    assert "[already built](https://x.example/c)" in out and "## Wrapping Up" in out
    assert "date: 2026-12-04" in out


_CAFE = "<p>Bonjour à tous.</p><h2>1. Café Prices Rise</h2><p>By 5%.</p><h2>Wrapping Up</h2><p>À bientôt.</p>"
_XHTML = '<html xmlns="http://www.w3.org/1999/xhtml"><body>{}</body></html>'


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "page.html",
            f'<html><head><meta charset="windows-1252"></head><body>{_CAFE}</body></html>'.encode("cp1252"),
            ("## 1. Café Prices Rise", "Bonjour à tous."),
        ),
        (
            "page.xhtml",
            (
                '<?xml version="1.0" encoding="utf-8"?>\n'
                + _XHTML.format(
                    "<p>Hello, readers.</p><h2>1. Cranes Arrive</h2><p>By sea.</p>"
                    "<h2>Wrapping Up</h2><p>Bye.</p>"
                )
            ).encode("utf-8"),
            ("## 1. Cranes Arrive", "Hello, readers."),
        ),
        (
            "page.xhtml",
            ("<?xml version='1.0' encoding='ISO-8859-1'?>\n" + _XHTML.format(_CAFE)).encode("latin-1"),
            ("## 1. Café Prices Rise", "Bonjour à tous."),
        ),
        (  # a declaration that forgot its `?` is read the same, not an internal error
            "page.xhtml",
            ("<?xml version='1.0' encoding='ISO-8859-1'>\n" + _XHTML.format(_CAFE)).encode("latin-1"),
            ("## 1. Café Prices Rise",),
        ),
    ],
    ids=["meta charset", "xhtml utf-8", "xhtml latin-1", "xhtml declaration without ?"],
)
def test_a_page_is_read_in_the_encoding_it_declares(
    here: Path, name: str, data: bytes, expected: tuple[str, ...]
) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    (ws / name).write_bytes(data)
    code, out, err = _run("import", name, "--stdout", "--date", "2026-12-04")
    assert code == 0, err
    assert all(text in out for text in expected), out


@pytest.mark.parametrize("content", ["", "<!-- nothing here -->\n"], ids=["empty", "a comment"])
def test_an_html_file_with_no_html_is_one_line_not_a_crash(here: Path, content: str) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    (ws / "page.html").write_text(content, encoding="utf-8")
    code, _, err = _run("import", "page.html", "--stdout")
    assert code == 2
    assert "page.html" in err and "internal error" not in err and "Traceback" not in err


def test_one_paragraph_per_line_and_blank_runs_make_the_same_paragraphs(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    lines = [
        "Harbour Notes #3",
        "Hello, readers, and welcome to the third issue of the digest.",
        "1. Cranes Arrive",
        "The cranes came by sea from Shanghai and were unloaded on Monday morning.",
        "2024 was the last year the port ordered cranes from Europe, the operator said.",
        "2. A Cable Under the Sea",
        "The cable is 720 kilometres long and carries power both ways between the countries.",
        "Wrapping Up",
        "That is all for this week, and thank you for reading the digest.",
    ]
    drafts = []
    for n, separator in enumerate(("\n", "\n\n\n", "\n\n\n\n\n")):
        (ws / "paste.txt").write_text(separator.join(lines), encoding="utf-8")
        code, out, err = _run("import", "paste.txt", "--stdout", "--date", f"2026-12-0{n + 1}")
        assert code == 0, err
        drafts.append(out.split("---\n", 2)[2])
    assert drafts[0] == drafts[1] == drafts[2]
    assert "Monday morning.\n\n2024 was the last year" in drafts[0]


def test_hard_wrapped_paragraphs_stay_whole(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    code, out, _ = _run("import", str(PASTES / "bilingual-chrome.txt"), "--stdout")
    assert code == 0
    assert (
        "designed in California\nand made in Taiwan, and is expected to employ about 2,000 people when it\n"
        in out
    )


def test_options_override_what_the_paste_says(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    args = ("--date", "2026-12-24", "--title", "Quay Letters", "--subject", "Cranes & cables")
    code, _out, err = _run("import", str(PASTES / "wix-blank-runs.txt"), *args)
    assert code == 0, err
    issue = load_draft(ws / "drafts" / "2026-12-24-quay-letters.md")
    assert (issue.title, issue.subject, issue.date.isoformat()) == (
        "Quay Letters",
        "Cranes & cables",
        "2026-12-24",
    )


def test_issue_number_follows_the_workspace_not_the_paste(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    (ws / "drafts" / "old.md").write_text("---\ntitle: Harbour Notes\nissue: 41\n---\n", encoding="utf-8")
    code, _out, err = _run("import", str(PASTES / "wix-blank-runs.txt"))
    assert code == 0, err
    issue = load_draft(ws / "drafts" / "2026-11-20-harbour-notes.md")
    assert issue.number == 42 and issue.front.values["id"] == "harbour-notes-42"
    assert len(issue.subject) <= 78 and issue.subject.startswith("Harbour Notes #42: ")


def test_never_overwrites_a_draft(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    assert _run("import", str(PASTES / "wix-blank-runs.txt"))[0] == 0
    path = ws / "drafts" / "2026-11-20-harbour-notes.md"
    path.write_text("my edits", encoding="utf-8")
    code, _out, err = _run("import", str(PASTES / "wix-blank-runs.txt"))
    assert code == 2
    assert "already exists" in err and "never overwrites" in err
    assert path.read_text(encoding="utf-8") == "my edits"


def test_a_paste_with_no_numbered_stories_exits_1_and_writes_nothing(here: Path) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    code, _out, err = _run("import", str(PASTES / "no-stories.txt"))
    assert code == 1
    assert "no numbered stories" in err and "1. Headline" in err and "nothing written" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list((ws / "drafts").iterdir())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda ws: "missing.txt", ["missing.txt", "not found", "check the path"]),
        (lambda ws: ws.name and "drafts", ["drafts", "is a directory"]),
        (
            lambda ws: (ws / "cp1252.txt").write_bytes("1. Café\n\nNo.\n".encode("cp1252")) and "cp1252.txt",
            ["cp1252.txt:1", "not valid utf-8", "save the file as utf-8"],
        ),
    ],
    ids=["missing", "directory", "not-utf8"],
)
def test_unreadable_input_exits_2_with_one_line(here: Path, make, expected: list[str]) -> None:
    ws = _workspace(here / "ws", "Harbour Notes")
    os.chdir(ws)
    code, _out, err = _run("import", make(ws))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for words in expected:
        assert words.lower() in err.lower(), err


def test_standard_input_that_is_not_utf8_exits_2(here: Path) -> None:
    _workspace(here / "ws", "Harbour Notes")
    os.chdir(here / "ws")
    code, _, err = _run("import", "-", input="1. Café Crème\n\nTrès bien.\n".encode("cp1252"))
    assert code == 2
    assert "standard input:1" in err and "UTF-8" in err


def test_lint_and_render_do_not_load_the_html_stack(tmp_path: Path) -> None:
    """digest import may load markdownify, readability and BeautifulSoup; lint must not."""
    draft = GOLDEN / "wix-blank-runs.md"
    program = (
        "import sys\n"
        "from digestcli.cli import app\n"
        "try:\n"
        f"    app(['lint', {str(draft)!r}], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "html = ('markdownify', 'readability', 'bs4', 'digestcli.importer')\n"
        "print(sorted(m for m in html if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


# ------------------------------------------------------------- nothing lost, nothing misread


def _import(ws: Path, paste: str, *args: str) -> tuple[str, list[tuple[int, str, str]]]:
    """The draft an import prints, and the lines it left out: (line, label, text)."""
    code, out, err = _run("import", str(PASTES / paste), "--stdout", *args)
    assert code == 0, err
    listed = [line.strip().split(": ", 2) for line in err.splitlines() if line.startswith("  ")]
    return out, [(int(where.rsplit(":", 1)[1]), label, text) for where, label, text in listed]


def _words(markdown: str) -> str:
    """Markdown as the words it shows, to look for a page's text in it."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"(?m)^\s*(?:#{1,6}\s|>\s?|[-*+●○■]\s|\d+[.)]\s)", " ", text)
    return " ".join(re.sub(r"[*_\\|]", " ", text).split()).casefold()


@pytest.mark.parametrize("paste", sorted(p.name for p in PASTES.glob("*.txt") if p.name != "no-stories.txt"))
def test_every_line_of_a_text_paste_is_in_the_draft_or_listed(paste: str, here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, paste)
    source = (PASTES / paste).read_text(encoding="utf-8").splitlines()
    for number, label, text in removed:
        assert source[number - 1].strip() == text, (number, label, text)
    left_out = {number for number, _, _ in removed}
    body = _words(draft.split("---\n", 2)[2])
    for number, line in enumerate(source, 1):
        if line.strip() and number not in left_out:
            assert _words(line) in body, f"{paste}:{number} went missing: {line!r}"


def test_every_block_of_the_article_in_a_saved_page_is_in_the_draft_or_listed(here: Path) -> None:
    """A reader view drops an embedded post, a correction, a table, the title and the byline;
    the import converts the whole <article> it points at, so each is kept or listed."""
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, "saved-post-extras.html")
    page = lxml.html.parse(str(PASTES / "saved-post-extras.html")).getroot()
    [article] = page.xpath("//article")
    body, listed = _words(draft.split("---\n", 2)[2]), [_words(text) for _, _, text in removed]
    for piece in article.itertext():  # every run of text in it, "Posted on " and "by Mira Chen" apart
        words = _words(piece)
        assert not words or words in body or any(words in text for text in listed), piece
    assert "correction: an earlier version" in body and "| bluelm 2 | 70b |" in draft.casefold()
    assert "> BlueLM 2 is live on every X300 today, free.\n>\n> — vivo" in draft
    assert [label for _, label, _ in removed[:2]] == ["title line", "byline"]


def test_a_list_inside_a_story_stays_in_the_story(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, _ = _import(ws, "wordpress-lists.txt")
    issue = parse_draft(draft)
    assert [item.number for item in issue.items] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert issue.items[4].headline == "JD.Com Expands Drone Delivery."  # a full stop, as pasted
    three = "\n".join(issue.lines[issue.items[2].line : issue.items[3].line - 1])
    assert "\n\n3. Cost savings for a startup with no cloud budget\n\nAnalysts were" in three
    seven = "\n".join(issue.lines[issue.items[6].line : issue.items[7].line - 1])
    assert "stood out:\n\n1. Launch\n\nThe model" in seven and "\n\n2. Size\n\nIt comes" in seven


def test_a_story_right_after_a_list_in_a_paste_with_no_blank_lines(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, "substack-list-then-story.txt")
    issue = parse_draft(draft)
    assert [(i.number, i.headline) for i in issue.items][3:] == [
        (4, "Huawei Returns to Europe"),
        (5, "A Tiny Phone Nobody Asked For."),
    ]
    assert "in order:\n\n1. Cut prices in India\n2. Added carrier deals in Japan\n3. Extended" in draft
    footer = {text: label for _, label, text in removed}
    assert footer["Subscribe to Pocket Signals"] == "subscribe button"
    assert footer["Substack is the home for great culture"] == "site footer"
    assert footer["∙ Paid"] == "paid-post mark" and footer["12"] == footer["3"] == "counter"


def test_sentences_that_start_like_chrome_stay_in_the_story(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, "wordpress-lists.txt")
    for sentence in (
        "\n\nUpdated on Friday with the company's response.\n\n",
        "\n\nPowered by Nvidia chips, the new stores will have virtual fitting rooms.\n\n",
        "\n\nMore from Apple is expected next week.\n\n## 7. vivo Releases BlueLM\n",
        "\n\nCopyright disputes over the Glyph design were settled out of court last month.\n\n",
    ):
        assert sentence in draft
    assert all(label != "another post's title" for _, label, _ in removed)


@pytest.mark.parametrize(
    ("paste", "day"),
    [("wordpress-lists.txt", "2026-11-20"), ("wix-glued-byline-date.txt", "2026-12-04")],
    ids=["posted-on-byline", "date-glued-to-name"],
)
def test_the_date_in_a_byline_is_the_issue_date(paste: str, day: str, here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, paste)
    assert f"\ndate: {day}\n" in draft
    assert any(label == "byline" and day[:4] in text for _, label, text in removed)


def test_a_greeting_is_no_title_and_stays_in_the_intro(here: Path) -> None:
    ws = _workspace(here / "ws", None)
    os.chdir(ws)
    draft, removed = _import(ws, "greeting-no-title.txt", "--date", "2026-12-04")
    assert removed == []
    assert 'title: "Example Weekly"' in draft
    assert "---\n\nHi everyone\n\nBig week for phones, so let us get going\n\n## 1. Apple" in draft


def test_an_authors_name_is_no_preheader(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, "ghost-byline.txt")
    assert "Mira Chen" not in draft.split("---\n", 2)[1]
    assert [(n, label) for n, label, text in removed if text == "Mira Chen"] == [(5, "byline"), (6, "byline")]
    footer = {text: label for _, label, text in removed}
    assert footer["Read more"] == "read-more link" and footer["Pocket Signals © 2026"] == "copyright line"
    # "1) Headline" comes out in the draft's own form, "## 1. Headline", as every story does.
    assert "\n## 1. Nokia Brand Sold Again\n" in draft and "Hi all,\nwelcome to issue 21." in draft


def test_a_title_that_asks_and_a_listing_of_other_posts_among_the_stories(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, removed = _import(ws, "wix-listing-among-stories.txt")
    labels = {text: label for _, label, text in removed}
    assert labels["Pocket Signals #22: A Quiet Week?"] == "title line"
    assert labels["OnePlus 14 Review"] == labels["Foldables Are Back"] == "another post's title"
    assert labels["88"] == "another post's counter"
    issue = parse_draft(draft)
    assert issue.items[2].body.paragraphs() == 1 and issue.wrapup is not None


def test_a_line_break_between_blocks_of_clipboard_html_is_no_backslash(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    draft, _ = _import(ws, "google-doc-clipboard.html")
    assert "\\" not in draft
    assert [item.headline for item in parse_draft(draft).items] == [
        "“PhoneGPT” Debuts",
        "vivo Releases BlueLM",
        "$4.6 Billion Deal for D&G",
    ]


def test_a_page_that_names_utf16_in_ascii_is_read_as_utf8(here: Path) -> None:
    ws = _workspace(here / "ws", "Pocket Signals")
    os.chdir(ws)
    page = (
        '<html><head><meta charset="utf-16"></head><body><p>Hello, readers.</p><p>1. A B</p>'
        "<p>text here.</p></body></html>"
    )
    (ws / "page.html").write_bytes(page.encode("ascii"))
    code, out, err = _run("import", "page.html", "--stdout", "--date", "2026-12-04")
    assert code == 0, err
    assert "## 1. A B\n\ntext here." in out
    (ws / "bom.html").write_bytes(page.replace("A B", "Café Crème").encode("utf-16"))
    code, out, err = _run("import", "bom.html", "--stdout", "--date", "2026-12-04")
    assert code == 0, err
    assert "## 1. Café Crème" in out
