"""digest.toml read and checked as a whole, and the example values a real send must not carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestcli.config import (
    SMTP_SECURITIES,
    Config,
    DeliveryConfig,
    ExampleSetting,
    NewsletterConfig,
    SmtpConfig,
    check_list_id,
    check_unsubscribe_mailto,
    check_unsubscribe_url,
    derived_list_id,
    example_settings,
    find_workspace,
    load_config,
    reserved_domain,
    split_address,
    validate,
)
from digestcli.errors import ConfigError, ExitCode

URL = "https://lists.lantern.news/unsubscribe?token={token}"


def settings(tmp_path: Path, text: str, name: str = "settings.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def newsletter(**values: str) -> Config:
    real = {
        "sender": "The Lantern <weekly@lantern.news>",
        "postal_address": "12 Riverside Walk, Springfield 10001",
        "unsubscribe_url": URL,
    }
    return Config(newsletter=NewsletterConfig(**{**real, **values}))


# -- reading ----------------------------------------------------------------------------------------


def test_the_defaults_and_the_sample_workspace_pass() -> None:
    validate(Config())
    root = Path(__file__).resolve().parent.parent
    assert load_config(root / "digest.toml").newsletter.title == "The Lantern Weekly"


@pytest.mark.parametrize(
    ("section", "key"), [("delivery", "timeout"), ("bounces", "timeout"), ("lint", "link_timeout")]
)
def test_a_timeout_of_zero_is_refused_at_its_line(tmp_path: Path, section: str, key: str) -> None:
    path = settings(tmp_path, f'[newsletter]\ntitle = "T"\n\n[{section}]\n{key} = 0\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:5"
    assert caught.value.message == f"'{section}.{key}' cannot be 0"
    path.write_text(path.read_text().replace(" = 0", " = 0.5"), encoding="utf-8")
    assert getattr(getattr(load_config(path), section), key) == 0.5


def test_a_wrongly_typed_value_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = settings(tmp_path, '[newsletter]\ntitle = "T"\n\n[delivery]\nconnections = "four"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:5"
    assert caught.value.message == "'delivery.connections' must be a number, not 'four'"
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_bad_from_names_the_real_file_its_line_and_the_key(tmp_path: Path) -> None:
    path = settings(
        tmp_path,
        '# from = "a comment"\n[newsletter]\ntitle = "T"\n  from   =  "not an address"\n',
        name="lantern.toml",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(
        f"{path}:4: newsletter.from is not an email address: 'not an address' ("
    )


def test_the_line_is_found_in_the_right_table(tmp_path: Path) -> None:
    # The same key name in another table, in a comment or inside a multi-line string is not it.
    path = settings(
        tmp_path,
        '[smtp]\ntransport = 1  # transport = "x"\n'
        "[ \"delivery\" ]\noutbox = '''out\ntransport = \"x\"\n'''\n"
        '  transport="pigeon"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:2"  # smtp.transport: unknown
    path.write_text(path.read_text().replace("transport = 1", "port = 25"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:7"
    assert "'delivery.transport' is 'pigeon'; choose one of outbox, smtp" in caught.value.message


def test_a_setting_that_cannot_be_placed_still_names_the_file(tmp_path: Path) -> None:
    path = settings(tmp_path, 'newsletter = { from = "nobody" }\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:1"  # the inline table's line
    path = settings(tmp_path, '"newsletter".from = "nobody"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:1"


def test_an_unknown_key_and_a_bad_rule_have_their_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(settings(tmp_path, "[delivery]\nretries = 1\nconections = 2\n"))
    assert caught.value.where.endswith(":3") and "did you mean 'connections'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config(settings(tmp_path, '[lint.rules]\nlink-text = false\nplaceholder = "loud"\n'))
    assert caught.value.where.endswith(":3") and "lint.rules.placeholder" in caught.value.message


@pytest.mark.parametrize(
    ("toml", "key", "line"),
    [
        ('[newsletter]\nunsubscribe_url = "https://example.org/unsubscribe"\n', "unsubscribe_url", 2),
        ('[newsletter]\nunsubscribe_url = "http://example.org/u?t={token}"\n', "unsubscribe_url", 2),
        (
            '[newsletter]\ntitle = "T"\nunsubscribe_mailto = "Unsub <u@example.org>"\n',
            "unsubscribe_mailto",
            3,
        ),
        ('[newsletter]\nunsubscribe_mailto = "u@example.org?subject=stop"\n', "unsubscribe_mailto", 2),
        ('[newsletter]\nunsubscribe_mailto = "not an address"\n', "unsubscribe_mailto", 2),
        ('[newsletter]\nreply_to = "a@example.org, b@example.org"\n', "reply_to", 2),
        ('[newsletter]\nlist_id = "two words"\n', "list_id", 2),
    ],
)
def test_each_header_setting_is_checked_when_read(tmp_path: Path, toml: str, key: str, line: int) -> None:
    path = settings(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:{line}"
    assert caught.value.message.startswith(f"newsletter.{key} ")


def test_find_workspace_refuses_a_broken_digest_toml(tmp_path: Path) -> None:
    (tmp_path / "drafts").mkdir()
    (tmp_path / "digest.toml").write_text('[newsletter]\nfrom = "<>"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        find_workspace(tmp_path / "drafts")
    assert caught.value.where == f"{tmp_path / 'digest.toml'}:2"


def test_validate_without_a_file_says_what_it_is_given() -> None:
    with pytest.raises(ConfigError) as caught:
        validate(Config(smtp=SmtpConfig(security="tls")), where="--config")
    assert str(caught.value) == "--config: 'smtp.security' is 'tls'; choose one of starttls, ssl, none"
    with pytest.raises(ConfigError, match=r"delivery\.transport"):
        validate(Config(delivery=DeliveryConfig(transport="fax")))
    assert SMTP_SECURITIES == ("starttls", "ssl", "none")


def test_an_empty_list_id_is_derived_from_from_which_must_give_a_valid_one(tmp_path: Path) -> None:
    assert derived_list_id("news.letter+weekly@Lists.Example.org") == "news-letter-weekly.lists.example.org"
    assert derived_list_id("@example.org") == "list.example.org"
    path = settings(tmp_path, '[newsletter]\nfrom = "news@[192.0.2.1]"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.where == f"{path}:2" and "set newsletter.list_id" in (caught.value.hint or "")
    path.write_text('[newsletter]\nfrom = "news@[192.0.2.1]"\nlist_id = "news.lantern.news"\n')
    assert load_config(path).newsletter.list_id == "news.lantern.news"


# -- the checks one by one ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("The Lantern <weekly@lantern.news>", ("The Lantern", "weekly@lantern.news")),
        ("weekly@lantern.news", ("", "weekly@lantern.news")),
        ('"Lee, Ann" <ann@lantern.news>', ("Lee, Ann", "ann@lantern.news")),
        ("Ліна Коваленко <lina@lantern.news>", ("Ліна Коваленко", "lina@lantern.news")),
        ("  weekly@lantern.news\n", ("", "weekly@lantern.news")),
    ],
)
def test_split_address(value: str, expected: tuple[str, str]) -> None:
    assert split_address(value, "newsletter.from") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not an address",
        "a@lantern.news, b@lantern.news",  # two addresses
        "Ann <a@lantern.news> b@lantern.news",
        "W\r\nBcc: victim@example.org <weekly@example.com>",  # a header injected through the name
        "Weekly <weekly@example.com\r\nBcc: victim@example.org>",
        "Ann <anné@lantern.news>",  # not ASCII
        "Ann\x00 <ann@lantern.news>",
    ],
)
def test_split_address_refuses(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        split_address(value, "newsletter.reply_to", "x.toml:3")
    assert caught.value.where == "x.toml:3"
    assert caught.value.message == f"newsletter.reply_to is not an email address: {value!r}"


def test_check_unsubscribe_url() -> None:
    assert check_unsubscribe_url(URL) == URL
    for url in ("http://lantern.news/u?t={token}", "https://lantern.news/unsubscribe", "HTTPS://x/{token}"):
        with pytest.raises(ConfigError) as caught:
            check_unsubscribe_url(url, "w")
        assert "https:// URL holding {token}" in (caught.value.hint or "")
    for url in (
        "https://lantern.news/un subscribe?t={token}",
        "https://lantern.news/café?t={token}",
        'https://lantern.news/"?t={token}',
        "https://lantern.news/<x>?t={token}",
        "https://lantern.news/u?t={token}\r\nBcc: victim@example.org",
    ):
        with pytest.raises(ConfigError) as caught:
            check_unsubscribe_url(url)
        assert "percent-encode" in (caught.value.hint or "")


def test_check_unsubscribe_mailto() -> None:
    assert check_unsubscribe_mailto("") == ""
    assert check_unsubscribe_mailto("  ") == ""
    assert check_unsubscribe_mailto("unsub@lantern.news") == "unsub@lantern.news"
    assert check_unsubscribe_mailto("mailto:unsub@lantern.news") == "unsub@lantern.news"
    assert check_unsubscribe_mailto(" MAILTO:unsub@lantern.news ") == "unsub@lantern.news"
    for value in (
        "Unsubscribe <unsub@lantern.news>",
        "unsub@lantern.news?subject=x",
        "mailto:unsub@lantern.news?subject=x",
        "unsub@lantern.news\r\nBcc: victim@example.org",
        "unsubscribe",
    ):
        with pytest.raises(ConfigError) as caught:
            check_unsubscribe_mailto(value, "w")
        assert str(caught.value) == (
            f"w: newsletter.unsubscribe_mailto is {value!r} (a bare address, like unsubscribe@example.com)"
        )


def test_check_list_id() -> None:
    assert check_list_id("") == ""
    assert check_list_id(" <weekly.lantern.news> ") == "weekly.lantern.news"
    for value in ("two words", "weekly.lantern.news\r\nBcc: victim@example.org", "x" * 256, "<>x@y"):
        with pytest.raises(ConfigError, match=r"newsletter\.list_id"):
            check_list_id(value)


# -- example settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("example.com", "example.com is a reserved example domain"),
        ("EXAMPLE.ORG.", "example.org is a reserved example domain"),
        ("example.net", "example.net is a reserved example domain"),
        ("lists.Example.com", "lists.example.com is under example.com, a reserved example domain"),
        ("mail.test", "mail.test is under .test, a reserved top-level domain"),
        ("a.b.invalid.", "a.b.invalid is under .invalid, a reserved top-level domain"),
        ("news.example", "news.example is under .example, a reserved top-level domain"),
        ("dev.LOCALHOST", "dev.localhost is under .localhost, a reserved top-level domain"),
        ("localhost", "localhost is under .localhost, a reserved top-level domain"),
        ("example.com.au", None),
        ("notexample.com", None),
        ("example.community", None),
        ("testing.org", None),
        ("lantern.news", None),
        ("test.lantern.news", None),
        ("", None),
    ],
)
def test_reserved_domain(name: str, why: str | None) -> None:
    assert reserved_domain(name) == why


def test_the_defaults_are_all_examples() -> None:
    assert example_settings(Config()) == [
        ExampleSetting(
            "newsletter.from", "Example Weekly <digest@example.com>", "the built-in example address"
        ),
        ExampleSetting(
            "newsletter.unsubscribe_url",
            "https://example.com/unsubscribe?token={token}",
            "the built-in example URL",
        ),
        ExampleSetting(
            "newsletter.postal_address", "1 Example Road, Singapore 000001", "the built-in example address"
        ),
    ]


def test_real_settings_have_no_examples() -> None:
    config = newsletter(
        reply_to="Editor <editor@lantern.news>",
        unsubscribe_mailto="mailto:unsubscribe@lantern.news",
        list_id="weekly.lantern.news",
    )
    validate(config)
    assert example_settings(config) == []


def test_empty_optional_settings_are_not_listed() -> None:
    assert example_settings(newsletter(reply_to="", unsubscribe_mailto="  ")) == []


@pytest.mark.parametrize(
    ("values", "key", "why"),
    [
        ({"sender": "Weekly <weekly@example.com>"}, "newsletter.from", "example.com is a reserved"),
        ({"sender": "weekly@news.Example.NET."}, "newsletter.from", "news.example.net is under example.net"),
        ({"reply_to": "Ed <ed@lantern.test>"}, "newsletter.reply_to", "lantern.test is under .test"),
        ({"unsubscribe_mailto": "MAILTO:u@x.invalid"}, "newsletter.unsubscribe_mailto", "x.invalid is"),
        (
            {"unsubscribe_url": "https://user@Example.org:8443/u?t={token}"},
            "newsletter.unsubscribe_url",
            "example.org is a reserved example domain",
        ),
        (
            {"unsubscribe_url": "https://lists.example./u?t={token}"},
            "newsletter.unsubscribe_url",
            "lists.example is under .example",
        ),
        ({"postal_address": "9 Example Street, Leeds"}, "newsletter.postal_address", "an example street"),
        ({"postal_address": "4 EXAMPLE ROAD"}, "newsletter.postal_address", "an example street"),
    ],
)
def test_each_example_setting_is_named(values: dict[str, str], key: str, why: str) -> None:
    config = newsletter(**values)
    validate(config)
    (found,) = example_settings(config)
    assert found.key == key and found.value == next(iter(values.values()))
    assert found.why.startswith(why)


def test_every_example_is_listed_at_once() -> None:
    config = newsletter(
        sender="digest@example.com",
        reply_to="editor@example.org",
        unsubscribe_mailto="u@example.net",
        unsubscribe_url="https://example.com/unsubscribe?token={token}",
        postal_address="1 Example Road, Singapore 000001",
    )
    found = example_settings(config)
    assert [s.key for s in found] == [
        "newsletter.from",
        "newsletter.reply_to",
        "newsletter.unsubscribe_url",
        "newsletter.unsubscribe_mailto",
        "newsletter.postal_address",
    ]
    assert [s.why for s in found] == [
        "example.com is a reserved example domain",  # not the built-in value: that has a name
        "example.org is a reserved example domain",
        "the built-in example URL",
        "example.net is a reserved example domain",
        "the built-in example address",
    ]


def test_an_example_setting_is_frozen() -> None:
    found = ExampleSetting("newsletter.from", "a@example.com", "example.com is a reserved example domain")
    with pytest.raises(AttributeError):
        found.key = "x"  # type: ignore[misc]


# -- the CLI ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lint", "render"])
def test_lint_and_render_refuse_a_bad_from_in_one_line(digest, write_draft, workspace: Path, command: str):
    draft = write_draft()
    (workspace / "digest.toml").write_text(
        '[newsletter]\ntitle = "Test Weekly"\nfrom = "not an address"\n', encoding="utf-8"
    )
    result = digest(command, str(draft)) if command == "render" else digest(command)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: {workspace / 'digest.toml'}:3: newsletter.from is not an email address: 'not an address'"
    )
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "value",
    [
        "The Lantern <weekly@lantern.news>",
        "weekly@lantern.news",
        '"Lee, Ann" <ann@lantern.news>',
        "lantern@lantern.news (The Lantern Weekly)",
        "Lantern Weekly: News <x@lantern.news>",
        "Ліна Коваленко <lina@lantern.news>",
        '"Ann \\"Nan\\" Lee" <ann@lantern.news>',
    ],
)
def test_addresses_split_as_email_utils_splits_them(value: str) -> None:
    # config splits the common forms itself (email.utils is slow to import); the rest it leaves
    # to email.utils. Either way, the result is email.utils' own.
    from email.utils import getaddresses

    (expected,) = getaddresses([value])
    assert split_address(value, "newsletter.from") == expected
