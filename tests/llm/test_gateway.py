"""The gateway through the real openai SDK and LLMClient: faults, retries, cache, budget, auth."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from pytest_alma.llm.client import LLMClient, UsageLog
from pytest_alma.llm.errors import BudgetExceededError, CacheMissError, LLMUnavailableError
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.scripted import ScriptedServer

USER = [{"role": "user", "content": "Describe the level in one sentence."}]

# The `stack` fixture (tests/llm/conftest.py): builds a scripted model and a gateway.
Stack = Callable[..., tuple[ScriptedServer, Gateway]]


def chat(gateway: Gateway, messages: Any = USER, model: str = "scripted", **kw: Any) -> Any:
    async def run() -> Any:
        async with LLMClient(gateway.url, gateway.token, model, **kw) as client:
            return await client.chat(messages)

    return asyncio.run(run())


def sdk(gateway: Gateway, **options: Any) -> openai.OpenAI:
    # The SDK default of 2 retries is kept on purpose: the gateway's 424 must not be retried.
    return openai.OpenAI(base_url=gateway.url, api_key=gateway.token, **options)


def cached_bodies(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT body FROM responses")]


def test_gateway_is_openai_compatible(stack: Stack) -> None:
    _, gateway = stack()
    assert gateway.url.startswith("http://127.0.0.1:")
    raw = sdk(gateway).chat.completions.with_raw_response.create(model="scripted", messages=USER)
    assert raw.headers["x-alma-cache"] == "miss"
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.usage is not None
    embeddings = sdk(gateway).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(embeddings.data) == 2 and len(embeddings.data[0].embedding) == 256


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "malformed"])
def test_transient_fault_is_retried_and_never_cached(
    stack: Stack, tmp_path: Path, kind: str
) -> None:
    server, gateway = stack(faults=f"{kind}@1,hang=10", timeout_s=0.3)
    reply = chat(gateway)
    assert reply.text.startswith("Scripted reply") and not reply.cached
    assert server.stats().total == 2  # one failed attempt + one success, for one client call
    assert server.stats().faults == {kind: 1}
    totals = gateway.accounting().totals()
    assert (totals.calls, totals.errors, totals.retries) == (1, 0, 1)
    gateway.flush_cache()  # replies are stored in the background
    bodies = cached_bodies(tmp_path / "cache.sqlite")
    assert len(bodies) == 1 and bodies[0]["choices"][0]["message"]["content"] == reply.text
    again = chat(gateway)
    assert again.cached and again.text == reply.text and server.stats().total == 2


def test_every_fault_kind_in_one_call(stack: Stack) -> None:
    server, gateway = stack(faults="429@1,500@2,timeout@3,malformed@4,hang=10", timeout_s=0.3)
    assert chat(gateway).text
    assert server.stats().total == 5 and gateway.accounting().totals().retries == 4


def test_slow_reply_completes_without_retry(stack: Stack) -> None:
    server, gateway = stack(faults="slow@1,slow=0.2", timeout_s=1.0)
    start = time.perf_counter()
    assert chat(gateway).text
    assert time.perf_counter() - start >= 0.2 and server.stats().total == 1


def test_slower_than_the_timeout_is_retried(stack: Stack) -> None:
    server, gateway = stack(faults="slow@1,slow=2", timeout_s=0.3)
    assert chat(gateway).text and server.stats().total == 2


def test_embedding_faults_are_retried(stack: Stack) -> None:
    server, gateway = stack(faults="500@1,malformed@2")
    client = LLMClient(gateway.url, gateway.token, "scripted")
    vectors = asyncio.run(client.embed(["x"]))
    assert len(vectors) == 1 and server.stats().total == 3


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ("500:1", "HTTP 500"),
        ("429:1", "HTTP 429"),
        ("malformed:1", "malformed body"),
        ("timeout:1,hang=10", "did not answer within 0.3s"),
    ],
)
def test_fault_that_never_clears(stack: Stack, tmp_path: Path, faults: str, message: str) -> None:
    server, gateway = stack(faults=faults, max_retries=2, timeout_s=0.3)
    with pytest.raises(LLMUnavailableError, match=message):
        chat(gateway)
    assert server.stats().total == 3  # max_retries + 1 attempts, no more
    totals = gateway.accounting().totals()
    assert (totals.calls, totals.errors) == (0, 1)
    gateway.flush_cache()
    assert cached_bodies(tmp_path / "cache.sqlite") == []
    # A raw SDK client sees 424, which it does not retry: still one upstream round only.
    server.reset_stats()
    with pytest.raises(openai.APIStatusError) as info:
        sdk(gateway).chat.completions.create(model="scripted", messages=USER)
    assert info.value.status_code == 424 and server.stats().total == 3


def test_second_identical_call_is_a_hit(stack: Stack) -> None:
    server, gateway = stack()
    first = sdk(gateway).chat.completions.with_raw_response.create(model="scripted", messages=USER)
    second = sdk(gateway).chat.completions.with_raw_response.create(model="scripted", messages=USER)
    assert first.headers["x-alma-cache"] == "miss" and second.headers["x-alma-cache"] == "hit"
    assert second.http_response.content == first.http_response.content
    assert server.stats().total == 1
    different = sdk(gateway).chat.completions.with_raw_response.create(
        model="scripted", messages=USER, seed=5
    )
    assert different.headers["x-alma-cache"] == "miss" and server.stats().total == 2
    assert gateway.flush_cache() and gateway.cache.stats().stores == 2


def test_cache_modes(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "modes.sqlite"
    scripted, rw = stack(cache_path=path, cache_mode="rw")
    assert not chat(rw).cached and chat(rw).cached
    assert scripted.stats().total == 1 and rw.flush_cache()

    _, ro = stack(cache_path=path, cache_mode="ro", server=scripted)
    assert chat(ro).cached  # hit served
    new = [{"role": "user", "content": "a question nobody asked before"}]
    assert not chat(ro, new).cached and not chat(ro, new).cached  # misses go up, not stored
    assert scripted.stats().total == 3 and ro.cache.stats().stores == 0

    _, replay = stack(cache_path=path, cache_mode="replay", server=scripted)
    assert chat(replay).cached
    with pytest.raises(CacheMissError, match="replay-only mode"):
        chat(replay, new)
    assert scripted.stats().total == 3  # replay never calls the model

    _, off = stack(cache_path=tmp_path / "off.sqlite", cache_mode="off", server=scripted)
    raw = sdk(off).chat.completions.with_raw_response.create(model="scripted", messages=USER)
    assert raw.headers["x-alma-cache"] == "off"
    sdk(off).chat.completions.create(model="scripted", messages=USER)
    assert scripted.stats().total == 5 and not (tmp_path / "off.sqlite").exists()


def test_budget_stops_new_calls(stack: Stack) -> None:
    _, gateway = stack(budget_usd=0.01)
    prompts = [[{"role": "user", "content": f"{i} " + "x" * 800}] for i in range(40)]
    answered = []
    with pytest.raises(BudgetExceededError, match=r"budget of \$0\.0100.*--alma-budget-usd"):
        for prompt in prompts:  # each reserves its worst case (~$0.0023); real cost ~$0.0006
            answered.append(chat(gateway, prompt, model="gpt-4o", max_tokens=16))
    assert len(answered) >= 2
    # Cached replies cost nothing and are still served.
    assert chat(gateway, prompts[0], model="gpt-4o", max_tokens=16).text == answered[0].text
    with pytest.raises(openai.APIStatusError) as info:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=prompts[-1], max_tokens=16)
    assert info.value.status_code == 402
    totals = gateway.accounting().totals()
    assert totals.calls == len(answered) + 1 and totals.errors == 2
    assert 0 < totals.cost_usd <= 0.01 and totals.saved_usd > 0


def test_unknown_price_is_reported_as_unknown_without_a_budget(stack: Stack) -> None:
    _, gateway = stack()
    chat(gateway, model="my-local-model")
    chat(gateway, [{"role": "user", "content": "more"}], model="my-local-model")
    totals = gateway.accounting().totals()
    assert totals.unknown_cost_calls == 2 and totals.cost_usd == 0.0
    entry = gateway.stats()["accounting"]["entries"][0]
    assert entry["model"] == "my-local-model" and entry["unknown_cost_calls"] == 2


def test_scripted_replies_are_flagged_as_test_double(stack: Stack) -> None:
    _, gateway = stack()
    chat(gateway, model="gpt-4o-mini")
    chat(gateway, model="gpt-4o-mini")  # a cache hit keeps the flag
    totals = gateway.accounting().totals()
    assert totals.test_double_calls == 2 and totals.cost_usd > 0


def test_token_is_required(stack: Stack) -> None:
    server, gateway = stack()
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key="wrong", max_retries=0).chat.completions.create(
            model="scripted", messages=USER
        )
    client = LLMClient(gateway.url, "wrong", "scripted")
    with pytest.raises(LLMUnavailableError, match="401"):
        asyncio.run(client.chat(USER))
    assert server.stats().total == 0


def test_stats_endpoint(stack: Stack) -> None:
    _, gateway = stack()
    chat(gateway)
    client = sdk(gateway)
    stats = client.get("/../alma/stats", cast_to=dict)
    assert stats["accounting"]["totals"]["calls"] == 1 and stats["cache"]["mode"] == "rw"
    anonymous = openai.OpenAI(base_url=gateway.url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.get("/../alma/stats", cast_to=dict)


def test_tags_and_scopes_key_the_accounting(stack: Stack) -> None:
    _, gateway = stack()
    client = LLMClient(gateway.url, gateway.token, "scripted", tag="agent", scope="designA")

    async def calls() -> None:
        await client.chat(USER)
        await client.chat([{"role": "user", "content": "update"}], tag="design.update")
        await client.embed(["x"], tag="design.retrieve")

    asyncio.run(calls())
    keys = {(e["tag"], e["scope"]) for e in gateway.stats()["accounting"]["entries"]}
    assert keys == {
        ("agent", "designA"),
        ("design.update", "designA"),
        ("design.retrieve", "designA"),
    }


def test_concurrent_clients_add_up(stack: Stack) -> None:
    _, gateway = stack(max_concurrency=3, cache_mode="off")
    logs: list[UsageLog] = []

    def worker(n: int) -> None:
        client = LLMClient(gateway.url, gateway.token, "gpt-5-nano/low", tag=f"w{n}")

        async def run() -> None:
            replies = await asyncio.gather(
                *(
                    client.chat([{"role": "user", "content": f"w{n} q{i} " * (i + 1)}])
                    for i in range(8)
                )
            )
            assert all(r.usage.reasoning == 16 for r in replies)
            await client.embed([f"text {n} {i}" for i in range(3)])

        asyncio.run(run())
        logs.append(client.take_usage())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(logs) == 4
    totals = gateway.accounting().totals()
    assert totals.calls == sum(log.calls for log in logs) == 36
    assert totals.prompt_tokens == sum(log.tokens.prompt for log in logs)
    assert totals.completion_tokens == sum(log.tokens.completion for log in logs)
    assert totals.reasoning_tokens == sum(log.tokens.reasoning for log in logs) == 32 * 16
    assert totals.embedding_tokens == sum(log.embedding_tokens for log in logs)
    assert totals.cost_usd > 0


def test_missing_upstream_key_is_a_clear_error(tmp_path: Path, scripted: ScriptedServer) -> None:
    from pytest_alma.llm.cache import ResponseCache

    gateway = Gateway(
        upstream_base_url=scripted.base_url,
        upstream_api_key=None,
        cache=ResponseCache(tmp_path / "c.sqlite", "off"),
    )
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        gateway.start()


def test_a_client_reading_the_cache_and_the_gateway_agree_on_keys(
    stack: Stack, tmp_path: Path
) -> None:
    from pytest_alma.llm.cache import ResponseCache, cache_key

    scripted, gateway = stack()
    local = ResponseCache(tmp_path / "cache.sqlite", "ro")

    async def run() -> tuple[Any, Any]:
        async with LLMClient(gateway.url, gateway.token, "scripted", cache=local) as client:
            return await client.chat(USER), await client.chat(USER)

    first, second = asyncio.run(run())
    assert not first.cached and second.cached and scripted.stats().total == 1
    # The gateway stored the reply under the key it computed, which the client's lookup used.
    body = {"model": "scripted", "messages": USER}
    assert gateway.flush_cache() and gateway.cache.get(cache_key("chat/completions", body))


def test_a_forged_cache_key_cannot_poison_the_cache(stack: Stack, tmp_path: Path) -> None:
    """A client that names another request's cache key gets its own reply stored under its own
    key: a later, different request is never answered with it (from the gateway or straight
    from the cache file, as workers read it)."""
    from pytest_alma.llm.cache import ResponseCache, cache_key

    scripted, gateway = stack()
    victim = [{"role": "user", "content": "Which way is the flag?"}]
    victim_key = cache_key("chat/completions", {"model": "scripted", "messages": victim})
    attacker = sdk(gateway, max_retries=0)
    forged = attacker.chat.completions.with_raw_response.create(
        model="scripted",
        messages=[{"role": "user", "content": "Say that the flag is to the west."}],
        extra_headers={"x-alma-cache-key": victim_key},
    )
    poison = forged.parse().choices[0].message.content
    assert gateway.flush_cache() and gateway.cache.get(victim_key) is None

    worker_view = ResponseCache(tmp_path / "cache.sqlite", "ro")

    async def ask() -> Any:
        async with LLMClient(gateway.url, gateway.token, "scripted", cache=worker_view) as client:
            return await client.chat(victim)

    reply = asyncio.run(ask())
    assert not reply.cached and reply.text != poison and reply.text.endswith(victim[0]["content"])
    assert scripted.stats().total == 2
    assert gateway.flush_cache() and asyncio.run(ask()).text == reply.text


def test_a_forged_key_changes_nothing_in_replay(stack: Stack, tmp_path: Path) -> None:
    _, gateway = stack()
    sdk(gateway).chat.completions.create(model="scripted", messages=USER)
    gateway.flush_cache()
    _, replay = stack(cache_path=tmp_path / "cache.sqlite", cache_mode="replay")
    from pytest_alma.llm.cache import cache_key

    stored = cache_key("chat/completions", {"model": "scripted", "messages": USER})
    with pytest.raises(openai.APIStatusError) as err:
        sdk(replay, max_retries=0).chat.completions.create(
            model="scripted",
            messages=[{"role": "user", "content": "never asked"}],
            extra_headers={"x-alma-cache-key": stored},  # names a stored reply: still a miss
        )
    assert err.value.status_code == 424 and "replay-only" in err.value.message
