"""subscribers.csv: delimiters, encodings, bad rows by line, duplicates; the suppression list."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestcli.errors import DeliveryError, InputError, UsageError
from digestcli.state.suppressions import SuppressionList
from digestcli.subscribers import (
    column_name,
    load_subscribers,
    parse_subscribers,
)

ROOT = Path(__file__).resolve().parent.parent


def test_reads_header_columns_as_slot_fields():
    result = parse_subscribers(
        "Email,Name,City,First Name,2nd-choice\nann@example.com,Ann Lee,Oslo,Ann,tea\n"
    )
    assert result.columns == ("email", "name", "city", "first_name", "_2nd_choice")
    (reader,) = result.readers
    assert reader.email == "ann@example.com"
    assert reader.name == "Ann Lee"
    assert dict(reader.fields) == {
        "email": "ann@example.com",
        "name": "Ann Lee",
        "city": "Oslo",
        "first_name": "Ann",
        "_2nd_choice": "tea",
    }
    assert reader.line == 2
    assert result.skipped == ()


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_sniffs_the_delimiter(delimiter: str):
    text = (
        delimiter.join(["email", "name", "city"])
        + "\n"
        + delimiter.join(["bo@example.org", "Bo", "Rome"])
        + "\n"
    )
    (reader,) = parse_subscribers(text).readers
    assert (reader.email, reader.name, reader.fields["city"]) == ("bo@example.org", "Bo", "Rome")


def test_a_comma_inside_a_quoted_name_with_semicolons_elsewhere():
    text = 'email;name\nann@example.com;"Lee; Ann"\nbo@example.com;Bo, Jr.\n'
    readers = parse_subscribers(text).readers
    assert [r.name for r in readers] == ["Lee; Ann", "Bo, Jr."]


def test_utf8_with_bom_and_crlf(tmp_path: Path):
    path = tmp_path / "subscribers.csv"
    path.write_bytes("\ufeffemail,name\r\nyuna@example.net,김유나\r\nolga@example.net,Ольга\r\n".encode())
    result = load_subscribers(path)
    assert result.columns == ("email", "name")
    assert [r.name for r in result.readers] == ["김유나", "Ольга"]


def test_not_utf8_names_the_line(tmp_path: Path):
    path = tmp_path / "subscribers.csv"
    path.write_bytes("email,name\nann@example.com,Ann\nze@example.com,José\n".encode("latin-1"))
    with pytest.raises(InputError) as caught:
        load_subscribers(path)
    assert str(caught.value).startswith(f"{path}:3: not valid UTF-8")
    assert "UTF-8" in (caught.value.hint or "")


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="subscriber list not found"):
        load_subscribers(tmp_path / "nope.csv")


def test_no_email_column():
    with pytest.raises(InputError) as caught:
        parse_subscribers("\n\nname,address\nAnn,ann@example.com\n", "list.csv")
    assert caught.value.where == "list.csv:3"
    assert "no 'email' column" in caught.value.message
    assert "'address'" in caught.value.message


def test_bad_and_duplicate_rows_are_reported_by_line_and_skipped():
    text = (
        "email,name\n"
        "ann@example.com,Ann\n"  # 2
        "not-an-address,Nobody\n"  # 3
        "\n"  # 4: blank, ignored
        ",No Address\n"  # 5
        "ANN@Example.com,Ann again\n"  # 6: same reader, other case
        'bo@example.com,"Bo\nSecond Line"\n'  # 7-8: a quoted field over two lines is fine
        "cy@example,Cy\n"  # 9: no dot in the domain
        "dee@example.com,Dee,extra,fields\n"  # 10
        "josé@example.com,José\n"  # 11: needs SMTPUTF8
        "ed@example.com,Ed\n"  # 12
    )
    result = parse_subscribers(text)
    assert [r.email for r in result.readers] == ["ann@example.com", "bo@example.com", "ed@example.com"]
    assert result.readers[1].name == "Bo Second Line"  # line breaks never reach a field
    skipped = {row.line: row for row in result.skipped}
    assert sorted(skipped) == [3, 5, 6, 9, 10, 11]
    assert skipped[3].raw == "not-an-address,Nobody"
    assert "invalid address 'not-an-address'" in skipped[3].reason
    assert skipped[5].reason == "no email address"
    assert skipped[6].reason == "duplicate of line 2"
    assert "4 fields but the header has 2" in skipped[10].reason
    assert "invalid address" in skipped[11].reason
    assert result.readers[2].line == 12


def test_addresses_are_normalized():
    (reader,) = parse_subscribers("email\n  Ann.Lee@Example.COM \n").readers
    assert reader.email == "Ann.Lee@example.com"
    assert reader.key == "ann.lee@example.com"
    assert reader.name == ""


def test_an_unsubscribe_url_column_is_refused():
    with pytest.raises(InputError, match="filled in by digest"):
        parse_subscribers("email,Unsubscribe URL\nann@example.com,x\n")


def test_column_name():
    assert column_name(" Favourite Colour ") == "favourite_colour"
    assert column_name("E-mail") == "e_mail"
    assert column_name("Straße") == "stra_e"


def test_the_sample_list_is_clean():
    result = load_subscribers(ROOT / "subscribers.csv")
    assert result.skipped == ()
    assert len(result.readers) >= 20
    assert "city" in result.columns
    assert any(not reader.name.isascii() for reader in result.readers)


def test_suppression_list(tmp_path: Path):
    state = tmp_path / ".digest"
    suppressions = SuppressionList(state)
    assert suppressions.entries() == []
    assert not state.exists()  # reading makes nothing
    first = suppressions.add("Ann@Example.com")
    assert (first.address, first.reason) == ("ann@example.com", "unsubscribed")
    again = suppressions.add("ann@example.com", "bounced")
    assert again.reason == "unsubscribed"  # the first reason stands
    suppressions.add("bo@example.com", "complained", note="via feedback loop")
    assert [(e.address, e.reason) for e in SuppressionList(state).entries()] == [
        ("ann@example.com", "unsubscribed"),
        ("bo@example.com", "complained"),
    ]
    assert suppressions.reasons() == {"ann@example.com": "unsubscribed", "bo@example.com": "complained"}
    assert suppressions.remove("BO@example.com")
    assert not suppressions.remove("bo@example.com")
    with pytest.raises(UsageError, match="not an email address"):
        suppressions.add("nobody")
    with pytest.raises(UsageError, match="unknown suppression reason"):
        suppressions.add("cy@example.com", "annoyed")


def test_sloppy_quotes_on_one_line_still_read_as_before():
    result = parse_subscribers('email,name\nann@example.com,"Ann "the" Lee"\nbo@example.com,Bo "Jr\n')
    assert [r.name for r in result.readers] == ['Ann the" Lee"', 'Bo "Jr']
    assert result.skipped == ()


def test_an_unclosed_quote_to_the_end_of_the_file_is_skipped_at_its_line_and_the_rest_kept():
    text = 'email,name\nann@example.com,Ann\nbo@example.com,"Bo Lee\ncy@example.com,Cy\ndee@example.com,Dee\n'
    result = parse_subscribers(text, "list.csv")
    assert [r.email for r in result.readers] == ["ann@example.com", "cy@example.com", "dee@example.com"]
    assert [r.name for r in result.readers] == ["Ann", "Cy", "Dee"]
    assert [r.line for r in result.readers] == [2, 4, 5]
    (row,) = result.skipped
    assert (row.line, row.raw) == (3, 'bo@example.com,"Bo Lee')
    assert "never closed" in row.reason


def test_an_unclosed_quote_closed_by_a_later_row_does_not_swallow_the_rows_between():
    text = (
        "email,name\n"
        'ann@example.com,"Ann Lee\n'  # 2: never closed on its line
        "bo@example.com,Bo\n"  # 3
        'cy@example.com,"Cy, Jr."\n'  # 4: its opening quote would close line 2's field
        "dee@example.com,Dee\n"  # 5
    )
    result = parse_subscribers(text)
    assert [(r.email, r.name, r.line) for r in result.readers] == [
        ("bo@example.com", "Bo", 3),
        ("cy@example.com", "Cy, Jr.", 4),
        ("dee@example.com", "Dee", 5),
    ]
    (row,) = result.skipped
    assert row.line == 2 and "runs on into the row on line 3" in row.reason


def test_an_unclosed_quote_past_the_csv_field_limit_is_skipped_too():
    rows = "".join(f"reader{n}@example.com,Reader {n}\n" for n in range(6000))  # > 131,072 characters
    result = parse_subscribers(f'email,name\nann@example.com,"Ann\n{rows}')
    assert len(result.readers) == 6000
    (row,) = result.skipped
    assert row.line == 2 and "quote opened on this line is not closed within 131,072" in row.reason


def test_an_unclosed_quote_in_the_header_is_an_error_at_its_line():
    with pytest.raises(InputError) as caught:
        parse_subscribers('email,"name\nann@example.com,Ann\n', "list.csv")
    assert caught.value.where == "list.csv:1" and "never closed" in caught.value.message


def test_a_damaged_or_locked_suppression_list_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import sqlite3

    state = tmp_path / ".digest"
    state.mkdir()
    (state / "suppressions.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(InputError) as caught:
        SuppressionList(state).entries()
    assert caught.value.where == str(state / "suppressions.sqlite3")
    assert "not a digest suppression list" in caught.value.message and "move" in (caught.value.hint or "")

    (state / "suppressions.sqlite3").unlink()
    SuppressionList(state).add("ann@example.com")
    holder = sqlite3.connect(state / "suppressions.sqlite3")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        monkeypatch.setattr(SuppressionList, "busy_timeout", 0.05)
        with pytest.raises(DeliveryError, match="locked") as caught_lock:
            SuppressionList(state).add("bo@example.com")
        assert "close it and try again" in (caught_lock.value.hint or "")
    finally:
        holder.rollback()
        holder.close()


def test_a_quoted_note_with_an_address_on_its_own_line_is_one_cell() -> None:
    text = 'email,name,notes\na@x.com,Ann,"Referred by:\nbob@y.com\nmet at the conference"\nc@x.com,Cy,\n'
    found = parse_subscribers(text)
    assert [(r.email, r.name) for r in found.readers] == [("a@x.com", "Ann"), ("c@x.com", "Cy")]
    assert found.readers[0].fields["notes"] == "Referred by: bob@y.com met at the conference"
    assert found.skipped == ()


NAME = "N" * 200_000  # past csv's field limit of 131,072 characters


@pytest.mark.parametrize("cell", [f'"{NAME}"', NAME, f'"Lee, {NAME}"'])
def test_a_field_past_the_csv_limit_with_balanced_quotes_says_so(cell: str):
    big = f"big@example.com,{cell}"
    result = parse_subscribers(f"email,name\nann@example.com,Ann\n{big}\nbo@example.com,Bo\n", "list.csv")
    assert [(r.email, r.line) for r in result.readers] == [("ann@example.com", 2), ("bo@example.com", 4)]
    (row,) = result.skipped
    assert (row.line, row.raw) == (3, big)
    assert row.reason == f"a field longer than 131,072 characters (this line is {len(big):,} characters)"


def test_a_quote_left_open_on_a_line_past_the_csv_limit_is_still_a_quote():
    big = f'big@example.com,"{NAME}'
    result = parse_subscribers(f"email,name\n{big}\r\nbo@example.com,Bo\r\n")
    assert [(r.email, r.line) for r in result.readers] == [("bo@example.com", 3)]
    (row,) = result.skipped
    assert (row.line, row.raw) == (2, big)
    assert "quote opened on this line is not closed" in row.reason and "field longer" not in row.reason


def test_every_unreadable_row_is_kept_in_skipped():
    rows = []
    for n in range(60):
        rows.append(f'big{n}@example.com,"{NAME}"' if n % 2 else f'big{n}@example.com,"{NAME}')
        rows.append(f"reader{n}@example.com,Reader {n}")
    result = parse_subscribers("email,name\n" + "\n".join(rows) + "\n")
    assert [r.email for r in result.readers] == [f"reader{n}@example.com" for n in range(60)]
    assert [row.line for row in result.skipped] == list(range(2, 122, 2))
    reasons = [row.reason.split(" ", 2)[1] for row in result.skipped]
    assert reasons == ["quote", "field"] * 30
