"""The charts: valid PNGs of sensible size, the lineage layout, and what happens without
matplotlib or when a chart cannot be drawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_fixture import LINEAGE, copy_run, png_size, stored_results

from pytest_alma import report_plots
from pytest_alma.report import Rendered, aggregate, write_reports
from pytest_alma.report_plots import cost_axis, lineage_layout, plot_lineage


def _decoded(path: Path) -> Any:
    from matplotlib.image import imread

    return imread(path)


def test_success_vs_cost_is_a_real_picture(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    path = run / "success_vs_cost.png"
    width, height = png_size(path)
    # Two environment panels side by side: wider than tall, at 110 dpi.
    assert 1000 <= width <= 2000 and 400 <= height <= 800
    assert path.stat().st_size > 20_000
    pixels = _decoded(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # not a blank canvas


def test_cost_axis_falls_back_to_tokens_and_says_why() -> None:
    results = stored_results()
    rows = aggregate(results)
    assert cost_axis(results, rows) == (
        "tokens",
        "tokens per episode (no dollars: scripted test double)",
    )
    results["test_double"] = False
    assert cost_axis(results, rows)[1] == "tokens per episode (dollar cost is zero)"
    priced = [r.__class__(**{**r.__dict__, "cost_per_episode": 0.002}) for r in rows]
    assert cost_axis(results, priced) == ("usd", "dollars per episode")
    unknown = [r.__class__(**{**r.__dict__, "cost_per_episode": None}) for r in rows]
    assert "dollars unknown" in cost_axis(results, unknown)[1]


def test_lineage_png_is_written_and_embedded(searched_run: tuple[Path, Rendered]) -> None:
    run, rendered = searched_run
    path = run / "lineage.png"
    assert path in rendered.written
    width, height = png_size(path)
    assert 600 <= width <= 3000 and 250 <= height <= 1500
    assert _decoded(path).std() > 0.05
    assert "![lineage.png](lineage.png)" in (run / "summary.md").read_text(encoding="utf-8")
    assert 'id="chart-lineage" ' in (run / "report.html").read_text(encoding="utf-8")


def test_plot_lineage_writes_the_file(tmp_path: Path) -> None:
    plot_lineage(LINEAGE, tmp_path / "tree.png")
    assert png_size(tmp_path / "tree.png")[0] > 600


def test_lineage_layout_by_hand() -> None:
    # Depth-first leaves from the top: s0 -> c3 -> c6 (row 0); s1 -> c1 -> c4 (1), c5 (2);
    # s1 -> c2 (3). Parents sit at the mean row of their children: c1 = 1.5, s1 = (1.5 + 3) / 2.
    pos = lineage_layout(LINEAGE)
    assert pos == {
        "s0": (0.0, 0.0),
        "c3": (1.0, 0.0),
        "c6": (2.0, 0.0),
        "s1": (0.0, 2.25),
        "c1": (1.0, 1.5),
        "c4": (2.0, 1.0),
        "c5": (2.0, 2.0),
        "c2": (1.0, 3.0),
    }


def test_lineage_layout_survives_loops_and_unknown_parents() -> None:
    nodes = [
        {"id": "a", "name": "a", "parent": "b", "generation": 1, "status": "written", "reward": 1},
        {"id": "b", "name": "b", "parent": "a", "generation": 2, "status": "written", "reward": 2},
        {"id": "c", "name": "c", "parent": "gone", "generation": 3, "status": "failed"},
    ]
    pos = lineage_layout(nodes)
    assert set(pos) == {"a", "b", "c"}
    assert pos["c"] == (3.0, 1.0)  # a root of its own, below the a-b chain
    assert sorted(y for _, y in pos.values()) == [0.0, 0.0, 1.0]


def test_without_matplotlib_the_tables_are_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run(tmp_path)
    monkeypatch.setattr(report_plots, "matplotlib_available", lambda: False)
    rendered = write_reports(json.loads((run / "results.json").read_text()), run)
    note = "Charts skipped: matplotlib is not installed (pip install 'pytest-alma[report]')."
    assert rendered.notes == [note]
    assert not (run / "success_vs_cost.png").exists()
    assert f"> {note}" in (run / "summary.md").read_text(encoding="utf-8")
    html = (run / "report.html").read_text(encoding="utf-8")
    assert note.replace("'", "&#x27;") in html and "data:image/png" not in html
    assert "![" not in (run / "summary.md").read_text(encoding="utf-8")


def test_a_failing_chart_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = copy_run(tmp_path)

    def broken(results: dict[str, Any], rows: object = None) -> bytes:
        raise ValueError("no room for bubbles")

    monkeypatch.setattr(report_plots, "success_vs_cost_png", broken)
    results = stored_results()
    results["search"] = {"lineage": LINEAGE}
    rendered = write_reports(results, run)
    assert rendered.notes == ["success_vs_cost.png not drawn: ValueError: no room for bubbles"]
    assert (run / "lineage.png").exists() and (run / "report.html").exists()
    assert "success_vs_cost.png not drawn" in (run / "summary.md").read_text(encoding="utf-8")
