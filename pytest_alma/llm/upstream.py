"""The provider behind the gateway: one ``openai`` SDK client and the raw call with its retries.

:class:`Upstream` forwards a client's request bytes unchanged (no re-serialisation) and reads the
reply. It retries what the SDK retries (429, 5xx, timeouts, connection errors, with the SDK's
exponential backoff, rescaled by :class:`UpstreamClient`) and, with its own backoff, a 2xx reply
whose body is not the expected JSON object. Its outcome is a :class:`Reply` or a
:class:`Failure`, each with the number of retries made, so that the gateway can count every
attempt a provider may bill (see :mod:`pytest_alma.llm.budget`). It knows nothing about the
cache, the budget or the accounting: the gateway (:mod:`pytest_alma.llm.gateway`) does those.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
import openai
from openai._models import FinalRequestOptions  # only for the retry-delay override's signature

Endpoint = Literal["chat/completions", "embeddings"]

# The SDK marks each attempt with this header; the final attempt's value is the retry count.
_RETRY_COUNT_HEADER = "x-stainless-retry-count"
_SDK_INITIAL_RETRY_DELAY = 0.5  # openai._constants.INITIAL_RETRY_DELAY


class UpstreamClient(openai.AsyncOpenAI):
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


def _retries_of(request: httpx2.Request | None) -> int:
    if request is None:
        return 0
    try:
        return int(request.headers.get(_RETRY_COUNT_HEADER, "0"))
    except ValueError:
        return 0


@dataclass(frozen=True)
class Reply:
    """A successful upstream reply: its bytes, the parsed JSON object, and the retries made."""

    content: bytes
    parsed: dict[str, Any]
    retries: int


@dataclass(frozen=True)
class Failure:
    """No reply after all retries: why, and the retries made."""

    message: str
    retries: int
    #: Whether the final attempt may have been billed (timeouts, 5xx, malformed replies).
    billable: bool = True

    @property
    def billable_attempts(self) -> int:
        """The attempts a provider may bill: every retried one, plus the last if billable."""
        return self.retries + (1 if self.billable else 0)


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


class Upstream:
    """The provider's endpoints, reached through one SDK client.

    Args:
        base_url: the provider's ``.../v1`` URL; ``None`` means OpenAI's default.
        api_key: the real key; ``None`` reads ``OPENAI_API_KEY`` as the SDK does.
        max_retries: the SDK's retries per call, plus as many re-requests for a malformed 2xx.
        timeout_s: the timeout per attempt.
        initial_backoff_s / max_backoff_s: the retry backoff schedule (SDK default 0.5 / 8).
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        max_retries: int,
        timeout_s: float,
        initial_backoff_s: float,
        max_backoff_s: float,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._client: UpstreamClient | None = None

    def open(self) -> None:
        """Create the SDK client. Call it inside the event loop that will use it: the SDK's
        connection pool is bound to that loop, and ONE client serves all requests so that its
        keep-alive connections are reused.

        Raises:
            ValueError: there is no API key (none given and ``OPENAI_API_KEY`` unset).
        """
        try:
            # The SDK's aiohttp transport (its "aiohttp" extra): measured ~0.5 ms faster per call
            # than the default httpx transport, and aiohttp is already a dependency. Retries,
            # timeouts and error types stay the SDK's, as they live above the transport.
            http_client = openai.DefaultAioHttpClient()
        except RuntimeError:  # the SDK could not import its aiohttp transport
            http_client = None
        try:
            self._client = UpstreamClient(
                base_url=self.base_url,
                api_key=self._api_key,
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

    async def close(self) -> None:
        """Close the SDK client (idempotent)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def post(self, endpoint: Endpoint, raw: bytes) -> Reply | Failure:
        """Send ``raw`` (the client's request body) to ``endpoint``, retrying; never raises for
        an upstream error (a :class:`Failure` says what went wrong)."""
        assert self._client is not None, "Upstream.open() was not called"
        retries = 0
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._client.post(
                    f"/{endpoint}",
                    cast_to=httpx2.Response,
                    content=raw,
                    options={"headers": {"Content-Type": "application/json"}},
                )
            except openai.APIStatusError as err:
                retries += _retries_of(err.response.request)
                return Failure(
                    f"upstream answered HTTP {err.status_code} after {retries} retries: "
                    f"{err.message}",
                    retries,
                    # A rejected request (4xx) is not billed; a server error may have been.
                    billable=err.status_code >= 500,
                )
            except openai.APITimeoutError as err:
                retries += _retries_of(err.request)
                return Failure(
                    f"upstream did not answer within {self.timeout_s:g}s "
                    f"({retries + 1} attempts, {retries} retries)",
                    retries,
                )
            except openai.APIConnectionError as err:
                retries += _retries_of(err.request)
                return Failure(
                    f"cannot connect to upstream {self.base_url or 'api.openai.com'} "
                    f"after {retries} retries: {err.__cause__ or err}",
                    retries,
                )
            retries += _retries_of(response.request)
            try:
                return Reply(response.content, _parse_reply(response.content, endpoint), retries)
            except _Malformed as err:
                if attempt == self.max_retries:
                    return Failure(
                        f"upstream answered HTTP {response.status_code} with a malformed body "
                        f"after {retries} retries: {err}",
                        retries,
                    )
                retries += 1
                # The SDK only retries on statuses, so a malformed 2xx gets our own backoff.
                delay = min(self._initial_backoff_s * 2**attempt, self._max_backoff_s)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop always returns")
