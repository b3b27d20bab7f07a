"""Episodes that could not be played: why (the error kind), and their records.

An episode that cannot be played is a failure, never a gap: it scores 0 and is no success (as
ALMA counts an exception), and its record says what went wrong in ``error`` and whose fault it
was in ``error_kind``, one of :data:`~pytest_alma.records.ERROR_KINDS`:

- ``design``: the design raised, timed out, returned junk, failed to load or to build its memory;
- ``llm``: the LLM failed (unavailable after the retries, the budget spent, a replay-cache miss),
  also when the failing call was a design's own;
- ``environment``: the environment raised while the episode was opened or played;
- ``harness``: anything else, including a worker process that died while running the item
  (which the controller cannot attribute: the design may have crashed it, or the machine).

This module is free of pytest: the items (``collect.py``) and the controller (``plugin.py``)
use it to turn exceptions and failed items into records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from pytest_alma.agent import EpisodeEnvironmentError
from pytest_alma.design import DesignError
from pytest_alma.llm.errors import LLMError
from pytest_alma.protocol import DeployEpisode, Plan, sampling_seed
from pytest_alma.records import EpisodeResult, TokenCount

#: The most of an error message kept in a record (a traceback can be long).
MAX_ERROR_CHARS = 2000


class MemoryBuildFailed(DesignError):
    """Building a design's memory failed; every deployment episode of it fails with this.

    ``kind`` is the error kind of the cause (``design`` unless the LLM or the environment
    failed underneath).
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _causes(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def error_kind(exc: BaseException) -> str:
    """The error kind of an exception that ended an episode (see the module docstring).

    An LLM error anywhere in the cause chain makes it ``llm`` (a design that calls the LLM
    through ``ctx.llm`` sees the LLM's exception wrapped in a design error); then an environment
    failure makes it ``environment``; then a design error ``design``.
    """
    if isinstance(exc, MemoryBuildFailed):
        return exc.kind
    chain = list(_causes(exc))
    if any(isinstance(e, LLMError) for e in chain):
        return "llm"
    if any(isinstance(e, EpisodeEnvironmentError) for e in chain):
        return "environment"
    if any(isinstance(e, DesignError) for e in chain):
        return "design"
    return "harness"


def error_message(exc: BaseException) -> str:
    """A short readable message of an exception (its type, unless it is one of ours)."""
    if isinstance(exc, DesignError | EpisodeEnvironmentError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return clip(text)


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_ERROR_CHARS`, saying so."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[:MAX_ERROR_CHARS] + f" [... {len(text) - MAX_ERROR_CHARS} more characters]"


def unplayed(
    design: str,
    episode: DeployEpisode,
    *,
    run_seed: int,
    error: str,
    kind: str,
    duration_s: float = 0.0,
    agent_tokens: TokenCount | None = None,
    retrieve_tokens: TokenCount | None = None,
    extra: Mapping[str, Any] | None = None,
) -> EpisodeResult:
    """The record of a deployment episode that could not be played: score 0, no success."""
    return EpisodeResult(
        design=design,
        phase="deploy",
        task=episode.task,
        repeat=episode.repeat,
        score=0.0,
        success=False,
        steps=0,
        invalid_actions=0,
        agent_tokens=agent_tokens or TokenCount(),
        retrieve_tokens=retrieve_tokens or TokenCount(),
        memory_chars=0,
        memory_truncated=False,
        duration_s=duration_s,
        error=clip(error),
        error_kind=kind,
        sampling_seed=sampling_seed(run_seed, episode.task, episode.repeat),
        extra=dict(extra or {}),
    )


def item_episodes(nodeid: str, plans: Mapping[str, Plan]) -> tuple[str, list[DeployEpisode]]:
    """The design and the deployment episodes of a deploy or stream item, from its node id.

    Node ids are ``<design file>::<env>::deploy[<label>]`` or ``...::stream[r<repeat>]`` (see
    ``collect.py``); the design's name is its file's stem. Other items (contract, collect) and
    ids of unknown environments give no episodes.
    """
    parts = nodeid.split("::")
    if len(parts) != 3 or parts[1] not in plans:
        return "", []
    design = PurePosixPath(parts[0].replace("\\", "/")).stem
    plan = plans[parts[1]]
    name = parts[2]
    if name.startswith("deploy[") and name.endswith("]"):
        label = name[len("deploy[") : -1]
        return design, [e for e in plan.deployment if e.label == label]
    if name.startswith("stream[r") and name.endswith("]"):
        try:
            repeat = int(name[len("stream[r") : -1])
        except ValueError:
            return design, []
        return design, list(plan.stream(repeat))
    return design, []
