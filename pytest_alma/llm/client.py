"""The client the agent loop and memory designs use. It talks only to the session gateway.

The hop from a worker to the gateway is our own loopback protocol (OpenAI's wire format plus
``x-alma-*`` headers), so it uses a plain :mod:`aiohttp` session rather than the ``openai`` SDK:
measured against the same gateway, the SDK's generic ``post`` costs 1.3 to 2.1 ms of client CPU per
call and aiohttp 0.3 to 0.6 ms, and per-call CPU is what limits 16 xdist workers on 2 cores (see
DESIGN.md section 6). The SDK is still what talks to the real provider, inside the gateway, where
its retries and backoff matter.

Event loops: an aiohttp session is bound to the event loop it was created in, the defect behind
the reference's flaky "event loop is closed" errors. :class:`LLMClient` therefore keeps one session
*per running loop*, created lazily on the first call made in that loop. One ``LLMClient`` may be
shared by all tasks of a loop and used from several loops in turn. The cheapest pattern is one
long-lived loop per process (each new loop opens new connections). Call :meth:`LLMClient.aclose`
(or use ``async with client:``) in each loop you used when you are done.

The response's ``x-alma-cache`` header says whether the gateway answered from its cache.

Retries happen in the gateway (it holds the backoff and the concurrency limit), so this client
retries only connection failures, and only when asked (``max_retries``): retrying HTTP errors
here would multiply upstream calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import numpy as np

from pytest_alma.llm.accounting import TokenUsage
from pytest_alma.llm.cache import ResponseCache, cache_key
from pytest_alma.llm.errors import (
    BudgetExceededError,
    CacheMissError,
    LLMError,
    LLMUnavailableError,
    UnknownPriceError,
)
from pytest_alma.llm.models import ModelSpec, parse_model

_CACHE_HEADER = "x-alma-cache"
_TAG_HEADER = "x-alma-tag"
_SCOPE_HEADER = "x-alma-scope"
# OpenAI's reasoning models (o-series, gpt-5) reject max_tokens and want max_completion_tokens,
# which also caps their reasoning tokens; other OpenAI models accept both. OpenAI-compatible
# servers (vLLM, Ollama, llama.cpp, LM Studio) all accept max_tokens, not all the newer name, so
# max_tokens is sent unless the model reasons.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)", re.IGNORECASE)


def is_reasoning_model(spec: ModelSpec) -> bool:
    """Whether ``spec`` names a reasoning model (an effort, or an o-series or gpt-5 name)."""
    return spec.reasoning_effort is not None or _REASONING_MODEL.match(spec.name) is not None


def max_tokens_field(spec: ModelSpec) -> str:
    """The request field that caps the completion of ``spec``'s model (see above)."""
    return "max_completion_tokens" if is_reasoning_model(spec) else "max_tokens"


#: The agent's completion cap when ``--alma-max-tokens`` is not given: an action is a few tokens
#: and a reply that explains itself a few hundred.
DEFAULT_MAX_TOKENS = 1024
#: The same for reasoning models, whose hidden reasoning counts against the cap (a reply cut off
#: while reasoning has no text at all).
DEFAULT_REASONING_MAX_TOKENS = 4096


def agent_max_tokens(configured: int | None, model: str) -> int:
    """The agent's completion cap: ``configured`` (``--alma-max-tokens``), else the default."""
    if configured is not None:
        return configured
    reasoning = is_reasoning_model(parse_model(model))
    return DEFAULT_REASONING_MAX_TOKENS if reasoning else DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class ChatReply:
    """One chat answer: its text, token usage, whether the gateway served it from the cache,
    the model name the server reported and the one the request asked for (what is priced)."""

    text: str
    usage: TokenUsage
    cached: bool
    model: str
    requested_model: str = ""


@dataclass(frozen=True)
class CallRecord:
    """One call in a client's log."""

    kind: Literal["chat", "embed"]
    model: str
    tag: str
    usage: TokenUsage  # chat tokens (zero for embeddings)
    embedding_tokens: int
    cached: bool
    latency_s: float
    #: The model the request asked for: calls are priced by it (see pricing's docstring).
    requested_model: str = ""


@dataclass(frozen=True)
class UsageLog:
    """What a client used since the last :meth:`LLMClient.take_usage` (e.g. one episode)."""

    tokens: TokenUsage
    embedding_tokens: int
    calls: int
    cached_calls: int
    records: tuple[CallRecord, ...]


@dataclass(frozen=True)
class _RawReply:
    """A gateway reply: its body and headers."""

    content: bytes
    headers: Mapping[str, str]


def _error_from_response(status: int, content: bytes, gateway: str) -> LLMError:
    """Turn a gateway error reply into the matching exception of the LLM error hierarchy."""
    body: Mapping[str, Any] = {}
    try:
        data = json.loads(content)
        if isinstance(data, Mapping):
            inner = data.get("error", data)
            body = inner if isinstance(inner, Mapping) else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    kind = body.get("type")
    message = str(body.get("message") or content[:200].decode("utf-8", "replace"))
    if kind == "alma_unknown_price":
        return UnknownPriceError(message)
    if status == 402 or kind == "alma_budget_exceeded":
        return BudgetExceededError(message)
    if kind == "alma_cache_miss":
        return CacheMissError(message)
    if status == 401:
        return LLMUnavailableError(
            f"the LLM gateway at {gateway} rejected the session token (HTTP 401): {message}"
        )
    return LLMUnavailableError(f"LLM call failed (gateway HTTP {status}): {message}")


class LLMClient:
    """Chat and embedding calls through the gateway, with a per-client usage log.

    Args:
        base_url: the gateway's ``.../v1`` URL (``Gateway.url``).
        token: a gateway session token of any scope (``Gateway.token``, a worker token, or a
            ``design:<name>`` token, whose calls the gateway books to that design).
        model: a model spec, ``"name"`` or ``"name/effort"`` (e.g. ``"gpt-5-nano/low"``).
        temperature: default sampling temperature (``None``: the server's default).
        seed: sent with every chat call (``None``: not sent).
        max_tokens: the completion cap of chat calls that set none (``None``: none sent); sent
            as ``max_completion_tokens`` to reasoning models (see :func:`max_tokens_field`).
        timeout_s: how long to wait for the gateway, which itself retries the upstream, so this
            should exceed the gateway's ``timeout_s * (max_retries + 1)`` plus backoff.
        tag: default accounting tag (e.g. ``"agent"``, ``"design.update"``).
        scope: accounting scope (e.g. the design name).
        embedding_model: default model for :meth:`embed`.
        max_retries: retries of connection failures towards the gateway (0: none).
        cache: a read-only view (mode ``"ro"``) of the gateway's response cache; hits are read
            from it directly instead of asking the gateway. ``None``: every call goes to the
            gateway.
        cache_namespace: the gateway's cache namespace (keys must match).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        model: str,
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        timeout_s: float = 600.0,
        tag: str = "agent",
        scope: str = "",
        embedding_model: str = "text-embedding-3-small",
        max_retries: int = 0,
        cache: ResponseCache | None = None,
        cache_namespace: str = "",
    ):
        self.base_url = base_url
        self._token = token
        self.spec: ModelSpec = parse_model(model)
        self.temperature = temperature
        self.seed = seed
        self.timeout_s = timeout_s
        self.tag = tag
        self.scope = scope
        self.embedding_model = embedding_model
        self.max_retries = max_retries
        # A read-only view of the gateway's cache (mode "ro"): hits are read here directly.
        self._cache = cache
        self._cache_namespace = cache_namespace
        self.max_tokens = max_tokens
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            **({_SCOPE_HEADER: scope} if scope else {}),
        }
        self._records: list[CallRecord] = []

    def _session(self) -> aiohttp.ClientSession:
        """The HTTP session of the running loop (created on first use in that loop)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers=self._headers,
            )
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close the running loop's HTTP session (its connections)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        tag: str | None = None,
        model: str | None = None,
        seed: int | None = None,
    ) -> ChatReply:
        """One chat completion (with this client's model unless ``model`` names another).

        Raises:
            BudgetExceededError: the session's budget is spent.
            CacheMissError: the cache is replay-only and has no reply for this request.
            LLMUnavailableError: the gateway or the model failed after retries.
        """
        spec = self.spec if model is None else parse_model(model)
        params: dict[str, Any] = {"model": spec.name, "messages": list(messages)}
        temperature = self.temperature if temperature is None else temperature
        if temperature is not None:
            params["temperature"] = temperature
        seed = self.seed if seed is None else seed  # (an episode's own sampling seed)
        if seed is not None:
            params["seed"] = seed
        if spec.reasoning_effort is not None:
            params["reasoning_effort"] = spec.reasoning_effort
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        if max_tokens is not None:
            params[max_tokens_field(spec)] = max_tokens
        if response_format is not None:
            params["response_format"] = dict(response_format)
        tag = tag or self.tag
        started = time.perf_counter()
        key = self._cache_key("chat/completions", params)
        raw = self._from_cache(key) or await self._call("/chat/completions", params, tag)
        data = self._json(raw.content)
        try:
            text = data["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise LLMUnavailableError(f"the chat reply has no choices[0].message: {err}") from err
        usage = TokenUsage.from_openai(data.get("usage"))
        cached = raw.headers.get(_CACHE_HEADER) == "hit"
        model = str(data.get("model") or spec.name)
        self._records.append(
            CallRecord(
                "chat", model, tag, usage, 0, cached, time.perf_counter() - started, spec.name
            )
        )
        return ChatReply(
            text=str(text), usage=usage, cached=cached, model=model, requested_model=spec.name
        )

    async def embed(
        self, texts: Sequence[str], *, model: str | None = None, tag: str | None = None
    ) -> list[list[float]]:
        """Embed ``texts`` (one vector per text, in order); an empty list makes no call.

        Raises the same errors as :meth:`chat`.
        """
        if not texts:
            return []
        model = model or self.embedding_model
        tag = tag or self.tag
        started = time.perf_counter()
        # base64 is the SDK's own default wire format: 4 bytes per float instead of ~20 chars.
        params: dict[str, Any] = {"model": model, "input": list(texts), "encoding_format": "base64"}
        key = self._cache_key("embeddings", params)
        raw = self._from_cache(key) or await self._call("/embeddings", params, tag)
        data = self._json(raw.content)
        try:
            rows = sorted(data["data"], key=lambda row: int(row.get("index", 0)))
            vectors = [self._vector(row["embedding"]) for row in rows]
        except (KeyError, TypeError, ValueError) as err:
            raise LLMUnavailableError(f"the embeddings reply is malformed: {err}") from err
        if len(vectors) != len(texts):
            raise LLMUnavailableError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        usage = data.get("usage") or {}
        tokens = int(usage.get("prompt_tokens") or 0)
        cached = raw.headers.get(_CACHE_HEADER) == "hit"
        self._records.append(
            CallRecord(
                "embed",
                model,
                tag,
                TokenUsage(),
                tokens,
                cached,
                time.perf_counter() - started,
                model,
            )
        )
        return vectors

    def take_usage(self) -> UsageLog:
        """Everything used since the last call (or since construction), then reset the log."""
        records, self._records = tuple(self._records), []
        tokens = TokenUsage()
        for record in records:
            tokens = tokens + record.usage
        return UsageLog(
            tokens=tokens,
            embedding_tokens=sum(r.embedding_tokens for r in records),
            calls=len(records),
            cached_calls=sum(1 for r in records if r.cached),
            records=records,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _cache_key(self, endpoint: str, params: dict[str, Any]) -> str | None:
        """The request's cache key, when this client reads the cache itself (else None)."""
        if self._cache is None:
            return None
        return cache_key(endpoint, params, self._cache_namespace)

    def _from_cache(self, key: str | None) -> _RawReply | None:
        """A reply read straight from the session's response cache, or None.

        A cache hit needs no model and no key, so it skips the hop to the gateway: measured on
        a cached re-run at 16 workers, that hop (about 0.8 ms of CPU per call across client and
        gateway) was most of the run. Misses, and every call in cache mode ``off``, go to the
        gateway, which also serves replay-only misses as errors. The gateway looks a miss up
        again under the key it computes itself (it never trusts a key sent by a client).
        """
        if self._cache is None or key is None:
            return None
        entry = self._cache.get(key)
        if entry is None:
            return None
        return _RawReply(entry.body, {_CACHE_HEADER: "hit"})

    async def _call(self, path: str, params: dict[str, Any], tag: str) -> _RawReply:
        # The body is serialised once; the gateway forwards these bytes upstream unchanged.
        content = json.dumps(params, ensure_ascii=False).encode("utf-8")
        url = self.base_url.rstrip("/") + path
        headers = {_TAG_HEADER: tag}
        attempt = 0
        while True:
            try:
                async with self._session().post(url, data=content, headers=headers) as response:
                    body = await response.read()
                    if response.status >= 400:
                        raise _error_from_response(response.status, body, self.base_url)
                    return _RawReply(body, response.headers)
            except TimeoutError as err:
                raise LLMUnavailableError(
                    f"the LLM gateway at {self.base_url} did not answer within {self.timeout_s:g}s"
                ) from err
            except aiohttp.ClientConnectionError as err:
                if attempt < self.max_retries:
                    attempt += 1
                    continue
                raise LLMUnavailableError(
                    f"cannot reach the LLM gateway at {self.base_url} (is the session still "
                    f"running?): {err}"
                ) from err

    @staticmethod
    def _json(content: bytes) -> dict[str, Any]:
        try:
            data = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LLMUnavailableError(f"the gateway sent a reply that is not JSON: {err}") from err
        if not isinstance(data, dict):
            raise LLMUnavailableError("the gateway sent a reply that is not a JSON object")
        return data

    @staticmethod
    def _vector(value: Any) -> list[float]:
        if isinstance(value, str):
            return [float(v) for v in np.frombuffer(base64.b64decode(value), dtype="<f4").tolist()]
        return [float(v) for v in value]
