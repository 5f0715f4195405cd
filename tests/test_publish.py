"""`digest publish`, the web edition: the pages, the archive, the feed, no reader anywhere, and
publishing again writing only what changed.

The sample site's files are golden files under tests/golden/web/. After a deliberate change,
regenerate them with `DIGEST_REGENERATE=1 python3 -m pytest tests/test_publish.py` and read the diff.
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import textwrap
from pathlib import Path

import feedparser
import pytest
from conftest import VALID_DRAFT

GOLDEN = Path(__file__).resolve().parent / "golden" / "web"
NEWER = "2026-11-20-the-lantern-weekly-42"  # the sample drafts' pages
OLDER = "2026-11-13-the-lantern-weekly-41"
SITE_FILES = [
    f"{OLDER}/index.html",
    f"{NEWER}/index.html",
    "feed.xml",
    "index.html",
    "latest/index.html",
]


def check_golden(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("DIGEST_REGENERATE") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    assert actual == path.read_bytes(), (
        f"{name} differs from its golden file (DIGEST_REGENERATE=1 remakes it)"
    )


def site_files(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())


def send(digest, draft: str) -> None:
    result = digest("send", draft, "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr


def mtimes(site: Path) -> dict[str, int]:
    return {name: (site / name).stat().st_mtime_ns for name in site_files(site)}


def set_web(root: Path, **settings: str) -> None:
    lines = "".join(f'{key} = "{value}"\n' for key, value in settings.items())
    with (root / "digest.toml").open("a", encoding="utf-8") as toml:
        toml.write(f"\n[web]\n{lines}")


@pytest.fixture
def sent_sample(digest, sample_workspace: Path) -> Path:
    """The sample workspace with both its issues sent through the outbox (each send published its
    page, [web] publish_on_send; the site is removed, for the tests to publish from nothing)."""
    send(digest, "drafts/2026-11-13-weekly.md")
    send(digest, "drafts/2026-11-20-weekly.md")
    shutil.rmtree(sample_workspace / "site")
    return sample_workspace


# -- the site -------------------------------------------------------------------------------------


def test_the_sample_site_is_the_golden_one(digest, sent_sample: Path) -> None:
    result = digest("publish")
    assert result.exit_code == 0, result.stdout + result.stderr
    site = sent_sample / "site"
    assert site_files(site) == SITE_FILES
    for name in SITE_FILES:
        check_golden(name, (site / name).read_bytes())
    assert result.stdout.splitlines() == [
        f"Wrote site/{NEWER}/index.html",
        f"Wrote site/{OLDER}/index.html",
        "Wrote site/index.html",
        "Wrote site/feed.xml",
        "Wrote site/latest/index.html",
        "2 issues published; 5 files written, 0 unchanged",
    ]
    assert result.stderr == ""


def test_an_issue_page_is_a_web_page_with_the_email_s_content(sent_sample: Path, digest) -> None:
    from digestcli.config import find_workspace
    from digestcli.draft import load_draft
    from digestcli.render.view import issue_view

    assert digest("publish").exit_code == 0
    page = (sent_sample / "site" / NEWER / "index.html").read_text(encoding="utf-8")
    assert page.count("<main") == 1 and "<article>" in page
    assert "<table" not in page, "no layout tables on the web"
    assert "prefers-color-scheme: dark" in page and "max-width: 42rem" in page
    assert (
        "<title>The Lantern #42: night trains return, a $4.2M library &amp; more · The Lantern Weekly</title>"
        in page
    )
    assert '<p class="dateline">Issue 42 · <time datetime="2026-11-20">20 November 2026</time></p>' in page
    assert '<meta property="og:title" content="The Lantern #42' in page
    assert '<meta name="twitter:card" content="summary">' in page
    assert 'rel="canonical"' not in page, "no canonical URL without [web] base_url"
    # Every item and its body, as the email has them.
    view = issue_view(load_draft(sent_sample / "drafts" / "2026-11-20-weekly.md"))
    for item in view.items:
        assert f'<section class="item" id="{item.anchor}">' in page
        assert str(item.body.html) in page
    assert str(view.wrapup.body.html) in page  # type: ignore[union-attr]
    # The way around: the archive, the issue before (none after: it is the newest).
    assert f'<a class="previous" rel="prev" href="../{OLDER}/index.html">' in page
    assert 'class="next"' not in page
    assert '<a href="../index.html">All issues</a>' in page
    assert find_workspace(sent_sample).config.web.subscribe_url == ""
    assert "Subscribe" not in page, "no subscribe link without [web] subscribe_url"


def test_the_archive_lists_every_issue_newest_first_with_its_headlines(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    archive = (sent_sample / "site" / "index.html").read_text(encoding="utf-8")
    newer = archive.index(f'href="{NEWER}/index.html"')
    older = archive.index(f'href="{OLDER}/index.html"')
    assert newer < older
    assert archive.index("Night trains return to the Alpine route after ten years") < older
    assert older < archive.index("The Old Mill Bridge reopens, eight months late and $1.1M over budget")
    assert '<time datetime="2026-11-13">13 November 2026</time>' in archive
    assert '<link rel="alternate" type="application/atom+xml"' in archive
    assert '<a href="feed.xml">Atom feed</a>' in archive
    latest = (sent_sample / "site" / "latest" / "index.html").read_text(encoding="utf-8")
    assert f'<meta http-equiv="refresh" content="0; url=../{NEWER}/index.html">' in latest
    assert f'<link rel="canonical" href="../{NEWER}/index.html">' in latest


def test_feedparser_reads_the_feed(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    feed = feedparser.parse((sent_sample / "site" / "feed.xml").read_bytes())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    assert feed.feed.title == "The Lantern Weekly"
    assert feed.feed.updated_parsed[:3] == (2026, 11, 20)
    entries = feed.entries
    assert [e.id for e in entries] == [
        "urn:digest:lantern.example.com:the-lantern-weekly-42",
        "urn:digest:lantern.example.com:the-lantern-weekly-41",
    ]
    assert [e.title for e in entries] == [
        "The Lantern #42: night trains return, a $4.2M library & more",
        "The Lantern #41: the bridge reopens & a record harvest",
    ]
    assert [e.link for e in entries] == [f"{NEWER}/index.html", f"{OLDER}/index.html"]
    assert [e.published_parsed[:3] for e in entries] == [(2026, 11, 20), (2026, 11, 13)]
    assert [e.updated_parsed[:3] for e in entries] == [(2026, 11, 20), (2026, 11, 13)]
    content = entries[0].content[0]
    assert content.type == "text/html"
    assert "Night trains return to the Alpine route" in content.value
    assert f'href="{NEWER}/index.html#item-1"' in content.value, "the contents' jumps name their page"
    assert "All issues" not in content.value, "the entry is the article, not the page around it"
    assert entries[0].summary.startswith("Twelve stories from the week")


def test_base_url_makes_every_link_absolute(digest, sent_sample: Path) -> None:
    set_web(
        sent_sample,
        base_url="https://lantern.example.org/issues",
        subscribe_url="https://lantern.example.org/join",
    )
    assert digest("publish").exit_code == 0
    site = sent_sample / "site"
    base = "https://lantern.example.org/issues/"
    older = (site / OLDER / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{base}{OLDER}/">' in older
    assert f'<meta property="og:url" content="{base}{OLDER}/">' in older
    assert f'<a class="next" rel="next" href="{base}{NEWER}/">' in older
    assert f'<a href="{base}">All issues</a>' in older
    assert '<a href="https://lantern.example.org/join">subscribe</a>' in older
    assert "../" not in older
    archive = (site / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{base}">' in archive
    assert f'<a href="{base}{NEWER}/">' in archive
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert not feed.bozo
    assert [e.link for e in feed.entries] == [f"{base}{NEWER}/", f"{base}{OLDER}/"]
    assert {link.rel: link.href for link in feed.feed.links}["self"] == f"{base}feed.xml"
    latest = (site / "latest" / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{base}{NEWER}/">' in latest
    # The email's "View in your browser" link and the page agree on the address.
    from digestcli.config import find_workspace
    from digestcli.draft import load_draft
    from digestcli.render.compose import web_url

    issue = load_draft(sent_sample / "drafts" / "2026-11-20-weekly.md")
    assert web_url(issue, find_workspace(sent_sample)) == f"{base}{NEWER}/"
    for name in (f"{NEWER}/index.html", "feed.xml"):
        check_golden(f"base-url/{name}", (site / name).read_bytes())


# -- no reader in the site ------------------------------------------------------------------------

SLOTTED = textwrap.dedent(
    """\
    ---
    id: slots-1
    title: Test Weekly
    subject: "Test Weekly #1: news for {{ reader.city }}"
    date: 2026-11-20
    issue: 1
    preheader: "Hi {{ reader.name }}: three stories for {{ reader.city }}."
    ---

    Hi {{ reader.name }}, and welcome. You signed up as {{ reader.email }}.

    ## 1. The story for {{ reader.city }}

    Your own [home page]({{reader.site}}), a [note to yourself](mailto:{{reader.email}}) and
    the [council's minutes](https://example.com/minutes?for={{reader.email}}).

    ![Your badge]({{reader.badge}})

    ## 2. Another story

    Nothing personal here.

    ## Wrapping Up

    Bye, {{reader.name}}. Everything is in the [full report](https://example.com/report).
    """
)


def test_no_reader_data_anywhere_in_the_site(digest, workspace: Path) -> None:
    readers = ["ann@example.org", "bo.chen@example.net", "olga@example.com"]
    (workspace / "subscribers.csv").write_text(
        "email,name,city,site,badge\n"
        + "".join(
            f"{address},Reader {n},City{n},https://home{n}.example.com/,https://img.example.com/{n}.png\n"
            for n, address in enumerate(readers)
        ),
        encoding="utf-8",
    )
    (workspace / "drafts" / "2026-11-20-slots.md").write_text(SLOTTED, encoding="utf-8")
    send(digest, "drafts/2026-11-20-slots.md")
    mail = [p.read_bytes() for p in (workspace / "outbox").rglob("*") if p.is_file()]
    assert b"ann@example.org" in b"".join(mail), "the email itself was personal"

    result = digest("publish")
    assert result.exit_code == 0, result.stdout + result.stderr
    site = workspace / "site"
    files = [p for p in site.rglob("*") if p.is_file()]
    assert len(files) == 4
    for path in files:
        data = path.read_text(encoding="utf-8")
        for needle in [*readers, "Reader 0", "City0", "home0", "token", "{{", "reader.", "%7B", "unsubscr"]:
            assert needle.lower() not in data.lower(), f"{needle!r} in {path}"
    page = (site / "2026-11-20-slots-1" / "index.html").read_text(encoding="utf-8")
    assert "<p>Hi there, and welcome. You signed up as .</p>" in page
    assert "Your own home page, a note to yourself and" in page, "links to a reader's value go, words kept"
    assert "council's minutes" in page and "minutes?for" not in page  # a link for one reader, gone
    assert "Your badge" in page and "<img" not in page
    assert "<title>Test Weekly #1: news for" in page and "for </title>" not in page
    assert "Bye, there." in page


def test_a_workspace_template_gets_no_reader_either(digest, write_draft, workspace: Path) -> None:
    (workspace / "templates" / "web").mkdir(parents=True)
    own = workspace / "templates" / "web" / "issue.html.j2"
    own.write_text(
        "<html><body><p>For {{ reader.name }} at [{{ reader.email }}]</p>"
        "<article>{{ issue.intro.html }}</article></body></html>\n",
        encoding="utf-8",
    )
    write_draft(VALID_DRAFT.replace("Hello, and", "Hello {{ reader.name }}, and"))
    assert digest("publish", "drafts/2026-11-20-test.md").exit_code == 0
    page = (workspace / "site" / "2026-11-20-test-weekly-7" / "index.html").read_text(encoding="utf-8")
    assert page == (
        "<html><body><p>For there at []</p><article><p>Hello there, and welcome to the seventh issue.</p>\n"
        "</article></body></html>\n"
    )
    set_web(workspace, reader_name="friend")
    assert digest("publish", "drafts/2026-11-20-test.md").exit_code == 0
    page = (workspace / "site" / "2026-11-20-test-weekly-7" / "index.html").read_text(encoding="utf-8")
    assert "For friend at []" in page and "Hello friend, and" in page


# -- publishing again -----------------------------------------------------------------------------


def test_publishing_again_writes_nothing(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    before = mtimes(sent_sample / "site")
    again = digest("publish")
    assert again.exit_code == 0
    assert again.stdout == "2 issues published; 0 files written, 5 unchanged\n"
    assert mtimes(sent_sample / "site") == before


def test_a_correction_rewrites_its_page_and_the_feed_only(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    site = sent_sample / "site"
    draft = sent_sample / "drafts" / "2026-11-13-weekly.md"
    draft.write_text(
        draft.read_text(encoding="utf-8").replace("38 tonnes of produce", "39 tonnes of produce"),
        encoding="utf-8",
    )
    result = digest("publish")
    assert result.stdout.splitlines() == [
        f"Wrote site/{OLDER}/index.html",
        "Wrote site/feed.xml",
        "2 issues published; 2 files written, 3 unchanged",
    ]
    assert "39 tonnes" in (site / OLDER / "index.html").read_text(encoding="utf-8")
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert "39 tonnes" in feed.entries[1].content[0].value
    assert feed.entries[1].updated_parsed[:3] == (2026, 11, 13), "dates come from the issue, not the clock"

    # A new headline is in the archive too.
    text = draft.read_text(encoding="utf-8")
    draft.write_text(text.replace("## 5. School lunches go local", "## 5. School lunches, at last"), "utf-8")
    result = digest("publish")
    assert result.stdout.splitlines() == [
        f"Wrote site/{OLDER}/index.html",
        "Wrote site/index.html",
        "Wrote site/feed.xml",
        "2 issues published; 3 files written, 2 unchanged",
    ]
    assert "School lunches, at last" in (site / "index.html").read_text(encoding="utf-8")


def test_a_renamed_draft_keeps_its_address(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    before = mtimes(sent_sample / "site")
    drafts = sent_sample / "drafts"
    (drafts / "2026-11-13-weekly.md").rename(drafts / "lantern-41-bridge.md")
    result = digest("publish")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == "2 issues published; 0 files written, 5 unchanged\n"
    assert mtimes(sent_sample / "site") == before


def test_a_sent_draft_that_is_gone_is_left_out_with_a_note(digest, sent_sample: Path) -> None:
    assert digest("publish").exit_code == 0
    (sent_sample / "drafts" / "2026-11-13-weekly.md").unlink()
    result = digest("publish")
    assert result.exit_code == 0
    assert result.stderr == (
        "note: issue the-lantern-weekly-41 (sent) not published: its draft drafts/2026-11-13-weekly.md"
        " is gone, and no draft in drafts/ has its id; name the draft to publish it\n"
        f"note: {OLDER}/ in the site is from an earlier publish and is not among the issues published"
        " now (its date or title changed, or its draft is gone): delete it if it should go\n"
    )
    assert result.stdout.splitlines()[-1] == "1 issue published; 3 files written, 1 unchanged"
    assert OLDER not in (sent_sample / "site" / "index.html").read_text(encoding="utf-8")
    assert (sent_sample / "site" / OLDER / "index.html").exists(), "never deleted"


def test_publish_issue_takes_in_the_issue_being_sent(sent_sample: Path, digest) -> None:
    from digestcli.config import find_workspace
    from digestcli.draft import load_draft
    from digestcli.publish import publish_issue

    assert digest("publish").exit_code == 0
    nxt = sent_sample / "drafts" / "2026-11-27-weekly.md"
    nxt.write_text(
        (sent_sample / "drafts" / "2026-11-20-weekly.md")
        .read_text(encoding="utf-8")
        .replace("id: the-lantern-weekly-42", "id: the-lantern-weekly-43")
        .replace("issue: 42", "issue: 43")
        .replace("date: 2026-11-20", "date: 2026-11-27")
        .replace("The Lantern #42: night trains", "The Lantern #43: day trains"),
        encoding="utf-8",
    )
    ws = find_workspace(sent_sample)
    report = publish_issue(ws, load_draft(nxt))
    site = sent_sample / "site"
    newest = "2026-11-27-the-lantern-weekly-43"
    assert sorted(str(p.relative_to(site)) for p in report.written) == [
        f"{NEWER}/index.html",  # its "next" link
        f"{newest}/index.html",
        "feed.xml",
        "index.html",
        "latest/index.html",
    ]
    assert (report.issues, report.unchanged, report.notes) == (3, 1, [])
    newer_page = (site / NEWER / "index.html").read_text(encoding="utf-8")
    assert f'rel="next" href="../{newest}/index.html"' in newer_page
    # The draft not sent is no part of the next ordinary publish.
    result = digest("publish")
    assert result.stdout.splitlines()[-1] == "2 issues published; 4 files written, 1 unchanged"


# -- which drafts ---------------------------------------------------------------------------------


def test_all_publishes_every_draft_that_lints_clean(digest, sample_workspace: Path) -> None:
    broken = sample_workspace / "drafts" / "2026-11-27-broken.md"
    text = VALID_DRAFT.replace("## 2. The second", "## 4. The second").replace("2026-11-20", "2026-11-27")
    broken.write_text(text, encoding="utf-8")
    nothing = digest("publish")
    assert nothing.exit_code == 0 and nothing.stdout == ""
    assert "nothing to publish" in nothing.stderr
    assert not (sample_workspace / "site").exists()

    result = digest("publish", "--all")
    assert result.exit_code == 0
    assert result.stderr == (
        "note: drafts/2026-11-27-broken.md: not published: 2 lint errors"
        " (digest lint drafts/2026-11-27-broken.md shows them)\n"
    )
    assert result.stdout.splitlines()[-1] == "2 issues published; 5 files written, 0 unchanged"
    assert site_files(sample_workspace / "site") == SITE_FILES


def test_a_named_draft_joins_the_issues_sent(digest, sent_sample: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text(VALID_DRAFT.replace("date: 2026-11-20", "date: 2026-12-04"), encoding="utf-8")
    result = digest("publish", str(elsewhere), "--out", str(tmp_path / "web"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "3 issues published; 6 files written, 0 unchanged"
    archive = (tmp_path / "web" / "index.html").read_text(encoding="utf-8")
    assert archive.index("2026-12-04-test-weekly-7/index.html") < archive.index(f"{NEWER}/index.html")


def test_a_missing_named_draft_is_one_line(digest, sent_sample: Path) -> None:
    result = digest("publish", "drafts/none.md")
    assert result.exit_code == 2
    assert result.stderr == "error: drafts/none.md: draft not found (check the path)\n"


def test_an_unwritable_site_folder_is_one_line(digest, sent_sample: Path) -> None:
    (sent_sample / "site").write_text("not a folder", encoding="utf-8")
    result = digest("publish")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "site: the site's folder is a file" in result.stderr
    assert "--out DIR or [web] out" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_open_shows_the_archive(digest, sent_sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import webbrowser

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url, *a, **k: opened.append(url) or True)
    assert digest("publish", "--open").exit_code == 0
    assert opened == [(sent_sample / "site" / "index.html").resolve().as_uri()]


def test_a_page_file_is_replaced_whole_with_readable_permissions(sent_sample: Path, digest) -> None:
    old_umask = os.umask(0o022)
    try:
        assert digest("publish").exit_code == 0
    finally:
        os.umask(old_umask)
    site = sent_sample / "site"
    assert (site / NEWER / "index.html").stat().st_mode & 0o777 == 0o644
    assert not [p for p in site.rglob(".*")], "no temporary file left behind"


def test_issues_without_a_date_or_with_a_taken_id_are_left_out(digest, workspace: Path) -> None:
    drafts = workspace / "drafts"
    (drafts / "a.md").write_text(VALID_DRAFT, encoding="utf-8")
    (drafts / "b.md").write_text(VALID_DRAFT.replace("issue: 7", "issue: 8"), encoding="utf-8")
    (drafts / "c.md").write_text(
        VALID_DRAFT.replace("date: 2026-11-20\n", "").replace("issue: 7", "issue: 9"), encoding="utf-8"
    )
    (drafts / "d.md").write_text(VALID_DRAFT, encoding="utf-8")
    result = digest("publish", "drafts/a.md", "drafts/b.md", "drafts/c.md", "drafts/d.md")
    assert result.exit_code == 0
    assert result.stderr == (
        "note: drafts/c.md: not published: it has no `date:` (an issue's address and its place in"
        " the archive come from its date)\n"
        "note: drafts/d.md: not published: drafts/a.md has its id (test-weekly-7)\n"
    )
    # Two issues of one day and one title still get two pages: the address holds the id.
    assert result.stdout.splitlines()[-1] == "2 issues published; 5 files written, 0 unchanged"


def test_the_feed_date_is_the_newest_issue_s(sent_sample: Path) -> None:
    from digestcli.config import find_workspace
    from digestcli.publish import publish_site

    report = publish_site(find_workspace(sent_sample))
    assert report.out == sent_sample / "site"
    feed = (report.out / "feed.xml").read_text(encoding="utf-8")
    head = re.search(r"<feed[^>]*>\s*<id>[^<]*</id>\s*<title>[^<]*</title>\s*<updated>([^<]*)<", feed)
    assert head is not None and head.group(1) == "2026-11-20T00:00:00+00:00"


def test_golden_files_are_all_in_use() -> None:
    expected = {*SITE_FILES, f"base-url/{NEWER}/index.html", "base-url/feed.xml"}
    found = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert found <= expected, f"golden files no test reads: {sorted(found - expected)}"
    if os.environ.get("DIGEST_REGENERATE") != "1":
        assert found == expected


def test_a_sent_draft_now_holding_another_issue_is_found_by_its_id(digest, sent_sample: Path) -> None:
    drafts = sent_sample / "drafts"
    old = drafts / "2026-11-13-weekly.md"
    (drafts / "archive-41.md").write_text(old.read_text(encoding="utf-8"), encoding="utf-8")
    old.write_text(VALID_DRAFT, encoding="utf-8")  # the file sent as 41, edited into another issue
    result = digest("publish")
    assert result.exit_code == 0 and result.stderr == ""
    assert f'href="{OLDER}/index.html"' in (sent_sample / "site" / "index.html").read_text(encoding="utf-8")
    archive_41 = drafts / "archive-41.md"
    archive_41.unlink()
    result = digest("publish")
    assert result.stderr.startswith(
        "note: issue the-lantern-weekly-41 (sent) not published: its draft drafts/2026-11-13-weekly.md"
        " now holds issue test-weekly-7, and no draft in drafts/ has its id"
    )


@pytest.mark.parametrize(
    ("source", "web"),
    [
        ('<a href="%7B%7Breader.site%7D%7D">site</a>', "site"),
        ("<a href='{{ reader.site }}' title=\"x\">site</a>", "site"),
        ('<a href="mailto:%7B%7Breader.email%7D%7D">me</a>', "me"),
        (
            '<a href="https://x.example/?n=%7B%7Breader.name%7D%7D&amp;e=%7B%7Breader.email%7D%7D">q</a>',
            "q",  # a link for one reader (their address in it) goes, its words kept
        ),
        ('<img src="%7B%7Breader.badge%7D%7D" alt="A &amp; B">', "A &amp; B"),
        ('<img src="https://example.com/x.png" alt="ok">', '<img src="https://example.com/x.png" alt="ok">'),
        (
            '<p title="{{ reader.name }}">{{reader.name}}, {{ reader.city }}</p>',
            '<p title="Ann &quot;A&quot;">Ann &quot;A&quot;, </p>',
        ),
    ],
)
def test_slots_in_html_become_neutral(source: str, web: str) -> None:
    from digestcli.publish.neutral import Neutralizer

    assert Neutralizer('Ann "A"').html(source) == web


@pytest.mark.parametrize("page", [f"{NEWER}/index.html", "index.html"])
def test_pages_fit_a_phone_and_a_desktop_and_pass_axe(
    digest, sent_sample: Path, page: str, tmp_path: Path
) -> None:
    from browser import CHROMIUM, axe_violations, describe, screenshot, serious

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    set_web(sent_sample, subscribe_url="https://lantern.example.org/join")
    assert digest("publish").exit_code == 0
    path = sent_sample / "site" / page
    for width in (375, 1280):
        shot = tmp_path / f"{path.parent.name}-{width}.png"
        scroll_width, scroll_height = screenshot(path, width, shot)
        assert scroll_width <= width, f"sideways scroll at {width} px"
        assert scroll_height > 400 and shot.read_bytes().startswith(b"\x89PNG")
    found = serious(axe_violations(path))
    assert not found, describe(found)


def test_a_send_publishes_its_page_first_so_the_emails_link_works(digest, sample_workspace: Path) -> None:
    set_web(sample_workspace, base_url="https://lantern.example.org/issues/")
    result = digest("send", "drafts/2026-11-20-weekly.md", "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    page = f"{NEWER}/index.html"
    assert f"Web page   site/{page} (4 files of the site written)" in result.stdout
    assert result.stdout.index("Web page") < result.stdout.index("delivered")  # before any message
    assert (sample_workspace / "site" / page).is_file()
    message = next(iter(mailbox.Maildir(sample_workspace / "outbox", create=False)))
    link = f"https://lantern.example.org/issues/{NEWER}/"
    assert link in message.as_string().replace("=\n", "")  # quoted-printable soft breaks joined


def test_publish_on_send_can_be_switched_off(digest, sample_workspace: Path) -> None:
    with (sample_workspace / "digest.toml").open("a", encoding="utf-8") as toml:
        toml.write("\n[web]\npublish_on_send = false\n")
    result = digest("send", "drafts/2026-11-20-weekly.md", "--yes")
    assert result.exit_code == 0 and "Web page" not in result.stdout
    assert not (sample_workspace / "site").exists()


def test_a_subject_made_of_reader_values_still_gives_a_feed(digest, workspace: Path) -> None:
    (workspace / "subscribers.csv").write_text("email,city\nann@example.org,Oslo\n", encoding="utf-8")
    draft = VALID_DRAFT.replace('subject: "Test Weekly #7: three stories"', 'subject: "{{ reader.city }}"')
    (workspace / "drafts" / "2026-11-20-test.md").write_text(draft, encoding="utf-8")
    result = digest("send", "drafts/2026-11-20-test.md", "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    feed = (workspace / "site" / "feed.xml").read_text(encoding="utf-8")
    assert "<title>Test Weekly</title>" in feed and "Oslo" not in feed


def test_a_site_that_cannot_be_written_does_not_stop_a_send_without_a_web_link(
    digest, sample_workspace: Path
) -> None:
    (sample_workspace / "site").write_text("a file where the folder goes", encoding="utf-8")
    result = digest("send", "drafts/2026-11-20-weekly.md", "--yes")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "warning: web page not published" in result.stderr
    # With a "View in your browser" link in every message, the page must be there first.
    set_web(sample_workspace, base_url="https://lantern.example.org/issues/")
    refused = digest("send", "drafts/2026-11-13-weekly.md", "--yes")
    assert refused.exit_code != 0 and "nothing was sent" in refused.stderr
