"""A content-addressed response cache in one SQLite file.

The key is the sha256 of the canonical JSON of everything that determines a reply: the endpoint
and the whole request body (model, messages or input, every generation parameter, the seed). The
value is the upstream response body, byte for byte, plus a small JSON ``meta`` record (usage,
test-double flag) so that a hit can be accounted without parsing a possibly large body.

Several processes may share the file: SQLite in WAL mode lets readers run beside one writer, a busy
timeout makes writers queue instead of failing, and every store is one transaction, so a process
killed mid-write (even by SIGKILL) leaves the previous committed state intact.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pytest_alma.llm.errors import CacheMissError

CacheMode = Literal["rw", "ro", "replay", "off"]
CACHE_MODES: tuple[str, ...] = get_args(CacheMode)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    body BLOB NOT NULL,
    meta TEXT NOT NULL,
    created REAL NOT NULL
)
"""


# Whether read-only views (mode "ro") of the cache answer lookups in this process. A session
# that records a replay file or replays one turns them off in its own processes (controller and
# xdist workers, never the gateway): every call then reaches the gateway, which alone knows the
# calls the run made and serves replay files. See suspend_direct_reads().
_direct_reads = True


def suspend_direct_reads(suspended: bool = True) -> None:
    """Make every read-only (mode ``"ro"``) cache of this process miss, or undo it.

    The harness reads cache hits straight from the file (mode ``"ro"``) to skip the hop to the
    gateway. While suspended those lookups return ``None`` without counting a miss, so every
    call goes to the gateway: recording (``--alma-record``) needs the gateway to see every call
    the run makes, and replaying a replay file needs it to answer from that file only, whatever
    the local cache holds. Modes ``rw`` and ``replay`` (the gateway's) are not affected.
    """
    global _direct_reads
    _direct_reads = not suspended


def direct_reads_suspended() -> bool:
    """Whether :func:`suspend_direct_reads` is in force in this process."""
    return not _direct_reads


def cache_key(endpoint: str, body: Mapping[str, Any], namespace: str = "") -> str:
    """The content address of one request: sha256 of canonical JSON (sorted keys, no spaces).

    ``namespace`` separates providers that serve the same model name differently (it is empty by
    default, so that a cache recorded against OpenAI replays in CI without configuration).
    """
    canonical = json.dumps(
        {"endpoint": endpoint, "namespace": namespace, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A stored response: the body bytes as received and the meta record stored beside them."""

    body: bytes
    meta: dict[str, Any]


@dataclass(frozen=True)
class PendingStore:
    """One successful reply to store: what :meth:`ResponseCache.put_many` takes."""

    key: str
    body: bytes
    endpoint: str
    model: str
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class CacheStats:
    """Counters of one :class:`ResponseCache` object (this process only)."""

    hits: int
    misses: int
    stores: int


class ResponseCache:
    """A response cache with four modes.

    * ``"rw"`` (default): hits are served, misses go upstream and successful replies are stored.
    * ``"ro"``: hits are served, misses go upstream, nothing is stored; the file is opened
      read-only (SQLite refuses writes on the connection).
    * ``"replay"``: hits are served, a miss raises :class:`CacheMissError` (deterministic CI).
    * ``"off"``: no lookups, no stores, no file.

    Only successful responses should be passed to :meth:`put`; the cache never stores anything on
    its own, so errors cannot end up in it. Thread-safe: each thread gets its own connection.
    """

    def __init__(self, path: Path | str, mode: CacheMode = "rw", *, busy_timeout_s: float = 30.0):
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} is not one of {', '.join(CACHE_MODES)}")
        self.path = Path(path)
        self.mode: CacheMode = mode
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._stores = 0
        if mode == "rw":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection()  # create the file and schema now, so setup errors surface early

    @property
    def reads(self) -> bool:
        """Whether lookups are made (every mode but ``"off"``)."""
        return self.mode != "off"

    @property
    def writes(self) -> bool:
        """Whether successful responses are stored (mode ``"rw"`` only)."""
        return self.mode == "rw"

    def _connection(self) -> sqlite3.Connection | None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self.mode == "off" or (self.mode != "rw" and not self.path.exists()):
            # Read-only modes must not create files; a missing file is simply an empty cache.
            return None
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a store is exactly one
        # transaction and nothing is left open between calls.
        conn = sqlite3.connect(
            self._database(),
            timeout=self._busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
            uri=self.mode == "ro",
        )
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
        if self.mode == "rw":
            # WAL: readers never block the writer and a killed writer leaves the last commit
            # intact. synchronous=NORMAL is still crash-safe for process kills (only an OS crash
            # can lose the latest commits, never corrupt the file) and avoids an fsync per store.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
        self._local.conn = conn
        return conn

    def _database(self) -> str | Path:
        """What to open: the path, or for mode ``"ro"`` a read-only URI of it.

        Mode ``"ro"`` is what workers (and so the code of designs) get: SQLite itself refuses
        every write on that connection, so nothing that reaches it can store a reply. It still
        reads a WAL database while the gateway's writer has it open. ``as_uri`` percent-quotes
        the path, so names with ``?``, ``#`` or ``%`` cannot inject URI parameters.
        """
        if self.mode == "ro":
            return self.path.resolve().as_uri() + "?mode=ro"
        return self.path

    def key(self, endpoint: str, body: Mapping[str, Any], namespace: str = "") -> str:
        """Same as :func:`cache_key`."""
        return cache_key(endpoint, body, namespace)

    def get(self, key: str) -> CacheEntry | None:
        """Look ``key`` up; ``None`` on a miss (or always in mode ``"off"``).

        Raises:
            CacheMissError: on a miss in mode ``"replay"``.
        """
        if self.mode == "off" or (self.mode == "ro" and not _direct_reads):
            return None
        conn = self._connection()
        row = None
        if conn is not None:
            try:
                row = conn.execute(
                    "SELECT body, meta FROM responses WHERE key = ?", (key,)
                ).fetchone()
            except sqlite3.OperationalError as err:
                if "no such table" not in str(err):
                    raise
        with self._lock:
            if row is None:
                self._misses += 1
            else:
                self._hits += 1
        if row is None:
            if self.mode == "replay":
                raise CacheMissError(
                    f"response cache {self.path} is in replay-only mode and has no entry for this "
                    f"request (key {key[:16]}...). Replay mode never calls the model. To refill "
                    "the cache, run once with the cache in read-write mode (--alma-cache=rw) and "
                    "the same model, prompts, parameters and seeds; then replay again."
                )
            return None
        return CacheEntry(body=bytes(row[0]), meta=json.loads(row[1]))

    def put(
        self,
        key: str,
        body: bytes,
        *,
        endpoint: str,
        model: str,
        meta: Mapping[str, Any] | None = None,
    ) -> bool:
        """Store a *successful* response body; returns whether anything was written.

        Does nothing unless the mode is ``"rw"``. An existing entry is kept (first writer wins:
        two processes racing on the same key stored equivalent replies).
        """
        return self.put_many([PendingStore(key, body, endpoint, model, meta or {})]) > 0

    def put_many(self, entries: list[PendingStore]) -> int:
        """Store several successful replies in one transaction; returns how many were new.

        Does nothing unless the mode is ``"rw"``. Existing entries are kept, as in :meth:`put`.
        """
        if not self.writes or not entries:
            return 0
        conn = self._connection()
        assert conn is not None  # mode "rw" always has a connection
        now = time.time()
        rows = [
            (
                e.key,
                e.endpoint,
                e.model,
                sqlite3.Binary(e.body),
                json.dumps(dict(e.meta), sort_keys=True),
                now,
            )
            for e in entries
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO responses (key, endpoint, model, body, meta, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            stored = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if stored:
            with self._lock:
                self._stores += stored
        return stored

    def export(self, keys: Iterable[str]) -> list[PendingStore]:
        """The stored replies of ``keys`` that exist, with their endpoint, model and meta.

        For writing replay files: no hit or miss is counted and the mode does not matter (a
        cache in mode ``"off"`` or without a file exports nothing).
        """
        conn = self._connection()
        if conn is None:
            return []
        wanted = sorted(set(keys))
        found: list[PendingStore] = []
        chunk = 500  # stay below SQLite's limit on host parameters per statement
        try:
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    "SELECT key, body, endpoint, model, meta FROM responses"
                    f" WHERE key IN ({marks})",
                    part,
                ).fetchall()
                found.extend(
                    PendingStore(str(r[0]), bytes(r[1]), str(r[2]), str(r[3]), json.loads(r[4]))
                    for r in rows
                )
        except sqlite3.OperationalError as err:
            if "no such table" not in str(err):
                raise
        return sorted(found, key=lambda e: e.key)

    def __len__(self) -> int:
        conn = self._connection()
        if conn is None:
            return 0
        try:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def stats(self) -> CacheStats:
        """Hits, misses and stores counted by this object."""
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses, stores=self._stores)

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close when collected)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
