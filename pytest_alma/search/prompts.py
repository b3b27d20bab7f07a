"""The meta-agent's prompts: analysis, code generation and repair (our own words).

They do what the reference's prompts do (``alma_reference.md`` section 4.4 to 4.6): the analysis
reviews a parent design with its code, its score, sampled episodes with the memory it
retrieved and the grandparent's change with its effect, and answers in a JSON schema; code
generation gets the design API, the context services, the record fields and the rules, and
writes a whole file (or SEARCH/REPLACE edits); repair gets the code and the actual failure
(a traceback or a contract counterexample, not a log).

The first line of each system prompt names its role; the scripted meta-model (a test double)
recognises the roles by these constants, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

ANALYSIS_ROLE = "You are the reviewing engineer of an agent-memory research team."
CODE_ROLE = "You are the engineer who writes memory designs for LLM agents as Python modules."
REPAIR_ROLE = "You are the engineer who repairs a memory design that failed its checks."

#: What memory should strengthen in each environment (given to every meta-agent prompt).
TASK_DESCRIPTIONS: dict[str, str] = {
    "babaisai": (
        "Baba Is AI: grid puzzles whose rules are word blocks on the map ('baba is you', "
        "'door is win'). The agent must read which rules are active, push word blocks to make "
        "or break rules, and reach a win object. Memory helps when it carries over how rules "
        "were perceived and manipulated, and which plans transfer between levels with similar "
        "rules and layouts."
    ),
    "minihack": (
        "MiniHack: NetHack rooms, corridors, mazes and quests in text form (a language "
        "description of what is near, a map, the inventory). The agent must navigate to the "
        "goal staircase, handle doors, monsters, lava and items. Memory helps with spatial "
        "reasoning, long-horizon plans, and avoiding the risks that ended past episodes."
    ),
    "textworld": (
        "TextWorld: parser text adventures (treasure hunting, cooking recipes, coin "
        "collecting). The agent must explore rooms, manipulate containers and objects and follow "
        "goals with several steps. Memory helps when it keeps reusable procedures, what commands "
        "the parser accepts, and which exploration orders worked."
    ),
    "alfworld": (
        "ALFWorld: household tasks in text (put, clean, heat, cool, examine under light). The "
        "agent must find objects in receptacles, change their state and place them. Memory helps "
        "with where objects tend to be, the order of sub-goals per task type, and avoiding "
        "actions that were inadmissible."
    ),
}

DESIGN_API = '''\
A memory design is ONE Python module holding exactly ONE subclass of
`pytest_alma.MemoryDesign`:

    from pytest_alma import MemoryDesign, TaskStart, Trajectory

    class MyMemory(MemoryDesign):
        def __init__(self, ctx):
            super().__init__(ctx)          # keep this: ctx gives the services below
            ...                            # initialise ALL state here

        async def general_update(self, trajectory: Trajectory) -> None:
            """Called once per finished episode (collection; and after every deployment
            episode in sequential mode). May read the whole trajectory."""

        async def general_retrieve(self, task: TaskStart) -> dict:
            """Called before a deployment episode. Sees only the task's start. Returns a
            JSON-serialisable dict that the agent sees verbatim in its system prompt, under
            the header 'relevant experience' ({} shows nothing)."""

Records (frozen dataclasses):
- TaskStart: task (Task: env, task_id, split, seed), observation (str, the first
  observation), goal (str, may be ""), actions (tuple[str, ...], the valid actions).
- Trajectory: start (TaskStart), steps (tuple[Step, ...]), score (float in [0, 1]),
  success (bool), error (str | None: set when the harness cut the episode short; such an
  episode says nothing about the game). trajectory.task is start.task.
- Step: action (str), observation (str, after the action), reward (float), done (bool),
  reply (str, the model's full reply), invalid (bool, the reply held no valid action).

Services on self.ctx (the harness accounts, caches and budgets every call; never create your
own API clients):
- await self.ctx.llm.chat(messages, temperature=None, max_tokens=None, json_mode=False,
  model=None) -> str: one chat completion; messages are [{"role": ..., "content": ...}].
- await self.ctx.embed(texts) -> list[list[float]]: embeddings of a list of strings.
- self.ctx.vector_index() -> VectorIndex: an exact cosine index: add(vector, payload),
  add_many(vectors, payloads), search(vector, k) -> list of (score, payload).
- self.ctx.rng: a seeded random.Random; self.ctx.scratch_dir: a private directory (the only
  place a design may write files).

Rules:
- State on self must pickle (the built memory is snapshotted and loaded by other processes):
  plain Python containers, numpy arrays, VectorIndex. Never store ctx, clients, locks or
  open files on self except through ctx.
- general_retrieve must return a dict of JSON values, and must stay small: the agent's view of
  memory is capped (about 16,000 characters) and cut beyond that. Bound what you store.
- Calls may time out (300 s each) and run under a memory limit; LLM replies may be malformed:
  parse them defensively where they enter, without swallowing real errors.
- Do not import subprocess, socket, networking or FFI modules, do not read environment
  variables, and do not write outside ctx.scratch_dir.
- No placeholders, no hard-coded task ids or task-family names: policies must generalise.
- The agent already sees the current episode's history; memory should add what it cannot see:
  experience from other episodes.
'''


def task_description(envs: list[str]) -> str:
    """The domain paragraphs of the environments being searched."""
    return "\n\n".join(TASK_DESCRIPTIONS.get(env, f"{env}: a text environment.") for env in envs)


ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "learned_from_parent_change",
        "memory_assessment",
        "content_quality_issues",
        "structure_and_coherence",
        "suggested_changes",
    ],
    "properties": {
        "learned_from_parent_change": {"type": "string"},
        "principles": {"type": "array", "items": {"type": "string"}},
        "pitfalls": {"type": "array", "items": {"type": "string"}},
        "memory_assessment": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["episode", "label", "how_it_can_help"],
                "properties": {
                    "episode": {"type": "string"},
                    "label": {
                        "enum": ["Useful", "Potentially useful", "Irrelevant", "Empty or bad"]
                    },
                    "how_it_can_help": {"type": "string"},
                },
            },
        },
        "content_quality_issues": {"type": "string"},
        "structure_and_coherence": {"type": "string"},
        "suggested_changes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["priority", "what", "why"],
                "properties": {
                    "priority": {"enum": ["High", "Medium", "Low"]},
                    "what": {"type": "string", "minLength": 1},
                    "why": {"type": "string"},
                },
            },
        },
    },
}


def analysis_system(envs: list[str]) -> str:
    """The analysis call's system prompt."""
    return f"""{ANALYSIS_ROLE}
A junior engineer wrote the memory design below for an LLM agent that plays text games. Memory
is built from past episodes (general_update) and shown to the agent before a new episode
(general_retrieve returns a dict that the agent reads verbatim). Review it and say what to change
so that the agent succeeds more often.

The environments:
{task_description(envs)}

{DESIGN_API}
Work in this order:
1. If the design came from a change to an earlier design, you are shown that change and how the
   score moved. Say why it helped or hurt; give 2 to 5 principles to keep and 2 to 5 pitfalls.
2. For each sampled episode, label the memory it retrieved: Useful, Potentially useful,
   Irrelevant, or Empty or bad (empty, malformed, truncated), and say why (keyed on the wrong
   thing, too specific to one episode, not summarised, too long, ...).
3. Check the content: duplicates, empty entries, things that do not serialise, layers that do not
   pass structured results to each other. Prefer fixing the structure to adding try/except.
4. Propose concrete code-level changes, each with a priority (High, Medium, Low) and why it should
   raise the score.

Answer with ONE JSON object and nothing else, with these keys:
"learned_from_parent_change" (string), "principles" (list of strings), "pitfalls" (list of
strings), "memory_assessment" (list of {{"episode", "label", "how_it_can_help"}}),
"content_quality_issues" (string), "structure_and_coherence" (string), "suggested_changes"
(non-empty list of {{"priority", "what", "why"}})."""


def analysis_user(
    *,
    name: str,
    source: str,
    score_line: str,
    episodes_text: str,
    parent_change: str | None,
) -> str:
    """The analysis call's user prompt: the design, its score, episodes, the previous change."""
    change = (
        parent_change
        if parent_change
        else "This design has no recorded parent change (it is a seed or written from scratch)."
    )
    return f"""## Design `{name}`
```python
{source}
```

## Its score
{score_line}

## The change that produced it
{change}

## Sampled episodes (with the memory the design retrieved for each)
{episodes_text}
"""


def code_system(envs: list[str], edit_format: str) -> str:
    """The code-generation call's system prompt."""
    output = (
        "Write the WHOLE new module in one ```python fenced block and nothing else after it."
        if edit_format == "full"
        else EDIT_INSTRUCTIONS
    )
    return f"""{CODE_ROLE}
You improve a memory design for an LLM agent that plays text games, following an engineer's
review. The new design must score higher: more episodes won by the agent that reads its memory.

The environments:
{task_description(envs)}

{DESIGN_API}
Design goals:
1. Clear responsibilities: separate parts (classes or functions) for what is stored, how it is
   keyed and how it is retrieved; initialise everything in __init__.
2. Memory that adds knowledge the agent lacks: distilled, deduplicated, short, relevant to the
   new task; never cut text mid-sentence without saying so.
3. Use the services (LLM summaries, embeddings, the vector index) where they pay for themselves:
   every call costs money at every update or retrieval.
4. Clean, typed, readable Python; raise real errors, do not hide them in broad try/except.

{output}"""


EDIT_INSTRUCTIONS = """Reply with SEARCH/REPLACE edits of the current design, each in this form:
<<<<<<< SEARCH
lines copied exactly from the current file
=======
the lines that replace them
>>>>>>> REPLACE
Use as many edits as needed; each SEARCH must match the current file exactly once."""


def code_user(
    *,
    parent_name: str | None,
    parent_source: str | None,
    score_line: str,
    analysis: dict[str, Any] | None,
) -> str:
    """The code-generation call's user prompt (the parent and its review, or from scratch)."""
    if parent_source is None or analysis is None:
        return (
            "There is no design yet. Write a first memory design from scratch, following the "
            "API, the rules and the design goals: one that a review could then improve."
        )
    forwarded = {
        "memory_assessment": analysis.get("memory_assessment", []),
        "suggested_changes": analysis.get("suggested_changes", []),
    }
    return f"""## Current design `{parent_name}`
```python
{parent_source}
```

## Its score
{score_line}

## The review (what to change)
```json
{json.dumps(forwarded, indent=2, ensure_ascii=False)}
```

Write the improved design."""


def repair_system(envs: list[str]) -> str:
    """The repair call's system prompt."""
    return f"""{REPAIR_ROLE}
The memory design below failed a check before evaluation. Find the root cause in the failure and
fix only that; keep the design's behaviour otherwise.

The environments:
{task_description(envs)}

{DESIGN_API}
Write the WHOLE fixed module in one ```python fenced block and nothing else after it."""


def repair_user(*, source: str, stage: str, failure: str) -> str:
    """The repair call's user prompt: the code and the actual failure."""
    return f"""## The design
```python
{source}
```

## What failed: {stage}
```
{failure}
```

Fix the design."""


def score_line(
    reward: float | None,
    low: float | None,
    high: float | None,
    n: int | None,
    baseline: float | None,
) -> str:
    """A score with its interval, and No Memory's for reference."""
    if reward is None:
        return "not scored"
    interval = f" (95% interval {low:.3f} to {high:.3f}, n={n})" if low is not None else ""
    base = f"; No Memory scores {baseline:.3f}" if baseline is not None else ""
    return f"success {reward:.3f}{interval}{base}"
