"""A scripted MiniHack player: a TEST DOUBLE, not an LLM.

It reads BALROG-style MiniHack text: the system prompt's ``Available actions:`` list (one
``name: description`` per line) and, from the last user message, the ``cursor:`` section
(``(x=<col>, y=<row>)``, tty screen coordinates) and the ``map:`` section (tty rows 1..23, so map
line ``i`` is screen row ``i + 1``). It answers exactly one action name from the prompt's list:

a. Prompts first: ``--More--`` on screen -> ``more``; a "direction?" question (after ``kick``) ->
   the direction of an adjacent closed door ``+``; "This door is locked" with a closed door next
   to the agent -> ``kick``. Each only when the actions involved are available.
b. If stairs down ``>`` are on the map, one step along a shortest path to them.
c. Otherwise explore: one step along a shortest path to the nearest frontier cell (a passable cell
   next to unexplored space ``' '``) the agent has not stood on in this conversation's
   observations. When all of them are visited: ``search`` up to :data:`SEARCH_TURNS` times in a
   row at a dead end (hidden corridors start there), then walk to the reachable dead end (else
   frontier cell) visited longest ago, so the agent tours them instead of pacing between two.
d. Otherwise, or when :data:`STUCK_TURNS` observations in a row found the agent in the same place
   after move replies, a pseudo-random available move from a hash of (observation, step), or
   ``search`` on about half of the steps when it is available.

Paths are breadth-first over the move directions the prompt allows (4 or 8 neighbours, single or
``far`` moves). Passable: everything except walls ``|`` ``-``, unexplored ``' '``, boulders
`````, and water/lava ``}``; traps ``^`` are used only when no path avoids them. Monsters are
passable: walking into one attacks it, which is how MiniHack expects them to be cleared.
A ``|`` or ``-`` that crosses its wall line is taken for an open door (see :meth:`Terrain.is_door`).
Diagonal moves into or out of doors (``+``, open doors, gaps in a wall line, including the agent's
own cell) are never planned, since NetHack refuses them for intact doorways.

The conversation history corrects the map: after a move that left the agent in place with a
"It's a wall." / "It's solid stone." / "in vain" message, the target cell counts as blocked; after
"You can't move diagonally ..." both cells count as doors.

The policy ignores the retrieved memory in the system prompt: MiniHack maps differ per seed, so a
replayed action list would be noise; the Baba Is AI policy is the one that tests memory plumbing.
Malformed or missing sections never raise: the reply is then a valid fallback action.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

from pytest_alma.llm.scripted_policies import (
    Message,
    assistant_turns,
    last_user_text,
    message_text,
    system_text,
)

# The compass moves, (row delta, column delta) with rows growing downward. Orthogonal ones first:
# that order breaks ties, and orthogonal steps are the safer choice near doorways.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "north": (-1, 0),
    "east": (0, 1),
    "south": (1, 0),
    "west": (0, -1),
    "northeast": (-1, 1),
    "southeast": (1, 1),
    "southwest": (1, -1),
    "northwest": (-1, -1),
}
# Used when the system prompt has no readable action list.
DEFAULT_ACTIONS: tuple[str, ...] = tuple(DIRECTIONS)

WALLS = frozenset("|-")
# Cells never planned through: walls, unexplored space/solid rock, boulders, water and lava.
BLOCKED = frozenset("|- `}")
# Cells planned through only when no other path exists.
AVOIDED = frozenset("^")
# NetHack's map is screen rows 1..21; rows 22..23 are the status lines.
MAP_ROWS = 21
# Observations in a row at the same position, while walking, after which rule (d) takes over.
STUCK_TURNS = 6
# Searches in a row at a dead end before moving on: each finds an adjacent hidden corridor with
# probability about 1/7, so 15 find one about 90% of the time.
SEARCH_TURNS = 15

Cell = tuple[int, int]

_CURSOR = re.compile(r"\(\s*x\s*=\s*(-?\d+)\s*,\s*y\s*=\s*(-?\d+)\s*\)")
# The bottom-line fields; matched with their digits so that monsters on the map (``T:``, ``HP:``)
# are not mistaken for a status line.
_STATUS_LINE = re.compile(r"\bDlvl:\d|\bSt:\d+.*\bDx:\d")
# NetHack's answers to a move that did not happen (``mention_walls`` is on in NLE).
_BUMPED = re.compile(r"it's a wall|it's solid stone|in vain|cannot pass|perhaps that's why")
_DIAGONAL_REFUSED = re.compile(r"can't move diagonally")


@dataclass(frozen=True)
class Terrain:
    """The map lines plus what the conversation taught: ``blocked`` cells (a move into them
    failed) and ``doors`` (a diagonal move into or out of them was refused)."""

    lines: tuple[str, ...]
    blocked: frozenset[Cell] = field(default_factory=frozenset)
    doors: frozenset[Cell] = field(default_factory=frozenset)

    def char(self, cell: Cell) -> str:
        """The glyph at ``cell``: ``' '`` past the end of a line, ``''`` off the map."""
        row, col = cell
        if not (0 <= row < len(self.lines)) or col < 0:
            return ""
        line = self.lines[row]
        return line[col] if col < len(line) else " "

    def is_wall(self, cell: Cell) -> bool:
        """A ``|`` or ``-`` glyph (a wall or an open door)."""
        return self.char(cell) in WALLS

    def open_ground(self, cell: Cell) -> bool:
        """A seen cell that is neither a wall, unexplored, a boulder, water, nor a ``+``."""
        ch = self.char(cell)
        return ch not in ("", "+") and ch not in BLOCKED

    def is_door(self, cell: Cell) -> bool:
        """Whether ``cell`` looks like a door or doorway (no diagonal moves into or out of it).

        ``+`` is a closed door (or a spellbook: taking it for a door only costs a detour). NetHack
        draws an open door across its wall line: a ``-`` with walls above and below and none left
        or right (a T-junction of walls has one). Before the wall line is seen, a ``-`` with open
        ground left and right but none above or below counts too (``|`` transposed). Any other
        cell between two walls on one axis and none on the other is a gap in a wall line: a
        doorway, possibly an open door under ``@``.
        """
        if cell in self.doors:
            return True
        ch = self.char(cell)
        if ch == "+":
            return True
        row, col = cell
        up, down = (row - 1, col), (row + 1, col)
        left, right = (row, col - 1), (row, col + 1)
        walls_vertical = self.is_wall(up) and self.is_wall(down)
        walls_horizontal = self.is_wall(left) and self.is_wall(right)
        any_vertical = self.is_wall(up) or self.is_wall(down)
        any_horizontal = self.is_wall(left) or self.is_wall(right)
        if ch == "-":
            return (walls_vertical and not any_horizontal) or (
                self.open_ground(left)
                and self.open_ground(right)
                and not (self.open_ground(up) or self.open_ground(down))
            )
        if ch == "|":
            return (walls_horizontal and not any_vertical) or (
                self.open_ground(up)
                and self.open_ground(down)
                and not (self.open_ground(left) or self.open_ground(right))
            )
        return (walls_vertical and not any_horizontal) or (walls_horizontal and not any_vertical)

    def passable(self, cell: Cell, avoid: bool) -> bool:
        """Whether paths may go through ``cell`` (traps only when ``avoid`` is false)."""
        ch = self.char(cell)
        if ch == "" or cell in self.blocked:
            return False
        if ch in WALLS:
            return self.is_door(cell)
        if ch in BLOCKED:
            return False
        return not (avoid and ch in AVOIDED)

    def step_allowed(self, src: Cell, dst: Cell) -> bool:
        """NetHack refuses diagonal moves into or out of a doorway."""
        diagonal = src[0] != dst[0] and src[1] != dst[1]
        return not diagonal or not (self.is_door(src) or self.is_door(dst))


@dataclass(frozen=True)
class MiniHackObservation:
    """The parsed observation: the map lines (without status lines), the agent's ``(row, col)``
    in them (``None`` when unknown), and the message section joined into one line."""

    grid: tuple[str, ...]
    agent: Cell | None
    message: str


@dataclass(frozen=True)
class History:
    """What the conversation tells beyond the current observation.

    ``steps`` are the earlier observations, in order: where the agent stood (``None`` when it
    could not be read) and the reply given to it (normalised: stripped, lower-cased). ``blocked``
    and ``doors`` are cells learned from refused moves, the current observation's message
    included.
    """

    steps: tuple[tuple[Cell | None, str], ...] = ()
    blocked: frozenset[Cell] = field(default_factory=frozenset)
    doors: frozenset[Cell] = field(default_factory=frozenset)

    @property
    def positions(self) -> tuple[Cell, ...]:
        """The agent's known positions at the earlier observations, in order."""
        return tuple(cell for cell, _ in self.steps if cell is not None)

    def trailing(self, agent: Cell) -> list[str]:
        """The replies of the latest earlier steps spent at ``agent`` without a break."""
        replies: list[str] = []
        for cell, reply in reversed(self.steps):
            if cell != agent:
                break
            replies.append(reply)
        return replies


def _action_name(line: str) -> str:
    name, colon, _ = line.partition(":")
    return name.strip().lstrip("-* ").strip().lower() if colon else ""


def available_actions(system_prompt: str) -> list[str]:
    """The action names listed under ``Available actions:`` (lower-cased, in order).

    Blank lines right after the header are skipped; the list ends at the next blank line. Without
    the header, any ``name: description`` line whose name is a compass move counts; without
    those either, :data:`DEFAULT_ACTIONS`.
    """
    lines = system_prompt.splitlines()
    names: list[str] = []
    for index, line in enumerate(lines):
        if line.strip().lower().rstrip(":").strip() != "available actions":
            continue
        for entry in lines[index + 1 :]:
            if not entry.strip():
                if names:
                    break
                continue
            if name := _action_name(entry):
                names.append(name)
        break
    if not names:
        names = [n for n in map(_action_name, lines) if n.removeprefix("far ") in DIRECTIONS]
    return list(dict.fromkeys(names)) or list(DEFAULT_ACTIONS)


def _section(lines: Sequence[str], header: str) -> int | None:
    """Index of the first line that is exactly ``header`` (ignoring surrounding whitespace)."""
    for index, line in enumerate(lines):
        if line.strip().lower() == header:
            return index
    return None


def parse_observation(text: str) -> MiniHackObservation | None:
    """Parse the map, the agent position and the message out of ``text``.

    ``None`` when there is no ``map:`` section. The agent is the cursor position when that cell
    holds ``@``; otherwise the first ``@`` on the map; otherwise the cursor if it is on the map.
    """
    lines = text.splitlines()
    map_at = _section(lines, "map:")
    if map_at is None:
        return None
    grid: list[str] = []
    for line in lines[map_at + 1 : map_at + 1 + MAP_ROWS]:
        if _STATUS_LINE.search(line):
            break
        grid.append(line)
    terrain = Terrain(tuple(grid))

    message = ""
    message_at = _section(lines, "message:")
    if message_at is not None and message_at < map_at:
        taken: list[str] = []
        for line in lines[message_at + 1 : map_at]:
            if not line.strip():
                break
            taken.append(line.strip())
        message = " ".join(taken)

    cursor: Cell | None = None
    cursor_at = _section(lines, "cursor:")
    if cursor_at is not None:
        match = _CURSOR.search("\n".join(lines[cursor_at + 1 : cursor_at + 4]))
        if match is not None:
            # Screen row y is map line y - 1 (the map starts at screen row 1).
            cursor = (int(match.group(2)) - 1, int(match.group(1)))

    agent: Cell | None = None
    if cursor is not None and terrain.char(cursor) == "@":
        agent = cursor
    else:
        for row, line in enumerate(grid):
            col = line.find("@")
            if col >= 0:
                agent = (row, col)
                break
        if agent is None and cursor is not None and terrain.char(cursor) != "":
            agent = cursor
    return MiniHackObservation(grid=terrain.lines, agent=agent, message=message)


def read_history(messages: Sequence[Message]) -> History:
    """The :class:`History` of a conversation whose last user message is the current observation.

    A reply naming a move, followed by an observation with the agent in the same place and a
    "wall" (or "diagonally") message, marks the target cell blocked (both cells doors).
    """
    observations: list[MiniHackObservation | None] = []
    replies: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "user":
            observations.append(parse_observation(message_text(message)))
            replies.append("")
        elif role == "assistant" and observations:
            replies[-1] = message_text(message).strip().lower()
    blocked: set[Cell] = set()
    doors: set[Cell] = set()
    for index in range(1, len(observations)):
        before, after = observations[index - 1], observations[index]
        move = DIRECTIONS.get(replies[index - 1].removeprefix("far "))
        if before is None or after is None or move is None or after.agent is None:
            continue
        if before.agent != after.agent:
            continue
        here = after.agent
        target = (here[0] + move[0], here[1] + move[1])
        text = after.message.lower()
        if _DIAGONAL_REFUSED.search(text):
            doors.update((here, target))
        elif _BUMPED.search(text):
            blocked.add(target)
    steps = tuple(
        (None if obs is None else obs.agent, reply)
        for obs, reply in zip(observations[:-1], replies[:-1], strict=True)
    )
    return History(steps, frozenset(blocked), frozenset(doors))


def move_names(actions: Iterable[str]) -> dict[str, str]:
    """Compass direction -> the available action that moves that way (single step preferred)."""
    available = set(actions)
    moves: dict[str, str] = {}
    for direction in DIRECTIONS:
        for name in (direction, f"far {direction}"):
            if name in available:
                moves[direction] = name
                break
    return moves


def distances(
    terrain: Terrain, goals: Iterable[Cell], directions: Sequence[str], avoid: bool
) -> dict[Cell, int]:
    """Steps from every reachable cell to the nearest of ``goals`` using ``directions`` moves.

    A breadth-first search backwards from the goals: a cell ``c`` is one step further than ``n``
    when moving from ``c`` in an allowed direction lands on ``n``.
    """
    dist: dict[Cell, int] = {}
    queue: deque[Cell] = deque()
    for goal in goals:
        if goal not in dist:
            dist[goal] = 0
            queue.append(goal)
    while queue:
        cell = queue.popleft()
        for direction in directions:
            dr, dc = DIRECTIONS[direction]
            prev = (cell[0] - dr, cell[1] - dc)
            if prev in dist or not terrain.passable(prev, avoid):
                continue
            if not terrain.step_allowed(prev, cell):
                continue
            dist[prev] = dist[cell] + 1
            queue.append(prev)
    return dist


def step_toward(
    terrain: Terrain, agent: Cell, goals: Sequence[Cell], moves: Mapping[str, str]
) -> str | None:
    """The available move that starts a shortest path from ``agent`` to one of ``goals``.

    Traps are avoided when possible. Ties go to the move ending closest (straight line) to a goal,
    then to the first in :data:`DIRECTIONS` order. ``None`` when no goal is reachable.
    """
    targets = [g for g in goals if g != agent]
    if not targets:
        return None
    directions = list(moves)
    for avoid in (True, False):
        dist = distances(terrain, targets, directions, avoid)
        best: tuple[int, int, int] | None = None
        choice: str | None = None
        for order, direction in enumerate(directions):
            dr, dc = DIRECTIONS[direction]
            nxt = (agent[0] + dr, agent[1] + dc)
            if nxt not in dist or not terrain.step_allowed(agent, nxt):
                continue
            straight = min((nxt[0] - g[0]) ** 2 + (nxt[1] - g[1]) ** 2 for g in targets)
            key = (dist[nxt], straight, order)
            if best is None or key < best:
                best, choice = key, direction
        if choice is not None:
            return moves[choice]
    return None


def frontier(terrain: Terrain) -> list[Cell]:
    """Passable cells (traps included) with unexplored space ``' '`` among their 8 neighbours."""
    cells: list[Cell] = []
    for row, line in enumerate(terrain.lines):
        for col, ch in enumerate(line):
            if ch == "@" or not terrain.passable((row, col), avoid=False):
                continue
            if any(terrain.char((row + dr, col + dc)) == " " for dr, dc in DIRECTIONS.values()):
                cells.append((row, col))
    return cells


def is_dead_end(terrain: Terrain, cell: Cell) -> bool:
    """A cell with at most one passable neighbour (of 8): the end of a corridor."""
    neighbours = ((cell[0] + dr, cell[1] + dc) for dr, dc in DIRECTIONS.values())
    return sum(terrain.passable(n, avoid=False) for n in neighbours) <= 1


def _patrol(
    terrain: Terrain,
    agent: Cell,
    cells: Sequence[Cell],
    history: History,
    moves: Mapping[str, str],
) -> str | None:
    """With every frontier cell visited: head for the reachable dead end (else frontier cell)
    visited longest ago, so that the agent tours them instead of pacing between two."""
    last_visit = {cell: index for index, cell in enumerate(history.positions)}
    reachable = distances(terrain, [agent], list(moves), avoid=False)
    for group in (
        [c for c in reachable if c != agent and is_dead_end(terrain, c)],
        [c for c in cells if c != agent and c in reachable],
    ):
        if group:
            target = min(group, key=lambda c: (last_visit.get(c, -1), c))
            return step_toward(terrain, agent, [target], moves)
    return None


def _adjacent_door(terrain: Terrain, agent: Cell, moves: Mapping[str, str]) -> str | None:
    """The direction (orthogonal first) of a closed door ``+`` next to the agent, if any."""
    for direction in moves:
        dr, dc = DIRECTIONS[direction]
        if terrain.char((agent[0] + dr, agent[1] + dc)) == "+":
            return direction
    return None


def fallback_action(
    observation_text: str, step: int, actions: Sequence[str], avoid: str | None = None
) -> str:
    """Rule (d): a move chosen by a hash of the observation and the step (``search`` instead on
    about half of the steps when available); any listed action when there are no moves at all.
    ``avoid`` (a move that just failed to get anywhere) is left out when there are others."""
    h = hashlib.sha256(f"{step}\x00{observation_text}".encode()).digest()
    moves = [m for m in move_names(actions).values() if m != avoid] or list(
        move_names(actions).values()
    )
    if "search" in actions and moves and h[1] % 2 == 0:
        return "search"
    pool = moves or list(actions) or list(DEFAULT_ACTIONS)
    return pool[h[0] % len(pool)]


def choose_action(
    observation_text: str, actions: Sequence[str], step: int = 0, history: History | None = None
) -> str:
    """The scripted decision for one observation (see the module docstring)."""
    if "--more--" in observation_text.lower() and "more" in actions:
        return "more"
    history = history or History()
    observation = parse_observation(observation_text)
    moves = move_names(actions)
    if observation is None or observation.agent is None or not moves:
        return fallback_action(observation_text, step, actions)
    terrain = Terrain(observation.grid, history.blocked, history.doors)
    agent = observation.agent
    message = observation.message.lower()

    door = _adjacent_door(terrain, agent, moves)
    if door is not None and "direction?" in message:
        return moves[door]
    if door is not None and "door is locked" in message and "kick" in actions:
        return "kick"

    move: str | None = None
    stairs = [
        (r, c) for r, line in enumerate(terrain.lines) for c, ch in enumerate(line) if ch == ">"
    ]
    if stairs:
        move = step_toward(terrain, agent, stairs, moves)
    if move is None:
        cells = frontier(terrain)
        visited = set(history.positions)
        move = step_toward(terrain, agent, [c for c in cells if c not in visited], moves)
        if move is None:
            here = history.trailing(agent)
            searched = len(list(takewhile(lambda reply: reply == "search", here)))
            if "search" in actions and is_dead_end(terrain, agent) and searched < SEARCH_TURNS:
                # Everything in sight is explored: dead ends are where hidden corridors hide.
                return "search"
            move = _patrol(terrain, agent, cells, history, moves)
    trailing = history.trailing(agent)[: STUCK_TURNS - 1]
    stuck = len(trailing) == STUCK_TURNS - 1 and all(
        reply.removeprefix("far ") in DIRECTIONS for reply in trailing
    )
    if move is None or stuck:
        # Something the map does not show keeps the agent in place: shake it loose.
        return fallback_action(observation_text, step, actions, avoid=move)
    return move


class MiniHackPolicy:
    """The scripted MiniHack player (see the module docstring). A TEST DOUBLE, not an LLM."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system prompt mentions MiniHack."""
        return "minihack" in system_text(messages).lower()

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """Exactly one action name from the prompt's ``Available actions:`` list."""
        return choose_action(
            last_user_text(messages),
            available_actions(system_text(messages)),
            step=assistant_turns(messages),
            history=read_history(messages),
        )

    def alternatives(self, messages: Sequence[Message]) -> Sequence[str]:
        """The available single-step moves, for sampling (see :mod:`scripted_policies`)."""
        return list(move_names(available_actions(system_text(messages))).values())
