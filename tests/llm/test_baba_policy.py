"""The scripted Baba Is AI player (a test double): parsing, goal seeking, memory replay."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.scripted_babaisai import (
    ACTIONS,
    BabaIsAIPolicy,
    parse_observation,
    pseudo_random_move,
    remembered_actions,
)
from pytest_alma.llm.scripted_policies import memory_block

SYSTEM = (
    "You are playing Baba Is You, a puzzle game in which the rules themselves are objects...\n"
    "Available actions: idle, up, right, down, left.\nPLAY!"
)
EXAMPLE = """Active rules:
door is win
baba is you

Objects on the map:
rule `door` 2 step to the left and 2 step up
rule `is` 1 step to the left and 2 step up
rule `win` 2 step up
door 2 step to the left
rule `baba` 2 step to the left and 3 steps down
rule `is` 1 step to the left and 3 steps down
rule `you` 3 steps down"""
NO_WIN = """Active rules:
baba is you

Objects on the map:
rule `door` 2 step to the left and 2 step up
rule `is` 1 step to the left and 2 step up
door 3 steps to the right and 1 step up
rule `win` 4 steps down"""


def conversation(observation: str, *, memory: Any = None, turns: int = 0) -> list[dict[str, str]]:
    system = SYSTEM
    if memory is not None:
        system += (
            "\n\n**Relevant Experience:** Here are past experiences and trajectories that might be"
            " helpful for your decision:\n" + json.dumps(memory, indent=2) + "\nPLAY!"
        )
    messages = [{"role": "system", "content": system}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Observation:\n{observation}"})
        messages.append({"role": "assistant", "content": f"move {turn}"})
    messages.append({"role": "user", "content": f"Observation:\n{observation}"})
    return messages


def test_parse_example() -> None:
    obs = parse_observation("Observation:\n" + EXAMPLE)
    assert obs is not None
    assert obs.rules == ("door is win", "baba is you")
    doors = [i for i in obs.items if i.name == "door" and not i.rule]
    assert [(d.dx, d.dy) for d in doors] == [(-2, 0)]
    baba_rule = next(i for i in obs.items if i.rule and i.name == "baba")
    assert (baba_rule.dx, baba_rule.dy) == (-2, 3)
    assert parse_observation("no observation here") is None


def test_goes_toward_the_win_object() -> None:
    assert BabaIsAIPolicy().reply(conversation(EXAMPLE), {}) == "left"


def test_invalid_output_note_before_the_observation() -> None:
    note = "Your previous output did not contain a valid action. Defaulted to action: idle\n"
    messages = conversation(EXAMPLE)
    messages[-1]["content"] = note + messages[-1]["content"]
    assert BabaIsAIPolicy().reply(messages, {}) == "left"


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        ("ball 3 steps down", "down"),
        ("ball 1 step up", "up"),
        ("ball 2 steps to the right and 1 step up", "right"),
        ("ball 1 step to the left and 4 steps down", "down"),
        # Larger axis is horizontal, but a rule tile sits in the next cell: go vertically.
        ("ball 3 steps to the right and 1 step up\nrule `is` 1 step to the right", "up"),
        # A rule tile in the way with no other axis: push on (nothing else moves closer).
        ("ball 3 steps to the right\nrule `is` 1 step to the right", "right"),
        # Nearest of two win objects.
        ("ball 5 steps to the right\nball 1 step to the left", "left"),
    ],
)
def test_axis_choice(objects: str, expected: str) -> None:
    observation = f"Active rules:\nball is win\nbaba is you\n\nObjects on the map:\n{objects}"
    assert BabaIsAIPolicy().reply(conversation(observation), {}) == expected


def test_replays_a_remembered_action_list_without_a_win_rule() -> None:
    memory = {
        "similar_tasks": [
            {
                "task": "goto_win",
                "reward": 1.0,
                "notes": ["rules matter"],
                "successful_actions": ["up", "up", "left", "down"],
            }
        ]
    }
    policy = BabaIsAIPolicy()
    replies = [policy.reply(conversation(NO_WIN, memory=memory, turns=k), {}) for k in range(4)]
    assert replies == ["up", "up", "left", "down"]
    # Past the end of the list: a pseudo-random non-idle move.
    assert policy.reply(conversation(NO_WIN, memory=memory, turns=4), {}) in ACTIONS[1:]


def test_memory_changes_behaviour() -> None:
    policy = BabaIsAIPolicy()
    without = [policy.reply(conversation(NO_WIN, turns=k), {}) for k in range(6)]
    memory = {"trajectory": {"actions": ["idle"] * 6}}
    with_memory = [policy.reply(conversation(NO_WIN, memory=memory, turns=k), {}) for k in range(6)]
    assert with_memory == ["idle"] * 6 and "idle" not in without


def test_action_list_preferences() -> None:
    # A list under an "action" key wins over an earlier unrelated list of valid words.
    assert remembered_actions({"dirs": ["up"], "best_actions": ["left", "left"]}) == [
        "left",
        "left",
    ]
    assert remembered_actions({"dirs": ["up", "down"]}) == ["up", "down"]
    steps = {"steps": [{"action": "right", "obs": "x"}, {"action": "down", "obs": "y"}]}
    assert remembered_actions(steps) == ["right", "down"]
    assert remembered_actions({"actions": ["left", "jump"]}) is None
    assert remembered_actions(None) is None


def test_memory_block_is_parsed_tolerantly() -> None:
    prompt = (
        "rules...\n**Relevant Experience:** Here are past experiences and trajectories that might "
        "be helpful for your decision:\n{'actions': ['up', 'left'], 'ok': True,}\nPLAY!"
    )
    assert memory_block(prompt) == {"actions": ["up", "left"], "ok": True}
    assert memory_block('Relevant Experience: {"a": [1]} PLAY!') == {"a": [1]}
    assert memory_block('no memory here {"a": 1}') is None
    assert memory_block("Relevant Experience: {broken") is None


def test_pseudo_random_is_deterministic_and_never_idle() -> None:
    moves = {pseudo_random_move(f"obs {i}", i % 3) for i in range(200)}
    assert moves == {"up", "right", "down", "left"}
    assert pseudo_random_move("x", 1) == pseudo_random_move("x", 1)


def test_only_baba_conversations_match() -> None:
    assert BabaIsAIPolicy().matches(conversation(EXAMPLE))
    assert not BabaIsAIPolicy().matches([{"role": "user", "content": "summarise this"}])


def test_through_the_openai_sdk(scripted: ScriptedServer) -> None:
    client = openai.OpenAI(base_url=scripted.base_url, api_key="x", max_retries=0)
    reply = client.chat.completions.create(model="scripted", messages=conversation(EXAMPLE))
    assert reply.choices[0].message.content == "left"
    for k in range(5):
        reply = client.chat.completions.create(
            model="scripted", messages=conversation(NO_WIN, turns=k)
        )
        assert reply.choices[0].message.content in ACTIONS
