"""A scriptable SMTP server on 127.0.0.1 that misbehaves on cue, for testing how delivery copes.

Standard library only (sockets and threads), so it can do what a well-behaved server framework will
not: close the listening socket for an outage, hang up mid-session without a reply, or say nothing.

A rule names a stage of the session and what happens there instead of the normal answer:

    stage     when it acts                                 ``when`` is asked with
    connect   a new connection, before the greeting        ""
    greeting  the 220 greeting                             ""
    ehlo      the reply to EHLO (and to HELO)              ""
    auth      the reply to the credentials                 the username
    mail      the reply to MAIL FROM                       the sender
    rcpt      the reply to RCPT TO                         that recipient
    data      the reply to DATA                            the last RCPT's address
    dot       the reply after the end of the data          the last RCPT's address

    action    what it does
    reply     answers ``reply`` ({rcpt} and {sender} filled in); an empty ``reply`` keeps the
              normal answer (with ``delay``: a slow server). 421 closes the connection after it,
              as do 554 at "greeting" and any reply at "connect".
    close     closes the connection without a reply
    silence   never answers: reads and ignores input until the client or the server gives up

A message is received once its data is in and the "dot" stage does not refuse it: "close" and
"silence" there still count (the server kept the message; only its reply was lost).
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import math
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import NoReturn

STAGES = ("connect", "greeting", "ehlo", "auth", "mail", "rcpt", "data", "dot")
ACTIONS = ("reply", "close", "silence")
MAX_SIZE = 10 * 1024 * 1024  # what EHLO advertises, and the limit on MAIL FROM's SIZE=

_REPLY = re.compile(r"[2-5]\d\d(?:[ -]|$)")
_PATH = re.compile(r"\s*(<[^>]*>|[^\s<>]+)\s*(.*)")
_CRLF = "\r\n"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # as received: CRLF, dot-unstuffed, without the final ".\r\n"
    at: float  # time.monotonic() when the end of the data arrived


@dataclass
class _Rule:
    stage: str
    reply: str
    action: str
    when: Callable[[str], bool] | None
    times: int | None
    delay: float
    used: int = 0

    def refuses(self) -> bool:
        return self.action == "reply" and self.reply[:1] in ("4", "5")

    def accepts(self) -> bool:
        return self.action == "reply" and self.reply[:1] == "2"


class _End(Exception):
    """The session is over; the connection gets closed."""


class _AuthFailed(Exception):
    """An AUTH exchange broken off before there was a username to check."""


class FaultServer:
    def __init__(
        self, *, pipelining: bool = True, logins: dict[str, str] | None = None, size: bool = True
    ) -> None:
        self.pipelining = pipelining
        self.size = size
        self._accounts = dict(logins or {})
        self.host = "127.0.0.1"
        self.received: list[Received] = []
        self.logins: list[tuple[str, bool]] = []
        self.connections = 0
        self.errors: list[BaseException] = []  # a failure of the server itself, not one it was told to fake
        self._lock = threading.Condition(threading.RLock())  # reentrant: a ``when`` may read the server
        self._rules: list[_Rule] = []
        # Bound but not listening: the port is ours from now on, yet nothing connects before __enter__.
        self._listener: socket.socket | None = self._bind(0)
        self.port: int = self._listener.getsockname()[1]
        self._listening = False
        self._closed_until: float | None = None  # None: listen; math.inf: down by hand; else reopen then
        self._requested = 0  # changes to _closed_until, and how many the acceptor has carried out
        self._applied = 0
        self._bind_error: OSError | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor: threading.Thread | None = None
        self._sessions: list[threading.Thread] = []
        self._open: set[socket.socket] = set()

    # -- the test's side ------------------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        with self._lock:
            self._requested += 1  # so that entering waits until the server listens
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-smtp", daemon=True)
        self._acceptor.start()
        self._await_acceptor()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()  # also cuts every delay short
        self._wake()
        if self._acceptor is not None:
            self._acceptor.join(2.0)
        self.drop_connections()
        deadline = time.monotonic() + 2.0
        with self._lock:
            sessions = list(self._sessions)
        for thread in sessions:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()
        if self._listener is not None:  # never entered: the acceptor did not take it over
            self._listener.close()
            self._listener = None
        if kind is None and self.errors:
            raise RuntimeError(f"the fault SMTP server failed: {self.errors[0]!r}") from self.errors[0]

    def rule(
        self,
        stage: str,
        reply: str = "",
        *,
        action: str = "reply",
        when: Callable[[str], bool] | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
        if reply and not _REPLY.match(reply):
            raise ValueError(f"reply {reply!r} does not start with a 2xx-5xx code")
        if reply and action != "reply":
            raise ValueError(f'a reply is only sent by action "reply", not {action!r}')
        if times is not None and times < 0:
            raise ValueError("times must be None or at least 0")
        if delay < 0:
            raise ValueError("delay must be at least 0")
        with self._lock:
            self._rules.append(_Rule(stage, reply, action, when, times, delay))

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def recipients(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(
                address for message in self.received for address in {r.lower() for r in message.rcpt_tos}
            )

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(
                    f"expected {count} message(s) within {timeout} s, received {len(self.received)}"
                )

    def outage(self, seconds: float) -> None:
        """Refuse connections from now on, for ``seconds``; then listen again, on the same port."""
        self._set_closed_until(time.monotonic() + seconds)

    def down(self) -> None:
        self._set_closed_until(math.inf)

    def up(self) -> None:
        self._set_closed_until(None)
        with self._lock:
            if self._bind_error is not None:
                raise self._bind_error

    def drop_connections(self) -> None:
        """Close every open connection, silent ones too (a server crash, with ``down``)."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            # shutdown, not close: it wakes the session's blocked read, and the session thread
            # closes its own descriptor, so a reused descriptor number is never closed by mistake.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- listening ------------------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # So the port can be taken again after an outage while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            raise
        return sock

    def _set_closed_until(self, until: float | None) -> None:
        with self._lock:
            self._closed_until = until
            self._requested += 1
        self._wake()
        self._await_acceptor()

    def _await_acceptor(self) -> None:
        # The caller's next step assumes the change is made: a refused connect right after down().
        if self._acceptor is None or not self._acceptor.is_alive():
            return
        with self._lock:
            wanted = self._requested
            if not self._lock.wait_for(lambda: self._applied >= wanted, 5.0):
                raise AssertionError("the fault SMTP server's acceptor did not respond")

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _accept_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._lock:
                    requested = self._requested
                    now = time.monotonic()
                    if self._closed_until is not None and now >= self._closed_until:
                        self._closed_until = None
                    closed_until = self._closed_until
                error = None
                if closed_until is None and not self._listening:
                    try:
                        self._start_listening()
                    except OSError as exc:
                        error = exc
                elif closed_until is not None and self._listening:
                    self._stop_listening()
                with self._lock:
                    self._applied = requested
                    self._bind_error = error
                    self._lock.notify_all()

                if error is not None:
                    timeout: float | None = 0.05  # the port is busy for now: try again soon
                elif closed_until is not None and closed_until != math.inf:
                    timeout = max(0.0, closed_until - now)
                else:
                    timeout = None
                watched: list[socket.socket] = [self._wake_r]
                if self._listening and self._listener is not None:
                    watched.append(self._listener)
                readable, _, _ = select.select(watched, [], [], timeout)
                if self._wake_r in readable:
                    self._wake_r.recv(4096)
                if self._listener is not None and self._listener in readable:
                    self._accept()
        except BaseException as exc:  # the tests would otherwise only see refused connections
            self.errors.append(exc)
        finally:
            self._stop_listening()
            with self._lock:
                self._applied = self._requested = max(self._applied, self._requested)
                self._lock.notify_all()

    def _start_listening(self) -> None:
        if self._listener is None:
            self._listener = self._bind(self.port)
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._listening = True

    def _stop_listening(self) -> None:
        # Closing the socket, not just ignoring it, is what makes a client's connect fail with
        # ECONNREFUSED, as it does when a real server is down; a waiting backlog is reset too.
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._listening = False

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        sock.setblocking(True)
        thread = threading.Thread(
            target=self._run_session, args=(sock,), name="fault-smtp-session", daemon=True
        )
        with self._lock:
            self.connections += 1
            self._open.add(sock)
            self._sessions = [t for t in self._sessions if t.is_alive()]
            self._sessions.append(thread)
        thread.start()

    def _run_session(self, sock: socket.socket) -> None:
        try:
            _Session(self, sock).run()
        except Exception as exc:
            self.errors.append(exc)
        finally:
            with self._lock:
                self._open.discard(sock)

    # -- for the sessions -----------------------------------------------------------------------

    def _match(self, stage: str, address: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.stage != stage or (rule.times is not None and rule.used >= rule.times):
                    continue
                if rule.when is not None and not rule.when(address):
                    continue
                rule.used += 1
                return rule
        return None

    def _record(self, message: Received) -> int:
        with self._lock:
            self.received.append(message)
            self._lock.notify_all()
            return len(self.received)

    def _record_login(self, username: str, accepted: bool) -> None:
        with self._lock:
            self.logins.append((username, accepted))


class _Session:
    """One client connection, from the greeting to the close."""

    def __init__(self, server: FaultServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        # A buffered reader, line by line: pipelined commands arriving together are answered in order.
        self.rfile = sock.makefile("rb")
        self.greeted = False
        self.authenticated = False
        self.sender: str | None = None  # None: no mail transaction open
        self.rcpts: list[str] = []  # the accepted ones
        self.rcpt = ""  # the last RCPT's address, accepted or not

    def run(self) -> None:
        try:
            self._open()
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                self._command(line.decode("utf-8", "surrogateescape").rstrip("\r\n"))
        except (_End, OSError):
            pass
        finally:
            self.rfile.close()
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            self.sock.close()

    def _open(self) -> None:
        rule = self.server._match("connect", "")
        if rule is not None:
            self._act(rule, "")
            if rule.reply:
                raise _End
        reply = self._act(self.server._match("greeting", ""), f"220 {self.server.host} ESMTP fault_smtp")
        if reply[:3] == "554":
            raise _End

    # -- answering --------------------------------------------------------------------------------

    def _act(self, rule: _Rule | None, normal: str) -> str:
        """Do what ``rule`` says, or give the normal answer; the reply sent, if the session goes on."""
        if rule is not None:
            if rule.delay and self.server._stopping.wait(rule.delay):
                raise _End
            if rule.action == "close":
                raise _End
            if rule.action == "silence":
                self._hold()
            if rule.reply:
                normal = rule.reply.replace("{rcpt}", self.rcpt).replace("{sender}", self.sender or "")
        if normal:
            self._send(normal)
        if normal[:3] == "421":
            raise _End
        return normal

    def _hold(self) -> NoReturn:
        # Reading (not just waiting) keeps the client's writes from blocking on a full buffer,
        # and notices its close; drop_connections() ends this by shutting the socket down.
        while self.rfile.read1(65536):
            pass
        raise _End

    def _send(self, reply: str) -> None:
        self.sock.sendall((reply + _CRLF).encode("utf-8", "surrogateescape"))

    def _reset(self) -> None:
        self.sender, self.rcpts, self.rcpt = None, [], ""

    # -- commands -------------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb, arg = verb.upper(), arg.strip()
        if verb in ("EHLO", "HELO"):
            self._hello(arg, extended=verb == "EHLO")
        elif verb == "AUTH":
            self._auth(arg)
        elif verb == "MAIL":
            self._mail(arg)
        elif verb == "RCPT":
            self._rcpt(arg)
        elif verb == "DATA":
            self._data()
        elif verb == "RSET":
            self._reset()
            self._send("250 2.0.0 reset")
        elif verb == "NOOP":
            self._send("250 2.0.0 ok")
        elif verb == "QUIT":
            self._send("221 2.0.0 bye")
            raise _End
        else:
            self._send("500 5.5.2 command not recognized")

    def _hello(self, domain: str, *, extended: bool) -> None:
        if not domain:
            self._send(f"501 5.5.4 {'EHLO' if extended else 'HELO'} needs a domain")
            return
        lines = [f"{self.server.host} greets {domain}"]
        if extended:
            if self.server.pipelining:
                lines.append("PIPELINING")
            if self.server.size:
                lines.append(f"SIZE {MAX_SIZE}")
            lines.append("8BITMIME")
            if self.server._accounts:
                lines.append("AUTH PLAIN LOGIN")
        normal = _CRLF.join(f"250{' ' if n == len(lines) - 1 else '-'}{text}" for n, text in enumerate(lines))
        reply = self._act(self.server._match("ehlo", ""), normal)
        if reply[:1] == "2":
            self.greeted = True
            self._reset()  # RFC 5321 4.1.4: a new EHLO abandons any open transaction

    def _auth(self, arg: str) -> None:
        if not self.server._accounts:
            self._send("502 5.5.1 AUTH not offered")
            return
        if not self.greeted:
            self._send("503 5.5.1 EHLO first")
            return
        if self.authenticated:
            self._send("503 5.5.1 already authenticated")
            return
        if self.sender is not None:
            self._send("503 5.5.1 AUTH not allowed during a mail transaction")
            return
        mechanism, _, initial = arg.partition(" ")
        mechanism, initial = mechanism.upper(), initial.strip()
        try:
            if mechanism == "PLAIN":
                fields = self._decode(initial or self._challenge("")).split(b"\0")
                if len(fields) != 3:
                    raise _AuthFailed("501 5.5.2 PLAIN wants authzid NUL user NUL password")
                user, password = fields[1], fields[2]
            elif mechanism == "LOGIN":
                user = self._decode(initial or self._challenge("VXNlcm5hbWU6"))  # "Username:"
                password = self._decode(self._challenge("UGFzc3dvcmQ6"))  # "Password:"
            else:
                raise _AuthFailed(f"504 5.5.4 mechanism {mechanism or '(none)'} not supported")
        except _AuthFailed as failure:
            self._send(str(failure))
            return
        username = user.decode("utf-8", "surrogateescape")
        right = self.server._accounts.get(username) == password.decode("utf-8", "surrogateescape")
        rule = self.server._match("auth", username)
        accepted = right
        if rule is not None and (rule.reply or rule.action != "reply"):
            accepted = rule.accepts()
        # Recorded before acting, so a login the rule hangs up on is still seen as an attempt.
        self.server._record_login(username, accepted)
        normal = (
            "235 2.7.0 Authentication successful" if right else "535 5.7.8 Authentication credentials invalid"
        )
        reply = self._act(rule, normal)
        self.authenticated = reply[:1] == "2"

    def _challenge(self, prompt: str) -> str:
        self._send(f"334 {prompt}")
        line = self.rfile.readline()
        if not line:
            raise _End
        answer = line.decode("ascii", "replace").strip()
        if answer == "*":
            raise _AuthFailed("501 5.0.0 AUTH aborted")
        return answer

    @staticmethod
    def _decode(text: str) -> bytes:
        if text == "=":  # RFC 4954: an empty initial response
            return b""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _AuthFailed("501 5.5.2 cannot decode the response") from None

    def _mail(self, arg: str) -> None:
        found = _PATH.fullmatch(arg[5:]) if arg[:5].upper() == "FROM:" else None
        if found is None:
            self._send("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        if not self.greeted:
            self._send("503 5.5.1 EHLO first")
            return
        if self.sender is not None:
            self._send("503 5.5.1 nested MAIL command")
            return
        sender = found.group(1).strip("<>")
        normal = "250 2.1.0 sender ok"
        if self.server._accounts and not self.authenticated:
            normal = "530 5.7.0 Authentication required"
        elif self.server.size and _declared_size(found.group(2)) > MAX_SIZE:
            normal = "552 5.3.4 message size exceeds fixed maximum message size"
        self.sender = sender  # for {sender}; undone below if the answer is a refusal
        reply = self._act(self.server._match("mail", sender), normal)
        if reply[:1] != "2":
            self._reset()

    def _rcpt(self, arg: str) -> None:
        found = _PATH.fullmatch(arg[3:]) if arg[:3].upper() == "TO:" else None
        if found is None or not found.group(1).strip("<>"):
            self._send("501 5.5.4 syntax: RCPT TO:<address>")
            return
        if self.sender is None:
            self._send("503 5.5.1 MAIL first")
            return
        self.rcpt = found.group(1).strip("<>")
        reply = self._act(self.server._match("rcpt", self.rcpt), "250 2.1.5 recipient ok")
        if reply[:1] == "2":
            self.rcpts.append(self.rcpt)

    def _data(self) -> None:
        if self.sender is None:
            self._send("503 5.5.1 MAIL first")
            return
        if not self.rcpts:
            # Not entering data mode: a pipelining client reads this before it sends any data.
            self._send("554 5.5.1 no valid recipients")
            return
        reply = self._act(self.server._match("data", self.rcpt), "354 end data with <CR><LF>.<CR><LF>")
        if reply[:3] != "354":
            return
        data = self._read_data()
        at = time.monotonic()
        sender, rcpts = self.sender, list(self.rcpts)
        rule = self.server._match("dot", self.rcpt)
        number = 0
        # Recorded before any delay or hang-up: the server has the message from this moment, and
        # a client that gives up waiting for the reply must find it counted.
        if rule is None or not rule.refuses():
            number = self.server._record(Received(sender, rcpts, data, at))
        self._act(rule, f"250 2.0.0 queued as {number}")
        self._reset()

    def _read_data(self) -> bytes:
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise _End  # the client left before the end of the data: nothing was delivered
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)


def _declared_size(parameters: str) -> int:
    for parameter in parameters.split():
        key, _, value = parameter.partition("=")
        if key.upper() == "SIZE" and value.isdigit():
            return int(value)
    return 0
