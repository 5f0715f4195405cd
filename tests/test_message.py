"""Personalized messages: MIME structure, headers, encodings, escaping, tokens, the secret."""

from __future__ import annotations

import base64
import os
import quopri
import re
import stat
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from smtp_server import Received, make_issue

from digestcli.errors import ConfigError, InputError
from digestcli.message import (
    Masthead,
    Personalizer,
    address_for_token,
    header,
    load_secret,
    make_token,
    quoted_printable,
    read_secret,
    unsubscribe_address,
    verify_token,
)
from digestcli.message.mime import MAX_HEADER_VALUE, list_unsubscribe
from digestcli.render import RenderedIssue
from digestcli.state.suppressions import SuppressionList
from digestcli.subscribers import parse_subscribers

SECRET = b"test secret"
MASTHEAD = Masthead(
    sender="The Test Weekly <weekly@example.com>",
    unsubscribe_url="https://example.com/unsubscribe?token={token}",
    title="The Test Weekly",
    reply_to="Editor <editor@example.com>",
    unsubscribe_mailto="unsubscribe@example.com",
)


def reader(csv_row: str, header: str = "email,name"):
    (one,) = parse_subscribers(f"{header}\n{csv_row}\n").readers
    return one


def build(issue: RenderedIssue, row: str, header: str = "email,name", **options):
    readers = parse_subscribers(f"{header}\n{row}\n")
    personalizer = Personalizer(issue, MASTHEAD, SECRET, columns=readers.columns, **options)
    message = personalizer.message(readers.readers[0])
    return personalizer, message, Received("", [message.recipient], message.data).parsed()


def test_headers_and_parts():
    personalizer, message, parsed = build(make_issue(), "ann@example.com,Ann Lee")
    assert message.recipient == "ann@example.com"
    assert parsed["From"] == "The Test Weekly <weekly@example.com>"
    assert parsed["To"] == "Ann Lee <ann@example.com>"
    assert parsed["Reply-To"] == "Editor <editor@example.com>"
    assert parsed["Subject"] == "The Test Weekly #7: three stories"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime is not None
    assert parsed["Message-ID"].endswith("@example.com>")
    assert parsed["List-Id"] == "The Test Weekly <weekly.example.com>"
    url = personalizer.unsubscribe_url("ann@example.com")
    token = url.rpartition("=")[2]
    assert (
        parsed["List-Unsubscribe"]
        == f"<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20{token}>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.defects == []
    assert all(part.get_content_charset() == "utf-8" for part in parsed.iter_parts())


def test_parts_decode_to_the_rendered_issue_with_the_slots_filled():
    issue = make_issue()
    personalizer, _, parsed = build(issue, "ann@example.com,Ann & Co")
    url = personalizer.unsubscribe_url("ann@example.com")
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = parsed.get_body(("html",)).get_content().replace("\r\n", "\n")
    expect_text = issue.text.replace("{{ reader.name }}", "Ann & Co").replace(
        "{{ reader.unsubscribe_url }}", url
    )
    expect_html = (
        issue.html.replace("{{ reader.name }}", "Ann &amp; Co")
        .replace("{{ reader.unsubscribe_url }}", url.replace("&", "&amp;"))
        .replace("{{ reader.email }}", "ann@example.com")
    )
    assert text == expect_text
    assert html == expect_html


def test_script_in_a_name_is_escaped_in_html_and_plain_in_text():
    _, _, parsed = build(make_issue(), 'evil@example.com,"<script>alert(1)</script>"')
    html = parsed.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "Hello &lt;script&gt;alert(1)&lt;/script&gt;," in html
    assert "Hello <script>alert(1)</script>," in parsed.get_body(("plain",)).get_content()


def test_line_breaks_in_fields_never_reach_a_header():
    issue = make_issue(subject="News for {{ reader.name }} in {{ reader.city }}")
    row = 'ann@example.com,"Ann\r\nBcc: victim@example.org","Oslo\nX-Injected: 1"'
    personalizer = Personalizer(issue, MASTHEAD, SECRET, columns=["email", "name", "city"])
    one = reader(row, "email,name,city")
    # Even a reader that skipped the CSV's cleaning (another source) cannot inject a header.
    raw = type(one)(
        one.email, "Ann\r\nBcc: victim@example.org", {**one.fields, "city": "Oslo\nX-Injected: 1"}, 2
    )
    for candidate in (one, raw):
        data = personalizer.message(candidate).data
        parsed = Received("", [], data).parsed()
        assert parsed["Bcc"] is None and parsed["X-Injected"] is None
        assert parsed["To"] == '"Ann Bcc: victim@example.org" <ann@example.com>'
        assert parsed["Subject"] == "News for Ann Bcc: victim@example.org in Oslo X-Injected: 1"
        header_block = data.partition(b"\r\n\r\n")[0]
        assert all(line[:1] in b" \t" or b": " in line for line in header_block.split(b"\r\n"))


def test_non_ascii_name_and_subject_are_encoded_words():
    issue = make_issue(subject="Ежедневник #7 — {{ reader.name }}, 안녕하세요")
    _, message, parsed = build(issue, "olga@example.com,Ольга Соколова")
    header_block = message.data.partition(b"\r\n\r\n")[0]
    assert header_block.isascii()
    assert b"=?utf-8?" in header_block
    assert parsed["To"].addresses[0].display_name == "Ольга Соколова"
    assert parsed["To"].addresses[0].addr_spec == "olga@example.com"
    assert parsed["Subject"] == "Ежедневник #7 — Ольга Соколова, 안녕하세요"
    assert "Hello Ольга Соколова," in parsed.get_body(("plain",)).get_content()


def test_test_prefix_and_own_message_id():
    personalizer, _, parsed = build(make_issue(), "ann@example.com,Ann", subject_prefix="[TEST] ")
    assert parsed["Subject"] == "[TEST] The Test Weekly #7: three stories"
    again = personalizer.message(reader("ann@example.com,Ann"), message_id="<x@example.com>")
    assert Received("", [], again.data).parsed()["Message-ID"] == "<x@example.com>"


def test_message_id_is_stable_per_issue_and_reader():
    issue = make_issue()
    _, _, first = build(issue, "ann@example.com,Ann")
    _, _, second = build(issue, "ANN@example.com,Ann")
    _, _, other = build(issue, "bo@example.com,Bo")
    assert first["Message-ID"] == second["Message-ID"] != other["Message-ID"]


def test_lines_are_short_crlf_and_never_start_with_a_dot():
    issue = RenderedIssue(
        "x",
        "t",
        "s",
        "p",
        ".starts with a dot {{ reader.name }}\n" + "x" * 300 + "=é" * 80 + "\n. \n{{ reader.name }}.tail  \n",
        "." * 200 + "\n{{ reader.name }}\n",
    )
    _, message, parsed = build(
        issue, 'ann@example.com,".Dotty Name that is quite long, longer than a line' + "x" * 80 + '"'
    )
    # (Message.transparent is gone: the SMTP session always dot-stuffs now; the body still never
    # starts a line with a dot, as asserted below.)
    body = message.data.partition(b"\r\n\r\n")[2]
    assert b"\n" not in body.replace(b"\r\n", b"")
    lines = body.split(b"\r\n")
    assert max(len(line) for line in lines) <= 76
    assert not any(line.startswith(b".") for line in lines)
    name = ".Dotty Name that is quite long, longer than a line" + "x" * 80
    html = parsed.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == issue.html.replace("{{ reader.name }}", name)


@pytest.mark.parametrize(
    "text",
    ["", "plain", "trailing space \nand tab\t\n", "é" * 100, "=" * 90, "a\r\nb\rc\n", "x" * 74 + "=\n"],
)
def test_quoted_printable_round_trips(text: str):
    encoded = quoted_printable(text)
    assert all(len(line) <= 76 for line in encoded.split("\r\n"))
    expected = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode()
    assert quopri.decodestring(encoded.encode()) == expected


def test_a_slot_without_a_column_is_an_error_before_sending():
    issue = make_issue(subject="Weather in {{ reader.city }} for {{ reader.zodiac }}")
    with pytest.raises(InputError) as caught:
        Personalizer(issue, MASTHEAD, SECRET, columns=["email", "name"], where="subscribers.csv")
    assert caught.value.where == "subscribers.csv"
    assert "{{ reader.city }}, {{ reader.zodiac }}" in caught.value.message


def test_unsubscribe_url_must_be_https_with_a_token():
    for url in ("http://example.com/u?t={token}", "https://example.com/unsubscribe"):
        masthead = Masthead(sender="a@example.com", unsubscribe_url=url)
        with pytest.raises(ConfigError, match="unsubscribe_url"):
            Personalizer(make_issue(), masthead, SECRET)


def test_derived_list_id_and_bare_sender():
    masthead = Masthead(sender="news@lists.example.org", unsubscribe_url="https://example.org/u/{token}")
    message = Personalizer(make_issue(), masthead, SECRET).message(reader("ann@example.com,Ann"))
    parsed = Received("", [], message.data).parsed()
    assert parsed["From"] == "news@lists.example.org"
    assert parsed["List-Id"] == "<news.lists.example.org>"
    assert parsed["Reply-To"] is None
    assert parsed["List-Unsubscribe"].startswith("<https://example.org/u/")


# Made by the first form of make_token (before tokens were encrypted) with SECRET; such links are in
# mail already sent, and readers use them for months.
OLD_TOKEN = "YW5uQGV4YW1wbGUuY29t.0fi76WsfokmDLiEFPuHhAQ"  # ann@example.com
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_tokens_verify_only_with_their_secret():
    token = make_token("Ann@Example.com", SECRET)
    assert verify_token(token, SECRET) == "ann@example.com"
    assert verify_token(token, b"another secret") is None
    assert make_token("ann@example.com", b"another secret") != token  # each workspace its own
    assert make_token("ann@example.com", SECRET) == token  # the same link in every issue
    assert verify_token(f"  {token}\n", SECRET) == "ann@example.com"
    for garbage in (
        "",
        "abc",
        "v2.",
        "v2.abc",
        "v2.!!!",
        "!!!.???",
        "Zm9v.YmFy",
        token + "=",
        "v3" + token[2:],
    ):
        assert verify_token(garbage, SECRET) is None, garbage


def _decodings(text: str) -> list[bytes]:
    """``text`` base64url-decoded from each of its first four characters: every alignment."""
    found = []
    for start in range(4):
        part = text[start:]
        part = part[: len(part) - len(part) % 4]
        found.append(base64.urlsafe_b64decode(part))
    return found


@pytest.mark.parametrize("address", ["ann@example.com", "Ann.Lee+news@Mail.Example.org", "olga@x.io"])
def test_a_token_shows_no_address_not_even_decoded(address: str):
    token = make_token(address, SECRET)
    assert token.startswith("v2.") and re.fullmatch(r"[A-Za-z0-9._-]+", token)  # URL-safe as it is
    # Neither the address nor any of its words (but the short top-level domain), in any case.
    words = {address.lower(), *(w for w in re.split(r"[@.+]", address.lower()) if len(w) > 3)}
    seen = [token.lower().encode(), *(raw.lower() for raw in _decodings(token[len("v2.") :]))]
    for shown in seen:
        assert not [word for word in words if word.encode() in shown], shown
    assert verify_token(token, SECRET) == address.lower()


def test_tokens_stay_short():
    assert len(make_token("ann@example.com", SECRET)) == 45
    assert len(make_token("firstname.lastname.department@mail.example.org", SECRET)) < 100


def test_old_tokens_still_verify_and_old_forgeries_still_fail():
    assert verify_token(OLD_TOKEN, SECRET) == "ann@example.com"
    # What the new form fixes: the old one shows the address to anyone who decodes it.
    assert b"ann@example.com" in _decodings(OLD_TOKEN.split(".")[0])[0]
    assert verify_token(OLD_TOKEN, b"another secret") is None
    # Bo's address with Ann's signature: the first form's forgery, refused as before.
    bo = base64.urlsafe_b64encode(b"bo@example.com").rstrip(b"=").decode()
    assert verify_token(f"{bo}.{OLD_TOKEN.split('.')[1]}", SECRET) is None
    # And an old token moved into the new form opens to nothing.
    assert verify_token("v2." + OLD_TOKEN.replace(".", ""), SECRET) is None


@pytest.mark.parametrize("token", [make_token("ann@example.com", SECRET), OLD_TOKEN], ids=["v2", "v1"])
def test_a_token_altered_by_one_character_fails(token: str):
    for at, was in enumerate(token):
        for char in BASE64URL + ".":
            if char != was:
                altered = token[:at] + char + token[at + 1 :]
                assert verify_token(altered, SECRET) is None, altered
    assert verify_token(token[:-1], SECRET) is None
    assert verify_token(token + "A", SECRET) is None


def test_unsubscribe_takes_new_and_old_links_and_the_mailto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DIGEST_SECRET", SECRET.decode())
    url = "https://example.com/unsubscribe?token={token}"
    new = make_token("ann@example.com", SECRET)
    for pasted in (
        url.replace("{token}", new),
        f"<{url.replace('{token}', new)}&utm_source=mail>",
        f"mailto:unsubscribe@example.com?subject=unsubscribe%20{new}",
        new,
        url.replace("{token}", OLD_TOKEN),
        OLD_TOKEN,
    ):
        assert unsubscribe_address(pasted, url, tmp_path) == "ann@example.com", pasted
    assert unsubscribe_address(url.replace("{token}", new[:-2]), url, tmp_path) is None


def test_secret_from_env_or_made_once_with_mode_600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DIGEST_SECRET", "from the environment")
    assert load_secret(tmp_path / "state") == b"from the environment"
    assert not (tmp_path / "state" / "secret").exists()
    monkeypatch.delenv("DIGEST_SECRET")
    first = load_secret(tmp_path / "state")
    assert len(first) >= 32
    assert load_secret(tmp_path / "state") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "state" / "secret").st_mode)
    assert mode == 0o600


def test_a_long_non_ascii_name_is_folded_into_several_encoded_words():
    name = "Александра Константиновна Преображенская-Воскресенская"
    issue = make_issue(subject="{{ reader.name }}: " + "новости недели " * 6)
    _, message, parsed = build(issue, f"sasha@example.com,{name}")
    header_block = message.data.partition(b"\r\n\r\n")[0].decode("ascii")
    assert all(len(line) <= 998 for line in header_block.split("\r\n"))
    assert "\r\n =?utf-8?" in header_block  # folded
    assert parsed["Subject"] == f"{name}: " + ("новости недели " * 6).strip()
    # policy.default's address parser keeps the folding space between two encoded words of a
    # display name, which RFC 2047 §6.2 says to drop; decode_header drops it, as mail clients do.
    raw_to = message_from_bytes(message.data, policy=policy.compat32)["To"]
    assert str(make_header(decode_header(raw_to))) == f"{name} <sasha@example.com>"


def display_name(data: bytes, field: str = "To") -> str:
    """The display name as an RFC 2047 reader decodes it (see the test above on policy.default)."""
    raw = message_from_bytes(data, policy=policy.compat32)[field]
    return str(make_header(decode_header(raw))).rpartition(" <")[0]


def test_nasty_inputs_keep_every_line_under_998_octets_and_round_trip():
    long_word = "x" * 1200
    long_name = "Александра Константиновна Преображенская-Воскресенская " * 3  # 170 characters
    url = "https://example.com/" + "u" * 880 + "?t={token}"
    masthead = Masthead(
        sender=f"{'Very Long Newsletter Title ' * 12} <weekly@example.com>",
        unsubscribe_url=url,
        title="Заголовок " * 40,
        unsubscribe_mailto="unsubscribe@example.com",
    )
    subjects = [
        long_word,
        f"Hello {{{{ reader.name }}}}, {long_word} and {{{{ reader.city }}}}",
        "Ежедневник " + "é" * 700,
        "word " * 300,
        "=?utf-8?q?not_an_encoded_word?= " * 3 + "a" * 100,
    ]
    city = "C" * 5000  # a slot value nobody should see whole in a subject
    for subject in subjects:
        readers = parse_subscribers(f"email,name,city\nsasha@example.com,{long_name},{city}\n")
        personalizer = Personalizer(make_issue(subject=subject), masthead, SECRET, columns=readers.columns)
        message = personalizer.message(readers.readers[0])
        lines = message.data.split(b"\r\n")
        assert max(len(line) for line in lines) <= 998
        head = message.data.partition(b"\r\n\r\n")[0]
        assert head.isascii() and b"\n" not in head.replace(b"\r\n", b"")
        assert all(line.strip() for line in head.split(b"\r\n"))  # no line of only spaces
        parsed = Received("", [], message.data).parsed()
        assert parsed.defects == []
        expected = (
            subject.replace("{{ reader.name }}", long_name.strip()[:MAX_HEADER_VALUE].strip())
            .replace("{{ reader.city }}", city[:MAX_HEADER_VALUE])
            .strip()
        )
        assert parsed["Subject"] == expected
        assert display_name(message.data) == long_name.strip()
        assert parsed["To"].addresses[0].addr_spec == "sasha@example.com"
        assert str(parsed["List-Unsubscribe"]).startswith(
            f"<{personalizer.unsubscribe_url('sasha@example.com')}>"
        )
        assert display_name(message.data, "List-Id") == ("Заголовок " * 40).strip()[:MAX_HEADER_VALUE].strip()


def test_a_name_over_the_cap_is_cut_and_short_names_are_exact():
    name = "Ann " + "Lee" * 300
    _, _, parsed = build(make_issue(subject="Hi {{ reader.name }}"), f"ann@example.com,{name}")
    assert parsed["To"].addresses[0].display_name == name[:MAX_HEADER_VALUE]
    assert parsed["Subject"] == "Hi " + name[:MAX_HEADER_VALUE]
    for short in ("Ольга", "José Álvarez", "김하나", 'Ann "the" Lee', "=?utf-8?q?Ann?="):
        _, _, parsed = build(make_issue(), f'ann@example.com,"{short.replace(chr(34), chr(34) * 2)}"')
        assert parsed["To"].addresses[0].display_name == short


@pytest.mark.parametrize(
    "value",
    ["short", "a " * 60, "  spaced   out  " * 10, "x" * 990, "x" * 2000, "ä" * 400, "mix ä " * 50, "_=?"],
)
def test_header_folds_and_round_trips(value: str):
    field = header("Subject", value)
    assert field.endswith("\r\n")
    lines = field[:-2].split("\r\n")
    assert all(len(line.encode()) <= 998 and line.strip() for line in lines)
    assert all(len(line) <= 78 for line in lines) or max(len(word) for word in value.split()) > 70
    parsed = message_from_bytes(f"{field}\r\n".encode(), policy=policy.default)
    assert parsed["Subject"] == value.strip()


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("list_id", "weekly.example.com\r\nBcc: victim@example.org", "list_id"),
        ("list_id", "two words", "list_id"),
        ("unsubscribe_mailto", "u@example.com\r\nBcc: victim@example.org", "unsubscribe_mailto"),
        ("unsubscribe_mailto", "u@example.com?subject=x", "unsubscribe_mailto"),
        ("unsubscribe_url", "https://example.com/u?t={token}\r\nBcc: victim@example.org", "unsubscribe_url"),
        ("unsubscribe_url", "https://example.com/un subscribe?t={token}", "unsubscribe_url"),
        ("unsubscribe_url", "https://example.com/café?t={token}", "unsubscribe_url"),
        ("sender", "Weekly <weekly@example.com\r\nBcc: victim@example.org>", "from"),
    ],
)
def test_config_values_that_would_break_a_header_are_refused(option: str, value: str, complaint: str):
    fields = {"sender": MASTHEAD.sender, "unsubscribe_url": MASTHEAD.unsubscribe_url, option: value}
    with pytest.raises(ConfigError, match=rf"newsletter\.{complaint}"):
        Personalizer(make_issue(), Masthead(**fields), SECRET)


def test_config_line_breaks_in_names_are_flattened():
    with pytest.raises(ConfigError, match=r"newsletter\.from"):
        Personalizer(
            make_issue(),
            Masthead(
                sender="W\r\nBcc: victim@example.org <weekly@example.com>",
                unsubscribe_url=MASTHEAD.unsubscribe_url,
            ),
            SECRET,
        )
    masthead = Masthead(
        sender=MASTHEAD.sender,
        unsubscribe_url=MASTHEAD.unsubscribe_url,
        title="The\r\nX-Injected: 1",
    )
    data = Personalizer(make_issue(), masthead, SECRET).message(reader("ann@example.com,Ann")).data
    parsed = Received("", [], data).parsed()
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert parsed["List-Id"] == '"The X-Injected: 1" <weekly.example.com>'


def test_the_secret_is_never_made_to_check_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    state = tmp_path / ".digest"
    token = make_token("ann@example.com", b"some other workspace")
    assert read_secret(state) is None
    assert address_for_token(token, state) is None
    assert not state.exists()


def test_unsubscribe_by_token_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # What `digest unsubscribe TOKEN` does with the token from a link in a sent issue.
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    state = tmp_path / ".digest"
    personalizer = Personalizer(make_issue(), MASTHEAD, load_secret(state))
    token = personalizer.unsubscribe_url("Ann@Example.com").rpartition("=")[2]
    found = address_for_token(token, state)
    assert found == "ann@example.com"
    assert address_for_token(token + "x", state) is None
    SuppressionList(state).add(found)
    assert SuppressionList(state).reasons() == {"ann@example.com": "unsubscribed"}


def test_the_secret_made_by_racing_processes_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import subprocess
    import sys

    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    state = tmp_path / ".digest"
    code = (
        "import sys, time; from digestcli.state.secret import load_secret;"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()));"
        "print(load_secret(sys.argv[1]).decode())"
    )
    import time

    start = str(time.time() + 0.5)  # all of them at once, after the interpreters are up
    racers = [
        subprocess.Popen([sys.executable, "-c", code, str(state), start], stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    secrets = {racer.communicate(timeout=30)[0].strip() for racer in racers}
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert sorted(path.name for path in state.iterdir()) == ["secret"]  # no temporary file left


def test_an_empty_secret_file_is_an_error_not_an_empty_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    (tmp_path / "secret").write_text("\n", encoding="ascii")
    with pytest.raises(ConfigError, match="secret is empty"):
        load_secret(tmp_path)


def test_an_unsubscribe_url_too_long_for_one_line_is_folded_inside_its_brackets():
    masthead = Masthead(
        sender=MASTHEAD.sender, unsubscribe_url="https://example.com/" + "u" * 990 + "/{token}"
    )
    personalizer = Personalizer(make_issue(), masthead, SECRET)
    message = personalizer.message(reader("ann@example.com,Ann"))
    assert max(len(line) for line in message.data.split(b"\r\n")) <= 998
    field = Received("", [], message.data).parsed()["List-Unsubscribe"]
    # RFC 2369 §2: whitespace inside the angle brackets is ignored.
    assert "".join(str(field).split()) == f"<{personalizer.unsubscribe_url('ann@example.com')}>"


@pytest.mark.parametrize("length", [970, 975, 976, 977, 978, 979, 980, 985, 1974, 1975, 1976, 3000])
@pytest.mark.parametrize("mailto", ["", "unsubscribe@example.com"])
def test_list_unsubscribe_lines_never_pass_998_octets(length: int, mailto: str) -> None:
    url = "https://example.com/u?t=" + "x" * (length - len("https://example.com/u?t="))
    header = list_unsubscribe(url, mailto)
    lines = header.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 998 for line in lines), [len(line) for line in lines]
    unfolded = "".join(line[1:] if i else line for i, line in enumerate(lines))
    expected = f"List-Unsubscribe: <{url}>" + (f",<{mailto}>" if mailto else "")
    assert unfolded == expected


def test_no_line_of_a_message_starts_with_a_dot_whatever_the_values():
    # The SMTP transport skips dot-stuffing for a Personalizer's messages (Message.dot_safe): that
    # is only safe while no line, in the headers or the body, can start with ".".
    dotted = "." + "x" * 70
    issue = RenderedIssue(
        "dots",
        "Dots",
        ".{{ reader.name }} and {{ reader.city }}",
        "",
        "<p>\n.{{ reader.name }}\n" + ("." * 200) + "\n{{ reader.city }}</p>\n.end\n",
        ".{{ reader.name }}\n" + ("." * 200) + "\n{{ reader.city }}\n.\n",
    )
    for name in (".", "..", dotted, ". leading space", "Ann.\r\n.Lee", "é." * 60):
        row = f'ann@example.com,"{name}",".{dotted}"'
        _, message, parsed = build(issue, row, header="email,name,city")
        assert message.dot_safe
        lines = message.data.split(b"\r\n")
        assert not any(line.startswith(b".") for line in lines), name
        assert parsed.get_body(("plain",)).get_content().startswith(".")  # the dots survive decoding
