"""Parallel efficiency of the harness, and the speed-up of a cached re-run.

Runs the benchmark in a throwaway project (the No Memory baseline on Baba Is AI) through the
scripted model with a fixed latency per call, at several xdist worker counts, and prints side
by side: wall time, worker start-up (a run that collects and deselects everything), the ideal
time (LLM calls x latency / workers), and the efficiency = ideal / (wall - start-up). Then it
re-runs one configuration with the cache warm and prints the speed-up.

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
STEPS = 20  # ALMA's Baba Is AI step cap
N_TASKS = 53  # the "all" split


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


def llm_calls(root: Path) -> tuple[int, int]:
    """(calls that went upstream and paid the latency, calls answered from the cache)."""
    run_id = (root / "reports" / "LATEST").read_text().strip()
    data: dict[str, Any] = json.loads((root / "reports" / run_id / "results.json").read_text())
    totals = data["llm"]["totals"]
    hits = int(totals["cache_hits"])
    return int(totals["calls"]) - hits, hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--ideal", type=float, default=30.0, help="target ideal seconds per run")
    args = parser.parse_args()
    rows = []
    cache_row: list[Any] | None = None
    latency = args.latency_ms / 1000.0
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="alma-bench-") as tmp:
            root = Path(tmp)
            make_project(root)
            # calls ~= episodes x steps (most scripted episodes run to the cap); size repeats
            # so that calls x latency / workers ~= the ideal target.
            episodes_needed = args.ideal * workers / (latency * STEPS)
            repeats = max(1, round((episodes_needed - N_TASKS // 2) / (N_TASKS - N_TASKS // 2)))
            common = [
                "--alma-split=all",
                f"--alma-repeats={repeats}",
                f"--alma-scripted-latency={args.latency_ms}",
                f"--alma-concurrency={max(16, workers)}",
                f"--alma-store={root / 'store'}",
            ]
            dist = ["-n", str(workers)] if workers > 1 else ["-p", "no:xdist"]
            startup, _ = run(root, [*common, *dist, "-k", "no_item_matches_this"])
            wall, _ = run(root, [*common, "--alma-cache=rw", *dist])
            calls, hits = llm_calls(root)
            ideal = calls * latency / workers
            rows.append(
                [
                    workers,
                    repeats,
                    calls,
                    hits,
                    f"{wall:.1f}",
                    f"{startup:.1f}",
                    f"{ideal:.1f}",
                    f"{ideal / max(wall - startup, 1e-9):.2f}",
                ]
            )
            if workers == args.workers[-1]:
                cached_wall, _ = run(root, [*common, "--alma-cache=rw", *dist])
                cache_row = [
                    workers,
                    f"{wall:.1f}",
                    f"{cached_wall:.1f}",
                    f"{wall / cached_wall:.1f}x",
                    f"{(wall - startup) / max(cached_wall - startup, 1e-9):.1f}x",
                ]
    print(f"scripted model latency {args.latency_ms:g} ms per call; Baba Is AI, No Memory")
    print(
        tabulate(
            rows,
            headers=[
                "workers",
                "repeats",
                "upstream calls",
                "cache hits",
                "wall s",
                "start-up s",
                "ideal s",
                "efficiency",
            ],
        )
    )
    if cache_row:
        print()
        print(
            tabulate(
                [cache_row],
                headers=[
                    "workers",
                    "first run s",
                    "cached re-run s",
                    "speed-up (wall)",
                    "speed-up (after start-up)",
                ],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
