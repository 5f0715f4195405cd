"""The shapes of a pasted page (digestcli.paste): chrome against sentences that share its words,
bare headlines against paragraphs that start with a number, a paragraph on a line, date lines."""

from __future__ import annotations

import datetime as dt

import pytest

from digestcli.paste import (
    chrome_label,
    date_in,
    date_of,
    ends_sentence,
    headline_of,
    reads_as_paragraph,
    story_headlines,
    title_case,
)


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("top of page", "page anchor"),
        ("Bottom of Page", "page anchor"),
        ("Skip to content", "skip link"),
        ("Writer's pictureJane Doe", "author picture"),
        ("Writer’s pictureJane DoeNov 20, 20262 min read", "author picture"),
        ("Author's photo", "author picture"),
        ("Photo du rédacteurClaire Baumann", "author picture"),
        ("Autorenbild", "author picture"),
        ("2 min read", "reading time"),
        ("3 min de lecture", "reading time"),
        ("2 Min. Lesezeit", "reading time"),
        ("Lesezeit: 4 Min.", "reading time"),
        ("2-minute read", "reading time"),
        ("Comments", "comment count"),
        ("Commentaires", "comment count"),
        ("Kommentare", "comment count"),
        ("Comentarios", "comment count"),
        ("Commenti", "comment count"),
        ("Comentários", "comment count"),
        ("Reacties", "comment count"),
        ("0 Kommentare", "comment count"),
        ("Comments (4)", "comment count"),
        ("Write a comment...", "comments link"),
        ("Share this post", "share button"),
        ("[Share this post](#)", "share button"),
        ("Like", "like button"),
        ("Post not marked as liked", "like button"),
        ("12 views", "view count"),
        ("1.2k views", "view count"),
        ("12 vues", "view count"),
        ("12 views0 comments", "view count + comment count"),
        ("12 Aufrufe0 Kommentare", "view count + comment count"),
        ("LikeComment", "like button + comment count"),
        ("Recent Posts", "recent posts heading"),
        ("Posts récents", "recent posts heading"),
        ("Recent PostsSee All", "recent posts heading + see-all link"),
        ("See All", "see-all link"),
        ("Alle ansehen", "see-all link"),
        ("Log in", "login link"),
        ("[Sign in](#/portal/signin)", "login link"),
        ("Subscribe", "subscribe button"),
        ("Type your email...", "subscribe button"),
        ("© 2026 Harbour Ledger. All rights reserved.", "copyright line"),
        ("Privacy ∙ Terms ∙ Collection notice", "site footer"),
        ("Nov 27, 2026 • 3 min read", "date + reading time"),
        ("Posted on November 20, 2026 by Mira Chen", "byline"),
        ("Subscribe to Pocket Signals", "subscribe button"),
        ("Substack is the home for great culture", "site footer"),
        ("∙ Paid", "paid-post mark"),
        ("Read more", "read-more link"),
        ("Pocket Signals © 2026", "copyright line"),
        ("All Posts", "site menu"),
        ("- [X](#)", "share button"),
        ("Like this:\\", "like button"),  # with the hard break a <br> leaves in Markdown
    ],
)
def test_chrome_is_named(line: str, label: str) -> None:
    assert chrome_label(line) == label


@pytest.mark.parametrize(
    "line",
    [
        "Readers like the new app.",
        "Like the new app, the old one crashed.",
        "Likewise",
        "Shareholders",
        "Printed",
        "Comments from readers poured in after last week's issue.",
        "The share price fell 4% on Monday.",
        "Subscribe to the council's minutes if you want the detail.",
        "12 views of the harbour, painted by local children",
        "Nov 27, 2026",  # a date alone is a date line, for the importer to use
        "Night trains return to the Alpine route",
        "",
        # Sentences that start with a phrase of chrome that would take the rest of the line.
        "Updated on Friday with the company's response.",
        "More from Apple is expected next week.",
        "Terms of service updated.",
        "Powered by Gemini.",
        "Privacy policy changes at Meta.",
        "Copyright law is changing.",
        "Filed under seal.",
        "Published in Nature, the study is short.",
        "Photo © Reuters",  # a credit, not the page's footer
    ],
)
def test_sentences_with_chrome_words_are_not_chrome(line: str) -> None:
    assert chrome_label(line) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1. Night trains return", (1, "Night trains return")),
        ("3) Apple Buys $4.6 Billion Stake in D&G", (3, "Apple Buys $4.6 Billion Stake in D&G")),
        ("4. JD.Com Opens in Paris", (4, "JD.Com Opens in Paris")),
        ("5. vivo Releases X300 Pro", (5, "vivo Releases X300 Pro")),
        ("6. “PhoneGPT” Debuts", (6, "“PhoneGPT” Debuts")),
        ("7. Crumb & Co.", (7, "Crumb & Co.")),
        ("8. Is the Container Shortage Over?", (8, "Is the Container Shortage Over?")),
        ("10. iPhone 19 Leaks", (10, "iPhone 19 Leaks")),
        ("11. U.S. Bans Drones Over Ports", (11, "U.S. Bans Drones Over Ports")),
        (
            "12. What Happened to the Money? The Council Answers",
            (12, "What Happened to the Money? The Council Answers"),
        ),
        ("1000. The Last Story", (1000, "The Last Story")),
    ],
)
def test_bare_headlines(line: str, expected: tuple[int, str]) -> None:
    assert headline_of(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "2024 was the first year the port ordered cranes from abroad.",
        "1.5 million flights are planned in the first year.",
        "3 sources said the deal would close in March.",
        "2. The company said it would expand, and analysts agreed.",
        "2. The company said it would. Then it did",
        "9. the company said it would expand its fleet",
        "2. Carriers added 40 new ships to the transpacific trade in the last quarter alone.",
        "2024. A Year in Review",
        "4. Apple Sues Samsung.",
        "1. Reasons:",
        "## 1. Already a heading",
        "Headline without a number",
    ],
)
def test_numbered_paragraphs_are_not_headlines(line: str) -> None:
    assert headline_of(line) is None


def test_a_headline_stands_alone_before_a_paragraph() -> None:
    paste = [
        "1. Cranes Arrive in Rotterdam",
        "",
        "They came by sea.",
        "Two reasons:",
        "1. Carriers Added Ships",
        "2. Retailers Ordered Early",
        "3. Council Votes on the Budget",
        "",
        "",
        "4. Ferries Run Late",
    ]
    # Not 5 and 6, a numbered list; not 7, the list's last entry (another headline follows); not
    # 10, with nothing after it.
    assert story_headlines(paste) == {0: (1, "Cranes Arrive in Rotterdam")}


def _at(paste: str) -> list[tuple[int, str]]:
    """The headlines story_headlines finds in a paste, as (line from 1, "N. Headline")."""
    found = story_headlines(paste.splitlines())
    return [(index + 1, f"{n}. {text}") for index, (n, text) in sorted(found.items())]


def test_a_list_apart_by_blank_lines_is_no_stories() -> None:
    paste = """\
3. “PhoneGPT” Debuts

The company lists three reasons it chose on-device models:

1. Privacy for users who do not want their voice sent to a server

2. Speed on older phones with slow connections

3. Cost savings for a startup with no cloud budget

Analysts were skeptical that the model would fit on mid-range hardware.

4. $4.6 Billion Deal for D&G

A consortium agreed to buy a stake.
"""
    assert _at(paste) == [(1, "3. “PhoneGPT” Debuts"), (13, "4. $4.6 Billion Deal for D&G")]


def test_a_list_whose_entries_each_have_a_paragraph_is_no_stories() -> None:
    paste = """\
7. vivo Releases BlueLM

Three things stood out:

1. Launch

The model launches in China first.

2. Size

It comes in two sizes.

8. Nothing Phone (3) Reviewed

We spent a week with it.
"""
    assert _at(paste) == [(1, "7. vivo Releases BlueLM"), (13, "8. Nothing Phone (3) Reviewed")]


def test_the_next_story_right_below_a_list_in_a_paste_with_no_blank_lines() -> None:
    paste = """\
3. Google's Pixel Sales Double
Google sold twice as many Pixels in the third quarter as a year ago.
The steps Google took, in order:
1. Cut prices in India
2. Added carrier deals in Japan
3. Extended updates to seven years
4. Huawei Returns to Europe
Huawei will sell the Mate 80 in Germany and Spain from January.
5. A Tiny Phone Nobody Asked For.
A Kickstarter for a phone the size of a credit card raised $2 million in a week.
"""
    assert _at(paste) == [
        (1, "3. Google's Pixel Sales Double"),
        (7, "4. Huawei Returns to Europe"),
        (9, "5. A Tiny Phone Nobody Asked For."),  # a full stop, where story 5 is due
    ]
    # A list in title case, like the headline after it: the headline is still the story's, as
    # story 4 does not come further down.
    titled = (
        paste.replace("Cut prices in India", "Cut Prices in India")
        .replace("Added carrier deals in Japan", "Added Carrier Deals")
        .replace("updates to seven years", "Updates to Seven Years")
    )
    assert _at(titled) == _at(paste)


def test_a_list_entry_numbered_as_the_next_story_is_the_lists_when_that_story_comes_later() -> None:
    paste = """\
1. vivo Releases BlueLM

Three things stood out:

1. Launch

The model launches in China first.

2. Size

It comes in two sizes.

2. Nothing Phone (3) Reviewed

We spent a week with it.
"""
    assert _at(paste) == [(1, "1. vivo Releases BlueLM"), (13, "2. Nothing Phone (3) Reviewed")]
    # As a draft has it: the story a heading, read as such.
    lines = paste.replace("2. Nothing", "## 2. Nothing").splitlines()
    assert story_headlines(lines, headings={0: 1, 12: 2}) == {}


def test_a_headline_with_a_full_stop_only_where_a_story_is_due() -> None:
    assert headline_of("4. Apple Sues Samsung.") is None  # alone, a numbered sentence may be one
    story = "\nSamsung will appeal, its lawyers said on Monday.\n"
    assert _at("3. Chips\n\nText.\n\n4. Apple Sues Samsung.\n" + story) == [
        (1, "3. Chips"),
        (5, "4. Apple Sues Samsung."),
    ]
    assert _at("3. Chips\n\nText.\n\n6. Apple Sues Samsung.\n" + story) == [(1, "3. Chips")]
    sentence = "3. Chips\n\nText.\n\n4. The court said Apple would have to pay the fine.\n" + story
    assert _at(sentence) == [(1, "3. Chips")]


def test_a_gap_in_the_numbers_is_a_headline_but_not_a_list_that_starts_again() -> None:
    paste = "5. Ferries Return\n\nThey run again.\n\n7. Night Market Opens\n\nIt opens on Friday.\n"
    assert _at(paste) == [(1, "5. Ferries Return"), (5, "7. Night Market Opens")]
    again = "5. Ferries Return\n\nThey run again.\n\n1. Regulators\n\nThat was all.\n"
    assert _at(again) == [(1, "5. Ferries Return")]
    after_colon = "5. Ferries Return\n\nOne reason, it said:\n\n7. Regulators\n\nThat was all.\n"
    assert _at(after_colon) == [(1, "5. Ferries Return")]


def test_a_table_of_contents_before_the_first_story_is_no_stories() -> None:
    paste = """\
In this issue:

1. Ferries Return

2. Night Market Opens

Hello, readers, and welcome.

1. Ferries Return

They run again.
"""
    assert _at(paste) == [(9, "1. Ferries Return")]


def test_title_case() -> None:
    assert title_case("Huawei Returns to Europe") and title_case("vivo Releases BlueLM")
    assert title_case("A Tiny Phone Nobody Asked For.") and title_case("Launch")
    assert not title_case("Cut prices in India") and not title_case("Extended updates to seven years")


def test_reads_as_paragraph() -> None:
    assert reads_as_paragraph(
        "The plant outside Phoenix will package processors designed in California and made in Taiwan."
    )
    assert reads_as_paragraph("“It is a good day for the port,” the mayor said, “and for the city as well.”")
    assert not reads_as_paragraph("The plant outside Phoenix will package processors designed in")
    assert not reads_as_paragraph("See you next Friday.")
    assert not reads_as_paragraph("- A list entry that is long enough to be a paragraph on its own, surely.")
    assert not reads_as_paragraph("## A heading that is long enough to be a paragraph on its own, surely.")
    assert ends_sentence("Is it over?”") and not ends_sentence("Is it over, then")


@pytest.mark.parametrize(
    ("line", "day"),
    [
        ("Nov 20, 2026", dt.date(2026, 11, 20)),
        ("Friday, November 27, 2026", dt.date(2026, 11, 27)),
        ("2026-11-20", dt.date(2026, 11, 20)),
        ("20 novembre 2026", dt.date(2026, 11, 20)),
        ("20 nov. 2026", dt.date(2026, 11, 20)),
        ("20. November 2026", dt.date(2026, 11, 20)),
        ("20 de noviembre de 2026", dt.date(2026, 11, 20)),
        ("Mar 3, 2026", dt.date(2026, 3, 3)),
    ],
)
def test_date_lines(line: str, day: dt.date) -> None:
    assert date_of(line) == day


@pytest.mark.parametrize(
    "line", ["Hello 2026", "Nov 31, 2026", "Banana 20, 2026", "The meeting on Nov 20, 2026 ran late"]
)
def test_not_date_lines(line: str) -> None:
    assert date_of(line) is None


@pytest.mark.parametrize(
    ("line", "day"),
    [
        ("Posted on November 20, 2026 by Mira Chen", dt.date(2026, 11, 20)),
        ("Mira ChenDec 4, 2026", dt.date(2026, 12, 4)),
        ("Writer's pictureJane DoeNov 20, 20262 min read", dt.date(2026, 11, 20)),
        ("Published 2026-11-27", dt.date(2026, 11, 27)),
    ],
)
def test_a_date_inside_a_line(line: str, day: dt.date) -> None:
    assert date_in(line) == day
    assert date_of(line) is None  # the line is more than a date: no date line


def test_no_date_inside_a_line() -> None:
    assert date_in("Osmar 31, 2026 was a long day") is None and date_in("Hello 2026") is None


def test_a_line_of_repeated_chrome_is_read_in_steps_linear_in_its_length(monkeypatch) -> None:
    """Pieces that end where others do ("1 min." and "1 min") must not make every way through a
    line be tried again from each place (26 of them took hours)."""
    import digestcli.paste as paste

    tried = 0
    starts = paste._starts

    line = "1 min." * 26 + " zz"

    def counted(text: str, at: int):  # type: ignore[no-untyped-def]
        nonlocal tried
        tried += 1
        # Each place tried once at most: failing here, a regression fails at once, not in hours.
        assert tried <= len(line), "places tried again"
        yield from starts(text, at)

    monkeypatch.setattr(paste, "_starts", counted)
    assert paste.chrome_label(line) is None
    assert tried <= len(line)
    assert paste.chrome_label("1 min. read" * 3) is not None  # and chrome is still chrome


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("Follow us on Instagram", "follow link"),
        ("Like us on Facebook", "follow link"),
        ("Email", "share button"),
        ("Tweet this", "share button"),
        ("Follow us for the council's full statement", None),  # a sentence, not a button
    ],
)
def test_the_chrome_lint_flagged_alone_is_chrome_to_import_too(line: str, label: str | None) -> None:
    """One vocabulary: what `leftover-boilerplate` flags, `digest import` leaves out (lint's own
    list of patterns, beside this one, once flagged lines import kept)."""
    from digestcli.paste import chrome_label

    assert chrome_label(line) == label
