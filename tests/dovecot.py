"""A throw-away Dovecot IMAP server on 127.0.0.1 for the bounce tests: its own configuration, state
and log in a temporary folder, one user from a passwd file, a Maildir, a plain listener (with
STARTTLS) and a TLS one, a certificate of its own. Nothing of the machine's Dovecot is used or
touched: no system service, no /etc/dovecot, no port below 1024.

    with Dovecot() as server:
        server.append(raw_bytes)
        settings = server.settings(security="ssl")   # a BouncesConfig for the TLS port
        context = server.trust()                     # an SSL context that trusts its certificate

Run as root (CI), the master runs as root and the login and mail processes as Dovecot's own
users (which its package makes); run as anyone else, everything runs as that user.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from smtp_server import free_port, self_signed_certificate

from digestcli.config import BouncesConfig

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def dovecot_missing() -> str:
    """Why no Dovecot can run here, or "" when it can."""
    if not os.path.exists(DOVECOT):
        return "dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)"
    if os.geteuid() == 0:
        for user in ("dovecot", "dovenull"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                return f"the {user} user is missing (reinstall dovecot-core)"
    return ""


class Dovecot:
    user = "bounces"

    def __init__(self) -> None:
        self.password = secrets.token_urlsafe(12)
        self.folder = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
        os.chmod(self.folder, 0o755)  # the mail processes run as another user, and must reach home/
        self.home = self.folder / "home"
        self.plain_port = free_port()
        self.tls_port = free_port()
        self.cert, self.key = self_signed_certificate(self.folder)
        self.log = self.folder / "dovecot.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- the server -------------------------------------------------------------------------------

    def _config(self) -> str:
        if os.geteuid() == 0:
            internal, login = "dovecot", "dovenull"
            mail = pwd.getpwnam("dovecot")
        else:
            mail = pwd.getpwuid(os.getuid())
            internal = login = mail.pw_name
        self.home.mkdir(exist_ok=True)
        os.chown(self.home, mail.pw_uid, mail.pw_gid)
        (self.folder / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        f = self.folder
        return f"""
base_dir = {f}/run
state_dir = {f}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {mail.pw_uid}
last_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {f}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={self.home}/%u
}}
mail_location = maildir:~/Maildir
mail_fsync = never  # a throw-away mailbox: no waiting on the disk
namespace inbox {{
  inbox = yes
  separator = /
}}
# No penalty (seconds of delay growing with each failure) for a login after a test's wrong password.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.plain_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
"""

    def start(self) -> Dovecot:
        config = self.folder / "dovecot.conf"
        config.write_text(self._config(), encoding="utf-8")
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while not (self._answers(self.plain_port) and self._answers(self.tls_port)):
            if self._process.poll() is not None:
                said = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot did not start: {said.strip()} {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not listen within 10 s: {self._log_tail()}")
            time.sleep(0.02)
        return self

    @staticmethod
    def _answers(port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        return False

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the tests use -------------------------------------------------------------------------

    def settings(self, *, security: str = "ssl", **changes: Any) -> BouncesConfig:
        """[bounces] for this server: the TLS port for "ssl", the plain one otherwise."""
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.tls_port if security == "ssl" else self.plain_port,
            "security": security,
            "username": self.user,
            "timeout": 5.0,
        }
        values.update(changes)
        return BouncesConfig(**values)

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self) -> Any:
        """An IMAPClient logged in over the plain port, for setting up and looking."""
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.plain_port, ssl=False, timeout=5)
        client.login(self.user, self.password)
        return client

    def reset(self) -> None:
        """An empty INBOX and no other folder."""
        client = self.client()
        try:
            for _, _, name in client.list_folders():
                if name != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
        finally:
            client.logout()

    def append(self, raw: bytes, *, folder: str = "INBOX", flags: tuple[bytes, ...] = ()) -> None:
        client = self.client()
        try:
            client.append(folder, raw, flags=flags)
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[frozenset[bytes], bytes]]:
        """(flags, bytes) of every message in a folder, oldest first; read without changing them."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            if not uids:
                return []
            found = client.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"])
            return [(frozenset(found[uid][b"FLAGS"]), found[uid][b"BODY[]"]) for uid in uids]
        finally:
            client.logout()
