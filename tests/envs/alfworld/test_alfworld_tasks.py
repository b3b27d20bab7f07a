"""ALFWorld splits: contents, sorted-then-seeded order, ids; the shipped synthetic files."""

from __future__ import annotations

import filecmp
import importlib.util
import random
import shutil
from pathlib import Path

import pytest

from pytest_alma.envs.alfworld.data import (
    GAME_FILE,
    JSON_FOLDER,
    SPLIT_FOLDERS,
    synthetic_data_root,
)
from pytest_alma.envs.alfworld.synthetic_build import SYNTHETIC_TASKS
from pytest_alma.envs.alfworld.tasks import SPLIT_SEED, game_file, list_games, task_type

SYNTHETIC = synthetic_data_root()


def _fake_data(root: Path, names: list[tuple[str, str]], reverse: bool = False) -> Path:
    """A data folder with empty game files, created in the given (or reversed) order."""
    for split in SPLIT_FOLDERS.values():
        (root / JSON_FOLDER / split).mkdir(parents=True, exist_ok=True)
    for split, name in reversed(names) if reverse else names:
        folder = root / JSON_FOLDER / split / name / "trial_T1"
        folder.mkdir(parents=True)
        (folder / GAME_FILE).write_text("{}")
    return root


def test_synthetic_splits_hold_the_synthetic_tasks() -> None:
    for split, folder in SPLIT_FOLDERS.items():
        expected = {t.task_id for t in SYNTHETIC_TASKS if t.split == folder}
        assert set(list_games(SYNTHETIC, split)) == expected
        assert len(expected) == 2


def test_splits_are_disjoint_and_every_id_names_its_game() -> None:
    seen: set[str] = set()
    for split, folder in SPLIT_FOLDERS.items():
        ids = list_games(SYNTHETIC, split)
        assert not seen & set(ids)
        seen |= set(ids)
        for task_id in ids:
            assert task_id.startswith(f"{folder}/")
            assert game_file(SYNTHETIC, task_id).is_file()


def test_order_is_sorted_then_shuffled_with_the_split_seed(tmp_path: Path) -> None:
    names = [("train", f"pick_and_place_simple-Mug-None-Desk-{i}") for i in range(30)]
    root = _fake_data(tmp_path, names)
    expected = sorted(f"train/{name}/trial_T1" for _, name in names)
    random.Random(SPLIT_SEED).shuffle(expected)
    got = list_games(root, "train")
    assert got == expected
    assert got != sorted(got)  # the shuffle happened
    assert list_games(root, "train") == got  # reproducible


def test_order_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    names = [
        ("train", f"{kind}-Obj-None-Recep-{i}")
        for i in range(10)
        for kind in ("pick_and_place_simple", "look_at_obj_in_light")
    ]
    forward = list_games(_fake_data(tmp_path / "a", names), "train")
    backward = list_games(_fake_data(tmp_path / "b", names, reverse=True), "train")
    assert forward == backward


def test_trials_without_a_game_file_are_not_tasks(tmp_path: Path) -> None:
    root = _fake_data(tmp_path, [("valid_seen", "pick_and_place_simple-A-None-B-1")])
    (root / JSON_FOLDER / "valid_seen" / "pick_and_place_simple-A-None-B-2" / "trial_T1").mkdir(
        parents=True
    )
    assert list_games(root, "eval_in_distribution") == [
        "valid_seen/pick_and_place_simple-A-None-B-1/trial_T1"
    ]


@pytest.mark.parametrize("bad", ["", "valid_seen/x", "valid_seen/../x/y", "a/b/c/d"])
def test_malformed_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="task id"):
        game_file(SYNTHETIC, bad)


def test_unknown_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="no ALFWorld game"):
        game_file(SYNTHETIC, "valid_seen/nope/trial")


def test_task_type_of_an_id() -> None:
    for task in SYNTHETIC_TASKS:
        assert task_type(task.task_id) == task.task_type


def test_synthetic_set_covers_several_task_types() -> None:
    assert len({t.task_type for t in SYNTHETIC_TASKS}) >= 3


def test_shipped_synthetic_files_are_up_to_date(tmp_path: Path) -> None:
    if importlib.util.find_spec("alfworld") is None:  # not importorskip: see the adapter tests
        pytest.skip("needs alfworld: pip install alfworld")
    from pytest_alma.envs.alfworld.synthetic_build import build

    build(tmp_path)
    for task in SYNTHETIC_TASKS:
        rel = Path(JSON_FOLDER, task.split, task.folder, task.trial)
        for name in ("traj_data.json", "initial_state.pddl", GAME_FILE):
            assert filecmp.cmp(tmp_path / rel / name, SYNTHETIC / rel / name, shallow=False), (
                f"{rel / name} is stale: run python -m pytest_alma.envs.alfworld.synthetic_build"
            )
    shutil.rmtree(tmp_path / JSON_FOLDER)
