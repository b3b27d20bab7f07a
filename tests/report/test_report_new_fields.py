"""The report's display of the newer episode fields: repeats (``trajectory_digest``, n_eff),
errors (``error_kind``, failed builds), partial runs, cache savings and sequential update
costs, on small hand-made results documents (old documents without them: the stored run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_fixture import markdown_rows

from pytest_alma.report import (
    aggregate,
    render_summary,
    report_tables,
    terminal_lines,
    write_reports,
)


def episode(
    design: str,
    task: str,
    repeat: int,
    score: float,
    *,
    digest: str | None = None,
    error: str | None = None,
    kind: str | None = None,
    env: str = "babaisai",
    **extra: Any,
) -> dict[str, Any]:
    """A deployment episode record as the runner writes it (seed per task and repeat)."""
    record: dict[str, Any] = {
        "design": design,
        "phase": "deploy",
        "task": {"env": env, "task_id": task, "split": "test", "seed": 100 * repeat},
        "repeat": repeat,
        "score": score,
        "success": score == 1.0,
        "agent_tokens": {"calls": 1, "prompt_tokens": 100, "completion_tokens": 10},
        "retrieve_tokens": {},
        "memory_chars": 0,
        "error": error,
        **extra,
    }
    if digest is not None:
        record["trajectory_digest"] = digest
    if kind is not None:
        record["error_kind"] = kind
    return record


def document(episodes: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"run_id": "r", "model": "m", "test_double": False, "episodes": episodes, **fields}


def scores_table(results: dict[str, Any], env: str = "babaisai") -> dict[str, list[str]]:
    """The score table's cells by design, without the design cell: tasks x repeats, episodes,
    n_eff, score, interval, n*, difference, its interval, p, p (Holm), test, MDE, errors."""
    (table,) = [t for t in report_tables(results) if t.key == f"scores-{env}"]
    return {key: row[1:] for key, row in zip(table.row_keys, table.rows, strict=True)}


def test_identical_repeats_are_counted_once() -> None:
    # 3 tasks x 2 repeats, each task's repeats with the same digest: n_eff = 3 = tasks. Another
    # design whose repeats of t0 differ: 4 distinct episodes.
    eps = [
        episode("no_memory", f"t{i}", r, float(i == 0), digest=f"d{i}")
        for i in range(3)
        for r in (1, 2)
    ]
    eps += [
        episode("mine", f"t{i}", r, float(i == 0), digest=f"m{i}-{r if i == 0 else 0}")
        for i in range(3)
        for r in (1, 2)
    ]
    results = document(eps)
    rows = {r.design: r for r in aggregate(results)}
    assert (rows["no_memory"].tasks, rows["no_memory"].distinct) == (3, 3)
    assert rows["mine"].distinct == 4
    table = scores_table(results)
    assert table["no_memory"][:3] == ["3x2", "6", "3 (identical repeats)"]
    assert table["mine"][2] == "4"
    # The interval counts each task once: n* = 3 (identical repeats; see test_stats_by_hand).
    assert table["no_memory"][5] == "3"
    lines = terminal_lines(results)
    assert (
        "repeats identical (deterministic server and game): n_eff = tasks (babaisai/no_memory)"
        in lines
    )
    summary = render_summary(results)
    assert "repeats identical (deterministic server and game): n_eff = tasks for no_memory" in (
        summary
    )


def test_no_digests_no_n_eff() -> None:
    results = document([episode("no_memory", "t0", 1, 1.0), episode("no_memory", "t0", 2, 1.0)])
    (row,) = aggregate(results)
    assert row.distinct is None
    assert scores_table(results)["no_memory"][2] == "-"


def test_errors_are_counted_by_kind_and_stay_in_the_mean() -> None:
    eps = [episode("no_memory", f"t{i}", 1, 1.0) for i in range(4)]
    eps += [
        episode("crashy", "t0", 1, 1.0),
        episode("crashy", "t1", 1, 0.0, error="design error: boom", kind="design"),
        episode("crashy", "t2", 1, 0.0, error="design error: boom", kind="design"),
        episode("crashy", "t3", 1, 0.0, error="LLM unavailable", kind="llm"),
    ]
    results = document(eps)
    rows = {r.design: r for r in aggregate(results)}
    crashy = rows["crashy"]
    # Every episode is in the mean: 1 of 4, not 1 of 1.
    assert (crashy.score.n, crashy.score.mean) == (4, 0.25)
    assert crashy.errors_by_kind == (("design", 2), ("llm", 1))
    assert scores_table(results)["crashy"][-1] == "3: design 2, llm 1"


def test_a_design_that_raises_on_half_the_tasks_scores_lower() -> None:
    # The baseline wins 4 of 8 tasks; the design would win the same 4 but raises (score 0,
    # the runner's record of a failed episode) on the other... and on 2 of those it would
    # have won: it must come out below the baseline, never above it.
    eps = [episode("no_memory", f"t{i}", 1, float(i < 4)) for i in range(8)]
    for i in range(8):
        if i % 2:
            eps.append(episode("half", f"t{i}", 1, 0.0, error="design error: x", kind="design"))
        else:
            eps.append(episode("half", f"t{i}", 1, float(i < 4)))
    rows = {r.design: r for r in aggregate(document(eps))}
    assert rows["half"].score.n == 8 and rows["half"].errors == 4
    assert rows["half"].score.mean == 0.25 < rows["no_memory"].score.mean == 0.5
    assert rows["half"].versus_baseline is not None
    assert rows["half"].versus_baseline.mean == pytest.approx(-0.25)


def test_an_episode_without_a_score_is_a_failure() -> None:
    eps = [
        episode("d", "t0", 1, 1.0),
        {
            **episode("d", "t1", 1, 0.0, error="harness: worker crashed", kind="harness"),
            "score": None,
        },
    ]
    (row,) = aggregate(document(eps))
    assert (row.score.n, row.score.mean, row.errors) == (2, 0.5, 1)


def test_old_errors_without_a_kind_are_classed_from_the_message() -> None:
    eps = [
        episode("d", "t0", 1, 0.0, error="design error: RuntimeError: x"),
        episode("d", "t1", 1, 0.0, error="something else"),
    ]
    assert scores_table(document(eps))["d"][-1] == "2: design 1, unknown 1"


def test_a_failed_memory_build_is_a_row_even_without_episodes() -> None:
    eps = [episode("no_memory", f"t{i}", 1, float(i == 0)) for i in range(3)]
    eps += [episode("halfbuilt", f"t{i}", 1, 0.0, error="design error: no memory", kind="design")
            for i in range(3)]  # fmt: skip
    designs = {
        "broken@babaisai": {
            "design": "broken",
            "env": "babaisai",
            "error": "Traceback (most recent call last):\nValueError: general_update raised",
        },
        "halfbuilt@babaisai": {"design": "halfbuilt", "env": "babaisai", "error": "MemoryError"},
        "fine@minihack": {"design": "fine", "env": "minihack", "updates": 2},
    }
    results = document(eps, designs=designs)
    rows = {r.design: r for r in aggregate(results)}
    assert rows["broken"].score.n == 0 and rows["broken"].build_error
    table = scores_table(results)
    assert list(table) == ["no_memory", "broken", "halfbuilt"]
    assert table["broken"][:5] == ["0", "0", "-", "n/a", "n/a"]
    assert table["broken"][-1] == "memory build failed (ValueError: general_update raised)"
    assert table["halfbuilt"][-1] == "memory build failed (MemoryError); 3: design 3"
    assert any("memory build failed" in line for line in terminal_lines(results))


def test_partial_runs_are_marked_everywhere(tmp_path: Path) -> None:
    eps = [episode("no_memory", f"t{i}", r, 1.0) for i in range(2) for r in (1, 2)]
    eps.append(episode("mine", "t0", 1, 1.0))
    results = document(
        eps, partial=True, partial_reason="stopped by SIGTERM", settings={"repeats": 2}
    )
    lines = terminal_lines(results)
    assert lines[0] == "PARTIAL RUN: stopped by SIGTERM."
    assert "babaisai/no_memory 2x2; babaisai/mine 1x1" in lines[1]
    assert "Only the 5 deployment episodes that finished" in lines[1]
    assert "of the planned 2 per task" in lines[1]
    write_reports(results, tmp_path)
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.splitlines()[2].startswith("> **PARTIAL RUN: stopped by SIGTERM.**")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert (
        '<div id="partial-banner" class="banner"><strong>PARTIAL RUN: stopped by SIGTERM.' in html
    )
    # A complete run says nothing of the kind.
    complete = document(eps, partial=False)
    assert not any("PARTIAL" in line for line in terminal_lines(complete))
    assert "PARTIAL" not in render_summary(complete)


def test_unbalanced_tasks_show_their_range_of_repeats() -> None:
    eps = [episode("d", "t0", r, 1.0) for r in (1, 2, 3)] + [episode("d", "t1", 1, 0.0)]
    table = scores_table(document(eps))
    assert table["d"][:2] == ["2x1-3", "4"]
    assert table["d"][3] == "50.0"  # the mean of the task means (1 + 0) / 2


def test_costs_count_sequential_updates_and_the_cache_savings() -> None:
    usage = {"calls": 2, "cached_calls": 1, "prompt_tokens": 100, "completion_tokens": 20,
             "cost_usd": 0.001, "saved_usd": 0.0005, "cached_prompt_tokens": 40}  # fmt: skip
    update = {"calls": 1, "prompt_tokens": 30, "completion_tokens": 5, "cost_usd": 0.0002}
    eps = [
        # New records: update_tokens at the top level; older ones kept it under "extra".
        {**episode("seq", "t0", 1, 1.0, update_tokens=update), "agent_tokens": usage},
        {**episode("seq", "t1", 1, 0.0, extra={"update_tokens": update}), "agent_tokens": usage},
    ]
    (row,) = aggregate(document(eps))
    # Per episode: 120 agent + 35 update tokens; $0.001 + $0.0002 spent; $0.0005 saved.
    assert row.tokens_per_episode == 155
    assert row.cost_per_episode == pytest.approx(0.0012)
    assert row.saved_per_episode == pytest.approx(0.0005)
    assert row.cached_share == pytest.approx(2 / 6)
    costs = markdown_rows(render_summary(document(eps)), "### Tokens and dollars per episode", 1)
    assert costs["seq"][:4] == ["babaisai", "155", "0.00120", "0.00050"]


def test_builds_are_matched_per_environment() -> None:
    eps = [episode("d", "t0", 1, 1.0, env="babaisai"), episode("d", "t0", 1, 1.0, env="minihack")]
    designs = {
        "d@babaisai": {"design": "d", "env": "babaisai", "updates": 2,
                       "update_tokens": {"calls": 4, "prompt_tokens": 10, "cost_usd": 0.5}},
        "d@minihack": {"design": "d", "env": "minihack", "updates": 1,
                       "update_tokens": {"calls": 1, "prompt_tokens": 3, "cost_usd": 0.1,
                                         "saved_usd": 0.2}},
    }  # fmt: skip
    rows = {r.env: r for r in aggregate(document(eps, designs=designs))}
    assert (rows["babaisai"].build_tokens, rows["babaisai"].build_cost) == (10, 0.5)
    assert rows["babaisai"].update_calls == (2.0, 0.0)
    assert (rows["minihack"].build_tokens, rows["minihack"].build_saved) == (3, 0.2)
