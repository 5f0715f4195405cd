"""Benchmark: ``digest bounces`` (a process of its own, as an editor runs it) over a mailbox of
10,000 reports about a real send to 10,000 readers, read from a Maildir and from a local Dovecot
over IMAP with TLS; then the same mailbox read again (everything known: nothing acted on twice).

    python bench/bounces_bench.py                   # 10,000 reports, Maildir and IMAP
    python bench/bounces_bench.py --reports 2000 --source maildir

The reports are a mix a weekly list sees after a send to a list gone stale: hard bounces (DSNs
quoting the original's headers, named by VERP), soft bounces, ARF complaints, SES-style bounces
whose Message-ID was replaced (the List-Id confirms them), auto-replies, unsubscribe mails and
the editor's own letters. The send itself goes through the outbox first (its time is not counted).

Figures: wall time, reports/s, the process's CPU time (user + system) per report, and its peak
RSS. The machine may be busy: trust CPU time over wall time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import email
import json
import mailbox
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SETTINGS = """\
[newsletter]
title = "The Weekly"
from = "The Weekly <weekly@news.example.org>"
unsubscribe_mailto = "unsubscribe@news.example.org"
"""


def build_workspace(root: Path, readers: int) -> dict[str, bytes]:
    """A workspace that sent one issue to ``readers`` readers; reader -> its message's header block."""
    from smtp_server import make_issue

    from digestcli.config import find_workspace
    from digestcli.delivery import send_issue

    (root / "digest.toml").write_text(SETTINGS, encoding="utf-8")
    rows = "".join(f"reader{n:06d}@example{n % 97}.org,Reader {n}\n" for n in range(readers))
    (root / "subscribers.csv").write_text(f"email,name\n{rows}", encoding="utf-8")
    started = time.monotonic()
    summary = send_issue(make_issue(issue_id="the-weekly-42"), find_workspace(root))
    print(f"sent {summary.delivered:,} messages through the outbox in {time.monotonic() - started:.1f} s")
    outbox = mailbox.Maildir(root / "outbox", factory=None)
    headers = {}
    for key in outbox.iterkeys():
        head = outbox.get_bytes(key).split(b"\n\n", 1)[0] + b"\n"
        reader = email.message_from_bytes(head)["To"].split("<")[-1].strip(">").lower()
        headers[reader] = head
    return headers


def reports(root: Path, headers: dict[str, bytes], count: int) -> list[bytes]:
    from digestcli.config import find_workspace
    from digestcli.message.tokens import make_token
    from digestcli.message.verp import senders_for
    from digestcli.state.secret import read_secret

    secret = read_secret(find_workspace(root).state)
    assert secret is not None
    readers = sorted(headers)
    verp_sender = senders_for("bounces@news.example.org", "the-weekly-42", secret)
    made = []
    for n in range(count):
        reader = readers[n % len(readers)]
        head = headers[reader]
        verp = verp_sender(reader)
        mid = f"<{secrets.token_hex(10)}@mx{n % 50}.example.net>"
        kind = n % 20
        if kind < 12:
            made.append(_dsn(reader, verp, mid, head, "5.1.1", "failed"))
        elif kind < 15:
            made.append(_dsn(reader, verp, mid, head, "4.2.2", "delayed"))
        elif kind == 15:
            ses = head.replace(b"Message-ID: <the-weekly-42.", b"Message-ID: <ses-")
            made.append(_dsn(reader, "bounces@news.example.org", mid, ses, "5.1.1", "failed"))
        elif kind == 16:
            made.append(_arf(reader, mid, head))
        elif kind == 17:
            made.append(
                f"From: {reader}\nTo: {verp}\nSubject: Out of office\nMessage-ID: {mid}\n"
                f"Auto-Submitted: auto-replied\n\nI am away until Monday.\n".encode()
            )
        elif kind == 18:
            made.append(
                f"From: {reader}\nTo: unsubscribe@news.example.org\nMessage-ID: {mid}\n"
                f"Subject: unsubscribe {make_token(reader, secret)}\n\nunsubscribe\n".encode()
            )
        else:
            made.append(
                f"From: Friend <friend{n}@example.com>\nTo: editor@news.example.org\nMessage-ID: {mid}\n"
                f"Subject: A story tip\n\nHave you seen the new bridge? {'Lorem ipsum. ' * 40}\n".encode()
            )
    return made


def _dsn(reader: str, to: str, mid: str, original: bytes, status: str, action: str) -> bytes:
    boundary = f"b.{secrets.token_hex(6)}"
    code = "550" if status[0] == "5" else "452"
    return (
        (
            f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\nTo: {to}\n"
            f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: {mid}\nAuto-Submitted: auto-replied\n"
            f"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
            f' boundary="{boundary}"\n\n'
            f"--{boundary}\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
            f"Final-Recipient: rfc822; {reader}\nAction: {action}\nStatus: {status}\n"
            f"Diagnostic-Code: smtp; {code} {status} <{reader}>: mailbox unavailable\n\n"
            f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        ).encode()
        + original
        + f"\n--{boundary}--\n".encode()
    )


def _arf(reader: str, mid: str, original: bytes) -> bytes:
    boundary = f"a.{secrets.token_hex(6)}"
    return (
        (
            f"From: feedback@arf.example.net\nTo: abuse@news.example.org\nSubject: FW: The Weekly\n"
            f"Message-ID: {mid}\nMIME-Version: 1.0\n"
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"\n\n'
            f"--{boundary}\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
            f"--{boundary}\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n"
            f"Original-Rcpt-To: {reader}\n\n"
            f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        ).encode()
        + original
        + f"\n--{boundary}--\n".encode()
    )


def run_digest(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """``digest bounces ARGS`` in a process of its own: its figures and its JSON summary's counts."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "digestcli", "bounces", *args, "--format", "json"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"digest bounces failed: {result.stderr.strip()}")
    counts = json.loads(result.stdout)["counts"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "rss_mb": after.ru_maxrss / 1024, **counts}


def show(label: str, figures: dict[str, float], count: int) -> None:
    kinds = ("hard", "soft", "delayed", "blocked", "complaints", "unsubscribes")
    acted = sum(figures[kind] for kind in kinds)  # every report recorded against a reader
    print(
        f"{label:28} {figures['wall']:6.2f} s wall  {count / figures['wall']:7,.0f} reports/s"
        f"  {figures['cpu'] * 1e6 / count:6,.0f} µs CPU/report  peak RSS {figures['rss_mb']:5.0f} MB"
        f"  (acted on {acted:,.0f}, already {figures['already_handled']:,.0f},"
        f" not reports {figures['not_reports']:,.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--source", choices=("maildir", "imap", "both"), default="both")
    options = parser.parse_args()
    count = options.reports
    with tempfile.TemporaryDirectory(prefix="digest-bounces-bench-") as folder:
        base = Path(folder)
        (base / "send").mkdir()
        headers = build_workspace(base / "send", options.readers)
        made = reports(base / "send", headers, count)
        print(f"{count:,} reports, {sum(map(len, made)) / count / 1024:.1f} KB each on average")

        if options.source in ("maildir", "both"):
            root = _copy(base / "send", base / "maildir")
            box = mailbox.Maildir(root / "returned", factory=None, create=True)
            for raw in made:
                box.add(raw)
            show("Maildir, first read", run_digest(root, "--from", "returned"), count)
            show("Maildir, read again", run_digest(root, "--from", "returned"), count)

        if options.source in ("imap", "both"):
            from dovecot import Dovecot, dovecot_missing

            why = dovecot_missing()
            if why:
                print(f"IMAP skipped: {why}")
                return
            root = _copy(base / "send", base / "imap")
            with Dovecot() as server:
                client = server.client()
                for start in range(0, count, 500):
                    client.multiappend("INBOX", made[start : start + 500])
                client.logout()
                settings = (
                    f'\n[bounces]\nhost = "127.0.0.1"\nport = {server.tls_port}\nsecurity = "ssl"\n'
                    f'username = "{server.user}"\n'
                )
                with (root / "digest.toml").open("a", encoding="utf-8") as toml:
                    toml.write(settings)
                env = {"DIGEST_IMAP_PASSWORD": server.password, "SSL_CERT_FILE": str(server.cert)}
                show("IMAP (TLS), first read", run_digest(root, env=env), count)
                left = len(server.messages())
                show("IMAP (TLS), read again", run_digest(root, env=env), left)
                print(f"IMAP: {count - left:,} reports moved to digest-processed, {left:,} left in INBOX")


def _copy(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("outbox"))
    return target


if __name__ == "__main__":
    main()
