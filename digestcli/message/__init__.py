"""Messages: a rendered issue made into each reader's bytes (``personalize``), the encodings they
use (``mime``) and the unsubscribe tokens they carry (``tokens``)."""

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
]
