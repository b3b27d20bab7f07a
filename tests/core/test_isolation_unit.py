"""Unit checks of the isolation guards (the end-to-end behaviour is in tests/e2e)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_alma import isolation
from pytest_alma.design import DesignCallError, DesignContext, MemoryDesign, call_retrieve


def test_json_size_rejects_huge_string_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(isolation.OversizedMemory, match="more than"):
        isolation.check_json_size({"x": "a" * 100_000_000})
    assert time.perf_counter() - started < 0.5  # creating the string dominates; no dumps
    with pytest.raises(isolation.OversizedMemory, match="nested"):
        deep: Any = []
        for _ in range(300):
            deep = [deep]
        isolation.check_json_size({"x": deep})
    assert isolation.check_json_size({"a": [1, "bc"]}) < 100


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


class _Writer(MemoryDesign):
    target: Path

    async def general_retrieve(self, task: Any) -> dict[str, Any]:
        self.target.write_text("x")
        return {}


def test_write_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    scratch = project / ".alma" / "scratch" / "d"
    scratch.mkdir(parents=True)
    monkeypatch.setattr(isolation, "_protected", (project,))
    design = _Writer(DesignContext(llm=None, rng=None, scratch_dir=scratch, seed=0))  # type: ignore[arg-type]
    design.target = scratch / "ok.txt"
    assert asyncio.run(call_retrieve(design, None)) == {}  # type: ignore[arg-type]
    design.target = project / "reports" / "no.txt"
    (project / "reports").mkdir()
    with pytest.raises(DesignCallError, match="outside its scratch directory.*no.txt"):
        asyncio.run(call_retrieve(design, None))  # type: ignore[arg-type]
    assert not design.target.exists()
    # Outside a design call the harness writes freely.
    design.target.write_text("harness")
