"""Held-out tasks, rewards and the episodes the meta-agent is shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.search.evidence import (
    episodes_for_analysis,
    evaluation_cost,
    heldout_tasks,
    reward_of,
)


def episode(
    design: str,
    task: str,
    score: float,
    env: str = "babaisai",
    path: str | None = None,
    repeat: int = 0,
) -> dict[str, Any]:
    return {
        "design": design,
        "phase": "deploy",
        "repeat": repeat,
        "score": score,
        "task": {"env": env, "task_id": task, "seed": 1, "split": "s"},
        "agent_tokens": {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.5},
        "retrieve_tokens": {"embedding_tokens": 3, "cost_usd": 0.25},
        "trajectory_path": path,
        "error": None,
    }


def test_heldout_tasks_are_a_fixed_seeded_fraction_never_all_or_none() -> None:
    ids = [f"t{i}" for i in range(10)]
    held = heldout_tasks(ids, 0.3, seed=0)
    assert len(held) == 3 and held == heldout_tasks(reversed(ids), 0.3, seed=0)
    assert held != heldout_tasks(ids, 0.3, seed=1)
    assert heldout_tasks(ids, 0.0, seed=0) == set()
    assert len(heldout_tasks(["a", "b"], 0.9, seed=0)) == 1  # at least one stays visible
    assert heldout_tasks(["a"], 0.5, seed=0) == set()


def test_reward_is_measured_on_the_heldout_tasks_only_when_asked() -> None:
    results = {
        "episodes": [
            episode("d", "a", 1.0),
            episode("d", "b", 0.0),
            episode("d", "c", 0.0),
            episode("x", "a", 1.0),
        ]
    }
    everything = reward_of(results, "d")
    assert everything is not None and everything.mean == pytest.approx(1 / 3)
    assert everything.n == 3
    held = reward_of(results, "d", {"babaisai": {"b", "c"}})
    assert held is not None and (held.mean, held.n) == (0.0, 2)
    assert reward_of(results, "missing") is None


def test_reward_interval_takes_the_task_as_the_unit() -> None:
    # Two tasks, three identical repeats each: task a always won, task b never. Repeats add
    # nothing, so the interval is Wilson at n* = k = 2 tasks (p = 0.5): z = 1.96, z^2 = 3.8415,
    # centre = (0.5 + 3.8415/4) / (1 + 3.8415/2) = 0.5, half = 1.96 * sqrt(0.25/2 + 3.8415/16)
    # / 2.9207 = 0.4053, so [0.0947, 0.9053]; six independent episodes would give [0.188, 0.812].
    results = {
        "episodes": [
            episode("d", task, score, repeat=r)
            for task, score in (("a", 1.0), ("b", 0.0))
            for r in range(3)
        ]
    }
    reward = reward_of(results, "d")
    assert reward is not None and reward.mean == pytest.approx(0.5) and reward.n == 6
    assert (reward.low, reward.high) == pytest.approx((0.0947, 0.9053), abs=1e-3)


def test_an_episode_without_a_score_counts_as_zero() -> None:
    failed = {**episode("d", "b", 0.0), "score": None, "error": "design error: boom"}
    reward = reward_of({"episodes": [episode("d", "a", 1.0), failed]}, "d")
    assert reward is not None and reward.mean == pytest.approx(0.5) and reward.n == 2


def test_two_environments_average_their_means() -> None:
    results = {
        "episodes": [
            episode("d", "a", 1.0),
            episode("d", "b", 1.0),
            episode("d", "m", 0.0, env="minihack"),
            episode("d", "n", 1.0, env="minihack"),
        ]
    }
    reward = reward_of(results, "d")
    assert reward is not None and reward.mean == pytest.approx(0.75)
    assert set(reward.per_env) == {"babaisai", "minihack"}
    assert 0.0 <= reward.low <= reward.mean <= reward.high <= 1.0


def test_the_meta_agent_never_sees_heldout_episodes_and_sees_retrieved_memory(
    tmp_path: Path,
) -> None:
    def trajectory(task: str, success: bool) -> str:
        path = tmp_path / f"{task}.json"
        start = {
            "schema_version": 1,
            "task": {"env": "babaisai", "task_id": task, "seed": 1, "split": "s"},
            "observation": f"obs of {task}",
            "goal": "win",
            "actions": ["up"],
        }
        path.write_text(
            json.dumps(
                {
                    "memory": {"hint": f"memory for {task}"},
                    "trajectory": {
                        "schema_version": 1,
                        "start": start,
                        "steps": [
                            {"action": "up", "observation": "moved", "reward": 0.0, "done": True}
                        ],
                        "score": float(success),
                        "success": success,
                        "error": None,
                    },
                }
            )
        )
        return str(path)

    results = {
        "episodes": [
            episode("d", t, s, path=trajectory(t, bool(s)))
            for t, s in (("a", 1.0), ("b", 0.0), ("secret", 1.0))
        ]
    }
    text = episodes_for_analysis(results, "d", {"babaisai": {"secret"}})
    assert "memory for a" in text and "memory for b" in text
    assert "secret" not in text
    assert text.index("score 0") < text.index("score 1")  # a failure first, then a success


def test_evaluation_cost_adds_episodes_and_the_memory_build() -> None:
    results = {
        "episodes": [episode("d", "a", 1.0), episode("x", "a", 1.0)],
        "designs": {"d": {"design": "d", "update_tokens": {"prompt_tokens": 100, "cost_usd": 1.0}}},
    }
    dollars, tokens = evaluation_cost(results, "d")
    assert dollars == pytest.approx(0.5 + 0.25 + 1.0)
    assert tokens == 10 + 5 + 3 + 100
