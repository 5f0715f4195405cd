# ruff: noqa: E501 -- the corpus table reads best as one line a file
"""Classifying returned mail: every message of the corpus (tests/fixtures/bounces/) against what
it is, and the classifier on broken, huge and hostile input."""

from __future__ import annotations

import email
import email.policy
import random
from dataclasses import dataclass

import pytest
from bounce_corpus import CORPUS, corpus_files, varied_reports

from digestcli.bounces.classify import KINDS, Report, classify, classify_bytes, read_message

UNSUBSCRIBE = "unsubscribe@news.example.org"
LIST_ID = "weekly.news.example.org"


def ours(hex24: str) -> str:
    return f"<the-weekly-42.{hex24}@news.example.org>"


@dataclass(frozen=True)
class Expect:
    kind: str
    recipients: tuple[str, ...] = ()
    status: str = ""
    tokens: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    list_ids: tuple[str, ...] = ()
    unsubscribe_token: str = ""
    delayed: bool = False


# One line a corpus file: what it is, whom and what it names.
EXPECTED: dict[str, Expect] = {
    "postfix-hard-5.1.1.eml": Expect("hard", ("ann.lee@example.net",), "5.1.1", ("k7wq2arsstjzreyt5r3xs",), (ours("3acb6ce7ddc912a08bf8e054"),), (LIST_ID,)),
    "postfix-soft-mailbox-full.eml": Expect("soft", ("ben@example.com",), "4.2.2", ("k7wq25tjs3xzoad7dw32l",), (ours("7043684554076c725c91b3c0"),), (LIST_ID,)),
    "postfix-delayed.eml": Expect("soft", ("chloe@example.org",), "4.4.1", ("k7wq2wgw6xge37onr5qh2",), (ours("54bb45ecae4e2792d638dfd0"),), (LIST_ID,), delayed=True),
    "postfix-plain-nondsn.eml": Expect("soft", ("lena@example.org",), "5.2.2", ("k7wq2e6qtb3mhy4kwz2rn",), (ours("b2c3d4e5f6a7b8c9d0e1f2a3"),), (LIST_ID,)),
    "exim-dsn.eml": Expect("hard", ("dmitri@example.net",), "5.0.0", ("k7wq2f5ctbwkyfmrb2oxh",), (ours("3be158e7e5d87c923a15c378"),), (LIST_ID,)),
    "exim-plain.eml": Expect("hard", ("bob@example.com",), "", ("k7wq245cishu3xpnzikwb",), (ours("4294c9e3107cf85da7d18359"),), (LIST_ID,)),
    "exim-warning-delayed.eml": Expect("soft", ("owen@example.com",), "", ("k7wq2n3vpe6tqzka4yxw2",), delayed=True),
    "exchange-ndr-dsn.eml": Expect("hard", ("kate@example.net",), "5.1.10", ("k7wq2pq4zrm6xcl2ho7va",), (ours("9f2b1c7e5a3d4068b1e2c3d4"),), (LIST_ID,)),
    "exchange-ndr-plain.eml": Expect("hard", ("carol@example.com",), "5.1.1", ("k7wq2ghy4mterw63f3kh4",), (ours("a1e7b446d32faa0d81dd0f46"),), (LIST_ID,)),
    "exchange-ndr-html.eml": Expect("soft", ("dave@example.com",), "5.2.2", ("k7wq2yqjmneutfnm4itsc",), (ours("c4123a424810969e8bcbf742"),), (LIST_ID,)),
    "gmail-address-not-found.eml": Expect("hard", ("erin@example.com",), "5.1.1", ("k7wq2j75rufvaxcru4be3",), (ours("da6c80fa7db0f116df58c4fd"),), (LIST_ID,)),
    "gmail-plain-old.eml": Expect("hard", ("frank@example.com",), "5.1.1", ("k7wq24gxm5kcyi5bahtx2",), (ours("2385545ee4193b094be387a6"),), (LIST_ID,)),
    "yahoo-plain.eml": Expect("hard", ("grace@example.net",), "", ("k7wq2mkcl632w3xjii325",), (ours("d88e70088d102ae8ee751181"),), (LIST_ID,)),
    "ses-dsn.eml": Expect("hard", ("hana@example.org",), "5.1.1", ("k7wq2d3m4gffujgln74mk",), (ours("4fb8f2439f9cb441dc78982d"),), (LIST_ID,)),
    # SES replaced the Message-ID and the Return-Path: only the List-Id says it is ours.
    "ses-replaced-message-id.eml": Expect("hard", ("jun@example.org",), "5.1.1", (), ("<0100018c4e5a6b10-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d-000000@email.amazonses.example.com>",), (LIST_ID,)),
    # Refusals about the sending, not the reader: a banned IP, DMARC, a poor reputation.
    "outlook-blocked-ip.eml": Expect("blocked", ("nina@example.com",), "5.7.606", ("k7wq2n7obq4ip3xkfy2vd",), (ours("5e6f7a8b9c0d1e2f3a4b5c6d"),), (LIST_ID,)),
    "gmail-dmarc.eml": Expect("blocked", ("otto@example.com",), "5.7.26", ("k7wq2s4dmrc5gqz7wuh3e",), (ours("6f7a8b9c0d1e2f3a4b5c6d7e"),), (LIST_ID,)),
    "qmail-blocked-reputation.eml": Expect("blocked", ("pia@example.org",), "", ("k7wq2qbl6ckx4rsp2taz5",), (ours("7a8b9c0d1e2f3a4b5c6d7e8f"),), (LIST_ID,)),
    "qmail.eml": Expect("hard", ("henry@example.com",), "5.1.1", ("k7wq2bslnfsywow4quozc",), (ours("ef875adf0c51d59c8b1335fa"),), (LIST_ID,)),
    # An alias that expanded to two readers: one hard, one soft; the harder wins.
    "dsn-two-recipients.eml": Expect("hard", ("family@example.org", "liam@example.org", "mia@example.org"), "5.1.1", ("k7wq2t4hyb2lq6fmzw3ep",), (ours("6e2d9a4c1b7f3e5d8a0c2b4f"),), (LIST_ID,)),
    "dsn-delivered.eml": Expect("autoreply", (), "", ("k7wq2q2wfn5xcr3vhs6dk",)),
    "arf-yahoo.eml": Expect("complaint", ("ivy@example.net",), "", ("k7wq2g65yfu344zaw7qhe",), (ours("56646a3a4c3391ed0807dc91"),), (LIST_ID,)),
    "arf-aol-redacted.eml": Expect("complaint", (), "", ("k7wq2x5rjd3nqy7wkse2a",), (ours("0d9c8b7a6f5e4d3c2b1a0f9e"),), (LIST_ID,)),
    "arf-minimal.eml": Expect("complaint", ("jack@example.org",), "", (), (ours("1c2d3e4f5a6b7c8d9e0f1a2b"),), (LIST_ID,)),
    "autoreply-rfc3834.eml": Expect("autoreply", (), "", ("k7wq2r2kdm5ybh7sq4ezf",), (ours("8b7c6d5e4f3a2b1c0d9e8f7a"),)),
    "autoreply-exchange.eml": Expect("autoreply", (), "", ("k7wq2v6lnh4ktx2mdy5qb",), (ours("5c4b3a2f1e0d9c8b7a6f5e4d"),)),
    "autoreply-abwesenheit.eml": Expect("autoreply", (), "", ("k7wq2z3nfw7gkp5rbt6hy",)),
    "autoreply-vacation-x-autoreply.eml": Expect("autoreply", (), "", ("k7wq2c4pxq6mzs3lvr7dn",)),
    "unsubscribe-mailto.eml": Expect("unsubscribe", ("rosa@example.net",), unsubscribe_token="v2.Uk9zYUV4YW1wbGVOZXRUb2tlbkhlcmU"),
    "unsubscribe-to-address.eml": Expect("unsubscribe", ("SVEN@example.org",)),
    "unsubscribe-subject.eml": Expect("unsubscribe", ("tom@example.com",), ids=(ours("e1f2a3b4c5d6e7f8a9b0c1d2"),)),
    "unsubscribe-own-text-de.eml": Expect("unsubscribe", ("ulrike@example.org",), ids=(ours("f0e1d2c3b4a5968778695a4b"),)),
    "unsubscribe-html-fr.eml": Expect("unsubscribe", ("vero@example.net",)),
    "digest-serve-unsubscribe.eml": Expect("unsubscribe", unsubscribe_token="v2.WmFyYUV4YW1wbGVPcmdUb2tlblNpZ25lZA"),
    # Asks, but for someone else or to another address: the editor's to read.
    "reply-unsubscribe-someone-else.eml": Expect("possible-unsubscribe", ("Bob.Case@example.com",), ids=(ours("8b9c0d1e2f3a4b5c6d7e8f9a"),)),
    "reply-another-address-sv.eml": Expect("possible-unsubscribe", ("zara@example.org",), ids=(ours("9c0d1e2f3a4b5c6d7e8f9a0b"),)),
    # "unsubscribe" only in the quoted footer, or in a long letter: the editor's to read.
    "reply-quoted-footer.eml": Expect("other", ids=(ours("0a9b8c7d6e5f4a3b2c1d0e9f"),)),
    "reply-outlook-quoted.eml": Expect("other"),
    "letter-mentions-unsubscribe.eml": Expect("other"),
    "editor-ordinary-mail.eml": Expect("other"),
    # The editor's own mail bounced: a hard bounce all the same, about a message digest never sent.
    "foreign-report.eml": Expect("hard", ("printer-shop@example.com",), "5.1.1", (), ("<CAEd1t0rQu0te=4nnual+pr1nt@mail.news.example.org>",), ("allotments.lists.example.net",)),
    "unrecognised-plain.eml": Expect("unrecognised", ("paul@example.com",), "", ("k7wq2h7mcs2dwq5nlx4jt",)),
    "garbled-no-boundary.eml": Expect("hard", ("kim@example.com",), "5.1.1", ("k7wq2k5sdb6prw2tjy3mx",)),
    # Cut short, with bytes of no charset in the recipient: hard from the DSN, the reader by VERP.
    "garbled-truncated.eml": Expect("hard", (), "5.1.1", ("k7wq2m6tfc7qsx3ukz4ny",)),
}  # fmt: skip


def read(name: str) -> Report:
    return classify_bytes((CORPUS / name).read_bytes(), unsubscribe_address=UNSUBSCRIBE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    expected = EXPECTED[name]
    report = read(name)
    assert report.kind == expected.kind, report.reason
    assert report.recipients == expected.recipients
    assert report.status == expected.status
    assert report.verp_tokens == expected.tokens
    assert report.original_message_ids == expected.ids
    assert report.original_list_ids == expected.list_ids
    assert report.unsubscribe_token == expected.unsubscribe_token
    assert report.delayed == expected.delayed
    assert report.reason  # every verdict says why
    message = email.message_from_bytes((CORPUS / name).read_bytes(), policy=email.policy.default)
    assert report.message_id == (str(message["Message-ID"] or "").strip())


def test_every_corpus_file_has_a_line_in_the_table() -> None:
    assert sorted(p.name for p in corpus_files()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 25
    assert {e.kind for e in EXPECTED.values()} == set(KINDS)


def test_a_report_keeps_its_subject_decoded() -> None:
    assert read("autoreply-abwesenheit.eml").subject.startswith("Abwesenheitsnotiz: The Weekly #42")
    assert read("exchange-ndr-dsn.eml").subject == (
        "Undeliverable: The Weekly #42: night trains return, a new library and more"
    )


def test_a_dsn_with_two_recipients_keeps_each_verdict() -> None:
    report = read("dsn-two-recipients.eml")
    assert [(f.address, f.kind, f.status, f.original_address) for f in report.failures] == [
        ("liam@example.org", "hard", "5.1.1", "family@example.org"),
        ("mia@example.org", "soft", "4.2.2", "family@example.org"),
    ]
    assert "1 hard, 1 soft" in report.reason


def test_diagnostics_are_the_servers_own_words_on_one_line() -> None:
    assert read("postfix-hard-5.1.1.eml").diagnostic == (
        "550 5.1.1 <ann.lee@example.net>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert read("qmail.eml").diagnostic == "Sorry, no mailbox here by that name. (#5.1.1)"
    assert "554 delivery error" in read("yahoo-plain.eml").diagnostic


def test_a_full_mailbox_is_soft_even_with_a_permanent_code() -> None:
    for name in ("exchange-ndr-html.eml", "postfix-plain-nondsn.eml"):
        report = read(name)
        assert (report.kind, report.status) == ("soft", "5.2.2")
        assert "full" in report.reason


# -- unsubscribe requests: careful --------------------------------------------------------------


def test_mail_to_the_unsubscribe_address_needs_the_setting() -> None:
    data = (CORPUS / "unsubscribe-to-address.eml").read_bytes()
    assert classify_bytes(data).kind == "other"
    for setting in (
        "unsubscribe@news.example.org",
        "UNSUBSCRIBE@news.example.org",
        "mailto:unsubscribe@news.example.org",
    ):
        assert classify_bytes(data, unsubscribe_address=setting).kind == "unsubscribe"
    assert classify_bytes(data, unsubscribe_address="leave@news.example.org").kind == "other"


def mail(subject: str, body: str, *, headers: str = "", sender: str = "reader@example.net") -> bytes:
    return (
        f"From: A Reader <{sender}>\nTo: weekly@news.example.org\nSubject: {subject}\n"
        f"Message-ID: <t1@example.net>\n{headers}MIME-Version: 1.0\n"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}"
    ).encode()


@pytest.mark.parametrize(
    ("subject", "body", "kind"),
    [
        ("unsubscribe", "", "unsubscribe"),
        ("UNSUBSCRIBE v2.AbC_d-9", "", "unsubscribe"),
        ("Please remove me", "", "unsubscribe"),
        ("Re: The Weekly #42", "Remove me from this list please.\n\nThanks", "unsubscribe"),
        ("Re: The Weekly #42", "Merci de me désabonner.", "unsubscribe"),
        ("Re: The Weekly #42", "Bitte abmelden", "unsubscribe"),
        ("Re: The Weekly #42", "Please don't unsubscribe me, I was only testing the link.", "other"),
        ("Unsubscribe from The Weekly", "", "unsubscribe"),
        ("STOP", "", "unsubscribe"),
        ("Re: The unsubscribe link is broken", "Thought you should know.", "other"),
        ("Unsubscribe link is broken", "", "other"),
        ("Re: The Weekly #42", "I was about to unsubscribe, but the bridge story won me back!", "other"),
        ("Re: The Weekly #42", "How do I unsubscribe my mother? She moved.", "other"),
        ("Vacation rentals by the river: a story idea", "Worth a look?", "other"),
        ("Re: The Weekly #42", "Great issue!\n\n> To unsubscribe reply with unsubscribe", "other"),
        ("Re: The Weekly #42", "Great issue!\n-- \nSent from my phone. Unsubscribe: link", "other"),
        ("Re: The Weekly #42", "Great issue!\n\n-----Original Message-----\nunsubscribe", "other"),
        (
            "Re: The Weekly #42",
            "Great!\n\nAm Fr., 20. Nov. 2026 um 07:00 schrieb The Weekly:\nabmelden",
            "other",
        ),
    ],
)
def test_unsubscribe_words_count_only_in_the_senders_own_text(subject: str, body: str, kind: str) -> None:
    report = classify_bytes(mail(subject, body))
    assert report.kind == kind, report.reason
    if kind == "unsubscribe":
        assert report.recipients == ("reader@example.net",)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        # Subjects that ask, about something else.
        ("Re: Remove me from the rota", "See you Saturday."),
        ("Unsubscribe from the Slack channel?", ""),
        ("Please remove me from the volunteers list", ""),
        # Own text that asks for someone else, to another address, or from another list.
        ("Re: The Weekly #42", "Can you take me off the volunteer list for Saturday?"),
        ("Re: The Weekly #42", "Please unsubscribe my wife, she reads my copy."),
        ("Re: The Weekly #42", "Could you stop sending it to my old work address, zara@oldjob.example?"),
        ("Re: The Weekly #42", "Remove me from your Sunday list, keep me on the weekly."),
        ("Re: The Weekly #42", "Loved it. Unsubscribe him: bo@example.org"),
    ],
)
def test_an_ask_that_names_another_address_person_or_list_is_only_possible(subject: str, body: str) -> None:
    report = classify_bytes(mail(subject, body), newsletter="The Weekly")
    assert report.kind == "possible-unsubscribe", report.reason
    assert report.recipients == ("reader@example.net",)
    assert "but it" in report.reason


@pytest.mark.parametrize(
    ("subject", "body", "asked"),
    [
        ("Stop", "", "subject"),  # whether it is about the newsletter is for the acting code
        ("Unsubscribe from The Weekly", "", "subject"),
        ("Re: The Weekly #42", "Please take me off The Weekly list.", "text"),
        ("Re: The Weekly #42", "Unsubscribe me please, my address is reader@example.net", "text"),
    ],
)
def test_an_ask_for_the_sender_and_this_list_is_an_unsubscribe(subject: str, body: str, asked: str) -> None:
    report = classify_bytes(mail(subject, body), newsletter="The Weekly")
    assert (report.kind, report.asked) == ("unsubscribe", asked), report.reason


@pytest.mark.parametrize(
    "text",
    [
        "The unsubscribe link is broken.",
        "Loved the piece on opt-out cookies.",
        "Your opt out page is slow.",
    ],
)
def test_the_words_as_the_name_of_a_thing_do_not_ask(text: str) -> None:
    assert classify_bytes(mail("Re: The Weekly #42", text)).kind == "other"


@pytest.mark.parametrize(
    "attribution",
    [
        "Begin forwarded message:\n\nFrom: The Weekly <weekly@news.example.org>\nSubject: The Weekly #42\n",
        "De : The Weekly <weekly@news.example.org>\nEnvoyé : vendredi 20 novembre 2026 07:00\n",
        "-------- Mensaje original --------\nAsunto: The Weekly #42\n",
        "---------- Forwarded message ---------\nDate: Fri, 20 Nov 2026\n",
        "Den fre 20 nov. 2026 kl 07:00 skrev The Weekly <weekly@news.example.org>:",
        "пт, 20 нояб. 2026 г. в 07:00, The Weekly <weekly@news.example.org>:",
        "2026年11月20日(金) 7:00 The Weekly <weekly@news.example.org>:",
        "2026年11月20日(金) 7:00 The Weekly <\nweekly@news.example.org>:",
        "The Weekly <weekly@news.example.org> schrieb am Fr., 20. Nov. 2026, 07:00:",
        "Em sex., 20 de nov. de 2026 às 07:00, The Weekly <weekly@news.example.org>\nescreveu:",
        "W dniu 20.11.2026 o 07:00, The Weekly pisze:\n\nFrom: The Weekly",
    ],
)
def test_the_quoted_footer_under_any_attribution_is_not_the_senders_own_text(attribution: str) -> None:
    body = (
        f"Great issue, thanks!\n\n{attribution}\nHello Ann,\nUnsubscribe: https://news.example.org/u/v2.abc\n"
    )
    report = classify_bytes(mail("Re: The Weekly #42", body))
    assert report.kind == "other", report.reason
    # The cut leaves the sender's own words: an ask above the quote still counts.
    asking = classify_bytes(
        mail("Re: The Weekly #42", body.replace("Great issue, thanks!", "Unsubscribe me."))
    )
    assert asking.kind == "unsubscribe", asking.reason


def test_an_unsubscribe_subject_token_is_kept_for_checking() -> None:
    assert classify_bytes(mail("unsubscribe v2.AbC_d-9", "")).unsubscribe_token == "v2.AbC_d-9"
    assert classify_bytes(mail("unsubscribe", "")).unsubscribe_token == ""


def test_an_auto_reply_is_never_an_unsubscribe_nor_a_bounce() -> None:
    for headers in ("Auto-Submitted: auto-replied\n", "X-Autorespond: yes\n", "Precedence: auto_reply\n"):
        report = classify_bytes(mail("unsubscribe", "I am away. Unsubscribe requests wait.", headers=headers))
        assert report.kind == "autoreply", headers
    report = classify_bytes(mail("Out of Office: The Weekly #42", "Back on Monday. 550 5.1.1 user unknown"))
    assert report.kind == "autoreply"
    # Auto-Submitted: no is a person's mail.
    assert classify_bytes(mail("Re: The Weekly", "Nice.", headers="Auto-Submitted: no\n")).kind == "other"


def test_an_unsubscribe_with_no_sender_is_listed_not_guessed() -> None:
    data = b"To: weekly@news.example.org\nSubject: unsubscribe\n\n"
    report = classify_bytes(data)
    assert report.kind == "unrecognised"
    assert report.recipients == ()


# -- bounces in no standard form: never guessed ---------------------------------------------------


def plain_bounce(own_text: str, quoted: str = "") -> bytes:
    return (
        "Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.net\n"
        "To: bounces+k7wq2aaaabbbbccccdddd@news.example.org\nSubject: failure notice\n"
        f"Message-ID: <b1@mx.example.net>\n\n{own_text}\n"
        + (f"\n--- Below this line is a copy of the message.\n\n{quoted}" if quoted else "")
    ).encode()


def test_codes_in_the_quoted_original_do_not_decide() -> None:
    quoted = (
        "Return-Path: <bounces+k7wq2aaaabbbbccccdddd@news.example.org>\nTo: rita@example.com\n"
        f"Message-ID: {ours('0' * 24)}\nList-Id: <weekly.news.example.org>\n\n"
        "This week: 550 5.1.1 user unknown, a play in three acts; the mailbox is full of letters.\n"
    )
    report = classify_bytes(plain_bounce("Your message could not be handled.", quoted))
    assert report.kind == "unrecognised"
    assert report.recipients == ("rita@example.com",)  # from the quoted To, the one address there
    assert report.original_message_ids == (ours("0" * 24),)
    assert report.original_list_ids == (LIST_ID,)
    assert report.verp_tokens == ("k7wq2aaaabbbbccccdddd",)


@pytest.mark.parametrize(
    ("text", "kind", "status"),
    [
        ("<rita@example.com>:\n421 4.4.2 connection dropped; will retry", "soft", "4.4.2"),
        ("<rita@example.com>:\nRemote host said: 553 sorry, relaying denied", "blocked", ""),
        ("<rita@example.com>:\nRemote host said: 550 No such user here", "hard", ""),
        ("<rita@example.com>:\nRemote host said: 550 mailbox unavailable", "soft", ""),
        (
            "<rita@example.com>: 554 5.7.1 Service unavailable; client host blocked using zen.spamhaus",
            "blocked",
            "5.7.1",
        ),
        ("<rita@example.com>: 550 5.7.26 unauthenticated mail is not accepted (DMARC)", "blocked", "5.7.26"),
        ("<rita@example.com>: 550 5.1.1 user unknown\n<ann@example.com>: 550 5.7.1 blocked", "hard", "5.1.1"),
        ("<rita@example.com>: this is a permanent error; I've given up", "soft", ""),
        ("<rita@example.com>: message rejected: your IP is listed at bl.example.org", "blocked", ""),
        ("<rita@example.com>:\nRemote host said: 452 too many recipients", "soft", ""),
        ("<rita@example.com>: 552 message size exceeds fixed maximum", "soft", ""),
        (
            "<ann@example.com>: 550 5.1.1 user unknown\n<rita@example.com>: 452 4.2.2 over quota",
            "hard",
            "5.1.1",
        ),
        ("<rita@example.com>: user unknown", "hard", ""),
        ("<rita@example.com>: mailbox is full", "soft", ""),
        ("<rita@example.com>: delivery temporarily suspended", "soft", ""),
        ("<rita@example.com>: permanent error, but we will retry later", "unrecognised", ""),
        ("<rita@example.com>: something happened", "unrecognised", ""),
        ("Host 192.0.2.4 said something about 5.6.7.8 on port 25", "unrecognised", ""),
    ],
)
def test_a_plain_bounce_is_hard_blocked_or_soft_only_when_it_says_so(
    text: str, kind: str, status: str
) -> None:
    report = classify_bytes(plain_bounce(text))
    assert (report.kind, report.status) == (kind, status), report.reason


def test_a_person_writing_about_undelivered_mail_is_not_a_bounce() -> None:
    data = mail("Issue 42 not delivered?", "Hi, I never got issue 42. Was it sent? 550 people got it?")
    assert classify_bytes(data).kind == "other"


def dsn(status: str, diagnostic: str, action: str = "failed", to: str = "bounces@news.example.org") -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.net\nTo: {to}\nSubject: Undelivered Mail\n"
        "Message-ID: <d1@mx.example.net>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nIt could not be delivered.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; rita@example.com\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n\n--b--\n"
    ).encode()


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 user unknown", "hard"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "hard"),
        ("5.2.1", "550 5.2.1 mailbox disabled", "hard"),
        ("5.0.0", "550 5.1.1 <rita@example.com>: Recipient address rejected: User unknown", "hard"),
        ("5.0.0", "550 No such user here", "hard"),
        ("5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable, user does not exist", "hard"),
        # About the sending: never a reason to remove the reader.
        ("5.7.606", "550 5.7.606 Access denied, banned sending IP [203.0.113.9]", "blocked"),
        (
            "5.7.26",
            "550-5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy",
            "blocked",
        ),
        ("5.7.1", "554 5.7.1 Message rejected as spam", "blocked"),
        ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied", "blocked"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "blocked"),
        ("5.1.8", "553 5.1.8 Sender address rejected: Domain not found", "blocked"),
        ("5.0.0", "554 Your IP is listed at bl.example.org", "blocked"),
        # Permanent, but not that the address is gone: counted toward the soft-bounce limit.
        ("5.0.0", "550 Requested action not taken: mailbox unavailable", "soft"),
        ("5.5.3", "552 5.5.3 Too many recipients", "soft"),
        ("5.2.2", "552 5.2.2 Mailbox full", "soft"),
        ("4.4.1", "451 4.4.1 no answer from host", "soft"),
    ],
)
def test_only_a_gone_address_is_hard(status: str, diagnostic: str, kind: str) -> None:
    report = classify_bytes(dsn(status, diagnostic))
    assert (report.kind, report.status, report.delayed) == (kind, status, False), report.reason
    assert [f.kind for f in report.failures] == [kind]


def test_a_delay_is_a_soft_bounce_marked_delayed() -> None:
    report = classify_bytes(dsn("4.4.7", "451 4.4.7 delivery time expired, still trying", action="delayed"))
    assert (report.kind, report.delayed) == ("soft", True)
    assert report.failures[0].delayed and "still trying" in report.reason
    failed = classify_bytes(dsn("4.4.7", "451 4.4.7 retry timeout exceeded"))
    assert (failed.kind, failed.delayed) == ("soft", False)


def test_a_verp_token_after_a_bounce_address_with_a_plus_of_its_own() -> None:
    from digestcli.message.verp import verp_sender

    sender = verp_sender("weekly+bounces@news.example.org", "the-weekly-42", "rita@example.com", b"secret")
    token = sender.rpartition("+")[2].partition("@")[0]
    assert len(token) == 21
    assert classify_bytes(dsn("5.1.1", "550 5.1.1 user unknown", to=sender)).verp_tokens == (token,)
    assert classify_bytes(dsn("5.1.1", "x", to=sender.upper())).verp_tokens == (token,)
    # The bounce address alone carries no token: "bounces" is its own local part's.
    assert classify_bytes(dsn("5.1.1", "x", to="weekly+bounces@news.example.org")).verp_tokens == ()


def test_the_newsletters_own_addresses_are_never_recipients() -> None:
    text = (
        "Your message from <bounces+k7wq2aaaabbbbccccdddd@news.example.org> to rita@example.com\n"
        "failed: 550 5.1.1 no such user. Write to postmaster@mx.example.net for help."
    )
    report = classify_bytes(plain_bounce(text))
    assert (report.kind, report.recipients) == ("hard", ("rita@example.com",))


# -- robustness -----------------------------------------------------------------------------------


def test_the_corpus_reads_the_same_with_the_modern_email_policy() -> None:
    for path in corpus_files():
        modern = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        report = classify(modern, unsubscribe_address=UNSUBSCRIBE)
        assert report == classify(read_message(path.read_bytes()), unsubscribe_address=UNSUBSCRIBE), path.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_report_cut_short_anywhere_never_raises(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        report = classify_bytes(data[:cut], unsubscribe_address=UNSUBSCRIBE)
        assert report.kind in KINDS


def test_noise_and_nonsense_never_raise() -> None:
    rng = random.Random(42)
    samples = [b"", b"\x00\xff" * 50, b"Content-Type: multipart/report\n\n--\n--\n", b"From:\n\n"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(2000))) for _ in range(50)]
    # Corpus files with bytes flipped at random: broken boundaries, headers, encodings.
    for path in corpus_files():
        flipped = bytearray(path.read_bytes())
        for _ in range(20):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        samples.append(bytes(flipped))
    for sample in samples:
        assert classify_bytes(sample).kind in KINDS


def test_hostile_structure_is_bounded() -> None:
    # 5,000 nested multiparts: the email parser's own recursion gives up; the header and the raw
    # text are still read.
    nested = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(5000))
    preamble = "\n\n<rita@example.com>: 550 5.1.1 no such user\n"
    bounce = "From: MAILER-DAEMON@mx.example.net\nSubject: x\n" + nested.replace("\n\n", preamble, 1)
    report = classify_bytes(bounce.encode())
    assert (report.kind, report.recipients) == ("hard", ("rita@example.com",))
    assert "could not be parsed" in report.reason
    assert classify_bytes(f"From: a@example.net\n{nested}".encode()).kind == "other"
    # 3,000 parts side by side: only the first few are read.
    parts = "".join("--b\nContent-Type: text/plain\n\nfiller\n" for _ in range(3000))
    data = f'From: a@example.net\nContent-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'.encode()
    assert classify_bytes(data).kind == "other"


def test_a_huge_bounce_is_read_to_the_point() -> None:
    """A bounce that carries back a 6 MB attachment: the verdict comes from its first parts."""
    data = (CORPUS / "exim-dsn.eml").read_bytes()
    attachment = b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + b"QUJD" * 1_500_000
    data = data.replace(
        b"--1795672812-eximdsn-1580459124--",
        b"--1795672812-eximdsn-1580459124\n" + attachment + b"\n--1795672812-eximdsn-1580459124--",
    )
    report = classify_bytes(data)
    assert (report.kind, report.recipients) == ("hard", ("dmitri@example.net",))
    plain = (CORPUS / "exim-plain.eml").read_bytes() + b"\n" + b"x" * 3_000_000 + b"\n"
    assert classify_bytes(plain).kind == "hard"


def test_an_unknown_charset_and_undecodable_bytes_are_read_as_far_as_they_go() -> None:
    data = plain_bounce("<rita@example.com>: 550 5.1.1 user unknown BAD").replace(b"BAD", b"\xff\xfe")
    data = data.replace(b"\n\n", b"\nContent-Type: text/plain; charset=x-no-such-charset\n\n", 1)
    report = classify_bytes(data)
    assert (report.kind, report.recipients, report.status) == ("hard", ("rita@example.com",), "5.1.1")


# -- the varied corpus for benchmarks -------------------------------------------------------------


def test_varied_reports_are_different_reports_of_the_same_kinds() -> None:
    files = corpus_files()
    copies = list(varied_reports(2 * len(files)))
    reports = [classify_bytes(data, unsubscribe_address=UNSUBSCRIBE) for data in copies]
    for i, report in enumerate(reports):
        assert report.kind == EXPECTED[files[i % len(files)].name].kind, files[i % len(files)].name
    # Two copies of one file name other readers, tokens, and have other Message-IDs.
    k = [f.name for f in files].index("postfix-hard-5.1.1.eml")
    first, second = reports[k], reports[k + len(files)]
    assert first.recipients != second.recipients
    assert first.verp_tokens != second.verp_tokens
    assert first.original_message_ids != second.original_message_ids
    ids = [r.message_id for r in reports if r.message_id]
    assert len(ids) == len(set(ids))
