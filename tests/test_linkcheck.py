"""The link check: every link and image asked over HTTP, judged by the network rules, cached.

Every server here is our own, on a loopback address (127.0.0.1, 127.0.0.2: two hosts to the
client), in a thread; a name that must not resolve is under .invalid, which never does. Nothing
reaches the internet, and no test waits on this machine's DNS.
"""

from __future__ import annotations

import asyncio
import errno
import io
import socket
import ssl
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from digestcli import __version__
from digestcli.config import Config, LintConfig, NewsletterConfig, Workspace
from digestcli.draft import Issue, parse_draft
from digestcli.linkcheck import (
    NO_NETWORK,
    USER_AGENT,
    Answer,
    LinkReport,
    Place,
    check_issue_links,
    describe_failure,
    errors_in,
    fetchable,
    offline,
    template_links,
)
from digestcli.lint import all_rules, lint_issue
from digestcli.lint.catalog import markdown_table
from digestcli.state.linkcache import LINK_CACHE_DB, CachedAnswer, LinkCache


def png(width: int, height: int) -> bytes:
    data = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(data, "PNG")
    return data.getvalue()


def jpeg_with_a_long_header(width: int) -> bytes:
    """A JPEG whose width comes after 100 KB of colour profile: past the first 64 KiB asked."""
    data = io.BytesIO()
    Image.new("RGB", (width, 20), "white").save(data, "JPEG", icc_profile=b"\0" * 100_000)
    return data.getvalue()


SMALL_PNG = png(120, 80)
WIDE_PNG = png(1600, 40)
LONG_JPEG = jpeg_with_a_long_header(2000)
HEAVY_LENGTH = 5_000_000


class Site:
    """A web server on a loopback address, in a thread, with fixed answers per path; it counts every
    request (method, path, headers) and the most it served at once."""

    def __init__(self, host: str = "127.0.0.1", delay: float = 0.0):
        self.delay = delay
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                site.serve(self, "HEAD")

            def do_GET(self) -> None:
                site.serve(self, "GET")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def asked(self, path: str | None = None) -> list[str]:
        """The methods of the requests made (to ``path`` only, when given)."""
        with self.lock:
            return [method for method, asked, _ in self.requests if path is None or asked == path]

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.requests.append((method, handler.path, dict(handler.headers.items())))
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            self.answer(handler, method)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client read what it needed and hung up
        finally:
            with self.lock:
                self.active -= 1

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path
        moves = {
            "/moved": (301, "/page"),
            "/moved-for-good": (308, "/page"),
            "/to-home": (302, "/"),
            "/to-page": (302, "/page"),
            "/to-another-host": (302, self.url("/page", host="localhost")),
            "/loop": (302, "/loop"),
        }
        images = {"/small.png": SMALL_PNG, "/wide.png": WIDE_PNG, "/long-header.jpg": LONG_JPEG}
        if path in moves:
            status, location = moves[path]
            self.send(handler, method, status, b"", headers={"Location": location})
        elif path in ("/missing", "/gone", "/broken"):
            self.send(handler, method, {"/missing": 404, "/gone": 410, "/broken": 500}[path], b"no")
        elif path == "/no-head" and method == "HEAD":
            self.send(handler, method, 405, b"", headers={"Allow": "GET"})
        elif path in images:
            self.send_image(handler, method, images[path])
        elif path == "/heavy.png":
            # 5 MB, says its Content-Length, and no Range: the client reads the header and hangs up.
            self.send(handler, method, 200, b"", headers={"Content-Type": "image/png"}, length=HEAVY_LENGTH)
            if method == "GET":
                handler.wfile.write(SMALL_PNG)
                for _ in range(HEAVY_LENGTH // 65536):
                    handler.wfile.write(b"\0" * 65536)
        elif path == "/page.html":
            self.send(
                handler, method, 200, b"<!doctype html><p>a page</p>", headers={"Content-Type": "text/html"}
            )
        else:
            self.send(
                handler, method, 200, b"<!doctype html><p>ok</p>", headers={"Content-Type": "text/html"}
            )

    def send_image(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        asked = handler.headers.get("Range", "")
        if asked.startswith("bytes=0-"):
            end = min(int(asked.removeprefix("bytes=0-")), len(body) - 1)
            headers = {"Content-Type": "image/png", "Content-Range": f"bytes 0-{end}/{len(body)}"}
            self.send(handler, method, 206, body[: end + 1], headers=headers)
        else:
            self.send(handler, method, 200, body, headers={"Content-Type": "image/png"})

    @staticmethod
    def send(
        handler: BaseHTTPRequestHandler,
        method: str,
        status: int,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        if method == "GET" and body:
            handler.wfile.write(body)


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site()
    yield running
    running.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers (listening, never accepting)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


FRONT = textwrap.dedent(
    """\
    ---
    title: Test Weekly
    subject: "Test Weekly #7: links"
    date: 2026-11-20
    issue: 7
    preheader: "Links for the test suite."
    ---

    """
)
FIRST_LINE = FRONT.count("\n") + 1  # the line of the first body line


def draft(*lines: str) -> str:
    """A valid draft whose intro has ``lines``, one paragraph each: line i (from 0) of them is on
    the draft's line FIRST_LINE + 2 * i."""
    body = "\n\n".join(lines)
    return f"{FRONT}{body}\n\n## 1. A story\n\nText.\n\n## Wrapping Up\n\nSee you.\n"


def line_of(index: int) -> int:
    return FIRST_LINE + 2 * index


def workspace(root: Path, **lint: object) -> Workspace:
    return Workspace(root=root, config=Config(lint=LintConfig(**lint)))  # type: ignore[arg-type]


def check(
    tmp_path: Path,
    text: str,
    *,
    refresh: bool = False,
    lint: dict[str, object] | None = None,
    **options: object,
) -> LinkReport:
    issue = parse_draft(text, "drafts/d.md")
    return check_issue_links(issue, workspace(tmp_path, **(lint or {})), refresh=refresh, **options)  # type: ignore[arg-type]


def by_line(report: LinkReport) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {}
    for finding in report.findings:
        found.setdefault(finding.line, []).append((finding.rule, finding.message))
    return found


# -- what each answer is -----------------------------------------------------------------------


def test_each_answer_is_judged_at_its_line(tmp_path: Path, site: Site) -> None:
    links = [
        f"[a page]({site.url('/page')})",
        f"[moved]({site.url('/moved')})",
        f"[moved for good]({site.url('/moved-for-good')})",
        f"[to the home page]({site.url('/to-home')})",
        f"[to another page]({site.url('/to-page')})",
        f"[to another host]({site.url('/to-another-host')})",
        f"[missing]({site.url('/missing')})",
        f"[gone]({site.url('/gone')})",
        f"[broken]({site.url('/broken')})",
        f"[no HEAD here]({site.url('/no-head')})",
        f"![a small image]({site.url('/small.png')})",
        f"![a wide image]({site.url('/wide.png')})",
        f"![a heavy image]({site.url('/heavy.png')})",
        f"![a page, not an image]({site.url('/page.html')})",
        f"![a missing image]({site.url('/missing')})",
        "[write to us](mailto:editor@nonexistent.invalid)",
        f"[a loop]({site.url('/loop')})",
    ]
    report = check(tmp_path, draft(*links))
    found = by_line(report)
    rules = {line: [rule for rule, _ in findings] for line, findings in found.items()}
    assert rules == {
        line_of(1): ["link-redirect"],
        line_of(2): ["link-redirect"],
        line_of(3): ["link-redirect"],
        line_of(5): ["link-redirect"],
        line_of(6): ["link-broken"],
        line_of(7): ["link-broken"],
        line_of(8): ["link-broken"],
        line_of(11): ["image-heavy"],
        line_of(12): ["image-heavy"],
        line_of(13): ["image-broken"],
        line_of(14): ["image-broken"],
        line_of(16): ["link-broken"],
    }
    message = {line: findings[0][1] for line, findings in found.items()}
    page = site.url("/page")
    assert (
        message[line_of(1)]
        == f"link {site.url('/moved')} redirects for good (301) to {page}: link there instead"
    )
    assert "for good (308)" in message[line_of(2)]
    assert f"to the site's home page, {site.url('/')}: the page may be gone" in message[line_of(3)]
    assert f"to another site, {site.url('/page', host='localhost')}" in message[line_of(5)]
    assert message[line_of(6)] == f"link {site.url('/missing')} is broken: 404 Not Found"
    assert message[line_of(7)].endswith("is broken: 410 Gone")
    assert message[line_of(8)].endswith("is broken: the server answers 500 Internal Server Error")
    assert "is 1,600 px wide, over `[lint] image_max_width` (1,200 px)" in message[line_of(11)]
    assert "weighs 4.8 MB, over `[lint] image_max_kb` (1,024 KB)" in message[line_of(12)]
    assert "it is not an image: the server sends text/html" in message[line_of(13)]
    assert message[line_of(14)].endswith("is broken: 404 Not Found")
    assert "more than 10 redirects" in message[line_of(16)]
    assert {(f.rule.partition("-")[0], f.column) for f in report.findings} == {("link", 1), ("image", 2)}
    assert {f.path for f in report.findings} == {"drafts/d.md"}
    assert {f.severity for f in report.findings if f.rule in ("link-broken", "image-broken")} == {"error"}
    assert {f.severity for f in report.findings if f.rule in ("link-redirect", "image-heavy")} == {"warning"}
    assert report.notes == [] and report.checked == report.asked == 16 and report.from_cache == 0
    assert errors_in(report) == report.errors == [f for f in report.findings if f.severity == "error"]
    assert len(errors_in(report)) == 6
    # mailto is never asked; the redirect to another host's name came back to this server.
    assert all("invalid" not in path for _, path, _ in site.requests)
    small = report.answers[site.url("/small.png"), "image"]
    assert (small.width, small.height, small.size, small.image) == (120, 80, len(SMALL_PNG), True)


def test_head_first_and_get_when_head_is_refused(tmp_path: Path, site: Site) -> None:
    report = check(tmp_path, draft(f"[one]({site.url('/page')})", f"[two]({site.url('/no-head')})"))
    assert report.findings == []
    assert site.asked("/page") == ["HEAD"]
    assert site.asked("/no-head") == ["HEAD", "GET"]


def test_every_request_says_who_asks(tmp_path: Path, site: Site) -> None:
    check(tmp_path, draft(f"[one]({site.url('/page')})", f"![an image]({site.url('/small.png')})"))
    assert f"digest/{__version__} (+link check)" == USER_AGENT
    assert {headers["User-Agent"] for _, _, headers in site.requests} == {USER_AGENT}


def test_an_image_is_read_only_as_far_as_its_header(tmp_path: Path, site: Site) -> None:
    report = check(
        tmp_path,
        draft(f"![small]({site.url('/small.png')})", f"![long header]({site.url('/long-header.jpg')})"),
    )
    # One ranged GET each, and a second, longer one for the JPEG whose width comes after 64 KiB.
    assert site.asked("/small.png") == ["GET"]
    ranges = [headers["Range"] for method, path, headers in site.requests if path == "/long-header.jpg"]
    assert ranges == ["bytes=0-65535", "bytes=0-1048575"]
    jpeg = report.answers[site.url("/long-header.jpg"), "image"]
    assert (jpeg.width, jpeg.size, jpeg.size_exact) == (2000, len(LONG_JPEG), True)
    assert [f.rule for f in report.findings] == ["image-heavy"]  # 2,000 px wide


def test_an_image_without_ranges_is_read_until_its_width_is_known(tmp_path: Path, site: Site) -> None:
    started = time.perf_counter()
    report = check(tmp_path, draft(f"![heavy]({site.url('/heavy.png')})"))
    answer = report.answers[site.url("/heavy.png"), "image"]
    assert (answer.status, answer.width, answer.size) == (200, 120, HEAVY_LENGTH)
    assert time.perf_counter() - started < 5


# -- failures ----------------------------------------------------------------------------------


def test_a_server_that_never_answers_times_out(tmp_path: Path, silent_port: int) -> None:
    started = time.perf_counter()
    report = check(tmp_path, draft(f"[silent](http://127.0.0.1:{silent_port}/)"), lint={"link_timeout": 0.3})
    assert time.perf_counter() - started < 3
    [finding] = report.findings
    assert finding.rule == "link-broken" and finding.message.endswith("is broken: no answer in 0.3 s")
    assert report.notes == []


def test_the_whole_check_has_a_time_limit(tmp_path: Path, silent_port: int, site: Site) -> None:
    started = time.perf_counter()
    report = check(
        tmp_path,
        draft(f"[silent](http://127.0.0.1:{silent_port}/a)", f"[fine]({site.url('/page')})"),
        lint={"link_timeout": 30},
        total_timeout=0.5,
    )
    assert time.perf_counter() - started < 3
    assert report.findings == []  # the one not done is a note, never an error that blocks a send
    assert report.notes == ["1 URL not checked: the check took longer than 0.5 s"]
    assert report.checked == 1


def test_a_refused_connection_on_this_machine_is_a_broken_link(tmp_path: Path, closed_port: int) -> None:
    report = check(tmp_path, draft(f"[closed](http://127.0.0.1:{closed_port}/)"))
    [finding] = report.findings
    assert finding.rule == "link-broken" and finding.message.endswith("the connection was refused")
    assert report.notes == []


def test_a_tls_failure_is_a_broken_link(tmp_path: Path, site: Site) -> None:
    report = check(tmp_path, draft(f"[tls](https://127.0.0.1:{site.port}/page)"))  # HTTP spoken there
    [finding] = report.findings
    assert finding.rule == "link-broken" and "is broken: the TLS handshake failed" in finding.message
    assert report.answers[f"https://127.0.0.1:{site.port}/page", "link"].failure == "tls"


def test_with_no_network_one_note_instead_of_a_page_of_errors(tmp_path: Path) -> None:
    links = [f"[story {n}](https://host{n}.nonexistent.invalid/story)" for n in range(30)]
    links.append("![an image](http://nonexistent.invalid/image.png)")
    started = time.perf_counter()
    report = check(tmp_path, draft(*links))
    assert time.perf_counter() - started < 2
    assert report.findings == [] and report.notes == [NO_NETWORK] and report.offline
    assert report.asked == 31 and report.checked == 0
    assert not errors_in(report)  # the send is not refused for it
    # Nothing cached: the next check asks again.
    assert check(tmp_path, draft(*links)).asked == 31


def test_a_name_that_does_not_resolve_among_answers_is_a_broken_link(tmp_path: Path, site: Site) -> None:
    report = check(tmp_path, draft(f"[fine]({site.url('/page')})", "[typo](https://nonexistent.invalid/)"))
    [finding] = report.findings
    assert (finding.rule, finding.line) == ("link-broken", line_of(1))
    assert "nonexistent.invalid does not resolve" in finding.message
    assert report.notes == []


def test_what_looks_like_no_network() -> None:
    def failed(url: str, failure: str) -> Answer:
        return Answer(url, "link", failure=failure)

    far, near = "https://news.lantern-weekly.org/a", "http://127.0.0.1:9/a"
    assert offline([failed(far, "dns"), failed(far, "unreachable"), failed(far, "refused")])
    assert not offline([failed(far, "dns"), Answer(far, "link", status=404)])  # something answered
    assert offline([failed(far, "no-connection"), failed(far, "dns")])  # a name server that never answers
    assert not offline([failed(far, "dns"), failed(far, "timeout")])  # connected, then nothing: broken
    assert not offline([failed(near, "refused")])  # this machine's own server is down: broken
    assert not offline([failed("http://localhost:9/", "refused"), failed(far, "dns")])
    assert not offline([])


def test_failures_are_named_from_their_causes() -> None:
    def raised(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as exc:
                raise httpx.ConnectError(str(exc)) from exc
        except httpx.ConnectError as outer:
            return outer

    assert (
        describe_failure(raised(socket.gaierror(socket.EAI_NONAME, "Name or service not known")))[0] == "dns"
    )
    assert describe_failure(raised(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")))[1] == (
        "its name does not resolve (the name server did not answer)"
    )
    assert describe_failure(raised(ConnectionRefusedError(errno.ECONNREFUSED, "refused")))[0] == "refused"
    assert describe_failure(raised(OSError(errno.ENETUNREACH, "Network is unreachable")))[0] == "unreachable"
    certificate = ssl.SSLCertVerificationError(1, "certificate verify failed")
    certificate.verify_message = "self-signed certificate"
    assert describe_failure(raised(certificate)) == (
        "tls",
        "its TLS certificate is refused: self-signed certificate",
    )
    assert describe_failure(httpx.ReadTimeout("slow"), 10) == ("timeout", "no answer in 10 s")
    assert describe_failure(httpx.ConnectTimeout("slow"), 10) == ("no-connection", "no connection in 10 s")
    assert describe_failure(TimeoutError(), 2.5) == ("timeout", "no answer in 2.5 s")
    assert describe_failure(httpx.RemoteProtocolError("hung up"))[0] == "protocol"


# -- the cache ---------------------------------------------------------------------------------


def test_a_second_check_asks_nothing(tmp_path: Path, site: Site) -> None:
    text = draft(
        f"[fine]({site.url('/page')})",
        f"[missing]({site.url('/missing')})",
        f"[broken]({site.url('/broken')})",
        f"![wide]({site.url('/wide.png')})",
    )
    first = check(tmp_path, text)
    asked = len(site.requests)
    assert first.asked == 4 and first.from_cache == 0 and asked >= 4
    assert (tmp_path / ".digest" / LINK_CACHE_DB).is_file()

    second = check(tmp_path, text)
    assert len(site.requests) == asked  # not one request
    assert (second.asked, second.from_cache, second.checked) == (0, 4, 4)
    assert second.findings == first.findings
    assert second.seconds < 0.5

    third = check(tmp_path, text, refresh=True)
    assert len(site.requests) == 2 * asked and third.asked == 4 and third.from_cache == 0
    assert third.findings == first.findings


def test_cached_answers_are_judged_by_todays_settings(tmp_path: Path, site: Site) -> None:
    text = draft(f"![wide]({site.url('/wide.png')})")
    assert [f.rule for f in check(tmp_path, text).findings] == ["image-heavy"]
    wider = check(tmp_path, text, lint={"image_max_width": 2000})
    assert wider.findings == [] and wider.asked == 0


def test_no_cache_when_its_hours_are_zero(tmp_path: Path, site: Site) -> None:
    text = draft(f"[fine]({site.url('/page')})")
    check(tmp_path, text, lint={"link_cache_hours": 0})
    assert check(tmp_path, text, lint={"link_cache_hours": 0}).asked == 1
    assert site.asked("/page") == ["HEAD", "HEAD"]


def test_the_cache_forgets_transient_failures_sooner(tmp_path: Path) -> None:
    cache = LinkCache(tmp_path)
    now = time.time()
    two_hours_ago = now - 2 * 3600
    rows = [
        CachedAnswer("https://a.example/", "link", two_hours_ago, False, {"url": "https://a.example/"}),
        CachedAnswer("https://b.example/", "link", two_hours_ago, True, {"url": "https://b.example/"}),
        CachedAnswer("https://c.example/", "link", now - 30 * 3600, False, {"url": "https://c.example/"}),
    ]
    cache.store(rows, keep_hours=48)
    keys = [(row.url, "link") for row in rows]
    assert set(cache.lookup(keys, hours=24, now=now)) == {("https://a.example/", "link")}
    assert set(cache.lookup(keys, hours=48, now=now)) == {
        ("https://a.example/", "link"),
        ("https://c.example/", "link"),
    }
    assert cache.lookup(keys, hours=1, now=now) == {}
    assert cache.clear() == 3 and cache.lookup(keys, hours=48, now=now) == {}
    assert (
        Answer(url="u", kind="link", status=503).transient
        and Answer(url="u", kind="link", failure="timeout").transient
    )
    assert not Answer(url="u", kind="link", status=404).transient


def test_a_damaged_cache_is_said_and_the_check_goes_on(tmp_path: Path, site: Site) -> None:
    (tmp_path / ".digest").mkdir()
    (tmp_path / ".digest" / LINK_CACHE_DB).write_bytes(b"not a database, not at all" * 100)
    report = check(tmp_path, draft(f"[missing]({site.url('/missing')})"))
    assert [f.rule for f in report.findings] == ["link-broken"]
    assert len(report.notes) == 1 and report.notes[0].startswith("link cache not used: ")


# -- concurrency -------------------------------------------------------------------------------


def test_never_more_than_per_host_at_once_to_one_host(tmp_path: Path) -> None:
    one, two = Site("127.0.0.1", delay=0.2), Site("127.0.0.2", delay=0.2)
    try:
        links = [f"[a{n}]({one.url(f'/a/{n}')})" for n in range(12)]
        links += [f"[b{n}]({two.url(f'/b/{n}')})" for n in range(6)]
        started = time.perf_counter()
        report = check(tmp_path, draft(*links), per_host=3)
        took = time.perf_counter() - started
    finally:
        one.close()
        two.close()
    assert report.findings == [] and report.asked == 18
    assert one.most == 3 and two.most == 3
    # 12 links, 3 at a time: four rounds of 0.2 s, the other host's two rounds alongside; one at
    # a time would be 3.6 s.
    assert 0.75 < took < 2.5


def test_links_are_asked_concurrently(tmp_path: Path) -> None:
    sites = [Site(f"127.0.0.{n}", delay=0.3) for n in range(1, 5)]
    try:
        links = [f"[s{n}]({site.url(f'/story/{n}')})" for n in range(5) for site in sites]
        started = time.perf_counter()
        report = check(tmp_path, draft(*links))
        took = time.perf_counter() - started
    finally:
        for site in sites:
            site.close()
    assert report.asked == 20 and report.findings == []
    assert took < 2.0  # 20 × 0.3 s = 6 s one at a time; two rounds of 0.3 s at 4 per host


def test_from_inside_a_running_event_loop(tmp_path: Path, site: Site) -> None:
    async def inside() -> LinkReport:
        return check(tmp_path, draft(f"[missing]({site.url('/missing')})"))

    assert [f.rule for f in asyncio.run(inside()).findings] == ["link-broken"]


# -- what is checked, and how the rules are set --------------------------------------------------


def test_a_fetch_of_ones_own_is_asked_once_per_url(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def fetch(url: str, kind: str) -> Answer:
        asked.append((url, kind))
        return Answer(url, "link", status=404, reason="Not Found")

    text = draft(
        "[once](https://news.lantern-weekly.org/a#first)",
        "[twice](https://news.lantern-weekly.org/a#second)",
        "[a reader's page]({{ reader.site }})",
        "[with a slot](https://news.lantern-weekly.org/?e={{reader.email}})",
        "[relative](a.html)",
        "[mail](mailto:editor@lantern-weekly.org)",
    )
    report = check(tmp_path, text, fetch=fetch)
    assert asked == [("https://news.lantern-weekly.org/a", "link")]
    assert [(f.rule, f.line) for f in report.findings] == [
        ("link-broken", line_of(0)),
        ("link-broken", line_of(1)),
    ]
    assert (
        report.findings[1].message == "link https://news.lantern-weekly.org/a#second is broken: 404 Not Found"
    )


def test_an_async_fetch_of_ones_own(tmp_path: Path) -> None:
    async def fetch(url: str, kind: str) -> Answer:
        await asyncio.sleep(0)
        return Answer(url, "image", status=200, size=3 * 1024 * 1024, width=800, image=True)

    report = check(tmp_path, draft("![big](https://news.lantern-weekly.org/big.jpg)"), fetch=fetch)
    [finding] = report.findings
    assert finding.rule == "image-heavy" and "weighs 3.0 MB" in finding.message


def test_rule_settings_apply(tmp_path: Path, site: Site) -> None:
    text = draft(f"[moved]({site.url('/moved')})", f"![wide]({site.url('/wide.png')})")
    rules = {"link-redirect": "off", "image-heavy": "error"}
    report = check(tmp_path, text, lint={"rules": rules})
    assert [(f.rule, f.severity) for f in report.findings] == [("image-heavy", "error")]


def test_lint_never_asks(tmp_path: Path, site: Site) -> None:
    issue = parse_draft(draft(f"[missing]({site.url('/missing')})"), "d.md")
    assert lint_issue(issue, LintConfig()) == []
    assert site.requests == []


def test_the_network_rules_are_registered() -> None:
    rules = all_rules()
    network = {name: spec.severity for name, spec in rules.items() if spec.network}
    assert network == {
        "link-broken": "error",
        "link-redirect": "warning",
        "image-broken": "error",
        "image-heavy": "warning",
    }
    assert not any(rules[name].workspace or rules[name].rendered for name in network)
    assert all(
        f"| `{name}` | {severity} | no | (network) " in markdown_table() for name, severity in network.items()
    )


def test_the_templates_fixed_links_are_checked(tmp_path: Path, site: Site) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "email.html.j2").write_text(
        textwrap.dedent(
            f"""\
            <html><body>
            {{{{ issue.intro.html }}}}
            <img src="{site.url("/missing")}" alt="Our logo">
            <a href="{{{{ web_url }}}}">View in your browser</a>
            <a href="{{{{ reader.unsubscribe_url }}}}">Unsubscribe</a>
            <a href="{{{{ newsletter.unsubscribe_url }}}}">Unsubscribe</a>
            <a href="{site.url("/page")}">Our site</a>
            </body></html>
            """
        ),
        encoding="utf-8",
    )
    report = check(tmp_path, draft("Hello."))
    [finding] = report.findings
    assert (finding.path, finding.line, finding.column) == ("templates/email.html.j2", 3, 11)
    assert finding.rule == "image-broken"
    assert sorted(path for _, path, _ in site.requests) == ["/missing", "/page"]


def test_template_links_from_the_newsletter_settings() -> None:
    newsletter = NewsletterConfig()._replace(title="https://news.lantern-weekly.org/about")
    text = (
        "Read about us: {{ newsletter.title }} or https://news.lantern-weekly.org/faq.\n"
        "{{ newsletter.unsubscribe_url }}\n"
    )
    places = template_links(text, "email.txt.j2", newsletter, html=False)
    assert [(p.line, p.column, p.target) for p in places] == [
        (1, 16, "https://news.lantern-weekly.org/about"),
        (1, 42, "https://news.lantern-weekly.org/faq"),
    ]
    html = '<a href="{{ newsletter.title }}">About</a> <a href="{{ newsletter.postal_address }}">x</a>'
    assert [p.target for p in template_links(html, "email.html.j2", newsletter, html=True)] == [
        "https://news.lantern-weekly.org/about"
    ]


def test_what_is_fetchable() -> None:
    assert fetchable(" https://Lantern-Weekly.org/a?b=1#c ") == "https://Lantern-Weekly.org/a?b=1"
    # A reserved example domain is a placeholder, never asked of the world; .invalid fails at once.
    assert fetchable("https://www.example.com/story") is None
    assert fetchable("https://news.test/") is None
    assert fetchable("http://gone.invalid/") == "http://gone.invalid/"
    assert fetchable("HTTP://lantern-weekly.org") == "http://lantern-weekly.org"
    for target in (
        "mailto:a@b.org",
        "a.html",
        "https://",
        "ftp://x.org/",
        "https://x.org:port/",
        "{{reader.site}}",
    ):
        assert fetchable(target) is None, target
    assert Place("d.md", 1, 1, "link", "https://x.org/#top").url == "https://x.org/"


def test_the_answer_keeps_in_the_cache_as_it_was() -> None:
    answer = Answer("https://x.org/", "image", status=206, size=10, size_exact=False, width=5, image=True)
    assert Answer.from_dict(answer.as_dict()) == answer
    assert Answer.from_dict({"url": "u", "kind": "sound"}) is None
    assert Answer.from_dict({"kind": "link"}) is None


def test_the_sample_issue_gets_the_same_check(tmp_path: Path) -> None:
    """The sample drafts' links, through a fetch of our own: each is asked once, and none is the
    template's reader or web link."""
    asked: list[str] = []

    def fetch(url: str, kind: str) -> Answer:
        asked.append(url)
        return Answer(url, "link", status=200)

    root = Path(__file__).resolve().parent.parent
    issue: Issue = parse_draft((root / "drafts" / "2026-11-20-weekly.md").read_text(encoding="utf-8"), "x.md")
    report = check_issue_links(issue, workspace(tmp_path), fetch=fetch)
    # Its links are all example.com placeholders: none is asked, so the sample sends offline.
    assert report.findings == [] and asked == [] and report.checked == 0
