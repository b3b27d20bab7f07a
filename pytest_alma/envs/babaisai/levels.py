"""Level generators for the 53 Baba Is AI levels (the id lists and presets live in level_catalog).

Every level id is described by one row of data (:class:`LevelSpec`: a family and a few flags)
decoded from the id itself, and a handful of family generators turn a spec plus a seeded
``numpy.random.Generator`` into a :class:`~pytest_alma.envs.babaisai.layout.Layout`. The layout
rules follow the research notes (``/work/shared/specs/environments.md`` §1.7 and errata §1.12).

Deliberate differences from the original package:

* Randomness comes only from the ``rng`` argument (the original used the global ``np.random``),
  so a seed gives the same layout on every machine. We use only ``Generator.integers`` and
  ``Generator.permutation`` on small integer ranges, whose output numpy keeps stable. Layouts are
  *not* bit-identical to the original's for the same seed (its call sequence is not reproduced).
* A layout in which the you-object is hidden or absent is never returned: the whole layout is
  resampled from the same ``rng`` (errata 11; the original reset in a loop instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

from pytest_alma.envs.babaisai.layout import Layout, Placement, PlacementKind

# The catalogue is re-exported here: callers import ids and generators from one place.
from pytest_alma.envs.babaisai.level_catalog import (
    ALMA_EVAL_IDS,
    ALMA_MAX_STEPS,
    ALMA_TRAIN_IDS,
    BALROG_LEVEL_IDS,
    BALROG_MAX_STEPS,
    LEVEL_IDS,
    LEVEL_SPECS,
    PRESETS,
    Family,
    LevelSpec,
    ObjectRegion,
    Preset,
    UnknownLevelError,
    WinObject,
    level_spec,
)

__all__ = [
    "ALMA_EVAL_IDS",
    "ALMA_MAX_STEPS",
    "ALMA_TRAIN_IDS",
    "BALROG_LEVEL_IDS",
    "BALROG_MAX_STEPS",
    "LEVEL_IDS",
    "LEVEL_SPECS",
    "PRESETS",
    "LevelSpec",
    "Preset",
    "UnknownLevelError",
    "generate_layout",
    "layout_factory",
    "level_spec",
]

Cell = tuple[int, int]

# ---------------------------------------------------------------------------------------------
# Generation helpers
# ---------------------------------------------------------------------------------------------

#: Object names used by the generators, and their colours (spec §1.7 "Common").
_NAMES: Final[tuple[str, ...]] = ("ball", "key", "door")
_COLORS: Final[tuple[str, ...]] = ("red", "blue", "green")

#: Give up after this many whole-layout resamples. Only distr_win_rule levels ever resample
#: (about 1 in 10 draws), so reaching this means a bug, not bad luck.
_MAX_LAYOUT_ATTEMPTS: Final[int] = 1000


def _box(x0: int, x1: int, y0: int, y1: int) -> tuple[Cell, ...]:
    """The cells of an inclusive rectangle, row-major."""
    return tuple((x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1))


class _Board:
    """A layout under construction: placements in stacking order plus a per-cell count."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self._placements: list[Placement] = []

    def is_empty(self, cell: Cell) -> bool:
        return all((p.x, p.y) != cell for p in self._placements)

    def put(self, cell: Cell, kind: PlacementKind, name: str, color: str | None = None) -> None:
        """Put something on ``cell`` (on top of whatever is there: no emptiness check)."""
        x, y = cell
        if not (1 <= x <= self.width - 2 and 1 <= y <= self.height - 2):
            raise AssertionError(f"{cell} is not an interior cell")  # generator bug
        self._placements.append(Placement(x, y, kind, name, color))

    def words(self, cells: Sequence[Cell], names: Sequence[str]) -> None:
        """Lay a rule out word by word."""
        for cell, name in zip(cells, names, strict=True):
            self.put(cell, "word", name)

    def take(self, cell: Cell) -> Placement:
        """Remove and return the top placement of ``cell`` (used to break a rule)."""
        for index in range(len(self._placements) - 1, -1, -1):
            placement = self._placements[index]
            if (placement.x, placement.y) == cell:
                del self._placements[index]
                return placement
        raise AssertionError(f"nothing to take at {cell}")  # generator bug

    def sample_empty(self, region: Sequence[Cell], rng: np.random.Generator) -> Cell:
        """A uniformly random empty cell of ``region``, by rejection sampling (spec §1.7).

        We check up front that one exists so the loop always ends.
        """
        if not any(self.is_empty(cell) for cell in region):
            raise AssertionError("region has no empty cell")  # generator bug
        while True:
            cell = region[int(rng.integers(len(region)))]
            if self.is_empty(cell):
                return cell

    def move_to_region(self, cell: Cell, region: Sequence[Cell], rng: np.random.Generator) -> None:
        """Break a rule: move the tile on ``cell`` to a random empty cell of ``region``."""
        tile = self.take(cell)
        self.put(self.sample_empty(region, rng), tile.kind, tile.name, tile.color)

    def top_is(self, name: str, color: str | None) -> bool:
        """Whether some cell's top is an object ``name`` (of ``color`` if given)."""
        tops: dict[Cell, Placement] = {}
        for placement in self._placements:
            tops[(placement.x, placement.y)] = placement  # later placements stack on top
        return any(
            p.kind == "object" and p.name == name and (color is None or p.color == color)
            for p in tops.values()
        )

    def layout(self) -> Layout:
        return Layout(self.width, self.height, tuple(self._placements))


def _pick_names(win_object: WinObject, rng: np.random.Generator) -> tuple[str, str, str]:
    """obj1 (win), obj2 (distractor), obj3 (irrelevant): three distinct names (spec §1.7).

    For the ``#`` variants obj1 is drawn from the allowed names first and the other two are a
    random order of the rest, so every allowed assignment stays equally likely.
    """
    if win_object == "any":
        order = [_NAMES[int(i)] for i in rng.permutation(len(_NAMES))]
        return order[0], order[1], order[2]
    allowed = ["ball"] if win_object == "only_ball" else ["key", "door"]
    obj1 = allowed[int(rng.integers(len(allowed)))]
    rest = [name for name in _NAMES if name != obj1]
    rest = [rest[int(i)] for i in rng.permutation(len(rest))]
    return obj1, rest[0], rest[1]


def _pick_color(rng: np.random.Generator) -> str:
    return _COLORS[int(rng.integers(len(_COLORS)))]


# --- single room (8x8, interior 1..6) ---------------------------------------------------------

_SR_BABA_IS_YOU: Final[tuple[Cell, ...]] = ((1, 6), (2, 6), (3, 6))
_SR_WIN_RULE: Final[tuple[Cell, ...]] = ((1, 1), (2, 1), (3, 1))
_SR_DISTR_WIN_RULE: Final[tuple[Cell, ...]] = ((4, 4), (5, 4), (6, 4))
_SR_BREAK_REGION: Final[tuple[Cell, ...]] = _box(2, 5, 2, 5)
_SR_OBJECT_REGION: Final[tuple[Cell, ...]] = _box(1, 6, 2, 6)
# Cells for the distractor word tile, as the spec lists them: (6,1) and (6,6) appear twice, so
# they are twice as likely; we keep that weighting.
_SR_DISTR_RULE_CELLS: Final[tuple[Cell, ...]] = (
    (4, 6),
    (5, 6),
    (6, 6),
    (4, 1),
    (5, 1),
    (6, 1),
    (6, 1),
    (6, 2),
    (6, 3),
    (6, 4),
    (6, 5),
    (6, 6),
)


def _gen_single_room(spec: LevelSpec, rng: np.random.Generator) -> tuple[_Board, str | None]:
    """The 8x8 MakeWin family: goto_win*, make_win* and their ``#`` variants."""
    board = _Board(8, 8)
    obj1, obj2, obj3 = _pick_names(spec.win_object, rng)
    color1, color2 = _pick_color(rng), _pick_color(rng)
    board.words(_SR_BABA_IS_YOU, ("baba", "is", "you"))
    board.words(_SR_WIN_RULE, (obj1, "is", "win"))
    if spec.break_win_rule:
        board.move_to_region(_SR_WIN_RULE[0], _SR_BREAK_REGION, rng)
    if spec.distr_rule or spec.irrelevant_rule:
        # No emptiness check (as in the original); these cells are empty at this point anyway.
        cell = _SR_DISTR_RULE_CELLS[int(rng.integers(len(_SR_DISTR_RULE_CELLS)))]
        board.put(cell, "word", obj3 if spec.irrelevant_rule else obj2)
    board.put(board.sample_empty(_SR_OBJECT_REGION, rng), "object", "baba")
    board.put(board.sample_empty(_SR_OBJECT_REGION, rng), "object", obj1, color1)
    if spec.distr_obj:
        board.put(board.sample_empty(_SR_OBJECT_REGION, rng), "object", obj2, color2)
    if spec.distr_win_rule:
        # Placed last without an emptiness check, as in the original (errata 11): it may stack
        # on obj1, obj2 or the distractor tile, and on baba, which the caller rejects.
        board.words(_SR_DISTR_WIN_RULE, (obj3, "is", "win"))
    return board, None


# --- two rooms (13x9, interior x 1..11, y 1..7, dividing wall at x=6) ----------------------

_TR_WALL_X: Final[int] = 6
_TR_LEFT_PUSHABLE: Final[tuple[Cell, ...]] = _box(2, 5, 3, 5)
_TR_RIGHT_PUSHABLE: Final[tuple[Cell, ...]] = _box(7, 10, 3, 5)
_TR_RIGHT_UNPUSHABLE: Final[tuple[Cell, ...]] = (
    *((11, y) for y in range(2, 8)),
    (10, 7),
    (9, 7),
    (8, 7),
)
_TR_REGIONS: Final[dict[ObjectRegion, tuple[Cell, ...]]] = {
    "left_anywhere": _box(1, 4, 1, 7),
    "right_anywhere": _box(7, 10, 2, 7),
    "anywhere": tuple(cell for cell in _box(1, 11, 2, 7) if cell[0] != _TR_WALL_X),
    # make_you / make_wall_win: obj1 and obj2 anywhere in x 7..10, y 2..7.
    "right_room": _box(7, 10, 2, 7),
}
_TR_WIN_RULE: Final[tuple[Cell, ...]] = ((9, 1), (10, 1), (11, 1))
_TR_DISTR_WIN_RULE: Final[tuple[Cell, ...]] = ((9, 4), (10, 4), (11, 4))


def _two_room_board() -> _Board:
    """A 13x9 board with its full-height dividing wall of rule-controlled ``wall`` objects."""
    board = _Board(13, 9)
    for y in range(1, 8):
        board.put((_TR_WALL_X, y), "object", "wall")
    return board


def _gen_two_room(spec: LevelSpec, rng: np.random.Generator) -> tuple[_Board, str | None]:
    """TwoRoomEnv: two_room-{,break_stop-,maybe_break_stop-}goto_win*, -{,break_stop-}make_win*."""
    board = _two_room_board()
    obj1, obj2, obj3 = _pick_names(spec.win_object, rng)
    color1, color2 = _pick_color(rng), _pick_color(rng)
    stop_rule = ((1, 2), (2, 2), (3, 2))
    board.words(((1, 7), (2, 7), (3, 7)), ("baba", "is", "you"))
    board.words(stop_rule, ("wall", "is", "stop"))
    board.words(_TR_WIN_RULE, (obj1, "is", "win"))
    if spec.irrelevant_rule:
        board.put(board.sample_empty(_TR_RIGHT_PUSHABLE, rng), "word", obj3)
    elif spec.distr_rule and spec.distr_obj:
        # With obj2 on the map its word sits where it cannot be pushed into a rule.
        board.put(board.sample_empty(_TR_RIGHT_UNPUSHABLE, rng), "word", obj2)
    elif spec.distr_rule:
        board.put(board.sample_empty(_TR_RIGHT_PUSHABLE, rng), "word", obj2)
    if spec.break_stop_rule:
        # Move "is" or "stop" (one coin flip) into the left room.
        board.move_to_region(stop_rule[1 + int(rng.integers(2))], _TR_LEFT_PUSHABLE, rng)
    if spec.break_win_rule:
        board.move_to_region(_TR_WIN_RULE[0], _TR_RIGHT_PUSHABLE, rng)
    region = _TR_REGIONS[spec.object_region]
    board.put(board.sample_empty(_TR_LEFT_PUSHABLE, rng), "object", "baba")
    board.put(board.sample_empty(region, rng), "object", obj1, color1)
    if spec.distr_obj:
        board.put(board.sample_empty(region, rng), "object", obj2, color2)
    if spec.distr_win_rule:
        # Placed last without an emptiness check, like the single-room one: it may stack on the
        # obj2 word at (11,4) or on a displaced obj1 word. It never reaches baba (left room).
        board.words(_TR_DISTR_WIN_RULE, (obj3, "is", "win"))
    return board, None


def _gen_make_you(spec: LevelSpec, rng: np.random.Generator) -> tuple[_Board, str | None]:
    """two_room-make_you(-make_win): make obj2 "you" with the loose obj2 word, reach obj1."""
    board = _two_room_board()
    obj1, obj2, _ = _pick_names(spec.win_object, rng)
    color1, color2 = _pick_color(rng), _pick_color(rng)
    left_pushable, right_pushable = _box(2, 4, 3, 5), _box(8, 10, 3, 5)
    board.words(((1, 6), (2, 6), (3, 6)), ("baba", "is", "you"))
    # On the top row so "wall is stop" cannot be pushed up and broken.
    board.words(((1, 1), (2, 1), (3, 1)), ("wall", "is", "stop"))
    board.words(_TR_WIN_RULE, (obj1, "is", "win"))
    board.put(board.sample_empty(left_pushable, rng), "word", obj2)
    if spec.break_win_rule:
        board.move_to_region(_TR_WIN_RULE[0], right_pushable, rng)
    region = _TR_REGIONS[spec.object_region]
    board.put(board.sample_empty(left_pushable, rng), "object", "baba")
    board.put(board.sample_empty(region, rng), "object", obj1, color1)
    board.put(board.sample_empty(region, rng), "object", obj2, color2)
    return board, None


def _gen_make_wall_win(spec: LevelSpec, rng: np.random.Generator) -> tuple[_Board, str | None]:
    """two_room-make_wall_win: the win rule cannot be restored; make "wall is win" instead."""
    board = _two_room_board()
    obj1, obj2, obj3 = _pick_names(spec.win_object, rng)
    color1, color2 = _pick_color(rng), _pick_color(rng)
    board.words(((1, 7), (2, 7), (3, 7)), ("baba", "is", "you"))
    board.words(((2, 2), (3, 2), (4, 2)), ("wall", "is", "stop"))
    board.words(_TR_WIN_RULE, (obj1, "is", "win"))
    board.put(board.sample_empty(_box(8, 10, 3, 5), rng), "word", obj3)
    # Into a cell it cannot be pushed back from, so "obj1 is win" is gone for good.
    board.move_to_region(_TR_WIN_RULE[0], _TR_RIGHT_UNPUSHABLE, rng)
    region = _TR_REGIONS[spec.object_region]
    board.put(board.sample_empty(_box(2, 4, 3, 5), rng), "object", "baba")
    board.put(board.sample_empty(region, rng), "object", obj1, color1)
    board.put(board.sample_empty(region, rng), "object", obj2, color2)
    return board, None


# --- you_win (6x6, interior 1..4) --------------------------------------------------------------

_YW_BLOCKS: Final[tuple[Cell, ...]] = ((1, 3), (1, 4), (4, 3), (4, 4))
# Rows 1 and 2 hold the two 4-tile rules and the blocks flank rows 3-4, so the free 2x2 is this.
_YW_CENTRE: Final[tuple[Cell, ...]] = ((2, 3), (3, 3), (2, 4), (3, 4))


def _gen_you_win(spec: LevelSpec, rng: np.random.Generator) -> tuple[_Board, str | None]:
    """you_win / you_win-fixed_you: colour-qualified rules, no baba, a one-step win.

    Two distinct names and two distinct colours give four distinct objects (every name/colour
    pair), shuffled over the centre 2x2. The you-object is one of them and the win object is
    one of its two orthogonal neighbours in the 2x2 (never the diagonal one), so a single move
    wins. Because two objects share the you-object's type, BALROG's text wrapper (which takes the
    first object of the you *type* in scan order) can point at the wrong object.

    ``fixed_you`` (our reading; the spec does not define it): the you-object always sits on the
    first cell of the 2x2 in scan order, (2, 3). Its name, colour and the rest stay random. It is
    then always the first object of its type, so the wrapper reports the right position: the
    level isolates the colour-qualified-rule skill from the wrapper's misidentification quirk.
    """
    board = _Board(6, 6)
    for cell in _YW_BLOCKS:
        board.put(cell, "block", "wall")
    names = [_NAMES[int(i)] for i in rng.permutation(len(_NAMES))][:2]
    colors = [_COLORS[int(i)] for i in rng.permutation(len(_COLORS))][:2]
    objects = [(name, color) for name in names for color in colors]
    objects = [objects[int(i)] for i in rng.permutation(len(objects))]
    you_index = 0 if spec.fixed_you else int(rng.integers(len(_YW_CENTRE)))
    you_x, you_y = _YW_CENTRE[you_index]
    neighbours = [i for i, (x, y) in enumerate(_YW_CENTRE) if abs(x - you_x) + abs(y - you_y) == 1]
    win_index = neighbours[int(rng.integers(len(neighbours)))]
    you_name, you_color = objects[you_index]
    win_name, win_color = objects[win_index]
    board.words(((1, 1), (2, 1), (3, 1), (4, 1)), (you_color, you_name, "is", "you"))
    board.words(((1, 2), (2, 2), (3, 2), (4, 2)), (win_color, win_name, "is", "win"))
    for cell, (name, color) in zip(_YW_CENTRE, objects, strict=True):
        board.put(cell, "object", name, color)
    return board, you_color


_Generator = Callable[[LevelSpec, np.random.Generator], tuple[_Board, str | None]]
_GENERATORS: Final[dict[Family, _Generator]] = {
    "single_room": _gen_single_room,
    "two_room": _gen_two_room,
    "make_you": _gen_make_you,
    "make_wall_win": _gen_make_wall_win,
    "you_win": _gen_you_win,
}


def _you_object(spec: LevelSpec, board: _Board) -> str:
    """The type named by the level's initial "X is you" rule."""
    if spec.family != "you_win":
        return "baba"
    # The you rule's object word is at (2, 1).
    return next(p.name for p in board.layout().placements if (p.x, p.y) == (2, 1))


# ---------------------------------------------------------------------------------------------
# Public generation API
# ---------------------------------------------------------------------------------------------


def generate_layout(level_id: str, rng: np.random.Generator) -> Layout:
    """Generate a random layout of ``level_id`` using only ``rng``.

    The same generator state always gives the same layout. A draw whose you-object would be
    hidden under another tile is thrown away and the whole layout redrawn from the same ``rng``
    (errata 11), so the result always has a visible you-object.

    Raises :class:`UnknownLevelError` for an unknown id.
    """
    spec = level_spec(level_id)
    generator = _GENERATORS[spec.family]
    for _ in range(_MAX_LAYOUT_ATTEMPTS):
        board, you_color = generator(spec, rng)
        if board.top_is(_you_object(spec, board), you_color):
            return board.layout()
    raise RuntimeError(  # pragma: no cover - would mean a generator bug
        f"could not generate a layout of {level_id!r} with a visible you-object"
    )


def layout_factory(level_id: str) -> Callable[[np.random.Generator], Layout]:
    """A ``rng -> Layout`` function for ``level_id``, validating the id now rather than later."""
    level_spec(level_id)

    def factory(rng: np.random.Generator) -> Layout:
        return generate_layout(level_id, rng)

    factory.__name__ = f"layout_factory({level_id!r})"
    factory.__doc__ = f"Generate a layout of the Baba Is AI level {level_id!r}."
    return factory
