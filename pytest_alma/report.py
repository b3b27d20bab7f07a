"""Comparison tables from a run's ``results.json``: the terminal table and ``summary.md``.

Reports are rendered from the results document alone, so any old run can be re-rendered with
``python -m pytest_alma report RUN_DIR``. Scores are the deployment episodes' success rate (or
mean progression) with a 95% interval; the paired difference is against the ``no_memory``
baseline on the same tasks, seeds and repeats.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from pytest_alma.stats import Estimate, PairedDifference, estimate, paired_difference

BASELINE = "no_memory"


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


def _key(e: dict[str, Any]) -> tuple[str, int, int]:
    return (e["task"]["task_id"], int(e["task"]["seed"]), int(e["repeat"]))


def _tokens(e: dict[str, Any]) -> tuple[int, float | None, int, int]:
    total = 0
    cost: float | None = 0.0
    calls = 0
    cached = 0
    for part in ("agent_tokens", "retrieve_tokens"):
        t = e.get(part, {})
        total += int(t.get("prompt_tokens", 0)) + int(t.get("completion_tokens", 0))
        total += int(t.get("embedding_tokens", 0))
        calls += int(t.get("calls", 0))
        cached += int(t.get("cached_calls", 0))
        c = t.get("cost_usd", 0.0)
        cost = None if cost is None or c is None else cost + float(c)
    return total, cost, calls, cached


def aggregate(results: dict[str, Any]) -> list[DesignRow]:
    """One row per (environment, design), baseline first, then by name."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in results.get("episodes", []):
        if e.get("phase") == "deploy":
            groups[(e["task"]["env"], e["design"])].append(e)
    builds = results.get("designs", {})
    rows: list[DesignRow] = []
    for (env, design), eps in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != BASELINE, kv[0][1])
    ):
        eps.sort(key=_key)
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
        build = builds.get(design, {})
        updates = int(build.get("updates", 0) or 0)
        update_calls = None
        if updates:
            ut = build.get("update_tokens", {})
            update_calls = (
                int(ut.get("calls", 0)) / updates,
                int(ut.get("embedding_calls", 0)) / updates,
            )
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
            )
        )
    return rows


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}"


def _score_cell(est: Estimate) -> str:
    if est.n == 0:
        return "n/a"
    return f"{_pct(est.mean)} [{_pct(est.low)}, {_pct(est.high)}]"


def _diff_cell(vs: PairedDifference | None) -> str:
    if vs is None:
        return "-"
    sign = "+" if vs.mean >= 0 else ""
    return f"{sign}{_pct(vs.mean)} [{_pct(vs.low)}, {_pct(vs.high)}] p={vs.p_value:.3g}"


def _cost_cell(cost: float | None) -> str:
    return "unknown" if cost is None else f"{cost:.5f}"


def table_rows(rows: list[DesignRow]) -> list[list[Any]]:
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


def _label(results: dict[str, Any]) -> str:
    model = results.get("model")
    if results.get("test_double"):
        return f"model: {model} (SCRIPTED TEST DOUBLE: these numbers test the plumbing, not an LLM)"
    return f"model: {model}"


def terminal_lines(results: dict[str, Any]) -> list[str]:
    """The comparison table for the terminal summary."""
    rows = aggregate(results)
    if not rows:
        return ["no deployment episodes finished in this run"]
    lines = [_label(results)]
    lines.extend(tabulate(table_rows(rows), headers=HEADERS, tablefmt="simple").splitlines())
    cached_calls = sum(_tokens(e)[3] for e in results.get("episodes", []))
    calls = sum(_tokens(e)[2] for e in results.get("episodes", []))
    if calls:
        lines.append(f"LLM calls in deployment: {calls}, answered from cache: {cached_calls}")
    return lines


def _calls_cell(calls: tuple[float, float]) -> str:
    chat, embed = calls
    return f"{round(chat, 2):g} chat + {round(embed, 2):g} embed"


def render_summary(results: dict[str, Any]) -> str:
    """``summary.md`` of a run."""
    rows = aggregate(results)
    settings = results.get("settings", {})
    out = [f"# pytest-alma run {results.get('run_id')}", "", _label(results), ""]
    if results.get("test_double"):
        out += [
            "> **These results come from the scripted test double, not from an LLM.** They show "
            "that the harness, the designs and the statistics work end to end.",
            "",
        ]
    out += ["## Scores (deployment episodes)", ""]
    if rows:
        out.append(tabulate(table_rows(rows), headers=HEADERS, tablefmt="github"))
    else:
        out.append("No deployment episodes finished.")
    calls = sum(_tokens(e)[2] for e in results.get("episodes", []))
    cached = sum(_tokens(e)[3] for e in results.get("episodes", []))
    if calls:
        out += ["", f"LLM calls in deployment: {calls}, answered from cache: {cached}."]
    out += ["", "## Memory calls", ""]
    call_rows = [
        [
            r.env,
            r.design,
            "n/a" if r.update_calls is None else _calls_cell(r.update_calls),
            _calls_cell(r.retrieve_calls),
            r.truncated,
        ]
        for r in rows
    ]
    out.append(
        tabulate(
            call_rows,
            headers=[
                "env",
                "design",
                "calls per update",
                "calls per retrieve",
                "truncated memories",
            ],
            tablefmt="github",
        )
    )
    out += ["", "## Settings", ""]
    out.append(
        tabulate(
            sorted((k, str(v)) for k, v in settings.items()),
            headers=["setting", "value"],
            tablefmt="github",
        )
    )
    commit = results.get("commit", {})
    out += [
        "",
        f"Commit: {commit.get('commit')} (dirty: {commit.get('dirty')}); "
        f"machine: {results.get('machine', {}).get('platform')}",
        "",
    ]
    return "\n".join(out)
