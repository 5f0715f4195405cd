"""`digest init`: a new workspace that `digest new`, `lint` and `send` work in, never overwriting."""

from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import mailbox
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from digestcli.config import Config, NewsletterConfig, load_config, with_derived
from digestcli.config_doc import SETTINGS, all_settings
from digestcli.render.templates import packaged_templates
from digestcli.scaffold import EXAMPLE_READERS, STARTER_TEMPLATES

PARTS = [
    "digest.toml",
    "drafts/",
    "templates/",
    *(f"templates/{name}" for name in STARTER_TEMPLATES),
    "subscribers.csv",
]


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder, made the current one."""
    folder = tmp_path / "newsletter"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("DIGEST_DEBUG", raising=False)
    return folder


def listed(stdout: str) -> dict[str, str]:
    """The report's part lines: name -> created or kept."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^  (created|kept)\s+(\S+)", stdout, re.MULTILINE)}


def test_init_in_an_empty_folder_makes_a_workspace(digest, empty: Path) -> None:
    result = digest("init", "--title", "The Lantern Weekly")
    assert result.exit_code == 0, result.stderr
    assert listed(result.stdout) == dict.fromkeys(PARTS, "created")
    assert "Workspace in this folder: 7 created, 0 already there and kept" in result.stdout
    assert "cd " not in result.stdout, "already there: no folder to change to"
    assert "Put your standing greeting and wrap-up into templates/draft.md.j2" in result.stdout
    assert "DIGEST_SMTP_PASSWORD" in result.stdout

    config = load_config(empty / "digest.toml")
    assert config.newsletter.title == "The Lantern Weekly"
    assert config.newsletter.sender == "The Lantern Weekly <digest@example.com>"
    # The settings a real send needs to be the editor's own are named in the next steps.
    assert re.search(r"Set your own from, unsubscribe_url, postal_address in digest.toml", result.stdout)
    for name in STARTER_TEMPLATES:
        assert (empty / "templates" / name).read_bytes() == (packaged_templates() / name).read_bytes()
    assert not (empty / "templates" / "web").exists(), "the web templates stay digest's own"
    rows = (empty / "subscribers.csv").read_text(encoding="utf-8").splitlines()
    assert rows == ["email,name", *(f"{a},{n}" for a, n in EXAMPLE_READERS)]
    assert not (empty / ".digest").exists()


def test_the_settings_file_names_every_setting_with_its_default(digest, empty: Path) -> None:
    assert digest("init").exit_code == 0
    text = (empty / "digest.toml").read_text(encoding="utf-8")
    lines = text.splitlines()
    for setting in all_settings():
        if isinstance(setting.default, Mapping):
            assert f"[{setting.dotted}]" in lines
            continue
        table = lines.index(f"[{setting.table}]")
        key_line = next(
            n for n, line in enumerate(lines) if n > table and re.match(rf"(# )?{setting.key} = ", line)
        )
        comment = lines[key_line - 1]
        assert comment.startswith(f"# {setting.about}. Default: "), (setting.dotted, comment)
    assert "password" not in re.sub(r"(?m)^#.*$", "", text).lower(), "no password is ever set here"

    # Uncomment every setting: the values shown are digest's own defaults, exactly.
    (empty / "digest.toml").write_text(re.sub(r"(?m)^# (\w+ = )", r"\1", text), encoding="utf-8")
    everything = load_config(empty / "digest.toml")
    assert everything == with_derived(Config())


def test_every_setting_has_a_description_and_every_description_a_setting() -> None:
    settings = list(all_settings())
    assert [s.dotted for s in settings if not s.about] == []
    assert set(SETTINGS) == {s.dotted for s in settings}


def test_new_lint_and_send_work_in_the_new_workspace(digest, empty: Path) -> None:
    assert digest("init").exit_code == 0
    (empty / "templates" / "draft.md.j2").write_text(
        (empty / "templates" / "draft.md.j2")
        .read_text(encoding="utf-8")
        .replace("TODO: the greeting.", "Good morning from the house greeting."),
        encoding="utf-8",
    )
    made = digest("new", "--items", "2", "--date", "2026-12-04")
    assert made.exit_code == 0, made.stderr
    draft = empty / "drafts" / "2026-12-04-example-weekly.md"
    text = draft.read_text(encoding="utf-8")
    assert text.startswith("---\n") and "Good morning from the house greeting." in text

    found = digest("lint")
    assert found.exit_code == 1 and "placeholder" in found.stdout
    assert {
        line.split()[1] for line in found.stdout.splitlines() if ": " in line and ":" in line.split()[0]
    } == {"placeholder"}, found.stdout

    text = re.sub(r"TODO: ?", "", text).replace("https://example.com/", "https://example.com/story")
    draft.write_text(text, encoding="utf-8")
    assert digest("lint").exit_code == 0

    sent = digest("send", str(draft), "--yes")
    assert sent.exit_code == 0, sent.stdout + sent.stderr
    messages = list(mailbox.Maildir(empty / "outbox", create=False))
    assert len(messages) == len(EXAMPLE_READERS)
    recipients = sorted(
        email.message_from_bytes(bytes(m), policy=email.policy.default)["To"] for m in messages
    )
    assert recipients == sorted(f"{name} <{address}>" for address, name in EXAMPLE_READERS)


def test_init_in_an_existing_workspace_overwrites_nothing(digest, empty: Path) -> None:
    assert digest("init").exit_code == 0
    (empty / "digest.toml").write_text('[newsletter]\ntitle = "Mine"\n', encoding="utf-8")
    (empty / "templates" / "draft.md.j2").write_text("my own scaffold\n", encoding="utf-8")
    (empty / "subscribers.csv").unlink()
    (empty / "templates" / "email.txt.j2").unlink()
    before = {p: p.read_bytes() for p in empty.rglob("*") if p.is_file()}

    result = digest("init", "--title", "Another")
    assert result.exit_code == 0, result.stderr
    assert listed(result.stdout) == {
        **dict.fromkeys(PARTS, "kept"),
        "templates/email.txt.j2": "created",
        "subscribers.csv": "created",
    }
    assert "2 created, 5 already there and kept" in result.stdout
    after = {p: p.read_bytes() for p in empty.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before, "every file that was there is as it was"
    assert load_config(empty / "digest.toml").newsletter.title == "Mine"
    assert "title" not in result.stdout.split("Set your own ")[1].split(" in digest.toml")[0], (
        "a title of its own"
    )

    again = digest("init")
    assert again.exit_code == 0 and listed(again.stdout) == dict.fromkeys(PARTS, "kept")


def test_init_of_a_new_folder_says_where_to_go(digest, empty: Path) -> None:
    result = digest("init", "lantern/weekly", "--title", 'Lantern, "the" Weekly')
    assert result.exit_code == 0, result.stderr
    assert (
        "Workspace in lantern/weekly/: 7 created" in result.stdout and "  cd lantern/weekly" in result.stdout
    )
    config = load_config(empty / "lantern" / "weekly" / "digest.toml")
    assert config.newsletter.title == 'Lantern, "the" Weekly'
    assert config.newsletter.sender == '"Lantern, \\"the\\" Weekly" <digest@example.com>'


def test_the_list_goes_where_a_kept_digest_toml_says(digest, empty: Path) -> None:
    (empty / "digest.toml").write_text('[delivery]\nsubscribers = "readers.csv"\n', encoding="utf-8")
    result = digest("init")
    assert result.exit_code == 0, result.stderr
    assert listed(result.stdout)["readers.csv"] == "created" and not (empty / "subscribers.csv").exists()


def test_a_path_that_is_a_file_is_one_clear_line(digest, empty: Path) -> None:
    (empty / "notes.txt").write_text("hello\n", encoding="utf-8")
    result = digest("init", "notes.txt")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: notes.txt: is a file, not a folder (name a new folder, or an existing one)"
    ]
    assert result.stdout == "" and sorted(p.name for p in empty.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("blocker", "message"),
    [
        ("drafts", "is a file; drafts/ must be a folder"),
        ("digest.toml", "is a folder; digest.toml must be a file"),
    ],
)
def test_a_part_in_the_way_refuses_before_writing_anything(digest, empty: Path, blocker, message) -> None:
    if blocker == "drafts":
        (empty / "drafts").write_text("", encoding="utf-8")
    else:
        (empty / "digest.toml").mkdir()
    result = digest("init")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: {empty / blocker}: {message} (move it aside and run digest init again)"
    )
    assert sorted(p.name for p in empty.iterdir()) == [blocker], "nothing written"


def test_a_kept_digest_toml_that_does_not_load_is_reported_after_the_list(digest, empty: Path) -> None:
    (empty / "digest.toml").write_text('[newsletter]\ntitel = "x"\n', encoding="utf-8")
    result = digest("init")
    assert result.exit_code == 2
    assert listed(result.stdout)["digest.toml"] == "kept" and (empty / "drafts").is_dir()
    assert "digest.toml:2: unknown setting 'newsletter.titel'" in result.stderr


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable for real: read-only permissions, or for root (whom permissions do
    not stop) the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed (apt-get install e2fsprogs; .ci/run does)")
    if subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root, and the immutable attribute cannot be set here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_an_unwritable_folder_is_one_clear_line(digest, empty: Path) -> None:
    target = empty / "locked"
    target.mkdir()
    with unwritable(target):
        result = digest("init", "locked")
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(
        r"error: locked/digest\.toml: cannot write: (Permission denied|Operation not permitted)"
        r" \(choose a folder you can write to\)",
        line.replace(str(target), "locked"),
    ), line
    assert list(target.iterdir()) == []


def test_init_help_has_an_example(digest) -> None:
    result = digest("init", "--help")
    assert result.exit_code == 0 and 'digest init lantern --title "The Lantern Weekly"' in result.stdout


def test_a_title_on_two_lines_is_refused(digest, empty: Path) -> None:
    result = digest("init", "--title", "Two\nlines")
    assert result.exit_code == 2 and "must be one line of text" in result.stderr
    assert list(empty.iterdir()) == []


def test_the_default_title_is_asked_for_in_the_next_steps(digest, empty: Path) -> None:
    result = digest("init")
    assert result.exit_code == 0
    assert load_config(empty / "digest.toml").newsletter == NewsletterConfig()
    assert "Set your own title, from, unsubscribe_url, postal_address in digest.toml" in result.stdout


def test_the_readme_names_every_value_the_templates_get() -> None:
    from digestcli.publish.pages import ArchiveEntry, ArchivePage, IssuePage, Neighbour
    from digestcli.render.view import IssueView, ItemView, SectionView, WrapUpView

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What each template can use", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", section))
    views = (IssueView, ItemView, SectionView, WrapUpView, IssuePage, Neighbour, ArchivePage, ArchiveEntry)
    fields = {"NewsletterConfig": set(NewsletterConfig._fields)}  # a NamedTuple; the views are dataclasses
    fields |= {kind.__name__: {f.name for f in dataclasses.fields(kind)} for kind in views}
    for kind, names in fields.items():
        missing = names - named
        assert not missing, f"the README does not name {kind}'s {sorted(missing)}"


def test_a_write_that_fails_leaves_no_half_file(tmp_path: Path) -> None:
    """A write that fails halfway through a new file (here: text it cannot encode, as a full disk
    would fail it): nothing is left that a later run would take as made (`already exists`, `kept`)."""
    from digestcli.errors import create_whole

    target = tmp_path / "digest.toml"
    with pytest.raises(UnicodeEncodeError):
        create_whole(target, "[newsletter]\n" * 1000 + "\udc80")
    assert not target.exists()
    create_whole(target, "[newsletter]\n")
    with pytest.raises(FileExistsError):
        create_whole(target, "other\n")
    assert target.read_text(encoding="utf-8") == "[newsletter]\n"
