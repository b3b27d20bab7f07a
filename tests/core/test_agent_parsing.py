import pytest

from pytest_alma.agent import MEMORY_HEADER, parse_action, render_memory, system_prompt

ACTIONS = ("idle", "up", "right", "down", "left")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("left", "left"),
        ("  LEFT \n", "left"),
        ("`up`", "up"),
        ("**down**", "down"),
        ("Action: right", "right"),
        ("I will move left.", "left"),
        ("left or right?", None),
        ("", None),
        ("leftover", None),
        ("go north", None),
    ],
)
def test_parse_action(reply: str, expected: str | None) -> None:
    assert parse_action(reply, ACTIONS) == expected


def test_longer_action_wins_over_its_prefix() -> None:
    valid = ("go to desk 1", "go to desk 10")
    assert parse_action("I go to desk 10 now", valid) == "go to desk 10"


def test_empty_memory_gives_no_block() -> None:
    block = render_memory({}, 100)
    assert system_prompt("INSTR", block) == "INSTR"


def test_memory_block_is_truncated_visibly_and_recorded() -> None:
    memory = {"notes": "x" * 500}
    block = render_memory(memory, 100)
    assert block.truncated and block.chars > 100
    assert "memory truncated: 100 of" in block.text
    assert block.text.startswith(MEMORY_HEADER)
    full = render_memory(memory, 10_000)
    assert not full.truncated and '"notes"' in system_prompt("I", full)
