"""Fault plans from command-line strings."""

from __future__ import annotations

import pytest

from pytest_alma.llm.faults import FaultPlan


def test_parse_indices() -> None:
    plan = FaultPlan.parse("429@1,500@2,timeout@3,malformed@4,slow@6-7")
    assert [plan.decide(i) for i in range(1, 9)] == [
        "429",
        "500",
        "timeout",
        "malformed",
        None,
        "slow",
        "slow",
        None,
    ]


def test_parse_probability_and_options() -> None:
    plan = FaultPlan.parse("429:0.2, seed=7, hang=3, slow=0.05")
    assert plan.probabilities == {"429": 0.2} and plan.seed == 7
    assert plan.hang_s == 3.0 and plan.slow_s == 0.05
    draws = [plan.decide(i) for i in range(1, 2001)]
    assert 0.15 < draws.count("429") / len(draws) < 0.25
    # Deterministic per (seed, index), independent of call order.
    assert [plan.decide(i) for i in reversed(range(1, 2001))] == draws[::-1]
    assert FaultPlan.parse("429:0.2,seed=8").decide(1) in ("429", None)


def test_certain_fault_and_empty_plan() -> None:
    assert all(FaultPlan.parse("500:1").decide(i) == "500" for i in range(1, 50))
    assert FaultPlan.parse("").empty and FaultPlan().decide(1) is None


@pytest.mark.parametrize("spec", ["404@1", "429@x", "429:2", "bogus", "color=red", "500@0"])
def test_bad_specs_are_clear_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        FaultPlan.parse(spec)
