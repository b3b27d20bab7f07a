"""``report.html``: one static, self-contained page per run.

Everything is inline (CSS, a few lines of JavaScript, the charts as base64 PNG), so the file
opens from disk with no network. It holds the report tables, the charts and an episode browser:
one collapsed ``<details>`` per deployment episode with the task, design, score, the memory the
design retrieved and every step. Every text from a run is HTML-escaped (observations hold ``<``,
``>`` and ``&``).

Large runs stay light: the steps of at most :data:`MAX_EPISODES` episodes (and
:data:`MAX_EMBEDDED_CHARS` characters of episode text) are embedded; the page says how many
were left out, and every episode still gets its summary line.

Stable hooks for readers and tests: tables are ``table#table-<key>`` with ``tr[data-design]``
rows; episodes are ``details.episode#ep-<n>`` with ``data-env``, ``data-design``, ``data-task``,
``data-repeat``, ``data-score`` and ``data-steps-embedded``; their steps are ``tr.step``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from pytest_alma.report import (
    BASELINE,
    LINEAGE_FILE,
    SUCCESS_VS_COST_FILE,
    TEST_DOUBLE_DETAIL,
    TEST_DOUBLE_HEADLINE,
    DesignRow,
    Table,
    aggregate,
    isolation_label,
    model_label,
    partial_lines,
    report_tables,
    trajectory_file,
)

MAX_EPISODES = 200
MAX_EMBEDDED_CHARS = 6_000_000
MAX_TEXT_CHARS = 4_000  # per observation
MAX_MEMORY_CHARS = 20_000  # the retrieved memory (the agent sees at most --alma-memory-cap)

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px;
  padding: 0 1.2em 3em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin-top: 1em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
nav a { margin-right: 1em; }
.banner { background: #fff0f0; border: 2px solid #b00020; color: #7a0014; padding: .6em 1em;
  border-radius: 6px; font-weight: 600; }
.note { background: #fffbe6; border-left: 4px solid #e0b000; padding: .3em .8em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
tr.baseline td { background: #f7f9ff; }
.table-note { color: #555; font-size: .9em; max-width: 60em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
details.episode { border: 1px solid #ddd; border-radius: 5px; margin: .3em 0; padding: .2em .6em; }
details.episode > summary { cursor: pointer; }
details.episode[data-success="true"] > summary .score { color: #0a7a20; font-weight: 600; }
details.episode .error { color: #b00020; }
pre { white-space: pre-wrap; word-break: break-word; background: #f8f8fa; padding: .4em;
  margin: 0; max-height: 30em; overflow: auto; font-size: 12.5px; }
table.steps td.action { font-family: monospace; white-space: nowrap; }
.filters { display: flex; gap: 1em; align-items: center; flex-wrap: wrap; margin: .5em 0; }
.muted { color: #777; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1.2em; }
dl.facts dt { color: #555; } dl.facts dd { margin: 0; }
pre.error { background: #fff0f0; color: #7a0014; }
"""

JS = """
(function () {
  function apply() {
    var env = document.getElementById('filter-env').value;
    var design = document.getElementById('filter-design').value;
    var text = document.getElementById('filter-task').value.toLowerCase();
    var shown = 0;
    document.querySelectorAll('details.episode').forEach(function (d) {
      var ok = (!env || d.dataset.env === env) && (!design || d.dataset.design === design) &&
        (!text || d.dataset.task.toLowerCase().indexOf(text) >= 0);
      d.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById('filter-count').textContent = shown + ' shown';
  }
  function setAll(open) {
    document.querySelectorAll('details.episode').forEach(function (d) {
      if (!d.hidden) { d.open = open; }
    });
  }
  ['filter-env', 'filter-design', 'filter-task'].forEach(function (id) {
    var element = document.getElementById(id);
    element.addEventListener('input', apply);
    element.addEventListener('change', apply);  // selects changed by script fire only this
  });
  document.getElementById('expand-all').addEventListener('click', function () { setAll(true); });
  document.getElementById('collapse-all').addEventListener('click', function () { setAll(false); });
  apply();
})();
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _clip(text: str, limit: int | None = None) -> str:
    limit = MAX_TEXT_CHARS if limit is None else limit
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… ({len(text) - limit} more characters)"


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    body = []
    for key, row in zip(table.row_keys, table.rows, strict=True):
        attr = "data-setting" if table.key in ("settings", "search") else "data-design"
        cls = ' class="baseline"' if key == BASELINE and attr == "data-design" else ""
        cells = "".join(f"<td>{_e(c)}</td>" for c in row)
        body.append(f'<tr {attr}="{_e(key)}"{cls}>{cells}</tr>')
    note = f'<p class="table-note">{_e(table.note)}</p>' if table.note else ""
    return (
        f'<h3 id="h-{_e(table.key)}">{_e(table.title)}</h3>'
        f'<table id="table-{_e(table.key)}" class="report-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{note}"
    )


def _episode_order(e: dict[str, Any]) -> tuple[str, str, int, int, bool, str]:
    # The same task and repeat of every design side by side, No Memory first: the browser
    # is for comparing what each memory did on one episode.
    t = e["task"]
    return (
        t["env"],
        t["task_id"],
        int(t["seed"]),
        int(e["repeat"]),
        e["design"] != BASELINE,
        e["design"],
    )


def _headline(error: str) -> str:
    """The line of an error that says what went wrong (a traceback's last line), shortened."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    head = error.split(":", 1)[0] if error.startswith("design error") else ""
    last = lines[-1] if lines else error
    text = f"{head}: {last}" if head and not last.startswith(head) else last
    return text if len(text) <= 200 else text[:199] + "…"


def _load(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _episode_body(e: dict[str, Any], run_dir: Path) -> tuple[str, int, bool]:
    """The inside of one episode's ``<details>``, how many characters it embeds, and whether
    it holds the steps (false when the trajectory file is missing)."""
    path = trajectory_file(e, run_dir)
    record = _load(path)
    t = e["task"]
    facts = [
        ("task", t["task_id"]),
        ("split", t.get("split")),
        ("seed", t["seed"]),
        ("repeat", e["repeat"]),
        ("score", e["score"]),
        ("steps", e.get("steps")),
        ("memory characters", e.get("memory_chars", 0)),
        ("memory truncated", bool(e.get("memory_truncated"))),
    ]
    out = ['<dl class="facts">']
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts]
    out.append("</dl>")
    if e.get("error"):
        out.append(f'<h4>Error</h4><pre class="error">{_e(_clip(str(e["error"])))}</pre>')
    if record is None:
        where = e.get("trajectory_path") or "(none recorded)"
        out.append(
            f'<p class="muted missing-trajectory">trajectory file not found: {_e(where)}</p>'
        )
        return "".join(out), 0, False
    memory = _clip(
        json.dumps(record.get("memory", {}), indent=2, ensure_ascii=False), MAX_MEMORY_CHARS
    )
    traj = record.get("trajectory") or {}
    start = traj.get("start") or {}
    observation = _clip(str(start.get("observation", "")))
    out.append(f'<h4>Retrieved memory</h4><pre class="memory">{_e(memory)}</pre>')
    if start.get("goal"):
        out.append(f'<h4>Goal</h4><pre class="goal">{_e(_clip(str(start["goal"])))}</pre>')
    out.append(f'<h4>Start</h4><pre class="observation start">{_e(observation)}</pre>')
    size = len(memory) + len(observation)
    steps = traj.get("steps") or []
    rows = []
    for number, step in enumerate(steps, 1):
        obs = _clip(str(step.get("observation", "")))
        action = str(step.get("action", ""))
        if step.get("invalid"):
            action += f" (invalid reply: {str(step.get('reply', ''))[:200]})"
        size += len(obs) + len(action)
        rows.append(
            f'<tr class="step" data-step="{number}"><td>{number}</td>'
            f'<td class="action">{_e(action)}</td><td><pre class="observation">{_e(obs)}</pre></td>'
            f'<td class="reward">{_e(step.get("reward"))}</td></tr>'
        )
    out.append(
        '<h4>Steps</h4><table class="steps"><thead><tr><th>#</th><th>action</th>'
        f"<th>observation</th><th>reward</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return "".join(out), size, True


def _episodes_html(results: dict[str, Any], run_dir: Path) -> str:
    episodes = sorted(
        (e for e in results.get("episodes", []) if e.get("phase") == "deploy"),
        key=_episode_order,
    )
    blocks = []
    in_full = 0  # episodes rendered with their details (within the caps)
    missing = 0  # of those, episodes whose trajectory file was not found
    budget = MAX_EMBEDDED_CHARS
    for number, e in enumerate(episodes):
        t = e["task"]
        has_steps = False
        if in_full < MAX_EPISODES and budget > 0:
            body, size, has_steps = _episode_body(e, run_dir)
            budget -= size
            in_full += 1
            missing += not has_steps
        else:
            body = (
                '<p class="muted not-embedded">Not shown in full: this page embeds the first '
                f"{in_full} episodes only, to stay light. The steps are in "
                f"{_e(e.get('trajectory_path'))}</p>"
            )
        success = bool(e.get("success"))
        outcome = "success" if success else "failure"
        error = (
            f' <span class="error">error: {_e(_headline(str(e["error"])))}</span>'
            if e.get("error")
            else ""
        )
        summary = (
            f'<span class="env">{_e(t["env"])}</span> · <span class="task">{_e(t["task_id"])}'
            f"</span> s{_e(t['seed'])} r{_e(e['repeat'])} · "
            f'<span class="design">{_e(e["design"])}</span> · '
            f'<span class="score">score {_e(e["score"])} ({outcome})</span> · '
            f"{_e(e.get('steps'))} steps{error}"
        )
        blocks.append(
            f'<details class="episode" id="ep-{number}" data-env="{_e(t["env"])}" '
            f'data-design="{_e(e["design"])}" data-task="{_e(t["task_id"])}" '
            f'data-repeat="{_e(e["repeat"])}" data-score="{_e(e["score"])}" '
            f'data-success="{"true" if success else "false"}" '
            f'data-steps-embedded="{"true" if has_steps else "false"}">'
            f"<summary>{summary}</summary>{body}</details>"
        )
    left_out = len(episodes) - in_full
    envs = sorted({e["task"]["env"] for e in episodes})
    designs = sorted({e["design"] for e in episodes})

    def options(values: Sequence[str]) -> str:
        return '<option value="">all</option>' + "".join(
            f'<option value="{_e(v)}">{_e(v)}</option>' for v in values
        )

    head = (
        f'<p id="episode-count">{len(episodes)} deployment episodes; {in_full} in full'
        + (f", {missing} of them without steps (trajectory file not found)" if missing else "")
        + (
            f', <span id="episodes-left-out">{left_out} left out</span> (their steps are in '
            "the trajectory files under trajectories/)"
            if left_out
            else ""
        )
        + ". Click an episode to see the memory it retrieved and every step.</p>"
        '<div class="filters">'
        f'<label>environment <select id="filter-env">{options(envs)}</select></label>'
        f'<label>design <select id="filter-design">{options(designs)}</select></label>'
        '<label>task <input id="filter-task" type="search" placeholder="task id"></label>'
        '<button id="expand-all" type="button">expand all</button>'
        '<button id="collapse-all" type="button">collapse all</button>'
        '<span id="filter-count" class="muted"></span></div>'
    )
    return head + "".join(blocks)


def _chart_html(name: str, data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    chart_id = "chart-" + name.removesuffix(".png").replace("_", "-")
    return (
        f'<figure><img id="{chart_id}" alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{_e(alt)} ({_e(name)})</figcaption></figure>"
    )


def render_html(
    results: dict[str, Any],
    run_dir: Path,
    *,
    charts: Mapping[str, bytes] | None = None,
    notes: Sequence[str] = (),
    rows: list[DesignRow] | None = None,
) -> str:
    """The whole ``report.html`` of a run.

    ``run_dir`` is where the trajectory files are looked up; ``charts`` maps chart file names
    to their PNG bytes (embedded inline); ``notes`` are shown at the top (charts skipped...);
    ``rows`` are :func:`~pytest_alma.report.aggregate`'s, when the caller has them already.
    """
    charts = charts or {}
    rows = aggregate(results) if rows is None else rows
    tables = report_tables(results, rows)
    run_id = results.get("run_id")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>pytest-alma run {_e(run_id)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>pytest-alma run {_e(run_id)}</h1>",
        f'<p id="model">{_e(model_label(results))}</p>',
        f'<p id="isolation">{_e(isolation_label(results))}</p>',
    ]
    partial = partial_lines(results, rows)
    if partial:
        parts.append(
            f'<div id="partial-banner" class="banner"><strong>{_e(partial[0])}</strong> '
            f"{_e(' '.join(partial[1:]))}</div>"
        )
    if results.get("test_double"):
        parts.append(
            f'<div id="test-double-banner" class="banner">{_e(TEST_DOUBLE_HEADLINE)} '
            f"{_e(TEST_DOUBLE_DETAIL)}</div>"
        )
    parts += [f'<p class="note report-note">{_e(n)}</p>' for n in notes]
    parts.append(
        '<nav><a href="#scores">scores</a><a href="#costs">tokens and dollars</a>'
        '<a href="#charts">charts</a><a href="#episodes">episodes</a>'
        '<a href="#settings">settings</a></nav></header>'
    )
    parts.append('<section id="scores"><h2>Scores (deployment episodes)</h2>')
    if not rows:
        parts.append("<p>No deployment episodes finished.</p>")
    parts += [_table_html(t) for t in tables if t.section == "scores"]
    parts.append('</section><section id="costs"><h2>Tokens, dollars and memory calls</h2>')
    parts += [_table_html(t) for t in tables if t.section == "costs"]
    search = [t for t in tables if t.section == "search"]
    if search:
        parts.append('</section><section id="search"><h2>Search</h2>')
        parts += [_table_html(t) for t in search]
    parts.append('</section><section id="charts"><h2>Charts</h2>')
    if SUCCESS_VS_COST_FILE in charts:
        parts.append(
            _chart_html(
                SUCCESS_VS_COST_FILE,
                charts[SUCCESS_VS_COST_FILE],
                "Success against cost per episode; bubble area: retrieved memory size",
            )
        )
    if LINEAGE_FILE in charts:
        parts.append(
            _chart_html(LINEAGE_FILE, charts[LINEAGE_FILE], "Search lineage, coloured by reward")
        )
    if not charts:
        parts.append('<p class="muted">No charts in this report (see the note above).</p>')
    parts.append('</section><section id="episodes"><h2>Episodes</h2>')
    parts.append(_episodes_html(results, run_dir))
    parts.append('</section><section id="settings"><h2>Settings</h2>')
    parts += [_table_html(t) for t in tables if t.section == "settings"]
    parts.append(f"</section><script>{JS}</script></body></html>")
    return "\n".join(parts)
