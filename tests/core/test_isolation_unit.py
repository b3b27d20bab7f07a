"""Unit checks of the harness's own hygiene (the sandbox's behaviour is in tests/sandbox and
tests/e2e/test_hostile_designs.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_alma import isolation
from pytest_alma.sandbox.host import check_json_size


def test_json_size_rejects_huge_string_and_deep_nesting() -> None:
    huge = "a" * 100_000_000
    with pytest.raises(ValueError, match="more than 4,000,000 characters"):
        check_json_size({"x": huge})
    with pytest.raises(ValueError, match="nests deeper than 200"):
        deep: Any = []
        for _ in range(300):
            deep = [deep]
        check_json_size({"x": deep})
    cycle: dict[str, Any] = {}
    cycle["me"] = cycle
    with pytest.raises(ValueError, match="contains itself"):
        check_json_size(cycle)
    check_json_size({"a": [1, "bc"], "b": "x" * 3_900_000})  # under the limit: no error
    shared = [1, 2]
    check_json_size({"a": shared, "b": shared})  # the same list twice is no cycle


def test_secret_names() -> None:
    env = {"OPENAI_API_KEY": "k", "COPY": "k", "HF_TOKEN": "t", "HOME": "/root"}
    assert sorted(isolation.secret_names(env, "OPENAI_API_KEY")) == [
        "COPY",
        "HF_TOKEN",
        "OPENAI_API_KEY",
    ]


def test_scrub_and_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "secret")
    monkeypatch.setenv("ALMA_BASE_URL", "http://x.invalid")
    removed = isolation.scrub_controller_environment("MY_KEY")
    assert "MY_KEY" not in os.environ and "ALMA_BASE_URL" not in os.environ
    isolation.restore_controller_environment(removed)
    assert os.environ["MY_KEY"] == "secret"
