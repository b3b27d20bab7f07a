"""The gymnasium wrapper: API conformance, registration, seeding, termination and errors."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from pytest_alma.envs.babaisai.game_env import InvalidActionError
from pytest_alma.envs.babaisai.gym_env import (
    GYM_IDS,
    LEVEL_ID_OF,
    BabaIsAIGymEnv,
    gym_id,
    register_envs,
)
from pytest_alma.envs.babaisai.layout import Layout
from pytest_alma.envs.babaisai.layout_text import parse_layout
from pytest_alma.envs.babaisai.levels import LEVEL_IDS, UnknownLevelError
from pytest_alma.envs.babaisai.solver import solve
from pytest_alma.envs.babaisai.text import YOU_RULE_BROKEN_PREFIX

# Baba walks down into the "baba" tile and pushes it out of "baba is you".
BREAK_YOU = """
    # #      #    #     # #
    # .      .    .     . #
    # baba   .    .     . #
    # [baba] [is] [you] . #
    # .      .    .     . #
    # #      #    #     # #
"""


def _unwrapped(env: gymnasium.Env[str, int]) -> BabaIsAIGymEnv:
    inner = env.unwrapped
    assert isinstance(inner, BabaIsAIGymEnv)
    return inner


def _fixed_layout(text: str) -> object:
    layout = parse_layout(text)

    def factory(rng: np.random.Generator) -> Layout:
        return layout

    return factory


@pytest.mark.parametrize(
    "level_id",
    ["goto_win", "make_win#no_ball_win", "two_room-make_you-make_win", "you_win"],
)
def test_check_env_passes(level_id: str) -> None:
    register_envs()
    env = gymnasium.make(gym_id(level_id), render_mode="ansi")
    # The unwrapped env still has the spec, so the render modes are checked through it too.
    check_env(_unwrapped(env))
    env.close()


def test_check_env_on_a_direct_instance() -> None:
    check_env(BabaIsAIGymEnv("two_room-goto_win"), skip_render_check=True)


def test_make_after_register_envs() -> None:
    register_envs()
    register_envs()  # idempotent
    env = gymnasium.make("pytest_alma/BabaIsAI-goto_win-v0")
    obs, info = env.reset(seed=0)
    assert obs.startswith("Active rules:\n")
    assert info["level_id"] == "goto_win"
    assert env.observation_space.contains(obs)
    env.close()


def test_every_level_is_registered_with_a_valid_id() -> None:
    register_envs()
    assert len(GYM_IDS) == len(LEVEL_IDS) == 53
    for level_id, env_id in GYM_IDS.items():
        assert env_id in gymnasium.registry
        assert LEVEL_ID_OF[env_id] == level_id
        assert "#" not in env_id
        assert gymnasium.registry[env_id].kwargs == {"level_id": level_id}
    assert gym_id("make_win#no_ball_win") == "pytest_alma/BabaIsAI-make_win.no_ball_win-v0"


def test_make_with_module_prefix() -> None:
    env = gymnasium.make("pytest_alma.envs.babaisai.gym_env:pytest_alma/BabaIsAI-make_win-v0")
    assert _unwrapped(env).level_id == "make_win"


@pytest.mark.parametrize("level_id", LEVEL_IDS)
def test_every_level_resets_and_steps_in_the_spaces(level_id: str) -> None:
    env = BabaIsAIGymEnv(level_id)
    obs, _ = env.reset(seed=3)
    assert obs in env.observation_space
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(5)))
        assert obs in env.observation_space
        assert isinstance(reward, float)
        if terminated or truncated:
            obs, _ = env.reset()
            assert obs in env.observation_space


def test_same_seed_same_observation_different_seeds_differ() -> None:
    for level_id in ("goto_win", "two_room-break_stop-goto_win", "make_win"):
        env = BabaIsAIGymEnv(level_id)
        first, info1 = env.reset(seed=7)
        env.reset()  # moves the stream on
        again, info2 = env.reset(seed=7)
        assert first == again and info1 == info2
        other = {env.reset(seed=s)[0] for s in range(8)}
        assert len(other) > 1, level_id


def test_unseeded_reset_continues_the_stream() -> None:
    env = BabaIsAIGymEnv("goto_win-distr_obj")
    env.reset(seed=1)
    a = env.reset()[1]["level_seed"]
    env.reset(seed=1)
    b = env.reset()[1]["level_seed"]
    assert a == b


@pytest.mark.parametrize("level_id", ["goto_win", "make_win", "two_room-maybe_break_stop-goto_win"])
def test_solver_plan_wins_through_the_gym_api(level_id: str) -> None:
    env = BabaIsAIGymEnv(level_id)
    for seed in range(5):
        env.reset(seed=seed)
        plan = solve(env.game, max_states=20_000)
        if plan is None:
            continue
        for i, action in enumerate(plan):
            _, reward, terminated, truncated, info = env.step(action)
            assert not truncated
            assert terminated == (i == len(plan) - 1)
        assert reward == pytest.approx(1 - 0.9 * len(plan) / 100)
        assert reward > 0 and info["won"]
        break
    else:
        pytest.fail(f"no solvable seed found for {level_id}")


def test_action_names_are_accepted() -> None:
    env = BabaIsAIGymEnv("goto_win")
    env.reset(seed=0)
    plan = solve(env.game)
    assert plan is not None
    names = ["idle", "up", "right", "down", "left"]
    env.reset(seed=0)
    for action in plan:
        *_, info = env.step(f" {names[action].upper()} ")
        assert info["action"] == action
    assert info["won"]


def test_truncation_at_the_step_cap() -> None:
    env = BabaIsAIGymEnv("goto_win", max_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        _, reward, terminated, truncated, _ = env.step(0)
        assert (reward, terminated, truncated) == (0.0, False, False)
    _, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert info["step_count"] == 3
    with pytest.raises(RuntimeError, match="done"):
        env.step(0)


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        BabaIsAIGymEnv("goto_win").step(0)


@pytest.mark.parametrize("action", [5, -1, "jump", 2.0, True, None])
def test_invalid_action_raises_a_clear_error(action: object) -> None:
    env = BabaIsAIGymEnv("goto_win")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="invalid action.*valid actions are: idle, up"):
        env.step(action)  # type: ignore[arg-type]
    # The failed call changed nothing.
    *_, info = env.step(0)
    assert info["total_steps"] == 1


def test_bad_constructor_arguments() -> None:
    with pytest.raises(UnknownLevelError, match="goto_win"):
        BabaIsAIGymEnv("goto_wim")
    with pytest.raises(ValueError, match="on_you_broken"):
        BabaIsAIGymEnv("goto_win", on_you_broken="stop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="render_mode"):
        BabaIsAIGymEnv("goto_win", render_mode="human")


def test_render_ansi_is_the_grid_picture() -> None:
    env = BabaIsAIGymEnv("goto_win", render_mode="ansi")
    env.reset(seed=0)
    picture = env.render()
    assert picture is not None
    assert parse_layout(picture) == env.game.to_layout()
    assert BabaIsAIGymEnv("goto_win").render() is None


def test_broken_you_rule_resets_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    env = BabaIsAIGymEnv("goto_win")
    monkeypatch.setattr(env, "_factory", _fixed_layout(BREAK_YOU))
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("down")
    assert obs.startswith(YOU_RULE_BROKEN_PREFIX + "\nActive rules:\nbaba is you")
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["you_rule_broken"] and info["resets"] == 1 and info["step_count"] == 0


def test_broken_you_rule_terminates_with_end(monkeypatch: pytest.MonkeyPatch) -> None:
    env = BabaIsAIGymEnv("goto_win", on_you_broken="end")
    monkeypatch.setattr(env, "_factory", _fixed_layout(BREAK_YOU))
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("down")
    assert "IS YOU rule was broken, episode ended" in obs
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["you_rule_broken"]
