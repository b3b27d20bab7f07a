"""Model strings with an optional reasoning effort."""

from __future__ import annotations

import pytest

from pytest_alma.llm.models import ModelSpec, parse_model


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gpt-5-nano/low", ModelSpec("gpt-5-nano", "low")),
        ("gpt-5-mini/medium", ModelSpec("gpt-5-mini", "medium")),
        ("gpt-5/HIGH", ModelSpec("gpt-5", "high")),
        ("o3/minimal", ModelSpec("o3", "minimal")),
        ("gpt-4o-mini", ModelSpec("gpt-4o-mini", None)),
        (" gpt-4o ", ModelSpec("gpt-4o", None)),
        # OpenAI-compatible servers use slashes in model names.
        ("Qwen/Qwen2.5-7B-Instruct", ModelSpec("Qwen/Qwen2.5-7B-Instruct", None)),
        ("meta-llama/Llama-3.1-8B/low", ModelSpec("meta-llama/Llama-3.1-8B", "low")),
    ],
)
def test_parse_model(spec: str, expected: ModelSpec) -> None:
    assert parse_model(spec) == expected


def test_str_round_trips() -> None:
    assert str(parse_model("gpt-5-nano/low")) == "gpt-5-nano/low"
    assert str(parse_model("gpt-4o")) == "gpt-4o"


@pytest.mark.parametrize("spec", ["gpt-5-nano/lwo", "gpt-5/extreme", "o3/fast"])
def test_bad_effort_is_a_clear_error(spec: str) -> None:
    with pytest.raises(
        ValueError, match=r"reasoning effort .* not one of high, low, medium, minimal"
    ):
        parse_model(spec)


@pytest.mark.parametrize("spec", ["", "  ", "/low"])
def test_missing_name(spec: str) -> None:
    with pytest.raises(ValueError, match="model"):
        parse_model(spec)
