"""A BALROG-style "language observation" of a MiniHack map, built from NLE's own observations.

BALROG got this text from a C++ module of its NLE fork (``nle_language_obsv``), which nle 1.3
does not have. This is our own version, written from what BALROG's text looks like
(``vertical wall near east and west``, ``boulder adjacent southeast and south``, ``fountain very
near eastsoutheast``). It reads three observation keys: ``glyphs``, ``screen_descriptions`` and
``blstats``. The rules (``docs/minihack.md`` has them too):

* **Where the agent is**: ``blstats[NLE_BL_X]``, ``blstats[NLE_BL_Y]`` (indices 0 and 1), a
  column and a row of the 21 x 79 ``glyphs`` map.
* **What is described**: every map cell with something on it, seen now or remembered (NLE does
  not say which). Skipped: the agent's own cell; blank cells (solid rock or unexplored, glyph
  ``S_stone``); room floor (``S_room``, "floor of a room", and ``S_darkroom``, "dark part of a
  room", as BALROG does); any cell whose description is empty or one of :data:`SKIPPED_KINDS`.
* **Kind of a cell**: its ``screen_descriptions`` text (NetHack's farlook text) with a leading
  article ``a``/``an`` removed, e.g. "a boulder" -> "boulder", "jackal", "staircase down". NLE
  calls every wall piece just "wall"; we name a wall piece by how the tty draws it:
  ``|`` -> "vertical wall", ``-`` (horizontal walls, corners, T-walls, the cross wall) ->
  "horizontal wall", so the language and the map agree.
* **Distance word** (:data:`DISTANCE_WORDS`) from the Chebyshev distance ``d`` (the number of
  king moves, which is what a NetHack move covers): ``d = 1`` adjacent, ``2 <= d <= 3`` very
  near, ``4 <= d <= 7`` near, ``d >= 8`` far.
* **Direction** (:data:`COMPASS_WORDS`): the 16-point compass sector of the offset, north being
  up the screen; each sector is 22.5 degrees wide and centred on its word, so (dx, dy) = (2, -1)
  is "eastnortheast". With integer offsets no offset lies on a sector boundary.
* **Lines**: one line per (kind, distance word): ``"<kind> <distance word> <directions>"``. The
  directions are the distinct sectors in which the kind lies at that distance word, joined with
  " and " in clockwise order starting at east (east, eastsoutheast, southeast, ..., south, ...,
  west, ..., north, ..., eastnortheast). Lines are ordered by distance word (adjacent first), then
  by kind name.

Speed: the whole map is handled with numpy, and a call costs less than the NLE step that made the
observation (``benchmarks/bench_minihack.py``). Cells are classified by a per-glyph lookup table;
distance words and sectors come from one precomputed offset table sliced around the agent. A
farlook text is not a function of the glyph in general (a peaceful and a hostile gnome share a
glyph, object names change with identification, a doorway and a broken door share ``S_ndoor``),
so only these are decided by glyph: the skipped glyphs, the wall pieces, and the dungeon features
in ``_CACHED_SYMS`` (corridors, stairs, doors, lava, ...), whose text is read from the first cell
that shows them and then remembered for the process. Every other cell (monsters, objects, traps,
doorways, altars, ...) has its ``screen_descriptions`` row read on every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

#: The map's shape in NLE (``glyphs`` is ROWNO x (COLNO - 1)).
MAP_ROWS: Final = 21
MAP_COLS: Final = 79

# NetHack 3.6 glyph layout as in nle 1.3 (``nle.nethack.GLYPH_CMAP_OFF`` and ``MAX_GLYPH``;
# tests check them). Kept as literals so this module needs numpy only.
GLYPH_CMAP_OFF: Final = 2359
MAX_GLYPH: Final = 5976
# Indices into NetHack's defsyms (display.h order): S_stone, S_vwall .. S_trwall, S_room,
# S_darkroom.
_S_STONE: Final = 0
_S_VWALL, _S_TRWALL = 1, 11
_S_ROOM: Final = 19
_S_DARKROOM: Final = 20
#: Wall pieces the tty draws as ``|`` (S_vwall, S_tlwall, S_trwall); the others draw as ``-``.
_VERTICAL_WALL_SYMS: Final = frozenset({1, 10, 11})

#: Distance words, nearest first, and the largest Chebyshev distance each covers (far: the rest).
DISTANCE_WORDS: Final = ("adjacent", "very near", "near", "far")
DISTANCE_LIMITS: Final = (1, 3, 7)

#: The 16 compass words, counter-clockwise from east (sector k is centred on k * 22.5 degrees).
COMPASS_WORDS: Final = (
    "east",
    "eastnortheast",
    "northeast",
    "northnortheast",
    "north",
    "northnorthwest",
    "northwest",
    "westnorthwest",
    "west",
    "westsouthwest",
    "southwest",
    "southsouthwest",
    "south",
    "southsoutheast",
    "southeast",
    "eastsoutheast",
)
#: Descriptions that never make a line (floor, and unexplored cells, which have none).
SKIPPED_KINDS: Final = frozenset({"", "floor of a room", "dark part of a room"})

VERTICAL_WALL: Final = "vertical wall"
HORIZONTAL_WALL: Final = "horizontal wall"

#: Dungeon features whose farlook text depends only on the glyph, so it is read once per glyph and
#: then looked up: doors (open, closed), iron bars, tree, corridors, stairs, ladders, grave,
#: throne, sink, fountain, water, ice, lava, drawbridges, air. Not in it: S_ndoor (a doorway or
#: a broken door), S_altar (its alignment is part of the text), S_cloud (fog or, on the Plane of
#: Air, a cloudy area), traps (random names while hallucinating), and every monster and object
#: (peaceful/tame, given names, identification).
_CACHED_SYMS: Final = frozenset([*range(13, 19), *range(21, 27), *range(28, 40), 41])

# Cell codes in the glyph table: >= 0 is a kind id (an index into _KIND_NAMES).
_SKIP: Final = -1
_DECODE: Final = -2  # read the cell's screen_descriptions text, every time
_LEARN: Final = -3  # read it the first time; then the glyph's code becomes its kind id
_KEY_BITS: Final = 6  # a cell key is kind << 6 | distance word << 4 | clockwise sector


def _glyph_codes() -> npt.NDArray[np.int16]:
    codes = np.full(MAX_GLYPH + 1, _DECODE, dtype=np.int16)  # + 1: NO_GLYPH == MAX_GLYPH
    for sym in (_S_STONE, _S_ROOM, _S_DARKROOM):
        codes[GLYPH_CMAP_OFF + sym] = _SKIP
    for sym in range(_S_VWALL, _S_TRWALL + 1):
        codes[GLYPH_CMAP_OFF + sym] = 0 if sym in _VERTICAL_WALL_SYMS else 1
    for sym in _CACHED_SYMS:
        codes[GLYPH_CMAP_OFF + sym] = _LEARN
    codes[MAX_GLYPH] = _SKIP
    return codes


def distance_index(dx: int, dy: int) -> int:
    """Index into :data:`DISTANCE_WORDS` for an offset of ``dx`` columns and ``dy`` rows."""
    d = max(abs(dx), abs(dy))
    for index, limit in enumerate(DISTANCE_LIMITS):
        if d <= limit:
            return index
    return len(DISTANCE_LIMITS)


def compass_index(dx: int, dy: int) -> int:
    """Index into :data:`COMPASS_WORDS` for an offset (``dy`` grows downwards, to the south)."""
    angle = np.arctan2(-dy, dx)  # screen rows grow southwards; the compass counts north as +
    return int(np.rint(angle / (np.pi / 8))) % 16


def _offset_table() -> npt.NDArray[np.int64]:
    # Cell (r, c) describes the offset (dx, dy) = (c - MAP_COLS + 1, r - MAP_ROWS + 1); slicing a
    # MAP_ROWS x MAP_COLS window at the agent gives every map cell's key bits in one view.
    dy, dx = np.mgrid[1 - MAP_ROWS : MAP_ROWS, 1 - MAP_COLS : MAP_COLS]
    sector = np.rint(np.arctan2(-dy, dx) / (np.pi / 8)).astype(np.int64) % 16
    # The clockwise rank (east 0, eastsoutheast 1, ..., eastnortheast 15), so that sorted keys
    # list the directions of a line in the documented order.
    clockwise = (16 - sector) % 16
    distance = np.searchsorted(DISTANCE_LIMITS, np.maximum(abs(dx), abs(dy)), side="left")
    table: npt.NDArray[np.int64] = (distance.astype(np.int64) << 4) | clockwise
    return table


# Module state, shared by every call: the glyph table (cached glyphs get their kind id once
# learnt), the kinds named so far by glyph, and a memo of description bytes -> kind name. All
# three are bounded: _CACHED_SYMS caps the first two, _NAMES_CAP the memo.
_GLYPH_CODES: Final = _glyph_codes()
_KIND_NAMES: Final[list[str]] = [VERTICAL_WALL, HORIZONTAL_WALL]
_KIND_IDS: Final[dict[str, int]] = {VERTICAL_WALL: 0, HORIZONTAL_WALL: 1}
_NAMES: Final[dict[bytes, str]] = {}
_NAMES_CAP: Final = 4096
#: COMPASS_WORDS by clockwise rank: east, eastsoutheast, southeast, ..., eastnortheast.
_CLOCKWISE_WORDS: Final = tuple(COMPASS_WORDS[(16 - rank) % 16] for rank in range(16))
_OFFSETS: Final = _offset_table()


def _kind_name(raw: bytes) -> str:
    text = raw.decode("latin-1").strip()
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article) :]
            break
    # Memoised by the description bytes (not by glyph, see the module docstring). The texts come
    # from a finite game vocabulary, but names given in play could add more: keep it bounded.
    if len(_NAMES) >= _NAMES_CAP:
        _NAMES.clear()
    _NAMES[raw] = text
    return text


def _learn(glyph: int, name: str) -> None:
    # A cached glyph's kind, read from its first cell: from now on the glyph table answers. A
    # skipped text is not learnt (it is never expected here): the glyph stays read per cell.
    if name in SKIPPED_KINDS:
        return
    kind = _KIND_IDS.get(name)
    if kind is None:
        kind = _KIND_IDS[name] = len(_KIND_NAMES)
        _KIND_NAMES.append(name)
    _GLYPH_CODES[glyph] = kind


def language_lines(obs: Mapping[str, npt.NDArray[Any]]) -> list[str]:
    """The language observation as lines (see the module docstring for the rules)."""
    glyphs = obs["glyphs"]
    blstats = obs["blstats"]
    rows, cols = glyphs.shape
    # Clamped, so that a bogus position (never seen from NLE) cannot index outside the tables.
    ax = min(max(int(blstats[0]), 0), cols - 1)
    ay = min(max(int(blstats[1]), 0), rows - 1)
    codes = _GLYPH_CODES.take(glyphs.ravel())  # a fresh array: marking the agent's cell is safe
    codes[ay * cols + ax] = _SKIP
    cells = (codes != _SKIP).nonzero()[0]  # flat indices: cheaper than (row, column) pairs
    if cells.size == 0:
        return []
    kinds = codes[cells].astype(np.int64)
    names = list(_KIND_NAMES)  # this call's kind names: the known ones, then any new ones
    todo = (kinds < 0).nonzero()[0]  # _DECODE and _LEARN cells
    if todo.size:
        descriptions = obs["screen_descriptions"]
        width = descriptions.shape[-1]
        raw = descriptions.reshape(-1, width)[cells[todo]]
        # An S<width> view turns each row into one bytes object without its NUL padding.
        texts = raw.view(f"S{width}").ravel().tolist()
        ids = dict(_KIND_IDS)  # a decoded "fountain" must share the line of a cached one
        kind_of: dict[bytes, int] = {}
        for text in set(texts):  # many cells share a text
            name = _NAMES.get(text)
            if name is None:
                name = _kind_name(text)
            if name in SKIPPED_KINDS:
                kind_of[text] = _SKIP
                continue
            if name not in ids:
                ids[name] = len(names)
                names.append(name)
            kind_of[text] = ids[name]
        codes_todo = kinds[todo].tolist()
        kinds[todo] = [kind_of[text] for text in texts]
        # Plain Python from here: typically a handful of cells, where numpy calls cost more.
        if _LEARN in codes_todo:
            flat_glyphs = glyphs.ravel()
            for i, code, text in zip(todo.tolist(), codes_todo, texts, strict=True):
                if code == _LEARN:
                    kind = kind_of[text]
                    _learn(int(flat_glyphs[cells[i]]), names[kind] if kind >= 0 else "")
        if _SKIP in kind_of.values():
            keep = kinds >= 0
            kinds, cells = kinds[keep], cells[keep]
    # The offset table sliced around the agent lines up with the map: one view, no arithmetic.
    window = _OFFSETS[
        MAP_ROWS - 1 - ay : MAP_ROWS - 1 - ay + rows, MAP_COLS - 1 - ax : MAP_COLS - 1 - ax + cols
    ]
    keys = kinds << _KEY_BITS | window.ravel()[cells]
    # The distinct keys, ascending: a presence table is much cheaper than np.unique here, as
    # keys are small (fewer than 64 per kind).
    present = np.zeros(len(names) << _KEY_BITS, dtype=np.bool_)
    present[keys] = True
    # Ascending keys run through kind, then distance word, then clockwise sector, so each
    # (kind, distance word) group is a run with its directions already in clockwise order.
    groups: list[tuple[int, str, list[str]]] = []
    last = -1
    directions: list[str] = []
    for key in present.nonzero()[0].tolist():
        group = key >> 4
        if group != last:
            last = group
            directions = []
            groups.append((group & 3, names[group >> 2], directions))
        directions.append(_CLOCKWISE_WORDS[key & 15])
    groups.sort(key=lambda group: (group[0], group[1]))
    return [f"{name} {DISTANCE_WORDS[d]} {' and '.join(dirs)}" for d, name, dirs in groups]


def language_observation(obs: Mapping[str, npt.NDArray[Any]]) -> str:
    """What is on the map around the agent, one ``"<kind> <distance> <directions>"`` per line.

    ``obs`` needs ``glyphs``, ``blstats`` and ``screen_descriptions``. See the module docstring
    for which cells count, the distance words, the compass words and the order of the lines.
    """
    return "\n".join(language_lines(obs))
