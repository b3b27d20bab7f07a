"""The gateway's background cache writer: batching, pending lookups, commit on close, failures."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pytest_alma.llm.cache import ResponseCache
from pytest_alma.llm.cache_writer import CacheWriter


def submit(writer: CacheWriter, key: str, body: bytes = b"{}") -> None:
    writer.submit(key, body, endpoint="chat/completions", model="m", meta={"usage": None})


def test_submitted_replies_are_pending_then_committed(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    writer = CacheWriter(cache)
    for i in range(50):
        submit(writer, f"k{i}", f'{{"i": {i}}}'.encode())
    # Answerable at once, from the queue or from the file.
    assert all(writer.pending(f"k{i}") or cache.get(f"k{i}") for i in range(50))
    assert writer.flush(timeout_s=10)
    assert len(cache) == 50 and cache.stats().stores == 50
    entry = cache.get("k7")
    assert entry is not None and entry.body == b'{"i": 7}' and entry.meta == {"usage": None}
    writer.close()


def test_recently_committed_replies_still_answer_and_are_bounded(tmp_path: Path) -> None:
    # A client that missed in the file just before a commit asks the gateway with its key, and
    # the gateway does not look in the file again: the writer must still know the reply.
    from pytest_alma.llm.cache_writer import RECENT_COMMITTED

    writer = CacheWriter(ResponseCache(tmp_path / "c.sqlite"))
    submit(writer, "first", b'{"i": 0}')
    assert writer.flush(timeout_s=10)
    found = writer.pending("first")
    assert found is not None and found.body == b'{"i": 0}'
    for i in range(RECENT_COMMITTED):
        submit(writer, f"k{i}")
    assert writer.flush(timeout_s=10)
    assert writer.pending("first") is None  # the oldest is forgotten: memory stays bounded
    assert writer.pending(f"k{RECENT_COMMITTED - 1}") is not None
    writer.close()


def test_close_commits_everything_queued(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = CacheWriter(ResponseCache(path))
    for i in range(300):
        submit(writer, f"k{i}")
    writer.close()
    writer.close()  # idempotent
    assert len(ResponseCache(path, "ro")) == 300


def test_many_replies_share_a_transaction(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    commits: list[int] = []
    original = cache.put_many
    gate = threading.Event()

    def counting_put_many(entries: list) -> int:  # type: ignore[type-arg]
        gate.wait(10)  # hold the first commit so that the rest queue up behind it
        commits.append(len(entries))
        return original(entries)

    cache.put_many = counting_put_many  # type: ignore[method-assign]
    writer = CacheWriter(cache)
    for i in range(100):
        submit(writer, f"k{i}")
    gate.set()
    writer.close()
    assert sum(commits) == 100 and len(commits) < 10


def test_a_failing_store_is_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")

    def broken(entries: list) -> int:  # type: ignore[type-arg]
        raise sqlite3.OperationalError("disk I/O error")

    cache.put_many = broken  # type: ignore[method-assign]
    writer = CacheWriter(cache)
    submit(writer, "k")
    assert writer.flush(timeout_s=10)
    assert writer.failures == 1 and writer.pending("k") is None
    assert "could not store 1 replies" in caplog.text
    submit(writer, "k2")  # the writer keeps going
    writer.close()
    assert writer.failures == 2


@pytest.mark.parametrize("mode", ["ro", "replay", "off"])
def test_read_only_modes_store_nothing(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path)  # an existing, empty cache
    writer = CacheWriter(ResponseCache(path, mode))  # type: ignore[arg-type]
    submit(writer, "k")
    assert writer.pending("k") is None and writer.flush(timeout_s=1)
    writer.close()
    assert len(ResponseCache(path, "ro")) == 0
