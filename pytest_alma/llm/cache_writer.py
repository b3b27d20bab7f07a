"""Store replies in the response cache from a background thread, many per transaction.

The gateway answers each upstream reply as soon as it has it; storing it is the writer's job.
One SQLite transaction per reply cost the gateway about a third of its CPU at 16 workers (a
commit, a thread hand-off and a wake-up per call), and the gateway is the one process every
call passes through. The writer drains whatever has queued up and commits it in one
transaction, so under load many replies share a commit.

Replies that are queued but not yet committed are still answered: :meth:`CacheWriter.pending`
looks them up, so a repeat of a call never goes upstream twice. It also keeps the last few
hundred committed replies, so the gateway finds a reply that was committed between its lookup
here and its lookup in the file (it computes every key itself; clients never send one).
If the process is killed before a commit, those replies are simply not cached (the file stays
consistent, as with any interrupted transaction); :meth:`close` commits everything left.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pytest_alma.llm.cache import CacheEntry, PendingStore, ResponseCache

log = logging.getLogger(__name__)

_STOP = object()

#: Committed replies kept in memory for :meth:`CacheWriter.pending` (repeats of a call come soon
#: after it, so the last few commits answer them without a file lookup).
RECENT_COMMITTED = 256


class CacheWriter:
    """A single background thread that stores replies into ``cache`` (mode ``"rw"`` only).

    Args:
        cache: the cache to store into.
        max_batch: at most this many replies per transaction.
    """

    def __init__(self, cache: ResponseCache, *, max_batch: int = 512):
        self.cache = cache
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[PendingStore | object] = queue.SimpleQueue()
        self._pending: dict[str, CacheEntry] = {}
        self._recent: OrderedDict[str, CacheEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._failures = 0
        self._thread: threading.Thread | None = None
        if cache.writes:
            self._thread = threading.Thread(target=self._run, name="alma-cache-writer", daemon=True)
            self._thread.start()

    @property
    def failures(self) -> int:
        """Batches that could not be stored (logged; their replies were served, not cached)."""
        return self._failures

    def submit(
        self,
        key: str,
        body: bytes,
        *,
        endpoint: str,
        model: str,
        meta: Mapping[str, Any],
    ) -> None:
        """Queue a successful reply for storage and return at once (no-op unless mode rw)."""
        if self._thread is None:
            return
        item = PendingStore(key, body, endpoint, model, dict(meta))
        with self._lock:
            self._pending.setdefault(key, CacheEntry(body=body, meta=dict(meta)))
            self._unfinished += 1
        self._queue.put(item)

    def pending(self, key: str) -> CacheEntry | None:
        """A reply queued under ``key`` (or among the last committed ones), or ``None``."""
        with self._lock:
            return self._pending.get(key) or self._recent.get(key)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted so far is committed; returns False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout_s)

    def close(self) -> None:
        """Commit what is queued and stop the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[PendingStore] = []
            item = self._queue.get()
            # Take what has queued up meanwhile: under load, one commit stores many replies.
            while True:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, PendingStore):
                    batch.append(item)
                if stopping or len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._store(batch)

    def _store(self, batch: list[PendingStore]) -> None:
        stored = False
        try:
            self.cache.put_many(batch)
            stored = True
        except Exception:
            # A cache that cannot be written must not take the session down: the replies were
            # already served; they are just not cached. Logged, and counted for the report.
            self._failures += 1
            log.exception("could not store %d replies in the response cache", len(batch))
        with self._idle:
            for item in batch:
                entry = self._pending.pop(item.key, None)
                if stored and entry is not None:
                    self._recent[item.key] = entry
                    self._recent.move_to_end(item.key)
            while len(self._recent) > RECENT_COMMITTED:
                self._recent.popitem(last=False)
            self._unfinished -= len(batch)
            self._idle.notify_all()
