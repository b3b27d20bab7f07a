"""Level generators for the 53 Baba Is AI levels, plus the BALROG and ALMA level lists.

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

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from pytest_alma.envs.babaisai.layout import Layout, Placement, PlacementKind

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
# The level ids
# ---------------------------------------------------------------------------------------------

#: All 53 level ids, in our reconstruction of the original registry's insertion order.
#:
#: Why the order matters: ALMA shuffles this list with ``random.seed(42); random.shuffle(...)``
#: and takes the first 26 as its training pool. The spec (§1.9) gives those 26 ids. A shuffle of
#: 53 items with seed 42 is a fixed permutation, so each training id pins its own index here
#: (e.g. ``you_win`` must be index 0, ``goto_win`` index 4). The 26 pinned slots, marked ``*``
#: below, show the registry is grouped by family: you_win ids, single-room ids (0..22) and
#: two-room ids (23..52). The 27 unpinned slots are filled with the remaining ids of the same
#: family block, in the spec's suffix order (none, distr_obj, distr_rule, distr_obj_rule,
#: distr_obj-irrelevant_rule, distr_win_rule). In the ``#`` variant block the pinned slots fit
#: exactly one pattern (base ids in the order none, distr_obj, distr_rule, irrelevant,
#: distr_obj_rule, each as ``#no_ball_win`` then ``#only_ball_win``), which we follow.
#: The test suite checks that the seed-42 shuffle of this tuple starts with ALMA_TRAIN_IDS.
LEVEL_IDS: Final[tuple[str, ...]] = (
    "you_win",  # 0 *
    "you_win-fixed_you",  # 1
    "goto_win-distr_obj",  # 2
    "goto_win-distr_obj_rule",  # 3 *
    "goto_win",  # 4 *
    "goto_win-distr_rule",  # 5
    "goto_win-distr_obj-irrelevant_rule",  # 6
    "goto_win-distr_win_rule",  # 7
    "make_win-distr_obj_rule",  # 8
    "make_win-distr_obj",  # 9 *
    "make_win-distr_rule",  # 10 *
    "make_win",  # 11 *
    "make_win-distr_obj-irrelevant_rule",  # 12
    "make_win#no_ball_win",  # 13
    "make_win#only_ball_win",  # 14
    "make_win-distr_obj#no_ball_win",  # 15
    "make_win-distr_obj#only_ball_win",  # 16 *
    "make_win-distr_rule#no_ball_win",  # 17
    "make_win-distr_rule#only_ball_win",  # 18 *
    "make_win-distr_obj-irrelevant_rule#no_ball_win",  # 19 *
    "make_win-distr_obj-irrelevant_rule#only_ball_win",  # 20
    "make_win-distr_obj_rule#no_ball_win",  # 21 *
    "make_win-distr_obj_rule#only_ball_win",  # 22
    "two_room-goto_win",  # 23 *
    "two_room-goto_win-distr_obj_rule",  # 24 *
    "two_room-goto_win-distr_rule",  # 25 *
    "two_room-goto_win-distr_obj",  # 26 *
    "two_room-goto_win-distr_obj-irrelevant_rule",  # 27
    "two_room-goto_win-distr_win_rule",  # 28 *
    "two_room-break_stop-goto_win-distr_obj_rule",  # 29 *
    "two_room-break_stop-goto_win-distr_obj",  # 30
    "two_room-break_stop-goto_win-distr_rule",  # 31 *
    "two_room-break_stop-goto_win-distr_obj-irrelevant_rule",  # 32
    "two_room-break_stop-goto_win",  # 33 *
    "two_room-maybe_break_stop-goto_win",  # 34
    "two_room-maybe_break_stop-goto_win-distr_rule",  # 35
    "two_room-maybe_break_stop-goto_win-distr_obj",  # 36 *
    "two_room-maybe_break_stop-goto_win-distr_obj_rule",  # 37
    "two_room-maybe_break_stop-goto_win-distr_obj-irrelevant_rule",  # 38 *
    "two_room-make_win-distr_obj_rule",  # 39 *
    "two_room-make_win",  # 40
    "two_room-make_win-distr_obj",  # 41
    "two_room-make_win-distr_obj-irrelevant_rule",  # 42 *
    "two_room-make_win-distr_rule",  # 43
    "two_room-make_win-distr_win_rule",  # 44 *
    "two_room-break_stop-make_win-distr_obj_rule",  # 45 *
    "two_room-break_stop-make_win",  # 46
    "two_room-break_stop-make_win-distr_rule",  # 47
    "two_room-break_stop-make_win-distr_obj-irrelevant_rule",  # 48
    "two_room-break_stop-make_win-distr_obj",  # 49 *
    "two_room-make_you",  # 50
    "two_room-make_you-make_win",  # 51 *
    "two_room-make_wall_win",  # 52
)

#: ALMA's training pool (spec §1.9, verbatim and in ALMA's shuffled order).
ALMA_TRAIN_IDS: Final[tuple[str, ...]] = (
    "make_win-distr_obj",
    "two_room-goto_win",
    "two_room-goto_win-distr_rule",
    "goto_win-distr_obj_rule",
    "make_win-distr_obj_rule#no_ball_win",
    "two_room-maybe_break_stop-goto_win-distr_obj-irrelevant_rule",
    "make_win-distr_obj#only_ball_win",
    "two_room-make_win-distr_obj_rule",
    "make_win-distr_obj-irrelevant_rule#no_ball_win",
    "make_win",
    "two_room-break_stop-make_win-distr_obj",
    "two_room-goto_win-distr_obj_rule",
    "two_room-break_stop-goto_win",
    "two_room-break_stop-goto_win-distr_obj_rule",
    "two_room-break_stop-goto_win-distr_rule",
    "two_room-make_win-distr_win_rule",
    "goto_win",
    "two_room-goto_win-distr_win_rule",
    "make_win-distr_rule",
    "two_room-goto_win-distr_obj",
    "two_room-maybe_break_stop-goto_win-distr_obj",
    "you_win",
    "two_room-break_stop-make_win-distr_obj_rule",
    "make_win-distr_rule#only_ball_win",
    "two_room-make_win-distr_obj-irrelevant_rule",
    "two_room-make_you-make_win",
)

#: ALMA's ``eval_in_distribution`` set: the other 27 ids, in ALMA's shuffled order, i.e. the
#: tail of ``random.seed(42); random.shuffle(list(LEVEL_IDS))``. The *membership* is exact (it
#: follows from the spec's training list). The *order* is the shuffle applied to our
#: reconstructed LEVEL_IDS, and every eval id sits in an unpinned registry slot, so the order is
#: only as good as that reconstruction.
ALMA_EVAL_IDS: Final[tuple[str, ...]] = (
    "two_room-maybe_break_stop-goto_win-distr_rule",
    "two_room-break_stop-make_win-distr_obj-irrelevant_rule",
    "two_room-break_stop-goto_win-distr_obj",
    "make_win-distr_obj-irrelevant_rule#only_ball_win",
    "make_win-distr_obj_rule#only_ball_win",
    "make_win-distr_obj-irrelevant_rule",
    "two_room-make_wall_win",
    "two_room-break_stop-goto_win-distr_obj-irrelevant_rule",
    "two_room-break_stop-make_win",
    "make_win#no_ball_win",
    "two_room-make_win-distr_obj",
    "two_room-make_you",
    "goto_win-distr_obj",
    "two_room-goto_win-distr_obj-irrelevant_rule",
    "two_room-maybe_break_stop-goto_win-distr_obj_rule",
    "goto_win-distr_rule",
    "two_room-maybe_break_stop-goto_win",
    "two_room-make_win-distr_rule",
    "goto_win-distr_obj-irrelevant_rule",
    "make_win-distr_obj_rule",
    "make_win#only_ball_win",
    "make_win-distr_obj#no_ball_win",
    "make_win-distr_rule#no_ball_win",
    "two_room-break_stop-make_win-distr_rule",
    "you_win-fixed_you",
    "goto_win-distr_win_rule",
    "two_room-make_win",
)

# ---------------------------------------------------------------------------------------------
# Decoding an id into a spec (the table that describes the 53 levels)
# ---------------------------------------------------------------------------------------------

Family = Literal["single_room", "two_room", "make_you", "make_wall_win", "you_win"]
WinObject = Literal["any", "no_ball", "only_ball"]
ObjectRegion = Literal["single_room", "left_anywhere", "right_anywhere", "anywhere", "right_room"]


@dataclass(frozen=True)
class LevelSpec:
    """What a level id means: its generator family and the flags that family reads.

    ``break_win_rule``: the win object's word is displaced, so "obj1 is win" must be rebuilt.
    ``break_stop_rule``: "wall is stop" starts broken (two-room only).
    ``object_region``: where obj1 (and obj2) are placed.
    ``distr_obj``: a distractor object obj2 is present.
    ``distr_rule``: a loose word tile naming obj2.
    ``irrelevant_rule``: a loose word tile naming obj3 (an object that is not on the map).
    ``distr_win_rule``: an extra "obj3 is win" rule (obj3 not on the map).
    ``win_object``: restriction on obj1 (the ``#no_ball_win`` / ``#only_ball_win`` variants).
    ``fixed_you``: you_win only, see :func:`_gen_you_win`.
    """

    level_id: str
    family: Family
    break_win_rule: bool = False
    break_stop_rule: bool = False
    object_region: ObjectRegion = "single_room"
    distr_obj: bool = False
    distr_rule: bool = False
    irrelevant_rule: bool = False
    distr_win_rule: bool = False
    win_object: WinObject = "any"
    fixed_you: bool = False

    @property
    def in_balrog(self) -> bool:
        """Whether BALROG's 40-task list includes this level (see :data:`BALROG_LEVEL_IDS`)."""
        single_room_distr_win = self.family == "single_room" and self.distr_win_rule
        return not (self.family == "you_win" or self.win_object != "any" or single_room_distr_win)


@dataclass(frozen=True)
class _Distractors:
    """The flags a distractor suffix stands for."""

    obj: bool = False
    rule: bool = False
    irrelevant: bool = False
    win_rule: bool = False


# Suffix -> distractors, spec §1.7 "Suffix meanings". ``-distr_win_rule`` also brings obj2 and
# its word tile: the two-room table in §1.7 says so explicitly; the single-room
# ``goto_win-distr_win_rule`` is not described beyond the extra rule, and we give it the same
# meaning so that one suffix means one thing in every family.
_SUFFIXES: Final[dict[str, _Distractors]] = {
    "": _Distractors(),
    "-distr_obj": _Distractors(obj=True),
    "-distr_rule": _Distractors(rule=True),
    "-distr_obj_rule": _Distractors(obj=True, rule=True),
    "-distr_obj-irrelevant_rule": _Distractors(obj=True, irrelevant=True),
    "-distr_win_rule": _Distractors(obj=True, rule=True, win_rule=True),
}


@dataclass(frozen=True)
class _FamilyRow:
    """A family prefix whose ids are ``prefix + suffix``."""

    family: Family
    break_win_rule: bool
    break_stop_rule: bool
    object_region: ObjectRegion


# Prefix -> family row (spec §1.7, single-room table and two-room table).
_PREFIXES: Final[dict[str, _FamilyRow]] = {
    "goto_win": _FamilyRow("single_room", False, False, "single_room"),
    "make_win": _FamilyRow("single_room", True, False, "single_room"),
    "two_room-goto_win": _FamilyRow("two_room", False, True, "left_anywhere"),
    "two_room-break_stop-goto_win": _FamilyRow("two_room", False, False, "right_anywhere"),
    "two_room-maybe_break_stop-goto_win": _FamilyRow("two_room", False, False, "anywhere"),
    "two_room-make_win": _FamilyRow("two_room", True, True, "left_anywhere"),
    "two_room-break_stop-make_win": _FamilyRow("two_room", True, False, "right_anywhere"),
}

# Ids that are not prefix + suffix: their own generators.
_SPECIAL: Final[dict[str, LevelSpec]] = {
    "two_room-make_you": LevelSpec("two_room-make_you", "make_you", object_region="right_room"),
    "two_room-make_you-make_win": LevelSpec(
        "two_room-make_you-make_win", "make_you", break_win_rule=True, object_region="right_room"
    ),
    "two_room-make_wall_win": LevelSpec(
        "two_room-make_wall_win",
        "make_wall_win",
        break_win_rule=True,
        object_region="right_room",
        distr_obj=True,
        irrelevant_rule=True,
    ),
    "you_win": LevelSpec("you_win", "you_win"),
    "you_win-fixed_you": LevelSpec("you_win-fixed_you", "you_win", fixed_you=True),
}

_VARIANTS: Final[dict[str, WinObject]] = {"no_ball_win": "no_ball", "only_ball_win": "only_ball"}


def _decode(level_id: str) -> LevelSpec | None:
    """Turn an id into its spec using the tables above; ``None`` if it is not well formed."""
    if level_id in _SPECIAL:
        return _SPECIAL[level_id]
    base, _, variant = level_id.partition("#")
    win_object: WinObject = "any"
    if variant:
        if variant not in _VARIANTS:
            return None
        win_object = _VARIANTS[variant]
    for prefix, row in _PREFIXES.items():
        suffix = base[len(prefix) :]
        if not base.startswith(prefix) or suffix not in _SUFFIXES:
            continue
        distractors = _SUFFIXES[suffix]
        return LevelSpec(
            level_id=level_id,
            family=row.family,
            break_win_rule=row.break_win_rule,
            break_stop_rule=row.break_stop_rule,
            object_region=row.object_region,
            distr_obj=distractors.obj,
            distr_rule=distractors.rule,
            irrelevant_rule=distractors.irrelevant,
            distr_win_rule=distractors.win_rule,
            win_object=win_object,
        )
    return None


def _build_specs() -> dict[str, LevelSpec]:
    specs: dict[str, LevelSpec] = {}
    for level_id in LEVEL_IDS:
        spec = _decode(level_id)
        if spec is None:  # pragma: no cover - guards edits of the tables above
            raise AssertionError(f"level id {level_id!r} does not decode")
        specs[level_id] = spec
    return specs


#: Every level's spec, in LEVEL_IDS order.
LEVEL_SPECS: Final[dict[str, LevelSpec]] = _build_specs()

#: BALROG's 40 tasks (``config.yaml``): all ids except the 10 ``#`` variants, the single-room
#: ``goto_win-distr_win_rule`` and the two you_win ids (53 - 10 - 1 - 2 = 40; the two-room
#: ``two_room-goto_win-distr_win_rule`` *is* in BALROG). Spec §1.6 says BALROG uses 40 of the 53
#: and §1.7 says the single-room distr_win_rule and the you_win levels are not in BALROG; the
#: ``#`` variants are the only other ids left to exclude, which gives exactly 40. Listed in
#: LEVEL_IDS order (BALROG's own listing order is not recorded in the spec).
BALROG_LEVEL_IDS: Final[tuple[str, ...]] = tuple(
    level_id for level_id in LEVEL_IDS if LEVEL_SPECS[level_id].in_balrog
)

# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------

#: ALMA caps the agent loop at 20 actions (``max_trails``). Note the original env's own cap (and
#: so the reward formula's ``max_steps``) stayed 100 under ALMA; callers that want ALMA's exact
#: rewards must keep the env cap at 100 and stop the agent after 20 actions.
ALMA_MAX_STEPS: Final[int] = 20
#: BALROG's episode length: the env default of 100 steps.
BALROG_MAX_STEPS: Final[int] = 100


@dataclass(frozen=True)
class Preset:
    """A named benchmark configuration: a step cap and the levels it plays."""

    name: str
    max_steps: int
    level_ids: tuple[str, ...]


#: ``alma`` plays all 53 ids (its train/eval split is ALMA_TRAIN_IDS / ALMA_EVAL_IDS);
#: ``balrog`` plays its 40.
PRESETS: Final[dict[str, Preset]] = {
    "alma": Preset("alma", ALMA_MAX_STEPS, LEVEL_IDS),
    "balrog": Preset("balrog", BALROG_MAX_STEPS, BALROG_LEVEL_IDS),
}

# ---------------------------------------------------------------------------------------------
# Errors and lookup
# ---------------------------------------------------------------------------------------------


class UnknownLevelError(KeyError, ValueError):
    """Raised for a level id that is not one of :data:`LEVEL_IDS`.

    It is both a ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad argument) so callers
    can catch whichever they expect. The message lists close matches and every known id.
    """

    def __init__(self, level_id: str) -> None:
        self.level_id = level_id
        close = difflib.get_close_matches(level_id, LEVEL_IDS, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        self.message = (
            f"unknown Baba Is AI level id {level_id!r}.{hint} Known ids: {', '.join(LEVEL_IDS)}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message (adding quotes); show it as written.
        return self.message


def level_spec(level_id: str) -> LevelSpec:
    """The spec of ``level_id``; raises :class:`UnknownLevelError` for an unknown id."""
    try:
        return LEVEL_SPECS[level_id]
    except KeyError:
        raise UnknownLevelError(level_id) from None


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
