"""ALMA's evaluation protocol, made reproducible: the seeded split and the episode plan.

For one environment split: shuffle the tasks with a recorded seed; the first half (capped by
``train_size``) is the collection set, played once with no memory and shared by every design;
the rest is the deployment set, each task repeated ``repeats`` times. Every episode gets its own
seed derived from the run seed, the task and the repeat, so that the same plan replays the same
levels whatever the order or the worker the episodes run on.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Literal

from pytest_alma.records import Task

Rollout = Literal["batched", "sequential"]


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts, stable across machines and Python versions."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


#: The ``repeat`` a collection episode's sampling seed is derived with (deployment repeats
#: count from 1, so a collection episode never shares a seed with a deployment one).
COLLECTION_REPEAT = 0

#: Names the scheme below in cache and store keys: bump when :func:`sampling_seed` changes.
SAMPLING_SEED_SCHEME = "episode-v1"


def sampling_seed(run_seed: int, task: Task, repeat: int) -> int:
    """The ``seed`` every agent request of one episode carries.

    Derived from the run seed, the environment, the task id, the task's seed and the repeat
    (:data:`COLLECTION_REPEAT` for collection episodes), so that the repeats of a task are
    independent samples wherever the server samples, every design meets the same seed on the
    same episode (the comparison stays paired), and a re-run sends the same requests (the seed is
    in the request body, hence in the cache key) and replays exactly.
    """
    return derive_seed(run_seed, "sampling", task.env, task.task_id, task.seed, repeat)


@dataclass(frozen=True)
class PlanSettings:
    """The knobs of the protocol (recorded with every run)."""

    env: str
    split: str
    seed: int = 0
    train_size: int = 500
    repeats: int = 3
    limit: int | None = None
    rollout: Rollout = "batched"

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "split": self.split,
            "seed": self.seed,
            "train_size": self.train_size,
            "repeats": self.repeats,
            "limit": self.limit,
            "rollout": self.rollout,
        }


@dataclass(frozen=True)
class DeployEpisode:
    """One deployment episode: a task (with its per-repeat seed) and the repeat number."""

    task: Task
    repeat: int

    @property
    def label(self) -> str:
        return f"{self.task.task_id}-s{self.task.seed}-r{self.repeat}"


@dataclass(frozen=True)
class Plan:
    """The collection tasks and the deployment episodes of one environment split."""

    settings: PlanSettings
    collection: tuple[Task, ...]
    deployment: tuple[DeployEpisode, ...]

    def stream(self, repeat: int) -> tuple[DeployEpisode, ...]:
        """Deployment episodes of one repeat, in task order (a sequential-rollout stream)."""
        return tuple(e for e in self.deployment if e.repeat == repeat)


def make_plan(task_ids: list[str], settings: PlanSettings) -> Plan:
    """Split ``task_ids`` into collection tasks and deployment episodes.

    ``limit`` keeps at most that many tasks of the shuffled split (a quick run that still mixes
    task types); at least two tasks are needed so that both phases have one.
    """
    if settings.repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {settings.repeats}")
    if settings.train_size < 1:
        raise ValueError(f"train_size must be at least 1, got {settings.train_size}")
    ordered = list(task_ids)
    random.Random(settings.seed).shuffle(ordered)
    if settings.limit is not None:
        if settings.limit < 2:
            raise ValueError(
                f"--alma-limit must be at least 2 (one collection and one deployment task), "
                f"got {settings.limit}"
            )
        ordered = ordered[: settings.limit]
    if len(ordered) < 2:
        raise ValueError(
            f"split {settings.split!r} of {settings.env!r} has {len(ordered)} task(s); the "
            "protocol needs at least 2 (one to collect memory from, one to deploy on)"
        )
    mid = len(ordered) // 2
    collect_ids = ordered[: min(mid, settings.train_size)]
    deploy_ids = ordered[mid:]
    collection = tuple(
        Task(settings.env, tid, settings.split, derive_seed(settings.seed, tid, "collect"))
        for tid in collect_ids
    )
    deployment = tuple(
        DeployEpisode(
            Task(settings.env, tid, settings.split, derive_seed(settings.seed, tid, "deploy", r)),
            r,
        )
        for r in range(1, settings.repeats + 1)
        for tid in deploy_ids
    )
    return Plan(settings=settings, collection=collection, deployment=deployment)
