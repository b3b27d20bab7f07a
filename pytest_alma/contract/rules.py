"""The memory-design contract, written down and checked in one place.

Every rule has a name (used in messages and reports) and a one-line statement in :data:`RULES`.
:class:`ContractChecker` performs design calls the way the harness does (coroutine methods on the
event loop, plain methods in a worker thread) and raises :class:`ContractViolation` naming the
rule, the call and a short repr of the input whenever one is broken.

Every call goes to the design's own process, as in an episode (see :class:`ContractChecker`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_alma.design import DesignCallError, DesignError, JSONDict
from pytest_alma.records import TaskStart, Trajectory
from pytest_alma.sandbox.process import DesignProcess, RemoteDesign

T = TypeVar("T")

#: Rule name -> what the rule says. Messages name the rule; docs can list this table.
RULES: dict[str, str] = {
    "retrieve-on-empty-memory": "general_retrieve works on a freshly constructed design",
    "retrieve-returns-json-dict": "general_retrieve returns a dict (or None) that is strict JSON",
    "retrieve-size": "the retrieved dict, rendered as the agent sees it, fits the memory cap",
    "no-input-mutation": "neither method changes the TaskStart or Trajectory it is given",
    "retrieve-deterministic": "retrieve is a function of the memory: twice in a row, same dict",
    "snapshot-restore": "the memory survives snapshot and restore in a fresh module",
    "update-accepts-trajectory": "general_update accepts every valid trajectory",
    "retrieve-works": "general_retrieve does not raise on any valid task start",
    "time-limit": "each call finishes within the wall-clock limit",
}

#: How much of an input's text a message quotes.
_REPR_CHARS = 60


class ContractViolation(DesignError):
    """A design broke a rule of the contract; the message says which, in which call, on what."""

    def __init__(self, rule: str, call: str, argument: str, detail: str) -> None:
        self.rule = rule
        self.call = call
        self.argument = argument
        self.detail = detail
        statement = RULES.get(rule, "")
        super().__init__(
            f"contract rule '{rule}' broken ({statement}) by {call}({argument}):\n{detail}"
        )


@dataclass(frozen=True)
class ContractConfig:
    """Limits the rules are checked against."""

    #: Characters of the retrieved dict as rendered for the agent (``json.dumps(indent=2)``).
    memory_cap: int = 16000
    #: Wall-clock seconds allowed for one update or retrieve call (None: no limit).
    call_timeout_s: float | None = 60.0


def clip(text: str, limit: int = _REPR_CHARS) -> str:
    """``repr`` of the start of ``text``, with its full length when it was cut."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}…({len(text)} chars)"


def describe_start(start: TaskStart) -> str:
    """A one-line repr of a task start: environment, task, the observation's start."""
    task = start.task
    return (
        f"TaskStart(env={task.env!r}, task={task.task_id!r}, seed={task.seed}, "
        f"observation={clip(start.observation, 40)})"
    )


def describe_trajectory(trajectory: Trajectory) -> str:
    """A one-line repr of a trajectory: environment, task, length, outcome, longest text."""
    task = trajectory.task
    outcome = "success" if trajectory.success else "failure"
    texts = [trajectory.start.observation, trajectory.start.goal]
    for step in trajectory.steps:
        texts.extend((step.action, step.observation, step.reply))
    longest = max(len(t) for t in texts)
    error = "None" if trajectory.error is None else clip(trajectory.error, 30)
    return (
        f"Trajectory(env={task.env!r}, task={task.task_id!r}, steps={len(trajectory.steps)}, "
        f"outcome={outcome}, score={trajectory.score:g}, error={error}, longest_text={longest})"
    )


def rendered_chars(memory: JSONDict) -> int:
    """Characters the agent's prompt spends on ``memory`` (as ``agent.render_memory`` renders)."""
    if not memory:
        return 0
    return len(json.dumps(memory, indent=2, ensure_ascii=False))


def canonical(memory: JSONDict) -> str:
    """A comparable text of a retrieved dict (key order does not matter to the agent's view)."""
    return json.dumps(memory, sort_keys=True, ensure_ascii=False)


def _diff_hint(first: JSONDict, second: JSONDict) -> str:
    a, b = canonical(first), canonical(second)
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    lo = max(0, at - 30)
    return f"first:  …{a[lo : at + 50]!r}\nsecond: …{b[lo : at + 50]!r}"


class ContractChecker:
    """Makes design calls like the harness and checks every rule on each of them.

    The design lives in a design process (:class:`~pytest_alma.sandbox.process.DesignProcess`),
    as in a real episode: the same time limit, the same strict-JSON boundary. ``run`` executes a
    coroutine to completion on this process's loop. Snapshot/restore is checked as the harness
    uses it: the snapshot is restored into a *fresh copy of the design module* (executed again
    in the design process), as a worker that never ran the updates would load it, so state kept
    in module globals is lost here just as it would be there.
    """

    def __init__(
        self,
        process: DesignProcess,
        config: ContractConfig,
        run: Callable[[Coroutine[Any, Any, Any]], Any],
        seed: int,
    ) -> None:
        self.process = process
        self.config = config
        self._run = run
        self._seed = seed
        self._restores = 0

    @property
    def name(self) -> str:
        return self.process.spec.class_name

    def close(self) -> None:
        """Nothing to undo: the design process is the caller's."""

    def new_design(self) -> RemoteDesign:
        """A freshly constructed instance (a failing constructor raises DesignLoadError)."""
        design: RemoteDesign = self._run(
            self.process.new("contract", self._seed, self.config.call_timeout_s)
        )
        return design

    # -- calls ---------------------------------------------------------------------------------

    def _invoke(self, call_coro: Coroutine[Any, Any, Any], rule: str, call: str, shown: str) -> Any:
        """Run a design call (same time limit and checks as real episodes) and turn its
        DesignCallError into the violated rule."""
        timeout = self.config.call_timeout_s
        started = time.perf_counter()
        try:
            result = self._run(call_coro)
        except DesignCallError as exc:
            raise ContractViolation(_rule_of(exc, rule), call, shown, str(exc)) from None
        elapsed = time.perf_counter() - started
        if timeout is not None and elapsed > timeout:
            raise ContractViolation(
                "time-limit", call, shown, f"took {elapsed:.2f} s, the limit is {timeout:g} s"
            )
        return result

    def update(self, design: RemoteDesign, trajectory: Trajectory) -> None:
        """``general_update`` accepts the trajectory, in time, without changing it."""
        shown = describe_trajectory(trajectory)
        call = f"{self.name}.general_update"
        mutated = self._invoke(
            design.update(trajectory, self.config.call_timeout_s),
            "update-accepts-trajectory",
            call,
            shown,
        )
        if mutated:
            raise ContractViolation(
                "no-input-mutation", call, shown, "the trajectory was changed by the call"
            )

    def retrieve(
        self, design: RemoteDesign, start: TaskStart, rule: str = "retrieve-works"
    ) -> JSONDict:
        """``general_retrieve`` returns a strict-JSON dict within the cap, in time, input intact."""
        shown = describe_start(start)
        call = f"{self.name}.general_retrieve"
        result, mutated = self._invoke(
            design.retrieve(start, self.config.call_timeout_s), rule, call, shown
        )
        if mutated:
            raise ContractViolation(
                "no-input-mutation", call, shown, "the task start was changed by the call"
            )
        size = rendered_chars(result)
        if size > self.config.memory_cap:
            raise ContractViolation(
                "retrieve-size",
                call,
                shown,
                f"the dict renders to {size} characters, the cap is {self.config.memory_cap}; "
                "bound what you store or return (the agent would see it truncated)",
            )
        memory: JSONDict = result
        return memory

    # -- compound rules --------------------------------------------------------------------------

    def retrieve_twice(self, design: RemoteDesign, start: TaskStart) -> JSONDict:
        """Two retrievals without an update in between give the same dict."""
        first = self.retrieve(design, start)
        second = self.retrieve(design, start)
        if canonical(first) != canonical(second):
            raise ContractViolation(
                "retrieve-deterministic",
                f"{self.name}.general_retrieve",
                describe_start(start),
                "two calls in a row on the same memory returned different dicts (use ctx.rng, "
                "not the global random module, and do not change state in retrieve)\n"
                + _diff_hint(first, second),
            )
        return first

    def snapshot_restore(self, design: RemoteDesign, probes: list[TaskStart]) -> RemoteDesign:
        """Snapshot ``design``, restore it in a fresh module, check ``probes`` retrieve the same.

        Returns the restored instance, which the caller keeps using (so later state loss shows).
        """
        before = [self.retrieve(design, p) for p in probes]
        call = f"snapshot/restore of {self.name}"
        timeout = self.config.call_timeout_s
        try:
            blob = self._run(design.snapshot(timeout))
        except DesignCallError as exc:
            raise ContractViolation("snapshot-restore", call, "", str(exc)) from None
        self._restores += 1
        label = f"restored-{self._restores}"
        try:
            restored: RemoteDesign = self._run(
                self.process.restore(
                    # Used once (keep=False): the design process does not keep it.
                    "contract-" + hashlib.sha256(blob).hexdigest(),
                    blob,
                    label,
                    self._seed,
                    timeout,
                    fresh_module=True,
                    keep=False,
                )
            )
        except DesignError as exc:
            raise ContractViolation("snapshot-restore", call, "", str(exc)) from None
        for probe, old in zip(probes, before, strict=True):
            new = self.retrieve(restored, probe)
            if canonical(new) != canonical(old):
                raise ContractViolation(
                    "snapshot-restore",
                    f"{self.name}.general_retrieve after restore",
                    describe_start(probe),
                    "retrieve differs from before the snapshot; keep all memory state on self "
                    "(picklable; not in module globals) or implement "
                    "state_dict()/load_state_dict()\n" + _diff_hint(old, new),
                )
        self._run(design.drop())
        return restored


def _rule_of(exc: DesignCallError, default: str) -> str:
    """The rule a harness call error breaks (the harness words its errors in design.py)."""
    text = str(exc)
    if "did not finish within" in text:
        return "time-limit"
    if "expected a dict" in text or "not strict JSON" in text:
        return "retrieve-returns-json-dict"
    if "memory that is too large" in text:
        return "retrieve-size"
    return default
