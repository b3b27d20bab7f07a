"""The scripted model's TextWorld policy (a test double): opens, takes, explores, never loops."""

from __future__ import annotations

from pytest_alma.llm.scripted_textworld import TextWorldPolicy, choose

ROOM = (
    "-= Shed =-\nYou find yourself in a shed. You scan the room, seeing a toolbox.\n\n"
    "There is a closed barn door leading north."
)


def test_opens_what_is_closed_then_explores() -> None:
    assert choose(ROOM, set(), []) == "open barn door"
    assert choose(ROOM, set(), ["open barn door"]) == "go north"


def test_takes_an_object_the_goal_names() -> None:
    room = "-= Kitchen =-\nOn the counter you see a red apple.\nAn exit leads east."
    assert choose(room, {"apple", "recover"}, []) == "take red apple"
    assert choose(room, {"apple"}, ["take red apple"]) == "go east"


def test_prefers_the_least_used_exit_and_never_stalls() -> None:
    room = "Exits lead north and south."
    assert choose(room, set(), ["go north", "go north", "go south"]) == "go south"
    assert choose("It is dark.", set(), []) == "inventory"
    assert choose("It is dark.", set(), ["inventory"]) == "look"


def test_matches_textworld_prompts_only() -> None:
    policy = TextWorldPolicy()
    system = {"role": "system", "content": "You are an agent playing TextWorld (Cooking).\n"}
    assert policy.matches([system])
    assert not policy.matches([{"role": "system", "content": "You are playing Baba Is You"}])
    reply = policy.reply([system, {"role": "user", "content": f"Observation:\n{ROOM}"}], {})
    assert reply == "open barn door"
