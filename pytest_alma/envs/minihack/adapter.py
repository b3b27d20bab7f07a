"""MiniHack as a harness environment (entry point ``pytest_alma.environments: minihack``).

Splits (see :mod:`pytest_alma.envs.minihack.tasks`): ``train`` (34), ``eval_in_distribution``
(80, the default, what ALMA evaluates), ``eval_out_of_distribution`` (11: corridor, quest and
Boxoban tasks), ``balrog`` (BALROG's 8) and ``all`` (125).

A task is a MiniHack id plus a seed; the seed fixes NetHack's RNGs (and the Boxoban puzzle), so
the same task replays the same level. Presets: ``alma`` (the default: 100 agent actions, step
penalty -1, success only when the final reward is exactly 1.0) and ``balrog`` (100 steps, step
penalty -0.01, success when a step's reward reaches 1.0). Choose with ``ALMA_MINIHACK_PRESET``;
Boxoban's level folder with ``ALMA_MINIHACK_BOXOBAN_LEVELS``. The observation is BALROG's
"hybrid" text (:mod:`pytest_alma.envs.minihack.text`); the system prompt lists the actions the
task allows and states its goal, as ALMA's prompt does.

Clock: every game runs on one pinned instant (:mod:`pytest_alma.envs.minihack.clock`), so a
task and seed play the same game on any date; ``ALMA_MINIHACK_CLOCK=system`` (or ``clock=``)
plays on the real clock. The choice is recorded in the settings (``clock``).
"""

from __future__ import annotations

import os
from typing import Any

from pytest_alma.envs.base import InvalidAction, StepResult
from pytest_alma.envs.minihack.actions import DEFAULT_ACTION, action_prompt
from pytest_alma.envs.minihack.boxoban import BoxobanLevelsMissing, is_boxoban, use_levels
from pytest_alma.envs.minihack.clock import (
    CLOCK_ENV_VAR,
    PINNED_EPOCH,
    chosen_clock,
    clock_settings,
)
from pytest_alma.envs.minihack.game import MiniHackGame, import_minihack
from pytest_alma.envs.minihack.tasks import ALMA_TASK_IDS, PRESETS, SPLITS, Preset, category
from pytest_alma.records import Task, TaskStart

#: Bump when the observation text, the action vocabulary, the seeding or the clock change
#: (cache keys). 2: the clock is pinned (games no longer depend on the date).
ADAPTER_VERSION = "2"

PRESET_ENV_VAR = "ALMA_MINIHACK_PRESET"

_NAVIGATE = (
    "Find the staircase down ('>') and reach it. Explore when it is not in sight; avoid or "
    "fight monsters and avoid dangerous terrain (lava, water, traps) on the way."
)
#: Goals by task family (the id's second dash-separated part); navigation when absent.
_GOALS: dict[str, str] = {
    "Boxoban": "Push every boulder ('`') onto a fountain ('{'). Boulders move when you walk "
    "into them; they cannot be pulled, so avoid pushing one into a corner.",
    "Quest": "Reach the staircase down ('>') at the end of the quest, dealing with the monsters "
    "and obstacles (lava, locked passages) on the way.",
    "Eat": "Eat the food item (an apple) on this level.",
    "Pray": "Pray to your god.",
    "Sink": "Quaff (drink) from the sink on this level.",
    "Wield": "Pick up the weapon on this level and wield it.",
    "Wear": "Pick up the armour on this level and wear it.",
    "PutOn": "Pick up the accessory on this level and put it on.",
    "Zap": "Pick up the wand on this level and zap it.",
    "Read": "Pick up the scroll on this level and read it.",
    "WoD": "Pick up the wand of death and zap it at the minotaur, then reach the stairs ('>').",
    "Levitate": "Start levitating (with the item on this level) to cross the lava, then reach "
    "the staircase down ('>').",
    "Freeze": "Freeze the lava (with the wand or horn on this level), then reach the staircase "
    "down ('>').",
    "LavaCross": "Cross the lava river (levitate or freeze it with an item) and reach the "
    "staircase down ('>').",
}


def goal_of(task_id: str) -> str:
    """The goal text for a task (by family; navigation for the rest)."""
    parts = task_id.split("-")
    family = parts[1] if len(parts) > 1 else ""
    return _GOALS.get(family, _NAVIGATE)


def _instructions(actions_block: str, goal: str) -> str:
    return f"""You are an agent playing MiniHack, a set of small NetHack levels. You see the \
game as text: your inventory, the last message, a description of what is near you with \
directions and distances, your position, and the ASCII map ('@' is you).

{actions_block}
Rules for your answer:
1. Reply with exactly one action name from the list above, and nothing else.
2. Only use the actions listed; anything else is replaced by the default action.
3. Directions are compass directions on the map: north is up, east is right.
4. There is no point repeating an action that did not change anything.
5. Think about where the goal is before moving; walls, boulders and monsters block you.

Your task: {goal}
"""


class MiniHackEpisode:
    """One harness episode over :class:`MiniHackGame`."""

    def __init__(
        self, task: Task, preset: Preset, boxoban_levels: str | None, clock: str = "pinned"
    ) -> None:
        from pytest_alma.envs.minihack.text import OBSERVATION_KEYS

        self.task = task
        self.preset = preset
        self._game = MiniHackGame(task.task_id, preset, OBSERVATION_KEYS, boxoban_levels, clock)
        self._names = self._game.action_names()
        self._rewards: list[float] = []
        self._done = False

    def instructions(self) -> str:
        """The system prompt for this task: its allowed actions and its goal."""
        return _instructions(action_prompt(self._game.actions), goal_of(self.task.task_id))

    def _text(self) -> str:
        from pytest_alma.envs.minihack.text import observation_text

        return observation_text(self._game.observation)

    def reset(self) -> TaskStart:
        self._game.reset(self.task.seed)
        self._rewards = []
        self._done = False
        return TaskStart(
            task=self.task,
            observation=self._text(),
            goal=goal_of(self.task.task_id),
            actions=self._names,
        )

    def step(self, action: str) -> StepResult:
        if action not in self._names:
            raise InvalidAction(
                f"{action!r} is not an action of {self.task.task_id}; valid actions: "
                f"{', '.join(self._names)}"
            )
        if self._done:
            raise RuntimeError("the episode has ended; reset() before stepping again")
        outcome = self._game.step(action)
        self._rewards.append(outcome.last_reward)
        self._done = outcome.terminated or outcome.truncated
        info: dict[str, Any] = {
            "terminated": outcome.terminated,
            "truncated": outcome.truncated,
            "messages": outcome.messages,
        }
        return StepResult(
            observation=self._text(), reward=outcome.reward, done=self._done, info=info
        )

    def valid_actions(self) -> tuple[str, ...]:
        return self._names

    def score(self) -> tuple[float, bool]:
        if self.preset.success_rule == "final_reward_exactly_1":
            won = bool(self._rewards) and self._rewards[-1] == 1.0
        else:
            won = any(r >= 1.0 for r in self._rewards)
        return (1.0 if won else 0.0), won

    def close(self) -> None:
        self._game.close()


class MiniHackEnvironment:
    """The MiniHack benchmark for the harness (see the module docstring)."""

    name = "minihack"

    def __init__(
        self,
        preset: str | None = None,
        boxoban_levels: str | None = None,
        clock: str | None = None,
    ) -> None:
        import_minihack()  # fail now, with install instructions, not at the first episode
        self.clock = chosen_clock(clock)
        if self.clock == "pinned":
            _check_pin_applies()
        chosen = preset or os.environ.get(PRESET_ENV_VAR, "alma")
        if chosen not in PRESETS:
            raise ValueError(
                f"unknown MiniHack preset {chosen!r} (from {PRESET_ENV_VAR} or preset=); "
                f"choose one of {', '.join(PRESETS)}"
            )
        self.preset = PRESETS[chosen]
        self.boxoban_levels = boxoban_levels

    def splits(self) -> tuple[str, ...]:
        return tuple(SPLITS)

    def default_split(self) -> str:
        return "eval_in_distribution"

    def tasks(self, split: str) -> list[str]:
        try:
            return list(SPLITS[split])
        except KeyError:
            raise ValueError(
                f"unknown MiniHack split {split!r}; choose one of {', '.join(SPLITS)}"
            ) from None

    def instructions(self) -> str:
        # Used only where no episode is at hand; episodes give their own (actions, goal).
        return _instructions("Available actions: those the task allows.\n", _NAVIGATE)

    def default_max_steps(self) -> int:
        return self.preset.agent_max_steps

    def default_action(self) -> str:
        return DEFAULT_ACTION

    def settings(self) -> dict[str, Any]:
        return {
            "adapter_version": ADAPTER_VERSION,
            "preset": self.preset.to_json(),
            "boxoban_levels": self.boxoban_levels or os.environ.get("ALMA_MINIHACK_BOXOBAN_LEVELS"),
            "clock": clock_settings(self.clock),
        }

    def check_tasks(self, task_ids: list[str]) -> None:
        """Raise ValueError, before any episode, when a planned Boxoban task lacks its levels."""
        for task_id in task_ids:
            if is_boxoban(task_id):
                try:
                    use_levels(task_id, self.boxoban_levels)
                except BoxobanLevelsMissing as exc:
                    raise ValueError(str(exc)) from None

    def open(self, task: Task, max_steps: int) -> MiniHackEpisode:
        if task.task_id not in ALMA_TASK_IDS:
            import difflib

            close = difflib.get_close_matches(task.task_id, ALMA_TASK_IDS, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown MiniHack task {task.task_id!r}.{hint}")
        return MiniHackEpisode(task, self.preset, self.boxoban_levels, self.clock)


def _check_pin_applies() -> None:
    """Fail at start-up, not at the first episode, when this nle build cannot be pinned."""
    from nle.nethack.nethack import DLPATH

    from pytest_alma.envs.minihack import elfpatch

    with open(DLPATH, "rb") as handle:
        data = handle.read()
    try:
        elfpatch.patched(data, PINNED_EPOCH)  # in memory only: the installed file is untouched
    except elfpatch.ClockPatchError as err:
        raise RuntimeError(
            f"cannot pin NetHack's clock ({err}): the pin supports nle's x86-64 Linux build. "
            f"Set {CLOCK_ENV_VAR}=system to play on the real clock (results then depend on the "
            "date, and results.json says so)"
        ) from err


__all__ = ["MiniHackEnvironment", "MiniHackEpisode", "category", "goal_of"]
