"""What every setting of ``digest.toml`` does, in one line each, and the commented ``digest.toml``
that ``digest init`` writes from them.

The keys and their defaults come from the settings records in ``config``, so the file written
always names every setting digest knows, with the default digest really uses; only the sentences
are kept here (a test fails when a setting has none).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from digestcli.config import _ALIASES, DERIVED_FIELDS, Config

# dotted key, as written in digest.toml -> what it does (its default is added from the settings record)
SETTINGS: dict[str, str] = {
    "newsletter.title": "The newsletter's name: each email's heading and footer, and `digest new`'s title",
    "newsletter.from": "Who the issue comes from, as `Name <address>`",
    "newsletter.reply_to": "Where replies go, when not to `from` (empty: no Reply-To header)",
    "newsletter.postal_address": "The postal address in each email's footer, which many laws require",
    "newsletter.unsubscribe_url": "The https page that unsubscribes a reader; `{token}` becomes their token",
    "newsletter.unsubscribe_mailto": "An address that unsubscribes whoever writes to it (List-Unsubscribe)",
    "newsletter.list_id": "The List-Id header, like weekly.example.org (empty: made from `from`)",
    "newsletter.language": "The issue's language: `<html lang>` and the spelling dictionary (en, fr, de …)",
    "lint.wrapup_heading": "The heading of the closing section, found in any case",
    "lint.subject_max": "A subject longer than this many characters is a warning: inboxes cut it",
    "lint.headline_max": "A headline longer than this many characters is a warning",
    "lint.spelling": 'Which English spellings pass: "any" (US and British), "us" or "gb"',
    "lint.check_links": "`digest send` checks that every link and image opens before it asks",
    "lint.link_cache_hours": "How many hours a link's answer is trusted before it is asked again",
    "lint.link_timeout": "Seconds to wait for one link's answer",
    "lint.image_max_kb": "An image heavier than this many KB is a warning (image-heavy)",
    "lint.image_max_width": "An image wider than this many pixels is a warning (image-heavy)",
    "lint.rules": 'A rule set to false (off), "warning" or "error"; `digest lint --rules` lists the rules',
    "render.out": "Where `digest render` writes the email's HTML and text parts",
    "web.out": "The web edition's folder, which `digest publish` writes",
    "web.base_url": "Where the site is served, like https://example.org/news/ (empty: emails lack the link)",
    "web.subscribe_url": "The sign-up page every web page links to (empty: no link)",
    "web.publish_on_send": "`digest send` publishes the issue's web page as the send starts",
    "web.reader_name": "What `{{ reader.name }}` becomes on the web, where there is no reader",
    "delivery.transport": '"outbox" (a Maildir folder: nothing leaves this machine) or "smtp"',
    "delivery.subscribers": "The reader list: a CSV file with an `email` column",
    "delivery.outbox": "The Maildir folder the outbox transport writes to",
    "delivery.connections": "SMTP connections at once, each reused for many messages",
    "delivery.rate": "Messages per second over all connections (0: no limit)",
    "delivery.retries": "Tries per reader for a temporary refusal, within one run",
    "delivery.max_connection_failures": "Failed connections in a row before a send stops (after `patience`)",
    "delivery.patience": "Seconds of failing connections waited out before a send gives up",
    "delivery.timeout": "Seconds for any one SMTP exchange",
    "delivery.bounce_address": "Where bounces go: every message's envelope sender (empty: `from`)",
    "delivery.verp": "Each message its own envelope sender, bounces+TOKEN@…, that names its reader",
    "delivery.encoding": 'The list\'s encoding when it is not UTF-8 ("cp1252": a CSV Excel saved as "CSV")',
    "delivery.columns": "Which of the list's columns holds the email, name, first_name, last_name, status or"
    ' subscribed, when digest does not recognise its header: email = "Courriel"',
    "smtp.host": "The SMTP server or your provider's relay",
    "smtp.port": "Its port: 587 for STARTTLS, 465 for SSL",
    "smtp.security": '"starttls", "ssl" (port 465) or "none" (only for a relay on this machine)',
    "smtp.username": "The login name; the password is never in this file (see above)",
    "serve.unsubscribe": 'What `digest serve` does with an unsubscribe: "direct", "mail" or "off"',
    "serve.behind_proxy": "Trust the X-Forwarded-For header of a reverse proxy in front of `digest serve`",
    "serve.requests_per_minute": "Requests per minute `digest serve` answers per client (0: no limit)",
    "bounces.host": "The IMAP server that returned mail comes back to (empty: none to read)",
    "bounces.port": "Its port: 993 for SSL, 143 for STARTTLS",
    "bounces.security": '"ssl" (port 993), "starttls" (143) or "none"',
    "bounces.username": "The login name; the password comes from $DIGEST_IMAP_PASSWORD",
    "bounces.folder": "The folder `digest bounces` reads",
    "bounces.done_folder": 'Where handled reports are moved ("": flagged as seen where they are)',
    "bounces.soft_bounce_limit": "Soft bounces on issues in a row before a reader is left out",
    "bounces.timeout": "Seconds for any one IMAP exchange",
}

# A line or two above a table, for what its settings share.
_TABLE_NOTES = {
    "newsletter": "Who sends the issue. Set from, postal_address and unsubscribe_url to your own before\n"
    "sending through SMTP: digest refuses the example values there.",
    "smtp": 'Used when [delivery] transport is "smtp".',
}

# An example line shown (commented out) in a table of free-form entries, such as [lint.rules].
_TABLE_EXAMPLES = {"lint.rules": "preheader-missing = false"}
_TABLE_DEFAULTS = {"lint.rules": "every rule on", "delivery.columns": "the usual headers"}

_KEY_NAMES = {name: key for key, name in _ALIASES.items()}  # sender -> from


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting as ``digest.toml`` spells it, with its default and what it does."""

    table: str  # newsletter
    key: str  # from
    default: Any
    about: str  # "" when SETTINGS lacks it

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.key}"


def all_settings(config: Config | None = None) -> Iterator[Setting]:
    """Every setting of ``digest.toml``, table by table in the order of ``Config``, with the value
    ``config`` holds (the built-in defaults when None). Derived values are not settings."""
    config = config or Config()
    for table in Config._fields:
        section = getattr(config, table)
        for name in section._fields:
            if name in DERIVED_FIELDS:
                continue
            key = _KEY_NAMES.get(name, name)
            about = SETTINGS.get(f"{table}.{key}", "")
            yield Setting(table, key, getattr(section, name), about)


def toml_value(value: Any) -> str:
    """A plain value as TOML writes it. A JSON string is a valid TOML basic string (the same
    escapes); a whole float is written as a whole number, as a person would."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def commented_config(values: dict[str, Any], *, header: str = "") -> str:
    """``digest.toml`` with every setting: the keys in ``values`` (dotted, ``newsletter.from``) set
    to those values, every other one commented out at its default; each with one comment line that
    says what it does and what its default is."""
    from digestcli.delivery.smtp import PASSWORD_ENV  # the names the code reads, to stay in step
    from digestcli.state.secret import SECRET_ENV

    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    lines += [
        "# Every setting has a default: a setting left commented out (#) takes the value it shows.",
        "# Remove the # and change the value to set one. digest checks this file whenever it runs.",
        f"# No secret goes in this file: the SMTP password is read from ${PASSWORD_ENV}, and the key",
        f"# that signs unsubscribe links from ${SECRET_ENV} (or .digest/secret, made on the first send).",
    ]
    by_table: dict[str, list[Setting]] = {}
    for setting in all_settings():
        by_table.setdefault(setting.table, []).append(setting)
    for table, settings in by_table.items():
        lines += ["", f"[{table}]"]
        lines += [f"# {line}" for line in _TABLE_NOTES.get(table, "").splitlines()]
        tables = [s for s in settings if isinstance(s.default, Mapping)]
        for setting in (s for s in settings if not isinstance(s.default, Mapping)):
            default = toml_value(setting.default)
            lines.append(
                f"# {setting.about}. Default: {default}." if setting.about else f"# Default: {default}."
            )
            if setting.dotted in values:
                lines.append(f"{setting.key} = {toml_value(values[setting.dotted])}")
            else:
                lines.append(f"# {setting.key} = {default}")
        for setting in tables:  # a sub-table ends its parent's keys: after them
            default = _TABLE_DEFAULTS.get(setting.dotted, "none")
            lines += [
                "",
                f"# {setting.about}. Default: {default}." if setting.about else f"# Default: {default}.",
            ]
            lines.append(f"[{setting.dotted}]")
            example = _TABLE_EXAMPLES.get(setting.dotted)
            if example:
                lines.append(f"# {example}")
    return "\n".join(lines) + "\n"
