"""The command line as a whole: help with examples, version, exit codes, --debug, start-up cost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digestcli import __version__
from digestcli.cli import app


def command_names() -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


def test_every_command_documents_itself_with_an_example(digest) -> None:
    assert command_names()
    for name in command_names():
        result = digest(name, "--help")
        assert result.exit_code == 0, name
        assert "Example" in result.stdout, f"`digest {name} --help` shows no example"


def test_top_level_help_lists_the_commands(digest) -> None:
    result = digest("--help")
    assert result.exit_code == 0
    for name in command_names():
        assert name in result.stdout


def test_version(digest) -> None:
    assert digest("--version").stdout.strip() == f"digest {__version__}"


def test_unknown_option_is_a_usage_error(digest) -> None:
    assert digest("lint", "--no-such-option").exit_code == 2


def test_debug_shows_the_traceback_that_is_otherwise_hidden(digest, workspace) -> None:
    (workspace / "digest.toml").write_text("[delivery]\nconections = 2\n", encoding="utf-8")
    quiet = digest("lint")
    assert quiet.exit_code == 2 and "Traceback" not in quiet.stderr
    assert "unknown setting 'delivery.conections' (did you mean 'connections'?)" in quiet.stderr
    from digestcli.errors import ConfigError

    with pytest.raises(ConfigError):
        digest("--debug", "lint")


def test_lint_does_not_import_the_rendering_stack(write_draft) -> None:
    path = write_draft()
    code = (
        "import sys\n"
        "from digestcli.cli import main\n"
        f"sys.argv = ['digest', 'lint', {str(path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in ('jinja2', 'premailer', 'lxml', 'cssutils') if m in sys.modules)\n"
        "print('loaded:', heavy, 'exit:', code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().endswith("loaded: [] exit: 0"), result.stdout + result.stderr


def test_the_console_script_runs_as_a_process(write_draft) -> None:
    write_draft()
    result = subprocess.run(
        [sys.executable, "-m", "digestcli", "lint"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "1 draft checked" in result.stdout
