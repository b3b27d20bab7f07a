"""Fixtures for the design-process tests: design files in ``tmp_path``, both kinds of sandbox,
and a way to drive a :class:`DesignProcess` that always ends it."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.contract.strategies import edge_trajectories, example_start
from pytest_alma.design import DesignLLM
from pytest_alma.records import TaskStart, Trajectory
from pytest_alma.sandbox import launch
from pytest_alma.sandbox.launch import Limits, Sandbox, choose_sandbox
from pytest_alma.sandbox.process import DesignProcess, RemoteDesign
from pytest_alma.sandbox.static_find import find_design

R = TypeVar("R")

NO_BWRAP = "bubblewrap (bwrap) is not installed on this machine"
#: Limits of the test design processes: small, but far above what the designs here use.
TEST_LIMITS = Limits(memory_mb=1024, cpu_s=60)


@pytest.fixture(autouse=True)
def _fresh_bubblewrap_probe() -> Iterator[None]:
    """Tests that fake a missing bubblewrap must not leave their answer in the probe's cache."""
    yield
    launch.probe_bubblewrap.cache_clear()


@pytest.fixture(params=["bubblewrap", "unsandboxed"])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """Each test that takes it runs in bubblewrap (where installed) and unsandboxed."""
    if request.param == "bubblewrap":
        if shutil.which("bwrap") is None:
            pytest.skip(NO_BWRAP)
        return choose_sandbox("require")
    return choose_sandbox("off")


def write_design(directory: Path, source: str, name: str = "design.py") -> Path:
    """``source`` (dedented) as a design file in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


MakeProcess = Callable[..., DesignProcess]


@pytest.fixture
def make_process(tmp_path: Path, sandbox: Sandbox) -> MakeProcess:
    """``make_process(source, llm=..., limits=..., load_timeout_s=..., environ=...)``: a
    :class:`DesignProcess` (not started) for a design file with ``source``."""

    def make(
        source: str,
        *,
        llm: DesignLLM | None = None,
        limits: Limits = TEST_LIMITS,
        load_timeout_s: float | None = 10.0,
        environ: dict[str, str] | None = None,
    ) -> DesignProcess:
        path = write_design(tmp_path / "designs", source)
        return DesignProcess(
            find_design(path),
            sandbox,
            tmp_path / "scratch",
            limits,
            OfflineLLM() if llm is None else llm,
            load_timeout_s=load_timeout_s,
            environ={} if environ is None else environ,
        )

    return make


def drive(process: DesignProcess, scenario: Callable[[DesignProcess], Awaitable[R]]) -> R:
    """Run ``scenario(process)`` on a new event loop; the process is killed afterwards, whatever
    happened (a failing test must not leave a design process behind)."""

    async def main() -> R:
        try:
            return await scenario(process)
        finally:
            await process.kill()
            # Collect what the scenario left (exceptions hold frames that hold the subprocess
            # transport) while the loop still runs: a transport that the design process code
            # left open would otherwise be closed by the garbage collector after the loop has
            # closed, at some random later point of the test session.
            gc.collect()
            await asyncio.sleep(0)

    return asyncio.run(main())


def processes_with_scratch(scratch: Path) -> list[int]:
    """Pids (as this process sees them) of every process whose environment names ``scratch``
    as its TMPDIR: the design process and anything it started, sandboxed or not."""
    marker = f"TMPDIR={scratch}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def wait_until(condition: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    """Poll ``condition`` until it is truthy (returned) or ``timeout_s`` passes (falsy value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# -- shared by the design-process tests --------------------------------------------------------

T = 10.0  # the time limit of requests that are expected to finish
START: TaskStart = example_start("textworld")
TRAJECTORY: Trajectory = dict(edge_trajectories("textworld"))["success"]
FAILURE: Trajectory = dict(edge_trajectories("textworld"))["failure"]


async def new_instance(process: DesignProcess) -> RemoteDesign:
    """A new design instance in ``process`` (started on first use)."""
    return await process.new("instance", 0, T)


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` and no traceback (a short report is all these checks need)."""
    if not condition:
        pytest.fail(message, pytrace=False)
