"""LLMClient: request parameters, replies, usage log, errors and event loops."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from pytest_alma.llm.accounting import TokenUsage
from pytest_alma.llm.client import LLMClient
from pytest_alma.llm.embedding import cosine
from pytest_alma.llm.errors import LLMError, LLMUnavailableError
from pytest_alma.llm.gateway import Gateway
from pytest_alma.llm.scripted import ScriptedServer
from pytest_alma.llm.scripted_policies import Message

# The `stack` fixture (tests/llm/conftest.py): builds a scripted model and a gateway.
Stack = Callable[..., tuple[ScriptedServer, Gateway]]


class EchoParams:
    """Answers with the request body minus the messages, so tests can see what was sent."""

    def matches(self, messages: Sequence[Message]) -> bool:
        return True

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        return json.dumps(dict(params), sort_keys=True)


def sent_params(stack: Stack, model: str, **chat_options: Any) -> dict[str, Any]:
    with ScriptedServer(policies=[EchoParams()]) as server:
        _, gateway = stack(server=server, cache_mode="off")
        client = LLMClient(gateway.url, gateway.token, model, seed=7, temperature=0.2)
        reply = asyncio.run(client.chat([{"role": "user", "content": "hi"}], **chat_options))
        params: dict[str, Any] = json.loads(reply.text)
        return params


def test_parameters_sent(stack: Stack) -> None:
    params = sent_params(stack, "gpt-5-nano/low", max_tokens=50, temperature=1.0)
    assert params["model"] == "gpt-5-nano" and params["reasoning_effort"] == "low"
    assert params["seed"] == 7 and params["temperature"] == 1.0
    assert params["max_completion_tokens"] == 50 and "max_tokens" not in params
    params = sent_params(stack, "gpt-4o-mini", max_tokens=50, response_format={"type": "text"})
    assert params["max_tokens"] == 50 and params["temperature"] == 0.2
    assert "reasoning_effort" not in params and params["response_format"] == {"type": "text"}


def test_chat_reply_and_usage_log(stack: Stack) -> None:
    _, gateway = stack()
    client = LLMClient(gateway.url, gateway.token, "gpt-5-mini/medium", scope="d1")

    async def episode() -> tuple[Any, Any]:
        async with client:
            first = await client.chat([{"role": "user", "content": "x" * 40}])
            second = await client.chat([{"role": "user", "content": "x" * 40}])
            return first, second

    first, second = asyncio.run(episode())
    assert first.model == "gpt-5-mini" and not first.cached and second.cached
    assert first.usage == TokenUsage(
        prompt=10,
        completion=first.usage.completion,
        reasoning=64,
        total=10 + first.usage.completion,
    )
    log = client.take_usage()
    assert log.calls == 2 and log.cached_calls == 1 and log.tokens == first.usage + second.usage
    assert [r.kind for r in log.records] == ["chat", "chat"]
    assert client.take_usage().calls == 0  # reset


def test_json_mode(stack: Stack) -> None:
    _, gateway = stack()
    client = LLMClient(gateway.url, gateway.token, "gpt-4o-mini")
    reply = asyncio.run(
        client.chat(
            [{"role": "user", "content": "list insights"}], response_format={"type": "json_object"}
        )
    )
    assert isinstance(json.loads(reply.text), dict)


def test_embed(stack: Stack) -> None:
    _, gateway = stack()
    client = LLMClient(
        gateway.url, gateway.token, "scripted", embedding_model="text-embedding-3-small"
    )

    async def run() -> list[list[float]]:
        assert await client.embed([]) == []
        return await client.embed(["move left to the door", "move left to the door", "buy stocks"])

    a, b, c = asyncio.run(run())
    assert a == b and len(a) == 256 and cosine(a, b) == pytest.approx(1.0)
    assert cosine(a, c) < 0.5
    log = client.take_usage()
    assert log.calls == 1 and log.embedding_tokens > 0 and log.tokens == TokenUsage()


def test_one_client_many_loops_and_threads(stack: Stack) -> None:
    _, gateway = stack()
    client = LLMClient(gateway.url, gateway.token, "scripted")
    messages = [{"role": "user", "content": "hello"}]
    texts = [asyncio.run(client.chat(messages)).text for _ in range(3)]  # a new loop each time
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(client.chat(messages)).text))
    thread.start()
    thread.join()
    assert len(set(texts + result)) == 1 and client.take_usage().calls == 4


def test_gateway_gone_is_unavailable(stack: Stack) -> None:
    _, gateway = stack()
    url, token = gateway.url, gateway.token
    gateway.stop()
    client = LLMClient(url, token, "scripted", timeout_s=2)
    with pytest.raises(LLMUnavailableError, match="cannot reach the LLM gateway"):
        asyncio.run(client.chat([{"role": "user", "content": "x"}]))


def test_client_timeout_is_unavailable(stack: Stack) -> None:
    _, gateway = stack(faults="timeout:1,hang=10", max_retries=0, timeout_s=5)
    client = LLMClient(gateway.url, gateway.token, "scripted", timeout_s=0.3)
    with pytest.raises(LLMUnavailableError, match="did not answer within 0.3s"):
        asyncio.run(client.chat([{"role": "user", "content": "x"}]))


def test_errors_share_a_base_class() -> None:
    from pytest_alma.llm.errors import BudgetExceededError, CacheMissError

    for error in (BudgetExceededError, CacheMissError, LLMUnavailableError):
        assert issubclass(error, LLMError)
