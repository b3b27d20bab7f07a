"""BALROG's text observation, action list and instruction prompt for Baba Is AI.

The observation reproduces BALROG's ``BabaIsAIWrapper`` text (spec 1.8 and errata 10)::

    Active rules:
    door is win
    baba is you

    Objects on the map:
    rule `door` 2 step to the left and 2 step up
    door 2 step to the left

Quirks kept on purpose, because agents were evaluated on exactly this text:

* only ``object is property`` rules are listed, colour words dropped;
* an object line is written for every cell, in row-major order, whose *top* is a ball, key,
  door or wall object or a non-colour rule tile (``baba`` objects, colour tiles, the border and
  blocks are never listed);
* offsets are from the you-object (see :meth:`BabaGame.you_position`), horizontal part first;
  "steps" is used only when the *signed* offset is > 1, so left and up always say "step";
* an object at offset (0, 0) (the you-object itself when it is not baba) gives an empty line.
"""

from __future__ import annotations

import functools

from pytest_alma.envs.babaisai.engine import BabaGame, GameObject

#: BALROG's actions in index order, with the descriptions shown to the agent.
ACTIONS: dict[str, str] = {
    "idle": "wait for one step",
    "up": "take one step up",
    "right": "take one step to the right",
    "down": "take one step down",
    "left": "take one step to the left",
}
#: Action name -> engine action index (0 idle, 1 up, 2 right, 3 down, 4 left).
ACTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(ACTIONS)}

#: Prefix BALROG puts in front of the observation after it reset a level whose you-rule broke.
YOU_RULE_BROKEN_PREFIX = "[...] IS YOU rule was broken, environment reset"

_LISTED_OBJECTS = frozenset({"ball", "key", "door", "wall"})


def rules_text(game: BabaGame) -> str:
    """The lines under ``Active rules:``: property rules in scan order, colours dropped."""
    return "\n".join(f"{r.obj} is {r.prop}" for r in game.property_rules)


@functools.lru_cache(maxsize=1024)  # offsets are small integers; each step asks for dozens
def offset_text(dx: int, dy: int) -> str:
    """BALROG's description of an offset, e.g. ``2 steps to the right and 1 step up``."""

    def steps(v: int) -> str:
        # The original tests the *signed* value, so left/up offsets always read "step".
        return "steps" if v > 1 else "step"

    parts: list[str] = []
    if dx > 0:
        parts.append(f"{dx} {steps(dx)} to the right")
    elif dx < 0:
        parts.append(f"{-dx} {steps(dx)} to the left")
    if dy > 0:
        parts.append(f"{dy} {steps(dy)} down")
    elif dy < 0:
        parts.append(f"{-dy} {steps(dy)} up")
    return " and ".join(parts)


def _display_name(obj: GameObject) -> str | None:
    """How a stack top is named in the object list, or None when it is not listed."""
    if obj.kind == "word":
        return None if obj.role == "color" else f"rule `{obj.name}`"
    if obj.kind == "object" and obj.name in _LISTED_OBJECTS:
        return obj.name
    return None


def object_lines(game: BabaGame, origin: tuple[int, int]) -> list[str]:
    """One line per listed stack top, row-major, with its offset from ``origin``."""
    ox, oy = origin
    lines: list[str] = []
    for x, y, top in game.iter_tops():
        name = _display_name(top)
        if name is None:
            continue
        dx, dy = x - ox, y - oy
        # BALROG drops the whole line (name included) at offset (0, 0).
        lines.append("" if dx == 0 and dy == 0 else f"{name} {offset_text(dx, dy)}")
    return lines


def observation_text(game: BabaGame) -> str:
    """BALROG's full text observation of ``game``.

    Raises ValueError when there is no visible you-object (BALROG resets the level instead;
    :class:`pytest_alma.envs.babaisai.game_env.BabaEpisode` handles that case).
    """
    origin = game.you_position()
    if origin is None:
        raise ValueError("no visible you-object: the text observation has no reference point")
    objects = "\n".join(object_lines(game, origin))
    return f"Active rules:\n{rules_text(game)}\n\nObjects on the map:\n{objects}"


def instruction_prompt() -> str:
    """System-prompt instructions for an agent playing Baba Is AI (BALROG's content, reworded)."""
    actions = "\n".join(f"{name}: {desc}" for name, desc in ACTIONS.items())
    return f"""You are playing Baba Is You, a puzzle game in which the rules themselves are \
objects on the map that you can move around.

Rules are sentences made of text blocks lined up left to right or top to bottom, in the form \
"object is property" (for example "baba is you" or "door is win"). The object named in a \
"... is you" rule is the one you control. You win by moving the object you control onto an \
object that is "win". Other properties such as "stop" block movement. Text blocks can be \
pushed: pushing a block into line makes a new rule, pushing one out of line breaks a rule, \
and the change takes effect after your move.

The observation lists the active rules and every object and rule block on the map, with its \
position relative to the object you control.

You can take the following actions:
{actions}

Tips:
- Read the active rules first: they tell you what you control and what wins.
- If no rule makes something "win", look for loose text blocks and push them into a rule.
- Blocks move in the direction you push them; plan where each one must end up before moving.
- A rule block cannot be pushed into the outer wall or into another block that cannot move.
- Breaking a "stop" rule lets you walk through what it used to block.
- Objects that are not named in any rule can be walked over.
- Do not break the rule that says what you are: without it the level starts over.
- Count the steps in the offsets carefully and take the shortest path.

PLAY!"""
