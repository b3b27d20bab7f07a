"""The benchmark on MiniHack, end to end: scripted model, No Memory and the example design."""

from __future__ import annotations

import pytest

from .conftest import results_of

pytest.importorskip("minihack", reason="MiniHack needs the [minihack] extra")


def test_benchmark_runs_on_minihack(project: pytest.Pytester) -> None:
    args = ["--alma-env=minihack", "--alma-limit=4", "--alma-repeats=1", "--alma-max-steps=12"]
    result = project.runpytest_subprocess(*args, "-p", "no:randomly", "-n", "2")
    result.assert_outcomes(passed=10)  # per design: contract + 2 collect + 2 deploy
    result.stdout.fnmatch_lines(["*SCRIPTED TEST DOUBLE*", "*minihack*", "*no_memory*"])
    data = results_of(project)
    episodes = data["episodes"]
    assert {e["design"] for e in episodes} == {"example_rules", "no_memory"}
    assert all(e["task"]["env"] == "minihack" for e in episodes)
    assert all(e["task"]["split"] == "eval_in_distribution" for e in episodes)
    assert all(not e.get("error") for e in episodes)
    # The preset that decided the scores is recorded with the run.
    settings = data["settings"]["environments"]["minihack"]
    assert settings["preset"]["name"] == "alma" and settings["preset"]["penalty_step"] == -1.0
    # So is the pinned clock that makes the games independent of the date (docs/minihack.md).
    assert settings["clock"]["mode"] == "pinned"
    assert settings["clock"]["utc"] == "2015-12-03T12:00:00Z"
