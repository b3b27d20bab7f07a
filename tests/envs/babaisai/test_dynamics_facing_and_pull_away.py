"""Two corner cases pinned to the original engine, step by step (issue 14, item 10).

Coordinates are ``(x, y)`` with ``y`` growing downwards and the border on row/column 0, as in
the original (minigrid's convention); directions are 0 right, 1 down, 2 left, 3 up.

(a) **Facing.** The original turns an object only when it really changes cell (to the direction
    of that move); the one exception is a you-object, which is turned to the action's direction
    before its move, blocked or not. A pushed object that cannot move therefore keeps its facing.
(b) **Pulled away by the tile it pushed.** The mover's push pulls the (pull) mover into the cell
    the pushed tile left. The original then carries on with the mover's own move: it re-reads
    the target cell, whose top is now the mover itself, tests win/lose on it, moves whatever now
    stands on the source cell onto the target (and turns it), and pulls what is behind.
"""

from __future__ import annotations

from types import SimpleNamespace

from pytest_alma.envs.babaisai.engine import DIR_DOWN, DIR_RIGHT, DIR_UP, DOWN, UP, BabaGame

# (a) wall at (3,1), baba at (3,2), rules "wall is push", "wall is move", "baba is you".
BLOCKED_PUSH_OF_A_MOVER = """
    # #      #    #      # # # #
    # .      .    wall   . . . #
    # .      .    baba   . . . #
    # .      .    .      . . . #
    # [wall] [is] [push] . . . #
    # [wall] [is] [move] . . . #
    # [baba] [is] [you]  . . . #
    # #      #    #      # # # #
"""


def _names(game: BabaGame, x: int, y: int) -> list[str]:
    return [o.name for o in game.stack(x, y)]


def _facing(game: BabaGame, x: int, y: int, name: str) -> int:
    (obj,) = [o for o in game.stack(x, y) if o.name == name]
    return obj.direction


def test_blocked_push_does_not_turn_a_move_object(bb: SimpleNamespace) -> None:
    g = bb.make_game(BLOCKED_PUSH_OF_A_MOVER)
    assert bb.rule_strings(g) == ["wall is push", "wall is move", "baba is you"]

    # t=1 up: baba tries to push the wall into the border. The wall cannot move, so it keeps
    # facing right (its initial facing); being push but not stop it is overlappable, so baba
    # steps onto it. Covered, the wall is not a stack top and does not move on its own.
    out = g.step(UP)
    assert not out.won and not out.done
    assert _names(g, 3, 1) == ["wall", "baba"]
    assert _facing(g, 3, 1, "wall") == DIR_RIGHT
    assert _facing(g, 3, 1, "baba") == DIR_UP
    assert g.stack(3, 2) == ()

    # t=2 down: baba steps off; the uncovered wall moves in its own (unchanged) direction.
    out = g.step(DOWN)
    assert not out.won
    assert _names(g, 3, 2) == ["baba"]
    assert g.stack(3, 1) == ()
    assert _names(g, 4, 1) == ["wall"]
    assert _facing(g, 4, 1, "wall") == DIR_RIGHT

    # t=3 down: the wall moves right again.
    out = g.step(DOWN)
    assert not out.won
    assert _names(g, 3, 3) == ["baba"]
    assert g.stack(4, 1) == ()
    assert _names(g, 5, 1) == ["wall"]
    assert _facing(g, 5, 1, "wall") == DIR_RIGHT


# (b) baba (you, pull, win) pushes the [key] tile down; the pushed tile pulls baba after it.
PULLED_AWAY_BY_THE_PUSHED_TILE = """
    # #      #    #      # #     #
    # .      .    .      . {src} #
    # .      .    .      . [key] #
    # .      .    .      . .     #
    # [baba] [is] [you]  . .     #
    # [baba] [is] [pull] . .     #
    # [baba] [is] [win]  . .     #
    # #      #    #      # #     #
"""


def test_mover_pulled_away_by_its_pushed_tile_wins_on_its_new_cell(
    bb: SimpleNamespace,
) -> None:
    # Walking into an empty cell never wins (the target's top is tested before the move), and
    # the nested pull finds (5,2) empty too. But the original's outer move then re-reads
    # (5,2), whose top is now baba, and baba is win: a clean win at t=1.
    g = bb.make_game(PULLED_AWAY_BY_THE_PUSHED_TILE.format(src="baba"))
    assert bb.rule_strings(g) == ["baba is you", "baba is pull", "baba is win"]
    out = g.step(DOWN)
    assert out.won and out.done and not out.lost
    assert out.reward == 1 - 0.9 * (1 / 100)
    assert g.stack(5, 1) == ()
    assert _names(g, 5, 2) == ["baba"]
    assert _facing(g, 5, 2, "baba") == DIR_DOWN
    assert _names(g, 5, 3) == ["key"]
    assert g.you_position() == (5, 2)


def test_outer_move_carries_on_with_what_stands_on_the_source_cell(
    bb: SimpleNamespace,
) -> None:
    # The same push with baba standing on a ball: after baba has been pulled away, the outer
    # move moves what now stands on (5,1), the ball, onto (5,2) (on top of baba, facing down).
    # The win was tested before that, on baba.
    g = bb.make_game(PULLED_AWAY_BY_THE_PUSHED_TILE.format(src="ball+baba"))
    assert _names(g, 5, 1) == ["ball", "baba"]
    out = g.step(DOWN)
    assert out.won and out.done
    assert g.stack(5, 1) == ()
    assert _names(g, 5, 2) == ["baba", "ball"]
    assert _facing(g, 5, 2, "ball") == DIR_DOWN
    assert _facing(g, 5, 2, "baba") == DIR_DOWN
    assert _names(g, 5, 3) == ["key"]
    # The ball now hides baba, so the wrapper's you-object is not visible.
    assert g.you_position() is None
