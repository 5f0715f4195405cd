"""Whether an issue's links and images resolve: every http(s) URL of the draft, and the fixed links
of the email's templates, asked over HTTP, and judged by the network lint rules of
``digestcli.lint.reach`` (``link-broken``, ``link-redirect``, ``image-broken``, ``image-heavy``).

The API: ``check_issue_links(issue, workspace, refresh=..., fetch=...)`` gives a ``LinkReport``
(findings at each link's line, notes such as ``NO_NETWORK``, how many URLs were judged, how many
from the cache, how long it took); ``errors_in(report)`` the findings that refuse a send.

How a URL is asked:

- A link: ``HEAD`` first, ``GET`` when the server refuses ``HEAD`` (405, 501, any other 4xx or
  5xx, or a hang-up), reading the answer's headers only; redirects are followed (10 at most) and
  the first one's status and where the last one lands are kept.
- An image: one ``GET`` for its first 64 KiB (``Range``), which gives its status, its size
  (``Content-Range``, else ``Content-Length``, else the bytes read) and its header, where Pillow
  reads the width; a server that ignores ``Range`` is read only until the width is known.
- Concurrently: at most ``pool`` URLs at once, ``per_host`` to any one host (host and port). A
  request has ``[lint] link_timeout`` for each step (connecting, the name's look-up included; each
  read) and twice that in all; the whole check has its own bound, past which the URLs not done
  are a note, not a finding. The User-Agent says who asks: ``digest/VERSION (+link check)``.

The client is httpx (async): a maintained, typed client with connection pooling and keep-alive
across the check, redirects followed with their history, streamed bodies (so an image's first
bytes only), certificates verified (certifi), and asyncio underneath, so that a hundred slow
servers cost the slowest one's time and a timeout cancels a request cleanly (a thread cannot be).
httpx and Pillow are imported on the first check only: ``digest lint`` without ``--links`` pays
for neither.

Answers are kept in ``.digest/links.sqlite3`` (``digestcli.state.linkcache``) for ``[lint]
link_cache_hours``, so that a second check asks nothing; ``refresh`` asks every URL again. When no
URL could be reached at all and every failure looks like a machine without a network (no name
resolves, no route, no connection in time, connections refused far away: see ``offline``), the
report has the one note ``NO_NETWORK``
instead of a finding per link, and nothing is cached: a send is not refused for that.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from digestcli import __version__
from digestcli.config import LintConfig, NewsletterConfig, Workspace, reserved_domain
from digestcli.draft import ANY_SLOT, Issue
from digestcli.errors import DigestError
from digestcli.lint import Finding

if TYPE_CHECKING:
    import httpx

Kind = Literal["link", "image"]
Key = tuple[str, Kind]  # (the URL as asked, link or image): what is asked once, and cached

USER_AGENT = f"digest/{__version__} (+link check)"
POOL = 32  # URLs asked at once
PER_HOST = 4  # of those, to any one host (and port): a polite client, as browsers keep to ~6
MAX_REDIRECTS = 10
IMAGE_HEAD_BYTES = 64 * 1024  # an image's first bytes asked: a PNG's or GIF's width is in 30
IMAGE_PROBE_BYTES = 1024 * 1024  # the most read to find a width (a JPEG's EXIF can come first)
NO_NETWORK = "links not checked: no network"

# A failure (Answer.failure), where no HTTP answer came.
DNS = "dns"  # the host's name does not resolve
REFUSED = "refused"  # the connection was refused
UNREACHABLE = "unreachable"  # no route to the host, or no network
TIMEOUT = "timeout"  # connected, but no answer within [lint] link_timeout
NO_CONNECTION = "no-connection"  # no connection within [lint] link_timeout (the name's look-up included)
TLS = "tls"  # the TLS handshake failed: a certificate not valid for the host, expired, self-signed…
REDIRECTS = "redirects"  # too many redirects: a loop
PROTOCOL = "protocol"  # the server broke HTTP (hung up, garbled the answer)
ERROR = "error"  # anything else
_TRANSIENT = {DNS, REFUSED, UNREACHABLE, TIMEOUT, NO_CONNECTION, PROTOCOL, ERROR}
_OFFLINE = {DNS, UNREACHABLE, NO_CONNECTION}  # what every URL fails with on a machine with no network

_LINK_HEADERS = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_IMAGE_HEADERS = {"Accept": "image/avif,image/webp,image/png,image/*,*/*;q=0.8"}
_NOT_SAID = ("", "application/octet-stream", "binary/octet-stream")  # types that say nothing


@dataclass(frozen=True)
class Place:
    """Where a URL is used: the file (the draft, or a template for its fixed links), the line
    and column of the link (from 1), whether it is a link or an image, its target as written and
    its text (an image's alt text)."""

    path: str
    line: int
    column: int
    kind: Kind
    target: str
    text: str = ""

    @property
    def url(self) -> str:
        """The URL as asked: the target without its #fragment."""
        return fetchable(self.target) or ""


@dataclass(frozen=True)
class Answer:
    """What asking one URL gave, as the rules judge it and the cache keeps it.

    ``status`` is the final HTTP status (after redirects), or None when no HTTP answer came; then
    ``failure`` says why (``DNS``, ``REFUSED``, ``TIMEOUT`` …) and ``detail`` in words.
    ``redirect`` is the first redirect's status, ``final_url`` where the redirects landed.
    An image's ``size`` is in bytes (``size_exact`` False when only that many were read before
    stopping), ``width`` and ``height`` in pixels when Pillow could read them, ``image`` whether
    it is an image at all (None: cannot tell). ``checked``: when it was asked.
    """

    url: str
    kind: Kind
    status: int | None = None
    reason: str = ""
    failure: str = ""
    detail: str = ""
    redirect: int | None = None
    final_url: str = ""
    content_type: str = ""
    size: int | None = None
    size_exact: bool = True
    width: int | None = None
    height: int | None = None
    image: bool | None = None
    checked: float = 0.0

    @property
    def answered(self) -> bool:
        """Whether an HTTP answer came (whatever its status)."""
        return self.status is not None

    @property
    def transient(self) -> bool:
        """Whether asking again soon may well give another answer: a server error, a timeout, a
        refused connection. The cache believes those for an hour at most."""
        if self.status is None:
            return self.failure in _TRANSIENT or not self.failure
        return self.status >= 500 or self.status == 429

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer | None:
        """The answer a cache row holds; None for one that does not fit (then it is asked again)."""
        names = {f.name for f in fields(cls)}
        try:
            answer = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError:
            return None
        return answer if answer.kind in ("link", "image") and isinstance(answer.url, str) else None


Checked = Sequence[tuple[Place, Answer]]  # what a network rule is given: each place, its URL's answer
# Asks one URL: digest's own is HttpFetcher; a test's or a caller's may be a coroutine function, or a
# plain function that returns at once (it runs on the event loop).
Fetch = Callable[[str, Kind], "Awaitable[Answer] | Answer"]


@dataclass
class LinkReport:
    """What a link check found.

    ``findings``: the network rules' findings (``[lint.rules]`` applied), sorted by place, at the
    draft's path (or a template's, for its fixed links). ``notes``: what was not checked and why
    (``NO_NETWORK``; URLs left when the whole check's time ran out; a cache that could not be
    used). ``checked``: the distinct URLs judged; ``from_cache``: how many of those came from the
    cache; ``asked``: how many were asked over the network this time; ``seconds``: the time taken.
    ``answers``: every answer judged, by (URL, kind).
    """

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0
    from_cache: int = 0
    asked: int = 0
    seconds: float = 0.0
    answers: dict[Key, Answer] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        """The findings that refuse a send (link-broken, image-broken, and any rule that
        ``[lint.rules]`` makes an error)."""
        return errors_in(self)

    @property
    def offline(self) -> bool:
        """Whether the check found no network (then its note says so, and nothing is a finding)."""
        return NO_NETWORK in self.notes


def errors_in(report: LinkReport) -> list[Finding]:
    """The report's findings that are errors: what refuses a send unless ``--ignore-links``."""
    return [f for f in report.findings if f.severity == "error"]


# -- what is checked ---------------------------------------------------------------------------


def fetchable(target: str) -> str | None:
    """The URL to ask for a link or image target, without its #fragment; None for a target that
    is not asked: not http or https, no host, a per-reader slot (``{{ reader.site }}``), malformed
    (``link-url`` reports those), or at a reserved example domain (example.com, .test: names that
    are placeholders by definition, as in the sample drafts, and must not be asked of the world)."""
    target = target.strip()
    if not target or ANY_SLOT.search(target):
        return None
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if reserved_domain(parts.hostname) and not parts.hostname.endswith(".invalid"):
        return None  # a placeholder by definition (RFC 2606), as in the samples; .invalid fails at once
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def draft_places(issue: Issue) -> list[Place]:
    """Every link and image of the draft that is asked, at the line and column of its text."""
    from digestcli.lint.links import links, locate_link

    found = []
    for kind, target, first, last, text in links(issue):
        if fetchable(target) is None:
            continue
        line, column = locate_link(issue, first, last, target, text)
        found.append(Place(str(issue.path), line, column, cast(Kind, kind), target, text))
    return found


_ATTRIBUTE = re.compile(r"""\b(href|src)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE)
_BARE_URL = re.compile(r"""https?://[^\s<>"'{}()\[\]]+""")
_NEWSLETTER_VALUE = re.compile(r"\{\{-?\s*newsletter\.([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}")
# Template links not checked: the reader's own (their token is theirs alone), and the issue's
# web page (``{{ web_url }}``, no newsletter setting), which a send publishes as it starts.
_NOT_FIXED = {"unsubscribe_url", "unsubscribe_mailto"}


def template_places(workspace: Workspace) -> list[Place]:
    """The email templates' fixed links (the workspace's own templates, else digest's): every
    literal http(s) ``href`` and ``src`` of the HTML template and URL of the text template, and
    every ``{{ newsletter.KEY }}`` that holds an http(s) URL; never the reader's unsubscribe link
    nor the issue's web page (``{{ web_url }}``)."""
    from digestcli.render.templates import HTML_TEMPLATE, TEXT_TEMPLATE, template_search_path

    found: list[Place] = []
    folders = template_search_path(workspace)
    for name in (HTML_TEMPLATE, TEXT_TEMPLATE):
        path = next((folder / name for folder in folders if (folder / name).is_file()), None)
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # rendering says so, with the file's name
        shown = _shown(path, workspace.root)
        html = name.endswith(".html.j2")
        found.extend(template_links(text, shown, workspace.config.newsletter, html=html))
    return found


def template_links(text: str, path: str, newsletter: NewsletterConfig, *, html: bool) -> list[Place]:
    """The fixed links of one template's source (see ``template_places``)."""
    found: dict[tuple[int, int], Place] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if html:
            for match in _ATTRIBUTE.finditer(line):
                kind: Kind = "image" if match.group(1).lower() == "src" else "link"
                url = _fixed_url(match.group(3).strip(), newsletter)
                if url:
                    column = match.start(3) + 1
                    found[number, column] = Place(path, number, column, kind, url)
            continue
        for match in _BARE_URL.finditer(line):
            url = match.group(0).rstrip(".,;:!?")
            if fetchable(url):
                found[number, match.start() + 1] = Place(path, number, match.start() + 1, "link", url)
        for match in _NEWSLETTER_VALUE.finditer(line):
            url = _fixed_url(match.group(0), newsletter)
            if url:
                found[number, match.start() + 1] = Place(path, number, match.start() + 1, "link", url)
    return [found[place] for place in sorted(found)]


def _fixed_url(value: str, newsletter: NewsletterConfig) -> str | None:
    if "{{" in value or "{%" in value:
        match = _NEWSLETTER_VALUE.fullmatch(value)
        if not match or match.group(1) in _NOT_FIXED:
            return None  # a reader's value, the issue's own page, or an expression: not fixed
        setting = getattr(newsletter, match.group(1), None)
        if not isinstance(setting, str) or "{token}" in setting:
            return None
        value = setting.strip()
    return value if fetchable(value) else None


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


# -- the check ---------------------------------------------------------------------------------


def check_issue_links(
    issue: Issue,
    workspace: Workspace,
    *,
    refresh: bool = False,
    fetch: Fetch | None = None,
    pool: int = POOL,
    per_host: int = PER_HOST,
    total_timeout: float | None = None,
) -> LinkReport:
    """Ask every link and image of the issue, and the templates' fixed links, and judge them.

    ``refresh`` asks every URL again instead of believing the cache; ``fetch`` replaces digest's
    HTTP client (see ``Fetch``); ``total_timeout`` bounds the whole check (default: 60 s, or six
    times ``[lint] link_timeout`` if longer). Raises nothing for a link that fails: that is a
    finding. Blocks until done; from inside a running event loop it runs in a thread of its own.
    """
    places = [*draft_places(issue), *template_places(workspace)]
    return check_places(
        places,
        workspace.config.lint,
        workspace.state,
        issue=issue,
        refresh=refresh,
        fetch=fetch,
        pool=pool,
        per_host=per_host,
        total_timeout=total_timeout,
    )


def check_places(
    places: Sequence[Place],
    config: LintConfig,
    state_dir: Path | None,
    *,
    issue: Issue | None = None,
    refresh: bool = False,
    fetch: Fetch | None = None,
    pool: int = POOL,
    per_host: int = PER_HOST,
    total_timeout: float | None = None,
) -> LinkReport:
    """``check_issue_links`` for any places: the cache in ``state_dir`` (None: no cache)."""
    from digestcli.state.linkcache import CachedAnswer, LinkCache

    started = time.perf_counter()
    report = LinkReport()
    keys = list(dict.fromkeys((place.url, place.kind) for place in places if place.url))
    cache = LinkCache(state_dir) if state_dir is not None and config.link_cache_hours > 0 else None
    known: dict[Key, Answer] = {}
    if cache is not None and not refresh:
        try:
            rows = cache.lookup(keys, hours=config.link_cache_hours)
        except DigestError as exc:
            report.notes.append(f"link cache not used: {exc}")
            cache = None
        else:
            for key in keys:
                answer = Answer.from_dict(rows[key].data) if key in rows else None
                if answer is not None:
                    known[key] = answer
    total = total_timeout if total_timeout is not None else max(60.0, 6 * config.link_timeout)
    wanted = [key for key in keys if key not in known]
    fresh: dict[Key, Answer] = {}
    late: list[Key] = []
    if wanted:
        fresh, late = _run(_ask(wanted, fetch, config, pool=pool, per_host=per_host, total=total))
    report.asked = len(fresh)
    if offline(fresh.values()):
        report.notes.append(NO_NETWORK)
        fresh = {}
    elif cache is not None and fresh:
        kept = [CachedAnswer(a.url, a.kind, a.checked, a.transient, a.as_dict()) for a in fresh.values()]
        try:
            cache.store(kept, keep_hours=config.link_cache_hours)
        except DigestError as exc:
            report.notes.append(f"link answers not cached: {exc}")
    if late:
        what = "URL" if len(late) == 1 else "URLs"
        report.notes.append(f"{len(late)} {what} not checked: the check took longer than {total:g} s")
    report.answers = {key: answer for key in keys if (answer := known.get(key) or fresh.get(key))}
    report.checked = len(report.answers)
    report.from_cache = sum(1 for key in report.answers if key in known)
    report.findings = judge(places, report.answers, config, issue)
    report.seconds = time.perf_counter() - started
    return report


def judge(
    places: Iterable[Place], answers: dict[Key, Answer], config: LintConfig, issue: Issue | None = None
) -> list[Finding]:
    """The network rules' findings on these answers, ``[lint.rules]`` applied, sorted by place."""
    from digestcli.lint import all_rules, effective_severity

    by_path: dict[str, list[tuple[Place, Answer]]] = {}
    for place in places:
        answer = answers.get((place.url, place.kind))
        if answer is not None:
            by_path.setdefault(place.path, []).append((place, answer))
    findings: list[Finding] = []
    for spec in all_rules().values():
        if not spec.network or effective_severity(spec.name, spec.severity, config) is None:
            continue
        for path, checked in by_path.items():
            for found in spec.check(issue, config, checked):
                severity = effective_severity(spec.name, spec.severity, config, found.severity)
                assert severity is not None
                findings.append(Finding(path, found.line, found.column, spec.name, severity, found.message))
    return sorted(findings)


def offline(answers: Iterable[Answer]) -> bool:
    """Whether these answers (all fresh from the network) look like a machine with no network: not
    one HTTP answer, and every failure a name that does not resolve, no route, no connection in
    time (a name server that does not answer, a firewall that drops), or a connection refused by a
    host that is not this machine (a firewall's answer). A server of this machine that refuses is
    a broken link like any other, and so is one that connects and then says nothing."""
    answers = list(answers)
    if not answers or any(a.answered for a in answers):
        return False
    return all(a.failure in _OFFLINE or (a.failure == REFUSED and not _loopback(a.url)) for a in answers)


def _loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, in a thread of its own when this one
    already runs an event loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _in_a_loop(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="digest-links") as worker:
        return worker.submit(_in_a_loop, coroutine).result()


def _in_a_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, but with as many threads for name look-ups as URLs asked at once (asyncio's
    own executor has 6 on this machine's 2 cores), and without waiting for a look-up stuck in the
    resolver when the check is over: ``asyncio.run`` would, past every timeout."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(POOL, thread_name_prefix="digest-lookup"))
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()  # shuts the executor down without waiting


async def _ask(
    keys: Sequence[Key], fetch: Fetch | None, config: LintConfig, *, pool: int, per_host: int, total: float
) -> tuple[dict[Key, Answer], list[Key]]:
    if fetch is not None:
        return await ask_all(keys, fetch, pool=pool, per_host=per_host, total=total)
    read_limit = config.image_max_kb * 1024 + 1 if config.image_max_kb else IMAGE_HEAD_BYTES
    async with HttpFetcher(timeout=config.link_timeout, pool=pool, image_read_limit=read_limit) as fetcher:
        return await ask_all(keys, fetcher, pool=pool, per_host=per_host, total=total)


async def ask_all(
    keys: Sequence[Key],
    fetch: Fetch,
    *,
    pool: int = POOL,
    per_host: int = PER_HOST,
    total: float | None = None,
) -> tuple[dict[Key, Answer], list[Key]]:
    """Ask every (URL, kind) with ``fetch``: ``pool`` at once, ``per_host`` to any one host. Returns
    the answers (each stamped with its URL, kind and time) and the keys left unasked or unanswered
    when ``total`` seconds ran out (their requests cancelled)."""
    import asyncio

    gate = asyncio.Semaphore(max(1, pool))
    hosts: dict[str, asyncio.Semaphore] = {}
    answers: dict[Key, Answer] = {}

    async def ask(key: Key) -> None:
        url, kind = key
        host = hosts.setdefault(_host(url), asyncio.Semaphore(max(1, per_host)))
        async with host, gate:  # the host's turn first: a busy host holds none of the pool's places
            result = fetch(url, kind)
            answer = result if isinstance(result, Answer) else await result
            answers[key] = replace(answer, url=url, kind=kind, checked=answer.checked or time.time())

    tasks = [asyncio.create_task(ask(key)) for key in keys]
    if not tasks:
        return answers, []
    done, pending = await asyncio.wait(tasks, timeout=total)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()  # a fetch that raised is a bug: say so
    return answers, [key for key in keys if key not in answers]


# -- asking over HTTP --------------------------------------------------------------------------


class HttpFetcher:
    """digest's own ``Fetch``: one httpx client for the whole check (its connections kept alive and
    reused), used as ``async with HttpFetcher(...) as fetch: await fetch(url, "link")``.

    ``timeout`` bounds each step of a request (connecting, the name's look-up included; each
    read), and twice that the whole request, redirects and all (0: no bound);
    ``image_read_limit`` is the most bytes read of an image whose server gives no size."""

    def __init__(
        self,
        *,
        timeout: float,
        pool: int = POOL,
        image_read_limit: int = IMAGE_PROBE_BYTES,
        verify: bool = True,
    ):
        self.timeout = timeout or None
        self.whole = 2 * timeout or None  # a server that trickles its answer
        self.pool = pool
        self.image_read_limit = image_read_limit
        self.verify = verify
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> HttpFetcher:
        import httpx

        self._client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            limits=httpx.Limits(max_connections=self.pool, max_keepalive_connections=self.pool),
            verify=self.verify,
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, url: str, kind: Kind) -> Answer:
        import httpx

        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if host == "invalid" or host.endswith(".invalid"):
            # RFC 6761 §6.4: never resolves, and may be known so without asking; a machine whose
            # resolver hangs on it then costs nothing.
            return Answer(url, kind, failure=DNS, detail=f"{host} does not resolve (.invalid never does)")
        try:
            if kind == "image":
                return await self._image(url)
            return await self._link(url)
        except (httpx.HTTPError, httpx.InvalidURL, OSError, UnicodeError) as exc:
            if isinstance(exc, TimeoutError) and exc.errno is None:  # the whole request's bound
                return Answer(url, kind, failure=TIMEOUT, detail=f"no whole answer in {self.whole:g} s")
            failure, detail = describe_failure(exc, self.timeout)
            return Answer(url, kind, failure=failure, detail=detail)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("HttpFetcher is used as `async with HttpFetcher(...) as fetch`")
        return self._client

    async def _link(self, url: str) -> Answer:
        import asyncio

        import httpx

        response: httpx.Response | None = None
        try:
            async with asyncio.timeout(self.whole):
                response = await self.client.head(url, headers=_LINK_HEADERS)
        except httpx.RemoteProtocolError:
            response = None  # a server that hangs up on HEAD: ask with GET
        if response is None or response.status_code >= 400:
            # Refused HEAD (405, 501, or any other error): many servers answer GET only. The body
            # is never read: the status and the headers are all a link needs.
            async with (
                asyncio.timeout(self.whole),
                self.client.stream("GET", url, headers=_LINK_HEADERS) as got,
            ):
                response = got
        return _answer(url, "link", response)

    async def _image(self, url: str) -> Answer:
        answer, whole = await self._image_bytes(url, IMAGE_HEAD_BYTES)
        if (
            answer.status == 206
            and answer.width is None
            and not whole
            and answer.image is not False
            and (answer.size is None or answer.size > IMAGE_HEAD_BYTES)
        ):
            answer, whole = await self._image_bytes(url, IMAGE_PROBE_BYTES)  # a header longer than 64 KiB
        return answer

    async def _image_bytes(self, url: str, first: int) -> tuple[Answer, bool]:
        """Ask for an image's first ``first`` bytes; its answer, with the size and width known so
        far, and whether the whole image was read."""
        import asyncio

        ranged = True
        while True:
            headers = {**_IMAGE_HEADERS, **({"Range": f"bytes=0-{first - 1}"} if ranged else {})}
            async with (
                asyncio.timeout(self.whole),
                self.client.stream("GET", url, headers=headers) as response,
            ):
                if response.status_code == 416 and ranged:
                    ranged = False  # an empty file, or a server that dislikes ranges: ask for it whole
                    continue
                answer = _answer(url, "image", response)
                if response.status_code >= 300:
                    return answer, False
                return await self._read_image(response, answer)

    async def _read_image(self, response: httpx.Response, answer: Answer) -> tuple[Answer, bool]:
        """Read an image's answer only as far as needed: until Pillow knows its width (and, when
        the server gave no size, until it is over the size limit)."""
        partial = response.status_code == 206
        total = _range_total(response.headers.get("content-range", "")) if partial else answer.size
        data = bytearray()
        probe: tuple[int, int] | None = None
        next_probe = 1024
        ended = True
        async for chunk in response.aiter_bytes():
            data += chunk
            if probe is None and len(data) >= next_probe:
                probe = image_size(bytes(data))
                next_probe = len(data) * 2
            decided = probe is not None or len(data) >= IMAGE_PROBE_BYTES
            measured = total is not None or len(data) >= self.image_read_limit
            if decided and measured:
                ended = False
                break
        if probe is None and data:
            probe = image_size(bytes(data))
        whole = ended and (not partial or (total is not None and len(data) >= total))
        if total is not None:
            size, exact = total, True
        else:
            size, exact = len(data), whole
        if probe is not None:
            image: bool | None = True
        elif answer.content_type.startswith("image/"):
            image = True  # a kind Pillow does not read (SVG): its width stays unknown
        elif answer.content_type in _NOT_SAID and not whole:
            image = None
        else:
            image = False
        width, height = probe or (None, None)
        return replace(answer, size=size, size_exact=exact, width=width, height=height, image=image), whole


def _answer(url: str, kind: Kind, response: httpx.Response) -> Answer:
    history = response.history
    return Answer(
        url,
        kind,
        status=response.status_code,
        reason=response.reason_phrase,
        redirect=history[0].status_code if history else None,
        final_url=str(response.url) if history else "",
        content_type=response.headers.get("content-type", "").partition(";")[0].strip().lower(),
        size=_whole_number(response.headers.get("content-length", "")),
    )


def _whole_number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _range_total(content_range: str) -> int | None:
    """The whole size that ``Content-Range: bytes 0-65535/123456`` gives (None for ``/*``)."""
    return _whole_number(content_range.rpartition("/")[2])


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the image these (first) bytes begin, read from its header by Pillow; None
    when Pillow cannot tell from them (not an image, a kind it does not read, too few bytes)."""
    import io
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: nothing is decoded here
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Image.DecompressionBombError:
            return _bomb_size(data)
        except Exception:  # Pillow raises many kinds for a truncated or unknown header
            return None


def _bomb_size(data: bytes) -> tuple[int, int] | None:
    """The size of an image over Pillow's pixel limit, which ``Image.open`` refuses to say: read with
    the limit lifted for this one call (only the header is read)."""
    import io

    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def describe_failure(exc: BaseException, timeout: float | None = None) -> tuple[str, str]:
    """(failure, words) for a request that got no HTTP answer, from the exception and its causes."""
    import errno
    import socket
    import ssl

    import httpx

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 12:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            temporary = cause.errno == socket.EAI_AGAIN
            return DNS, "its name does not resolve" + (
                " (the name server did not answer)" if temporary else ""
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TLS, f"its TLS certificate is refused: {cause.verify_message or cause.reason or cause}"
        if isinstance(cause, ssl.SSLError):
            return TLS, f"the TLS handshake failed: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return REFUSED, "the connection was refused"
        if isinstance(cause, OSError) and cause.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.ENETDOWN,
        ):
            return UNREACHABLE, "the host cannot be reached (no route)"
    for cause in chain:
        if isinstance(cause, httpx.ConnectTimeout):
            return NO_CONNECTION, f"no connection in {timeout:g} s" if timeout else "no connection"
        if isinstance(cause, (TimeoutError, httpx.TimeoutException)):
            return TIMEOUT, f"no answer in {timeout:g} s" if timeout else "no answer in time"
        if isinstance(cause, httpx.TooManyRedirects):
            return REDIRECTS, f"more than {MAX_REDIRECTS} redirects (a loop?)"
        if isinstance(cause, httpx.UnsupportedProtocol):
            return ERROR, "it redirects to an address that is not http or https"
        if isinstance(cause, httpx.ProtocolError):
            return PROTOCOL, f"the server broke off the answer ({cause or type(cause).__name__})"
    return ERROR, str(exc) or type(exc).__name__
