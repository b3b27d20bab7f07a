"""Rule extraction: sentence forms, scan order, idle, colour-qualified rules (spec 1.4, 1.12)."""

from __future__ import annotations

from types import SimpleNamespace

from pytest_alma.envs.babaisai.engine import (
    IDLE,
    LEFT,
    PropertyRule,
)

# --------------------------------------------------------------------------- rules


def test_one_is_tile_makes_horizontal_then_vertical_rule(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #      #     #
        # .      [ball] .     #
        # [ball] [is]   [win] #
        # .      [stop] .     #
        # [baba] [is]   [you] #
        # #      #      #     #
    """)
    assert g.rules == (
        PropertyRule("ball", "win"),
        PropertyRule("ball", "stop"),
        PropertyRule("baba", "you"),
    )


def test_rules_are_listed_in_row_major_scan_order(bb: SimpleNamespace) -> None:
    g = bb.make_game(bb.GOTO_WIN)
    assert bb.rule_strings(g) == ["door is win", "baba is you"]


def test_malformed_sentences_are_not_rules(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #      #
        # [win]  [is] [ball] #
        # [is]   [is] [you]  #
        # [baba] [is] [you]  #
        # #      #    #      #
    """)
    assert bb.rule_strings(g) == ["baba is you"]


def test_rule_tiles_must_be_on_top(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #          #
        # [ball] [is] [win]+ball #
        # .      .    .          #
        # [ball] [is] [you]      #
        # #      #    #          #
    """)
    assert bb.rule_strings(g) == ["ball is you"]
    bb.play(g, "d")  # the ball uncovers the [win] tile: the rule forms
    assert bb.rule_strings(g) == ["ball is win", "ball is you"]


def test_idle_only_advances_the_step_counter(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #      #    #     #
        # ball   .    baba  #
        # [ball] [is] [key] #
        # [baba] [is] [you] #
        # #      #    #     #
    """)
    key = g.state_key()
    assert [o.name for o in g.stack(1, 1)] == ["ball"]  # no replacement at reset
    out = g.step(IDLE)
    assert g.step_count == 1 and out.reward == 0.0 and not out.done
    assert g.state_key() == key  # no movement and no replacement on idle
    g.step(LEFT)
    assert [o.name for o in g.stack(1, 1)] == ["ball", "key"]


# --------------------------------------------------------------------------- colours


def test_colour_qualified_rule_uses_the_four_block_form(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #     #      #    #     #
        # [red] [ball] [is] [win] #
        # ball:red ball:green . baba #
        # .     [baba] [is] [you] #
        # #     #      #    #     #
    """)
    assert g.rules == (PropertyRule("ball", "win", "red"), PropertyRule("baba", "you"))
    assert bb.rule_strings(g)[0] == "red ball is win"
    red, green = g.top(1, 2), g.top(2, 2)
    assert red is not None and green is not None
    assert red.has("win") and not green.has("win")


def test_colour_rule_restricts_the_plain_rule_for_the_whole_type(bb: SimpleNamespace) -> None:
    # Errata 8: "ball is win" + "red ball is win" -> a green ball is not win.
    g = bb.make_game("""
        # #        #          #     #     #
        # [red]    [ball]     [is]  [win] #
        # .        [ball]     [is]  [win] #
        # ball:red ball:green .     baba  #
        # .        [baba]     [is]  [you] #
        # #        #          #     #     #
    """)
    assert bb.rule_strings(g) == ["red ball is win", "ball is win", "baba is you"]
    red, green = g.top(1, 3), g.top(2, 3)
    assert red is not None and green is not None
    assert red.has("win") and not green.has("win")
    bb.play(g, "l")
    (out,) = bb.play(g, "l")  # baba steps onto the green ball: not a win
    assert not out.won


def test_colour_word_not_in_front_falls_back_to_three_block_form(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #     #      #    #     #
        # [red] [is]   [ball] [win] #
        # .     [ball] [is] [win] #
        # .     [baba] [is] [you] #
        # #     #      #    #     #
    """)
    assert bb.rule_strings(g) == ["ball is win", "baba is you"]


def test_colour_you_rule_moves_only_matching_objects(bb: SimpleNamespace) -> None:
    g = bb.make_game("""
        # #        #        #     #     #
        # [red]    [key]    [is]  [you] #
        # key:red  key:blue .     .     #
        # .        .        .     .     #
        # #        #        #     #     #
    """)
    bb.play(g, "d")
    assert g.top(1, 3) is not None and g.top(1, 3).color == "red"
    assert g.top(2, 2) is not None and g.top(2, 2).color == "blue"
    # Documented simplification of errata 8: matching objects of a colour you-rule are stop.
    assert g.top(1, 3).has("stop") and not g.top(2, 2).has("stop")
