"""The gateway and the scripted model as a session runs them: each in a child process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.gateway_process import GatewayProcess
from pytest_alma.llm.scripted_process import ScriptedServerProcess


def test_a_call_through_both_child_processes_is_accounted(
    tmp_path: Path, make_gateway_process: Callable[..., GatewayProcess]
) -> None:
    scripted = ScriptedServerProcess().start()
    gateway = make_gateway_process(
        scripted.base_url, "scripted-test-double", max_concurrency=4, max_retries=1
    ).start()
    try:

        async def ask() -> str:
            async with LLMClient(gateway.url, gateway.token, "scripted") as client:
                reply = await client.chat([{"role": "user", "content": "hello"}])
                return reply.text

        assert asyncio.run(ask())
        totals = gateway.accounting().totals()
        assert totals.calls == 1 and totals.cache_hits == 0
        assert (tmp_path / "cache.sqlite").exists()
    finally:
        gateway.stop()
        scripted.stop()
    gateway.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = scripted.base_url


def test_a_child_that_cannot_start_says_why(
    make_gateway_process: Callable[..., GatewayProcess],
) -> None:
    gateway = make_gateway_process(
        None, None, cache_mode="nonsense", max_concurrency=1, timeout_s=1
    )
    with pytest.raises(RuntimeError, match=r"(?s)LLM gateway process failed to start.*nonsense"):
        gateway.start()


def test_a_bad_fault_plan_is_refused_before_the_child_starts() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        ScriptedServerProcess(faults="boom@1")
