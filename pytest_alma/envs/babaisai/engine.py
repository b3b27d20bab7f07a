"""Game state and step dynamics of Baba Is AI (arXiv 2407.13729), re-implemented from the spec.

The grid is a flat list of cells indexed ``y * width + x``; each cell is a *stack* (a Python list,
bottom first) of :class:`GameObject`. The top of a stack is what the rules, the movement code and
the text observation look at. The outer ring of the grid holds immovable border walls; ``block``
placements behave exactly like them.

Behaviour follows ``/work/shared/specs/environments.md`` section 1 including its errata (1.12),
which say the original engine is the reference for everything deterministic that does not crash.
Where the original crashes, recurses forever or leaks state between steps, this module uses the
"sane" semantics listed below (the only intentional differences):

* every object's ``has_moved`` flag is reset at the start of every non-idle step (implemented
  as a per-step stamp);
* a pull that would re-enter a move already in progress on a *blocked* mover is skipped (the
  original recurses forever);
* a colour-qualified ``you``/``pull`` rule makes the *matching objects* ``stop`` (the original
  makes every object of the type ``stop`` once ``stop`` has been evaluated on a matching one,
  until the next rule extraction);
* a move that could recurse deeper than :data:`MAX_MOVE_DEPTH` nested moves is treated as
  blocked (never reached by a finite board in practice; it only guarantees termination).

As in the original: an object turns only when it really changes cell (to that move's
direction), except that a you-object is turned to the action's direction before its move,
blocked or not; a mover that a nested pull has already moved into its target (it pushed an
object that pulls it) does not end its move there: the rest of the move acts on the cells, so
the win/lose test reads the target's top (the mover itself) and whatever now stands on the
source cell moves on; open/shut destroys both tops without ending the move: the push decision
uses the forward top as it was before the destruction (a destroyed ``push`` top still moves its
cell, whatever now stands there, even nothing, so the chain beyond is pushed), and a destroyed
mover still has its target tested for win/lose and still pulls what is behind it. One more
difference, reachable only from a hand-written layout that stacks an object on a block: borders
and blocks never move (the original would move a block left on top of a source cell). Choices
where the spec is silent: the ``lost`` flag is cleared when the same step also wins; stepping
after the game is done is allowed. Rules are only re-extracted after a step in which a rule
tile moved or was uncovered, which gives the same ruleset as re-extracting after every non-idle
step.

Nothing here uses global random state: the game is fully deterministic given its layout.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Final

from pytest_alma.envs.babaisai.layout import DEFAULT_COLORS, Layout, Placement
from pytest_alma.envs.babaisai.objects import (
    DIR_DOWN,
    DIR_LEFT,
    DIR_RIGHT,
    DIR_UP,
    DOWN,
    IDLE,
    LEFT,
    LOSE,
    MOBILE,
    MOVE,
    N_ACTIONS,
    NO_WIN_LOSE,
    OPEN,
    PROPERTY_BITS,
    PULL,
    PUSH,
    RIGHT,
    SHUT,
    SOLID,
    STOP,
    UP,
    WIN,
    YOU,
    GameObject,
    PropertyRule,
    ReplaceRule,
    Rule,
    StateKey,
    StepOutcome,
    object_from_placement,
)

# Re-exported: the engine is where callers look for the game's pieces.
__all__ = [
    "DIR_DOWN",
    "DIR_LEFT",
    "DIR_RIGHT",
    "DIR_UP",
    "DOWN",
    "IDLE",
    "LEFT",
    "MAX_MOVE_DEPTH",
    "N_ACTIONS",
    "RIGHT",
    "UP",
    "BabaGame",
    "GameObject",
    "PropertyRule",
    "ReplaceRule",
    "Rule",
    "StateKey",
    "StepOutcome",
]

#: action -> facing direction (idle has none).
_ACTION_DIR: Final[tuple[int, ...]] = (-1, DIR_UP, DIR_RIGHT, DIR_DOWN, DIR_LEFT)

#: Nested-move depth after which a move counts as blocked (termination guarantee only).
MAX_MOVE_DEPTH: Final = 400

_DIR_CHARS: Final = "0123"
#: Process-wide source of per-step stamps (identity only; never influences game outcomes).
_STEP_STAMPS: Final = itertools.count(1)


class BabaGame:
    """A Baba Is AI game: the grid of object stacks, the active rules and the step counter.

    Build one with :meth:`from_layout`. The game is deterministic; :meth:`copy` gives an
    independent copy cheaply (search), :meth:`state_key` a hashable canonical state.
    """

    __slots__ = (
        "_deltas",
        "_dir_matters",
        "_grid",
        "_in_progress",
        "_mask_cache",
        "_rule_bits",
        "_rule_cache",
        "_rules",
        "_tops_dirty",
        "done",
        "height",
        "lost",
        "max_steps",
        "step_count",
        "width",
        "won",
    )

    def __init__(self, width: int, height: int, max_steps: int = 100) -> None:
        """An empty bordered grid; use :meth:`from_layout` to build a playable game."""
        if width < 3 or height < 3:
            raise ValueError(f"grid must be at least 3x3 (border included), got {width}x{height}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.width = width
        self.height = height
        self.max_steps = max_steps
        self.step_count = 0
        self.won = False
        self.lost = False
        self.done = False
        # Flat-index offsets per facing direction: right, down, left, up.
        self._deltas: tuple[int, int, int, int] = (1, width, -1, -width)
        self._grid: list[list[GameObject]] = [[] for _ in range(width * height)]
        # Uids of the objects whose move is on the call stack (the pull guard); empty between
        # steps. Uids, not objects: a mover may be replaced by a turned copy mid-move.
        self._in_progress: list[int] = []
        border = GameObject("border", "border", mask=SOLID)
        for x in range(width):
            self._grid[x].append(border)
            self._grid[(height - 1) * width + x].append(border)
        for y in range(1, height - 1):
            self._grid[y * width].append(border)
            self._grid[y * width + width - 1].append(border)
        self._rules: tuple[Rule, ...] = ()
        # OR of the property bits named by any property rule: lets a step skip empty scans.
        self._rule_bits = 0
        # Set when a rule tile may have become or stopped being a stack top; rules can only
        # change then, so extraction (a full grid scan) is skipped on other steps.
        self._tops_dirty = False
        self._mask_cache: dict[tuple[str, str], int] = {}
        self._rule_cache: dict[tuple[str, str, str | None], Rule] = {}
        # Facing only influences the future through "move" objects, which need a "move" tile.
        self._dir_matters = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_layout(cls, layout: Layout, max_steps: int = 100) -> BabaGame:
        """Build the initial game state of ``layout`` and extract its rules."""
        game = cls(layout.width, layout.height, max_steps)
        w, h = layout.width, layout.height
        for p in layout.placements:
            if not (1 <= p.x <= w - 2 and 1 <= p.y <= h - 2):
                raise ValueError(
                    f"placement {p} is outside the interior x 1..{w - 2}, y 1..{h - 2}"
                )
            game._grid[p.y * w + p.x].append(object_from_placement(p))
            if p.kind == "word" and p.name == "move":
                game._dir_matters = True
        game._extract_rules()
        # The extraction only refreshes masks when the ruleset changes; set them all once here.
        game._refresh_masks()
        return game

    def copy(self) -> BabaGame:
        """An independent copy (objects are shared copy-on-write, stacks are copied)."""
        c = BabaGame.__new__(BabaGame)
        c.width = self.width
        c.height = self.height
        c.max_steps = self.max_steps
        c.step_count = self.step_count
        c.won = self.won
        c.lost = self.lost
        c.done = self.done
        c._deltas = self._deltas
        # Objects are shared: the engine never mutates an object's lasting state in place
        # (copy-on-write on turning and on mask changes), so copying the stacks is enough.
        c._grid = list(map(list.copy, self._grid))
        c._in_progress = []
        c._rules = self._rules
        c._rule_bits = self._rule_bits
        c._tops_dirty = self._tops_dirty
        # The caches only depend on the ruleset, which is shared until either copy changes it
        # (then the changed copy builds a fresh dict instead of mutating this one).
        c._mask_cache = self._mask_cache
        c._rule_cache = self._rule_cache
        c._dir_matters = self._dir_matters
        return c

    # ------------------------------------------------------------------ inspection
    @property
    def rules(self) -> tuple[Rule, ...]:
        """Active rules in scan order (row-major over ``is`` tiles, horizontal then vertical)."""
        return self._rules

    @property
    def property_rules(self) -> tuple[PropertyRule, ...]:
        """The ``object is property`` rules among :attr:`rules`, in scan order."""
        return tuple(r for r in self._rules if isinstance(r, PropertyRule))

    def stack(self, x: int, y: int) -> tuple[GameObject, ...]:
        """The objects on cell ``(x, y)``, bottom first."""
        self._check_xy(x, y)
        return tuple(self._grid[y * self.width + x])

    def top(self, x: int, y: int) -> GameObject | None:
        """The top object of cell ``(x, y)``, or None if the cell is empty."""
        self._check_xy(x, y)
        st = self._grid[y * self.width + x]
        return st[-1] if st else None

    def iter_cells(self) -> Iterator[tuple[int, int, tuple[GameObject, ...]]]:
        """Every cell in row-major order as ``(x, y, stack)`` (bottom first, border included)."""
        w = self.width
        for i, st in enumerate(self._grid):
            yield i % w, i // w, tuple(st)

    def iter_tops(self) -> Iterator[tuple[int, int, GameObject]]:
        """The top object of every non-empty cell, row-major, as ``(x, y, top)``.

        What the text observation reads every step; cheaper than :meth:`iter_cells`, which copies
        every stack.
        """
        w = self.width
        for i, st in enumerate(self._grid):
            if st:
                yield i % w, i // w, st[-1]

    def you_position(self) -> tuple[int, int] | None:
        """Where the player is, as BALROG's wrapper sees it.

        The you-type is the object named by the *last* ``X is you`` rule in scan order (colour
        ignored); the position is the first row-major cell whose top object has that type.
        None when there is no such rule or no such visible object (e.g. it is covered).
        """
        you_type = None
        for r in reversed(self._rules):
            if isinstance(r, PropertyRule) and r.prop == "you":
                you_type = r.obj
                break
        if you_type is None:
            return None
        w = self.width
        for i, st in enumerate(self._grid):
            if st:
                t = st[-1]
                if t.kind == "object" and t.name == you_type:
                    return i % w, i // w
        return None

    def to_layout(self) -> Layout:
        """The current grid as a :class:`Layout`.

        Facing directions are not kept; a colour equal to the type's default is written as None
        (so a hand-written layout round-trips unchanged).
        """
        placements: list[Placement] = []
        for x, y, st in self.iter_cells():
            for o in st:
                if o.kind == "border":
                    continue
                if o.kind == "object":
                    color = None if o.color == DEFAULT_COLORS[o.name] else o.color
                    placements.append(Placement(x, y, "object", o.name, color))
                elif o.kind == "word":
                    placements.append(Placement(x, y, "word", o.name))
                else:
                    placements.append(Placement(x, y, "block", "block"))
        return Layout(self.width, self.height, tuple(placements))

    def state_key(self) -> StateKey:
        """A hashable canonical encoding of everything that influences future steps.

        Step counter and win/lose flags are not part of it. Facing directions are included only
        when the level has a ``move`` rule tile, since nothing else ever reads them. Cells
        holding only a border wall or a block are skipped: they never change.
        """
        key: list[int | str] = []
        add = key.append
        with_dir = self._dir_matters
        for i, st in enumerate(self._grid):
            if not st:
                continue
            if with_dir:
                add(i)
                add("".join([o.code + _DIR_CHARS[o.direction] for o in st]))
            elif len(st) == 1:
                code = st[0].code
                if code != "#":
                    add(i)
                    add(code)
            else:
                add(i)
                add("".join([o.code for o in st]))
        return tuple(key)

    def _check_xy(self, x: int, y: int) -> None:
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"cell ({x}, {y}) is outside the {self.width}x{self.height} grid")

    # ------------------------------------------------------------------ dynamics
    def step(self, action: int) -> StepOutcome:
        """Advance one step: 0 idle, 1 up, 2 right, 3 down, 4 left.

        Stepping after the game is done is allowed (the original does not stop either); the
        reward formula then keeps using the growing step counter.
        """
        if not (0 <= action < N_ACTIONS):
            raise ValueError(f"action must be an int in 0..4, got {action!r}")
        self.step_count += 1
        won = lost = False
        if action != IDLE:
            d = _ACTION_DIR[action]
            grid = self._grid
            # A fresh stamp marks "moved in this step": equivalent to resetting every object's
            # has_moved flag (errata 2), without touching every object, and unique across games
            # so that objects shared between copies never see a stale mark.
            stamp = next(_STEP_STAMPS)
            # Stack tops on the border ring are border walls, so only the interior is scanned.
            interior = range(self.width + 1, len(grid) - self.width - 1)
            bits = self._rule_bits
            if bits & YOU:
                # Live row-major scan over stack tops; the last you-object processed decides
                # win/lose (errata 7). Properties are the *old* ruleset throughout.
                for i in interior:
                    st = grid[i]
                    if st:
                        o = st[-1]
                        if o.mask & YOU and o.moved_stamp != stamp:
                            if o.direction != d:
                                # The original turns a you-object to the action before its
                                # move, blocked or not (copy-on-write, as everywhere).
                                o = o.clone()
                                o.direction = d
                                st[-1] = o
                            o.moved_stamp = stamp
                            won, lost = self._move(i, o, d, 0)
            if bits & MOVE:
                # Move-objects, in their own facing direction, even with no you-rule (errata 1).
                for i in interior:
                    st = grid[i]
                    if st:
                        o = st[-1]
                        if o.mask & MOVE and o.moved_stamp != stamp:
                            o.moved_stamp = stamp
                            self._move(i, o, o.direction, 0)
            if self._tops_dirty:
                self._tops_dirty = False
                self._extract_rules()
        if won:
            lost = False  # win beats lose (errata 7)
            # Exactly this operation order (errata 12).
            reward = 1 - 0.9 * (self.step_count / self.max_steps)
        elif lost:
            reward = -1.0
        else:
            reward = 0.0
        done = won or lost or self.step_count >= self.max_steps
        self.won, self.lost, self.done = won, lost, done
        if action != IDLE:
            # Uses the rules extracted in this same step (errata 9).
            self._replace()
        return StepOutcome(reward, won, lost, done)

    def _move(self, i: int, obj: GameObject | None, d: int, depth: int) -> tuple[bool, bool]:
        """Move the top of cell ``i`` (``obj`` on entry, None if empty) one cell in direction ``d``.

        Returns (win, lose). Order per spec 1.5: open/shut, push chain, overlap check, win/lose
        test on the target top, the move itself, then pulling whatever is behind. As in the
        original, the steps after the open/shut check act on the cells, not on ``obj``: the push
        decision reads the forward top as it was *before* open/shut (a destroyed ``push`` top
        still makes the forward cell move, whatever now stands there, even nothing); a mover
        destroyed by open/shut still has its target's top tested and still pulls what is behind;
        when a nested pull has already moved ``obj`` into the target, the target's top is ``obj``
        itself (the win/lose test reads it) and whatever now stands on the source cell moves on.
        Borders and blocks never move, even when one ends up on top of the source cell.
        """
        if depth > MAX_MOVE_DEPTH:
            return NO_WIN_LOSE
        grid = self._grid
        delta = self._deltas[d]
        j = i + delta
        src = grid[i]
        dst = grid[j]
        # The forward top before open/shut: it alone decides whether the forward cell is pushed.
        fwd = dst[-1] if dst else None
        # (a) open/shut: both tops are destroyed and the move goes on with what is left.
        if obj is not None and fwd is not None:
            om = obj.mask
            fm = fwd.mask
            if (om & OPEN and fm & SHUT) or (om & SHUT and fm & OPEN):
                src.pop()
                dst.pop()
                self._tops_dirty = True
                obj = src[-1] if src and src[-1].mask & MOBILE else None
        # The pull guard only knows real movers; a move of an emptied cell registers nothing.
        in_progress = self._in_progress
        if obj is not None:
            in_progress.append(obj.uid)
        # (b) chain pushing, of whatever is on the forward cell now (normally ``fwd``).
        if fwd is not None and fwd.mask & PUSH:
            self._move(j, dst[-1] if dst and dst[-1].mask & MOBILE else None, d, depth + 1)
        # (c) a blocked chain only stops the mover at a solid top (errata 3).
        moved = not dst or not dst[-1].mask & SOLID
        target = dst if moved else src
        # (d) win/lose test on the target's top before moving; win beats lose.
        tm = target[-1].mask if target else 0
        result = (bool(tm & WIN), bool(tm & LOSE))
        # (e) the move itself, of whatever is on top of the source cell now (normally ``obj``).
        # Only an object that really changes cell turns (errata 6), to the move's direction.
        if moved and src and src[-1].mask & MOBILE:
            mover = src.pop()
            if mover.kind == "object" and mover.direction != d:
                # Copy-on-write: copies of the game may share this object.
                mover = mover.clone()
                mover.direction = d
            dst.append(mover)
            if mover.kind == "word" or (src and src[-1].kind == "word"):
                self._tops_dirty = True
        # (f) pull what is behind, even when blocked; skip a re-entrant pull of a mover whose
        # move is still in progress when nothing moved (the original recurses forever there).
        behind = grid[i - delta]
        if behind:
            p = behind[-1]
            if p.mask & PULL and (moved or p.uid not in in_progress):
                self._move(i - delta, p, d, depth + 1)
        if obj is not None:
            in_progress.pop()
        return result

    # ------------------------------------------------------------------ rules
    def _extract_rules(self) -> None:
        """Re-read the ruleset from the rule tiles on stack tops and refresh property masks."""
        grid = self._grid
        w = self.width
        n = len(grid)
        found: list[tuple[str, str, str | None]] = []
        # Rule tiles never sit on the border, so scanning rows 1..h-2 is the full row-major scan.
        for i in range(w, n - w):
            st = grid[i]
            if not st or st[-1].role != "is":
                continue
            x = i % w
            if 1 <= x <= w - 2:
                self._read_rule(grid[i - 1], grid[i + 1], grid[i - 2] if x >= 2 else None, found)
            self._read_rule(
                grid[i - w], grid[i + w], grid[i - 2 * w] if i >= 2 * w else None, found
            )
        cache = self._rule_cache
        rules: list[Rule] = []
        for key in found:
            r = cache.get(key)
            if r is None:
                obj, word, color = key
                r = (
                    PropertyRule(obj, word, color)
                    if word in PROPERTY_BITS
                    else ReplaceRule(obj, word)
                )
                cache[key] = r
            rules.append(r)
        new_rules = tuple(rules)
        if new_rules != self._rules:
            self._rules = new_rules
            self._rule_bits = 0
            for r in new_rules:
                if isinstance(r, PropertyRule):
                    self._rule_bits |= PROPERTY_BITS[r.prop]
            self._refresh_masks()

    def _refresh_masks(self) -> None:
        """Recompute every object's property mask from the current ruleset."""
        # A fresh dict, never a clear(): copies of this game may share the old one.
        self._mask_cache = {}
        for st in self._grid:
            for k, o in enumerate(st):
                if o.kind == "object":
                    mask = self._mask_for(o.name, o.color)
                    if mask != o.mask:
                        # Copy-on-write: other copies of the game may share ``o``.
                        changed = o.clone()
                        changed.mask = mask
                        st[k] = changed

    @staticmethod
    def _read_rule(
        left: list[GameObject],
        right: list[GameObject],
        color: list[GameObject] | None,
        out: list[tuple[str, str, str | None]],
    ) -> None:
        """Try the 4-block colour form, then the 3-block form, on one line through an ``is``."""
        if not left or not right:
            return
        lt = left[-1]
        if lt.role != "object":
            return
        rt = right[-1]
        if color and color[-1].role == "color" and rt.role == "property":
            out.append((lt.name, rt.name, color[-1].name))
        elif rt.role == "property" or rt.role == "object":
            out.append((lt.name, rt.name, None))

    def _mask_for(self, name: str, color: str) -> int:
        """Property bits of an object of this type and colour under the current ruleset."""
        key = (name, color)
        cached = self._mask_cache.get(key)
        if cached is not None:
            return cached
        plain: set[str] = set()
        colored: dict[str, set[str]] = {}
        for r in self._rules:
            if isinstance(r, PropertyRule) and r.obj == name:
                if r.color is None:
                    plain.add(r.prop)
                else:
                    colored.setdefault(r.prop, set()).add(r.color)
        mask = MOBILE
        for prop, bit in PROPERTY_BITS.items():
            colors = colored.get(prop)
            # A colour-qualified rule restricts the property for the whole type (errata 8).
            if (color in colors) if colors is not None else (prop in plain):
                mask |= bit
        for prop in ("you", "pull"):
            colors = colored.get(prop)
            if colors is not None and color in colors:
                mask |= STOP
        if mask & STOP:
            mask |= SOLID
        self._mask_cache[key] = mask
        return mask

    def _replace(self) -> None:
        """Apply ``X is Y`` rules in scan order; the new object goes on top of the old one."""
        grid = self._grid
        for r in self._rules:
            if not isinstance(r, ReplaceRule):
                continue
            for st in grid:
                if st:
                    t = st[-1]
                    if t.kind == "object" and t.name == r.obj:
                        # The original's bug, kept: the old object stays underneath.
                        color = DEFAULT_COLORS[r.target]
                        st.append(
                            GameObject(
                                "object",
                                r.target,
                                color,
                                DIR_RIGHT,
                                self._mask_for(r.target, color),
                            )
                        )
