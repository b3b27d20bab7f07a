"""The benchmark on TextWorld, end to end, with games generated on the fly."""

from __future__ import annotations

import pytest

from .conftest import results_of

pytest.importorskip("textworld", reason="TextWorld needs the [textworld] extra")


def test_benchmark_runs_on_textworld(project: pytest.Pytester) -> None:
    args = ["--alma-env=textworld", "--alma-split=train", "--alma-limit=2", "--alma-repeats=1"]
    result = project.runpytest_subprocess(*args, "--alma-max-steps=10", "-p", "no:randomly")
    result.assert_outcomes(passed=2 * 3)  # per design: contract, 1 collect, 1 deploy
    result.stdout.fnmatch_lines(["*SCRIPTED TEST DOUBLE*", "*textworld*"])
    data = results_of(project)
    assert all(not e.get("error") and e["steps"] > 0 for e in data["episodes"])
    # Generated games are cached in the store: a second run generates nothing and replays.
    games = project.path / ".alma" / "textworld_games"
    assert games.is_dir() and any(games.iterdir())
    project.runpytest_subprocess(*args, "--alma-max-steps=10", "-p", "no:randomly").assert_outcomes(
        passed=6
    )
