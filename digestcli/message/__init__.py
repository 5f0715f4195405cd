"""Messages: a rendered issue made into each reader's bytes (``personalize``), the encodings they
use (``mime``) and the unsubscribe tokens they carry (``tokens``).

The names below load with the module that holds them, on first use: checking a token
(``digest unsubscribe``, ``digest serve``) does not load the renderer that building a message needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digestcli.lazy import names_from

if TYPE_CHECKING:
    from digestcli.message.mime import address_header, header, quoted_printable
    from digestcli.message.personalize import BUILTIN_FIELDS, Masthead, Message, Personalizer, Reader
    from digestcli.message.tokens import (
        address_for_token,
        make_token,
        token_in,
        unsubscribe_address,
        verify_token,
    )
    from digestcli.state.secret import SECRET_ENV, load_secret, read_secret

_HOMES = {
    "digestcli.message.mime": ("address_header", "header", "quoted_printable"),
    "digestcli.message.personalize": ("BUILTIN_FIELDS", "Masthead", "Message", "Personalizer", "Reader"),
    "digestcli.message.tokens": (
        "address_for_token",
        "make_token",
        "token_in",
        "unsubscribe_address",
        "verify_token",
    ),
    "digestcli.state.secret": ("SECRET_ENV", "load_secret", "read_secret"),
}
__all__ = [
    "BUILTIN_FIELDS",
    "SECRET_ENV",
    "Masthead",
    "Message",
    "Personalizer",
    "Reader",
    "address_for_token",
    "address_header",
    "header",
    "load_secret",
    "make_token",
    "quoted_printable",
    "read_secret",
    "token_in",
    "unsubscribe_address",
    "verify_token",
]  # the names _HOMES holds, written out for type checkers


__getattr__, __dir__ = names_from(__name__, _HOMES)
