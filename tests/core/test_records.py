import json

import pytest

from pytest_alma.records import (
    SCHEMA_VERSION,
    EpisodeResult,
    SchemaError,
    Step,
    Task,
    TaskStart,
    TokenCount,
    Trajectory,
)


def make_trajectory() -> Trajectory:
    task = Task("babaisai", "goto_win", "train", 7)
    start = TaskStart(task, "Active rules:\nbaba is you", "win", ("idle", "up"))
    steps = (
        Step("up", "obs 1 — ünïcode", 0.0, False, reply="up"),
        Step("idle", "obs 2", 0.982, True, reply="dunno", invalid=True),
    )
    return Trajectory(start, steps, score=1.0, success=True)


def test_trajectory_round_trips_through_json_text() -> None:
    traj = make_trajectory()
    again = Trajectory.from_json(json.loads(traj.dumps()))
    assert again == traj
    assert again.task.label == "goto_win-s7"


def test_episode_result_round_trip_keeps_unknown_cost() -> None:
    traj = make_trajectory()
    result = EpisodeResult(
        design="d",
        phase="deploy",
        task=traj.task,
        repeat=2,
        score=1.0,
        success=True,
        steps=2,
        invalid_actions=1,
        agent_tokens=TokenCount(calls=2, cost_usd=None),
        retrieve_tokens=TokenCount(),
        memory_chars=10,
        memory_truncated=False,
        duration_s=0.5,
        trajectory_path="x.json",
        error=None,
        extra={"a": 1},
    )
    data = json.loads(json.dumps(result.to_json()))
    assert EpisodeResult.from_json(data) == result
    assert EpisodeResult.from_json(data).agent_tokens.cost_usd is None


def test_token_counts_add_and_unknown_cost_stays_unknown() -> None:
    a = TokenCount(calls=1, prompt_tokens=10, cost_usd=0.5)
    b = TokenCount(calls=2, completion_tokens=5, cost_usd=None)
    assert (a + a).cost_usd == 1.0
    assert (a + b).cost_usd is None
    assert (a + b).calls == 3 and (a + b).total_tokens == 15


def test_wrong_schema_version_is_rejected_with_a_clear_message() -> None:
    data = make_trajectory().to_json()
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match="schema version"):
        Trajectory.from_json(data)
