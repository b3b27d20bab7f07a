"""Single-flight: identical requests in flight wait for one call instead of each making their own.

Without it, two identical requests that arrive together both miss the cache, both go upstream,
and the first reply stored wins: the run that recorded the cache saw two replies (which may
differ when the server samples) while its replay sees one. With it, the first request (the
leader) makes the call and the others (followers) get the leader's outcome.

Only an *outcome the leader returns* is shared, errors included (an identical request sent to a
failing upstream at the same moment would fail the same way, and retrying it once per follower
would multiply the load on a struggling provider). Nothing is kept after the leader finishes, so
a request that arrives later makes its own call: errors are never cached. A leader that is
cancelled or raises shares nothing: one of its followers becomes the leader and calls again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Calls in flight by key, on one event loop."""

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``call()``'s outcome and whether this request made the call (False: it shared the
        outcome of an identical request in flight)."""
        while True:
            flight = self._flights.get(key)
            if flight is None:
                break
            try:
                # shield: a follower that is cancelled must not cancel the leader's call.
                return await asyncio.shield(flight), False
            except asyncio.CancelledError:
                if not flight.cancelled():
                    raise  # this follower itself was cancelled
                # The leader gave up without an outcome: the next waiter leads.
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            outcome = await call()
        except BaseException:
            future.cancel()
            raise
        finally:
            # Removed in the same step as the outcome is set: a request arriving afterwards
            # finds the reply in the cache (the leader queued it before returning) or calls.
            if self._flights.get(key) is future:
                del self._flights[key]
        future.set_result(outcome)
        return outcome, True
