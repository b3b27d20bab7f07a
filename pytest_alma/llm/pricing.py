"""Prices in USD per 1M tokens, and the cost of one call's usage.

An unknown model has an unknown price: :meth:`PriceTable.cost` returns ``None`` then, never 0.0,
so a report can say "cost unknown" instead of quietly claiming a run was free. The scripted test
model is the one thing that costs exactly 0.0, and :meth:`PriceTable.is_test_double` flags it.

Names are priced exactly as written. A dated snapshot (``gpt-4o-2024-05-13``) is its own entry
and never borrows its alias's price: snapshots of one alias were sold at different prices (that
one at $5/$15, twice today's ``gpt-4o``), so a snapshot the table lacks is unknown until it is
added with ``--alma-prices``. Calls are priced by the model name the request asked for (an alias
bills at the alias's price whatever snapshot serves it), not by the name the reply reports.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Model names served by :class:`pytest_alma.llm.scripted.ScriptedServer` by convention: anything
#: equal to or starting with this prefix is the deterministic test double, never an LLM.
SCRIPTED_MODEL_PREFIX = "scripted"


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens. ``cached_input`` ``None`` means cached tokens bill at ``input``."""

    input: float
    output: float = 0.0
    cached_input: float | None = None


# Standard-tier list prices, USD per 1M tokens (input, cached input, output), as published on
# openai.com/api/pricing on 2025-08-07 (the GPT-5 launch) and cross-checked against third-party
# price listings. Prices change: override them (PriceTable.with_overrides / --alma-prices file)
# rather than trusting this table for billing.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4.1": ModelPrice(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": ModelPrice(input=0.10, cached_input=0.025, output=0.40),
    "gpt-5": ModelPrice(input=1.25, cached_input=0.125, output=10.00),
    "gpt-5-mini": ModelPrice(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5-nano": ModelPrice(input=0.05, cached_input=0.005, output=0.40),
    # Dated snapshots, each at its own list price (same source). gpt-4o-2024-05-13 has no
    # cached-input discount.
    "gpt-4o-2024-05-13": ModelPrice(input=5.00, output=15.00),
    "gpt-4o-2024-08-06": ModelPrice(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-2024-11-20": ModelPrice(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-mini-2024-07-18": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4.1-2025-04-14": ModelPrice(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini-2025-04-14": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano-2025-04-14": ModelPrice(input=0.10, cached_input=0.025, output=0.40),
    "gpt-5-2025-08-07": ModelPrice(input=1.25, cached_input=0.125, output=10.00),
    "gpt-5-mini-2025-08-07": ModelPrice(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5-nano-2025-08-07": ModelPrice(input=0.05, cached_input=0.005, output=0.40),
    "text-embedding-3-small": ModelPrice(input=0.02),
    "text-embedding-3-large": ModelPrice(input=0.13),
}


def _price_from_json(model: str, value: Any) -> ModelPrice:
    """Accept ``{"input": .., "cached_input": .., "output": ..}`` or ``[input, cached, output]``."""
    try:
        if isinstance(value, Mapping):
            unknown = set(value) - {"input", "cached_input", "output"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            cached = value.get("cached_input")
            return ModelPrice(
                input=float(value["input"]),
                output=float(value.get("output", 0.0)),
                cached_input=None if cached is None else float(cached),
            )
        if isinstance(value, list | tuple) and len(value) == 3:
            return ModelPrice(
                input=float(value[0]), cached_input=float(value[1]), output=float(value[2])
            )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"price for {model!r} is invalid ({err}): {value!r}") from err
    raise ValueError(
        f"price for {model!r} must be {{'input': .., 'cached_input': .., 'output': ..}} "
        f"or [input, cached_input, output] in USD per 1M tokens, got {value!r}"
    )


class PriceTable:
    """A model -> :class:`ModelPrice` table (USD per 1M tokens)."""

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None):
        self._prices: dict[str, ModelPrice] = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def default(cls) -> PriceTable:
        """The built-in OpenAI table (see :data:`DEFAULT_PRICES`)."""
        return cls()

    def with_overrides(self, overrides: Mapping[str, Any] | Path | str) -> PriceTable:
        """A new table with entries replaced or added.

        ``overrides`` is a dict (model -> price as :class:`ModelPrice`, a mapping or a 3-list) or
        the path of a JSON or TOML file holding such a mapping (TOML: one table per model, e.g.
        ``["my-model"]`` with ``input = 0.1`` and ``output = 0.2``).
        """
        if isinstance(overrides, Path | str):
            overrides = load_price_file(overrides)
        merged = dict(self._prices)
        for model, value in overrides.items():
            merged[model] = (
                value if isinstance(value, ModelPrice) else _price_from_json(model, value)
            )
        return PriceTable(merged)

    def price(self, model: str) -> ModelPrice | None:
        """The price of ``model`` exactly as named, or ``None`` (a dated snapshot the table
        lacks is unknown: it never borrows its alias's price)."""
        if self.is_test_double(model):
            return ModelPrice(input=0.0, cached_input=0.0, output=0.0)
        return self._prices.get(model)

    @staticmethod
    def is_test_double(model: str) -> bool:
        """True for the scripted model's names: its 0.0 cost is not an LLM's cost."""
        return model.startswith(SCRIPTED_MODEL_PREFIX)

    def cost(self, model: str, usage: Mapping[str, Any] | None) -> float | None:
        """USD for one call's OpenAI-shaped ``usage``; ``None`` when the price is unknown.

        Cached prompt tokens (``prompt_tokens_details.cached_tokens``) bill at the cached rate;
        reasoning tokens are part of ``completion_tokens`` and bill at the output rate.
        """
        price = self.price(model)
        if price is None:
            return None
        if not usage:
            return 0.0
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached = min(int(details.get("cached_tokens") or 0), prompt)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        dollars = (prompt - cached) * price.input + cached * cached_rate + completion * price.output
        return dollars / 1_000_000

    def worst_case(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD of a call of at most these token counts, every prompt token at the full input
        rate (no cache discount); ``None`` when the price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000

    def to_json(self) -> dict[str, dict[str, float | None]]:
        """The table as plain JSON (the format :meth:`with_overrides` accepts)."""
        return {
            model: {"input": p.input, "cached_input": p.cached_input, "output": p.output}
            for model, p in sorted(self._prices.items())
        }

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.price(model) is not None


def load_price_file(path: Path | str) -> dict[str, Any]:
    """Read a JSON (``.json``) or TOML (anything else) price file into a plain mapping."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"price file {path} must hold a mapping of model -> price")
    return data


def cost(
    model: str, usage: Mapping[str, Any] | None, table: PriceTable | None = None
) -> float | None:
    """Shortcut for ``(table or PriceTable.default()).cost(model, usage)``."""
    return (table or _DEFAULT_TABLE).cost(model, usage)


_DEFAULT_TABLE = PriceTable()
