"""Finding the workspace and reading its ``digest.toml`` into frozen settings.

Every setting has a default, so a folder with nothing but ``drafts/`` is a workspace too.
"""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, get_type_hints

from digestcli.errors import ConfigError

CONFIG_NAME = "digest.toml"

# The settings are NamedTuples, not frozen dataclasses: as immutable, and each one costs a tenth
# of a dataclass to create, which every command pays as it starts.

# The default of a table of free-form entries: one shared mapping, so one that cannot be changed.
_NO_ENTRIES: Mapping[str, str] = MappingProxyType({})


class NewsletterConfig(NamedTuple):
    title: str = "Example Weekly"
    sender: str = "Example Weekly <digest@example.com>"  # `from` in digest.toml
    reply_to: str = ""
    postal_address: str = "1 Example Road, Singapore 000001"
    unsubscribe_url: str = "https://example.com/unsubscribe?token={token}"
    unsubscribe_mailto: str = ""
    list_id: str = ""  # derived from `from` when empty
    language: str = "en"


class LintConfig(NamedTuple):
    wrapup_heading: str = "Wrapping Up"
    subject_max: int = 78
    headline_max: int = 90
    spelling: str = "any"  # "any" takes US and British spellings; "us" or "gb" only one of them
    check_links: bool = True  # digest send checks every link and image before asking
    link_cache_hours: float = 24.0  # how long a link's answer is trusted (digest lint --links)
    link_timeout: float = 10.0  # seconds for one link's answer
    image_max_kb: int = 1024  # an image heavier than this is a warning (image-heavy)
    image_max_width: int = 1200  # pixels; a wider image is a warning too
    # rule name -> "off" | "warning" | "error"; rules not named keep their own severity
    rules: Mapping[str, str] = _NO_ENTRIES
    # Not a setting of its own: [newsletter] title, for the rules that compare with it.
    newsletter_title: str = ""


# Fields that are not settings of digest.toml but taken from another section (with_derived).
DERIVED_FIELDS = frozenset({"newsletter_title"})


class RenderConfig(NamedTuple):
    out: str = "out"


class WebConfig(NamedTuple):
    """The web edition (``digest publish``): a static site of every issue, an archive and a feed."""

    out: str = "site"  # the site's folder, relative to the workspace
    base_url: str = ""  # where the site is served, e.g. https://lantern.example.org/issues/
    subscribe_url: str = ""  # the sign-up page each web page links to
    publish_on_send: bool = True  # digest send publishes the page as the send starts
    reader_name: str = "there"  # what {{ reader.name }} becomes on the web: "Hi there"


class DeliveryConfig(NamedTuple):
    transport: str = "outbox"
    subscribers: str = "subscribers.csv"
    outbox: str = "outbox"
    connections: int = 4
    rate: float = 0.0  # messages per second over all connections; 0 means no limit
    retries: int = 3  # attempts per reader for temporary failures, within one run
    max_connection_failures: int = 5  # in a row, before the send stops...
    patience: float = 60.0  # ...and only once connections have failed for this many seconds
    timeout: float = 30.0  # seconds for any one SMTP exchange
    encoding: str = "utf-8"  # the list's; "cp1252" for a CSV Excel saved as plain "CSV"
    # Which of the list's columns is which, when digest does not recognise them itself: part of a
    # reader (exports.ROLES) -> the column's header as written, like {email = "Courriel"}.
    columns: Mapping[str, str] = _NO_ENTRIES
    # The envelope sender (MAIL FROM, Return-Path) of every message, where bounces go; empty: the
    # [newsletter] from address. verp: each reader's own, bounces+TOKEN@... (message.verp).
    bounce_address: str = ""
    verp: bool = False


class SmtpConfig(NamedTuple):
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    username: str = ""
    # the password is read from DIGEST_SMTP_PASSWORD at send time, never from a file


class ServeConfig(NamedTuple):
    """``digest serve``: the web edition and the one-click unsubscribe endpoint."""

    # "direct": into this workspace's suppression list; "mail": passed on to
    # [newsletter] unsubscribe_mailto for `digest bounces` (a server apart from the sending
    # workspace); "off": the site only
    unsubscribe: str = "direct"
    behind_proxy: bool = False  # trust X-Forwarded-For (set by the reverse proxy in front)
    requests_per_minute: int = 60  # per client, in bursts of as many; 0 means no limit


class BouncesConfig(NamedTuple):
    """``digest bounces``: the IMAP mailbox that bounces, complaints and unsubscribes come back to."""

    host: str = ""  # empty: no mailbox to read; `digest bounces --from PATH` reads a local one
    port: int = 993
    security: str = "ssl"  # "ssl" (port 993) | "starttls" (143) | "none"
    username: str = ""  # the password comes from DIGEST_IMAP_PASSWORD, never from a file
    folder: str = "INBOX"
    done_folder: str = "digest-processed"  # where handled reports go; "" flags them \Seen in place
    soft_bounce_limit: int = 3  # soft bounces on issues in a row before a reader is suppressed
    timeout: float = 30.0  # seconds for one IMAP exchange


class Config(NamedTuple):
    """A workspace's settings, one frozen section per table of ``digest.toml``; every value has a
    default, and ``load_config`` has checked them all (types, addresses, choices) before use."""

    newsletter: NewsletterConfig = NewsletterConfig()
    lint: LintConfig = LintConfig()
    render: RenderConfig = RenderConfig()
    web: WebConfig = WebConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    smtp: SmtpConfig = SmtpConfig()
    serve: ServeConfig = ServeConfig()
    bounces: BouncesConfig = BouncesConfig()


SMTP_SECURITIES = ("starttls", "ssl", "none")
TRANSPORTS = ("outbox", "smtp")
UNSUBSCRIBE_MODES = ("direct", "mail", "off")  # [serve] unsubscribe

# digest.toml keys that are Python keywords or read badly as attributes
_ALIASES = {"from": "sender"}
# Seconds to wait for a server: 0 would not wait at all (a socket with no timeout is non-blocking).
_MORE_THAN_ZERO = {"delivery.timeout", "bounces.timeout", "lint.link_timeout"}
_CHOICES = {
    ("lint", "spelling"): ("any", "us", "gb"),
    ("delivery", "transport"): TRANSPORTS,
    ("smtp", "security"): SMTP_SECURITIES,
    ("serve", "unsubscribe"): UNSUBSCRIBE_MODES,
    ("bounces", "security"): SMTP_SECURITIES,
}
_SEVERITIES = ("off", "warning", "error")
_REQUIRED_TEXT = {"title", "from", "wrapup_heading", "transport", "subscribers", "outbox", "host", "security"}
_REQUIRED_TEXT |= {"folder"}  # [bounces]
_MAY_BE_EMPTY = {"bounces.host"}  # no mailbox to read: `digest bounces --from PATH` only
_Where = Callable[[str], str | None]  # a dotted key -> where an error about it says it is


class Workspace(NamedTuple):
    """A newsletter's folder: its settings and where its files live."""

    root: Path
    config: Config
    config_path: Path | None = None

    @property
    def drafts(self) -> Path:
        return self.root / "drafts"

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def state(self) -> Path:
        """Where digest keeps what the editor does not edit: the ledger, the secret."""
        return self.root / ".digest"

    def path(self, setting: str) -> Path:
        """Resolve a path setting (relative to the workspace root)."""
        return self.root / setting

    def site_folder(self, out: Path | None = None) -> Path:
        """The web edition's folder (``out``, else ``[web] out``), refused when it is the workspace
        or holds it: the site is published to the world, and the list and the state must not be."""
        site = out if out is not None else self.path(self.config.web.out)
        resolved, root = site.resolve(), self.root.resolve()
        if resolved == root or resolved in root.parents:
            raise ConfigError(
                f"the site's folder {site} is the workspace, or holds it: the subscriber list and"
                " .digest/ would be published with it",
                where=str(self.config_path) if self.config_path else None,
                hint='set [web] out to a folder of its own, like "site"',
            )
        return site


def find_workspace(start: Path | None = None) -> Workspace:
    """The nearest folder at or above ``start`` holding a digest.toml; else ``start`` itself."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return Workspace(root=folder, config=load_config(candidate), config_path=candidate)
    return Workspace(root=start, config=with_derived(Config()))


def load_config(path: Path) -> Config:
    """Read and check a settings file as a whole: a bad value is an error naming the file, the
    line and the key, for every command that reads the workspace, not only for a send."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)": keep that, it is the where.
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from None
    lines = _key_lines(text)

    def where(dotted: str) -> str:
        # A key that is not in the file (a default) falls back to its table's line, then the file.
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            line = lines.get(".".join(parts[:end]))
            if line is not None:
                return f"{path}:{line}"
        return str(path)

    config: Config = _build(Config, raw, where, section="")
    _validate(config, where)
    return with_derived(config)


def with_derived(config: Config) -> Config:
    """The config with the values its sections take from each other filled in."""
    return config._replace(lint=config.lint._replace(newsletter_title=config.newsletter.title))


def _is_table(kind: Any) -> bool:
    """Whether a setting's type is a section of its own (a NamedTuple above), not a value."""
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


def _build(cls: Any, raw: Any, where: _Where, section: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table", where=where(section))
    hints = get_type_hints(cls)
    fields: list[str] = [name for name in cls._fields if name not in DERIVED_FIELDS]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(key, key)
        dotted = f"{section}.{key}" if section else key
        if name not in fields:
            known = [k for k in (*fields, *_ALIASES) if k not in _ALIASES.values()]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"unknown setting '{dotted}'", where=where(dotted), hint=hint)
        values[name] = _coerce(hints[name], value, where, dotted, key)
    return cls(**values)


def _coerce(kind: Any, value: Any, where: _Where, dotted: str, key: str) -> Any:
    if _is_table(kind):
        return _build(kind, value, where, dotted)
    if dotted == "delivery.columns":
        return _list_columns(value, where, dotted)
    if kind == Mapping[str, str]:  # [lint.rules]
        if not isinstance(value, dict):
            raise ConfigError(f"'{dotted}' must be a table", where=where(dotted))
        rules: dict[str, str] = {}
        for rule, setting in value.items():
            if setting is False:
                setting = "off"
            if setting is True:
                setting = "on"
            if setting not in (*_SEVERITIES, "on"):
                raise ConfigError(
                    f'\'{dotted}.{rule}\' must be true, false, "warning" or "error"',
                    where=where(f"{dotted}.{rule}"),
                )
            rules[rule] = setting
        return rules
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        bool: isinstance(value, bool),
    }[kind]
    if not ok:
        wanted = {str: "text", bool: "true or false"}.get(kind, "a number")
        raise ConfigError(f"'{dotted}' must be {wanted}, not {value!r}", where=where(dotted))
    if kind is bool:
        return value
    if kind is str and key in _REQUIRED_TEXT and dotted not in _MAY_BE_EMPTY and not value.strip():
        raise ConfigError(f"'{dotted}' cannot be empty", where=where(dotted))
    if kind in (int, float) and value < 0:
        raise ConfigError(f"'{dotted}' cannot be negative", where=where(dotted))
    if dotted in _MORE_THAN_ZERO and value == 0:
        raise ConfigError(f"'{dotted}' cannot be 0", where=where(dotted), hint="seconds to wait: more than 0")
    return float(value) if kind is float else value


def _list_columns(value: Any, where: _Where, dotted: str) -> dict[str, str]:
    """``[delivery] columns``: a table of parts of a reader (exports.ROLES) -> the list's header."""
    from digestcli.exports import ROLES

    if not isinstance(value, dict):
        raise ConfigError(
            f"'{dotted}' must be a table, like {{ email = \"E-mail Address\" }}", where=where(dotted)
        )
    for role, header in value.items():
        if role not in ROLES:
            close = difflib.get_close_matches(role, ROLES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"the parts are {', '.join(ROLES)}"
            raise ConfigError(f"unknown part '{dotted}.{role}'", where=where(f"{dotted}.{role}"), hint=hint)
        if not isinstance(header, str) or not header.strip():
            raise ConfigError(
                f"'{dotted}.{role}' must be a column's header, as text", where=where(f"{dotted}.{role}")
            )
    if "name" in value and ("first_name" in value or "last_name" in value):
        raise ConfigError(
            f"'{dotted}' names both name and first_name or last_name",
            where=where(dotted),
            hint="either the one column with the whole name, or first_name and last_name",
        )
    return dict(value)


_TABLE_HEADER = re.compile(r"\s*\[\[?([^\]]*)\]")
_KEY_ASSIGNMENT = re.compile(r"\s*([A-Za-z0-9_.\-\s\"']+?)\s*=")


def _key_lines(text: str) -> dict[str, int]:
    """dotted key -> the line that sets it, by a plain scan of the text: digest.toml is written by
    hand, and tomllib keeps no positions. Keys it cannot place only lose the line in an error."""
    found: dict[str, int] = {}
    table = ""
    multiline = ""  # the quotes of a multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if multiline:
            if line.count(multiline) % 2:
                multiline = ""
            continue
        header = _TABLE_HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            found.setdefault(table, number)
            continue
        assignment = _KEY_ASSIGNMENT.match(line)
        if not assignment:
            continue
        key = _dotted(assignment.group(1))
        found.setdefault(f"{table}.{key}" if table else key, number)
        value = line[assignment.end() :]
        for quotes in ('"""', "'''"):
            if value.count(quotes) % 2:
                multiline = quotes
    return found


def _dotted(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


# -- the settings that end up in a message's headers --------------------------------------------

_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,255}")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # printable ASCII: no space, no control character
# What subscribers.one_line turns into a space: a header value may hold none of it.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_LIST_ID_HINT = "a name like weekly.example.com: letters, digits, dots and hyphens, no spaces"
_MAILTO_HINT = "a bare address, like unsubscribe@example.com"


def split_address(value: str, key: str, where: str | None = None) -> tuple[str, str]:
    """(display name, address) of ``Name <address>`` or a bare address, refused unless it can go
    into a header as it is. ``key`` names the setting in the error, e.g. ``newsletter.from``."""
    display, address = _name_and_address(value) or ("", "")
    if (
        _NOT_ONE_LINE.search(value.strip())
        or "@" not in address
        or not _PRINTABLE.fullmatch(address)
        or "<" in address
        or ">" in address
    ):
        raise ConfigError(
            f"{key} is not an email address: {value!r}",
            where=where,
            hint='one address, bare or as "Name <name@example.org>"',
        )
    return display, address


def _name_and_address(value: str) -> tuple[str, str] | None:
    """``Name <address>``, ``"Quoted, Name" <address>`` or a bare address, split; None for two
    addresses. The common forms are split here: email.utils costs every command 5 ms to import,
    and every command reads the settings; any other form (a comment in parentheses, a group, an
    unclosed bracket) is left to email.utils, as it always was."""
    text = value.strip()
    if any(char in text for char in "():[]\\") or text.count("<") != text.count(">") or text.count("<") > 1:
        from email.utils import getaddresses

        pairs = getaddresses([value])
        return pairs[0] if len(pairs) == 1 else None
    if text.endswith(">") and "<" in text:
        at = text.rindex("<")
        display, address = text[:at].strip(), text[at + 1 : -1].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        elif any(char in display for char in '<>@,;"'):
            return None
    else:
        display, address = "", text
    if not address or any(char in address for char in ' \t<>,;"'):
        return None
    return display, address


def check_unsubscribe_url(url: str, where: str | None = None) -> str:
    """newsletter.unsubscribe_url, refused unless it can go into a header as it is."""
    if "{token}" not in url or not url.startswith("https://"):
        raise ConfigError(
            f"newsletter.unsubscribe_url is {url!r}",
            where=where,
            hint="it must be an https:// URL holding {token}, where each reader's token goes",
        )
    if not _PRINTABLE.fullmatch(url) or any(char in url for char in '<>"'):
        raise ConfigError(
            f"newsletter.unsubscribe_url has a space, a line break, a quote or <>, or is not ASCII: {url!r}",
            where=where,
            hint="percent-encode those characters (a space is %20)",
        )
    return url


def check_unsubscribe_mailto(value: str, where: str | None = None) -> str:
    """The bare address of newsletter.unsubscribe_mailto (a ``mailto:`` prefix allowed), or ""
    when it is not set. digest adds the ``?subject=``, so the setting may not have one."""
    text = value.strip()
    if not text:
        return ""
    if text[:7].lower() == "mailto:":
        text = text[7:]
    refusal = ConfigError(f"newsletter.unsubscribe_mailto is {value!r}", where=where, hint=_MAILTO_HINT)
    try:
        display, address = split_address(text, "newsletter.unsubscribe_mailto", where)
    except ConfigError:
        raise refusal from None
    if display or "?" in address:
        raise refusal
    return address


def check_list_id(value: str, where: str | None = None) -> str:
    """newsletter.list_id without its angle brackets; "" when empty (then it is derived from
    ``from``, see ``derived_list_id``)."""
    list_id = value.strip().strip("<>")
    if list_id and not _LIST_ID.fullmatch(list_id):
        raise ConfigError(f"newsletter.list_id is {value!r}", where=where, hint=_LIST_ID_HINT)
    return list_id


def derived_list_id(address: str) -> str:
    """The List-Id an empty newsletter.list_id stands for: the sender's address made a name,
    ``news@example.org`` -> ``news.example.org``."""
    local = re.sub(r"[^A-Za-z0-9-]+", "-", address.partition("@")[0]).strip("-") or "list"
    return f"{local}.{address.rpartition('@')[2].lower()}"


def validate(config: Config, where: str | None = None) -> None:
    """Refuse settings that could not go into a message or name a choice that does not exist.
    ``load_config`` runs it on every read; ``where`` names the settings' source in errors."""
    _validate(config, lambda dotted: where)


def _validate(config: Config, where: _Where) -> None:
    news = config.newsletter
    _, sender = split_address(news.sender, "newsletter.from", where("newsletter.from"))
    if news.reply_to:
        split_address(news.reply_to, "newsletter.reply_to", where("newsletter.reply_to"))
    check_unsubscribe_url(news.unsubscribe_url, where("newsletter.unsubscribe_url"))
    mailto = check_unsubscribe_mailto(news.unsubscribe_mailto, where("newsletter.unsubscribe_mailto"))
    # `digest bounces` reads any mail to the unsubscribe address as its sender's unsubscribe: a
    # reply to the newsletter, or a bounce, landing there must not be one.
    others = {
        "newsletter.from": news.sender,
        "newsletter.reply_to": news.reply_to,
        "delivery.bounce_address": config.delivery.bounce_address,
    }
    for key, value in others.items():
        if mailto and value and split_address(value, key, where(key))[1].lower() == mailto.lower():
            raise ConfigError(
                f"newsletter.unsubscribe_mailto is the {key} address ({mailto})",
                where=where("newsletter.unsubscribe_mailto"),
                hint="give it a mailbox of its own, like unsubscribe@… delivered to the bounce mailbox:"
                " every mail sent to it is read as an unsubscribe by its sender",
            )
    if not check_list_id(news.list_id, where("newsletter.list_id")):
        derived = derived_list_id(sender)
        if not _LIST_ID.fullmatch(derived):
            raise ConfigError(
                f"newsletter.list_id is empty, and the one made from newsletter.from ({derived!r})"
                " is not a valid List-Id",
                where=where("newsletter.from"),
                hint=f"set newsletter.list_id to {_LIST_ID_HINT}",
            )
    if config.serve.unsubscribe == "mail" and not news.unsubscribe_mailto.strip():
        raise ConfigError(
            'serve.unsubscribe is "mail", and newsletter.unsubscribe_mailto is empty',
            where=where("serve.unsubscribe"),
            hint="set newsletter.unsubscribe_mailto to the mailbox `digest bounces` reads",
        )
    for key in ("base_url", "subscribe_url"):
        url = getattr(config.web, key)
        if url and (not url.startswith(("https://", "http://")) or not _PRINTABLE.fullmatch(url)):
            raise ConfigError(
                f"web.{key} is {url!r}",
                where=where(f"web.{key}"),
                hint="a full http(s):// address with no spaces, like https://lantern.example.org/issues/",
            )
    _validate_bounces(config.bounces, where)
    _validate_envelope(config, sender, where)
    try:
        codecs.lookup(config.delivery.encoding)
    except LookupError:
        raise ConfigError(
            f"delivery.encoding is {config.delivery.encoding!r}: not an encoding digest knows",
            where=where("delivery.encoding"),
            hint='"utf-8" (the default), "cp1252" (a CSV Excel saved as plain "CSV"), "utf-16"',
        ) from None
    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            dotted = f"{section}.{key}"
            raise ConfigError(
                f"'{dotted}' is {value!r}; choose one of {', '.join(choices)}", where=where(dotted)
            )


def _validate_envelope(config: Config, sender: str, where: _Where) -> None:
    """[delivery] bounce_address: one bare address; with verp, one with room for the token."""
    delivery = config.delivery
    bounce = delivery.bounce_address.strip()
    if bounce:
        name, address = split_address(bounce, "delivery.bounce_address", where("delivery.bounce_address"))
        if name or address != bounce:
            raise ConfigError(
                f"delivery.bounce_address is {delivery.bounce_address!r}",
                where=where("delivery.bounce_address"),
                hint="the bare address bounces go to, like bounces@example.org: no name, no <>",
            )
    if delivery.verp:
        from digestcli.message.verp import check_bounce_address

        why = check_bounce_address(bounce or sender)
        if why:
            key = "delivery.bounce_address" if bounce else "newsletter.from"
            raise ConfigError(
                f"delivery.verp is on, but {why}",
                where=where(key if bounce else "delivery.verp"),
                hint=f"set {key} to an address with a shorter local part, or verp = false",
            )


def _validate_bounces(bounces: BouncesConfig, where: _Where) -> None:
    if not 0 < bounces.port < 65536:
        raise ConfigError(f"bounces.port is {bounces.port}", where=where("bounces.port"), hint="1 to 65535")
    if bounces.soft_bounce_limit < 1:
        raise ConfigError(
            f"bounces.soft_bounce_limit is {bounces.soft_bounce_limit}",
            where=where("bounces.soft_bounce_limit"),
            hint="1 or more: how many issues in a row may soft-bounce before a reader is left out",
        )
    if bounces.done_folder.strip() == bounces.folder.strip():
        raise ConfigError(
            f"bounces.done_folder is the folder it reads ({bounces.folder!r})",
            where=where("bounces.done_folder"),
            hint='name another folder, or "" to flag handled reports where they are',
        )
    host = bounces.host
    # One colon is a port written into the host; an IPv6 address has several.
    if host and (any(c in host for c in " /@") or host.count(":") == 1 or not _PRINTABLE.fullmatch(host)):
        raise ConfigError(
            f"bounces.host is {bounces.host!r}",
            where=where("bounces.host"),
            hint="a host name or address, like imap.example.org; the port goes in bounces.port",
        )


# -- example values left in the settings --------------------------------------------------------


class ExampleSetting(NamedTuple):
    """A setting still holding an example value, which a real send must not go out with."""

    key: str  # dotted, as in digest.toml: newsletter.from
    value: str
    why: str


_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606 §3
_RESERVED_TLDS = ("test", "invalid", "example", "localhost")  # RFC 2606 §2, RFC 6761 §6
_EXAMPLE_STREETS = ("example road", "example street")


def reserved_domain(name: str) -> str | None:
    """Why ``name`` is a domain reserved for examples and tests (RFC 2606, RFC 6761), or None
    when it is not one. Case and a trailing dot do not matter."""
    domain = name.strip().lower().removesuffix(".")
    if not domain:
        return None
    for example in _EXAMPLE_DOMAINS:
        if domain == example:
            return f"{example} is a reserved example domain"
        if domain.endswith("." + example):
            return f"{domain} is under {example}, a reserved example domain"
    tld = domain.rpartition(".")[2]
    if tld in _RESERVED_TLDS:
        return f"{domain} is under .{tld}, a reserved top-level domain"
    return None


def example_settings(config: Config) -> list[ExampleSetting]:
    """Every setting that still holds an example value or a reserved domain, so that a send to
    real readers can refuse and name the key to set. Empty settings are not listed."""
    news = config.newsletter
    default = NewsletterConfig()
    found: list[ExampleSetting] = []

    def check(key: str, value: str, domain: str, built_in: str, built_in_why: str) -> None:
        if not value.strip():
            return
        why = built_in_why if value.strip() == built_in.strip() else reserved_domain(domain)
        if why:
            found.append(ExampleSetting(key, value, why))

    address_why = "the built-in example address"
    check("newsletter.from", news.sender, _domain_of(news.sender), default.sender, address_why)
    check("newsletter.reply_to", news.reply_to, _domain_of(news.reply_to), default.reply_to, address_why)
    bounce = config.delivery.bounce_address
    check("delivery.bounce_address", bounce, _domain_of(bounce), "", address_why)
    url = news.unsubscribe_url
    check(
        "newsletter.unsubscribe_url", url, _host_of(url), default.unsubscribe_url, "the built-in example URL"
    )
    mailto = news.unsubscribe_mailto.strip()
    if mailto[:7].lower() == "mailto:":
        mailto = mailto[7:]
    check(
        "newsletter.unsubscribe_mailto",
        news.unsubscribe_mailto,
        _domain_of(mailto),
        default.unsubscribe_mailto,
        address_why,
    )
    postal = news.postal_address
    if postal.strip() and postal.strip() == default.postal_address:
        found.append(ExampleSetting("newsletter.postal_address", postal, "the built-in example address"))
    elif any(street in postal.lower() for street in _EXAMPLE_STREETS):
        found.append(ExampleSetting("newsletter.postal_address", postal, "an example street address"))
    return found


def _domain_of(value: str) -> str:
    # Lenient on purpose: a value validate refuses has no domain to judge, and is reported there.
    found = _name_and_address(value)
    return found[1].rpartition("@")[2] if found else ""


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit  # here: only a send asks, and lint starts faster without

    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:  # an unclosed [ in an IPv6 host
        return ""
