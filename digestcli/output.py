"""What the command line prints: one-line messages, lint findings and their summary, the send's
progress bar and its closing report, and the one question it asks. Only the CLI imports this."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from digestcli.config import Workspace

SKIPPED_SHOWN = 20  # rows of the list that could not be read, shown before the rest go to a file


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


def shown(path: Path | str) -> str:
    """A path as the editor would type it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def print_findings(findings: list[Any]) -> None:
    for f in findings:
        rule = typer.style(f.rule, fg="red" if f.severity == "error" else "yellow")
        say(f"{typer.style(f'{f.path}:{f.line}:{f.column}:', bold=True)} {rule} {f.message}")


def plural(n: int, word: str) -> str:
    """``1 draft``, ``2 drafts``, ``3 addresses``: English plurals of the words digest counts."""
    if n == 1:
        return f"{n:,} {word}"
    return f"{n:,} {word}{'es' if word.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def lint_summary(checked: int, errors: int, warnings: int, findings: list[Any], unreadable: int) -> str:
    drafts = plural(checked, "draft")
    if not findings and not unreadable:
        return f"{typer.style('All good:', fg='green')} {drafts} checked, no findings."
    text = f"Found {plural(errors, 'error')} and {plural(warnings, 'warning')} in {drafts}."
    if unreadable:
        text += f" {plural(unreadable, 'file')} could not be read."
    fixable = sum(f.fixable for f in findings)
    if fixable:
        text += f" {plural(fixable, 'finding')} can be fixed with `digest lint --fix`."
    return text


def size(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def show_skipped(readers: Any, ws: Workspace, *, verbose: bool) -> None:
    """The list's skipped rows: the first few on screen (all with --verbose), and all of them in a
    file named on screen, so none goes unseen. Read from the list as they are shown."""
    count = readers.skipped_count
    rows = readers.skipped_rows()
    for row in rows if verbose else itertools.islice(rows, SKIPPED_SHOWN):
        say(f"{typer.style('skipped', fg='yellow')} {shown(readers.path)}:{row.line}: {row.reason}", err=True)
    if count > SKIPPED_SHOWN and not verbose:
        from digestcli.state import write_skipped_rows

        written = write_skipped_rows(ws.state, readers.path, readers.skipped_rows(), count)
        say(
            f"… and {count - SKIPPED_SHOWN:,} more skipped rows: all {count:,} are in"
            f" {shown(written)} (--verbose lists them here)",
            err=True,
        )


def list_line(readers: Any) -> str:
    """The confirmation screen's word on the list: its readers, and every row left out, by why."""
    notes = []
    if readers.skipped_count:
        invalid = readers.skipped_count - readers.duplicates
        kinds = [f"{invalid:,} invalid"] if invalid else []
        if readers.duplicates:
            kinds.append(plural(readers.duplicates, "duplicate"))
        notes.append(f"{plural(readers.skipped_count, 'row')} skipped: {', '.join(kinds)}")
    if readers.gone:  # an export's own record of who left: counted, never mailed
        marked = ", ".join(f"{count:,} {why}" for why, count in readers.gone.items())
        notes.append(f"{sum(readers.gone.values()):,} left out as the list marks them: {marked}")
    line = f"{plural(readers.count, 'reader')} in {shown(readers.path)}"
    return f"{line} ({'; '.join(notes)})" if notes else line


def confirm(question: str) -> bool:
    """Ask yes/no (no is the default). Ctrl-C propagates (exit 130); no input at all is a no."""
    typer.echo(f"{question} [y/N]: ", nl=False)
    answer = sys.stdin.readline()
    if not answer:
        say()  # end of input: the prompt's line still needs ending
    return answer.strip().lower() in ("y", "yes")


def progress_bar() -> tuple[Any, Any]:
    """A Rich progress bar (drawn on a terminal only) and the thread-safe callback that moves it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    con = console()
    progress = Progress(
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7} msg/s"),
        TimeRemainingColumn(),
        console=con,
        disable=not con.is_terminal,
    )
    task = progress.add_task("send", total=None, rate="")
    started = time.monotonic()

    def update(done: int, total: int, state: str) -> None:  # once per reader: keep it cheap
        if state.startswith("retrying: "):
            progress.console.print(
                f"{state.removeprefix('retrying: ')}: trying again for a while (Ctrl-C stops)",
                markup=False,
                highlight=False,
            )
            return
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

    return progress, update


def reading_bar(total: int) -> tuple[Any, Any]:
    """`digest bounces`' progress bar, on stderr (stdout may be JSON), drawn on a terminal only,
    and the callback that moves it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    con = console(stderr=True)
    progress = Progress(
        TextColumn("Reading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=con, disable=not con.is_terminal,
    )  # fmt: skip
    task = progress.add_task("bounces", total=total)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, update


def print_send_summary(summary: Any, draft: Path, *, limited: bool = False) -> None:
    """The end of a send: what happened, where the details are, which flag lifts which guard."""
    from rich.table import Table

    if summary.test_address:
        sent = summary.delivered == 1
        if summary.dry_run:
            say(f"Test copy for {summary.test_address} built; not sent (dry run).")
        else:
            say(f"Test copy {'sent to' if sent else 'NOT delivered to'} {summary.test_address}.")
        for address, state, reply in summary.problems:
            say(f"  {address}: {state}: {reply}")
        return
    table = Table(title=None, show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("delivered", "skipped", "deferred", "failed", "unknown"):
        table.add_column(column, justify="right")
    skipped = summary.suppressed + summary.skipped
    if summary.dry_run:
        table.add_row(f"{summary.built} built", str(skipped), "-", "-", "-")
    else:
        table.add_row(
            *(str(n) for n in (summary.delivered, skipped, summary.deferred, summary.failed, summary.unknown))
        )
    con = console()
    con.print(table)
    facts = [f"{summary.duration:.1f} s", f"{summary.rate:,.0f} msg/s"]
    if summary.already_delivered:
        facts.append(f"{summary.already_delivered} already had it")
    if summary.suppressed:
        facts.append(f"{summary.suppressed} on the suppression list")
    if summary.skipped:
        facts.append(f"{plural(summary.skipped, 'invalid or duplicate row')}")
    if summary.recovered:
        facts.append(f"{summary.recovered:,} left in flight by a send that died, now unknown")
    say("; ".join(facts) + ".")
    for address, state, reply in summary.problems[:10]:
        say(f"  {typer.style(state, fg='red')} {address}: {reply}")
    if len(summary.problems) > 10:
        say(f"  … and {len(summary.problems) - 10} more")
    if summary.links_left_out:
        left = summary.links_left_out
        say(
            f"  {plural(len(left), 'link')} filled from the reader list left out (only http, https and"
            " mailto links are kept):"
        )
        for address, field, value in left[:5]:
            say(f"    {address}: {field} = {value[:80]!r}")
        if len(left) > 5:
            say(f"    … and {len(left) - 5:,} more")
    guards = []
    if summary.dry_run:
        guards.append("this was a dry run: drop --dry-run to send")
    if summary.remaining:
        if summary.retry_after is not None:
            at = dt.datetime.fromtimestamp(summary.retry_after).strftime("%H:%M")
            more = f"run the command again after {at}"
        elif not summary.rerun_helps:
            more = "once the error below is fixed, the same command carries on"
        elif limited:
            more = "raise --limit, or run the command again"
        else:
            more = "run the command again"
        guards.append(f"{summary.remaining:,} not sent yet: {more}")
    if summary.deferred:
        later = (
            f"after {dt.datetime.fromtimestamp(summary.retry_after).strftime('%H:%M')}"
            if summary.retry_after is not None
            else "later"
        )
        guards.append(f"{summary.deferred:,} deferred (temporary failures): run the command again {later}")
    if summary.held_unknown or summary.unknown:
        unknown = summary.held_unknown + summary.unknown
        guards.append(f"{unknown} unknown (may have arrived): --resend-unknown mails them again")
    if summary.held_failed:
        guards.append(f"{summary.held_failed:,} refused earlier: --retry-failed tries them again")
    for guard in guards:
        say(f"Note: {guard}.")
    if not summary.dry_run:
        say(f"Details: digest status {shown(draft)}")


# ------------------------------------------------------------------------------------- status
