"""The spelling rules: `spelling` (a real dictionary, the names of a news digest left alone, US and
British English, the house word list) and `repeated-word`; the dictionary's cache; `add_words`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import VALID_DRAFT

from digestcli.config import LintConfig
from digestcli.draft import load_draft, parse_draft
from digestcli.errors import UsageError
from digestcli.lint import Finding, lint_issue
from digestcli.lint.spelling import Dictionary, _Store, cache_dir, check_spelling, language_code
from digestcli.words import add_words, list_words, read_words

INTRO = "Hello, and welcome to the seventh issue."
FIRST = "## 1. The first story"
SECOND = "## 2. The second story"


def lint(
    folder: Path, text: str, *, words: str | None = None, toml: str = "", **settings: object
) -> list[Finding]:
    """Lint ``text`` as drafts/d.md of a workspace in ``folder`` (with ``words`` as its words.txt
    and ``toml`` added to its digest.toml)."""
    (folder / "digest.toml").write_text(f'[newsletter]\ntitle = "Test Weekly"\n{toml}', encoding="utf-8")
    if words is not None:
        (folder / "words.txt").write_text(words, encoding="utf-8")
    (folder / "drafts").mkdir(exist_ok=True)
    path = folder / "drafts" / "d.md"
    path.write_text(text, encoding="utf-8")
    return lint_issue(load_draft(path), LintConfig(**settings))  # type: ignore[arg-type]


def spelling(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "spelling"]


def repeats(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule == "repeated-word"]


def words_in(findings: list[Finding]) -> list[str]:
    """The words that findings are about, in order."""
    return [f.message.split("'")[1] for f in findings]


def with_intro(text: str) -> str:
    return VALID_DRAFT.replace(INTRO, text)


# Misspellings, where a sentence or a headline starts too


def test_a_misspelling_opening_a_sentence_is_found_with_its_correction(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, with_intro("Hello. Moroever, TikTok is back.")))
    assert (finding.line, finding.column) == (9, 8)
    assert finding.message == "'Moroever': did you mean 'Moreover'?"
    assert finding.severity == "warning" and not finding.fixable


def test_a_misspelling_opening_a_headline_is_found(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, VALID_DRAFT.replace(FIRST, "## 1. Moroever, TikTok is back")))
    assert (finding.line, finding.column) == (11, 7)
    assert finding.message == "'Moroever': did you mean 'Moreover'?"


def test_the_subject_and_the_preheader_are_checked(tmp_path: Path) -> None:
    text = VALID_DRAFT.replace("three stories", "three storeis").replace("short stories", "short storiez")
    findings = spelling(lint(tmp_path, text))
    assert [(f.line, word) for f, word in zip(findings, words_in(findings), strict=True)] == [
        (3, "storeis"),
        (6, "storiez"),
    ]


def test_a_misspelling_is_reported_once_where_the_draft_first_has_it(tmp_path: Path) -> None:
    text = with_intro("Hello. Moroever, it rained.").replace(FIRST, "## 1. Moroever, TikTok is back")
    [finding] = spelling(lint(tmp_path, text))
    assert (finding.line, finding.column) == (9, 8)
    assert finding.message == "'Moroever': did you mean 'Moreover'? (2 times in this draft)"


def test_up_to_three_suggestions_the_most_common_first(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, with_intro("We had a hapy week.")))
    assert finding.message.startswith("'hapy': did you mean 'happy', ")
    assert finding.message.count("'") == 8  # the word and three suggestions


def test_a_word_without_a_close_one_says_where_to_add_it(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, with_intro("We met the qwxzqwxz people.")))
    assert finding.message == "'qwxzqwxz' is not in the dictionary: if it is right, add it to words.txt"


# Names


def test_the_names_of_a_news_digest_are_not_reported(tmp_path: Path) -> None:
    text = with_intro(
        "TikTok owner ByteDance and Pinduoduo took on Meituan and Lazada, while vivo showed BlueLM"
        " on the GN06. Lazada's answer came on Monday."
    ).replace(FIRST, "## 1. Pinduoduo and Meituan cut prices")
    assert spelling(lint(tmp_path, text)) == []


def test_a_word_used_as_a_name_is_a_name_everywhere(tmp_path: Path) -> None:
    alone = with_intro("Hello. Alibaba opened a store.")
    [finding] = spelling(lint(tmp_path, alone))
    assert "'Alibaba'" in finding.message and (finding.line, finding.column) == (9, 8)
    named = alone.replace("Another paragraph,", "Another paragraph about Alibaba,")
    assert spelling(lint(tmp_path, named)) == []


def test_a_capitalized_word_after_an_abbreviation_is_a_name(tmp_path: Path) -> None:
    text = with_intro("We met Dr. Zorblat and J. K. Quxley at 8 p.m. Zorblat said hello.")
    assert spelling(lint(tmp_path, text)) == []


def test_a_title_case_headline_is_checked_word_by_word(tmp_path: Path) -> None:
    title = VALID_DRAFT.replace(SECOND, "## 2. Zorblat Expands Into Three New Markets")
    [finding] = spelling(lint(tmp_path, title))
    assert "'Zorblat'" in finding.message and (finding.line, finding.column) == (15, 7)
    # ... unless the draft uses the word as a name elsewhere, or words.txt has it.
    elsewhere = title.replace("Another paragraph,", "Another paragraph on Zorblat,")
    assert spelling(lint(tmp_path, elsewhere)) == []
    assert spelling(lint(tmp_path, title, words="zorblat\n")) == []
    # In a headline in sentence case, a capitalized word after the first is a name.
    sentence_case = VALID_DRAFT.replace(SECOND, "## 2. Shoppers flock to Zorblat in three new markets")
    assert spelling(lint(tmp_path, sentence_case)) == []


def test_a_title_case_headline_is_no_evidence_of_a_name(tmp_path: Path) -> None:
    text = VALID_DRAFT.replace(SECOND, "## 2. Council Says Moroever Is Fine").replace(
        INTRO, "Hello. Moroever, it rained."
    )
    [finding] = spelling(lint(tmp_path, text))
    assert finding.line == 9 and "(2 times in this draft)" in finding.message


# What is not a word to check


@pytest.mark.parametrize(
    "sentence",
    [
        "Read https://qwxz.example.com/zorblat today.",
        "Read www.qwxz.com/zorblat today.",
        "Read <https://qwxz.example.com/zorblat> today.",
        "Write to zorblat@qwxz.org today.",
        "Run `qwxz --zorblat` today.",
        "Read [the notes](https://example.com/qwxz-zorblat) today.",
        "Hello {{ reader.qwxz }}, today.",
        "The GN06, the X200q and the 4x4 ship in 2026.",
        "The QWXZ and the NGOs agreed.",
        "Its ZorBlat and iQwxz apps launched.",
        "The Qwxz-Zorblat deal closed.",
        "Айгерим Сапарова and 김민지 won.",
    ],
)
def test_links_addresses_code_numbers_acronyms_and_camelcase_are_skipped(
    tmp_path: Path, sentence: str
) -> None:
    assert spelling(lint(tmp_path, with_intro(sentence))) == []


def test_the_same_word_in_plain_text_is_found(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, with_intro("Read qwxz today.")))


def test_a_sentence_after_a_link_or_code_still_starts_with_a_capital(tmp_path: Path) -> None:
    for sentence in ("See https://example.com/a. Moroever, it rained.", "Run `make`. Moroever, it rained."):
        [finding] = spelling(lint(tmp_path, with_intro(sentence)))
        assert "'Moroever'" in finding.message


def test_a_fenced_code_block_is_not_checked(tmp_path: Path) -> None:
    text = VALID_DRAFT.replace("- a list item", "```\nqwxz --zorblat\n```\n\n- a list item")
    assert spelling(lint(tmp_path, text)) == []


def test_three_unknown_words_in_a_row_are_a_phrase_in_another_language(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, with_intro("He wrote: go raibh maith agat, Tomás."))) == []
    two = spelling(lint(tmp_path, with_intro("He wrote raibh, maith and more.")))
    assert words_in(two) == ["raibh", "maith"]


def test_possessives_contractions_and_hyphenated_words(tmp_path: Path) -> None:
    text = with_intro("The council’s plan doesn't cover the bus-arrival app; they'll e-mail it.")
    assert spelling(lint(tmp_path, text)) == []
    [finding] = spelling(lint(tmp_path, with_intro("A well-knwon plan.")))
    assert "'knwon'" in finding.message and finding.column == 8


# US and British English


US = "The organizers authorized the monetization of the color program at the theater."
GB = "The organisers authorised the monetisation of the colour programme at the theatre."


def test_american_and_british_spellings_both_pass_by_default(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, with_intro(US))) == []
    assert spelling(lint(tmp_path, with_intro(GB))) == []


def test_spelling_us_takes_american_spellings_only(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, with_intro(US), spelling="us")) == []
    findings = spelling(lint(tmp_path, with_intro(GB), spelling="us"))
    assert words_in(findings) == [
        "organisers",
        "authorised",
        "monetisation",
        "colour",
        "programme",
        "theatre",
    ]
    colour = findings[3]
    assert (
        colour.message
        == "'colour' is the British spelling ([lint] spelling is \"us\"): did you mean 'color'?"
    )


def test_spelling_gb_takes_british_spellings_only(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, with_intro(GB), spelling="gb")) == []
    findings = spelling(lint(tmp_path, with_intro(US), spelling="gb"))
    # "program" is British English too (software); the rest is not.
    assert words_in(findings) == ["organizers", "authorized", "monetization", "color", "theater"]
    assert findings[0].message.endswith("did you mean 'organisers'?")


def test_units_in_metres_and_litres_pass_in_either_spelling(tmp_path: Path) -> None:
    text = "The tower is 300 metres tall; the meter read 12 kilometres and 4 litres, or 300 meters."
    assert spelling(lint(tmp_path, with_intro(text))) == []
    assert words_in(spelling(lint(tmp_path, with_intro(text), spelling="us"))) == [
        "metres",
        "kilometres",
        "litres",
    ]


def test_a_hyphenated_prefix_is_not_a_word_of_its_own(tmp_path: Path) -> None:
    text = "Pre-orders opened as the co-founder and a semi-retired ex-banker re-entered the race."
    assert spelling(lint(tmp_path, with_intro(text))) == []
    assert words_in(spelling(lint(tmp_path, with_intro("The pre-ordres opened.")))) == ["ordres"]


def test_suggestions_follow_the_spelling_setting(tmp_path: Path) -> None:
    [gb] = spelling(lint(tmp_path, with_intro("A colourfull day."), spelling="gb"))
    assert "'colourful'" in gb.message and "'colorful'" not in gb.message
    [us] = spelling(lint(tmp_path, with_intro("A colorfull day."), spelling="us"))
    assert "'colorful'" in us.message and "'colourful'" not in us.message


# The house word list


def test_words_txt_is_read_and_its_comments_ignored(tmp_path: Path) -> None:
    text = with_intro("Hello. Zorblat met qwxz and frobnik.")
    words = "# house words\nzorblat\nQWXZ  # any case\n\n# frobnik is only in a comment\n"
    findings = spelling(lint(tmp_path, text, words=words))
    assert words_in(findings) == ["frobnik"]
    assert read_words(tmp_path) == {"zorblat", "qwxz"}
    assert list_words(tmp_path) == ["zorblat", "QWXZ"]  # as written, for `digest words list`


def test_words_txt_is_read_at_every_lint(tmp_path: Path) -> None:
    text = with_intro("We met qwxz.")
    assert spelling(lint(tmp_path, text))
    assert spelling(lint(tmp_path, text, words="qwxz\n")) == []


def test_add_words_keeps_the_list_sorted_without_duplicates(tmp_path: Path) -> None:
    assert add_words(tmp_path, ["Zorblat", "qwxz"]) == ["Zorblat", "qwxz"]
    path = tmp_path / "words.txt"
    assert path.read_text(encoding="utf-8") == "qwxz\nZorblat\n"
    assert path.stat().st_mode & 0o777 == 0o644  # a file like any other, not a private temporary one
    path.write_text("# our words\n# one a line\nqwxz\nZorblat  # the tool\n", encoding="utf-8")
    assert add_words(tmp_path, ["frobnik", "zorblat", "QWXZ", "frobnik", "Bytedance"]) == [
        "frobnik",
        "Bytedance",
    ]
    assert path.read_text(encoding="utf-8") == (
        "# our words\n# one a line\nBytedance\nfrobnik\nqwxz\nZorblat  # the tool\n"
    )
    assert add_words(tmp_path, ["qwxz"]) == []
    assert add_words(tmp_path, ["'raibh'"]) == ["raibh"]  # as a finding quotes it
    with pytest.raises(UsageError, match="not one word"):
        add_words(tmp_path, ["two words"])


def test_a_draft_uses_its_own_workspace_words(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "words.txt").write_text("qwxz\n", encoding="utf-8")
    lint(tmp_path, with_intro("We met qwxz."))
    monkeypatch.chdir(tmp_path / "drafts")
    issue = parse_draft(with_intro("We met qwxz."), "d.md")  # a relative path: from the current folder
    assert spelling(lint_issue(issue, LintConfig())) == []


# The language


FRENCH = """\
---
title: La Lettre
subject: "La Lettre n° 7 : trois histoires"
date: 2026-11-20
preheader: "Les nouvelles de la semaine."
---

Bonjour à tous, voici les nouvelles de la semaine.

## 1. Le pont rouvre

La mairie annonce la réouverture du pont lundi.

## Wrapping Up

À la semaine prochaine.
"""


def test_the_dictionary_is_the_newsletters_language(tmp_path: Path) -> None:
    assert spelling(lint(tmp_path, FRENCH, toml='language = "fr"\n')) == []
    typo = FRENCH.replace("la réouverture", "la réouvertrue")
    assert words_in(spelling(lint(tmp_path, typo, toml='language = "fr-FR"\n'))) == ["réouvertrue"]
    assert "semaine" in words_in(spelling(lint(tmp_path, FRENCH)))  # in English, it is all wrong
    assert spelling(lint(tmp_path, with_intro(GB), toml='language = "en-GB"\n')) == []
    assert language_code("pt_BR") == "pt" and language_code("EN-us") == "en"


def test_a_language_without_a_dictionary_is_one_finding(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, VALID_DRAFT, toml='language = "xx"\n'))
    assert finding.line == 1 and "no dictionary for [newsletter] language 'xx'" in finding.message
    assert "en, " in finding.message and "spelling = false" in finding.message


def test_spanish_is_refused_for_its_word_list_lacks_plurals(tmp_path: Path) -> None:
    [finding] = spelling(lint(tmp_path, VALID_DRAFT, toml='language = "es"\n'))
    assert finding.line == 1 and "no plurals" in finding.message and "spelling = false" in finding.message


def test_russian_takes_e_for_yo() -> None:
    issue = parse_draft(with_intro("Цены на жильё и жилье выросли."), "d.md")
    assert list(check_spelling(issue, language="ru")) == []


def test_check_spelling_takes_its_settings_as_arguments() -> None:
    issue = parse_draft(with_intro("Hello. Moroever, we met qwxz."), "d.md")
    found = list(check_spelling(issue, house=["QWXZ"]))
    assert [r.message for r in found] == ["'Moroever': did you mean 'Moreover'?"]


# The cache


def test_the_dictionary_is_cached_under_the_user_cache_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache" / "digest"
    stale = tmp_path / "cache" / "digest" / "spelling-en-pyspellchecker0.0-1-00000000.words"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an older version", encoding="utf-8")

    made = Dictionary("en", _Store("en"))  # no cache yet: built from pyspellchecker's list
    assert made.known("moreover") and not made.known("moroever")
    files = sorted(p.suffix for p in cache_dir().glob("spelling-en-*"))
    assert files == [".counts", ".index", ".variants", ".words"]
    assert not stale.exists()

    store = _Store("en")
    read = Dictionary("en", store)  # from the cache, which it only reads: nothing is built
    assert store._built is None
    assert read.known("moreover") and read.known("colour") and not read.known("moroever")
    assert read.suggestions("moroever") == ["moreover"]

    # A damaged part is rebuilt.
    index = next(cache_dir().glob("spelling-en-*.index"))
    index.write_bytes(b"not a marshal")
    again = _Store("en")
    assert Dictionary("en", again).known("moreover") and again._built is not None
    assert index.read_bytes() != b"not a marshal"


def test_nothing_is_cached_in_the_repository() -> None:
    root = Path(__file__).resolve().parent.parent
    assert not list(root.rglob("spelling-*.words"))
    assert root not in cache_dir().parents


# repeated-word


def test_a_repeated_word_is_an_error_at_the_second_word(tmp_path: Path) -> None:
    [finding] = repeats(lint(tmp_path, with_intro("Hello, and welcome to the the seventh issue.")))
    assert (finding.line, finding.column) == (9, 27)
    assert finding.severity == "error"
    assert finding.message == "'the the': the same word twice in a row; delete one"


def test_a_repeated_word_is_found_in_any_case_and_across_a_line_break(tmp_path: Path) -> None:
    [upper] = repeats(lint(tmp_path, with_intro("The the council met.")))
    assert (upper.line, upper.column) == (9, 5)
    [broken] = repeats(lint(tmp_path, with_intro("We voted for the\nthe council.")))
    assert (broken.line, broken.column) == (10, 1)
    [linked] = repeats(lint(tmp_path, with_intro("Read [the](https://example.com/x) the notes.")))
    assert linked.line == 9


@pytest.mark.parametrize(
    "sentence",
    [
        "It had had enough.",
        "He said that that was fine.",
        "What it is is a library.",
        "We gave her her book.",
        "We stayed in. In the end, it rained.",
        "It was the end; the end came.",
        "They flew to Bora Bora.",
        "It was 2 2 times.",
    ],
)
def test_legitimate_doubles_and_sentence_ends_pass(tmp_path: Path, sentence: str) -> None:
    assert repeats(lint(tmp_path, with_intro(sentence))) == []


def test_the_sample_drafts_have_no_spelling_findings() -> None:
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "drafts").glob("*.md")):
        issue = load_draft(path)
        assert [f for f in lint_issue(issue, LintConfig()) if f.rule in ("spelling", "repeated-word")] == []
