"""MiniHack's language action vocabulary: BALROG's 33 named actions, with prompt descriptions.

BALROG exposes a NetHack task to the model through a fixed dictionary of named actions, filtered
to the actions the task's environment allows (Boxoban: 4 cardinal moves; MazeWalk: 8 moves;
Corridor-R3: 8 moves plus open, kick and search; Quest: 32). The names are BALROG's; the
descriptions are ours, written for the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nle import nethack


@dataclass(frozen=True)
class NamedAction:
    """One entry of the vocabulary: the name the model writes, what it does, the NLE action."""

    name: str
    description: str
    nle_action: int


def _moves() -> list[NamedAction]:
    words = {
        "N": "north",
        "E": "east",
        "S": "south",
        "W": "west",
        "NE": "northeast",
        "SE": "southeast",
        "SW": "southwest",
        "NW": "northwest",
    }
    step = [
        NamedAction(word, f"move one step {word}", int(getattr(nethack.CompassDirection, key)))
        for key, word in words.items()
    ]
    far = [
        NamedAction(
            f"far {word}",
            f"move {word} until something interesting is reached",
            int(getattr(nethack.CompassDirectionLonger, key)),
        )
        for key, word in words.items()
    ]
    return step + far


#: Every named action, in BALROG's order (moves, far moves, then the commands).
VOCABULARY: tuple[NamedAction, ...] = (
    *_moves(),
    NamedAction("up", "go up a staircase", int(nethack.MiscDirection.UP)),
    NamedAction("down", "go down a staircase", int(nethack.MiscDirection.DOWN)),
    NamedAction("wait", "rest for one turn, doing nothing", int(nethack.MiscDirection.WAIT)),
    NamedAction("more", "show the rest of a long message", int(nethack.MiscAction.MORE)),
    NamedAction("apply", "apply (use) a tool or item", int(nethack.Command.APPLY)),
    NamedAction("close", "close an adjacent door", int(nethack.Command.CLOSE)),
    NamedAction("open", "open an adjacent door", int(nethack.Command.OPEN)),
    NamedAction("eat", "eat something", int(nethack.Command.EAT)),
    NamedAction("force", "force a lock with a weapon", int(nethack.Command.FORCE)),
    NamedAction("kick", "kick something (a locked door, a monster)", int(nethack.Command.KICK)),
    NamedAction("loot", "loot a box on the floor", int(nethack.Command.LOOT)),
    NamedAction("pickup", "pick up what is here", int(nethack.Command.PICKUP)),
    NamedAction("pray", "pray to the gods for help", int(nethack.Command.PRAY)),
    NamedAction("puton", "put on an accessory (a ring, an amulet)", int(nethack.Command.PUTON)),
    NamedAction("quaff", "quaff (drink) something", int(nethack.Command.QUAFF)),
    NamedAction("search", "search for hidden doors and passages", int(nethack.Command.SEARCH)),
    NamedAction("zap", "zap a wand", int(nethack.Command.ZAP)),
)

BY_NAME: dict[str, NamedAction] = {a.name: a for a in VOCABULARY}

#: BALROG's default for a reply that names no valid action.
DEFAULT_ACTION = "north"


def allowed_actions(env_actions: Sequence[int]) -> tuple[NamedAction, ...]:
    """The vocabulary entries the environment accepts, in vocabulary order."""
    accepted = {int(a) for a in env_actions}
    return tuple(a for a in VOCABULARY if a.nle_action in accepted)


def action_prompt(actions: Sequence[NamedAction]) -> str:
    """The ``Available actions:`` block of the system prompt (one ``name: description`` each)."""
    lines = "\n".join(f"{a.name}: {a.description}" for a in actions)
    return f"Available actions:\n{lines}\n"
