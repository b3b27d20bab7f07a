"""Tests of the trajectory-retrieval baseline (baselines/trajectory_retrieval.py).

The design is loaded in-process, as its design process loads it (``load_design`` on the file: a
trusted baseline, so no sandbox is needed here), and driven with a
fake LLM whose embeddings are the scripted model's deterministic hashed ones, and which counts
every call, so the call counts stated in the module docstring can be checked exactly.
"""

from __future__ import annotations

import asyncio
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
from pytest_alma.llm.embedding import embed_text
from pytest_alma.records import Step, Task, TaskStart, Trajectory

BASELINE = Path(__file__).resolve().parents[2] / "baselines" / "trajectory_retrieval.py"

Embedder = Callable[[str], list[float]]


class CountingLLM:
    """Embeds with ``embedder`` (default: the scripted model's hashed embeddings); counts calls."""

    def __init__(self, embedder: Embedder = embed_text) -> None:
        self.embedder = embedder
        self.chat_calls = 0
        self.embed_calls: list[int] = []  # number of texts per embed call

    async def chat(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> str:
        self.chat_calls += 1
        raise AssertionError("trajectory retrieval must not chat")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embed_calls.append(len(texts))
        return [self.embedder(t) for t in texts]

    def reset(self) -> None:
        self.chat_calls = 0
        self.embed_calls = []


@pytest.fixture(scope="module")
def loaded() -> LoadedDesign:
    return load_design(BASELINE)


def make(
    loaded: LoadedDesign, tmp_path: Path, llm: CountingLLM | None = None
) -> tuple[MemoryDesign, CountingLLM]:
    llm = llm or CountingLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(0), scratch_dir=tmp_path, seed=0)
    return instantiate(loaded, ctx), llm


def start(goal: str, observation: str, task_id: str = "t") -> TaskStart:
    return TaskStart(Task("textworld", task_id, "train", 0), observation, goal, ("look",))


def episode(
    s: TaskStart, actions: Sequence[str], success: bool, error: str | None = None
) -> Trajectory:
    steps = tuple(
        Step(a, f"after {a}", 1.0 if success and i == len(actions) - 1 else 0.0, False)
        for i, a in enumerate(actions)
    )
    return Trajectory(s, steps, 1.0 if success else 0.0, success, error)


KITCHEN = start("put the red key on the table", "You are in a kitchen. There is a table.", "k")
CAVE = start("defeat the dragon", "A dark cave. A dragon sleeps on gold coins.", "c")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_loads_as_one_design_class(loaded: LoadedDesign) -> None:
    assert loaded.cls.__name__ == "TrajectoryRetrieval"


def test_stores_and_retrieves_the_most_similar_episode(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, ["take red key", "put red key on table"], True)))
    run(design.general_update(episode(CAVE, ["attack dragon", "flee"], False)))
    memory = run(design.general_retrieve(KITCHEN))
    [hit] = memory["retrieved_similar_tasks"]  # k = 1
    assert hit["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert "take red key" in hit["trajectory"]
    assert "put red key on table" in hit["trajectory"]
    assert "Outcome: success" in hit["trajectory"]
    memory = run(design.general_retrieve(CAVE))
    [hit] = memory["retrieved_similar_tasks"]
    assert "attack dragon" in hit["trajectory"]
    assert "Outcome: failure" in hit["trajectory"]  # failures are stored too, as in ALMA


def test_config_holds_the_alma_defaults(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    config = design.config  # type: ignore[attr-defined]
    assert config["k"] == 1
    assert config["threshold"] == 0.3
    assert config["model"] is None


def test_empty_store_returns_empty_dict_without_any_call(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    design, llm = make(loaded, tmp_path)
    assert run(design.general_retrieve(KITCHEN)) == {}
    assert llm.embed_calls == [] and llm.chat_calls == 0


def two_direction_embedder(cos: float) -> Embedder:
    """Texts about the kitchen map to e1; everything else to a vector at cosine ``cos`` to e1."""

    def embed(text: str) -> list[float]:
        if "kitchen" in text:
            return [1.0, 0.0, 0.0]
        return [cos, math.sqrt(1 - cos * cos), 0.0]

    return embed


@pytest.mark.parametrize(("cos", "found"), [(0.29, False), (0.31, True), (-0.9, False)])
def test_threshold_is_strictly_above_0_3(
    loaded: LoadedDesign, tmp_path: Path, cos: float, found: bool
) -> None:
    design, _ = make(loaded, tmp_path, CountingLLM(two_direction_embedder(cos)))
    run(design.general_update(episode(KITCHEN, ["take red key"], True)))
    memory = run(design.general_retrieve(CAVE))
    assert bool(memory) is found
    if found:
        assert memory["retrieved_similar_tasks"][0]["similarity"] == pytest.approx(cos, abs=1e-3)


def test_regression_keyerror_when_nothing_matches(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port indexed its store with None (KeyError) on an empty store, a below-threshold
    match, or an embedding failure, failing the episode. Each must give {} instead."""
    design, _ = make(loaded, tmp_path, CountingLLM(two_direction_embedder(0.0)))
    assert run(design.general_retrieve(CAVE)) == {}  # empty store
    run(design.general_update(episode(KITCHEN, ["take red key"], True)))
    assert run(design.general_retrieve(CAVE)) == {}  # below the threshold

    # An unusable query embedding (all zeros, wrong size, none at all) is no match either.
    for bad in ([0.0, 0.0, 0.0], [1.0, 0.0], []):
        design.ctx.llm.embedder = lambda _text, bad=bad: bad  # type: ignore[attr-defined]
        assert run(design.general_retrieve(KITCHEN)) == {}

    class NoVectors(CountingLLM):
        async def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return []

    design.ctx.llm = NoVectors()
    assert run(design.general_retrieve(KITCHEN)) == {}


def test_regression_reembeds_store_on_every_retrieve(loaded: LoadedDesign, tmp_path: Path) -> None:
    """The ALMA port embedded every stored key plus the query on each retrieval (N+1 embeddings
    per call). Here each stored key is embedded once at update and a retrieval embeds only the
    query, whatever the store size."""
    for size in (1, 40):
        design, llm = make(loaded, tmp_path)
        for i in range(size):
            s = start(f"goal number {i}", f"room {i} with a door", f"t{i}")
            run(design.general_update(episode(s, ["open door"], i % 2 == 0)))
        assert llm.embed_calls == [1] * size  # one text per stored trajectory, once
        llm.reset()
        for _ in range(3):
            run(design.general_retrieve(start("goal number 3", "room 3 with a door")))
        assert llm.embed_calls == [1, 1, 1]  # one query text per retrieve, nothing else
        assert llm.chat_calls == 0


def test_call_counts_match_the_docstring(loaded: LoadedDesign, tmp_path: Path) -> None:
    doc = loaded.module.__doc__ or ""
    assert "``general_update``: 0 chat calls + 1 embed call (of 1 text)" in doc
    assert "``general_retrieve``: 0 chat calls + 1 embed call (of 1 text" in doc
    design, llm = make(loaded, tmp_path)

    run(design.general_update(episode(KITCHEN, ["take red key"], False)))
    assert (llm.chat_calls, llm.embed_calls) == (0, [1])
    llm.reset()
    # The same start again: the key and so its embedding are unchanged, nothing is embedded.
    run(design.general_update(episode(KITCHEN, ["take red key", "drop key"], True)))
    assert (llm.chat_calls, llm.embed_calls) == (0, [])
    # A trajectory cut short by a harness failure is skipped.
    run(design.general_update(episode(CAVE, ["look"], False, error="LLM unavailable")))
    assert (llm.chat_calls, llm.embed_calls) == (0, [])
    run(design.general_retrieve(CAVE))
    assert (llm.chat_calls, llm.embed_calls) == (0, [1])


def test_same_start_replaces_but_failure_never_replaces_success(
    loaded: LoadedDesign, tmp_path: Path
) -> None:
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, ["wander"], False)))
    run(design.general_update(episode(KITCHEN, ["take red key", "put red key on table"], True)))
    run(design.general_update(episode(KITCHEN, ["sleep"], False)))
    [hit] = run(design.general_retrieve(KITCHEN))["retrieved_similar_tasks"]
    assert "put red key on table" in hit["trajectory"]
    assert "sleep" not in hit["trajectory"] and "wander" not in hit["trajectory"]
    assert len(design.entries) == 1 and len(design.index) == 1  # type: ignore[attr-defined]


def test_concurrent_updates_of_one_start_keep_one_row(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)

    async def both() -> None:
        await asyncio.gather(
            design.general_update(episode(KITCHEN, ["a"], True)),
            design.general_update(episode(KITCHEN, ["b"], True)),
        )

    run(both())
    assert len(design.entries) == 1 and len(design.index) == 1  # type: ignore[attr-defined]


def test_k_above_one_returns_best_first(loaded: LoadedDesign, tmp_path: Path) -> None:
    class Top3(loaded.cls):  # type: ignore[name-defined,misc]
        k = 3

    ctx = DesignContext(llm=CountingLLM(), rng=random.Random(0), scratch_dir=tmp_path, seed=0)
    design = Top3(ctx)
    for i in range(5):
        s = start(f"open the chest {i}", f"A room with chest {i} and a key", f"t{i}")
        run(design.general_update(episode(s, [f"open chest {i}"], True)))
    hits = run(design.general_retrieve(start("open the chest 2", "A room with chest 2 and a key")))
    sims = [h["similarity"] for h in hits["retrieved_similar_tasks"]]
    assert len(sims) == 3 and sims == sorted(sims, reverse=True)
    assert "open chest 2" in hits["retrieved_similar_tasks"][0]["trajectory"]


def test_retrieved_text_is_bounded(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    actions = [f"move to square number {i} " + "x" * 200 for i in range(300)]
    run(design.general_update(episode(KITCHEN, actions, False)))
    [hit] = run(design.general_retrieve(KITCHEN))["retrieved_similar_tasks"]
    assert len(hit["trajectory"]) <= loaded.module.TRAJECTORY_CHARS
    assert "steps omitted" in hit["trajectory"]
    assert hit["trajectory"].endswith("Outcome: failure (score 0, 300 steps)")


def test_pickle_round_trip_preserves_behaviour(loaded: LoadedDesign, tmp_path: Path) -> None:
    design, _ = make(loaded, tmp_path)
    run(design.general_update(episode(KITCHEN, ["take red key"], True)))
    run(design.general_update(episode(CAVE, ["attack dragon"], False)))
    before = [run(design.general_retrieve(s)) for s in (KITCHEN, CAVE)]
    llm = CountingLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(1), scratch_dir=tmp_path, seed=1)
    again = restore(loaded, ctx, snapshot(design))
    assert [run(again.general_retrieve(s)) for s in (KITCHEN, CAVE)] == before
    assert llm.embed_calls == [1, 1]  # nothing re-embedded after loading
    run(again.general_update(episode(start("new goal", "new room"), ["go"], True)))
    assert len(again.entries) == 3  # type: ignore[attr-defined]
