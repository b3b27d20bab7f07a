"""The scripted model's policy for the Reasoning Bank baseline's prompts. A TEST DOUBLE, not an LLM.

``baselines/reasoning_bank.py`` makes two kinds of chat calls, recognised here by the markers
in their system messages:

- extraction (``[alma-baseline:reasoning_bank/extract]``): the reply is a JSON object
  ``{"memory_items": [...]}`` with one to three items ``{title, description, content}`` built
  from the episode text in the user message: the title from the goal, the content listing the
  actions that led to the success (or the failure, as a pitfall), plus an opening-move item when
  there are two or more actions and a last-move (or repeated-action) item when there are three or
  more. Whether the lessons are strategies or pitfalls is read from the
  ``Outcome used for this extraction:`` line.
- judge (``[alma-baseline:reasoning_bank/judge]``): the reply is
  ``{"reasoning": ..., "status": "success" | "failure"}``, read from the outcome line of the
  episode text: an ``Outcome: success|failure`` line when there is one, otherwise the
  ``Episode end:`` line (success when the game ended the episode and the last reward was
  positive).

Every answer is derived from the prompt text alone (no hidden state), so it is deterministic and
content-dependent, which is what the baseline's tests and offline runs need.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_alma.llm.scripted_policies import Message, last_user_text, system_text

EXTRACT_MARKER = "[alma-baseline:reasoning_bank/extract]"
JUDGE_MARKER = "[alma-baseline:reasoning_bank/judge]"

_LABEL = re.compile(r"Outcome used for this extraction:\s*(success|failure)", re.IGNORECASE)
_GOAL = re.compile(r"^Goal:\s*(.+)$", re.MULTILINE)
_OBSERVATION = re.compile(r"^Observation:\s*(.+)$", re.MULTILINE)
_ACTION = re.compile(r"^\d+\.\s+(.+?) -> ", re.MULTILINE)
_OUTCOME = re.compile(r"^Outcome:\s*(success|failure)\b", re.IGNORECASE | re.MULTILINE)
_ENDING = re.compile(
    r"^Episode end:.*?(?:last step reward\s+(-?[\d.e+-]+))?;?\s*"
    r"the game ended the episode:\s*(yes|no)",
    re.IGNORECASE | re.MULTILINE,
)
_SHOWN_ACTIONS = 12  # actions listed in an item's content before "..."


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _goal(prompt: str) -> str:
    found = _GOAL.search(prompt) or _OBSERVATION.search(prompt)
    return _short(found.group(1), 80) if found else "the task"


def _sequence(actions: Sequence[str]) -> str:
    shown = ", ".join(f"'{a}'" for a in actions[:_SHOWN_ACTIONS])
    more = len(actions) - _SHOWN_ACTIONS
    return shown + (f" and {more} more" if more > 0 else "")


def extraction_items(prompt: str, success: bool) -> list[dict[str, str]]:
    """The one to three memory items the double writes for an episode text."""
    goal = _goal(prompt)
    actions = [a.strip() for a in _ACTION.findall(prompt)]
    n = len(actions)
    if success:
        items = [
            {
                "title": _short(f"How to: {goal}", 100),
                "description": f"A strategy that reached the goal '{goal}' in {n} steps.",
                "content": (
                    f"The actions that led to success were: {_sequence(actions)}."
                    if actions
                    else "The goal was reached without any action."
                ),
            }
        ]
    else:
        items = [
            {
                "title": _short(f"Pitfall: {goal}", 100),
                "description": f"An attempt at '{goal}' that failed after {n} steps.",
                "content": (
                    f"These actions did not reach the goal: {_sequence(actions)}. Do not repeat "
                    "this sequence; try a different approach."
                    if actions
                    else "No action was taken; act instead of waiting."
                ),
            }
        ]
    if n >= 2:
        verb = "worked" if success else "failed"
        items.append(
            {
                "title": _short(f"Opening that {verb}: {actions[0]}", 100),
                "description": f"How a {'successful' if success else 'failed'} attempt began.",
                "content": (
                    f"Starting with '{actions[0]}' then '{actions[1]}' "
                    + ("led to the goal." if success else "did not lead to the goal.")
                ),
            }
        )
    if n >= 3:
        repeated, count = Counter(actions).most_common(1)[0]
        if not success and count >= 3:
            items.append(
                {
                    "title": _short(f"Avoid repeating: {repeated}", 100),
                    "description": "An action repeated without progress.",
                    "content": (
                        f"'{repeated}' was taken {count} times and the goal was not reached."
                    ),
                }
            )
        else:
            items.append(
                {
                    "title": _short(f"Last move: {actions[-1]}", 100),
                    "description": "The final action of the attempt.",
                    "content": (
                        f"The goal was completed by '{actions[-1]}' after {n - 1} earlier actions."
                        if success
                        else f"The attempt ended after '{actions[-1]}' without reaching the goal."
                    ),
                }
            )
    return items


def judge_verdict(prompt: str) -> bool:
    """Success or failure, read from the episode text's outcome (or episode-end) line."""
    outcome = _OUTCOME.search(prompt)
    if outcome:
        return outcome.group(1).lower() == "success"
    ending = _ENDING.search(prompt)
    if not ending:
        return False
    reward_text, ended = ending.group(1), ending.group(2).lower()
    try:
        reward = float(reward_text) if reward_text else 0.0
    except ValueError:
        reward = 0.0
    return ended == "yes" and reward > 0


class ReasoningBankPolicy:
    """Answers Reasoning Bank's extraction and judge prompts (see the module docstring).

    A TEST DOUBLE: its items are mechanical summaries of the episode text, not lessons.
    """

    def matches(self, messages: Sequence[Message]) -> bool:
        """Conversations whose system prompt carries one of the baseline's markers."""
        system = system_text(messages)
        return EXTRACT_MARKER in system or JUDGE_MARKER in system

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """A JSON object: the verdict for the judge prompt, the items for the extraction one."""
        prompt = last_user_text(messages)
        if JUDGE_MARKER in system_text(messages):
            success = judge_verdict(prompt)
            status = "success" if success else "failure"
            return json.dumps(
                {"reasoning": f"Read from the episode's outcome: {status}.", "status": status}
            )
        label = _LABEL.search(prompt)
        if label:
            success = label.group(1).lower() == "success"
        else:
            success = "did not reach" not in system_text(messages).lower()
        return json.dumps({"memory_items": extraction_items(prompt, success)})
