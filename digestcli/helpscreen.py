"""The help screens (`digest --help`, `digest lint --help`): usage, what the command does, and boxed
panels of its arguments, options and commands.

Typer draws the same screens with ``typer.rich_utils``, which imports rich's Markdown, Syntax and
Traceback, and with them markdown-it, Pygments and attrs: 70 ms, more than Python and Typer take
to start. This draws them with rich's tables and panels alone. Help texts use rich markup
(``[b]Examples[/b]``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import typer.core
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

# An option named in prose or usage: `--fix`, `-C`, but not the dash inside `re-render`.
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")

_NAME_STYLE = "bold cyan"
_METAVAR_STYLE = "bold yellow"
_DIM = "dim"


def show(command: Any, ctx: Any) -> None:
    """Print ``command``'s help screen on standard output."""
    Console().print(screen(command, ctx))


def screen(command: Any, ctx: Any) -> Group:
    """The help screen of a click command or group, as one renderable."""
    usage = _highlighted(Text(command.get_usage(ctx), style="bold"))
    usage.highlight_words(["Usage:"], "yellow")
    parts: list[RenderableType] = [Padding(usage, 1)]
    if command.help or command.deprecated:
        description = _description(command.help or "")
        if command.deprecated:
            description.renderables.insert(0, Text("(deprecated)", style="red"))
        parts.append(Padding(description, (0, 1, 1, 1)))
    arguments: list[Any] = []
    options: list[Any] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        (arguments if param.param_type_name == "argument" else options).append(param)
    for title, params in (("Arguments", arguments), ("Options", options)):
        if params:
            parts.append(_panel(title, _params_table(params, ctx)))
    if isinstance(command, typer.core.TyperGroup):
        listed = [command.get_command(ctx, name) for name in command.list_commands(ctx)]
        shown = [c for c in listed if c is not None and not c.hidden]
        if shown:
            parts.append(_panel("Commands", _commands_table(shown)))
    if command.epilog:
        parts.append(Padding(_markup(inspect.cleandoc(command.epilog)), 1))
    return Group(*parts)


def _description(help_text: str) -> Group:
    """The summary, then the rest dimmed: a paragraph of prose reflows to the screen's width, one
    with indented lines (the examples) keeps its lines."""
    text = inspect.cleandoc(help_text).partition("\f")[0]
    summary, *rest = text.split("\n\n")
    lines: list[RenderableType] = [_markup(" ".join(summary.split()))]
    if any(p.strip() for p in rest):
        paragraphs = [p if p.startswith(" ") or "\n " in p else " ".join(p.split()) for p in rest]
        lines += [Text(""), _markup("\n\n".join(paragraphs).rstrip(), style=_DIM)]
    return Group(*lines)


def _params_table(params: list[Any], ctx: Any) -> Table:
    table = _table()
    required = any(p.required for p in params)
    if required:
        table.add_column(style="red", no_wrap=True)
    table.add_column(style=_NAME_STYLE, no_wrap=True)  # --long (or an argument's name)
    table.add_column(style=_NAME_STYLE, no_wrap=True)  # -s
    table.add_column(style=_METAVAR_STYLE, no_wrap=True)
    table.add_column(ratio=10)
    for param in params:
        if param.param_type_name == "argument":
            long_names, short_names = [param.metavar or param.name or ""], []
            kind = param.type.get_metavar(param=param, ctx=ctx) or f"<{param.type.name}>"
        else:
            every = [*param.opts, *param.secondary_opts]
            long_names = [o for o in every if o.startswith("--")]
            short_names = [o for o in every if not o.startswith("--")]
            kind = "" if param.is_flag else param.make_metavar(ctx=ctx)
            if hasattr(param.type, "_describe_range") and not param.count:  # IntRange, FloatRange
                kind += f" [{param.type._describe_range()}]"  # --items [1<=x<=100]
        row: list[RenderableType] = [Text("*" if param.required else "")] if required else []
        row += [Text(",".join(long_names)), Text(",".join(short_names)), Text(kind), _param_help(param, ctx)]
        table.add_row(*row)
    return table


def _param_help(param: Any, ctx: Any) -> Text:
    """An option's help on one line, then its default and whether it is required."""
    help_text = _markup(" ".join((getattr(param, "help", None) or "").split()))
    extras = []
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        extras.append(f"[env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]")
    default = _default(param, ctx)
    if default:
        extras.append(f"[default: {default}]")
    if param.required:
        extras.append("[required]")
    for extra in extras:
        if help_text.plain:
            help_text.append(" ")
        help_text.append(extra, style="dim red" if extra == "[required]" else _DIM)
    return help_text


def _default(param: Any, ctx: Any) -> str:
    """The default as Typer words it (``show_default`` may be a phrase of its own)."""
    if not hasattr(param, "_extract_default_help_str"):
        return ""  # click's own --help option
    value = param._extract_default_help_str(ctx=ctx)
    phrase = isinstance(param.show_default, str)
    if not (phrase or (value is not None and (param.show_default or ctx.show_default))):
        return ""
    return str(param._get_default_string(ctx=ctx, show_default_is_str=phrase, default_value=value))


def _commands_table(commands: list[Any]) -> Table:
    table = _table()
    table.add_column(style=_NAME_STYLE, no_wrap=True, width=max(len(c.name or "") for c in commands))
    table.add_column(ratio=10)
    for command in commands:
        summary = inspect.cleandoc(command.short_help or command.help or "").partition("\n\n")[0]
        line = _markup(" ".join(summary.split()))
        if command.deprecated:
            line = Text.assemble(("(deprecated) ", "red"), line)
        table.add_row(Text(command.name or ""), line)
    return table


def _table() -> Table:
    return Table(show_header=False, box=None, expand=True, pad_edge=False, padding=(0, 1))


def _panel(title: str, table: Table) -> Panel:
    return Panel(table, title=title, title_align="left", border_style=_DIM)


def _markup(text: str, style: str = "") -> Text:
    return _highlighted(Text.from_markup(text, style=style))


def _highlighted(text: Text) -> Text:
    """Option names in prose in the option column's style, as in the panels below."""
    text.highlight_regex(_OPTION, _NAME_STYLE)
    return text
