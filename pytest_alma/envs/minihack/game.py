"""One MiniHack game: made with a preset, reset from a seed, stepped by action name.

Seeding: gymnasium's ``reset(seed=...)`` only seeds the wrapper's numpy generator, not NetHack.
NetHack has two RNGs (core and display) that nle seeds through ``env.unwrapped.seed(core,
disp, reseed)``; we derive both from the episode seed and turn NetHack's periodic reseeding off,
so the same task and seed replay the same map and the same dynamics.

``--More--``: BALROG plays with an "auto more" wrapper (``skip_more``) because a long message
blocks the game until it is dismissed. nle 1.3 has no such option, so after every step we send
the ``more`` key while the screen shows ``--More--`` (when the task's action set has it), and
keep every message seen on the way.

Clock: NetHack reads the date (moon phase, Friday the 13th, night, midnight, the hero's
birthday). Unless told ``clock="system"``, every game runs on the pinned instant of
:mod:`pytest_alma.envs.minihack.clock`, so a task and seed play the same game on any date.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_alma.envs.minihack import boxoban
from pytest_alma.envs.minihack import clock as _clock
from pytest_alma.envs.minihack.actions import BY_NAME, NamedAction, allowed_actions
from pytest_alma.envs.minihack.tasks import Preset

_MORE = b"--More--"
_MAX_MORE = 20  # a message never needs more pages than this; a guard against a stuck prompt


def import_minihack() -> None:
    """Import minihack (registers its gym ids) with an error that says how to install it."""
    try:
        with warnings.catch_warnings():
            # minihack 1.0.2 imports pkg_resources, which warns that it is deprecated.
            warnings.simplefilter("ignore")
            import minihack  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name == "pkg_resources":
            raise ModuleNotFoundError(
                "minihack 1.0.2 imports pkg_resources, which setuptools 81 and later removed: "
                "pip install 'setuptools<81' (or pip install -e '.[minihack]', which pins it)"
            ) from err
        raise ModuleNotFoundError(
            f"MiniHack needs the minihack and nle packages ({err}); install them with "
            "pip install -e '.[minihack]'"
        ) from err


def nle_seeds(seed: int) -> tuple[int, int]:
    """NetHack's (core, disp) seeds for an episode seed (both derived, both non-negative)."""
    rng = np.random.default_rng(seed)
    core, disp = (int(v) for v in rng.integers(0, 2**31 - 1, size=2))
    return core, disp


@dataclass
class StepOutcome:
    """What one named action did."""

    observation: dict[str, np.ndarray]
    reward: float  # summed over the action and any --More-- pages it caused
    last_reward: float  # the environment's reward on the last of those steps
    terminated: bool
    truncated: bool
    messages: list[str] = field(default_factory=list)


class MiniHackGame:
    """A MiniHack environment for one task, with named actions and seeded resets.

    Args:
        task_id: a registered MiniHack gym id.
        preset: the settings preset.
        observation_keys: the NLE observation keys to request.
        boxoban_levels: folder of Boxoban level files (default: ``$ALMA_MINIHACK_BOXOBAN_LEVELS``).
        clock: ``"pinned"`` or ``"system"`` (default: ``$ALMA_MINIHACK_CLOCK``, else pinned).
    """

    def __init__(
        self,
        task_id: str,
        preset: Preset,
        observation_keys: tuple[str, ...],
        boxoban_levels: str | None = None,
        clock: str | None = None,
    ) -> None:
        import_minihack()
        import gymnasium as gym

        if boxoban.is_boxoban(task_id):
            boxoban.use_levels(task_id, boxoban_levels)
        self.task_id = task_id
        self.preset = preset
        self.clock = _clock.chosen_clock(clock)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gymnasium's passive checker warns on NLE's spaces
            made: Any = gym.make(task_id, observation_keys=observation_keys, **preset.env_kwargs())
        self._env: Any = made  # nle and minihack have no type information
        if self.clock == "pinned":
            # Before the first reset: nle reloads its library copy from the patched file at
            # every reset, so every game of this environment runs on the pinned clock.
            try:
                _clock.pin_env(self._env)
            except BaseException:
                self._env.close()
                raise
        self._raw_actions: list[int] = [int(a) for a in self._env.unwrapped.actions]
        self.actions: tuple[NamedAction, ...] = allowed_actions(self._raw_actions)
        self._more = BY_NAME["more"].nle_action
        self.observation: dict[str, np.ndarray] = {}

    def action_names(self) -> tuple[str, ...]:
        """The named actions this task accepts."""
        return tuple(a.name for a in self.actions)

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Start an episode from ``seed``; the same seed gives the same episode."""
        core, disp = nle_seeds(seed)
        self._env.unwrapped.seed(core, disp, False)
        observation: dict[str, np.ndarray] = self._env.reset(seed=seed)[0]
        self.observation = observation
        return observation

    def step(self, name: str) -> StepOutcome:
        """Play the named action (one of :meth:`action_names`), then dismiss ``--More--``."""
        action = BY_NAME[name].nle_action
        observation, reward, terminated, truncated, _ = self._env.step(
            self._raw_actions.index(action)
        )
        total = float(reward)
        messages = [_message(observation)]
        pages = 0
        while (
            not (terminated or truncated)
            and self._more in self._raw_actions
            and _shows_more(observation)
            and pages < _MAX_MORE
        ):
            observation, reward, terminated, truncated, _ = self._env.step(
                self._raw_actions.index(self._more)
            )
            total += float(reward)
            messages.append(_message(observation))
            pages += 1
        self.observation = observation
        return StepOutcome(
            observation,
            total,
            float(reward),
            bool(terminated),
            bool(truncated),
            [m for m in messages if m],
        )

    def close(self) -> None:
        """Release the NetHack process state."""
        self._env.close()


def _message(observation: dict[str, np.ndarray]) -> str:
    raw = observation.get("message")
    if raw is None:
        return ""
    return bytes(raw).split(b"\0", 1)[0].decode("latin-1").strip()


def _shows_more(observation: dict[str, np.ndarray]) -> bool:
    chars = observation.get("tty_chars")
    return chars is not None and _MORE in bytes(chars.tobytes())
