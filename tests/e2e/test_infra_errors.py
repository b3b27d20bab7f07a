"""Infrastructure errors never become data: an LLM outage in collection is retried next session."""

from __future__ import annotations

import json

import pytest

from .conftest import QUICK, results_of


def test_collection_cut_short_by_the_llm_is_neither_stored_nor_built_on(
    project: pytest.Pytester,
) -> None:
    store = project.path / ".alma"
    # Every model request of the first session fails, and the gateway does not retry.
    outage = ["--alma-faults=500@1-10000", "--alma-llm-retries=0", "-p", "no:xdist"]
    project.runpytest_subprocess(*QUICK, *outage)
    first = results_of(project)
    assert first["collection"] and all(c["error_kind"] == "llm" for c in first["collection"])
    assert all(not c["stored"] for c in first["collection"])
    assert all(e["error_kind"] == "llm" and e["score"] == 0.0 for e in first["episodes"])
    collection_dir = store / "collection" / "babaisai"
    # Kept for that run only (named by its run id): no valid trajectory, no reusable memory.
    assert all(f".failed-{first['run_id']}" in p.name for p in collection_dir.glob("*.json"))
    snapshots = list((store / "memory").glob("*.pkl"))
    assert snapshots and all(f".failed-{first['run_id']}" in p.name for p in snapshots)

    project.runpytest_subprocess(*QUICK, "-p", "no:xdist").assert_outcomes(passed=10)
    second = results_of(project)
    # The collection episodes were played again, and the memories built again from them.
    assert all(c["played_now"] and c["stored"] for c in second["collection"])
    assert all(e["error"] is None for e in second["episodes"])
    clean = [p for p in (store / "memory").glob("*.pkl") if ".failed-" not in p.name]
    assert len(clean) == 2  # one per design
    for side in (store / "memory").glob("*.json"):
        if ".failed-" not in side.name:
            assert json.loads(side.read_text())["infra_failures"] == []
