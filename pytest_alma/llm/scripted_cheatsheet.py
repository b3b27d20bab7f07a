"""The scripted model's Dynamic Cheatsheet policy: a TEST DOUBLE, not an LLM.

It answers the two prompts of ``baselines/dynamic_cheatsheet.py``, recognised by the markers in
their system message, with well-formed, deterministic answers derived only from the prompt text
(never from hidden state), so that the baseline can be run and tested offline:

* **curator** (``[alma-baseline:dynamic_cheatsheet/curate]``): the previous sheet (the text inside
  ``<previous_cheatsheet>``) plus one new line summarising the episode inside ``<episode>``,
  ``- In <goal>: <first actions> led to <outcome>``, all between ``<cheatsheet>`` markers. A line
  already on the sheet is not added twice, and the oldest lines are dropped when the sheet would
  pass the character limit the prompt states ("under N characters").
* **synthesis** (``[alma-baseline:dynamic_cheatsheet/synthesize]``): a header naming the task's
  goal and one such line per ``<episode ...>`` block shown, in the order shown, between the
  markers.

The goal is the episode's ``Goal:`` line (else its first observation line), the actions are the
first :data:`SHOWN_ACTIONS` numbered ``<n>. <action> -> <observation>`` lines of
``trajectory_text``, and the outcome is its ``Outcome:`` line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_alma.llm.scripted_policies import Message, last_user_text, system_text

CURATE_MARKER = "[alma-baseline:dynamic_cheatsheet/curate]"
SYNTHESIZE_MARKER = "[alma-baseline:dynamic_cheatsheet/synthesize]"
SHOWN_ACTIONS = 3  # actions named per line
GOAL_CHARS = 80  # a goal is clipped to this in a line
DEFAULT_LIMIT = 12_000  # when the prompt states no limit

_PREVIOUS = re.compile(r"<previous_cheatsheet>\n?(.*)\n?</previous_cheatsheet>", re.DOTALL)
_EPISODE = re.compile(r"<episode\b[^>]*>\n?(.*?)\n?</episode>", re.DOTALL)
_TASK = re.compile(r"<task>\n?(.*?)\n?</task>", re.DOTALL)
_ACTION = re.compile(r"^\d+\. (.*?) -> ", re.MULTILINE)
_LIMIT = re.compile(r"under (\d+) characters")


def _one_line(text: str, max_chars: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= max_chars else flat[: max_chars - 3].rstrip() + "..."


def goal_of(text: str) -> str:
    """The ``Goal:`` line of a task/episode text, else its first observation line, clipped."""
    for line in text.splitlines():
        if line.startswith("Goal:"):
            return _one_line(line[len("Goal:") :], GOAL_CHARS) or "an unnamed goal"
    for line in text.splitlines():
        stripped = line.removeprefix("Observation:").strip()
        if stripped:
            return _one_line(stripped, GOAL_CHARS)
    return "an unnamed task"


def episode_line(episode: str) -> str:
    """``- In <goal>: <first actions> led to <outcome>`` for one ``trajectory_text``."""
    actions = _ACTION.findall(episode)[:SHOWN_ACTIONS]
    done = ", ".join(_one_line(a, 40) for a in actions) if actions else "no actions"
    outcome = "an unknown outcome"
    for line in episode.splitlines():
        if line.startswith("Outcome:"):
            outcome = line[len("Outcome:") :].strip() or outcome
    return f"- In {goal_of(episode)}: {done} led to {outcome}"


def _limit(system: str) -> int:
    found = _LIMIT.search(system)
    return int(found.group(1)) if found else DEFAULT_LIMIT


def curate(system: str, user: str) -> str:
    """The curator's answer: the previous sheet plus this episode's line, within the limit."""
    previous = _PREVIOUS.search(user)
    lines = [ln for ln in (previous.group(1) if previous else "").splitlines() if ln.strip()]
    episodes = _EPISODE.findall(user)
    if episodes:
        new = episode_line(episodes[-1])
        if new not in lines:
            lines.append(new)
    limit = _limit(system)
    # Drop the oldest lines first (never the newest one) until the sheet fits the stated limit.
    while len(lines) > 1 and len("\n".join(lines)) > limit:
        lines.pop(0)
    sheet = "\n".join(lines)
    return f"Updated cheatsheet.\n<cheatsheet>\n{sheet}\n</cheatsheet>"


def synthesize(system: str, user: str) -> str:
    """The synthesis answer: a header for the task and one line per episode shown."""
    task = _TASK.search(user)
    header = f"For {goal_of(task.group(1)) if task else 'this task'}, similar past episodes:"
    lines = [header, *(episode_line(e) for e in _EPISODE.findall(user))]
    return "Task cheatsheet.\n<cheatsheet>\n" + "\n".join(lines) + "\n</cheatsheet>"


class DynamicCheatsheetPolicy:
    """Answers the Dynamic Cheatsheet baseline's curator and synthesis prompts. A TEST DOUBLE."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system message carries one of the baseline's markers."""
        system = system_text(messages)
        return CURATE_MARKER in system or SYNTHESIZE_MARKER in system

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """The curated or synthesised sheet, between ``<cheatsheet>`` markers."""
        system = system_text(messages)
        user = last_user_text(messages)
        if CURATE_MARKER in system:
            return curate(system, user)
        return synthesize(system, user)
