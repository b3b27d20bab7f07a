"""G-Memory: three-tier graph memory (Zhang et al. 2025, "G-Memory: Tracing Hierarchical Memory
for Multi-Agent Systems", arXiv 2506.07398), as a single-agent baseline.

What it stores, in three tiers:

- **Interaction tier**: per task query, the episodes played on it, each condensed by one LLM
  "key steps" call into at most 8 short lines, plus the action list, the outcome and, for a
  failure, a one-sentence failure reason written by a second LLM call. At most the 3 shortest
  successes and the 2 latest failures are kept per query.
- **Query graph** (``networkx.Graph``): one node per distinct task query (goal + first
  observation, :func:`pytest_alma.memory.task_text`), embedded once when it is first seen and
  kept in a :class:`~pytest_alma.memory.VectorIndex`. A new node gets edges (weight = cosine) to
  its up to 10 most similar earlier queries with cosine >= 0.7, skipping neighbours that already
  have 20 edges (so one graph hop stays cheap).
- **Insight graph** (``networkx.Graph``): insight nodes ``("i", id)`` with a text and an integer
  score, linked to the query nodes ``("q", id)`` of the episodes that produced or confirmed them.

Update (``general_update``), per episode not cut short by a harness error:

1. Key steps (1 chat) and, for a failure, the failure reason (1 chat), run concurrently.
2. Insight operations (1 chat, JSON): the prompt shows up to 10 numbered insights (those linked
   to the related queries, best supported first, filled up with the best-scored others), the
   episode's key steps, outcome and failure reason, and the most similar stored episode with the
   opposite outcome (the paper's success/failure contrast). The reply is
   ``{"operations": [{"op": "ADD", "text": ...}, {"op": "EDIT", "index": n, "text": ...},
   {"op": "REMOVE", "index": n}, {"op": "AGREE", "index": n}]}``; the first 4 operations are
   applied in the order REMOVE, AGREE, EDIT, ADD: REMOVE is -1 (-3 when 10 or more insights
   exist), AGREE +1, EDIT replaces the text and +1, ADD creates an insight with score 2. An ADD
   whose text (case/space-insensitive) equals an existing insight is dropped; an EDIT to such a
   text counts as an AGREE. AGREE/EDIT/ADD link the insight to this episode's query (ADD also to
   the contrasting episode's query). At most 50 insights are kept (lowest score, then oldest,
   evicted).
3. Score back-propagation: the insights the last ``general_retrieve`` for the same task (env,
   task id, split, seed) returned get +1 if this episode succeeded and -2 if it failed (the
   paper's rule). Insights with score <= 0 are removed after the operations and again after
   back-propagation.
4. Merging: after every 20th stored episode (``MERGE_EVERY``), if at least 2 insights exist, 1
   chat (JSON) lists all insights and returns ``{"insights": [{"text": ..., "from": [n, m]}]}``;
   each group replaces its sources by one insight with the maximum source score, linked to the
   union of their queries. Insights in no group are kept; a group whose text repeats an
   insight outside it is skipped.

Retrieve (``general_retrieve``): embed the task query, take the 3 most similar stored queries
with cosine >= 0.3 (one ``VectorIndex`` product), add their 1-hop query-graph neighbours, and
return ``{"successful_examples": [...], "insights": [...]}``: up to 2 successful episodes (one per
query; queries ranked by exact cosine to the task, then the shortest success of each query), each
as task, similarity, key steps and actions (<= 30 shown); and up to 4 insight texts linked to
those queries, ranked by how many of them link to the insight, then score. It returns ``{}`` when
the store is empty, no query reaches the threshold, or the hits hold neither successes nor
insights. Re-ranking is by cosine similarity and plan length, without an LLM.

Cost, exact per call (the chat model is ``MODEL``, else the run's model; ``ALMA_G_MEMORY_MODEL``
overrides it):

- ``general_update``: an episode with ``trajectory.error`` set costs 0 chat + 0 embed (nothing is
  stored). Otherwise: 1 embed call (of 1 text) when the task query is not yet in the query graph,
  0 when it is; then 2 chat calls for a success (key steps, insight ops) or 3 for a failure (key
  steps, failure reason, insight ops), plus 1 chat (merge) on every 20th stored episode when at
  least 2 insights exist at that point. If the embedding is unusable (empty, zero or of the wrong
  size) the episode is not stored and costs 0 chat calls (its back-propagation still applies).
- ``general_retrieve``: 0 chat calls; 1 embed call (of 1 text), or 0 when the store is empty.

Where this differs from the ALMA port (``memo_structure_g_memory.py``) and why:

- Bug fixed: when fewer than two successes were found, the port refilled its "successful shots"
  with a search filtered on ``label: False``, i.e. failures. Only successful episodes are ever
  returned as examples here; failures feed only the failure reasons in the insight prompts.
- Bug fixed: the port asked the LLM for relevance scores, sorted by them and then used the
  unsorted list. Here the returned order *is* the re-ranked order (cosine, then plan length),
  and no LLM call is spent on a ranking.
- Bug fixed: the port's ``insights_cache`` (which insights to reward) was one slot shared by all
  concurrent retrievals; here it is kept per task, so back-propagation credits the insights that
  episode was shown.
- Bug fixed: Chroma's squared-L2 distance was read as a similarity; here cosines are real.
- Bug fixed: the ``(n // 3) // 3`` merge limit (often 0) is gone; the merge reply is bounded by
  the number of insights.
- Insight operations run once per episode (1 call) instead of 5 random anchors every 5 episodes
  (about 5-15 calls): a fixed, deterministic cost with the same ADD/EDIT/REMOVE/AGREE semantics.
  They start at the first episode (the paper waits for 5).
- Merging is one call over all insights every 20 episodes instead of FINCH clusters with one
  call each: the cost stays exact and no clustering library is needed. Merged insights keep the
  best source score rather than resetting to 2, so earned trust is not lost; unmerged insights
  are kept rather than dropped.
- Nothing is re-embedded: each query is embedded once when stored, and the paper's per-call
  re-embedding of candidates is replaced by stored unit vectors.
- The interaction tier keeps key steps and actions, not the paper's agent-message graphs (a
  single agent's message graph is a chain), and does not strip digits from trajectories.
- Bad replies never raise: empty key steps fall back to the last 5 actions, an empty failure
  reason to a sentence built from the outcome, and a malformed insight-ops or merge reply
  (not JSON, wrong shape) changes no insight; invalid single operations (unknown op, bad index,
  empty text) are skipped. The episode itself is still stored. Errors raised by the LLM client
  (budget, network) propagate, and leave the memory unchanged because all state is committed
  only after the last chat call of the update (a merge call comes after that commit).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from pytest_alma import MemoryDesign, TaskStart, Trajectory
from pytest_alma.memory import VectorIndex, clip, task_text
from pytest_alma.memory import g_memory_replies as replies
from pytest_alma.memory.g_memory_replies import Operation

#: Chat model for the internal calls; None = the run's model. ``ALMA_G_MEMORY_MODEL`` overrides.
MODEL: str | None = None
MODEL_ENV = "ALMA_G_MEMORY_MODEL"

QUERY_CHARS = 1500  # a task query is the goal + first observation, clipped to this
K_QUERIES = 3  # similar queries taken from the index (the ALMA port takes 2)
RETRIEVE_THRESHOLD = 0.3  # below this cosine a stored query is not "similar"
EDGE_THRESHOLD = 0.7  # query-graph edges join queries at least this similar (paper: 0.7)
EDGE_CANDIDATES = 10  # a new query is linked to at most this many earlier ones (paper: 10)
MAX_DEGREE = 20  # neighbours this full get no new edges, so a 1-hop expansion stays small
SHOWN_EXAMPLES = 2  # successful examples returned (one per query)
SHOWN_INSIGHTS = 4  # insights returned
MAX_ACTIONS_SHOWN = 30  # actions listed per returned example
PROMPT_INSIGHTS = 10  # numbered insights shown to the insight-ops prompt
MAX_INSIGHTS = 50  # hard cap on stored insights (lowest score, oldest first, evicted)
CROWDED_INSIGHTS = 10  # from this many insights on, REMOVE costs 3 points (paper)
INITIAL_SCORE = 2  # score of an ADDed insight (paper)
REMOVE_PENALTY = 1
REMOVE_PENALTY_CROWDED = 3
USED_SUCCESS_BONUS = 1  # back-propagation: +1 when the episode that was shown it succeeded
USED_FAILURE_PENALTY = 2  # ... and -2 when it failed (paper)
MAX_OPS = 4  # operations applied per reply (the prompt asks for at most 4)
MERGE_EVERY = 20  # merge insights after every 20th stored episode (paper)
MAX_SUCCESSES_PER_QUERY = 3
MAX_FAILURES_PER_QUERY = 2
MAX_KEY_STEPS = 8
FALLBACK_KEY_STEPS = 5  # when the key-steps reply is empty: the last 5 actions
PROMPT_STEPS_HEAD = 10  # long episodes are shown to the LLM as their first 10 and last 30 steps
PROMPT_STEPS_TAIL = 30
MAX_PENDING = 256  # retrievals remembered for back-propagation (oldest forgotten first)

_TAG = "[alma-baseline:g_memory/{}]"

KEY_STEPS_SYSTEM = (
    _TAG.format("key_steps")
    + " You condense an agent's episode into its key steps: the few actions that moved the "
    "episode towards its outcome (progress, reward changes, the decisive last moves). Reply with "
    "at most 8 lines, one step per line, each as '- Step N: action (why it mattered)'. No other "
    "text."
)
FAIL_REASON_SYSTEM = (
    _TAG.format("fail_reason")
    + " An agent failed the episode below. In one or two sentences, say the main reason it "
    "failed: the mistake or missing step, concrete enough to avoid next time. No other text."
)
INSIGHT_OPS_SYSTEM = (
    _TAG.format("insight_ops")
    + " You maintain a short list of general insights for an agent, each of the form "
    "'do X, because Y'. Compare the current episode with the existing insights (and with the "
    "contrasting episode, when one is given) and propose at most 4 operations: ADD a new general "
    "insight; EDIT insight n to improve it; REMOVE insight n if it is wrong or misleading; AGREE "
    "with insight n if this episode confirms it. Insights must hold beyond this one task. Reply "
    'with a JSON object only: {"operations": [{"op": "ADD", "text": "..."}, '
    '{"op": "EDIT", "index": 2, "text": "..."}, {"op": "REMOVE", "index": 3}, '
    '{"op": "AGREE", "index": 1}]}.'
)
MERGE_SYSTEM = (
    _TAG.format("merge")
    + " Below are numbered insights of an agent. Merge insights that say the same thing or "
    "overlap into one clearer insight each. Leave distinct insights out of your answer (they are "
    'kept as they are). Reply with a JSON object only: {"insights": [{"text": "merged insight", '
    '"from": [1, 4]}]}.'
)


@dataclass
class Interaction:
    """One stored episode of a query (the interaction tier)."""

    success: bool
    score: float
    n_steps: int
    key_steps: list[str]
    actions: list[str]
    fail_reason: str | None
    order: int  # value of the update counter when stored (recency)


@dataclass
class Insight:
    """One insight (a node of the insight graph)."""

    text: str
    score: int
    origin: str  # "add", "edit" or "merge"
    created: int


def normalise(text: str) -> str:
    """Lowercased, whitespace-collapsed text: the identity of an insight."""
    return " ".join(text.lower().split())


def parse_operations(reply: str, size: int) -> list[Operation] | None:
    """The valid operations of an insight-ops reply (first ``MAX_OPS``); None if broken."""
    return replies.parse_operations(reply, size, MAX_OPS)


def parse_merge(reply: str, size: int) -> list[tuple[str, list[int]]] | None:
    """Valid ``(text, 1-based sources)`` groups of a merge reply; None if the reply is broken."""
    return replies.parse_merge(reply, size)


def parse_key_steps(reply: str, actions: Sequence[str]) -> list[str]:
    """Up to ``MAX_KEY_STEPS`` lines of the reply; the last actions when there are none."""
    return replies.parse_key_steps(reply, actions, MAX_KEY_STEPS, FALLBACK_KEY_STEPS)


class GMemory(MemoryDesign):
    """Interaction tier, query graph and scored insight graph, after G-Memory."""

    def __init__(self, ctx: Any = None) -> None:
        super().__init__(ctx)
        self.config: dict[str, Any] = {
            "model": os.environ.get(MODEL_ENV) or MODEL,
            "k_queries": K_QUERIES,
            "retrieve_threshold": RETRIEVE_THRESHOLD,
            "edge_threshold": EDGE_THRESHOLD,
            "hops": 1,
            "shown_examples": SHOWN_EXAMPLES,
            "shown_insights": SHOWN_INSIGHTS,
            "max_insights": MAX_INSIGHTS,
            "merge_every": MERGE_EVERY,
            "used_success_bonus": USED_SUCCESS_BONUS,
            "used_failure_penalty": USED_FAILURE_PENALTY,
        }
        # Query graph: node = query id (its row in the index).
        self.query_graph = nx.Graph()
        self.query_texts: list[str] = []
        self.query_ids: dict[str, int] = {}
        self.query_index = VectorIndex()  # query id == row position (ids are added in order)
        # Interaction tier.
        self.interactions: dict[int, list[Interaction]] = {}
        # Insight graph: nodes ("i", insight id) and ("q", query id).
        self.insights: dict[int, Insight] = {}
        self.insight_graph = nx.Graph()
        self.next_insight_id = 0
        self.updates = 0  # stored episodes
        self.merges = 0
        # task key -> insight ids the last retrieval for that task returned.
        self.pending: dict[tuple[str, str, str, int], list[int]] = {}

    # -- LLM and embedding helpers ------------------------------------------------------------

    async def _chat(self, system: str, user: str, *, json_mode: bool, temperature: float) -> str:
        reply = await self.ctx.llm.chat(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=temperature,
            json_mode=json_mode,
            model=self.config["model"],
        )
        return reply if isinstance(reply, str) else ""

    async def _embed_one(self, text: str) -> np.ndarray | None:
        """The unit embedding of ``text``, or None if the reply is unusable."""
        vectors = await self.ctx.llm.embed([text])
        try:
            vector = np.asarray(vectors[0], dtype=np.float64).ravel()
        except (IndexError, TypeError, ValueError):
            return None
        dim = self.query_index.dim
        norm = float(np.linalg.norm(vector)) if vector.size else 0.0
        if not math.isfinite(norm) or norm == 0.0 or (dim is not None and vector.size != dim):
            return None
        return (vector / norm).astype(np.float32)

    # -- query graph --------------------------------------------------------------------------

    def _add_query(self, text: str, vector: np.ndarray) -> int:
        """Store a new query node with its edges; returns its id."""
        qid = len(self.query_texts)
        # Neighbours are searched before the node is indexed, so it never links to itself.
        neighbours = self.query_index.search(vector, EDGE_CANDIDATES, EDGE_THRESHOLD)
        self.query_graph.add_node(qid)
        for other, similarity in neighbours:
            if self.query_graph.degree(other) < MAX_DEGREE:
                self.query_graph.add_edge(qid, other, weight=round(similarity, 4))
        self.query_index.add(qid, vector)
        self.query_texts.append(text)
        self.query_ids[text] = qid
        return qid

    def _related(self, vector: np.ndarray) -> list[tuple[int, float, bool]]:
        """Similar queries plus their 1-hop neighbours: ``(id, cosine, is_hit)``, best first.

        Work: one index product plus at most ``K_QUERIES * MAX_DEGREE`` neighbour dot products.
        """
        hits = self.query_index.search(vector, K_QUERIES, RETRIEVE_THRESHOLD)
        seen: dict[int, bool] = {}
        for qid, _ in hits:
            seen[int(qid)] = True
        for qid, _ in hits:
            for other in self.query_graph.neighbors(qid):
                seen.setdefault(int(other), False)
        if not seen:
            return []
        ids = list(seen)
        sims = self.query_index.similarities(vector, ids)
        found = [(q, float(s), seen[q]) for q, s in zip(ids, sims, strict=True)]
        found.sort(key=lambda item: (-item[1], item[0]))
        return found

    # -- insight graph ------------------------------------------------------------------------

    def _linked_insights(self, queries: Sequence[int]) -> list[int]:
        """Insight ids linked to ``queries``, most supported first, then by score, then oldest."""
        support: dict[int, int] = {}
        for qid in queries:
            node = ("q", qid)
            if node not in self.insight_graph:
                continue
            for kind, iid in self.insight_graph.neighbors(node):
                if kind == "i":
                    support[iid] = support.get(iid, 0) + 1
        return sorted(support, key=lambda i: (-support[i], -self.insights[i].score, i))

    def _link(self, iid: int, qid: int | None) -> None:
        if qid is not None and iid in self.insights:
            self.insight_graph.add_edge(("i", iid), ("q", qid))

    def _new_insight(self, text: str, score: int, origin: str) -> int:
        iid = self.next_insight_id
        self.next_insight_id += 1
        self.insights[iid] = Insight(text=text, score=score, origin=origin, created=self.updates)
        self.insight_graph.add_node(("i", iid))
        return iid

    def _drop_insight(self, iid: int) -> None:
        self.insights.pop(iid, None)
        if ("i", iid) in self.insight_graph:
            self.insight_graph.remove_node(("i", iid))

    def _prune(self) -> None:
        for iid in [i for i, ins in self.insights.items() if ins.score <= 0]:
            self._drop_insight(iid)
        while len(self.insights) > MAX_INSIGHTS:
            worst = min(self.insights, key=lambda i: (self.insights[i].score, i))
            self._drop_insight(worst)

    def _find_text(self, text: str) -> int | None:
        key = normalise(text)
        for iid, insight in self.insights.items():
            if normalise(insight.text) == key:
                return iid
        return None

    def _apply_operations(
        self, ops: Sequence[Operation], shown: Sequence[int], qid: int, contrast: int | None
    ) -> None:
        """Apply parsed operations (REMOVE, AGREE, EDIT, then ADD); indices refer to ``shown``."""
        order = {"REMOVE": 0, "AGREE": 1, "EDIT": 2, "ADD": 3}
        crowded = len(self.insights) >= CROWDED_INSIGHTS
        penalty = REMOVE_PENALTY_CROWDED if crowded else REMOVE_PENALTY
        for op in sorted(ops, key=lambda o: order[o.op]):
            if op.op == "ADD":
                if op.text and self._find_text(op.text) is None:  # duplicates are dropped
                    iid = self._new_insight(op.text, INITIAL_SCORE, "add")
                    self._link(iid, qid)
                    self._link(iid, contrast)
                continue
            target = shown[op.index - 1] if op.index else -1
            insight = self.insights.get(target)
            if insight is None:
                continue  # removed by an earlier operation or pruning
            if op.op == "REMOVE":
                insight.score -= penalty
                continue
            if op.op == "EDIT" and op.text and self._find_text(op.text) is None:
                insight.text = op.text  # an EDIT to an existing text is only an agreement
                insight.origin = "edit"
            insight.score += 1  # AGREE, and EDIT
            self._link(target, qid)
        self._prune()

    def _back_propagate(self, key: tuple[str, str, str, int], success: bool) -> None:
        for iid in self.pending.pop(key, []):
            if iid in self.insights:
                delta = USED_SUCCESS_BONUS if success else -USED_FAILURE_PENALTY
                self.insights[iid].score += delta
        self._prune()

    # -- prompts ------------------------------------------------------------------------------

    @staticmethod
    def _episode_text(trajectory: Trajectory) -> str:
        lines = [
            f"{i}. {clip(' '.join(s.action.split()), 120)} -> "
            f"{clip(' '.join(s.observation.split()), 200)} [reward {s.reward:g}]"
            for i, s in enumerate(trajectory.steps, 1)
        ]
        if len(lines) > PROMPT_STEPS_HEAD + PROMPT_STEPS_TAIL:
            omitted = len(lines) - PROMPT_STEPS_HEAD - PROMPT_STEPS_TAIL
            lines = [
                *lines[:PROMPT_STEPS_HEAD],
                f"[... {omitted} steps omitted ...]",
                *lines[-PROMPT_STEPS_TAIL:],
            ]
        outcome = "success" if trajectory.success else "failure"
        return (
            f"Task:\n{task_text(trajectory.start, 1200)}\n\n"
            f"Steps (action -> observation [reward]):\n{chr(10).join(lines) or '(no steps)'}\n"
            f"Outcome: {outcome} (score {trajectory.score:g}, {len(trajectory.steps)} steps)"
        )

    @staticmethod
    def _summary(query: str, record: Interaction) -> str:
        outcome = "success" if record.success else "failure"
        parts = [
            f"Task:\n{clip(query, 600)}",
            "Key steps:",
            *(f"- {step}" for step in record.key_steps),
            f"Outcome: {outcome} (score {record.score:g}, {record.n_steps} steps)",
        ]
        if record.fail_reason:
            parts.append(f"Failure reason: {record.fail_reason}")
        return "\n".join(parts)

    def _ops_prompt(
        self, shown: Sequence[int], current: str, contrast: tuple[int, Interaction] | None
    ) -> str:
        if shown:
            numbered = "\n".join(
                f"{n}. {self.insights[i].text} (score {self.insights[i].score})"
                for n, i in enumerate(shown, 1)
            )
        else:
            numbered = "(none yet)"
        text = f"Existing insights:\n{numbered}\n\nCurrent trajectory:\n{current}"
        if contrast is not None:
            qid, record = contrast
            text += (
                "\n\nContrasting trajectory (a similar task with the opposite outcome):\n"
                + self._summary(self.query_texts[qid], record)
            )
        if len(self.insights) >= CROWDED_INSIGHTS:
            text += "\n\nThere are already many insights: prefer EDIT, AGREE or REMOVE over ADD."
        return text

    def _prompt_insights(self, related: Sequence[tuple[int, float, bool]]) -> list[int]:
        shown = self._linked_insights([q for q, _, _ in related])[:PROMPT_INSIGHTS]
        if len(shown) < PROMPT_INSIGHTS:
            rest = sorted(
                (i for i in self.insights if i not in shown),
                key=lambda i: (-self.insights[i].score, i),
            )
            shown += rest[: PROMPT_INSIGHTS - len(shown)]
        return shown

    def _contrast(
        self, related: Sequence[tuple[int, float, bool]], success: bool
    ) -> tuple[int, Interaction] | None:
        """The most similar stored episode with the opposite outcome (latest within a query)."""
        for qid, _, _ in related:
            opposite = [r for r in self.interactions.get(qid, []) if r.success != success]
            if opposite:
                return qid, max(opposite, key=lambda r: r.order)
        return None

    def _store_interaction(self, qid: int, record: Interaction) -> None:
        records = self.interactions.setdefault(qid, [])
        records.append(record)
        successes = sorted((r for r in records if r.success), key=lambda r: (r.n_steps, r.order))
        failures = sorted((r for r in records if not r.success), key=lambda r: r.order)
        self.interactions[qid] = (
            successes[:MAX_SUCCESSES_PER_QUERY] + failures[-MAX_FAILURES_PER_QUERY:]
        )

    # -- the design API -----------------------------------------------------------------------

    @staticmethod
    def _task_key(start: TaskStart) -> tuple[str, str, str, int]:
        task = start.task
        return (task.env, task.task_id, task.split, task.seed)

    async def general_update(self, trajectory: Trajectory) -> None:
        key = self._task_key(trajectory.start)
        if trajectory.error:  # a harness failure says nothing about the task or the insights
            self.pending.pop(key, None)
            return
        query = task_text(trajectory.start, QUERY_CHARS)
        qid = self.query_ids.get(query)
        if qid is None:
            vector = await self._embed_one(query)
            if vector is None:
                self._back_propagate(key, trajectory.success)
                return
        else:
            vector = self.query_index.vector(qid)
        actions = [step.action for step in trajectory.steps]
        episode = self._episode_text(trajectory)

        key_call = self._chat(KEY_STEPS_SYSTEM, episode, json_mode=False, temperature=0.1)
        if trajectory.success:
            key_reply, fail_reply = await key_call, None
        else:
            fail_call = self._chat(FAIL_REASON_SYSTEM, episode, json_mode=False, temperature=0.0)
            key_reply, fail_reply = await asyncio.gather(key_call, fail_call)
        key_steps = parse_key_steps(key_reply, actions)
        fail_reason: str | None = None
        if not trajectory.success:
            fail_reason = replies.clean_text(fail_reply) or (
                f"Failed with score {trajectory.score:g} after {len(actions)} steps; last "
                f"action: {clip(actions[-1], 120) if actions else '(none)'}."
            )
        record = Interaction(
            success=trajectory.success,
            score=trajectory.score,
            n_steps=len(actions),
            key_steps=key_steps,
            actions=[clip(a, 120) for a in actions],
            fail_reason=fail_reason,
            order=self.updates,
        )

        related = self._related(vector)
        shown = self._prompt_insights(related)
        contrast = self._contrast(related, trajectory.success)
        ops_reply = await self._chat(
            INSIGHT_OPS_SYSTEM,
            self._ops_prompt(shown, self._summary(query, record), contrast),
            json_mode=True,
            temperature=0.0,
        )
        ops = parse_operations(ops_reply, len(shown))

        # Commit: everything below is synchronous, so a failed LLM call above changed nothing.
        if qid is None:
            qid = self._add_query(query, vector)
        self._store_interaction(qid, record)
        if ops is not None:
            self._apply_operations(ops, shown, qid, contrast[0] if contrast else None)
        self._back_propagate(key, trajectory.success)
        self.updates += 1
        if self.updates % MERGE_EVERY == 0 and len(self.insights) >= 2:
            await self._merge()

    async def _merge(self) -> None:
        """One merge call over all insights; a broken reply changes nothing."""
        ordered = sorted(self.insights, key=lambda i: (-self.insights[i].score, i))
        numbered = "\n".join(
            f"{n}. {self.insights[i].text} (score {self.insights[i].score})"
            for n, i in enumerate(ordered, 1)
        )
        reply = await self._chat(
            MERGE_SYSTEM, f"Insights:\n{numbered}", json_mode=True, temperature=0.0
        )
        groups = parse_merge(reply, len(ordered))
        if not groups:
            return
        for text, sources in groups:
            ids = [ordered[n - 1] for n in sources if ordered[n - 1] in self.insights]
            duplicate = self._find_text(text)
            if not ids or (duplicate is not None and duplicate not in ids):
                continue  # sources already merged, or the text repeats an unrelated insight
            queries = {
                q
                for iid in ids
                for kind, q in self.insight_graph.neighbors(("i", iid))
                if kind == "q"
            }
            score = max(self.insights[i].score for i in ids)
            for iid in ids:
                self._drop_insight(iid)
            merged = self._new_insight(text, score, "merge")
            for q in sorted(queries):
                self._link(merged, q)
        self.merges += 1

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        if not self.query_texts:
            return {}
        vector = await self._embed_one(task_text(task, QUERY_CHARS))
        if vector is None:
            return {}
        related = self._related(vector)
        if not related:
            return {}

        # Re-rank (no LLM): queries by exact cosine to this task, then the shortest success of
        # each; the list returned is this order, one example per query.
        examples: list[dict[str, Any]] = []
        for qid, similarity, is_hit in related:
            successes = [r for r in self.interactions.get(qid, []) if r.success]
            if not successes:
                continue
            best = min(successes, key=lambda r: (r.n_steps, r.order))
            actions = best.actions[:MAX_ACTIONS_SHOWN]
            if len(best.actions) > MAX_ACTIONS_SHOWN:
                actions.append(f"... ({len(best.actions) - MAX_ACTIONS_SHOWN} more actions)")
            examples.append(
                {
                    "task": clip(" ".join(self.query_texts[qid].split()), 300),
                    "similarity": round(similarity, 3),
                    "found_by": "similar task" if is_hit else "related task (graph neighbour)",
                    "key_steps": list(best.key_steps),
                    "actions": actions,
                }
            )
            if len(examples) == SHOWN_EXAMPLES:
                break
        insight_ids = self._linked_insights([q for q, _, _ in related])[:SHOWN_INSIGHTS]

        key = self._task_key(task)
        self.pending.pop(key, None)
        if insight_ids:
            self.pending[key] = insight_ids
            while len(self.pending) > MAX_PENDING:
                del self.pending[next(iter(self.pending))]
        memory: dict[str, Any] = {}
        if examples:
            memory["successful_examples"] = examples
        if insight_ids:
            memory["insights"] = [self.insights[i].text for i in insight_ids]
        return memory
