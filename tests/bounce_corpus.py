"""The corpus of returned mail in tests/fixtures/bounces/, and as many varied copies of it as a
test or a benchmark wants.

Each file is one message as a mail server or provider writes it (Postfix, Exim, Exchange, Gmail,
Yahoo, Amazon SES, qmail, ARF reports, auto-replies, unsubscribe mails, the editor's own mail,
broken ones). The newsletter in them is "The Weekly" <weekly@news.example.org>, List-Id
``weekly.news.example.org``, its messages ``<the-weekly-42.HEX24@news.example.org>``, and its
VERP bounce address ``bounces+TOKEN@news.example.org`` (TOKEN: 5 characters for the issue,
``k7wq2``, then 16 for the reader, base32 lower case as ``digestcli.message.verp`` makes them).

``varied_reports(n)`` cycles through the files and makes each copy a different report: its own
Message-ID, its own reader (the pristine report's recipients get the copy's number in their local
part: ``ann.lee@example.net`` -> ``ann.lee.17@example.net``), its own VERP token and its own
Message-ID of the quoted original. For example, a Maildir of 10,000 reports::

    import mailbox
    from bounce_corpus import varied_reports   # tests/ is on sys.path in the test suite

    box = mailbox.Maildir("bounces", create=True)
    for data in varied_reports(10_000):
        box.add(data)
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "fixtures" / "bounces"
ISSUE_PART = "k7wq2"  # the first 5 characters of every VERP token in the corpus: issue 42

_TOKEN = re.compile(rb"(bounces\+" + ISSUE_PART.encode() + rb")([a-z2-7]{16})(@)", re.IGNORECASE)
_OUR_MESSAGE_ID = re.compile(rb"(<the-weekly-42\.)([0-9a-f]{24})(@news\.example\.org>)")
_OWN_MESSAGE_ID = re.compile(rb"^(Message-I[Dd]:[ \t]*(?:\r?\n[ \t]+)?<)", re.MULTILINE)


def corpus_files() -> list[Path]:
    """Every message of the corpus, sorted by name."""
    return sorted(CORPUS.glob("*.eml"))


def varied_reports(n: int, files: Sequence[Path] | None = None) -> Iterator[bytes]:
    """``n`` messages made from the corpus files in turn (all of them unless ``files``), each
    copy a different report about a different reader (see the module's docstring)."""
    from digestcli.bounces.classify import classify_bytes

    sources = list(files) if files is not None else corpus_files()
    pristine = [path.read_bytes() for path in sources]
    # The addresses to vary: those the classifier finds as the report's readers.
    readers = [classify_bytes(data).recipients for data in pristine]
    for i in range(n):
        k = i % len(pristine)
        yield vary(pristine[k], i, readers[k])


def vary(data: bytes, number: int, readers: Sequence[str] = ()) -> bytes:
    """One copy of a corpus message made into report number ``number``."""
    for address in readers:
        local, _, domain = address.rpartition("@")
        data = data.replace(address.encode(), f"{local}.{number}@{domain}".encode())
    data = _TOKEN.sub(lambda m: m.group(1) + _base32(number, 16) + m.group(3), data)
    data = _OUR_MESSAGE_ID.sub(lambda m: m.group(1) + _hex(number, 24) + m.group(3), data)
    # The report's own Message-ID (the first one in the file: the report's header comes first).
    return _OWN_MESSAGE_ID.sub(lambda m: m.group(1) + f"copy{number}.".encode(), data, count=1)


def _digest(number: int) -> bytes:
    return hashlib.sha256(number.to_bytes(8, "big")).digest()


def _base32(number: int, length: int) -> bytes:
    return base64.b32encode(_digest(number)).lower()[:length]


def _hex(number: int, length: int) -> bytes:
    return _digest(number).hex().encode()[:length]
