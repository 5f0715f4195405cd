"""Which link and image targets may stay live in an email; the schemes themselves are the draft's.

The text part (``text``) and CSS inlining (``inline``) both ask this, so a link the HTML part keeps
is a link the text part lists, and one it makes inert the text part leaves out too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from digestcli.draft import IMAGE_SCHEMES, LINK_SCHEMES, SLOT, canonical_slots


def link_is_live(href: str, *, image: bool = False) -> bool:
    """Whether a target may stay live in an email: http(s), mailto (not for images), an anchor, a slot."""
    target = re.sub(r"[\x00-\x20\x7f]", "", canonical_slots(href))  # browsers drop these inside a scheme
    if SLOT.match(target):
        return True  # a reader's own URL (the unsubscribe link), filled in at send time
    if not image and len(target) > 1 and target.startswith("#"):
        return True  # the "In this issue" list's jump to an item
    try:
        scheme = urlsplit(target).scheme.lower()
    except ValueError:  # "http://[oops" and the like
        return False
    return scheme in (IMAGE_SCHEMES if image else LINK_SCHEMES)
