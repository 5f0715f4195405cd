"""The shapes a pasted web page takes: page chrome, bare story headlines, one-paragraph-per-line runs.

An editor who copies a published issue out of a blog (Wix, WordPress, Substack, Ghost) or a Google
Doc gets the page's chrome with it ("Writer's picture", "2 min read", "12 views", "Comments" in the
blog's language, often glued together without a space), story headlines as plain ``N. Headline``
lines, and paragraphs that are either separated by runs of blank lines or sit one per line with no
blank line at all. ``digest import`` uses these shapes to turn a paste into a draft, and
``digest lint`` uses the same ones to catch a paste that went into a draft unrepaired. Everything
here looks at one line (or a line and its neighbours) and is pure: no files, no settings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from itertools import product
from typing import NamedTuple

# ------------------------------------------------------------------------------------------ chrome


class _Piece(NamedTuple):
    """What one phrase of chrome is, and how it sits in a line."""

    label: str
    counted: bool = False  # it may follow a count: "12 views", "0 Kommentare", "2 min read"
    # The rest of the line belongs to this piece (an author's name and the date after "Writer's
    # picture", the owner after "©") as long as it is short and is not a sentence of its own.
    takes_rest: bool = False


def _each(*parts: str | tuple[str, ...]) -> list[str]:
    """Every phrase made of one choice for each part: ``_each("share ", ("this", "the"))`` is
    ``["share this", "share the"]``."""
    return ["".join(choice) for choice in product(*((p,) if isinstance(p, str) else p for p in parts))]


# Where a page asks to share a post, or to follow its writer.
_NETWORKS = (
    "facebook",
    "twitter",
    "x",
    "linkedin",
    "whatsapp",
    "email",
    "pinterest",
    "reddit",
    "bluesky",
    "threads",
    "instagram",
    "youtube",
    "tiktok",
    "mastodon",
    "flickr",
    "telegram",
    "tumblr",
    "medium",
    "substack",
    "discord",
    "snapchat",
    "messenger",
    "xing",
    "vk",
    "vimeo",
    "spotify",
    "soundcloud",
    "github",
    "rss",
)

# The chrome a paste brings, as phrases folded to lower case with straight apostrophes, in the
# languages blogs are written in most here: English, French, German, Spanish, Italian, Portuguese
# and Dutch. Literal phrases, looked up in a dictionary: no regular expression to compile at start.

_VOCABULARY: list[tuple[_Piece, list[str]]] = [
    (
        _Piece("page anchor"),
        [
            *_each(
                ("", "back to ", "go to ", "scroll to "),
                ("", "the "),
                ("top", "bottom"),
                " of ",
                ("", "the "),
                "page",
            ),
            "back to top",
            "scroll to top",
            "haut de page",
            "haut de la page",
            "bas de page",
            "bas de la page",
            "retour en haut",
            "retour en haut de la page",
            "seitenanfang",
            "seitenende",
            "nach oben",
            "zurück nach oben",
            *_each(
                ("inicio", "principio", "parte superior", "final", "parte inferior"),
                " de ",
                ("", "la "),
                "página",
            ),
            "volver arriba",
            "inizio pagina",
            "fine pagina",
            "inizio della pagina",
            "fine della pagina",
            "torna su",
            "torna all'inizio",
            "topo da página",
            "fim da página",
            "início da página",
            "voltar ao topo",
            "begin van de pagina",
            "einde van de pagina",
            "bovenkant van de pagina",
            "onderkant van de pagina",
            "terug naar boven",
        ],
    ),
    (
        _Piece("skip link"),
        [
            *_each("skip to ", ("", "the "), ("", "main "), ("content", "navigation")),
            *_each(("aller", "passer"), " au contenu", ("", " principal")),
            "zum inhalt springen",
            "zum inhalt wechseln",
            "direkt zum inhalt",
            *_each(("saltar", "ir"), " al contenido", ("", " principal")),
            *_each(("vai", "salta", "passa"), " al contenuto", ("", " principale")),
            *_each(("pular", "ir", "saltar"), " para o conteúdo", ("", " principal")),
            *_each(("naar ", "ga naar "), ("", "de "), ("inhoud", "hoofdinhoud"), ("", " springen", " gaan")),
        ],
    ),
    (
        _Piece("author picture", takes_rest=True),
        [
            *_each(
                ("writer", "author", "blogger", "creator"),
                ("'s ", "s ", " ", "'s", ""),
                ("", "profile "),
                ("picture", "photo", "avatar", "image"),
            ),
            "profile picture",
            "profile photo",
            "profile image",
            "photo de l'auteur",
            "photo du rédacteur",
            "photo de profil",
            "image de l'auteur",
            "avatar de l'auteur",
            "bild des autors",
            "bild des verfassers",
            "foto des autors",
            "autorenbild",
            "profilbild",
            "foto del autor",
            "foto del escritor",
            "imagen del autor",
            "foto de perfil",
            "foto dell'autore",
            "immagine dell'autore",
            "immagine del profilo",
            "foto do autor",
            "imagem do autor",
            "foto van de auteur",
            "foto van de schrijver",
            "profielfoto",
        ],
    ),
    (
        _Piece("reading time", counted=True),
        _each(
            ("min", "min.", "mins", "minute", "minutes", "-min", "-minute", "mn"),
            (
                " read",
                " de lecture",
                " lesezeit",
                " lesedauer",
                " de lectura",
                " di lettura",
                " de leitura",
                " leestijd",
                " lezen",
                "read",
            ),
        ),
    ),
    # "Lesezeit: 4 Min.": the word first, then the count and the unit (a counted piece below).
    (
        _Piece("reading time"),
        [
            "reading time",
            "lesezeit",
            "lesedauer",
            "leestijd",
            "temps de lecture",
            "tiempo de lectura",
            "tempo di lettura",
            "tempo de leitura",
        ],
    ),
    (_Piece("reading time", counted=True), ["min", "min.", "minuten", "minutes", "minuti", "minutos"]),
    (
        _Piece("view count", counted=True),
        [
            "view",
            "views",
            "vue",
            "vues",
            "aufrufe",
            "ansichten",
            "visualizaciones",
            "vistas",
            "visualizzazioni",
            "visualizações",
            "weergaven",
            "keer bekeken",
        ],
    ),
    (
        _Piece("comments link"),
        [
            *_each(("leave", "write", "add", "post"), " a ", ("comment", "reply")),
            "jump to comments",
            "skip to comments",
            "view comments",
            "comments are closed",
            "no comments",
            "no comments yet",
            "be the first to comment",
            "discussion about this post",
            "member discussion",
            "leave a reply cancel reply",
            "cancel reply",
            "laisser un commentaire",
            "écrire un commentaire",
            "ajouter un commentaire",
            "schreibe einen kommentar",
            "kommentar schreiben",
            "kommentar verfassen",
            "kommentar hinzufügen",
            *_each(("deja", "escribe", "añade", "agrega"), " un comentario"),
            *_each(("lascia", "scrivi", "aggiungi"), " un commento"),
            *_each(("deixe", "escreva", "adicione"), (" um", " seu"), " comentário"),
            "laat een reactie achter",
            "schrijf een reactie",
            "plaats een reactie",
        ],
    ),
    (
        _Piece("comment count", counted=True),
        [
            "comment",
            "comments",
            "commentaire",
            "commentaires",
            "kommentar",
            "kommentare",
            "comentario",
            "comentarios",
            "commento",
            "commenti",
            "comentário",
            "comentários",
            "reactie",
            "reacties",
            "opmerkingen",
        ],
    ),
    (
        _Piece("follow link"),
        _each(("follow", "like"), " us", ("", *(f" on {network}" for network in _NETWORKS))),
    ),
    (
        _Piece("like button", counted=True),
        [
            "like",
            "likes",
            "post not marked as liked",
            "post marked as liked",
            "like this",
            "like this:",
            "like loading",
            "loading...",
            "loading…",
            "j'aime",
            "gefällt mir",
            "me gusta",
            "mi piace",
            "curtir",
            "gostei",
            "vind ik leuk",
        ],
    ),
    (
        _Piece("share button", counted=True),
        [
            *_each("share ", ("this", "the"), " ", ("post", "article", "story", "page", "issue")),
            *_each("share ", ("on", "via"), " ", _NETWORKS),
            "share",
            "shares",
            "share this",
            "share this:",
            "restack",
            "restacks",
            "copy link",
            "print",
            "email this",
            "email",
            "tweet this",
            "partager",
            "partager cet article",
            "partager sur facebook",
            "teilen",
            "beitrag teilen",
            "compartir",
            "compartir esta entrada",
            "compartir este artículo",
            "condividi",
            "condividi questo post",
            "condividi l'articolo",
            "compartilhar",
            "partilhar",
            "delen",
            "deel dit bericht",
            "deel dit artikel",
            "tweet",
            "x",
            "pin it",
            "facebook",
            "twitter",
            "linkedin",
            "whatsapp",
            "pinterest",
            "reddit",
            "telegram",
            "bluesky",
            "threads",
        ],
    ),
    (
        _Piece("recent posts heading"),
        [
            *_each("recent ", ("posts", "articles", "stories")),
            *_each("latest ", ("posts", "articles")),
            *_each("related ", ("posts", "articles", "stories")),
            "related",
            "you might also like",
            "you may also like",
            "popular posts",
            "read next",
            "keep reading",
            "articles récents",
            "derniers articles",
            "articles similaires",
            "posts récents",
            "publications récentes",
            *_each(("neueste", "aktuelle", "letzte", "ähnliche"), " beiträge"),
            *_each(
                ("entradas", "publicaciones", "artículos"), " ", ("recientes", "relacionadas", "relacionados")
            ),
            "post recenti",
            "articoli recenti",
            "post correlati",
            "articoli correlati",
            *_each(("posts", "publicações", "artigos"), " ", ("recentes", "relacionados")),
            "recente berichten",
            "recente posts",
            "recente artikelen",
            "gerelateerde berichten",
        ],
    ),
    (_Piece("recent posts heading", takes_rest=True), ["more from "]),
    (_Piece("read-more link"), ["read more", "continue reading", "lire la suite", "weiterlesen", "leer más"]),
    (
        _Piece("see-all link"),
        [
            *_each(("see", "view", "show"), " ", ("all", "more")),
            "voir tout",
            "voir plus",
            "tout voir",
            "alle anzeigen",
            "alle ansehen",
            "mehr anzeigen",
            "ver todo",
            "ver todos",
            "ver tudo",
            "ver más",
            "ver mais",
            "vedi tutti",
            "vedi tutto",
            "mostra tutti",
            "mostra tutto",
            "alles bekijken",
            "alles weergeven",
            "bekijk alles",
        ],
    ),
    (
        _Piece("login link"),
        [
            "already have an account? sign in",
            "create account",
            "create an account",
            "log in",
            "login",
            "log out",
            "logout",
            "sign in",
            "signin",
            "sign up",
            "signup",
            "se connecter",
            "connexion",
            "anmelden",
            "einloggen",
            "registrieren",
            "iniciar sesión",
            "regístrate",
            "accedi",
            "registrati",
            "iniciar sessão",
            "inloggen",
            "aanmelden",
            "registreren",
        ],
    ),
    (
        _Piece("subscribe button"),
        [
            "subscribe",
            "subscribe now",
            "subscribe for free",
            "upgrade to paid",
            "give a gift subscription",
            "get the app",
            "start writing",
            "type your email",
            "enter your email",
            "ready for more?",
            "s'abonner",
            "abonnez-vous",
            "abonnieren",
            "jetzt abonnieren",
            "suscribirse",
            "suscríbete",
            "iscriviti",
            "abbonati",
            "inscrever-se",
            "assinar",
            "subscrever",
            "abonneren",
            "inschrijven",
        ],
    ),
    (_Piece("subscribe button", takes_rest=True), ["discover more from ", "subscribe to "]),
    (
        _Piece("post navigation"),
        [
            *_each(
                ("previous", "next", "older", "newer"), " ", ("post", "posts", "article", "entry", "entries")
            ),
            "post navigation",
            "article précédent",
            "article suivant",
            "vorheriger beitrag",
            "nächster beitrag",
            "entrada anterior",
            "siguiente entrada",
            "artículo anterior",
            "artículo siguiente",
            "articolo precedente",
            "articolo successivo",
            "post anterior",
            "artigo anterior",
            "próximo post",
            "vorig bericht",
            "volgend bericht",
        ],
    ),
    (
        _Piece("site menu"),
        [
            "menu",
            "search",
            "search for:",
            "toggle navigation",
            "open menu",
            "close menu",
            "main menu",
            "all posts",
        ],
    ),
    # Substack marks a post for paying readers: "∙ Paid".
    (_Piece("paid-post mark"), ["paid", "paid post", "subscriber-only", "members only"]),
    (
        _Piece("byline", takes_rest=True),
        [
            *_each(("posted", "published", "written", "updated"), " ", ("on", "in", "by", "at"), " "),
            "filed under ",
            "tagged ",
            "tags:",
            "categories:",
            "category:",
        ],
    ),
    (_Piece("copyright line", takes_rest=True), ["©", "(c) ", "copyright "]),
    (
        _Piece("site footer", takes_rest=True),
        [
            "powered by ",
            "proudly powered by ",
            "blog at wordpress.com",
            "create a free website",
            "built with ",
            "privacy ∙ terms",
            "substack is the home for great culture",
            "privacy policy",
            "terms of use",
            "terms of service",
            "cookie policy",
            "cookie settings",
        ],
    ),
]
_PHRASES: dict[str, _Piece] = {}
for _piece, _phrases in _VOCABULARY:
    for _phrase in _phrases:
        _PHRASES.setdefault(_phrase, _piece)
_LENGTHS = sorted({len(p) for p in _PHRASES}, reverse=True)
_DATE_LABEL = "date"  # a date is chrome beside other chrome ("Nov 27, 2026 • 3 min read"), never alone

# Between pieces: spaces and the little marks blogs put between counters.
_BETWEEN = re.compile(r"[\s·•∙|/,.…:!()\-–—]*")
# A count as blogs print it: "12", "1,204", "1.2k".
_COUNT = re.compile(r"\d[\d.,\u00a0\u202f]*\s*(?:[km](?![a-z]))?\s*")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_TRAILING_COUNT = re.compile(r"\s*\(\d[\d,.]*\)$")
_LONG_REST = 100  # an author line is a name and a date, not a paragraph
_REST_WORDS = 10
# How a copyright line may end a sentence and still be chrome alone.
_RESERVED = ("all rights reserved.", "tous droits réservés.", "alle rechte vorbehalten.")
_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\([^)]*\)")  # a Markdown link, of which the text is read


def _fold(line: str) -> str:
    text = line.strip().replace("’", "'").replace("‘", "'").replace("\u00a0", " ")
    text = _LINK.sub(r"\1", text).strip("#*_>|[]\\").strip()  # "\\": a hard break, from HTML
    text = _TRAILING_COUNT.sub("", text)  # "Comments (4)"
    return " ".join(text.casefold().split())


def chrome_label(line: str) -> str | None:
    """What a line of page chrome is ("view count", "reading time + view count"), or None when the
    line is anything more: it must be made of chrome alone, glued or spaced, so "Comments" and
    "12 views0 comments" are chrome but "Readers like the new app." is not."""
    text = _fold(line)
    if not text or len(text) > 160:
        return None
    labels = _pieces_from(text, _BETWEEN.match(text, 0).end(), set())  # type: ignore[union-attr]
    if labels is None and _owned(text):
        labels = ["copyright line"]
    if not labels or labels == [_DATE_LABEL]:
        return None  # a date alone is the date line, or a date in a story: not chrome
    return " + ".join(dict.fromkeys(labels))


def _owned(text: str) -> bool:
    """A short name, then the copyright sign and the year: "Pocket Signals © 2026", a footer (not
    a photo's credit, "Photo © Reuters")."""
    name, sign, rest = text.partition("©")
    rest = rest.strip()
    year = rest[:4].isdigit() and rest[4:5] in ("", " ", ".", ",", "-", "–")
    return bool(sign and name.strip()) and len(name.split()) <= 5 and year and _short_rest(rest)


def _short_rest(rest: str) -> bool:
    """Whether the rest of a line can belong to the chrome before it (the author's name and the
    date after "Writer's picture", the owner after "©"): short, and no sentence ("Updated on
    Friday with the company's response." is news, not a byline)."""
    if len(rest) > _LONG_REST or len(rest.split()) > _REST_WORDS:
        return False
    return not ends_sentence(rest) or rest.endswith(_RESERVED) or _ABBREVIATION.search(rest) is not None


def _pieces_from(text: str, at: int, dead_ends: set[int]) -> list[str] | None:
    """The labels of the pieces that make up ``text`` from ``at`` to its end, or None when it is not
    chrome alone. Longer phrases are tried first, and a shorter one when the longer leaves a rest
    that is no chrome ("likecomment": "like", then "comment"). ``dead_ends``: the places already
    found to start no chrome, not tried again (pieces like "min." and "min" reach the same place,
    and trying every way there again takes time exponential in the line's length)."""
    if at >= len(text):
        return []
    if at in dead_ends:
        return None
    for label, end in _starts(text, at):
        rest = _pieces_from(text, _BETWEEN.match(text, end).end(), dead_ends)  # type: ignore[union-attr]
        if rest is not None:
            return [label, *rest]
    dead_ends.add(at)
    return None


def _starts(text: str, at: int) -> Iterator[tuple[str, int]]:
    """Each piece of chrome that starts at ``at``: its label and where it ends, longest first."""
    count = _COUNT.match(text, at)
    day = _date_at(text, at)
    if day is not None:
        yield _DATE_LABEL, day
    for start, counted in ((count.end(), True), (at, False)) if count else ((at, False),):
        for length in _LENGTHS:
            piece = _PHRASES.get(text[start : start + length])
            if piece is None or (counted and not piece.counted):
                continue
            end = start + length
            if piece.takes_rest:
                if not _short_rest(text[end:].strip()):
                    continue
                end = len(text)
            yield piece.label, end


# ------------------------------------------------------------------------------------ headlines

# "3. Headline" or "3) Headline", with a space after the mark ("1.5 million" is no headline).
_NUMBERED = re.compile(r"^\s*(\d{1,4})\s*[.)]\s+(\S.*?)\s*$")
_YEARS = range(1900, 2100)  # "2024. A Year in Review" is a year, not story 2024
# Words that end with a full stop without ending a sentence: "Crumb & Co." is still a headline.
_ABBREVIATION = re.compile(
    r"(?:\b(?:inc|co|corp|ltd|llc|plc|jr|sr|st|dr|mr|mrs|ms|no|vs|etc|approx|dept|bros|intl)\."
    r"|\b(?:[a-z]\.){2,}|\b[a-z]\.)$",
    re.IGNORECASE,
)
_HEADLINE_MAX = 150  # characters: longer is a paragraph, whatever it starts with
_HEADLINE_WORDS = 25
# A headline some blogs end with a full stop ("5. A Tiny Phone Nobody Asked For.") is short and in
# title case; and it is taken only where the story numbers say a headline is due.
_FULL_STOP_WORDS = 12
# Two sentences in one line: "... it would. Then ..."; a headline is one phrase, though it may ask
# a question first ("What Happened to the Money? The Council Answers").
_TWO_SENTENCES = re.compile(r"[a-z]{3,}\. +[A-Z]")
# The small words a title-case headline leaves in lower case.
_MINOR_WORDS = frozenset(
    (
        *("a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "nor", "of", "off"),
        *("on", "onto", "or", "over", "per", "so", "than", "the", "to", "up", "via", "vs", "vs.", "with"),
        *("yet", "à", "au", "aux", "de", "des", "du", "en", "et", "la", "le", "les", "und", "der"),
        *("die", "das", "von", "zu", "im"),
    )
)
_QUOTES = "\"'“”‘’«»()[]*_"


class _Headline(NamedTuple):
    number: int
    text: str  # as written
    full_stop: bool  # it ends with a full stop: a headline only where one is due


def _headline(line: str) -> _Headline | None:
    """A line that can be a bare story headline, ``N. Headline`` or ``N) Headline``: one short
    phrase that does not end a sentence (a question or an exclamation may; a short one in title
    case may end with a full stop), and that starts with a capital, a digit, a sign or a quote, or
    with a brand written in lower case ("vivo Releases")."""
    match = _NUMBERED.match(line)
    if match is None:
        return None
    number, text = int(match.group(1)), match.group(2)
    if number < 1 or number in _YEARS or text.startswith(("#", "- ", "* ", "+ ")):
        return None
    words = text.split()
    if len(text) > _HEADLINE_MAX or len(words) > _HEADLINE_WORDS or _TWO_SENTENCES.search(text):
        return None
    if not _starts_like_headline(words):
        return None
    last = text.rstrip("\"'”’»)]")
    if last.endswith((",", ";", ":")):
        return None
    if last.endswith(("?", "!")) and len(text) > 100:
        return None
    full_stop = last.endswith(".") and not last.endswith("...") and not _ABBREVIATION.search(last)
    if full_stop and (len(words) > _FULL_STOP_WORDS or not title_case(text)):
        return None  # "4. The company said it would expand." is a numbered sentence
    return _Headline(number, text, full_stop)


def headline_of(line: str) -> tuple[int, str] | None:
    """The number and headline of a line that is, on its own, a bare story headline (see
    ``_headline``), with the headline as written; None for anything else, in particular a
    paragraph that starts with a number ("2. The company said it would expand, and analysts
    agreed."). A headline that ends with a full stop is one only in its place: see
    ``story_headlines``."""
    found = _headline(line)
    return None if found is None or found.full_stop else (found.number, found.text)


def _starts_like_headline(words: list[str]) -> bool:
    first = words[0].lstrip("\"'“‘«([¡¿")
    if not first:
        return True  # a quote or bracket alone: let the rest speak
    if not first[0].isalpha():
        return True  # "$4.6 Billion …", "2026's …", "“PhoneGPT” …"
    if first[0].isupper():
        return True
    # A brand in lower case: "iPhone", "eBay" (a capital inside), or "vivo Releases" (the words
    # after it capitalised, as a title-case headline has them).
    if any(c.isupper() for c in first[1:]):
        return True
    rest = [w for w in words[1:] if w[:1].isalpha()]
    return bool(rest) and sum(w[0].isupper() for w in rest) * 2 >= len(rest)


def title_case(text: str) -> bool:
    """Every word but the first and the small ones ("to", "of", "and") starts with a capital, or
    carries one ("iOS") or a digit: "Huawei Returns to Europe", not "Cut prices in India"."""
    words = [w.strip(_QUOTES) for w in text.split()]
    words = [w for w in words if w[:1].isalpha()]
    return all(
        w[0].isupper() or any(c.isupper() or c.isdigit() for c in w)
        for w in words[1:]
        if w.casefold() not in _MINOR_WORDS
    )


def starts_sentence(line: str) -> bool:
    """The line begins as a sentence does: not with a lower-case word ("iPhone" and "vivo X200
    Pro" aside, which carry a capital or a digit)."""
    text = line.strip().lstrip(_QUOTES)
    if not text:
        return False
    word = text.split()[0]
    return not word[0].islower() or any(c.isupper() or c.isdigit() for c in word)


def is_numbered_line(line: str) -> bool:
    """A line that starts like an ordered-list entry or a headline: ``N. `` or ``N) ``."""
    return _NUMBERED.match(line) is not None


class _Sequence:
    """Where a walk down a paste or a draft is: the number of the story above, and the numbered
    list in that story, if one is going on: the number its next entry would have, and whether
    text came between its entries. (A plain class, not a dataclass: it costs lint's start-up
    less.)"""

    __slots__ = ("entries", "listing", "loose", "story", "text_since")

    def __init__(self) -> None:
        self.story = 0
        self.listing: int | None = None
        self.entries = 0
        self.loose = False  # text between its entries: "1. Launch", a paragraph, "2. Size", …
        self.text_since = False  # text since its last entry

    def story_at(self, number: int | None) -> None:
        if number is not None:
            self.story = number
        self.listing = None

    def entry(self, number: int) -> None:
        if number != self.listing:  # a new list
            self.entries, self.loose, self.text_since = 0, False, False
        self.loose = self.loose or self.text_since
        self.listing, self.entries, self.text_since = number + 1, self.entries + 1, False

    def text(self) -> None:
        """A line of text, no entry: a list of entries one after the other ends with it (a
        number after it that would go on with the list is not the list's)."""
        if self.listing is not None and self.entries >= 2 and not self.loose:
            self.listing = None
        self.text_since = True


def story_headlines(
    lines: Sequence[str],
    *,
    headings: Mapping[int, int | None] | None = None,
    candidates: Container[int] | None = None,
) -> dict[int, tuple[int, str]]:
    """The lines that are bare story headlines, by index: ``{index: (number, headline)}``. One
    check for ``digest import`` and ``digest lint``, which must agree on what a headline is.

    A line is read in its place, going down the text with the story numbers: ``N. Headline``
    stands alone (no numbered line right below it, then text that is no other headline), and
    either its number is the next story's, or it skips ahead (a gap the editor is told of) where
    no list is going on. A numbered list inside a story is no stories: a number below the story's
    own, or the next entry of the list above, or after a line that ends with ':', is a list entry;
    and where the list's next entry and the next story have the same number, the line is the
    story when it is in title case and that story does not come further down ("3. Extended
    updates to seven years" then "4. Huawei Returns to Europe"). A list of entries one after the
    other ends at the text below it; one whose entries each have their text goes on.

    ``headings``: lines already story headings (a draft's ``## N.``), by index, with their number;
    ``candidates``: the lines that may be bare headlines (a draft's paragraphs and list entries,
    not its code or quotes); the others are read for the numbers only.
    """
    headings = headings or {}
    found: dict[int, tuple[int, str]] = {}
    walk = _Sequence()
    above = ""  # the nearest line above that is not blank
    touching = ""  # the line right above, "" when it is blank
    for index, line in enumerate(lines):
        if index in headings:
            walk.story_at(headings[index])
            above = touching = line
            continue
        if not line.strip():
            touching = ""
            continue
        numbered = _NUMBERED.match(line)
        if numbered is not None:
            headline = _headline(line) if candidates is None or index in candidates else None
            if headline is not None and _is_story(lines, index, headline, walk, above, touching, headings):
                found[index] = (headline.number, headline.text)
                walk.story_at(headline.number)
            else:
                walk.entry(int(numbered.group(1)))
        elif not line.lstrip().startswith("#"):
            walk.text()
        above = touching = line
    return found


def _is_story(
    lines: Sequence[str],
    index: int,
    headline: _Headline,
    walk: _Sequence,
    above: str,
    touching: str,
    headings: Mapping[int, int | None],
) -> bool:
    """Whether a line that can be a headline is one where it stands (see ``story_headlines``)."""
    number, text = headline.number, headline.text
    below = lines[index + 1] if index + 1 < len(lines) else ""
    if below.strip():
        if is_numbered_line(below) or below[:1].isspace():
            return False  # an entry of a list, or one that goes on, indented, on the next line
        if not starts_sentence(below) and not title_case(text):
            return False  # "1. Borrow a packet of seeds, return one from" / "your own harvest."
    after = index + 1
    while after < len(lines) and not lines[after].strip():
        after += 1
    following = lines[after] if after < len(lines) else None
    if following is None or following.lstrip().startswith("#") or _headline(following) is not None:
        return False  # nothing after it, a heading, or another headline: no story of its own
    due = number == walk.story + 1
    # The line right above goes on into this one: a sentence wrapped by hand, a number and all.
    wrapped = bool(touching) and not (
        ends_sentence(touching)
        or touching.rstrip().endswith(":")
        or touching.lstrip().startswith("#")
        or is_numbered_line(touching)
        or chrome_label(touching) is not None
    )
    if wrapped and (not due or not starts_sentence(below or "A")):
        return False
    if headline.full_stop and (not due or wrapped):
        return False
    if number < walk.story:
        return False  # a list that starts again at 1 in story 3
    if due:
        if walk.listing == number:  # the list's next entry too: which is it?
            return title_case(text) and not _told_later(lines, index, number, headings)
        return True
    # A gap in the numbers, or one repeated: a headline where no list is going on.
    after_entry = above.rstrip().endswith(":") or is_numbered_line(above)
    return walk.listing != number and not after_entry and (number > walk.story or number > 1)


def _told_later(lines: Sequence[str], index: int, number: int, headings: Mapping[int, int | None]) -> bool:
    """Whether story ``number`` comes further down, before the next story heading: then the line
    at ``index`` with that number is an entry of the list above it ("2. Size" in story 1, with
    "2. vivo Releases BlueLM" below)."""
    for at in range(index + 1, len(lines)):
        if at in headings:
            return headings[at] == number
        found = _headline(lines[at])
        if found is not None and found.number == number:
            below = lines[at + 1] if at + 1 < len(lines) else ""
            if not is_numbered_line(below):
                return True
    return False


# ---------------------------------------------------------------------------------- paragraphs

_PARAGRAPH_MIN = 60  # characters
_PARAGRAPH_WORDS = 8
_BLOCK_MARK = re.compile(r"^\s*(?:#{1,6}\s|>|[-*+]\s|\d+[.)]\s|\||```|~~~)")


def ends_sentence(line: str) -> bool:
    """The line ends a sentence: a full stop, question or exclamation mark or ellipsis, maybe
    followed by a closing quote or bracket."""
    return _SENTENCE_END.search(line.rstrip()) is not None


def reads_as_paragraph(line: str) -> bool:
    """A line that reads like a whole paragraph on its own: long (60 characters and eight words at
    least), ending a sentence, and not a Markdown heading, list entry, quote or table row. Several
    such lines in a row are a paste with one paragraph per line, which Markdown runs together."""
    text = line.strip()
    if len(text) < _PARAGRAPH_MIN or len(text.split()) < _PARAGRAPH_WORDS:
        return False
    if _BLOCK_MARK.match(text):
        return False
    return ends_sentence(text)


# ------------------------------------------------------------------------------------------ dates

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan janvier janv januar jän enero ene gennaio gen janeiro januari",
        "february feb février févr fevrier februar febrero febbraio fevereiro fev februari",
        "march mar mars märz marzo março maart mrt",
        "april apr avril abril aprile",
        "may mai mayo maggio mag maio mei",
        "june jun juin juni junio giugno giu junho",
        "july jul juillet juil juli julio luglio lug julho",
        "august aug août aout agosto ago augustus",
        "september sep sept septembre septiembre settembre set setembro",
        "october oct octobre oktober octubre ottobre ott outubro out",
        "november nov novembre noviembre novembro",
        "december dec décembre déc dezember dez diciembre dic dicembre dezembro",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS.setdefault(_name, _number)

_MONTH = r"(?P<month>[^\W\d_]{3,10})\.?"
_WEEKDAY = r"(?:[^\W\d_]{3,12}\.?,?\s+)?"
_DATES = (
    re.compile(r"(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})"),
    re.compile(_WEEKDAY + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})"),
    re.compile(
        _WEEKDAY
        + r"(?P<day>\d{1,2})(?:st|nd|rd|th|er|\.|º)?\s+(?:de\s+)?"
        + _MONTH
        + r",?\s+(?:de\s+)?(?P<year>\d{4})"
    ),
)


def date_of(line: str) -> dt.date | None:
    """The date a line consists of ("Nov 20, 2026", "20 novembre 2026", "2026-11-20", "Friday,
    November 20, 2026"), or None: a blog's date line, which a paste brings along."""
    text = line.strip().strip("·•|").strip()
    if len(text) > 40:
        return None
    for pattern in _DATES:
        match = pattern.fullmatch(text)
        if match is not None:
            return _day(match, glued=False)
    return None


def date_in(line: str) -> dt.date | None:
    """The first date anywhere in a line, glued to a name or not: the date of a byline ("Posted on
    November 20, 2026 by Mira Chen", "Mira ChenDec 4, 2026")."""
    for pattern in _DATES:
        for match in pattern.finditer(line):
            day = _day(match, glued=True)
            if day is not None:
                return day
    return None


def _day(match: re.Match[str], *, glued: bool) -> dt.date | None:
    """The date a pattern matched; with ``glued``, the month's name may come glued to the word
    before it, its capital showing where ("ChenDec" is December; "Osmar" is no March)."""
    groups = match.groupdict()
    if groups.get("month"):
        written = groups["month"].rstrip(".")
        starts = [0, *(k for k in range(1, len(written) - 2) if glued and written[k].isupper())]
        month = next((_MONTHS[m] for k in starts if (m := written[k:].casefold()) in _MONTHS), None)
    else:
        month = int(groups["mon"])
    if month is None:
        return None
    try:
        return dt.date(int(groups["year"]), month, int(groups["day"]))
    except ValueError:
        return None


def _date_at(text: str, at: int) -> int | None:
    """Where a date that starts at ``at`` in a folded line ends, if one does."""
    for pattern in _DATES:
        match = pattern.match(text, at)
        if match is None:
            continue
        month = match.groupdict().get("month")
        if month is None or month.rstrip(".") in _MONTHS:
            return match.end()
    return None
