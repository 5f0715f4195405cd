"""The list as other services export it: their address and name columns recognised, the readers
they mark as gone left out and counted, an encoding that is not UTF-8 refused with the fix."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest

from digestcli.errors import InputError
from digestcli.subscribers import load_subscribers, parse_subscribers

LISTS = Path(__file__).resolve().parent / "fixtures" / "lists"


def read(name: str, **options: object) -> tuple[list[tuple[str, str]], dict[str, int]]:
    found = load_subscribers(LISTS / name, **options)  # type: ignore[arg-type]
    return [(reader.email, reader.name) for reader in found.readers], found.gone


def test_mailchimp_email_address_and_first_and_last_name() -> None:
    readers, gone = read("mailchimp-subscribed.csv")
    assert readers == [
        ("marta.kovac@postbox.example.org", "Marta Kovač"),
        ("Tom.Reyes@example.net", "Tom Reyes"),
        ("li.wen@mail.example.com", "Li"),
        ("samir@example.org", "Haddad"),
    ]
    assert gone == {}
    found = load_subscribers(LISTS / "mailchimp-subscribed.csv")
    assert "email_address" in found.columns and "first_name" in found.columns
    marta = found.readers[0]
    assert (marta.fields["first_name"], marta.fields["email"]) == ("Marta", "marta.kovac@postbox.example.org")


@pytest.mark.parametrize(
    ("name", "why"),
    [("mailchimp-unsubscribed.csv", {"unsubscribed": 2}), ("mailchimp-cleaned.csv", {"cleaned": 1})],
)
def test_mailchimp_unsubscribed_and_cleaned_files_mail_no_one(name: str, why: dict[str, int]) -> None:
    assert read(name) == ([], why)


def test_substack_email_disabled() -> None:
    assert read("substack.csv") == (
        [("ada.byrne@example.com", ""), ("kofi.mensah@example.org", "")],
        {"unsubscribed": 1},
    )


def test_buttondown_subscriber_type() -> None:
    assert read("buttondown.csv") == (
        [("jun.park@example.com", ""), ("eve.sato@example.org", "")],
        {"unsubscribed": 2},  # unsubscribed, and removed
    )


def test_ghost_subscribed_to_emails() -> None:
    assert read("ghost.csv") == (
        [("amara.diallo@example.com", "Amara Diallo"), ("chen.yu@example.net", "陈宇")],
        {"unsubscribed": 1},
    )


def test_listmonk_status() -> None:
    assert read("listmonk.csv") == ([("dana.ortiz@example.com", "Dana Ortiz")], {"blocklisted": 1})


def test_a_blog_member_export_user_email_and_display_name() -> None:
    assert read("wordpress-members.csv") == (
        [("hannah.bell@example.com", "Hannah B."), ("otto@example.org", "Otto")],
        {},
    )


@pytest.mark.parametrize("header", ["E-mail:", "Email  Address", " email_address ", "E-MAIL"])
def test_a_known_header_is_found_whatever_its_punctuation(header: str) -> None:
    readers = parse_subscribers(f"{header},Name\nann@example.org,Ann\n")
    assert [(r.email, r.name) for r in readers.readers] == [("ann@example.org", "Ann")]


def test_headers_digest_does_not_know_are_named_in_the_settings() -> None:
    with pytest.raises(InputError) as caught:
        load_subscribers(LISTS / "own-headers.csv")
    assert "no 'email' column" in caught.value.message and "[delivery] columns" in (caught.value.hint or "")
    columns = {"email": "Courriel", "first_name": "Prénom", "last_name": "Nom", "subscribed": "Abonné"}
    assert read("own-headers.csv", columns=columns) == (
        [("luc.martin@example.fr", "Luc Martin")],
        {"unsubscribed": 1},
    )
    with pytest.raises(InputError) as missing:
        load_subscribers(LISTS / "own-headers.csv", columns={"email": "E-mail"})
    assert missing.value.where == f"{LISTS / 'own-headers.csv'}:1"
    assert "no column 'E-mail'" in missing.value.message


def test_an_unsubscribe_on_one_row_holds_for_the_same_address_on_another() -> None:
    text = (
        "Email Address,First Name,UNSUB_TIME\n"
        "ann@example.com,Ann,\n"
        "bo@example.com,Bo,\n"
        "ANN@example.com,Ann,2025-05-20 08:00:00\n"
    )
    found = parse_subscribers(text)
    assert [reader.email for reader in found.readers] == ["bo@example.com"]
    assert found.gone == {"unsubscribed": 2} and found.skipped == ()


def test_excel_cp1252_is_refused_with_the_fix_never_guessed(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_subscribers(LISTS / "excel-cp1252.csv")
    assert str(caught.value).startswith(f"{LISTS / 'excel-cp1252.csv'}:2: not valid UTF-8 (byte 0xe9)")
    hint = caught.value.hint or ""
    assert 'save it as "CSV UTF-8"' in hint and '[delivery] encoding = "cp1252"' in hint
    readers, gone = read("excel-cp1252.csv", encoding="cp1252")
    assert gone == {} and readers == [
        ("jose.garcia@example.com", "José García"),
        ("zoe@example.org", "Zoë Müller"),
        ("francois@example.net", "François Lefèvre"),
    ]
    # A byte that is wrong in the named encoding too is refused at its own line.
    broken = tmp_path / "list.csv"
    shutil.copy(LISTS / "excel-cp1252.csv", broken)
    broken.write_bytes(broken.read_bytes() + b"x@example.com;\x81;y\r\n")
    with pytest.raises(InputError) as again:
        load_subscribers(broken, encoding="cp1252")
    assert again.value.where == f"{broken}:5" and "not valid cp1252 (byte 0x81)" in again.value.message


def test_excel_csv_utf8_with_its_byte_order_mark_is_fine() -> None:
    assert read("excel-utf8-bom.csv") == (
        [("jose.garcia@example.com", "José García"), ("zoe@example.org", "Zoë Müller")],
        {},
    )


def test_excel_unicode_text_is_utf16_and_said_so() -> None:
    with pytest.raises(InputError) as caught:
        load_subscribers(LISTS / "excel-unicode-text.txt")
    assert 'encoding = "utf-16"' in (caught.value.hint or "")
    assert read("excel-unicode-text.txt", encoding="utf-16") == ([("jose.garcia@example.com", "José")], {})


def peak_while_reading(path: Path) -> int:
    """Python's own peak allocation while a list is read and its readers gone through."""
    tracemalloc.start()
    try:
        found = load_subscribers(path)
        assert sum(1 for _ in found.all) == found.count > 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", ["plain", "mailchimp"])
def test_reading_a_list_takes_no_more_memory_for_five_times_the_readers(shape: str, tmp_path: Path) -> None:
    def write(count: int) -> Path:
        path = tmp_path / f"{count}.csv"
        with path.open("w", encoding="utf-8") as out:
            if shape == "plain":
                out.write("email,name\n")
                out.writelines(f"r{n}@example.com,Reader {n}\n" for n in range(count))
            else:
                out.write("Email Address,First Name,Last Name,UNSUB_TIME\n")
                out.writelines(
                    f"r{n}@example.com,R,{n},{'2025-01-01' if n % 7 == 0 else ''}\n" for n in range(count)
                )
        return path

    # Both past the few thousand rows written down at a time, so that only growth with the list shows.
    small, large = peak_while_reading(write(8_000)), peak_while_reading(write(40_000))
    assert large < small * 1.2, (small, large)


def test_the_send_screen_counts_who_an_export_leaves_out(digest, write_draft, workspace: Path) -> None:
    shutil.copy(LISTS / "buttondown.csv", workspace / "subscribers.csv")
    result = digest("send", str(write_draft()), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "List       2 readers in subscribers.csv (2 left out as the list marks them: 2 unsubscribed)" in (
        result.stdout
    )
    assert "Sends      2 messages now" in result.stdout
    assert not (workspace / ".digest" / "suppressions.sqlite3").exists()  # the export's record, not ours


def test_an_excel_list_is_refused_then_read_with_its_encoding_named(
    digest, write_draft, workspace: Path
) -> None:
    shutil.copy(LISTS / "excel-cp1252.csv", workspace / "subscribers.csv")
    draft = write_draft()
    refused = digest("send", str(draft), "--dry-run")
    assert refused.exit_code == 2
    assert "subscribers.csv:2: not valid UTF-8 (byte 0xe9)" in refused.stderr
    assert 'save it as "CSV UTF-8"' in refused.stderr and "Traceback" not in refused.stderr
    settings = workspace / "digest.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8") + '[delivery]\nencoding = "cp1252"\n', encoding="utf-8"
    )
    read = digest("send", str(draft), "--dry-run")
    assert read.exit_code == 0, read.stderr
    assert "List       3 readers in subscribers.csv\n" in read.stdout


def test_columns_in_the_settings_are_checked_with_their_line(digest, write_draft, workspace: Path) -> None:
    shutil.copy(LISTS / "own-headers.csv", workspace / "subscribers.csv")
    settings = workspace / "digest.toml"
    base = settings.read_text(encoding="utf-8")
    settings.write_text(base + '\n[delivery]\ncolumns = { mail = "Courriel" }\n', encoding="utf-8")
    wrong = digest("send", str(write_draft()), "--dry-run")
    assert wrong.exit_code == 2
    assert f"{settings}:5: unknown part 'delivery.columns.mail' (did you mean 'email'?)" in wrong.stderr
    settings.write_text(
        base + '\n[delivery]\ncolumns = { email = "Courriel", name = "Prénom", subscribed = "Abonné" }\n',
        encoding="utf-8",
    )
    right = digest("send", str(write_draft()), "--dry-run")
    assert right.exit_code == 0, right.stderr
    assert "1 reader in subscribers.csv (1 left out as the list marks them: 1 unsubscribed)" in right.stdout
