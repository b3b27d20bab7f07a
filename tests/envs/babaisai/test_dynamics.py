"""Step dynamics pinned one rule at a time on small explicit layouts (spec 1.3-1.5, 1.12)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_alma.envs.babaisai.engine import (
    DIR_RIGHT,
    DIR_UP,
    IDLE,
    LEFT,
    RIGHT,
    UP,
    BabaGame,
    PropertyRule,
    ReplaceRule,
)
from pytest_alma.envs.babaisai.layout_text import parse_layout

# --------------------------------------------------------------------------- pushing


def test_push_chain_of_rule_tiles_moves_when_free(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #    #      #     #      #      #
        # baba [ball] [key] [door] .      #
        # .    .      .     .      .      #
        # [baba] [is] [you] .      .      #
        # #    #      #     #      #      #
    """)
    bb.play(g, "r")
    assert bb.grid_of(g) == bb.canon("""
        # #    #    #      #     #      #
        # .    baba [ball] [key] [door] #
        # .    .    .      .     .      #
        # [baba] [is] [you] .    .      #
        # #    #    #      #     #      #
    """)


def test_push_chain_blocked_by_border_moves_nothing(bb: SimpleNamespace) -> None:
    text = """
        # #    #      #     #      #
        # baba [ball] [key] [door] #
        # .    .      .     .      #
        # [baba] [is] [you] .      #
        # #    #      #     #      #
    """
    g = bb.make_game(text)
    bb.play(g, "r")
    assert bb.grid_of(g) == bb.canon(text)


def test_vertical_push_of_rule_tile_into_border_is_blocked(bb: SimpleNamespace) -> None:
    # Rule tiles are never overlappable, so the mover stays too.
    text = """
        # #    #    #      #
        # .    .    [key]  #
        # .    .    baba   #
        # [baba] [is] [you] #
        # #    #    #      #
    """
    g = bb.make_game(text)
    bb.play(g, "u")
    assert bb.grid_of(g) == bb.canon(text)


def test_push_blocked_by_stop_object(bb: SimpleNamespace) -> None:
    text = """
        # #      #     #      #      #
        # baba   [key] wall   .      #
        # [wall] [is]  [stop] .      #
        # [baba] [is]  [you]  .      #
        # #      #     #      #      #
    """
    g = bb.make_game(text)
    bb.play(g, "r")
    assert bb.grid_of(g) == bb.canon(text)


def test_stop_object_blocks_the_mover(bb: SimpleNamespace) -> None:
    text = """
        # #      #     #      #
        # baba   wall  .      #
        # [wall] [is]  [stop] #
        # [baba] [is]  [you]  #
        # #      #     #      #
    """
    g = bb.make_game(text)
    bb.play(g, "r")
    assert bb.grid_of(g) == bb.canon(text)


def test_stop_and_push_object_is_pushed(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #     #      #      #
        # baba   wall  .      .      #
        # [wall] [is]  [stop] .      #
        # [wall] [is]  [push] .      #
        # [baba] [is]  [you]  .      #
        # #      #     #      #      #
    """)
    bb.play(g, "r")
    assert g.top(3, 1) is not None and g.top(3, 1).name == "wall"
    assert g.top(2, 1) is not None and g.top(2, 1).name == "baba"
    bb.play(g, "rr")  # the wall reaches the border; baba is then blocked by it
    assert g.top(4, 1) is not None and g.top(4, 1).name == "wall"
    assert g.top(3, 1) is not None and g.top(3, 1).name == "baba"


def test_blocked_push_object_that_is_not_stop_is_overlapped(bb: SimpleNamespace) -> None:
    # Errata 3: "ball is push" without stop; the ball cannot move, so baba steps onto it.
    g = bb.make_game("""
        # #      #    #      #      #
        # .      baba ball   [key]  #
        # [ball] [is] [push] .      #
        # [baba] [is] [you]  .      #
        # #      #    #      #      #
    """)
    bb.play(g, "r")
    assert [o.name for o in g.stack(3, 1)] == ["ball", "baba"]
    assert g.stack(2, 1) == ()


def test_blocked_chain_of_push_objects_compresses(bb: SimpleNamespace) -> None:
    # The last ball is stuck at the border, the first one steps onto it, baba follows.
    g = bb.make_game("""
        # #      #    #      #      #
        # baba   ball ball   .      #
        # [ball] [is] [push] .      #
        # [baba] [is] [you]  .      #
        # #      #    #      #      #
    """)
    bb.play(g, "rr")
    assert [o.name for o in g.stack(4, 1)] == ["ball", "ball"]
    assert [o.name for o in g.stack(3, 1)] == ["baba"]
    bb.play(g, "r")
    assert [o.name for o in g.stack(4, 1)] == ["ball", "ball", "baba"]


def test_pushed_rule_tile_stacks_on_overlappable_object(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #    #     #     #
        # baba [key] ball  #
        # .    .     .     #
        # [baba] [is] [you] #
        # #    #     #     #
    """)
    bb.play(g, "r")
    assert [o.name for o in g.stack(3, 1)] == ["ball", "key"]
    assert g.stack(3, 1)[-1].kind == "word"


# --------------------------------------------------------------------------- overlap


def test_walking_over_an_object_without_rules_stacks_and_uncovers(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #    #     #     #     #
        # baba ball  .     .     #
        # .    .     .     .     #
        # [baba] [is] [you] .    #
        # #    #     #     #     #
    """)
    bb.play(g, "r")
    assert [o.name for o in g.stack(2, 1)] == ["ball", "baba"]
    assert g.you_position() == (2, 1)
    bb.play(g, "r")
    assert [o.name for o in g.stack(2, 1)] == ["ball"]
    assert [o.name for o in g.stack(3, 1)] == ["baba"]


def test_you_object_moving_onto_an_unmoved_you_object_covers_it(bb: SimpleNamespace) -> None:
    # Errata 2: the first baba (earlier in scan) covers the second, which then stays put.
    g = bb.make_game("""
        # #    #    #    #    #
        # baba baba .    .    #
        # .    .    .    .    #
        # [baba] [is] [you] . #
        # #    #    #    #    #
    """)
    bb.play(g, "r")
    assert [o.name for o in g.stack(2, 1)] == ["baba", "baba"]
    assert g.stack(1, 1) == ()


# --------------------------------------------------------------------------- win / lose


def test_spec_example_goto_win_two_lefts_win(bb: SimpleNamespace) -> None:
    g = bb.make_game(bb.GOTO_WIN)
    first, second = bb.play(g, "ll")
    assert (first.reward, first.won, first.done) == (0.0, False, False)
    assert second.won and second.done and not second.lost
    assert second.reward == pytest.approx(0.982)
    assert second.reward == 1 - 0.9 * (2 / 100)


def test_win_test_uses_old_rules_when_the_rule_breaks_in_the_same_step(
    bb: SimpleNamespace,
) -> None:
    # The first baba pushes the [ball] tile up (breaking "ball is win") before the second baba,
    # later in scan order, steps onto the ball: still a win, the old ruleset decides.
    g = bb.make_game("""
        # #      #    #     #    #    #
        # .      .    .     .    .    #
        # [ball] [is] [win] .    .    #
        # baba   .    .     .    ball #
        # .      .    .     .    baba #
        # [baba] [is] [you] .    .    #
        # #      #    #     #    #    #
    """)
    (out,) = bb.play(g, "u")
    assert out.won
    assert "ball is win" not in bb.rule_strings(g)


def test_rule_made_by_a_push_takes_effect_next_step(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #    #    #
        # .      .    .     .    .    #
        # .      [is] [win] .    ball #
        # [ball] .    .     .    ball #
        # baba   .    .     .    baba #
        # [baba] [is] [you] .    .    #
        # #      #    #     #    #    #
    """)
    (out,) = bb.play(g, "u")  # completes "ball is win" while the other baba reaches a ball
    assert not out.won
    assert "ball is win" in bb.rule_strings(g)
    (out,) = bb.play(g, "u")
    assert out.won


def test_you_that_is_win_wins_only_when_blocked(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #
        # .      baba .     #
        # [baba] [is] [win] #
        # [baba] [is] [you] #
        # #      #    #     #
    """)
    (out,) = bb.play(g, "r")  # moves onto an empty cell: target top is empty, no win
    assert not out.won
    (out,) = bb.play(g, "r")  # blocked by the border: target is its own cell
    assert out.won


def test_lose(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # baba   ball .      #
        # [ball] [is] [lose] #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    (out,) = bb.play(g, "r")
    assert (out.reward, out.lost, out.won, out.done) == (-1.0, True, False, True)


def test_win_beats_lose(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # baba   ball .      #
        # [ball] [is] [lose] #
        # [ball] [is] [win]  #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    (out,) = bb.play(g, "r")
    assert out.won and not out.lost and out.reward > 0


def test_win_object_that_is_also_stop_cannot_be_won(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # baba   ball .      #
        # [ball] [is] [stop] #
        # [ball] [is] [win]  #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    (out,) = bb.play(g, "r")
    assert not out.won


def test_pushed_objects_never_trigger_win(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #     #
        # baba   ball key    .     #
        # [ball] [is] [push] .     #
        # [key]  [is] [win]  .     #
        # [baba] [is] [you]  .     #
        # #      #    #      #     #
    """)
    (out,) = bb.play(g, "r")  # the ball is pushed onto the win key; baba lands on nothing
    assert not out.won
    assert [o.name for o in g.stack(3, 1)] == ["key", "ball"]


# --------------------------------------------------------------------------- pull


def test_pull_follows_the_mover(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #    #    #
        # key    key  baba   .    .    #
        # [key]  [is] [pull] .    .    #
        # [baba] [is] [you]  .    .    #
        # #      #    #      #    #    #
    """)
    bb.play(g, "r")
    assert [o.name for o in (g.top(2, 1), g.top(3, 1), g.top(4, 1)) if o] == [
        "key",
        "key",
        "baba",
    ]
    assert g.stack(1, 1) == ()
    assert g.top(2, 1) is not None and g.top(2, 1).direction == DIR_RIGHT


def test_pull_happens_when_the_mover_is_blocked(bb: SimpleNamespace) -> None:
    # Errata 5: the pulled key lands on top of the blocked baba, hiding it.
    g = bb.make_game("""
        # #      #    #      #
        # .      key  baba   #
        # [key]  [is] [pull] #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    bb.play(g, "r")
    assert [o.name for o in g.stack(3, 1)] == ["baba", "key"]
    assert g.you_position() is None


def test_pushed_object_pulls_its_pusher(bb: SimpleNamespace) -> None:
    # Errata 5: a pushed object checks behind it too; here that is its own (pull) pusher.
    g = bb.make_game("""
        # #      #     #      #    #
        # baba   [key] .      .    #
        # [baba] [is]  [pull] .    #
        # [baba] [is]  [you]  .    #
        # #      #     #      #    #
    """)
    bb.play(g, "r")
    assert g.top(3, 1) is not None and g.top(3, 1).name == "key"
    assert [o.name for o in g.stack(2, 1)] == ["baba"]
    assert g.stack(1, 1) == ()


def test_pull_into_a_blocked_chain_does_not_recurse(bb: SimpleNamespace) -> None:
    # The original recurses forever here; the pull simply does not happen.
    text = """
        # #      #     #      #
        # .      baba  [key]  #
        # [baba] [is]  [pull] #
        # [baba] [is]  [you]  #
        # #      #     #      #
    """
    g = bb.make_game(text)
    bb.play(g, "r")
    assert bb.grid_of(g) == bb.canon(text)


# --------------------------------------------------------------------------- move


def test_move_objects_move_without_a_you_rule(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #    #    #
        # ball   .    [key]  .    .    #
        # [ball] [is] [move] .    .    #
        # .      .    .      .    .    #
        # #      #    #      #    #    #
    """)
    g.step(IDLE)
    assert g.top(1, 1) is not None  # idle: nothing moves
    g.step(LEFT)  # the action direction does not matter for move objects
    assert g.top(2, 1) is not None and g.top(2, 1).name == "ball"
    g.step(UP)  # pushes the [key] tile
    assert [o.name for o in g.stack(3, 1)] == ["ball"]
    assert g.top(4, 1) is not None and g.top(4, 1).name == "key"
    bb.play(g, "rrr")  # blocked at the border: the ball keeps facing right
    assert g.top(4, 1) is not None and g.top(4, 1).name == "ball"
    assert g.top(4, 1).direction == DIR_RIGHT


def test_pushed_move_object_turns_and_moves_again(bb: SimpleNamespace) -> None:
    # Errata 2 and 6: pushed up by baba, the ball faces up and then moves up on its own.
    g = bb.make_game("""
        # #      #    #      #    #
        # .      .    .      .    #
        # .      .    .      .    #
        # .      .    .      ball #
        # .      .    .      baba #
        # [ball] [is] [move] .    #
        # [ball] [is] [push] .    #
        # [baba] [is] [you]  .    #
        # #      #    #      #    #
    """)
    bb.play(g, "u")
    assert g.top(4, 1) is not None and g.top(4, 1).name == "ball"
    assert g.top(4, 1).direction == DIR_UP
    assert g.top(4, 3) is not None and g.top(4, 3).name == "baba"


# --------------------------------------------------------------------------- open / shut


def test_open_and_shut_destroy_each_other(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #    #
        # baba   key  door   .    #
        # [key]  [is] [open] .    #
        # [door] [is] [shut] .    #
        # [key]  [is] [push] .    #
        # [baba] [is] [you]  .    #
        # #      #    #      #    #
    """)
    bb.play(g, "r")
    assert g.top(2, 1) is not None and g.top(2, 1).name == "baba"
    assert g.stack(3, 1) == () and g.stack(4, 1) == ()


def test_open_shut_mover_destroyed_and_what_was_under_moves_on(bb: SimpleNamespace) -> None:
    # Errata 4: the move is not aborted, the ball under the destroyed key moves forward.
    g = bb.make_game("""
        # #      #        #      #    #
        # .      ball+key door   .    #
        # [key]  [is]     [open] .    #
        # [door] [is]     [shut] .    #
        # [key]  [is]     [you]  .    #
        # #      #        #      #    #
    """)
    bb.play(g, "r")
    assert g.stack(2, 1) == ()
    assert [o.name for o in g.stack(3, 1)] == ["ball"]


# --------------------------------------------------------------------------- replacement


def test_replacement_stacks_new_object_on_the_old_one(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #
        # ball:red .  baba  #
        # [ball] [is] [key] #
        # [baba] [is] [you] #
        # #      #    #     #
    """)
    assert g.rules == (ReplaceRule("ball", "key"), PropertyRule("baba", "you"))
    bb.play(g, "l")
    stack = g.stack(1, 1)
    assert [(o.name, o.color) for o in stack] == [("ball", "red"), ("key", "blue")]
    assert stack[-1].direction == DIR_RIGHT
    bb.play(g, "r")  # the ball is no longer on top: nothing more happens to it
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key"]


def test_replacement_acts_in_the_step_that_forms_the_rule(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #    #
        # ball   .    .     .    #
        # .      [is] [key] .    #
        # [ball] .    .     .    #
        # baba   .    .     .    #
        # [baba] [is] [you] .    #
        # #      #    #     #    #
    """)
    assert "ball is key" not in bb.rule_strings(g)
    bb.play(g, "u")
    assert "ball is key" in bb.rule_strings(g)
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key"]


def test_replacement_chains_in_scan_order(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # ball   .    baba   #
        # [ball] [is] [key]  #
        # [key]  [is] [door] #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    bb.play(g, "l")
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key", "door"]
    g = bb.make_game("""
        # #      #    #      #
        # ball   .    baba   #
        # [key]  [is] [door] #
        # [ball] [is] [key]  #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    bb.play(g, "l")
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key"]
    bb.play(g, "r")
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key", "door"]


def test_x_is_x_adds_one_object_per_step(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # ball   .    baba   #
        # [ball] [is] [ball] #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    bb.play(g, "l")
    assert len(g.stack(1, 1)) == 2
    bb.play(g, "i")
    assert len(g.stack(1, 1)) == 2
    bb.play(g, "r")
    assert len(g.stack(1, 1)) == 3


def test_replacing_the_you_object_hides_it(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # .      .    baba   #
        # [baba] [is] [ball] #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    bb.play(g, "l")
    assert [o.name for o in g.stack(2, 1)] == ["baba", "ball"]
    assert g.you_position() is None


# --------------------------------------------------------------------------- reward / cap


def test_reward_formula_and_step_cap(bb: SimpleNamespace) -> None:
    g = bb.make_game(bb.GOTO_WIN, max_steps=10)
    outs = bb.play(g, "ilil")
    assert outs[-1].won and outs[-1].reward == 1 - 0.9 * (4 / 10)
    g = bb.make_game(bb.GOTO_WIN, max_steps=3)
    outs = bb.play(g, "iii")
    assert [o.done for o in outs] == [False, False, True]
    assert all(o.reward == 0.0 and not o.won for o in outs)
    g = bb.make_game(bb.GOTO_WIN, max_steps=2)
    (_, last) = bb.play(g, "ll")  # a win on the last allowed step still counts
    assert last.won and last.done and last.reward == 1 - 0.9 * (2 / 2)


def test_step_rejects_bad_action_indices(bb: SimpleNamespace) -> None:
    g = bb.make_game(bb.GOTO_WIN)
    with pytest.raises(ValueError, match="0..4"):
        g.step(5)


def test_layout_validation() -> None:
    layout = parse_layout("""
        # # # #
        # baba . #
        # # # #
    """)
    game = BabaGame.from_layout(layout)
    assert game.rules == ()
    assert game.you_position() is None
    assert game.step(RIGHT).reward == 0.0


def test_copy_is_independent(bb: SimpleNamespace) -> None:
    g = bb.make_game(bb.GOTO_WIN)
    c = g.copy()
    bb.play(c, "l")
    assert g.you_position() == (3, 3) and c.you_position() == (2, 3)
    assert g.step_count == 0 and c.step_count == 1
    assert g.state_key() != c.state_key()
    bb.play(g, "l")
    assert g.state_key() == c.state_key()
