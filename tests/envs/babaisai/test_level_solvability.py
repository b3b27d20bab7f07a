"""Generated levels are playable: well-formed text observations and BFS-solvable where expected.

Solvability follows spec §1.10 (BFS over the original engine): goto levels, single-room
make_win, the two-room goto / break_stop-goto / maybe_break_stop-goto levels, make_you and
make_you-make_win are solvable, you_win in one move. The spec found no solution for
two_room-make_win*, two_room-break_stop-make_win* and two_room-make_wall_win within 2,000 (and,
for make_win, 25,000) states: they need well over 15 moves of block pushing, and BFS over them
costs minutes per layout. For those families we only check generation and the observation (see
``BEYOND_SEARCH``), and say so here rather than skipping.

State cap: :data:`MAX_STATES` = 20,000 distinct states. The spec's 2,000 was too small even in
the original (single-room make_win, seed 1, was not found); on our layouts every case checked
below was measured to be found within 20,000 states.

Runtime: BFS on single-room make_win, break_stop-goto and maybe_break_stop-goto takes about
0.3-1 s per layout, so those families run on a documented smaller seed set (``SEED_SETS``):
every seed 0..9 for one representative id, and two seeds per other id, rotated through 0..9 so
that all seeds are still covered across the family. Everything else runs seeds 0..9. Total is
about 30-40 s on one core.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from pytest_alma.envs.babaisai.engine import BabaGame
from pytest_alma.envs.babaisai.layout import Layout
from pytest_alma.envs.babaisai.levels import LEVEL_IDS, LEVEL_SPECS, generate_layout
from pytest_alma.envs.babaisai.solver import solve
from pytest_alma.envs.babaisai.text import observation_text

SEEDS = tuple(range(10))
MAX_STATES = 20_000
MAX_STEPS = 100

# Families, by id prefix (longest first so "two_room-break_stop-goto_win" is not "goto_win").
GROUPS: dict[str, tuple[str, ...]] = {
    "you_win": ("you_win",),
    "goto": ("goto_win",),
    "make_win": ("make_win",),
    "two_room-goto": ("two_room-goto_win",),
    "two_room-break_stop-goto": ("two_room-break_stop-goto_win",),
    "two_room-maybe_break_stop-goto": ("two_room-maybe_break_stop-goto_win",),
    "two_room-make_you": ("two_room-make_you",),
    "two_room-make_win": ("two_room-make_win",),
    "two_room-break_stop-make_win": ("two_room-break_stop-make_win",),
    "two_room-make_wall_win": ("two_room-make_wall_win",),
}


def group_of(level_id: str) -> str:
    best = max(
        (
            (len(prefix), group)
            for group, prefixes in GROUPS.items()
            for prefix in prefixes
            if level_id.startswith(prefix)
        ),
    )
    return best[1]


#: Families the spec says are beyond a practical BFS: generation and observation only.
BEYOND_SEARCH = {"two_room-make_win", "two_room-break_stop-make_win", "two_room-make_wall_win"}
#: Families with expensive searches: a smaller, documented seed set (see module docstring).
EXPENSIVE = {"make_win", "two_room-break_stop-goto", "two_room-maybe_break_stop-goto"}
#: Shortest-solution bounds per family. Upper bounds are what we measured on seeds 0..9 plus a
#: margin; lower bounds are what the level structure forces (you_win is one move by design;
#: make_win must rebuild the win rule before touching obj1; break_stop must break the stop rule
#: and cross the wall).
LENGTH_BOUNDS: dict[str, tuple[int, int]] = {
    "you_win": (1, 1),
    "goto": (1, 12),
    "make_win": (3, 30),
    "two_room-goto": (1, 12),
    "two_room-break_stop-goto": (3, 20),
    "two_room-maybe_break_stop-goto": (1, 20),
    "two_room-make_you": (3, 30),
}


def seed_set(level_id: str) -> tuple[int, ...]:
    group = group_of(level_id)
    if group not in EXPENSIVE:
        return SEEDS
    members = [i for i in LEVEL_IDS if group_of(i) == group]
    k = members.index(level_id)
    if k == 0:  # the family's first id in registry order gets every seed
        return SEEDS
    return (2 * k % 10, (2 * k + 1) % 10)


SOLVABLE_CASES = [
    (level_id, seed)
    for level_id in LEVEL_IDS
    if group_of(level_id) not in BEYOND_SEARCH
    for seed in seed_set(level_id)
]

_LINE = re.compile(
    r"(rule `[a-z]+`|ball|key|door|wall) "
    r"(?=.)(\d+ steps? to the (right|left))?( and )?(\d+ steps? (up|down))?"
)


def layout_of(level_id: str, seed: int) -> Layout:
    return generate_layout(level_id, np.random.default_rng(seed))


def test_every_id_has_a_group() -> None:
    groups = {group_of(i) for i in LEVEL_IDS}
    assert groups == set(GROUPS)
    assert set(LENGTH_BOUNDS) == set(GROUPS) - BEYOND_SEARCH
    assert sum(group_of(i) == "make_win" for i in LEVEL_IDS) == 15


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("level_id", LEVEL_IDS)
def test_observation_well_formed(level_id: str, seed: int) -> None:
    spec = LEVEL_SPECS[level_id]
    game = BabaGame.from_layout(layout_of(level_id, seed), MAX_STEPS)
    assert game.you_position() is not None
    text = observation_text(game)
    head, sep, body = text.partition("\n\nObjects on the map:\n")
    assert sep
    assert head.startswith("Active rules:\n")
    rules = head.removeprefix("Active rules:\n").split("\n")
    assert all(re.fullmatch(r"[a-z]+ is [a-z]+", rule) for rule in rules)
    you_rules = [rule for rule in rules if rule.endswith(" is you")]
    win_rules = [rule for rule in rules if rule.endswith(" is win")]
    if spec.family == "you_win":
        assert len(you_rules) == 1 and len(win_rules) == 1
    else:
        assert you_rules == ["baba is you"]
        # The win rule is missing at the start exactly when the level is a make_win one
        # (make_you-make_win and make_wall_win included); an extra "obj3 is win" may remain.
        expected = (0 if spec.break_win_rule else 1) + (1 if spec.distr_win_rule else 0)
        assert len(win_rules) == expected
    if spec.family in ("two_room", "make_you", "make_wall_win"):
        assert ("wall is stop" in rules) != spec.break_stop_rule
    lines = body.split("\n")
    for line in lines:
        # The you-object is at offset (0, 0) and gives an empty line when it is not baba.
        assert line == "" or _LINE.fullmatch(line), line
    assert lines.count("") == (1 if spec.family == "you_win" else 0)


def replay(layout: Layout, actions: list[int]) -> BabaGame:
    """Play ``actions`` on a fresh game; the win must come on the last action, not before."""
    game = BabaGame.from_layout(layout, MAX_STEPS)
    for n, action in enumerate(actions, start=1):
        out = game.step(action)
        assert out.won == (n == len(actions))
        assert out.reward == (1 - 0.9 * (n / MAX_STEPS) if out.won else 0.0)
    return game


@pytest.mark.parametrize(("level_id", "seed"), SOLVABLE_CASES)
def test_solvable(level_id: str, seed: int) -> None:
    layout = layout_of(level_id, seed)
    game = BabaGame.from_layout(layout, MAX_STEPS)
    actions = solve(game, max_states=MAX_STATES)
    assert actions is not None, f"{level_id} seed {seed}: no solution within {MAX_STATES} states"
    low, high = LENGTH_BOUNDS[group_of(level_id)]
    assert low <= len(actions) <= high
    assert replay(layout, actions).won
    assert game.step_count == 0  # the search did not touch the game it was given
