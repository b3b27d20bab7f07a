"""Property-based tests: random layouts and action sequences never break the invariants.

Invariants checked after every step (the strongest ones that hold given errata 3, pulls and
replacement stacking):

* stepping never raises, and the reward is 0, -1, or exactly ``1 - 0.9 * (t / max_steps)`` on
  a win (so within [0.1 - 1 ulp, 1]); ``done`` iff won, lost or at the step cap;
* the border ring is untouched: every ring cell holds exactly its one border wall;
* blocks never move and nothing ever lands on them: their cells hold exactly the block;
* rule tiles are never created or destroyed (their multiset is constant) and, when the layout
  starts with every rule tile on top, never covered: every rule tile stays the *top* of its
  stack. Rule tiles, border walls and blocks are the only things that are solid whatever the
  rules say, so each cell then holds at most one of them. (``stop`` objects can end up stacked:
  an object may stand on a ball that later becomes stop, so no such claim holds for them. A
  hand-made layout may start with a rule tile under an object; then a tile can be pushed onto
  that object and two tiles share a cell, so the claim is checked only for the other layouts);
* the number of objects only grows through replacement rules and only shrinks through open/shut;
* the rules are exactly what a fresh extraction of the grid gives (idle never changes the grid);
* ``copy()`` and ``state_key()`` are consistent: a copy replays the same future.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_alma.envs.babaisai.engine import BabaGame, PropertyRule, ReplaceRule
from pytest_alma.envs.babaisai.layout import (
    COLOR_NAMES,
    OBJECT_NAMES,
    PROPERTY_WORDS,
    Layout,
    Placement,
)

WORDS = (*OBJECT_NAMES, "is", "is", "is", *PROPERTY_WORDS, "red", "blue")


@st.composite
def layouts(draw: st.DrawFn, cover_words: bool = False) -> Layout:
    """Small random levels, biased towards forming rules (you-rule in row 1, rows 2-3 random).

    With ``cover_words`` some rule tiles start *under* an object (only a hand-made layout can
    do that; the engine itself never covers a rule tile).
    """
    w = draw(st.integers(5, 8))
    h = draw(st.integers(5, 8))
    placements: list[Placement] = []
    taken: set[tuple[int, int]] = set()
    if draw(st.booleans()):
        you = draw(st.sampled_from(OBJECT_NAMES))
        for i, word in enumerate((you, "is", "you")):
            placements.append(Placement(1 + i, 1, "word", word))
            taken.add((1 + i, 1))
    for row in (2, 3):
        if draw(st.booleans()):
            subject = draw(st.sampled_from(OBJECT_NAMES))
            prop = draw(st.sampled_from(PROPERTY_WORDS))
            for i, word in enumerate((subject, "is", prop)):
                placements.append(Placement(1 + i, row, "word", word))
                taken.add((1 + i, row))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            if (x, y) in taken:
                continue
            choice = draw(st.integers(0, 9))
            if choice <= 3:
                continue  # empty
            if choice <= 6:
                n = draw(st.integers(1, 2))
                for _ in range(n):
                    name = draw(st.sampled_from(OBJECT_NAMES))
                    color = draw(st.sampled_from((None, *COLOR_NAMES[:3])))
                    placements.append(Placement(x, y, "object", name, color))
            elif choice <= 8:
                under = draw(st.booleans())
                over = cover_words and draw(st.booleans())
                if under:
                    name = draw(st.sampled_from(OBJECT_NAMES))
                    placements.append(Placement(x, y, "object", name))
                placements.append(Placement(x, y, "word", draw(st.sampled_from(WORDS))))
                if over:
                    name = draw(st.sampled_from(OBJECT_NAMES))
                    placements.append(Placement(x, y, "object", name))
            else:
                placements.append(Placement(x, y, "block", "block"))
    return Layout(w, h, tuple(placements))


def _full_state(game: BabaGame) -> list[tuple[int, int, int, str, str, str, int, int]]:
    """Every object with its cell, stack depth, direction and property mask."""
    return [
        (x, y, k, o.kind, o.name, o.color, o.direction, o.mask)
        for x, y, stack in game.iter_cells()
        for k, o in enumerate(stack)
    ]


def _fresh_rules(game: BabaGame) -> tuple[PropertyRule | ReplaceRule, ...]:
    return BabaGame.from_layout(game.to_layout(), game.max_steps).rules


def _snapshot(game: BabaGame) -> tuple[dict[tuple[int, int], int], Counter[str], int]:
    blocks: dict[tuple[int, int], int] = {}
    words: Counter[str] = Counter()
    n_objects = 0
    for x, y, stack in game.iter_cells():
        for o in stack:
            if o.kind == "block":
                blocks[(x, y)] = len(stack)
            elif o.kind == "word":
                words[o.name] += 1
            elif o.kind == "object":
                n_objects += 1
    return blocks, words, n_objects


def _check_invariants(
    game: BabaGame,
    blocks0: dict[tuple[int, int], int],
    words0: Counter[str],
    words_on_top: bool = True,
) -> None:
    w, h = game.width, game.height
    for x, y, stack in game.iter_cells():
        if x in (0, w - 1) or y in (0, h - 1):
            assert [o.kind for o in stack] == ["border"], (x, y, stack)
            continue
        if words_on_top:
            solid = [o for o in stack if o.kind in ("border", "block", "word")]
            assert len(solid) <= 1, (x, y, stack)
            if solid:
                assert stack[-1] is solid[0], (x, y, stack)  # rule tiles are always on top
    blocks, words, _ = _snapshot(game)
    assert blocks == blocks0
    assert words == words0


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    cover_words=st.booleans(),
    actions=st.lists(st.integers(0, 4), max_size=40),
)
def test_random_play_keeps_invariants(
    data: st.DataObject, cover_words: bool, actions: list[int]
) -> None:
    layout = data.draw(layouts(cover_words=cover_words))
    game = BabaGame.from_layout(layout, max_steps=30)
    blocks0, words0, _ = _snapshot(game)
    assert all(n == 1 for n in blocks0.values())
    _check_invariants(game, blocks0, words0, not cover_words)
    has_replace = any(isinstance(r, ReplaceRule) for r in game.rules)
    for action in actions:
        before_objects = _snapshot(game)[2]
        rules_before = game.rules
        out = game.step(action)
        t = game.step_count
        if out.won:
            assert out.reward == 1 - 0.9 * (t / game.max_steps)
            assert 0.1 - 1e-12 < out.reward <= 1.0
            assert not out.lost
        elif out.lost:
            assert out.reward == -1.0
        else:
            assert out.reward == 0.0
        assert out.done == (out.won or out.lost or t >= game.max_steps)
        _check_invariants(game, blocks0, words0, not cover_words)
        assert game.rules == _fresh_rules(game)
        if action == 0:
            assert game.rules == rules_before
        after_objects = _snapshot(game)[2]
        has_replace = has_replace or any(isinstance(r, ReplaceRule) for r in game.rules)
        if not has_replace:
            assert after_objects <= before_objects
        opens = {r.prop for r in rules_before if isinstance(r, PropertyRule)}
        if not ({"open", "shut"} <= opens):
            assert after_objects >= before_objects
        if out.done:
            break


@settings(max_examples=100, deadline=None)
@given(
    layout=layouts(cover_words=True),
    prefix=st.lists(st.integers(1, 4), max_size=10),
    suffix=st.lists(st.integers(0, 4), max_size=10),
)
def test_copy_replays_the_same_future(layout: Layout, prefix: list[int], suffix: list[int]) -> None:
    game = BabaGame.from_layout(layout)
    for a in prefix:
        game.step(a)
    clone = game.copy()
    assert clone.state_key() == game.state_key()
    # Stepping the copy must not leak into the original (objects are shared copy-on-write).
    before = _full_state(game)
    probe = game.copy()
    for a in suffix:
        probe.step(a)
    assert _full_state(game) == before
    for a in suffix:
        assert game.step(a) == clone.step(a)
        assert game.state_key() == clone.state_key()
        assert _full_state(game) == _full_state(clone)
    assert _full_state(game) == _full_state(probe)
