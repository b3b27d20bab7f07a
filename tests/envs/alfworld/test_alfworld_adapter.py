"""The ALFWorld adapter on the real alfworld/textworld code, played on the synthetic tasks.

The synthetic tasks are test fixtures (``pytest_alma/envs/alfworld/synthetic``), not ALFWorld's
games; they go through the same loading and stepping code as the real data.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator

import pytest

# Not importorskip: importing alfworld creates $ALFWORLD_DATA or ~/.cache/alfworld; the adapter
# imports it with the variable pointing at the synthetic folder instead.
if importlib.util.find_spec("alfworld") is None or importlib.util.find_spec("textworld") is None:
    pytest.skip("needs alfworld: pip install alfworld", allow_module_level=True)

from pytest_alma.agent import parse_action
from pytest_alma.envs.alfworld.adapter import (
    ACTIONS_HEADER,
    AGENT_MAX_STEPS,
    ALFWorldEnvironment,
    ALFWorldEpisode,
    goal_from,
    observation_text,
)
from pytest_alma.envs.alfworld.data import synthetic_data_root
from pytest_alma.envs.alfworld.synthetic_build import SYNTHETIC_TASKS, SyntheticTask
from pytest_alma.envs.base import Environment, Episode, InvalidAction
from pytest_alma.records import Task

SPLIT_OF = {
    "train": "train",
    "valid_seen": "eval_in_distribution",
    "valid_unseen": "eval_out_of_distribution",
}


@pytest.fixture(scope="module")
def env() -> ALFWorldEnvironment:
    return ALFWorldEnvironment(synthetic_data_root())


def _task(synthetic: SyntheticTask) -> Task:
    return Task(env="alfworld", task_id=synthetic.task_id, split=SPLIT_OF[synthetic.split], seed=0)


@pytest.fixture
def first(env: ALFWorldEnvironment) -> Iterator[ALFWorldEpisode]:
    episode = env.open(_task(SYNTHETIC_TASKS[0]), AGENT_MAX_STEPS)
    yield episode
    episode.close()


def _listed(observation: str) -> list[str]:
    block = re.search(r"<Actions>\n(.*)\n</Actions>$", observation, re.S)
    assert block, observation
    return block.group(1).split("\n")


@pytest.mark.parametrize("synthetic", SYNTHETIC_TASKS, ids=lambda t: t.folder)
def test_every_synthetic_task_is_won_by_its_walkthrough(
    env: ALFWorldEnvironment, synthetic: SyntheticTask
) -> None:
    episode = env.open(_task(synthetic), AGENT_MAX_STEPS)
    try:
        assert isinstance(episode, Episode)
        start = episode.reset()
        assert start.goal == f"{synthetic.goal_text}."
        assert synthetic.goal_text in episode.instructions()
        assert episode.walkthrough() == synthetic.walkthrough
        assert episode.score() == (0.0, False)
        result = None
        for command in synthetic.walkthrough:
            assert command in episode.valid_actions()
            # The harness's reply parser finds the command among the admissible ones.
            assert parse_action(command, episode.valid_actions()) == command
            assert result is None or not result.done
            result = episode.step(command)
            assert result.info["admissible"]
        assert result is not None and result.done and result.reward == 1.0
        assert result.info["won"]
        assert episode.score() == (1.0, True)
    finally:
        episode.close()


def test_admissible_commands_are_listed_in_every_observation(first: ALFWorldEpisode) -> None:
    start = first.reset()
    assert start.observation.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert "Your task is to: put a cellphone in bed." in start.observation
    assert f"\n\n{ACTIONS_HEADER}\n<Actions>\n" in start.observation
    assert _listed(start.observation) == list(start.actions) == list(first.valid_actions())
    assert "go to drawer 1" in start.actions
    result = first.step("go to drawer 1")
    assert result.observation.startswith("You arrive at drawer 1.")
    assert _listed(result.observation) == list(first.valid_actions())
    assert "open drawer 1" in first.valid_actions()


def test_default_action_is_admissible(env: ALFWorldEnvironment, first: ALFWorldEpisode) -> None:
    first.reset()
    assert env.default_action() in first.valid_actions()


def test_unknown_commands_are_played_and_answered_nothing_happens(first: ALFWorldEpisode) -> None:
    first.reset()
    result = first.step("dance on the ceiling")
    assert result.observation.startswith("Nothing happens.")
    assert not result.done and result.reward == 0.0
    assert not result.info["admissible"]
    assert first.score() == (0.0, False)


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_action_is_invalid(first: ALFWorldEpisode, empty: str) -> None:
    first.reset()
    with pytest.raises(InvalidAction):
        first.step(empty)


def test_stepping_after_the_end_is_an_error(env: ALFWorldEnvironment) -> None:
    synthetic = SYNTHETIC_TASKS[2]  # the shortest walkthrough
    episode = env.open(_task(synthetic), AGENT_MAX_STEPS)
    try:
        episode.reset()
        for command in synthetic.walkthrough:
            episode.step(command)
        with pytest.raises(RuntimeError, match="ended"):
            episode.step("look")
        episode.reset()  # a reset replays the game from the start
        assert episode.score() == (0.0, False)
    finally:
        episode.close()


def test_two_episodes_interleave_independently(env: ALFWorldEnvironment) -> None:
    a_task, b_task = SYNTHETIC_TASKS[0], SYNTHETIC_TASKS[5]
    a = env.open(_task(a_task), AGENT_MAX_STEPS)
    b = env.open(_task(b_task), AGENT_MAX_STEPS)
    try:
        a.reset()
        b.reset()
        for left, right in zip(a_task.walkthrough, b_task.walkthrough, strict=True):
            a.step(left)
            b.step(right)
        assert a.score() == (1.0, True) and b.score() == (1.0, True)
    finally:
        a.close()
        b.close()


def test_environment_contract(env: ALFWorldEnvironment) -> None:
    assert isinstance(env, Environment)
    assert env.name == "alfworld"
    assert env.splits() == ("train", "eval_in_distribution", "eval_out_of_distribution")
    assert env.default_split() == "eval_in_distribution"
    assert env.default_max_steps() == 30
    assert env.default_action() == "look"
    settings = env.settings()
    assert settings["data"] == str(synthetic_data_root())
    assert settings["synthetic"] is True
    assert settings["split_seed"] == 42
    assert settings["alfworld_version"]
    for split in env.splits():
        assert len(env.tasks(split)) == 2


def test_instructions_are_alma_style(env: ALFWorldEnvironment) -> None:
    text = env.instructions()
    for template in ("go to [receptacle]", "take [object] from [receptacle]", "heat [object]"):
        assert template in text
    assert "Output **only** the chosen action" in text
    assert "Your task is to" not in text  # the goal comes with an episode


def test_observation_and_goal_helpers() -> None:
    text = observation_text("You see a bed 1.\n", ("look", "go to bed 1"))
    assert text == (
        f"You see a bed 1.\n\n{ACTIONS_HEADER}\n<Actions>\nlook\ngo to bed 1\n</Actions>"
    )
    assert goal_from("intro\n\nYour task is to: put a mug in desk.") == "put a mug in desk."
    assert goal_from("no goal here") == ""


def test_import_leaves_the_environment_variable_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_alma.envs.alfworld.adapter import import_alfworld
    from pytest_alma.envs.alfworld.data import DATA_ENV_VAR

    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    import_alfworld(synthetic_data_root())
    assert DATA_ENV_VAR not in os.environ


def test_missing_packages_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from pytest_alma.envs.alfworld.adapter import import_alfworld

    monkeypatch.setitem(sys.modules, "textworld", None)  # makes the import fail
    with pytest.raises(ModuleNotFoundError, match="pip install alfworld"):
        import_alfworld(synthetic_data_root())
