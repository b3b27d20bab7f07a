"""ALFWorld as a harness environment (entry point ``pytest_alma.environments: alfworld``).

Text mode (TextWorld) on the real ``alfworld`` package: each game's ``game.tw-pddl`` (the ALFRED
PDDL domain, alfworld's grammar with the goal filled in, and the task's PDDL problem) is loaded
with ``textworld.start`` and alfworld's own wrappers, ``AlfredDemangler`` (object ids become
"mug 1", never shuffled, as in alfworld's evaluation) and ``AlfredInfos``, requesting the same
``EnvInfos`` as alfworld's ``AlfredTWEnv.init_env`` (won, admissible commands, the game file).
Unlike ``AlfredTWEnv`` there is no gym batch wrapper: it runs each game in a subprocess and would
only add start-up time for the one game an episode plays.

Splits (see :mod:`pytest_alma.envs.alfworld.tasks`): ``train`` (json_2.1.1/train),
``eval_in_distribution`` (valid_seen, the default) and ``eval_out_of_distribution``
(valid_unseen), each sorted and shuffled with seed 42. The data folder is ``$ALFWORLD_DATA``
(:mod:`pytest_alma.envs.alfworld.data`).

What the agent sees, as in ALMA: the system prompt describes the household task, the action
templates and the goal; every observation is the game text followed by the admissible commands::

    <game text>

    Here are the actions you can choose from:
    <Actions>
    go to bed 1
    ...
    </Actions>

Any non-empty command is passed to the game (ALFWorld answers "Nothing happens." to commands it
does not know). The agent gets 30 actions (ALMA's ``max_trails``); the game itself ends after 50
steps (alfworld's ``max_nb_steps_per_episode`` in ALMA's config). The score is 1.0 for a win,
else 0.0; success is a win.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pytest_alma.envs.alfworld.data import DATA_ENV_VAR, data_root, synthetic_data_root
from pytest_alma.envs.alfworld.tasks import SPLIT_SEED, game_file, list_games
from pytest_alma.envs.base import InvalidAction, StepResult
from pytest_alma.records import Task, TaskStart

#: Bump when the observation text, the prompt or the task order change (cache keys).
ADAPTER_VERSION = "1"

#: ALMA's ``max_trails`` for ALFWorld: the agent's default step cap.
AGENT_MAX_STEPS = 30
#: The game's own cap (alfworld config ``dagger.training.max_nb_steps_per_episode`` = 50).
GAME_MAX_STEPS = 50
DEFAULT_ACTION = "look"

ACTIONS_HEADER = "Here are the actions you can choose from:"

_TASK_RE = re.compile(r"Your task is to:\s*(.+)")

_PROMPT = """You are an agent in a household, acting through text commands. You will receive \
descriptions of:
    1. Your current location.
    2. Objects/Receptacle around you.
    3. Actions you can perform.
    4. The task you need to complete.

### Task
Your goal is to continuously choose the most appropriate action in order to accomplish the \
given task efficiently and safely.

### Actions Types
You can perform the following types of actions:
- go to [receptacle]
- take [object] from [receptacle]
- move [object] to [receptacle]   (put an object in/on a receptacle)
- open [receptacle]
- close [receptacle]
- use [object]   (toggle a light or appliance on/off)
- clean [object] with [receptacle]
- heat [object] with [receptacle]
- cool [object] with [receptacle]
- examine [object or receptacle]
- inventory
- look

Here, [object] refers to any object you can interact with, and [receptacle] refers to any \
container or furniture that can hold or interact with objects. Each observation ends with the \
exact list of actions available at that step.

### Guidelines
- Always carefully review the current state and choose the most suitable action.
- Output **only** the chosen action, exactly as written in the list of available actions. Do \
not add explanations or commentary.
"""


def import_alfworld(data: Path | None = None) -> tuple[Any, Any, Any]:
    """Import textworld and alfworld's wrappers: ``(textworld, AlfredDemangler, AlfredInfos)``.

    A missing package gives an error that says how to install it.

    Importing alfworld creates ``$ALFWORLD_DATA`` (default ``~/.cache/alfworld``) and writes the
    variable into ``os.environ``. With ``data`` given, the variable points there (a folder that
    exists) during the import and is put back afterwards, so that neither happens.
    """
    previous = os.environ.get(DATA_ENV_VAR)
    if data is not None:
        os.environ[DATA_ENV_VAR] = str(data)
    try:
        # Imported by name: neither package ships type information, so their values enter as Any
        # (and mypy needs no per-module override).
        textworld: Any = importlib.import_module("textworld")
        alfred_tw_env: Any = importlib.import_module("alfworld.agents.environment.alfred_tw_env")
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"ALFWorld needs the alfworld and textworld packages ({err}); install them with "
            "pip install alfworld (it compiles the Fast Downward planner, a few minutes)"
        ) from err
    finally:
        if data is not None:
            if previous is None:
                os.environ.pop(DATA_ENV_VAR, None)
            else:
                os.environ[DATA_ENV_VAR] = previous
    return textworld, alfred_tw_env.AlfredDemangler, alfred_tw_env.AlfredInfos


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def observation_text(feedback: str, commands: tuple[str, ...]) -> str:
    """The agent's observation: the game text, then the admissible commands (ALMA's format)."""
    listing = "\n".join(commands)
    return f"{feedback.strip()}\n\n{ACTIONS_HEADER}\n<Actions>\n{listing}\n</Actions>"


def goal_from(feedback: str) -> str:
    """The task goal stated in the first observation ("Your task is to: ..."), or ""."""
    found = _TASK_RE.search(feedback)
    return found.group(1).strip() if found else ""


def instructions(goal: str = "") -> str:
    """The system prompt: ALMA's household-agent prompt, plus the task goal when known."""
    if not goal:
        return _PROMPT
    return f"{_PROMPT}\nYour task is to: {goal}\n"


class ALFWorldEpisode:
    """One play of one ALFWorld game through alfworld's TextWorld-mode code."""

    def __init__(self, task: Task, path: Path, max_steps: int, data: Path | None = None) -> None:
        textworld, demangler, alfred_infos = import_alfworld(data)
        self.task = task
        self.path = path
        self.max_steps = max_steps  # the agent loop enforces it; the game's own cap is 50
        infos: Any = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
        # shuffle=False: numbering objects in sorted-id order, as alfworld does outside training.
        self._env: Any = textworld.start(
            str(path), request_infos=infos, wrappers=[demangler(shuffle=False), alfred_infos]
        )
        self._commands: tuple[str, ...] = ()
        self._goal = ""
        self._won = False
        self._done = False
        self._steps = 0
        self._started = False

    def instructions(self) -> str:
        """The system prompt for this game: the generic prompt plus its goal (after reset)."""
        return instructions(self._goal)

    def _update(self, state: Any) -> str:
        self._commands = tuple(str(c) for c in state["admissible_commands"])
        self._won = bool(state["won"])
        return observation_text(str(state["feedback"]), self._commands)

    def reset(self) -> TaskStart:
        state: Any = self._env.reset()
        self._goal = goal_from(str(state["feedback"]))
        self._done = False
        self._steps = 0
        self._started = True
        observation = self._update(state)
        return TaskStart(
            task=self.task, observation=observation, goal=self._goal, actions=self._commands
        )

    def step(self, action: str) -> StepResult:
        command = action.strip()
        if not command:
            raise InvalidAction("an ALFWorld action must be a non-empty command")
        if not self._started:
            raise RuntimeError("reset() the episode before stepping")
        if self._done:
            raise RuntimeError("the episode has ended; reset() before stepping again")
        # Judged against the list the agent was shown, before the game moves on.
        admissible = command in self._commands
        state, reward, done = self._env.step(command)
        self._steps += 1
        observation = self._update(state)
        truncated = not done and self._steps >= GAME_MAX_STEPS
        self._done = bool(done) or truncated
        info: dict[str, Any] = {
            "won": self._won,
            "admissible": admissible,
            "truncated": truncated,
        }
        return StepResult(observation=observation, reward=float(reward), done=self._done, info=info)

    def valid_actions(self) -> tuple[str, ...]:
        return self._commands

    def score(self) -> tuple[float, bool]:
        return (1.0 if self._won else 0.0), self._won

    def walkthrough(self) -> tuple[str, ...]:
        """The winning command sequence stored in the game file, when it has one."""
        data = json.loads(self.path.read_text(encoding="utf-8"))
        return tuple(str(c) for c in data.get("walkthrough") or ())

    def close(self) -> None:
        self._env.close()


class ALFWorldEnvironment:
    """The ALFWorld benchmark (text mode) for the harness (see the module docstring)."""

    name = "alfworld"

    def __init__(self, data_path: str | os.PathLike[str] | None = None) -> None:
        # The data folder is checked before alfworld is imported: an import without it creates
        # $ALFWORLD_DATA (or ~/.cache/alfworld) as an empty folder.
        self.data = data_root(data_path)
        import_alfworld(self.data)  # fail now, with install instructions, not at the first episode

    def splits(self) -> tuple[str, ...]:
        return ("train", "eval_in_distribution", "eval_out_of_distribution")

    def default_split(self) -> str:
        return "eval_in_distribution"

    def tasks(self, split: str) -> list[str]:
        return list_games(self.data, split)

    def instructions(self) -> str:
        # Used only where no episode is at hand; episodes add their goal.
        return instructions()

    def default_max_steps(self) -> int:
        return AGENT_MAX_STEPS

    def default_action(self) -> str:
        return DEFAULT_ACTION

    def settings(self) -> dict[str, Any]:
        return {
            "adapter_version": ADAPTER_VERSION,
            "data": str(self.data),
            "synthetic": self.data.resolve() == synthetic_data_root(),
            "alfworld_version": package_version("alfworld"),
            "textworld_version": package_version("textworld"),
            "split_seed": SPLIT_SEED,
            "game_max_steps": GAME_MAX_STEPS,
        }

    def open(self, task: Task, max_steps: int) -> ALFWorldEpisode:
        return ALFWorldEpisode(task, game_file(self.data, task.task_id), max_steps, self.data)


__all__ = [
    "ACTIONS_HEADER",
    "ALFWorldEnvironment",
    "ALFWorldEpisode",
    "goal_from",
    "instructions",
    "observation_text",
]
