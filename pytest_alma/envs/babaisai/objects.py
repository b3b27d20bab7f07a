"""The pieces of a Baba Is AI game: property bits, actions, objects and rules.

:mod:`pytest_alma.envs.babaisai.engine` moves these around; this module only says what they are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final, Literal

from pytest_alma.envs.babaisai.layout import (
    COLOR_NAMES,
    DEFAULT_COLORS,
    OBJECT_NAMES,
    PROPERTY_WORDS,
    Placement,
)

#: The (win, lose) result of a move that decided nothing.
NO_WIN_LOSE: Final[tuple[bool, bool]] = (False, False)
#: Process-wide source of object lineage ids (identity only; see :attr:`GameObject.uid`).
_UIDS: Final = itertools.count(1)

# --- property bits -------------------------------------------------------------------------
# Properties are kept as an int bit mask on every object, recomputed only when the ruleset
# changes: the hot path then costs one attribute read and one ``&`` per check.
YOU: Final = 1 << 0
WIN: Final = 1 << 1
STOP: Final = 1 << 2
PUSH: Final = 1 << 3
LOSE: Final = 1 << 4
PULL: Final = 1 << 5
MOVE: Final = 1 << 6
OPEN: Final = 1 << 7
SHUT: Final = 1 << 8
#: Not overlappable: border walls, blocks, rule tiles and ``stop`` objects.
SOLID: Final = 1 << 9
#: Can be moved at all (rule-controlled objects and rule tiles; never borders or blocks).
MOBILE: Final = 1 << 10

#: Rule word -> property bit.
PROPERTY_BITS: Final[dict[str, int]] = {
    "you": YOU,
    "win": WIN,
    "stop": STOP,
    "push": PUSH,
    "lose": LOSE,
    "pull": PULL,
    "move": MOVE,
    "open": OPEN,
    "shut": SHUT,
}
assert tuple(PROPERTY_BITS) == PROPERTY_WORDS

# --- actions and directions ----------------------------------------------------------------
IDLE: Final = 0
UP: Final = 1
RIGHT: Final = 2
DOWN: Final = 3
LEFT: Final = 4
#: Number of actions (idle, up, right, down, left).
N_ACTIONS: Final = 5

#: Facing directions, numbered as in the original: 0 right, 1 down, 2 left, 3 up.
DIR_RIGHT: Final = 0
DIR_DOWN: Final = 1
DIR_LEFT: Final = 2
DIR_UP: Final = 3
ObjectKind = Literal["border", "block", "object", "word"]
WordRole = Literal["", "object", "is", "property", "color"]


def _word_role(name: str) -> WordRole:
    """Which part of speech a rule tile's word is (raises on an unknown word)."""
    if name in OBJECT_NAMES:
        return "object"
    if name == "is":
        return "is"
    if name in PROPERTY_BITS:
        return "property"
    if name in COLOR_NAMES:
        return "color"
    raise ValueError(f"unknown rule word {name!r}")


class GameObject:
    """One thing on the grid.

    Attributes (treat them as read-only outside the engine):

    * ``kind``: ``"border"`` (outer ring), ``"block"`` (interior immovable wall), ``"object"``
      (rule-controlled: baba/ball/key/door/wall) or ``"word"`` (rule tile);
    * ``name``: object type, rule word, ``"border"`` or ``"block"``;
    * ``color``: colour name (objects only; ``""`` otherwise);
    * ``role``: for rule tiles, ``"object"``, ``"is"``, ``"property"`` or ``"color"``;
      ``""`` otherwise;
    * ``direction``: facing direction of objects (0 right, 1 down, 2 left, 3 up);
    * ``mask``: property bits under the current ruleset (see :data:`PROPERTY_BITS`).

    Copies of a game share their objects: the engine never changes an object's lasting state
    (direction, mask) in place but puts a changed clone in the stack instead. Only transient
    per-step bookkeeping (``moved_stamp``) is written in place. ``uid`` names the object's
    lineage: a clone keeps it, so the engine can recognise an object whose move is in progress
    even after it was replaced by a turned copy.
    """

    __slots__ = (
        "code",
        "color",
        "direction",
        "kind",
        "mask",
        "moved_stamp",
        "name",
        "role",
        "uid",
    )

    kind: ObjectKind
    name: str
    color: str
    role: WordRole
    direction: int
    mask: int
    moved_stamp: int
    uid: int
    code: str

    def __init__(
        self,
        kind: ObjectKind,
        name: str,
        color: str = "",
        direction: int = DIR_RIGHT,
        mask: int = 0,
    ) -> None:
        self.kind = kind
        self.name = name
        self.color = color
        self.role = _word_role(name) if kind == "word" else ""
        self.direction = direction
        self.mask = mask
        # Step stamp of this object's own last move (the original's has_moved flag).
        self.moved_stamp = 0
        # Identity only (never influences outcomes): kept by clones, read by the pull guard.
        self.uid = next(_UIDS)
        # Short canonical text used by state keys.
        if kind == "object":
            self.code = f"{name}:{color}"
        elif kind == "word":
            self.code = f"[{name}]"
        else:
            self.code = "#"

    def clone(self) -> GameObject:
        """A copy with the same type, colour, direction, property mask, move stamp and uid."""
        c = GameObject.__new__(GameObject)
        c.kind = self.kind
        c.name = self.name
        c.color = self.color
        c.role = self.role
        c.direction = self.direction
        c.mask = self.mask
        c.moved_stamp = self.moved_stamp
        c.uid = self.uid
        c.code = self.code
        return c

    def has(self, prop: str) -> bool:
        """Whether the object currently has property ``prop`` (a rule word such as ``"win"``)."""
        return bool(self.mask & PROPERTY_BITS[prop])

    def __repr__(self) -> str:
        if self.kind == "object":
            return f"<{self.name}:{self.color} dir={self.direction}>"
        if self.kind == "word":
            return f"<[{self.name}]>"
        return f"<{self.kind}>"


@dataclass(frozen=True)
class PropertyRule:
    """``[color] obj is prop``: objects of type ``obj`` (of colour ``color``, if set) have it."""

    obj: str
    prop: str
    color: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.color} " if self.color else ""
        return f"{prefix}{self.obj} is {self.prop}"


@dataclass(frozen=True)
class ReplaceRule:
    """``obj is target``: after each non-idle step every top ``obj`` gets a new ``target`` on it."""

    obj: str
    target: str

    def __str__(self) -> str:
        return f"{self.obj} is {self.target}"


Rule = PropertyRule | ReplaceRule
#: What :meth:`BabaGame.state_key` returns.
StateKey = tuple[int | str, ...]


@dataclass(frozen=True)
class StepOutcome:
    """Result of one :meth:`BabaGame.step`."""

    reward: float
    won: bool
    lost: bool
    done: bool


# Rule tiles never change properties: always push, never overlappable.
WORD_MASK: Final = PUSH | SOLID | MOBILE


def object_from_placement(p: Placement) -> GameObject:
    """Turn one layout placement into a game object (validating names and colours)."""
    if p.kind == "object":
        if p.name not in OBJECT_NAMES:
            raise ValueError(f"unknown object {p.name!r} at ({p.x}, {p.y}); use {OBJECT_NAMES}")
        color = p.color if p.color is not None else DEFAULT_COLORS[p.name]
        if color not in COLOR_NAMES:
            raise ValueError(f"unknown colour {color!r} at ({p.x}, {p.y}); use {COLOR_NAMES}")
        # Mask filled in by the rule extraction that follows construction.
        return GameObject("object", p.name, color)
    if p.kind == "word":
        try:
            return GameObject("word", p.name, mask=WORD_MASK)
        except ValueError:
            raise ValueError(f"unknown rule word {p.name!r} at ({p.x}, {p.y})") from None
    if p.kind == "block":
        return GameObject("block", "block", mask=SOLID)
    raise ValueError(f"unknown placement kind {p.kind!r} at ({p.x}, {p.y})")
