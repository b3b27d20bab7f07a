"""Comparison reports from a run's ``results.json``: the terminal table, ``summary.md``, the
charts and ``report.html``.

Reports are rendered from the results document alone (plus the trajectory files it points
to), so any old run can be re-rendered with ``python -m pytest_alma report RUN``. Scores are
the deployment episodes' success rate (TextWorld: mean progression) with a 95% interval; the
paired difference is against the ``no_memory`` baseline on the same tasks, seeds and repeats.

The tables are built once (:func:`report_tables`) and written both as Markdown and as HTML, so
the two documents cannot disagree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pytest_alma.stats import Estimate, PairedDifference, estimate, paired_difference

BASELINE = "no_memory"

#: The score each environment reports; the rest report success (0 or 1 per episode).
METRIC_BY_ENV = {"textworld": "progression"}

SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
SUCCESS_VS_COST_FILE = "success_vs_cost.png"
LINEAGE_FILE = "lineage.png"

TEST_DOUBLE_HEADLINE = "These results come from the scripted test double, not from an LLM."
TEST_DOUBLE_DETAIL = (
    "They show that the harness, the designs and the statistics work end to end; they say "
    "nothing about how well a memory design helps an LLM."
)


def metric_name(env: str) -> str:
    """What an environment's episode score measures: ``success`` or ``progression``."""
    return METRIC_BY_ENV.get(env, "success")


@dataclass(frozen=True)
class DesignRow:
    """Aggregated numbers of one design on one environment."""

    env: str
    design: str
    score: Estimate
    versus_baseline: PairedDifference | None
    errors: int
    tokens_per_episode: float
    cost_per_episode: float | None
    cached_share: float
    memory_chars: float
    truncated: int
    retrieve_calls: tuple[float, float]  # (chat, embedding) calls per retrieve
    update_calls: tuple[float, float] | None  # (chat, embedding) calls per update
    build_tokens: int = 0  # tokens the memory build (all updates) spent
    build_cost: float | None = 0.0  # its dollars (None: a price was unknown)


def _key(e: dict[str, Any]) -> tuple[str, int, int]:
    return (e["task"]["task_id"], int(e["task"]["seed"]), int(e["repeat"]))


def _usage_tokens(t: dict[str, Any]) -> int:
    return (
        int(t.get("prompt_tokens", 0))
        + int(t.get("completion_tokens", 0))
        + int(t.get("embedding_tokens", 0))
    )


def _tokens(e: dict[str, Any]) -> tuple[int, float | None, int, int]:
    total = 0
    cost: float | None = 0.0
    calls = 0
    cached = 0
    for part in ("agent_tokens", "retrieve_tokens"):
        t = e.get(part, {})
        total += _usage_tokens(t)
        calls += int(t.get("calls", 0))
        cached += int(t.get("cached_calls", 0))
        c = t.get("cost_usd", 0.0)
        cost = None if cost is None or c is None else cost + float(c)
    return total, cost, calls, cached


def build_for(builds: dict[str, Any], design: str, env: str) -> dict[str, Any]:
    """The memory-build record of a design on an environment.

    A record that names its environment is matched on it; records without one (results.json
    schema 1 keeps one build per design) are used for every environment.
    """
    for build in builds.values():
        if isinstance(build, dict) and build.get("design") == design and build.get("env") == env:
            return build
    build = builds.get(design, {})
    return build if isinstance(build, dict) else {}


def deploy_groups(results: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Deployment episodes grouped by (environment, design), each group in pairing order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in results.get("episodes", []):
        if e.get("phase") == "deploy":
            groups[(e["task"]["env"], e["design"])].append(e)
    for eps in groups.values():
        eps.sort(key=_key)
    return groups


def aggregate(results: dict[str, Any]) -> list[DesignRow]:
    """One row per (environment, design), baseline first, then by name."""
    groups = deploy_groups(results)
    builds = results.get("designs", {}) or {}
    rows: list[DesignRow] = []
    for (env, design), eps in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != BASELINE, kv[0][1])
    ):
        scores = [float(e["score"]) for e in eps]
        vs: PairedDifference | None = None
        base = groups.get((env, BASELINE))
        if base is not None and design != BASELINE:
            base_by_key = {_key(b): float(b["score"]) for b in base}
            pairs = [
                (float(e["score"]), base_by_key[_key(e)]) for e in eps if _key(e) in base_by_key
            ]
            if pairs:
                vs = paired_difference([p[0] for p in pairs], [p[1] for p in pairs])
        token_info = [_tokens(e) for e in eps]
        costs = [t[1] for t in token_info]
        calls = sum(t[2] for t in token_info)
        cached = sum(t[3] for t in token_info)
        build = build_for(builds, design, env)
        updates = int(build.get("updates", 0) or 0)
        ut = build.get("update_tokens", {}) or {}
        update_calls = None
        if updates:
            update_calls = (
                int(ut.get("calls", 0)) / updates,
                int(ut.get("embedding_calls", 0)) / updates,
            )
        build_cost = ut.get("cost_usd", 0.0)
        rows.append(
            DesignRow(
                env=env,
                design=design,
                score=estimate(scores),
                versus_baseline=vs,
                errors=sum(1 for e in eps if e.get("error")),
                tokens_per_episode=sum(t[0] for t in token_info) / len(eps),
                cost_per_episode=(
                    None
                    if any(c is None for c in costs)
                    else sum(c for c in costs if c is not None) / len(eps)
                ),
                cached_share=cached / calls if calls else 0.0,
                memory_chars=sum(int(e.get("memory_chars", 0)) for e in eps) / len(eps),
                truncated=sum(1 for e in eps if e.get("memory_truncated")),
                retrieve_calls=(
                    sum(int(e["retrieve_tokens"].get("calls", 0)) for e in eps) / len(eps),
                    sum(int(e["retrieve_tokens"].get("embedding_calls", 0)) for e in eps)
                    / len(eps),
                ),
                update_calls=update_calls,
                build_tokens=_usage_tokens(ut),
                build_cost=None if build_cost is None else float(build_cost),
            )
        )
    return rows


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
    return f"{_signed_pct(vs.mean)} [{_pct(vs.low)}, {_pct(vs.high)}] p={vs.p_value:.3g}"


def _p_cell(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.3g}"


def _cost_cell(cost: float | None) -> str:
    return "unknown" if cost is None else f"{cost:.5f}"


def _calls_cell(calls: tuple[float, float]) -> str:
    chat, embed = calls
    return f"{round(chat, 2):g} chat + {round(embed, 2):g} embed"


def table_rows(rows: list[DesignRow]) -> list[list[Any]]:
    """The cells of the terminal table (one line per design and environment)."""
    return [
        [
            r.env,
            r.design,
            r.score.n,
            _score_cell(r.score),
            _diff_cell(r.versus_baseline),
            f"{r.tokens_per_episode:.0f}",
            _cost_cell(r.cost_per_episode),
            f"{100 * r.cached_share:.0f}%",
            f"{r.memory_chars:.0f}",
            r.errors,
        ]
        for r in rows
    ]


HEADERS = [
    "env",
    "design",
    "n",
    "score % [95% CI]",
    f"vs {BASELINE} (paired)",
    "tokens/ep",
    "$/ep",
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


def terminal_lines(results: dict[str, Any], rows: list[DesignRow] | None = None) -> list[str]:
    """The comparison table for the terminal summary (``rows``: :func:`aggregate`'s, when the
    caller has them already)."""
    rows = aggregate(results) if rows is None else rows
    if not rows:
        return ["no deployment episodes finished in this run"]
    lines = [model_label(results)]
    lines.extend(tabulate(table_rows(rows), headers=HEADERS, tablefmt="simple").splitlines())
    cached_calls = sum(_tokens(e)[3] for e in results.get("episodes", []))
    calls = sum(_tokens(e)[2] for e in results.get("episodes", []))
    if calls:
        lines.append(f"LLM calls in deployment: {calls}, answered from cache: {cached_calls}")
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
                str(r.score.n),
                _pct(r.score.mean) if r.score.n else "n/a",
                _interval_cell(r.score.low, r.score.high),
                "-" if vs is None else _signed_pct(vs.mean),
                "-" if vs is None else _interval_cell(vs.low, vs.high),
                "-" if vs is None else _p_cell(vs.p_value),
                "-" if vs is None else f"{vs.test} ({vs.nonzero} of {vs.n} pairs differ)",
                str(r.errors),
            ]
        )
    methods = sorted({r.score.method for r in rows if r.score.method})
    method_text = {"wilson": "Wilson", "t": "Student t"}
    note = (
        f"{metric} % over deployment episodes; 95% interval: "
        + (", ".join(method_text.get(m, m) for m in methods) or "n/a")
        + f". Difference: percentage points against {BASELINE} on the same tasks, seeds and "
        "repeats, with the t interval of the mean difference and a two-sided p-value (exact "
        "sign-flip permutation test with up to 16 differing pairs, paired t-test beyond)."
    )
    if not has_base:
        note += f" No {BASELINE} episodes in this environment: no paired differences."
    return Table(
        key=f"scores-{env}",
        title=f"{env}: {metric}",
        headers=[
            "design",
            "n",
            f"{metric} %",
            "95% interval",
            f"vs {BASELINE} (pp)",
            "95% interval of difference",
            "p",
            "test",
            "errors",
        ],
        rows=body,
        row_keys=[r.design for r in rows],
        note=note,
    )


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
                "cached calls",
                "memory chars (mean)",
                "truncated memories",
                "memory build tokens",
                "memory build $",
            ],
            rows=[
                [
                    r.env,
                    r.design,
                    f"{r.tokens_per_episode:.0f}",
                    _cost_cell(r.cost_per_episode),
                    f"{100 * r.cached_share:.0f}%",
                    f"{r.memory_chars:.0f}",
                    str(r.truncated),
                    str(r.build_tokens),
                    _cost_cell(r.build_cost),
                ]
                for r in rows
            ],
            row_keys=[r.design for r in rows],
            note=(
                "Per deployment episode: the agent's calls plus the design's retrieve calls. "
                "Memory build: every general_update call of the collection phase"
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
    out = [f"# pytest-alma run {results.get('run_id')}", "", model_label(results), ""]
    if results.get("test_double"):
        out += [f"> **{TEST_DOUBLE_HEADLINE}** {TEST_DOUBLE_DETAIL}", ""]
    for note in notes:
        out += [f"> {note}", ""]
    tables = report_tables(results, rows)
    out += ["## Scores (deployment episodes)", ""]
    if not rows:
        out += ["No deployment episodes finished.", ""]
    calls = sum(_tokens(e)[2] for e in results.get("episodes", []))
    cached = sum(_tokens(e)[3] for e in results.get("episodes", []))
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
