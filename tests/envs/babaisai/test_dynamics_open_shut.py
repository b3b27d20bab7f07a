"""Open/shut corner cases pinned to the original engine, step by step (issue 14).

Coordinates are ``(x, y)`` with ``y`` growing downwards and the border on row/column 0, as in
the original (minigrid's convention); directions are 0 right, 1 down, 2 left, 3 up. Every move
here goes left, so an object facing left has really been moved (objects start facing right).

The original's ``move`` reads the forward top *before* the open/shut check and never re-reads
it for the push decision; after the check it acts on the cells:

(a) **Push decided by the destroyed top.** If the destroyed forward object was ``push``, the
    forward cell is moved anyway: whatever now stands there moves (push or not), and an
    emptied cell still pushes the chain beyond it. If it was not ``push``, a ``push`` object
    uncovered under it is not pushed.
(b) **A destroyed mover still finishes its move.** With nothing left under it, the win/lose
    test on the target still runs (a you-object destroyed on a ``win`` cell wins) and what is
    behind it is still pulled.
"""

from __future__ import annotations

from types import SimpleNamespace

from pytest_alma.envs.babaisai.engine import DIR_LEFT, LEFT, BabaGame

# Baba (you, open) at (4,1) walks left into (3,1); (2,1) lies beyond. {rules} fills rows 4-6.
ROW = """
    # #      #    #      #     #     #
    # .      {c}  {b}    {a}   {e}   #
    # [baba] [is] [you]  .     .     #
    # [baba] [is] [open] .     .     #
    {rules}
    # #      #    #      #     #     #
"""

DOOR_PUSH = """
    # [door] [is] [shut] .     .     #
    # [door] [is] [push] .     .     #
    # [key]  [is] [push] .     .     #"""

DOOR_NOT_PUSH = """
    # [door] [is] [shut] .     .     #
    # [key]  [is] [push] .     .     #
    # .      .    .      .     .     #"""

DOOR_ON_WIN = """
    # [door] [is] [shut] .     .     #
    # [ball] [is] [win]  .     .     #
    # [key]  [is] [pull] .     .     #"""


def _make(bb: SimpleNamespace, rules: str, a: str, b: str, c: str = ".", e: str = ".") -> BabaGame:
    game: BabaGame = bb.make_game(ROW.format(rules=rules.strip(), a=a, b=b, c=c, e=e))
    return game


def _names(game: BabaGame, x: int, y: int) -> list[str]:
    return [o.name for o in game.stack(x, y)]


def _facing(game: BabaGame, x: int, y: int, name: str) -> int:
    (obj,) = [o for o in game.stack(x, y) if o.name == name]
    return obj.direction


def test_destroyed_push_top_pushes_the_non_push_object_under_it(bb: SimpleNamespace) -> None:
    g = _make(bb, DOOR_PUSH, a="baba", b="ball+door")
    assert bb.rule_strings(g) == [
        "baba is you",
        "baba is open",
        "door is shut",
        "door is push",
        "key is push",
    ]
    # t=1 left: baba and the door destroy each other. The door was push, so the original
    # moves its cell: the ball (no rules, not push) goes left to (2,1). Baba's own move then
    # has nothing left to move; the empty target is no win.
    out = g.step(LEFT)
    assert not out.won and not out.lost and not out.done
    assert g.stack(4, 1) == ()
    assert g.stack(3, 1) == ()
    assert _names(g, 2, 1) == ["ball"]
    assert _facing(g, 2, 1, "ball") == DIR_LEFT
    assert g.you_position() is None


def test_destroyed_push_top_on_an_empty_cell_still_pushes_the_chain(bb: SimpleNamespace) -> None:
    g = _make(bb, DOOR_PUSH, a="baba", b="door", c="key")
    # t=1 left: baba and the door destroy each other, leaving (3,1) empty. The door was push,
    # so the original still moves the empty cell, whose move pushes the key (push) beyond it
    # from (2,1) to (1,1).
    out = g.step(LEFT)
    assert not out.won and not out.done
    assert g.stack(4, 1) == ()
    assert g.stack(3, 1) == ()
    assert g.stack(2, 1) == ()
    assert _names(g, 1, 1) == ["key"]
    assert _facing(g, 1, 1, "key") == DIR_LEFT


def test_push_object_uncovered_by_a_destroyed_non_push_top_is_not_pushed(
    bb: SimpleNamespace,
) -> None:
    g = _make(bb, DOOR_NOT_PUSH, a="ball+baba", b="key+door")
    assert bb.rule_strings(g) == ["baba is you", "baba is open", "door is shut", "key is push"]
    # t=1 left: baba and the door destroy each other. The door was not push, so nothing is
    # pushed: the key (push, not stop, so overlappable) stays at (3,1), and the ball that was
    # under baba moves on and stacks on the key.
    out = g.step(LEFT)
    assert not out.won and not out.done
    assert g.stack(4, 1) == ()
    assert _names(g, 3, 1) == ["key", "ball"]
    assert _facing(g, 3, 1, "ball") == DIR_LEFT
    assert _facing(g, 3, 1, "key") != DIR_LEFT
    assert g.stack(2, 1) == ()


def test_destroyed_mover_wins_on_its_target_and_still_pulls(bb: SimpleNamespace) -> None:
    g = _make(bb, DOOR_ON_WIN, a="baba", b="ball+door", e="key")
    assert bb.rule_strings(g) == [
        "baba is you",
        "baba is open",
        "door is shut",
        "ball is win",
        "key is pull",
    ]
    # t=1 left: baba and the door destroy each other, nothing is left under baba. The target's
    # top is now the ball, which is win: the original reports a win for the (destroyed)
    # you-object. It then pulls the key behind baba into (4,1).
    out = g.step(LEFT)
    assert out.won and out.done and not out.lost
    assert out.reward == 1 - 0.9 * (1 / 100)
    assert _names(g, 3, 1) == ["ball"]
    assert _names(g, 4, 1) == ["key"]
    assert _facing(g, 4, 1, "key") == DIR_LEFT
    assert g.stack(5, 1) == ()
    assert g.you_position() is None
