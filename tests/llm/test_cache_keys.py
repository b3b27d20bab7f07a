"""The LLM cache key: the upstream and the seed are part of it; identical calls in flight share
one upstream call; errors are never cached."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_alma.llm.cache import ResponseCache, cache_key
from pytest_alma.llm.client import ChatReply, LLMClient
from pytest_alma.llm.errors import LLMUnavailableError
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.scripted_policies import Message
from pytest_alma.session import upstream_fingerprint

Stack = Callable[..., tuple[ScriptedServer, Gateway]]
USER = [{"role": "user", "content": "Which way is the flag?"}]


class Says:
    """A server that always answers ``text`` (so tests can tell servers apart)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def matches(self, messages: Sequence[Message]) -> bool:
        return True

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        return self.text


def ask(gateway: Gateway, *, seed: int | None = None, namespace: str = "", **kw: Any) -> ChatReply:
    async def run() -> ChatReply:
        async with LLMClient(
            gateway.url, gateway.token, "scripted", seed=seed, cache_namespace=namespace, **kw
        ) as client:
            return await client.chat(USER)

    return asyncio.run(run())


def test_the_upstream_is_part_of_the_key(stack: Stack, tmp_path: Path) -> None:
    cache = tmp_path / "shared.sqlite"
    one = ScriptedServer(policies=[Says("from server one")]).start()
    two = ScriptedServer(policies=[Says("from server two")]).start()
    try:
        url_one, url_two = one.base_url, two.base_url
        ns_one, ns_two = upstream_fingerprint(url_one), upstream_fingerprint(url_two)
        assert ns_one and ns_two and ns_one != ns_two
        _, first = stack(server=one, cache_path=cache, cache_namespace=ns_one)
        assert ask(first).text == "from server one"
        first.flush_cache()
        # --alma-base-url now points at another server serving the same model name.
        _, second = stack(server=two, cache_path=cache, cache_namespace=ns_two)
        reply = ask(second)
        assert reply.text == "from server two" and not reply.cached
        # The same upstream (same namespace) still replays from the shared file.
        _, again = stack(server=two, cache_path=cache, cache_namespace=ns_one)
        assert ask(again).text == "from server one"
    finally:
        one.stop()
        two.stop()


def test_a_named_upstream_keeps_its_cache_across_urls() -> None:
    assert upstream_fingerprint("http://a:1/v1", "lab-vllm") == "name:lab-vllm"
    assert upstream_fingerprint("http://b:2/v1", "lab-vllm") == "name:lab-vllm"
    assert upstream_fingerprint("http://a:1/v1") != upstream_fingerprint("http://b:2/v1")
    assert upstream_fingerprint(None) is None  # the provider's default: namespace ""


def test_a_client_reading_the_cache_uses_the_gateways_namespace(
    stack: Stack, tmp_path: Path
) -> None:
    scripted, gateway = stack(cache_namespace="sha256:abc")
    local = ResponseCache(tmp_path / "cache.sqlite", "ro")
    assert not ask(gateway, namespace="sha256:abc", cache=local).cached
    gateway.flush_cache()
    assert ask(gateway, namespace="sha256:abc", cache=local).cached
    assert scripted.stats().total == 1


def test_the_seed_is_part_of_the_key(stack: Stack) -> None:
    body = {"model": "scripted", "messages": USER}
    assert cache_key("chat/completions", {**body, "seed": 1}) != cache_key(
        "chat/completions", {**body, "seed": 2}
    )
    scripted, gateway = stack()
    assert not ask(gateway, seed=1).cached and not ask(gateway, seed=2).cached
    assert ask(gateway, seed=1).cached
    assert scripted.stats().total == 2


def test_identical_calls_in_flight_share_one_upstream_call(stack: Stack) -> None:
    # Latency keeps all eight in flight together; the counts do not depend on timing, since
    # any call that arrives after the first reply is a cache hit anyway.
    scripted, gateway = stack(latency_s=0.2)

    async def run() -> list[ChatReply]:
        clients = [LLMClient(gateway.url, gateway.token, "gpt-4o-mini") for _ in range(8)]
        try:
            return await asyncio.gather(*(c.chat(USER) for c in clients))
        finally:
            for client in clients:
                await client.aclose()

    replies = asyncio.run(run())
    assert scripted.stats().total == 1
    assert len({r.text for r in replies}) == 1 and sum(not r.cached for r in replies) == 1
    totals = gateway.accounting().totals()
    assert totals.calls == 8 and totals.cache_hits == 7
    # One call was paid for; the seven that shared it saved what they would have cost.
    assert totals.saved_usd == pytest.approx(7 * totals.cost_usd) and totals.cost_usd > 0


def test_errors_are_shared_in_flight_but_never_cached(stack: Stack) -> None:
    scripted, gateway = stack(faults="500@1", latency_s=0.2, max_retries=0)

    async def run() -> list[Any]:
        clients = [LLMClient(gateway.url, gateway.token, "scripted") for _ in range(4)]
        try:
            return await asyncio.gather(*(c.chat(USER) for c in clients), return_exceptions=True)
        finally:
            for client in clients:
                await client.aclose()

    outcomes = asyncio.run(run())
    assert all(isinstance(o, LLMUnavailableError) for o in outcomes)
    assert scripted.stats().total == 1 and gateway.accounting().totals().errors == 4
    # The failure was not stored: the next identical call goes upstream and succeeds.
    assert not ask(gateway).cached and scripted.stats().total == 2
