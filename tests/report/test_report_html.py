"""report.html read as a document: tables, charts, episodes, escaping, self-containment."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixture import FLAKY_ROW, copy_run, stored_results

from pytest_alma import report_html
from pytest_alma.report import Rendered, write_reports


class Outline(HTMLParser):
    """Collects, for the checks below, table rows, episodes and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: dict[str, list[tuple[str, list[str]]]] = {}
        self.cells: list[str] | None = None
        self.row_key = ""
        self.in_cell = False
        self.episodes: list[dict[str, str | None]] = []
        self.steps_in: dict[str, int] = {}
        self.current_episode: str | None = None
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and (a.get("id") or "").startswith("table-"):
            self.table = str(a["id"])
            self.rows[self.table] = []
        elif tag == "tr" and self.table and ("data-design" in a or "data-setting" in a):
            self.row_key = str(a.get("data-design") or a.get("data-setting"))
            self.cells = []
        elif tag == "td" and self.cells is not None:
            self.in_cell = True
            self.cells.append("")
        elif tag == "details":
            self.episodes.append(a)
            self.current_episode = a.get("id")
            self.steps_in[str(self.current_episode)] = 0
        elif tag == "tr" and "step" in (a.get("class") or "").split() and self.current_episode:
            self.steps_in[self.current_episode] += 1
        for name in ("src", "href"):
            if name in a:
                self.sources.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.in_cell = False
        elif tag == "tr" and self.cells is not None and self.table:
            self.rows[self.table].append((self.row_key, self.cells))
            self.cells = None
        elif tag == "table":
            self.table = None
        elif tag == "details":
            self.current_episode = None

    def handle_data(self, data: str) -> None:
        if self.in_cell and self.cells is not None:
            self.cells[-1] += data


def outline(path: Path) -> Outline:
    parser = Outline()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_html_has_the_tables(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    page = outline(run / "report.html")
    assert list(page.rows) == [
        "table-scores-babaisai",
        "table-scores-minihack",
        "table-costs",
        "table-memory-calls",
        "table-settings",
    ]
    baba = dict(page.rows["table-scores-babaisai"])
    assert list(baba) == [
        "no_memory",
        "example_rules",
        "flaky_goto",
        "g_memory",
        "trajectory_retrieval",
    ]
    assert baba["flaky_goto"][: len(FLAKY_ROW)] == FLAKY_ROW
    assert dict(page.rows["table-scores-minihack"])["no_memory"][4:6] == ["12.5", "[2.2, 47.1]"]
    assert dict(page.rows["table-settings"])["run.test_double"] == ["run.test_double", "True"]


def test_html_is_self_contained_and_marks_the_test_double(
    rendered_run: tuple[Path, Rendered],
) -> None:
    run, _ = rendered_run
    html = (run / "report.html").read_text(encoding="utf-8")
    page = outline(run / "report.html")
    # Only in-page links and inline images: nothing to fetch from a network or a disk.
    assert page.sources, "no links or images at all"
    for source in page.sources:
        assert source.startswith(("#", "data:image/png;base64,")), source
    assert "<link" not in html and "<script src" not in html
    assert 'id="test-double-banner"' in html
    assert 'id="chart-success-vs-cost"' in html


def test_html_episodes(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    page = outline(run / "report.html")
    results = stored_results()
    deploy = [e for e in results["episodes"] if e["phase"] == "deploy"]
    assert len(page.episodes) == len(deploy) == 160
    assert [e["id"] for e in page.episodes] == [f"ep-{i}" for i in range(160)]
    assert all("open" not in e for e in page.episodes)  # collapsed by default
    first = page.episodes[0]
    # Sorted by environment, task, seed, repeat, No Memory first.
    assert (first["data-env"], first["data-design"]) == ("babaisai", "no_memory")
    assert first["data-task"] == "goto_win-distr_obj-irrelevant_rule"
    assert first["data-steps-embedded"] == "true"
    # Every step of an episode whose trajectory file is kept in the fixture is shown.
    by_id = {str(e["id"]): e for e in page.episodes}
    for number, e in by_id.items():
        if e["data-steps-embedded"] == "true":
            match = next(
                d
                for d in deploy
                if (d["design"], d["task"]["task_id"], str(d["repeat"]), str(d["score"]))
                == (e["data-design"], e["data-task"], e["data-repeat"], e["data-score"])
            )
            assert page.steps_in[number] == match["steps"], number
    # The fixture keeps 30 of the 160 trajectory files (data/README.md); the others are named.
    embedded = [e for e in page.episodes if e["data-steps-embedded"] == "true"]
    assert len(embedded) == 30
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.count('class="muted missing-trajectory"') == 130
    assert (
        '<p id="episode-count">160 deployment episodes; 160 in full, 130 of them without steps '
        "(trajectory file not found)." in html
    )


def test_html_escapes_what_runs_wrote(rendered_run: tuple[Path, Rendered]) -> None:
    run, _ = rendered_run
    html = (run / "report.html").read_text(encoding="utf-8")
    # flaky_goto's retrieve raised "cannot parse a <go-to-win> level & gave up".
    assert "cannot parse a &lt;go-to-win&gt; level &amp; gave up" in html
    assert "<go-to-win>" not in html
    # The retrieved memory is shown as JSON (trajectory_retrieval stores action lists).
    assert re.search(r'<pre class="memory">\{\n  &quot;', html)


def test_html_embeds_at_most_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = copy_run(tmp_path)
    monkeypatch.setattr(report_html, "MAX_EPISODES", 12)
    write_reports(stored_results(), run)
    html = (run / "report.html").read_text(encoding="utf-8")
    # The first 12 in page order: 10 episodes of the first task (kept in the fixture), then 2
    # of goto_win-distr_win_rule (not kept).
    assert (
        '<p id="episode-count">160 deployment episodes; 12 in full, 2 of them without steps '
        '(trajectory file not found), <span id="episodes-left-out">148 left out</span>' in html
    )
    assert '<span id="episodes-left-out">148 left out</span>' in html
    assert html.count('class="muted not-embedded"') == 148
    page = outline(run / "report.html")
    assert len(page.episodes) == 160  # every episode keeps its summary line
