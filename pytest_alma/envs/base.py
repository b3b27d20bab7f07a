"""The protocol every benchmark environment implements, and the registry that finds them.

An environment is a stateless factory: it lists its tasks per split, gives the instruction text
for the system prompt, and opens :class:`Episode` objects that hold the state of one play.
Third parties add environments through the ``pytest_alma.environments`` entry-point group::

    [project.entry-points."pytest_alma.environments"]
    mygame = "mypackage.env:MyGameEnvironment"

The entry point names a zero-argument callable (usually the class) returning an
:class:`Environment`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from pytest_alma.records import Task, TaskStart

ENTRY_POINT_GROUP = "pytest_alma.environments"

#: The environments this package implements, with their adapters. Each adapter needs its extra
#: (``pip install -e '.[minihack]'`` etc.) and says so when it is missing; Baba Is AI needs none.
KNOWN_ENVIRONMENTS: dict[str, str] = {
    "babaisai": "pytest_alma.envs.babaisai.adapter:BabaIsAIEnvironment",
    "minihack": "pytest_alma.envs.minihack.adapter:MiniHackEnvironment",
    "textworld": "pytest_alma.envs.textworld.adapter:TextWorldEnvironment",
    "alfworld": "pytest_alma.envs.alfworld.adapter:ALFWorldEnvironment",
}


@dataclass(frozen=True)
class StepResult:
    """What one environment step returns to the agent loop."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


class InvalidAction(ValueError):
    """The action string is not one the environment accepts."""


@runtime_checkable
class Episode(Protocol):
    """One play of one task. Created by :meth:`Environment.open`."""

    def reset(self) -> TaskStart:
        """Start the episode and return what the design and the agent see first."""
        ...

    def step(self, action: str) -> StepResult:
        """Execute a valid action (see :meth:`valid_actions`); raise InvalidAction otherwise."""
        ...

    def valid_actions(self) -> tuple[str, ...]:
        """Actions accepted now."""
        ...

    def score(self) -> tuple[float, bool]:
        """The episode's (score, success) so far, by the benchmark's scoring rule."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


@runtime_checkable
class Environment(Protocol):
    """A benchmark: tasks per split, prompt text, step cap, and episodes."""

    name: str

    def splits(self) -> tuple[str, ...]:
        """Split names, e.g. ``("train", "eval_in_distribution")``."""
        ...

    def default_split(self) -> str:
        """The split run when the user does not choose one."""
        ...

    def tasks(self, split: str) -> list[str]:
        """Task ids of ``split`` in a fixed, documented order."""
        ...

    def instructions(self) -> str:
        """The environment part of the agent's system prompt."""
        ...

    def default_max_steps(self) -> int:
        """The agent's step cap when the user does not set one."""
        ...

    def default_action(self) -> str:
        """The action played when the model's reply holds no valid action."""
        ...

    def settings(self) -> dict[str, Any]:
        """Every environment setting that affects outcomes, recorded with each result."""
        ...

    def open(self, task: Task, max_steps: int) -> Episode:
        """Create an episode for ``task`` (seeded by ``task.seed``)."""
        ...


def instructions_for(env: Environment, episode: Episode) -> str:
    """The system-prompt text for one episode.

    An episode may define ``instructions() -> str`` when the prompt depends on the task (MiniHack
    lists the actions the task allows and states its goal); otherwise the environment's
    :meth:`Environment.instructions` is used.
    """
    own = getattr(episode, "instructions", None)
    if callable(own):
        return str(own())
    return env.instructions()


class UnknownEnvironmentError(LookupError):
    """No environment is registered under the requested name."""


def available_environments() -> dict[str, str]:
    """Registered environment names and their entry-point targets."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    # The built-in adapters are always there, even when the package is used from a source
    # checkout that was never installed (no entry-point metadata).
    for name in KNOWN_ENVIRONMENTS:
        found.setdefault(name, KNOWN_ENVIRONMENTS[name])
    return dict(sorted(found.items()))


def load_environment(name: str) -> Environment:
    """Instantiate the environment registered as ``name``.

    Raises :class:`UnknownEnvironmentError` naming the registered environments.
    """
    registered = available_environments()
    target = registered.get(name)
    if target is None:
        hint = ""
        close = difflib.get_close_matches(name, list(registered), n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
        raise UnknownEnvironmentError(
            f"unknown environment {name!r}; registered: {', '.join(registered)}.{hint}"
        )
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory = ep.load()
            break
    else:
        module_name, _, attr = target.partition(":")
        import importlib

        factory = getattr(importlib.import_module(module_name), attr)
    env = factory()
    if not isinstance(env, Environment):
        raise TypeError(f"entry point {name!r} ({target}) did not produce an Environment")
    return env
