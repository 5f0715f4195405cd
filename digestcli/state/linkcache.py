"""The link check's memory: what each URL answered, and when, so that a second check is instant.

Kept in ``.digest/links.sqlite3`` (SQLite, like the ledger and the suppression list: several
digest processes may check links at once, a preview and a send, and each answer is one row to
replace, never a whole file to rewrite). A row is one URL asked as a link or as an image, with the
time it was asked and the answer as JSON (``digestcli.linkcheck.Answer``, which says what is in
it); what counts as broken or heavy is judged from it at each check, so changing ``[lint]
image_max_kb`` needs no new request.

An answer is trusted for ``[lint] link_cache_hours``; a transient one (a 5xx, a timeout, a refused
connection) for an hour at most, so that a site that was down is asked again soon. Nothing here
fetches anything, and nothing here is needed for a send to go out: a damaged file is reported
(the caller says so and checks without it), never repaired by guessing.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digestcli.state import state_database

LINK_CACHE_DB = "links.sqlite3"
TRANSIENT_HOURS = 1.0  # the longest a transient failure is believed
_SCHEMA = 1  # the JSON's shape; rows of another are ignored (asked again)


@dataclass(frozen=True)
class CachedAnswer:
    """One URL's answer as kept: ``kind`` is ``link`` or ``image`` (an image is read further: its
    size and width), ``checked`` when it was asked (seconds since the epoch), ``transient`` whether
    it may well be different in a minute, ``data`` the answer itself."""

    url: str
    kind: str
    checked: float
    transient: bool
    data: dict[str, Any]


_TABLES = """CREATE TABLE IF NOT EXISTS answer (url TEXT NOT NULL, kind TEXT NOT NULL,
    checked REAL NOT NULL, transient INTEGER NOT NULL, schema INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (url, kind));"""


class LinkCache:
    """The answers of earlier link checks, in the workspace state (SQLite)."""

    busy_timeout = 10.0  # seconds to wait for another program's write to finish

    def __init__(self, state_dir: str | Path):
        self.path = Path(state_dir) / LINK_CACHE_DB

    def _database(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return state_database(self.path, "link cache", _TABLES, self.busy_timeout)

    def lookup(
        self,
        keys: Iterable[tuple[str, str]],
        *,
        hours: float,
        transient_hours: float = TRANSIENT_HOURS,
        now: float | None = None,
    ) -> dict[tuple[str, str], CachedAnswer]:
        """The answers still trusted for these (url, kind) keys: asked less than ``hours`` ago
        (``transient_hours`` for a transient one). A key with none is left out."""
        wanted = set(keys)
        if not wanted or hours <= 0 or not self.path.exists():
            return {}
        now = time.time() if now is None else now
        since = now - hours * 3600
        since_transient = now - min(hours, transient_hours) * 3600
        found: dict[tuple[str, str], CachedAnswer] = {}
        with self._database() as db:
            rows = db.execute(
                "SELECT url, kind, checked, transient, data FROM answer"
                " WHERE schema = ? AND checked > ? AND checked <= ? AND (transient = 0 OR checked > ?)",
                (_SCHEMA, since, now, since_transient),
            )
            for url, kind, checked, transient, data in rows:
                if (url, kind) not in wanted:
                    continue
                try:
                    value = json.loads(data)
                except ValueError:
                    continue  # a row we cannot read is a URL asked again
                if isinstance(value, dict):
                    found[url, kind] = CachedAnswer(url, kind, checked, bool(transient), value)
        return found

    def store(self, answers: Iterable[CachedAnswer], *, keep_hours: float) -> int:
        """Keep these answers (replacing the URLs' earlier ones), and forget every answer older
        than ``keep_hours``, which no check would trust any more. Returns how many were kept."""
        rows = [
            (a.url, a.kind, a.checked, int(a.transient), _SCHEMA, json.dumps(a.data, ensure_ascii=False))
            for a in answers
        ]
        with self._database() as db, db:
            db.executemany("INSERT OR REPLACE INTO answer VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("DELETE FROM answer WHERE checked < ?", (time.time() - keep_hours * 3600,))
        return len(rows)

    def clear(self) -> int:
        """Forget every answer; how many there were."""
        if not self.path.exists():
            return 0
        with self._database() as db, db:
            return db.execute("DELETE FROM answer").rowcount
