"""BALROG's text observation (spec 1.8, errata 10), actions and instruction prompt."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_alma.envs.babaisai.text import (
    ACTION_INDEX,
    ACTIONS,
    instruction_prompt,
    observation_text,
    offset_text,
)

GOTO_WIN = """
    # #      #    #     # # # #
    # [door] [is] [win] . . . #
    # .      .    .     . . . #
    # door   .    baba  . . . #
    # .      .    .     . . . #
    # .      .    .     . . . #
    # [baba] [is] [you] . . . #
    # #      #    #     # # # #
"""

SPEC_EXAMPLE = """Active rules:
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


def test_spec_example_observation(bb: SimpleNamespace) -> None:
    g = bb.make_game(GOTO_WIN)
    assert g.you_position() == (3, 3)
    assert observation_text(g) == SPEC_EXAMPLE


def test_spec_example_after_one_left(bb: SimpleNamespace) -> None:
    g = bb.make_game(GOTO_WIN)
    bb.play(g, "l")
    lines = observation_text(g).split("\n")
    assert lines[5:8] == [
        "rule `door` 1 step to the left and 2 step up",
        "rule `is` 2 step up",
        "rule `win` 1 step to the right and 2 step up",
    ]
    assert lines[8] == "door 1 step to the left"


@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        (1, 0, "1 step to the right"),
        (2, 0, "2 steps to the right"),
        (-1, 0, "1 step to the left"),
        (-3, 0, "3 step to the left"),
        (0, 1, "1 step down"),
        (0, 4, "4 steps down"),
        (0, -4, "4 step up"),
        (2, -2, "2 steps to the right and 2 step up"),
        (-2, 3, "2 step to the left and 3 steps down"),
        (0, 0, ""),
    ],
)
def test_offset_pluralisation_quirk(dx: int, dy: int, expected: str) -> None:
    assert offset_text(dx, dy) == expected


def test_what_is_listed(bb: SimpleNamespace) -> None:
    # Colour tiles, baba objects (even a non-you baba), covered objects, blocks and the border
    # are never listed; rules drop colours; object-is-object rules are omitted; the you-object
    # (a ball here) is listed at offset (0, 0) as an empty line.
    g = bb.make_game("""
        # #     #        #      #     #
        # [red] [ball]   [is]   [win] #
        # [key] [is]     [door] .     #
        # baba  key+ball #      wall  #
        # .     [ball]   [is]   [you] #
        # #     #        #      #     #
    """)
    assert g.you_position() == (2, 3)
    assert observation_text(g) == "\n".join(
        [
            "Active rules:",
            "ball is win",
            "ball is you",
            "",
            "Objects on the map:",
            "rule `ball` 2 step up",
            "rule `is` 1 step to the right and 2 step up",
            "rule `win` 2 steps to the right and 2 step up",
            "rule `key` 1 step to the left and 1 step up",
            "rule `is` 1 step up",
            "rule `door` 1 step to the right and 1 step up",
            "",
            "wall 2 steps to the right",
            "rule `ball` 1 step down",
            "rule `is` 1 step to the right and 1 step down",
            "rule `you` 2 steps to the right and 1 step down",
        ]
    )


def test_hidden_you_object_has_no_observation(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #        #    #     #
        # baba+key .    .     #
        # [baba]   [is] [you] #
        # #        #    #     #
    """)
    assert g.you_position() is None
    with pytest.raises(ValueError, match="you-object"):
        observation_text(g)


def test_last_you_rule_decides_the_reference_object(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #
        # baba   .    ball  #
        # [baba] [is] [you] #
        # [ball] [is] [you] #
        # #      #    #     #
    """)
    assert g.you_position() == (3, 1)
    assert observation_text(g).split("Objects on the map:\n")[1].split("\n")[0] == ""


def test_actions_and_prompt() -> None:
    assert list(ACTIONS.items()) == [
        ("idle", "wait for one step"),
        ("up", "take one step up"),
        ("right", "take one step to the right"),
        ("down", "take one step down"),
        ("left", "take one step to the left"),
    ]
    assert ACTION_INDEX == {"idle": 0, "up": 1, "right": 2, "down": 3, "left": 4}
    prompt = instruction_prompt()
    assert prompt.endswith("PLAY!")
    for name, desc in ACTIONS.items():
        assert f"{name}: {desc}" in prompt
    assert "is" in prompt and "push" in prompt
