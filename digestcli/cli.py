"""The `digest` command line: options, prompts and exit codes; the work happens in the library, and
what is printed is output.py's.

Each command finds the workspace, calls one library function and prints what came back. Library
errors (``DigestError``) become one line on stderr and their exit code; a traceback is shown only
under ``--debug``. Heavy modules are imported inside the commands that need them, so that
``digest lint`` starts as fast as Python can import Typer.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import typer.core

from digestcli import __version__, output
from digestcli.errors import DigestError, ExitCode, UsageError
from digestcli.output import fail, say, shown

if TYPE_CHECKING:
    from digestcli.config import Workspace


class HelpCommand(typer.core.TyperCommand):
    """A command whose ``--help`` is drawn by helpscreen.py (without Typer's heavy formatter)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from digestcli import helpscreen

        helpscreen.show(self, ctx)


class HelpGroup(typer.core.TyperGroup):
    """A group (digest itself, ``digest words``) whose ``--help`` is drawn by helpscreen.py."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from digestcli import helpscreen

        helpscreen.show(self, ctx)


app = typer.Typer(
    name="digest",
    help="Write, check, render and mail a weekly newsletter from Markdown drafts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=HelpGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Session:
    """What the top-level options set for the command that runs after them."""

    debug = False


F = TypeVar("F", bound=Callable[..., Any])


def reported(command: F) -> F:
    """Turn library errors into one line and an exit code; Ctrl-C into 130."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, BrokenPipeError):
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
            raise typer.Exit(ExitCode.CRASH) from None

    return run  # type: ignore[return-value]


def workspace() -> Workspace:
    from digestcli.config import find_workspace

    return find_workspace()


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
    if directory is not None:
        # As if started there: the workspace and every relative path on the command line.
        try:
            os.chdir(directory)
        except OSError as exc:
            fail(f"{directory}: cannot change to it: {exc.strerror or exc}")
            raise typer.Exit(ExitCode.USAGE) from None


# ---------------------------------------------------------------------------------------- new


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--date {value!r} is not a date like 2026-11-20") from None


@app.command(cls=HelpCommand)
@reported
def new(
    *,
    title: Annotated[
        str | None, typer.Option(help="The newsletter's name.", show_default="from digest.toml")
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="The issue's date, YYYY-MM-DD.", show_default="today")
    ] = None,
    items: Annotated[int, typer.Option("--items", "-n", min=1, max=100, help="How many numbered items.")] = 5,
    slug: Annotated[
        str | None, typer.Option(help="The file name after the date.", show_default="from the title")
    ] = None,
    like: Annotated[
        Path | None,
        typer.Option(
            "--like",
            metavar="DRAFT",
            help="Start from an earlier draft (its standing text kept) with a new id, number and date.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Scaffold a new issue as drafts/DATE-SLUG.md.

    The draft has the front matter filled in (the issue number is one more than the highest in
    drafts/), and TODO placeholders that `digest lint` reports until you replace them. An
    existing file is never overwritten.

    The draft gets an `id` of its own: the ledger knows the issue by it, so renaming or moving
    the file later changes nothing. --like copies an earlier draft (the greeting, the wrap-up,
    every story) as the next issue, with a new id, number and date, and its subject marked TODO.

    [b]Examples[/b]

      digest new --items 12 --date 2026-11-27
      digest new --like drafts/2026-11-20-weekly.md --date 2026-11-27
    """
    from digestcli.scaffold import new_draft

    made = new_draft(workspace(), title=title, date=_parse_date(date), items=items, slug=slug, like=like)
    source = f", from {shown(like)}" if like else ""
    say(f"Created {shown(made.path)} (issue {made.issue}, {made.items} items{source})")
    say(f"Next: replace the TODOs, then run: digest lint {shown(made.path)}")


@app.command(cls=HelpCommand)
@reported
def init(
    folder: Annotated[
        Path | None, typer.Argument(help="The workspace's folder (made if missing).", show_default="here")
    ] = None,
    *,
    title: Annotated[
        str | None, typer.Option(help="The newsletter's name.", show_default="Example Weekly")
    ] = None,
) -> None:
    """Make a folder a workspace: digest.toml, drafts/, templates/ and an example subscribers.csv.

    digest.toml lists every setting, commented, with what it does and its default; templates/
    holds copies of the templates you are meant to change (the new-draft scaffold, the email's
    HTML and text). A file already there is never overwritten: it is kept and reported as such,
    so running init again only adds what is missing.

    [b]Examples[/b]

      digest init lantern --title "The Lantern Weekly"
      digest init                    this folder
    """
    from digestcli.scaffold import init_workspace, next_steps

    root = folder or Path.cwd()
    made = init_workspace(root, title=title)
    here = root.resolve() == Path.cwd().resolve()
    place = "this folder" if here else f"{shown(root)}/"
    say(f"Workspace in {place}: {len(made.created)} created, {len(made.kept)} already there and kept")
    width = max(len(part.name) for part in made.parts)
    for part in made.parts:
        say(f"  {'created' if part.created else 'kept   '}  {part.name:{width}}  {part.about}")
    say("Next:")
    for step in next_steps(made, folder=None if here else shown(root)):
        say(f"  {step}")


# ------------------------------------------------------------------------------------- import


@app.command("import", cls=HelpCommand)
@reported
def import_(
    source: Annotated[
        str | None,
        typer.Argument(
            metavar="SOURCE",
            help="A text or HTML file, or - for standard input.",
            show_default="standard input",
        ),
    ] = None,
    *,
    date: Annotated[
        str | None,
        typer.Option(help="The issue's date, YYYY-MM-DD.", show_default="the paste's date line, or today"),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(help="The newsletter's name.", show_default="digest.toml's, or the paste's title line"),
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="The subject line.", show_default="the first headlines")
    ] = None,
    slug: Annotated[
        str | None, typer.Option(help="The file name after the date.", show_default="from the title")
    ] = None,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the draft instead of writing it to drafts/.")
    ] = False,
) -> None:
    """Make a draft of a page you copied: a blog post pasted as text, a saved page, clipboard HTML.

    Finds the title, the greeting, the numbered stories (a line like "3. Headline" becomes
    "## 3. Headline", numbered as pasted), the wrap-up and the paragraphs, whether the paste
    separates them with blank lines or puts one per line. Page chrome ("Writer's picture",
    "2 min read", "12 views", "Comments" in any language, "Recent Posts") is left out and every
    line left out is listed with its line in the source; a line it cannot place stays where it
    was. From HTML, links, emphasis, images and lists are kept. The draft gets the next issue
    number, a suggested subject and preheader, and is never written over an existing file.

    [b]Examples[/b]

      digest import pasted.txt                       write drafts/DATE-SLUG.md
      pbpaste | digest import - --date 2026-11-27    from the clipboard (macOS)
      digest import saved-post.html --stdout         print the draft instead
    """
    from digestcli.importer import import_paste, read_paste

    stdin = sys.stdin.buffer if source in (None, "-") else None
    if stdin is not None and sys.stdin.isatty():
        say("Paste the page, then press Ctrl-D (Ctrl-Z and Enter on Windows):", err=True)
    paste = read_paste(source, stdin)
    made = import_paste(
        paste, workspace(), date=_parse_date(date), title=title, subject=subject, slug=slug, write=not stdout
    )
    if stdout:
        sys.stdout.write(made.draft)
        sys.stdout.flush()
    where = "standard input" if paste.name == "standard input" else shown(paste.name)
    report = [f"  {where}:{line.line}: {line.label}: {line.text}" for line in made.removed]
    summary = f"{made.stories} stories, issue {made.issue}, dated {made.date.isoformat()}"
    if made.path is not None:
        say(f"Created {shown(made.path)} ({summary})")
    else:
        say(f"Imported {summary}", err=True)
    if made.article:
        say(f"Read {made.article}.", err=stdout)
    left_out = f"Left out {output.plural(len(made.removed), 'line')} of the page"
    say(f"{left_out}:" if made.removed else f"{left_out}.", err=stdout)
    for line in report:
        say(line, err=stdout)
    if made.path is not None:
        say(f"Next: read it through, then run: digest lint {shown(made.path)}")


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


@app.command(cls=HelpCommand)
@reported
def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Drafts to check.", show_default="every draft in drafts/"),
    ] = None,
    *,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for programs.")
    ] = (OutputFormat.text),
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Repair in place what the fixable rules found (headlines made headings, blank lines"
            " between run-together paragraphs, items renumbered …); print each change, then lint"
            " again. The draft as it was is kept in .digest/before-fix/.",
        ),
    ] = False,
    rendered: Annotated[
        bool,
        typer.Option(
            "--rendered", help="Also render each draft and check the email (size, alt text, links)."
        ),
    ] = False,
    list_rules: Annotated[
        bool,
        typer.Option("--rules", help="List every rule (name, severity, fixable, summary); check nothing."),
    ] = False,
    links: Annotated[
        bool,
        typer.Option("--links", help="Also fetch every link and image (answers are kept a day in .digest/)."),
    ] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="With --links: ask every URL again.")] = False,
    add_word: Annotated[
        list[str] | None,
        typer.Option(
            "--add-word", metavar="WORD", help="Add a word to the house list (words.txt) first; repeatable."
        ),
    ] = None,
) -> None:
    """Check drafts for structure, spelling and common mistakes.

    Prints one line per finding, as path:line:col: rule message, then a summary. Exits 0 when
    there are no errors (warnings pass unless --strict), 1 when there are, 2 when a file cannot
    be read. Rules can be switched off or made warnings in digest.toml's \\[lint.rules];
    --rules lists them, one line each: name, default severity, whether --fix repairs it, what
    it finds.

    [b]Examples[/b]

      digest lint                              every draft in drafts/
      digest lint --fix                        repair a paste's headings, blank lines, numbers
      digest lint --format json | jq '.[].rule'
      digest lint --rules                      every rule, one line each
      digest lint --rules --format json | jq -r '.[] | select(.fixable) | .name'
      digest lint --add-word Pinduoduo         a name the dictionary lacks, into words.txt
      digest lint --links                      also check that every link and image opens
    """
    from digestcli.lint import check_rule_settings

    if list_rules:
        if paths or fix:
            raise UsageError("--rules lists the rules and checks nothing", hint="drop the paths and --fix")
        from digestcli.lint.catalog import rule_lines, rules_json

        typer.echo(rules_json() if output_format is OutputFormat.json else "\n".join(rule_lines()))
        return
    ws = workspace()
    check_rule_settings(ws.config.lint, str(ws.config_path) if ws.config_path else None)
    if add_word:
        from digestcli.words import add_words, words_path

        added = add_words(ws.root, add_word)
        if added:
            say(f"Added {', '.join(added)} to {shown(words_path(ws.root))}", err=True)
    files = _drafts_to_check(ws, list(paths or []))
    from digestcli.draft import draft_ids
    from digestcli.state.history import read_identities

    ids = draft_ids(ws.drafts)
    try:
        identities = read_identities(ws.state, ids)  # for issue-reused
    except DigestError as exc:  # a damaged ledger: lint the drafts all the same, and say so
        from digestcli.state.history import Identities, drafts_by_id

        identities = Identities(drafts_by_id(ids))
        say(f"{typer.style('warning:', fg='yellow')} issues sent not checked: {exc}", err=True)
    findings = []
    unreadable: list[DigestError] = []
    for path in files:
        try:
            found = _lint_one(path, ws, identities, fix=fix, rendered=rendered, links=links, refresh=refresh)
        except DigestError as exc:
            if _Session.debug:
                raise
            unreadable.append(exc)  # and go on: one bad file must not hide the others' findings
            continue
        findings += [f._replace(path=shown(f.path)) for f in found]

    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if output_format is OutputFormat.json:
        import json

        typer.echo(json.dumps([f.as_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        output.print_findings(findings)
    for problem in unreadable:
        fail(str(problem))
    if output_format is OutputFormat.text:
        say(output.lint_summary(len(files) - len(unreadable), errors, warnings, findings, len(unreadable)))
    if unreadable:
        raise typer.Exit(ExitCode.USAGE)
    if errors or (strict and warnings):
        raise typer.Exit(ExitCode.FAILURE)


def _lint_one(
    path: Path,
    ws: Workspace,
    identities: Any,
    *,
    fix: bool,
    rendered: bool,
    links: bool = False,
    refresh: bool = False,
) -> list[Any]:
    """Parse a draft once; fix it if asked; lint it, and its rendered email if asked."""
    from digestcli.draft import parse_draft
    from digestcli.errors import read_text
    from digestcli.lint import lint_issue

    config = ws.config.lint
    text = read_text(path, "draft")
    if fix:
        from digestcli.lint.fix import fix_file

        result = fix_file(path, config, keep_in=ws.state / "before-fix")
        for change in result.fixed:
            say(f"{shown(path)}:{change.line}: {change.rule}: {change.what}", err=True)
        if result.fixed:
            kept = f"; as it was: {shown(result.kept)}" if result.kept else ""
            say(f"Fixed {output.plural(len(result.fixed), 'line')} in {shown(path)}{kept}", err=True)
        text = result.text
    issue = parse_draft(text, path, wrapup_heading=config.wrapup_heading)
    findings: list[Any] = lint_issue(issue, config, identities)
    if rendered:
        from digestcli.lint.rendered import check_rendered
        from digestcli.render import render_issue

        findings += check_rendered(render_issue(issue, ws), str(path), config, source=issue.lines)
    if links:
        from digestcli.linkcheck import check_issue_links

        report = check_issue_links(issue, ws, refresh=refresh)
        for note in report.notes:
            say(f"{typer.style('note:', fg='cyan')} {shown(path)}: {note}", err=True)
        findings += report.findings
    return findings


words_app = typer.Typer(
    cls=HelpGroup,
    help="The house word list (words.txt): names and terms the spelling check takes as right.",
    no_args_is_help=True,
)
app.add_typer(words_app, name="words")


@words_app.command("add", cls=HelpCommand)
@reported
def words_add(
    words: Annotated[
        list[str], typer.Argument(help="Words to add (a name: each word of it).", show_default=False)
    ],
) -> None:
    """Add words to words.txt, kept sorted and without duplicates.

    [b]Example[/b]: digest words add Pinduoduo Meituan BlueLM
    """
    from digestcli.words import add_words, words_path

    ws = workspace()
    added = add_words(ws.root, words)
    known = len(words) - len(added)
    say(
        f"Added {output.plural(len(added), 'word')} to {shown(words_path(ws.root))}"
        + (f" ({known:,} already there)" if known else "")
    )


@words_app.command("list", cls=HelpCommand)
@reported
def words_list() -> None:
    """Print the house word list, one word a line.

    [b]Example[/b]: digest words list
    """
    from digestcli.words import list_words

    for word in list_words(workspace().root):
        say(word)


# ------------------------------------------------------------------------------------- render


@app.command(cls=HelpCommand)
@reported
def render(
    draft: Annotated[Path, typer.Argument(help="The draft to render.", show_default=False)],
    *,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the files.", show_default="out/"),
    ] = None,
) -> None:
    """Render a draft into the email's two parts: out/DRAFT.html and out/DRAFT.txt.

    The HTML has its CSS inlined, ready for any mail client; the text part is the same issue
    wrapped at 78 columns. Then the rendered-output checks run (size, alt text, template syntax
    left over, links missing from the text); an error among them exits 1.

    [b]Example[/b]: digest render drafts/2026-11-20-weekly.md --out /tmp/issue
    """
    from digestcli.draft import load_draft
    from digestcli.lint import lint_issue
    from digestcli.lint.rendered import check_rendered
    from digestcli.render import render as render_draft
    from digestcli.render import write_rendered

    ws = workspace()
    issue = load_draft(draft, wrapup_heading=ws.config.lint.wrapup_heading)
    rendering = render_draft(issue, ws)
    written = write_rendered(rendering.issue, out_dir or ws.path(ws.config.render.out))
    for path, size in written:
        say(f"Wrote {shown(path)}  {output.size(size)}")
    for warning in rendering.css_warnings:
        say(f"{typer.style('warning:', fg='yellow')} CSS: {warning}", err=True)
    # The email's own checks, and the draft's front matter: without it there is no subject.
    findings = [
        *(f for f in lint_issue(issue, ws.config.lint) if f.rule == "front-matter"),
        *check_rendered(rendering.issue, str(draft), ws.config.lint, source=issue.lines),
    ]
    findings = [f._replace(path=shown(draft)) for f in findings]
    output.print_findings(findings)
    errors = sum(f.severity == "error" for f in findings)
    seconds = rendering.seconds["total"]
    if findings:
        say(
            f"Rendered in {seconds:.2f} s with {output.plural(errors, 'error')} and "
            f"{output.plural(len(findings) - errors, 'warning')}."
        )
    else:
        say(f"Rendered in {seconds:.2f} s. No findings.")
    if errors:
        raise typer.Exit(ExitCode.FAILURE)


@app.command(cls=HelpCommand)
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

    The page reloads itself when the draft, a template, digest.toml or the list changes; /text
    shows the plain-text part. The first reader of the list (a made-up one when there is none)
    fills the {{ reader.* }} slots, and the bar above the email shows the subject, the lint
    findings and any error in the front matter. Stop it with Ctrl-C.

    [b]Example[/b]: digest preview drafts/2026-11-20-weekly.md --port 8025 --no-open
    """
    from digestcli.errors import read_text
    from digestcli.preview import PreviewServer

    read_text(draft, "draft")  # a missing or unreadable draft is an error now, not a 500 page
    server = PreviewServer(draft, workspace(), port=port, debug=_Session.debug)
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


# ------------------------------------------------------------------------------------ publish


@app.command(cls=HelpCommand)
@reported
def publish(
    drafts: Annotated[
        list[Path] | None,
        typer.Argument(help="Drafts to publish besides the issues sent.", show_default=False),
    ] = None,
    *,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for the site.", show_default="site/"),
    ] = None,
    all_drafts: Annotated[
        bool, typer.Option("--all", help="Also every draft in drafts/ that lints clean.")
    ] = False,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the archive page in a browser afterwards.")
    ] = False,
) -> None:
    """Publish the web edition: a page per issue, an archive and an Atom feed, in site/.

    The issues are those sent (the ledger knows them), the drafts named, and with --all every
    draft in drafts/ that lints clean. Each issue's page is site/DATE-TITLE/index.html, so a
    renamed draft keeps its address; site/index.html lists every issue, site/feed.xml is the
    feed and site/latest/ leads to the newest. No reader is in it: {{ reader.name }} is
    \\[web] reader_name, any other reader value is left out. Only the files whose content
    changed are written. With \\[web] base_url every link is absolute; without it the site
    also works opened from its folder.

    [b]Examples[/b]

      digest publish                           the issues sent so far
      digest publish drafts/2026-11-27-the-lantern-weekly.md --open
      digest publish --all --out /tmp/site
    """
    from digestcli.publish import publish_site

    report = publish_site(workspace(), list(drafts or ()), out=out_dir, all_drafts=all_drafts)
    for note in report.notes:
        say(f"{typer.style('note:', fg='cyan')} {note}", err=True)
    for path in report.written:
        say(f"Wrote {shown(path)}")
    if report.issues:
        say(
            f"{output.plural(report.issues, 'issue')} published; "
            f"{output.plural(len(report.written), 'file')} written, {report.unchanged:,} unchanged"
        )
    if open_browser and report.issues:
        import webbrowser

        try:
            webbrowser.open(report.archive.resolve().as_uri())
        except webbrowser.Error:
            say(f"No browser found: open {shown(report.archive)} yourself.", err=True)


# --------------------------------------------------------------------------------------- send


def _check_links_before_sending(issue: Any, ws: Workspace, draft: Path, *, ignore: bool) -> None:
    """Every link and image must open before anyone is mailed ([lint] check_links): a broken one is
    shown and refuses the send unless --ignore-links; no network at all is a warning only."""
    from digestcli.linkcheck import check_issue_links

    report = check_issue_links(issue, ws)
    if report.offline:
        say(f"{typer.style('warning:', fg='yellow')} links not checked: no network", err=True)
        return
    if not report.checked:
        return  # nothing to ask (no http links, or only example ones)
    broken = report.errors
    cached = f", {report.from_cache:,} from the last day's check" if report.from_cache else ""
    say(
        f"Links      {output.plural(report.checked, 'link')} checked{cached}"
        + (f"; {len(broken):,} broken" if broken else "")
    )
    for note in report.notes:
        say(f"{typer.style('note:', fg='cyan')} {note}", err=True)
    if broken:
        output.print_findings([f._replace(path=shown(f.path)) for f in broken])
        if not ignore:
            raise DigestError(
                f"{shown(draft)} has {output.plural(len(broken), 'link')} that do not open; nothing was sent",
                hint="fix them, or send with --ignore-links",
            )


def _transport_line(transport: Any, ws: Workspace) -> str:
    if ws.config.delivery.transport == "smtp":
        smtp = ws.config.smtp
        return f"smtp {transport.name} ({smtp.security}, {ws.config.delivery.connections} connections)"
    return f"outbox {shown(ws.path(ws.config.delivery.outbox))}/ (a Maildir; nothing leaves this machine)"


@app.command(cls=HelpCommand)
@reported
def send(
    draft: Annotated[Path, typer.Argument(help="The draft to send.", show_default=False)],
    *,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Send without asking first.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build every message, deliver none.")] = False,
    test: Annotated[
        str | None,
        typer.Option(
            "--test", metavar="ADDRESS", help="Send one copy to ADDRESS only; not recorded; no list needed."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Send at most N messages this run.", show_default=False)
    ] = None,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown", help="Also send to readers whose earlier delivery is unknown (may duplicate)."
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Also retry readers the server refused for good.")
    ] = False,
    allow_changed: Annotated[
        bool,
        typer.Option(
            "--allow-changed",
            help="Send the draft as it is now even though readers got an earlier version (for scripts).",
        ),
    ] = False,
    send_duplicates: Annotated[
        bool,
        typer.Option(
            "--send-duplicates",
            help="Send even though the journal says readers the ledger forgot have it: they get it twice.",
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="List every skipped row of the list on screen.")
    ] = False,
    ignore_links: Annotated[
        bool, typer.Option("--ignore-links", help="Send even with links or images that do not open.")
    ] = False,
) -> None:
    """Mail a draft to the subscriber list, once per reader, resumably.

    The draft is linted first and refused if it has errors. You see who it goes to and through
    which transport, and are asked before anything is sent. Every reader's outcome is kept in a
    ledger (.digest/), keyed on the issue's id (not the file name): running send again for the
    same issue mails only readers who do not have it yet, also after a crash. Readers whose
    delivery is unknown (the connection dropped after the message went out) are not mailed again
    unless --resend-unknown. If the draft changed since readers got it, you are asked again, even
    with --yes (--allow-changed answers for scripts). Ctrl-C, SIGTERM and SIGHUP stop it cleanly.

    [b]Examples[/b]

      digest send drafts/2026-11-20-weekly.md --test me@example.com
      digest send drafts/2026-11-20-weekly.md --dry-run
      digest send drafts/2026-11-20-weekly.md --yes
    """
    from digestcli.delivery import (
        SendInterrupted,
        SendStopped,
        plan_send,
        record_plan,
        refusal_for,
        send_issue,
        settings_warnings,
        transport_for,
    )
    from digestcli.delivery.plan import read_list
    from digestcli.draft import draft_ids, load_draft
    from digestcli.lint import send_blockers
    from digestcli.render import render_issue
    from digestcli.state import LEDGER_DB
    from digestcli.state.history import read_identities

    ws = workspace()
    issue = load_draft(draft, wrapup_heading=ws.config.lint.wrapup_heading)
    transport = transport_for(ws)
    # Example settings: refused before anything leaves this machine, a warning otherwise.
    for warning in settings_warnings(ws, transport, dry_run=dry_run):
        say(f"{typer.style('warning:', fg='yellow')} {warning}", err=True)
    rendered = render_issue(issue, ws)
    identities = read_identities(ws.state, draft_ids(ws.drafts))
    problems = send_blockers(issue, rendered, ws.config.lint, identities, shown(draft))
    if problems:
        output.print_findings(problems)
        # Findings exit 1, as in `digest lint`.
        raise DigestError(
            f"{shown(draft)} has {output.plural(len(problems), 'lint error')}; nothing was sent",
            hint="fix them, then send again",
        )

    list_path = ws.path(ws.config.delivery.subscribers)
    readers = None
    if test is None or list_path.exists():
        readers = read_list(ws)
    if readers is not None:
        output.show_skipped(readers, ws, verbose=verbose)

    say(f"Issue      {rendered.issue_id}: {rendered.subject}")
    if test is not None:
        say(f"To         {test} only (a test copy, not recorded in the ledger)")
    else:
        assert readers is not None
        plan = plan_send(
            rendered,
            ws,
            readers,
            resend_unknown=resend_unknown,
            retry_failed=retry_failed,
            limit=limit,
            draft=draft,
        )
        say(f"List       {output.list_line(readers)}")
        held = [
            (len(plan.already_delivered), "already have it"),
            (len(plan.suppressed), "on the suppression list"),
            (len(plan.held_unknown), "unknown from an earlier run (--resend-unknown)"),
            (len(plan.held_failed), "refused earlier (--retry-failed)"),
            (len(plan.later), "beyond --limit"),
        ]
        left_out = "; ".join(f"{n:,} {why}" for n, why in held if n)
        say(
            f"Sends      {output.plural(len(plan.due), 'message')} now"
            + (f"; not to {left_out}" if left_out else "")
        )
        assessment = plan.assessment
        refusal = refusal_for(
            assessment,
            rendered,
            ws.state / LEDGER_DB,
            allow_changed=True,
            send_duplicates=send_duplicates,
        )
        if refusal is not None:
            raise refusal
        if assessment.changed and plan.due and not allow_changed:
            was = f" (it was: {assessment.previous_subject})" if "the subject" in assessment.changed else ""
            say(
                f"Changed    {', '.join(assessment.changed)}, since "
                f"{output.plural(assessment.had_it, 'reader')} got this issue{was}"
            )
            # Asked even under --yes: the rest of the list would get another issue than the first.
            # A dry run sends nothing, so it only says so.
            if not dry_run and not output.confirm("Send the changed version to the rest?"):
                say("Nothing sent. (--allow-changed sends it without asking.)")
                raise typer.Exit(ExitCode.FAILURE)
            allow_changed = True
        if not plan.due:
            if not dry_run:
                record_plan(rendered, ws, readers, transport=transport, draft=str(draft))
            say("Nothing to send now. (digest status shows where every reader stands.)")
            return
    say(f"Transport  {_transport_line(transport, ws)}")
    if ws.config.lint.check_links and not (dry_run or test is not None):
        _check_links_before_sending(issue, ws, draft, ignore=ignore_links)
    if not (yes or dry_run or test is not None) and not output.confirm("Send now?"):
        say("Nothing sent. (--yes sends without asking; --dry-run shows what would happen.)")
        raise typer.Exit(ExitCode.FAILURE)
    if ws.config.web.publish_on_send and not dry_run and test is None:
        # The email's "View in your browser" link must work from the first message.
        from digestcli.publish import publish_issue

        try:
            published = publish_issue(ws, issue)
        except DigestError as exc:
            if ws.config.web.base_url:  # the email links to the page: it must be there first
                exc.hint = (exc.hint + "; " if exc.hint else "") + (
                    "nothing was sent; [web] publish_on_send = false sends without publishing"
                )
                raise
            say(f"{typer.style('warning:', fg='yellow')} web page not published: {exc}", err=True)
            published = None
        if published is not None:
            page = published.out / issue.web_slug / "index.html"
            files = output.plural(len(published.written), "file")
            written = f" ({files} of the site written)" if published.written else ""
            say(f"Web page   {shown(page)}{written}")
            for note in published.notes:
                say(f"{typer.style('note:', fg='cyan')} {note}", err=True)

    from digestcli.delivery.workers import throttled

    progress, update = output.progress_bar()
    stop_signal = _StopSignals()
    try:
        with stop_signal, progress:
            summary = send_issue(
                rendered,
                ws,
                subscribers=readers,
                transport=transport,
                dry_run=dry_run,
                limit=limit,
                test_address=test,
                resend_unknown=resend_unknown,
                retry_failed=retry_failed,
                allow_changed=allow_changed,
                send_duplicates=send_duplicates,
                progress=throttled(update),  # the bar is redrawn 10 times a second, not per message
                draft=str(draft),
            )
    except SendInterrupted as stop:
        output.print_send_summary(stop.summary, draft, limited=limit is not None)
        what = stop_signal.name or "Ctrl-C"
        say(
            f"Interrupted by {what}: the ledger is up to date; run the same command again to carry on.",
            err=True,
        )
        raise typer.Exit(stop_signal.exit_code) from None
    except SendStopped as stop:
        output.print_send_summary(stop.summary, draft, limited=limit is not None)
        raise
    except KeyboardInterrupt:  # before the first message could leave (reading, planning, locking)
        what = stop_signal.name or "Ctrl-C"
        say(f"Interrupted by {what} before anything was sent.", err=True)
        raise typer.Exit(stop_signal.exit_code) from None
    output.print_send_summary(summary, draft, limited=limit is not None)
    # Readers left for later by --limit are what was asked for, not a failure.
    if summary.failed + summary.deferred + summary.unknown and not summary.dry_run:
        raise typer.Exit(ExitCode.FAILURE)


class _StopSignals:
    """While a send runs, SIGTERM (a service manager) and SIGHUP (a closing terminal) stop it the way
    Ctrl-C does: messages on the wire get their answer and the ledger is settled. A second signal
    hurries it (rows in flight become unknown); more are ignored until the ledger is settled."""

    def __init__(self) -> None:
        self.name = ""
        self.exit_code = ExitCode.INTERRUPTED
        self._count = 0
        self._saved: dict[int, Any] = {}

    def _handle(self, number: int, frame: Any) -> None:
        import signal

        self._count += 1
        if not self.name:
            self.name = signal.Signals(number).name if number != signal.SIGINT else "Ctrl-C"
            self.exit_code = 128 + number  # type: ignore[assignment]
        if self._count <= 2:
            raise KeyboardInterrupt

    def __enter__(self) -> _StopSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
                if number is not None:
                    self._saved[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for number, handler in self._saved.items():
            signal.signal(number, handler)


@app.command(cls=HelpCommand)
@reported
def status(
    draft: Annotated[
        Path | None, typer.Argument(help="A draft.", show_default="every issue sent so far")
    ] = None,
) -> None:
    """Show what the ledger knows: readers per state, and each failure with the server's reply.

    [b]Examples[/b]

      digest status                               every issue sent from this workspace
      digest status drafts/2026-11-20-weekly.md   one issue, with its failures
    """
    from digestcli.delivery import STATES, read_status
    from digestcli.state import PENDING

    ws = workspace()
    issue_id = None
    if draft is not None:
        from digestcli.draft import front_matter_of, issue_id_of

        issue_id = issue_id_of(front_matter_of(draft), draft.stem)  # a missing draft exits 2
    found = read_status(ws.state, issue_id)
    if not found and draft is not None and draft.stem != issue_id:
        found = read_status(ws.state, draft.stem)  # a ledger from before issue ids: not sent since
    if not found:
        what = f"for {issue_id}" if issue_id else "in this workspace"
        say(f"Nothing sent {what} yet.")
        return
    from digestcli.state.feedback import status_lines

    for entry in found:
        last = dt.datetime.fromtimestamp(entry.last).strftime("%Y-%m-%d %H:%M")
        # Readers a send has not reached yet (under way, or killed) are pending, and said so.
        unreached = {PENDING: f" ({entry.not_reached} not yet reached)"} if entry.not_reached else {}
        counts = ", ".join(
            f"{entry.counts[s]} {s}{unreached.get(s, '')}" for s in STATES if entry.counts.get(s)
        )
        name = typer.style(entry.issue_id, bold=True)
        say(f"{name}  {output.plural(entry.total, 'reader')}: {counts}  (last change {last})")
        if entry.problems and (issue_id or len(found) == 1):
            say("Readers without the issue:")
            for row in entry.problems:
                say(f"  {row.state:8} {row.address} (attempts: {row.attempts}) {row.reply}")
        # What came back after the send (digest bounces): the rates providers judge a sender by.
        lines, warnings = status_lines(ws.state, entry, detailed=bool(issue_id or len(found) == 1))
        for line in lines:
            say(line)
        for warning in warnings:
            say(f"{typer.style('warning:', fg='yellow')} {entry.issue_id}: {warning}", err=True)
    if any(e.problems for e in found) and not issue_id and len(found) > 1:
        say("Name a draft to see its failures: digest status DRAFT")


@app.command(cls=HelpCommand)
@reported
def recover() -> None:
    """Rebuild the ledger from the journal after it was lost, damaged or replaced by an old copy.

    Every send writes each reader's outcome twice: in the ledger (.digest/ledger.sqlite3) and
    in a plain-text journal per issue (.digest/journal/). When the ledger is damaged, recover
    moves it aside (it is never deleted) and starts a new one; then every reader a journal says
    has an issue, or was refused it, and the ledger does not know of, is written back, so the
    next send does not mail them again. Running it twice changes nothing more.

    [b]Example[/b]: digest recover
    """
    from digestcli.state import send_lock
    from digestcli.state.recovery import recover_ledger

    ws = workspace()
    with send_lock(ws.state):
        recovery = recover_ledger(ws.state)
    if recovery.moved_aside is not None:
        say(f"Moved the damaged ledger aside to {shown(recovery.moved_aside)}.")
    for issue_id, count in recovery.restored.items():
        say(f"{issue_id}: {output.plural(count, 'reader')} brought back from the journal.")
    if not recovery.restored:
        verb = "says" if recovery.journals == 1 else "say"
        say(f"The ledger already knows everything the {output.plural(recovery.journals, 'journal')} {verb}.")
    else:
        say("Done: digest status shows where every reader stands.")


@app.command(cls=HelpCommand)
@reported
def serve(
    *,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The port; 0 picks a free one.")] = 8080,
    behind_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-proxy",
            help="Trust X-Forwarded-For from the reverse proxy in front (\\[serve] behind_proxy).",
        ),
    ] = False,
) -> None:
    """Serve the web edition (site/) and the one-click unsubscribe URL over HTTP until stopped.

    The path of \\[newsletter] unsubscribe_url shows a confirm page to a GET and unsubscribes on
    a POST (RFC 8058 one-click, or the page's button): into this workspace's suppression list, or
    by mail to unsubscribe_mailto when \\[serve] unsubscribe = "mail" (a server apart from the
    sending workspace). Files only for the site: no listings, nothing outside it. One line is
    logged per request. To face the internet, keep it on 127.0.0.1 behind a reverse proxy with
    TLS. Ctrl-C or SIGTERM stops it.

    [b]Examples[/b]

      digest serve --port 8080
      digest serve --port 8080 --behind-proxy     behind nginx or Caddy on this machine
    """
    from digestcli.serve import DigestServer

    server = DigestServer(
        workspace(), host=host, port=port, behind_proxy=behind_proxy or None, debug=_Session.debug
    )
    for line in server.describe(shown):
        say(line, err=True)
    try:
        with _StopSignals():  # SIGTERM (systemd) and SIGHUP stop it as Ctrl-C does
            server.serve_forever()
    except KeyboardInterrupt:
        say("Stopped.", err=True)  # stopping a server is how it ends, not a failure
    finally:
        server.shutdown()


# ------------------------------------------------------------------------------------ bounces


@app.command(cls=HelpCommand)
@reported
def bounces(
    *,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="Read a local Maildir folder or mbox file instead of the IMAP folder in \\[bounces].",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be done; change nothing, here or in the mailbox."),
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text for people, json for programs.")
    ] = OutputFormat.text,
) -> None:
    """Read the bounce mailbox and act on what came back: bounces, complaints, unsubscribes.

    Every message is classified. A hard bounce, a spam complaint or an unsubscribe puts the
    reader on the suppression list (bounced, complained, unsubscribed) and on their record for
    the issue (digest status DRAFT); a soft bounce is counted, and \\[bounces] soft_bounce_limit
    of them on issues in a row suppress the reader as bounced. A block (a refusal about the
    sending: DMARC, a banned IP) and a delay are listed and never count against the reader; an
    unsubscribe asked in words that may not be this reader's or this list's is listed and left
    in the mailbox for you. Only reports about mail digest
    sent count: the VERP token, digest's Message-ID or the list's List-Id must say so. Each
    report is acted on once (remembered by its Message-ID); handled reports are moved to
    \\[bounces] done_folder. Mail that is not a report is left exactly as it was, and a report
    digest cannot read is listed with its subject, never guessed. The IMAP password comes
    from DIGEST_IMAP_PASSWORD.

    [b]Examples[/b]

      digest bounces --dry-run                 what would be done, changing nothing
      digest bounces                           read the \\[bounces] IMAP folder and act
      digest bounces --from ~/Mail/bounces     a Maildir folder synced by other means
      digest bounces --from bounces.mbox --format json | jq '.counts'
    """
    from digestcli.bounces.act import read_bounces, summary_json, summary_lines
    from digestcli.bounces.mailbox import open_mailbox

    ws = workspace()
    mailbox = open_mailbox(ws.config.bounces, source, dry_run=dry_run)
    try:
        progress, update = output.reading_bar(mailbox.count())
        with progress:
            run = read_bounces(ws, mailbox, dry_run=dry_run, progress=update)
    finally:
        mailbox.close()
    if output_format is OutputFormat.json:
        import json

        typer.echo(json.dumps(summary_json(run), ensure_ascii=False, indent=2))
        return
    for line in summary_lines(run):
        say(line)


# -------------------------------------------------------------------------------- unsubscribe


@app.command(cls=HelpCommand)
@reported
def unsubscribe(
    address: Annotated[
        str | None,
        typer.Argument(help="An address, or the token from an unsubscribe link.", show_default=False),
    ] = None,
    *,
    reason: Annotated[str, typer.Option(help="unsubscribed, bounced or complained.")] = "unsubscribed",
    show: Annotated[bool, typer.Option("--list", help="List the suppression list instead.")] = False,
    undo: Annotated[
        bool, typer.Option("--undo", help="Put the reader back on the list (the date is recorded).")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="With --list: text for people, json for programs.")
    ] = OutputFormat.text,
) -> None:
    """Add a reader to the suppression list, which every send respects.

    The list lives in the workspace's state (.digest/), not in subscribers.csv, so a reader
    who left stays out even if the CSV is re-exported with their address in it. `digest
    bounces` adds the readers whose mail bounced, who complained or who asked by mail.
    --undo puts a reader back (one who subscribed again, a bounce that was their mailbox's
    passing fault); the list keeps a history of both.

    [b]Examples[/b]

      digest unsubscribe reader@example.com
      digest unsubscribe reader@example.com --reason bounced
      digest unsubscribe --list
      digest unsubscribe --list --format json | jq -r '.[] | select(.reason == "bounced") | .address'
      digest unsubscribe --undo reader@example.com
    """
    from digestcli.state.suppressions import SuppressionList

    ws = workspace()
    suppressions = SuppressionList(ws.state)
    if show:
        entries = suppressions.entries()
        if output_format is OutputFormat.json:
            import json

            listed = [{"address": e.address, "reason": e.reason, "since": e.since} for e in entries]
            typer.echo(json.dumps(listed, ensure_ascii=False, indent=2))
            return
        for entry in entries:
            say(f"{entry.address}  {entry.reason}  {entry.since[:10]}  {entry.note}".rstrip())
        say(f"{output.plural(len(entries), 'address')} suppressed.", err=True)
        return
    if not address:
        if undo:
            raise UsageError("name the address to put back", hint="--list shows who is suppressed")
        raise UsageError("name an address to unsubscribe", hint="or --list to see the list")
    from digestcli.message import unsubscribe_address

    # An address, or a token, or the unsubscribe link (or mailto:) pasted from a message.
    found = unsubscribe_address(address, ws.config.newsletter.unsubscribe_url, ws.state)
    if found is None:
        raise UsageError(
            f"{address!r} is neither an address nor a valid unsubscribe token (or a link holding one)"
        )
    if undo:
        was = suppressions.undo(found, note="digest unsubscribe --undo")
        if was is None:
            raise DigestError(
                f"{found.lower()} is not on the suppression list: nothing to undo",
                hint="digest unsubscribe --list shows who is",
            )
        say(f"{was.address} is back (it was {was.reason} since {was.since[:10]}): the next send mails it.")
        return
    entry = suppressions.add(found, reason=reason)
    say(f"{entry.address} is {entry.reason}: no further issues will be sent to it.")


def _command_named(argv: list[str]) -> str | None:
    """The command a command line runs (`lint` in `digest -C site lint --fix`), or None when it asks
    for the top level's help, names none, or completes a word in the shell."""
    if any(name.startswith("_DIGEST_COMPLETE") for name in os.environ):
        return None
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word in ("-C", "--workspace"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command that ``argv`` runs: Typer builds every command it holds (their
    options, help and types) at each start, and one is all a run needs. A name that is no command
    keeps them all, so that the error can list them."""
    name = _command_named(argv)
    commands = [
        c for c in app.registered_commands if c.callback and (c.name or _typer_name(c.callback)) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands = commands
    only.registered_groups = groups
    return only


def _typer_name(callback: Callable[..., Any]) -> str:
    return callback.__name__.lower().replace("_", "-")  # as Typer names a command by its function


def main() -> None:
    """The console script: run the app, with Ctrl-C outside a command exiting 130 too."""
    try:
        app_for(sys.argv[1:])()
    except KeyboardInterrupt:
        say("interrupted", err=True)
        raise SystemExit(ExitCode.INTERRUPTED) from None
    except BrokenPipeError:
        # `digest lint --format json | head`: the reader left; say nothing more, to anyone.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(ExitCode.FAILURE) from None
