"""A scripted Baba Is AI player: a TEST DOUBLE, not an LLM.

It reads BALROG's text observation (``Active rules:`` / ``Objects on the map:`` with offsets
relative to the player) and answers one of ``idle, up, right, down, left``:

a. If an ``X is win`` rule is active and an object ``X`` is listed, step toward the nearest one
   along the axis with the larger offset (horizontal on ties); if the next cell that way holds a
   rule tile and the other axis has a non-zero offset, take the other axis instead, because pushing
   rule tiles can break the rules.
b. Otherwise, if the retrieved memory in the system prompt holds a list of valid actions, replay
   it: answer element ``k``, where ``k`` is the number of assistant turns so far.
c. Otherwise a pseudo-random non-idle move from a hash of (observation, k).

Rule (b) is what makes a memory design change the scripted agent's behaviour, so the plumbing from
``general_retrieve`` to the prompt can be tested end to end without an LLM.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_alma.llm.scripted_policies import (
    Message,
    assistant_turns,
    last_user_text,
    memory_block,
    system_text,
)

ACTIONS: tuple[str, ...] = ("idle", "up", "right", "down", "left")
MOVES: tuple[str, ...] = ("up", "right", "down", "left")

_OBJECT_LINE = re.compile(r"^(?:rule `(?P<rule>[^`]+)`|(?P<name>[A-Za-z_]+))\s+(?P<where>.+)$")
_HORIZONTAL = re.compile(r"(\d+) steps? to the (left|right)")
_VERTICAL = re.compile(r"(\d+) steps? (up|down)")
_WIN_RULE = re.compile(r"^(\w+) is win$")


@dataclass(frozen=True)
class MapItem:
    """One listed rule tile or object at ``(dx, dy)`` from the player (right and down > 0)."""

    name: str
    rule: bool
    dx: int
    dy: int


@dataclass(frozen=True)
class BabaObservation:
    """The parsed observation text."""

    rules: tuple[str, ...]
    items: tuple[MapItem, ...]


def _offset(where: str) -> tuple[int, int] | None:
    dx = dy = 0
    horizontal = _HORIZONTAL.search(where)
    vertical = _VERTICAL.search(where)
    if horizontal is None and vertical is None:
        return None
    if horizontal is not None:
        dx = int(horizontal.group(1)) * (1 if horizontal.group(2) == "right" else -1)
    if vertical is not None:
        dy = int(vertical.group(1)) * (1 if vertical.group(2) == "down" else -1)
    return dx, dy


def parse_observation(text: str) -> BabaObservation | None:
    """Parse the rules and map items out of ``text``; ``None`` if it is not a Baba observation.

    Lines before ``Active rules:`` (an ``Observation:`` prefix, an invalid-output note) are
    ignored, as are blank lines (an object at offset 0, 0 prints as an empty line).
    """
    start = text.find("Active rules:")
    if start < 0:
        return None
    rules: list[str] = []
    items: list[MapItem] = []
    section = "rules"
    for raw in text[start + len("Active rules:") :].splitlines():
        line = raw.strip().lstrip("-* ").strip()
        if not line:
            continue
        if line.startswith("Objects on the map"):
            section = "objects"
            continue
        if section == "rules":
            rules.append(line.lower())
            continue
        match = _OBJECT_LINE.match(line)
        offset = _offset(line) if match else None
        if match is None or offset is None:
            continue
        rule_word = match.group("rule")
        name = rule_word if rule_word is not None else match.group("name")
        items.append(
            MapItem(name=name.lower(), rule=rule_word is not None, dx=offset[0], dy=offset[1])
        )
    return BabaObservation(rules=tuple(rules), items=tuple(items))


def _step(axis: str, delta: int) -> tuple[str, tuple[int, int]]:
    """The move along ``axis`` toward ``delta`` and the cell it enters."""
    sign = 1 if delta > 0 else -1
    if axis == "x":
        return ("right" if sign > 0 else "left"), (sign, 0)
    return ("down" if sign > 0 else "up"), (0, sign)


def move_toward_win(observation: BabaObservation) -> str | None:
    """Rule (a): the move toward the nearest win object, or ``None`` without one."""
    win_names = {m.group(1) for m in map(_WIN_RULE.match, observation.rules) if m}
    targets = [i for i in observation.items if not i.rule and i.name in win_names]
    if not targets:
        return None
    target = min(targets, key=lambda i: (abs(i.dx) + abs(i.dy), i.dy, i.dx))
    rule_cells = {(i.dx, i.dy) for i in observation.items if i.rule}
    axes = ["x", "y"] if abs(target.dx) >= abs(target.dy) else ["y", "x"]
    axes = [a for a in axes if (target.dx if a == "x" else target.dy) != 0]
    if not axes:
        return None
    move, cell = _step(axes[0], target.dx if axes[0] == "x" else target.dy)
    if cell in rule_cells and len(axes) == 2:
        move, _ = _step(axes[1], target.dx if axes[1] == "x" else target.dy)
    return move


def _action_lists(value: Any, under_action_key: bool = False) -> list[tuple[bool, list[str]]]:
    """Depth-first: every list of valid actions in ``value``, flagged by whether its key (or an
    enclosing key) mentions "action". A list of step dicts with an ``action`` field counts too."""
    found: list[tuple[bool, list[str]]] = []
    if isinstance(value, Mapping):
        for key, child in value.items():
            found.extend(_action_lists(child, under_action_key or "action" in str(key).lower()))
    elif isinstance(value, list) and value:
        if all(isinstance(v, str) and v.strip().lower() in ACTIONS for v in value):
            found.append((under_action_key, [v.strip().lower() for v in value]))
        elif all(
            isinstance(v, Mapping)
            and isinstance(v.get("action"), str)
            and v["action"].strip().lower() in ACTIONS
            for v in value
        ):
            found.append((True, [v["action"].strip().lower() for v in value]))
        else:
            for child in value:
                found.extend(_action_lists(child, under_action_key))
    return found


def remembered_actions(memory: Any) -> list[str] | None:
    """The action list to replay from a memory value (one under an "action" key preferred)."""
    candidates = _action_lists(memory)
    for flagged, actions in candidates:
        if flagged:
            return actions
    return candidates[0][1] if candidates else None


def pseudo_random_move(observation_text: str, step: int) -> str:
    """Rule (c): a non-idle move chosen by a hash of the observation and the step."""
    h = hashlib.sha256(f"{step}\x00{observation_text}".encode()).digest()
    return MOVES[h[0] % len(MOVES)]


class BabaIsAIPolicy:
    """The scripted Baba Is AI player (see the module docstring). A TEST DOUBLE, not an LLM."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system prompt describes Baba Is You / Baba Is AI."""
        text = system_text(messages).lower()
        return "baba is you" in text or "baba is ai" in text

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """Exactly one of :data:`ACTIONS`."""
        observation_text = last_user_text(messages)
        step = assistant_turns(messages)
        observation = parse_observation(observation_text)
        if observation is not None:
            move = move_toward_win(observation)
            if move is not None:
                return move
        actions = remembered_actions(memory_block(system_text(messages)))
        if actions is not None and step < len(actions):
            return actions[step]
        return pseudo_random_move(observation_text, step)

    def alternatives(self, messages: Sequence[Message]) -> Sequence[str]:
        """The moves (never ``idle``), for sampling (see :mod:`scripted_policies`)."""
        return MOVES
