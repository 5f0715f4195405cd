"""The console script builds only the command it runs (cli.app_for), and the quick commands load
no more than they use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest
import typer

from digestcli import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["lint", "drafts/a.md"], "lint"),
        (["-C", "lint", "status"], "status"),  # -C takes the next word as its folder
        (["--workspace", "site", "--debug", "send", "x.md"], "send"),
        (["--debug", "words", "add", "Meituan"], "words"),
        (["--help"], None),
        (["-h", "lint"], None),  # the top level's help, whatever follows
        ([], None),
        (["--version"], None),
    ],
)
def test_the_command_a_command_line_runs(argv: list[str], name: str | None) -> None:
    assert cli._command_named(argv) == name


def test_the_app_for_a_command_holds_that_command_alone() -> None:
    every = len(cli.app.registered_commands)
    lint = cli.app_for(["lint"])
    assert [c.callback.__name__ for c in lint.registered_commands if c.callback] == ["lint"]
    assert lint.registered_groups == []
    imported = cli.app_for(["import", "paste.txt"])
    assert [c.name for c in imported.registered_commands] == ["import"]
    words = cli.app_for(["words", "list"])
    assert words.registered_commands == [] and [g.name for g in words.registered_groups] == ["words"]
    assert cli.app_for(["lnt"]) is cli.app  # no such command: all of them, for the error to list
    assert cli.app_for(["--help"]) is cli.app
    assert len(cli.app.registered_commands) == every  # the app itself is left whole


def test_every_command_draws_its_help_with_digests_own_screens() -> None:
    """A command declared without ``cls=HelpCommand`` falls back to Typer's formatter: 70 ms more
    to start, and a screen unlike the others. Read from the commands Typer builds."""
    top = typer.main.get_command(cli.app)
    assert isinstance(top, cli.HelpGroup)
    commands, groups = [], []
    for name, command in top.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            groups.append((name, command))
            commands += [(f"{name} {sub}", each) for sub, each in command.commands.items()]
        else:
            commands.append((name, command))
    assert len(commands) >= 15 and groups
    assert [name for name, command in commands if not isinstance(command, cli.HelpCommand)] == []
    assert [name for name, group in groups if not isinstance(group, cli.HelpGroup)] == []


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digestcli", *argv], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_a_mistyped_command_is_still_named_with_its_neighbour() -> None:
    done = run("lnt")
    assert done.returncode == 2 and "Did you mean 'lint'?" in done.stderr


def test_a_commands_help_and_the_top_levels_help() -> None:
    lint = run("lint", "--help")
    assert lint.returncode == 0 and "--fix" in lint.stdout
    top = run("--help")
    assert top.returncode == 0 and all(name in top.stdout for name in ("lint", "send", "bounces", "import"))


def loaded_by(argv: list[str], cwd: Path) -> set[str]:
    code = (
        "import sys\n"
        "from digestcli.cli import main\n"
        f"sys.argv = ['digest', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=False)
    return set(done.stderr.strip().splitlines()[-1].split())


@pytest.mark.parametrize("argv", [["status"], ["unsubscribe", "--list"]])
def test_status_and_the_suppression_list_load_no_renderer(argv: list[str], tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('[newsletter]\ntitle = "Test Weekly"\n', encoding="utf-8")
    modules = loaded_by(argv, tmp_path)
    assert "digestcli.cli" in modules
    assert not modules & {"jinja2", "premailer", "lxml", "markdown_it", "digestcli.render", "yaml"}


@pytest.mark.parametrize("argv", [["--help"], ["lint", "--help"], ["words", "--help"]])
def test_help_screens_load_no_markdown_parser_nor_typers_formatter(argv: list[str], tmp_path: Path) -> None:
    modules = loaded_by(argv, tmp_path)
    assert "digestcli.helpscreen" in modules
    assert not modules & {"typer.rich_utils", "rich.markdown", "markdown_it", "pygments", "digestcli.config"}


def wide_help(*argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "digestcli", *argv, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line.strip(" │") for line in done.stdout.splitlines()]


def test_a_help_screen_keeps_examples_lines_and_reflows_prose() -> None:
    lines = wide_help("send")
    # Prose joined into one line at this width; each example on a line of its own.
    assert any(line.startswith("The draft is linted first") and "before anything" in line for line in lines)
    assert "digest send drafts/2026-11-20-weekly.md --dry-run" in lines
    assert any(line.startswith("--dry-run") and "Build every message" in line for line in lines)
    assert any(line.startswith("*  draft") and line.endswith("[required]") for line in lines)
    assert any(line.startswith("--format") and line.endswith("[default: text]") for line in wide_help("lint"))


def test_the_entry_point_freezes_what_start_up_made_and_leaves_the_collector_on() -> None:
    code = (
        "import gc, sys\n"
        "from digestcli.__main__ import main\n"
        "sys.argv = ['digest', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 10_000, 'digestcli.cli' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.split()[-3:] == ["True", "True", "True"], done.stderr


def test_help_shows_a_numbers_range() -> None:
    assert any(line.startswith("--limit") and "[x>=1]" in line for line in wide_help("send"))
    assert any(line.startswith("--items") and "[1<=x<=100]" in line for line in wide_help("new"))


def test_help_marks_a_deprecated_command_and_names_an_options_environment_variable() -> None:
    from typer.testing import CliRunner

    app = typer.Typer(cls=cli.HelpGroup)

    @app.command(cls=cli.HelpCommand, deprecated=True)
    def old(
        token: Annotated[str, typer.Option(envvar="OLD_TOKEN", show_envvar=True, help="The token.")] = "",
    ) -> None:
        """Do it the old way."""

    @app.command(cls=cli.HelpCommand)
    def new() -> None:
        """Do it the new way."""

    runner = CliRunner()
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert any(
        "old" in line and "(deprecated) Do it the old way." in line for line in top.output.splitlines()
    )
    one = runner.invoke(app, ["old", "--help"], env={"COLUMNS": "120", "NO_COLOR": "1"})
    assert "(deprecated)" in one.output
    assert any("--token" in line and "[env var: OLD_TOKEN]" in line for line in one.output.splitlines())
