"""A design file may have any name pytest collects: its episodes run and are booked to it."""

from __future__ import annotations

import shutil

import pytest

from .conftest import QUICK, REPO, results_of


def test_a_design_file_with_spaces_and_accents_in_its_name_runs(
    project: pytest.Pytester,
) -> None:
    shutil.copy(REPO / "designs" / "example_rules.py", project.path / "designs" / "désign v2.py")
    result = project.runpytest_subprocess(*QUICK, "-p", "no:xdist")
    assert result.ret == 0, result.stdout.str()[-3000:]
    data = results_of(project)
    named = [e for e in data["episodes"] if e["design"] == "désign v2"]
    plain = [e for e in data["episodes"] if e["design"] == "example_rules"]
    assert len(named) == len(plain) == 2
    assert all(e["error"] is None for e in named)
    # The same code plays the same episodes.
    assert [e["score"] for e in named] == [e["score"] for e in plain]
