"""Comparison reports from a run's ``results.json``: the terminal table, ``summary.md``, the
charts and ``report.html``.

Reports are rendered from the results document alone (plus the trajectory files it points
to), so any old run can be re-rendered with ``python -m pytest_alma report RUN``. The numbers
come from :mod:`pytest_alma.report_rows` (one row per design and environment, the task as the
statistical unit); this module turns them into cells, tables and documents.

The tables are built once (:func:`report_tables`) and written both as Markdown and as HTML, so
the two documents cannot disagree. A partial run (``results["partial"]``: the session was
stopped) is marked PARTIAL at the top of every report, with the reason and what finished.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pytest_alma.report_rows import (
    BASELINE,
    METRIC_BY_ENV,
    DesignRow,
    aggregate,
    build_for,
    deploy_groups,
    episode_usage,
    metric_name,
)
from pytest_alma.stats import EXACT_PERMUTATION_MAX, MONTE_CARLO_DRAWS, Estimate, PairedDifference

__all__ = [
    "BASELINE",
    "HTML_FILE",
    "LINEAGE_FILE",
    "METRIC_BY_ENV",
    "SUCCESS_VS_COST_FILE",
    "SUMMARY_FILE",
    "DesignRow",
    "Rendered",
    "Table",
    "aggregate",
    "build_for",
    "deploy_groups",
    "metric_name",
    "model_label",
    "partial_lines",
    "render_summary",
    "report_tables",
    "terminal_lines",
    "trajectory_file",
    "write_reports",
]

SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
SUCCESS_VS_COST_FILE = "success_vs_cost.png"
LINEAGE_FILE = "lineage.png"

TEST_DOUBLE_HEADLINE = "These results come from the scripted test double, not from an LLM."
TEST_DOUBLE_DETAIL = (
    "They show that the harness, the designs and the statistics work end to end; they say "
    "nothing about how well a memory design helps an LLM."
)
IDENTICAL_REPEATS = "repeats identical (deterministic server and game): n_eff = tasks"


# -- cells ------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def _interval_cell(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    return f"[{_pct(low)}, {_pct(high)}]"


def _score_cell(est: Estimate) -> str:
    if est.n == 0:
        return "n/a"
    return f"{_pct(est.mean)} [{_pct(est.low)}, {_pct(est.high)}]"


def _signed_pct(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{'+' if x >= 0 else ''}{_pct(x)}"


def _diff_cell(vs: PairedDifference | None) -> str:
    if vs is None:
        return "-"
    return f"{_signed_pct(vs.mean)} [{_pct(vs.low)}, {_pct(vs.high)}] p={_p_cell(vs.p_value)}"


def _p_cell(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"


def _cost_cell(cost: float | None) -> str:
    return "unknown" if cost is None else f"{cost:.5f}"


def _calls_cell(calls: tuple[float, float]) -> str:
    chat, embed = calls
    return f"{round(chat, 2):g} chat + {round(embed, 2):g} embed"


def design_cell(r: DesignRow) -> str:
    """``"20x3"`` (tasks x repeats per task), ``"8x1-2"`` when tasks finished different numbers
    of repeats (a partial run), ``"0"`` for a row without episodes."""
    if not r.tasks:
        return "0"
    low, high = r.repeats
    return f"{r.tasks}x{low}" if low == high else f"{r.tasks}x{low}-{high}"


def repeats_identical(r: DesignRow) -> bool:
    """Every task's repeats played the very same episode (same trajectory digest)."""
    return r.distinct is not None and r.repeats[1] > 1 and r.distinct == r.tasks


def n_eff_cell(r: DesignRow) -> str:
    """Distinct episodes by trajectory digest (``-``: the records carry no digests)."""
    if r.distinct is None:
        return "-"
    return f"{r.distinct} (identical repeats)" if repeats_identical(r) else str(r.distinct)


def _n_star_cell(est: Estimate) -> str:
    if est.n == 0 or math.isnan(est.effective_n):
        return "n/a"
    return f"{round(est.effective_n, 1):g}"


def errors_cell(r: DesignRow) -> str:
    """``"0"``, ``"3: design 2, llm 1"``, and the failed memory build, if any."""
    text = str(r.errors)
    if r.errors:
        text += ": " + ", ".join(f"{kind} {count}" for kind, count in r.errors_by_kind)
    if r.build_error:
        head = _headline(r.build_error)
        text = f"memory build failed ({head})" + (f"; {text}" if r.errors else "")
    return text


def _headline(error: str, limit: int = 160) -> str:
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else error
    return last if len(last) <= limit else last[: limit - 1] + "…"


def _mde_cell(r: DesignRow) -> str:
    return "n/a" if math.isnan(r.mde) else _pct(r.mde)


def _test_cell(vs: PairedDifference) -> str:
    if vs.test == "none":
        return "none"
    return f"{vs.test} ({vs.nonzero} of {vs.clusters} tasks differ)"


def table_rows(rows: list[DesignRow]) -> list[list[Any]]:
    """The cells of the terminal table (one line per design and environment)."""
    return [
        [
            r.env,
            r.design,
            design_cell(r),
            n_eff_cell(r),
            _score_cell(r.score),
            _diff_cell(r.versus_baseline),
            "-" if r.versus_baseline is None else _p_cell(r.p_holm),
            _mde_cell(r),
            f"{r.tokens_per_episode:.0f}",
            _cost_cell(r.cost_per_episode),
            f"{r.saved_per_episode:.5f}",
            f"{100 * r.cached_share:.0f}%",
            f"{r.memory_chars:.0f}",
            errors_cell(r),
        ]
        for r in rows
    ]


HEADERS = [
    "env",
    "design",
    "tasks x rep",
    "n_eff",
    "score % [95% CI]",
    f"vs {BASELINE} (by task)",
    "Holm p",
    "MDE pp",
    "tokens/ep",
    "$/ep",
    "saved $/ep",
    "cached",
    "memory chars",
    "errors",
]


def model_label(results: dict[str, Any]) -> str:
    """The model line of every report, marking the scripted test double."""
    model = results.get("model")
    if results.get("test_double"):
        return f"model: {model} (SCRIPTED TEST DOUBLE: these numbers test the plumbing, not an LLM)"
    return f"model: {model}"


def isolation_label(results: dict[str, Any]) -> str:
    """Where the run's design code ran; loud when it was not sandboxed ("" for runs made before
    the sandbox existed)."""
    isolation = results.get("isolation")
    if not isinstance(isolation, dict):
        return ""
    if isolation.get("sandboxed"):
        return f"designs: sandboxed ({isolation.get('detail')})"
    return (
        f"designs: UNSANDBOXED ({isolation.get('detail')}): each ran in its own process, able "
        "to read the user's files and reach the network"
    )


def partial_lines(results: dict[str, Any], rows: list[DesignRow] | None = None) -> list[str]:
    """The PARTIAL banner of a run that did not finish (empty for a complete run): the reason,
    and what finished."""
    if not results.get("partial"):
        return []
    rows = aggregate(results) if rows is None else rows
    reason = str(results.get("partial_reason") or "no reason recorded")
    episodes = sum(r.score.n for r in rows)
    repeats = (results.get("settings") or {}).get("repeats")
    finished = "; ".join(f"{r.env}/{r.design} {design_cell(r)}" for r in rows) or "nothing"
    planned = f" of the planned {repeats} per task" if repeats else ""
    return [
        f"PARTIAL RUN: {reason}.",
        f"Only the {episodes} deployment episodes that finished are counted (tasks x repeats"
        f"{planned}): {finished}.",
    ]


def terminal_lines(results: dict[str, Any], rows: list[DesignRow] | None = None) -> list[str]:
    """The comparison table for the terminal summary (``rows``: :func:`aggregate`'s, when the
    caller has them already)."""
    rows = aggregate(results) if rows is None else rows
    partial = partial_lines(results, rows)
    if not rows:
        return [*partial, "no deployment episodes finished in this run"]
    isolation = isolation_label(results)
    lines = [*partial, model_label(results), *([isolation] if isolation else [])]
    lines.extend(tabulate(table_rows(rows), headers=HEADERS, tablefmt="simple").splitlines())
    usage = [episode_usage(e) for e in results.get("episodes", []) if e.get("phase") == "deploy"]
    calls = sum(u.calls for u in usage)
    if calls:
        cached_calls = sum(u.cached for u in usage)
        lines.append(f"LLM calls in deployment: {calls}, answered from cache: {cached_calls}")
    identical = [f"{r.env}/{r.design}" for r in rows if repeats_identical(r)]
    if identical:
        lines.append(f"{IDENTICAL_REPEATS} ({', '.join(identical)})")
    return lines


# -- tables shared by summary.md and report.html ----------------------------------------------


@dataclass(frozen=True)
class Table:
    """One report table: ``key`` is its stable id, ``row_keys`` name each row (the design, or
    the setting), so that the HTML can tag rows for readers and tests."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    row_keys: list[str]
    note: str = ""
    section: str = "scores"


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    else:
        out.append((prefix, str(value)))


def _score_table(env: str, rows: list[DesignRow]) -> Table:
    metric = metric_name(env)
    has_base = any(r.design == BASELINE for r in rows)
    body: list[list[str]] = []
    for r in rows:
        vs = r.versus_baseline
        body.append(
            [
                r.design,
                design_cell(r),
                str(r.score.n),
                n_eff_cell(r),
                _pct(r.score.mean) if r.score.n else "n/a",
                _interval_cell(r.score.low, r.score.high),
                _n_star_cell(r.score),
                "-" if vs is None else _signed_pct(vs.mean),
                "-" if vs is None else _interval_cell(vs.low, vs.high),
                "-" if vs is None else _p_cell(vs.p_value),
                "-" if vs is None else _p_cell(r.p_holm),
                "-" if vs is None else _test_cell(vs),
                _mde_cell(r),
                errors_cell(r),
            ]
        )
    return Table(
        key=f"scores-{env}",
        title=f"{env}: {metric}",
        headers=[
            "design",
            "tasks x repeats",
            "episodes",
            "n_eff",
            f"{metric} %",
            "95% interval",
            "n*",
            f"vs {BASELINE} (pp)",
            "95% interval of difference",
            "p",
            "p (Holm)",
            "test",
            "MDE (pp)",
            "errors",
        ],
        rows=body,
        row_keys=[r.design for r in rows],
        note=_score_note(metric, rows, has_base),
    )


def _score_note(metric: str, rows: list[DesignRow], has_base: bool) -> str:
    """What the score table's columns mean, naming the methods this table used."""
    methods = sorted({r.score.method for r in rows if r.score.method})
    method_text = {
        "wilson": "Wilson at the effective number of episodes n* (design effect over tasks)",
        "t": "Student t over the task means (tasks - 1 df)",
    }
    tests = sorted({r.versus_baseline.test for r in rows if r.versus_baseline})
    test_text = {
        "exact sign-flip": f"exact sign-flip over tasks (up to {EXACT_PERMUTATION_MAX} tasks "
        "that differ)",
        "Monte Carlo sign-flip": f"Monte Carlo sign-flip over tasks ({MONTE_CARLO_DRAWS:,} "
        "seeded draws)",
        "all differences zero": "no task differs: p = 1",
    }
    note = (
        f"{metric} %: the mean of the task means (each task weighs the same; with equal "
        "repeats, the mean over episodes); the task is the unit of every interval and test, "
        "because repeats of a task are correlated. 95% interval: "
        + ("; ".join(method_text.get(m, m) for m in methods) or "n/a")
        + ". n_eff: distinct episodes (repeats with the same trajectory digest counted once; "
        "'-': not recorded). Failed episodes score 0 and stay in the mean; errors says how many "
        f"and why. Difference: percentage points against {BASELINE}, the mean over tasks of "
        "each task's mean difference on the episodes both played (same task, seed and repeat), "
        "with its t interval (tasks - 1 df) and a two-sided p-value: "
        + ("; ".join(test_text.get(t, t) for t in tests) or "n/a")
        + f". p (Holm): adjusted over the designs compared with {BASELINE} in this environment. "
        "MDE: the smallest true difference this run would detect with 80% power (two-sided "
        "alpha 0.05; t quantiles, tasks - 1 df), from the spread of the task differences, else "
        f"from {BASELINE}'s clustered standard error: a difference below it that is not "
        "significant means too few tasks, not no effect."
    )
    identical = [r.design for r in rows if repeats_identical(r)]
    if identical:
        note += (
            f" {IDENTICAL_REPEATS} for {', '.join(identical)}; the interval counts each task once."
        )
    if not has_base:
        note += f" No {BASELINE} episodes in this environment: no paired differences."
    return note


def _search_table(search: dict[str, Any]) -> Table:
    """What the search of this run did (the lineage itself is the chart)."""
    rows: list[tuple[str, str]] = []
    lineage = search.get("lineage") or []
    if lineage:
        scored = [n for n in lineage if n.get("reward") is not None]
        best = max(scored, key=lambda n: float(n["reward"]), default=None)
        statuses: dict[str, int] = defaultdict(int)
        for n in lineage:
            statuses[str(n.get("status"))] += 1
        rows.append(("candidates", ", ".join(f"{v} {k}" for k, v in sorted(statuses.items()))))
        if best is not None:
            rows.append(("best reward", f"{float(best['reward']):.4g} ({best.get('name')})"))
    for key in sorted(k for k in search if k != "lineage"):
        value = search[key]
        if isinstance(value, list):
            text = f"{len(value)}" + (": " + "; ".join(map(str, value)) if value else "")
        elif isinstance(value, float):
            text = f"{value:.4f}" if key.endswith("usd") else f"{value:g}"
        else:
            text = str(value)
        rows.append((key, text))
    return Table(
        key="search",
        title="Search",
        headers=["item", "value"],
        rows=[[k, v] for k, v in rows],
        row_keys=[k for k, _ in rows],
        section="search",
    )


def report_tables(results: dict[str, Any], rows: list[DesignRow] | None = None) -> list[Table]:
    """Every table of the report, in order: scores per environment, costs, memory calls,
    settings."""
    rows = aggregate(results) if rows is None else rows
    tables: list[Table] = []
    for env in sorted({r.env for r in rows}):
        tables.append(_score_table(env, [r for r in rows if r.env == env]))
    double = bool(results.get("test_double"))
    builds = results.get("designs", {}) or {}
    shared_builds = len({r.env for r in rows}) > 1 and not any(
        isinstance(b, dict) and "env" in b for b in builds.values()
    )
    tables.append(
        Table(
            key="costs",
            title="Tokens and dollars per episode",
            headers=[
                "env",
                "design",
                "tokens/episode",
                "$/episode",
                "saved $/episode",
                "cached calls",
                "memory chars (mean)",
                "truncated memories",
                "memory build tokens",
                "memory build $",
                "memory build saved $",
            ],
            rows=[
                [
                    r.env,
                    r.design,
                    f"{r.tokens_per_episode:.0f}",
                    _cost_cell(r.cost_per_episode),
                    f"{r.saved_per_episode:.5f}",
                    f"{100 * r.cached_share:.0f}%",
                    f"{r.memory_chars:.0f}",
                    str(r.truncated),
                    str(r.build_tokens),
                    _cost_cell(r.build_cost),
                    f"{r.build_saved:.5f}",
                ]
                for r in rows
            ],
            row_keys=[r.design for r in rows],
            note=(
                "Per deployment episode: the agent's calls plus the design's retrieve calls "
                "(sequential rollout: plus the update after the episode). $: money spent; "
                "saved $: what the answers from the response cache would have cost (not "
                "spent). Memory build: every general_update call of the collection phase"
                + (
                    " (results.json keeps one build per design, not per environment: these "
                    "build figures are the last environment's). "
                    if shared_builds
                    else ". "
                )
                + (
                    "The scripted test double costs nothing: these dollars are not LLM prices."
                    if double
                    else "'unknown': a model without a price (never counted as zero)."
                )
            ),
            section="costs",
        )
    )
    tables.append(
        Table(
            key="memory-calls",
            title="Memory calls",
            headers=["env", "design", "calls per update", "calls per retrieve"],
            rows=[
                [
                    r.env,
                    r.design,
                    "n/a" if r.update_calls is None else _calls_cell(r.update_calls),
                    _calls_cell(r.retrieve_calls),
                ]
                for r in rows
            ],
            row_keys=[r.design for r in rows],
            note="LLM (chat) and embedding calls each general_update and general_retrieve made, "
            "on average.",
            section="costs",
        )
    )
    search = results.get("search") or {}
    if search:
        tables.append(_search_table(search))
    settings: list[tuple[str, str]] = []
    _flatten("", results.get("settings", {}), settings)
    commit = results.get("commit", {}) or {}
    machine = results.get("machine", {}) or {}
    # The run's own facts first, apart from the settings the user chose.
    settings = [
        ("run.id", str(results.get("run_id"))),
        ("run.model", str(results.get("model"))),
        ("run.test_double", str(bool(results.get("test_double")))),
        ("run.started", str(results.get("started"))),
        ("run.finished", str(results.get("finished"))),
        ("run.commit", f"{commit.get('commit')} (dirty: {commit.get('dirty')})"),
        *settings,
    ]
    _flatten("machine", machine, settings)
    tables.append(
        Table(
            key="settings",
            title="Settings",
            headers=["setting", "value"],
            rows=[[k, v] for k, v in settings],
            row_keys=[k for k, _ in settings],
            section="settings",
        )
    )
    return tables


def _markdown_cell(text: str) -> str:
    # A pipe would end the cell in a GitHub table; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_table(table: Table) -> list[str]:
    body = [[_markdown_cell(c) for c in row] for row in table.rows]
    out = [tabulate(body, headers=table.headers, tablefmt="github", disable_numparse=True)]
    if table.note:
        out += ["", table.note]
    return out


def render_summary(
    results: dict[str, Any],
    *,
    charts: Sequence[str] = (),
    notes: Sequence[str] = (),
    rows: list[DesignRow] | None = None,
) -> str:
    """``summary.md`` of a run.

    ``charts`` are the file names of charts written beside it (linked at the end); ``notes``
    are one-line remarks about the rendering (a chart that could not be drawn, and why);
    ``rows`` are :func:`aggregate`'s, when the caller has them already.
    """
    rows = aggregate(results) if rows is None else rows
    out = [f"# pytest-alma run {results.get('run_id')}", ""]
    partial = partial_lines(results, rows)
    if partial:
        out += [f"> **{partial[0]}** {' '.join(partial[1:])}", ""]
    isolation = isolation_label(results)
    out += [model_label(results), *(["", isolation] if isolation else []), ""]
    if results.get("test_double"):
        out += [f"> **{TEST_DOUBLE_HEADLINE}** {TEST_DOUBLE_DETAIL}", ""]
    for note in notes:
        out += [f"> {note}", ""]
    tables = report_tables(results, rows)
    out += ["## Scores (deployment episodes)", ""]
    if not rows:
        out += ["No deployment episodes finished.", ""]
    usage = [episode_usage(e) for e in results.get("episodes", []) if e.get("phase") == "deploy"]
    calls = sum(u.calls for u in usage)
    cached = sum(u.cached for u in usage)
    for table in tables:
        if table.section == "scores":
            out += [f"### {table.title}", "", *_markdown_table(table), ""]
    out += ["## Tokens, dollars and memory calls", ""]
    if calls:
        out += [f"LLM calls in deployment: {calls}, answered from cache: {cached}.", ""]
    for table in tables:
        if table.section == "costs":
            out += [f"### {table.title}", "", *_markdown_table(table), ""]
    for table in tables:
        if table.section == "search":
            out += [f"## {table.title}", "", *_markdown_table(table), ""]
    if charts:
        out += ["## Charts", ""]
        out += [f"![{name}]({name})" for name in charts]
        out += [""]
    for table in tables:
        if table.section == "settings":
            out += [f"## {table.title}", "", *_markdown_table(table), ""]
    return "\n".join(out)


# -- trajectories ------------------------------------------------------------------------------


def trajectory_file(episode: dict[str, Any], run_dir: Path) -> Path | None:
    """Where an episode's trajectory file is now.

    Episodes record the absolute path they were written to, but a run directory may have been
    moved or copied (an archived run, a test fixture). When the run directory holds a
    ``trajectories/`` folder, it is the only place looked at: the recorded path could then
    belong to another copy of the run. Otherwise the recorded path is used.
    """
    recorded = episode.get("trajectory_path")
    if not recorded:
        return None
    path = Path(recorded)
    parts = path.parts
    if (run_dir / "trajectories").is_dir() and "trajectories" in parts:
        index = len(parts) - 1 - parts[::-1].index("trajectories")
        local = run_dir.joinpath(*parts[index:])
        return local if local.is_file() else None
    candidate = path if path.is_absolute() else run_dir / path
    return candidate if candidate.is_file() else None


# -- writing every report ---------------------------------------------------------------------


@dataclass
class Rendered:
    """What :func:`write_reports` wrote, and the notes about what it could not."""

    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def write_reports(
    results: dict[str, Any],
    run_dir: Path,
    out_dir: Path | None = None,
    *,
    rows: list[DesignRow] | None = None,
) -> Rendered:
    """Render every report of a run into ``out_dir`` (default: the run directory).

    ``run_dir`` is where ``results.json`` and the trajectory files are. Charts that cannot be
    drawn (matplotlib missing, or a drawing error) are skipped with a one-line note in
    ``summary.md`` and ``report.html``; the tables are always written. ``rows`` are
    :func:`aggregate`'s, when the caller has them already (the statistics are computed once).
    """
    from pytest_alma import report_plots
    from pytest_alma.report_html import render_html
    from pytest_alma.store import atomic_write_bytes, atomic_write_text

    out = run_dir if out_dir is None else out_dir
    rows = aggregate(results) if rows is None else rows
    out.mkdir(parents=True, exist_ok=True)
    rendered = Rendered()
    charts: dict[str, bytes] = {}
    lineage = (results.get("search") or {}).get("lineage")
    if not report_plots.matplotlib_available():
        rendered.notes.append(
            "Charts skipped: matplotlib is not installed (pip install 'pytest-alma[report]')."
        )
    else:
        wanted: list[tuple[str, Any]] = [
            (SUCCESS_VS_COST_FILE, lambda: report_plots.success_vs_cost_png(results, rows))
        ]
        if lineage:
            wanted.append((LINEAGE_FILE, lambda: report_plots.lineage_png(lineage)))
        for name, draw in wanted:
            try:
                data = draw()
            except Exception as exc:  # a chart must never cost the tables
                rendered.notes.append(f"{name} not drawn: {type(exc).__name__}: {exc}")
                continue
            if data is None:
                continue
            atomic_write_bytes(out / name, data)
            rendered.written.append(out / name)
            charts[name] = data
    summary = render_summary(results, charts=list(charts), notes=rendered.notes, rows=rows)
    atomic_write_text(out / SUMMARY_FILE, summary)
    rendered.written.append(out / SUMMARY_FILE)
    html = render_html(results, run_dir, charts=charts, notes=rendered.notes, rows=rows)
    atomic_write_text(out / HTML_FILE, html)
    rendered.written.append(out / HTML_FILE)
    return rendered
