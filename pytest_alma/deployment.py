"""Deployment episodes of one process: retrieve on the built memory, play, (update), record.

Called by :meth:`pytest_alma.runner.Harness.deploy` and :meth:`~pytest_alma.runner.Harness.stream`.
Every deployment episode ends in an :class:`~pytest_alma.records.EpisodeResult`, whatever
failed: the memory build, the design's constructor or calls, the LLM, the environment or the
harness. Such an episode scores 0, is no success and says why (``error``, ``error_kind``, see
:mod:`pytest_alma.failures`), so that a design never looks better for failing. Only
``BaseException`` outside ``Exception`` (an interrupt, SIGTERM made KeyboardInterrupt) passes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_alma import aio
from pytest_alma.agent import MemoryBlock, play
from pytest_alma.design import DesignError
from pytest_alma.envs.base import instructions_for
from pytest_alma.failures import MemoryBuildFailed, error_kind, error_message, unplayed
from pytest_alma.protocol import DeployEpisode, sampling_seed
from pytest_alma.records import EpisodeResult, TaskStart, TokenCount, Trajectory
from pytest_alma.sandbox.process import RemoteDesign
from pytest_alma.sandbox.static_find import DesignSpec
from pytest_alma.store import atomic_write_json

if TYPE_CHECKING:
    from pytest_alma.runner import Harness


def design_for(h: Harness, loaded: DesignSpec, env_name: str, label: str) -> RemoteDesign:
    """A design instance on the built memory, in the design's process (raises when the build
    or the restore fails)."""
    blob = h.built_memory(loaded, env_name)
    key = h.memory_key(loaded, env_name)
    instance = f"{env_name}-{label}"
    return aio.run(
        h.design_process(loaded).restore(
            key, blob, instance, h.instance_seed(loaded, instance), h.call_timeout_s
        )
    )


def deploy(h: Harness, loaded: DesignSpec, episode: DeployEpisode) -> EpisodeResult:
    """One batched deployment episode: retrieve once on the frozen memory, then play.

    The design process restores the memory and retrieves in one request; the instance is not
    kept (the next episode starts from the same frozen memory).
    """
    started = time.perf_counter()
    env_name = episode.task.env
    try:
        blob = h.built_memory(loaded, env_name)
    except Exception as exc:
        return _failed(h, loaded, episode, exc, started)
    key = h.memory_key(loaded, env_name)
    label = f"{env_name}-{episode.label}"
    seed = h.instance_seed(loaded, label)
    process = h.design_process(loaded)

    def retrieve(start: TaskStart) -> Coroutine[Any, Any, tuple[dict[str, Any], bool]]:
        return process.retrieve_once(key, blob, label, seed, start, h.call_timeout_s)

    try:
        return _deploy_one(h, loaded, retrieve, None, episode)
    except Exception as exc:
        return _failed(h, loaded, episode, exc, started)


def stream(h: Harness, loaded: DesignSpec, env_name: str, repeat: int) -> list[EpisodeResult]:
    """One sequential-rollout stream: retrieve, play, update, task after task.

    An episode that fails does not end the stream: the next one is played on the design as it
    is (its own failure, if any, is its own record).
    """
    episodes = h.plan(env_name).stream(repeat)
    started = time.perf_counter()
    try:
        design = design_for(h, loaded, env_name, f"stream-r{repeat}")
    except Exception as exc:
        return [_failed(h, loaded, ep, exc, started) for ep in episodes]
    results: list[EpisodeResult] = []

    def retrieve(start: TaskStart) -> Coroutine[Any, Any, tuple[dict[str, Any], bool]]:
        return design.retrieve(start, h.call_timeout_s)

    def update(trajectory: Trajectory) -> Coroutine[Any, Any, bool]:
        return design.update(trajectory, h.call_timeout_s)

    for ep in episodes:
        ep_started = time.perf_counter()
        try:
            results.append(_deploy_one(h, loaded, retrieve, update, ep))
        except Exception as exc:
            results.append(_failed(h, loaded, ep, exc, ep_started))
    aio.run(design.drop())
    return results


def _describe(exc: BaseException) -> tuple[str, str]:
    """The record's ``error`` and ``error_kind`` of an exception that ended an episode."""
    kind = error_kind(exc)
    if isinstance(exc, DesignError) and not isinstance(exc, MemoryBuildFailed):
        return f"design error: {error_message(exc)}", kind
    return error_message(exc), kind


def _failed(
    h: Harness, loaded: DesignSpec, episode: DeployEpisode, exc: Exception, started: float
) -> EpisodeResult:
    """The record of an episode that could not be played; what it used is still counted."""
    message, kind = _describe(exc)
    return unplayed(
        loaded.name,
        episode,
        run_seed=h.settings.seed,
        error=message,
        kind=kind,
        duration_s=time.perf_counter() - started,
        agent_tokens=h.take_usage("agent"),
        retrieve_tokens=h.take_design_usage(loaded),
        extra={"ended_at": time.time()},
    )


def _deploy_one(
    h: Harness,
    loaded: DesignSpec,
    retrieve: Callable[[TaskStart], Coroutine[Any, Any, tuple[dict[str, Any], bool]]],
    update: Callable[[Trajectory], Coroutine[Any, Any, bool]] | None,
    episode: DeployEpisode,
) -> EpisodeResult:
    """Play one deployment episode with the memory ``retrieve`` returns; ``update`` (sequential
    rollout) is then given the trajectory."""
    update_after = update is not None
    task = episode.task
    started = time.perf_counter()
    facade = h.facade(loaded)  # answers the design's LLM calls (its role names them)
    h.take_usage("agent")
    h.take_design_usage(loaded)
    facade.role = "design.retrieve"
    env = h.env(task.env)
    agent = h.agent_settings(task.env)
    seed = sampling_seed(h.settings.seed, task, episode.repeat)
    handle, start = h.open_episode(env, task, agent)
    error: str | None = None
    kind: str | None = None
    memory: dict[str, Any] = {}
    trajectory: Trajectory | None = None
    block = MemoryBlock("", 0, False)
    try:
        try:
            # The design sees a JSON copy of the task start; what it returns is strict JSON,
            # checked in its process and here, so nothing of it can reach the episode but data.
            memory, _ = aio.run(retrieve(start))
        except Exception as exc:
            error, kind = _describe(exc)
        if error is None:
            try:
                trajectory, block = aio.run(
                    play(
                        handle,
                        start,
                        h.client("agent"),
                        instructions_for(env, handle),
                        memory,
                        agent,
                        env.default_action(),
                        seed=seed,
                    )
                )
            except Exception as exc:  # budget spent, replay-cache miss, environment: say which
                error, kind = _describe(exc)
        if trajectory is None:
            trajectory = Trajectory(start=start, steps=(), score=0.0, success=False, error=error)
    finally:
        handle.close()
    retrieve_usage = h.take_design_usage(loaded)
    agent_usage = h.take_usage("agent")
    update_usage = TokenCount()
    if update is not None and error is None:
        facade.role = "design.update"
        try:
            aio.run(update(trajectory))
        except Exception as exc:
            error, kind = _describe(exc)
        update_usage = h.take_design_usage(loaded)
    if trajectory.error and error is None:
        error, kind = trajectory.error, "llm"  # play() ends an episode so on LLM failures only
    path = _write_trajectory(h, loaded, episode, trajectory, memory, block)
    failed = error is not None
    return EpisodeResult(
        design=loaded.name,
        phase="deploy",
        task=task,
        repeat=episode.repeat,
        # An episode that could not be played to its end is a failure (ALMA counts an
        # exception as 0), whatever it had reached: never a partial score.
        score=0.0 if failed else trajectory.score,
        success=False if failed else trajectory.success,
        steps=len(trajectory.steps),
        invalid_actions=sum(1 for s in trajectory.steps if s.invalid),
        agent_tokens=agent_usage,
        retrieve_tokens=retrieve_usage,
        memory_chars=block.chars,
        memory_truncated=block.truncated,
        duration_s=time.perf_counter() - started,
        trajectory_path=str(path),
        error=error,
        error_kind=kind,
        sampling_seed=seed,
        trajectory_digest=trajectory.digest(),
        extra={
            "ended_at": time.time(),
            # Sequential mode: what updating the memory after this episode used (counted in the
            # cost per episode, as the retrieval is).
            **({"update_tokens": update_usage.to_json()} if update_after else {}),
        },
    )


def _write_trajectory(
    h: Harness,
    loaded: DesignSpec,
    episode: DeployEpisode,
    trajectory: Trajectory,
    memory: dict[str, Any],
    block: MemoryBlock,
) -> Path:
    path = h.run_dir / "trajectories" / loaded.name / episode.task.env / f"{episode.label}.json"
    atomic_write_json(
        path,
        {
            "design": loaded.name,
            "memory": json.loads(json.dumps(memory, ensure_ascii=False)),
            "memory_truncated": block.truncated,
            "trajectory": trajectory.to_json(),
        },
        # A per-episode artefact: atomic, but not worth an fsync or indentation each
        # (`python -m json.tool` pretty-prints one).
        durable=False,
        indent=None,
    )
    return path
