"""The scripted model's ALFWorld policy: a TEST DOUBLE that plans from the goal, not an LLM.

It reads the goal ("Your task is to: put a clean plate in cabinet.") and the list of admissible
commands that ends every observation, keeps track of what it did from its own earlier replies,
and answers with one listed command:

1. holding the goal object: apply the needed treatment (clean / heat / cool with the matching
   appliance, or switch on a desk lamp for "look at ... under the desklamp") once, then
   ``move`` it to the destination, opening the destination first when it is closed, walking
   there when it is not in reach;
2. not holding it: ``take`` it when listed, open the receptacle in front when that is listed,
   otherwise go to the next receptacle not visited yet (in the order the game lists them);
3. nothing applicable: ``look``.

It ignores the memory block. It is deliberately simple: it solves the synthetic test tasks and
ordinary single-object tasks, so that the pipeline can be tested offline; its numbers say
nothing about an LLM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_alma.llm.scripted_policies import Message, last_user_text, message_text, system_text

_ACTIONS_BLOCK = re.compile(r"<Actions>\s*\n(.*?)\n\s*</Actions>", re.S)
_GOAL = re.compile(r"Your task is to:\s*(.+?)(?:\n|$)")
_ARTICLES = {"a", "an", "the", "some", "two"}
#: Treatment words in goals and the appliance that does each.
_TREATMENTS = {
    "clean": ("clean", "sinkbasin"),
    "hot": ("heat", "microwave"),
    "heat": ("heat", "microwave"),
    "cool": ("cool", "fridge"),
}


@dataclass(frozen=True)
class Goal:
    """What an ALFWorld goal asks: move ``obj`` to ``dest``, after ``treatment`` if any."""

    obj: str
    dest: str | None
    treatment: str | None  # "clean", "heat", "cool", "light" or None


def parse_goal(text: str) -> Goal | None:
    """The goal of an ALFWorld task sentence, or None when it is not one of the known forms."""
    words = [w for w in re.findall(r"[a-z]+", text.lower()) if w not in _ARTICLES]
    if not words:
        return None
    if words[0] in ("look", "examine"):
        # "look at book under the desklamp" / "examine the book with the desklamp"
        rest = [w for w in words[1:] if w not in ("at", "under", "with")]
        return Goal(rest[0], None, "light") if rest else None
    treatment: str | None = None
    for word in words:
        if word in _TREATMENTS:
            treatment = _TREATMENTS[word][0]
            break
    split = next((i for i, w in enumerate(words) if w in ("in", "on", "into")), None)
    if split is None or split + 1 >= len(words):
        return None
    before = [w for w in words[:split] if w not in ("put", "it", "and", *_TREATMENTS)]
    if not before:
        return None
    return Goal(obj=before[-1], dest=words[split + 1], treatment=treatment)


def admissible(text: str) -> list[str]:
    """The commands listed in an observation's ``<Actions>`` block (empty when there is none)."""
    blocks = _ACTIONS_BLOCK.findall(text)
    if not blocks:
        return []
    return [line.strip() for line in blocks[-1].splitlines() if line.strip()]


def _mentions(command: str, noun: str) -> bool:
    return re.search(rf"\b{re.escape(noun)}\b", command) is not None


def choose(goal: Goal | None, actions: Sequence[str], history: Sequence[str]) -> str:
    """The next command, given the goal, the listed commands and the commands played so far."""
    if not actions:
        return "look"
    if goal is None:
        return "look" if "look" in actions else actions[0]
    holding = _holding(goal, history)

    def first(prefix: str, *nouns: str) -> str | None:
        for command in actions:
            if command.startswith(prefix) and all(_mentions(command, n) for n in nouns):
                return command
        return None

    if holding:
        if goal.treatment == "light":
            return first("use ", "desklamp") or _explore(actions, history)
        if goal.treatment and not any(h.startswith(f"{goal.treatment} ") for h in history):
            done = first(f"{goal.treatment} ", goal.obj)
            appliance = _TREATMENTS["hot" if goal.treatment == "heat" else goal.treatment][1]
            return done or first("go to ", appliance) or _explore(actions, history)
        assert goal.dest is not None  # only "light" goals have no destination
        return (
            first("move ", goal.obj, goal.dest)
            or first("open ", goal.dest)
            or first("go to ", goal.dest)
            or _explore(actions, history)
        )
    return first("take ", goal.obj) or _open_here(actions, history) or _explore(actions, history)


def _holding(goal: Goal, history: Sequence[str]) -> bool:
    held = False
    for command in history:
        if command.startswith("take ") and _mentions(command.split(" from ")[0], goal.obj):
            held = True
        elif command.startswith("move ") and _mentions(command, goal.obj):
            held = False
    return held


def _open_here(actions: Sequence[str], history: Sequence[str]) -> str | None:
    # Open what we just walked up to (its contents show only once it is open).
    if history and history[-1].startswith("go to "):
        place = history[-1][len("go to ") :]
        if f"open {place}" in actions:
            return f"open {place}"
    return None


def _explore(actions: Sequence[str], history: Sequence[str]) -> str:
    visited = set(history)
    for command in actions:
        if command.startswith("go to ") and command not in visited:
            return command
    return "look" if "look" in actions else actions[0]


class ALFWorldPolicy:
    """Answers ALFWorld conversations (see the module docstring). A TEST DOUBLE."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system prompt is the ALFWorld household prompt."""
        return "agent in a household" in system_text(messages)

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """One command from the last observation's list."""
        texts = [message_text(m) for m in messages]
        goal_match = None
        for text in texts:
            goal_match = _GOAL.search(text) or goal_match
            if goal_match:
                break
        goal = parse_goal(goal_match.group(1)) if goal_match else None
        last_user = next(
            (message_text(m) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        history = [message_text(m).strip() for m in messages if m.get("role") == "assistant"]
        return choose(goal, admissible(last_user), history)

    def alternatives(self, messages: Sequence[Message]) -> Sequence[str]:
        """The last observation's admissible commands, for sampling (see
        :mod:`scripted_policies`)."""
        return admissible(last_user_text(messages))
