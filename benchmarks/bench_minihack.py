"""Cost of BALROG's MiniHack text observation next to a raw NLE step, on BALROG's 8 tasks.

Target: the text observation adds no more than the raw NLE step costs (text / step <= 1).

For each task (spec 2.2), the environment is made with ``gymnasium.make(task,
observation_keys=OBSERVATION_KEYS)`` (the keys the text needs, default minihack settings), NetHack
is seeded (``env.unwrapped.seed(core, disp, False)``; gymnasium's ``reset(seed=...)`` alone does
not seed it) and then:

* make: ``gymnasium.make`` once (ms);
* reset: median ``env.reset`` over the episodes played;
* step: median ``env.step`` over ``--steps`` uniformly random actions from the task's action
  space, drawn from a seeded ``numpy.random.Generator``, resetting whenever an episode ends;
* text: median ``observation_text(obs)`` on the observations reached (after each reset and
  step), and language: its ``language_observation`` part alone. Whichever of the two runs first
  on a fresh observation also pays for bringing NLE's arrays into the CPU cache, as it would in
  use; so they take turns going first and only first-run times count;
* text/step: the ratio of the two medians.

Every call is timed on its own with ``time.perf_counter_ns``, with the garbage collector off.
The Boxoban tasks need DeepMind's level files (``--boxoban-levels DIR`` or
``$ALMA_MINIHACK_BOXOBAN_LEVELS``); when making one fails, it is skipped with a note.

    python benchmarks/bench_minihack.py
    python benchmarks/bench_minihack.py --boxoban-levels /work/shared/data/boxoban-levels
    python benchmarks/bench_minihack.py --steps 200 --seed 1
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_alma.envs.minihack.language import language_observation
from pytest_alma.envs.minihack.tasks import BALROG_TASK_IDS
from pytest_alma.envs.minihack.text import OBSERVATION_KEYS, observation_text

#: BALROG's MiniHack tasks.
TASKS = BALROG_TASK_IDS
TARGET_LINE = (
    "target: the text observation adds no more than the raw NLE step costs (text/step <= 1)"
)


class MakeFailed(RuntimeError):
    """A task's environment could not be made (e.g. Boxoban without its level files)."""


def _ms(samples: list[int]) -> float:
    return statistics.median(samples) / 1e6


def _prepare_boxoban(task: str, folder: str | None) -> None:
    # A missing level folder raises here; the caller reports it and skips the task with a note.
    from pytest_alma.envs.minihack import boxoban

    boxoban.use_levels(task, folder)


def make_env(task: str, boxoban_levels: str | None) -> Any:
    """``gymnasium.make(task)`` with the text's observation keys (Boxoban levels set up first)."""
    import gymnasium as gym

    if "Boxoban" in task:
        _prepare_boxoban(task, boxoban_levels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's passive checker warns about NLE's spaces
        return gym.make(task, observation_keys=OBSERVATION_KEYS)


def bench_task(task: str, steps: int, seed: int, boxoban_levels: str | None) -> dict[str, Any]:
    """Time make, resets, steps and text builds of one task; the row for the table."""
    gc.collect()
    t0 = time.perf_counter_ns()
    try:
        env = make_env(task, boxoban_levels)
    except Exception as err:
        raise MakeFailed(f"{type(err).__name__}: {err}") from err
    make_ns = time.perf_counter_ns() - t0
    rng = np.random.default_rng(seed)
    n_actions = int(env.action_space.n)
    resets: list[int] = []
    step_ns: list[int] = []
    text_ns: list[int] = []
    language_ns: list[int] = []
    chars = 0

    def reset() -> Any:
        episode = seed + len(resets)
        env.unwrapped.seed(episode, episode, False)
        t = time.perf_counter_ns()
        obs, _ = env.reset(seed=episode)
        resets.append(time.perf_counter_ns() - t)
        return obs

    def time_text(obs: Any) -> None:
        # Whichever builder runs first on a fresh observation pays for bringing its arrays into
        # the cache, as in real use: alternate the order and keep first-run times only.
        nonlocal chars
        order: list[tuple[Callable[[Any], str], list[int]]] = [
            (observation_text, text_ns),
            (language_observation, language_ns),
        ]
        if len(step_ns) % 2:
            order.reverse()
        (first, samples), (second, _) = order
        t = time.perf_counter_ns()
        built = first(obs)
        samples.append(time.perf_counter_ns() - t)
        second(obs)
        if first is observation_text:
            chars += len(built)

    gc.disable()
    try:
        obs = reset()
        time_text(obs)
        for _ in range(steps):
            action = int(rng.integers(n_actions))
            t = time.perf_counter_ns()
            obs, _, terminated, truncated, _ = env.step(action)
            step_ns.append(time.perf_counter_ns() - t)
            time_text(obs)
            if terminated or truncated:
                obs = reset()
                time_text(obs)
    finally:
        gc.enable()
        env.close()
    step_ms, text_ms = _ms(step_ns), _ms(text_ns)
    return {
        "task": task.removeprefix("MiniHack-"),
        "make ms": make_ns / 1e6,
        "reset ms": _ms(resets),
        "step ms": step_ms,
        "text ms": text_ms,
        "language ms": _ms(language_ns),
        "text/step": text_ms / step_ms,
        "episodes": len(resets),
        "chars": round(chars / len(text_ns)),  # mean length of the text
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="random steps per task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode and actions")
    parser.add_argument(
        "--boxoban-levels",
        default=None,
        metavar="DIR",
        help="folder of DeepMind's boxoban-levels (default: $ALMA_MINIHACK_BOXOBAN_LEVELS)",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minihack 1.0.2 imports the deprecated pkg_resources
        import minihack  # noqa: F401  (registers the MiniHack gym ids)
        import nle
    import_s = time.perf_counter() - t0
    print(
        f"MiniHack text observation vs raw NLE step: {args.steps} random steps per task "
        f"(python {platform.python_version()}, numpy {np.__version__}, nle {nle.__version__}, "
        f"{platform.machine()}; import minihack {import_s:.2f} s)"
    )
    rows = []
    for task in TASKS:
        try:
            rows.append(bench_task(task, args.steps, args.seed, args.boxoban_levels))
        except MakeFailed as err:
            if "Boxoban" not in task:
                raise
            print(f"note: skipped {task} (making it failed): {str(err)[:300]}")
    print(tabulate(rows, headers="keys", floatfmt=".3f"))
    print(TARGET_LINE)
    worst = max((row["text/step"] for row in rows), default=0.0)
    print(f"worst text/step: {worst:.2f} ({'met' if worst <= 1 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
