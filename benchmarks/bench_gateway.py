"""Per-call overhead of the LLM gateway, at 0 ms model latency.

Runs N sequential chat calls with the same :class:`LLMClient` three ways, side by side:

1. directly against the scripted model,
2. through the gateway with the cache off (every call goes upstream),
3. through the gateway with every call a cache hit,

and prints median / p90 per call and the gateway's added latency (target: < 2 ms per call).

By default the scripted model and the gateway run in a child process, as in a real session (the
gateway lives in the pytest controller, clients in xdist workers), so that the client does not
share a GIL with them; ``--in-process`` runs everything in this process instead.

    python benchmarks/bench_gateway.py [-n 500] [--history 1] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pytest_alma.llm.cache import CacheMode, ResponseCache
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.scripted import ScriptedServer


def _serve(conn: Connection, cache_dir: str) -> None:
    """Child process: scripted model + two gateways (cache off, cache rw); then wait."""
    with ExitStack() as stack:
        scripted = stack.enter_context(ScriptedServer())
        urls: dict[str, Any] = {"scripted": (scripted.base_url, "x")}
        modes: tuple[tuple[str, CacheMode], ...] = (("off", "off"), ("hit", "rw"))
        for name, mode in modes:
            gateway = stack.enter_context(
                Gateway(
                    upstream_base_url=scripted.base_url,
                    upstream_api_key="scripted",
                    cache=ResponseCache(Path(cache_dir) / "bench.sqlite", mode),
                )
            )
            urls[name] = (gateway.url, gateway.token)
        conn.send(urls)
        # Answer CPU-time queries until told to stop: the servers' CPU per call is the figure that
        # load from other processes does not distort.
        while conn.recv() == "cpu":
            conn.send(time.process_time())


def _messages(history: int, step: int, fixed: bool) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a scripted benchmark agent. " * 20}]
    for turn in range(history - 1):
        messages.append({"role": "user", "content": f"Observation {turn}: " + "x " * 200})
        messages.append({"role": "assistant", "content": "left"})
    # A unique last message defeats the cache where it must; a fixed one makes every call a hit.
    messages.append({"role": "user", "content": "same question" if fixed else f"question {step}"})
    return messages


async def _measure(
    client: LLMClient, n: int, history: int, fixed: bool, offset: int
) -> list[float]:
    for i in range(WARMUP):  # warm-up: connections, and (for hits) the stored entry
        await client.chat(_messages(history, -i - 1, fixed))
    times = []
    for i in range(offset, offset + n):
        start = time.perf_counter()
        await client.chat(_messages(history, i, fixed))
        times.append(time.perf_counter() - start)
    return times


def _summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


SERIES = (
    ("direct to scripted model", "scripted", False),
    ("gateway, cache off", "off", False),
    ("gateway, cache hit", "hit", True),
)
ROUNDS = 10
WARMUP = 5


def main() -> None:
    """Parse options, run the three series interleaved, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", type=int, default=500, help="calls per series (default 500)")
    parser.add_argument("--history", type=int, default=1, help="user turns per chat (default 1)")
    parser.add_argument("--in-process", action="store_true", help="run the servers in this process")
    args = parser.parse_args()
    batch = max(1, args.n // ROUNDS)

    with tempfile.TemporaryDirectory() as cache_dir, ExitStack() as stack:
        parent, child = mp.Pipe()
        if args.in_process:
            # Same code as the child process, on a thread of this process.
            threading.Thread(target=_serve, args=(child, cache_dir), daemon=True).start()
        else:
            proc = mp.get_context("spawn").Process(target=_serve, args=(child, cache_dir))
            proc.start()
            stack.callback(proc.join)
        stack.callback(parent.send, "stop")
        urls = parent.recv()

        times: dict[str, list[float]] = {label: [] for label, _, _ in SERIES}
        server_cpu: dict[str, float] = dict.fromkeys(times, 0.0)

        def cpu() -> float:
            parent.send("cpu")
            value: float = parent.recv()
            return value

        async def run_all() -> None:
            clients = {}
            for _, name, _ in SERIES:
                url, token = urls[name]
                clients[name] = LLMClient(url, token, "scripted", tag="bench")
            # Interleaved rounds, so that load from other processes hits every series alike.
            for r in range(ROUNDS):
                for label, name, fixed in SERIES:
                    before = cpu()
                    times[label] += await _measure(
                        clients[name], batch, args.history, fixed, offset=r * batch
                    )
                    server_cpu[label] += cpu() - before
            for client in clients.values():
                await client.aclose()

        asyncio.run(run_all())

    where = "in one process" if args.in_process else "servers in a child process"
    print(
        f"\n{batch * ROUNDS} sequential chat calls per series, {args.history} user turn(s), {where}"
    )
    print(f"{'series':<28}{'median ms':>10}{'p90 ms':>10}{'added ms':>10}{'server CPU ms':>15}")
    results = {label: _summary(t) for label, t in times.items()}
    base_median, _ = results[SERIES[0][0]]
    for label, (median, p90) in results.items():
        added = "" if label == SERIES[0][0] else f"{median - base_median:+.3f}"
        per_call_cpu = server_cpu[label] / ((batch + WARMUP) * ROUNDS) * 1000
        print(f"{label:<28}{median:>10.3f}{p90:>10.3f}{added:>10}{per_call_cpu:>15.3f}")
    print("added ms: median latency over the direct series (target for 'cache off': < 2 ms)")
    print("server CPU ms: CPU time of the server side per call (scripted model + gateway)")
    if args.in_process:
        print("  (--in-process: that figure also includes this client's CPU)")


if __name__ == "__main__":
    main()
