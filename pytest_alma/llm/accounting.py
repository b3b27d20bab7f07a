"""Token, call and dollar counters, keyed by (model, tag, scope).

Token counts are *logical*: a reply served from the cache still counts the tokens it carries, so a
re-run from cache reports the same token use per episode. Dollars are *spent* money: only calls
that went upstream add to ``cost_usd``; what cache hits (and calls answered by an identical call
in flight) would have cost goes to ``saved_usd``. ``at_risk_usd`` is the worst case of upstream
attempts that brought back no priced reply (retried or timed-out attempts, replies without a
``usage``): providers may bill them, so the budget counts them, but they are not in ``cost_usd``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple


@dataclass(frozen=True)
class TokenUsage:
    """Token counts of one or more chat calls (``reasoning`` is included in ``completion``,
    ``cached_prompt`` in ``prompt``)."""

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0
    total: int = 0
    cached_prompt: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt + other.prompt,
            self.completion + other.completion,
            self.reasoning + other.reasoning,
            self.total + other.total,
            self.cached_prompt + other.cached_prompt,
        )

    def to_openai(self) -> dict[str, Any]:
        """These counts as an OpenAI ``usage`` object (what :class:`PriceTable` prices)."""
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.total,
            "prompt_tokens_details": {"cached_tokens": self.cached_prompt},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning},
        }

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """Read an OpenAI ``usage`` object (chat or embeddings shape); missing fields are 0."""
        if not usage:
            return cls()
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("completion_tokens_details") or {}
        prompt_details = usage.get("prompt_tokens_details") or {}
        total = usage.get("total_tokens")
        return cls(
            prompt=prompt,
            completion=completion,
            reasoning=int(details.get("reasoning_tokens") or 0),
            total=int(total) if total is not None else prompt + completion,
            cached_prompt=min(int(prompt_details.get("cached_tokens") or 0), prompt),
        )


class UsageKey(NamedTuple):
    """What the counters are split by: model, the caller's tag and scope (e.g. a design name)."""

    model: str
    tag: str = ""
    scope: str = ""


@dataclass
class UsageCounters:
    """The counters of one :class:`UsageKey`. All fields add up under :meth:`merge`."""

    calls: int = 0  # answered calls, from upstream or from the cache
    cache_hits: int = 0
    errors: int = 0  # calls that ended in an error (after all retries)
    retries: int = 0  # upstream retries the SDK made (observable through its retry header)
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    embedding_tokens: int = 0
    cost_usd: float = 0.0  # spent on upstream calls with a known price
    saved_usd: float = 0.0  # what the cache hits would have cost
    at_risk_usd: float = 0.0  # worst case of attempts with no priced reply (budget counts it)
    unknown_cost_calls: int = 0  # calls whose price is unknown: cost_usd is a lower bound
    test_double_calls: int = 0  # calls answered by the scripted model (not an LLM)

    def merge(self, other: UsageCounters) -> UsageCounters:
        """Field-wise sum (a new object)."""
        return UsageCounters(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def tokens(self) -> TokenUsage:
        """The chat token counts as a :class:`TokenUsage` (embedding tokens excluded)."""
        return TokenUsage(
            prompt=self.prompt_tokens,
            completion=self.completion_tokens,
            reasoning=self.reasoning_tokens,
            total=self.prompt_tokens + self.completion_tokens,
            cached_prompt=self.cached_prompt_tokens,
        )


@dataclass
class Accounting:
    """Counters per :class:`UsageKey`; thread-safe, mergeable and JSON round-trippable."""

    entries: dict[UsageKey, UsageCounters] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The gateway updates from its loop thread while the controller reads from another.
        self._lock = threading.Lock()

    def _entry(self, key: UsageKey) -> UsageCounters:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = UsageCounters()
        return entry

    def record_call(
        self,
        key: UsageKey,
        usage: Mapping[str, Any] | None,
        *,
        embedding: bool,
        cost_usd: float | None,
        cached: bool,
        retries: int = 0,
        test_double: bool = False,
    ) -> None:
        """Count one answered call and its ``usage`` (OpenAI shape) and price.

        ``cost_usd`` is what the call costs at list price (``None`` = unknown price); it counts as
        spent for an upstream call and as saved for a cache hit.
        """
        usage = usage or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        with self._lock:
            entry = self._entry(key)
            entry.calls += 1
            entry.retries += retries
            if cached:
                entry.cache_hits += 1
            if test_double:
                entry.test_double_calls += 1
            if embedding:
                entry.embedding_tokens += prompt
            else:
                tokens = TokenUsage.from_openai(usage)
                entry.prompt_tokens += tokens.prompt
                entry.cached_prompt_tokens += tokens.cached_prompt
                entry.completion_tokens += tokens.completion
                entry.reasoning_tokens += tokens.reasoning
            if cost_usd is None:
                entry.unknown_cost_calls += 1
            elif cached:
                entry.saved_usd += cost_usd
            else:
                entry.cost_usd += cost_usd

    def record_error(self, key: UsageKey, *, retries: int = 0, at_risk_usd: float = 0.0) -> None:
        """Count one call that failed for good (``at_risk_usd``: see :meth:`add_at_risk`)."""
        with self._lock:
            entry = self._entry(key)
            entry.errors += 1
            entry.retries += retries
            entry.at_risk_usd += at_risk_usd

    def add_at_risk(self, key: UsageKey, usd: float) -> None:
        """Count the worst case of upstream attempts that brought back no priced reply."""
        if usd:
            with self._lock:
                self._entry(key).at_risk_usd += usd

    def spent_usd(self) -> float:
        """Dollars spent so far (unknown-price calls add nothing; see ``unknown_cost_calls``)."""
        with self._lock:
            return sum(e.cost_usd for e in self.entries.values())

    def charged_usd(self) -> float:
        """What the budget counts: dollars spent plus the worst case of attempts at risk."""
        with self._lock:
            return sum(e.cost_usd + e.at_risk_usd for e in self.entries.values())

    def totals(self) -> UsageCounters:
        """All entries summed."""
        with self._lock:
            total = UsageCounters()
            for entry in self.entries.values():
                total = total.merge(entry)
            return total

    def merge(self, other: Accounting) -> Accounting:
        """A new accounting holding the sum of both."""
        merged = Accounting()
        for source in (self, other):
            with source._lock:
                items = list(source.entries.items())
            for key, counters in items:
                merged.entries[key] = merged.entries.get(key, UsageCounters()).merge(counters)
        return merged

    __add__ = merge

    def copy(self) -> Accounting:
        """A consistent snapshot."""
        return self.merge(Accounting())

    def to_json(self) -> dict[str, Any]:
        """``{"entries": [{model, tag, scope, <counters>}...], "totals": {...}}``."""
        with self._lock:
            items = sorted(self.entries.items())
        return {
            "entries": [{**key._asdict(), **asdict(counters)} for key, counters in items],
            "totals": asdict(self.totals()),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Accounting:
        """Inverse of :meth:`to_json` (``totals`` is recomputed, not read)."""
        names = {f.name for f in fields(UsageCounters)}
        result = cls()
        rows: Iterable[Mapping[str, Any]] = data.get("entries", [])
        for row in rows:
            key = UsageKey(str(row["model"]), str(row.get("tag", "")), str(row.get("scope", "")))
            counters = UsageCounters(**{k: v for k, v in row.items() if k in names})
            result.entries[key] = result.entries.get(key, UsageCounters()).merge(counters)
        return result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Accounting):
            return NotImplemented
        # Entries only: totals are float sums whose value depends on summation order.
        return self.copy().entries == other.copy().entries
