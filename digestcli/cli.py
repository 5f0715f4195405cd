"""The `digest` command line: options, prompts, output and exit codes. The work happens elsewhere.

Each command finds the workspace, calls one library function and prints what came back. Library
errors (``DigestError``) become one line on stderr and their exit code; a traceback is shown only
under ``--debug``. Heavy modules are imported inside the commands that need them, so that
``digest lint`` starts as fast as Python can import Typer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from digestcli import __version__
from digestcli.config import Workspace, find_workspace
from digestcli.errors import DigestError, ExitCode, InputError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="digest",
    help="Write, check, render and mail a weekly newsletter from Markdown drafts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@functools.cache
def console(*, stderr: bool = False) -> Console:
    """Rich, for the commands that draw tables and progress (imported late: it costs 25 ms)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def say(text: str = "", *, err: bool = False) -> None:
    """One plain line; styles (typer.style) show only on a terminal, and never under NO_COLOR."""
    typer.echo(text, err=err, color=False if os.environ.get("NO_COLOR") else None)


def fail(message: str, label: str = "error") -> None:
    say(f"{typer.style(label + ':', fg='red', bold=True)} {message}", err=True)


class _Session:
    """What the top-level options set for the command that runs after them."""

    debug = False
    workspace_dir: Path | None = None


F = TypeVar("F", bound=Callable[..., Any])


def reported(command: F) -> F:
    """Turn library errors into one line and an exit code; Ctrl-C into 130."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except DigestError as exc:
            if _Session.debug:
                raise
            fail(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if _Session.debug:
                raise
            say("interrupted", err=True)
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:
            if _Session.debug:
                raise
            fail(
                f"{type(exc).__name__}: {exc} "
                "(run again with --debug for the traceback, and please report it)",
                "internal error",
            )
            raise typer.Exit(ExitCode.FAILURE) from None

    return run  # type: ignore[return-value]


def workspace() -> Workspace:
    return find_workspace(_Session.workspace_dir)


def shown(path: Path | str) -> str:
    """A path as the editor would type it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _version(value: bool) -> None:
    if value:
        say(f"digest {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    *,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option("--workspace", "-C", help="Run as if started in this folder.", show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Write, check, render and mail a weekly newsletter from Markdown drafts.

    [b]Examples[/b]

      digest new --items 12          scaffold next week's issue in drafts/
      digest lint                    check every draft
      digest render drafts/2026-11-20-weekly.md
      digest send drafts/2026-11-20-weekly.md --dry-run
    """
    _Session.debug = debug or os.environ.get("DIGEST_DEBUG") == "1"
    _Session.workspace_dir = directory


# ---------------------------------------------------------------------------------------- new


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date {value!r} is not a date like 2026-11-20") from None


@app.command()
@reported
def new(
    *,
    title: Annotated[
        str | None, typer.Option(help="The newsletter's name [default: from digest.toml].")
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="The issue's date, YYYY-MM-DD [default: today].", show_default=False)
    ] = None,
    items: Annotated[int, typer.Option("--items", "-n", min=1, max=100, help="How many numbered items.")] = 5,
    slug: Annotated[
        str | None, typer.Option(help="The file name after the date [default: from the title].")
    ] = None,
) -> None:
    """Scaffold a new issue as drafts/DATE-SLUG.md.

    The draft has the front matter filled in (the issue number is one more than the highest in
    drafts/), and TODO placeholders that `digest lint` reports until you replace them. An
    existing file is never overwritten.

    [b]Example[/b]: digest new --items 12 --date 2026-11-27
    """
    from digestcli.scaffold import new_draft

    made = new_draft(workspace(), title=title, date=_parse_date(date), items=items, slug=slug)
    say(f"Created {shown(made.path)} (issue {made.issue}, {made.items} items)")
    say(f"Next: replace the TODOs, then run: digest lint {shown(made.path)}")


# --------------------------------------------------------------------------------------- lint


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _drafts_to_check(ws: Workspace, paths: list[Path]) -> list[Path]:
    if paths:
        return paths
    found = sorted(ws.drafts.glob("*.md")) if ws.drafts.is_dir() else []
    if not found:
        raise UsageError(
            f"no drafts to check in {shown(ws.drafts)}/",
            hint="create one with `digest new` or name a file",
        )
    return found


@app.command()
@reported
def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Drafts to check [default: every draft in drafts/].", show_default=False),
    ] = None,
    *,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for programs.")
    ] = (OutputFormat.text),
    strict: Annotated[bool, typer.Option(help="Fail on warnings too.")] = False,
    fix: Annotated[bool, typer.Option(help="Renumber items 1..N in place (changes nothing else).")] = False,
    rendered: Annotated[
        bool, typer.Option(help="Also render each draft and check the email (size, alt text, links).")
    ] = False,
) -> None:
    """Check drafts for structure and common mistakes.

    Prints one line per finding, as path:line:col: rule message, then a summary. Exits 0 when
    there are no errors (warnings pass unless --strict), 1 when there are, 2 when a file cannot
    be read. Rules can be switched off or made warnings in digest.toml's [lint.rules].

    [b]Examples[/b]

      digest lint                              every draft in drafts/
      digest lint drafts/2026-11-20-weekly.md --fix
      digest lint --format json | jq '.[].rule'
    """
    from digestcli.lint import check_rule_settings, lint_file

    ws = workspace()
    config = ws.config.lint
    check_rule_settings(config)
    files = _drafts_to_check(ws, list(paths or []))
    findings = []
    unreadable: list[InputError] = []
    for path in files:
        try:
            if fix:
                _fix(path, config)
            found = lint_file(path, config)
            if rendered:
                found += _rendered_findings(path, ws)
        except InputError as exc:
            if _Session.debug:
                raise
            unreadable.append(exc)  # and go on: one bad file must not hide the others' findings
            continue
        findings += [dataclasses.replace(f, path=shown(f.path)) for f in found]

    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if output_format is OutputFormat.json:
        import json

        typer.echo(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        _print_findings(findings)
    for problem in unreadable:
        fail(str(problem))
    if output_format is OutputFormat.text:
        say(_summary(len(files) - len(unreadable), errors, warnings, findings, len(unreadable)))
    if unreadable:
        raise typer.Exit(ExitCode.USAGE)
    if errors or (strict and warnings):
        raise typer.Exit(ExitCode.FAILURE)


def _print_findings(findings: list[Any]) -> None:
    for f in findings:
        rule = typer.style(f.rule, fg="red" if f.severity == "error" else "yellow")
        say(f"{typer.style(f'{f.path}:{f.line}:{f.column}:', bold=True)} {rule} {f.message}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(checked: int, errors: int, warnings: int, findings: list[Any], unreadable: int) -> str:
    drafts = _plural(checked, "draft")
    if not findings and not unreadable:
        return f"{typer.style('All good:', fg='green')} {drafts} checked, no findings."
    text = f"Found {_plural(errors, 'error')} and {_plural(warnings, 'warning')} in {drafts}."
    if unreadable:
        text += f" {_plural(unreadable, 'file')} could not be read."
    if any(f.rule == "item-numbering" and "--fix" in f.message for f in findings):
        text += " Item numbers can be fixed with `digest lint --fix`."
    return text


def _fix(path: Path, config: Any) -> None:
    from digestcli.draft import parse_draft
    from digestcli.errors import read_text
    from digestcli.lint.fix import renumber, write_atomically

    raw = path.read_bytes() if path.is_file() else b""
    text = read_text(path, "draft")
    issue = parse_draft(text, path, wrapup_heading=config.wrapup_heading)
    fixed, changed = renumber(issue, text)
    if changed:
        write_atomically(path, fixed, bom=raw.startswith(b"\xef\xbb\xbf"))
        say(f"Fixed {shown(path)}: renumbered {_plural(changed, 'item heading')}", err=True)


def _rendered_findings(path: Path, ws: Workspace) -> list[Any]:
    from digestcli.draft import load_draft
    from digestcli.lint.rendered import check_rendered
    from digestcli.render import render_issue

    issue = load_draft(path, wrapup_heading=ws.config.lint.wrapup_heading)
    findings: list[Any] = check_rendered(
        render_issue(issue, ws), str(path), ws.config.lint, source=issue.lines
    )
    return findings


# ------------------------------------------------------------------------------------- render


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


@app.command()
@reported
def render(
    draft: Annotated[Path, typer.Argument(help="The draft to render.", show_default=False)],
    *,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the files [default: out/].", show_default=False),
    ] = None,
) -> None:
    """Render a draft into the email's two parts: out/DRAFT.html and out/DRAFT.txt.

    The HTML has its CSS inlined, ready for any mail client; the text part is the same issue
    wrapped at 78 columns. Then the rendered-output checks run (size, alt text, template syntax
    left over, links missing from the text); an error among them exits 1.

    [b]Example[/b]: digest render drafts/2026-11-20-weekly.md --out /tmp/issue
    """
    from digestcli.draft import load_draft
    from digestcli.lint.rendered import check_rendered
    from digestcli.render import render as render_draft
    from digestcli.render import write_rendered

    ws = workspace()
    issue = load_draft(draft, wrapup_heading=ws.config.lint.wrapup_heading)
    rendering = render_draft(issue, ws)
    written = write_rendered(rendering.issue, out_dir or ws.path(ws.config.render.out))
    for path, size in written:
        say(f"Wrote {shown(path)}  {_size(size)}")
    for warning in rendering.css_warnings:
        say(f"{typer.style('warning:', fg='yellow')} CSS: {warning}", err=True)
    findings = check_rendered(rendering.issue, shown(draft), ws.config.lint, source=issue.lines)
    _print_findings(findings)
    errors = sum(f.severity == "error" for f in findings)
    seconds = rendering.seconds["total"]
    if findings:
        say(
            f"Rendered in {seconds:.2f} s with {_plural(errors, 'error')} and "
            f"{_plural(len(findings) - errors, 'warning')}."
        )
    else:
        say(f"Rendered in {seconds:.2f} s. No findings.")
    if errors:
        raise typer.Exit(ExitCode.FAILURE)


@app.command()
@reported
def preview(
    draft: Annotated[Path, typer.Argument(help="The draft to preview.", show_default=False)],
    *,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the preview in a browser.")
    ] = True,
) -> None:
    """Serve a live preview of a draft on 127.0.0.1, re-rendered as you edit.

    The page reloads itself when the draft, a template or digest.toml changes; /text shows the
    plain-text part. Stop it with Ctrl-C.

    [b]Example[/b]: digest preview drafts/2026-11-20-weekly.md --port 8025 --no-open
    """
    from digestcli.errors import read_text
    from digestcli.preview import PreviewServer

    read_text(draft, "draft")  # a missing or unreadable draft is an error now, not a 500 page
    server = PreviewServer(draft, workspace(), port=port)
    say(f"Previewing {shown(draft)} at {server.url}  (text part: {server.url}text; Ctrl-C stops)")
    if open_browser:
        import webbrowser

        try:
            webbrowser.open(server.url)
        except webbrowser.Error:
            say("No browser found: open the address above yourself.", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("Stopped.", err=True)  # stopping a preview is how it ends, not a failure
    finally:
        server.shutdown()


def main() -> None:
    """The console script: run the app, with Ctrl-C outside a command exiting 130 too."""
    try:
        app()
    except KeyboardInterrupt:
        say("interrupted", err=True)
        raise SystemExit(ExitCode.INTERRUPTED) from None
