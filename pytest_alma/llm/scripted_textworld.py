"""The scripted model's TextWorld policy: a TEST DOUBLE that explores, not an LLM.

TextWorld's observation is prose, without a list of commands (as in ALMA), so the policy reads
the prose the way a cautious first-time player would, and never repeats a command:

1. open what is described as closed ("a closed barn door", "a closed toolbox");
2. take an object the goal names that the room mentions;
3. walk through an exit the room mentions ("leading north", "an exit to the east"), preferring
   the direction taken least often so far;
4. otherwise ``look`` (or ``inventory`` once).

It ignores the memory block and wins only small treasure-hunter games by luck; its numbers test
the plumbing, not an LLM.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_alma.llm.scripted_policies import Message, last_user_text, message_text, system_text

_DIRECTIONS = ("north", "east", "south", "west")
_CLOSED = re.compile(r"\bclosed ([a-z][a-z ]{0,40}?)(?=[.,;!]| leading| is| that|\n|$)")
_GOAL = re.compile(r"Your goal:\s*(.+)")
# An object name: one to three words after an article, ending the phrase.
_ARTICLE_OBJECT = re.compile(r"\b(?:a|an|the) ((?:[a-z]+ ){0,2}?[a-z]+)(?=[.,;!]| on | in |\n|$)")
_STOPWORDS = {"the", "a", "an", "to", "of", "in", "on", "and", "your", "you", "it", "then"}


def _goal_words(messages: Sequence[Message]) -> set[str]:
    found = _GOAL.search(system_text(messages))
    if not found:
        return set()
    return {w for w in re.findall(r"[a-z]+", found.group(1).lower()) if w not in _STOPWORDS}


def choose(observation: str, goal_words: set[str], history: Sequence[str]) -> str:
    """The next command for ``observation``, never one already in ``history`` (bar moves)."""
    text = observation.lower()
    tried = set(history)
    for match in _CLOSED.finditer(text):
        command = f"open {match.group(1).strip()}"
        if command not in tried:
            return command
    for match in _ARTICLE_OBJECT.finditer(text):
        name = match.group(1).strip()
        if goal_words & set(name.split()) and f"take {name}" not in tried:
            return f"take {name}"
    mentioned = [d for d in _DIRECTIONS if re.search(rf"\b{d}\b", text)]
    if mentioned:
        used = Counter(h for h in history if h.startswith("go "))
        return min((f"go {d}" for d in mentioned), key=lambda c: (used[c], c))
    return "inventory" if "inventory" not in tried else "look"


class TextWorldPolicy:
    """Answers TextWorld conversations (see the module docstring). A TEST DOUBLE."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system prompt says the agent plays TextWorld."""
        return "playing TextWorld" in system_text(messages)

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """One command (see :func:`choose`)."""
        last_user = next(
            (message_text(m) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        history = [message_text(m).strip() for m in messages if m.get("role") == "assistant"]
        return choose(last_user, _goal_words(messages), history)

    def alternatives(self, messages: Sequence[Message]) -> Sequence[str]:
        """The exits the last observation mentions, ``look`` and ``inventory``, for sampling
        (see :mod:`scripted_policies`)."""
        text = last_user_text(messages).lower()
        exits = [f"go {d}" for d in _DIRECTIONS if re.search(rf"\b{d}\b", text)]
        return [*exits, "look", "inventory"]
