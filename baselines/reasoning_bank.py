"""ReasoningBank: distil each episode into a few reusable lessons, retrieve the closest lesson.

Paper: Ouyang et al., "ReasoningBank: Scaling Agent Self-Evolving with Reasoning Memory"
(Google, arXiv 2509.25140). This is the "Reasoning Bank" baseline of ALMA (arXiv 2602.07755;
the reference's ``memo_archive/baseline/memo_structure_insights_traj_sim.py``).

What it stores: memory items ``{title, description, content}`` (at most ``MAX_ITEMS`` = 3 per
episode), written by an LLM from each finished episode: transferable strategies from a success,
pitfalls and preventive lessons from a failure. Each item is embedded once, when it is stored,
into a :class:`~pytest_alma.memory.VectorIndex`; the embedded text is the episode's task start
(goal and first observation) followed by the item's title and description, so that items are
found by task similarity (as the paper's code, which searches by task query) while each item
keeps its own row. Consolidation is plain append, as in the paper.

Success or failure: by default the environment's ground truth (``trajectory.success``), as ALMA
does. With the paper's LLM-as-judge mode (environment variable ``ALMA_REASONING_BANK_JUDGE=1``,
or the class attribute ``use_judge = True``), an extra chat call (temperature 0) labels the
episode from its steps alone: the judge is not shown the harness's outcome, only the steps and
how the episode ended (last reward, whether the environment ended it). An unreadable verdict
falls back to the ground truth (counted in ``self.stats["judge_unparsed"]``).

What it retrieves: the ``K`` (default 1, as the paper and ALMA) items most cosine-similar to
the new task's start, strictly above ``THRESHOLD`` (0.3, ALMA's value), as
``{"memory_items": [{"title", "description", "content", "learned_from"}, ...]}`` (best first;
``learned_from`` is ``"success"`` or ``"failure"``). An empty bank, or nothing above the
threshold, gives ``{}``.

Cost per call (exact; the harness counts them):

- ``general_update``, default (ground-truth) mode: 1 chat call (extraction) + 1 embed call (of
  n texts, n = the number of valid items in the reply, 1 to 3). When the reply holds no valid
  item: 1 chat + 0 embed.
- ``general_update``, judge mode: 2 chat calls (judge, then extraction) + 1 embed call (of n
  texts); 2 chat + 0 embed when the reply holds no valid item.
- ``general_update`` of a trajectory with ``error`` set (cut short by a harness failure):
  0 chat + 0 embed, in both modes (it is skipped).
- ``general_retrieve``: 0 chat calls + 1 embed call (of 1 text: the query), whatever the bank
  size; 0 chat + 0 embed when the bank is empty.

Internal model: ``MODEL`` (``None`` = the run's model), overridden by the environment variable
``ALMA_REASONING_BANK_MODEL``; passed as ``model=`` to every chat call. The settings in force are
in ``self.config``.

Robustness: a malformed extraction reply (not JSON, no items, items missing a field, empty
text) stores nothing for that episode (only the items that are complete are kept) and never
raises; the bank keeps what it had. Unusable embeddings (wrong count, wrong size, all zeros)
drop their items. Counters of such events are in ``self.stats``.

Where it deliberately differs from the ALMA port, and why:

- Memory is a bank of items embedded one by one, and top-k is over items, as in the paper; the
  port stored each episode's raw markdown under its task key and overwrote it when the same task
  came again (so repeats erased earlier lessons).
- Fixes the port's re-embedding of every key on each retrieval (N+1 embeddings per call):
  items are embedded once at update, and retrieval embeds only the query.
- Fixes the port's crash paths: an empty bank or a below-threshold match returns ``{}``, and a
  bad LLM reply stores nothing instead of storing the error text as a memory.
- The paper's LLM judge is available (the port always used the ground truth); ground truth
  stays the default so that results are comparable with ALMA.
- The prompts are written for text games (the port kept the paper's "expert in web navigation"
  wording) and ask for JSON, which is parsed and validated, instead of free markdown.
- The port hard-coded gpt-4o-mini; here the model is the run's unless ``MODEL`` says otherwise.
- Episodes cut short by a harness failure are skipped: they say nothing about the task.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from pytest_alma import MemoryDesign, TaskStart, Trajectory
from pytest_alma.memory import VectorIndex, clip, task_text, trajectory_text, usable_vector

MODEL: str | None = None  # None: the run's model; ALMA_REASONING_BANK_MODEL overrides it
K = 1  # the paper's (and ALMA's) top-1
THRESHOLD = 0.3  # ALMA's cosine cut-off (strict); the paper has none
MAX_ITEMS = 3  # the paper's limit per episode
TASK_CHARS = 1000  # bound on the task text that keys items and queries
EPISODE_CHARS = 6000  # bound on the episode text shown to the judge and the extractor
TITLE_CHARS, DESCRIPTION_CHARS, CONTENT_CHARS = 120, 300, 1000

# Distinctive markers so that the scripted test double (pytest_alma/llm/
# scripted_reasoning_bank.py) recognises these prompts; they mean nothing to a real model.
EXTRACT_MARKER = "[alma-baseline:reasoning_bank/extract]"
JUDGE_MARKER = "[alma-baseline:reasoning_bank/judge]"
LABEL_PREFIX = "Outcome used for this extraction:"

_ITEM_FORMAT = (
    "Answer with a JSON object only, of this shape:\n"
    '{"memory_items": [{"title": "a short name for the lesson", '
    '"description": "one sentence saying what the lesson is about", '
    '"content": "one to three sentences: the lesson itself, stated so that it helps on other '
    'tasks"}]}'
)

EXTRACT_SUCCESS_SYSTEM = f"""{EXTRACT_MARKER}
You maintain a memory of reasoning lessons for an agent that plays text-based games. You are
shown one episode in which the agent reached its goal. First work out why the actions taken led
to success. Then write at most {MAX_ITEMS} memory items, each a strategy that would help on other
tasks of the same kind. Prefer general lessons (how to explore, what to check first, which order
of actions works) over a replay of this episode; name this episode's specific objects or places
only when the lesson depends on them. Do not repeat the same lesson twice.
{_ITEM_FORMAT}"""

EXTRACT_FAILURE_SYSTEM = f"""{EXTRACT_MARKER}
You maintain a memory of reasoning lessons for an agent that plays text-based games. You are
shown one episode in which the agent did NOT reach its goal. First reflect on what went wrong:
which actions wasted steps, what the agent misread or never tried. Then write at most
{MAX_ITEMS} memory items, each a pitfall to avoid or a preventive strategy that would help on
other tasks of the same kind. Prefer general lessons over a replay of this episode; name this
episode's specific objects or places only when the lesson depends on them.
{_ITEM_FORMAT}"""

JUDGE_SYSTEM = f"""{JUDGE_MARKER}
You judge whether an agent playing a text-based game achieved its goal. You are shown the goal,
the first observation, each action with the game's answer, and how the episode ended. Decide
from this evidence alone: an episode the game ended with a reward for reaching the goal is a
success; running out of steps, dying or never completing the goal is a failure.
Answer with a JSON object only: {{"reasoning": "one or two sentences", "status": "success"}} or
{{"reasoning": "one or two sentences", "status": "failure"}}."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def episode_text(trajectory: Trajectory) -> str:
    """The episode without the harness's verdict: task, steps, and how it ended.

    The judge must decide from the steps, so the ``Outcome:`` line of
    :func:`~pytest_alma.memory.trajectory_text` (which states the ground truth) is replaced by
    the facts a player would see: the number of steps, the last reward, whether the game ended.
    """
    text = trajectory_text(trajectory, max_chars=EPISODE_CHARS)
    body = text.rsplit("\n", 1)[0]  # trajectory_text always ends with its Outcome line
    steps = trajectory.steps
    if steps:
        last = steps[-1]
        ending = (
            f"Episode end: {len(steps)} steps; last step reward {last.reward:g}; "
            f"the game ended the episode: {'yes' if last.done else 'no'}"
        )
    else:
        ending = "Episode end: 0 steps; the game ended the episode: no"
    return f"{body}\n{ending}"


def _first_json(text: str) -> Any:
    """The first JSON object or array in ``text`` (code fences and prose around it allowed)."""
    if not isinstance(text, str):
        return None
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        return value
    return None


def parse_items(reply: str) -> list[dict[str, str]]:
    """The valid memory items in an extraction reply (at most ``MAX_ITEMS``; may be empty).

    Accepts ``{"memory_items": [...]}``, ``{"items": [...]}``, a bare list, or a single item
    object. An item is valid when title, description and content are all non-empty strings;
    fields are clipped to their bounds. Anything else is ignored.
    """
    data = _first_json(reply)
    if isinstance(data, dict):
        if "memory_items" in data or "items" in data:
            data = data.get("memory_items", data.get("items"))
        else:
            data = [data]
    if not isinstance(data, list):
        return []
    items: list[dict[str, str]] = []
    for raw in data:
        if not isinstance(raw, dict):
            continue
        fields = {k: raw.get(k) for k in ("title", "description", "content")}
        if not all(isinstance(v, str) and v.strip() for v in fields.values()):
            continue
        items.append(
            {
                "title": clip(" ".join(str(fields["title"]).split()), TITLE_CHARS),
                "description": clip(
                    " ".join(str(fields["description"]).split()), DESCRIPTION_CHARS
                ),
                "content": clip(str(fields["content"]).strip(), CONTENT_CHARS),
            }
        )
        if len(items) == MAX_ITEMS:
            break
    return items


def parse_verdict(reply: str) -> bool | None:
    """The judge's verdict: True (success), False (failure), or None when unreadable."""
    data = _first_json(reply)
    if isinstance(data, dict):
        status = data.get("status", data.get("verdict"))
        if isinstance(status, str):
            word = status.strip().lower()
            if word.startswith("succ"):
                return True
            if word.startswith("fail"):
                return False
        if isinstance(data.get("success"), bool):
            return bool(data["success"])
    if not isinstance(reply, str):
        return None
    # Prose: "Status: success", or exactly one of the two words anywhere.
    found = re.search(r"status\W{0,5}(success|failure)", reply, re.IGNORECASE)
    if found:
        return found.group(1).lower() == "success"
    words = {w.lower() for w in re.findall(r"\b(success|failure)\b", reply, re.IGNORECASE)}
    return (words == {"success"}) if len(words) == 1 else None


class ReasoningBank(MemoryDesign):
    """LLM-distilled strategy and pitfall items, embedded once each; top-k items at retrieval."""

    k: int = K
    threshold: float = THRESHOLD
    #: None: read ALMA_REASONING_BANK_JUDGE when the design is built.
    use_judge: bool | None = None

    def __init__(self, ctx: Any = None) -> None:
        super().__init__(ctx)
        judge = _env_flag("ALMA_REASONING_BANK_JUDGE") if self.use_judge is None else self.use_judge
        self.config: dict[str, Any] = {
            "k": self.k,
            "threshold": self.threshold,
            "judge": bool(judge),
            "model": os.environ.get("ALMA_REASONING_BANK_MODEL") or MODEL,
            "max_items_per_episode": MAX_ITEMS,
        }
        self.index = VectorIndex()  # one row per item; the row id is the item's position
        self.items: list[dict[str, str]] = []
        self.stats: dict[str, int] = {
            "episodes_skipped": 0,
            "extraction_unusable": 0,
            "judge_unparsed": 0,
            "embeddings_unusable": 0,
        }

    async def _judge(self, episode: str, fallback: bool) -> bool:
        reply = await self.ctx.llm.chat(
            [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": episode}],
            temperature=0.0,
            json_mode=True,
            model=self.config["model"],
        )
        verdict = parse_verdict(reply)
        if verdict is None:
            self.stats["judge_unparsed"] += 1
            return fallback
        return verdict

    async def general_update(self, trajectory: Trajectory) -> None:
        """Label the episode, have the LLM write up to 3 items, embed and append them."""
        if trajectory.error:
            self.stats["episodes_skipped"] += 1
            return
        episode = episode_text(trajectory)
        success = bool(trajectory.success)
        if self.config["judge"]:
            success = await self._judge(episode, success)
        label = "success" if success else "failure"
        reply = await self.ctx.llm.chat(
            [
                {
                    "role": "system",
                    "content": EXTRACT_SUCCESS_SYSTEM if success else EXTRACT_FAILURE_SYSTEM,
                },
                {"role": "user", "content": f"{LABEL_PREFIX} {label}\n\n{episode}"},
            ],
            json_mode=True,
            model=self.config["model"],
        )
        items = parse_items(reply)
        if not items:
            self.stats["extraction_unusable"] += 1
            return
        key = task_text(trajectory.start, TASK_CHARS)
        vectors = await self.ctx.llm.embed(
            [f"{key}\n{item['title']}. {item['description']}" for item in items]
        )
        if not isinstance(vectors, list) or len(vectors) != len(items):
            self.stats["embeddings_unusable"] += len(items)
            return
        # No await from here on: concurrent updates cannot interleave between the two appends.
        for item, vector in zip(items, vectors, strict=True):
            if not usable_vector(vector, self.index.dim):
                self.stats["embeddings_unusable"] += 1
                continue
            self.index.add(len(self.items), vector)
            self.items.append({**item, "learned_from": label})

    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:
        """The ``k`` items closest to the task's start above the threshold, or ``{}``."""
        if not self.items:
            return {}  # nothing to match: not even the query is embedded
        vectors = await self.ctx.llm.embed([task_text(task, TASK_CHARS)])
        if not isinstance(vectors, list) or len(vectors) != 1:
            return {}
        if not usable_vector(vectors[0], self.index.dim):
            return {}
        found = self.index.search(vectors[0], self.k)
        # ALMA's test is strict (> threshold); VectorIndex's threshold is inclusive.
        hits = [i for i, score in found if isinstance(i, int) and score > self.threshold]
        if not hits:
            return {}
        return {"memory_items": [dict(self.items[i]) for i in hits]}
