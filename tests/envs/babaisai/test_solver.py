"""Breadth-first solver: optimality, caps, and replaying its solutions."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_alma.envs.babaisai.engine import LEFT, BabaGame
from pytest_alma.envs.babaisai.solver import solve

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

MAKE_WIN = """
    # #      #    #     # # # #
    # .      [is] [win] . . . #
    # .      .    .     . . . #
    # .      .    [ball] . . . #
    # .      .    baba  . . ball #
    # .      .    .     . . . #
    # [baba] [is] [you] . . . #
    # #      #    #     # # # #
"""


def _replay(game: BabaGame, actions: list[int]) -> bool:
    outs = [game.step(a) for a in actions]
    return outs[-1].won and not any(o.done for o in outs[:-1])


def test_spec_example_is_two_lefts(bb: SimpleNamespace) -> None:
    g = bb.make_game(GOTO_WIN)
    key = g.state_key()
    assert solve(g) == [LEFT, LEFT]
    assert g.state_key() == key and g.step_count == 0  # the input game is untouched


def test_open_room_shortest_path_is_manhattan(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #    #
        # baba   .    .     .    #
        # .      .    .     ball #
        # .      .    .     .    #
        # [ball] [is] [win] .    #
        # [baba] [is] [you] .    #
        # #      #    #     #    #
    """)
    solution = solve(g)
    assert solution is not None and len(solution) == 4
    assert _replay(g, solution)


def test_make_win_needs_pushing_the_rule(bb: SimpleNamespace) -> None:
    g = bb.make_game(MAKE_WIN)
    solution = solve(g)
    assert solution is not None
    c = g.copy()
    assert _replay(c, solution)
    assert "ball is win" in [str(r) for r in c.rules]
    # BFS is optimal: nothing shorter wins.
    assert solve(g, max_depth=len(solution) - 1) is None


def test_unsolvable_and_caps(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #
        # baba   .    ball  #
        # [baba] [is] [you] #
        # #      #    #     #
    """)
    assert solve(g) is None  # no win rule can ever be formed
    g = bb.make_game(MAKE_WIN)
    assert solve(g, max_states=5) is None
    g = bb.make_game(GOTO_WIN)
    assert solve(g, max_depth=1) is None
    assert solve(g, max_depth=2) == [LEFT, LEFT]
    assert solve(bb.make_game(GOTO_WIN, max_steps=1)) is None
    assert solve(bb.make_game(GOTO_WIN, max_steps=2)) == [LEFT, LEFT]
