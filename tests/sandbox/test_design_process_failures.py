"""A design process that goes wrong: time-outs, crashes, import failures, junk results and a
design that writes to standard output. Each is contained to the request, with a clear message.

Every test runs twice (the ``sandbox`` fixture): in bubblewrap and unsandboxed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.design import DesignCallError, DesignLoadError
from pytest_alma.sandbox.process import DesignProcess, RequestFailed

from .conftest import (
    START,
    TRAJECTORY,
    MakeProcess,
    T,
    drive,
    expect,
    new_instance,
    processes_with_scratch,
    wait_until,
)

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
        design = await new_instance(process)
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
        fresh = await new_instance(process)
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
        design = await new_instance(process)
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
        await new_instance(process)
        assert process.starts == 2

    drive(process, scenario)


def test_a_segfault_reports_the_signal(make_process: MakeProcess) -> None:
    process = make_process(ENDS)

    async def scenario(process: DesignProcess) -> str:
        design = await new_instance(process)
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
        design = await new_instance(process)
        await design.update(TRAJECTORY, T)
        await asyncio.sleep(0.5)  # the process has ended by now
        try:
            await design.retrieve(START, T)
        except DesignCallError as exc:
            return str(exc)
        return "no error"

    message = drive(process, scenario)
    expect("was lost" in message, message)


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
        design = await new_instance(process)
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
    expect(expected in message and took < 1.5, f"after {took:.1f} s: {message}")


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
            await new_instance(process)
        assert time.monotonic() - began < 5.0
        assert process.starts == 1
        assert process.pid is None
        assert process.load_error is first.value
        assert wait_until(lambda: not processes_with_scratch(process.scratch))

        # Every later request fails at once with the same error, without a new process.
        began = time.monotonic()
        with pytest.raises(DesignLoadError) as second:
            await new_instance(process)
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
            await new_instance(process)

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
        design = await new_instance(process)
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
        memory, _ = await (await new_instance(process)).retrieve(START, T)
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
        design = await new_instance(process)
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
        design = await new_instance(process)
        for _ in range(3):
            assert await design.update(TRAJECTORY, T) is False
            assert await design.retrieve(START, T) == ({"real": True}, False)
        assert process.starts == 1

    drive(process, scenario)
    assert llm.chat_calls == 0
