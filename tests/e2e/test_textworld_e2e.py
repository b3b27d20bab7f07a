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


def _digests(data: dict) -> dict[tuple[str, str], list[str]]:
    """Each (design, task)'s trajectory digests, in repeat order."""
    out: dict[tuple[str, str], list[str]] = {}
    for e in sorted(data["episodes"], key=lambda e: e["repeat"]):
        assert not e.get("error"), e
        out.setdefault((e["design"], e["task"]["task_id"]), []).append(e["trajectory_digest"])
    return out


def test_repeats_are_samples_that_replay_from_the_cache(project: pytest.Pytester) -> None:
    """A TextWorld game ignores its task seed: only the episode's sampling seed (sent with every
    request, so part of the cache key) makes its repeats differ."""
    (project.path / "designs" / "example_rules.py").unlink()  # one design is enough here
    args = [
        "--alma-env=textworld",
        "--alma-split=train",
        "--alma-limit=4",
        "--alma-repeats=3",
        "--alma-max-steps=10",
        "-p",
        "no:randomly",
    ]
    project.runpytest_subprocess(*args).assert_outcomes(passed=1 + 2 + 6)
    first = results_of(project)
    sampled = _digests(first)
    assert len(sampled) == 2 and all(len(d) == 3 for d in sampled.values())
    # The scripted double samples (no temperature given: the server default): three games.
    for digests in sampled.values():
        assert len(set(digests)) == 3, sampled
    seeds = {(e["task"]["task_id"], e["repeat"]): e["sampling_seed"] for e in first["episodes"]}
    assert len(set(seeds.values())) == 6
    # The same run again: every request is answered from the cache, the same three games.
    project.runpytest_subprocess(*args).assert_outcomes(passed=1 + 2 + 6)
    again = results_of(project)
    assert _digests(again) == sampled
    calls = sum(e["agent_tokens"]["calls"] for e in again["episodes"])
    assert calls > 0 and sum(e["agent_tokens"]["cached_calls"] for e in again["episodes"]) == calls
    # A deterministic server (temperature 0): the repeats of a task are the same episode.
    project.runpytest_subprocess(*args, "--alma-temperature=0").assert_outcomes(passed=9)
    greedy = _digests(results_of(project))
    assert all(len(set(d)) == 1 for d in greedy.values()), greedy
