"""Error kinds, failure records and the mapping of failed items to their episodes."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_alma.agent import EpisodeEnvironmentError
from pytest_alma.design import DesignCallError
from pytest_alma.failures import MemoryBuildFailed, error_kind, item_episodes, unplayed
from pytest_alma.llm.errors import BudgetExceededError, LLMUnavailableError
from pytest_alma.protocol import PlanSettings, make_plan, sampling_seed
from pytest_alma.records import Step, Task, TaskStart, Trajectory
from pytest_alma.runlog import RunLog, rebuild

PLAN = make_plan([f"t{i}" for i in range(6)], PlanSettings(env="babaisai", split="s", repeats=2))


def _wrapped(inner: Exception) -> DesignCallError:
    try:
        raise inner
    except Exception as exc:
        try:
            raise DesignCallError("D.general_update raised") from exc
        except DesignCallError as outer:
            return outer


def test_error_kinds_follow_the_cause() -> None:
    assert error_kind(DesignCallError("boom")) == "design"
    assert error_kind(BudgetExceededError("spent")) == "llm"
    # A design that met an LLM failure through ctx.llm: the LLM's fault, not the design's.
    assert error_kind(_wrapped(LLMUnavailableError("down"))) == "llm"
    assert error_kind(_wrapped(ValueError("bug"))) == "design"
    assert error_kind(EpisodeEnvironmentError("step 3")) == "environment"
    assert error_kind(MemoryBuildFailed("build", "llm")) == "llm"
    assert error_kind(KeyError("x")) == "harness"


def test_failed_items_map_to_their_episodes() -> None:
    plans = {"babaisai": PLAN}
    episode = PLAN.deployment[0]
    design, found = item_episodes(f"designs/d.py::babaisai::deploy[{episode.label}]", plans)
    assert (design, found) == ("d", [episode])
    design, found = item_episodes("baselines/no_memory.py::babaisai::stream[r2]", plans)
    assert design == "no_memory" and found == list(PLAN.stream(2)) and len(found) == 3
    assert item_episodes("designs/d.py::contract", plans) == ("", [])
    assert item_episodes("designs/d.py::babaisai::collect[t1-s1]", plans)[1] == []
    assert item_episodes("designs/d.py::minihack::stream[r1]", plans) == ("", [])


def test_an_unplayed_episode_is_a_zero_with_its_seed() -> None:
    episode = PLAN.deployment[1]
    record = unplayed("d", episode, run_seed=0, error="x" * 5000, kind="harness")
    assert record.score == 0.0 and record.success is False and record.error_kind == "harness"
    assert record.sampling_seed == sampling_seed(0, episode.task, episode.repeat)
    assert record.error is not None and len(record.error) < 2100


def test_sampling_seeds_differ_by_repeat_and_task_but_not_by_design() -> None:
    seeds = {sampling_seed(0, e.task, e.repeat) for e in PLAN.deployment}
    assert len(seeds) == len(PLAN.deployment)
    task = PLAN.deployment[0].task
    assert sampling_seed(0, task, 1) == sampling_seed(0, task, 1)
    assert sampling_seed(1, task, 1) != sampling_seed(0, task, 1)


def test_trajectory_digest_sees_actions_and_observations_only() -> None:
    start = TaskStart(Task("e", "t", "s", 1), "obs0", "goal", ("a", "b"))
    one = Trajectory(start, (Step("a", "obs1", 0.0, True, reply="a"),), 0.0, False)
    reworded = Trajectory(start, (Step("a", "obs1", 0.0, True, reply="I pick a"),), 0.0, False)
    other = Trajectory(start, (Step("b", "obs1", 0.0, True),), 0.0, False)
    assert one.digest() == reworded.digest() != other.digest()
    assert len(one.digest()) == 64


def test_the_journal_rebuilds_a_partial_results_document(tmp_path: Path) -> None:
    log = RunLog(tmp_path)
    log.write("run", {"run_id": "r1", "model": "scripted"})
    episode = unplayed("d", PLAN.deployment[0], run_seed=0, error="e", kind="llm").to_json()
    log.write("episode", episode)
    log.write("build", {"design": "d", "env": "babaisai", "updates": 3}, "d@babaisai")
    log.write("build", {"design": "d", "env": "babaisai", "updates": 4}, "d@babaisai")
    log.close()
    with (tmp_path / "episodes.jsonl").open("a") as handle:
        handle.write('{"type":"episode","data":{"cut')  # the line a SIGKILL cut short
    results = rebuild(tmp_path)
    assert results["partial"] is True and "episodes.jsonl" in results["partial_reason"]
    assert results["run_id"] == "r1" and results["episodes"] == [json.loads(json.dumps(episode))]
    assert results["designs"] == {"d@babaisai": {"design": "d", "env": "babaisai", "updates": 4}}
