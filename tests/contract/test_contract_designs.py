"""The contract check passes for every shipped design, under the deterministic "ci" profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_alma.contract.run import check_design
from pytest_alma.sandbox.static_find import find_design

REPO = Path(__file__).resolve().parents[2]
DESIGNS = sorted((REPO / "baselines").glob("*.py")) + sorted((REPO / "designs").glob("*.py"))


@pytest.mark.parametrize("path", DESIGNS, ids=[p.stem for p in DESIGNS])
def test_shipped_design_meets_the_contract(path: Path) -> None:
    check_design(find_design(path), profile="ci")
