"""Shared helpers for the Baba Is AI engine tests: build games from the text grid format.

The helpers are handed out through the session fixture ``bb`` (a namespace) rather than imported
from this file, so that other ``conftest.py`` modules in the repository can never shadow them.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_alma.envs.babaisai.engine import BabaGame, StepOutcome
from pytest_alma.envs.babaisai.layout_text import format_layout, parse_layout

#: Action letters used by :func:`play`: i(dle), u(p), r(ight), d(own), l(eft).
LETTERS = {"i": 0, "u": 1, "r": 2, "d": 3, "l": 4}


def make_game(text: str, max_steps: int = 100) -> BabaGame:
    """A game from a layout written in the text grid format."""
    return BabaGame.from_layout(parse_layout(text), max_steps=max_steps)


def play(game: BabaGame, moves: str) -> list[StepOutcome]:
    """Play a string of action letters (see :data:`LETTERS`); return every outcome."""
    return [game.step(LETTERS[c]) for c in moves]


def grid_of(game: BabaGame) -> str:
    """The game's current grid in the canonical text format."""
    return format_layout(game.to_layout())


def canon(text: str) -> str:
    """A hand-written layout text in canonical form, for comparing with :func:`grid_of`."""
    return format_layout(parse_layout(text))


def rule_strings(game: BabaGame) -> list[str]:
    """The active rules as strings, in scan order."""
    return [str(r) for r in game.rules]


@pytest.fixture(scope="session")
def bb() -> SimpleNamespace:
    """The helpers of this module: ``bb.make_game``, ``bb.play``, ``bb.grid_of``, ..."""
    return SimpleNamespace(
        make_game=make_game,
        play=play,
        grid_of=grid_of,
        canon=canon,
        rule_strings=rule_strings,
        LETTERS=LETTERS,
        GOTO_WIN=GOTO_WIN,
    )


#: The spec 1.8 example level (goto_win, agent at (3,3)), shared by several test files.
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
