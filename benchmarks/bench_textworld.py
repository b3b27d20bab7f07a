"""Generation time per TextWorld family/level and the adapter's step time.

For each family at a small level and at the level our suites use for BALROG-like games, games
are generated (``--seeds`` of them, seeds 1..N) into a fresh temporary folder, so nothing is
cached, and the generate and compile seconds TextWorld spent are read from each game's
``meta.json``. Each game is then played through the adapter by its walkthrough (TextWorld's
``policy_commands`` at reset), timing ``reset`` and every ``step`` (``time.perf_counter_ns``);
medians are reported. Generation runs in this one process, one game at a time: the first game
of a family also pays for loading that challenge's data.

    python benchmarks/bench_textworld.py
    python benchmarks/bench_textworld.py --seeds 5
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_alma.envs.textworld.adapter import TextWorldEpisode
from pytest_alma.envs.textworld.generate import ensure_game, textworld_version
from pytest_alma.envs.textworld.tasks import GameSpec
from pytest_alma.records import Task

#: (family, level): a small one and the BALROG-like one per family.
CASES: tuple[tuple[str, int], ...] = (
    ("treasure_hunter", 1),
    ("treasure_hunter", 25),
    ("cooking", 1),
    ("cooking", 5),
    ("coin_collector", 1),
    ("coin_collector", 220),
)


def bench_case(family: str, level: int, seeds: int, folder: Path) -> dict[str, Any]:
    """Generate ``seeds`` games of one family/level and play each by its walkthrough."""
    generate_s: list[float] = []
    compile_s: list[float] = []
    wall_s: list[float] = []
    reset_ns: list[int] = []
    step_ns: list[int] = []
    walk: list[int] = []
    won = 0
    for seed in range(1, seeds + 1):
        spec = GameSpec(family, level, seed)
        t = time.perf_counter()
        files = ensure_game(spec, folder)
        wall_s.append(time.perf_counter() - t)
        meta = files.meta()
        generate_s.append(float(meta["generate_seconds"]))
        compile_s.append(float(meta["compile_seconds"]))
        episode = TextWorldEpisode(Task("textworld", spec.task_id, "bench", 0), files, 80)
        t0 = time.perf_counter_ns()
        episode.reset()
        reset_ns.append(time.perf_counter_ns() - t0)
        policy = episode.policy_commands()
        walk.append(len(policy))
        for command in policy:
            t0 = time.perf_counter_ns()
            result = episode.step(command)
            step_ns.append(time.perf_counter_ns() - t0)
            if result.done:
                break
        won += episode.score()[1]
        episode.close()
    return {
        "family": family,
        "level": level,
        "games": seeds,
        "generate s (median)": statistics.median(generate_s),
        "generate s (max)": max(generate_s),
        "compile s (median)": statistics.median(compile_s),
        "total s (median)": statistics.median(wall_s),
        "walkthrough (median)": statistics.median(walk),
        "reset ms": statistics.median(reset_ns) / 1e6,
        "step ms": statistics.median(step_ns) / 1e6,
        "won": f"{won}/{seeds}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="games per family/level")
    args = parser.parse_args()
    print(
        f"TextWorld generation and step time, {args.seeds} games per row (python "
        f"{platform.python_version()}, textworld {textworld_version()}, {platform.machine()})"
    )
    with tempfile.TemporaryDirectory(prefix="bench_textworld_") as folder:
        rows = [bench_case(f, level, args.seeds, Path(folder)) for f, level in CASES]
    print(tabulate(rows, headers="keys", floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
