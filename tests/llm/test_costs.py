"""Costs are money spent, priced alike in workers and the gateway: cached input at the cached
rate, cache hits spending nothing (their cost is saved), --alma-prices used by both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import openai
import pytest

from pytest_alma.llm.client import LLMClient, UsageLog
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.records import TokenCount
from pytest_alma.runner import Harness

Stack = Callable[..., tuple[ScriptedServer, Gateway]]
SYSTEM = {"role": "system", "content": "You play a game. " * 40}
TURN_1 = [SYSTEM, {"role": "user", "content": "Observation: a room."}]
TURN_2 = [*TURN_1, {"role": "assistant", "content": "go north"}, {"role": "user", "content": "ok"}]


def worker_count(log: UsageLog, prices: PriceTable) -> TokenCount:
    """What a worker's harness reports for a usage log (Harness._usage_of, priced by ``prices``)."""
    return Harness._usage_of(SimpleNamespace(prices=prices), log)  # type: ignore[arg-type]


def test_the_double_reports_cached_and_reasoning_tokens() -> None:
    with ScriptedServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        first = client.chat.completions.create(model="scripted", messages=TURN_1)  # type: ignore[arg-type]
        second = client.chat.completions.create(
            model="scripted",
            messages=TURN_2,  # type: ignore[arg-type]
            reasoning_effort="medium",
        )
    assert first.usage and second.usage
    assert first.usage.prompt_tokens_details and second.usage.prompt_tokens_details
    assert second.usage.completion_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0  # a first turn: nothing cached
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached == -(-len(SYSTEM["content"]) // 4)  # the repeated system prefix
    assert 0 < cached < second.usage.prompt_tokens
    assert second.usage.completion_tokens_details.reasoning_tokens == 64


def test_workers_and_gateway_price_alike(stack: Stack) -> None:
    # A price the built-in table lacks, given as --alma-prices would give it to both.
    prices = PriceTable.default().with_overrides(
        {"lab-model": {"input": 2.0, "cached_input": 0.5, "output": 8.0}}
    )
    _, gateway = stack(prices=prices)
    client = LLMClient(gateway.url, gateway.token, "lab-model")

    async def episode() -> None:
        async with client:
            await client.chat(TURN_1)
            await client.chat(TURN_2)  # cached prompt tokens: billed at the cached rate
            await client.chat(TURN_2)  # a response-cache hit: spends nothing

    asyncio.run(episode())
    log = client.take_usage()
    counted = worker_count(log, prices)
    totals = gateway.accounting().totals()
    assert counted.cached_prompt_tokens == totals.cached_prompt_tokens > 0
    assert counted.cost_usd == pytest.approx(totals.cost_usd)
    assert counted.saved_usd == pytest.approx(totals.saved_usd) and totals.saved_usd > 0
    # Full input rate for every prompt token would cost more: the cached rate was applied.
    full = sum(
        prices.cost("lab-model", {**r.usage.to_openai(), "prompt_tokens_details": {}}) or 0.0
        for r in log.records
        if not r.cached
    )
    assert counted.cost_usd is not None and counted.cost_usd < full
    # Without the override the worker would not know the price at all.
    assert worker_count(log, PriceTable.default()).cost_usd is None


def test_a_dated_reply_is_priced_by_the_requested_model(stack: Stack) -> None:
    """OpenAI answers an alias with a dated snapshot name; the alias is what was billed."""

    _, gateway = stack()
    client = LLMClient(gateway.url, gateway.token, "gpt-4o-mini")
    reply = asyncio.run(client.chat(TURN_1))
    assert reply.requested_model == "gpt-4o-mini"
    record = client.take_usage().records[0]
    renamed = UsageLog(
        tokens=record.usage,
        embedding_tokens=0,
        calls=1,
        cached_calls=0,
        records=(
            type(record)(**{**record.__dict__, "model": "gpt-4o-mini-2099-01-01"}),  # as served
        ),
    )
    assert worker_count(renamed, PriceTable.default()).cost_usd == pytest.approx(
        gateway.accounting().totals().cost_usd
    )


def test_token_count_round_trip_and_old_records() -> None:
    count = TokenCount(
        calls=2, prompt_tokens=10, cached_prompt_tokens=4, cost_usd=0.5, saved_usd=0.25
    )
    assert TokenCount.from_json(count.to_json()) == count
    assert (count + count).saved_usd == 0.5 and (count + count).cached_prompt_tokens == 8
    assert (count + TokenCount(saved_usd=None)).saved_usd is None  # unknown stays unknown
    old: dict[str, Any] = {"calls": 1, "prompt_tokens": 3, "cost_usd": 0.1}
    assert TokenCount.from_json(old) == TokenCount(calls=1, prompt_tokens=3, cost_usd=0.1)
