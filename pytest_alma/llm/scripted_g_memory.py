"""Scripted answers to the G-Memory baseline's internal prompts: a TEST DOUBLE, not an LLM.

``baselines/g_memory.py`` marks each of its system prompts with ``[alma-baseline:g_memory/KIND]``.
This policy answers those four kinds offline, deterministically, and only from the prompt text
(no hidden state), so that the baseline's update path runs end to end without a model:

* ``key_steps``: the step lines (``N. action -> observation [reward r]``) whose reward differs from
  the previous step's, plus the last three steps, as ``- Step N: action`` lines.
* ``fail_reason``: one sentence built from the ``Outcome:`` line and the last step line.
* ``insight_ops``: a JSON object ``{"operations": [...]}``: ``AGREE`` with up to two numbered
  existing insights that share at least two words (4+ letters) with the current trajectory, then
  ``ADD`` one insight naming the goal and the outcome.
* ``merge``: a JSON object ``{"insights": [...]}`` that merges pairs of numbered insights whose
  word sets overlap by at least half (Jaccard), keeping the longer text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_alma.llm.scripted_policies import Message, last_user_text, system_text

MARKER = "[alma-baseline:g_memory/"

_STEP = re.compile(r"^(\d+)\. (.*?) -> (.*) \[reward ([^\]]*)\]$")
_INSIGHT = re.compile(r"^(\d+)\. (.*) \(score (-?\d+)\)$")
_WORD = re.compile(r"[a-z0-9]+")


def _kind(messages: Sequence[Message]) -> str:
    system = system_text(messages)
    start = system.find(MARKER)
    if start < 0:
        return ""
    rest = system[start + len(MARKER) :]
    end = rest.find("]")
    return rest[:end] if end >= 0 else ""


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 4}


def _reward(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _section(text: str, header: str, stops: Sequence[str]) -> str:
    """The text after ``header`` up to the first of ``stops`` ("" when the header is absent)."""
    start = text.find(header)
    if start < 0:
        return ""
    body = text[start + len(header) :]
    ends = [i for i in (body.find(s) for s in stops) if i >= 0]
    return body[: min(ends)] if ends else body


def _line_value(text: str, prefix: str) -> str:
    for line in text.splitlines():
        if line.strip().startswith(prefix):
            return line.strip()[len(prefix) :].strip()
    return ""


def _numbered_insights(text: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = _INSIGHT.match(line.strip())
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return found


def key_steps_reply(prompt: str) -> str:
    """Key steps: reward changes plus the last three steps, in step order."""
    steps = [m for m in (_STEP.match(line.strip()) for line in prompt.splitlines()) if m]
    if not steps:
        return "- No steps were taken."
    chosen: dict[int, str] = {}
    previous = 0.0
    for match in steps:
        reward = _reward(match.group(4))
        if reward != previous:
            chosen[int(match.group(1))] = f"{match.group(2)} (reward became {reward:g})"
        previous = reward
    for match in steps[-3:]:
        chosen.setdefault(int(match.group(1)), match.group(2))
    return "\n".join(f"- Step {n}: {chosen[n]}" for n in sorted(chosen))


def fail_reason_reply(prompt: str) -> str:
    """One sentence from the outcome line and the last step."""
    outcome = _line_value(prompt, "Outcome:") or "failure"
    steps = [m for m in (_STEP.match(line.strip()) for line in prompt.splitlines()) if m]
    if not steps:
        return f"The episode ended in {outcome} without taking any action."
    last = steps[-1]
    seen = " ".join(last.group(3).split()[:12])
    return (
        f"The episode ended in {outcome}: after '{last.group(2)}' the agent saw '{seen}' "
        "and never reached the goal."
    )


def insight_ops_reply(prompt: str) -> str:
    """AGREE with overlapping insights, then ADD one naming the goal and the outcome."""
    existing = _numbered_insights(_section(prompt, "Existing insights:", ("Current trajectory:",)))
    current = _section(prompt, "Current trajectory:", ("Contrasting trajectory",))
    words = _words(current)
    operations: list[dict[str, Any]] = []
    for number, text in existing:
        if len(_words(text) & words) >= 2:
            operations.append({"op": "AGREE", "index": number})
        if len(operations) == 2:
            break
    goal = _line_value(current, "Goal:") or _line_value(current, "Task:") or "this task"
    goal = " ".join(goal.split()[:12])
    outcome = _line_value(current, "Outcome:")
    first_step = _line_value(_section(current, "Key steps:", ("Outcome:",)), "-")
    if outcome.startswith("success"):
        advice = f"repeat what worked ({first_step or 'the same plan'})"
    else:
        reason = _line_value(current, "Failure reason:")
        advice = f"avoid what failed ({' '.join(reason.split()[:14]) or 'the same plan'})"
    operations.append({"op": "ADD", "text": f"When the goal is '{goal}', {advice}."})
    return json.dumps({"operations": operations})


def merge_reply(prompt: str) -> str:
    """Merge pairs of insights whose word sets overlap by at least a half."""
    insights = _numbered_insights(prompt)
    used: set[int] = set()
    merged: list[dict[str, Any]] = []
    for i, (a, text_a) in enumerate(insights):
        if a in used:
            continue
        for b, text_b in insights[i + 1 :]:
            if b in used:
                continue
            wa, wb = _words(text_a), _words(text_b)
            if wa | wb and len(wa & wb) / len(wa | wb) >= 0.5:
                longer = text_a if len(text_a) >= len(text_b) else text_b
                merged.append({"text": longer, "from": [a, b]})
                used.update((a, b))
                break
    return json.dumps({"insights": merged})


class GMemoryPolicy:
    """TEST DOUBLE answering the G-Memory baseline's prompts from the prompt text alone."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Whether the system prompt carries the G-Memory baseline's marker."""
        return MARKER in system_text(messages)

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """The scripted answer for the prompt's kind (see the module docstring)."""
        prompt = last_user_text(messages)
        kind = _kind(messages)
        if kind == "key_steps":
            return key_steps_reply(prompt)
        if kind == "fail_reason":
            return fail_reason_reply(prompt)
        if kind == "insight_ops":
            return insight_ops_reply(prompt)
        if kind == "merge":
            return merge_reply(prompt)
        return json.dumps({"operations": []})
