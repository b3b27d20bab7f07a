"""A gymnasium environment over :class:`BabaEpisode`: Baba Is AI with text observations.

Spaces:

* ``observation_space = Text(max_length=MAX_OBSERVATION_LENGTH, charset=OBSERVATION_CHARSET)``:
  the observation is BALROG's text (see :mod:`pytest_alma.envs.babaisai.text`), exactly what
  :meth:`BabaEpisode.step` returns;
* ``action_space = Discrete(5)``: 0 idle, 1 up, 2 right, 3 down, 4 left. :meth:`step` also
  accepts the action *names* (``"idle"``, ``"up"``, ``"right"``, ``"down"``, ``"left"``, case and
  surrounding spaces ignored); anything else raises :class:`InvalidActionError` (a
  ``ValueError``).

Seeding follows gymnasium's conventions: ``reset(seed=s)`` reseeds :attr:`np_random`, and every
reset draws the level seed from it (``info["level_seed"]``), so ``reset(seed=s)`` always gives
the same level and a later ``reset()`` continues the stream with a different one. The level
seed drives a :class:`BabaEpisode` (its layout and any layout regenerated after a broken
you-rule).

Episode ends: ``terminated`` on a win (reward ``1 - 0.9 * t / max_steps``) or a loss (reward
-1), and, with ``on_you_broken="end"``, when the you-rule breaks (reward 0). ``truncated`` when
the game's own step counter reaches ``max_steps`` without a win or loss. With the default
``on_you_broken="reset"`` (BALROG's behaviour) a broken you-rule draws a new level and restarts
the game's step counter, so an episode can last longer than ``max_steps`` actions;
``info["total_steps"]`` counts every action, and ``gymnasium.make(..., max_episode_steps=n)``
adds a hard cap on actions if wanted. Stepping after the end, or before the first reset,
raises RuntimeError.

``render_mode="ansi"``: :meth:`render` returns a *grid picture* of the current state in the
layout text format (:func:`~pytest_alma.envs.babaisai.layout_text.format_layout` of
``game.to_layout()``), not the observation text (which ``step`` already returns).

Registration: :func:`register_envs` registers one id per level, ``pytest_alma/BabaIsAI-<id>-v0``.
Gymnasium ids may not contain ``#``, so it is written ``.`` (``make_win#no_ball_win`` becomes
``pytest_alma/BabaIsAI-make_win.no_ball_win-v0``); :data:`GYM_IDS` and :data:`LEVEL_ID_OF` map
both ways. Importing this module registers the ids too, so with gymnasium 1.x (which no longer
loads ``gymnasium.envs`` entry points) ``gymnasium.make("pytest_alma.envs.babaisai.gym_env:"
"pytest_alma/BabaIsAI-goto_win-v0")`` works without a prior import. The ids carry no
``max_episode_steps``: the environment truncates itself at the game's cap.
"""

from __future__ import annotations

import string
from typing import Any, Final, Literal

from gymnasium.core import Env
from gymnasium.envs.registration import register, registry
from gymnasium.spaces import Discrete, Space, Text

from pytest_alma.envs.babaisai.engine import N_ACTIONS, BabaGame
from pytest_alma.envs.babaisai.game_env import BabaEpisode, InvalidActionError, parse_action
from pytest_alma.envs.babaisai.layout_text import format_layout
from pytest_alma.envs.babaisai.levels import LEVEL_IDS, layout_factory

__all__ = [
    "ENTRY_POINT",
    "GYM_IDS",
    "GYM_NAMESPACE",
    "LEVEL_ID_OF",
    "MAX_OBSERVATION_LENGTH",
    "OBSERVATION_CHARSET",
    "BabaIsAIGymEnv",
    "InvalidActionError",
    "gym_id",
    "register_envs",
]

#: Namespace of our gymnasium ids.
GYM_NAMESPACE: Final = "pytest_alma"
#: What gymnasium imports to build one of our environments.
ENTRY_POINT: Final = "pytest_alma.envs.babaisai.gym_env:BabaIsAIGymEnv"
#: Every character an observation can contain: printable ASCII letters, digits, punctuation,
#: space and newline (the text uses letters, digits, space, newline, backticks, brackets, dots,
#: commas and parentheses).
OBSERVATION_CHARSET: Final = string.ascii_letters + string.digits + string.punctuation + " \n"
#: Upper bound on an observation's length. The largest level has 77 interior cells and an
#: object line is at most about 55 characters, so real observations stay under 5,000.
MAX_OBSERVATION_LENGTH: Final = 8192

#: Seeds drawn for levels are in ``[0, _LEVEL_SEED_BOUND)``.
_LEVEL_SEED_BOUND: Final = 2**63 - 1


def gym_id(level_id: str) -> str:
    """The gymnasium id of ``level_id``: ``pytest_alma/BabaIsAI-<level_id>-v0``, ``#`` as ``.``."""
    return f"{GYM_NAMESPACE}/BabaIsAI-{level_id.replace('#', '.')}-v0"


#: Level id -> gymnasium id, for all 53 levels.
GYM_IDS: Final[dict[str, str]] = {level_id: gym_id(level_id) for level_id in LEVEL_IDS}
#: Gymnasium id -> level id (the inverse of :data:`GYM_IDS`).
LEVEL_ID_OF: Final[dict[str, str]] = {g: level_id for level_id, g in GYM_IDS.items()}
assert len(LEVEL_ID_OF) == len(GYM_IDS), "the '#' -> '.' mapping must stay one-to-one"


class BabaIsAIGymEnv(Env[str, int]):
    """One Baba Is AI level as a gymnasium environment (see the module docstring).

    ``level_id`` is one of the 53 ids of :data:`~pytest_alma.envs.babaisai.levels.LEVEL_IDS`
    (an unknown id raises :class:`~pytest_alma.envs.babaisai.levels.UnknownLevelError`);
    ``max_steps`` is the game's step cap, which also enters the win reward; ``on_you_broken``
    is ``"reset"`` (BALROG: draw a new level and go on) or ``"end"`` (terminate);
    ``render_mode`` is None or ``"ansi"``.
    """

    # A plain dict like gymnasium's own ``Env.metadata`` (a ClassVar would clash with its type).
    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        level_id: str,
        max_steps: int = 100,
        on_you_broken: Literal["reset", "end"] = "reset",
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unsupported render_mode {render_mode!r}; use None or 'ansi'")
        if on_you_broken not in ("reset", "end"):
            raise ValueError(f"on_you_broken must be 'reset' or 'end', got {on_you_broken!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.level_id = level_id
        self._factory = layout_factory(level_id)  # validates the id now
        self.max_steps = max_steps
        self.on_you_broken: Literal["reset", "end"] = on_you_broken
        self.render_mode = render_mode
        self.observation_space = Text(
            max_length=MAX_OBSERVATION_LENGTH, min_length=1, charset=OBSERVATION_CHARSET
        )
        # Discrete samples np.int64, which the step method accepts like an int.
        action_space: Space[Any] = Discrete(N_ACTIONS)
        self.action_space = action_space
        self._episode: BabaEpisode | None = None
        self.level_seed: int | None = None

    # ------------------------------------------------------------------ inspection
    @property
    def episode(self) -> BabaEpisode:
        """The current :class:`BabaEpisode` (raises RuntimeError before :meth:`reset`)."""
        if self._episode is None:
            raise RuntimeError("call reset() before using the environment")
        return self._episode

    @property
    def game(self) -> BabaGame:
        """The current :class:`BabaGame` (e.g. for :func:`~.solver.solve`; do not step it)."""
        return self.episode.game

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a new level drawn from :attr:`np_random`; return ``(text, info)``.

        ``options`` is accepted for API compatibility and ignored. ``info`` holds
        ``level_id``, ``level_seed``, ``step_count``, ``total_steps`` and ``resets``.
        """
        super().reset(seed=seed)
        level_seed = int(self.np_random.integers(0, _LEVEL_SEED_BOUND))
        self.level_seed = level_seed
        self._episode = BabaEpisode(
            self._factory,
            seed=level_seed,
            max_steps=self.max_steps,
            on_you_broken=self.on_you_broken,
        )
        text = self._episode.reset()
        info: dict[str, Any] = {
            "level_id": self.level_id,
            "level_seed": level_seed,
            "step_count": 0,
            "total_steps": 0,
            "resets": 0,
        }
        return text, info

    def step(self, action: int | str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Play one action (index 0..4 or name); return gymnasium's 5-tuple.

        ``info`` is :meth:`BabaEpisode.step`'s (``action``, ``won``, ``lost``, ``step_count``,
        ``total_steps``, ``resets``, ``you_rule_broken``) plus ``level_id`` and ``level_seed``.
        Raises :class:`InvalidActionError` for an invalid action.
        """
        parse_action(action)  # raise InvalidActionError before touching any state
        episode = self.episode
        text, reward, done, info = episode.step(action)
        terminated = bool(info["won"] or info["lost"] or (done and info["you_rule_broken"]))
        truncated = done and not terminated
        info["level_id"] = self.level_id
        info["level_seed"] = self.level_seed
        return text, float(reward), terminated, truncated, info

    # Typed Any: gymnasium's own annotation of render() differs between 1.2.0 (which minihack
    # pins) and later releases, and a str satisfies neither strictly.
    def render(self) -> Any:
        """With ``render_mode="ansi"``, the current grid in the layout text format; else None."""
        if self.render_mode != "ansi":
            return None
        return format_layout(self.game.to_layout())


def register_envs() -> None:
    """Register ``pytest_alma/BabaIsAI-<level_id>-v0`` for every level (idempotent).

    Ids already in gymnasium's registry are left alone, so calling this twice (or after the
    import-time registration) changes nothing and logs no override warning.
    """
    for level_id, env_id in GYM_IDS.items():
        if env_id in registry:
            continue
        register(id=env_id, entry_point=ENTRY_POINT, kwargs={"level_id": level_id})


register_envs()
