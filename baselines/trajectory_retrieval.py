"""Trajectory retrieval: show the agent the most similar past episode, step by step.

Papers: exemplar memory keyed by task similarity, as in Synapse (Zheng et al., ICLR 2024,
https://openreview.net/forum?id=Pc8AU1aF5e) and the trajectory store of ExpeL (Zhao et al.,
AAAI 2024). This is the "Trajectory Retrieval" baseline of ALMA (arXiv 2602.07755; the
reference's ``memo_archive/baseline/memo_structure_similarity.py``).

What it stores: one entry per distinct task start (the goal and first observation,
:func:`pytest_alma.memory.task_text`), holding a readable, bounded text of the episode
(:func:`pytest_alma.memory.trajectory_text`, at most ``TRAJECTORY_CHARS`` characters: the task,
each action with its clipped observation, the outcome). Successes and failures are both kept, as
in ALMA. The entry's key is embedded once, when it is first stored, into a
:class:`~pytest_alma.memory.VectorIndex`.

What it retrieves: the ``K`` (default 1, as ALMA) stored episodes whose keys are most
cosine-similar to the new task's start, only those with similarity strictly above ``THRESHOLD``
(0.3, as ALMA), as ``{"retrieved_similar_tasks": [{"similarity": s, "trajectory": text}, ...]}``
(best first). An empty store, or no entry above the threshold, gives ``{}``.

Cost per call (exact; the harness counts them):

- ``general_update``: 0 chat calls + 1 embed call (of 1 text). It is 0 chat + 0 embed when the
  trajectory has ``error`` set (skipped) or when its task start is already stored (the key, and
  so its embedding, is unchanged; only the entry is replaced).
- ``general_retrieve``: 0 chat calls + 1 embed call (of 1 text: the query), whatever the store
  size; 0 chat + 0 embed when the store is empty.

It makes no chat calls, so it has no internal model (``config["model"]`` is ``None``).

Where it deliberately differs from the ALMA port, and why:

- Fixes the port's KeyError: below the threshold, on an empty store, or on an unusable
  embedding, the port indexed its dict with ``None`` and crashed the episode; this returns
  ``{}`` (spec: reference §5.2 and bug 8).
- Fixes the port's re-embedding of the whole store on every retrieval (N+1 embeddings per
  call, O(N) tokens): keys are embedded once at update, and retrieval embeds only the query.
- The key is the task's goal and first observation (``task_text``), not the concatenation of
  every ``init`` field; the port's key included ALFWorld's whole admissible-action list, which
  drowns the similarity in action names shared by every task.
- The stored episode is a bounded readable text, not the raw step dicts: the port injected
  whole trajectories unbounded into the prompt (bug 17, context overflow blamed on the design).
- A later episode of the same start replaces the stored one (as the port's dict overwrite),
  except that a failure never replaces a success: a success is the more useful exemplar.
- Episodes cut short by a harness failure (``trajectory.error``) are not stored: they say
  nothing about the task.
- ``K`` may be raised above 1 (a list is returned either way).
"""

from __future__ import annotations

from typing import Any

from pytest_alma import MemoryDesign, TaskStart, Trajectory
from pytest_alma.memory import VectorIndex, task_text, trajectory_text, usable_vector

K = 1  # ALMA's top-1
THRESHOLD = 0.3  # ALMA keeps a match only when cosine > 0.3 (strictly)
TRAJECTORY_CHARS = 4000  # bound on one stored episode's text (~1000 tokens)
KEY_CHARS = 2000  # bound on the embedded key (goal + first observation)


class TrajectoryRetrieval(MemoryDesign):
    """Past episodes keyed by an embedding of their task start; top-k by cosine at retrieval."""

    k: int = K
    threshold: float = THRESHOLD
    trajectory_chars: int = TRAJECTORY_CHARS

    def __init__(self, ctx: Any = None) -> None:
        super().__init__(ctx)
        self.config: dict[str, Any] = {
            "k": self.k,
            "threshold": self.threshold,
            "trajectory_chars": self.trajectory_chars,
            "key_chars": KEY_CHARS,
            "model": None,  # no chat calls
        }
        self.index = VectorIndex()  # one row per entry; the row id is the entry's position
        self.entries: list[dict[str, Any]] = []  # {"key", "success", "score", "trajectory"}
        self.slot_by_key: dict[str, int] = {}

    def _store(self, slot: int, key: str, trajectory: Trajectory) -> None:
        entry = {
            "key": key,
            "success": bool(trajectory.success),
            "score": float(trajectory.score),
            "trajectory": trajectory_text(trajectory, max_chars=self.trajectory_chars),
        }
        if slot == len(self.entries):
            self.entries.append(entry)
        elif not (self.entries[slot]["success"] and not trajectory.success):
            self.entries[slot] = entry

    async def general_update(self, trajectory: Trajectory) -> None:
        """Store the episode under its task start (embedding the start once, when it is new)."""
        if trajectory.error:
            return
        key = task_text(trajectory.start, KEY_CHARS)
        slot = self.slot_by_key.get(key)
        if slot is not None:
            # Same start, same key text, same embedding: nothing to embed again.
            self._store(slot, key, trajectory)
            return
        vectors = await self.ctx.llm.embed([key])
        # Another update of the same start may have finished while this one awaited.
        slot = self.slot_by_key.get(key)
        if slot is not None:
            self._store(slot, key, trajectory)
            return
        if not isinstance(vectors, list) or len(vectors) != 1:
            return  # an unusable embedding reply: store nothing rather than crash the run
        vector = vectors[0]
        if not usable_vector(vector, self.index.dim):
            return
        slot = len(self.entries)
        self.index.add(slot, vector)
        self.slot_by_key[key] = slot
        self._store(slot, key, trajectory)

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        """The ``k`` most similar stored episodes above the threshold, or ``{}``."""
        if not self.entries:
            return {}  # nothing to match: not even the query is embedded
        vectors = await self.ctx.llm.embed([task_text(task, KEY_CHARS)])
        if not isinstance(vectors, list) or len(vectors) != 1:
            return {}
        if not usable_vector(vectors[0], self.index.dim):
            return {}
        found = self.index.search(vectors[0], self.k)
        # ALMA's test is strict (> threshold); VectorIndex's threshold is inclusive.
        hits = [
            (slot, score)
            for slot, score in found
            if isinstance(slot, int) and score > self.threshold
        ]
        if not hits:
            return {}
        return {
            "retrieved_similar_tasks": [
                {"similarity": round(score, 3), "trajectory": self.entries[slot]["trajectory"]}
                for slot, score in hits
            ]
        }
