"""The scripted meta-agent: canned analyses, designs and repairs. A TEST DOUBLE, not an LLM.

It answers the search's three prompts (recognised by their role lines in
:mod:`pytest_alma.search.prompts`) deterministically from the prompt's content, so that the
response cache, a resumed search and a re-run all see the same answers:

- **analysis**: a schema-valid review naming the parent design and one of a few canned changes.
- **code generation**: a working design from a small family (keyword-matched episode notes with
  a few parameters derived from the prompt's digest), or, with SEARCH/REPLACE edits requested,
  an edit that changes one constant of the parent.
- **repair**: the code with every line marked ``# scripted-bug: fixable`` removed (lines marked
  ``# scripted-bug: persistent`` stay, so such a design can never be repaired).

Tests steer it with a script: a JSON file named by ``$ALMA_SCRIPTED_META`` holding rules
``{"role": "analysis" | "generate" | "repair", "when": "text", "reply": "...", "first_only":
bool}``. The first rule whose role matches and whose ``when`` occurs in the conversation's first
user message answers (``first_only``: only when the conversation has no assistant turn yet,
i.e. not on a re-ask).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_alma.llm.scripted_policies import Message, digest, message_text, system_text
from pytest_alma.search.prompts import ANALYSIS_ROLE, CODE_ROLE, REPAIR_ROLE

SCRIPT_ENV = "ALMA_SCRIPTED_META"
FIXABLE_MARK = "# scripted-bug: fixable"

_ROLES = {ANALYSIS_ROLE: "analysis", CODE_ROLE: "generate", REPAIR_ROLE: "repair"}

_CHANGES = [
    (
        "High",
        "Key notes on the words of the goal and first observation, not on the task id",
        "Tasks repeat their structure, not their ids.",
    ),
    (
        "High",
        "Keep the actions of failed episodes as openings to avoid",
        "Failures show what wasted steps.",
    ),
    ("Medium", "Show fewer, shorter notes", "Long memory crowds the agent's prompt."),
    ("Medium", "Prefer the shortest successful plans", "Short plans waste fewest steps."),
    ("Low", "Drop notes of episodes cut short by the harness", "They say nothing about the game."),
]

DESIGN_HEAD = '''"""Episode notes matched to a new task (scripted meta-agent: a test double)."""

from __future__ import annotations

import re
from typing import Any

from pytest_alma import MemoryDesign, TaskStart, Trajectory

KEPT_ACTIONS = {kept}
SHOWN = {shown}
MAX_NOTES = {max_notes}
ACTION_CHARS = 60


def words(text: str) -> set[str]:
    """The lower-case words of a text, as a set."""
    return set(re.findall(r"[a-z]+", text.lower()))
'''

#: How notes are keyed: the words a note is matched on.
KEYINGS = (
    '''

def note_keys(start: TaskStart) -> list[str]:
    """Key on everything the agent sees first: the goal and the first observation."""
    return sorted(words(start.goal + " " + start.observation))[:200]
''',
    '''

def note_keys(start: TaskStart) -> list[str]:
    """Key on the first paragraph of the observation (rules, room), else on the goal."""
    first = start.observation.strip().split("\\n\\n", 1)[0]
    keys = words(first) or words(start.goal)
    return sorted(keys)[:200]
''',
    '''

def note_keys(start: TaskStart) -> list[str]:
    """Key on the goal's words, and on the valid actions' words when there is no goal."""
    keys = words(start.goal) or words(" ".join(start.actions))
    return sorted(keys)[:200]
''',
)

#: What is stored after an episode.
STORES = (
    '''

def make_note(trajectory: Trajectory) -> dict[str, Any] | None:
    """Successes only: the actions that won."""
    if trajectory.error or not trajectory.success:
        return None
    return {{
        "keys": note_keys(trajectory.start),
        "outcome": "success",
        "actions": [s.action[:ACTION_CHARS] for s in trajectory.steps[:KEPT_ACTIONS]],
    }}
''',
    '''

def make_note(trajectory: Trajectory) -> dict[str, Any] | None:
    """Successes and failures, with how many steps each took and how many were invalid."""
    if trajectory.error:
        return None
    invalid = sum(1 for s in trajectory.steps if s.invalid)
    return {{
        "keys": note_keys(trajectory.start),
        "outcome": "success" if trajectory.success else "failure",
        "steps": len(trajectory.steps),
        "invalid_steps": invalid,
        "actions": [s.action[:ACTION_CHARS] for s in trajectory.steps[:KEPT_ACTIONS]],
    }}
''',
)

#: How notes are ranked for a new task.
RANKINGS = (
    '''

def rank(notes: list[dict[str, Any]], query: set[str]) -> list[dict[str, Any]]:
    """Most word overlap first (Jaccard), ties by outcome then actions."""

    def overlap(note: dict[str, Any]) -> float:
        keys = set(note["keys"])
        return len(keys & query) / len(keys | query) if keys | query else 0.0

    return sorted(notes, key=lambda n: (-overlap(n), n["outcome"], n["actions"]))
''',
    '''

def rank(notes: list[dict[str, Any]], query: set[str]) -> list[dict[str, Any]]:
    """Notes sharing any word with the task, most recent first; then the rest."""
    related = [n for n in reversed(notes) if query & set(n["keys"])]
    others = [n for n in reversed(notes) if not query & set(n["keys"])]
    return related + others
''',
    '''

def rank(notes: list[dict[str, Any]], query: set[str]) -> list[dict[str, Any]]:
    """Successes before failures, shortest plans first, among notes sharing a word."""
    related = [n for n in notes if query & set(n["keys"])] or list(notes)
    return sorted(related, key=lambda n: (n["outcome"] != "success", len(n["actions"])))
''',
)

DESIGN_CLASS = '''

class EpisodeNotes(MemoryDesign):
    """Notes of past episodes, retrieved for a new task by the words they share."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.notes: list[dict[str, Any]] = []

    async def general_update(self, trajectory: Trajectory) -> None:
        note = make_note(trajectory)
        if note is not None:
            self.notes.append(note)
            del self.notes[:-MAX_NOTES]

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        if not self.notes:
            return {{}}
        query = set(note_keys(task))
        shown = rank(self.notes, query)[:SHOWN]
        notes = [{{k: v for k, v in n.items() if k != "keys"}} for n in shown]
        return {{"similar_episodes": notes}}
'''


def template_design(seed_text: str) -> str:
    """A working design assembled from ``seed_text``'s digest (deterministic).

    Three keyings, two stores and three rankings give 18 structurally different designs (and
    a few constants on top), so that children of different parents rarely collide; when they
    do, the novelty check rejects the second, as it would an LLM's repeat.
    """
    value = int(digest(seed_text, length=8), 16)
    parts = [
        DESIGN_HEAD,
        KEYINGS[value % 3],
        STORES[(value // 3) % 2],
        RANKINGS[(value // 6) % 3],
        DESIGN_CLASS,
    ]
    return "".join(parts).format(
        kept=(8, 12, 20, 30)[(value >> 8) % 4],
        shown=(1, 2, 3)[(value >> 12) % 3],
        max_notes=(50, 100, 200)[(value >> 16) % 3],
    )


def _script() -> list[dict[str, Any]]:
    path = os.environ.get(SCRIPT_ENV)
    if not path:
        return []
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    rules = data.get("rules", data) if isinstance(data, dict) else data
    return [r for r in rules if isinstance(r, dict)]


def _first_user(messages: Sequence[Message]) -> str:
    for message in messages:
        if message.get("role") == "user":
            return message_text(message)
    return ""


_DESIGN_NAME = re.compile(r"## (?:Design|Current design) `([^`]+)`")
_CONSTANT = re.compile(r"^([A-Z_]+) = (\d+)\s*$", re.MULTILINE)
_CODE = re.compile(r"## The design\n```python\n(.*?)\n```", re.DOTALL)


class ScriptedMetaPolicy:
    """The meta-agent's test double (see the module docstring)."""

    def matches(self, messages: Sequence[Message]) -> bool:
        return self._role(messages) is not None

    @staticmethod
    def _role(messages: Sequence[Message]) -> str | None:
        system = system_text(messages)
        for marker, role in _ROLES.items():
            if system.startswith(marker):
                return role
        return None

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        role = self._role(messages)
        first = _first_user(messages)
        fresh = not any(m.get("role") == "assistant" for m in messages)
        for rule in _script():
            if rule.get("role") != role or str(rule.get("when", "")) not in first:
                continue
            if rule.get("first_only") and not fresh:
                continue
            return str(rule.get("reply", ""))
        if role == "analysis":
            return self._analysis(first)
        if role == "generate":
            if "<<<<<<< SEARCH" in system_text(messages) and "## Current design" in first:
                return self._edit(first)
            return "```python\n" + template_design(first) + "```"
        return self._repair(first)

    @staticmethod
    def _analysis(prompt: str) -> str:
        found = _DESIGN_NAME.search(prompt)
        name = found.group(1) if found else "the design"
        value = int(digest(prompt, length=8), 16)
        picked = [_CHANGES[(value + i) % len(_CHANGES)] for i in range(2)]
        return json.dumps(
            {
                "learned_from_parent_change": f"{name}: no earlier change to learn from.",
                "principles": ["Memory should add what the agent cannot see."],
                "pitfalls": ["Long, unfocused notes."],
                "memory_assessment": [
                    {
                        "episode": "1",
                        "label": "Potentially useful",
                        "how_it_can_help": f"{name}'s notes relate to the task's words.",
                    }
                ],
                "content_quality_issues": "Some notes repeat.",
                "structure_and_coherence": "One store, one ranking.",
                "suggested_changes": [{"priority": p, "what": w, "why": y} for p, w, y in picked],
            }
        )

    @staticmethod
    def _edit(prompt: str) -> str:
        code_match = re.search(r"```python\n(.*?)\n```", prompt, re.DOTALL)
        code = code_match.group(1) if code_match else ""
        constant = _CONSTANT.search(code)
        if constant is None:
            return (
                "<<<<<<< SEARCH\n=======\nSCRIPTED_EDIT_MARK = "
                f"{int(digest(prompt, length=4), 16)}\n>>>>>>> REPLACE\n"
            )
        name, value = constant.group(1), int(constant.group(2))
        bump = 1 + int(digest(prompt, length=4), 16) % 7
        return (
            f"<<<<<<< SEARCH\n{constant.group(0).rstrip()}\n=======\n{name} = {value + bump}\n"
            ">>>>>>> REPLACE\n"
        )

    @staticmethod
    def _repair(prompt: str) -> str:
        found = _CODE.search(prompt)
        code = found.group(1) if found else ""
        fixed = "\n".join(line for line in code.splitlines() if FIXABLE_MARK not in line)
        return "```python\n" + fixed + "\n```"
