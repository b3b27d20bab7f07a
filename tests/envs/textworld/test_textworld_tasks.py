"""TextWorld task ids, game set and splits (no TextWorld needed)."""

from __future__ import annotations

import random

import pytest

from pytest_alma.envs.textworld import tasks
from pytest_alma.envs.textworld.tasks import (
    ALMA_GAMES,
    SPLITS,
    GameSpec,
    UnknownTaskError,
    category,
    challenge_settings,
    parse_task_id,
    split_tasks,
)

PINNED_TRAIN_HEAD = ("tw-cooking-L4-s2", "tw-cooking-L3-s3", "tw-cooking-L2-s5")


def test_alma_splits_match_almas_sizes_and_are_disjoint() -> None:
    train, evaluation = set(SPLITS["train"]), set(SPLITS["eval_in_distribution"])
    assert len(SPLITS["train"]) == len(train) == 24  # 12 per category, as in ALMA
    assert len(SPLITS["eval_in_distribution"]) == len(evaluation) == 26  # 13 + 13
    assert not train & evaluation
    assert SPLITS["eval_out_of_distribution"] == ()
    alma = {spec.task_id for games in ALMA_GAMES.values() for spec in games}
    assert train | evaluation == alma
    assert {category(t) for t in train} == {"treasure_hunter", "the_cooking_game"}
    for name in ("treasure_hunter", "the_cooking_game"):
        assert sum(category(t) == name for t in train) == 12


def test_splits_follow_the_seeded_per_category_shuffle() -> None:
    expected_train: list[str] = []
    for name in sorted(ALMA_GAMES):
        ids = [spec.task_id for spec in sorted(ALMA_GAMES[name])]
        random.Random(42).shuffle(ids)
        expected_train += ids[: len(ids) // 2]
    assert list(SPLITS["train"]) == expected_train


def test_splits_are_reproducible() -> None:
    train, evaluation = tasks._alma_splits()
    assert (tuple(train), tuple(evaluation)) == (
        SPLITS["train"],
        SPLITS["eval_in_distribution"],
    )
    # Pinned, so that a change of the game set or of the shuffle is noticed.
    assert SPLITS["train"][:3] == PINNED_TRAIN_HEAD


def test_balrog_and_all_splits() -> None:
    balrog = SPLITS["balrog"]
    assert len(balrog) == len(set(balrog)) == 30
    assert {parse_task_id(t).family for t in balrog} == {
        "treasure_hunter",
        "cooking",
        "coin_collector",
    }
    everything = set(SPLITS["all"])
    assert set(balrog) <= everything
    assert set(SPLITS["train"]) | set(SPLITS["eval_in_distribution"]) <= everything
    assert list(SPLITS["all"]) == sorted(everything)
    assert not any("coin_collector" in t for t in SPLITS["train"] + SPLITS["eval_in_distribution"])


def test_task_ids_round_trip() -> None:
    for task_id in SPLITS["all"]:
        assert parse_task_id(task_id).task_id == task_id
    assert parse_task_id("tw-treasure_hunter-L5-s3") == GameSpec("treasure_hunter", 5, 3)


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("tw-treasure-L5-s3", "unknown TextWorld family 'treasure'"),
        ("tw-treasure_hunter-L31-s3", "level 31 is out of range for treasure_hunter (levels 1-30)"),
        ("tw-cooking-L6-s1", "levels 1-5"),
        ("treasure_hunter-5-3", "ids look like 'tw-<family>-L<level>-s<seed>'"),
        ("tw-cooking-L5-s3-extra", "not a TextWorld task id"),
    ],
)
def test_bad_task_ids_say_what_is_valid(task_id: str, message: str) -> None:
    with pytest.raises(UnknownTaskError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_task_id(task_id)


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="choose one of train, eval_in_distribution"):
        split_tasks("test")


def test_cooking_level_5_is_balrogs_setting() -> None:
    assert challenge_settings("cooking", 5) == {
        "recipe": 5,
        "take": 5,
        "go": 12,
        "open": True,
        "cook": True,
        "cut": True,
        "drop": False,
        "recipe_seed": 0,
        "split": "test",
    }
    assert challenge_settings("treasure_hunter", 25) == {"level": 25}
