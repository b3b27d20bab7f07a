"""Level layouts: the plain data a Baba Is AI level is built from.

A :class:`Layout` says what sits where before the first step. Level generators produce one from
a seeded ``numpy.random.Generator``; users and tests can write one by hand (see
:func:`pytest_alma.envs.babaisai.layout_text.parse_layout` for the text grid format). The engine
builds its game state from a layout and never looks at how it was made.

Coordinates are ``(x, y)`` with x growing to the right and y growing downwards; ``width`` and
``height`` include the outer ring of border walls, which is implicit (never listed in
``placements``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Object types that rules can control ("flexible" objects in the original).
OBJECT_NAMES: tuple[str, ...] = ("baba", "ball", "key", "door", "wall")
#: Property words, in the original's internal order.
PROPERTY_WORDS: tuple[str, ...] = (
    "you",
    "win",
    "stop",
    "push",
    "lose",
    "pull",
    "move",
    "open",
    "shut",
)
#: Colour words and object colours.
COLOR_NAMES: tuple[str, ...] = ("red", "green", "blue", "purple", "yellow", "grey", "white")
#: The colour an object gets when none is given (and when created by a replacement rule).
DEFAULT_COLORS: dict[str, str] = {
    "baba": "white",
    "ball": "green",
    "key": "blue",
    "door": "red",
    "wall": "grey",
}

PlacementKind = Literal["object", "word", "block"]


@dataclass(frozen=True)
class Placement:
    """One thing put on one cell.

    ``kind`` is ``"object"`` for a rule-controlled object (``name`` in :data:`OBJECT_NAMES`),
    ``"word"`` for a rule tile (``name`` is an object name, ``"is"``, a property word or a
    colour word) and ``"block"`` for an immovable wall that behaves like the border (used inside
    the ``you_win`` levels). ``color`` is the object's colour; ``None`` means the type's default.
    Placements on the same cell stack in list order: the last one is on top.
    """

    x: int
    y: int
    kind: PlacementKind
    name: str
    color: str | None = None


@dataclass(frozen=True)
class Layout:
    """A whole level: its size (border included) and what is placed on the interior cells."""

    width: int
    height: int
    placements: tuple[Placement, ...]
