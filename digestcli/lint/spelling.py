"""The rules on spelling: a word the dictionary does not know, and a word typed twice.

``spelling`` checks every word a reader sees in the subject, the preheader, the intro, the
headlines, the stories and the wrap-up against the dictionary of ``[newsletter] language``
(pyspellchecker's word lists, which install with it: en, es, fr, de, pt, it, nl, ru, ar, fa, lv,
eu; in English with digest's additions, ``digestcli.words.ENGLISH_ADDITIONS``: app, smartphone,
lockdown and the like, which the list predates) and the workspace's house list, ``words.txt``
(``digestcli.words``), read at every lint.

A news digest is full of names, so what cannot be a misspelling is not checked: links, e-mail
addresses, code, template slots, numbers and words with digits (GN06), ALL-CAPS acronyms, words
with a capital inside (TikTok, ByteDance, BlueLM), words in another script than the
dictionary's, and names. A capitalized word that does not open a sentence is a name, and a word
the draft uses as a name anywhere is one everywhere in it ("Alibaba" opening a sentence, after
"Alibaba" in the middle of one). A title-case headline capitalizes every word, so there a word
is a name only when the draft uses it as one elsewhere or ``words.txt`` has it. A misspelled word
that opens a sentence or a headline is still found. Three unknown words in a row are a phrase in
another language ("Go raibh maith agat"), not three typos. In English, US and British spellings
both pass unless ``[lint] spelling`` is ``us`` or ``gb``. Each unknown word is reported once,
where the draft first has it, with up to three suggestions.

The dictionary is loaded only when the rule runs, from a copy that the first run makes in the
user's cache folder (``$XDG_CACHE_HOME/digest``, else ``~/.cache/digest``), keyed by the
pyspellchecker version, the language and digest's own additions, and rebuilt when missing or
stale (see ``_Store``): the word list is a sorted text file mapped into memory and searched in
place, so that opening it takes a few milliseconds instead of the half second that decompressing
and parsing pyspellchecker's JSON takes. Word counts, to rank suggestions, are loaded only when
there is something to suggest.

``repeated-word`` finds "the the" (in any case, across a line break too); a few doubles that
are grammatical ("had had", "that that") pass.
"""

from __future__ import annotations

import bisect
import contextlib
import marshal
import mmap
import os
import re
import weakref
from collections.abc import Iterable, Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from markdown_it.token import Token

from digestcli.config import LintConfig, NewsletterConfig
from digestcli.draft import ITEM_HEADING, Issue
from digestcli.errors import replace_file
from digestcli.lint import Report, rule

# ------------------------------------------------------------------------------- the draft's text

# What a reader does not see as words, masked before the words are taken: code spans, HTML tags
# and autolinks, template syntax, URLs, e-mail addresses, entities.
_FILLER = "\x1a"  # a masked span: not a word, not a space, not a sentence's end
_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_URL = re.compile(r"\b(?:(?:https?|ftp|mailto|file):|www\.)[^\s<>]+")
_URL_END = ".,;:!?'\")]”’"  # after a URL, the sentence's: "see https://example.com."
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9A-Fa-f]+|\w+);")
# A link's or image's target (with its title) and a reference link's label: spaces, so that the
# link text reads on into the words after it ("[the](…) the" is "the the" to a reader).
_TARGET = re.compile(
    r"\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)|\]\[[^\]]*\]"
)

# A word (letters and digits, joined by apostrophes, hyphens or dots: it's, well-known, e.g), or
# a masked span.
_ITEM = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*|" + _FILLER + "+")
_OPENERS = " \t\n\"'“‘«(*_[~¡¿"
_CLOSERS = "\"'”’»)*_]~"
_SENTENCE_END = re.compile(rf"[{re.escape(_CLOSERS)}]*([.!?…]+)[{re.escape(_CLOSERS)}]*")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# A period after these does not end a sentence ("Dr. Rahman", "Crumb & Co. work").
_ABBREVIATIONS = _word_set(
    "dr mr mrs ms mx prof st mt ft jr sr co inc ltd corp bros vs approx dept est fig vol"
    " gen gov sen rep rev sgt capt col lt cmdr cf ca"
)
# Words a title-case headline leaves in lower case.
_MINOR = _word_set(
    "a an and as at but by en for from if in into nor of off on onto or out over per so than the"
    " to up upon via vs with yet"
)


class _Run:
    """A piece of text a reader sees (a paragraph, a headline, the subject), masked: what is not
    words (links' targets, code, addresses) replaced, so that offsets still match the source.
    ``starts`` are the offsets in it where each of its source lines begins, ``places`` the
    (line, column) of each such line's first character; a ``headline`` (or the subject) may be
    in title case. (Plain classes, not dataclasses: they cost lint's start-up less.)"""

    __slots__ = ("headline", "places", "starts", "text", "words")

    def __init__(
        self, text: str, starts: list[int], places: list[tuple[int, int]], headline: bool = False
    ) -> None:
        self.text = text
        self.starts = starts
        self.places = places
        self.headline = headline
        self.words: list[_Token] = []

    def place(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        line, column = self.places[i]
        return line, column + offset - self.starts[i]


class _Token:
    """One word of a run (as written, apostrophes made straight), where it is in the run, and
    what the checks need to know about where it stands: ``masked``, a masked span (a link,
    code: no word, but it ends none); ``start``, it opens a sentence, a paragraph, a list item
    or a headline; ``title``, it is in a title-case headline or subject."""

    __slots__ = ("end", "masked", "offset", "start", "text", "title")

    def __init__(self, text: str, offset: int, end: int, masked: bool, start: bool) -> None:
        self.text = text
        self.offset = offset
        self.end = end
        self.masked = masked
        self.start = start
        self.title = False


def _mask(text: str) -> str:
    def fill(match: re.Match[str]) -> str:
        return "".join(c if c == "\n" else _FILLER for c in match.group(0))

    def fill_url(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_URL_END)
        return _FILLER * len(url) + found[len(url) :]

    def blank(match: re.Match[str]) -> str:
        found = match.group(0)
        return found[0] + "".join(c if c == "\n" else " " for c in found[1:])

    # Each pattern only where its first sign is (most paragraphs have no code, tag or address).
    for sign, pattern in (("`", _CODE), ("<", _TAG), ("{", _TEMPLATE)):
        if sign in text:
            text = pattern.sub(fill, text)
    if "](" in text or "][" in text:
        text = _TARGET.sub(blank, text)
    if ":" in text or "www." in text:
        text = _URL.sub(fill_url, text)
    for sign, pattern in (("@", _EMAIL), ("&", _ENTITY)):
        if sign in text:
            text = pattern.sub(fill, text)
    return text


def _run(
    lines: tuple[str, ...], text: str, first_line: int, *, headline: bool = False, skip: int = 0
) -> _Run:
    """A run for ``text`` (an inline token's content) that starts on file line ``first_line``;
    each of its lines is found in the file's line to know its columns. ``skip`` characters at
    the start are masked (an item's number)."""
    starts: list[int] = []
    places: list[tuple[int, int]] = []
    offset = 0
    for n, part in enumerate(text.split("\n")):
        number = first_line + n
        source = lines[number - 1] if 0 < number <= len(lines) else ""
        stripped = part.strip()
        found = source.find(stripped) if stripped else -1
        column = found - (len(part) - len(part.lstrip())) if found >= 0 else 0
        starts.append(offset)
        places.append((number, column + 1))
        offset += len(part) + 1
    masked = _mask(text)
    if skip:
        masked = " " * skip + masked[skip:]
    return _Run(masked, starts, places, headline)


def _front_run(issue: Issue, key: str, headline: bool) -> _Run | None:
    value = issue.front.values.get(key)
    if not isinstance(value, str) or not value.strip():
        return None
    line = issue.front.line_of(key)
    source = issue.lines[line - 1] if 0 < line <= len(issue.lines) else ""
    found = source.find(value)
    if found < 0:  # written with escapes or over several lines: the words' columns are near enough
        found = source.find(":") + 2 if ":" in source else 0
    return _Run(_mask(value), [0], [(line, found + 1)], headline)


_last: tuple[weakref.ref[Issue], list[_Run]] | None = None


def _runs(issue: Issue) -> list[_Run]:
    """The draft's runs, made once for the rules that read them (the last draft's are kept)."""
    global _last
    last = _last  # read once: another thread (the preview server's) may replace it
    if last is not None and last[0]() is issue:
        return last[1]
    runs = _make_runs(issue)
    _last = (weakref.ref(issue), runs)
    return runs


def _make_runs(issue: Issue) -> list[_Run]:
    """Every piece of text the reader sees, in the order of the draft: the subject and the
    preheader, then the intro, each headline and its story, and the wrap-up (the wrap-up's own
    heading is the setting's, not the editor's words)."""
    runs: list[_Run] = []
    for key, headline in (("subject", True), ("preheader", False)):
        found = _front_run(issue, key, headline)
        if found is not None:
            runs.append(found)
    for item in (*issue.items, *issue.after_wrapup):
        content = item.heading.content
        match = ITEM_HEADING.match(content)
        skip = match.start(2) if match and item.number is not None else 0
        runs.append(_run(issue.lines, content, item.line, headline=True, skip=skip))
    for section in issue.sections:
        previous: Token | None = None
        for token in section.tokens:
            if token.type == "inline" and token.map is not None and token.content.strip():
                headline = previous is not None and previous.type == "heading_open"
                runs.append(
                    _run(issue.lines, token.content, token.map[0] + section.line_offset, headline=headline)
                )
            previous = token
    runs.sort(key=lambda r: r.places[0])
    for found in runs:
        _tokenize(found)
    return runs


def _tokenize(run: _Run) -> None:
    """The run's words, each marked as opening a sentence or not, and as in title case or not."""
    text = run.text
    words: list[_Token] = []
    previous: _Token | None = None
    end = 0
    for match in _ITEM.finditer(text):
        found = match.group()
        offset = match.start()
        word = _Token(
            found.replace("’", "'") if "’" in found else found,
            offset,
            match.end(),
            found[0] == _FILLER,
            _opens_sentence(text[end:offset], previous),
        )
        words.append(word)
        previous, end = word, word.end
    if run.headline and _title_case(words):
        for word in words:
            word.title = True
    run.words = words


def _opens_sentence(before: str, previous: _Token | None) -> bool:
    """Whether a word opens a sentence, from the text ``before`` it (since the word or masked
    span ``previous``): the run's start, or the end of a sentence, quotes and brackets aside."""
    if before == " " and previous is not None:
        return False  # most words: one space after the last
    gap = before.strip(" \t\n").rstrip(_OPENERS)
    if previous is None:
        return gap.strip(_OPENERS + _CLOSERS) == ""
    end = _SENTENCE_END.fullmatch(gap)
    if end is None:
        return False
    if end.group(1) == "." and not previous.masked:  # "Dr. Rahman", "J. K. Rowling", "8 p.m. The"
        last = previous.text
        if "." in last or len(last) == 1 or last.casefold() in _ABBREVIATIONS:
            return False
    return True


def _title_case(words: list[_Token]) -> bool:
    """Whether a headline is in title case: every word after the first that is not a short
    function word ("of", "the") starts with a capital, and there are at least two of them."""
    considered = [
        w.text
        for w in words[1:]
        if not w.masked
        and w.text.casefold() not in _MINOR
        and w.text[:1].isalpha()
        and not any(c.isdigit() for c in w.text)
    ]
    return len(considered) >= 2 and all(w[0].isupper() for w in considered)


# --------------------------------------------------------------------------------- which words


_NUMBERISH = re.compile(r"[\d_.]")


@lru_cache(maxsize=1 << 16)
def _split(text: str) -> tuple[tuple[str, int], ...]:
    """The words of a token to check, each with its offset in it: none for a token with digits,
    an underscore or a dot (a number, GN06, code, e.g., a domain), each part of a hyphenated
    word; the possessive 's dropped."""
    if _NUMBERISH.search(text):
        return ()
    parts: list[tuple[str, int]] = []
    offset = 0
    pieces = text.split("-")
    for n, part in enumerate(pieces):
        if n < len(pieces) - 1 and part.casefold() in _PREFIXES:
            offset += len(part) + 1  # pre-orders, co-founder: the prefix is no word of its own
            continue
        parts.append((part[:-2] if part.endswith("'s") and len(part) > 3 else part.rstrip("'"), offset))
        offset += len(part) + 1
    return tuple(parts)


# Prefixes that English joins to a word with a hyphen and that are not words themselves.
_PREFIXES = frozenset(
    [
        "pre",
        "re",
        "co",
        "non",
        "semi",
        "multi",
        "sub",
        "mid",
        "inter",
        "intra",
        "bi",
        "tri",
        "mis",
        "neo",
        "quasi",
        "micro",
        "macro",
        "mega",
        "ultra",
        "e",
        "ex",
        "anti",
        "post",
        "pro",
        "de",
        "un",
        "cyber",
        "geo",
        "socio",
    ]
)


def _parts(token: _Token) -> tuple[tuple[str, int], ...]:
    return () if token.masked else _split(token.text)


def _is_capitalized(word: str) -> bool:
    return word[:1].isupper() and not any(c.isupper() for c in word[1:])


def _never_checked(word: str, letters: frozenset[str] | None, longest: int = 1 << 16) -> bool:
    """A word that cannot be a misspelling: one letter, ALL-CAPS (NASA, NGOs), a capital inside
    (TikTok, McDonald, iPhone), letters the dictionary does not use (another script), or longer
    than its longest word by more than a typo would make it (a hash, a row of x's)."""
    if len(word) < 2 or len(word) > longest + 3:
        return True
    if word.isupper() or (word[:-1].isupper() and word[-1] == "s" and len(word) > 2):
        return True
    if any(c.isupper() for c in word[1:]):
        return True
    return letters is not None and not set(word.casefold()) <= letters


def _names(runs: list[_Run]) -> set[str]:
    """The words the draft uses as names: capitalized where no sentence starts, outside title case."""
    names: set[str] = set()
    for found in runs:
        for token in found.words:
            if token.title:
                continue
            parts = _parts(token)
            if len(parts) > 1 and any(_is_capitalized(p) for p, _ in parts[1:]):
                names.update(p for p, _ in parts)  # Coca-Cola, Jean-Luc
                continue
            for n, (word, _) in enumerate(parts):
                if (n or not token.start) and _is_capitalized(word):
                    names.add(word)
    return names


# ------------------------------------------------------------------------------- the dictionary

_CACHE_FORMAT = 5
# Distance-2 suggestions cost a few tenths of a second a word: only for words this short, and
# for so many words a draft.
_FAR_LENGTH = 8
_FAR_SEARCHES = 2
_ADDED_COUNT = 500  # how common digest's own English words count as (a word like "lodestar")


def cache_dir() -> Path:
    """Where digest keeps what it can rebuild: ``$XDG_CACHE_HOME/digest``, else ``~/.cache/digest``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "digest"


@cache
def _package_dir() -> Path | None:
    """pyspellchecker's folder, found without importing it (which costs what a lint can spare)."""
    import importlib.util

    spec = importlib.util.find_spec("spellchecker")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent


def languages() -> tuple[str, ...]:
    """The languages there is a dictionary for (pyspellchecker's word lists), sorted."""
    folder = _package_dir()
    if folder is None:
        return ()
    return tuple(sorted(p.name.split(".")[0] for p in (folder / "resources").glob("*.json.gz")))


def language_code(language: str) -> str:
    """The dictionary's name for a ``[newsletter] language``: ``en-GB`` -> ``en``."""
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].casefold()


def _cache_key(language: str) -> str | None:
    folder = _package_dir()
    if folder is None:
        return None
    source = folder / "resources" / f"{language}.json.gz"
    try:
        size = source.stat().st_size
        info = (folder / "info.py").read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"__version__\s*=\s*[\"']([^\"']+)", info)
    version = found.group(1) if found else "unknown"
    return f"{language}-pyspellchecker{version}-{size}-{_our_part(language):08x}"


def _our_part(language: str) -> int:
    """A checksum of what digest adds to the word list (its words, the British spellings' rules,
    the cache's format): a change to any of them makes a new cache."""
    import zlib

    from digestcli.words import ENGLISH_ADDITIONS

    ours = [str(_CACHE_FORMAT)]
    if language == "en":
        ours += [
            ENGLISH_ADDITIONS,
            _IZE,
            _IZE_KEEP,
            _OUR,
            _BEHAVIOUR,
            _RE,
            _LL,
            _LISTED_BOTH,
            _LISTED_BRITISH,
        ]
    return zlib.crc32("\n".join(ours).encode("utf-8"))


class _Store:
    """The cache files of one language's dictionary: ``.words``, the word list as UTF-8 text,
    one word a line, sorted, which each lint maps into memory and searches where ``.index`` (a
    marshal, like the rest) says the words of a prefix are, so that it reads only the pages it
    needs; ``.variants``, American and British spellings, read when a word is not in the list or
    when ``[lint] spelling`` picks one; ``.counts``, how common each word is, read to rank
    suggestions. A part missing, stale or damaged rebuilds them all from pyspellchecker's list."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.key = _cache_key(language)
        self._built: dict[str, Any] | None = None

    def path(self, part: str) -> Path | None:
        return cache_dir() / f"spelling-{self.key}.{part}" if self.key else None

    def load(self, part: str) -> dict[str, Any]:
        """A marshalled part: ``index``, ``variants`` or ``counts``."""
        path = self.path(part)
        if self._built is None and path is not None:
            try:
                data = marshal.loads(path.read_bytes())
            except (OSError, EOFError, ValueError, TypeError):
                data = None
            if isinstance(data, dict) and data.get("key") == self.key and set(_PARTS[part]) <= set(data):
                return data
        return self.build()[part]  # type: ignore[no-any-return]

    def words(self) -> tuple[dict[str, Any], bytes | mmap.mmap]:
        """The index and the word list it indexes."""
        index = self.load("index")
        path = self.path("words")
        if self._built is None and path is not None:
            try:
                with path.open("rb") as file:
                    listed = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                if len(listed) == index["size"]:
                    return index, listed
                listed.close()
            except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
                pass
        built = self.build()
        return built["index"], built["words"]

    def build(self) -> dict[str, Any]:
        if self._built is None:
            counts = _source_counts(self.language)
            built = _words_data(self.language, counts)
            # The British spellings the list lacks, as common as their American ones, so that
            # they are offered as suggestions too.
            us_of = built["variants"]["us_of"]
            built["counts"] = {"counts": {**{gb: counts[us] for gb, us in us_of.items()}, **counts}}
            for part, data in built.items():
                path = self.path(part)
                if isinstance(data, dict):
                    data["key"] = self.key
                    if path is not None:
                        _write_cache(path, marshal.dumps(data))
                elif path is not None:
                    _write_cache(path, data)
            self._remove_stale()
            self._built = built
        return self._built

    def _remove_stale(self) -> None:
        folder = cache_dir()
        try:
            for found in folder.glob(f"spelling-{self.language}-*"):
                if found.stem != f"spelling-{self.key}":
                    found.unlink(missing_ok=True)
        except OSError:
            pass


_PARTS = {
    "index": ("letters", "longest", "ranges", "size"),
    "variants": ("us_of", "gb_of", "refused_in_us"),
    "counts": ("counts",),
}


class Dictionary:
    """The words of one language: pyspellchecker's list (with, in English, digest's additions
    and the British spellings the list lacks: it is an American list), and which spelling of a
    pair each ``[lint] spelling`` refuses. Words are looked up in lower case."""

    def __init__(self, language: str, store: _Store | None = None) -> None:
        self.language = language
        self._store = store or _Store(language)
        index, self._listing = self._store.words()
        self._ranges: dict[str, tuple[int, int]] = index["ranges"]
        self.letters = frozenset(index["letters"])
        self.longest: int = index["longest"]
        self._variants: dict[str, Any] | None = None
        self._checker: Any = None
        self._counts: dict[str, int] = {}

    @property
    def _us_of(self) -> dict[str, str]:
        """British spelling -> American."""
        return self._variant_data()["us_of"]  # type: ignore[no-any-return]

    @property
    def _gb_of(self) -> dict[str, str]:
        """American spelling -> British, where British English refuses the American one."""
        return self._variant_data()["gb_of"]  # type: ignore[no-any-return]

    def _variant_data(self) -> dict[str, Any]:
        if self._variants is None:
            data = self._store.load("variants")
            data["refused_in_us"] = frozenset(data["refused_in_us"])
            self._variants = data
        return self._variants

    def _listed(self, word: str) -> bool:
        found = self._ranges.get(word[:3])
        return found is not None and self._listing.find(f"\n{word}\n".encode(), *found) >= 0

    def known(self, word: str, variant: str = "any") -> bool:
        """Whether the word (lower case) is spelled right for ``variant``: "any", "us" or "gb"."""
        if variant == "us":
            return self._listed(word) and word not in self._variant_data()["refused_in_us"]
        if variant == "gb":
            return (self._listed(word) and word not in self._gb_of) or word in self._us_of
        return self._listed(word) or word in self._us_of

    def other_spelling(self, word: str, variant: str) -> str | None:
        """For a word right in the other variety of English, its spelling in ``variant``:
        ``colour`` -> ``color`` under "us", ``color`` -> ``colour`` under "gb"."""
        if variant == "us":
            return self._us_of.get(word)
        if variant == "gb":
            return self._gb_of.get(word)
        return None

    def suggestions(
        self, word: str, variant: str = "any", *, budget: list[int] | None = None, limit: int = 3
    ) -> list[str]:
        """Up to ``limit`` words close to ``word`` (lower case) that are right for ``variant``,
        the most common first: one edit away, else two for a word of at most 8 letters while
        ``budget[0]`` (searches two edits away, a few tenths of a second each) lasts."""
        checker = self._spellchecker()
        checker.distance = 1
        found = self._right(checker.candidates(word), word, variant)
        if not found and len(word) <= _FAR_LENGTH and (budget is None or budget[0] > 0):
            if budget is not None:
                budget[0] -= 1
            checker.distance = 2
            found = self._right(checker.candidates(word), word, variant)
        counts = self._counts
        return sorted(found, key=lambda w: (-counts.get(w, 0), w))[:limit]

    def _right(self, candidates: Iterable[str] | None, word: str, variant: str) -> set[str]:
        found: set[str] = set()
        for candidate in candidates or ():
            if not self.known(candidate, variant):
                candidate = self.other_spelling(candidate, variant) or ""
            if candidate and candidate != word and self.known(candidate, variant):
                found.add(candidate)
        return found

    def _spellchecker(self) -> Any:
        """pyspellchecker's SpellChecker on the cached word counts (made once, on first use)."""
        if self._checker is None:
            from spellchecker import SpellChecker

            counts: dict[str, int] = self._store.load("counts")["counts"]
            # Case-sensitive: the list and the words asked about are in lower case already, and
            # it spares lowering 160,000 words again.
            checker = SpellChecker(language=None, distance=1, case_sensitive=True)
            checker.word_frequency.load_json(counts)
            self._counts = counts
            self._checker = checker
        return self._checker


@cache
def dictionary(language: str) -> Dictionary | None:
    """The dictionary for a language code (``en``), from the cache (made when missing or stale);
    None when pyspellchecker has no word list for the language."""
    folder = _package_dir()
    if (
        folder is None
        or not language.isalpha()
        or not (folder / "resources" / f"{language}.json.gz").is_file()
    ):
        return None
    return Dictionary(language)


def _write_cache(path: Path, data: bytes) -> None:
    """Write a cache file whole (a reader never sees half of one); a cache that cannot be
    written only makes the next lint slower."""
    with contextlib.suppress(OSError):
        replace_file(path, data, sync=False)


def _source_counts(language: str) -> dict[str, int]:
    """pyspellchecker's word list for a language (word in lower case -> how common it is), with
    digest's additions in English."""
    import gzip
    import json
    import pkgutil

    raw = pkgutil.get_data("spellchecker", f"resources/{language}.json.gz")
    assert raw is not None
    counts: dict[str, int] = {}
    for word, count in json.loads(gzip.decompress(raw).decode("utf-8")).items():
        word = word.lower()
        counts[word] = counts.get(word, 0) + int(count)
    if language == "en":
        from digestcli.words import ENGLISH_ADDITIONS

        for word in ENGLISH_ADDITIONS.split():
            counts.setdefault(word, _ADDED_COUNT)
    return counts


def _words_data(language: str, counts: dict[str, int]) -> dict[str, Any]:
    """The ``index``, ``words`` and ``variants`` parts of the cache, from the word counts."""
    listing = bytearray(b"\n")
    ranges: dict[str, tuple[int, int]] = {}
    letters: set[str] = set()
    for word in sorted(counts):
        start = len(listing) - 1  # the newline before the word
        listing += word.encode("utf-8") + b"\n"
        first = ranges.get(word[:3])
        ranges[word[:3]] = (first[0] if first else start, len(listing))
        letters.update(word)
    us_of: dict[str, str] = {}
    gb_of: dict[str, str] = {}
    refused: set[str] = set()
    if language == "en":
        for us, gb, both in _english_pairs(counts):
            if gb == us or us not in counts:
                continue
            us_of.setdefault(gb, us)
            if both:
                gb_of.setdefault(us, gb)
            if gb in counts and counts[us] > counts[gb]:
                refused.add(gb)
    return {
        "index": {
            "letters": "".join(sorted(letters)),
            "longest": max(map(len, counts), default=0),
            "ranges": ranges,
            "size": len(listing),
        },
        "words": bytes(listing),
        "variants": {"us_of": us_of, "gb_of": gb_of, "refused_in_us": sorted(refused)},
    }


# American and British spellings. The word list is American: the British spelling of each of its
# words is made by rule (-ize/-ise, -yze/-yse, -or/-our, -er/-re, -l-/-ll-, a few listed), and
# kept when its American spelling is in the list. Each pair is (American, British, whether
# British English refuses the American one): "program" is British too (software), "color" is not.
_IZE = r"^(\w{3,}?)([iy])z(e|es|ed|ing|ation|ations|ational|er|ers|able)$"
_IZE_KEEP = (
    r"(?:size|sized|sizes|sizing|prize|prized|prizes|prizing|seize|seized|seizes|seizing|maize|baize)$"
)
_OUR_PREFIX = r"(|dis|mis|re|un|multi|bi|tri|ill|good|well|anti|pro|mal|be|parti|counter|ultra)"
_OUR = (
    rf"^{_OUR_PREFIX}(col|hon|lab|fav|flav|behavi|neighb|hum|rum|harb|od|vap|vig|arm|savi|sav|endeav|parl"
    r"|clam|rig|val|cand|ferv|splend|tum|demean|misdemean|ard|ranc|succ|arb)or"
    r"(|s|ed|ing|ings|ful|fully|less|able|ably|ite|ites|itism|hood|hoods|er|ers|ist|ists|y|ly)$"
)
_BEHAVIOUR = r"^(mis)?behavior(al|ally|ism|ist|ists)$"
_RE = (
    r"^(|epi|amphi)(cent|theat|fib|calib|somb|spect|meag|lust|sab|maneuv|mit|och|sepulch|reconnoit"
    r"|(?:kilo|centi|milli|nano)met|(?:kilo|centi|milli)?lit)er(s|ed|ing|piece|pieces|glass|fold)?$"
)
_LL = (
    r"^(|un|re|mis|pre|be|back|em|im|dis)(travel|cancel|label|model|fuel|counsel|jewel|marvel|level"
    r"|signal|total|tunnel|channel|duel|equal|quarrel|revel|rival|shovel|snorkel|funnel|dial|panel"
    r"|pedal|pencil|spiral|yodel|barrel|bevel|chisel|enamel|gravel|grovel|kennel|libel|parcel|ravel"
    r"|swivel|tassel|towel|initial|imperil|cudgel|carol|marshal|dishevel|pummel|stencil|tinsel"
    r"|trammel|victual)(ed|ing|ings|er|ers|or|ors|ous|ously)$"
)
_LISTED_BOTH = (
    "gray grey,grays greys,grayish greyish,aluminum aluminium,plow plough,plows ploughs,plowed ploughed,"
    "plowing ploughing,mold mould,molds moulds,molded moulded,molding moulding,moldy mouldy,molt moult,"
    "molted moulted,molting moulting,smolder smoulder,smoldering smouldering,smoldered smouldered,"
    "skeptic sceptic,skeptics sceptics,skeptical sceptical,skeptically sceptically,skepticism scepticism,"
    "pajamas pyjamas,jewelry jewellery,woolen woollen,woolens woollens,fulfill fulfil,fulfills fulfils,"
    "fulfillment fulfilment,enroll enrol,enrolls enrols,enrollment enrolment,enrollments enrolments,"
    "installment instalment,installments instalments,skillful skilful,skillfully skilfully,willful wilful,"
    "willfully wilfully,distill distil,distills distils,instill instil,instills instils,enthrall enthral,"
    "enthralls enthrals,airplane aeroplane,airplanes aeroplanes,cozy cosy,cozier cosier,coziest cosiest,"
    "coziness cosiness,mustache moustache,mustaches moustaches,sulfur sulphur,sulfate sulphate,"
    "sulfates sulphates,sulfuric sulphuric,yogurt yoghurt,artifact artefact,artifacts artefacts,"
    "defense defence,defenses defences,defenseless defenceless,offense offence,offenses offences,"
    "pretense pretence,pretenses pretences,catalog catalogue,catalogs catalogues,cataloged catalogued,"
    "cataloging cataloguing,analog analogue,analogs analogues,pediatric paediatric,pediatrics paediatrics,"
    "pediatrician paediatrician,pediatricians paediatricians,anemia anaemia,anemic anaemic,"
    "anesthesia anaesthesia,anesthetic anaesthetic,anesthetics anaesthetics,anesthetist anaesthetist,"
    "hemorrhage haemorrhage,hemoglobin haemoglobin,hematology haematology,leukemia leukaemia,"
    "estrogen oestrogen,esophagus oesophagus,fetus foetus,fetuses foetuses,fetal foetal,diarrhea diarrhoea,"
    "orthopedic orthopaedic,orthopedics orthopaedics,gynecology gynaecology,gynecologist gynaecologist,"
    "edema oedema"
)
_LISTED_BRITISH = (  # British, where the American spelling is British too
    "program programme,programs programmes,check cheque,checks cheques,curb kerb,curbs kerbs,tire tyre,"
    "tires tyres,license licence,licenses licences,practice practise,practiced practised,"
    "practicing practising,practices practises,math maths,aging ageing,judgment judgement,"
    "judgments judgements,acknowledgment acknowledgement,annex annexe,tidbit titbit,tidbits titbits,"
    "meter metre,meters metres"  # a gas meter is a meter in Britain too; ten metres is not
)


def _english_pairs(counts: Iterable[str]) -> Iterator[tuple[str, str, bool]]:
    ize, ize_keep, our = re.compile(_IZE), re.compile(_IZE_KEEP), re.compile(_OUR)
    behaviour, centre, double = re.compile(_BEHAVIOUR), re.compile(_RE), re.compile(_LL)
    for word in counts:
        if "'" in word:
            continue
        if (m := ize.match(word)) and not ize_keep.search(word):
            yield word, f"{m[1]}{m[2]}s{m[3]}", True
        elif m := our.match(word):
            yield word, f"{m[1]}{m[2]}our{m[3]}", True
        elif m := behaviour.match(word):
            yield word, word.replace("behavior", "behaviour"), True
        elif m := centre.match(word):
            stem = f"{m[1]}{m[2]}".replace("maneuv", "manoeuv")
            suffix = m[3] or ""
            yield word, {"ed": f"{stem}red", "ing": f"{stem}ring"}.get(suffix, f"{stem}re{suffix}"), True
        elif m := double.match(word):
            yield word, f"{m[1]}{m[2]}l{m[3]}", True
    for listed, both in ((_LISTED_BOTH, True), (_LISTED_BRITISH, False)):
        for pair in listed.split(","):
            us, gb = pair.split()
            yield us, gb, both


# --------------------------------------------------------------------------------- the rules


def _workspace_of(folder: Path) -> tuple[Path, str]:
    """The workspace a draft in ``folder`` belongs to (the nearest folder at or above it with a
    digest.toml, else the current folder's) and its ``[newsletter] language``."""
    from digestcli.config import CONFIG_NAME

    for start in (folder, Path.cwd()):
        for candidate in (start, *start.parents):
            if (candidate / CONFIG_NAME).is_file():
                return candidate, _language_in(candidate / CONFIG_NAME)
    return Path.cwd(), NewsletterConfig().language


def _language_in(path: Path) -> str:
    """``[newsletter] language`` in a digest.toml, read alone (the command that runs lint has
    checked the file whole, and says what is wrong with a broken one)."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return NewsletterConfig().language
    newsletter = raw.get("newsletter")
    value = newsletter.get("language") if isinstance(newsletter, dict) else None
    return value if isinstance(value, str) and value.strip() else NewsletterConfig().language


def draft_workspace(issue: Issue) -> tuple[Path, str]:
    """The root of the workspace a draft belongs to (where its words.txt is) and its language."""
    path = issue.path if issue.path.is_absolute() else Path.cwd() / issue.path
    return _workspace_of(Path(os.path.normpath(path.parent)))


def check_spelling(
    issue: Issue, *, language: str = "en", variant: str = "any", house: Iterable[str] = ()
) -> Iterator[Report]:
    """The spelling findings for a draft, with the dictionary of ``language`` (``en``,
    ``en-GB``…), ``variant`` ("any", "us", "gb") and the house words (any case)."""
    code = language_code(language)
    words = dictionary(code) if code not in _UNUSABLE else None
    if words is None:
        known = ", ".join(c for c in languages() if c not in _UNUSABLE) or "none: pyspellchecker is missing"
        why = f": {_UNUSABLE[code]}" if code in _UNUSABLE else f" (there are: {known})"
        yield Report(
            1,
            1,
            f"no dictionary for [newsletter] language '{language}'{why}; switch the rule off with"
            " `spelling = false` in [lint.rules]",
        )
        return
    houses = frozenset(w.casefold() for w in house)
    variant = variant if code == "en" else "any"
    runs = _runs(issue)
    names = _names(runs)
    verdicts: dict[str, bool] = {}

    def right(word: str) -> bool:
        lower = word.casefold()
        if lower in houses:
            return True
        if lower not in verdicts:
            verdicts[lower] = (
                words.known(lower, variant)
                or (_CLITIC.search(lower) is not None and words.known(_CLITIC.sub("", lower), variant))
                or ("ё" in lower and words.known(lower.replace("ё", "е"), variant))  # Russian: ещё, еще
            )
        return verdicts[lower]

    kinds: dict[str, str] = {}  # word -> "skip", "name?" (capitalized) or "word"

    def misspelled(token: _Token) -> list[tuple[str, int]]:
        """The token's words (with their offsets) that the dictionary does not know."""
        parts = _parts(token)
        if len(parts) > 1:
            whole = token.text.casefold()
            if whole in houses or words.known(whole, variant):
                return []  # e-mail, x-ray
            if any(_is_capitalized(p) for p, _ in parts[1:]):
                return []  # Coca-Cola
        wrong = []
        for n, (word, offset) in enumerate(parts):
            kind = kinds.get(word)
            if kind is None:
                kind = kinds[word] = (
                    "skip"
                    if _never_checked(word, words.letters, words.longest)
                    else "name?"
                    if word[0].isupper()
                    else "word"
                )
            if kind == "skip":
                continue
            if kind == "name?":
                if (n or not token.start) and not token.title:
                    continue  # a name
                if word in names or word.casefold() in houses:
                    continue
            if not right(word):
                wrong.append((word, token.offset + offset))
        return wrong

    unknown: dict[str, list[tuple[int, int, str]]] = {}
    for found in runs:
        phrase: list[list[tuple[str, int]]] = []  # unknown words in a row, in one sentence
        for i, token in enumerate([*found.words, None]):
            wrong = misspelled(token) if token is not None else []
            if wrong and phrase and _next_to(found, found.words[i - 1], token):
                phrase.append(wrong)
                continue
            # Three unknown words in a row are a phrase in another language ("Go raibh maith
            # agat"), not three typos.
            if len(phrase) < _FOREIGN_PHRASE:
                for word, offset in (w for words_of in phrase for w in words_of):
                    line, column = found.place(offset)
                    unknown.setdefault(word.casefold(), []).append((line, column, word))
            phrase = [wrong] if wrong else []

    far = [_FAR_SEARCHES]
    for lower, places in unknown.items():
        line, column, word = min(places)
        times = f" ({len(places)} times in this draft)" if len(places) > 1 else ""
        other = words.other_spelling(lower, variant) if variant != "any" else None
        if other and words.known(other, variant):
            kind = "British" if variant == "us" else "American"
            yield Report(
                line,
                column,
                f"'{word}' is the {kind} spelling ([lint] spelling is \"{variant}\"):"
                f" did you mean '{_as_written(other, word)}'?{times}",
            )
            continue
        offered = words.suggestions(lower, variant, budget=far)
        if offered:
            listed = [f"'{_as_written(s, word)}'" for s in offered]
            choices = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} or {listed[-1]}"
            yield Report(line, column, f"'{word}': did you mean {choices}?{times}")
        else:
            yield Report(
                line,
                column,
                f"'{word}' is not in the dictionary{times}: if it is right, add it to words.txt",
            )


_FOREIGN_PHRASE = 3
# pyspellchecker's word lists that would drown the editor in right words.
_UNUSABLE = {"es": "pyspellchecker's Spanish list has no plurals and few verb forms (años, anunció)"}


def _next_to(found: _Run, first: _Token, second: _Token | None) -> bool:
    """Whether two words follow each other with only spaces between (no comma, no period)."""
    return second is not None and not found.text[first.end : second.offset].strip(" \t\n")


_CLITIC = re.compile(r"'(?:ll|re|ve|d|m)$")  # they'll, we're: the word before it is checked


def _as_written(suggestion: str, word: str) -> str:
    return suggestion[:1].upper() + suggestion[1:] if word[:1].isupper() else suggestion


@rule(
    "spelling",
    "warning",
    "a word of the subject, preheader, headlines or text in neither the dictionary of `[newsletter]"
    " language` nor the workspace's `words.txt`, with suggestions; names (capitalized mid-sentence),"
    " CamelCase, ACRONYMS, numbers, code and links are skipped; US and British spellings both pass"
    " unless `[lint] spelling` is `us` or `gb`",
)
def spelling(issue: Issue, config: LintConfig) -> Iterator[Report]:
    from digestcli.words import read_words

    root, language = draft_workspace(issue)
    yield from check_spelling(issue, language=language, variant=config.spelling, house=read_words(root))


# Doubles that are grammatical, or words said twice on purpose.
_DOUBLES = _word_set(
    "had that is do does her bye ha ho hee no now very so there well tut tsk knock chop hush blah"
    " yada boo pooh bang tick tock ding dong"
)


@rule(
    "repeated-word",
    "error",
    "the same word twice in a row (“the the”), in any case and across a line break; “had had”,"
    " “that that” and a few other grammatical doubles pass",
)
def repeated_word(issue: Issue, config: LintConfig) -> Iterator[Report]:
    for found in _runs(issue):
        previous: _Token | None = None
        for token in found.words:
            if previous is not None and _repeats(found.text, previous, token):
                line, column = found.place(token.offset)
                yield Report(
                    line,
                    column,
                    f"'{previous.text} {token.text}': the same word twice in a row; delete one",
                )
            previous = token


def _repeats(text: str, first: _Token, second: _Token) -> bool:
    word = second.text.casefold()
    if word != first.text.casefold() or word in _DOUBLES or not any(c.isalpha() for c in word):
        return False
    if text[first.end : second.offset].strip(" \t\n*_~[]"):
        return False  # punctuation between: "in. In", "Walla, Walla"
    # Two names in a row are a name ("Bora Bora", "Duran Duran").
    return not (_is_capitalized(first.text) and not first.start and _is_capitalized(second.text))
