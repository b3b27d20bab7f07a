"""MiniHack task suites, ALMA's categories and splits, and the settings presets.

Two suites:

* BALROG's 8 tasks (:data:`BALROG_TASK_IDS`).
* ALMA's task set (:data:`ALMA_TASK_IDS`): every registered ``MiniHack*`` id except those whose
  id contains Custom, MultiRoom, LavaCrossing or SimpleCrossing, in registry order. That gives
  125 ids under minihack 1.0.2, as under the 0.1.6 release ALMA used. The list is frozen here so
  that the splits do not move if a later minihack registers more ids; a test checks it against
  the installed registry.

ALMA's categories go by substring of the lowercased id: ``corridor``, ``quest``, ``boxoban``,
everything else ``distance``. The out-of-distribution split is corridor + quest + boxoban (11
ids); the 114 ``distance`` ids are shuffled with Python's ``random`` seeded 42 and the first 30 %
(34) are ``train``, the other 80 ``eval_in_distribution`` (what ALMA's evaluation runs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

BALROG_TASK_IDS: tuple[str, ...] = (
    "MiniHack-Boxoban-Hard-v0",
    "MiniHack-Boxoban-Medium-v0",
    "MiniHack-MazeWalk-9x9-v0",
    "MiniHack-MazeWalk-15x15-v0",
    "MiniHack-Corridor-R3-v0",
    "MiniHack-CorridorBattle-Dark-v0",
    "MiniHack-Quest-Easy-v0",
    "MiniHack-Quest-Medium-v0",
)

#: Substrings that remove an id from ALMA's task set.
ALMA_EXCLUDED = ("Custom", "MultiRoom", "LavaCrossing", "SimpleCrossing")
#: ALMA's out-of-distribution categories.
OOD_CATEGORIES = ("corridor", "quest", "boxoban")
ALMA_SPLIT_SEED = 42
ALMA_TRAIN_FRACTION = 0.3

ALMA_TASK_IDS: tuple[str, ...] = (
    "MiniHack-Room-5x5-v0",
    "MiniHack-Room-Random-5x5-v0",
    "MiniHack-Room-Dark-5x5-v0",
    "MiniHack-Room-Monster-5x5-v0",
    "MiniHack-Room-Trap-5x5-v0",
    "MiniHack-Room-Ultimate-5x5-v0",
    "MiniHack-Room-15x15-v0",
    "MiniHack-Room-Random-15x15-v0",
    "MiniHack-Room-Dark-15x15-v0",
    "MiniHack-Room-Monster-15x15-v0",
    "MiniHack-Room-Trap-15x15-v0",
    "MiniHack-Room-Ultimate-15x15-v0",
    "MiniHack-Corridor-R2-v0",
    "MiniHack-Corridor-R3-v0",
    "MiniHack-Corridor-R5-v0",
    "MiniHack-KeyRoom-Fixed-S5-v0",
    "MiniHack-KeyRoom-S5-v0",
    "MiniHack-KeyRoom-S15-v0",
    "MiniHack-KeyRoom-Dark-S5-v0",
    "MiniHack-KeyRoom-Dark-S15-v0",
    "MiniHack-MazeWalk-9x9-v0",
    "MiniHack-MazeWalk-Mapped-9x9-v0",
    "MiniHack-MazeWalk-15x15-v0",
    "MiniHack-MazeWalk-Mapped-15x15-v0",
    "MiniHack-MazeWalk-45x19-v0",
    "MiniHack-MazeWalk-Mapped-45x19-v0",
    "MiniHack-CorridorBattle-v0",
    "MiniHack-CorridorBattle-Dark-v0",
    "MiniHack-Memento-Short-F2-v0",
    "MiniHack-Memento-F2-v0",
    "MiniHack-Memento-F4-v0",
    "MiniHack-Boxoban-Unfiltered-v0",
    "MiniHack-Boxoban-Medium-v0",
    "MiniHack-Boxoban-Hard-v0",
    "MiniHack-River-v0",
    "MiniHack-River-Monster-v0",
    "MiniHack-River-Lava-v0",
    "MiniHack-River-MonsterLava-v0",
    "MiniHack-River-Narrow-v0",
    "MiniHack-HideNSeek-Mapped-v0",
    "MiniHack-HideNSeek-v0",
    "MiniHack-HideNSeek-Lava-v0",
    "MiniHack-HideNSeek-Big-v0",
    "MiniHack-Labyrinth-Big-v0",
    "MiniHack-Labyrinth-Small-v0",
    "MiniHack-ExploreMaze-Easy-v0",
    "MiniHack-ExploreMaze-Hard-v0",
    "MiniHack-ExploreMaze-Easy-Mapped-v0",
    "MiniHack-ExploreMaze-Hard-Mapped-v0",
    "MiniHack-Eat-v0",
    "MiniHack-Pray-v0",
    "MiniHack-Sink-v0",
    "MiniHack-Wield-v0",
    "MiniHack-Wear-v0",
    "MiniHack-PutOn-v0",
    "MiniHack-Zap-v0",
    "MiniHack-Read-v0",
    "MiniHack-Eat-Fixed-v0",
    "MiniHack-Pray-Fixed-v0",
    "MiniHack-Sink-Fixed-v0",
    "MiniHack-Wield-Fixed-v0",
    "MiniHack-Wear-Fixed-v0",
    "MiniHack-PutOn-Fixed-v0",
    "MiniHack-Zap-Fixed-v0",
    "MiniHack-Read-Fixed-v0",
    "MiniHack-Eat-Distr-v0",
    "MiniHack-Pray-Distr-v0",
    "MiniHack-Sink-Distr-v0",
    "MiniHack-Wield-Distr-v0",
    "MiniHack-Wear-Distr-v0",
    "MiniHack-PutOn-Distr-v0",
    "MiniHack-Zap-Distr-v0",
    "MiniHack-Read-Distr-v0",
    "MiniHack-ClosedDoor-v0",
    "MiniHack-LockedDoor-v0",
    "MiniHack-LockedDoor-Fixed-v0",
    "MiniHack-WoD-Easy-Full-v0",
    "MiniHack-WoD-Easy-Restricted-v0",
    "MiniHack-WoD-Medium-Full-v0",
    "MiniHack-WoD-Medium-Restricted-v0",
    "MiniHack-WoD-Hard-Full-v0",
    "MiniHack-WoD-Hard-Restricted-v0",
    "MiniHack-WoD-Pro-Full-v0",
    "MiniHack-WoD-Pro-Restricted-v0",
    "MiniHack-Levitate-Boots-Full-v0",
    "MiniHack-Levitate-Boots-Restricted-v0",
    "MiniHack-Levitate-Ring-Full-v0",
    "MiniHack-Levitate-Ring-Restricted-v0",
    "MiniHack-Levitate-Potion-Full-v0",
    "MiniHack-Levitate-Potion-Restricted-v0",
    "MiniHack-Levitate-Random-Full-v0",
    "MiniHack-Levitate-Boots-Fixed-v0",
    "MiniHack-Levitate-Ring-Fixed-v0",
    "MiniHack-Levitate-Potion-Fixed-v0",
    "MiniHack-Freeze-Wand-Full-v0",
    "MiniHack-Freeze-Wand-Restricted-v0",
    "MiniHack-Freeze-Horn-Full-v0",
    "MiniHack-Freeze-Horn-Restricted-v0",
    "MiniHack-Freeze-Random-Full-v0",
    "MiniHack-Freeze-Random-Restricted-v0",
    "MiniHack-Freeze-Lava-Full-v0",
    "MiniHack-Freeze-Lava-Restricted-v0",
    "MiniHack-LavaCross-Levitate-Potion-Pickup-Full-v0",
    "MiniHack-LavaCross-Levitate-Potion-Pickup-Restricted-v0",
    "MiniHack-LavaCross-Levitate-Potion-Inv-Full-v0",
    "MiniHack-LavaCross-Levitate-Potion-Inv-Restricted-v0",
    "MiniHack-LavaCross-Levitate-Ring-Pickup-Full-v0",
    "MiniHack-LavaCross-Levitate-Ring-Pickup-Restricted-v0",
    "MiniHack-LavaCross-Levitate-Ring-Inv-Full-v0",
    "MiniHack-LavaCross-Levitate-Ring-Inv-Restricted-v0",
    "MiniHack-LavaCross-Levitate-Full-v0",
    "MiniHack-LavaCross-Levitate-Restricted-v0",
    "MiniHack-LavaCross-Full-v0",
    "MiniHack-LavaCross-Restricted-v0",
    "MiniHack-Quest-Easy-v0",
    "MiniHack-Quest-Medium-v0",
    "MiniHack-Quest-Hard-v0",
    "MiniHack-Sokoban4a-v1",
    "MiniHack-Sokoban4b-v1",
    "MiniHack-Sokoban3a-v1",
    "MiniHack-Sokoban3b-v1",
    "MiniHack-Sokoban2a-v1",
    "MiniHack-Sokoban2b-v1",
    "MiniHack-Sokoban1a-v1",
    "MiniHack-Sokoban1b-v1",
)


def category(task_id: str) -> str:
    """ALMA's category of a task id: ``corridor``, ``quest``, ``boxoban`` or ``distance``."""
    lowered = task_id.lower()
    for name in OOD_CATEGORIES:
        if name in lowered:
            return name
    return "distance"


def alma_task_ids_from_registry(registry_ids: list[str]) -> tuple[str, ...]:
    """ALMA's filter applied to registered gym ids (kept in registry order)."""
    return tuple(
        i
        for i in registry_ids
        if i.startswith("MiniHack") and not any(e in i for e in ALMA_EXCLUDED)
    )


def _alma_splits() -> dict[str, tuple[str, ...]]:
    distance = [t for t in ALMA_TASK_IDS if category(t) == "distance"]
    random.Random(ALMA_SPLIT_SEED).shuffle(distance)
    n_train = int(len(distance) * ALMA_TRAIN_FRACTION)
    return {
        "train": tuple(distance[:n_train]),
        "eval_in_distribution": tuple(distance[n_train:]),
        "eval_out_of_distribution": tuple(t for t in ALMA_TASK_IDS if category(t) != "distance"),
    }


#: Harness splits: ALMA's three, BALROG's 8, and every ALMA id.
SPLITS: dict[str, tuple[str, ...]] = {
    **_alma_splits(),
    "balrog": BALROG_TASK_IDS,
    "all": ALMA_TASK_IDS,
}


@dataclass(frozen=True)
class Preset:
    """Settings that change outcomes; recorded with every result.

    Attributes:
        name: ``balrog`` or ``alma``.
        agent_max_steps: the agent's action cap.
        env_max_steps: the environment's own step cap (``max_episode_steps``).
        penalty_step: reward added on every step.
        success_rule: ``reward_at_least_1`` (BALROG: a step reward >= 1.0 at any point) or
            ``final_reward_exactly_1`` (ALMA: the last step's reward is exactly 1.0).
    """

    name: str
    agent_max_steps: int
    env_max_steps: int
    penalty_step: float
    success_rule: str

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gymnasium.make`` shared by both presets (BALROG's config)."""
        return {
            "character": "@",
            "max_episode_steps": self.env_max_steps,
            "penalty_step": self.penalty_step,
            "penalty_time": 0.0,
            "penalty_mode": "constant",
            "autopickup": False,
        }

    def to_json(self) -> dict[str, Any]:
        """The preset as recorded in results."""
        return {
            "name": self.name,
            "agent_max_steps": self.agent_max_steps,
            "env_max_steps": self.env_max_steps,
            "penalty_step": self.penalty_step,
            "penalty_time": 0.0,
            "penalty_mode": "constant",
            "character": "@",
            "autopickup": False,
            "skip_more": True,
            "success_rule": self.success_rule,
        }


PRESETS: dict[str, Preset] = {
    "balrog": Preset("balrog", 100, 100, -0.01, "reward_at_least_1"),
    "alma": Preset("alma", 100, 1_000_000, -1.0, "final_reward_exactly_1"),
}
