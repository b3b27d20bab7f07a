"""What the meta-agent is shown and what a candidate is scored on, read from run results.

With ``--alma-search-heldout F`` a fixed fraction of each environment's deployment tasks is held
out: the meta-agent never sees their episodes and the search reward is measured on them only.
Without it (the reference's protocol) the reward is measured on the same tasks whose episodes
the meta-agent reads, which flatters designs that fit those tasks.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_alma.memory.text import clip, trajectory_text
from pytest_alma.records import Trajectory
from pytest_alma.stats import estimate

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Reward:
    """A design's search reward: the mean over environments of its mean deployment score."""

    mean: float
    low: float
    high: float
    n: int
    per_env: dict[str, dict[str, float | int]]


def heldout_tasks(task_ids: Iterable[str], fraction: float, seed: int) -> set[str]:
    """A fixed, seeded ``fraction`` of ``task_ids`` (at least one, never all)."""
    ids = sorted(set(task_ids))
    if fraction <= 0 or len(ids) < 2:
        return set()
    ranked = sorted(ids, key=lambda t: hashlib.sha256(f"{seed}:{t}".encode()).hexdigest())
    count = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    return set(ranked[:count])


def deploy_episodes(results: dict[str, Any], design: str) -> list[dict[str, Any]]:
    """The design's deployment episodes in a results document."""
    return [
        e
        for e in results.get("episodes", [])
        if e.get("design") == design and e.get("phase") == "deploy"
    ]


def reward_of(
    results: dict[str, Any], design: str, heldout: dict[str, set[str]] | None = None
) -> Reward | None:
    """The design's reward (on the held-out tasks only when ``heldout`` names them per env)."""
    by_env: dict[str, list[float]] = defaultdict(list)
    tasks_by_env: dict[str, list[str]] = defaultdict(list)
    for e in deploy_episodes(results, design):
        env = e["task"]["env"]
        if heldout and heldout.get(env) and e["task"]["task_id"] not in heldout[env]:
            continue
        # An episode that could not be played scores 0 (its score may be missing).
        by_env[env].append(float(e.get("score") or 0.0))
        tasks_by_env[env].append(str(e["task"]["task_id"]))
    if not by_env:
        return None
    per_env: dict[str, dict[str, float | int]] = {}
    means: list[float] = []
    variances: list[float] = []
    total = 0
    for env, scores in sorted(by_env.items()):
        est = estimate(scores, tasks_by_env[env])  # the task is the unit, as in the report
        per_env[env] = {"mean": est.mean, "low": est.low, "high": est.high, "n": est.n}
        means.append(est.mean)
        se = est.se if not math.isnan(est.se) else 0.0
        variances.append(se * se)
        total += est.n
    mean = sum(means) / len(means)
    if len(means) == 1:
        only = per_env[next(iter(per_env))]
        return Reward(mean, float(only["low"]), float(only["high"]), total, per_env)
    # Environments are independent samples: the standard error of the mean of their means.
    se = math.sqrt(sum(variances)) / len(means)
    return Reward(mean, max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se), total, per_env)


def evaluation_cost(results: dict[str, Any], design: str) -> tuple[float, int]:
    """Dollars and tokens a design's episodes and memory build spent in a run."""
    dollars = 0.0
    tokens = 0

    def add(counts: dict[str, Any] | None) -> None:
        nonlocal dollars, tokens
        if not counts:
            return
        tokens += int(counts.get("prompt_tokens", 0)) + int(counts.get("completion_tokens", 0))
        tokens += int(counts.get("embedding_tokens", 0))
        dollars += float(counts.get("cost_usd") or 0.0)

    for e in results.get("episodes", []):
        if e.get("design") == design:
            add(e.get("agent_tokens"))
            add(e.get("retrieve_tokens"))
            add(e.get("extra", {}).get("update_tokens"))
    for build in results.get("designs", {}).values():
        if isinstance(build, dict) and build.get("design") == design:
            add(build.get("update_tokens"))
    return dollars, tokens


def episodes_for_analysis(
    results: dict[str, Any],
    design: str,
    hidden: dict[str, set[str]] | None = None,
    count: int = 4,
    max_chars: int = 2500,
) -> str:
    """Sampled episodes as text, each with the memory the design retrieved for it.

    Failures and successes both teach something: the sample takes the lowest-scoring and the
    highest-scoring episodes alternately (deterministic: ties by task and repeat), skipping
    held-out tasks.
    """
    episodes = [
        e
        for e in deploy_episodes(results, design)
        if not (hidden and e["task"]["task_id"] in hidden.get(e["task"]["env"], set()))
    ]
    if not episodes:
        return "(no episodes available)"
    ordered = sorted(
        episodes, key=lambda e: (float(e["score"]), e["task"]["task_id"], int(e["repeat"]))
    )
    picked: list[dict[str, Any]] = []
    low, high = 0, len(ordered) - 1
    while len(picked) < min(count, len(ordered)):
        picked.append(ordered[low])
        low += 1
        if len(picked) < count and high >= low:
            picked.append(ordered[high])
            high -= 1
    parts = []
    for i, e in enumerate(picked, 1):
        parts.append(
            f"### Episode {i}: {e['task']['env']} {e['task']['task_id']} "
            f"(repeat {e['repeat']}, score {float(e['score']):g})\n" + _episode_body(e, max_chars)
        )
    return "\n\n".join(parts)


def _episode_body(episode: dict[str, Any], max_chars: int) -> str:
    path = episode.get("trajectory_path")
    if episode.get("error"):
        return f"The episode failed in the harness: {clip(str(episode['error']), 600)}"
    if not path or not Path(path).exists():
        return "(trajectory file not available)"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        trajectory = Trajectory.from_json(data["trajectory"])
    except (OSError, ValueError, KeyError) as exc:
        return f"(trajectory file unreadable: {exc})"
    memory = json.dumps(data.get("memory", {}), ensure_ascii=False)
    retrieved = clip(memory, max_chars // 3) if memory != "{}" else "(nothing: empty dict)"
    return (
        f"Memory retrieved: {retrieved}\n"
        f"{trajectory_text(trajectory, max_chars=max_chars, observation_chars=200)}"
    )
