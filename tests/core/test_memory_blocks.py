"""The memory building blocks: VectorIndex and the bounded text forms."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from pytest_alma.memory import VectorIndex, clip, task_text, trajectory_text
from pytest_alma.records import Step, Task, TaskStart, Trajectory


def test_search_returns_the_most_similar_first_with_cosines() -> None:
    index = VectorIndex()
    index.add_many(["x", "y", "xy"], [[1, 0], [0, 1], [1, 1]])
    found = index.search([1, 0.1], k=2)
    assert [i for i, _ in found] == ["x", "xy"]
    assert found[0][1] == pytest.approx(1 / np.sqrt(1.01), rel=1e-5)
    assert index.search([1, 0], k=10, threshold=0.9) == [("x", pytest.approx(1.0))]


def test_empty_index_zero_query_and_k_zero_give_nothing() -> None:
    assert VectorIndex().search([1.0, 2.0], k=3) == []
    index = VectorIndex(2)
    index.add("a", [1, 1])
    assert index.search([0, 0], k=1) == [] and index.search([1, 1], k=0) == []


def test_bad_vectors_are_clear_errors() -> None:
    index = VectorIndex(3)
    with pytest.raises(ValueError, match="size 2, this index holds 3"):
        index.add("a", [1, 2])
    with pytest.raises(ValueError, match="zero vector"):
        index.add("a", [0, 0, 0])
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        index.add_many(["a", "b"], [[1, 2, 3]])


def test_appends_grow_incrementally_and_agree_with_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1000, 16))
    index = VectorIndex()
    for i, v in enumerate(vectors):  # one at a time: amortised growth, never re-normalised
        index.add(i, v)
    query = rng.normal(size=16)
    brute = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ (
        query / np.linalg.norm(query)
    )
    expected = list(np.argsort(-brute)[:5])
    assert [i for i, _ in index.search(query, k=5)] == expected and len(index) == 1000


def test_ties_keep_insertion_order_and_pickling_keeps_everything() -> None:
    index = VectorIndex()
    index.add_many(["first", "second", "other"], [[1, 0], [2, 0], [0, 1]])
    assert [i for i, _ in index.search([1, 0], k=2)] == ["first", "second"]
    clone = pickle.loads(pickle.dumps(index))
    assert clone.search([1, 0], k=3) == index.search([1, 0], k=3) and clone.ids == index.ids
    clone.add("later", [1, 1])  # a restored index keeps growing
    assert len(clone) == 4 and len(index) == 3


def _trajectory(steps: int) -> Trajectory:
    start = TaskStart(Task("babaisai", "goto_win", "train", 1), "rules...", "win", ("up",))
    return Trajectory(
        start=start,
        steps=tuple(Step(f"act{i}", f"obs {i} " * 20, 0.0, False) for i in range(steps)),
        score=1.0,
        success=True,
    )


def test_text_forms_are_bounded_and_keep_both_ends() -> None:
    assert clip("abcdef", 10) == "abcdef" and clip("a" * 50, 20).endswith("[...]")
    assert len(clip("a" * 50, 20)) == 20
    assert task_text(_trajectory(1).start) == "Goal: win\nObservation: rules..."
    text = trajectory_text(_trajectory(200), max_chars=2000)
    assert len(text) <= 2000 and "1. act0" in text and "200. act199" in text
    assert "steps omitted" in text and text.endswith("Outcome: success (score 1, 200 steps)")
    short = trajectory_text(_trajectory(2))
    assert "omitted" not in short and "2. act1 -> obs 1" in short


def test_unknown_or_missing_baselines_say_what_is_wrong(tmp_path: Path) -> None:
    from pytest_alma.baseline_fixtures import baseline_path

    with pytest.raises(ValueError, match="unknown baseline 'mem0'; the baselines are no_memory"):
        baseline_path("mem0", tmp_path)
    assert baseline_path("g_memory", tmp_path).name == "g_memory.py"  # the shipped copy


def test_rows_and_chosen_similarities_without_a_second_copy() -> None:
    index = VectorIndex()
    index.add_many(["a", "b", "c"], [[3, 4], [0, 2], [1, 0]])
    assert index.vector(0).tolist() == pytest.approx([0.6, 0.8])
    assert index.similarities([1, 0], [2, 0]) == pytest.approx([1.0, 0.6])
    assert index.similarities([1, 0], []) == []
    with pytest.raises(IndexError):
        index.vector(3)
    with pytest.raises(IndexError):
        index.similarities([1, 0], [5])
