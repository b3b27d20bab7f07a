"""The SQLite response cache: keys, modes, several processes, and kills mid-write."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from pytest_alma.llm.cache import ResponseCache, cache_key
from pytest_alma.llm.errors import CacheMissError

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "seed": 1}


def test_key_is_canonical_and_covers_everything() -> None:
    reordered = {"seed": 1, "messages": [{"content": "hi", "role": "user"}], "model": "gpt-4o-mini"}
    assert cache_key("chat/completions", BODY) == cache_key("chat/completions", reordered)
    variants = [
        ("embeddings", BODY),
        ("chat/completions", {**BODY, "seed": 2}),
        ("chat/completions", {**BODY, "temperature": 0.0}),
        ("chat/completions", {**BODY, "model": "gpt-4o"}),
        ("chat/completions", {**BODY, "messages": [{"role": "user", "content": "hi!"}]}),
    ]
    keys = {cache_key(e, b) for e, b in variants} | {cache_key("chat/completions", BODY)}
    assert len(keys) == len(variants) + 1
    assert cache_key("chat/completions", BODY, "vllm") != cache_key("chat/completions", BODY)


def test_read_write_mode(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    key = cache.key("chat/completions", BODY)
    assert cache.get(key) is None
    assert cache.put(key, b'{"ok": 1}', endpoint="chat/completions", model="m", meta={"u": 1})
    entry = cache.get(key)
    assert entry is not None and entry.body == b'{"ok": 1}' and entry.meta == {"u": 1}
    assert not cache.put(key, b"other", endpoint="chat/completions", model="m")  # first wins
    assert cache.stats() == (cache.stats().__class__(hits=1, misses=1, stores=1))
    assert len(cache) == 1


def test_read_only_and_replay_never_write(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).put("k1", b"v1", endpoint="e", model="m")
    ro = ResponseCache(path, "ro")
    assert ro.get("k1") is not None and ro.get("k2") is None
    assert not ro.put("k2", b"v2", endpoint="e", model="m") and len(ro) == 1
    replay = ResponseCache(path, "replay")
    assert replay.get("k1") is not None
    with pytest.raises(CacheMissError, match="replay-only mode.*--alma-cache=rw"):
        replay.get("k2")
    assert not replay.put("k2", b"v2", endpoint="e", model="m") and len(replay) == 1


def test_read_only_mode_is_read_only_in_sqlite_and_reads_a_live_wal_file(tmp_path: Path) -> None:
    # A name that a URI built without quoting would cut short ("?" starts the query, "#" the
    # fragment) or misread ("%").
    path = tmp_path / "odd ?name#%20.sqlite"
    writer = ResponseCache(path)  # mode rw, WAL; it stays open, as the gateway's writer does
    writer.put("k1", b"v1", endpoint="e", model="m")
    reader = ResponseCache(path, "ro")
    entry = reader.get("k1")
    assert entry is not None and entry.body == b"v1"
    writer.put("k2", b"v2", endpoint="e", model="m")  # committed while the reader is open
    entry = reader.get("k2")
    assert entry is not None and entry.body == b"v2"
    # Whatever reaches the reader's connection (design code in a worker) cannot write through it.
    conn = reader._connection()
    assert conn is not None
    for statement in [
        "INSERT INTO responses VALUES ('k1', 'e', 'm', x'00', '{}', 0)",
        "UPDATE responses SET body = x'00'",
        "DELETE FROM responses",
    ]:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute(statement)
    entry = writer.get("k1")
    assert entry is not None and entry.body == b"v1" and len(writer) == 2
    # The URI named this very file: no other file appeared beside it.
    names = {p.name for p in tmp_path.iterdir()}
    assert names <= {path.name, path.name + "-wal", path.name + "-shm"}


def test_off_and_missing_files(tmp_path: Path) -> None:
    off = ResponseCache(tmp_path / "off.sqlite", "off")
    assert off.get("k") is None and not off.put("k", b"v", endpoint="e", model="m")
    assert ResponseCache(tmp_path / "ro.sqlite", "ro").get("k") is None
    with pytest.raises(CacheMissError):
        ResponseCache(tmp_path / "replay.sqlite", "replay").get("k")
    assert list(tmp_path.iterdir()) == []  # none of these modes creates a file


def test_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rw, ro, replay, off"):
        ResponseCache(tmp_path / "c", "write")  # type: ignore[arg-type]


def _writer(path: str, worker: int, count: int) -> None:
    cache = ResponseCache(path)
    for i in range(count):
        cache.put(f"{worker}-{i}", os.urandom(256), endpoint="e", model="m")
        cache.get(f"{(worker + 1) % 4}-{i}")


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ResponseCache(path)  # create the schema once, as the controller does
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(ResponseCache(path, "ro")) == 160


def _write_forever(path: str) -> None:
    cache = ResponseCache(path)
    i = 0
    while True:
        cache.put(f"key-{i}", os.urandom(64 * 1024), endpoint="e", model="m")
        i += 1


def test_sigkill_mid_write_leaves_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    proc = mp.get_context("spawn").Process(target=_write_forever, args=(str(path),))
    proc.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not path.exists() or len(ResponseCache(path, "ro")) < 20
    ):
        time.sleep(0.05)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    cache = ResponseCache(path)
    stored = len(cache)
    assert stored >= 20
    entry = cache.get("key-0")
    assert entry is not None and len(entry.body) == 64 * 1024
    assert cache.put("after-kill", b"v", endpoint="e", model="m")  # still writable
