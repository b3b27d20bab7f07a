"""summary.md and the terminal table, rendered from the stored run's results.json.

The expected numbers are the stored run's: babaisai No Memory solved 4 of 16 deployment
episodes (Wilson [10.2, 49.5], see test_stats_by_hand.py), flaky_goto's retrieve raised on the
go-to-win levels (6 errors, 0 of 16, and the 4 episodes No Memory won became pairs that differ),
minihack 2 of 16 for every design.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixture import FLAKY_ROW, RUN_ID, copy_run, markdown_rows, stored_results

from pytest_alma.__main__ import main
from pytest_alma.report import (
    Rendered,
    aggregate,
    render_summary,
    report_tables,
    terminal_lines,
    write_reports,
)
from pytest_alma.session import ControllerServices


def test_summary_scores_table_per_environment(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert "### babaisai: success" in summary and "### minihack: success" in summary
    baba = markdown_rows(summary, "### babaisai: success")
    assert list(baba) == [
        "no_memory",
        "example_rules",
        "flaky_goto",
        "g_memory",
        "trajectory_retrieval",
    ]
    # design | tasks x repeats | episodes | n_eff | success % | interval | n* | difference |
    # its interval | p | p (Holm) | test | MDE | errors. No Memory: 2 of 8 tasks, n* = 8
    # (test_stats_by_hand.py: Wilson(0.25, 8) = [7.1, 59.1]); no digests in this old run: '-'.
    assert baba["no_memory"] == [
        "8x2", "16", "-", "25.0", "[7.1, 59.1]", "8", "-", "-", "-", "-", "-", "76.7", "0",
    ]  # fmt: skip
    # Holm over the four designs: 0.5 * 4 = 2 -> 1. MDE from the paired task differences:
    # (t(7, .975) + t(7, .80)) * 0.1636634 = (2.364624 + 0.896042) * 0.1636634 = 0.5336.
    assert baba["flaky_goto"] == [
        *FLAKY_ROW[1:],
        "1",
        "exact sign-flip (2 of 8 tasks differ)",
        "53.4",
        "6: design 6",
    ]
    assert baba["g_memory"][6:11] == [
        "+0.0",
        "[0.0, 0.0]",
        "1",
        "1",
        "all differences zero (0 of 8 tasks differ)",
    ]
    mini = markdown_rows(summary, "### minihack: success")
    assert mini["no_memory"][:5] == ["8x2", "16", "-", "12.5", "[2.2, 47.1]"]
    assert "95% interval: Wilson at the effective number of episodes n*" in summary


def test_summary_costs_and_memory_calls(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    summary = (run / "summary.md").read_text(encoding="utf-8")
    costs = markdown_rows(summary, "### Tokens and dollars per episode", key_column=1)
    # Recount g_memory's babaisai tokens per episode from the raw episodes, independently of
    # report.aggregate: agent and retrieve tokens (prompt, completion, embedding) over 16.
    episodes = [
        e
        for e in stored_results()["episodes"]
        if e["design"] == "g_memory" and e["task"]["env"] == "babaisai" and e["phase"] == "deploy"
    ]
    total = sum(
        e[part][k]
        for e in episodes
        for part in ("agent_tokens", "retrieve_tokens")
        for k in ("prompt_tokens", "completion_tokens", "embedding_tokens")
    )
    assert len(episodes) == 16 and round(total / 16) == 15957
    g_memory = costs["g_memory"]  # the first (babaisai) row of the design
    assert g_memory[:7] == ["babaisai", "15957", "0.00000", "0.00000", "1%", "1328", "0"]
    assert costs["trajectory_retrieval"][5] == "3811"  # mean retrieved memory characters
    assert "these dollars are not LLM prices" in summary
    calls = markdown_rows(summary, "### Memory calls", key_column=1)
    # g_memory: 23 chat and 8 embedding calls over 8 collection updates; one embedding per
    # retrieve. Dynamic memories without model calls: zeros.
    assert calls["g_memory"] == ["babaisai", "2.88 chat + 1 embed", "0 chat + 1 embed"]
    assert calls["example_rules"] == ["babaisai", "0 chat + 0 embed", "0 chat + 0 embed"]


def test_summary_marks_the_test_double_and_lists_settings(
    rendered_run: tuple[Path, Rendered],
) -> None:
    run, rendered = rendered_run
    summary = (run / "summary.md").read_text(encoding="utf-8")
    assert summary.startswith(f"# pytest-alma run {RUN_ID}")
    assert "SCRIPTED TEST DOUBLE" in summary
    assert "These results come from the scripted test double, not from an LLM." in summary
    settings = markdown_rows(summary, "## Settings")
    assert settings["run.model"] == ["scripted"]
    assert settings["run.test_double"] == ["True"]
    assert settings["repeats"] == ["2"] and settings["limit"] == ["16"]
    assert settings["environments.babaisai.preset"] == ["alma"]
    assert settings["machine.xdist_workers"] == ["2"]
    assert "![success_vs_cost.png](success_vs_cost.png)" in summary
    assert rendered.notes == []
    assert sorted(p.name for p in rendered.written) == [
        "report.html",
        "success_vs_cost.png",
        "summary.md",
    ]


def test_terminal_table_keeps_its_shape() -> None:
    lines = terminal_lines(stored_results())
    assert "SCRIPTED TEST DOUBLE" in lines[0]
    flaky = next(line for line in lines if "babaisai" in line and "flaky_goto" in line)
    assert re.search(r"8x2\s+-\s+0\.0 \[0\.0, 32\.4\]\s+-25\.0 \[-63\.7, 13\.7\] p=0\.5\s", flaky)
    assert re.search(r"p=0\.5\s+1\s+53\.4\s", flaky)  # Holm p, MDE
    assert flaky.rstrip().endswith("6: design 6")
    assert lines[-1] == "LLM calls in deployment: 1512, answered from cache: 8"


def test_rows_are_paired_on_task_seed_and_repeat() -> None:
    results = stored_results()
    # Reverse the episode order: the pairing is by key, not by position.
    results["episodes"].reverse()
    flaky = next(r for r in aggregate(results) if r.design == "flaky_goto" and r.env == "babaisai")
    assert flaky.versus_baseline is not None
    assert flaky.versus_baseline.p_value == pytest.approx(0.5)
    assert (flaky.versus_baseline.nonzero, flaky.versus_baseline.clusters) == (2, 8)


def test_progression_environment_gets_a_t_interval_and_its_name() -> None:
    def episode(design: str, task: str, score: float) -> dict[str, object]:
        return {
            "design": design,
            "phase": "deploy",
            "task": {"env": "textworld", "task_id": task, "split": "test", "seed": 1},
            "repeat": 1,
            "score": score,
            "success": score == 1.0,
            "agent_tokens": {"prompt_tokens": 10, "completion_tokens": 2},
            "retrieve_tokens": {},
            "memory_chars": 0,
        }

    results = {
        "run_id": "tw",
        "model": "m",
        "test_double": False,
        "episodes": [
            *(episode("no_memory", f"t{i}", s) for i, s in enumerate([0.2, 0.4, 0.6])),
            *(episode("mine", f"t{i}", s) for i, s in enumerate([0.4, 0.4, 1.0])),
        ],
    }
    (scores,) = [t for t in report_tables(results) if t.key == "scores-textworld"]
    assert scores.title == "textworld: progression"
    assert scores.headers[4] == "progression %"
    rows = dict(zip(scores.row_keys, scores.rows, strict=True))
    # no_memory: mean 0.4, se 0.11547, t(2) = 4.3027 -> [-0.0968, 0.8968]
    assert rows["no_memory"][1:6] == ["3x1", "3", "-", "40.0", "[-9.7, 89.7]"]
    # mine - no_memory = 0.2, 0, 0.4: mean 0.2; 2 non-zero -> 4 sign patterns, |sum| >= 0.6
    # for ++ and -- only: p = 0.5.
    assert rows["mine"][7] == "+20.0" and rows["mine"][9] == "0.5"
    assert "Student t" in scores.note


def test_cli_rerenders_every_report_into_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(tmp_path / "reports")
    out = tmp_path / "elsewhere"
    assert main(["report", RUN_ID, "--reports", str(tmp_path / "reports"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("summary.md", "success_vs_cost.png", "report.html"):
        assert f"wrote {out / name}" in printed
        assert (out / name).stat().st_size > 1000
        assert not (run / name).exists()  # the run directory is left as it was
    assert "flaky_goto" in printed and "p=0.5" in printed


def test_session_finish_keeps_results_when_rendering_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = ControllerServices(
        settings=None,  # type: ignore[arg-type]  # finish never reads the settings here
        rootdir=tmp_path,
        run_id=RUN_ID,
        run_dir=tmp_path / "reports" / RUN_ID,
        model="scripted",
        test_double=True,
        gateway=None,
        scripted=None,
        started=0.0,
    )
    results = stored_results()
    monkeypatch.setattr(services, "results_document", lambda *args, **kwargs: results)

    def broken(*args: object, **kwargs: object) -> Rendered:
        raise RuntimeError("disk full <simulated>")

    monkeypatch.setattr("pytest_alma.report.write_reports", broken)
    lines = services.finish([], {}, [])
    written = json.loads((services.run_dir / "results.json").read_text(encoding="utf-8"))
    assert written["run_id"] == RUN_ID and len(written["episodes"]) == 160
    assert any("reports not rendered (RuntimeError: disk full <simulated>)" in x for x in lines)
    assert "python -m pytest_alma report" in lines[-1]
    assert (tmp_path / "reports" / "LATEST").read_text().strip() == RUN_ID


def test_session_finish_writes_every_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = copy_run(tmp_path / "reports")
    services = ControllerServices(
        settings=None,  # type: ignore[arg-type]
        rootdir=tmp_path,
        run_id=RUN_ID,
        run_dir=run_dir,
        model="scripted",
        test_double=True,
        gateway=None,
        scripted=None,
        started=0.0,
    )
    results = stored_results()
    monkeypatch.setattr(services, "results_document", lambda *args, **kwargs: results)
    lines = services.finish([], {}, [])
    assert lines[-1] == f"report: {run_dir / 'summary.md'} and {run_dir / 'report.html'}"
    for name in ("results.json", "summary.md", "success_vs_cost.png", "report.html"):
        assert (run_dir / name).is_file(), name
    assert render_summary(results, charts=["success_vs_cost.png"]) == (
        run_dir / "summary.md"
    ).read_text(encoding="utf-8")


def test_search_table(searched_run: tuple[Path, Rendered]) -> None:
    run, _ = searched_run
    summary = (run / "summary.md").read_text(encoding="utf-8")
    search = markdown_rows(summary, "## Search")
    # The lineage's statuses counted: 2 seeds, 2 written, 1 each of the others.
    assert search["candidates"] == [
        "1 budget, 1 duplicate, 1 evaluated, 1 failed, 2 seed, 2 written"
    ]
    assert search["best reward"] == ["0.5625 (rules_keyed_plans_dedup)"]
    assert search["generations"] == ["2: 1; 2"]
    assert search["meta_usd"] == ["0.0123"] and search["stopped"] == ["budget"]
    html = (run / "report.html").read_text(encoding="utf-8")
    assert '<tr data-setting="best reward">' in html
    assert "&lt;16000 chars&gt;" in html


def test_a_run_without_episodes_still_renders(tmp_path: Path) -> None:
    results = {"run_id": "empty", "model": "scripted", "test_double": True, "episodes": []}
    rendered = write_reports(results, tmp_path)
    # No episodes: no chart to draw, but both documents say so.
    assert sorted(p.name for p in rendered.written) == ["report.html", "summary.md"]
    assert "No deployment episodes finished." in (tmp_path / "summary.md").read_text()
    assert "No deployment episodes finished." in (tmp_path / "report.html").read_text()


def test_without_no_memory_there_is_no_paired_difference() -> None:
    results = stored_results()
    results["episodes"] = [e for e in results["episodes"] if e["design"] != "no_memory"]
    (scores,) = [t for t in report_tables(results) if t.key == "scores-babaisai"]
    assert all(row[7:12] == ["-", "-", "-", "-", "-"] for row in scores.rows)
    assert "No no_memory episodes in this environment: no paired differences." in scores.note
