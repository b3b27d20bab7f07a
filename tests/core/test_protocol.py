import pytest

from pytest_alma.protocol import PlanSettings, derive_seed, make_plan

IDS = [f"t{i}" for i in range(11)]


def test_plan_splits_halves_and_repeats() -> None:
    plan = make_plan(IDS, PlanSettings(env="e", split="s", seed=3, repeats=3))
    assert len(plan.collection) == 5
    assert len(plan.deployment) == 6 * 3
    collect_ids = {t.task_id for t in plan.collection}
    deploy_ids = {e.task.task_id for e in plan.deployment}
    assert collect_ids.isdisjoint(deploy_ids)
    assert collect_ids | deploy_ids == set(IDS)
    assert [e.repeat for e in plan.stream(2)] == [2] * 6


def test_plan_is_a_function_of_its_seed() -> None:
    a = make_plan(IDS, PlanSettings(env="e", split="s", seed=1))
    b = make_plan(IDS, PlanSettings(env="e", split="s", seed=1))
    c = make_plan(IDS, PlanSettings(env="e", split="s", seed=2))
    assert a == b
    assert a.collection != c.collection


def test_repeats_get_different_episode_seeds() -> None:
    plan = make_plan(IDS, PlanSettings(env="e", split="s", seed=0, repeats=2))
    first = {e.task.task_id: e.task.seed for e in plan.stream(1)}
    second = {e.task.task_id: e.task.seed for e in plan.stream(2)}
    assert first.keys() == second.keys()
    assert all(first[k] != second[k] for k in first)


def test_train_size_caps_collection_and_limit_caps_tasks() -> None:
    plan = make_plan(IDS, PlanSettings(env="e", split="s", train_size=2))
    assert len(plan.collection) == 2
    assert len({e.task.task_id for e in plan.deployment}) == 6
    small = make_plan(IDS, PlanSettings(env="e", split="s", limit=4, repeats=1))
    assert len(small.collection) == 2 and len(small.deployment) == 2


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        make_plan(["only"], PlanSettings(env="e", split="s"))
    with pytest.raises(ValueError, match="alma-limit"):
        make_plan(IDS, PlanSettings(env="e", split="s", limit=1))


def test_derive_seed_is_stable() -> None:
    # Fixed value: episode seeds must not change between machines or Python versions.
    assert derive_seed(0, "goto_win", "deploy", 1) == derive_seed(0, "goto_win", "deploy", 1)
    assert derive_seed("a") == 1251442962


def test_design_options_from_the_environment_are_part_of_the_memory_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A baseline reads ALMA_<NAME>_VARIANT / _MODEL: a memory built under one value must not be
    # reused under another (the memory key includes every ALMA_* variable).
    from pytest_alma.runner import design_environment

    monkeypatch.setenv("ALMA_DYNAMIC_CHEATSHEET_VARIANT", "retrieval_synthesis")
    monkeypatch.setenv("NOT_ALMA", "x")
    env = design_environment()
    assert env["ALMA_DYNAMIC_CHEATSHEET_VARIANT"] == "retrieval_synthesis" and "NOT_ALMA" not in env
