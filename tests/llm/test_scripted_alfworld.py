"""The scripted model's ALFWorld policy (a test double): goal parsing, choices, real games."""

from __future__ import annotations

import pytest

from pytest_alma.llm.scripted_alfworld import ALFWorldPolicy, Goal, admissible, choose, parse_goal


@pytest.mark.parametrize(
    ("sentence", "goal"),
    [
        ("put a cellphone in bed.", Goal("cellphone", "bed", None)),
        ("put a clean plate in cabinet.", Goal("plate", "cabinet", "clean")),
        ("clean some plate and put it in cabinet.", Goal("plate", "cabinet", "clean")),
        ("heat some potato and put it in countertop.", Goal("potato", "countertop", "heat")),
        ("put a hot potato in countertop.", Goal("potato", "countertop", "heat")),
        ("cool some apple and put it in diningtable.", Goal("apple", "diningtable", "cool")),
        ("look at book under the desklamp.", Goal("book", None, "light")),
        ("examine the book with the desklamp.", Goal("book", None, "light")),
    ],
)
def test_goal_forms(sentence: str, goal: Goal) -> None:
    assert parse_goal(sentence) == goal


def test_unknown_goal_and_empty_lists_still_answer() -> None:
    assert parse_goal("dance") is None and parse_goal("") is None
    assert choose(None, ["look", "go to bed 1"], []) == "look"
    assert choose(Goal("pen", "drawer", None), [], []) == "look"


def test_take_then_open_then_move() -> None:
    goal = Goal("pen", "drawer", None)
    acts = ["go to desk 1", "go to drawer 1", "look", "take pen 1 from desk 1"]
    assert choose(goal, acts, ["go to desk 1"]) == "take pen 1 from desk 1"
    history = ["go to desk 1", "take pen 1 from desk 1"]
    assert choose(goal, ["go to desk 1", "go to drawer 1", "look"], history) == "go to drawer 1"
    history.append("go to drawer 1")
    assert choose(goal, ["open drawer 1", "look"], history) == "open drawer 1"
    history.append("open drawer 1")
    assert choose(goal, ["move pen 1 to drawer 1", "look"], history) == "move pen 1 to drawer 1"


def test_treatment_comes_before_placing() -> None:
    goal = Goal("potato", "countertop", "heat")
    history = ["go to fridge 1", "open fridge 1", "take potato 1 from fridge 1"]
    acts = ["go to countertop 1", "go to microwave 1", "look"]
    assert choose(goal, acts, history) == "go to microwave 1"
    acts = ["heat potato 1 with microwave 1", "go to countertop 1", "look"]
    assert choose(goal, acts, [*history, "go to microwave 1"]).startswith("heat potato 1")


def test_explores_unvisited_receptacles_in_order() -> None:
    acts = ["go to bed 1", "go to desk 1", "go to drawer 1", "look"]
    assert choose(Goal("key", "desk", None), acts, ["go to bed 1"]) == "go to desk 1"


def test_reads_the_actions_block_of_the_last_observation() -> None:
    text = (
        "You arrive.\n\nHere are the actions you can choose from:\n"
        "<Actions>\nlook\ngo to bed 1\n</Actions>"
    )
    assert admissible(text) == ["look", "go to bed 1"] and admissible("no list") == []


def test_matches_only_the_household_prompt() -> None:
    policy = ALFWorldPolicy()
    assert policy.matches([{"role": "system", "content": "You are an agent in a household, ..."}])
    assert not policy.matches([{"role": "system", "content": "You are playing Baba Is You"}])


def test_plays_every_synthetic_task_to_a_win() -> None:
    pytest.importorskip("alfworld", reason="ALFWorld needs the [alfworld] extra")
    from pytest_alma.agent import user_turn
    from pytest_alma.envs.alfworld.adapter import ALFWorldEnvironment
    from pytest_alma.envs.alfworld.data import synthetic_data_root
    from pytest_alma.envs.base import instructions_for
    from pytest_alma.records import Task

    env = ALFWorldEnvironment(data_path=synthetic_data_root())
    policy = ALFWorldPolicy()
    wins = []
    for split in ("train", "eval_in_distribution", "eval_out_of_distribution"):
        for task_id in env.tasks(split):
            episode = env.open(Task("alfworld", task_id, split, 0), 30)
            try:
                start = episode.reset()
                messages = [
                    {"role": "system", "content": instructions_for(env, episode)},
                    {"role": "user", "content": user_turn(start.observation)},
                ]
                for _ in range(30):
                    action = policy.reply(messages, {})
                    result = episode.step(action)
                    messages += [
                        {"role": "assistant", "content": action},
                        {"role": "user", "content": user_turn(result.observation)},
                    ]
                    if result.done:
                        break
                wins.append(episode.score()[1])
            finally:
                episode.close()
    assert len(wins) == 6 and all(wins)
