"""The benchmark on ALFWorld, end to end, on the synthetic test tasks (not the benchmark data)."""

from __future__ import annotations

import pytest

from .conftest import results_of

pytest.importorskip("alfworld", reason="ALFWorld needs the [alfworld] extra")


def test_benchmark_runs_on_the_synthetic_alfworld_tasks(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_alma.envs.alfworld.data import synthetic_data_root

    monkeypatch.setenv("ALFWORLD_DATA", str(synthetic_data_root()))
    args = ["--alma-env=alfworld", "--alma-split=train", "--alma-repeats=2", "-p", "no:randomly"]
    result = project.runpytest_subprocess(*args, "-n", "2")
    result.assert_outcomes(passed=2 * (1 + 1 + 2))  # per design: contract, 1 collect, 2 deploy
    result.stdout.fnmatch_lines(["*SCRIPTED TEST DOUBLE*", "*alfworld*"])
    episodes = results_of(project)["episodes"]
    assert len(episodes) == 4 and all(not e.get("error") for e in episodes)
    # The scripted household policy solves the synthetic tasks: the pipeline carries a win.
    assert all(e["success"] for e in episodes)
