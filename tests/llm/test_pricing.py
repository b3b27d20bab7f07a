"""Prices, costs, overrides, unknown models and the test double."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_alma.llm.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, cost

USAGE = {
    "prompt_tokens": 1_000_000,
    "completion_tokens": 500_000,
    "prompt_tokens_details": {"cached_tokens": 200_000},
}


def test_default_table_has_the_common_models() -> None:
    for model in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ]:
        assert model in DEFAULT_PRICES


def test_cost_uses_input_cached_and_output_rates() -> None:
    # gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out per 1M.
    assert cost("gpt-4o-mini", USAGE) == pytest.approx(0.8 * 0.15 + 0.2 * 0.075 + 0.5 * 0.60)


def test_dated_snapshot_is_priced_exactly_never_as_its_alias() -> None:
    # gpt-4o-2024-05-13 sold at $5 / $15 with no cached discount: twice the gpt-4o alias.
    assert cost("gpt-4o-2024-05-13", USAGE) == pytest.approx(1.0 * 5.00 + 0.5 * 15.00)
    assert cost("gpt-4o", USAGE) == pytest.approx(0.8 * 2.50 + 0.2 * 1.25 + 0.5 * 10.00)
    assert cost("gpt-4o-mini-2024-07-18", USAGE) == cost("gpt-4o-mini", USAGE)  # same list price
    # A snapshot the table lacks is unknown, not its alias's price.
    assert cost("gpt-4o-2099-01-01", USAGE) is None
    assert "gpt-4o-2099-01-01" not in PriceTable.default()


def test_worst_case_takes_every_prompt_token_at_the_full_rate() -> None:
    table = PriceTable.default()
    assert table.worst_case("gpt-4o-mini", 1_000_000, 500_000) == pytest.approx(0.15 + 0.30)
    assert table.worst_case("my-local-model", 10, 10) is None
    assert table.worst_case("scripted", 10**9, 10**9) == 0.0


def test_embedding_cost() -> None:
    assert cost("text-embedding-3-small", {"prompt_tokens": 1_000_000}) == pytest.approx(0.02)


def test_unknown_price_is_none_never_zero() -> None:
    assert cost("my-local-llama", USAGE) is None
    assert cost("gpt-4o-mini-turbo", USAGE) is None  # no prefix guessing
    assert "my-local-llama" not in PriceTable()


def test_scripted_model_is_free_and_flagged() -> None:
    table = PriceTable()
    assert table.cost("scripted", USAGE) == 0.0
    assert table.is_test_double("scripted-baba")
    assert not table.is_test_double("gpt-4o")


def test_overrides_from_dict(tmp_path: Path) -> None:
    table = PriceTable().with_overrides(
        {
            "local": {"input": 1.0, "output": 2.0},
            "gpt-4o": [1.0, 0.5, 4.0],
            "other": ModelPrice(input=3.0),
        }
    )
    assert table.cost("local", {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}) == 3.0
    assert table.price("gpt-4o") == ModelPrice(input=1.0, cached_input=0.5, output=4.0)
    assert table.cost("other", {"prompt_tokens": 1_000_000}) == 3.0
    assert PriceTable().price("gpt-4o") == DEFAULT_PRICES["gpt-4o"]  # the original is unchanged


def test_overrides_from_json_and_toml(tmp_path: Path) -> None:
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps({"a": {"input": 1, "cached_input": 0.1, "output": 2}}))
    toml_file = tmp_path / "prices.toml"
    toml_file.write_text('[b]\ninput = 0.5\noutput = 1.5\n\n["gpt-4o"]\ninput = 9\noutput = 9\n')
    table = PriceTable().with_overrides(json_file).with_overrides(str(toml_file))
    assert table.price("a") == ModelPrice(input=1.0, cached_input=0.1, output=2.0)
    assert table.price("b") == ModelPrice(input=0.5, output=1.5)
    assert table.price("gpt-4o") == ModelPrice(input=9.0, output=9.0)


def test_bad_override_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="price for 'x'"):
        PriceTable().with_overrides({"x": {"inptu": 1.0}})
    with pytest.raises(ValueError, match="USD per 1M tokens"):
        PriceTable().with_overrides({"x": "cheap"})


def test_table_json_round_trip() -> None:
    table = PriceTable()
    assert PriceTable({}).with_overrides(table.to_json()).to_json() == table.to_json()
