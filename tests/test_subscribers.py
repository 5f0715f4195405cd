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
    assert suppressions.undo("BO@example.com") is not None  # any case: the key is lowercase
    assert suppressions.undo("bo@example.com") is None
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


# -- the quick check, the list read as a stream, and the address memory ---------------------------

LOCAL_PARTS = [
    "a", "ann", "Ann", "ANN", "ann.lee", "Ann.Lee", "ann..lee", ".ann", "ann.", "ann+news", "ann-lee",
    "ann--lee", "o'neil", "ann_lee", "a/b", "a=b", "a?b", "a^b", "a`b", "{ann}", "a|b", "a~b", "a!b",
    "a#b", "a$b", "a%b", "a&b", "a*b", '"ann lee"', '"ann"', "ann lee", "änn", "ann@lee", "info",
    "Info", "INFO", "postmaster", "PostMaster", "www", "Www", "x" * 64, "x" * 65, "", "a,b", "a;b",
    "a:b", "a(b)", "a<b", "a>b", "a[b]", "a\\b", "1", "0.0", "news", "NEWS", "ftp.x",
]  # fmt: skip
DOMAINS = [
    "example.com", "EXAMPLE.COM", "Example.Com", "ex-ample.com", "ex--ample.com", "ab--cd.com",
    "xn--bcher-kva.example", "XN--BCHER-KVA.example", "-example.com", "example-.com", "example..com",
    ".example.com", "example.com.", "example", "localhost", "a.localhost", "a.local", "a.LOCAL",
    "a.test", "a.TEST", "a.invalid", "a.onion", "a.arpa", "in-addr.arpa", "a.example", "a.b.c.d.com",
    "123.com", "1.2.3.4", "a.123", "a.c0m", "a.c-m", "a.co-m", "[1.2.3.4]", "[IPv6:::1]", "bücher.example",
    "ex_ample.com", "a." + "b" * 63 + ".com", "a." + "b" * 64 + ".com", "c" * 60 + ".com",
    ("d" * 50 + ".") * 4 + "com", "example.co.uk", "a-b.c-d.com", "sub.EXAMPLE.org", "exa mple.com",
    "exam\u200bple.com", "ｅxample.com", "example。com", "e.x", "e.xy", "0x.com", "test.com", "testx",
]  # fmt: skip


def tricky_addresses() -> list[str]:
    found = [f"{local}@{domain}" for local in LOCAL_PARTS for domain in DOMAINS]
    found += ["a" * 64 + "@" + ("b" * 62 + ".") * 3 + "co", "a" * 64 + "@" + ("b" * 62 + ".") * 3 + "com"]
    found += ["noatsign", "@example.com", "ann@", "ann@@example.com", "<ann@example.com>", "Ann <ann@x.com>"]
    return found


def test_the_quick_check_gives_exactly_what_email_validator_gives():
    from email_validator import EmailNotValidError, validate_email

    from digestcli.subscribers import _PLAIN_LOWERCASE, _RESERVED_TLDS, normalize_address, plain_address

    settled = 0
    for address in tricky_addresses():
        try:
            result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
            expected: str | None = result.ascii_email or result.normalized
        except EmailNotValidError:
            expected = None
        quick = plain_address(address)
        if quick is not None:
            settled += 1
            assert quick == expected, address  # never accepts what the validator refuses or changes
        if _PLAIN_LOWERCASE.fullmatch(address) and not address.endswith(_RESERVED_TLDS):
            assert expected == address, address  # the per-run fast path: taken as it stands
        # Both ways to the answer agree: the quick check, or the validator behind it.
        if expected is None:
            with pytest.raises(ValueError):
                normalize_address(address)
        else:
            assert normalize_address(address) == expected, address
    assert settled > 500  # the common shapes are settled without the validator


def test_plain_addresses_are_settled_by_the_quick_check_alone():
    from digestcli.subscribers import plain_address

    assert plain_address("ann@example.com") == "ann@example.com"
    assert plain_address("Ann.Lee+news@Example.COM") == "Ann.Lee+news@example.com"
    assert plain_address("o'neil@mail.example.co.uk") == "o'neil@mail.example.co.uk"
    for unusual in ("ann@bücher.example", "INFO@example.com", "ann@xn--bcher-kva.example", "ann@a.test"):
        assert plain_address(unusual) is None  # left to email-validator


def test_a_long_list_keeps_every_line_across_runs_blank_lines_and_a_note_over_lines():
    rows = [f"r{n}@example.com,Reader {n}" for n in range(5000)]
    rows[2999] = 'r2999@example.com,"Reader\n2999"'  # a note over two lines, mid-run
    rows[1500] = ""  # a blank line
    rows[4000] = "R10@EXAMPLE.COM,Again"  # a duplicate, in capitals
    result = parse_subscribers("email,name\n" + "\n".join(rows) + "\n")
    by_email = {r.email: r for r in result.readers}
    assert len(result.readers) == 4998 and result.count == 4998
    assert by_email["r1499@example.com"].line == 1501
    assert by_email["r1501@example.com"].line == 1503
    assert by_email["r2999@example.com"].name == "Reader 2999" and by_email["r2999@example.com"].line == 3001
    assert by_email["r3000@example.com"].line == 3003  # the note took two lines
    (duplicate,) = result.skipped
    assert (duplicate.line, duplicate.raw, duplicate.reason) == (
        4003,
        "R10@EXAMPLE.COM,Again",
        "duplicate of line 12",
    )


def test_a_duplicate_is_quoted_as_it_stands_even_over_several_lines():
    text = 'email,notes\nann@example.com,one\nANN@example.com,"two\nlines"\nbo@example.com,three\n'
    result = parse_subscribers(text)
    assert [r.email for r in result.readers] == ["ann@example.com", "bo@example.com"]
    (row,) = result.skipped
    assert (row.line, row.raw, row.reason) == (3, 'ANN@example.com,"two\nlines"', "duplicate of line 2")
    assert (result.skipped_count, result.duplicates) == (1, 1)


def test_readers_are_read_from_a_copy_so_an_edit_mid_send_changes_nothing(tmp_path: Path):
    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\nann@example.com,Ann\nbo@example.com,Bo\n", encoding="utf-8")
    result = load_subscribers(path)
    path.write_text("email,name\nzed@example.com,Zed\n", encoding="utf-8")
    assert [(r.email, r.name, r.line) for r in result.all] == [
        ("ann@example.com", "Ann", 2),
        ("bo@example.com", "Bo", 3),
    ]
    assert result.find("bo@example.com") is not None and result.find("zed@example.com") is None


def test_the_scratch_copy_goes_with_the_list(tmp_path: Path):
    result = parse_subscribers("email\nann@example.com\n")
    folder = result.database_path.parent
    assert folder.exists() and (folder / "list.csv").exists()
    result.close()
    assert not folder.exists()


def test_email_validator_is_asked_once_per_unusual_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import digestcli.subscribers as subscribers

    asked: list[str] = []
    validate = subscribers._validate

    def counting(address: str) -> str:
        asked.append(address)
        return validate(address)

    monkeypatch.setattr(subscribers, "_validate", counting)
    path = tmp_path / "subscribers.csv"
    rows = "".join(f"r{n}@example.com\n" for n in range(100))
    path.write_text(f"email\n{rows}ann@bücher.example\nINFO@example.com\nbad@example\n", encoding="utf-8")
    state = tmp_path / ".digest"

    first = load_subscribers(path, state=state)
    assert sorted(asked) == ["INFO@example.com", "ann@bücher.example", "bad@example"]
    assert not state.exists()  # reading remembers nothing: a dry run leaves no trace
    assert first.remember(state) == 3

    asked.clear()
    again = load_subscribers(path, state=state)
    assert asked == []  # every answer came from the memory
    assert [r.email for r in again.readers][-2:] == ["ann@xn--bcher-kva.example", "info@example.com"]
    (bad,) = again.skipped
    assert bad.line == 104 and "It should have a period" in bad.reason

    path.write_text(f"email\n{rows}cy@bücher.example\n", encoding="utf-8")
    load_subscribers(path, state=state)
    assert asked == ["cy@bücher.example"]  # only what it has not seen


def test_a_damaged_address_memory_is_no_memory(tmp_path: Path):
    state = tmp_path / ".digest"
    state.mkdir()
    (state / "addresses.sqlite3").write_bytes(b"not a database" * 100)
    result = parse_subscribers("email\nann@bücher.example\n")
    path = tmp_path / "subscribers.csv"
    path.write_text("email\nann@bücher.example\n", encoding="utf-8")
    assert [r.email for r in load_subscribers(path, state=state).readers] == ["ann@xn--bcher-kva.example"]
    assert [r.email for r in result.readers] == ["ann@xn--bcher-kva.example"]
