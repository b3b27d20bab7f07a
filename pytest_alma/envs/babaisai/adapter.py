"""Baba Is AI as a harness environment (entry point ``pytest_alma.environments: babaisai``).

Splits:

- ``train``: ALMA's 26 training level ids (computed from the reference's seeded shuffle).
- ``eval_in_distribution``: the other 27 ALMA ids (what ALMA's evaluation runs; the default).
- ``balrog``: BALROG's 40 ids.
- ``all``: all 53 ids.

A task is a level id plus a seed; the seed draws the layout, so the same task replays the same
level. Presets: ``alma`` (the agent gets 20 actions, ALMA's ``max_trails``) and ``balrog`` (100,
the game's own cap); the game's cap, which drives the win reward ``1 - 0.9 * t / 100``, is 100
in both. Choose with ``ALMA_BABAISAI_PRESET`` and the broken-you-rule behaviour with
``ALMA_BABAISAI_ON_YOU_BROKEN`` (``reset``, BALROG's, or ``end``). Success is a positive final
reward (a win), as in BALROG and ALMA.
"""

from __future__ import annotations

import os
from typing import Any, Literal, cast

from pytest_alma.envs.babaisai.game_env import BabaEpisode
from pytest_alma.envs.babaisai.levels import (
    ALMA_EVAL_IDS,
    ALMA_TRAIN_IDS,
    BALROG_LEVEL_IDS,
    BALROG_MAX_STEPS,
    LEVEL_IDS,
    PRESETS,
    layout_factory,
    level_spec,
)
from pytest_alma.envs.babaisai.text import ACTIONS, instruction_prompt
from pytest_alma.envs.base import InvalidAction, StepResult
from pytest_alma.records import Task, TaskStart

#: Bump when the engine's dynamics, the levels or the text change: part of every cache key.
ENGINE_VERSION = "1"

GOAL = (
    "Win the level: make the object you control (the one in an active 'X is you' rule) reach "
    "an object that is 'win', forming or breaking rules by pushing text blocks when needed."
)

SPLITS: dict[str, tuple[str, ...]] = {
    "train": ALMA_TRAIN_IDS,
    "eval_in_distribution": ALMA_EVAL_IDS,
    "balrog": BALROG_LEVEL_IDS,
    "all": LEVEL_IDS,
}


class BabaIsAIEpisode:
    """One harness episode over :class:`BabaEpisode`."""

    def __init__(self, task: Task, on_you_broken: Literal["reset", "end"]) -> None:
        self.task = task
        self._game = BabaEpisode(
            layout_factory(task.task_id),
            seed=task.seed,
            max_steps=BALROG_MAX_STEPS,
            on_you_broken=on_you_broken,
        )
        self._last_reward = 0.0

    def reset(self) -> TaskStart:
        observation = self._game.reset()
        self._last_reward = 0.0
        return TaskStart(task=self.task, observation=observation, goal=GOAL, actions=tuple(ACTIONS))

    def step(self, action: str) -> StepResult:
        if action not in ACTIONS:
            raise InvalidAction(
                f"{action!r} is not a Baba Is AI action; valid actions: {', '.join(ACTIONS)}"
            )
        text, reward, done, info = self._game.step(action)
        self._last_reward = reward
        return StepResult(observation=text, reward=reward, done=done, info=info)

    def valid_actions(self) -> tuple[str, ...]:
        return tuple(ACTIONS)

    def score(self) -> tuple[float, bool]:
        won = self._last_reward > 0
        return (1.0 if won else 0.0), won

    def close(self) -> None:
        return None


class BabaIsAIEnvironment:
    """The Baba Is AI benchmark for the harness (see the module docstring)."""

    name = "babaisai"

    def __init__(
        self,
        preset: str | None = None,
        on_you_broken: str | None = None,
    ) -> None:
        preset = preset or os.environ.get("ALMA_BABAISAI_PRESET", "alma")
        if preset not in PRESETS:
            raise ValueError(
                f"unknown Baba Is AI preset {preset!r}; choose one of {', '.join(PRESETS)}"
            )
        mode = on_you_broken or os.environ.get("ALMA_BABAISAI_ON_YOU_BROKEN", "reset")
        if mode not in ("reset", "end"):
            raise ValueError(f"ALMA_BABAISAI_ON_YOU_BROKEN must be 'reset' or 'end', got {mode!r}")
        self.preset = PRESETS[preset]
        self.on_you_broken = cast(Literal["reset", "end"], mode)

    def splits(self) -> tuple[str, ...]:
        return tuple(SPLITS)

    def default_split(self) -> str:
        return "eval_in_distribution"

    def tasks(self, split: str) -> list[str]:
        try:
            return list(SPLITS[split])
        except KeyError:
            raise ValueError(
                f"unknown Baba Is AI split {split!r}; choose one of {', '.join(SPLITS)}"
            ) from None

    def instructions(self) -> str:
        return instruction_prompt()

    def default_max_steps(self) -> int:
        return self.preset.max_steps

    def default_action(self) -> str:
        return "idle"

    def settings(self) -> dict[str, Any]:
        return {
            "engine_version": ENGINE_VERSION,
            "preset": self.preset.name,
            "game_max_steps": BALROG_MAX_STEPS,
            "on_you_broken": self.on_you_broken,
        }

    def open(self, task: Task, max_steps: int) -> BabaIsAIEpisode:
        level_spec(task.task_id)  # an unknown id fails here, listing the known ones
        return BabaIsAIEpisode(task, self.on_you_broken)
