"""ALFWorld's splits as ALMA uses them, in a fixed, documented order.

* ``train``: every game under ``json_2.1.1/train`` (the harness keeps the first ``train_size``).
* ``eval_in_distribution``: every game under ``json_2.1.1/valid_seen`` (140 in the real data).
* ``eval_out_of_distribution``: every game under ``json_2.1.1/valid_unseen`` (134).

A game is a trial folder holding ``game.tw-pddl``; like ALMA's ``get_files`` nothing is filtered
out (alfworld's own loader also drops unsolvable, "movable" and "Sliced" games; the released
``tw-pddl`` files are the solvable ones). A task id is the trial folder's path relative to
``json_2.1.1``, with forward slashes, e.g.
``valid_seen/look_at_obj_in_light-CD-None-DeskLamp-308/trial_T20190908_222917_366542``.

Order: ALMA takes ``os.listdir`` order, which depends on the file system, so the first
``train_size`` training games would differ between machines. Here the ids are sorted, then
shuffled with ``random.Random(SPLIT_SEED)`` (seed 42, ALMA's seed). Sorting alone would put all
games of one task type first (the folder names start with the type), so a small ``train_size``
would see a single type; the seeded shuffle mixes the types and is the same everywhere.
"""

from __future__ import annotations

import random
from pathlib import Path

from pytest_alma.envs.alfworld.data import GAME_FILE, JSON_FOLDER, split_folder

SPLIT_SEED = 42


def list_games(root: Path, split: str) -> list[str]:
    """The task ids of ``split`` in data folder ``root``, sorted then shuffled with SPLIT_SEED."""
    folder = split_folder(root, split)
    base = root / JSON_FOLDER
    ids = sorted(p.parent.relative_to(base).as_posix() for p in folder.glob(f"*/*/{GAME_FILE}"))
    random.Random(SPLIT_SEED).shuffle(ids)
    return ids


def game_file(root: Path, task_id: str) -> Path:
    """The ``game.tw-pddl`` file of a task id (see the module docstring for the id format)."""
    parts = task_id.split("/")
    if len(parts) != 3 or any(p in ("", ".", "..") for p in parts):
        raise ValueError(
            f"bad ALFWorld task id {task_id!r}: expected <split folder>/<task folder>/<trial "
            "folder>, e.g. valid_seen/pick_and_place_simple-Mug-None-Desk-301/trial_T2019..."
        )
    path = root / JSON_FOLDER / Path(*parts) / GAME_FILE
    if not path.is_file():
        raise ValueError(f"no ALFWorld game for task {task_id!r} ({path} does not exist)")
    return path


def task_type(task_id: str) -> str:
    """The task type of a task id (the task folder's name up to its first dash)."""
    parts = task_id.split("/")
    folder = parts[1] if len(parts) > 1 else task_id
    return folder.split("-", 1)[0]
