"""Tests of the Reasoning Bank baseline (baselines/reasoning_bank.py) and its scripted policy.

The design is loaded in-process, as its design process loads it (``load_design`` on the file: a
trusted baseline, so no sandbox is needed here), and driven with a
fake LLM that answers chat calls with the scripted policy
(:class:`pytest_alma.llm.scripted_reasoning_bank.ReasoningBankPolicy`, a test double) and embeds
with the scripted model's hashed embeddings, counting every call so that the counts stated in
the module docstring can be checked exactly.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
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
from pytest_alma.llm import scripted_reasoning_bank as policy_module
from pytest_alma.llm.embedding import embed_text
from pytest_alma.llm.scripted_policies import FallbackPolicy
from pytest_alma.llm.scripted_reasoning_bank import ReasoningBankPolicy
from pytest_alma.records import Step, Task, TaskStart, Trajectory

BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "reasoning_bank.py"

Embedder = Callable[[str], list[float]]


class ScriptedLLM:
    """Chat answered by the scripted policy (or by ``replies``, in order); counts every call."""

    def __init__(self, embedder: Embedder = embed_text, replies: Sequence[str] = ()) -> None:
        self.embedder = embedder
        self.replies = list(replies)
        self.chats: list[dict[str, Any]] = []  # messages and keyword arguments of each chat
        self.embed_calls: list[int] = []  # number of texts per embed call

    async def chat(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> str:
        self.chats.append({"messages": list(messages), **kwargs})
        if self.replies:
            return self.replies.pop(0)
        params = {"response_format": {"type": "json_object"}} if kwargs.get("json_mode") else {}
        return ReasoningBankPolicy().reply(messages, params)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embed_calls.append(len(texts))
        return [self.embedder(t) for t in texts]

    @property
    def counts(self) -> tuple[int, list[int]]:
        return len(self.chats), list(self.embed_calls)

    def reset(self) -> None:
        self.chats = []
        self.embed_calls = []


@pytest.fixture(scope="module")
def loaded() -> LoadedDesign:
    return load_design(BASELINE)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALMA_REASONING_BANK_JUDGE", raising=False)
    monkeypatch.delenv("ALMA_REASONING_BANK_MODEL", raising=False)


def make(
    loaded: LoadedDesign, tmp_path: Path, llm: ScriptedLLM | None = None
) -> tuple[MemoryDesign, ScriptedLLM]:
    llm = llm or ScriptedLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0)
    return instantiate(loaded, ctx), llm


def start(goal: str, observation: str, task_id: str = "t") -> TaskStart:
    return TaskStart(Task("textworld", task_id, "train", 0), observation, goal, ("look",))


def episode(
    s: TaskStart,
    actions: Sequence[str],
    success: bool,
    *,
    error: str | None = None,
    last_reward: float | None = None,
    done: bool | None = None,
) -> Trajectory:
    """An episode; by default the last step is rewarded and ends the game exactly on success."""
    last_reward = (1.0 if success else 0.0) if last_reward is None else last_reward
    done = success if done is None else done
    steps = tuple(
        Step(
            a,
            f"after {a}",
            last_reward if i == len(actions) - 1 else 0.0,
            done and i == len(actions) - 1,
        )
        for i, a in enumerate(actions)
    )
    return Trajectory(s, steps, 1.0 if success else 0.0, success, error)


KITCHEN = start("put the red key on the table", "You are in a kitchen. There is a table.", "k")
CAVE = start("defeat the dragon", "A dark cave. A dragon sleeps on gold coins.", "c")
WIN = ["take red key", "go east", "put red key on table"]
LOSS = ["go west", "go west", "go west", "look"]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_loads_as_one_design_class(loaded: LoadedDesign) -> None:
    assert loaded.cls.__name__ == "ReasoningBank"


def test_prompt_markers_are_the_policys(loaded: LoadedDesign) -> None:
    assert loaded.module.EXTRACT_MARKER == policy_module.EXTRACT_MARKER
    assert loaded.module.JUDGE_MARKER == policy_module.JUDGE_MARKER


def test_success_is_distilled_into_strategy_items(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, llm = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    items = design.items  # type: ignore[attr-defined]
    assert 1 <= len(items) <= 3
    assert all(set(i) == {"title", "description", "content", "learned_from"} for i in items)
    assert all(i["learned_from"] == "success" for i in items)
    assert "put the red key on the table" in items[0]["title"]
    assert all(a in items[0]["content"] for a in WIN)
    # The success prompt was used, with the ground truth (no judge by default).
    [call] = llm.chats
    system, user = call["messages"][0]["content"], call["messages"][1]["content"]
    assert "reached its goal" in system and "did NOT" not in system
    assert "Outcome used for this extraction: success" in user
    assert call["json_mode"] is True and call["model"] is None


def test_failure_is_distilled_into_pitfall_items(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, llm = make(loaded, tmp_path)
    run(design.general_update(episode(CAVE, LOSS, False)))
    items = design.items  # type: ignore[attr-defined]
    assert len(items) == 3
    assert all(i["learned_from"] == "failure" for i in items)
    assert items[0]["title"].startswith("Pitfall")
    assert "go west" in items[2]["content"]  # the repeated action, as a pitfall
    assert "did NOT reach its goal" in llm.chats[0]["messages"][0]["content"]


def test_retrieves_the_closest_item_as_readable_dict(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    run(design.general_update(episode(CAVE, LOSS, False)))
    memory = run(design.general_retrieve(KITCHEN))
    [item] = memory["memory_items"]  # k = 1, over items
    assert item["learned_from"] == "success"
    assert "red key" in item["content"] or "red key" in item["title"]
    memory = run(design.general_retrieve(CAVE))
    assert memory["memory_items"][0]["learned_from"] == "failure"
    json.dumps(memory)  # readable and JSON-serialisable


def test_config_holds_the_defaults(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    config = design.config  # type: ignore[attr-defined]
    assert config == {
        "k": 1,
        "threshold": 0.3,
        "judge": False,
        "model": None,
        "max_items_per_episode": 3,
    }


def test_model_comes_from_the_environment(
    loaded: LoadedDesign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_REASONING_BANK_MODEL", "gpt-4o-mini")
    design, llm = make(loaded, tmp_path)
    assert design.config["model"] == "gpt-4o-mini"  # type: ignore[attr-defined]
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert llm.chats[0]["model"] == "gpt-4o-mini"


def test_empty_bank_returns_empty_dict_without_any_call(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    design, llm = make(loaded, tmp_path)
    assert run(design.general_retrieve(KITCHEN)) == {}
    assert llm.counts == (0, [])


def two_direction_embedder(cos: float) -> Embedder:
    """Texts about the kitchen map to e1; everything else to a vector at cosine ``cos`` to e1."""

    def embed(text: str) -> list[float]:
        if "kitchen" in text:
            return [1.0, 0.0, 0.0]
        return [cos, math.sqrt(1 - cos * cos), 0.0]

    return embed


@pytest.mark.parametrize(("cos", "found"), [(0.29, False), (0.31, True), (-0.5, False)])
def test_threshold_is_strictly_above_0_3(
    loaded: LoadedDesign, tmp_path: Path, cos: float, found: bool
) -> None:
    design, _ = make(loaded, tmp_path, ScriptedLLM(two_direction_embedder(cos)))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert bool(run(design.general_retrieve(CAVE))) is found


def test_call_counts_match_the_docstring(loaded: LoadedDesign, tmp_path: Path) -> None:
    doc = " ".join((loaded.module.__doc__ or "").split())
    assert "default (ground-truth) mode: 1 chat call (extraction) + 1 embed call (of n texts" in doc
    assert "judge mode: 2 chat calls (judge, then extraction) + 1 embed call (of n texts)" in doc
    assert "no valid item: 1 chat + 0 embed" in doc
    assert "``general_retrieve``: 0 chat calls + 1 embed call (of 1 text" in doc
    assert "with ``error`` set (cut short by a harness failure): 0 chat + 0 embed" in doc

    design, llm = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    n = len(design.items)  # type: ignore[attr-defined]
    assert llm.counts == (1, [n])
    llm.reset()
    run(design.general_retrieve(CAVE))
    assert llm.counts == (0, [1])
    llm.reset()
    run(design.general_update(episode(CAVE, ["look"], False, error="LLM unavailable")))
    assert llm.counts == (0, [])
    llm.replies = ["no JSON here"]
    run(design.general_update(episode(CAVE, LOSS, False)))
    assert llm.counts == (1, [])


def test_judge_mode_costs_one_more_chat_and_decides_the_label(
    loaded: LoadedDesign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALMA_REASONING_BANK_JUDGE", "1")
    design, llm = make(loaded, tmp_path)
    assert design.config["judge"] is True  # type: ignore[attr-defined]
    # The environment says success, but the game never ended the episode nor rewarded it: the
    # (scripted) judge sees only the steps and calls it a failure.
    run(design.general_update(episode(KITCHEN, WIN, True, last_reward=0.0, done=False)))
    n = len(design.items)  # type: ignore[attr-defined]
    assert llm.counts == (2, [n])
    judge, extract = llm.chats
    assert "[alma-baseline:reasoning_bank/judge]" in judge["messages"][0]["content"]
    assert judge["temperature"] == 0.0 and judge["json_mode"] is True
    assert "Outcome:" not in judge["messages"][1]["content"]  # the ground truth is not shown
    assert "Episode end: 3 steps" in judge["messages"][1]["content"]
    assert "Outcome used for this extraction: failure" in extract["messages"][1]["content"]
    assert all(i["learned_from"] == "failure" for i in design.items)  # type: ignore[attr-defined]

    llm.reset()
    run(design.general_update(episode(CAVE, WIN, False, last_reward=1.0, done=True)))
    assert llm.counts[0] == 2
    assert "Outcome used for this extraction: success" in llm.chats[1]["messages"][1]["content"]


def test_judge_mode_by_class_attribute(loaded: LoadedDesign, tmp_path: Path) -> None:
    class Judged(loaded.cls):  # type: ignore[name-defined,misc]
        use_judge = True

    llm = ScriptedLLM()
    design = Judged(DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert len(llm.chats) == 2


@pytest.mark.parametrize(
    "verdict", ["", "I cannot tell.", '{"status": "maybe"}', "success or failure"]
)
def test_unreadable_verdict_falls_back_to_ground_truth(
    loaded: LoadedDesign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verdict: str
) -> None:
    monkeypatch.setenv("ALMA_REASONING_BANK_JUDGE", "1")
    design, _ = make(loaded, tmp_path, ScriptedLLM(replies=[verdict]))
    run(design.general_update(episode(KITCHEN, WIN, True, last_reward=0.0, done=False)))
    assert design.stats["judge_unparsed"] == 1  # type: ignore[attr-defined]
    assert all(i["learned_from"] == "success" for i in design.items)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"reasoning": "it won", "status": "success"}', True),
        ('{"status": "Failure"}', False),
        ('{"success": false}', False),
        ("Thoughts: the door opened.\nStatus: success", True),
        ("The agent failed: failure.", False),
        ('```json\n{"status": "failed"}\n```', False),
    ],
)
def test_verdict_parsing(loaded: LoadedDesign, reply: str, expected: bool) -> None:
    assert loaded.module.parse_verdict(reply) is expected


MALFORMED = [
    "",
    "Scripted reply 1234: some prose and no JSON",
    "{}",
    '{"memory_items": "not a list"}',
    '{"memory_items": [{"title": "only a title"}]}',
    '{"memory_items": [{"title": "", "description": "d", "content": "c"}]}',
    '{"memory_items": [{"title": 1, "description": "d", "content": "c"}]}',
    "[1, 2, 3]",
    '{"memory_items": [{"title": "t", "description": "d", "content": "c"',  # cut off
    json.dumps(
        FallbackPolicy().reply(
            [{"role": "user", "content": "x"}], {"response_format": {"type": "json_object"}}
        )
    ),
]


@pytest.mark.parametrize("reply", MALFORMED)
def test_malformed_extraction_stores_nothing_and_keeps_the_bank(
    loaded: LoadedDesign, tmp_path: Path, reply: str
) -> None:
    design, llm = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    before = [dict(i) for i in design.items]  # type: ignore[attr-defined]
    llm.replies = [reply]
    llm.reset()
    run(design.general_update(episode(CAVE, LOSS, False)))  # must not raise
    assert design.items == before  # type: ignore[attr-defined]
    assert len(design.index) == len(before)  # type: ignore[attr-defined]
    assert llm.counts == (1, [])  # nothing to embed
    assert design.stats["extraction_unusable"] == 1  # type: ignore[attr-defined]
    assert run(design.general_retrieve(KITCHEN))["memory_items"][0] in before


def test_only_complete_items_are_kept_and_at_most_three(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    good = [{"title": f"T{i}", "description": f"D{i}", "content": f"C{i}"} for i in range(5)]
    items = [{"title": "no content", "description": "d"}, *good]
    reply = "Here you go:\n```json\n" + json.dumps({"memory_items": items}) + "\n```"
    design, llm = make(loaded, tmp_path, ScriptedLLM(replies=[reply]))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert [i["title"] for i in design.items] == ["T0", "T1", "T2"]  # type: ignore[attr-defined]
    assert llm.counts == (1, [3])


def test_long_fields_are_clipped(loaded: LoadedDesign, tmp_path: Path) -> None:
    item = {"title": "t" * 1000, "description": "d" * 1000, "content": "c" * 5000}
    design, _ = make(loaded, tmp_path, ScriptedLLM(replies=[json.dumps([item])]))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    [stored] = design.items  # type: ignore[attr-defined]
    assert len(stored["title"]) <= loaded.module.TITLE_CHARS
    assert len(stored["description"]) <= loaded.module.DESCRIPTION_CHARS
    assert len(stored["content"]) <= loaded.module.CONTENT_CHARS


def test_unusable_embeddings_drop_their_items(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path, ScriptedLLM(embedder=lambda _t: [0.0, 0.0]))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert design.items == []  # type: ignore[attr-defined]
    assert run(design.general_retrieve(KITCHEN)) == {}


def test_regression_keyerror_when_nothing_matches(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port's top-1 lookup indexed its store with None (KeyError) when nothing matched
    (empty store, below threshold). Both give {} here, as does an unusable query embedding."""
    design, llm = make(loaded, tmp_path, ScriptedLLM(two_direction_embedder(0.0)))
    assert run(design.general_retrieve(CAVE)) == {}
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert run(design.general_retrieve(CAVE)) == {}
    llm.embedder = lambda _t: [0.0, 0.0, 0.0]
    assert run(design.general_retrieve(KITCHEN)) == {}


def test_regression_reembeds_store_on_every_retrieve(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port re-embedded every stored key plus the query on each retrieval. Here items
    are embedded once, at update, and a retrieval embeds only its query, whatever the size."""
    for size in (1, 25):
        design, llm = make(loaded, tmp_path)
        for i in range(size):
            s = start(f"open chest {i}", f"A room with chest {i}.", f"t{i}")
            run(design.general_update(episode(s, ["open chest", "take gold"], True)))
        items = len(design.items)  # type: ignore[attr-defined]
        assert sum(llm.embed_calls) == items  # each item embedded exactly once
        llm.reset()
        for _ in range(3):
            run(design.general_retrieve(start("open chest 3", "A room with chest 3.")))
        assert llm.counts == (0, [1, 1, 1])


def test_regression_repeats_overwrite_earlier_lessons(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port stored one markdown blob per task key, so a repeat of the same task erased
    what the earlier episodes taught. Items are appended to the bank instead."""
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    first = len(design.items)  # type: ignore[attr-defined]
    run(design.general_update(episode(KITCHEN, LOSS, False)))
    labels = {i["learned_from"] for i in design.items}  # type: ignore[attr-defined]
    assert len(design.items) > first and labels == {"success", "failure"}  # type: ignore[attr-defined]


def test_regression_bad_reply_stored_as_memory(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port stored the extraction reply verbatim, whatever it was (an error payload or
    prose became 'memory'). Here a reply without valid items stores nothing."""
    reply = json.dumps({"error": "bad JSON", "raw_output": "oops"})
    design, _ = make(loaded, tmp_path, ScriptedLLM(replies=[reply]))
    run(design.general_update(episode(KITCHEN, WIN, True)))
    assert design.items == []  # type: ignore[attr-defined]
    assert run(design.general_retrieve(KITCHEN)) == {}


def test_concurrent_updates_keep_items_and_rows_aligned(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    design, _ = make(loaded, tmp_path)

    async def many() -> None:
        await asyncio.gather(
            *(
                design.general_update(
                    episode(start(f"goal {i}", f"room {i}", f"t{i}"), WIN, i % 2 == 0)
                )
                for i in range(10)
            )
        )

    run(many())
    assert len(design.items) == len(design.index) == design.index.ids[-1] + 1  # type: ignore[attr-defined]
    assert design.index.ids == list(range(len(design.items)))  # type: ignore[attr-defined]


def test_pickle_round_trip_preserves_behaviour(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, WIN, True)))
    run(design.general_update(episode(CAVE, LOSS, False)))
    before = [run(design.general_retrieve(s)) for s in (KITCHEN, CAVE)]
    llm = ScriptedLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(1), scratch_dir=tmp_path, seed=1)
    again = restore(loaded, ctx, snapshot(design))
    assert [run(again.general_retrieve(s)) for s in (KITCHEN, CAVE)] == before
    assert llm.counts == (0, [1, 1])  # nothing re-embedded after loading
    assert again.config == design.config  # type: ignore[attr-defined]


def _user(design_episode: Trajectory, label: str, loaded: LoadedDesign) -> str:
    return f"Outcome used for this extraction: {label}\n\n" + loaded.module.episode_text(
        design_episode
    )


def test_policy_matches_only_the_baselines_prompts(loaded: LoadedDesign) -> None:
    policy = ReasoningBankPolicy()
    assert policy.matches([{"role": "system", "content": loaded.module.JUDGE_SYSTEM}])
    assert policy.matches([{"role": "system", "content": loaded.module.EXTRACT_SUCCESS_SYSTEM}])
    assert not policy.matches([{"role": "system", "content": "You are playing TextWorld."}])


@pytest.mark.parametrize(("actions", "count"), [([], 1), (["a"], 1), (["a", "b"], 2), (WIN, 3)])
def test_policy_writes_one_to_three_items_from_the_actions(
    loaded: LoadedDesign, actions: list[str], count: int
) -> None:
    messages = [
        {"role": "system", "content": loaded.module.EXTRACT_SUCCESS_SYSTEM},
        {"role": "user", "content": _user(episode(KITCHEN, actions, True), "success", loaded)},
    ]
    reply = ReasoningBankPolicy().reply(messages, {})
    items = json.loads(reply)["memory_items"]
    assert len(items) == count
    assert all(a in items[0]["content"] for a in actions)
    assert loaded.module.parse_items(reply) == items  # the baseline reads what the double writes


def test_policy_judge_reads_the_outcome_line() -> None:
    policy = ReasoningBankPolicy()
    system = {"role": "system", "content": policy_module.JUDGE_MARKER}

    def status(user: str) -> str:
        reply = policy.reply([system, {"role": "user", "content": user}], {})
        return str(json.loads(reply)["status"])

    assert status("1. a -> b\nOutcome: success (score 1, 1 steps)") == "success"
    assert status("1. a -> b\nOutcome: failure (score 0, 1 steps)") == "failure"
    end = "Episode end: 2 steps; last step reward {}; the game ended the episode: {}"
    assert status(end.format(1, "yes")) == "success"
    assert status(end.format(1, "no")) == "failure"
    assert status(end.format(-1, "yes")) == "failure"
    assert status("no outcome at all") == "failure"
