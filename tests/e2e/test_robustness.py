"""Faults, kills, sequential rollouts and --lf, run as users run them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import QUICK, results_of


def test_injected_faults_are_retried_and_accounting_adds_up(project: pytest.Pytester) -> None:
    faults = "--alma-faults=429@2,500@4,timeout@6,malformed@8,slow@10,429@11-12"
    result = project.runpytest_subprocess(
        *QUICK, faults, "--alma-llm-timeout=1", "--alma-cache=off", "-n", "2"
    )
    result.assert_outcomes(passed=10)
    data = results_of(project)
    totals = data["llm"]["totals"]
    assert totals["retries"] >= 6, totals
    deploy_calls = sum(
        e["agent_tokens"]["calls"] + e["retrieve_tokens"]["calls"] for e in data["episodes"]
    )
    collect_calls = sum(c["tokens"]["calls"] for c in data["collection"] if c["played_now"])
    update_calls = sum(b["update_tokens"]["calls"] for b in data["designs"].values())
    # Every successful call seen by a worker is one call at the gateway, across both workers.
    assert totals["calls"] == deploy_calls + collect_calls + update_calls
    prompt = sum(e["agent_tokens"]["prompt_tokens"] for e in data["episodes"]) + sum(
        c["tokens"]["prompt_tokens"] for c in data["collection"] if c["played_now"]
    )
    assert totals["prompt_tokens"] == prompt


def test_sequential_rollout_updates_between_episodes(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "--alma-limit=6",
        "--alma-repeats=2",
        "--alma-max-steps=8",
        "--alma-rollout=sequential",
        "-v",
    )
    # per design: contract + 3 collect + 2 streams
    result.assert_outcomes(passed=2 * (1 + 3 + 2))
    result.stdout.fnmatch_lines(["*example_rules.py::babaisai::stream?r1? PASSED*"])
    data = results_of(project)
    example = [e for e in data["episodes"] if e["design"] == "example_rules"]
    assert len(example) == 3 * 2
    assert all("update_tokens" in e["extra"] for e in example)


def test_last_failed_reruns_only_the_broken_design(project: pytest.Pytester) -> None:
    (project.path / "designs" / "bad.py").write_text(
        "from pytest_alma import MemoryDesign\n"
        "class Bad(MemoryDesign):\n"
        "    async def general_update(self, t):\n"
        "        pass\n"
        "    async def general_retrieve(self, task):\n"
        "        raise RuntimeError('still broken')\n"
    )
    first = project.runpytest_subprocess(*QUICK)
    first.assert_outcomes(passed=12, failed=3)
    again = project.runpytest_subprocess(*QUICK, "--lf")
    again.assert_outcomes(failed=3)
    assert "still broken" in again.stdout.str()


def _committed_replies(store: Path) -> int:
    try:
        with sqlite3.connect(store / "llm_cache.sqlite", timeout=1) as db:
            count: int = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return count
    except sqlite3.Error:  # not created yet
        return 0


def _calls_of_stored_episodes(collection_dir: Path) -> int:
    """One agent call per step of every stored collection episode (the designs make none)."""
    calls = 0
    for path in collection_dir.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):  # (being written)
            calls += len(json.loads(path.read_text())["trajectory"]["steps"])
    return calls


def test_sigkill_mid_run_then_rerun_reuses_finished_work(project: pytest.Pytester) -> None:
    store = project.path / ".alma"
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:xdist",
        "--alma-limit=8",
        "--alma-repeats=1",
        "--alma-max-steps=10",
        "--alma-scripted-latency=40",
    ]
    proc = subprocess.Popen(
        args,
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    collection_dir = store / "collection" / "babaisai"
    while time.monotonic() < deadline:
        # Kill once two episodes are stored AND the cache has committed a reply of an episode
        # that is not (the gateway commits in batches: without the second condition the kill
        # can come before any such reply is on disk, and the re-run has nothing to reuse).
        if (
            collection_dir.exists()
            and len(list(collection_dir.glob("*.json"))) >= 2
            and _committed_replies(store) > _calls_of_stored_episodes(collection_dir)
        ):
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # (a run that already ended)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    finished = sorted(p.name for p in collection_dir.glob("*.json"))
    assert finished, "the first run was killed before it finished any episode"
    # Nothing half-written: no temporary files left as results, the cache database is sound.
    with sqlite3.connect(store / "llm_cache.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        cached_rows = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert cached_rows > 0

    result = project.runpytest_subprocess(
        "-p", "no:xdist", "--alma-limit=8", "--alma-repeats=1", "--alma-max-steps=10"
    )
    result.assert_outcomes(passed=2 * (1 + 4 + 4))
    data = results_of(project)
    reused = [c for c in data["collection"] if not c["played_now"]]
    assert len(reused) >= len(finished)
    # The killed run's committed LLM replies answer the same calls in the re-run: the collection
    # episodes it had not finished are replayed from their first (cached) steps. (Replies still
    # queued for the cache when the process was killed are lost, by design: they are re-asked.)
    replayed = [c for c in data["collection"] if c["played_now"]]
    hits = sum(int(c["tokens"]["cached_calls"]) for c in replayed)
    hits += sum(e["agent_tokens"]["cached_calls"] for e in data["episodes"])
    assert hits > 0


def test_retrieved_memory_reaches_the_agent_and_changes_what_it_does(
    project: pytest.Pytester,
) -> None:
    """A design whose memory is a fixed action list: the scripted agent replays it whenever no
    win rule is visible, so its moves in those episodes must follow the memory exactly."""
    (project.path / "designs" / "fixed_plan.py").write_text(
        "from pytest_alma import MemoryDesign\n"
        "PLAN = ['down', 'down', 'right', 'up', 'left', 'left', 'down', 'right']\n"
        "class FixedPlan(MemoryDesign):\n"
        "    async def general_update(self, t):\n"
        "        pass\n"
        "    async def general_retrieve(self, task):\n"
        "        return {'plan_actions': PLAN}\n"
    )
    # Temperature 0: the scripted double plays greedily (at the default temperature it samples
    # another action now and then, as a sampling model would), so it must follow the memory.
    project.runpytest_subprocess(
        "--alma-split=all",
        "--alma-limit=20",
        "--alma-repeats=1",
        "--alma-max-steps=8",
        "--alma-temperature=0",
    ).assert_outcomes(passed=3 * (1 + 10 + 10))
    data = results_of(project)
    plan = ["down", "down", "right", "up", "left", "left", "down", "right"]
    followed = 0
    for e in data["episodes"]:
        if e["design"] != "fixed_plan":
            continue
        record = json.loads(Path(e["trajectory_path"]).read_text())
        assert record["memory"] == {"plan_actions": plan}
        steps = record["trajectory"]["steps"]
        seen = [record["trajectory"]["start"]["observation"]] + [s["observation"] for s in steps]
        for k, step in enumerate(steps):
            rules = seen[k].split("Objects on the map:")[0]
            if " is win" not in rules:
                # The policy's rule (b): no win rule in view, so replay the memory's list.
                assert step["action"] == plan[k], (k, seen[k])
                followed += 1
    assert followed > 0, "no deployment episode started without a win rule"
