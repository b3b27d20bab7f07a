"""The session gateway: an OpenAI-compatible proxy on 127.0.0.1 that owns all model access.

Workers, the agent and memory designs talk only to the gateway, with scoped session tokens (see
:mod:`pytest_alma.llm.tokens`): the controller holds the admin token (:attr:`Gateway.token`),
workers a worker token, and each design's code a ``design:<name>`` token whose calls the gateway
books to that design whatever its headers say. The gateway alone holds the real API key, the
response cache, the concurrency limit, the token and dollar accounting and the budget
(:mod:`pytest_alma.llm.budget`). The provider is reached through :mod:`pytest_alma.llm.upstream`
(the ``openai`` SDK and its retries, with exponential backoff), which reports the retries of
every call so that the gateway can charge the attempts a provider may bill. HTTP statuses it
answers with, besides the upstream's successful replies:

* 401: missing or unknown session token.
* 403: a valid token whose scope does not allow the endpoint (``error.type``
  ``permission_error``; the message names the scope needed).
* 400: a request it cannot forward (not JSON, ``stream: true``).
* 402: the dollar budget cannot cover the call's worst case (``error.type``
  ``alma_budget_exceeded``), or the budget is set and the model has no known price
  (``alma_unknown_price``).
* 424: no reply could be produced: the upstream kept failing after all retries or sent a
  malformed body (``alma_upstream_error``), or the cache is replay-only and has no entry
  (``alma_cache_miss``). The SDK does not retry 424, so clients never multiply retries.

Every error response also carries ``x-should-retry: false`` for the same reason.

The gateway computes the cache key of every request itself, from the body it forwards; it never
takes a key from a client (a client that could name the key could store a reply under another
request's key and poison the cache). Identical requests in flight (same cache key) share one
upstream call (see :mod:`pytest_alma.llm.single_flight`); the followers are answered as cache hits.

Model calls (``/v1/chat/completions``, ``/v1/embeddings``) accept every valid token. Everything
else needs the admin token, except ``POST /alma/tokens`` (body ``{"scope": "..."}``), with which
the admin token mints worker and design tokens and a worker token mints design tokens. Besides
``GET /alma/stats``, two admin controls serve the record and the regression gate
(``--alma-record``, ``--alma-cache=replay-only``; see docs/ci.md):

* ``POST /alma/keys`` starts recording the cache keys of every call the gateway answers (hits
  and upstream replies alike; the session's processes then stop reading the cache directly, so
  every call reaches the gateway). ``GET /alma/keys`` returns them (after committing queued
  replies, so that each key's reply can be read from the cache file).
* ``POST /alma/replay`` (body: a replay file, see :mod:`pytest_alma.llm.replay`; cache mode
  ``replay`` only, once per gateway) makes that file the only source of replies: a call it lacks
  is a 424 ``alma_cache_miss`` that says how to re-record.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any, Self

from aiohttp import web

from pytest_alma.llm._serve import LoopbackServer, LoopbackService
from pytest_alma.llm.accounting import Accounting, UsageKey
from pytest_alma.llm.budget import (
    Budget,
    budget_exceeded_message,
    unknown_price_message,
    worst_case_tokens,
)
from pytest_alma.llm.cache import ResponseCache
from pytest_alma.llm.cache_writer import CacheWriter
from pytest_alma.llm.errors import CacheMissError
from pytest_alma.llm.pricing import PriceTable
from pytest_alma.llm.replay import Replay, ReplayError, decode_replay
from pytest_alma.llm.scripted import SCRIPTED_FINGERPRINT
from pytest_alma.llm.single_flight import SingleFlight
from pytest_alma.llm.tokens import (
    ADMIN,
    DESIGN_PREFIX,
    TokenAuthority,
    TokenError,
    check_scope,
    design_name,
    may_mint,
)
from pytest_alma.llm.upstream import Endpoint, Failure, Reply, Upstream

CACHE_HEADER = "x-alma-cache"
TAG_HEADER = "x-alma-tag"
SCOPE_HEADER = "x-alma-scope"
#: The accounting tag of a design token's calls unless it sends a ``design.*`` tag.
DESIGN_TAG = "design"
_UNAUTHORISED = (
    "missing or unknown gateway session token (send 'Authorization: Bearer <token>' with a "
    "token this session's gateway issued)"
)


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers={"x-should-retry": "false"})


@dataclass(frozen=True)
class _Shared:
    """The outcome of one upstream call, as every identical request in flight receives it."""

    content: bytes | None = None
    usage: dict[str, Any] | None = None
    test_double: bool = False
    #: (status, message, type, code) of an error reply.
    error: tuple[int, str, str, str | None] | None = None

    @classmethod
    def failure(cls, status: int, message: str, kind: str, code: str | None = None) -> _Shared:
        return cls(error=(status, message, kind, code))


class Gateway(LoopbackService):
    """The loopback OpenAI-compatible proxy for one session (see the module docstring).

    Args:
        upstream_base_url: the provider's ``.../v1`` URL; ``None`` means OpenAI's default.
        upstream_api_key: the real key (only the gateway holds it); ``None`` reads
            ``OPENAI_API_KEY`` as the SDK does.
        cache: the response cache (its mode decides lookups and stores).
        prices: the price table for costs and the budget.
        budget_usd: a cap on the dollars spent (``None``: no cap). Each call's worst case is
            reserved before it is sent and settled with its real cost (see
            :mod:`pytest_alma.llm.budget`); under a budget a model with no known price is
            refused (402 ``alma_unknown_price``). Without a budget, unknown-price calls are made
            and counted as ``unknown_cost_calls``.
        max_concurrency: upstream calls in flight at once, across all clients.
        max_retries: the SDK's retries per call (429, 5xx, timeouts, connection errors), plus as
            many re-requests for a malformed 2xx body.
        timeout_s: the upstream timeout per attempt.
        initial_backoff_s / max_backoff_s: the retry backoff schedule (SDK default 0.5 / 8).
        cache_namespace: mixed into cache keys to keep providers that share model names apart
            (the session passes a fingerprint of ``--alma-base-url`` or ``--alma-upstream-name``;
            empty for the provider's default and for the scripted model).
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
        self.cache = cache
        self.prices = prices or PriceTable.default()
        self.budget_usd = budget_usd
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self._namespace = cache_namespace
        # The secret behind every token lives only in this object (and so only in the gateway's
        # process); the admin token is the controller's.
        self._tokens = TokenAuthority()
        #: The admin token: every endpoint, and minting worker and design tokens.
        self.token = self._tokens.mint(ADMIN)
        self._accounting = Accounting()
        self._budget = (
            None if budget_usd is None else Budget(budget_usd, self._accounting.charged_usd)
        )
        self._flights: SingleFlight[_Shared] = SingleFlight()
        self._upstream = Upstream(
            base_url=upstream_base_url,
            api_key=upstream_api_key,
            max_retries=max_retries,
            timeout_s=timeout_s,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
        )
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

    def mint(self, scope: str) -> str:
        """A token of ``scope`` (``"worker"``, ``"design:<name>"`` or ``"admin"``) for this
        gateway; see :mod:`pytest_alma.llm.tokens`.

        Raises:
            TokenError: ``scope`` is not a valid scope.
        """
        return self._tokens.mint(scope)

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
            "charged_usd": self._accounting.charged_usd(),
            "reserved_usd": self._budget.reserved_usd if self._budget is not None else 0.0,
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
        # Opened here, inside the gateway's own loop, which the SDK's connection pool binds to.
        self._upstream.open()
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", partial(self._model_call, "chat/completions"))
        app.router.add_post("/v1/embeddings", partial(self._model_call, "embeddings"))
        app.router.add_get("/alma/stats", self._stats)
        app.router.add_get("/alma/keys", self._get_keys)
        app.router.add_post("/alma/keys", self._post_keys)
        app.router.add_post("/alma/replay", self._post_replay)
        app.router.add_post("/alma/tokens", self._post_tokens)
        app.on_cleanup.append(self._close_upstream)
        return app

    async def _close_upstream(self, app: web.Application) -> None:
        await self._upstream.close()

    # -- handlers --------------------------------------------------------------------------

    def _token_scope(self, request: web.Request) -> str | None:
        """The verified scope of the request's bearer token, or ``None``."""
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() != "bearer":
            return None
        return self._tokens.verify(token.strip())

    def _admin_only(self, request: web.Request) -> web.Response | None:
        """The 401 or 403 reply to a request without the admin token; ``None`` if it has it."""
        scope = self._token_scope(request)
        if scope is None:
            return _error(401, _UNAUTHORISED, "authentication_error")
        if scope != ADMIN:
            return _error(
                403,
                f"{request.method} {request.path} needs the gateway's admin token (scope "
                f"'{ADMIN}'), which only the session controller holds; this token has scope "
                f"{scope!r}",
                "permission_error",
                "insufficient_scope",
            )
        return None

    def _budget_error(self, model: str, worst_usd: float) -> _Shared:
        assert self._budget is not None
        message = budget_exceeded_message(
            self._budget.limit_usd,
            self._accounting.charged_usd(),
            self._budget.reserved_usd,
            model,
            worst_usd,
        )
        return _Shared.failure(402, message, "alma_budget_exceeded", "budget_exceeded")

    def _unknown_price_error(self, model: str) -> _Shared:
        message = unknown_price_message(model)
        return _Shared.failure(402, message, "alma_unknown_price", "unknown_price")

    async def _stats(self, request: web.Request) -> web.Response:
        if (refused := self._admin_only(request)) is not None:
            return refused
        # Off the loop: stats() waits for queued cache stores to commit.
        stats = await asyncio.get_running_loop().run_in_executor(None, self.stats)
        return web.json_response(stats)

    async def _get_keys(self, request: web.Request) -> web.Response:
        if (refused := self._admin_only(request)) is not None:
            return refused
        # Off the loop: served_keys() waits for queued cache stores to commit.
        keys = await asyncio.get_running_loop().run_in_executor(None, self.served_keys)
        return web.json_response({"keys": keys, "replay_misses": self._replay_misses})

    async def _post_keys(self, request: web.Request) -> web.Response:
        if (refused := self._admin_only(request)) is not None:
            return refused
        self.record_keys()
        return web.json_response({"recording": True})

    async def _post_replay(self, request: web.Request) -> web.Response:
        if (refused := self._admin_only(request)) is not None:
            return refused
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

    async def _post_tokens(self, request: web.Request) -> web.Response:
        holder = self._token_scope(request)
        if holder is None:
            return _error(401, _UNAUTHORISED, "authentication_error")
        if design_name(holder) is not None:
            return _error(
                403,
                f"a design token (scope {holder!r}) cannot mint tokens; POST /alma/tokens needs "
                "a worker token (to mint design tokens) or the admin token",
                "permission_error",
                "insufficient_scope",
            )
        raw = await request.read()
        try:
            body = json.loads(raw) if len(raw) <= 4096 else None
            scope = body.get("scope") if isinstance(body, dict) else None
            if not isinstance(scope, str):
                raise TokenError('the body must be a JSON object {"scope": "..."}')
            check_scope(scope)
        except (json.JSONDecodeError, UnicodeDecodeError, TokenError) as err:
            return _error(400, f"cannot mint a token: {err}", "invalid_request_error")
        if not may_mint(holder, scope):
            needed = (
                "no token may mint an admin token (the gateway makes the only one)"
                if scope == ADMIN
                else f"minting a {scope!r} token needs the admin token (scope '{ADMIN}'); a "
                f"{holder!r} token can only mint '{DESIGN_PREFIX}<name>' tokens"
            )
            return _error(403, needed, "permission_error", "insufficient_scope")
        return web.json_response({"token": self._tokens.mint(scope), "scope": scope})

    def _served(self, key: str | None) -> None:
        if self._served_keys is not None and key is not None:
            with self._served_lock:
                self._served_keys.add(key)

    async def _model_call(self, endpoint: Endpoint, request: web.Request) -> web.Response:
        holder = self._token_scope(request)
        if holder is None:
            return _error(401, _UNAUTHORISED, "authentication_error")
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
        tag = request.headers.get(TAG_HEADER, "")
        scope = request.headers.get(SCOPE_HEADER, "")
        design = design_name(holder)
        if design is not None:
            # A design's own code holds this token: its calls are booked to it, whatever its
            # headers claim, so it can neither charge the agent nor another design.
            scope = design
            if not tag.startswith(DESIGN_TAG + "."):
                tag = DESIGN_TAG
        key = UsageKey(model, tag, scope)
        embedding = endpoint == "embeddings"

        cache_key: str | None = None
        if self.cache.reads:
            # Always computed here from the body forwarded upstream, never taken from the
            # client: a key chosen by the client would let it store this reply under another
            # request's key (cache poisoning). Replies not yet committed to the file are found
            # among those queued for the cache or committed last (CacheWriter.pending), and
            # identical calls in flight share one upstream call.
            cache_key = self.cache.key(endpoint, body, self._namespace)
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
                    if entry is None:
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

        if cache_key is None:
            shared = await self._upstream_call(endpoint, body, raw, key, cache_key)
            led = True
        else:
            # Identical requests in flight wait for one upstream call (see single_flight).
            shared, led = await self._flights.run(
                cache_key, partial(self._upstream_call, endpoint, body, raw, key, cache_key)
            )
        if shared.error is not None:
            status, message, kind, code = shared.error
            if not led:
                self._accounting.record_error(key)
            return _error(status, message, kind, code)
        assert shared.content is not None
        if led:
            state = "miss" if self.cache.reads else "off"
        else:
            # Answered by an identical call in flight: no upstream call, nothing spent.
            self._served(cache_key)
            self._accounting.record_call(
                key,
                shared.usage,
                embedding=embedding,
                cost_usd=self.prices.cost(model, shared.usage),
                cached=True,
                test_double=shared.test_double,
            )
            state = "hit"
        return web.Response(
            body=shared.content, content_type="application/json", headers={CACHE_HEADER: state}
        )

    async def _upstream_call(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        raw: bytes,
        key: UsageKey,
        cache_key: str | None,
    ) -> _Shared:
        """One upstream call under the budget and the concurrency limit, fully accounted."""
        model = key.model
        prompt_bound, completion_bound = worst_case_tokens(endpoint, body, raw)
        worst = self.prices.worst_case(model, prompt_bound, completion_bound)
        if self._budget is not None and worst is None:
            self._accounting.record_error(key)
            return self._unknown_price_error(model)
        assert self._semaphore is not None
        async with self._semaphore:
            # Reserved inside the slot, so only calls about to be sent hold reservations.
            if self._budget is not None and not await self._budget.reserve(worst or 0.0):
                self._accounting.record_error(key)
                return self._budget_error(model, worst or 0.0)
            try:
                outcome = await self._upstream.post(endpoint, raw)
            except BaseException:
                # Cancelled mid-call: the attempt may still be billed.
                self._accounting.add_at_risk(key, worst or 0.0)
                self._release(worst)
                raise
            # From here to the release, no await: the real cost is recorded before the
            # reservation is given back, so the budget never under-counts.
            if isinstance(outcome, Failure):
                self._accounting.record_error(
                    key,
                    retries=outcome.retries,
                    at_risk_usd=(worst or 0.0) * outcome.billable_attempts,
                )
                self._release(worst)
                return _Shared.failure(
                    424, outcome.message, "alma_upstream_error", "upstream_error"
                )
            shared = self._account_reply(endpoint, key, cache_key, outcome, worst)
            self._release(worst)
            return shared

    def _release(self, worst: float | None) -> None:
        if self._budget is not None:
            self._budget.release(worst or 0.0)

    def _account_reply(
        self,
        endpoint: Endpoint,
        key: UsageKey,
        cache_key: str | None,
        outcome: Reply,
        worst: float | None,
    ) -> _Shared:
        """Count a successful upstream reply, queue it for the cache, and share it."""
        model = key.model
        content, parsed, retries = outcome.content, outcome.parsed, outcome.retries
        usage = parsed.get("usage")
        test_double = (
            parsed.get("alma_test_double") is True
            or parsed.get("system_fingerprint") == SCRIPTED_FINGERPRINT
            or self.prices.is_test_double(model)
        )
        cost = self.prices.cost(model, usage)
        at_risk = (worst or 0.0) * retries  # retried attempts may be billed too
        if not usage and not test_double and cost is not None:
            cost = None  # a reply without usage has an unknown price: charge its worst case
            at_risk += worst or 0.0
        self._served(cache_key)
        if cache_key is not None and self._writer is not None:
            # Stored in the background, batched; repeats are answered from the queue meanwhile.
            # Queued before the call leaves the in-flight table, so a request that arrives after
            # it never goes upstream again.
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
            embedding=endpoint == "embeddings",
            cost_usd=cost,
            cached=False,
            retries=retries,
            test_double=test_double,
        )
        self._accounting.add_at_risk(key, at_risk)
        return _Shared(content=content, usage=usage, test_double=test_double)
