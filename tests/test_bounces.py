"""digest bounces: real sends (the outbox) make real ledger rows; the reports that come back are
read from a Maildir, an mbox, or a real Dovecot on 127.0.0.1 over IMAP, plain and TLS; then the
suppression list, the feedback record and `digest status` say what was done."""

from __future__ import annotations

import email
import json
import mailbox
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from smtp_server import free_port, make_issue

from digestcli.bounces.mailbox import HANDLED_KEYWORD, ImapMailbox, LocalMailbox, message_id_of
from digestcli.config import Workspace, find_workspace
from digestcli.delivery import send_issue
from digestcli.message.tokens import make_token
from digestcli.message.verp import verp_sender
from digestcli.state.feedback import FEEDBACK_DB
from digestcli.state.secret import read_secret
from digestcli.state.suppressions import SuppressionList

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
READERS = [
    "ann.lee@example.net",
    "ivy@example.net",
    "jun@example.org",
    "rosa@example.net",
    "zara@example.org",
]
SETTINGS = """\
[newsletter]
title = "The Weekly"
from = "The Weekly <weekly@news.example.org>"
unsubscribe_mailto = "unsubscribe@news.example.org"
"""
BOUNCE_ADDRESS = "bounces@news.example.org"
# The corpus was written for this newsletter; its tokens and Message-IDs are placeholders that
# `Newsroom.retarget` replaces with the ones a real send made.
_CORPUS_VERP = re.compile(rb"bounces\+[a-z2-7]{21}@news\.example\.org", re.IGNORECASE)
_CORPUS_MESSAGE_ID = re.compile(rb"<the-weekly-42\.[0-9a-f]{24}@news\.example\.org>")


class Newsroom:
    """A workspace that has sent real issues through the outbox, and the mail that came back."""

    def __init__(self, root: Path, readers: list[str] = READERS, extra: str = ""):
        self.root = root
        (root / "digest.toml").write_text(SETTINGS + extra, encoding="utf-8")
        rows = "".join(f"{address},{address.split('@')[0].title()}\n" for address in readers)
        (root / "subscribers.csv").write_text(f"email,name\n{rows}", encoding="utf-8")
        self.sent: dict[tuple[str, str], bytes] = {}  # (issue, reader) -> the message's bytes
        self.returned = root / "returned"  # the Maildir the reports land in

    @property
    def ws(self) -> Workspace:
        return find_workspace(self.root)

    @property
    def secret(self) -> bytes:
        secret = read_secret(self.ws.state)
        assert secret is not None
        return secret

    def send(self, issue_id: str) -> list[str]:
        """Send an issue to the list (the suppressed left out); the readers mailed."""
        outbox = mailbox.Maildir(self.root / "outbox", factory=None, create=True)
        before = set(outbox.iterkeys())
        summary = send_issue(make_issue(subject=f"The Weekly: {issue_id}", issue_id=issue_id), self.ws)
        mailed = []
        for key in sorted(set(outbox.iterkeys()) - before):
            raw = outbox.get_bytes(key)
            reader = email.message_from_bytes(raw)["To"].split("<")[-1].strip(">").lower()
            self.sent[(issue_id, reader)] = raw
            mailed.append(reader)
        assert summary.delivered == len(mailed)
        return mailed

    def message_id(self, issue: str, reader: str) -> str:
        return message_id_of(self.sent[(issue, reader)])

    def verp(self, issue: str, reader: str) -> str:
        return verp_sender(BOUNCE_ADDRESS, issue, reader, self.secret)

    def dsn(
        self,
        issue: str,
        reader: str,
        *,
        status: str = "5.1.1",
        action: str = "failed",
        to: str | None = None,
        original: bytes | None = None,
        headers_only: bool = False,
    ) -> bytes:
        """A delivery status notification (RFC 3464) as Postfix writes one, quoting the message."""
        original = self.sent[(issue, reader)] if original is None else original
        if headers_only:
            original = original.split(b"\n\n", 1)[0] + b"\n"
        boundary = f"dsn.{secrets.token_hex(6)}"
        code = {"5": "550", "4": "452"}[status[0]]
        text = (
            f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
            f"To: {to or BOUNCE_ADDRESS}\n"
            f"Subject: Undelivered Mail Returned to Sender\n"
            f"Date: Fri, 20 Nov 2026 07:00:09 +0100\n"
            f"Message-ID: <{secrets.token_hex(8)}@mx.example.net>\n"
            f"Auto-Submitted: auto-replied\n"
            f"MIME-Version: 1.0\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\n\n'
            f"--{boundary}\nContent-Type: text/plain\n\n"
            f"I'm sorry to have to inform you that your message could not be delivered.\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx.example.net\n\n"
            f"Final-Recipient: rfc822; {reader}\nAction: {action}\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; {code} {status} <{reader}>: scripted for the tests\n\n"
            f"--{boundary}\nContent-Type: {'text/rfc822-headers' if headers_only else 'message/rfc822'}\n\n"
        ).encode()
        return text + original.replace(b"\r\n", b"\n") + f"\n--{boundary}--\n".encode()

    def retarget(self, name: str, issue: str, reader: str, *, was: str = "", **replace: str) -> bytes:
        """A message of the corpus, made about ``reader``'s copy of ``issue``: its VERP address and
        Message-ID become the ones this send made, and the reader it names (``was``) this one."""
        raw = (FIXTURES / name).read_bytes()
        if (issue, reader) in self.sent:
            raw = _CORPUS_VERP.sub(self.verp(issue, reader).encode(), raw)
            raw = _CORPUS_MESSAGE_ID.sub(self.message_id(issue, reader).encode(), raw)
        if was:
            raw = raw.replace(was.encode(), reader.encode())
        for old, new in replace.items():
            raw = raw.replace(old.encode(), new.encode())
        return raw

    def deliver(self, *messages: bytes) -> Path:
        box = mailbox.Maildir(self.returned, factory=None, create=True)
        for raw in messages:
            box.add(raw)
        return self.returned

    def suppressed(self) -> dict[str, str]:
        return SuppressionList(self.ws.state).reasons()


@pytest.fixture
def newsroom(workspace: Path) -> Newsroom:
    return Newsroom(workspace)


def another_report(raw: bytes) -> bytes:
    """The report with a Message-ID of its own (two copies of one report are one report)."""
    return re.sub(
        rb"(?im)^Message-ID:.*$", f"Message-ID: <{secrets.token_hex(8)}@example.com>".encode(), raw, count=1
    )


def run_json(digest: Callable[..., object], *args: str) -> dict:
    result = digest("bounces", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def draft_for(root: Path, issue_id: str) -> Path:
    """A draft whose id is ``issue_id``: what `digest status DRAFT` is given."""
    path = root / "drafts" / f"{issue_id}.md"
    path.write_text(
        f"---\nid: {issue_id}\ntitle: The Weekly\nsubject: x\ndate: 2026-11-20\n---\n", encoding="utf-8"
    )
    return path


# -- reading and acting: a local Maildir or mbox ------------------------------------------------------


def test_a_hard_bounce_suppresses_the_reader_and_status_shows_it(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(newsroom.dsn("the-weekly-42", "ann.lee@example.net"))

    result = digest("bounces", "--from", str(maildir))
    assert result.exit_code == 0, result.stderr
    assert "1 hard, 0 soft, 0 delayed, 0 blocked, 0 complaints" in result.stdout
    assert re.search(r"ann\.lee@example\.net\s+the-weekly-42\s+suppressed: bounced", result.stdout)
    assert newsroom.suppressed() == {"ann.lee@example.net": "bounced"}

    status = digest("status", str(draft_for(newsroom.root, "the-weekly-42")))
    assert "came back: 1 bounced (20.0% of 5 mailed)" in status.stdout
    assert re.search(r"bounced\s+ann\.lee@example\.net \(\d{4}-\d\d-\d\d \d\d:\d\d\) 5\.1\.1", status.stdout)
    assert "20.0% of this issue's readers bounced" in status.stderr  # above 5%: a warning

    # The next issue leaves the reader out.
    assert "ann.lee@example.net" not in newsroom.send("the-weekly-43")


def test_reading_the_same_mailbox_twice_changes_nothing(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(
        newsroom.dsn("the-weekly-42", "ann.lee@example.net"),
        newsroom.dsn("the-weekly-42", "jun@example.org", status="4.2.2"),
        (FIXTURES / "editor-ordinary-mail.eml").read_bytes(),
    )
    first = run_json(digest, "--from", str(maildir))
    assert (first["counts"]["hard"], first["counts"]["soft"], first["counts"]["not_reports"]) == (1, 1, 1)
    state = newsroom.ws.state
    before = (SuppressionList(state).entries(), _rows(state / FEEDBACK_DB, "feedback"))

    second = run_json(digest, "--from", str(maildir))
    assert second["counts"]["hard"] == second["counts"]["soft"] == 0
    assert second["counts"]["already_handled"] == 2
    assert second["readers"] == []
    assert (SuppressionList(state).entries(), _rows(state / FEEDBACK_DB, "feedback")) == before
    assert len(mailbox.Maildir(maildir, factory=None)) == 3  # a local copy is only read


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(newsroom.dsn("the-weekly-42", "ann.lee@example.net"))
    result = digest("bounces", "--from", str(maildir), "--dry-run")
    assert result.exit_code == 0
    assert "would be suppressed: bounced" in result.stdout
    assert "Dry run: nothing was changed" in result.stdout
    assert newsroom.suppressed() == {}
    assert not (newsroom.ws.state / FEEDBACK_DB).exists()
    # ...and the real run then acts on it.
    assert run_json(digest, "--from", str(maildir))["counts"]["suppressed"] == 1


def test_an_mbox_file_is_read_too(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    path = newsroom.root / "returned.mbox"
    box = mailbox.mbox(path, create=True)
    box.add(newsroom.dsn("the-weekly-42", "ivy@example.net", headers_only=True))
    box.add((FIXTURES / "editor-ordinary-mail.eml").read_bytes())
    box.close()
    run = run_json(digest, "--from", str(path))
    assert run["counts"]["hard"] == 1
    assert run["readers"][0]["address"] == "ivy@example.net"
    assert run["source"] == str(path)


def test_a_report_about_mail_digest_did_not_send_is_ignored(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    # The editor's own letter to a reader bounced: the reader is in the ledger, but the message
    # quoted is not one digest sent (its own Message-ID, no List-Id, no VERP token).
    letter = (
        b"From: Editor <editor@news.example.org>\nTo: ann.lee@example.net\nSubject: Lunch?\n"
        b"Message-ID: <CAEd1t0r+lunch@mail.news.example.org>\n\nShall we?\n"
    )
    maildir = newsroom.deliver(
        newsroom.dsn("the-weekly-42", "ann.lee@example.net", original=letter),
        (FIXTURES / "foreign-report.eml").read_bytes(),
    )
    run = run_json(digest, "--from", str(maildir))
    assert run["counts"]["not_ours"] == 2
    assert run["counts"]["hard"] == 0
    assert all("did not send" in left["why"] for left in run["not_ours"])
    assert newsroom.suppressed() == {}


def test_a_message_id_digest_did_not_make_does_not_count(newsroom: Newsroom, digest):
    """A Message-ID in digest's form but signed with another secret is not ours."""
    newsroom.send("the-weekly-42")
    real = newsroom.sent[("the-weekly-42", "ann.lee@example.net")]
    forged = real.replace(
        newsroom.message_id("the-weekly-42", "ann.lee@example.net").encode(),
        b"<the-weekly-42.0123456789abcdef01234567@news.example.org>",
    )
    forged = re.sub(rb"List-Id:[^\n]*\n", b"", forged)
    maildir = newsroom.deliver(newsroom.dsn("the-weekly-42", "ann.lee@example.net", original=forged))
    assert run_json(digest, "--from", str(maildir))["counts"]["not_ours"] == 1
    assert newsroom.suppressed() == {}


def test_ses_replaces_the_message_id_and_the_list_id_confirms(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(
        newsroom.retarget("ses-replaced-message-id.eml", "the-weekly-42", "jun@example.org")
    )
    run = run_json(digest, "--from", str(maildir))
    assert run["counts"]["hard"] == 1
    assert run["readers"][0]["address"] == "jun@example.org"
    assert run["readers"][0]["issue"] == "the-weekly-42"


def test_the_verp_token_names_the_reader_of_a_bounce_in_no_standard_form(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    # qmail's bounce names henry@example.com, a forwarding address: VERP says whose it was.
    qmail = newsroom.retarget("qmail.eml", "the-weekly-42", "zara@example.org")
    altered = newsroom.retarget("qmail.eml", "the-weekly-42", "rosa@example.net")
    token = newsroom.verp("the-weekly-42", "rosa@example.net").split("+")[1][:21]
    altered = altered.replace(token.encode(), (token[:-1] + ("a" if token[-1] != "a" else "b")).encode())
    altered = _CORPUS_MESSAGE_ID.sub(
        b"<elsewhere@example.com>",
        altered.replace(
            newsroom.message_id("the-weekly-42", "rosa@example.net").encode(), b"<elsewhere@example.com>"
        ),
    )
    altered = re.sub(rb"List-Id:[^\n]*\n", b"", altered)
    maildir = newsroom.deliver(qmail, another_report(altered))
    run = run_json(digest, "--from", str(maildir))
    assert [(r["address"], r["kind"]) for r in run["readers"]] == [("zara@example.org", "hard")]
    assert run["counts"]["not_ours"] == 1
    assert "VERP token is not one this workspace made" in run["not_ours"][0]["why"]
    assert newsroom.suppressed() == {"zara@example.org": "bounced"}


def test_a_verp_address_whose_case_a_server_changed_still_names_the_reader(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    to = newsroom.verp("the-weekly-42", "ivy@example.net").upper()
    letter = b"From: someone@example.com\nTo: x@example.com\nSubject: hi\nMessage-ID: <z@example.com>\n\nhi\n"
    maildir = newsroom.deliver(newsroom.dsn("the-weekly-42", "ivy@example.net", to=to, original=letter))
    run = run_json(digest, "--from", str(maildir))
    assert [r["address"] for r in run["readers"]] == ["ivy@example.net"]


def test_a_complaint_suppresses_the_reader_as_complained(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    arf = newsroom.retarget("arf-yahoo.eml", "the-weekly-42", "ivy@example.net")
    run = run_json(digest, "--from", str(newsroom.deliver(arf)))
    assert run["counts"]["complaints"] == 1
    assert newsroom.suppressed() == {"ivy@example.net": "complained"}
    status = digest("status", str(draft_for(newsroom.root, "the-weekly-42")))
    assert "1 complaints (20.00%)" in status.stdout
    assert "reported it as spam" in status.stderr


def test_an_auto_reply_is_never_a_bounce(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    reply = newsroom.retarget("autoreply-rfc3834.eml", "the-weekly-42", "zara@example.org")
    run = run_json(digest, "--from", str(newsroom.deliver(reply)))
    assert run["counts"]["ignored"] == 1
    assert run["readers"] == []
    assert newsroom.suppressed() == {}


def test_an_unrecognised_report_is_listed_with_its_subject(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver((FIXTURES / "unrecognised-plain.eml").read_bytes())
    result = digest("bounces", "--from", str(maildir))
    assert "1 unrecognised" in result.stdout
    assert "'Message Notification' from postmaster@filter.example.com" in result.stdout
    assert newsroom.suppressed() == {}
    # Listed again at the next run: it waits for the editor.
    assert "'Message Notification'" in digest("bounces", "--from", str(maildir)).stdout


def test_a_block_is_listed_and_never_suppresses_the_reader(newsroom: Newsroom, digest):
    """Outlook's banned sending IP and Gmail's DMARC refusal are about the sending: the editor
    must mend it, and the readers did nothing."""
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(
        newsroom.dsn("the-weekly-42", "ann.lee@example.net", status="5.7.606"),
        newsroom.dsn("the-weekly-42", "ivy@example.net", status="5.7.26"),
        newsroom.retarget(
            "outlook-blocked-ip.eml", "the-weekly-42", "jun@example.org", was="nina@example.com"
        ),
    )
    result = digest("bounces", "--from", str(maildir))
    assert result.exit_code == 0, result.stderr
    assert "0 hard, 0 soft, 0 delayed, 3 blocked" in result.stdout
    assert "Blocked    3 refused for a reason about the sending, not the reader" in result.stdout
    assert re.search(
        r"blocked\s+ann\.lee@example\.net\s+the-weekly-42\s+blocked: about the sending", result.stdout
    )
    assert newsroom.suppressed() == {}

    status = digest("status", str(draft_for(newsroom.root, "the-weekly-42")))
    assert "0 bounced (0.0% of 5 mailed)" in status.stdout and "3 blocked" in status.stdout
    assert "refused it for a reason about the sending" in status.stderr
    assert "ann.lee@example.net" in newsroom.send("the-weekly-43")  # still mailed


def test_delay_warnings_are_recorded_but_never_count_toward_the_limit(newsroom: Newsroom, digest):
    for issue in ("w-1", "w-2", "w-3"):
        newsroom.send(issue)
        maildir = newsroom.deliver(
            newsroom.dsn(issue, "ann.lee@example.net", status="4.4.7", action="delayed")
        )
        run = run_json(digest, "--from", str(maildir))
        assert [(r["kind"], r["action"]) for r in run["readers"]] == [
            ("delayed", "delayed: recorded, not counted (the server is still trying)")
        ]
        assert run["counts"]["delayed"] == 1 and run["counts"]["soft"] == 0
    assert newsroom.suppressed() == {}
    assert ("w-4", "ann.lee@example.net") in {(i, r) for i in ["w-4"] for r in newsroom.send("w-4")}
    # A failure after the delays counts from one: the delayed issues were delivered in the end.
    run = run_json(
        digest, "--from", str(newsroom.deliver(newsroom.dsn("w-4", "ann.lee@example.net", status="4.4.7")))
    )
    assert run["readers"][0]["action"] == "soft bounce 1 of 3, counted"


def ses(newsroom: Newsroom, issue: str, reader: str, *, status: str = "4.2.2", keep: str = "both") -> bytes:
    """A bounce as Amazon SES writes one: its own Message-ID in place of digest's, the envelope
    sender its own; only the List-Id, the Subject and the Date of the quoted header are digest's."""
    original = newsroom.sent[(issue, reader)].split(b"\n\n", 1)[0] + b"\n"
    original = original.replace(
        newsroom.message_id(issue, reader).encode(),
        f"<0100018c{secrets.token_hex(8)}@email.amazonses.com>".encode(),
    )
    if keep == "date":
        original = re.sub(rb"(?m)^Subject:.*\n", b"", original)
    elif keep == "neither":
        original = re.sub(rb"(?m)^(Subject|Date):.*\n", b"", original)
    return newsroom.dsn(issue, reader, status=status, original=original, headers_only=True)


def test_a_bounce_known_by_its_list_id_is_pinned_on_its_own_issue(newsroom: Newsroom, digest):
    """SES replaced the Message-ID: the quoted Subject or Date says which issue, not the newest."""
    for issue in ("w-1", "w-2", "w-3", "w-4"):
        newsroom.send(issue)
    # The register's first sends a week apart, as a weekly's are (the test sent them in a second).
    with sqlite3.connect(newsroom.ws.state / "ledger.sqlite3") as db:
        for n, issue in enumerate(("w-1", "w-2", "w-3", "w-4")):
            db.execute(
                "UPDATE issue SET first_sent = ? WHERE issue_id = ?", (1_790_000_000 + n * 604_800, issue)
            )
    dated = []
    for n, issue in enumerate(("w-1", "w-2", "w-3")):
        raw = ses(newsroom, issue, "ivy@example.net", keep="date")
        when = email.utils.formatdate(1_790_000_000 + n * 604_800 + 30)
        dated.append(re.sub(rb"(?m)^Date: (?!Fri, 20 Nov)[^\n]*$", f"Date: {when}".encode(), raw, count=1))
    maildir = newsroom.deliver(
        *(ses(newsroom, issue, "ann.lee@example.net") for issue in ("w-1", "w-2", "w-3")),
        ses(newsroom, "w-3", "jun@example.org", status="5.1.1"),
        *dated,
        ses(newsroom, "w-2", "rosa@example.net", keep="neither"),
    )
    run = run_json(digest, "--from", str(maildir))
    readers = sorted((r["address"], r["issue"], r["kind"], r["note"]) for r in run["readers"])
    latest = "the report names no issue: taken as the newest mailed to the reader"
    assert readers == [
        ("ann.lee@example.net", "w-1", "soft", ""),
        ("ann.lee@example.net", "w-2", "soft", ""),
        ("ann.lee@example.net", "w-3", "soft", ""),
        ("ivy@example.net", "w-1", "soft", ""),
        ("ivy@example.net", "w-2", "soft", ""),
        ("ivy@example.net", "w-3", "soft", ""),
        ("jun@example.org", "w-3", "hard", ""),
        ("rosa@example.net", "w-4", "soft", latest),
    ]
    assert newsroom.suppressed() == {
        "ann.lee@example.net": "bounced",
        "ivy@example.net": "bounced",
        "jun@example.org": "bounced",
    }


def test_a_verp_token_after_a_bounce_address_with_a_plus_names_the_reader(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    to = verp_sender("weekly+bounces@news.example.org", "the-weekly-42", "rosa@example.net", newsroom.secret)
    letter = b"From: someone@example.com\nTo: x@example.com\nSubject: hi\nMessage-ID: <z@example.com>\n\nhi\n"
    maildir = newsroom.deliver(newsroom.dsn("the-weekly-42", "rosa@example.net", to=to, original=letter))
    run = run_json(digest, "--from", str(maildir))
    assert [(r["address"], r["issue"], r["kind"]) for r in run["readers"]] == [
        ("rosa@example.net", "the-weekly-42", "hard")
    ]


# -- unsubscribes by mail -------------------------------------------------------------------------------


def test_an_unsubscribe_mail_counts_only_for_an_address_on_the_list(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    on_list = newsroom.retarget("unsubscribe-mailto.eml", "the-weekly-42", "rosa@example.net")
    stranger = (
        (FIXTURES / "unsubscribe-mailto.eml").read_bytes().replace(b"rosa@example.net", b"who@example.com")
    )
    stranger = another_report(stranger)
    run = run_json(digest, "--from", str(newsroom.deliver(on_list, stranger)))
    assert run["counts"]["unsubscribes"] == 1
    assert run["counts"]["not_ours"] == 1
    assert "not on the list" in run["not_ours"][0]["why"]
    assert newsroom.suppressed() == {"rosa@example.net": "unsubscribed"}


def test_an_unsubscribe_passed_on_by_digest_serve_is_trusted_when_its_token_verifies(
    newsroom: Newsroom, digest
):
    newsroom.send("the-weekly-42")
    token = make_token("zara@example.org", newsroom.secret)
    fixture = "digest-serve-unsubscribe.eml"
    placeholder = "v2.WmFyYUV4YW1wbGVPcmdUb2tlblNpZ25lZA"
    genuine = newsroom.retarget(fixture, "", "", **{placeholder: token})
    forged_token = make_token("jun@example.org", newsroom.secret)
    forged_token = forged_token[:-3] + ("AAA" if not forged_token.endswith("AAA") else "BBB")
    forged = another_report(newsroom.retarget(fixture, "", "", **{placeholder: forged_token}))
    run = run_json(digest, "--from", str(newsroom.deliver(genuine, forged)))
    assert [(r["address"], r["kind"], r["suppressed"]) for r in run["readers"]] == [
        ("zara@example.org", "unsubscribe", "unsubscribed")
    ]
    assert run["counts"]["ignored"] == 1
    assert "does not verify" in run["ignored"][0]["why"]
    assert newsroom.suppressed() == {"zara@example.org": "unsubscribed"}


def test_an_unsubscribe_of_a_reader_the_ledger_mailed_does_not_read_the_list(newsroom: Newsroom, digest):
    """A reader the ledger knows is unsubscribed without the list being read: a list of a million
    takes seconds to read, and one that cannot be read now must not stop their request."""
    newsroom.send("the-weekly-42")
    (newsroom.root / "subscribers.csv").write_text("Courriel;Nom\nzara@example.org;Zara\n", encoding="utf-8")
    token = make_token("zara@example.org", newsroom.secret)
    placeholder = "v2.WmFyYUV4YW1wbGVPcmdUb2tlblNpZ25lZA"
    genuine = newsroom.retarget("digest-serve-unsubscribe.eml", "", "", **{placeholder: token})
    run = run_json(digest, "--from", str(newsroom.deliver(genuine)))
    assert [(r["address"], r["kind"]) for r in run["readers"]] == [("zara@example.org", "unsubscribe")]
    assert newsroom.suppressed() == {"zara@example.org": "unsubscribed"}


def reply(
    newsroom: Newsroom,
    reader: str,
    text: str,
    *,
    subject: str = "Re: The Weekly: the-weekly-42",
    answers: str | None = None,
    to: str = "The Weekly <weekly@news.example.org>",
) -> bytes:
    """A reader's reply from their mail client; ``answers``: the reader whose copy it answers."""
    refs = ""
    if answers is not None:
        mid = newsroom.message_id("the-weekly-42", answers)
        refs = f"In-Reply-To: {mid}\nReferences: {mid}\n"
    return (
        f"From: {reader.split('@')[0].title()} <{reader}>\nTo: {to}\nSubject: {subject}\n"
        f"Date: Sat, 21 Nov 2026 09:00:00 +0100\nMessage-ID: <{secrets.token_hex(8)}@example.net>\n{refs}"
        f"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{text}\n\n"
        "On Fri, 20 Nov 2026 at 07:00, The Weekly <weekly@news.example.org> wrote:\n"
        "> Hello,\n> Unsubscribe: https://example.com/unsubscribe?token=v2.abc\n"
    ).encode()


def test_words_asking_to_unsubscribe_count_only_about_this_newsletter(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    maildir = newsroom.deliver(
        # About the newsletter: a reply to the reader's own copy, or to an issue's subject.
        reply(newsroom, "ann.lee@example.net", "Unsubscribe me please.", answers="ann.lee@example.net"),
        reply(newsroom, "ivy@example.net", "Remove me from this list please."),
        # Not, or not surely: the editor's to read.
        reply(newsroom, "jun@example.org", "Stop", subject="Stop"),
        reply(newsroom, "rosa@example.net", "Unsubscribe me please.", answers="zara@example.org"),
        reply(
            newsroom,
            "zara@example.org",
            "Please unsubscribe my wife, she reads my copy.",
            answers="zara@example.org",
        ),
        reply(newsroom, "zara@example.org", "Remove me from the rota", subject="Re: Remove me from the rota"),
        reply(newsroom, "jun@example.org", "Great issue, thanks!", answers="jun@example.org"),
    )
    run = run_json(digest, "--from", str(maildir))
    assert sorted((r["address"], r["issue"], r["kind"]) for r in run["readers"]) == [
        ("ann.lee@example.net", "the-weekly-42", "unsubscribe"),
        ("ivy@example.net", "the-weekly-42", "unsubscribe"),
    ]
    assert newsroom.suppressed() == {"ann.lee@example.net": "unsubscribed", "ivy@example.net": "unsubscribed"}
    counts = run["counts"]
    assert (counts["unsubscribes"], counts["possible_unsubscribes"], counts["not_reports"]) == (2, 4, 1)
    whys = {left["from"]: left["why"] for left in run["possible_unsubscribes"]}
    assert "nothing says it is about the newsletter" in whys["jun@example.org"]
    assert "answers the copy of the-weekly-42 sent to another reader" in whys["rosa@example.net"]
    assert all(f"digest unsubscribe {address}" in why for address, why in whys.items())

    # Left for the editor: listed at every run until the reader is suppressed.
    again = run_json(digest, "--from", str(maildir))
    assert again["counts"]["possible_unsubscribes"] == 4
    assert digest("unsubscribe", "jun@example.org").exit_code == 0
    third = digest("bounces", "--from", str(maildir))
    assert "Possible unsubscribes (left in the mailbox for you to read):" in third.stdout
    assert (
        "'Stop' from jun@example.org" in third.stdout and "already suppressed: unsubscribed" in third.stdout
    )
    assert "'Stop'" not in digest("bounces", "--from", str(maildir)).stdout


def test_a_mail_to_the_unsubscribe_address_is_its_senders_request(newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    mail = reply(
        newsroom,
        "rosa@example.net",
        "Thanks for everything.",
        subject="bye",
        to="unsubscribe@news.example.org",
    )
    run = run_json(digest, "--from", str(newsroom.deliver(mail)))
    assert [(r["address"], r["kind"]) for r in run["readers"]] == [("rosa@example.net", "unsubscribe")]


def unsubscribe_from(address: str) -> bytes:
    """A mail to the unsubscribe address from ``address``, as a mail client sends the mailto."""
    raw = (FIXTURES / "unsubscribe-mailto.eml").read_bytes().replace(b"rosa@example.net", address.encode())
    return another_report(raw)


def test_an_unsubscribe_from_a_reader_of_an_exported_list_counts_before_any_send(newsroom: Newsroom, digest):
    """Mailchimp's headers, and its mark on a reader who left: the list is read as a send reads it."""
    (newsroom.root / "subscribers.csv").write_text(
        "Email Address,First Name,Last Name,MEMBER_RATING,UNSUB_TIME\n"
        "Rosa@Example.net,Rosa,Lima,4,\n"
        "lee@example.net,Lee,Gone,2,2026-03-01 09:00:00\n",
        encoding="utf-8",
    )
    maildir = newsroom.deliver(
        unsubscribe_from("rosa@example.net"),
        unsubscribe_from("lee@example.net"),  # the export says they left: the list names them all the same
        unsubscribe_from("who@example.com"),
    )
    run = run_json(digest, "--from", str(maildir))
    assert sorted((r["address"], r["kind"], r["suppressed"]) for r in run["readers"]) == [
        ("lee@example.net", "unsubscribe", "unsubscribed"),
        ("rosa@example.net", "unsubscribe", "unsubscribed"),
    ]
    assert run["counts"]["not_ours"] == 1
    assert "from who@example.com, which is not on the list" in run["not_ours"][0]["why"]
    assert newsroom.suppressed() == {"rosa@example.net": "unsubscribed", "lee@example.net": "unsubscribed"}


def test_an_unsubscribe_is_matched_through_the_columns_setting_and_an_unreadable_list_stops_the_run(
    newsroom: Newsroom, digest
):
    (newsroom.root / "subscribers.csv").write_text(
        "Courriel;Nom\njun@example.org;Jun\nrosa@example.net;Rosa\n", encoding="utf-8"
    )
    maildir = newsroom.deliver(unsubscribe_from("rosa@example.net"))
    # Without the setting, as `digest send` says it: one line, the file and the line, what to do.
    result = digest("bounces", "--from", str(maildir))
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith(f"error: {newsroom.root / 'subscribers.csv'}:1: no 'email' column")
    assert "[delivery] columns" in result.stderr and "Traceback" not in result.stderr
    assert newsroom.suppressed() == {}

    # The report was not remembered as left: with the setting, the next run acts on it.
    (newsroom.root / "digest.toml").write_text(
        SETTINGS + '\n[delivery]\ncolumns = { email = "Courriel" }\n', encoding="utf-8"
    )
    run = run_json(digest, "--from", str(maildir))
    assert [(r["address"], r["kind"]) for r in run["readers"]] == [("rosa@example.net", "unsubscribe")]
    assert newsroom.suppressed() == {"rosa@example.net": "unsubscribed"}


def test_an_unsubscribe_from_a_list_in_another_encoding(newsroom: Newsroom, digest):
    (newsroom.root / "subscribers.csv").write_bytes(
        "email,name\nrosa@example.net,Rosa Lima Mu\u00f1oz\n".encode("cp1252")
    )
    (newsroom.root / "digest.toml").write_text(
        SETTINGS + '\n[delivery]\nencoding = "cp1252"\n', encoding="utf-8"
    )
    run = run_json(digest, "--from", str(newsroom.deliver(unsubscribe_from("rosa@example.net"))))
    assert run["counts"]["unsubscribes"] == 1 and newsroom.suppressed() == {
        "rosa@example.net": "unsubscribed"
    }


def test_an_unsubscribe_from_a_unicode_domain_is_suppressed_under_the_lists_key(newsroom: Newsroom, digest):
    """The list keeps a domain in its ASCII form, and a send compares that key with the suppression
    list: a request written in Unicode must be suppressed under it, or the reader is mailed still."""
    from digestcli.subscribers import load_subscribers

    (newsroom.root / "subscribers.csv").write_text("email,name\nann@bücher.example,Ann\n", encoding="utf-8")
    (key,) = [r.key for r in load_subscribers(newsroom.root / "subscribers.csv").readers]
    run = run_json(digest, "--from", str(newsroom.deliver(unsubscribe_from("ann@bücher.example"))))
    assert run["counts"]["unsubscribes"] == 1
    assert newsroom.suppressed() == {key: "unsubscribed"}


def test_with_no_list_an_unsubscribe_the_ledger_does_not_know_is_not_ours(newsroom: Newsroom, digest):
    (newsroom.root / "subscribers.csv").unlink()
    run = run_json(digest, "--from", str(newsroom.deliver(unsubscribe_from("rosa@example.net"))))
    assert (run["counts"]["unsubscribes"], run["counts"]["not_ours"]) == (0, 1)
    assert "which is not on the list" in run["not_ours"][0]["why"]


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ('from = "The Weekly <weekly@news.example.org>"', "newsletter.from"),
        ('reply_to = "Letters <Weekly@News.example.org>"', "newsletter.reply_to"),
        ('[delivery]\nbounce_address = "weekly@news.example.org"', "delivery.bounce_address"),
    ],
)
def test_the_unsubscribe_address_must_be_a_mailbox_of_its_own(newsroom: Newsroom, digest, settings, said):
    """Replies to the newsletter, or its bounces, would each be an unsubscribe by their sender."""
    newsletter, _, delivery = settings.partition("[delivery]\n")
    text = (
        '[newsletter]\ntitle = "The Weekly"\nunsubscribe_mailto = "mailto:weekly@news.example.org"\n'
        + (newsletter or 'from = "The Weekly <news@news.example.org>"')
        + "\n"
        + ('from = "The Weekly <news@news.example.org>"\n' if "reply_to" in newsletter else "")
        + (f"\n[delivery]\n{delivery}\n" if delivery else "")
    )
    (newsroom.root / "digest.toml").write_text(text, encoding="utf-8")
    result = digest("bounces", "--dry-run")
    assert result.exit_code == 2, result.stdout
    assert f"newsletter.unsubscribe_mailto is the {said} address (weekly@news.example.org)" in result.stderr
    assert "a mailbox of its own" in result.stderr and "Traceback" not in result.stderr


# -- soft bounces ----------------------------------------------------------------------------------------


def test_soft_bounces_on_three_issues_in_a_row_suppress_but_a_delivery_between_resets(
    newsroom: Newsroom, digest
):
    issues = ["w-1", "w-2", "w-3", "w-4"]
    for n, issue in enumerate(issues):
        newsroom.send(issue)
        reports = []
        if n < 3:  # ann's mailbox is full for three issues running
            reports.append(newsroom.dsn(issue, "ann.lee@example.net", status="4.2.2"))
        if n != 2:  # ivy's too, but the third issue reached her: the count starts again
            reports.append(newsroom.dsn(issue, "ivy@example.net", status="4.4.1"))
        run = run_json(digest, "--from", str(newsroom.deliver(*reports)))
        actions = {r["address"]: r["action"] for r in run["readers"]}
        if n < 2:
            assert actions["ann.lee@example.net"] == f"soft bounce {n + 1} of 3, counted"
    assert actions == {"ivy@example.net": "soft bounce 1 of 3, counted"}  # w-4: after a delivery
    suppressed = SuppressionList(newsroom.ws.state).entries()
    assert [(e.address, e.reason) for e in suppressed] == [("ann.lee@example.net", "bounced")]
    assert "3 soft bounces in a row: w-1, w-2, w-3" in suppressed[0].note
    assert ("w-4", "ann.lee@example.net") not in newsroom.sent  # left out of the fourth issue


def test_soft_bounces_read_all_at_once_count_the_same(newsroom: Newsroom, digest):
    """Three issues sent, then one read of the mailbox, the reports in any order."""
    for issue in ("w-1", "w-2", "w-3"):
        newsroom.send(issue)
    reports = [newsroom.dsn(issue, "jun@example.org", status="4.2.2") for issue in ("w-3", "w-1", "w-2")]
    run = run_json(digest, "--from", str(newsroom.deliver(*reports)))
    assert run["counts"]["soft"] == 3
    assert newsroom.suppressed() == {"jun@example.org": "bounced"}


def test_a_reader_put_back_starts_a_new_count(newsroom: Newsroom, digest):
    for issue in ("w-1", "w-2", "w-3"):
        newsroom.send(issue)
        run_json(
            digest,
            "--from",
            str(newsroom.deliver(newsroom.dsn(issue, "jun@example.org", status="4.2.2"))),
        )
    assert newsroom.suppressed() == {"jun@example.org": "bounced"}
    assert digest("unsubscribe", "--undo", "jun@example.org").exit_code == 0
    newsroom.send("w-4")
    run = run_json(
        digest,
        "--from",
        str(newsroom.deliver(newsroom.dsn("w-4", "jun@example.org", status="4.2.2"))),
    )
    assert run["readers"][0]["action"] == "soft bounce 1 of 3, counted"
    assert newsroom.suppressed() == {}


def test_undo_without_an_address_says_to_name_the_one_to_put_back(newsroom: Newsroom, digest):
    result = digest("unsubscribe", "--undo")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: name the address to put back"), result.stderr


# -- errors --------------------------------------------------------------------------------------------------


def test_a_missing_from_path_is_one_line(newsroom: Newsroom, digest):
    result = digest("bounces", "--from", "nowhere")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: nowhere: no such folder or file (--from takes a Maildir folder (with cur/ and new/ in it)"
        " or an mbox file)"
    )
    (newsroom.root / "plain").mkdir()
    result = digest("bounces", "--from", "plain")
    assert result.exit_code == 2 and "not a Maildir" in result.stderr
    (newsroom.root / "notes.txt").write_text("hello\n", encoding="utf-8")
    result = digest("bounces", "--from", "notes.txt")
    assert result.exit_code == 2 and "not an mbox file" in result.stderr


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ("soft_bounce_limit = 0", "bounces.soft_bounce_limit is 0"),
        ('host = "imap.example.org:993"', "bounces.host is 'imap.example.org:993'"),
        ('security = "tls"', "'bounces.security' is 'tls'; choose one of starttls, ssl, none"),
        ('folder = ""', "'bounces.folder' cannot be empty"),
        ('done_folder = "INBOX"', "bounces.done_folder is the folder it reads ('INBOX')"),
        ("port = 70000", "bounces.port is 70000"),
        ("soft_bounce = 2", "unknown setting 'bounces.soft_bounce' (did you mean 'soft_bounce_limit'?)"),
    ],
)
def test_bounces_settings_are_checked_with_file_and_line(newsroom: Newsroom, digest, lines: str, said: str):
    (newsroom.root / "digest.toml").write_text(SETTINGS + f"\n[bounces]\n{lines}\n", encoding="utf-8")
    result = digest("bounces", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {newsroom.root / 'digest.toml'}:7: {said}"), result.stderr


def test_no_mailbox_set_says_what_to_set(newsroom: Newsroom, digest):
    result = digest("bounces")
    assert result.exit_code == 2
    assert "[bounces] host is not set" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# -- IMAP, on a real Dovecot ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[object]:
    from dovecot import Dovecot, dovecot_missing

    why = dovecot_missing()
    if why:
        pytest.skip(why)  # a failure under .ci/run (conftest.py)
    with Dovecot() as server:
        yield server


@pytest.fixture
def imap(dovecot_server, newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch):
    """The Dovecot server with an empty mailbox, and the newsroom set to read it over TLS."""
    server = dovecot_server
    server.reset()
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", server.password)
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # how a private CA is trusted
    use_imap(newsroom, server)
    return server


def use_imap(newsroom: Newsroom, server, **settings: object) -> None:
    values = {"host": "127.0.0.1", "port": server.tls_port, "security": "ssl", "username": server.user}
    values.update(settings)
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    (newsroom.root / "digest.toml").write_text(SETTINGS + "\n[bounces]\n" + lines, encoding="utf-8")


def _without_recent(flags: frozenset[bytes]) -> frozenset[bytes]:
    # \Recent belongs to the first session that selects the folder, any client's: not a change.
    return flags - {b"\\Recent"}


def test_imap_over_tls_moves_handled_reports_and_leaves_other_mail_as_it_was(
    imap, newsroom: Newsroom, digest
):
    newsroom.send("the-weekly-42")
    editor = (FIXTURES / "editor-ordinary-mail.eml").read_bytes()
    imap.append(editor, flags=(b"\\Flagged",))  # unread, flagged: it must stay so
    imap.append(newsroom.dsn("the-weekly-42", "ann.lee@example.net"))
    imap.append((FIXTURES / "unrecognised-plain.eml").read_bytes(), flags=(b"\\Seen",))
    wife = "Please unsubscribe my wife, she reads my copy."
    imap.append(reply(newsroom, "ivy@example.net", wife, answers="ivy@example.net"))  # unread: it stays so
    before = {raw: _without_recent(flags) for flags, raw in imap.messages()}

    run = run_json(digest)
    assert run["source"] == f"INBOX on 127.0.0.1:{imap.tls_port} (bounces)"
    assert (run["counts"]["hard"], run["counts"]["unrecognised"], run["counts"]["not_reports"]) == (1, 1, 1)
    assert run["counts"]["possible_unsubscribes"] == 1
    assert newsroom.suppressed() == {"ann.lee@example.net": "bounced"}

    left = {raw: _without_recent(flags) for flags, raw in imap.messages()}
    assert left == {raw: flags for raw, flags in before.items() if b"Undelivered Mail" not in raw}
    [editor_flags] = [flags for raw, flags in left.items() if b"Story tip: the undelivered parcels" in raw]
    assert editor_flags == {b"\\Flagged"}  # not \Seen: never read for the editor
    moved = imap.messages("digest-processed")
    assert len(moved) == 1 and b"Final-Recipient: rfc822; ann.lee@example.net" in moved[0][1]

    # Read again: nothing more happens anywhere.
    again = run_json(digest)
    assert again["counts"]["hard"] == 0 and again["counts"]["not_reports"] == 1
    assert {raw: _without_recent(flags) for flags, raw in imap.messages()} == left
    assert len(imap.messages("digest-processed")) == 1


def test_a_move_cut_short_is_made_at_the_next_run(imap, newsroom: Newsroom, digest):
    """The connection drops after the state was written and before the report was moved: the
    reader is suppressed once, and the next run moves the report without acting again."""
    from digestcli.bounces.act import read_bounces
    from digestcli.errors import DeliveryError

    newsroom.send("the-weekly-42")
    imap.append(newsroom.dsn("the-weekly-42", "ann.lee@example.net"))

    class Dropped(ImapMailbox):
        def handled(self, refs: object) -> None:
            raise DeliveryError("connection lost", where="127.0.0.1")

    box = Dropped.from_settings(newsroom.ws.config.bounces)
    with pytest.raises(DeliveryError):
        read_bounces(newsroom.ws, box)
    box.close()
    assert newsroom.suppressed() == {"ann.lee@example.net": "bounced"}
    assert len(imap.messages()) == 1

    run = run_json(digest)
    assert (run["counts"]["hard"], run["counts"]["already_handled"]) == (0, 1)
    assert imap.messages() == [] and len(imap.messages("digest-processed")) == 1


def test_two_copies_of_one_report_count_once_and_both_are_moved(imap, newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    report = newsroom.dsn("the-weekly-42", "ann.lee@example.net")
    imap.append(report)
    imap.append(report)
    run = run_json(digest)
    assert (run["counts"]["hard"], run["counts"]["already_handled"]) == (1, 1)
    assert imap.messages() == [] and len(imap.messages("digest-processed")) == 2


def test_imap_with_starttls_and_flagging_in_place(imap, newsroom: Newsroom, digest):
    use_imap(newsroom, imap, port=imap.plain_port, security="starttls", done_folder="")
    newsroom.send("the-weekly-42")
    imap.append(newsroom.dsn("the-weekly-42", "jun@example.org", status="4.2.2"))
    imap.append((FIXTURES / "editor-ordinary-mail.eml").read_bytes())
    run = run_json(digest)
    assert run["counts"]["soft"] == 1
    flags = [_without_recent(flags) for flags, _ in imap.messages()]
    assert flags == [{b"\\Seen", HANDLED_KEYWORD}, frozenset()]
    assert not imap.messages("digest-processed")
    again = run_json(digest)
    assert again["counts"]["soft"] == 0  # remembered: not counted twice
    assert again["counts"]["already_handled"] == 0  # and its flag keeps it out of the listing


def test_imap_dry_run_touches_nothing(imap, newsroom: Newsroom, digest):
    newsroom.send("the-weekly-42")
    imap.append(newsroom.dsn("the-weekly-42", "ann.lee@example.net"))
    imap.append((FIXTURES / "editor-ordinary-mail.eml").read_bytes())
    before = imap.messages()
    result = digest("bounces", "--dry-run")
    assert result.exit_code == 0 and "would be suppressed: bounced" in result.stdout
    assert imap.messages() == before  # \Recent included: the folder was only examined
    assert not imap.messages("digest-processed")
    assert newsroom.suppressed() == {}


def test_imap_plain_connection_without_tls(imap, newsroom: Newsroom):
    use_imap(newsroom, imap, port=imap.plain_port, security="none")
    imap.append(b"From: a@example.com\r\nSubject: hello\r\nMessage-ID: <m1@example.com>\r\n\r\nhi\r\n")
    box = ImapMailbox.from_settings(newsroom.ws.config.bounces)
    try:
        assert box.count() == 1
        [[message]] = list(box.read(lambda key: False))
        assert message.message_id == "<m1@example.com>" and message.raw is not None
    finally:
        box.close()
    # A message known already is not fetched whole.
    box = ImapMailbox.from_settings(newsroom.ws.config.bounces)
    try:
        [[message]] = list(box.read(lambda key: key == "<m1@example.com>"))
        assert message.raw is None
    finally:
        box.close()


@pytest.mark.parametrize(
    ("settings", "password", "said"),
    [
        ({}, "wrong", "the server refused the login for 'bounces'"),
        ({"port": "refused"}, None, "connection refused"),
        (
            {"folder": "Bounces"},
            None,
            "no folder 'Bounces' in the mailbox (set [bounces] folder to one of: INBOX)",
        ),
        ({"port": "plain"}, None, "TLS failed while connecting"),
        ({"trusted": False}, None, "the server's certificate cannot be trusted"),
        (
            {"security": "starttls", "port": "plain", "password_missing": True},
            None,
            "DIGEST_IMAP_PASSWORD is not set",
        ),
    ],
)
def test_imap_failures_are_one_line_with_host_and_port(
    imap, newsroom: Newsroom, digest, monkeypatch, settings, password, said
):
    changes = dict(settings)
    port = {"refused": free_port(), "plain": imap.plain_port}.get(str(changes.pop("port", "")), imap.tls_port)
    if password is not None:
        monkeypatch.setenv("DIGEST_IMAP_PASSWORD", password)
    if changes.pop("password_missing", False):
        monkeypatch.delenv("DIGEST_IMAP_PASSWORD")
    if not changes.pop("trusted", True):
        monkeypatch.delenv("SSL_CERT_FILE")
    use_imap(newsroom, imap, port=port, **changes)
    result = digest("bounces")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: 127.0.0.1:{port}: {said}"), result.stderr
    assert "Traceback" not in result.stderr


def _rows(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return sorted(db.execute(f"SELECT * FROM {table}").fetchall())


def test_message_id_of_reads_the_header_block_only():
    assert message_id_of(b"Subject: x\r\nMessage-Id:\r\n <a@b>\r\n\r\nMessage-ID: <body@x>\r\n") == "<a@b>"
    assert message_id_of(b"Subject: x\n\nMessage-ID: <body@x>\n") == ""


def test_local_mailbox_reads_in_order(tmp_path: Path):
    box = mailbox.Maildir(tmp_path / "m", factory=None, create=True)
    for n in range(3):
        box.add(f"Message-ID: <{n}@x>\n\nbody {n}\n".encode())
    local = LocalMailbox(tmp_path / "m")
    assert local.count() == 3
    assert sorted(m.message_id for batch in local.read(lambda key: True) for m in batch) == [
        "<0@x>",
        "<1@x>",
        "<2@x>",
    ]


# -- VERP ------------------------------------------------------------------------------------------------


def test_verp_sender_and_token_round_trip():
    from digestcli.message.verp import TOKEN_CHARS, VerpIndex, check_bounce_address, verp_token

    secret = b"workspace secret"
    sender = verp_sender("bounces@news.example.org", "w-1", "Ann@Example.org", secret)
    local, _, domain = sender.partition("@")
    token = local.partition("+")[2]
    assert domain == "news.example.org" and len(token) == TOKEN_CHARS
    assert re.fullmatch(r"[a-z2-7]{21}", token)
    assert verp_sender("bounces@news.example.org", "w-1", "ann@example.org", secret) == sender  # one reader
    assert verp_sender("bounces@news.example.org", "w-2", "ann@example.org", secret)[-26:] == sender[-26:]
    assert verp_token(sender.upper()) == token  # a server that changed the case
    assert verp_token(f"<{sender}>") == token
    assert verp_token("bounces@news.example.org") is None
    assert verp_token("bounces+short@news.example.org") is None

    asked: list[str] = []

    def readers_of(issue: str) -> list[str]:
        asked.append(issue)
        return {"w-1": ["ann@example.org", "bo@example.org"], "w-2": ["ann@example.org"]}[issue]

    index = VerpIndex(secret, ["w-1", "w-2"], readers_of)
    assert index.lookup(token.upper()) == ("w-1", "ann@example.org")
    assert asked == ["w-1"]  # only the issue the token names is hashed
    assert index.lookup(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    other = verp_sender("b@x.org", "w-1", "ann@example.org", b"another secret").split("+")[1][:21]
    assert index.lookup(other) is None
    assert index.lookup(verp_sender("b@x.org", "w-3", "ann@example.org", secret).split("+")[1][:21]) is None

    assert check_bounce_address("b" * 42 + "@news.example.org") == ""
    assert "longer than 42" in check_bounce_address("b" * 43 + "@news.example.org")
    with pytest.raises(ValueError):
        verp_sender("b" * 43 + "@news.example.org", "w-1", "ann@example.org", secret)
    assert len(verp_sender("b" * 42 + "@x.org", "w-1", "ann@example.org", secret).split("@")[0]) == 64
