"""Example design: remember what worked, keyed by the rules in force at the start.

This is the file to copy when you write your own design. It shows the whole API:

- the one class that subclasses ``MemoryDesign`` (a module may hold helpers, but only one
  design class);
- ``general_update(trajectory)``: called once per finished collection episode (and after every
  deployment episode with ``--alma-rollout=sequential``); it may read the whole trajectory;
- ``general_retrieve(task)``: called before each deployment episode; it sees only the task's
  start (first observation, goal, actions) and returns a JSON-serialisable dict that the agent
  sees verbatim in its system prompt (an empty dict shows nothing);
- state on ``self`` that pickles (the built memory is snapshotted and loaded by every worker).

What it does: in Baba Is AI the first block of the observation is the list of active rules
("baba is you", "door is win", ...). Levels that start with the same rules tend to need the same
kind of plan, so the design keeps the action sequences of successful episodes under that rules
text, plus the first moves of failed ones as things that did not work. At retrieval it returns
the shortest successes for the same rules (or, when there are none, for the most similar rules
by word overlap) and a short list of failed openings. It makes no LLM or embedding calls, so its
update and retrieve cost nothing.
"""

from __future__ import annotations

from typing import Any

from pytest_alma import MemoryDesign, TaskStart, Trajectory

MAX_PER_KEY = 5  # keep memory bounded: at most this many successes per rules text
SHOWN = 2  # successes shown to the agent per retrieval
FAILED_PREFIX = 6  # how many first moves of a failed episode to remember
# Bounds that keep the retrieved memory small whatever the episodes contain (the contract
# fuzzer feeds huge observations and odd actions): the agent's memory block is capped.
MAX_PLAN = 50  # actions kept per plan
ACTION_CHARS = 80  # characters kept per action
SOURCE_CHARS = 500  # characters of the rules text shown as the source of the plans


def bounded(actions: list[str]) -> list[str]:
    """At most MAX_PLAN actions of at most ACTION_CHARS characters each."""
    return [a[:ACTION_CHARS] for a in actions[:MAX_PLAN]]


def rules_key(observation: str) -> str:
    """The first paragraph of the observation (Baba Is AI: the active rules)."""
    return observation.strip().split("\n\n", 1)[0].strip()


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the word sets of two rules texts."""
    wa, wb = set(a.split()), set(b.split())
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


class RulesKeyedSuccesses(MemoryDesign):
    """Successful action sequences (and failed openings) keyed by the starting rules."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.successes: dict[str, list[list[str]]] = {}
        self.failures: dict[str, list[list[str]]] = {}

    async def general_update(self, trajectory: Trajectory) -> None:
        if trajectory.error:  # a harness failure says nothing about the game
            return
        key = rules_key(trajectory.start.observation)
        actions = bounded([step.action for step in trajectory.steps])
        if trajectory.success:
            bucket = self.successes.setdefault(key, [])
            if actions not in bucket:
                bucket.append(actions)
                bucket.sort(key=len)  # shortest plans first: they waste fewest steps
                del bucket[MAX_PER_KEY:]
        elif actions:
            bucket = self.failures.setdefault(key, [])
            opening = actions[:FAILED_PREFIX]
            if opening not in bucket:
                bucket.append(opening)
                del bucket[:-MAX_PER_KEY]

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        key = rules_key(task.observation)
        source = key
        plans = self.successes.get(key, [])
        if not plans and self.successes:
            # Fall back to the most similar rules; ties broken by the key text so that the
            # answer does not depend on insertion order.
            source = max(self.successes, key=lambda k: (overlap(k, key), k))
            plans = self.successes[source]
        memory: dict[str, Any] = {}
        if plans:
            memory["successful_action_sequences"] = plans[:SHOWN]
            memory["from_levels_with_rules"] = source[:SOURCE_CHARS]
        failed = self.failures.get(key, [])
        if failed:
            memory["openings_that_failed"] = failed[:SHOWN]
        return memory
