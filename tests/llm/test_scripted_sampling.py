"""The scripted double honours the sampling seed: seeded and not at temperature 0, it sometimes
plays another valid action, the same one for the same request; otherwise it stays greedy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import openai
import pytest

from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.scripted_policies import (
    DEVIATION_AT_T1,
    Message,
    SamplingPolicy,
    choose_reply,
    sample,
    sampling_temperature,
)
from pytest_alma.llm.scripted_textworld import TextWorldPolicy

TEXTWORLD = [
    {"role": "system", "content": "You are playing TextWorld. Your goal: take the red key."},
    {
        "role": "user",
        "content": "Observation:\nYou are in a cellar. There is an exit to the north and a "
        "passage leading east. A wooden table is here.",
    },
]


def greedy_reply(messages: Sequence[Message]) -> str:
    return choose_reply([TextWorldPolicy()], messages, {})


def test_when_the_double_samples() -> None:
    assert sampling_temperature({}) is None  # no seed: greedy
    assert sampling_temperature({"seed": 3, "temperature": 0}) is None  # temperature 0: greedy
    assert sampling_temperature({"seed": 3}) == 1.0  # absent temperature: the server default
    assert sampling_temperature({"seed": 3, "temperature": 0.7}) == 0.7
    assert sampling_temperature({"seed": True}) is None


def test_seeded_replies_deviate_sometimes_and_replay_exactly() -> None:
    greedy = greedy_reply(TEXTWORLD)
    assert greedy == "go east"  # the exit taken least (ties: alphabetical)
    policy = TextWorldPolicy()
    assert isinstance(policy, SamplingPolicy)
    replies = [choose_reply([policy], TEXTWORLD, {"seed": seed}) for seed in range(400)]
    deviations = [r for r in replies if r != greedy]
    # The coin is a hash, so these counts are fixed; about DEVIATION_AT_T1 of the seeds deviate.
    assert 0.5 * DEVIATION_AT_T1 * 400 < len(deviations) < 2 * DEVIATION_AT_T1 * 400
    assert set(deviations) <= {"go north", "look", "inventory"}  # valid alternatives only
    again = [choose_reply([policy], TEXTWORLD, {"seed": seed}) for seed in range(400)]
    assert again == replies  # the same request always gets the same reply
    # A hotter request deviates more often; temperature 0 never does.
    hot = [choose_reply([policy], TEXTWORLD, {"seed": s, "temperature": 2.0}) for s in range(400)]
    assert sum(r != greedy for r in hot) > len(deviations)
    cold = {choose_reply([policy], TEXTWORLD, {"seed": s, "temperature": 0}) for s in range(400)}
    assert cold == {greedy}


def test_sample_depends_on_the_conversation_too() -> None:
    alternatives = ["a", "b", "c", "d"]
    conversations = [[{"role": "user", "content": f"turn {i}"}] for i in range(400)]
    picks = [sample("a", alternatives, c, {"seed": 1}) for c in conversations]
    assert len(set(picks)) == 4  # one seed, different states: different draws


@pytest.mark.parametrize("temperature", [None, 0.0])
def test_the_server_stays_greedy_without_a_seed_or_at_temperature_0(
    temperature: float | None,
) -> None:
    with ScriptedServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        extra: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
        seeds: list[int | None] = [None] if temperature is None else list(range(60))
        replies = {
            client.chat.completions.create(
                model="scripted",
                messages=TEXTWORLD,  # type: ignore[arg-type]
                **({} if seed is None else {"seed": seed}),
                **extra,
            )
            .choices[0]
            .message.content
            for seed in seeds
        }
    assert replies == {greedy_reply(TEXTWORLD)}


def test_the_server_samples_with_a_seed() -> None:
    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="x") as client:
            replies = await asyncio.gather(
                *(
                    client.chat.completions.create(
                        model="scripted",
                        messages=TEXTWORLD,  # type: ignore[arg-type]
                        seed=seed,
                    )
                    for seed in range(60)
                )
            )
        return [str(r.choices[0].message.content) for r in replies]

    with ScriptedServer() as server:
        replies = asyncio.run(run())
    expected = [choose_reply([TextWorldPolicy()], TEXTWORLD, {"seed": s}) for s in range(60)]
    assert replies == expected and len(set(replies)) > 1


def test_every_game_policy_lists_alternatives() -> None:
    from pytest_alma.llm.scripted import builtin_policies

    samplers = {type(p).__name__ for p in builtin_policies() if isinstance(p, SamplingPolicy)}
    assert samplers == {"BabaIsAIPolicy", "MiniHackPolicy", "ALFWorldPolicy", "TextWorldPolicy"}
