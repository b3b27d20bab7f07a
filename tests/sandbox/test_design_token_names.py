"""Any design file name gets a valid design token (the token format allows fewer characters)."""

from __future__ import annotations

import pytest

from pytest_alma.design_processes import token_name
from pytest_alma.llm.tokens import DESIGN_NAME, design_scope


@pytest.mark.parametrize(
    "name", ["example_rules", "my-design.v2", "désign v2", "a" * 200, "设计", "x y", "x_y"]
)
def test_every_file_name_maps_to_a_valid_scope(name: str) -> None:
    mapped = token_name(name)
    assert DESIGN_NAME.fullmatch(mapped), mapped
    assert design_scope(mapped) == f"design:{mapped}"


def test_valid_names_are_kept_and_others_stay_distinct() -> None:
    assert token_name("example_rules") == "example_rules"
    # "x y" and "x_y" would both read "x_y" with the characters replaced: the digest keeps them
    # apart, so one design's calls are never booked to the other.
    assert token_name("x y") != token_name("x_y") == "x_y"
