"""The scripted model through the real openai SDK: shapes, options, faults, latency."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import openai
import pytest

from pytest_alma.llm.embedding import cosine, embed_text
from pytest_alma.llm.faults import FaultPlan
from pytest_alma.llm.scripted import SCRIPTED_FINGERPRINT, ScriptedServer
from pytest_alma.llm.scripted_policies import Message

USER = [{"role": "user", "content": "Summarise the rules of the game in one line."}]


def sdk(server: ScriptedServer, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", **{"max_retries": 0, **options})


def test_base_url_is_loopback(scripted: ScriptedServer) -> None:
    assert scripted.base_url.startswith("http://127.0.0.1:") and scripted.base_url.endswith("/v1")


def test_chat_shape(scripted: ScriptedServer) -> None:
    reply = sdk(scripted).chat.completions.create(model="scripted", messages=USER)
    assert reply.id and isinstance(reply.created, int) and reply.object == "chat.completion"
    assert reply.model == "scripted" and reply.system_fingerprint == SCRIPTED_FINGERPRINT
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and "Summarise" in choice.message.content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == -(-len(USER[0]["content"]) // 4)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    again = sdk(scripted).chat.completions.create(model="scripted", messages=USER)
    assert again.choices[0].message.content == choice.message.content  # deterministic


def test_reasoning_effort_reports_reasoning_tokens(scripted: ScriptedServer) -> None:
    reply = sdk(scripted).chat.completions.create(
        model="gpt-5-nano", messages=USER, reasoning_effort="medium"
    )
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 64
    assert reply.usage.completion_tokens > 64


def test_json_object_mode(scripted: ScriptedServer) -> None:
    reply = sdk(scripted).chat.completions.create(
        model="scripted", messages=USER, response_format={"type": "json_object"}
    )
    data = json.loads(reply.choices[0].message.content or "")
    assert isinstance(data, dict) and data["summary"].startswith("Summarise")


def test_embeddings_shape_float_and_base64(scripted: ScriptedServer) -> None:
    texts = ["the red door", "the red door", "a blue key"]
    as_floats = sdk(scripted).embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    assert [d.index for d in as_floats.data] == [0, 1, 2]
    vectors = [d.embedding for d in as_floats.data]
    assert len(vectors[0]) == 256 and vectors[0] == vectors[1]
    assert vectors[0] == pytest.approx(embed_text("the red door"))
    assert as_floats.usage.prompt_tokens == sum(-(-len(t) // 4) for t in texts)
    # The SDK's default asks for base64 and decodes it itself.
    default = sdk(scripted).embeddings.create(model="text-embedding-3-small", input="the red door")
    assert np.allclose(default.data[0].embedding, vectors[0], atol=1e-6)
    small = sdk(scripted).embeddings.create(model="m", input="x y", dimensions=32)
    assert len(small.data[0].embedding) == 32
    assert cosine(vectors[0], vectors[2]) < 0.99


def test_models_and_request_counts(scripted: ScriptedServer) -> None:
    client = sdk(scripted)
    assert {m.id for m in client.models.list()} >= {"scripted"}
    client.chat.completions.create(model="scripted", messages=USER)
    client.embeddings.create(model="e", input="x")
    stats = scripted.stats()
    assert stats.total == 3
    assert stats.by_endpoint == {
        "/v1/models": 1,
        "/v1/chat/completions": 1,
        "/v1/embeddings": 1,
    }
    scripted.reset_stats()
    assert scripted.stats().total == 0


def test_bad_requests_are_400(scripted: ScriptedServer) -> None:
    with pytest.raises(openai.BadRequestError):
        sdk(scripted).chat.completions.create(model="scripted", messages=[])


class EchoParams:
    """A custom policy: answers with the request parameters (no server change needed)."""

    def matches(self, messages: Sequence[Message]) -> bool:
        return any("echo" in str(m.get("content")) for m in messages)

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        return json.dumps(dict(params), sort_keys=True)


def test_custom_policies_come_first_and_fallback_remains() -> None:
    with ScriptedServer(policies=[EchoParams()]) as server:
        client = sdk(server)
        echoed = client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "echo"}], seed=3
        )
        assert json.loads(echoed.choices[0].message.content or "")["seed"] == 3
        other = client.chat.completions.create(model="scripted", messages=USER)
        assert (other.choices[0].message.content or "").startswith("Scripted reply")


def test_no_nagle_stall_at_zero_latency(scripted: ScriptedServer) -> None:
    # A sanity bound, not a benchmark (see benchmarks/bench_gateway.py): a server that sent
    # headers and body separately would take ~40 ms per call here.
    client = sdk(scripted)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        client.chat.completions.create(model="scripted", messages=USER)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.02


def test_fixed_latency() -> None:
    with ScriptedServer(latency_s=0.1) as server:
        start = time.perf_counter()
        sdk(server).chat.completions.create(model="scripted", messages=USER)
        assert time.perf_counter() - start >= 0.1


def test_faults_reach_the_sdk_directly() -> None:
    plan = FaultPlan.parse("429@1,500@2,timeout@3,malformed@4,slow@5,hang=5,slow=0.15")
    with ScriptedServer(faults=plan) as server:
        client = sdk(server, timeout=0.3)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="scripted", messages=USER)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="scripted", messages=USER)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="scripted", messages=USER)
        raw = client.chat.completions.with_raw_response.create(model="scripted", messages=USER)
        assert raw.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw.http_response.content)
        start = time.perf_counter()
        client.chat.completions.create(model="scripted", messages=USER)
        assert time.perf_counter() - start >= 0.15
        assert server.stats().faults == {
            "429": 1,
            "500": 1,
            "timeout": 1,
            "malformed": 1,
            "slow": 1,
        }
        # Retry-After is small, so a retrying client is not slowed down.
        client.chat.completions.create(model="scripted", messages=USER)
