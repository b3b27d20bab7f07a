"""All five baselines and the example design on Baba Is AI, end to end, with the scripted model.

The call counts each baseline's docstring states are checked against what the run recorded:
per retrieve exactly (each deployment episode records its retrieve's calls), per update on
average (the build records the total over the collection).
"""

from __future__ import annotations

import shutil

import pytest

from .conftest import REPO, results_of

BASELINES = (
    "no_memory",
    "trajectory_retrieval",
    "reasoning_bank",
    "dynamic_cheatsheet",
    "g_memory",
)

#: (chat, embed) calls per retrieve and per update that each docstring allows (default settings).
RETRIEVE = {
    "no_memory": {(0, 0)},
    "example_rules": {(0, 0)},
    "trajectory_retrieval": {(0, 1)},  # (0, 0) only on an empty store
    "reasoning_bank": {(0, 1), (0, 0)},  # (0, 0): the bank is empty (no item extracted)
    "dynamic_cheatsheet": {(0, 0)},
    "g_memory": {(0, 1)},
}
#: Bounds of the mean (chat, embed) calls per update.
UPDATE = {
    "no_memory": ((0, 0), (0, 0)),
    "example_rules": ((0, 0), (0, 0)),
    "trajectory_retrieval": ((0, 0), (0, 1)),  # 1 embed, or 0 for an already stored start
    "reasoning_bank": ((1, 0), (1, 1)),  # 1 chat; 1 embed unless no item was extracted
    "dynamic_cheatsheet": ((1, 0), (1, 0)),
    "g_memory": ((2, 0), (4, 1)),  # 2 (success) or 3 (failure), +1 merge every 20th
}


@pytest.fixture
def all_baselines(project: pytest.Pytester) -> pytest.Pytester:
    for name in BASELINES:
        shutil.copy(REPO / "baselines" / f"{name}.py", project.path / "baselines")
    return project


def test_every_baseline_runs_and_costs_what_its_docstring_says(
    all_baselines: pytest.Pytester,
) -> None:
    args = ["--alma-limit=8", "--alma-repeats=1", "--alma-max-steps=8", "-p", "no:randomly"]
    result = all_baselines.runpytest_subprocess(*args, "-n", "2")
    result.assert_outcomes(passed=6 * (1 + 4 + 4))  # per design: contract, 4 collect, 4 deploy
    # The table: No Memory first, then the others by name.
    ordered = ["no_memory", *sorted(set(BASELINES) - {"no_memory"})]
    result.stdout.fnmatch_lines(["*SCRIPTED TEST DOUBLE*", *[f"*{b}*" for b in ordered]])
    data = results_of(all_baselines)
    episodes = data["episodes"]
    assert {e["design"] for e in episodes} == {*BASELINES, "example_rules"}
    assert not [e["error"] for e in episodes if e.get("error")]
    for e in episodes:
        t = e["retrieve_tokens"]
        assert (t["calls"], t["embedding_calls"]) in RETRIEVE[e["design"]], e["design"]
    assert set(data["designs"]) == {f"{d}@babaisai" for d in (*BASELINES, "example_rules")}
    for build in data["designs"].values():
        name = build["design"]
        updates = build["updates"]
        assert updates == 4
        chat = build["update_tokens"]["calls"] / updates
        embed = build["update_tokens"]["embedding_calls"] / updates
        (lo_chat, lo_embed), (hi_chat, hi_embed) = UPDATE[name]
        assert lo_chat <= chat <= hi_chat and lo_embed <= embed <= hi_embed, (name, chat, embed)
    # The memories the baselines built reach the agent (the scripted model answers their
    # internal prompts, so they store something real).
    chars = {e["design"]: e["memory_chars"] for e in episodes}
    assert chars["no_memory"] == 0
    assert all(chars[b] > 0 for b in ("trajectory_retrieval", "dynamic_cheatsheet", "g_memory"))
    # Each baseline's settings, internal model included, are recorded with the results.
    assert data["designs"]["reasoning_bank@babaisai"]["config"]["model"] is None
    summary = (all_baselines.path / "reports" / data["run_id"] / "summary.md").read_text()
    assert "1 chat + 0 embed" in summary  # dynamic_cheatsheet's update, as documented
