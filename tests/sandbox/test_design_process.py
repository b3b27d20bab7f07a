"""A design running in its own process: requests, the design's LLM calls, time-outs, crashes,
import failures, junk results and a design that writes to standard output.

Every test runs twice (the ``sandbox`` fixture): in bubblewrap and unsandboxed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.contract.strategies import edge_trajectories, example_start
from pytest_alma.design import DesignCallError, DesignLoadError
from pytest_alma.llm.errors import BudgetExceededError, LLMUnavailableError
from pytest_alma.records import TaskStart, Trajectory
from pytest_alma.sandbox.process import DesignProcess, RemoteDesign, RequestFailed

from .conftest import MakeProcess, drive, processes_with_scratch, wait_until

T = 10.0  # the time limit of requests that are expected to finish
START: TaskStart = example_start("textworld")
TRAJECTORY: Trajectory = dict(edge_trajectories("textworld"))["success"]
FAILURE: Trajectory = dict(edge_trajectories("textworld"))["failure"]


async def _new(process: DesignProcess) -> RemoteDesign:
    return await process.new("instance", 0, T)


def _expect(condition: bool, message: str) -> None:
    """Fail with ``message`` and no traceback (a short report is all these checks need)."""
    if not condition:
        pytest.fail(message, pytrace=False)


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
        built = await _new(process)
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
        return await (await _new(process)).config(T)

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
        design = await _new(process)
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
        memory, _ = await (await _new(process)).retrieve(START, T)
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
        design = await _new(process)
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


# -- time-outs -------------------------------------------------------------------------------

HANGS = """
import subprocess
import time
from pytest_alma import MemoryDesign


class Hangs(MemoryDesign):
    def __init__(self, ctx=None):
        super().__init__(ctx)
        # A process of its own, which must end with it.
        self.child = subprocess.Popen(["sleep", "30"])

    async def general_update(self, trajectory):
        pass

    {retrieve}
"""
ASYNC_SPIN = "async def general_retrieve(self, task):\n        while True:\n            pass"
SYNC_SLEEP = "def general_retrieve(self, task):\n        time.sleep(300)"


@pytest.mark.parametrize("retrieve", [ASYNC_SPIN, SYNC_SLEEP], ids=["async-spin", "sync-sleep"])
def test_a_hanging_call_is_killed_at_the_time_limit(
    make_process: MakeProcess, retrieve: str
) -> None:
    process = make_process(HANGS.replace("{retrieve}", retrieve))

    async def scenario(process: DesignProcess) -> None:
        design = await _new(process)
        first_pid = process.pid
        # The design process and its sleep (sandboxed: bubblewrap's init too).
        assert wait_until(lambda: len(processes_with_scratch(process.scratch)) >= 2)

        began = time.monotonic()
        with pytest.raises(DesignCallError) as info:
            await design.retrieve(START, 0.5)
        took = time.monotonic() - began
        assert "Hangs.general_retrieve did not finish within 0.5 s" in str(info.value)
        assert "the design process was killed" in str(info.value)
        assert took < 3.0
        assert process.pid is None
        assert not Path(f"/proc/{first_pid}").exists()
        leftover = wait_until(lambda: not processes_with_scratch(process.scratch))
        assert leftover, f"still running: {processes_with_scratch(process.scratch)}"

        # The old instance is gone, and says so without starting anything.
        with pytest.raises(DesignCallError, match=r"was lost when its design process"):
            await design.update(TRAJECTORY, T)
        assert process.starts == 1

        # The next request starts a new process.
        fresh = await _new(process)
        assert process.starts == 2
        assert process.pid not in (None, first_pid)
        await fresh.update(TRAJECTORY, T)
        with pytest.raises(DesignCallError, match=r"was lost"):
            await design.retrieve(START, T)

    drive(process, scenario)


# -- a process that ends ---------------------------------------------------------------------

ENDS = """
import ctypes
import os
import sys
from pytest_alma import MemoryDesign


class Ends(MemoryDesign):
    async def general_update(self, trajectory):
        print("about to leave", file=sys.stderr, flush=True)
        os._exit(3)

    async def general_retrieve(self, task):
        ctypes.string_at(0)  # reads address 0: SIGSEGV
        return {}
"""


def test_os_exit_reports_the_exit_status(make_process: MakeProcess) -> None:
    process = make_process(ENDS)

    async def scenario(process: DesignProcess) -> None:
        design = await _new(process)
        with pytest.raises(DesignCallError) as info:
            await design.update(TRAJECTORY, T)
        message = str(info.value)
        assert message.startswith(
            "the design process ended (exit status 3) during Ends.general_update"
        )
        assert "its last output:\nabout to leave" in message
        assert process.pid is None
        with pytest.raises(DesignCallError, match=r"was lost"):
            await design.retrieve(START, T)
        assert process.starts == 1
        await _new(process)
        assert process.starts == 2

    drive(process, scenario)


def test_a_segfault_reports_the_signal(make_process: MakeProcess) -> None:
    process = make_process(ENDS)

    async def scenario(process: DesignProcess) -> str:
        design = await _new(process)
        try:
            await design.retrieve(START, T)
        except DesignCallError as exc:
            assert process.pid is None
            return str(exc)
        return "no error"

    message = drive(process, scenario)
    # (Under bubblewrap the design process is bubblewrap's child: bubblewrap exits with
    # 128 + the signal, which must still read as the signal.)
    assert message.startswith(
        "the design process ended (killed by SIGSEGV) during Ends.general_retrieve"
    ), message


def test_an_instance_whose_process_ended_between_requests_is_lost(
    make_process: MakeProcess,
) -> None:
    process = make_process(
        """
        import os
        import threading
        import time
        from pytest_alma import MemoryDesign

        class Leaves(MemoryDesign):
            async def general_update(self, trajectory):
                def later():
                    time.sleep(0.1)
                    os._exit(5)

                threading.Thread(target=later).start()

            async def general_retrieve(self, task):
                return {}
        """
    )

    async def scenario(process: DesignProcess) -> str:
        design = await _new(process)
        await design.update(TRAJECTORY, T)
        await asyncio.sleep(0.5)  # the process has ended by now
        try:
            await design.retrieve(START, T)
        except DesignCallError as exc:
            return str(exc)
        return "no error"

    message = drive(process, scenario)
    _expect("was lost" in message, message)


ESCAPES = """
import os
import subprocess
from pytest_alma import MemoryDesign


class Escapes(MemoryDesign):
    async def general_update(self, trajectory):
        subprocess.Popen(["sleep", "2.5"])  # inherits standard error
        os._exit(3)

    async def general_retrieve(self, task):
        subprocess.Popen(["sleep", "2.5"], start_new_session=True)
        while True:
            pass
"""


@pytest.mark.parametrize("call", ["update", "retrieve"], ids=["exit-leaving-child", "timeout"])
def test_a_descendant_left_behind_does_not_stall_the_worker(
    make_process: MakeProcess, call: str
) -> None:
    process = make_process(ESCAPES)

    async def scenario(process: DesignProcess) -> tuple[float, str]:
        design = await _new(process)
        began = time.monotonic()
        try:
            if call == "update":
                await design.update(TRAJECTORY, 3.0)
            else:
                await design.retrieve(START, 0.5)
        except DesignCallError as exc:
            outcome = str(exc)
        else:
            outcome = "no error"
        took = time.monotonic() - began
        # Unsandboxed, the sleep may outlive the design process: let it end while the loop
        # runs, so that the pipe it holds is closed here and not after the loop has closed.
        for _ in range(200):
            if not processes_with_scratch(process.scratch):
                break
            await asyncio.sleep(0.025)
        return took, outcome

    took, message = drive(process, scenario)
    expected = "ended (exit status 3)" if call == "update" else "did not finish within 0.5 s"
    _expect(expected in message and took < 1.5, f"after {took:.1f} s: {message}")


# -- import failures -------------------------------------------------------------------------

IMPORT_FAILURES = {
    "raises": ("raise RuntimeError('boom at import')", r"RuntimeError: boom at import"),
    "sys-exit": ("import sys\nsys.exit(2)", r"importing the design called sys.exit\(2\)"),
    "os-exit": ("import os\nos._exit(7)", r"the design process ended \(exit status 7\)"),
    "loops": ("while True:\n    pass", r"importing design.py did not finish within 0.5 s"),
}


@pytest.mark.parametrize("body, expected", IMPORT_FAILURES.values(), ids=IMPORT_FAILURES.keys())
def test_an_import_failure_is_sticky(make_process: MakeProcess, body: str, expected: str) -> None:
    source = (
        "from pytest_alma import MemoryDesign\n"
        f"{body}\n"
        "class Never(MemoryDesign):\n"
        "    async def general_retrieve(self, task):\n"
        "        return {}\n"
    )
    process = make_process(source, load_timeout_s=0.5)

    async def scenario(process: DesignProcess) -> None:
        began = time.monotonic()
        with pytest.raises(DesignLoadError, match=expected) as first:
            await _new(process)
        assert time.monotonic() - began < 5.0
        assert process.starts == 1
        assert process.pid is None
        assert process.load_error is first.value
        assert wait_until(lambda: not processes_with_scratch(process.scratch))

        # Every later request fails at once with the same error, without a new process.
        began = time.monotonic()
        with pytest.raises(DesignLoadError) as second:
            await _new(process)
        with pytest.raises(DesignLoadError) as third:
            await process.restore("k", b"blob", "restored", 0, T)
        assert time.monotonic() - began < 0.2
        assert second.value is first.value and third.value is first.value
        assert process.starts == 1

    drive(process, scenario)


def test_a_class_made_at_run_time_is_refused(make_process: MakeProcess) -> None:
    # Statically there is one design class; importing gives another one.
    process = make_process(
        """
        from pytest_alma import MemoryDesign

        class Declared(MemoryDesign):
            abstract = False

        Declared.abstract = True
        Made = type("Made", (MemoryDesign,), {})
        """
    )

    async def scenario(process: DesignProcess) -> None:
        with pytest.raises(DesignLoadError, match=r"gives the design class Made.*defines Declared"):
            await _new(process)

    drive(process, scenario)


# -- junk results ----------------------------------------------------------------------------

JUNK = {
    "set": ("{'x': {1, 2}}", r"not strict JSON: Object of type set is not JSON serializable"),
    "bytes": ("{'x': b'raw'}", r"not strict JSON: Object of type bytes is not JSON"),
    "nan": ("{'x': float('nan')}", r"not strict JSON: Out of range float values"),
    "infinity": ("{'x': [float('inf')]}", r"not strict JSON: Out of range float values"),
    "cycle": ("cyclic()", r"reference cycle"),
    "object": ("{'x': Opaque()}", r"not strict JSON: Object of type Opaque is not JSON"),
    "tuple key": ("{(1, 2): 'x'}", r"not strict JSON: keys must be str"),
    "huge string": (
        "{'x': 'y' * 10_000_000}",
        r"too large: it is more than 4,000,000 characters of JSON",
    ),
    "deep": ("deep()", r"nests deeper than 200 levels"),
    "not a dict": ("['a', 'list']", r"returned list, expected a dict"),
}

JUNK_DESIGN = """
from pytest_alma import MemoryDesign


class Opaque:
    pass


def cyclic():
    inner = []
    inner.append(inner)
    return {"x": inner}


def deep():
    value = []
    for _ in range(300):
        value = [value]
    return {"x": value}


class Junk(MemoryDesign):
    async def general_update(self, trajectory):
        pass

    async def general_retrieve(self, task):
        return {junk}
"""


@pytest.mark.parametrize("junk, expected", JUNK.values(), ids=JUNK.keys())
def test_junk_from_retrieve_is_a_clear_call_error(
    make_process: MakeProcess, junk: str, expected: str
) -> None:
    process = make_process(JUNK_DESIGN.replace("{junk}", junk))

    async def scenario(process: DesignProcess) -> None:
        design = await _new(process)
        for _ in range(2):  # the process survives a junk answer
            with pytest.raises(DesignCallError, match=expected) as info:
                await design.retrieve(START, T)
            assert "Junk.general_retrieve" in str(info.value)
            assert isinstance(info.value, RequestFailed) and info.value.kind == "junk"
        assert process.starts == 1

    drive(process, scenario)


def test_a_shared_but_acyclic_memory_is_accepted(make_process: MakeProcess) -> None:
    process = make_process(
        """
        from pytest_alma import MemoryDesign

        class Shares(MemoryDesign):
            async def general_update(self, trajectory):
                pass

            async def general_retrieve(self, task):
                plan = ["left", "up"]
                return {"best": plan, "all": [plan, plan]}
        """
    )

    async def scenario(process: DesignProcess) -> Any:
        memory, _ = await (await _new(process)).retrieve(START, T)
        return memory

    plan = ["left", "up"]
    assert drive(process, scenario) == {"best": plan, "all": [plan, plan]}


# -- output that is not the protocol ---------------------------------------------------------


def test_printing_does_not_break_the_protocol(make_process: MakeProcess) -> None:
    process = make_process(
        """
        import sys
        from pytest_alma import MemoryDesign

        print("imported", "{" * 1000)

        class Chatty(MemoryDesign):
            def __init__(self, ctx=None):
                super().__init__(ctx)
                print("constructed")

            def general_update(self, trajectory):
                print("y" * 100000)  # from a thread, too

            async def general_retrieve(self, task):
                print("x" * 100000)
                print('{"id": 1, "ok": true}')
                sys.stdout.write("no newline at the end")
                sys.stdout.flush()
                return {"arrived": True}
        """
    )

    async def scenario(process: DesignProcess) -> None:
        design = await _new(process)
        for _ in range(3):
            await design.update(TRAJECTORY, T)
            memory, _ = await design.retrieve(START, T)
            assert memory == {"arrived": True}
        assert process.starts == 1

    drive(process, scenario)


FORGER = """
import json
import os
import sys
from pytest_alma import MemoryDesign


def forged_lines():
    lines = ["this is not a frame"]
    for number in range(1, 60):
        answer = {"memory": {"forged": True}, "mutated": True}
        lines.append(json.dumps({"id": number, "ok": True, "result": answer}))
        lines.append(json.dumps({"id": number, "ok": False, "error": {"kind": "load"}}))
        call = {"messages": [{"role": "user", "content": "forged"}]}
        lines.append(json.dumps({"llm": number, "op": "chat", "args": call}))
    return "\\n".join(lines) + "\\n"


class Forger(MemoryDesign):
    async def general_update(self, trajectory):
        sys.__stdout__.write(forged_lines())
        sys.__stdout__.flush()

    async def general_retrieve(self, task):
        os.write(1, forged_lines().encode())
        print(forged_lines(), flush=True)
        return {"real": True}
"""


def test_forged_frames_on_stdout_cannot_confuse_the_worker(make_process: MakeProcess) -> None:
    llm = OfflineLLM()
    process = make_process(FORGER, llm=llm)

    async def scenario(process: DesignProcess) -> None:
        design = await _new(process)
        for _ in range(3):
            assert await design.update(TRAJECTORY, T) is False
            assert await design.retrieve(START, T) == ({"real": True}, False)
        assert process.starts == 1

    drive(process, scenario)
    assert llm.chat_calls == 0
