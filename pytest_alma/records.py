"""Plain records that cross process boundaries: tasks, trajectories and episode results.

Every record is a frozen dataclass with ``to_json()``/``from_json()``. Nothing else travels
between xdist workers, the controller and the files on disk, so these shapes are the contract
between the parts of the harness and with the designs (which receive :class:`TaskStart` and
:class:`Trajectory`). ``SCHEMA_VERSION`` is written with every serialised record and checked on
load, so that an old file is rejected with a clear message instead of being misread.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1

JSONDict = dict[str, Any]


class SchemaError(ValueError):
    """A serialised record does not match this version of the schema."""


def _check_version(data: JSONDict, kind: str) -> None:
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{kind} was written with schema version {version}, this pytest-alma reads "
            f"version {SCHEMA_VERSION}; re-run the session to regenerate it"
        )


@dataclass(frozen=True)
class Task:
    """One playable task: which environment, which task id, which split, which seed."""

    env: str
    task_id: str
    split: str
    seed: int

    @property
    def label(self) -> str:
        """A short readable id, used in item names and reports."""
        return f"{self.task_id}-s{self.seed}"

    def to_json(self) -> JSONDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSONDict) -> Task:
        return cls(
            env=str(data["env"]),
            task_id=str(data["task_id"]),
            split=str(data["split"]),
            seed=int(data["seed"]),
        )


@dataclass(frozen=True)
class TaskStart:
    """What a design may see before an episode: the task, the first observation, goal, actions.

    ``general_retrieve`` receives exactly this, never anything from later in the episode.
    """

    task: Task
    observation: str
    goal: str
    actions: tuple[str, ...]

    def to_json(self) -> JSONDict:
        return {
            "schema_version": SCHEMA_VERSION,
            "task": self.task.to_json(),
            "observation": self.observation,
            "goal": self.goal,
            "actions": list(self.actions),
        }

    @classmethod
    def from_json(cls, data: JSONDict) -> TaskStart:
        _check_version(data, "TaskStart")
        return cls(
            task=Task.from_json(data["task"]),
            observation=str(data["observation"]),
            goal=str(data["goal"]),
            actions=tuple(str(a) for a in data["actions"]),
        )


@dataclass(frozen=True)
class Step:
    """One step of an episode.

    ``action`` is the action the environment executed; ``reply`` is what the model wrote. When
    the reply held no valid action, ``invalid`` is true and ``action`` is the environment's
    default action.
    """

    action: str
    observation: str
    reward: float
    done: bool
    reply: str = ""
    invalid: bool = False

    def to_json(self) -> JSONDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSONDict) -> Step:
        return cls(
            action=str(data["action"]),
            observation=str(data["observation"]),
            reward=float(data["reward"]),
            done=bool(data["done"]),
            reply=str(data.get("reply", "")),
            invalid=bool(data.get("invalid", False)),
        )


@dataclass(frozen=True)
class Trajectory:
    """A whole episode as ``general_update`` sees it: the start, every step and the outcome.

    ``score`` is the environment's episode score (success in {0, 1}, or progression in [0, 1]
    for TextWorld); ``error`` is set when the episode was cut short by a harness-side failure
    (for example the LLM being unavailable), which a design may want to ignore.
    """

    start: TaskStart
    steps: tuple[Step, ...]
    score: float
    success: bool
    error: str | None = None

    @property
    def task(self) -> Task:
        return self.start.task

    def to_json(self) -> JSONDict:
        return {
            "schema_version": SCHEMA_VERSION,
            "start": self.start.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "score": self.score,
            "success": self.success,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: JSONDict) -> Trajectory:
        _check_version(data, "Trajectory")
        return cls(
            start=TaskStart.from_json(data["start"]),
            steps=tuple(Step.from_json(s) for s in data["steps"]),
            score=float(data["score"]),
            success=bool(data["success"]),
            error=data.get("error"),
        )

    def dumps(self) -> str:
        """Compact JSON text of this trajectory."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    def digest(self) -> str:
        """sha256 hex of what happened: the first observation, then each action and observation.

        Canonical JSON (sorted keys, no spaces), so two episodes that played the same game the
        same way have the same digest whatever their replies' wording, their timing or their
        seeds: the report counts identical repeats of a task with it.
        """
        body = {
            "start": self.start.observation,
            "steps": [[s.action, s.observation] for s in self.steps],
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenCount:
    """Token use of one episode or one design call, as reported by the LLM server.

    ``cost_usd`` is money spent: calls answered from the response cache spend nothing, and
    what they would have cost is ``saved_usd``. Both are ``None`` when a price is unknown.
    ``cached_prompt_tokens`` (part of ``prompt_tokens``) were billed at the cached-input rate.
    """

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    embedding_calls: int = 0
    embedding_tokens: int = 0
    cost_usd: float | None = 0.0
    cached_prompt_tokens: int = 0
    saved_usd: float | None = 0.0

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            embedding_calls=self.embedding_calls + other.embedding_calls,
            embedding_tokens=self.embedding_tokens + other.embedding_tokens,
            cost_usd=_add_usd(self.cost_usd, other.cost_usd),
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            saved_usd=_add_usd(self.saved_usd, other.saved_usd),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.embedding_tokens

    def to_json(self) -> JSONDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JSONDict) -> TokenCount:
        """Read :meth:`to_json`'s output; records older than ``cached_prompt_tokens`` and
        ``saved_usd`` read them as 0 (their ``cost_usd`` may include what cache hits would
        have cost: it meant "would have cost" in workers then)."""
        cost = data.get("cost_usd", 0.0)
        saved = data.get("saved_usd", 0.0)
        return cls(
            calls=int(data.get("calls", 0)),
            cached_calls=int(data.get("cached_calls", 0)),
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            reasoning_tokens=int(data.get("reasoning_tokens", 0)),
            embedding_calls=int(data.get("embedding_calls", 0)),
            embedding_tokens=int(data.get("embedding_tokens", 0)),
            cost_usd=None if cost is None else float(cost),
            cached_prompt_tokens=int(data.get("cached_prompt_tokens", 0)),
            saved_usd=None if saved is None else float(saved),
        )


def _add_usd(a: float | None, b: float | None) -> float | None:
    """A sum of dollars where ``None`` (unknown) wins."""
    return None if a is None or b is None else a + b


#: Why an episode could not be played: the design raised (or its memory build failed), the
#: LLM failed (unavailable after retries, budget spent, replay-cache miss), the environment
#: raised, or the harness itself failed (including a crashed worker process).
ERROR_KINDS = ("design", "llm", "environment", "harness")


@dataclass(frozen=True)
class EpisodeResult:
    """The outcome of one episode item, as sent from a worker to the controller.

    The full trajectory stays in a file (``trajectory_path``) so that reports can show it while
    the test report carries only this small record. An episode that could not be played (its
    ``error`` is set) scores 0 and is no success, as ALMA counts an exception: a failure never
    leaves the means, whatever its ``error_kind``.
    """

    design: str
    phase: str
    task: Task
    repeat: int
    score: float
    success: bool
    steps: int
    invalid_actions: int
    agent_tokens: TokenCount
    retrieve_tokens: TokenCount
    memory_chars: int
    memory_truncated: bool
    duration_s: float
    trajectory_path: str | None = None
    error: str | None = None
    extra: JSONDict = field(default_factory=dict)
    #: Why the episode could not be played (one of :data:`ERROR_KINDS`), None when it was.
    error_kind: str | None = None
    #: The ``seed`` sent with every agent request of the episode (see ``protocol.sampling_seed``).
    sampling_seed: int | None = None
    #: :meth:`Trajectory.digest` of the episode (None when nothing was played).
    trajectory_digest: str | None = None

    def to_json(self) -> JSONDict:
        return {
            "schema_version": SCHEMA_VERSION,
            "design": self.design,
            "phase": self.phase,
            "task": self.task.to_json(),
            "repeat": self.repeat,
            "score": self.score,
            "success": self.success,
            "steps": self.steps,
            "invalid_actions": self.invalid_actions,
            "agent_tokens": self.agent_tokens.to_json(),
            "retrieve_tokens": self.retrieve_tokens.to_json(),
            "memory_chars": self.memory_chars,
            "memory_truncated": self.memory_truncated,
            "duration_s": self.duration_s,
            "trajectory_path": self.trajectory_path,
            "error": self.error,
            "error_kind": self.error_kind,
            "sampling_seed": self.sampling_seed,
            "trajectory_digest": self.trajectory_digest,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: JSONDict) -> EpisodeResult:
        _check_version(data, "EpisodeResult")
        return cls(
            design=str(data["design"]),
            phase=str(data["phase"]),
            task=Task.from_json(data["task"]),
            repeat=int(data["repeat"]),
            score=float(data["score"]),
            success=bool(data["success"]),
            steps=int(data["steps"]),
            invalid_actions=int(data["invalid_actions"]),
            agent_tokens=TokenCount.from_json(data["agent_tokens"]),
            retrieve_tokens=TokenCount.from_json(data["retrieve_tokens"]),
            memory_chars=int(data["memory_chars"]),
            memory_truncated=bool(data["memory_truncated"]),
            duration_s=float(data["duration_s"]),
            trajectory_path=data.get("trajectory_path"),
            error=data.get("error"),
            extra=dict(data.get("extra", {})),
            error_kind=data.get("error_kind"),
            sampling_seed=None if data.get("sampling_seed") is None else int(data["sampling_seed"]),
            trajectory_digest=data.get("trajectory_digest"),
        )
