"""Finding the workspace and reading its ``digest.toml`` into frozen settings.

Every setting has a default, so a folder with nothing but ``drafts/`` is a workspace too.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from digestcli.errors import ConfigError

CONFIG_NAME = "digest.toml"


@dataclass(frozen=True)
class NewsletterConfig:
    title: str = "Example Weekly"
    sender: str = "Example Weekly <digest@example.com>"  # `from` in digest.toml
    reply_to: str = ""
    postal_address: str = "1 Example Road, Singapore 000001"
    unsubscribe_url: str = "https://example.com/unsubscribe?token={token}"
    unsubscribe_mailto: str = ""
    list_id: str = ""  # derived from `from` when empty
    language: str = "en"


@dataclass(frozen=True)
class LintConfig:
    wrapup_heading: str = "Wrapping Up"
    subject_max: int = 78
    headline_max: int = 90
    # rule name -> "off" | "warning" | "error"; rules not named keep their own severity
    rules: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderConfig:
    out: str = "out"


@dataclass(frozen=True)
class DeliveryConfig:
    transport: str = "outbox"
    subscribers: str = "subscribers.csv"
    outbox: str = "outbox"
    connections: int = 4
    rate: float = 0.0  # messages per second over all connections; 0 means no limit
    retries: int = 3  # attempts per reader for temporary failures, within one run
    max_connection_failures: int = 5  # in a row, before the send stops
    timeout: float = 30.0  # seconds for any one SMTP exchange


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    username: str = ""
    # the password is read from DIGEST_SMTP_PASSWORD at send time, never from a file


@dataclass(frozen=True)
class Config:
    newsletter: NewsletterConfig = field(default_factory=NewsletterConfig)
    lint: LintConfig = field(default_factory=LintConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)


# digest.toml keys that are Python keywords or read badly as attributes
_ALIASES = {"from": "sender"}
_CHOICES = {
    ("delivery", "transport"): ("outbox", "smtp"),
    ("smtp", "security"): ("starttls", "ssl", "none"),
}
_SEVERITIES = ("off", "warning", "error")
_REQUIRED_TEXT = {"title", "from", "wrapup_heading", "transport", "subscribers", "outbox", "host", "security"}


@dataclass(frozen=True)
class Workspace:
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


def find_workspace(start: Path | None = None) -> Workspace:
    """The nearest folder at or above ``start`` holding a digest.toml; else ``start`` itself."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return Workspace(root=folder, config=load_config(candidate), config_path=candidate)
    return Workspace(root=start, config=Config())


def load_config(path: Path) -> Config:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # tomllib says "... (at line 3, column 7)": keep that, it is the where.
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", where=str(path)) from None
    config: Config = _build(Config, raw, path, section="")
    return config


def _build(cls: type, raw: Any, path: Path, section: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table", where=str(path))
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = _ALIASES.get(key, key)
        dotted = f"{section}.{key}" if section else key
        if name not in fields:
            known = [k for k in (*fields, *_ALIASES) if k not in _ALIASES.values()]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"
            raise ConfigError(f"unknown setting '{dotted}'", where=str(path), hint=hint)
        values[name] = _coerce(hints[name], value, path, dotted, section, key)
    return cls(**values)


def _coerce(kind: Any, value: Any, path: Path, dotted: str, section: str, key: str) -> Any:
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value, path, dotted)
    if kind == dict[str, str]:  # [lint.rules]
        if not isinstance(value, dict):
            raise ConfigError(f"'{dotted}' must be a table", where=str(path))
        rules: dict[str, str] = {}
        for rule, setting in value.items():
            if setting is False:
                setting = "off"
            if setting is True:
                setting = "on"
            if setting not in (*_SEVERITIES, "on"):
                raise ConfigError(
                    f'\'{dotted}.{rule}\' must be true, false, "warning" or "error"', where=str(path)
                )
            rules[rule] = setting
        return rules
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
    }[kind]
    if not ok:
        raise ConfigError(
            f"'{dotted}' must be {'text' if kind is str else 'a number'}, not {value!r}", where=str(path)
        )
    if kind is str and key in _REQUIRED_TEXT and not value.strip():
        raise ConfigError(f"'{dotted}' cannot be empty", where=str(path))
    if kind in (int, float) and value < 0:
        raise ConfigError(f"'{dotted}' cannot be negative", where=str(path))
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"'{dotted}' is {value!r}; choose one of {', '.join(choices)}", where=str(path))
    return float(value) if kind is float else value


def packaged_templates() -> Path:
    """The default templates: inside the package when installed, else the checkout's top level."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("digest's own templates are missing", hint="reinstall digest")


def template_search_path(workspace: Workspace) -> list[Path]:
    """Where templates are looked up, first match wins: the workspace's, then digest's own."""
    own = workspace.templates
    return [own, packaged_templates()] if own.is_dir() else [packaged_templates()]
