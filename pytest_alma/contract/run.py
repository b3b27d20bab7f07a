"""The entry point of the contract check: :func:`check_design`, run by each ``::contract`` item.

Two passes. First a deterministic one over named edge cases per environment (empty, maximal,
failed, errored and odd-character trajectories), so these are checked on every run whatever
Hypothesis draws. Then the Hypothesis state machine of :mod:`pytest_alma.contract.machine`,
which searches for a sequence of calls that breaks a rule and shrinks it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hypothesis import Phase
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test as _run_untyped

from pytest_alma import aio
from pytest_alma.contract.machine import DesignContractMachine, OfflineLLM, machine_for
from pytest_alma.contract.profiles import get_profile, profile_name
from pytest_alma.contract.rules import ContractConfig, ContractViolation
from pytest_alma.contract.strategies import BUILTIN_ENVS, edge_trajectories, example_start
from pytest_alma.design import DesignError
from pytest_alma.sandbox.launch import Limits, Sandbox, choose_sandbox
from pytest_alma.sandbox.process import DesignProcess
from pytest_alma.sandbox.static_find import DesignSpec

# Hypothesis leaves this function unannotated; give it a type once, here.
run_state_machine_as_test: Callable[..., None] = _run_untyped

#: Wall-clock budget for shrinking one failure. Hypothesis allows 300 s and has no setting for
#: it; with 100-step episodes a shrink can use all of it, which a ::contract item cannot afford.
SHRINK_SECONDS = 20

#: Default wall-clock seconds per design call in the contract (the offline LLM answers at once).
DEFAULT_CALL_TIMEOUT_S = 60.0


def check_design(
    loaded: DesignSpec,
    *,
    profile: str | None = None,
    memory_cap: int = 16000,
    call_timeout_s: float | None = DEFAULT_CALL_TIMEOUT_S,
    envs: Sequence[str] = BUILTIN_ENVS,
    edge_cases: bool = True,
    sandbox: Sandbox | None = None,
    limits: Limits | None = None,
    process: DesignProcess | None = None,
) -> None:
    """Check ``loaded`` against every rule of the contract; raise on the first broken one.

    The design runs in a design process (``sandbox``: bubblewrap where it works, see
    :mod:`pytest_alma.sandbox.launch`): ``process``, the one its episodes use (the harness's;
    its LLM calls are answered offline while the check runs, and it lives on), or else one of
    its own, ended when the check ends.

    Raises :class:`ContractViolation` (a :class:`~pytest_alma.design.DesignError`) whose message
    names the rule, the call and its input and, for a Hypothesis find, lists the shrunk steps
    that lead to it; a constructor that fails raises
    :class:`~pytest_alma.design.DesignLoadError`.
    """
    config = ContractConfig(memory_cap=memory_cap, call_timeout_s=call_timeout_s)
    env_names = tuple(envs) or BUILTIN_ENVS
    if process is not None:
        # The episodes' own process: one start instead of two, and an import that fails here
        # fails the episodes at once (the failure is remembered), without a second time-out.
        answers = process.llm
        process.llm = OfflineLLM()
        try:
            _check(process, config, env_names, profile, edge_cases)
        finally:
            process.llm = answers
        return
    scratch = Path(tempfile.mkdtemp(prefix="alma-contract-"))
    process = DesignProcess(
        loaded,
        sandbox or choose_sandbox("auto"),
        scratch,
        limits or Limits(),
        OfflineLLM(),
        load_timeout_s=call_timeout_s,
    )
    try:
        _check(process, config, env_names, profile, edge_cases)
    finally:
        aio.run(process.kill())
        shutil.rmtree(scratch, ignore_errors=True)


def _check(
    process: DesignProcess,
    config: ContractConfig,
    env_names: tuple[str, ...],
    profile: str | None,
    edge_cases: bool,
) -> None:
    if edge_cases:  # off only to exercise the search on its own (tests)
        check_edge_cases(process, config, env_names)
    machine = machine_for(process, config, env_names)
    name = profile_name(profile)
    chosen = get_profile(name)
    shrunk = "Shrunk call sequence" if Phase.shrink in chosen.phases else "Call sequence (unshrunk)"
    try:
        with _shrink_budget(SHRINK_SECONDS):
            run_state_machine_as_test(machine, settings=chosen)
    except ContractViolation as exc:
        # Hypothesis attaches the shrunk steps as exception notes; put them in the message,
        # which is all the contract item's failure shows.
        steps = _steps(exc)
        raise ContractViolation(
            exc.rule,
            exc.call,
            exc.argument,
            f"{exc.detail}\n\n{shrunk} (Hypothesis, profile {name!r}):\n{steps}",
        ) from None
    except DesignError:
        raise
    except Flaky as exc:
        raise ContractViolation(
            "retrieve-deterministic",
            process.spec.class_name,
            "",
            "the same call sequence passed once and failed once: the design depends on "
            f"something other than its inputs and memory\n{exc}\n{_steps(exc)}",
        ) from None


def check_edge_cases(process: DesignProcess, config: ContractConfig, envs: Sequence[str]) -> None:
    """The deterministic pass: per environment, a fresh design through every edge case."""
    for env in envs:
        machine: DesignContractMachine = machine_for(process, config, tuple(envs))()
        try:
            start = example_start(env)
            label = "empty memory"
            machine.check_empty(start)
            for case, trajectory in edge_trajectories(env):
                label = case
                machine.check_update(trajectory)
                machine.check_retrieve(start)
            label = "snapshot and restore"
            machine.check_snapshot()
        except ContractViolation as exc:
            raise ContractViolation(
                exc.rule,
                exc.call,
                exc.argument,
                f"{exc.detail}\n(found by the fixed edge case {label!r} of {env}, after the "
                "edge cases listed before it in pytest_alma.contract.strategies."
                "edge_trajectories)",
            ) from None
        finally:
            machine.teardown()


@contextmanager
def _shrink_budget(seconds: int) -> Iterator[None]:
    """Lower Hypothesis's shrink time limit for the duration of one check.

    ``MAX_SHRINKING_SECONDS`` is a private module constant of Hypothesis (read when shrinking
    starts); if a future version drops it, shrinking simply keeps Hypothesis's own limit.
    """
    from hypothesis.internal.conjecture import engine

    previous = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if previous is None:
        yield
        return
    engine.MAX_SHRINKING_SECONDS = min(previous, seconds)
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = previous


def _steps(exc: BaseException) -> str:
    notes: list[str] = list(getattr(exc, "__notes__", ()))
    # The first note is Hypothesis's "Falsifying example:" header; the message has its own.
    lines = [n for n in notes if n.strip() and not n.startswith("Falsifying example")]
    return "\n".join(f"    {line}" for line in lines) or "    (no steps reported)"
