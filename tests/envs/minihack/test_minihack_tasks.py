"""MiniHack suites, splits, presets, seeding, Boxoban and the adapter, on real NLE."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from pytest_alma.envs.base import InvalidAction, instructions_for, load_environment
from pytest_alma.envs.minihack.actions import DEFAULT_ACTION, VOCABULARY
from pytest_alma.envs.minihack.adapter import MiniHackEnvironment, MiniHackEpisode, goal_of
from pytest_alma.envs.minihack.boxoban import BoxobanLevelsMissing, is_boxoban
from pytest_alma.envs.minihack.game import import_minihack
from pytest_alma.envs.minihack.tasks import (
    ALMA_TASK_IDS,
    BALROG_TASK_IDS,
    PRESETS,
    SPLITS,
    alma_task_ids_from_registry,
    category,
)
from pytest_alma.records import Task

import_minihack()


def task(task_id: str, seed: int = 0) -> Task:
    return Task(env="minihack", task_id=task_id, seed=seed, split="all")


def test_alma_task_set_matches_the_installed_registry() -> None:
    assert alma_task_ids_from_registry(list(gym.registry)) == ALMA_TASK_IDS
    assert len(ALMA_TASK_IDS) == 125


def test_split_sizes_and_categories() -> None:
    sizes = {name: len(ids) for name, ids in SPLITS.items()}
    assert sizes == {
        "train": 34,
        "eval_in_distribution": 80,
        "eval_out_of_distribution": 11,
        "balrog": 8,
        "all": 125,
    }
    train, eval_in = set(SPLITS["train"]), set(SPLITS["eval_in_distribution"])
    assert not train & eval_in and all(category(t) == "distance" for t in train | eval_in)
    ood = SPLITS["eval_out_of_distribution"]
    assert {category(t) for t in ood} == {"corridor", "quest", "boxoban"}
    # BALROG's tasks are out-of-distribution for ALMA, except MazeWalk (a "distance" task).
    assert {t for t in BALROG_TASK_IDS if "MazeWalk" not in t} <= set(ood)


def test_splits_are_reproducible() -> None:
    # Pinned: the first train ids of the seed-42 shuffle (a change here moves every result).
    assert SPLITS["train"][:3] == (
        "MiniHack-WoD-Medium-Full-v0",
        "MiniHack-Levitate-Potion-Full-v0",
        "MiniHack-HideNSeek-Big-v0",
    )


@pytest.fixture(scope="module")
def env(boxoban_levels: Path) -> MiniHackEnvironment:
    return MiniHackEnvironment(boxoban_levels=str(boxoban_levels))


@pytest.mark.parametrize("task_id", ALMA_TASK_IDS)
def test_every_task_makes_resets_and_steps(env: MiniHackEnvironment, task_id: str) -> None:
    episode = env.open(task(task_id), 100)
    try:
        start = episode.reset()
        assert start.actions and DEFAULT_ACTION in start.actions
        assert "map:" in start.observation and "cursor:" in start.observation
        for action in start.actions[:4]:
            result = episode.step(action)
            assert isinstance(result.reward, float)
            if result.done:
                break
    finally:
        episode.close()


@pytest.mark.parametrize(
    ("task_id", "size"),
    [
        ("MiniHack-Boxoban-Hard-v0", 4),
        ("MiniHack-MazeWalk-9x9-v0", 8),
        ("MiniHack-CorridorBattle-Dark-v0", 8),
        ("MiniHack-Corridor-R3-v0", 11),
        ("MiniHack-Quest-Easy-v0", 32),
    ],
)
def test_action_vocabulary_is_filtered_per_task(
    env: MiniHackEnvironment, task_id: str, size: int
) -> None:
    episode = env.open(task(task_id), 100)
    try:
        names = episode.valid_actions()
        assert len(names) == size
        assert set(names) <= {a.name for a in VOCABULARY}
        prompt = episode.instructions()
        assert all(f"\n{name}: " in prompt for name in names)
        assert f"Your task: {goal_of(task_id)}" in prompt
        with pytest.raises(InvalidAction, match="valid actions: north"):
            episode.step("dance")
    finally:
        episode.close()


def _play(env: MiniHackEnvironment, task_id: str, seed: int, actions: int = 6) -> list[str]:
    episode = env.open(task(task_id, seed), 100)
    try:
        texts = [episode.reset().observation]
        for i in range(actions):
            result = episode.step(episode.valid_actions()[i % 4])
            texts.append(result.observation)
            if result.done:
                break
        return texts
    finally:
        episode.close()


@pytest.mark.parametrize(
    "task_id",
    [
        "MiniHack-MazeWalk-15x15-v0",
        "MiniHack-Room-Random-5x5-v0",
        "MiniHack-Quest-Easy-v0",
        "MiniHack-Boxoban-Hard-v0",
    ],
)
def test_a_seed_replays_the_same_episode(env: MiniHackEnvironment, task_id: str) -> None:
    first = _play(env, task_id, seed=5)
    assert _play(env, task_id, seed=5) == first
    assert _play(env, task_id, seed=6)[0] != first[0]


def test_boxoban_without_levels_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ALMA_MINIHACK_BOXOBAN_LEVELS", raising=False)
    bare = MiniHackEnvironment()
    with pytest.raises(BoxobanLevelsMissing, match="git clone .*ALMA_MINIHACK_BOXOBAN_LEVELS="):
        bare.open(task("MiniHack-Boxoban-Hard-v0"), 100)
    empty = MiniHackEnvironment(boxoban_levels=str(tmp_path))
    with pytest.raises(BoxobanLevelsMissing, match=r"hard, which has none"):
        empty.open(task("MiniHack-Boxoban-Hard-v0"), 100)
    assert is_boxoban("MiniHack-Boxoban-Medium-v0") and not is_boxoban("MiniHack-Room-5x5-v0")


def test_success_rules_of_the_presets() -> None:
    def scored(preset: str, rewards: list[float]) -> bool:
        episode = MiniHackEpisode.__new__(MiniHackEpisode)
        episode.preset = PRESETS[preset]
        episode._rewards = rewards
        return episode.score()[1]

    assert scored("alma", [-1.0, -1.0, 1.0]) and not scored("alma", [-1.0, 0.99])
    assert not scored("alma", [1.0, -1.0])  # ALMA: only the final reward counts
    assert scored("balrog", [-0.01, 1.0, -0.01]) and not scored("balrog", [-0.01, 0.5])
    assert PRESETS["alma"].to_json()["penalty_step"] == -1.0
    assert PRESETS["balrog"].env_kwargs()["max_episode_steps"] == 100


def test_presets_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALMA_MINIHACK_PRESET", "balrog")
    env = MiniHackEnvironment()
    assert env.default_max_steps() == 100 and env.settings()["preset"]["name"] == "balrog"
    monkeypatch.setenv("ALMA_MINIHACK_PRESET", "nethack")
    with pytest.raises(ValueError, match="unknown MiniHack preset 'nethack'.*balrog, alma"):
        MiniHackEnvironment()
    monkeypatch.delenv("ALMA_MINIHACK_PRESET")
    env = MiniHackEnvironment()
    with pytest.raises(ValueError, match="unknown MiniHack split 'test'"):
        env.tasks("test")
    with pytest.raises(ValueError, match="Did you mean MiniHack-Room-5x5-v0"):
        env.open(task("MiniHack-Room-5x5"), 100)


def test_registered_and_episode_instructions_reach_the_agent(boxoban_levels: Path) -> None:
    env = load_environment("minihack")
    assert env.default_split() == "eval_in_distribution"
    episode = env.open(task("MiniHack-MazeWalk-9x9-v0"), 100)
    try:
        text = instructions_for(env, episode)
        assert "Available actions:\nnorth: " in text and "staircase down" in text
    finally:
        episode.close()
