"""TextWorld as a harness environment (entry point ``pytest_alma.environments: textworld``).

Splits (see :mod:`pytest_alma.envs.textworld.tasks`): ``train`` (24), ``eval_in_distribution``
(26, the default, what ALMA evaluates), ``eval_out_of_distribution`` (empty, as in ALMA),
``balrog`` (30: BALROG's three families, 10 games each) and ``all``.

A task id names a game (``tw-treasure_hunter-L15-s3``); the game is generated locally on first
use and cached (:mod:`pytest_alma.envs.textworld.generate`). TextWorld games are deterministic,
so ``Task.seed`` (the harness's repeat seed) does not change the game.

Differences from ALMA, on purpose:

* The goal (TextWorld's objective) is given to the agent, at the end of the system prompt and
  as ``TaskStart.goal``. ALMA's TextWorld prompt builder drops it by accident (the objective is
  also cut out of the first observation, as BALROG does), so ALMA's agent never sees it.
* Observations are cleaned: TextWorld's ASCII-art banner and the objective are cut from the
  first one (BALROG's rule), and the z-machine prompt/status line (``>  -= Room =-0/3``) that
  jericho appends to every observation of a ``.z8`` game is removed.

Scoring as in ALMA: score = ``max(score / max_score, won)`` of the last step (partial credit for
the cooking game), success = won. An action of 256 characters or more is rejected
(:class:`InvalidAction`), as in the reference; any shorter text goes to TextWorld's parser.
``valid_actions()`` returns TextWorld's admissible commands, so the harness's reply parser can
match them.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from pytest_alma.envs.base import InvalidAction, StepResult
from pytest_alma.envs.textworld.generate import (
    GENERATOR_VERSION,
    GRAMMAR_OPTIONS,
    GameFiles,
    ensure_game,
    games_dir,
    import_textworld,
    textworld_version,
)
from pytest_alma.envs.textworld.tasks import (
    ALMA_LEVELS,
    ALMA_SEEDS,
    BALROG_LEVELS,
    BALROG_SEEDS,
    COOKING_LEVELS,
    SPLITS,
    GameSpec,
    parse_task_id,
    split_tasks,
)
from pytest_alma.records import Task, TaskStart

#: Bump when the observation text, the prompt or the scoring change (cache keys).
ADAPTER_VERSION = "1"
#: ALMA's agent step cap (``max_trails``) for TextWorld.
MAX_STEPS = 80
DEFAULT_ACTION = "look"
#: Actions this long or longer are rejected, as in the reference.
MAX_ACTION_CHARS = 256

#: What we ask TextWorld for at every step. Not ``policy_commands``: TextWorld plans a winning
#: sequence on every step to fill it, which made a cooking step 2.7x slower (26 ms vs 9.6 ms);
#: :meth:`TextWorldEpisode.policy_commands` asks for it on demand instead.
INFO_KEYS: tuple[str, ...] = (
    "objective",
    "description",
    "admissible_commands",
    "score",
    "max_score",
    "won",
    "lost",
)

_COMMANDS = """\
Commands (TextWorld's parser; use the exact object names you read):
  look: describe the current room
  inventory: list what you carry
  go <direction>: move north, south, east or west (only through exits or open doors)
  examine <thing>: look at something more closely
  open <thing> / close <thing>: a door or a container (open a closed door before going through)
  take <thing>: pick up something you see
  take <thing> from <container or supporter>: take it out of / off something
  drop <thing>: put something you carry on the floor
  put <thing> on <supporter> / insert <thing> into <container>: place something
  unlock <door or container> with <key> / lock <door or container> with <key>
  eat <food>"""

_COOKING_COMMANDS = """\
  cook <food> with <stove or oven or BBQ>: fry (stove), roast (oven) or grill (BBQ) it
  slice <food> with <knife> / dice <food> with <knife> / chop <food> with <knife>
  prepare meal: combine the ingredients of the recipe (in the kitchen)"""

_TIPS: dict[str, str] = {
    "treasure_hunter": (
        "Explore the rooms to find the object the goal names and take it. Keys you carry open "
        "locked doors and containers. Do not take the other object the goal warns about: taking "
        "the wrong object ends the game with a loss."
    ),
    "cooking": (
        "Find the kitchen and read the cookbook (examine cookbook) for the recipe. Gather the "
        "ingredients, process them exactly as the recipe says (sliced, diced, chopped, fried, "
        "roasted, grilled), then prepare the meal and eat it. Cooking or cutting an ingredient "
        "the wrong way, or burning it, loses the game. You can carry only a few things."
    ),
    "coin_collector": (
        "Explore the rooms to find the coin and take it. The rooms form a path; remember where "
        "you came from."
    ),
}

_FAMILY_NAMES = {
    "treasure_hunter": "Treasure Hunter",
    "cooking": "The Cooking Game",
    "coin_collector": "Coin Collector",
}


def instruction_prompt(family: str | None, goal: str, max_steps: int) -> str:
    """The system prompt: the game, the commands, tips for the family, the step cap, the goal."""
    commands = _COMMANDS + ("\n" + _COOKING_COMMANDS if family in (None, "cooking") else "")
    name = f" ({_FAMILY_NAMES[family]})" if family else ""
    tips = _TIPS.get(family or "", "Explore, read what the game tells you and pursue the goal.")
    return f"""You are an agent playing TextWorld{name}, a text adventure. You read what the \
game says and reply with one command; the game parses it and answers.

{commands}

Tips: {tips}
Reply with exactly one command and nothing else. You have {max_steps} steps.

Your goal: {goal}
"""


# TextWorld's banner is ASCII art made of these characters (and spaces) only.
_BANNER_LINE = re.compile(r"^[\s_|\\/$<>()]*$")
# The z-machine prompt jericho leaves at the end: ">", spaces, "-= Room =-" and "score/moves".
_STATUS_LINE = re.compile(r"\n?>[ \t]*(?:-=.*?=-)?[ \t]*(?:-?\d+/\d+)?[ \t]*\Z")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_observation(text: str, objective: str = "") -> str:
    """TextWorld's feedback without the banner, the objective and the z-machine status line."""
    if objective and objective in text:
        # BALROG's rule: keep what follows the objective (drops the banner and the objective).
        text = text.split(objective, 1)[1]
    else:
        lines = text.split("\n")
        while lines and _BANNER_LINE.match(lines[0]) and "$$" in "".join(lines[:30]):
            lines.pop(0)
        text = "\n".join(lines)
    text = _STATUS_LINE.sub("", text.rstrip())
    text = _BLANK_RUNS.sub("\n\n", text)
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


class TextWorldEpisode:
    """One play of one generated TextWorld game."""

    def __init__(self, task: Task, files: GameFiles, max_steps: int) -> None:
        self.task = task
        self.files = files
        self.max_steps = max_steps
        self._env: Any = None
        self._state: Any = None
        self._objective = ""
        self._done = False

    @property
    def family(self) -> str:
        """The game family (treasure_hunter, cooking or coin_collector)."""
        return self.files.spec.family

    def instructions(self) -> str:
        """The system prompt for this game (its family's tips, ending with its goal)."""
        if not self._objective:
            self._start()
        return instruction_prompt(self.family, self._objective, self.max_steps)

    def _start(self) -> Any:
        textworld = import_textworld()
        with warnings.catch_warnings():
            # jericho does not know TextWorld's games and says score tracking is off; TextWorld
            # tracks the score itself (from the game's state), so nothing is lost.
            warnings.filterwarnings("ignore", message=".*is not fully supported")
            if self._env is None:
                infos = textworld.EnvInfos(**{key: True for key in INFO_KEYS})
                self._env = textworld.start(str(self.files.game_file), request_infos=infos)
            self._state = self._env.reset()
        self._played: list[str] = []
        self._objective = str(self._state["objective"]).strip()
        self._done = False
        return self._state

    def reset(self) -> TaskStart:
        state = self._start()
        observation = clean_observation(str(state.feedback), self._objective)
        return TaskStart(
            task=self.task,
            observation=observation,
            goal=self._objective,
            actions=self.valid_actions(),
        )

    def step(self, action: str) -> StepResult:
        if len(action) >= MAX_ACTION_CHARS:
            raise InvalidAction(
                f"a TextWorld command must be shorter than {MAX_ACTION_CHARS} characters "
                f"(got {len(action)}); reply with one short command such as 'go north'"
            )
        if self._state is None:
            raise RuntimeError("reset() the episode before stepping it")
        if self._done:
            raise RuntimeError("the episode has ended; reset() before stepping again")
        previous = self._progress()
        state, _, done = self._env.step(action)
        self._played.append(action)
        self._state = state
        self._done = bool(done)
        info: dict[str, Any] = {
            "score": int(state["score"]),
            "max_score": int(state["max_score"]),
            "won": bool(state["won"]),
            "lost": bool(state["lost"]),
        }
        return StepResult(
            observation=clean_observation(str(state.feedback)),
            reward=self._progress() - previous,
            done=self._done,
            info=info,
        )

    def valid_actions(self) -> tuple[str, ...]:
        if self._state is None:
            return ()
        return tuple(str(command) for command in self._state["admissible_commands"] or ())

    def policy_commands(self) -> list[str]:
        """TextWorld's winning command sequence from the current state (for tests/scripts).

        Computed on demand in a second game that replays this episode's commands, so that
        ordinary steps do not pay for TextWorld's planner.
        """
        if self._state is None:
            return []
        textworld = import_textworld()
        infos = textworld.EnvInfos(policy_commands=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is not fully supported")
            planner = textworld.start(str(self.files.game_file), request_infos=infos)
            try:
                state = planner.reset()
                for command in self._played:
                    state, _, _ = planner.step(command)
                return [str(command) for command in state["policy_commands"] or ()]
            finally:
                planner.close()

    def _progress(self) -> float:
        state = self._state
        if state is None:
            return 0.0
        won = bool(state["won"])
        max_score = int(state["max_score"] or 0)
        ratio = int(state["score"]) / max_score if max_score > 0 else 0.0
        return max(ratio, 1.0 if won else 0.0)

    def score(self) -> tuple[float, bool]:
        won = self._state is not None and bool(self._state["won"])
        return self._progress(), won

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


class TextWorldEnvironment:
    """The TextWorld benchmark for the harness (see the module docstring)."""

    name = "textworld"

    def __init__(self, games_folder: str | None = None) -> None:
        import_textworld()  # fail now, with install instructions, not at the first episode
        self.games_folder = games_folder

    def splits(self) -> tuple[str, ...]:
        return tuple(SPLITS)

    def default_split(self) -> str:
        return "eval_in_distribution"

    def tasks(self, split: str) -> list[str]:
        return list(split_tasks(split))

    def instructions(self) -> str:
        # Used only where no episode is at hand; episodes give their own (family tips, goal).
        return instruction_prompt(None, "the objective the game states.", MAX_STEPS)

    def default_max_steps(self) -> int:
        return MAX_STEPS

    def default_action(self) -> str:
        return DEFAULT_ACTION

    def settings(self) -> dict[str, Any]:
        return {
            "adapter_version": ADAPTER_VERSION,
            "generator_version": GENERATOR_VERSION,
            "textworld": textworld_version(),
            "format": "z8",
            "grammar": GRAMMAR_OPTIONS,
            "alma_levels": {family: list(levels) for family, levels in ALMA_LEVELS.items()},
            "alma_seeds": list(ALMA_SEEDS),
            "balrog_levels": BALROG_LEVELS,
            "balrog_seeds": list(BALROG_SEEDS),
            "cooking_levels": {str(k): v for k, v in COOKING_LEVELS.items()},
            "goal_in_prompt": True,
            "max_action_chars": MAX_ACTION_CHARS,
            "scoring": "max(score/max_score, won) of the last step; success = won",
        }

    def game(self, task_id: str) -> GameFiles:
        """The generated game of a task (generated now when it is not cached)."""
        return ensure_game(parse_task_id(task_id), self.games_folder)

    def open(self, task: Task, max_steps: int) -> TextWorldEpisode:
        spec: GameSpec = parse_task_id(task.task_id)  # a bad id fails here, saying what is valid
        return TextWorldEpisode(task, ensure_game(spec, self.games_folder), max_steps)

    def games_path(self) -> str:
        """Where the games are cached."""
        return str(games_dir(self.games_folder))


__all__ = [
    "DEFAULT_ACTION",
    "MAX_STEPS",
    "TextWorldEnvironment",
    "TextWorldEpisode",
    "clean_observation",
    "instruction_prompt",
]
