"""The scripted model: an OpenAI-compatible HTTP server on loopback. A TEST DOUBLE, not an LLM.

It answers ``POST /v1/chat/completions`` from deterministic policies
(:mod:`pytest_alma.llm.scripted_policies`), ``POST /v1/embeddings`` with deterministic hashed
embeddings, and ``GET /v1/models``. It can add a fixed latency per call (for parallelism
benchmarks) and inject faults (:class:`~pytest_alma.llm.faults.FaultPlan`). Every reply carries
``"system_fingerprint": "alma-scripted-test-double"`` (chat) and ``"alma_test_double": true`` so
that accounting and reports can label results as coming from the test double.

Usage it reports (so that the accounting and pricing paths are exercised offline):

* ``prompt_tokens``: ceil(characters / 4) of the messages' text;
* ``prompt_tokens_details.cached_tokens``: the leading system messages' tokens from the second
  turn of a conversation on (the prefix every turn of an agent episode repeats, which a
  provider's prompt cache would serve); 0 on a first turn. A function of the request alone, so
  replies do not depend on what the server saw before;
* ``completion_tokens_details.reasoning_tokens``: 0, 16, 64 or 256 for ``reasoning_effort``
  minimal, low, medium or high, included in ``completion_tokens`` as OpenAI does.

Sampling: with a ``seed`` in the request and a temperature that is not 0 (absent: 1.0), the game
policies sometimes play another valid action than their greedy one, deterministically from the
seed and the conversation; without a seed or at temperature 0 every reply is greedy. See
:mod:`pytest_alma.llm.scripted_policies` (``sample``) for the exact rule.

Usage::

    with ScriptedServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from pytest_alma.llm._serve import LoopbackServer, LoopbackService
from pytest_alma.llm.embedding import DEFAULT_DIMS, embed_text, estimate_tokens
from pytest_alma.llm.faults import FaultKind, FaultPlan
from pytest_alma.llm.scripted_alfworld import ALFWorldPolicy
from pytest_alma.llm.scripted_babaisai import BabaIsAIPolicy
from pytest_alma.llm.scripted_cheatsheet import DynamicCheatsheetPolicy
from pytest_alma.llm.scripted_g_memory import GMemoryPolicy
from pytest_alma.llm.scripted_meta import ScriptedMetaPolicy
from pytest_alma.llm.scripted_minihack import MiniHackPolicy
from pytest_alma.llm.scripted_policies import (
    FallbackPolicy,
    Policy,
    assistant_turns,
    choose_reply,
    message_text,
    registered_policies,
)
from pytest_alma.llm.scripted_reasoning_bank import ReasoningBankPolicy
from pytest_alma.llm.scripted_textworld import TextWorldPolicy

SCRIPTED_FINGERPRINT = "alma-scripted-test-double"
# Reasoning tokens reported for a request's reasoning_effort, so accounting of reasoning models can
# be exercised; they are included in completion_tokens, as OpenAI does.
_REASONING_TOKENS = {"minimal": 0, "low": 16, "medium": 64, "high": 256}


def cached_prompt_tokens(messages: Sequence[Any], prompt_tokens: int) -> int:
    """The prompt tokens the double reports as served from a prompt cache (see the module
    docstring): the leading system messages, once the conversation has an assistant turn."""
    if not assistant_turns([m for m in messages if isinstance(m, Mapping)]):
        return 0
    prefix: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping) or message.get("role") not in ("system", "developer"):
            break
        prefix.append(message_text(message))
    return min(estimate_tokens("".join(prefix)), prompt_tokens) if prefix else 0


def builtin_policies() -> list[Policy]:
    """The policies shipped with the plugin (before any registered ones)."""
    return [
        # First: the meta-agent's prompts quote game text that the game policies would match.
        ScriptedMetaPolicy(),
        BabaIsAIPolicy(),
        MiniHackPolicy(),
        ALFWorldPolicy(),
        TextWorldPolicy(),
        DynamicCheatsheetPolicy(),
        ReasoningBankPolicy(),
        GMemoryPolicy(),
    ]


@dataclass(frozen=True)
class RequestStats:
    """Requests the server received: total, per endpoint path, and faults injected per kind."""

    total: int
    by_endpoint: dict[str, int]
    faults: dict[str, int]


def _error(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)


class ScriptedServer(LoopbackService):
    """The scripted OpenAI-compatible server, run in a background thread on 127.0.0.1.

    Args:
        latency_s: fixed delay added to every model call (asyncio sleep, so calls overlap).
        faults: which requests fail and how (none by default).
        policies: chat policies tried in order before :class:`FallbackPolicy`; default: the
            built-in ones, then those added with :func:`register_policy`.
        embedding_dims: vector size when a request does not set ``dimensions``.
    """

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        policies: Sequence[Policy] | None = None,
        embedding_dims: int = DEFAULT_DIMS,
    ):
        self.latency_s = latency_s
        self.faults = faults or FaultPlan()
        chosen = (
            list(policies) if policies is not None else builtin_policies() + registered_policies()
        )
        self.policies: list[Policy] = [*chosen, FallbackPolicy()]
        self.embedding_dims = embedding_dims
        self._lock = threading.Lock()
        self._model_requests = 0
        self._by_endpoint: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._server = LoopbackServer(self._make_app, name="alma-scripted-model")

    # -- counters --------------------------------------------------------------------------

    def stats(self) -> RequestStats:
        """A snapshot of the request counters."""
        with self._lock:
            return RequestStats(
                total=sum(self._by_endpoint.values()),
                by_endpoint=dict(self._by_endpoint),
                faults=dict(self._faults),
            )

    def reset_stats(self) -> None:
        """Zero the counters (the fault plan's request index restarts at 1 too)."""
        with self._lock:
            self._model_requests = 0
            self._by_endpoint.clear()
            self._faults.clear()

    # -- HTTP ------------------------------------------------------------------------------

    async def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        return app

    def _count(self, path: str, model_call: bool) -> int:
        with self._lock:
            self._by_endpoint[path] += 1
            if model_call:
                self._model_requests += 1
            return self._model_requests

    async def _read_json(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _error(400, f"request body is not valid JSON: {err}", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_request_error")
        return body

    async def _before_reply(self, index: int) -> web.Response | None:
        """Apply latency and the fault planned for request ``index``; a response ends the call."""
        fault: FaultKind | None = None if self.faults.empty else self.faults.decide(index)
        if fault is not None:
            with self._lock:
                self._faults[fault] += 1
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        if fault == "429":
            return _error(
                429,
                f"scripted rate limit (fault on request {index})",
                "rate_limit_error",
                headers={"Retry-After": f"{self.faults.retry_after_s:g}"},
            )
        if fault == "500":
            return _error(500, f"scripted server error (fault on request {index})", "server_error")
        if fault == "timeout":
            # The caller times out and hangs up first; handler cancellation then ends this sleep.
            await asyncio.sleep(self.faults.hang_s)
            return _error(504, f"scripted hang of {self.faults.hang_s}s ended", "timeout")
        if fault == "malformed":
            return web.Response(
                body=b'{"id": "chatcmpl-malformed", "choices": [{"message": ',
                content_type="application/json",
            )
        if fault == "slow":
            await asyncio.sleep(self.faults.slow_s)
        return None

    async def _chat(self, request: web.Request) -> web.Response:
        index = self._count(request.path, model_call=True)
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list", "invalid_request_error")
        if body.get("stream"):
            return _error(400, "the scripted model does not stream", "invalid_request_error")
        early = await self._before_reply(index)
        if early is not None:
            return early
        params = {k: v for k, v in body.items() if k != "messages"}
        text = choose_reply(self.policies, messages, params)
        prompt_tokens = estimate_tokens(
            "".join(message_text(m) for m in messages if isinstance(m, Mapping))
        )
        reasoning = _REASONING_TOKENS.get(str(body.get("reasoning_effort")), 0)
        completion_tokens = estimate_tokens(text) + reasoning
        reply = {
            "id": f"chatcmpl-scripted-{index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "scripted")),
            "system_fingerprint": SCRIPTED_FINGERPRINT,
            "alma_test_double": True,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {
                    "cached_tokens": cached_prompt_tokens(messages, prompt_tokens)
                },
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        }
        # json_response serialises first and sends headers and body in one write: no Nagle stall.
        return web.json_response(reply)

    async def _embeddings(self, request: web.Request) -> web.Response:
        index = self._count(request.path, model_call=True)
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        raw_input = body.get("input")
        texts = [raw_input] if isinstance(raw_input, str) else raw_input
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _error(
                400, "'input' must be a string or a list of strings", "invalid_request_error"
            )
        dims = body.get("dimensions") or self.embedding_dims
        if not isinstance(dims, int) or dims < 1:
            return _error(400, "'dimensions' must be a positive integer", "invalid_request_error")
        early = await self._before_reply(index)
        if early is not None:
            return early
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = embed_text(text, dims)
            encoded: Any = (
                base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(estimate_tokens(t) for t in texts)
        reply = {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "scripted-embedding")),
            "alma_test_double": True,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return web.json_response(reply)

    async def _models(self, request: web.Request) -> web.Response:
        self._count(request.path, model_call=False)
        models = ["scripted", "scripted-embedding"]
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "pytest-alma"}
                    for m in models
                ],
            }
        )
