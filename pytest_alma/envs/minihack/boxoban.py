"""Boxoban on current minihack: where the level files come from, and two fixes to its reset.

The level files (DeepMind's ``boxoban-levels``, Apache-2.0) are not in the minihack package.
minihack reads them from ``<site-packages>/minihack/dat/boxoban-levels-master``; we never write
there. The user points ``ALMA_MINIHACK_BOXOBAN_LEVELS`` (or ``boxoban_levels=`` in code) at a
folder laid out as the upstream repository (``hard/*.txt``, ``medium/train/*.txt``,
``unfiltered/train/*.txt``), and we set minihack's module-level ``LEVELS_PATH`` to it before an
environment is made. minihack reads every ``.txt`` in the folder, so a subset of files works.

minihack 1.0.2's ``BoxoHack.reset`` does not work under nle 1.3 with gymnasium:

1. It takes no ``seed`` argument, which gymnasium's wrappers always pass.
2. nle's reset calls ``_is_episode_end`` before ``BoxoHack.reset`` has set ``_goal_pos_set``,
   which raises AttributeError.

It also picks the puzzle with the global ``random`` module, so an episode could not be replayed.
:func:`install_reset_fix` replaces the method with one that accepts ``seed``, sets an empty goal
set first, and draws the puzzle from a ``random.Random`` seeded by the episode.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

LEVELS_ENV_VAR = "ALMA_MINIHACK_BOXOBAN_LEVELS"
_HOW_TO_GET = (
    "Download DeepMind's Boxoban levels (Apache-2.0): "
    "git clone https://github.com/deepmind/boxoban-levels /path/to/boxoban-levels "
    f"and set {LEVELS_ENV_VAR}=/path/to/boxoban-levels (a subset of the .txt files is enough)."
)
#: (level_set, level_mode) per Boxoban task, as minihack names the folders.
_FOLDERS: dict[str, tuple[str, str]] = {
    "MiniHack-Boxoban-Hard-v0": ("hard", ""),
    "MiniHack-Boxoban-Medium-v0": ("medium", "train"),
    "MiniHack-Boxoban-Unfiltered-v0": ("unfiltered", "train"),
}


class BoxobanLevelsMissing(RuntimeError):
    """The Boxoban level files needed for a task are not where we were told to look."""


def is_boxoban(task_id: str) -> bool:
    """Whether ``task_id`` is one of minihack's Boxoban tasks."""
    return task_id in _FOLDERS


def use_levels(task_id: str, folder: str | os.PathLike[str] | None) -> Path:
    """Check ``folder`` (default: ``$ALMA_MINIHACK_BOXOBAN_LEVELS``) and point minihack at it.

    Raises:
        BoxobanLevelsMissing: no folder configured, or it lacks the task's ``.txt`` files.
    """
    chosen = folder if folder is not None else os.environ.get(LEVELS_ENV_VAR)
    if not chosen:
        raise BoxobanLevelsMissing(
            f"{task_id} needs the Boxoban level files, which minihack does not ship. " + _HOW_TO_GET
        )
    root = Path(chosen).expanduser()
    level_set, level_mode = _FOLDERS[task_id]
    needed = root / level_set / level_mode if level_mode else root / level_set
    if not needed.is_dir() or not any(needed.glob("*.txt")):
        raise BoxobanLevelsMissing(
            f"{task_id} needs Boxoban level files in {needed}, which has none "
            f"(looked there because of {'the boxoban_levels setting' if folder else LEVELS_ENV_VAR}"
            f"={chosen}). " + _HOW_TO_GET
        )
    import minihack.envs.boxohack as boxohack

    boxohack.LEVELS_PATH = str(root)
    install_reset_fix()
    return needed


def install_reset_fix() -> None:
    """Replace ``BoxoHack.reset`` with the seeded, gymnasium-compatible one (idempotent)."""
    import minihack.envs.boxohack as boxohack
    from minihack import MiniHackNavigation

    cls: Any = boxohack.BoxoHack
    if getattr(cls.reset, "_alma_fixed", False):
        return

    def reset(self: Any, *, seed: int | None = None, options: Any = None) -> Any:
        # The puzzle is drawn by minihack's own get_lvl_gen() with the global `random`; we run it
        # under a state derived from the episode seed and restore the global state afterwards.
        saved = random.getstate()
        random.seed(seed)
        try:
            des = self.get_lvl_gen().get_des()
        finally:
            random.setstate(saved)
        self.update(des)
        self._goal_pos_set = set()  # nle's reset asks _is_episode_end before it is known
        result = MiniHackNavigation.reset(
            self, seed=seed, options=options if options is not None else {"wizkit_items": None}
        )
        self._goal_pos_set = self._object_positions(self.last_observation, "{")
        return result

    reset._alma_fixed = True  # type: ignore[attr-defined]
    cls.reset = reset
