"""Parallel efficiency of the harness, and the speed-up of a cached re-run.

Runs the benchmark in a throwaway project (the No Memory baseline on Baba Is AI) through the
scripted model with a fixed latency per call, at several xdist worker counts, and prints side
by side: wall time; the episode phase (first episode start to last episode end, from the
run's own results.json) and what lies outside it (start-up and teardown); the ideal time
(upstream LLM calls x latency / workers); and the efficiency = ideal / episode phase. The
largest worker count runs a second time with ``--alma-worker-nice=0`` (workers at the gateway's
CPU priority) to show what the default niceness buys. Then every configuration re-runs with the
cache warm, and the speed-up of the episode phase and of the wall time is printed.

    python benchmarks/bench_harness.py                    # -n 1, 4, 16 at 50 ms, ~30 s ideal
    python benchmarks/bench_harness.py --workers 2 4 --ideal 10

The workload per worker count is sized so that each configuration's ideal time is about
``--ideal`` seconds (the same work at -n 1 would take 16x longer than at -n 16).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
N_TASKS = 53  # the "all" split: 26 collection tasks, 27 deployment tasks
# Upstream calls per episode with the scripted model, measured (9,475 calls for 782 episodes at
# repeats 28): many episodes end before the 20-step cap, and repeats share some replies through
# the cache. Used only to size each run to about --ideal seconds; the table reports the real ideal.
UPSTREAM_CALLS_PER_EPISODE = 12.1


def make_project(root: Path) -> None:
    (root / "baselines").mkdir(parents=True)
    shutil.copy(REPO / "baselines" / "no_memory.py", root / "baselines")
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = baselines\n")


def run(root: Path, args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    # Bytecode caching on, as on a normal machine: with PYTHONDONTWRITEBYTECODE set (some
    # sandboxes set it) every worker re-compiles every module and pytest re-rewrites every
    # plugin's assertions, which multiplies start-up by about 3 at -n 16.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 5):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"pytest failed with exit code {proc.returncode}")
    return elapsed, proc


def latest_results(root: Path) -> dict[str, Any]:
    run_id = (root / "reports" / "LATEST").read_text().strip()
    data: dict[str, Any] = json.loads((root / "reports" / run_id / "results.json").read_text())
    return data


def llm_calls(data: dict[str, Any]) -> tuple[int, int]:
    """(calls that went upstream and paid the latency, calls answered from the cache).

    Upstream calls are the gateway's; cache hits are counted where they happen (workers read
    hits from the cache directly, the gateway answers the rest).
    """
    totals = data["llm"]["totals"]
    upstream = int(totals["calls"]) - int(totals["cache_hits"])
    # Episode records count every hit, whether read by the worker or served by the gateway.
    hits = sum(int(e["agent_tokens"]["cached_calls"]) for e in data["episodes"])
    hits += sum(int(c["tokens"]["cached_calls"]) for c in data["collection"] if c["played_now"])
    return upstream, hits


def episode_phase(data: dict[str, Any]) -> float:
    """Seconds from the first episode's start to the last episode's end, in this run.

    Everything before (interpreter and worker start-up, collection) and after (worker shutdown,
    the report) is start-up or teardown, measured in the same run rather than in a second one.
    """
    spans = [
        (e["extra"]["ended_at"] - e["duration_s"], e["extra"]["ended_at"]) for e in data["episodes"]
    ]
    spans += [
        (c["ended_at"] - c["duration_s"], c["ended_at"])
        for c in data["collection"]
        if c["played_now"] and c.get("ended_at")
    ]
    return max(end for _, end in spans) - min(start for start, _ in spans)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--ideal", type=float, default=30.0, help="target ideal seconds per run")
    parser.add_argument(
        "--no-nice-row",
        action="store_true",
        help="skip the extra run of the largest worker count at --alma-worker-nice=0",
    )
    args = parser.parse_args()
    rows = []
    cache_rows: list[list[Any]] = []
    latency = args.latency_ms / 1000.0
    # (workers, niceness): the default niceness for every count, then the largest at 0 to show
    # what lowering the workers' priority buys.
    configs: list[tuple[int, int | None]] = [(w, None) for w in args.workers]
    if not args.no_nice_row and max(args.workers) > 1:
        configs.append((max(args.workers), 0))
    for workers, nice in configs:
        with tempfile.TemporaryDirectory(prefix="alma-bench-") as tmp:
            root = Path(tmp)
            make_project(root)
            # Size repeats so that calls x latency / workers ~= the ideal target.
            episodes_needed = args.ideal * workers / (latency * UPSTREAM_CALLS_PER_EPISODE)
            repeats = max(1, round((episodes_needed - N_TASKS // 2) / (N_TASKS - N_TASKS // 2)))
            common = [
                "--alma-split=all",
                f"--alma-repeats={repeats}",
                f"--alma-scripted-latency={args.latency_ms}",
                f"--alma-concurrency={max(16, workers)}",
                f"--alma-store={root / 'store'}",
                *([f"--alma-worker-nice={nice}"] if nice is not None else []),
            ]
            dist = ["-n", str(workers)] if workers > 1 else ["-p", "no:xdist"]
            wall, _ = run(root, [*common, "--alma-cache=rw", *dist])
            data = latest_results(root)
            calls, hits = llm_calls(data)
            phase = episode_phase(data)
            ideal = calls * latency / workers
            rows.append(
                [
                    workers,
                    "default" if nice is None else nice,
                    repeats,
                    calls,
                    hits,
                    f"{wall:.1f}",
                    f"{wall - phase:.1f}",
                    f"{phase:.1f}",
                    f"{ideal:.1f}",
                    f"{ideal / phase:.2f}",
                ]
            )
            if nice is None:
                cached_wall, _ = run(root, [*common, "--alma-cache=rw", *dist])
                cached_phase = episode_phase(latest_results(root))
                cache_rows.append(
                    [
                        workers,
                        f"{wall:.1f}",
                        f"{cached_wall:.1f}",
                        f"{phase:.2f}",
                        f"{cached_phase:.2f}",
                        f"{wall / cached_wall:.1f}x",
                        f"{phase / cached_phase:.1f}x",
                    ]
                )
    print(f"scripted model latency {args.latency_ms:g} ms per call; Baba Is AI, No Memory")
    print(
        tabulate(
            rows,
            headers=[
                "workers",
                "worker nice",
                "repeats",
                "upstream calls",
                "cache hits",
                "wall s",
                "start-up+teardown s",
                "episode phase s",
                "ideal s",
                "efficiency",
            ],
        )
    )
    if cache_rows:
        print()
        print(
            tabulate(
                cache_rows,
                headers=[
                    "workers",
                    "first run s",
                    "cached re-run s",
                    "first episode phase s",
                    "cached episode phase s",
                    "speed-up (wall)",
                    "speed-up (episode phase)",
                ],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
