"""The session gateway: an OpenAI-compatible proxy on 127.0.0.1 that owns all model access.

Workers, the agent and memory designs talk only to the gateway, with a per-session token. The
gateway alone holds the real API key, the response cache, the concurrency limit, the retries
(the ``openai`` SDK's own, with exponential backoff), the token and dollar accounting and the
budget. HTTP statuses it answers with, besides the upstream's successful replies:

* 401: missing or wrong session token.
* 400: a request it cannot forward (not JSON, ``stream: true``).
* 402: the dollar budget is spent (``error.type`` ``alma_budget_exceeded``).
* 424: no reply could be produced: the upstream kept failing after all retries or sent a
  malformed body (``alma_upstream_error``), or the cache is replay-only and has no entry
  (``alma_cache_miss``). The SDK does not retry 424, so clients never multiply retries.

Every error response also carries ``x-should-retry: false`` for the same reason.

Besides the model endpoints and ``GET /alma/stats``, two session controls serve the record and
the regression gate (``--alma-record``, ``--alma-cache=replay-only``; see docs/ci.md):

* ``POST /alma/keys`` starts recording the cache keys of every call the gateway answers (hits
  and upstream replies alike); from then on it also looks every call up in its own cache, since
  the session's processes stop reading it directly. ``GET /alma/keys`` returns them (after
  committing queued replies, so that each key's reply can be read from the cache file).
* ``POST /alma/replay`` (body: a replay file, see :mod:`pytest_alma.llm.replay`; cache mode
  ``replay`` only, once per gateway) makes that file the only source of replies: a call it lacks
  is a 424 ``alma_cache_miss`` that says how to re-record.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Self

import httpx2
import openai
from aiohttp import web
from openai._models import FinalRequestOptions  # only for the retry-delay override's signature

from pytest_alma.llm._serve import LoopbackServer, LoopbackService
from pytest_alma.llm.accounting import Accounting, UsageKey
from pytest_alma.llm.cache import ResponseCache
from pytest_alma.llm.cache_writer import CacheWriter
from pytest_alma.llm.errors import CacheMissError
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.replay import Replay, ReplayError, decode_replay
from pytest_alma.llm.scripted import SCRIPTED_FINGERPRINT

Endpoint = Literal["chat/completions", "embeddings"]

CACHE_HEADER = "x-alma-cache"
TAG_HEADER = "x-alma-tag"
SCOPE_HEADER = "x-alma-scope"
# A client that reads the cache itself sends the key of a request it looked up and missed.
KEY_HEADER = "x-alma-cache-key"
_KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
# The SDK marks each attempt with this header; the final attempt's value is the retry count.
_RETRY_COUNT_HEADER = "x-stainless-retry-count"
_SDK_INITIAL_RETRY_DELAY = 0.5  # openai._constants.INITIAL_RETRY_DELAY


class _UpstreamClient(openai.AsyncOpenAI):
    """``AsyncOpenAI`` with a configurable backoff schedule.

    The SDK has no public option for its backoff (0.5 s doubling to 8 s, minus up to 25 % jitter),
    which is far too slow for fault tests. We scale its computed delay, except when the server
    asked for a specific delay with ``Retry-After``, which is honoured unchanged.
    """

    def __init__(self, *, initial_backoff_s: float, max_backoff_s: float, **kwargs: Any):
        super().__init__(**kwargs)
        self._backoff_scale = initial_backoff_s / _SDK_INITIAL_RETRY_DELAY
        self._max_backoff_s = max_backoff_s

    def _calculate_retry_timeout(
        self,
        remaining_retries: int,
        options: FinalRequestOptions,
        response_headers: httpx2.Headers | None = None,
    ) -> float:
        delay = super()._calculate_retry_timeout(remaining_retries, options, response_headers)
        retry_after = self._parse_retry_after_header(response_headers)
        if retry_after is not None and retry_after > 0 and delay == retry_after:
            return delay
        return min(delay * self._backoff_scale, self._max_backoff_s)


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers={"x-should-retry": "false"})


def _retries_of(request: httpx2.Request | None) -> int:
    if request is None:
        return 0
    try:
        return int(request.headers.get(_RETRY_COUNT_HEADER, "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class _Reply:
    content: bytes
    parsed: dict[str, Any]
    retries: int


@dataclass(frozen=True)
class _Failure:
    message: str
    retries: int


class _Malformed(Exception):
    """The upstream answered 2xx with a body that is not the expected JSON object."""


def _parse_reply(content: bytes, endpoint: Endpoint) -> dict[str, Any]:
    try:
        parsed = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _Malformed(f"the body is not valid JSON ({err}): {content[:120]!r}") from err
    expected = "choices" if endpoint == "chat/completions" else "data"
    if not isinstance(parsed, dict) or not isinstance(parsed.get(expected), list):
        raise _Malformed(f"the body has no {expected!r} list: {content[:120]!r}")
    return parsed


class Gateway(LoopbackService):
    """The loopback OpenAI-compatible proxy for one session (see the module docstring).

    Args:
        upstream_base_url: the provider's ``.../v1`` URL; ``None`` means OpenAI's default.
        upstream_api_key: the real key (only the gateway holds it); ``None`` reads
            ``OPENAI_API_KEY`` as the SDK does.
        cache: the response cache (its mode decides lookups and stores).
        prices: the price table for costs and the budget.
        budget_usd: stop new upstream calls once this many dollars are spent (``None``: no cap).
            Calls already waiting for or holding a concurrency slot are checked again before they
            go out, so the overshoot is at most ``max_concurrency`` calls. Calls with an unknown
            price add nothing to the spend (they are counted as ``unknown_cost_calls``).
        max_concurrency: upstream calls in flight at once, across all clients.
        max_retries: the SDK's retries per call (429, 5xx, timeouts, connection errors), plus as
            many re-requests for a malformed 2xx body.
        timeout_s: the upstream timeout per attempt.
        initial_backoff_s / max_backoff_s: the retry backoff schedule (SDK default 0.5 / 8).
        cache_namespace: mixed into cache keys to keep providers that share model names apart.
    """

    def __init__(
        self,
        *,
        upstream_base_url: str | None,
        upstream_api_key: str | None,
        cache: ResponseCache,
        prices: PriceTable | None = None,
        budget_usd: float | None = None,
        max_concurrency: int = 16,
        max_retries: int = 3,
        timeout_s: float = 120.0,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        cache_namespace: str = "",
    ):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.upstream_base_url = upstream_base_url
        self._upstream_api_key = upstream_api_key
        self.cache = cache
        self.prices = prices or PriceTable.default()
        self.budget_usd = budget_usd
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._namespace = cache_namespace
        self.token = secrets.token_urlsafe(32)
        self._auth = f"Bearer {self.token}".encode()
        self._accounting = Accounting()
        self._upstream: _UpstreamClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._writer: CacheWriter | None = None
        # Record and replay controls (POST /alma/keys, POST /alma/replay): the keys of the calls
        # answered since recording started (None: not recording), and the replay file that is
        # the only source of replies once loaded.
        self._served_keys: set[str] | None = None
        self._served_lock = threading.Lock()  # added to in the loop, read from other threads
        self._replay: Replay | None = None
        self._replay_misses = 0
        self._server = LoopbackServer(self._make_app, name="alma-gateway")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the base URL clients use (only while running)."""
        return self.base_url

    def accounting(self) -> Accounting:
        """A snapshot of the usage counters."""
        return self._accounting.copy()

    def start(self) -> Self:
        """Start serving (and the background cache writer); returns ``self``."""
        if self._writer is None:
            self._writer = CacheWriter(self.cache)
        return super().start()

    def stop(self) -> None:
        """Stop serving, then commit every reply still queued for the cache (idempotent)."""
        super().stop()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def flush_cache(self, timeout_s: float | None = None) -> bool:
        """Wait until every reply served so far is committed to the cache; False on timeout."""
        return self._writer.flush(timeout_s) if self._writer is not None else True

    def stats(self) -> dict[str, Any]:
        """What ``GET /alma/stats`` returns: accounting, cache counters, budget and spend.

        Replies still queued for the cache are committed first, so ``stores`` is final.
        """
        self.flush_cache()
        cache = self.cache.stats()
        return {
            "accounting": self._accounting.to_json(),
            "cache": {
                "mode": self.cache.mode,
                "path": str(self.cache.path),
                "hits": cache.hits,
                "misses": cache.misses,
                "stores": cache.stores,
                "store_failures": self._writer.failures if self._writer else 0,
            },
            "budget_usd": self.budget_usd,
            "spent_usd": self._accounting.spent_usd(),
        }

    def record_keys(self) -> None:
        """Start recording the cache key of every call answered (idempotent)."""
        if self._served_keys is None:
            self._served_keys = set()

    def served_keys(self) -> list[str] | None:
        """The keys recorded since :meth:`record_keys` (sorted), or ``None`` if not recording.

        Replies still queued for the cache are committed first, so each key can be read back.
        """
        self.flush_cache()
        with self._served_lock:
            return None if self._served_keys is None else sorted(self._served_keys)

    def load_replay(self, replay: Replay) -> None:
        """Answer every call from ``replay`` and nothing else (cache mode ``replay`` only).

        Raises:
            ValueError: the cache is not in replay mode, or a replay is already loaded.
        """
        if self.cache.mode != "replay":
            raise ValueError(
                f"a replay file can only be loaded in cache mode replay (this gateway's cache is "
                f"in mode {self.cache.mode}); run with --alma-cache=replay-only"
            )
        if self._replay is not None:
            raise ValueError(f"a replay file is already loaded ({self._replay.source})")
        self._replay = replay

    async def _make_app(self) -> web.Application:
        # Created here, inside the gateway's own loop: the SDK's httpx pool is bound to it, and
        # ONE client serves all requests so its keep-alive connections are reused.
        try:
            # The SDK's aiohttp transport (its "aiohttp" extra): measured ~0.5 ms faster per call
            # than the default httpx transport, and aiohttp is already a dependency. Retries,
            # timeouts and error types stay the SDK's, as they live above the transport.
            http_client = openai.DefaultAioHttpClient()
        except RuntimeError:  # the SDK could not import its aiohttp transport
            http_client = None
        try:
            self._upstream = _UpstreamClient(
                base_url=self.upstream_base_url,
                api_key=self._upstream_api_key,
                max_retries=self.max_retries,
                timeout=self.timeout_s,
                initial_backoff_s=self._initial_backoff_s,
                max_backoff_s=self._max_backoff_s,
                http_client=http_client,
            )
        except openai.OpenAIError as err:
            raise ValueError(
                f"the LLM gateway has no upstream API key ({err}); set OPENAI_API_KEY "
                "or pass upstream_api_key"
            ) from err
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", partial(self._model_call, "chat/completions"))
        app.router.add_post("/v1/embeddings", partial(self._model_call, "embeddings"))
        app.router.add_get("/alma/stats", self._stats)
        app.router.add_get("/alma/keys", self._get_keys)
        app.router.add_post("/alma/keys", self._post_keys)
        app.router.add_post("/alma/replay", self._post_replay)
        app.on_cleanup.append(self._close_upstream)
        return app

    async def _close_upstream(self, app: web.Application) -> None:
        if self._upstream is not None:
            await self._upstream.close()
            self._upstream = None

    # -- handlers --------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._auth)

    def _budget_spent(self) -> bool:
        return self.budget_usd is not None and self._accounting.spent_usd() >= self.budget_usd

    def _budget_error(self) -> web.Response:
        spent = self._accounting.spent_usd()
        return _error(
            402,
            f"The LLM budget of ${self.budget_usd:.4f} for this session is spent "
            f"(${spent:.4f} used); no new model calls are made. Cached replies are still served. "
            "Raise the cap with --alma-budget-usd=<dollars> (or the alma_budget_usd ini option).",
            "alma_budget_exceeded",
            "budget_exceeded",
        )

    async def _stats(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "missing or wrong gateway session token", "authentication_error")
        # Off the loop: stats() waits for queued cache stores to commit.
        stats = await asyncio.get_running_loop().run_in_executor(None, self.stats)
        return web.json_response(stats)

    async def _get_keys(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "missing or wrong gateway session token", "authentication_error")
        # Off the loop: served_keys() waits for queued cache stores to commit.
        keys = await asyncio.get_running_loop().run_in_executor(None, self.served_keys)
        return web.json_response({"keys": keys, "replay_misses": self._replay_misses})

    async def _post_keys(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "missing or wrong gateway session token", "authentication_error")
        self.record_keys()
        return web.json_response({"recording": True})

    async def _post_replay(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, "missing or wrong gateway session token", "authentication_error")
        data = await request.read()
        source = request.headers.get("x-alma-replay-source", "the replay file")
        try:
            replay = await asyncio.get_running_loop().run_in_executor(
                None, decode_replay, data, source
            )
            self.load_replay(replay)
        except (ReplayError, ValueError) as err:
            return _error(409, str(err), "alma_replay_error")
        return web.json_response({"calls": len(replay)})

    def _served(self, key: str | None) -> None:
        if self._served_keys is not None and key is not None:
            with self._served_lock:
                self._served_keys.add(key)

    async def _model_call(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(
                401,
                "missing or wrong gateway session token (send 'Authorization: Bearer <token>')",
                "authentication_error",
            )
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _error(400, f"request body is not valid JSON: {err}", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_request_error")
        if body.get("stream"):
            return _error(
                400, "the alma gateway does not support streaming", "invalid_request_error"
            )
        model = str(body.get("model", ""))
        key = UsageKey(
            model, request.headers.get(TAG_HEADER, ""), request.headers.get(SCOPE_HEADER, "")
        )
        embedding = endpoint == "embeddings"

        cache_key: str | None = None
        if self.cache.reads:
            # A session client that has just missed in the cache sends the key it looked up:
            # using it saves re-serialising the body, and (except in replay mode, where the
            # miss must become an error here) the second lookup. Replies stored since the
            # client's lookup are still found among those queued for the cache; a reply
            # committed in between costs at most one duplicate upstream call, as for two
            # identical calls in flight at once.
            client_key = request.headers.get(KEY_HEADER, "")
            checked = _KEY_PATTERN.fullmatch(client_key) is not None
            cache_key = client_key if checked else self.cache.key(endpoint, body, self._namespace)
            try:
                if self._replay is not None:
                    entry = self._replay.get(cache_key)
                    if entry is None:
                        self._replay_misses += 1
                        raise CacheMissError(
                            self._replay.miss_message(
                                cache_key, endpoint=endpoint, model=model, tag=key.tag
                            )
                        )
                else:
                    entry = self._writer.pending(cache_key) if self._writer else None
                    # While recording, clients do not read the cache themselves (their "miss"
                    # says nothing), so the gateway looks every call up.
                    lookup = not checked or self.cache.mode == "replay"
                    if entry is None and (lookup or self._served_keys is not None):
                        entry = self.cache.get(cache_key)
            except CacheMissError as err:
                self._accounting.record_error(key)
                return _error(424, str(err), "alma_cache_miss", "cache_miss")
            if entry is not None:
                self._served(cache_key)
                usage = entry.meta.get("usage")
                self._accounting.record_call(
                    key,
                    usage,
                    embedding=embedding,
                    cost_usd=self.prices.cost(model, usage),
                    cached=True,
                    test_double=bool(entry.meta.get("test_double")),
                )
                return web.Response(
                    body=entry.body, content_type="application/json", headers={CACHE_HEADER: "hit"}
                )

        if self._budget_spent():
            self._accounting.record_error(key)
            return self._budget_error()
        assert self._semaphore is not None
        async with self._semaphore:
            # Checked again: other calls may have spent the budget while this one waited.
            if self._budget_spent():
                self._accounting.record_error(key)
                return self._budget_error()
            outcome = await self._call_upstream(endpoint, raw)
        if isinstance(outcome, _Failure):
            self._accounting.record_error(key, retries=outcome.retries)
            return _error(424, outcome.message, "alma_upstream_error", "upstream_error")
        content, parsed, retries = outcome.content, outcome.parsed, outcome.retries
        usage = parsed.get("usage")
        test_double = (
            parsed.get("alma_test_double") is True
            or parsed.get("system_fingerprint") == SCRIPTED_FINGERPRINT
            or self.prices.is_test_double(model)
        )
        self._served(cache_key)
        if cache_key is not None and self._writer is not None:
            # Stored in the background, batched; repeats are answered from the queue meanwhile.
            self._writer.submit(
                cache_key,
                content,
                endpoint=endpoint,
                model=model,
                meta={"usage": usage, "test_double": test_double},
            )
        self._accounting.record_call(
            key,
            usage,
            embedding=embedding,
            cost_usd=self.prices.cost(model, usage),
            cached=False,
            retries=retries,
            test_double=test_double,
        )
        state = "miss" if self.cache.reads else "off"
        return web.Response(
            body=content, content_type="application/json", headers={CACHE_HEADER: state}
        )

    async def _call_upstream(self, endpoint: Endpoint, raw: bytes) -> _Reply | _Failure:
        """Forward the client's bytes unchanged (no re-serialisation) and read the reply."""
        assert self._upstream is not None
        retries = 0
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._upstream.post(
                    f"/{endpoint}",
                    cast_to=httpx2.Response,
                    content=raw,
                    options={"headers": {"Content-Type": "application/json"}},
                )
            except openai.APIStatusError as err:
                retries += _retries_of(err.response.request)
                return _Failure(
                    f"upstream answered HTTP {err.status_code} after {retries} retries: "
                    f"{err.message}",
                    retries,
                )
            except openai.APITimeoutError as err:
                retries += _retries_of(err.request)
                return _Failure(
                    f"upstream did not answer within {self.timeout_s:g}s "
                    f"({retries + 1} attempts, {retries} retries)",
                    retries,
                )
            except openai.APIConnectionError as err:
                retries += _retries_of(err.request)
                return _Failure(
                    f"cannot connect to upstream {self.upstream_base_url or 'api.openai.com'} "
                    f"after {retries} retries: {err.__cause__ or err}",
                    retries,
                )
            retries += _retries_of(response.request)
            try:
                return _Reply(response.content, _parse_reply(response.content, endpoint), retries)
            except _Malformed as err:
                if attempt == self.max_retries:
                    return _Failure(
                        f"upstream answered HTTP {response.status_code} with a malformed body "
                        f"after {retries} retries: {err}",
                        retries,
                    )
                retries += 1
                # The SDK only retries on statuses, so a malformed 2xx gets our own backoff.
                delay = min(self._initial_backoff_s * 2**attempt, self._max_backoff_s)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop always returns")
