"""One long-lived event loop per process, for running the harness's coroutines from sync code.

pytest items are synchronous, while the agent, the designs and the LLM client are async. The
``openai`` client (through httpx) binds to the loop it first runs on, so every coroutine of the
harness in one process runs on the same loop, kept by an :class:`asyncio.Runner` that lives as
long as the process (or until :func:`close`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_runner: asyncio.Runner | None = None
_lock = threading.Lock()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's where it is installed, asyncio's default otherwise.

    Every loop of the harness (the workers' runner, the gateway, the scripted model) comes from
    here; with 16 workers on 2 cores, the loops' CPU per LLM call decides the parallel efficiency.
    """
    try:  # uvloop: a libuv event loop, cheaper per socket operation than asyncio's own
        import uvloop
    except ImportError:  # not available on Windows; asyncio's loop works the same, only slower
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this process's harness loop."""
    global _runner
    with _lock:
        if _runner is None:
            _runner = asyncio.Runner(loop_factory=new_event_loop)
        runner = _runner
    return runner.run(coro)


def close() -> None:
    """Close the loop (at session end); a later :func:`run` starts a new one."""
    global _runner
    with _lock:
        if _runner is not None:
            _runner.close()
            _runner = None
