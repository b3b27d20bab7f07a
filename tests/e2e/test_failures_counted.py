"""Every failure is counted: an episode that cannot be played is a 0, never a gap in the means.

A design that fails on half the tasks (by raising, or by killing its own design process) must
score lower than the same design not failing, never higher; a design whose memory build fails,
or whose file does not load, is still a row of failures; and a worker that crashes (designs can
no longer crash one: a conftest hook does it here) leaves no gap in a run that says it is whole.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import REPO, results_of

#: 6 collection and 6 deployment tasks, 1 repeat (3 of them won by example_rules).
ARGS = ["--alma-split=all", "--alma-limit=12", "--alma-repeats=1", "--alma-max-steps=10"]

RETRIEVE = "    async def general_retrieve(self, task: TaskStart) -> dict[str, Any]:\n"

#: Which half of the tasks the broken variants fail on (a pure function of the task id). The
#: half was chosen so that it holds a task the working design wins: the mean must then drop.
BROKEN_HALF = (
    "import hashlib as _hashlib\n"
    "import os as _os\n"
    "def _broken(task):\n"
    "    digest = _hashlib.sha256(task.task.task_id.encode()).digest()\n"
    "    return digest[0] % 2 == 0\n"
)


def _variant(action: str) -> str:
    """example_rules with ``action`` run first in general_retrieve on the broken half."""
    source = (REPO / "designs" / "example_rules.py").read_text()
    assert RETRIEVE in source
    guarded = f"{RETRIEVE}        if _broken(task):\n            {action}\n"
    return source.replace(RETRIEVE, guarded) + "\n" + BROKEN_HALF


def _by_design(data: dict[str, Any], design: str) -> dict[str, dict[str, Any]]:
    return {e["task"]["task_id"]: e for e in data["episodes"] if e["design"] == design}


def _mean(episodes: dict[str, dict[str, Any]]) -> float:
    return sum(float(e["score"]) for e in episodes.values()) / len(episodes)


def test_a_design_failing_on_half_the_tasks_scores_lower(project: pytest.Pytester) -> None:
    designs = project.path / "designs"
    (designs / "half_raises.py").write_text(_variant("raise RuntimeError('half exploded')"))
    (designs / "half_crashes.py").write_text(_variant("_os._exit(1)"))
    result = project.runpytest_subprocess(*ARGS, "-n", "2", "-p", "no:randomly", timeout=240)
    data = results_of(project)
    steady = _by_design(data, "example_rules")
    assert len(steady) == 6 and all(e["error"] is None for e in steady.values())
    import hashlib

    broken = {t for t in steady if hashlib.sha256(t.encode()).digest()[0] % 2 == 0}
    assert broken and broken != set(steady), "the test needs a half that is neither none nor all"
    assert any(steady[t]["success"] for t in broken), "the broken half must hold a won task"
    for design, kind, text in (
        ("half_raises", "design", "half exploded"),
        # The design's own process died, not the worker: the failure is the design's.
        ("half_crashes", "design", "the design process ended (exit status 1)"),
    ):
        episodes = _by_design(data, design)
        # Every episode is there: none dropped out of the mean.
        assert set(episodes) == set(steady), (design, result.stdout.str()[-2000:])
        for task, e in episodes.items():
            if task in broken:
                assert e["score"] == 0.0 and e["success"] is False, e
                assert e["error_kind"] == kind and text in e["error"], e
            else:
                assert e["error"] is None and e["score"] == steady[task]["score"], e
        assert _mean(episodes) < _mean(steady), design


def test_a_design_whose_build_fails_is_a_row_of_failures(project: pytest.Pytester) -> None:
    (project.path / "designs" / "bad_build.py").write_text(
        "from pytest_alma import MemoryDesign\n"
        "class D(MemoryDesign):\n"
        "    async def general_update(self, t):\n"
        "        raise ValueError('update exploded')\n"
        "    async def general_retrieve(self, task):\n"
        "        return {}\n"
    )
    (project.path / "designs" / "not_python.py").write_text("this is not python(\n")
    project.runpytest_subprocess(
        "--alma-limit=4", "--alma-repeats=2", "--alma-max-steps=6", "-p", "no:xdist"
    )
    data = results_of(project)
    good = [e for e in data["episodes"] if e["design"] == "no_memory"]
    assert len(good) == 4
    for design, message in (
        ("bad_build", "the memory build of bad_build on babaisai failed"),
        ("not_python", "syntax error"),
    ):
        episodes = [e for e in data["episodes"] if e["design"] == design]
        assert len(episodes) == len(good), design
        assert {(e["task"]["task_id"], e["repeat"]) for e in episodes} == {
            (e["task"]["task_id"], e["repeat"]) for e in good
        }
        for e in episodes:
            assert e["score"] == 0.0 and e["success"] is False
            assert e["error_kind"] == "design" and message in e["error"], e
            assert e["sampling_seed"] is not None
    build = data["designs"]["bad_build@babaisai"]
    assert build["design"] == "bad_build" and build["env"] == "babaisai"
    assert "update exploded" in build["error"] and build["error_kind"] == "design"
    # No snapshot (nor its side file) was stored for the failed build.
    sides = (project.path / ".alma" / "memory").glob("*.json")
    assert not [p for p in sides if '"design": "bad_build"' in p.read_text()]


def test_items_that_never_ran_after_crashed_workers_make_the_run_partial(
    project: pytest.Pytester,
) -> None:
    # xdist stops scheduling once more workers crashed than --max-worker-restart allows: the
    # items it never ran must not vanish from a run that says it is complete. Design code runs
    # in design processes and cannot end a worker; the project's own hook does (as a crashing
    # environment or the OOM killer would).
    (project.path / "designs" / "always_crashes.py").write_text(_variant("pass"))
    project.makeconftest(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    if 'always_crashes' in item.nodeid and '::deploy[' in item.nodeid:\n"
        "        os._exit(1)\n"
    )
    project.runpytest_subprocess(
        *ARGS, "-n", "2", "-p", "no:randomly", "--max-worker-restart=1", timeout=240
    )
    data = results_of(project)
    assert data["partial"] is True, data["partial_reason"]
    reason = data["partial_reason"]
    assert "never ran" in reason and "--max-worker-restart" in reason
