"""Rendering an issue: the HTML and text parts, slots, links, wrapping, template overrides."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from lxml import etree

from digestcli.config import Config, NewsletterConfig, Workspace
from digestcli.draft import SLOT, load_draft, parse_draft
from digestcli.errors import DigestError
from digestcli.lint.links import links as draft_links
from digestcli.render import (
    RenderedIssue,
    environment,
    inline_css,
    link_is_live,
    render,
    render_issue,
    write_rendered,
)
from digestcli.render.text import display_width, readable_url, wrap

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "drafts" / "2026-11-20-weekly.md"
KITCHEN_SINK = Path(__file__).resolve().parent / "golden" / "kitchen-sink.md"
SCHEMES = ("http:", "https:", "mailto:")
ENCODED_SLOT = re.compile(r"%7B%7B(?:%20)*reader\.(\w+)(?:%20)*%7D%7D")


def make_workspace(root: Path, **newsletter: str) -> Workspace:
    settings = {"title": "The Lantern Weekly", "postal_address": "12 Riverside Walk, Springfield 10001"}
    settings.update(newsletter)
    return Workspace(root=root, config=Config(newsletter=NewsletterConfig(**settings)))


@pytest.fixture(scope="module")
def sample() -> tuple:
    issue = load_draft(SAMPLE)
    return issue, render_issue(issue, make_workspace(ROOT / "drafts"))


@pytest.fixture(scope="module")
def sink() -> tuple:
    issue = load_draft(KITCHEN_SINK)
    return issue, render_issue(issue, make_workspace(KITCHEN_SINK.parent, title="The Kitchen Sink"))


def parse(html: str):
    parser = etree.HTMLParser(recover=False)
    return etree.fromstring(html, parser)


def visible_text(element) -> str:
    return " ".join("".join(element.itertext()).split())


def live_links(issue) -> list[str]:
    return [t for kind, t, *_ in draft_links(issue) if kind == "link" and t.lower().startswith(SCHEMES)]


# ── The HTML part ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("which", "title"), [("sample", "The Lantern Weekly"), ("sink", "The Kitchen Sink")])
def test_html_parses_and_has_the_document_parts(which, title, request):
    issue, rendered = request.getfixturevalue(which)
    root = parse(rendered.html)  # strict: raises on markup libxml2 cannot read
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert root.tag == "html" and root.get("lang") == "en"
    assert visible_text(root.find("head/title")) == issue.subject
    assert root.find("head/meta[@charset]").get("charset").lower() == "utf-8"
    article = root.find("body/*[@role='article']")
    assert article is not None and article.get("aria-label") == title


def test_html_lang_comes_from_the_settings(tmp_path):
    rendered = render_issue(load_draft(SAMPLE), make_workspace(tmp_path, language="de-CH"))
    root = parse(rendered.html)
    assert root.get("lang") == "de-CH" and root.find("body/*[@role='article']").get("lang") == "de-CH"


def test_every_headline_appears_in_order_in_both_parts(sample):
    issue, rendered = sample
    headlines = [item.headline_text for item in issue.items]
    assert len(headlines) == 12
    root = parse(rendered.html)
    h2 = [visible_text(h) for h in root.iter("h2")]
    assert h2[0] == "In this issue"
    assert h2[1:-1] == [f"{item.number}. {item.headline_text}" for item in issue.items]
    assert h2[-1] == "Wrapping Up"
    # In the text part, each item's "N. Headline" line is underlined, in order.
    lines = rendered.text.splitlines()
    underlined = [
        lines[i] for i in range(len(lines) - 1) if lines[i] and re.fullmatch(r"-{3,}", lines[i + 1])
    ]
    assert underlined == [f"{item.number}. {item.headline_text}" for item in issue.items] + ["Wrapping Up"]


def test_contents_list_links_to_each_item_in_order(sample):
    issue, rendered = sample
    root = parse(rendered.html)
    toc = [a for a in root.iter("a") if (a.get("href") or "").startswith("#")]
    assert [visible_text(a) for a in toc] == [item.headline_text for item in issue.items]
    for a in toc:
        target = root.find(f".//*[@id='{a.get('href')[1:]}']")
        assert target is not None, a.get("href")
        assert visible_text(target.find(".//h2")).endswith(visible_text(a))


def _style(element) -> dict[str, str]:
    pairs = (decl.split(":", 1) for decl in (element.get("style") or "").split(";") if ":" in decl)
    return {name.strip(): value.strip() for name, value in pairs}


def test_contents_is_a_heading_led_numbered_list_of_links_that_look_like_links(sample):
    issue, rendered = sample
    root = parse(rendered.html)
    [heading] = [h for h in root.iter("h2") if visible_text(h) == "In this issue"]
    # A heading a screen reader lists and jumps to, then the list itself, the next element.
    listing = heading.getnext()
    assert listing is not None and listing.tag == "ol"
    entries = listing.findall("li")
    # Where a jump within the message does nothing (Gmail on iOS, Outlook mobile …) the list still
    # reads as the issue's summary: each entry numbered as its story is, with the whole headline.
    assert [int(li.get("value")) for li in entries] == [item.number for item in issue.items]
    assert [visible_text(li) for li in entries] == [item.headline_text for item in issue.items]
    body_colour = _style(root.find(".//*[@class='content sans']"))["color"]
    for li in entries:
        style = _style(li.find("a"))
        assert style["text-decoration"] == "underline" and style["color"] != body_colour, style
    style = "".join(s.text or "" for s in root.iter("style")).split("prefers-color-scheme")[1]
    assert re.search(r"\.contents a[^{]*\{[^}]*color: #fbbf24", style.replace("\n", " "))


@pytest.mark.parametrize("which", ["sample", "sink"])
def test_every_draft_link_appears_in_order_in_both_parts(which, request):
    issue, rendered = request.getfixturevalue(which)
    wanted = live_links(issue)
    assert wanted, "the draft should have links to check"
    # markdown-it percent-encodes a slot in a link target; the rendered parts carry it as written.
    wanted = [ENCODED_SLOT.sub(r"{{ reader.\1 }}", url) for url in wanted]
    root = parse(rendered.html)
    hrefs = [a.get("href") for a in root.iter("a")]
    assert [h for h in hrefs if not h.startswith("#") and h != "{{ reader.unsubscribe_url }}"] == wanted
    # In the text a link is cited where it stands, either as the URL itself or as "[n]", with
    # "[n] URL" listed below its section.
    text = rendered.text
    numbers = {url: n for n, url in re.findall(r"^\[(\d+)\] (\S+)$", text, re.MULTILINE)}
    cursor = 0
    for url in wanted:
        shown = readable_url(url)
        places = [text.find(shown, cursor)]
        if shown in numbers:
            places.append(text.find(f"[{numbers[shown]}]", cursor))
        found = min((p for p in places if p >= 0), default=-1)
        assert found >= 0, f"{url} missing (in order) from the text part"
        cursor = found


def test_footer_has_title_address_and_unsubscribe_link(sample):
    _, rendered = sample
    root = parse(rendered.html)
    unsubscribe = [a for a in root.iter("a") if a.get("href") == "{{ reader.unsubscribe_url }}"]
    assert len(unsubscribe) == 1 and visible_text(unsubscribe[0]) == "Unsubscribe"
    footer = unsubscribe[0].getparent().getparent()
    assert "The Lantern Weekly" in visible_text(footer)
    assert "12 Riverside Walk, Springfield 10001" in visible_text(footer)
    assert "\n{{ reader.unsubscribe_url }}\n" in rendered.text  # on a line of its own, to tap or copy
    assert rendered.text.index("12 Riverside Walk") > rendered.text.index("Wrapping Up")


def test_layout_tables_are_presentational_and_images_have_alt(sink):
    _, rendered = sink
    root = parse(rendered.html)
    for table in root.iter("table"):
        in_content = any("content" in (a.get("class") or "").split() for a in table.iterancestors())
        assert in_content or table.get("role") == "presentation", etree.tostring(table)[:120]
    images = list(root.iter("img"))
    assert images and all(img.get("alt") for img in images)


@pytest.mark.parametrize("which", ["sample", "sink"])
def test_no_markup_html_checkers_find_fault_with(which, request):
    _, rendered = request.getfixturevalue(which)
    root = parse(rendered.html)
    body = root.find("body")
    assert "width" not in body.attrib
    assert not [div.attrib for div in root.iter("div") if "bgcolor" in div.attrib]
    for meta in root.iter("meta"):
        assert "content" in meta.attrib or set(meta.attrib) == {"charset"}, meta.attrib
    for table in root.iter("table"):
        if table.get("role") == "presentation":
            assert [child.tag for child in table] == ["tbody"], etree.tostring(table)[:120]


def test_css_is_inlined_and_media_queries_stay(sample):
    _, rendered = sample
    root = parse(rendered.html)
    style = "".join(s.text or "" for s in root.iter("style"))
    assert "@media (prefers-color-scheme: dark)" in style
    assert re.search(r"@media screen and \(max-width: \d+px\)", style)
    assert "!important" in style  # media queries must still beat the inlined styles
    assert ".headline {" not in style.split("@media")[0]  # plain rules were inlined, not kept
    metas = {m.get("name"): m.get("content") for m in root.iter("meta") if m.get("name")}
    assert metas["color-scheme"] == "light dark" and metas["supported-color-schemes"] == "light dark"
    headline = next(h for h in root.iter("h2") if "headline" in h.get("class").split())
    assert "font-family:Georgia" in headline.get("style") and "color:#1c1a17" in headline.get("style")
    # Every font stack ends in a generic family, so a client without the named fonts still picks well.
    stacks = [
        decl.split(":", 1)[1]
        for element in root.iter()
        if isinstance(element.tag, str) and element.get("style")
        for decl in element.get("style").split(";")
        if decl.strip().startswith("font-family:")
    ]
    assert len(stacks) > 10
    assert {stack.split(",")[-1].strip() for stack in stacks} <= {"serif", "sans-serif", "monospace"}


def test_preheader_is_hidden_without_matching_the_background(sample):
    issue, rendered = sample
    root = parse(rendered.html)
    pre = root.find(".//*[@class='preheader']")
    assert pre is not None
    assert visible_text(pre).startswith(issue.preheader)
    style = pre.get("style").replace(" ", "")
    for rule in ("display:none", "max-height:0", "opacity:0", "mso-hide:all", "overflow:hidden"):
        assert rule in style
    assert "color:" not in style
    assert "visibility" not in style  # Gmail drops a style holding it, and the preview shows
    # It comes before anything visible, so clients take it as the preview line.
    article = root.find(".//*[@role='article']")
    assert next(iter(article)) is pre


def test_ampersands_quotes_and_names_survive_both_parts(sample):
    _, rendered = sample
    root = parse(rendered.html)
    body_text = visible_text(root.find("body"))
    for words in (
        "Crumb & Co.",
        "two hours a day & plays",
        "“firsts”",
        "operator’s route page",
        "Айгерим Сапарова",
        "김민지",
        "Zürich",
        "Tomás Ó Briain",
    ):
        assert words in body_text, words
        assert words in " ".join(rendered.text.split()), words
    assert "Crumb &amp; Co." in rendered.html
    assert "&amp;" not in rendered.text and "&#" not in rendered.text


def test_japanese_and_cyrillic_render_in_both_parts(sink):
    _, rendered = sink
    body_text = visible_text(parse(rendered.html).find("body"))
    joined_text = "".join(rendered.text.split())
    for words in (
        "Ліна Коваленко",
        "김민지",
        "山田太郎",
        "東京の図書館は、毎週金曜日に夜九時まで開いています。",
    ):
        assert words in body_text
        assert words.replace(" ", "") in joined_text
    assert "https://example.com/people/ліна-коваленко" in rendered.text


# ── Slots ────────────────────────────────────────────────────────────────────────────────────


def test_premailer_alone_would_break_a_slot_in_href():
    # The reason for the protection: without it the slot reaches the reader as %7B%7B%20...
    from premailer import Premailer

    raw = (
        "<html><head><style>a{color:red}</style></head>"
        '<body><a href="{{ reader.unsubscribe_url }}">x</a></body></html>'
    )
    assert "{{ reader.unsubscribe_url }}" not in Premailer(raw, allow_network=False).transform()


def test_slots_survive_inlining_in_text_and_in_href():
    html = (
        "<!DOCTYPE html><html><head><style>a { color: red } p { margin: 0 }</style></head><body>"
        '<p>Hello {{ reader.name }},</p><a href="{{ reader.unsubscribe_url }}">Unsubscribe</a>'
        '<a href="https://example.com/p?e={{reader.email}}&amp;x=é">prefs</a>'
        '<a href="https://example.com/q?e=%7B%7B%20reader.email%20%7D%7D">encoded</a></body></html>'
    )
    out, _ = inline_css(html)
    assert '<p style="margin:0">Hello {{ reader.name }},</p>' in out
    assert 'href="{{ reader.unsubscribe_url }}" style="color:red"' in out
    assert 'href="https://example.com/p?e={{ reader.email }}&amp;x=%C3%A9"' in out
    assert 'href="https://example.com/q?e={{ reader.email }}"' in out
    assert "%7B" not in out and "digest-slot" not in out


def test_slots_from_draft_and_template_survive_the_whole_render(sink):
    _, rendered = sink
    assert rendered.slots() == {"name", "email", "unsubscribe_url"}
    assert rendered.subject.startswith("{{ reader.name }}, your Kitchen Sink #7")
    assert "Hello {{ reader.name }}, and welcome" in rendered.html
    assert 'href="https://example.com/prefs?email={{ reader.email }}"' in rendered.html
    assert "Hello {{ reader.name }}, and welcome" in rendered.text
    assert "https://example.com/prefs?email={{ reader.email }}" in rendered.text
    # Every slot in the parts is the canonical `{{ reader.x }}`, whatever the editor typed.
    for part in (rendered.html, rendered.text):
        assert all(m.group(0) == f"{{{{ reader.{m.group(1)} }}}}" for m in SLOT.finditer(part))


def test_a_slot_is_never_split_across_text_lines():
    text = "word " * 14 + "{{ reader.unsubscribe_url }} and more words after it to wrap"
    wrapped = wrap(text, 78)
    assert "{{ reader.unsubscribe_url }}" in wrapped.splitlines()[1]


def test_editor_text_looking_like_the_slot_token_is_left_alone():
    html = "<html><body><p>digest-slot--name-- and {{ reader.name }}</p></body></html>"
    out, _ = inline_css(html)
    assert "digest-slot--name-- and {{ reader.name }}" in out


# ── Links email must not carry ───────────────────────────────────────────────────────────────


def test_bad_scheme_links_are_neutralized(sink):
    _, rendered = sink
    root = parse(rendered.html)
    hrefs = [a.get("href") for a in root.iter("a")]
    srcs = [img.get("src") for img in root.iter("img")]
    assert not any(h.lower().startswith(("javascript:", "file:", "data:")) for h in hrefs)
    assert not any(s.lower().startswith("data:") for s in srcs)
    body_text = visible_text(root.find("body"))
    assert "run this, a local file and a tracking pixel" in body_text  # the words stay
    assert "javascript" not in rendered.text and "file:" not in rendered.text and "data:" not in rendered.text
    assert "run this, a local file and a tracking pixel" in " ".join(rendered.text.split())


@pytest.mark.parametrize(
    ("href", "live"),
    [
        ("https://example.com", True),
        ("HTTP://example.com", True),
        ("mailto:a@example.com", True),
        ("#item-2", True),
        ("{{ reader.unsubscribe_url }}", True),
        ("%7B%7Breader.unsubscribe_url%7D%7D", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("java\tscript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("vbscript:x", False),
        ("data:text/html,hi", False),
        ("file:///etc/passwd", False),
        ("example.com/page", False),
        ("", False),
        ("#", False),
    ],
)
def test_link_is_live(href, live):
    assert link_is_live(href) is live


def test_raw_html_links_and_scripts_in_a_draft_are_neutralized(tmp_path):
    draft = (
        '---\ntitle: T\nsubject: S\ndate: 2026-01-01\n---\n\nHi <a href="javascript:alert(1)">there</a>.\n\n'
        '<script>alert(1)</script>\n\n## 1. One\n\nBody <img src="cid:x" alt="inline">.\n'
    )
    issue = parse_draft(draft, tmp_path / "raw.md")
    rendered = render_issue(issue, make_workspace(tmp_path))
    root = parse(rendered.html)
    assert all(not (a.get("href") or "").startswith("javascript") for a in root.iter("a"))
    assert not list(root.iter("script"))
    assert not list(root.iter("img"))
    assert "inline" in visible_text(root.find("body"))


# ── The text part ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("which", ["sample", "sink"])
def test_text_lines_fit_78_columns_except_urls(which, request):
    _, rendered = request.getfixturevalue(which)
    for line in rendered.text.splitlines():
        if display_width(line) > 78:
            assert re.search(r"(https?|mailto):\S+$", line), f"line too wide: {line!r}"
            assert display_width(re.sub(r"\S*(https?|mailto):\S+", "", line)) <= 78


@pytest.mark.parametrize("which", ["sample", "sink"])
def test_text_has_no_entities_tags_or_markdown(which, request):
    _, rendered = request.getfixturevalue(which)
    text = SLOT.sub("", rendered.text)
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text, re.IGNORECASE)
    assert not re.search(r"</?[a-z][^>]*>", text)
    for syntax in ("**", "__", "](", "`", "~~", "![", "{{", "{%"):
        assert syntax not in text, syntax
    assert not re.search(r"^#{1,6} ", text, re.MULTILINE)
    assert not re.search(r"^> ", text, re.MULTILINE)


def test_text_layout_title_items_references_footer(sample):
    _, rendered = sample
    text = rendered.text
    assert text.startswith("The Lantern Weekly\n==================\nIssue 42 · 20 November 2026\n")
    assert text.index("Good morning") < text.index("In this issue:") < text.index("Wrapping Up\n---")
    assert "operator’s route page [1]." in " ".join(text.split())
    assert "\n[1] https://example.com/trains/alpine-night\n" in text
    # Each reference is listed under the item that cites it, before the next item starts.
    assert text.index("1. Night trains return") < text.index("[1] https://") < text.index("\n2. City council")
    assert "full weekly report [4]" in " ".join(text.split())
    assert text.endswith("\nUnsubscribe at any time, in one click:\n{{ reader.unsubscribe_url }}\n")
    assert "\n\n\n" not in text and not any(line != line.rstrip() for line in text.splitlines())


def test_text_walker_handles_lists_quotes_code_tables(sink):
    _, rendered = sink
    text = rendered.text
    assert "\n- a lantern\n- warm socks\n- a friend who can sing\n" in text
    assert "\n1. Meet at the bridge at 6 p.m.\n\n2. Walk to the square" in text
    assert "\n   - bring water\n   - bring a chair\n" in text
    assert "\n    “Noise is a public-health problem" in text
    assert "\n    digest render drafts/2026-12-04-kitchen-sink.md --out out\n" in text
    assert "\nZürich–Ljubljana  21:40    $89\n" in text
    assert "old post office,\n12 Hill Street" in text  # the hard line break
    assert "\nA paper lantern glowing over the river at dusk\n" in text  # an image becomes its alt text
    assert "visit https://example.com/contact." in text  # an autolink is its own reference
    assert "[4] mailto:editor@example.com" in text


def test_wrap_counts_wide_characters_as_two_columns():
    korean = "가" * 50  # 100 columns, no spaces: may break between characters
    lines = wrap(korean, 78).splitlines()
    assert [display_width(line) for line in lines] == [78, 22]
    url = "https://example.com/" + "x" * 90
    assert wrap(f"see {url} now", 78).splitlines() == ["see", url, "now"]
    assert wrap("a b c", 78, first="1. ", rest="   ") == "1. a b c"


# ── Environment, templates, output ───────────────────────────────────────────────────────────


def test_environment_is_cached_per_search_path(tmp_path):
    packaged_only = environment(make_workspace(tmp_path))
    assert environment(make_workspace(tmp_path)) is packaged_only
    (tmp_path / "templates").mkdir()  # a new search path: the workspace's folder, then digest's own
    env = environment(make_workspace(tmp_path))
    assert env is not packaged_only and env.loader.searchpath[0] == str(tmp_path / "templates")
    assert env.autoescape("email.html.j2") and env.autoescape("x.html") and not env.autoescape("email.txt.j2")


def test_one_environment_factory_for_the_email_and_the_scaffold(tmp_path):
    workspace = make_workspace(tmp_path)
    email, draft = environment(workspace), environment(workspace, "draft")
    assert draft is environment(workspace, "draft") and draft is not email
    assert draft.loader.searchpath == email.loader.searchpath
    for env in (email, draft):
        assert {"wrap", "underline", "yaml"} <= set(env.filters) and env.keep_trailing_newline
        with pytest.raises(jinja2.UndefinedError):  # a misspelt name fails loudly in both
            env.from_string("{{ missing.field }}").render()
    # The one difference: the email drops a block tag's line; the scaffold's Markdown keeps its lines.
    source = "a\n  {% if true %}\nb\n{% endif %}\n"
    assert email.from_string(source).render() == "a\nb\n"
    assert draft.from_string(source).render() == "a\n  \nb\n\n"
    assert draft.from_string("title: {{ t | yaml }}").render(t='Café "x"') == 'title: "Café \\"x\\""'


def test_workspace_template_overrides_file_by_file(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "email.txt.j2").write_text(
        "OWN TEXT {{ issue.title }} {{ reader.unsubscribe_url }}\n", encoding="utf-8"
    )
    issue = load_draft(SAMPLE)
    rendered = render_issue(issue, make_workspace(tmp_path))
    assert rendered.text == "OWN TEXT The Lantern Weekly {{ reader.unsubscribe_url }}\n"
    assert "In this issue" in rendered.html  # the HTML still comes from digest's own template
    assert rendered.issue_id == "the-lantern-weekly-42"
    assert rendered.name == "2026-11-20-weekly"


def test_template_errors_name_the_template_and_line(tmp_path):
    (tmp_path / "templates").mkdir()
    own = tmp_path / "templates" / "email.txt.j2"
    own.write_text("ok\n{% if %}\n", encoding="utf-8")
    issue = load_draft(SAMPLE)
    with pytest.raises(DigestError) as caught:
        render_issue(issue, make_workspace(tmp_path))
    assert str(caught.value).startswith(f"{own}:2: template syntax error")
    own.write_text("line one\n{{ issue.titel }}\n", encoding="utf-8")
    with pytest.raises(DigestError) as caught:
        render_issue(issue, make_workspace(tmp_path))
    assert f"{own}:2" in str(caught.value) and "titel" in str(caught.value)


def test_css_warnings_are_collected_not_printed(tmp_path, capfd):
    packaged = environment(make_workspace(tmp_path)).loader.searchpath[-1]
    html = Path(packaged, "email.html.j2").read_text(encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "email.html.j2").write_text(
        html.replace(".title {", ".title { colr: red;"), encoding="utf-8"
    )
    issue = load_draft(SAMPLE)
    for _ in range(2):  # reported every time, not only on the first parse
        rendering = render(issue, make_workspace(tmp_path))
        assert any("colr" in w for w in rendering.css_warnings)
        assert not any("mso-" in w or "color-scheme" in w for w in rendering.css_warnings)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert set(rendering.seconds) == {"markdown", "jinja", "inline", "total"}


def test_write_rendered(tmp_path, sample):
    _, rendered = sample
    written = write_rendered(rendered, tmp_path / "out")
    assert [w.path.name for w in written] == ["2026-11-20-weekly.html", "2026-11-20-weekly.txt"]
    for w in written:
        assert w.path.stat().st_size == w.size > 0
    assert written[0].path.read_text(encoding="utf-8") == rendered.html


def test_render_is_deterministic(sink):
    issue, rendered = sink
    again = render_issue(issue, make_workspace(KITCHEN_SINK.parent, title="The Kitchen Sink"))
    assert again == rendered
    assert isinstance(again, RenderedIssue)


# ── The package: one job per module, the heavy ones loaded on first use ──────────────────────


def test_rendered_issue_comes_without_the_rendering_stack():
    # message/ and delivery/ hold a RenderedIssue; `digest status` must not pay for Jinja2 or premailer.
    probe = (
        "import sys, digestcli.render, digestcli.render.rendered, digestcli.render.text;"
        " print(sorted(m for m in ('jinja2', 'premailer', 'lxml', 'cssutils') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names_load_on_first_use():
    import digestcli.render as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
        assert name in dir(package)
    assert package.render_issue.__module__ == "digestcli.render.compose"
    with pytest.raises(AttributeError):
        _ = package.Reader  # renamed SlotReader: message.Reader is the real one


def test_premailer_and_jinja2_are_imported_in_one_module_each():
    package = ROOT / "digestcli"
    imports = re.compile(r"^\s*(?:import|from)\s+(jinja2|premailer)\b", re.MULTILINE)
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        for match in imports.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group(1), set()).add(path.relative_to(package).as_posix())
    assert found == {"jinja2": {"render/templates.py"}, "premailer": {"render/inline.py"}}


def test_the_email_links_to_its_web_page_when_the_site_has_an_address(tmp_path):
    from conftest import VALID_DRAFT

    from digestcli.config import Config, WebConfig, Workspace
    from digestcli.draft import parse_draft
    from digestcli.render import render_issue

    issue = parse_draft(VALID_DRAFT, tmp_path / "drafts" / "renamed-anything.md")
    plain = render_issue(issue, Workspace(tmp_path, Config()))
    assert "View in your browser" not in plain.html and "View in your browser" not in plain.text
    config = Config()._replace(web=WebConfig(base_url="https://lantern.example.org/issues/"))
    rendered = render_issue(issue, Workspace(tmp_path, config))
    url = "https://lantern.example.org/issues/2026-11-20-test-weekly-7/"  # date and id, not the file name
    assert f'href="{url}"' in rendered.html
    assert f"View in your browser: {url}" in rendered.text
