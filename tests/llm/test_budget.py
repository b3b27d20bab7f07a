"""The budget is a cap: worst cases reserved before sending, unknown prices refused, failed
attempts charged. Run against the gateway and the scripted model on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from pytest_alma.llm.budget import UNCAPPED_COMPLETION_TOKENS, Budget, worst_case_tokens
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.errors import BudgetExceededError, UnknownPriceError
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.scripted import ScriptedServer

Stack = Callable[..., tuple[ScriptedServer, Gateway]]
TABLE = PriceTable.default()


def body_bytes(model: str, content: str, max_tokens: int) -> int:
    """The size of the body LLMClient sends for one user message (what the gateway bounds)."""
    params = {"model": model, "messages": [{"role": "user", "content": content}]}
    params["max_tokens"] = max_tokens
    return len(json.dumps(params, ensure_ascii=False).encode("utf-8"))


def test_worst_case_tokens_bound_prompt_and_completion() -> None:
    raw = b'{"model": "m", "messages": []}'
    assert worst_case_tokens("chat/completions", {"max_tokens": 50}, raw) == (len(raw), 50)
    assert worst_case_tokens("chat/completions", {"max_completion_tokens": 9, "n": 3}, raw) == (
        len(raw),
        27,
    )
    assert worst_case_tokens("chat/completions", {}, raw)[1] == UNCAPPED_COMPLETION_TOKENS
    assert worst_case_tokens("embeddings", {"max_tokens": 50}, raw) == (len(raw), 0)


def test_reservations_add_up_and_release() -> None:
    charged = [0.0]
    budget = Budget(1.0, lambda: charged[0])
    assert budget.try_reserve(0.6) and not budget.try_reserve(0.5) and budget.try_reserve(0.4)
    charged[0] = 0.2  # the first call settled at 0.2: its cost is recorded, then released
    budget.release(0.6)
    assert budget.reserved_usd == pytest.approx(0.4) and budget.try_reserve(0.4)

    async def alone() -> bool:
        nothing_in_flight = Budget(1.0, lambda: 0.9)
        return await nothing_in_flight.reserve(0.2)

    assert asyncio.run(alone()) is False  # does not fit with nothing in flight: refused


def test_sixteen_concurrent_clients_overshoot_at_most_one_reserved_call(stack: Stack) -> None:
    """16 clients call at once until refused. A check-then-send budget lets every call in
    flight pass the same check (up to 16 calls over); reservations keep the spend within the
    budget, and a refusal leaves less than one worst case unspent."""
    budget_usd = 0.02
    # Latency keeps 16 calls in flight together; no assertion depends on timing.
    _, gateway = stack(budget_usd=budget_usd, cache_mode="off", max_concurrency=16, latency_s=0.05)
    model, max_tokens = "gpt-4o", 64
    worst_cases: list[float] = []
    refusals: list[str] = []

    async def client_loop(n: int) -> int:
        answered = 0
        async with LLMClient(gateway.url, gateway.token, model, max_tokens=max_tokens) as client:
            for i in range(1000):
                content = f"client {n} call {i}: " + "describe the level " * 8
                size = body_bytes(model, content, max_tokens)
                worst = TABLE.worst_case(model, size, max_tokens)
                assert worst is not None
                worst_cases.append(worst)
                try:
                    await client.chat([{"role": "user", "content": content}])
                except BudgetExceededError as err:
                    refusals.append(str(err))
                    return answered
                answered += 1
        raise AssertionError("the budget never ran out")

    async def run() -> list[int]:
        return await asyncio.gather(*(client_loop(n) for n in range(16)))

    answered = asyncio.run(run())
    assert len(refusals) == 16 and sum(answered) > 16  # several rounds, then every one refused
    spent = gateway.accounting().totals().cost_usd
    largest = max(worst_cases)
    assert spent - budget_usd <= largest  # the bound: at most one reserved call over
    assert spent <= budget_usd  # in fact none: each call costs less than its worst case
    assert spent > budget_usd - largest  # refused only when one more worst case did not fit
    assert gateway.stats()["reserved_usd"] == 0.0


def test_unknown_price_is_refused_under_a_budget(stack: Stack) -> None:
    server, gateway = stack(budget_usd=5.0)

    async def call() -> Any:
        async with LLMClient(gateway.url, gateway.token, "my-local-model") as client:
            return await client.chat([{"role": "user", "content": "hi"}])

    with pytest.raises(
        UnknownPriceError, match=r"'my-local-model' has no known price.*--alma-prices"
    ):
        asyncio.run(call())
    assert server.stats().total == 0 and gateway.accounting().totals().errors == 1


def test_a_priced_override_is_admitted(stack: Stack) -> None:
    prices = PriceTable.default().with_overrides({"my-local-model": [0.0, 0.0, 0.0]})
    server, gateway = stack(budget_usd=0.0, prices=prices)

    async def call() -> Any:
        async with LLMClient(gateway.url, gateway.token, "my-local-model") as client:
            return await client.chat([{"role": "user", "content": "hi"}])

    assert asyncio.run(call()).text and server.stats().total == 1


@pytest.mark.parametrize(
    ("faults", "attempts_charged", "fails"),
    [
        ("500@1", 1, False),  # one retried attempt, then a reply
        ("timeout@1", 1, False),  # a timed-out attempt may have been billed
        ("500:1.0", 3, True),  # 2 retries and a final 5xx: all three may be billed
        ("429:1.0", 2, True),  # the final 429 was rejected (not billed); the retries may be
    ],
)
def test_retried_and_timed_out_attempts_stay_charged(
    stack: Stack, faults: str, attempts_charged: int, fails: bool
) -> None:
    _, gateway = stack(budget_usd=10.0, faults=faults, max_retries=2)
    model, max_tokens, content = "gpt-4o-mini", 32, "what now?"

    async def call() -> Any:
        async with LLMClient(gateway.url, gateway.token, model, max_tokens=max_tokens) as client:
            return await client.chat([{"role": "user", "content": content}])

    if fails:
        with pytest.raises(Exception, match="upstream"):
            asyncio.run(call())
    else:
        asyncio.run(call())
    worst = TABLE.worst_case(model, body_bytes(model, content, max_tokens), max_tokens)
    assert worst is not None
    totals = gateway.accounting().totals()
    assert totals.at_risk_usd == pytest.approx(worst * attempts_charged)
    stats = gateway.stats()
    assert stats["charged_usd"] == pytest.approx(totals.cost_usd + totals.at_risk_usd)
