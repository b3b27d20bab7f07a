"""Usage counters: recording, merging and the JSON round trip."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pytest_alma.llm.accounting import Accounting, TokenUsage, UsageCounters, UsageKey

CHAT_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 40,
    "total_tokens": 140,
    "prompt_tokens_details": {"cached_tokens": 10},
    "completion_tokens_details": {"reasoning_tokens": 16},
}


def test_token_usage_from_openai_and_add() -> None:
    usage = TokenUsage.from_openai(CHAT_USAGE)
    assert usage == TokenUsage(prompt=100, completion=40, reasoning=16, total=140, cached_prompt=10)
    assert usage + usage == TokenUsage(200, 80, 32, 280, 20)
    assert TokenUsage.from_openai(None) == TokenUsage()
    # The round trip through an OpenAI usage object keeps the cached and reasoning tokens.
    assert TokenUsage.from_openai(usage.to_openai()) == usage


def test_record_call_and_error() -> None:
    acc = Accounting()
    key = UsageKey("gpt-4o-mini", "agent", "designA")
    acc.record_call(key, CHAT_USAGE, embedding=False, cost_usd=0.5, cached=False, retries=2)
    acc.record_call(key, CHAT_USAGE, embedding=False, cost_usd=0.5, cached=True)
    acc.record_call(
        UsageKey("text-embedding-3-small", "design.retrieve"),
        {"prompt_tokens": 7, "total_tokens": 7},
        embedding=True,
        cost_usd=None,
        cached=False,
        test_double=True,
    )
    acc.record_error(key, retries=3, at_risk_usd=0.25)
    entry = acc.entries[key]
    assert (entry.calls, entry.cache_hits, entry.errors, entry.retries) == (2, 1, 1, 5)
    assert entry.prompt_tokens == 200 and entry.cached_prompt_tokens == 20
    assert entry.reasoning_tokens == 32 and entry.completion_tokens == 80
    assert entry.cost_usd == 0.5 and entry.saved_usd == 0.5  # a hit is saved, not spent
    totals = acc.totals()
    assert totals.embedding_tokens == 7 and totals.unknown_cost_calls == 1
    assert totals.test_double_calls == 1
    assert acc.spent_usd() == 0.5
    # What failed attempts may have cost is at risk: charged against the budget, never spent.
    assert entry.at_risk_usd == 0.25 and acc.charged_usd() == 0.75


counters = st.builds(
    UsageCounters,
    calls=st.integers(0, 10**6),
    cache_hits=st.integers(0, 10**6),
    errors=st.integers(0, 100),
    prompt_tokens=st.integers(0, 10**9),
    completion_tokens=st.integers(0, 10**9),
    embedding_tokens=st.integers(0, 10**9),
    cost_usd=st.floats(0, 1e3, allow_nan=False),
    at_risk_usd=st.floats(0, 1e3, allow_nan=False),
    unknown_cost_calls=st.integers(0, 100),
)
keys = st.builds(UsageKey, st.sampled_from(["gpt-5", "scripted"]), st.sampled_from(["", "agent"]))
accountings = st.dictionaries(keys, counters, max_size=4).map(lambda e: Accounting(entries=e))


@given(accountings)
def test_json_round_trip(acc: Accounting) -> None:
    text = json.dumps(acc.to_json())
    assert Accounting.from_json(json.loads(text)) == acc


@given(accountings, accountings)
def test_merge_is_a_sum(a: Accounting, b: Accounting) -> None:
    merged = a + b
    total_a, total_b, total = a.totals(), b.totals(), merged.totals()
    assert total.calls == total_a.calls + total_b.calls
    assert total.prompt_tokens == total_a.prompt_tokens + total_b.prompt_tokens
    assert (
        total.cost_usd == total_a.cost_usd + total_b.cost_usd
        or abs(total.cost_usd - (total_a.cost_usd + total_b.cost_usd)) < 1e-6
    )
    assert set(merged.entries) == set(a.entries) | set(b.entries)
