"""A design running in its own process: requests and the design's LLM calls.

Every test runs twice (the ``sandbox`` fixture): in bubblewrap and unsandboxed. What goes wrong
(time-outs, crashes, import failures, junk results, stray output) is in
``test_design_process_failures.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.llm.errors import BudgetExceededError, LLMUnavailableError
from pytest_alma.sandbox.process import DesignProcess, RequestFailed

from .conftest import (
    FAILURE,
    START,
    TRAJECTORY,
    MakeProcess,
    T,
    drive,
    new_instance,
)

# -- the round trip --------------------------------------------------------------------------

COUNTER = """
from pytest_alma import MemoryDesign

UPDATES_IN_THIS_MODULE = 0


class Counter(MemoryDesign):
    def __init__(self, ctx=None):
        super().__init__(ctx)
        self.outcomes = []

    async def general_update(self, trajectory):
        global UPDATES_IN_THIS_MODULE
        UPDATES_IN_THIS_MODULE += 1
        self.outcomes.append([trajectory.task.task_id, trajectory.success, len(trajectory.steps)])

    async def general_retrieve(self, task):
        return {
            "outcomes": self.outcomes,
            "module updates": UPDATES_IN_THIS_MODULE,
            "scratch": str(self.ctx.scratch_dir),
            "seed": self.ctx.seed,
            "goal": task.goal,
        }
"""


def test_round_trip_update_retrieve_snapshot_restore(make_process: MakeProcess) -> None:
    process = make_process(COUNTER)
    task_id = TRAJECTORY.task.task_id

    async def scenario(process: DesignProcess) -> None:
        design = await process.new("my label/1", 7, T)
        assert await design.update(TRAJECTORY, T) is False  # not mutated
        assert await design.update(FAILURE, T) is False
        memory, mutated = await design.retrieve(START, T)
        assert mutated is False
        outcomes = [[task_id, True, 3], [task_id, False, 3]]
        assert memory["outcomes"] == outcomes
        assert memory["module updates"] == 2
        assert memory["seed"] == 7
        assert memory["goal"] == START.goal
        assert Path(memory["scratch"]) == process.scratch / "my_label_1"
        assert Path(memory["scratch"]).is_dir()

        blob = await design.snapshot(T)
        assert isinstance(blob, bytes) and blob

        # Restored in the same process: the instance state and the module's globals survive.
        same = await process.restore("snap-1", blob, "restored", 1, T)
        memory, _ = await same.retrieve(START, T)
        assert memory["outcomes"] == outcomes and memory["module updates"] == 2

        # With a fresh module: the instance state survives, the module globals do not.
        fresh = await process.restore("snap-1", blob, "fresh", 2, T, fresh_module=True)
        memory, _ = await fresh.retrieve(START, T)
        assert memory["outcomes"] == outcomes and memory["module updates"] == 0
        await fresh.update(TRAJECTORY, T)
        memory, _ = await fresh.retrieve(START, T)
        assert len(memory["outcomes"]) == 3 and memory["module updates"] == 1

        # The original instance is untouched by what its restored copies did.
        memory, _ = await design.retrieve(START, T)
        assert memory["outcomes"] == outcomes

        # In a new process (the snapshot is sent again): state survives, globals start afresh.
        await process.kill()
        again = await process.restore("snap-1", blob, "again", 3, T)
        assert process.starts == 2
        memory, _ = await again.retrieve(START, T)
        assert memory["outcomes"] == outcomes and memory["module updates"] == 0
        assert await again.config(T) is None
        await again.drop()
        with pytest.raises(RequestFailed, match=r"no design instance"):
            await again.retrieve(START, T)

    drive(process, scenario)


FORGETFUL = """
from pytest_alma import MemoryDesign


class Forgetful(MemoryDesign):
    def __init__(self, ctx=None):
        super().__init__(ctx)
        self.seen = []

    async def general_update(self, trajectory):
        self.seen.append(trajectory.task.task_id)

    async def general_retrieve(self, task):
        self.seen.append("retrieved")  # changes its state: a kept instance would show it
        return {"seen": list(self.seen), "seed": self.ctx.seed}
"""


def test_retrieve_once_starts_from_the_snapshot_every_time(make_process: MakeProcess) -> None:
    """A batched episode's retrieve: restore and retrieve in one request, nothing kept."""
    process = make_process(FORGETFUL)
    task_id = TRAJECTORY.task.task_id

    async def scenario(process: DesignProcess) -> list[tuple[dict[str, object], bool]]:
        built = await new_instance(process)
        await built.update(TRAJECTORY, T)
        blob = await built.snapshot(T)
        first = await process.retrieve_once("memory-1", blob, "ep-1", 11, START, T)
        # The second one sends no snapshot: the process kept it under its key.
        second = await process.retrieve_once("memory-1", b"", "ep-2", 12, START, T)
        return [first, second]

    first, second = drive(process, scenario)
    assert first == ({"seen": [task_id, "retrieved"], "seed": 11}, False)
    assert second == ({"seen": [task_id, "retrieved"], "seed": 12}, False)


def test_config_is_returned_as_json(make_process: MakeProcess) -> None:
    process = make_process(
        """
        from pathlib import Path
        from pytest_alma import MemoryDesign

        class Configured(MemoryDesign):
            config = {"top_k": 3, "where": Path("/x"), "nested": {"a": [1, 2]}}

            async def general_update(self, trajectory):
                pass

            async def general_retrieve(self, task):
                return {}
        """
    )

    async def scenario(process: DesignProcess) -> Any:
        return await (await new_instance(process)).config(T)

    assert drive(process, scenario) == {"top_k": 3, "where": "/x", "nested": {"a": [1, 2]}}


# -- the design's LLM calls ------------------------------------------------------------------

LLM_USER = """
import asyncio
from pytest_alma import MemoryDesign

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


class Asker(MemoryDesign):
    def __init__(self, ctx=None):
        super().__init__(ctx)
        self.sync_reply = None

    def general_update(self, trajectory):
        # A plain method: runs in a thread; asyncio.run there still reaches the harness.
        self.sync_reply = asyncio.run(self.ctx.llm.chat(MESSAGES, max_tokens=20))

    async def general_retrieve(self, task):
        reply = await self.ctx.llm.chat(MESSAGES, temperature=0.2, json_mode=False)
        vectors = await self.ctx.embed(["alpha", "beta"])
        also = await self.ctx.llm.embed(["alpha"])
        return {"reply": reply, "sync reply": self.sync_reply, "vectors": vectors, "also": also}
"""


def test_llm_calls_are_answered_by_the_worker_side_service(make_process: MakeProcess) -> None:
    llm = OfflineLLM()
    process = make_process(LLM_USER, llm=llm)

    async def scenario(process: DesignProcess) -> dict[str, Any]:
        design = await new_instance(process)
        await design.update(TRAJECTORY, T)
        memory, _ = await design.retrieve(START, T)
        return memory

    memory = drive(process, scenario)
    reference = OfflineLLM()
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    expected_reply = asyncio.run(reference.chat(messages, temperature=0.2))
    assert memory["reply"] == expected_reply
    assert memory["sync reply"] == asyncio.run(reference.chat(messages, max_tokens=20))
    assert memory["vectors"] == asyncio.run(reference.embed(["alpha", "beta"]))
    assert memory["also"] == asyncio.run(reference.embed(["alpha"]))
    assert llm.chat_calls == 2 and llm.embed_calls == 2


BAD_LLM_CALLS = """
from pytest_alma import MemoryDesign


class Hostile(MemoryDesign):
    async def general_update(self, trajectory):
        pass

    async def general_retrieve(self, task):
        llm = self.ctx.llm
        host = getattr(llm, "_host", None)
        attempts = {
            "messages a string": lambda: llm.chat("hello"),
            "messages a dict": lambda: llm.chat({"role": "user", "content": "hello"}),
            "messages empty": lambda: llm.chat([]),
            "content not a string": lambda: llm.chat([{"role": "user", "content": 5}]),
            "temperature not a number": lambda: llm.chat(
                [{"role": "user", "content": "x"}], temperature="hot"
            ),
            "max_tokens zero": lambda: llm.chat([{"role": "user", "content": "x"}], max_tokens=0),
            "model empty": lambda: llm.chat([{"role": "user", "content": "x"}], model=""),
            "raw messages not a list": lambda: host.llm_call("chat", {"messages": "nope"}),
            "raw no arguments": lambda: host.llm_call("chat", None),
            "raw texts not strings": lambda: host.llm_call("embed", {"texts": [1, 2]}),
            "raw unknown operation": lambda: host.llm_call("delete_cache", {}),
        }
        seen = {}
        for name, call in attempts.items():
            try:
                await call()
            except ValueError as exc:
                seen[name] = "ValueError: " + str(exc)
            else:
                seen[name] = "no error"
        return seen
"""


def test_bad_llm_arguments_raise_value_error_in_the_design(make_process: MakeProcess) -> None:
    llm = OfflineLLM()
    process = make_process(BAD_LLM_CALLS, llm=llm)

    async def scenario(process: DesignProcess) -> dict[str, Any]:
        memory, _ = await (await new_instance(process)).retrieve(START, T)
        return memory

    seen = drive(process, scenario)
    assert all(outcome.startswith("ValueError: ") for outcome in seen.values()), seen
    # Arguments that cross the wire are checked by the worker, field by field.
    for name in (
        "messages empty",
        "content not a string",
        "temperature not a number",
        "max_tokens zero",
        "model empty",
        "raw messages not a list",
        "raw no arguments",
        "raw texts not strings",
        "raw unknown operation",
    ):
        assert "ctx.llm was called with" in seen[name], (name, seen[name])
    assert "non-empty list" in seen["raw messages not a list"]
    assert "'delete_cache'" in seen["raw unknown operation"]
    assert llm.chat_calls == 0 and llm.embed_calls == 0  # none reached the service


class FailingLLM:
    """A service whose chat fails with the budget error and whose embed is unavailable."""

    async def chat(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> str:
        raise BudgetExceededError("the design's budget of $1.00 is spent")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise LLMUnavailableError("the gateway is down")


def test_llm_errors_reach_the_design_as_the_harness_types(make_process: MakeProcess) -> None:
    process = make_process(
        """
        from pytest_alma import MemoryDesign
        from pytest_alma.llm.errors import BudgetExceededError

        class Careful(MemoryDesign):
            async def general_update(self, trajectory):
                await self.ctx.embed(["uncaught"])

            async def general_retrieve(self, task):
                try:
                    await self.ctx.llm.chat([{"role": "user", "content": "x"}])
                except BudgetExceededError as exc:
                    return {"caught": type(exc).__name__, "message": str(exc)}
                return {"caught": None}
        """,
        llm=FailingLLM(),
    )

    async def scenario(process: DesignProcess) -> tuple[dict[str, Any], RequestFailed]:
        design = await new_instance(process)
        memory, _ = await design.retrieve(START, T)
        with pytest.raises(RequestFailed) as info:
            await design.update(TRAJECTORY, T)
        return memory, info.value

    memory, failure = drive(process, scenario)
    assert memory == {
        "caught": "BudgetExceededError",
        "message": "the design's budget of $1.00 is spent",
    }
    # Uncaught, it fails the call as an LLM failure, not as the design's own.
    assert failure.kind == "llm"
    assert isinstance(failure.__cause__, LLMUnavailableError)
    assert "the gateway is down" in str(failure)
