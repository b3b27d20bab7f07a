"""Where the ALFWorld games are: the data folder and its split folders.

The folder is the one alfworld itself uses: ``$ALFWORLD_DATA`` (alfworld's default when it is
unset is ``~/.cache/alfworld``). It must hold ``json_2.1.1/{train,valid_seen,valid_unseen}``,
each game in ``<split>/<task folder>/<trial folder>/game.tw-pddl``, which is what
``alfworld-download`` produces. The synthetic test tasks shipped with this package
(:func:`synthetic_data_root`) use the same layout.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "ALFWORLD_DATA"
#: alfworld's own default when ``ALFWORLD_DATA`` is unset (``alfworld.info.ALFWORLD_DATA``).
DEFAULT_DATA_DIR = "~/.cache/alfworld"
#: The dataset version folder inside the data folder (the one ALFWorld's configs and ALMA use).
JSON_FOLDER = "json_2.1.1"
#: Harness split -> ALFWorld folder, as ALMA maps them.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "eval_in_distribution": "valid_seen",
    "eval_out_of_distribution": "valid_unseen",
}
#: The file that makes a trial folder a playable TextWorld-mode game.
GAME_FILE = "game.tw-pddl"


class ALFWorldDataError(FileNotFoundError):
    """The ALFWorld data folder is missing or lacks the split folders."""


def _how_to_get_it(root: Path) -> str:
    return (
        f"Get the data with `alfworld-download` (from the alfworld package; it needs internet "
        f"once and writes to ${DATA_ENV_VAR}, default {DEFAULT_DATA_DIR}), or point "
        f"{DATA_ENV_VAR} at a folder laid out as {root}/{JSON_FOLDER}/"
        f"{{{','.join(SPLIT_FOLDERS.values())}}}/<task>/<trial>/{GAME_FILE}. For tests only, the "
        "synthetic tasks shipped with pytest-alma can stand in: "
        f"{DATA_ENV_VAR}={synthetic_data_root()} (they are not the benchmark)."
    )


def data_root(path: str | os.PathLike[str] | None = None) -> Path:
    """The ALFWorld data folder, checked to hold all three split folders.

    ``path`` wins over ``$ALFWORLD_DATA``, which wins over alfworld's default. Raises
    :class:`ALFWorldDataError`, saying how to get the data, when the folder or a split folder is
    missing.
    """
    raw = os.fspath(path) if path is not None else os.environ.get(DATA_ENV_VAR) or DEFAULT_DATA_DIR
    root = Path(os.path.expandvars(raw)).expanduser()
    if not root.is_dir():
        raise ALFWorldDataError(
            f"the ALFWorld data folder {root} does not exist. {_how_to_get_it(root)}"
        )
    missing = [name for name in SPLIT_FOLDERS.values() if not (root / JSON_FOLDER / name).is_dir()]
    if missing:
        folders = ", ".join(f"{JSON_FOLDER}/{name}" for name in missing)
        raise ALFWorldDataError(
            f"the ALFWorld data folder {root} lacks {folders}. {_how_to_get_it(root)}"
        )
    return root


def split_folder(root: Path, split: str) -> Path:
    """The folder of a harness split inside the data folder ``root``."""
    try:
        return root / JSON_FOLDER / SPLIT_FOLDERS[split]
    except KeyError:
        raise ValueError(
            f"unknown ALFWorld split {split!r}; choose one of {', '.join(SPLIT_FOLDERS)}"
        ) from None


def synthetic_data_root() -> Path:
    """The synthetic test task set shipped with this package (a data folder of its own)."""
    return Path(__file__).resolve().parent / "synthetic"
