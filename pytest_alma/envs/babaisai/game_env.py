"""Episode facade over :class:`BabaGame`: seeding, text observations, broken you-rules.

:class:`BabaEpisode` is what the harness adapter and the gymnasium wrapper drive. It owns one
``numpy.random.default_rng(seed)``; every layout of the episode (the first one and any
regenerated one) is drawn from it, so an episode is reproducible from its seed alone.

Broken you-rule handling (spec 1.8 and errata 11). After a step that leaves no visible
you-object (the ``X is you`` rule was broken, or the you-object got covered) and did not end
the game:

* ``on_you_broken="reset"`` (default, BALROG's behaviour): a *new* layout is drawn from the same
  rng and a fresh game starts. The observation is ``"[...] IS YOU rule was broken, environment
  reset"``, a newline, then the new level's normal text (BALROG appends a Python repr here that
  cannot be reproduced). Reward 0, not done, ``info["you_rule_broken"] = True``. Step counter
  semantics: like BALROG, the *game's* step counter restarts at 0 (so the win reward and the
  ``max_steps`` cap of the new level count from the reset), while ``info["total_steps"]``
  keeps counting every action of the episode and ``info["resets"]`` counts the regenerations.
  A caller that wants a hard cap on actions across resets must enforce it itself (BALROG's
  and ALMA's agent loops do).
* ``on_you_broken="end"``: the episode ends with reward 0, ``info["you_rule_broken"] = True``;
  the observation is ``"[...] IS YOU rule was broken, episode ended"``, a newline and the
  active rules.

A step that ends the game (win, lose, step cap) is never turned into a reset. If it also left
no visible you-object, the object list is replaced by ``(no object is you)``.

A freshly built level with no visible you-object is discarded and redrawn (at most
``max_layout_attempts`` times); level generators should never produce one (errata 11).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from pytest_alma.envs.babaisai.engine import BabaGame
from pytest_alma.envs.babaisai.layout import Layout
from pytest_alma.envs.babaisai.text import (
    ACTION_INDEX,
    ACTIONS,
    YOU_RULE_BROKEN_PREFIX,
    observation_text,
    rules_text,
)

#: Prefix of the final observation in ``on_you_broken="end"`` mode.
YOU_RULE_BROKEN_END_PREFIX = "[...] IS YOU rule was broken, episode ended"


class InvalidActionError(ValueError):
    """An action that is neither a known action name nor an index in 0..4."""


def parse_action(action: str | int) -> int:
    """Turn an action name (case and surrounding spaces ignored) or index into an index."""
    valid = ", ".join(ACTIONS)
    if isinstance(action, str):
        idx = ACTION_INDEX.get(action.strip().lower())
        if idx is None:
            raise InvalidActionError(f"invalid action {action!r}; valid actions are: {valid}")
        return idx
    if (
        isinstance(action, int | np.integer)
        and not isinstance(action, bool)
        and 0 <= int(action) < len(ACTIONS)
    ):
        return int(action)
    raise InvalidActionError(
        f"invalid action {action!r}; valid actions are: {valid} (or their indices 0..4)"
    )


def _final_text(game: BabaGame) -> str:
    """Observation of a finished game, which may have no you-object to measure offsets from."""
    if game.you_position() is not None:
        return observation_text(game)
    return f"Active rules:\n{rules_text(game)}\n\nObjects on the map:\n(no object is you)"


class BabaEpisode:
    """One seeded Baba Is AI episode with BALROG-style text observations.

    ``layout_factory`` draws a level from the episode's rng; ``max_steps`` is the game's step
    cap; ``on_you_broken`` chooses between BALROG's reset and ending the episode (see the
    module docstring).
    """

    def __init__(
        self,
        layout_factory: Callable[[np.random.Generator], Layout],
        seed: int,
        max_steps: int = 100,
        on_you_broken: Literal["reset", "end"] = "reset",
        max_layout_attempts: int = 100,
    ) -> None:
        if on_you_broken not in ("reset", "end"):
            raise ValueError(f"on_you_broken must be 'reset' or 'end', got {on_you_broken!r}")
        self.layout_factory = layout_factory
        self.seed = seed
        self.max_steps = max_steps
        self.on_you_broken: Literal["reset", "end"] = on_you_broken
        self.max_layout_attempts = max_layout_attempts
        self.rng = np.random.default_rng(seed)
        self._game: BabaGame | None = None
        self.done = False
        self.total_steps = 0
        self.resets = 0

    @property
    def game(self) -> BabaGame:
        """The current game (raises before :meth:`reset`)."""
        if self._game is None:
            raise RuntimeError("call reset() before using the episode")
        return self._game

    def _new_game(self) -> BabaGame:
        for _ in range(self.max_layout_attempts):
            game = BabaGame.from_layout(self.layout_factory(self.rng), self.max_steps)
            if game.you_position() is not None:
                return game
        raise RuntimeError(
            f"layout factory produced no level with a visible you-object in "
            f"{self.max_layout_attempts} attempts"
        )

    def reset(self) -> str:
        """Start the episode on a fresh layout and return its text observation.

        Calling it again continues the same rng stream (a different level, still reproducible).
        """
        self._game = self._new_game()
        self.done = False
        self.total_steps = 0
        self.resets = 0
        return observation_text(self._game)

    def step(self, action: str | int) -> tuple[str, float, bool, dict[str, Any]]:
        """Play one action (name or index); return ``(text, reward, done, info)``.

        Raises :class:`InvalidActionError` for an unknown action (defaulting to idle is the
        agent loop's decision) and RuntimeError after the episode is done.
        """
        idx = parse_action(action)
        game = self.game
        if self.done:
            raise RuntimeError("the episode is done; call reset() to start a new one")
        out = game.step(idx)
        self.total_steps += 1
        info: dict[str, Any] = {
            "action": idx,
            "won": out.won,
            "lost": out.lost,
            "step_count": game.step_count,
            "total_steps": self.total_steps,
            "resets": self.resets,
            "you_rule_broken": False,
        }
        if out.done:
            self.done = True
            return _final_text(game), out.reward, True, info
        if game.you_position() is not None:
            return observation_text(game), out.reward, False, info
        info["you_rule_broken"] = True
        if self.on_you_broken == "end":
            self.done = True
            text = f"{YOU_RULE_BROKEN_END_PREFIX}\nActive rules:\n{rules_text(game)}"
            return text, 0.0, True, info
        self._game = self._new_game()
        self.resets += 1
        info["resets"] = self.resets
        info["step_count"] = 0
        text = f"{YOU_RULE_BROKEN_PREFIX}\n{observation_text(self._game)}"
        return text, 0.0, False, info
