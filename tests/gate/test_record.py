"""The record file, the replay file and the gate's evaluation, on hand-made documents."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.compare import outcome_differences, protocol_differences
from pytest_alma.gate import merge_back, merge_leftovers, move_store_aside
from pytest_alma.llm.cache import PendingStore, ResponseCache, suspend_direct_reads
from pytest_alma.llm.replay import ReplayError, decode_replay, encode_replay, write_replay
from pytest_alma.record import (
    GateError,
    build_record,
    evaluate,
    read_record,
    record_scores,
    replay_file_name,
    write_record,
)

SETTINGS = {
    "envs": ["babaisai"],
    "model": None,
    "split": None,
    "seed": 0,
    "limit": 4,
    "repeats": 2,
    "max_steps": 8,
    "temperature": None,
    "cache": "rw",
    "concurrency": 16,
    "llm_retries": 3,
    "environments": {"babaisai": {"preset": "alma", "engine_version": "1"}},
}


def episode(design: str, task: str, seed: int, repeat: int, score: float) -> dict[str, Any]:
    return {
        "design": design,
        "phase": "deploy",
        "task": {"env": "babaisai", "task_id": task, "split": "s", "seed": seed},
        "repeat": repeat,
        "score": score,
        "error": None,
    }


def results(scores: dict[str, list[float]], **settings: Any) -> dict[str, Any]:
    """A results document: each design plays tasks t0.. with seeds 10.., repeat 1."""
    episodes = [
        episode(design, f"t{i}", 10 + i, 1, score)
        for design, values in scores.items()
        for i, score in enumerate(values)
    ]
    return {
        "run_id": "run-1",
        "finished": "2026-01-01T00:00:00Z",
        "model": "scripted",
        "test_double": True,
        "settings": {**copy.deepcopy(SETTINGS), **settings},
        "designs": {d: {"source_hash": f"hash-{d}", "config": None} for d in scores},
        "episodes": episodes,
    }


BASE = {"good": [1.0, 1.0, 0.0, 1.0], "no_memory": [0.0, 1.0, 0.0, 0.0]}


def record_of(doc: dict[str, Any]) -> dict[str, Any]:
    return build_record(doc, None)


# -- the record document ---------------------------------------------------------------------


def test_record_holds_scores_by_episode_and_the_outcome_settings() -> None:
    record = record_of(results(BASE))
    good = record["designs"]["good"]
    assert good["source_hash"] == "hash-good"
    numbers = good["environments"]["babaisai"]
    assert numbers["n"] == 4 and numbers["mean"] == pytest.approx(0.75)
    assert numbers["scores"] == {
        "t0-s10-r1": 1.0,
        "t1-s11-r1": 1.0,
        "t2-s12-r1": 0.0,
        "t3-s13-r1": 1.0,
    }
    assert 0 < numbers["low"] < 0.75 < numbers["high"] <= 1
    settings = record["settings"]
    assert settings["model"] == "scripted" and settings["test_double"] is True
    assert settings["environments"] == SETTINGS["environments"]
    for run_only in ("cache", "concurrency", "llm_retries", "envs"):
        assert run_only not in settings
    assert record_scores(record)[("babaisai", "good")] == numbers["scores"]


def test_record_file_is_stable_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "alma-record.json"
    record = record_of(results(BASE))
    write_record(path, record)
    first = path.read_bytes()
    write_record(path, record_of(results(BASE)))
    assert path.read_bytes() == first  # same run, same bytes: diffs show only real changes
    text = first.decode()
    assert text.index('"about"') < text.index('"designs"') < text.index('"settings"')
    assert read_record(path) == json.loads(text)


def test_nan_statistics_are_written_as_null(tmp_path: Path) -> None:
    record = record_of(results({"one": [0.5]}))  # one non-binary score: no t interval
    write_record(tmp_path / "r.json", record)  # allow_nan=False would raise on NaN
    assert record["designs"]["one"]["environments"]["babaisai"]["low"] is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "there is no record"),
        ("not json", "cannot read the record"),
        ('{"format": "other"}', "is not a pytest-alma record"),
        ('{"format": "pytest-alma-record", "version": 99}', "version 99"),
    ],
)
def test_unusable_records_are_clear_errors(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    path = tmp_path / "alma-record.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GateError, match=fragment):
        read_record(path)


def test_replay_file_names() -> None:
    assert replay_file_name(Path("reports/alma-record.json")) == "alma-replay.jsonl.gz"
    assert replay_file_name(Path("ci/scores.json")) == "scores.replay.jsonl.gz"


# -- settings ----------------------------------------------------------------------------------


def test_only_outcome_settings_block_a_comparison() -> None:
    record = record_of(results(BASE))
    assert outcome_differences(record, results(BASE, cache="replay", concurrency=2)) == []
    differences = outcome_differences(record, results(BASE, seed=1, repeats=3))
    assert differences == ["repeats: 2 (record) vs 3 (now)", "seed: 0 (record) vs 1 (now)"]
    other_env = results(BASE)
    other_env["settings"]["environments"]["babaisai"]["preset"] = "balrog"
    assert outcome_differences(record, other_env) == [
        "environments.babaisai.preset: 'alma' (record) vs 'balrog' (now)"
    ]
    # Another model is an outcome difference for the gate, not a protocol one for compare.
    live = dict(results(BASE), model="gpt-4o-mini", test_double=False)
    assert "model: 'scripted' (record) vs 'gpt-4o-mini' (now)" in outcome_differences(record, live)
    assert protocol_differences(results(BASE), live) == []
    assert protocol_differences(results(BASE), results(BASE, limit=8)) == ["limit: 4 (A) vs 8 (B)"]


# -- the gate's evaluation ---------------------------------------------------------------------


def gate(
    record_doc: dict[str, Any],
    now: dict[str, Any],
    threshold: str = "mean:5%",
    improvement: bool = False,
) -> Any:
    return evaluate(
        record_of(record_doc),
        now,
        threshold=threshold,
        fail_on_improvement=improvement,
        record_path=Path("reports/alma-record.json"),
    )


def test_same_scores_pass() -> None:
    outcome = gate(results(BASE), results(BASE))
    assert not outcome.failing
    assert outcome.lines[-1] == "gate passed: 2 design/environment pair(s) compared"


def test_a_drop_beyond_the_threshold_fails_with_a_readable_line() -> None:
    worse = results({"good": [1.0, 0.0, 0.0, 1.0], "no_memory": BASE["no_memory"]})
    outcome = gate(results(BASE), worse)
    assert outcome.failing
    row = next(line for line in outcome.lines if line.startswith("babaisai  good"))
    # record 75.0, now 50.0, -25 points, paired on 4 episodes, threshold and verdict.
    for part in ("75.0", "50.0", "-25.0", "4/4 paired", "mean:5%", "REGRESSION"):
        assert part in row
    assert "good on babaisai: REGRESSION: -25.0 points" in "\n".join(outcome.lines)
    assert outcome.lines[-1].startswith("GATE FAILED: 1 regression(s)")
    # A looser threshold for that design lets the same drop through.
    assert not gate(results(BASE), worse, "good=mean:0.3,*=mean:5%").failing


def test_improvements_pass_unless_asked_to_fail() -> None:
    better = results({"good": BASE["good"], "no_memory": [1.0, 1.0, 0.0, 1.0]})
    assert not gate(results(BASE), better).failing
    outcome = gate(results(BASE), better, improvement=True)
    assert outcome.failing
    assert any("IMPROVED (fails: re-record)" in line for line in outcome.lines)


def test_new_and_missing_designs_are_reported_not_gated() -> None:
    now = results({"good": BASE["good"], "fresh": [0.0, 0.0, 0.0, 0.0]})
    outcome = gate(results(BASE), now)
    assert not outcome.failing
    text = "\n".join(outcome.lines)
    assert "new (not gated)" in text and "not run (not gated)" in text


def test_a_changed_design_is_noted() -> None:
    now = results(BASE)
    now["designs"]["good"]["source_hash"] = "hash-edited"
    assert "design changed since the record (hash-good -> hash-edited)" in "\n".join(
        gate(results(BASE), now).lines
    )


def test_other_settings_are_refused_naming_them() -> None:
    with pytest.raises(GateError, match=r"refuses to compare.*limit: 4 \(record\) vs 8 \(now\)"):
        gate(results(BASE), results(BASE, limit=8))


def test_nothing_to_compare_is_an_error_not_a_pass() -> None:
    empty = results(BASE)
    empty["episodes"] = []
    with pytest.raises(GateError, match="compared nothing"):
        gate(results(BASE), empty)


def test_a_bad_threshold_is_an_error() -> None:
    with pytest.raises(GateError, match="--alma-regression-threshold"):
        gate(results(BASE), results(BASE), threshold="mean:lots")


# -- replay files ------------------------------------------------------------------------------


def entries() -> list[PendingStore]:
    return [
        PendingStore(
            "b" * 64,
            b'{"choices": [{"message": {"content": "right"}}]}',
            "chat/completions",
            "scripted",
            {"usage": {"prompt_tokens": 3}},
        ),
        PendingStore("a" * 64, b"\xff\xfe not utf-8", "embeddings", "scripted-embed", {}),
    ]


def test_replay_round_trip_is_sorted_and_byte_stable(tmp_path: Path) -> None:
    info = write_replay(tmp_path / "r.jsonl.gz", entries(), {"run_id": "x"})
    data = info.path.read_bytes()
    assert info.calls == 2 and info.bytes == len(data)
    assert encode_replay(list(reversed(entries())), {"run_id": "x"}) == data
    lines = gzip.decompress(data).decode().splitlines()
    assert json.loads(lines[0])["format"] == "pytest-alma-replay"
    assert [json.loads(line)["key"][0] for line in lines[1:]] == ["a", "b"]
    replay = decode_replay(data, "r.jsonl.gz")
    assert len(replay) == 2
    for original in entries():
        got = replay.get(original.key)
        assert got is not None and got.body == original.body and got.meta == original.meta
    assert replay.get("c" * 64) is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"plain", "not a pytest-alma replay file"),
        (gzip.compress(b'{"format": "x"}\n'), "no pytest-alma replay header"),
        (gzip.compress(b'{"format": "pytest-alma-replay", "version": 7}\n'), "version 7"),
        (
            gzip.compress(b'{"format": "pytest-alma-replay", "version": 1, "calls": 2}\n'),
            "says it holds 2 calls but has 0",
        ),
        (
            gzip.compress(
                b'{"format": "pytest-alma-replay", "version": 1, "calls": 1}\n{"k": 1}\n'
            ),
            "line 2: not a replay entry",
        ),
    ],
    # Explicit ids: gzip's header holds the compression time, so ids made from the bytes would
    # differ between xdist workers that collect in different seconds (a collection error).
    ids=["plain", "no-header", "version", "count", "bad-entry"],
)
def test_unusable_replay_files_say_how_to_re_record(data: bytes, fragment: str) -> None:
    with pytest.raises(ReplayError, match=fragment) as err:
        decode_replay(data, "f.jsonl.gz")
    assert "--alma-record" in str(err.value)


def test_cache_export_and_suspended_direct_reads(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    writer = ResponseCache(path, "rw")
    for e in entries():
        writer.put(e.key, e.body, endpoint=e.endpoint, model=e.model, meta=e.meta)
    reader = ResponseCache(path, "ro")
    exported = reader.export(["a" * 64, "z" * 64])
    assert [e.key for e in exported] == ["a" * 64] and exported[0].model == "scripted-embed"
    try:
        suspend_direct_reads()
        assert reader.get("a" * 64) is None  # read-only views miss: calls go to the gateway
        assert writer.get("a" * 64) is not None  # the gateway's own cache is not affected
        assert reader.export(["a" * 64])  # exporting is not a lookup
    finally:
        suspend_direct_reads(False)
    assert reader.get("a" * 64) is not None
    assert reader.stats().misses == 0  # suspended lookups are not counted as misses


# -- the store during a recording session ------------------------------------------------------


def test_store_is_moved_aside_and_merged_back(tmp_path: Path) -> None:
    store = tmp_path / ".alma"
    (store / "collection" / "babaisai").mkdir(parents=True)
    (store / "collection" / "babaisai" / "old.json").write_text("old")
    (store / "collection" / "babaisai" / "both.json").write_text("old")
    (store / "memory").mkdir()
    (store / "memory" / "m.pkl").write_text("old")
    (store / "llm_cache.sqlite").write_text("cache")
    aside = move_store_aside(store, "run-1")
    assert aside is not None
    assert not (store / "collection").exists() and not (store / "memory").exists()
    assert (store / "llm_cache.sqlite").exists()  # the replies stay where the gateway reads
    # The session remakes one of the files.
    (store / "collection" / "babaisai").mkdir(parents=True)
    (store / "collection" / "babaisai" / "both.json").write_text("new")
    merge_back(aside, store)
    assert (store / "collection" / "babaisai" / "both.json").read_text() == "new"
    assert (store / "collection" / "babaisai" / "old.json").read_text() == "old"
    assert (store / "memory" / "m.pkl").read_text() == "old"
    assert not aside.exists()


def test_leftovers_of_a_killed_recording_are_merged_back(tmp_path: Path) -> None:
    store = tmp_path / ".alma"
    dead = store / ".record-aside-run-0-999999999"  # no such process
    (dead / "memory").mkdir(parents=True)
    (dead / "memory" / "m.pkl").write_text("kept")
    merge_leftovers(store)
    assert (store / "memory" / "m.pkl").read_text() == "kept" and not dead.exists()


def test_no_pair_in_common_is_an_error_not_a_pass() -> None:
    other = results({"fresh": [1.0, 0.0, 0.0, 0.0]})
    with pytest.raises(GateError, match="compared nothing: no design and environment"):
        gate(results(BASE), other)
