"""The session's dollar budget as a cap: each call's worst case is reserved before it is sent.

A check followed by a send lets every call in flight pass the same check (16 workers at once), so
the gateway instead *reserves* a call's worst case against the budget, in one step with the check
(no ``await`` between them, on the gateway's single event loop), and settles it with the real
cost when the reply comes. A call is admitted only when what is charged so far, plus what is
reserved by calls in flight, plus its own worst case fits in the budget; a call that does not fit
waits for the calls in flight to settle (their real cost is usually far below their worst case)
and is refused only when it would not fit with nothing in flight. So the spend never exceeds the
budget as long as each call costs at most its worst case, and a refused call means the budget
has less than one worst case left.

The worst case of a call (see :func:`worst_case_tokens`) is

* prompt: the byte length of the request body. A BPE token covers at least one byte of text and
  the per-message framing tokens are fewer than the JSON framing bytes around each message, so
  this bounds the prompt tokens of text requests (it is about four times the usual count, which
  only matters for the last few calls of a budget);
* completion: ``max_completion_tokens`` or ``max_tokens`` times ``n``; a call that sets neither
  is assumed to produce at most :data:`UNCAPPED_COMPLETION_TOKENS` (an assumption, not a bound:
  agent calls always send ``--alma-max-tokens``; design and meta-agent calls should set one).

Every prompt token is taken at the full input rate (no cache discount). Attempts that brought back
no priced reply (retries, timeouts, a reply without ``usage``) stay charged at their worst case
(``at_risk_usd`` in the accounting): providers may bill them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

#: Completion tokens assumed for a chat call that sets no ``max_tokens`` /
#: ``max_completion_tokens``: gpt-4o's output cap (16384) would make small budgets refuse every
#: such call, and the design and meta-agent replies this covers are rarely a quarter of it.
UNCAPPED_COMPLETION_TOKENS = 4096


def worst_case_tokens(endpoint: str, body: Mapping[str, Any], raw: bytes) -> tuple[int, int]:
    """(prompt, completion) token bounds of a request (see the module docstring)."""
    if endpoint == "embeddings":
        return len(raw), 0
    completion = UNCAPPED_COMPLETION_TOKENS
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            completion = value
            break
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        completion *= choices
    return len(raw), completion


class Budget:
    """Reservations against a dollar limit, on one event loop (the gateway's).

    Args:
        limit_usd: the budget.
        charged_usd: what is charged so far (spent plus at risk), read at every admission.
    """

    def __init__(self, limit_usd: float, charged_usd: Callable[[], float]) -> None:
        self.limit_usd = limit_usd
        self._charged_usd = charged_usd
        self._reserved_usd = 0.0
        self._holders = 0
        self._changed: asyncio.Event | None = None

    @property
    def reserved_usd(self) -> float:
        """The worst cases of the calls in flight."""
        return self._reserved_usd

    def try_reserve(self, usd: float) -> bool:
        """Reserve ``usd`` if it fits now (synchronous: the check and the reservation are one
        step, so no other call can pass the same check in between)."""
        if self._charged_usd() + self._reserved_usd + usd > self.limit_usd:
            return False
        self._reserved_usd += usd
        self._holders += 1
        return True

    async def reserve(self, usd: float) -> bool:
        """Reserve ``usd``, waiting for calls in flight to settle while it does not fit; False
        when it does not fit with nothing in flight (the call must be refused)."""
        while not self.try_reserve(usd):
            if self._holders == 0:
                return False
            if self._changed is None:
                self._changed = asyncio.Event()
            # No await between the failed check and this wait: a release cannot slip between.
            await self._changed.wait()
        return True

    def release(self, usd: float) -> None:
        """Give a reservation back. Record the call's real cost *before* this (with no await in
        between), so that charged plus reserved never under-counts."""
        self._holders -= 1
        self._reserved_usd = 0.0 if self._holders == 0 else self._reserved_usd - usd
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()


def budget_exceeded_message(
    limit_usd: float, charged_usd: float, reserved_usd: float, model: str, worst_usd: float
) -> str:
    """Why a call was refused because its worst case does not fit, and how to fix it."""
    return (
        f"The LLM budget of ${limit_usd:.4f} for this session cannot cover this call: "
        f"${charged_usd:.4f} is spent or at risk and ${reserved_usd:.4f} is reserved by calls in "
        f"flight, and this {model!r} call may cost up to ${worst_usd:.4f} (its prompt plus "
        "its max_tokens at list price), so it was not sent. Cached replies are still served. "
        "Raise the cap with --alma-budget-usd=<dollars> (or the alma_budget_usd ini option), "
        "or lower --alma-max-tokens."
    )


def unknown_price_message(model: str) -> str:
    """Why a call to an unpriced model was refused under a budget, and how to price it."""
    return (
        f"model {model!r} has no known price, and under a budget (--alma-budget-usd) every "
        "call is priced before it is sent, so it was not sent. Price it in a JSON or TOML "
        f'file given with --alma-prices=FILE, e.g. {{"{model}": {{"input": 0.15, '
        '"cached_input": 0.075, "output": 0.6}} in USD per million tokens (all 0 for a free '
        "local server; a dated snapshot needs its own entry), or run without a budget."
    )
