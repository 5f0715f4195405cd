"""Who is asking and how often: the client's address (from the reverse proxy when told to trust
it), a token bucket per client, and the one log line per request, which names neither the client
nor a token in the clear."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TextIO

# A client is remembered until this many others have come since: an attacker with many
# addresses cannot make the table grow without end, and only loses its own buckets' memory.
MAX_CLIENTS = 4096


def client_address(peer: str, forwarded_for: str | None, *, behind_proxy: bool) -> str:
    """The address a request came from. Behind a reverse proxy the peer is the proxy itself, and
    the client is the last address the proxy put in X-Forwarded-For (nginx's
    ``$proxy_add_x_forwarded_for`` and Caddy both add it last); earlier ones are whatever the
    client sent, and are never believed. Without ``behind_proxy`` the header is ignored."""
    if behind_proxy and forwarded_for:
        last = forwarded_for.rsplit(",", 1)[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            pass  # a proxy that writes something else: the peer is all that is known
    return peer


def bucket_key(address: str) -> str:
    """What one bucket counts: an IPv4 address, or an IPv6 /64 (one household or server is given
    a whole /64, and would otherwise have 2**64 buckets to choose from)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class RateLimit:
    """A token bucket per client: ``per_minute`` requests in a burst, then one every
    ``60 / per_minute`` seconds. ``per_minute = 0`` lets every request through."""

    def __init__(
        self, per_minute: int, *, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """0 when ``client`` may go on (its request is counted); else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        key = bucket_key(client)
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)  # the most recent last
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return 0.0 if allowed else (1.0 - tokens) / self.rate


class RequestLog:
    """One line per request: ``time client method path status ms``. The client is a pseudonym
    (a keyed hash, new each run): lines from one client can be told apart from another's, but
    the log names no one. The path comes without its query, and the caller replaces a token in
    it (see ``UnsubscribeRoute.shown``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()

    def pseudonym(self, client: str) -> str:
        return "c-" + hmac.new(self._key, client.encode("utf-8"), hashlib.sha256).hexdigest()[:10]

    def request(self, client: str, method: str, path: str, status: int, started: float) -> None:
        ms = (time.perf_counter() - started) * 1000
        self.write(f"{self.pseudonym(client)} {method or '-'} {path} {status} {ms:.1f}ms")

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(f"{stamp} {text}\n")
            stream.flush()


def printable(path: str, limit: int = 200) -> str:
    """A request path as it can go into a log line: no control characters, no spaces, not long."""
    text = "".join(char if char.isprintable() and char != " " else "?" for char in path)
    return text if len(text) <= limit else text[:limit] + "…"
