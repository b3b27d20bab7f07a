"""A Hypothesis state machine that fuzzes one design's update/retrieve/snapshot sequence.

Hypothesis runs no coroutines (``@given`` on ``async def`` is an error and async stateful rules
are unsupported), so the machine is synchronous and drives the requests to the design's process
on this process's harness loop (:func:`pytest_alma.aio.run`). The design runs in a design
process of its own, exactly as in an episode; one process serves every example of a check, each
example on a fresh instance. The design's LLM calls are answered here by :class:`OfflineLLM`:
the scripted model's policies answer chat in-process and
:func:`~pytest_alma.llm.embedding.embed_text` embeds, so every run is deterministic and needs no
server, network or key.

When a rule breaks, Hypothesis shrinks the step sequence and prints it, e.g.::

    state = DesignContract_NoMemory()
    state.retrieve_on_empty_memory(start=TaskStart(env='babaisai', task='you_win', ...))
    state.update(trajectory=Trajectory(env='alfworld', task=..., steps=0, outcome=failure, ...))
    state.snapshot_and_restore()
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from pytest_alma import aio
from pytest_alma.contract.rules import ContractChecker, ContractConfig
from pytest_alma.contract.strategies import (
    BUILTIN_ENVS,
    Shown,
    shown_starts,
    shown_trajectories,
)
from pytest_alma.llm.embedding import embed_text
from pytest_alma.llm.scripted_policies import Policy, choose_reply, registered_policies
from pytest_alma.records import TaskStart, Trajectory
from pytest_alma.sandbox.process import DesignProcess, RemoteDesign

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

    process: DesignProcess
    config: ContractConfig

    def __init__(self) -> None:
        super().__init__()
        self.checker = ContractChecker(self.process, self.config, self._run, CONTRACT_SEED)
        self.probes: list[TaskStart] = []
        self.changed = False  # updated since the last snapshot: another one would repeat it
        self.design: RemoteDesign = self.checker.new_design()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return aio.run(coro)

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
        aio.run(self.design.drop())


def machine_for(
    process: DesignProcess, config: ContractConfig, envs: tuple[str, ...] = BUILTIN_ENVS
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

    Machine.process = process
    Machine.config = config
    class_name = process.spec.class_name
    name = "".join(ch if ch.isalnum() else "_" for ch in f"DesignContract_{class_name}")
    Machine.__name__ = Machine.__qualname__ = name
    return Machine
