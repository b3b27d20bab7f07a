"""The report's numbers: one :class:`DesignRow` per design and environment, from ``results.json``.

Scores are the deployment episodes' success rate (TextWorld: mean progression) with the task as
the statistical unit (:mod:`pytest_alma.stats`): the 95% interval, the paired difference against
``no_memory`` per task, its sign-flip p-value with Holm's adjustment over the designs of an
environment, and the minimum detectable difference. Every episode counts: one that ended in an
error scores 0 and stays in the mean; a design whose memory build failed gets a row even with no
episode at all.

Old ``results.json`` files (written before these fields existed) still aggregate: episodes
without ``trajectory_digest`` have no ``n_eff``, errors without ``error_kind`` are classed from
their message, token counts without ``saved_usd`` save nothing.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from pytest_alma.stats import (
    Estimate,
    PairedDifference,
    estimate,
    holm,
    minimum_detectable_difference,
    paired_difference,
    unpaired_difference_se,
)

BASELINE = "no_memory"

#: The score each environment reports; the rest report success (0 or 1 per episode).
METRIC_BY_ENV = {"textworld": "progression"}

#: The error kinds an episode record names (``error_kind``), in the order the report lists them.
ERROR_KINDS = ("design", "llm", "environment", "harness")


def metric_name(env: str) -> str:
    """What an environment's episode score measures: ``success`` or ``progression``."""
    return METRIC_BY_ENV.get(env, "success")


@dataclass(frozen=True)
class DesignRow:
    """Aggregated numbers of one design on one environment.

    ``repeats``: (fewest, most) episodes per task; ``distinct``: episodes that differ (``n_eff``,
    by trajectory digest; ``None`` when the records carry no digests); ``errors_by_kind``:
    ``(kind, count)`` pairs; ``build_error``: why the memory build failed, if it did;
    ``p_holm``: the paired p-value adjusted over the environment's designs; ``mde`` and
    ``mde_basis``: the minimum detectable difference and what its SE came from (``"paired"``,
    ``"baseline"`` or ``"own"``).
    """

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
    tasks: int = 0
    repeats: tuple[int, int] = (0, 0)
    distinct: int | None = None
    errors_by_kind: tuple[tuple[str, int], ...] = ()
    build_error: str | None = None
    p_holm: float = float("nan")
    mde: float = float("nan")
    mde_basis: str = ""
    saved_per_episode: float = 0.0
    build_saved: float = 0.0


def episode_key(e: dict[str, Any]) -> tuple[str, int, int]:
    """What pairs two designs' episodes: (task, task seed, repeat)."""
    return (e["task"]["task_id"], int(e["task"]["seed"]), int(e["repeat"]))


def episode_score(e: dict[str, Any]) -> float:
    """The episode's score; an episode that could not be played (no score) is a 0."""
    score = e.get("score")
    return 0.0 if score is None else float(score)


def usage_tokens(t: dict[str, Any]) -> int:
    """Prompt, completion and embedding tokens of a token-count record."""
    return (
        int(t.get("prompt_tokens", 0) or 0)
        + int(t.get("completion_tokens", 0) or 0)
        + int(t.get("embedding_tokens", 0) or 0)
    )


def _usage_parts(e: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [e.get("agent_tokens") or {}, e.get("retrieve_tokens") or {}]
    # Sequential rollout: the update after each episode is part of what the episode cost
    # (top-level in new records, under "extra" in older ones).
    update = e.get("update_tokens") or (e.get("extra") or {}).get("update_tokens")
    if isinstance(update, dict):
        parts.append(update)
    return parts


@dataclass(frozen=True)
class Usage:
    """Token use of one episode: tokens, dollars spent (``None``: a price unknown), dollars the
    cache saved, calls and calls answered from the cache."""

    tokens: int
    cost: float | None
    saved: float
    calls: int
    cached: int


def episode_usage(e: dict[str, Any]) -> Usage:
    """Agent, retrieve and (sequential rollout) update usage of one episode, added up."""
    tokens = calls = cached = 0
    cost: float | None = 0.0
    saved = 0.0
    for t in _usage_parts(e):
        tokens += usage_tokens(t)
        calls += int(t.get("calls", 0) or 0)
        cached += int(t.get("cached_calls", 0) or 0)
        c = t.get("cost_usd", 0.0)
        cost = None if cost is None or c is None else cost + float(c)
        saved += float(t.get("saved_usd", 0.0) or 0.0)
    return Usage(tokens, cost, saved, calls, cached)


def error_kind(e: dict[str, Any]) -> str:
    """Why an episode failed: its ``error_kind``, or for old records ``design`` when the message
    says so (the runner wrote ``design error: ...``), else ``unknown``."""
    kind = e.get("error_kind")
    if kind:
        return str(kind)
    return "design" if str(e.get("error", "")).startswith("design error") else "unknown"


def build_for(builds: dict[str, Any], design: str, env: str) -> dict[str, Any]:
    """The memory-build record of a design on an environment.

    A record that names its environment is matched on it; records without one (results.json
    schema 1 keeps one build per design) are used for every environment.
    """
    for build in builds.values():
        if isinstance(build, dict) and build.get("design") == design and build.get("env") == env:
            return build
    build = builds.get(design, {})
    if isinstance(build, dict) and build.get("env") not in (None, env):
        return {}  # keyed by design, but another environment's build
    return build if isinstance(build, dict) else {}


def deploy_groups(results: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Deployment episodes grouped by (environment, design), each group in pairing order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in results.get("episodes", []):
        if e.get("phase") == "deploy":
            groups[(e["task"]["env"], e["design"])].append(e)
    for eps in groups.values():
        eps.sort(key=episode_key)
    return groups


def failed_builds(results: dict[str, Any], envs: set[str]) -> dict[tuple[str, str], str]:
    """``(env, design) -> error`` for every memory build that failed; a build record that names
    no environment counts for every environment of the run."""
    out: dict[tuple[str, str], str] = {}
    for key, build in (results.get("designs") or {}).items():
        if not isinstance(build, dict) or not build.get("error"):
            continue
        design = str(build.get("design") or key)
        for env in [str(build["env"])] if build.get("env") else sorted(envs):
            out[(env, design)] = str(build["error"])
    return out


def distinct_episodes(eps: list[dict[str, Any]]) -> int | None:
    """``n_eff``: per task, the number of distinct trajectory digests, summed over tasks (an
    episode without a digest counts as distinct); ``None`` when no episode has a digest."""
    if not any(e.get("trajectory_digest") for e in eps):
        return None
    per_task: dict[str, set[str]] = defaultdict(set)
    for number, e in enumerate(eps):
        digest = e.get("trajectory_digest") or f"\x00no digest {number}"
        per_task[e["task"]["task_id"]].add(str(digest))
    return sum(len(d) for d in per_task.values())


def _pairs(
    eps: list[dict[str, Any]], base: list[dict[str, Any]]
) -> tuple[list[float], list[float], list[str]]:
    base_by_key = {episode_key(b): episode_score(b) for b in base}
    t: list[float] = []
    b: list[float] = []
    tasks: list[str] = []
    for e in eps:
        key = episode_key(e)
        if key in base_by_key:
            t.append(episode_score(e))
            b.append(base_by_key[key])
            tasks.append(key[0])
    return t, b, tasks


def _row(
    env: str,
    design: str,
    eps: list[dict[str, Any]],
    base: list[dict[str, Any]] | None,
    builds: dict[str, Any],
    build_error: str | None,
) -> DesignRow:
    score = estimate([episode_score(e) for e in eps], [e["task"]["task_id"] for e in eps])
    vs: PairedDifference | None = None
    if base is not None and design != BASELINE and eps:
        t, b, tasks = _pairs(eps, base)
        if t:
            vs = paired_difference(t, b, tasks)
    usage = [episode_usage(e) for e in eps]
    costs = [u.cost for u in usage]
    calls = sum(u.calls for u in usage)
    count = max(1, len(eps))  # a row without episodes (a failed build) divides nothing
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
    per_task = Counter(e["task"]["task_id"] for e in eps)
    kinds = Counter(error_kind(e) for e in eps if e.get("error"))
    order = {k: i for i, k in enumerate(ERROR_KINDS)}
    return DesignRow(
        env=env,
        design=design,
        score=score,
        versus_baseline=vs,
        errors=sum(kinds.values()),
        tokens_per_episode=sum(u.tokens for u in usage) / count,
        cost_per_episode=(
            None if any(c is None for c in costs) else sum(c for c in costs if c) / count
        ),
        cached_share=sum(u.cached for u in usage) / calls if calls else 0.0,
        memory_chars=sum(int(e.get("memory_chars", 0) or 0) for e in eps) / count,
        truncated=sum(1 for e in eps if e.get("memory_truncated")),
        retrieve_calls=(
            sum(int((e.get("retrieve_tokens") or {}).get("calls", 0)) for e in eps) / count,
            sum(int((e.get("retrieve_tokens") or {}).get("embedding_calls", 0)) for e in eps)
            / count,
        ),
        update_calls=update_calls,
        build_tokens=usage_tokens(ut),
        build_cost=None if build_cost is None else float(build_cost),
        tasks=len(per_task),
        repeats=(min(per_task.values()), max(per_task.values())) if per_task else (0, 0),
        distinct=distinct_episodes(eps),
        errors_by_kind=tuple(sorted(kinds.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        build_error=build_error,
        saved_per_episode=sum(u.saved for u in usage) / count,
        build_saved=float(ut.get("saved_usd", 0.0) or 0.0),
    )


def _with_family_statistics(rows: list[DesignRow]) -> list[DesignRow]:
    """Holm over the environment's paired p-values, and each row's minimum detectable
    difference (see :mod:`pytest_alma.stats`)."""
    adjusted = holm([r.versus_baseline.p_value if r.versus_baseline else math.nan for r in rows])
    base = next((r for r in rows if r.design == BASELINE and r.score.n), None)
    out: list[DesignRow] = []
    for r, p in zip(rows, adjusted, strict=True):
        vs = r.versus_baseline
        if vs is not None and vs.se > 0.0 and vs.clusters >= 2:
            mde, basis = minimum_detectable_difference(vs.se, vs.clusters), "paired"
        elif base is not None:
            mde = minimum_detectable_difference(unpaired_difference_se(base.score), base.tasks)
            basis = "baseline"
        else:
            mde, basis = (
                minimum_detectable_difference(unpaired_difference_se(r.score), r.tasks),
                "own",
            )
        out.append(r.__class__(**{**r.__dict__, "p_holm": p, "mde": mde, "mde_basis": basis}))
    return out


def aggregate(results: dict[str, Any]) -> list[DesignRow]:
    """One row per (environment, design), baseline first, then by name.

    A design whose memory build failed gets a row in each environment it failed in, with or
    without episodes.
    """
    groups = deploy_groups(results)
    builds = results.get("designs", {}) or {}
    envs = {env for env, _ in groups}
    broken = failed_builds(results, envs)
    keys = sorted(set(groups) | set(broken), key=lambda kv: (kv[0], kv[1] != BASELINE, kv[1]))
    by_env: dict[str, list[DesignRow]] = defaultdict(list)
    for env, design in keys:
        by_env[env].append(
            _row(
                env,
                design,
                groups.get((env, design), []),
                groups.get((env, BASELINE)),
                builds,
                broken.get((env, design)),
            )
        )
    return [row for env in sorted(by_env) for row in _with_family_statistics(by_env[env])]
