"""Cost of running designs in their own process: per call, and per process start.

For each design (by default ``designs/example_rules.py`` and ``baselines/trajectory_retrieval.py``,
with the contract's offline LLM double answering their LLM calls), side by side in one run:

(a) the round trip of one ``general_update`` and one ``general_retrieve``, three ways:

    1. through a design process in bubblewrap (the default where it works),
    2. through an unsandboxed design process (``--alma-sandbox off``),
    3. in this process: ``load_design`` + ``instantiate`` + a direct ``await`` (the old harness),

   median / p90 over N calls each, with realistic trajectories: Baba Is AI episodes played on the
   real engine (seeded random moves, up to the 20-step cap) plus the contract's named edge cases
   (empty, maximal-length, errored, odd characters, a 20,000-character observation);

(b) start-up: from spawning a design process to a constructed design ready for its first call
    (``DesignProcess.new``: process start, ``hello``, importing the design file, constructor),
    median over ``--starts`` starts, bubblewrap against plain, and against importing the file in
    this process (``load_design`` + ``instantiate``; the harness's own imports are already
    loaded here, so that figure is the design module alone);

(c) the targets beside the figures: a round trip < 5 ms, a start < 300 ms.

The series run in interleaved rounds, so that load from other processes hits each alike.

    python benchmarks/bench_sandbox.py [-n 400] [--starts 10] [--design PATH ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.contract.strategies import edge_trajectories
from pytest_alma.design import DesignContext, instantiate, load_design
from pytest_alma.records import Step, Task, TaskStart, Trajectory
from pytest_alma.sandbox.launch import Limits, Sandbox, choose_sandbox
from pytest_alma.sandbox.process import DesignProcess, RemoteDesign
from pytest_alma.sandbox.static_find import find_design

REPO = Path(__file__).resolve().parents[1]
DESIGNS = (REPO / "designs" / "example_rules.py", REPO / "baselines" / "trajectory_retrieval.py")
ROUND_TRIP_TARGET_MS = 5.0
START_TARGET_MS = 300.0
ROUNDS = 10
WARMUP = 5
TIMEOUT_S = 60.0
MAX_STEPS = 20


# -- inputs ----------------------------------------------------------------------------------


def played_episodes(count: int, seed: int = 0) -> list[Trajectory]:
    """``count`` Baba Is AI episodes played on the real engine with seeded random moves."""
    from pytest_alma.envs.babaisai.adapter import BabaIsAIEnvironment
    from pytest_alma.envs.babaisai.text import ACTIONS

    env = BabaIsAIEnvironment()
    tasks = env.tasks("all")
    rng = random.Random(seed)
    episodes = []
    for i in range(count):
        task = Task(BabaIsAIEnvironment.name, tasks[i % len(tasks)], "all", i)
        episode = env.open(task, MAX_STEPS)
        start = episode.reset()
        steps: list[Step] = []
        for _ in range(rng.randint(1, MAX_STEPS)):
            action = rng.choice(tuple(ACTIONS))
            result = episode.step(action)
            steps.append(Step(action, result.observation, result.reward, result.done))
            if result.done:
                break
        success = bool(episode.score()[1])
        episodes.append(Trajectory(start, tuple(steps), 1.0 if success else 0.0, success))
    return episodes


def workload() -> list[Trajectory]:
    """Played episodes and the named edge cases, shuffled (fixed seed)."""
    trajectories = played_episodes(40) + [t for _, t in edge_trajectories("babaisai", MAX_STEPS)]
    random.Random(1).shuffle(trajectories)
    return trajectories


# -- the three ways of calling a design ------------------------------------------------------


class Caller:
    """One way of calling one design: ``update`` and ``retrieve``, each one round trip."""

    label = ""

    async def update(self, trajectory: Trajectory) -> None:
        raise NotImplementedError

    async def retrieve(self, start: TaskStart) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class InProcess(Caller):
    label = "in-process (old harness)"

    def __init__(self, path: Path, scratch: Path) -> None:
        loaded = load_design(path)
        ctx = DesignContext(
            llm=OfflineLLM(), rng=random.Random(0), scratch_dir=scratch / "in-process", seed=0
        )
        ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
        self.design = instantiate(loaded, ctx)

    async def update(self, trajectory: Trajectory) -> None:
        await self.design.general_update(trajectory)

    async def retrieve(self, start: TaskStart) -> None:
        await self.design.general_retrieve(start)


class Remote(Caller):
    def __init__(self, process: DesignProcess, design: RemoteDesign, label: str) -> None:
        self.process = process
        self.design = design
        self.label = label

    @classmethod
    async def start(cls, path: Path, sandbox: Sandbox, scratch: Path, label: str) -> Remote:
        process = DesignProcess(
            find_design(path), sandbox, scratch, Limits(), OfflineLLM(), load_timeout_s=TIMEOUT_S
        )
        return cls(process, await process.new("bench", 0, TIMEOUT_S), label)

    async def update(self, trajectory: Trajectory) -> None:
        await self.design.update(trajectory, TIMEOUT_S)

    async def retrieve(self, start: TaskStart) -> None:
        await self.design.retrieve(start, TIMEOUT_S)

    async def close(self) -> None:
        await self.process.kill()


async def timed(call: Callable[[Any], Awaitable[Any]], arg: Any) -> float:
    """Seconds that ``await call(arg)`` takes."""
    began = time.perf_counter()
    await call(arg)
    return time.perf_counter() - began


def summary(times: list[float]) -> tuple[float, float]:
    """Median and p90, in ms."""
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


# -- (a) round trips -------------------------------------------------------------------------


async def round_trips(
    path: Path, sandboxes: list[tuple[str, Sandbox]], n: int, trajectories: list[Trajectory]
) -> dict[str, dict[str, list[float]]]:
    """{series label: {"update": [...], "retrieve": [...]}} over ``n`` calls of each."""
    with tempfile.TemporaryDirectory(prefix="alma-bench-") as tmp:
        scratch = Path(tmp)
        callers: list[Caller] = []
        for i, (label, sandbox) in enumerate(sandboxes):
            callers.append(await Remote.start(path, sandbox, scratch / f"s{i}", label))
        callers.append(InProcess(path, scratch))
        try:
            times: dict[str, dict[str, list[float]]] = {
                c.label: {"update": [], "retrieve": []} for c in callers
            }
            for caller in callers:  # warm-up: first calls, lazy imports, the first snapshot
                for trajectory in trajectories[:WARMUP]:
                    await caller.update(trajectory)
                    await caller.retrieve(trajectory.start)
            batch = max(1, n // ROUNDS)
            for r in range(ROUNDS):
                for caller in callers:
                    for i in range(r * batch, (r + 1) * batch):
                        trajectory = trajectories[i % len(trajectories)]
                        series = times[caller.label]
                        series["update"].append(await timed(caller.update, trajectory))
                        series["retrieve"].append(await timed(caller.retrieve, trajectory.start))
            return times
        finally:
            for caller in callers:
                await caller.close()


# -- (b) start-up ----------------------------------------------------------------------------


async def start_ups(
    path: Path, sandboxes: list[tuple[str, Sandbox]], starts: int
) -> dict[str, list[float]]:
    """{series label: seconds from spawn to a constructed design, per start}."""
    spec = find_design(path)
    times: dict[str, list[float]] = {label: [] for label, _ in sandboxes}
    times["in-process import"] = []
    with tempfile.TemporaryDirectory(prefix="alma-bench-") as tmp:
        scratch = Path(tmp)
        for i in range(starts):
            for label, sandbox in sandboxes:
                process = DesignProcess(
                    spec, sandbox, scratch / f"{i}", Limits(), OfflineLLM(), load_timeout_s=60
                )
                try:
                    times[label].append(await timed(_first_design, process))
                finally:
                    await process.kill()
            times["in-process import"].append(await timed(_import_fresh, (path, scratch)))
    return times


async def _first_design(process: DesignProcess) -> None:
    await process.new("bench", 0, TIMEOUT_S)


async def _import_fresh(where: tuple[Path, Path]) -> None:
    path, scratch = where
    loaded = load_design(path)
    ctx = DesignContext(llm=OfflineLLM(), rng=random.Random(0), scratch_dir=scratch, seed=0)
    instantiate(loaded, ctx)
    sys.modules.pop(loaded.module.__name__, None)  # the next start imports it again


# -- the report ------------------------------------------------------------------------------


def _name(path: Path) -> str:
    return str(path.relative_to(REPO)) if REPO in path.parents else str(path)


def verdict(value: float, target: float) -> str:
    return "yes" if value < target else "NO"


def main() -> None:
    """Parse options, run (a) and (b) for each design, print the tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", type=int, default=400, help="calls of each kind per series")
    parser.add_argument("--starts", type=int, default=10, help="process starts per series")
    parser.add_argument(
        "--design", type=Path, action="append", help="design file (repeatable; default: two)"
    )
    args = parser.parse_args()
    designs = [p.resolve() for p in args.design] if args.design else list(DESIGNS)

    sandboxes: list[tuple[str, Sandbox]] = []
    bubblewrap = choose_sandbox("auto")
    if bubblewrap.sandboxed:
        sandboxes.append((f"design process, {bubblewrap.label()}", bubblewrap))
    else:
        print(f"bubblewrap series skipped: {bubblewrap.label()}")
    sandboxes.append(("design process, unsandboxed", choose_sandbox("off")))
    trajectories = workload()
    steps = [len(t.steps) for t in trajectories]
    chars = [len(json.dumps(t.to_json())) for t in trajectories]

    print(
        f"{len(trajectories)} trajectories (Baba Is AI, played + edge cases): "
        f"{statistics.median(steps):.0f} steps median, max {max(steps)}; "
        f"{statistics.median(chars) / 1000:.1f} kB median as JSON, max {max(chars) / 1000:.0f} kB"
    )
    print(f"python {sys.version.split()[0]}, bwrap {shutil.which('bwrap') or 'not installed'}")

    for path in designs:
        times = asyncio.run(round_trips(path, sandboxes, args.n, trajectories))
        base = {kind: summary(times[InProcess.label][kind])[0] for kind in ("update", "retrieve")}
        rows = []
        for label, series in times.items():
            for kind in ("update", "retrieve"):
                median, p90 = summary(series[kind])
                remote = label != InProcess.label
                rows.append(
                    [
                        label,
                        f"general_{kind}",
                        f"{median:.3f}",
                        f"{p90:.3f}",
                        f"{median - base[kind]:+.3f}" if remote else "",
                        f"{median / base[kind]:.1f}x" if remote and base[kind] > 0 else "",
                        f"median {verdict(median, ROUND_TRIP_TARGET_MS)}, "
                        f"p90 {verdict(p90, ROUND_TRIP_TARGET_MS)}"
                        if remote
                        else "",
                    ]
                )
        calls = len(times[InProcess.label]["update"])
        print(f"\n(a) round trips of {_name(path)}: {calls} calls of each kind per series")
        print(
            tabulate(
                rows,
                headers=[
                    "series",
                    "call",
                    "median ms",
                    "p90 ms",
                    "added ms",
                    "ratio",
                    f"< {ROUND_TRIP_TARGET_MS:g} ms?",
                ],
                disable_numparse=True,
                colalign=("left", "left", "right", "right", "right", "right", "left"),
            )
        )

    for path in designs:
        starts = asyncio.run(start_ups(path, sandboxes, args.starts))
        rows = []
        for label, series in starts.items():
            median = statistics.median(series) * 1000
            remote = label != "in-process import"
            rows.append(
                [
                    label,
                    f"{median:.1f}",
                    f"{min(series) * 1000:.1f}",
                    f"{max(series) * 1000:.1f}",
                    verdict(median, START_TARGET_MS) if remote else "",
                ]
            )
        print(
            f"\n(b) start-up of {_name(path)}, spawn to a constructed design: {args.starts} starts"
        )
        print(
            tabulate(
                rows,
                headers=[
                    "series",
                    "median ms",
                    "min ms",
                    "max ms",
                    f"median < {START_TARGET_MS:g} ms?",
                ],
                disable_numparse=True,
                colalign=("left", "right", "right", "right", "left"),
            )
        )
    print(
        f"\n(c) targets: a round trip < {ROUND_TRIP_TARGET_MS:g} ms, a start "
        f"< {START_TARGET_MS:g} ms (the last column of each table)."
    )
    print("added ms / ratio: against the in-process call of the same design and inputs.")
    print("A design's LLM calls (trajectory_retrieval: 1 embed per call) are frames too.")


if __name__ == "__main__":
    main()
