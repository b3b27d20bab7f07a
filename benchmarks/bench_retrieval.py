"""Update and retrieve latency of each baseline at 100, 1,000 and 10,000 stored trajectories.

Each baseline is loaded as the harness loads designs and filled with synthetic Baba Is AI-like
trajectories (distinct goals, rules and actions). Its LLM calls are answered in-process by the
scripted model's policies (a TEST DOUBLE) and its embeddings come from a table precomputed
before the clock starts, so the figures are the baseline's own work: the time spent inside the
fake LLM and embedding calls is measured and subtracted. Printed side by side per size: the
mean update time, the median and p90 retrieve time, and the calls one retrieve made.

    python benchmarks/bench_retrieval.py                 # all five baselines, 100 / 1k / 10k
    python benchmarks/bench_retrieval.py --sizes 100 1000 --baselines reasoning_bank

Targets: Trajectory Retrieval and Reasoning Bank retrieve under 5 ms at 10,000; G-Memory under
50 ms at 10,000 (excluding LLM calls).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_alma.baseline_fixtures import BASELINES, load_baseline  # noqa: E402
from pytest_alma.design import DesignContext  # noqa: E402
from pytest_alma.llm.embedding import embed_text  # noqa: E402
from pytest_alma.llm.scripted import builtin_policies  # noqa: E402
from pytest_alma.llm.scripted_policies import choose_reply  # noqa: E402
from pytest_alma.records import Step, Task, TaskStart, Trajectory  # noqa: E402

WORDS = [
    "baba",
    "wall",
    "door",
    "key",
    "ball",
    "flag",
    "rock",
    "is",
    "you",
    "win",
    "stop",
    "push",
    "open",
    "shut",
]
ACTIONS = ("up", "down", "left", "right", "idle")


class TimedLLM:
    """In-process scripted replies and precomputed embeddings, with the time they take."""

    def __init__(self) -> None:
        self.policies = builtin_policies()
        self.vectors: dict[str, list[float]] = {}
        self.spent = 0.0
        self.chats = 0
        self.embeds = 0

    def precompute(self, texts: Sequence[str]) -> None:
        for text in texts:
            if text not in self.vectors:
                self.vectors[text] = embed_text(text)

    async def chat(self, messages: Sequence[dict[str, str]], **params: Any) -> str:
        started = time.perf_counter()
        self.chats += 1
        reply = choose_reply(self.policies, messages, params)
        self.spent += time.perf_counter() - started
        return reply

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        self.embeds += 1
        out = []
        for text in texts:
            vector = self.vectors.get(text)
            if vector is None:  # not precomputed (a text the baseline built itself)
                vector = self.vectors[text] = embed_text(text)
            out.append(vector)
        self.spent += time.perf_counter() - started
        return out


def make_start(i: int, rng: random.Random) -> TaskStart:
    rules = [f"{rng.choice(WORDS)} is {rng.choice(WORDS)}" for _ in range(3)]
    observation = "Active rules:\n" + "\n".join(rules) + f"\n\nObjects on the map:\nkey {i % 7}"
    task = Task("babaisai", f"level-{i % 53}", "train", i)
    return TaskStart(task, observation, f"win level {i}", ACTIONS)


def make_trajectory(i: int, rng: random.Random) -> Trajectory:
    steps = tuple(
        Step(rng.choice(ACTIONS), f"observation {i}.{s}", 0.0, False)
        for s in range(rng.randint(2, 12))
    )
    success = rng.random() < 0.4
    return Trajectory(make_start(i, rng), steps, 1.0 if success else 0.0, success)


async def measure(name: str, sizes: Sequence[int], retrieves: int) -> list[list[Any]]:
    loaded = load_baseline(name, REPO)
    llm = TimedLLM()
    ctx = DesignContext(llm=llm, rng=random.Random(0), scratch_dir=Path("."), seed=0)
    design = loaded.cls(ctx)
    rng = random.Random(0)
    rows = []
    stored = 0
    for size in sizes:
        batch = [make_trajectory(i, rng) for i in range(stored, size)]
        queries = [make_start(10**6 + j, rng) for j in range(retrieves)]
        # Precompute every text a baseline is likely to embed (task starts in both forms).
        from pytest_alma.memory import task_text

        llm.precompute([task_text(t.start) for t in batch] + [task_text(q) for q in queries])
        llm.precompute([t.start.observation for t in batch] + [q.observation for q in queries])
        llm.spent = 0.0
        started = time.perf_counter()
        for trajectory in batch:
            await design.general_update(trajectory)
        update_s = (time.perf_counter() - started - llm.spent) / max(1, len(batch))
        stored = size
        times = []
        chats_before, embeds_before = llm.chats, llm.embeds
        for query in queries:
            llm.spent = 0.0
            started = time.perf_counter()
            await design.general_retrieve(query)
            times.append(time.perf_counter() - started - llm.spent)
        per_chat = (llm.chats - chats_before) / retrieves
        per_embed = (llm.embeds - embeds_before) / retrieves
        ordered = sorted(times)
        rows.append(
            [
                name,
                size,
                f"{update_s * 1000:.2f}",
                f"{statistics.median(ordered) * 1000:.2f}",
                f"{ordered[int(0.9 * (len(ordered) - 1))] * 1000:.2f}",
                f"{per_chat:g} chat, {per_embed:g} embed",
            ]
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--baselines", nargs="+", default=list(BASELINES))
    parser.add_argument("--retrieves", type=int, default=50)
    args = parser.parse_args()
    rows: list[list[Any]] = []
    for name in args.baselines:
        rows += asyncio.run(measure(name, sorted(args.sizes), args.retrieves))
    print(
        "LLM and embedding time excluded (scripted TEST DOUBLE in-process, embeddings precomputed)"
    )
    print(
        tabulate(
            rows,
            headers=[
                "baseline",
                "stored",
                "update ms (mean)",
                "retrieve ms (median)",
                "retrieve ms (p90)",
                "calls per retrieve",
            ],
        )
    )
    print("targets at 10,000: trajectory_retrieval, reasoning_bank < 5 ms; g_memory < 50 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
