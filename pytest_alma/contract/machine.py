"""A Hypothesis state machine that fuzzes one design's update/retrieve/snapshot sequence.

Hypothesis runs no coroutines (``@given`` on ``async def`` is an error and async stateful rules
are unsupported), so the machine is synchronous and drives the design's coroutines on one
private event loop (:class:`asyncio.Runner`) created per machine instance and closed in
``teardown``. The design's ``ctx.llm`` is :class:`OfflineLLM`: the scripted model's policies
answer chat in-process and :func:`~pytest_alma.llm.embedding.embed_text` embeds, so every run is
deterministic and needs no server, network or key.

When a rule breaks, Hypothesis shrinks the step sequence and prints it, e.g.::

    state = DesignContract_NoMemory()
    state.retrieve_on_empty_memory(start=TaskStart(env='babaisai', task='you_win', ...))
    state.update(trajectory=Trajectory(env='alfworld', task=..., steps=0, outcome=failure, ...))
    state.snapshot_and_restore()
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from pytest_alma.contract.rules import ContractChecker, ContractConfig
from pytest_alma.contract.strategies import (
    BUILTIN_ENVS,
    Shown,
    shown_starts,
    shown_trajectories,
)
from pytest_alma.design import DesignContext, LoadedDesign, MemoryDesign
from pytest_alma.llm.embedding import embed_text
from pytest_alma.llm.scripted_policies import Policy, choose_reply, registered_policies
from pytest_alma.records import TaskStart, Trajectory

#: The seed every contract context gets: designs that use ``ctx.rng`` replay identically.
CONTRACT_SEED = 20240601

#: How many recent task starts a snapshot/restore check retrieves for.
PROBES = 3


class OfflineLLM:
    """The design LLM as an in-process double of the scripted model (deterministic, offline).

    Chat requests go through the scripted model's policies exactly as its HTTP server would
    route them (``json_mode`` becomes ``response_format``); embeddings are
    :func:`embed_text`. It counts calls so that tests can see a design used it.
    """

    def __init__(self, policies: Sequence[Policy] | None = None) -> None:
        if policies is None:
            from pytest_alma.llm.scripted import builtin_policies

            policies = [*builtin_policies(), *registered_policies()]
        self._policies = list(policies)
        self.chat_calls = 0
        self.embed_calls = 0

    async def chat(
        self,
        messages: Sequence[dict[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_mode: bool = False,
        model: str | None = None,
    ) -> str:
        """The scripted model's reply to ``messages``."""
        self.chat_calls += 1
        params: dict[str, Any] = {"model": model or "scripted"}
        if temperature is not None:
            params["temperature"] = temperature
        if max_tokens is not None:
            params["max_tokens"] = max_tokens
        if json_mode:
            params["response_format"] = {"type": "json_object"}
        typed: Sequence[Mapping[str, Any]] = messages
        return choose_reply(self._policies, typed, params)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Deterministic hashed embeddings, as the scripted model's ``/v1/embeddings``."""
        self.embed_calls += 1
        return [embed_text(t) for t in texts]


class DesignContractMachine(RuleBasedStateMachine):
    """Base machine: the state and the checks; :func:`machine_for` adds the rules for a design."""

    loaded: LoadedDesign
    config: ContractConfig

    def __init__(self) -> None:
        super().__init__()
        self._runner = asyncio.Runner()
        self._scratch = Path(tempfile.mkdtemp(prefix="alma-contract-"))
        self.llm = OfflineLLM()
        self.checker = ContractChecker(self.loaded, self.config, self._run, self._context)
        self.probes: list[TaskStart] = []
        self.changed = False  # updated since the last snapshot: another one would repeat it
        try:
            self.design: MemoryDesign = self.checker.new_design()
        except BaseException:
            self.teardown()  # Hypothesis calls teardown only for machines it finished building
            raise

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self._runner.run(coro)

    def _context(self, label: str) -> DesignContext:
        scratch = self._scratch / label
        scratch.mkdir(parents=True, exist_ok=True)
        return DesignContext(
            llm=self.llm, rng=random.Random(CONTRACT_SEED), scratch_dir=scratch, seed=CONTRACT_SEED
        )

    def _probe(self, start: TaskStart) -> None:
        self.probes.append(start)
        del self.probes[:-PROBES]

    def check_empty(self, start: TaskStart) -> None:
        """Rule retrieve-on-empty-memory (and deterministic on the empty memory)."""
        self.checker.retrieve(self.design, start, rule="retrieve-on-empty-memory")
        self.checker.retrieve_twice(self.design, start)
        self._probe(start)

    def check_update(self, trajectory: Trajectory) -> None:
        """Rule update-accepts-trajectory; then retrieve for that task's start, twice."""
        self.checker.update(self.design, trajectory)
        self.changed = True
        self._probe(trajectory.start)
        self.checker.retrieve_twice(self.design, trajectory.start)

    def check_retrieve(self, start: TaskStart) -> None:
        """Rules retrieve-works/-returns-json-dict/-size/-deterministic on a task start."""
        self.checker.retrieve_twice(self.design, start)
        self._probe(start)

    def check_snapshot(self) -> None:
        """Rule snapshot-restore; the machine continues with the restored instance."""
        self.design = self.checker.snapshot_restore(self.design, list(self.probes))
        self.changed = False

    def teardown(self) -> None:
        self.checker.close()
        self._runner.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


def machine_for(
    loaded: LoadedDesign, config: ContractConfig, envs: tuple[str, ...] = BUILTIN_ENVS
) -> type[DesignContractMachine]:
    """A state-machine class for ``loaded`` drawing inputs of ``envs``.

    Rules are defined here, not on the base class, because their strategies depend on ``envs``;
    the class is named after the design so the printed step listing says what was tested.
    """

    class Machine(DesignContractMachine):
        @initialize(start=shown_starts(envs))
        def retrieve_on_empty_memory(self, start: Shown[TaskStart]) -> None:
            self.check_empty(start.value)

        @rule(trajectory=shown_trajectories(envs))
        def update(self, trajectory: Shown[Trajectory]) -> None:
            self.check_update(trajectory.value)

        @rule(start=shown_starts(envs))
        def retrieve(self, start: Shown[TaskStart]) -> None:
            self.check_retrieve(start.value)

        @precondition(lambda self: self.changed)
        @rule()
        def snapshot_and_restore(self) -> None:
            self.check_snapshot()

    Machine.loaded = loaded
    Machine.config = config
    name = "".join(ch if ch.isalnum() else "_" for ch in f"DesignContract_{loaded.cls.__name__}")
    Machine.__name__ = Machine.__qualname__ = name
    return Machine
