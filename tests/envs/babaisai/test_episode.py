"""The episode facade: broken you-rules, rewards, seeding, invalid actions (spec 1.8, 1.12)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from pytest_alma.envs.babaisai.engine import (
    UP,
)
from pytest_alma.envs.babaisai.game_env import BabaEpisode, InvalidActionError
from pytest_alma.envs.babaisai.layout import Layout, Placement
from pytest_alma.envs.babaisai.layout_text import parse_layout
from pytest_alma.envs.babaisai.text import observation_text

# --------------------------------------------------------------------------- episode facade

BREAKABLE = """
    # #      #    #     #    #
    # .      .    .     .    #
    # [baba] [is] [you] .    #
    # baba   .    .     .    #
    # #      #    #     #    #
"""
OTHER = """
    # #      #    #     #    #
    # .      .    baba  .    #
    # .      .    .     .    #
    # [baba] [is] [you] .    #
    # #      #    #     #    #
"""


def _factory(texts: list[str]) -> Callable[[np.random.Generator], Layout]:
    """A layout factory cycling through ``texts`` (and drawing once from the rng, as real
    generators do, so the rng stream is exercised)."""
    layouts = [parse_layout(t) for t in texts]
    count = 0

    def factory(rng: np.random.Generator) -> Layout:
        nonlocal count
        rng.integers(0, 10)
        layout = layouts[count % len(layouts)]
        count += 1
        return layout

    return factory


def test_broken_you_rule_resets_by_default() -> None:
    ep = BabaEpisode(_factory([BREAKABLE, OTHER]), seed=3)
    first = ep.reset()
    assert first.startswith("Active rules:\nbaba is you\n")
    ep.step("left")
    ep.step("right")  # step counter at 2
    text, reward, done, info = ep.step("up")  # pushes [baba] up: "baba is you" is broken
    assert text.startswith("[...] IS YOU rule was broken, environment reset\nActive rules:\n")
    assert text.split("\n", 1)[1] == observation_text(ep.game)
    assert (reward, done) == (0.0, False)
    assert info["you_rule_broken"] and info["resets"] == 1
    assert info["total_steps"] == 3 and info["step_count"] == 0
    assert ep.game.step_count == 0 and ep.game.you_position() == (3, 1)
    text, reward, done, info = ep.step("down")
    assert not done and not info["you_rule_broken"] and ep.game.step_count == 1


def test_broken_you_rule_can_end_the_episode() -> None:
    ep = BabaEpisode(_factory([BREAKABLE]), seed=3, on_you_broken="end")
    ep.reset()
    text, reward, done, info = ep.step(UP)
    assert (reward, done, info["you_rule_broken"]) == (0.0, True, True)
    assert text == "[...] IS YOU rule was broken, episode ended\nActive rules:\n"
    with pytest.raises(RuntimeError, match="done"):
        ep.step("idle")


def test_episode_win_and_reward(bb: SimpleNamespace) -> None:
    ep = BabaEpisode(_factory([bb.GOTO_WIN]), seed=0, max_steps=100)
    ep.reset()
    assert ep.step("left")[1:3] == (0.0, False)
    text, reward, done, info = ep.step("left")
    assert done and info["won"] and reward == 1 - 0.9 * (2 / 100)
    assert text.startswith("Active rules:\ndoor is win\nbaba is you\n")


def test_episode_is_reproducible_from_its_seed() -> None:
    def factory(rng: np.random.Generator) -> Layout:
        x, y = int(rng.integers(1, 5)), int(rng.integers(1, 3))
        rule = [Placement(i + 1, 3, "word", w) for i, w in enumerate(("baba", "is", "you"))]
        return Layout(6, 5, (*rule, Placement(x, y, "object", "baba")))

    texts = []
    for _ in range(2):
        ep = BabaEpisode(factory, seed=11)
        texts.append([ep.reset(), *(ep.step(a)[0] for a in ("up", "left", "down"))])
    assert texts[0] == texts[1]


def test_invalid_action_string_is_a_clear_error(bb: SimpleNamespace) -> None:
    ep = BabaEpisode(_factory([bb.GOTO_WIN]), seed=0)
    ep.reset()
    with pytest.raises(InvalidActionError) as exc:
        ep.step("jump")
    message = str(exc.value)
    assert "'jump'" in message
    assert "idle, up, right, down, left" in message
    assert isinstance(exc.value, ValueError)
    with pytest.raises(InvalidActionError):
        ep.step(7)
    assert ep.game.step_count == 0  # nothing was played
    assert ep.step(" Left ")[1] == 0.0  # names are matched case- and space-insensitively
