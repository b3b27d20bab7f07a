"""Fixtures for end-to-end tests of the plugin in throwaway projects (pytester)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

#: Small, fast runs: 4 tasks (2 collected, 2 deployed), 1 repeat, 6 steps.
QUICK = ["--alma-limit=4", "--alma-repeats=1", "--alma-max-steps=6", "-p", "no:randomly"]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with the example design and the No Memory baseline, and its own store."""
    (pytester.path / "designs").mkdir()
    (pytester.path / "baselines").mkdir()
    shutil.copy(REPO / "baselines" / "no_memory.py", pytester.path / "baselines")
    shutil.copy(REPO / "designs" / "example_rules.py", pytester.path / "designs")
    pytester.makeini("[pytest]\ntestpaths = designs baselines\n")
    return pytester


def results_of(pytester: pytest.Pytester) -> dict[str, Any]:
    """The results.json of the newest run in the project."""
    reports = pytester.path / "reports"
    run_id = (reports / "LATEST").read_text().strip()
    data: dict[str, Any] = json.loads((reports / run_id / "results.json").read_text())
    return data


def scores(data: dict[str, Any]) -> dict[tuple[str, str, int], float]:
    return {(e["design"], e["task"]["task_id"], e["repeat"]): e["score"] for e in data["episodes"]}


#: The baselines that have a fixture each (pytest_alma.baseline_fixtures).
BASELINES_USED_BY_FIXTURES = (
    "no_memory",
    "trajectory_retrieval",
    "reasoning_bank",
    "dynamic_cheatsheet",
    "g_memory",
)
