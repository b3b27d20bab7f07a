"""Profiles, strategies and the offline LLM double of the contract check."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.contract.profiles import PROFILES, get_profile, profile_name
from pytest_alma.contract.strategies import (
    BUILTIN_ENVS,
    edge_trajectories,
    minihack_actions,
    trajectories,
)
from pytest_alma.records import Trajectory


def test_profile_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ALMA_CONTRACT_PROFILE", raising=False)
    assert profile_name() == "dev"
    monkeypatch.setenv("CI", "1")
    assert profile_name() == "ci"
    assert get_profile().derandomize
    assert get_profile().deadline is None
    monkeypatch.setenv("ALMA_CONTRACT_PROFILE", "nightly")
    assert profile_name() == "nightly"
    assert profile_name("dev") == "dev"
    assert PROFILES["nightly"].max_examples > PROFILES["dev"].max_examples
    monkeypatch.setenv("ALMA_CONTRACT_PROFILE", "weekly")
    with pytest.raises(ValueError, match="choose one of dev, ci, nightly"):
        profile_name()


@settings(max_examples=30, deadline=None, database=None)
@given(trajectories())
def test_drawn_trajectories_are_valid_records(trajectory: Trajectory) -> None:
    assert trajectory.task.env in BUILTIN_ENVS
    assert Trajectory.from_json(json.loads(trajectory.dumps())) == trajectory
    assert len(trajectory.steps) <= 100


@pytest.mark.parametrize("env", BUILTIN_ENVS)
def test_edge_cases_cover_the_listed_kinds(env: str) -> None:
    cases = dict(edge_trajectories(env))
    assert cases["maximal length"].steps and cases["empty episode"].steps == ()
    assert cases["errored, no steps"].error
    assert cases["success"].success and not cases["failure"].success
    assert "\x00" in cases["odd characters"].start.observation


def test_minihack_uses_the_real_vocabulary() -> None:
    names = minihack_actions()
    assert "far northeast" in names and "pray" in names and len(names) == len(set(names))


def test_offline_llm_is_deterministic() -> None:
    llm = OfflineLLM()
    messages = [{"role": "user", "content": "Summarise: the door is win."}]

    async def twice() -> tuple[list[str], list[list[list[float]]]]:
        replies = [await llm.chat(messages, json_mode=True) for _ in range(2)]
        vectors = [await llm.embed(["baba is you"]) for _ in range(2)]
        return replies, vectors

    replies, vectors = asyncio.run(twice())
    assert replies[0] == replies[1] and json.loads(replies[0])["test_double"] is True
    assert vectors[0] == vectors[1]
    assert llm.chat_calls == 2 and llm.embed_calls == 2
