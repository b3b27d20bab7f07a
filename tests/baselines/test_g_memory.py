"""Tests of the G-Memory baseline (``baselines/g_memory.py``) with its scripted test double.

The design is loaded the way the harness loads it (by path) and given a context whose LLM calls
the scripted policy directly and embeds with the scripted model's hashed embeddings, so the
tests are offline, fast and deterministic. Replies of one prompt kind can be overridden to test
the handling of malformed or specific answers.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_alma.design import (
    DesignContext,
    LoadedDesign,
    MemoryDesign,
    instantiate,
    load_design,
    restore,
    snapshot,
)
from pytest_alma.llm.embedding import cosine, embed_text
from pytest_alma.llm.scripted_g_memory import MARKER, GMemoryPolicy
from pytest_alma.memory import task_text
from pytest_alma.records import Step, Task, TaskStart, Trajectory

BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "g_memory.py"

ROOM = (
    "You are in the middle of a kitchen. Around you are a cabinet 1, a cabinet 2, a countertop "
    "1, a fridge 1, a microwave 1, a sinkbasin 1, a stoveburner 1 and a toaster 1."
)
OFFICE = (
    "Zorblax quivers beside seventeen violet umbrellas; hydraulic penguins juggle marmalade "
    "underneath jittery xylophones, whispering cryptograms."
)

Reply = Callable[[str], str]


class FakeLLM:
    """The design's LLM: the scripted G-Memory policy, with per-kind overrides; counts calls."""

    def __init__(self) -> None:
        self.policy = GMemoryPolicy()
        self.chats: list[str] = []  # the prompt kind of each chat call
        self.embeds: list[list[str]] = []
        self.overrides: dict[str, Reply] = {}
        self.models: list[str | None] = []

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str:
        system = messages[0]["content"]
        assert MARKER in system
        kind = system[len(MARKER) : system.index("]")]
        self.chats.append(kind)
        self.models.append(model)
        if kind in self.overrides:
            return self.overrides[kind](messages[-1]["content"])
        params = {"response_format": {"type": "json_object"}} if json_mode else {}
        return self.policy.reply(messages, params)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embeds.append(list(texts))
        return [embed_text(t) for t in texts]

    def reset(self) -> None:
        self.chats.clear()
        self.embeds.clear()


@pytest.fixture(scope="module")
def loaded() -> LoadedDesign:
    return load_design(BASELINE)


@pytest.fixture
def module(loaded: LoadedDesign) -> ModuleType:
    return loaded.module


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def ctx(llm: FakeLLM, tmp_path: Path) -> DesignContext:
    return DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0)


@pytest.fixture
def design(loaded: LoadedDesign, ctx: DesignContext) -> Any:
    return instantiate(loaded, ctx)


def start(goal: str, obs: str = ROOM, task_id: str | None = None, seed: int = 0) -> TaskStart:
    task = Task(env="alfworld", task_id=task_id or goal.replace(" ", "-"), split="train", seed=seed)
    return TaskStart(task=task, observation=obs, goal=goal, actions=("look", "go north"))


def traj(
    goal: str,
    actions: Sequence[str],
    success: bool,
    *,
    obs: str = ROOM,
    task_id: str | None = None,
    rewards: Sequence[float] | None = None,
    error: str | None = None,
) -> Trajectory:
    rewards = list(rewards) if rewards is not None else [0.0] * len(actions)
    steps = tuple(
        Step(action=a, observation=f"You did {a}.", reward=r, done=i == len(actions) - 1)
        for i, (a, r) in enumerate(zip(actions, rewards, strict=True))
    )
    return Trajectory(
        start=start(goal, obs, task_id),
        steps=steps,
        score=1.0 if success else 0.0,
        success=success,
        error=error,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def ops(*operations: dict[str, Any]) -> Reply:
    reply = json.dumps({"operations": list(operations)})
    return lambda _prompt: reply


APPLE = "put a clean apple in the fridge"
TOMATO = "put a clean tomato in the fridge"
WALK = ["go to sinkbasin 1", "clean apple 1 with sinkbasin 1", "go to fridge 1", "put apple 1"]


# -- loading, config, docstring ----------------------------------------------------------------


def test_loads_as_one_design_with_config(loaded: LoadedDesign, design: Any) -> None:
    assert loaded.cls.__name__ == "GMemory"
    assert isinstance(design, MemoryDesign)
    assert design.config["model"] is None
    assert design.config["merge_every"] == 20
    assert design.config["hops"] == 1


def test_model_env_override(
    loaded: LoadedDesign, ctx: DesignContext, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_G_MEMORY_MODEL", "gpt-4o-mini")
    design = instantiate(loaded, ctx)
    assert design.config["model"] == "gpt-4o-mini"
    run(design.general_update(traj(APPLE, WALK, True)))
    assert set(llm.models) == {"gpt-4o-mini"}


def test_docstring_states_the_costs(module: ModuleType) -> None:
    doc = " ".join((module.__doc__ or "").split())
    assert "arXiv 2506.07398" in doc
    assert "2 chat calls for a success (key steps, insight ops) or 3 for a failure" in doc
    assert "1 embed call (of 1 text) when the task query is not yet in the query graph" in doc
    assert "``general_retrieve``: 0 chat calls; 1 embed call (of 1 text), or 0 when" in doc
    assert "every 20th stored episode" in doc


# -- what is stored ----------------------------------------------------------------------------


def test_empty_store_retrieves_nothing_for_free(design: Any, llm: FakeLLM) -> None:
    assert run(design.general_retrieve(start(APPLE))) == {}
    assert llm.chats == [] and llm.embeds == []


def test_success_fills_every_tier_with_exact_costs(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, True, rewards=[0, 0, 0.5, 1.0])))
    assert llm.chats == ["key_steps", "insight_ops"]
    assert llm.embeds == [[task_text(start(APPLE), 1500)]]
    # Query graph: one node, indexed once.
    assert list(design.query_graph.nodes) == [0]
    assert len(design.query_index) == 1
    # Interaction tier: key steps from the scripted extraction (reward changes + last steps).
    (record,) = design.interactions[0]
    assert record.success and record.n_steps == 4 and record.actions == WALK
    assert record.key_steps[0] == "Step 2: clean apple 1 with sinkbasin 1"
    assert any("reward became 0.5" in step for step in record.key_steps)
    assert record.fail_reason is None
    # Insight graph: the scripted ADD names the goal, score 2, linked to the query.
    (insight,) = design.insights.values()
    assert APPLE in insight.text and insight.score == 2
    assert ("q", 0) in design.insight_graph[("i", 0)]


def test_failure_adds_a_failure_reason_call(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, ["look", "go to cabinet 1"], False)))
    assert sorted(llm.chats) == ["fail_reason", "insight_ops", "key_steps"]
    assert llm.chats[-1] == "insight_ops"
    assert len(llm.embeds) == 1
    (record,) = design.interactions[0]
    assert not record.success
    assert record.fail_reason.startswith("The episode ended in failure")
    assert "go to cabinet 1" in record.fail_reason


def test_known_query_is_not_embedded_again(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, True)))
    llm.reset()
    run(design.general_update(traj(APPLE, WALK[:2], False)))
    assert llm.embeds == []
    assert len(llm.chats) == 3
    assert len(design.query_texts) == 1 and len(design.interactions[0]) == 2


def test_error_trajectory_costs_nothing_and_stores_nothing(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, False, error="LLM unavailable")))
    assert llm.chats == [] and llm.embeds == []
    assert design.query_texts == [] and design.insights == {} and design.updates == 0


def test_per_query_interactions_are_bounded(design: Any) -> None:
    for n in range(6):
        run(design.general_update(traj(APPLE, WALK + ["wait"] * n, True)))
        run(design.general_update(traj(APPLE, ["look"] * (n + 1), False)))
    records = design.interactions[0]
    assert [r.n_steps for r in records if r.success] == [4, 5, 6]
    assert [r.n_steps for r in records if not r.success] == [5, 6]


def test_query_graph_links_similar_queries_only(design: Any) -> None:
    apple, tomato = task_text(start(APPLE), 1500), task_text(start(TOMATO), 1500)
    odd = task_text(start("feed the quantum giraffe", OFFICE), 1500)
    assert cosine(embed_text(apple), embed_text(tomato)) >= 0.7
    assert cosine(embed_text(apple), embed_text(odd)) < 0.7
    run(design.general_update(traj(APPLE, WALK, True)))
    run(design.general_update(traj(TOMATO, WALK, True)))
    run(design.general_update(traj("feed the quantum giraffe", ["jump"], True, obs=OFFICE)))
    assert set(design.query_graph.edges) == {(1, 0)} or set(design.query_graph.edges) == {(0, 1)}
    assert design.query_graph.degree(2) == 0


# -- what is retrieved -------------------------------------------------------------------------


def test_retrieve_returns_key_step_successes_and_insights(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, True, rewards=[0, 0, 0, 1])))
    llm.reset()
    memory = run(design.general_retrieve(start(APPLE, task_id="other")))
    assert llm.chats == [] and len(llm.embeds) == 1
    (example,) = memory["successful_examples"]
    assert example["actions"] == WALK
    assert example["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert example["found_by"] == "similar task"
    assert example["key_steps"] == design.interactions[0][0].key_steps
    assert memory["insights"] == [design.insights[0].text]
    json.dumps(memory)  # the harness requires JSON


def test_retrieve_below_threshold_is_empty(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, True)))
    query = task_text(start("feed the quantum giraffe", OFFICE), 1500)
    assert cosine(embed_text(query), embed_text(task_text(start(APPLE), 1500))) < 0.3
    llm.reset()
    assert run(design.general_retrieve(start("feed the quantum giraffe", OFFICE))) == {}
    assert llm.chats == [] and len(llm.embeds) == 1


def test_retrieve_is_bounded(design: Any) -> None:
    long_walk = [f"step {i}" for i in range(80)]
    for goal in (
        APPLE,
        TOMATO,
        "put a clean potato in the fridge",
        "put a clean egg in the fridge",
    ):
        run(design.general_update(traj(goal, long_walk, True)))
    memory = run(design.general_retrieve(start(APPLE)))
    assert len(memory["successful_examples"]) == 2
    assert len(memory["successful_examples"][0]["actions"]) == 31
    assert memory["successful_examples"][0]["actions"][-1] == "... (50 more actions)"
    assert len(memory["insights"]) <= 4
    assert len(json.dumps(memory)) < 6000


def test_neighbour_expansion_reaches_linked_queries(
    design: Any, module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "K_QUERIES", 1)  # only the best query is a direct hit
    run(design.general_update(traj(APPLE, ["look"], False)))  # query 0: only a failure
    run(design.general_update(traj(TOMATO, WALK, True)))  # query 1: linked to 0, a success
    assert design.query_graph.has_edge(0, 1)
    memory = run(design.general_retrieve(start(APPLE, task_id="again")))
    (example,) = memory["successful_examples"]
    assert example["found_by"] == "related task (graph neighbour)"
    assert TOMATO in example["task"] and example["actions"] == WALK
    # Without the edge, the same store shows no example for that task.
    design.query_graph.remove_edge(0, 1)
    assert "successful_examples" not in run(design.general_retrieve(start(APPLE)))


# -- insight operations, scores, pruning -------------------------------------------------------

RULE = "Clean an object at the sinkbasin before storing it, because dirty items fail the task."


def _seed_rule(design: Any, llm: FakeLLM) -> None:
    llm.overrides["insight_ops"] = ops({"op": "ADD", "text": RULE})
    run(design.general_update(traj(APPLE, WALK, True)))
    assert [(i.text, i.score) for i in design.insights.values()] == [(RULE, 2)]


def _update_with(design: Any, llm: FakeLLM, reply: Reply, success: bool = True) -> None:
    llm.overrides["insight_ops"] = reply
    run(design.general_update(traj(TOMATO, WALK, success)))


def test_op_add_starts_at_two_and_links_both_queries(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, ["look"], False)))
    llm.overrides["insight_ops"] = ops({"op": "ADD", "text": "Look around, because it helps."})
    run(design.general_update(traj(TOMATO, WALK, True)))
    new = max(design.insights)
    assert design.insights[new].score == 2
    # Linked to this episode's query (1) and to the contrasting failure's query (0).
    assert set(design.insight_graph[("i", new)]) == {("q", 0), ("q", 1)}


def test_op_add_of_an_existing_text_is_dropped(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    _update_with(design, llm, ops({"op": "ADD", "text": "  " + RULE.upper() + " "}))
    assert len(design.insights) == 1 and design.insights[0].score == 2


def test_op_agree_raises_score_and_links_query(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    _update_with(design, llm, ops({"op": "AGREE", "index": 1}))
    assert design.insights[0].score == 3
    assert ("q", 1) in design.insight_graph[("i", 0)]


def test_op_edit_replaces_text_and_raises_score(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    _update_with(design, llm, ops({"op": "EDIT", "index": "1", "text": "Clean first, because."}))
    assert design.insights[0].text == "Clean first, because."
    assert design.insights[0].score == 3 and design.insights[0].origin == "edit"


def test_op_remove_lowers_score_and_prunes_at_zero(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    _update_with(design, llm, ops({"op": "REMOVE", "index": 1}))
    assert design.insights[0].score == 1
    _update_with(design, llm, ops({"op": "REMOVE", "index": 1}))
    assert design.insights == {}
    assert ("i", 0) not in design.insight_graph


def test_remove_costs_three_when_crowded(design: Any, llm: FakeLLM) -> None:
    adds = [{"op": "ADD", "text": f"Rule number {n}, because reasons {n}."} for n in range(12)]
    for chunk in range(3):
        llm.overrides["insight_ops"] = ops(*adds[4 * chunk : 4 * chunk + 4])
        run(design.general_update(traj(APPLE, WALK, True)))
    assert len(design.insights) == 12
    _update_with(design, llm, ops({"op": "REMOVE", "index": 1}))
    assert sorted(i.score for i in design.insights.values()) == [2] * 11  # the 12th fell to -1


def test_ops_are_applied_remove_agree_edit_add_and_capped(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    reply = ops(
        {"op": "ADD", "text": "First new rule, because a."},
        {"op": "AGREE", "index": 1},
        {"op": "REMOVE", "index": 1},
        {"op": "EDIT", "index": 1, "text": "Edited rule, because b."},
        {"op": "ADD", "text": "Fifth op is ignored, because the cap is 4."},
    )
    _update_with(design, llm, reply)
    # REMOVE (-1), AGREE (+1), EDIT (+1): 3; then the ADD; the fifth op is beyond MAX_OPS.
    assert design.insights[0].text == "Edited rule, because b." and design.insights[0].score == 3
    assert sorted(i.text for i in design.insights.values()) == [
        "Edited rule, because b.",
        "First new rule, because a.",
    ]


def test_invalid_single_ops_are_skipped(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    reply = ops(
        {"op": "AGREE", "index": 7},
        {"op": "EDIT", "index": 1},
        {"op": "DANCE", "index": 1},
        {"op": "AGREE", "index": 1},
    )
    _update_with(design, llm, reply)
    assert [(i.text, i.score) for i in design.insights.values()] == [(RULE, 3)]


def test_insight_store_is_capped(design: Any, llm: FakeLLM, module: ModuleType) -> None:
    for n in range(15):
        adds = [{"op": "ADD", "text": f"Rule {n}-{m}, because {n}{m}."} for m in range(4)]
        llm.overrides["insight_ops"] = ops(*adds)
        run(design.general_update(traj(APPLE, WALK, True)))
    assert len(design.insights) == module.MAX_INSIGHTS


# -- score back-propagation ----------------------------------------------------------------------


def test_backprop_rewards_shown_insights_on_success(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    memory = run(design.general_retrieve(start(TOMATO)))
    assert memory["insights"] == [RULE]
    _update_with(design, llm, ops())
    assert design.insights[0].score == 3


def test_backprop_penalises_shown_insights_on_failure_and_prunes(design: Any, llm: FakeLLM) -> None:
    _seed_rule(design, llm)
    run(design.general_retrieve(start(TOMATO)))
    _update_with(design, llm, ops(), success=False)
    assert design.insights == {}  # 2 - 2 = 0: pruned


def test_regression_shared_insights_cache(design: Any, llm: FakeLLM) -> None:
    """The port rewarded whatever the last retrieval (of any task) returned."""
    _seed_rule(design, llm)
    run(design.general_retrieve(start(TOMATO)))
    # Another task's episode ends (it was never shown the rule): no back-propagation.
    llm.overrides["insight_ops"] = ops()
    run(design.general_update(traj("feed the quantum giraffe", ["jump"], False, obs=OFFICE)))
    assert design.insights[0].score == 2
    assert design.pending  # the tomato task's record is still waiting for its episode


# -- merging ------------------------------------------------------------------------------------


def test_merge_every_n_updates_with_one_call(
    design: Any, llm: FakeLLM, module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MERGE_EVERY", 3)
    llm.overrides["insight_ops"] = ops(
        {"op": "ADD", "text": "Open the fridge before putting food inside, because it is shut."},
        {"op": "ADD", "text": "Open the fridge before putting the food inside, because it shuts."},
        {"op": "ADD", "text": "Unrelated: walk slowly near stoves, because burns hurt."},
    )
    run(design.general_update(traj(APPLE, WALK, True)))
    llm.overrides["insight_ops"] = ops({"op": "AGREE", "index": 2})
    run(design.general_update(traj(TOMATO, WALK, True)))
    llm.overrides["insight_ops"] = ops()
    llm.reset()
    run(design.general_update(traj(TOMATO, WALK, True)))
    assert llm.chats == ["key_steps", "insight_ops", "merge"]
    texts = sorted((i.text, i.score, i.origin) for i in design.insights.values())
    assert len(texts) == 2
    merged = next(i for i, ins in design.insights.items() if ins.origin == "merge")
    assert design.insights[merged].text.startswith("Open the fridge before putting the food")
    assert design.insights[merged].score == 3  # max of the sources (2 and 2+1)
    assert set(design.insight_graph[("i", merged)]) == {("q", 0), ("q", 1)}
    assert design.merges == 1


def test_no_merge_call_with_fewer_than_two_insights(
    design: Any, llm: FakeLLM, module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "MERGE_EVERY", 2)
    llm.overrides["insight_ops"] = ops()
    run(design.general_update(traj(APPLE, WALK, True)))
    run(design.general_update(traj(APPLE, WALK, True)))
    assert "merge" not in llm.chats


@pytest.mark.parametrize("reply", ["", "not json {", '{"insights": "x"}', '{"other": []}'])
def test_malformed_merge_reply_changes_nothing(
    design: Any, llm: FakeLLM, module: ModuleType, monkeypatch: pytest.MonkeyPatch, reply: str
) -> None:
    monkeypatch.setattr(module, "MERGE_EVERY", 1)
    llm.overrides["merge"] = lambda _p: reply
    llm.overrides["insight_ops"] = ops(
        {"op": "ADD", "text": "A, because a."}, {"op": "ADD", "text": "B, because b."}
    )
    run(design.general_update(traj(APPLE, WALK, True)))
    assert "merge" in llm.chats
    assert sorted(i.text for i in design.insights.values()) == ["A, because a.", "B, because b."]


# -- malformed replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    ["", "I think you did great!", "{broken", "[1, 2", '{"operations": "ADD"}', "null", "[]"],
)
def test_malformed_ops_reply_changes_no_insight(design: Any, llm: FakeLLM, reply: str) -> None:
    _seed_rule(design, llm)
    _update_with(design, llm, lambda _p: reply)
    assert [(i.text, i.score) for i in design.insights.values()] == [(RULE, 2)]
    assert len(design.interactions[1]) == 1  # the episode itself is still stored


def test_empty_key_steps_and_fail_reason_fall_back(design: Any, llm: FakeLLM) -> None:
    llm.overrides["key_steps"] = lambda _p: "  \n Key steps:\n"
    llm.overrides["fail_reason"] = lambda _p: ""
    actions = [f"move {i}" for i in range(8)]
    run(design.general_update(traj(APPLE, actions, False)))
    (record,) = design.interactions[0]
    assert record.key_steps == [f"Step {i}: move {i - 1}" for i in range(4, 9)]
    assert record.fail_reason == "Failed with score 0 after 8 steps; last action: move 7."


def test_key_steps_reply_is_bounded_and_cleaned(design: Any, llm: FakeLLM) -> None:
    llm.overrides["key_steps"] = lambda _p: "\n".join(f"{i}. did thing {i}" for i in range(20))
    run(design.general_update(traj(APPLE, WALK, True)))
    assert design.interactions[0][0].key_steps == [f"did thing {i}" for i in range(8)]


def test_unusable_embedding_drops_the_episode(design: Any, llm: FakeLLM) -> None:
    async def zero(texts: Sequence[str]) -> list[list[float]]:
        return [[0.0] * 8 for _ in texts]

    llm.embed = zero  # type: ignore[method-assign]
    run(design.general_update(traj(APPLE, WALK, True)))
    assert llm.chats == [] and design.query_texts == []


def test_llm_exception_leaves_memory_unchanged(design: Any, llm: FakeLLM) -> None:
    run(design.general_update(traj(APPLE, WALK, True)))
    before = pickle.dumps(design)

    def boom(_prompt: str) -> str:
        raise RuntimeError("budget exhausted")

    llm.overrides["insight_ops"] = boom
    with pytest.raises(RuntimeError):
        run(design.general_update(traj(TOMATO, WALK, False)))
    assert pickle.dumps(design) == before


# -- pickling ------------------------------------------------------------------------------------


def test_snapshot_round_trip_preserves_behaviour(
    loaded: LoadedDesign, design: Any, ctx: DesignContext, llm: FakeLLM
) -> None:
    run(design.general_update(traj(APPLE, WALK, True)))
    run(design.general_update(traj(TOMATO, ["look"], False)))
    expected = run(design.general_retrieve(start(TOMATO)))
    copy = restore(loaded, ctx, snapshot(design))
    assert copy is not design and "ctx" not in pickle.loads(pickle.dumps(design)).__dict__
    assert run(copy.general_retrieve(start(TOMATO))) == expected
    # The restored memory keeps learning (the vector store regrows from its trimmed size).
    run(copy.general_update(traj("put a clean egg in the fridge", WALK, True)))
    assert len(copy.query_texts) == 3 and len(copy.query_index) == 3


# -- regressions of the ALMA port ----------------------------------------------------------------


def test_regression_failures_returned_as_successful_shots(design: Any) -> None:
    """The port refilled "successful shots" with a search on label False (failures)."""
    failed = ["look", "go to cabinet 1", "open cabinet 1"]
    run(design.general_update(traj(APPLE, failed, False)))
    # Only failures stored: no examples at all (the insight may still be shown).
    assert "successful_examples" not in run(design.general_retrieve(start(APPLE)))
    run(design.general_update(traj(TOMATO, WALK, True)))
    memory = run(design.general_retrieve(start(APPLE)))
    assert [e["actions"] for e in memory["successful_examples"]] == [WALK]


def test_regression_rerank_discarded(design: Any) -> None:
    """The port computed a relevance ranking and then used the unranked first candidate."""
    long_plan = ["look", "look", *WALK]
    # Stored first: the less similar query, and for the best query the longer plan first.
    run(design.general_update(traj(TOMATO, WALK, True)))
    run(design.general_update(traj(APPLE, long_plan, True)))
    run(design.general_update(traj(APPLE, WALK[:3], True)))
    memory = run(design.general_retrieve(start(APPLE, task_id="query")))
    examples = memory["successful_examples"]
    assert [APPLE in e["task"] for e in examples] == [True, False]
    similarities = [e["similarity"] for e in examples]
    assert similarities == sorted(similarities, reverse=True)
    assert examples[0]["actions"] == WALK[:3]  # the shortest success of the best query


# -- speed ---------------------------------------------------------------------------------------


# -- the scripted test double ----------------------------------------------------------------------


def test_scripted_policy_answers_only_g_memory_prompts() -> None:
    policy = GMemoryPolicy()
    agent = [
        {"role": "system", "content": "You play Baba Is AI."},
        {"role": "user", "content": "x"},
    ]
    assert not policy.matches(agent)
    prompt = (
        "Existing insights:\n1. Open the fridge before storing food, because it is shut. "
        "(score 2)\n2. Jump twice, because why not. (score 5)\n\nCurrent trajectory:\nTask:\n"
        "Goal: store food in the fridge\nKey steps:\n- Step 1: open fridge 1\n"
        "Outcome: success (score 1, 1 steps)"
    )
    messages = [
        {"role": "system", "content": f"{MARKER}insight_ops] ..."},
        {"role": "user", "content": prompt},
    ]
    assert policy.matches(messages)
    first = policy.reply(messages, {})
    assert first == policy.reply(messages, {})  # deterministic
    assert json.loads(first) == {
        "operations": [
            {"op": "AGREE", "index": 1},
            {
                "op": "ADD",
                "text": "When the goal is 'store food in the fridge', repeat what worked "
                "(Step 1: open fridge 1).",
            },
        ]
    }
