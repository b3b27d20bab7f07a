"""TextWorld task ids, game families and levels, and the suites/splits built from them.

A task id names one generated game: ``tw-<family>-L<level>-s<seed>``, e.g.
``tw-treasure_hunter-L15-s3``. The family is the TextWorld challenge (``tw-treasure_hunter``,
``tw-cooking``, ``tw-coin_collector``), the level picks the challenge settings
(:func:`challenge_settings`) and the seed is TextWorld's generator seed.

Levels:

* treasure hunter: TextWorld's own levels 1-30 (1-10 easy: 5 rooms; 11-20 medium: 10 rooms,
  closed doors and containers, 10 distractors; 21-30 hard: 20 rooms, locked doors and keys,
  20 distractors; the quest gets longer within each band).
* coin collector: TextWorld's own levels 1-300 (quest length ``(level - 1) % 100 + 1``,
  ``(level - 1) // 100`` distractor paths). BALROG plays level 220.
* the cooking game: ``tw-cooking`` has no levels, so we define five (:data:`COOKING_LEVELS`);
  level 5 is BALROG's setting (``--recipe 5 --take 5 --go 12 --open --cook --cut --split test``).

Splits:

* ``train`` / ``eval_in_distribution``: ALMA's protocol on our game set
  (:data:`ALMA_GAMES`): per category (treasure_hunter, the_cooking_game; coin collector is not
  part of ALMA) the sorted ids are shuffled with ``random.Random(42)`` and the first half
  (``int(n * 0.5)``) is ``train``, the rest ``eval_in_distribution``. 25 games per category
  give 12 + 12 train and 13 + 13 eval, ALMA's 24 / 26.
* ``eval_out_of_distribution``: empty, as in ALMA.
* ``balrog``: BALROG's three families at BALROG's settings, 10 games each (BALROG plays 10
  episodes per family): treasure hunter level 25 (BALROG's games are level 30, whose
  generation is heavy-tailed, minutes per game; see docs), cooking level 5, coin level 220.
* ``all``: every id above, sorted.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from typing import Any

#: TextWorld challenge names (the task id's family part, without the ``tw-`` prefix).
FAMILIES: tuple[str, ...] = ("treasure_hunter", "cooking", "coin_collector")

#: ALMA's category names by family.
ALMA_CATEGORIES: dict[str, str] = {
    "treasure_hunter": "treasure_hunter",
    "cooking": "the_cooking_game",
}

#: The cooking game's levels (our definition: ``tw-cooking`` takes skills, not a level).
COOKING_LEVELS: dict[int, dict[str, Any]] = {
    1: {"recipe": 1, "take": 1, "go": 1},
    2: {"recipe": 2, "take": 2, "go": 6, "open": True},
    3: {"recipe": 3, "take": 3, "go": 6, "open": True, "cut": True},
    4: {"recipe": 3, "take": 3, "go": 9, "open": True, "cook": True, "cut": True},
    5: {"recipe": 5, "take": 5, "go": 12, "open": True, "cook": True, "cut": True},
}

_LEVEL_RANGES: dict[str, tuple[int, int]] = {
    "treasure_hunter": (1, 30),
    "coin_collector": (1, 300),
    "cooking": (1, len(COOKING_LEVELS)),
}

_TASK_ID = re.compile(r"^tw-(?P<family>[a-z_]+)-L(?P<level>\d+)-s(?P<seed>\d+)$")

ALMA_SPLIT_SEED = 42
ALMA_TRAIN_FRACTION = 0.5

#: ALMA's game set: levels x seeds per family (25 games per category).
ALMA_LEVELS: dict[str, tuple[int, ...]] = {
    "treasure_hunter": (5, 10, 15, 20, 25),
    "cooking": (1, 2, 3, 4, 5),
}
ALMA_SEEDS: tuple[int, ...] = (1, 2, 3, 4, 5)

#: BALROG's families at BALROG's settings (treasure hunter: see the module docstring).
BALROG_LEVELS: dict[str, int] = {"treasure_hunter": 25, "cooking": 5, "coin_collector": 220}
BALROG_SEEDS: tuple[int, ...] = tuple(range(1, 11))


class UnknownTaskError(ValueError):
    """A task id that does not name a TextWorld game this adapter can generate."""


@dataclass(frozen=True, order=True)
class GameSpec:
    """One game: a family, a level and TextWorld's generator seed."""

    family: str
    level: int
    seed: int

    @property
    def task_id(self) -> str:
        """The readable id, e.g. ``tw-cooking-L5-s3``."""
        return f"tw-{self.family}-L{self.level}-s{self.seed}"

    @property
    def challenge(self) -> str:
        """The TextWorld challenge name (a key of ``textworld.challenges.CHALLENGES``)."""
        return f"tw-{self.family}"

    def settings(self) -> dict[str, Any]:
        """The challenge's settings for this level (what ``CHALLENGES[...].make`` receives)."""
        return challenge_settings(self.family, self.level)


def challenge_settings(family: str, level: int) -> dict[str, Any]:
    """The settings mapping TextWorld's challenge ``make`` function takes for a family/level."""
    if family == "cooking":
        skills = COOKING_LEVELS[level]
        # Every key given explicitly (cooking.py reads some with settings[...]): the same
        # defaults as tw-make's argparser, BALROG's test split and recipe seed 0.
        return {
            "recipe": skills["recipe"],
            "take": skills.get("take", 0),
            "go": skills.get("go", 1),
            "open": skills.get("open", False),
            "cook": skills.get("cook", False),
            "cut": skills.get("cut", False),
            "drop": False,
            "recipe_seed": 0,
            "split": "test",
        }
    return {"level": level}


def parse_task_id(task_id: str) -> GameSpec:
    """The game a task id names; :class:`UnknownTaskError` (saying what is valid) otherwise."""
    match = _TASK_ID.match(task_id)
    if match is None:
        close = difflib.get_close_matches(task_id, all_task_ids(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownTaskError(
            f"{task_id!r} is not a TextWorld task id; ids look like 'tw-<family>-L<level>-s<seed>' "
            f"with family one of {', '.join(FAMILIES)}, e.g. 'tw-treasure_hunter-L5-s3'.{hint}"
        )
    family, level = match["family"], int(match["level"])
    if family not in FAMILIES:
        raise UnknownTaskError(
            f"{task_id!r}: unknown TextWorld family {family!r}; choose one of {', '.join(FAMILIES)}"
        )
    low, high = _LEVEL_RANGES[family]
    if not low <= level <= high:
        raise UnknownTaskError(
            f"{task_id!r}: level {level} is out of range for {family} (levels {low}-{high})"
        )
    return GameSpec(family, level, int(match["seed"]))


def _alma_games() -> dict[str, list[GameSpec]]:
    return {
        ALMA_CATEGORIES[family]: sorted(
            GameSpec(family, level, seed) for level in levels for seed in ALMA_SEEDS
        )
        for family, levels in ALMA_LEVELS.items()
    }


#: ALMA's game set by category.
ALMA_GAMES: dict[str, list[GameSpec]] = _alma_games()


def _alma_splits() -> tuple[list[str], list[str]]:
    train: list[str] = []
    evaluation: list[str] = []
    for category in sorted(ALMA_GAMES):
        ids = [spec.task_id for spec in ALMA_GAMES[category]]
        # ALMA shuffles each category with a seeded generator and cuts it in half.
        random.Random(ALMA_SPLIT_SEED).shuffle(ids)
        cut = int(len(ids) * ALMA_TRAIN_FRACTION)
        train += ids[:cut]
        evaluation += ids[cut:]
    return train, evaluation


def all_task_ids() -> list[str]:
    """Every task id of every split, sorted."""
    ids = {spec.task_id for games in ALMA_GAMES.values() for spec in games}
    ids |= {spec.task_id for spec in BALROG_GAMES}
    return sorted(ids)


#: BALROG's set: 10 games per family.
BALROG_GAMES: list[GameSpec] = [
    GameSpec(family, level, seed)
    for family, level in BALROG_LEVELS.items()
    for seed in BALROG_SEEDS
]

_TRAIN, _EVAL = _alma_splits()

#: Split name -> task ids, in a fixed order.
SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(_TRAIN),
    "eval_in_distribution": tuple(_EVAL),
    "eval_out_of_distribution": (),
    "balrog": tuple(spec.task_id for spec in BALROG_GAMES),
    "all": tuple(all_task_ids()),
}


def category(task_id: str) -> str:
    """ALMA's category of a task (the family name for coin collector, which ALMA excludes)."""
    family = parse_task_id(task_id).family
    return ALMA_CATEGORIES.get(family, family)


def split_tasks(split: str) -> tuple[str, ...]:
    """The task ids of a split; ValueError naming the splits otherwise."""
    try:
        return SPLITS[split]
    except KeyError:
        raise ValueError(
            f"unknown TextWorld split {split!r}; choose one of {', '.join(SPLITS)}"
        ) from None


__all__ = [
    "ALMA_GAMES",
    "BALROG_GAMES",
    "COOKING_LEVELS",
    "FAMILIES",
    "SPLITS",
    "GameSpec",
    "UnknownTaskError",
    "all_task_ids",
    "category",
    "challenge_settings",
    "parse_task_id",
    "split_tasks",
]
