"""Speed of our Baba Is AI engine: reset and step times, and the solver's search rate.

Three layers are timed over all 53 levels, several seeds each, playing uniformly random valid
actions (0..4) drawn from a seeded ``numpy.random.Generator`` for a fixed number of steps per
(level, seed), resetting whenever the episode ends:

(a) ``BabaGame.step``; a reset is ``BabaGame.from_layout(generate_layout(level, rng))``;
(b) ``BabaEpisode.step``, which adds BALROG's text observation (and redraws the level after a
    broken you-rule); a reset is ``BabaEpisode.reset()``;
(c) the gymnasium wrapper ``BabaIsAIGymEnv.step`` / ``reset()``.

Every call is timed on its own with ``time.perf_counter_ns`` (so the figures include about
0.1 us of timer overhead) and the table shows the median and the 90th percentile in ms, next to
the spec's measurement of the original engine driven through BALROG's wrapper (spec 1.10).

The solver is then run once per level (seed 0) with a state cap; its rate counts the states it
generated (every non-terminal child it stepped and hashed) per second of search.

    python benchmarks/bench_babaisai.py            # 5 seeds x 200 steps, solver cap 2000
    python benchmarks/bench_babaisai.py --quick    # 1 seed x 100 steps, 14 levels for the solver
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_alma.envs.babaisai.engine import BabaGame, StateKey
from pytest_alma.envs.babaisai.game_env import BabaEpisode
from pytest_alma.envs.babaisai.gym_env import BabaIsAIGymEnv
from pytest_alma.envs.babaisai.levels import LEVEL_IDS, generate_layout, layout_factory
from pytest_alma.envs.babaisai.solver import solve

#: The original engine under BALROG's wrapper (spec 1.10): per-step and per-reset times in ms.
ORIGINAL_STEP_MS = (1.2, 3.8)
ORIGINAL_RESET_MS = (2.0, 7.0)
TARGET_LINE = (
    "target: step < 0.2 ms median (the original engine with BALROG's wrapper: 1.2-3.8 ms per "
    "step, 2-7 ms per reset, spec 1.10)"
)


class Timings:
    """Per-call durations (ns) of resets and steps of one layer."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.resets: list[int] = []
        self.steps: list[int] = []


def _percentiles_ms(samples: list[int]) -> tuple[float, float]:
    arr = np.asarray(samples, dtype=np.float64) / 1e6
    return float(np.median(arr)), float(np.percentile(arr, 90))


def bench_raw(levels: list[str], seeds: list[int], steps: int) -> Timings:
    """(a) The bare engine: layout generation + build, then ``BabaGame.step``."""
    out = Timings("(a) BabaGame.step")
    clock = time.perf_counter_ns
    for level_id in levels:
        for seed in seeds:
            layout_rng = np.random.default_rng(seed)
            actions = np.random.default_rng(10_000 + seed).integers(0, 5, steps).tolist()
            t0 = clock()
            game = BabaGame.from_layout(generate_layout(level_id, layout_rng))
            out.resets.append(clock() - t0)
            for a in actions:
                t0 = clock()
                outcome = game.step(a)
                out.steps.append(clock() - t0)
                if outcome.done:
                    t0 = clock()
                    game = BabaGame.from_layout(generate_layout(level_id, layout_rng))
                    out.resets.append(clock() - t0)
    return out


def bench_episode(levels: list[str], seeds: list[int], steps: int) -> Timings:
    """(b) ``BabaEpisode``: text observations and BALROG's broken-you-rule reset."""
    out = Timings("(b) BabaEpisode.step (text obs)")
    clock = time.perf_counter_ns
    for level_id in levels:
        factory = layout_factory(level_id)
        for seed in seeds:
            episode = BabaEpisode(factory, seed=seed)
            actions = np.random.default_rng(10_000 + seed).integers(0, 5, steps).tolist()
            t0 = clock()
            episode.reset()
            out.resets.append(clock() - t0)
            for a in actions:
                t0 = clock()
                _, _, done, _ = episode.step(a)
                out.steps.append(clock() - t0)
                if done:
                    t0 = clock()
                    episode.reset()
                    out.resets.append(clock() - t0)
    return out


def bench_gym(levels: list[str], seeds: list[int], steps: int) -> Timings:
    """(c) The gymnasium wrapper (unwrapped: no ``gymnasium.make`` checker wrappers)."""
    out = Timings("(c) BabaIsAIGymEnv.step")
    clock = time.perf_counter_ns
    for level_id in levels:
        env = BabaIsAIGymEnv(level_id)
        for seed in seeds:
            actions = np.random.default_rng(10_000 + seed).integers(0, 5, steps).tolist()
            t0 = clock()
            env.reset(seed=seed)
            out.resets.append(clock() - t0)
            for a in actions:
                t0 = clock()
                _, _, terminated, truncated, _ = env.step(a)
                out.steps.append(clock() - t0)
                if terminated or truncated:
                    t0 = clock()
                    env.reset()
                    out.resets.append(clock() - t0)
    return out


@contextmanager
def _counting_state_keys() -> Iterator[list[int]]:
    """Count :meth:`BabaGame.state_key` calls (one per state the solver generates)."""
    counter = [0]
    original: Callable[[BabaGame], StateKey] = BabaGame.state_key

    def counted(self: BabaGame) -> StateKey:
        counter[0] += 1
        return original(self)

    BabaGame.state_key = counted  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        BabaGame.state_key = original  # type: ignore[method-assign,assignment]


def bench_solver(levels: list[str], max_states: int) -> dict[str, Any]:
    """Run :func:`solve` once per level (seed 0); return totals and the search rate."""
    states = 0
    elapsed = 0.0
    solved = 0
    lengths: list[int] = []
    for level_id in levels:
        game = BabaGame.from_layout(generate_layout(level_id, np.random.default_rng(0)))
        with _counting_state_keys() as counter:
            t0 = time.perf_counter()
            plan = solve(game, max_states=max_states)
            elapsed += time.perf_counter() - t0
        states += counter[0]
        if plan is not None:
            solved += 1
            lengths.append(len(plan))
    return {
        "levels": len(levels),
        "solved": solved,
        "states": states,
        "seconds": elapsed,
        "rate": states / elapsed if elapsed else float("nan"),
        "lengths": lengths,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed x 100 steps, small solver")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per level (default 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per (level, seed)")
    parser.add_argument("--max-states", type=int, default=None, help="solver state cap")
    args = parser.parse_args()
    n_seeds = args.seeds or (1 if args.quick else 5)
    steps = args.steps or (100 if args.quick else 200)
    max_states = args.max_states or (500 if args.quick else 2000)
    levels = list(LEVEL_IDS)
    solver_levels = levels[::4] if args.quick else levels
    seeds = list(range(n_seeds))

    started = time.perf_counter()
    print(
        f"Baba Is AI engine benchmark: {len(levels)} levels x {n_seeds} seeds x {steps} random "
        f"steps (python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.machine()})"
    )
    # Warm-up: import-time caches, first-call costs.
    bench_gym(levels[:3], [0], 20)

    results = []
    for bench in (bench_raw, bench_episode, bench_gym):
        gc.collect()
        results.append(bench(levels, seeds, steps))

    rows = []
    for t in results:
        reset_med, reset_p90 = _percentiles_ms(t.resets)
        step_med, step_p90 = _percentiles_ms(t.steps)
        rows.append(
            [
                t.name,
                f"{reset_med:.4f}",
                f"{reset_p90:.4f}",
                f"{step_med:.4f}",
                f"{step_p90:.4f}",
                f"{step_med / ORIGINAL_STEP_MS[0]:.3f}x",
                len(t.steps),
                len(t.resets),
            ]
        )
    rows.append(
        [
            "original + BALROG wrapper (spec 1.10)",
            f"{ORIGINAL_RESET_MS[0]:g}-{ORIGINAL_RESET_MS[1]:g}",
            "",
            f"{ORIGINAL_STEP_MS[0]:g}-{ORIGINAL_STEP_MS[1]:g}",
            "",
            "1x",
            "",
            "",
        ]
    )
    print()
    print(
        tabulate(
            rows,
            headers=[
                "layer",
                "reset median ms",
                "reset p90 ms",
                "step median ms",
                "step p90 ms",
                "step median / 1.2 ms",
                "steps",
                "resets",
            ],
            disable_numparse=True,
        )
    )
    print()
    gym_median = _percentiles_ms(results[-1].steps)[0]
    verdict = "met" if gym_median < 0.2 else "NOT met"
    print(TARGET_LINE)
    print(
        f"measured: gym wrapper step median {gym_median:.4f} ms = "
        f"{gym_median / ORIGINAL_STEP_MS[0]:.3f} x 1.2 ms "
        f"({ORIGINAL_STEP_MS[0] / gym_median:.0f}x faster); target {verdict}"
    )

    gc.collect()
    s = bench_solver(solver_levels, max_states)
    lengths = s["lengths"]
    length_text = f"{min(lengths)}-{max(lengths)}" if lengths else "-"
    print()
    print(
        tabulate(
            [
                [
                    f"solve(game, max_states={max_states})",
                    s["levels"],
                    s["solved"],
                    length_text,
                    s["states"],
                    f"{s['seconds']:.2f}",
                    f"{s['rate']:,.0f}",
                ]
            ],
            headers=[
                "solver (seed 0)",
                "levels",
                "solved",
                "plan lengths",
                "states generated",
                "seconds",
                "states/s",
            ],
            disable_numparse=True,
        )
    )
    print(f"\ntotal wall time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
