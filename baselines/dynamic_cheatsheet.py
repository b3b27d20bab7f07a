"""Dynamic Cheatsheet: one curated, self-rewriting text of lessons (Suzgun et al. 2025).

Paper: M. Suzgun, M. Yuksekgonul, F. Bianchi, D. Jurafsky, J. Zou, "Dynamic Cheatsheet:
Test-Time Learning with Adaptive Memory", arXiv 2504.07952 (code: suzgunmirac/dynamic-cheatsheet).
ALMA's port of it is ``memo_archive/baseline/memo_structure_pure_insights.py`` ("pure_insights").

Two variants, chosen per instance when it is constructed: the class attribute ``variant`` when it
is set, else the environment variable ``ALMA_DYNAMIC_CHEATSHEET_VARIANT``, else ``cumulative``
(any other value is refused at construction with a clear message). The harness keys a built
memory by the design file's content, not by environment variables, so a memory built with one
variant in an ``--alma-store`` is reused when only the environment variable changes: to compare
the variants, use a fresh store per variant, or a copy of this file with ``variant`` set.

**cumulative** (DC-Cu, the default; what ALMA's port implements)
    Stores one cheatsheet (text). Each ``general_update`` makes one *curator* chat call that
    receives the previous sheet and the new episode (``trajectory_text``, at most
    :data:`TRAJECTORY_CHARS` characters) and answers with the complete next sheet between
    ``<cheatsheet>`` and ``</cheatsheet>``; that block replaces the sheet. ``general_retrieve``
    returns ``{"cheatsheet": <sheet>}`` to every task (the same text whatever the task), or ``{}``
    while the sheet is empty.

**retrieval_synthesis** (DC-RS)
    Stores every episode as bounded text (``trajectory_text``) with one embedding of its task
    start (``task_text``: goal and first observation), computed once and kept in a
    :class:`~pytest_alma.memory.VectorIndex`. ``general_retrieve`` embeds the new task's start,
    takes the :data:`TOP_K` most similar stored episodes whose cosine is at least
    :data:`MIN_SIMILARITY`, and makes one *synthesis* chat call that writes a cheatsheet for this
    task from them; it returns ``{"cheatsheet": <that sheet>}``, or ``{}`` when the store is empty
    or no stored episode is similar enough.

Cost, exactly (chat = ``ctx.llm.chat`` calls, embed = ``ctx.llm.embed`` calls):

* cumulative
    - update: 1 chat + 0 embed calls; 0 chat + 0 embed calls for a trajectory whose ``error``
      is set (a harness failure teaches nothing about the game, so it is skipped).
    - retrieve: 0 chat + 0 embed calls.
* retrieval_synthesis
    - update: 0 chat + 1 embed call (of 1 text); 0 chat + 0 embed calls for a trajectory whose
      ``error`` is set.
    - retrieve: 1 chat + 1 embed call (of 1 text) when at least one stored episode reaches
      :data:`MIN_SIMILARITY`; 0 chat + 1 embed call (of 1 text) when none does; 0 chat + 0 embed
      calls while the store is empty.

There are no retries: a bad reply costs nothing more, it is handled as below.

Size cap: a sheet (curated or synthesised) is at most :data:`MAX_SHEET_CHARS` characters (about
2,000 words, DC's own 2,000-2,500-word target). The prompts state the limit so that the model
consolidates; a longer reply is cut at the last line break before the limit and marked
``[... cheatsheet cut ...]`` (the model is asked to put the most useful entries first, so the
tail is what goes). The retrieval_synthesis store keeps every episode (each at most
:data:`TRAJECTORY_CHARS` characters of text plus one vector).

Bad replies never raise and never lose memory:

* curator: the sheet is the text between the *last* ``</cheatsheet>`` and the ``<cheatsheet>``
  before it. No markers, only an opening marker (a cut-off reply), or an empty block (including
  plain prose, an empty reply or whitespace) keeps the previous sheet unchanged and counts one
  ``parse_failures``.
* synthesis: the same parse; on failure the retrieval returns the similar episodes themselves,
  ``{"similar_episodes": [<episode text>, ...]}``, so that the agent still sees the evidence the
  sheet should have summarised (and ``general_retrieve`` stays a function of the memory state).
* embeddings: an embedding that cannot be indexed (empty, all zeros, the wrong size) makes the
  update store nothing (counted in ``skipped_episodes``), and makes a retrieval return ``{}``.

Errors of the LLM service itself (the gateway raising) are not caught: the harness reports the
call as failed, and since the state is only written after a successful parse, memory is intact.

Where this differs from ALMA's port, and why:

* A curator reply without a usable ``<cheatsheet>`` block keeps the previous sheet (the port sets
  the sheet to ``None``, so one parse failure wipes everything learned; upstream DC keeps the old
  sheet). Regression test: ``test_regression_parse_failure_wipes_cheatsheet``.
* The port's "3 retries" loop returns after the first attempt; this makes exactly one call and
  says so, so the cost above is exact.
* The episode is shown as bounded readable text (``trajectory_text``) instead of the full
  step-by-step JSON dump, which grows without limit on long MiniHack/ALFWorld episodes and can
  overflow the curator's context.
* The curator model is this run's model (or :data:`MODEL` / ``ALMA_DYNAMIC_CHEATSHEET_MODEL``),
  not a hard-coded gpt-4o-mini; temperature is 0 so that runs repeat (and hit the cache).
* The sheet is capped in code, not only by a request in the prompt.
* Harness-failed episodes (``trajectory.error``) are skipped instead of curated.
* The retrieval_synthesis variant exists (the port has only the cumulative one). Unlike upstream
  DC-RS, its synthesis does not read or update a running global sheet: retrievals run in
  parallel workers on one snapshot of the memory and must not change it, so the synthesised
  sheet is built from the retrieved episodes alone and is not stored. Similarity is between task
  starts (what retrieval can see), with a floor of :data:`MIN_SIMILARITY`, which upstream lacks.

Updates must be applied one at a time (the harness does): two concurrent curator calls on one
instance would both start from the same previous sheet and the later one would win.
"""

from __future__ import annotations

import os
from typing import Any, cast

from pytest_alma import MemoryDesign, TaskStart, Trajectory
from pytest_alma.memory import VectorIndex, task_text, trajectory_text

#: The chat model of the curator/synthesis calls; ``None`` is the run's model. The environment
#: variable ``ALMA_DYNAMIC_CHEATSHEET_MODEL`` overrides it (read when an instance is built).
MODEL: str | None = None
MODEL_ENV = "ALMA_DYNAMIC_CHEATSHEET_MODEL"
VARIANT_ENV = "ALMA_DYNAMIC_CHEATSHEET_VARIANT"
VARIANTS = ("cumulative", "retrieval_synthesis")

MAX_SHEET_CHARS = 12_000  # hard cap of a sheet (~2,000 words, DC's prompt target)
TRAJECTORY_CHARS = 4_000  # an episode as shown to the curator / stored for synthesis
TASK_CHARS = 2_000  # a task start as embedded and shown to the synthesis call
TOP_K = 3  # DC-RS retrieves the 3 most similar past inputs
MIN_SIMILARITY = 0.3  # cosine floor for a past episode to count as similar
TEMPERATURE = 0.0  # reproducible curation (and cacheable calls)

CURATE_MARKER = "[alma-baseline:dynamic_cheatsheet/curate]"
SYNTHESIZE_MARKER = "[alma-baseline:dynamic_cheatsheet/synthesize]"
OPEN_TAG = "<cheatsheet>"
CLOSE_TAG = "</cheatsheet>"
CUT_MARK = "\n[... cheatsheet cut ...]"

CURATE_SYSTEM = f"""{CURATE_MARKER}
You keep a cheatsheet: a short, reusable collection of lessons for an agent that plays episodes
of a text-based game. After every episode you get the current cheatsheet and a record of the
episode (its goal, each action with what was observed, and the outcome). Write the next version
of the whole cheatsheet:
- keep every entry that is still useful, merge entries that say the same thing, and correct
  entries that this episode contradicts;
- add what this episode teaches: strategies that worked, mistakes to avoid, action patterns worth
  trying, stated so that they help on other levels too, not only this one;
- after each entry, note how many episodes support it, for example "(seen 3x)";
- put the most useful entries first and stay under {MAX_SHEET_CHARS} characters; when space runs
  out, drop the least useful entries.
An empty current cheatsheet means you start a new one.
Reply with the complete new cheatsheet between {OPEN_TAG} and {CLOSE_TAG}. Text outside the
markers is ignored; a reply without them leaves the cheatsheet unchanged."""

SYNTHESIZE_SYSTEM = f"""{SYNTHESIZE_MARKER}
You write a cheatsheet for an agent that is about to play one episode of a text-based game. You
get the new task (its goal and first observation) and records of the most similar past episodes,
most similar first, each with its actions, observations and outcome. Distil what they teach about
this task: what worked, what failed, which actions to try first and which to avoid. Be concrete
and brief, put the most useful points first, and stay under {MAX_SHEET_CHARS} characters.
Reply with the cheatsheet between {OPEN_TAG} and {CLOSE_TAG}; text outside them is ignored."""


def extract_sheet(reply: Any) -> str | None:
    """The text of the last complete ``<cheatsheet>...</cheatsheet>`` block, or ``None``.

    ``None`` means no usable sheet: no closing marker, no opening marker before it, or a block
    with nothing but whitespace in it. The last block is taken because a model may mention the
    markers in prose before writing the real block.
    """
    if not isinstance(reply, str):
        return None
    lowered = reply.lower()
    end = lowered.rfind(CLOSE_TAG)
    if end < 0:
        return None
    start = lowered.rfind(OPEN_TAG, 0, end)
    if start < 0:
        return None
    sheet = reply[start + len(OPEN_TAG) : end].strip()
    return sheet or None


def cap_sheet(sheet: str, limit: int = MAX_SHEET_CHARS) -> str:
    """``sheet`` cut to at most ``limit`` characters at a line break, marked when cut."""
    if len(sheet) <= limit:
        return sheet
    head = sheet[: max(0, limit - len(CUT_MARK))]
    newline = head.rfind("\n")
    if newline > len(head) // 2:  # cut at a line break unless that loses over half the budget
        head = head[:newline]
    return head.rstrip() + CUT_MARK


def _setting(env_name: str, default: str | None) -> str | None:
    value = os.environ.get(env_name, "").strip()
    return value or default


class DynamicCheatsheet(MemoryDesign):
    """One curated cheatsheet (cumulative) or a task-specific synthesised one (see module doc)."""

    #: ``"cumulative"`` or ``"retrieval_synthesis"``; ``None`` reads ``ALMA_DYNAMIC_CHEATSHEET_
    #: VARIANT`` (default ``"cumulative"``). Read once per instance, in ``__init__``.
    variant: str | None = None

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        chosen = type(self).variant or _setting(VARIANT_ENV, "cumulative")
        if chosen not in VARIANTS:
            raise ValueError(
                f"unknown Dynamic Cheatsheet variant {chosen!r} (from {VARIANT_ENV} or the "
                f"class attribute 'variant'); choose one of {', '.join(VARIANTS)}"
            )
        # An instance attribute, so a snapshot keeps the variant it was built with.
        self.variant = chosen
        self.model: str | None = _setting(MODEL_ENV, MODEL)
        self.config: dict[str, Any] = {
            "variant": chosen,
            "model": self.model,
            "max_sheet_chars": MAX_SHEET_CHARS,
            "trajectory_chars": TRAJECTORY_CHARS,
            "top_k": TOP_K,
            "min_similarity": MIN_SIMILARITY,
            "temperature": TEMPERATURE,
        }
        # cumulative state
        self.sheet = ""
        self.parse_failures = 0  # curator replies without a usable sheet (sheet kept)
        # retrieval_synthesis state: episode texts, and their task-start vectors under their index
        self.episodes: list[str] = []
        self.index = VectorIndex()
        self.skipped_episodes = 0  # episodes not stored because their embedding was unusable

    async def general_update(self, trajectory: Trajectory) -> None:
        if trajectory.error:  # cut short by the harness: says nothing about the game
            return
        if self.variant == "cumulative":
            await self._curate(trajectory)
        else:
            await self._store(trajectory)

    async def _curate(self, trajectory: Trajectory) -> None:
        user = (
            f"<previous_cheatsheet>\n{self.sheet}\n</previous_cheatsheet>\n\n"
            f"<episode>\n{trajectory_text(trajectory, TRAJECTORY_CHARS)}\n</episode>"
        )
        reply = await self.ctx.llm.chat(
            [{"role": "system", "content": CURATE_SYSTEM}, {"role": "user", "content": user}],
            temperature=TEMPERATURE,
            model=self.model,
        )
        sheet = extract_sheet(reply)
        if sheet is None:
            # Keep what was learned so far (the ALMA port wiped the sheet here).
            self.parse_failures += 1
            return
        self.sheet = cap_sheet(sheet)

    async def _store(self, trajectory: Trajectory) -> None:
        vectors = await self.ctx.llm.embed([task_text(trajectory.start, TASK_CHARS)])
        try:
            if not isinstance(vectors, list) or len(vectors) != 1:
                raise ValueError(f"expected 1 embedding, got {type(vectors).__name__}")
            # The row id is the episode's position in self.episodes (both only ever append).
            self.index.add(len(self.episodes), vectors[0])
        except (ValueError, TypeError):
            self.skipped_episodes += 1
            return
        self.episodes.append(trajectory_text(trajectory, TRAJECTORY_CHARS))

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        if self.variant == "cumulative":
            return {"cheatsheet": self.sheet} if self.sheet else {}
        return await self._synthesize(task)

    async def _synthesize(self, task: TaskStart) -> dict[str, Any]:
        if not self.episodes:
            return {}
        query = task_text(task, TASK_CHARS)
        vectors = await self.ctx.llm.embed([query])
        try:
            if not isinstance(vectors, list) or len(vectors) != 1:
                raise ValueError(f"expected 1 embedding, got {type(vectors).__name__}")
            hits = self.index.search(vectors[0], TOP_K, threshold=MIN_SIMILARITY)
        except (ValueError, TypeError):
            return {}
        if not hits:
            return {}
        shown = [self.episodes[cast(int, i)] for i, _ in hits]  # ids are list positions
        blocks = [
            f'<episode rank="{rank}" similarity="{score:.2f}">\n{text}\n</episode>'
            for rank, ((_, score), text) in enumerate(zip(hits, shown, strict=True), 1)
        ]
        user = f"<task>\n{query}\n</task>\n\n" + "\n\n".join(blocks)
        reply = await self.ctx.llm.chat(
            [{"role": "system", "content": SYNTHESIZE_SYSTEM}, {"role": "user", "content": user}],
            temperature=TEMPERATURE,
            model=self.model,
        )
        sheet = extract_sheet(reply)
        if sheet is None:
            # No state to protect here; show the evidence itself rather than nothing.
            return {"similar_episodes": shown}
        return {"cheatsheet": cap_sheet(sheet)}
