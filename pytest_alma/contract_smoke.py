"""The ``::contract`` item's basic check of a design's update/retrieve contract.

It runs with no agent LLM calls: it builds a short real trajectory by playing the environment's
default action, then checks that retrieve works on an empty memory and returns a JSON dict,
that update accepts the trajectory, that the state survives a snapshot and restore, and that
retrieve gives the same answer twice on the same memory. Full Hypothesis fuzzing of the
contract builds on this.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pytest_alma import aio
from pytest_alma.design import (
    DesignCallError,
    LoadedDesign,
    call_retrieve,
    call_update,
    instantiate,
    restore,
    snapshot,
)
from pytest_alma.records import Step, Trajectory

if TYPE_CHECKING:
    from pytest_alma.runner import Harness

SMOKE_STEPS = 3


def check_basic_contract(harness: Harness, loaded: LoadedDesign) -> None:
    """Raise :class:`DesignCallError` with a clear message when the design breaks the contract."""
    env_name = harness.settings.envs[0]
    env = harness.env(env_name)
    task = harness.plan(env_name).collection[0]
    episode = env.open(task, SMOKE_STEPS)
    try:
        start = episode.reset()
        steps = []
        for _ in range(SMOKE_STEPS):
            result = episode.step(env.default_action())
            steps.append(Step(env.default_action(), result.observation, result.reward, result.done))
            if result.done:
                break
        score, success = episode.score()
    finally:
        episode.close()
    trajectory = Trajectory(start=start, steps=tuple(steps), score=score, success=success)
    timeout = harness.settings.design_timeout
    design = instantiate(loaded, harness.design_context(loaded, "contract"))
    aio.run(call_retrieve(design, start, timeout))
    aio.run(call_update(design, trajectory, timeout))
    first = aio.run(call_retrieve(design, start, timeout))
    second = aio.run(call_retrieve(design, start, timeout))
    if json.dumps(first, sort_keys=True) != json.dumps(second, sort_keys=True):
        raise DesignCallError(
            f"{loaded.cls.__name__}.general_retrieve gave different answers for the same task "
            "on the same memory; retrieve must be a function of the memory state"
        )
    context = harness.design_context(loaded, "contract-restored")
    restored = restore(loaded, context, snapshot(design))
    again = aio.run(call_retrieve(restored, start, timeout))
    if json.dumps(again, sort_keys=True) != json.dumps(first, sort_keys=True):
        raise DesignCallError(
            f"{loaded.cls.__name__}: retrieve after snapshot and restore differs from before; "
            "keep all memory state on self (picklable) or implement state_dict()/load_state_dict()"
        )
