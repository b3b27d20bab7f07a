"""The acting loop: one LLM agent plays one episode with a retrieved memory in its prompt.

The system prompt is the environment's instructions followed by the memory block (the retrieved
dict as indented JSON under ALMA's header; an empty dict gives no block). Each user turn is the
new observation. The reply is parsed into an action: an exact match first, then a tolerant one
(quotes, markdown, "Action: left", one valid action word in a sentence). A reply with no valid
action plays the environment's default action and the next observation says so, as BALROG does.
API errors never reach this loop as "invalid actions": the LLM layer retries them and, when it
finally gives up, the episode stops with an error instead of burning steps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_alma.envs.base import Episode
from pytest_alma.records import Step, TaskStart, Trajectory

#: Bump when the prompt text or the parsing rules change: it is part of every cache key.
PROMPT_VERSION = "1"

MEMORY_HEADER = (
    "Relevant Experience:\n"
    "Here are past experiences and trajectories that might be helpful for your decision:"
)
INVALID_ACTION_NOTE = "Your previous output did not contain a valid action. Defaulted to action: "


class ChatReplyLike(Protocol):
    """The part of an LLM reply the loop reads."""

    text: str


class AgentLLM(Protocol):
    """What the loop needs from the LLM client (``seed``: the episode's sampling seed)."""

    async def chat(self, messages: Sequence[dict[str, str]], *, seed: int | None = None) -> Any: ...


@dataclass(frozen=True)
class AgentSettings:
    """Everything about the agent that changes outcomes (recorded with every result)."""

    max_steps: int
    history_window: int = 8
    memory_char_cap: int = 8000
    prompt_version: str = PROMPT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "max_steps": self.max_steps,
            "history_window": self.history_window,
            "memory_char_cap": self.memory_char_cap,
            "prompt_version": self.prompt_version,
        }


@dataclass(frozen=True)
class MemoryBlock:
    """The memory text put in the prompt, and whether it had to be cut."""

    text: str
    chars: int
    truncated: bool


def render_memory(memory: dict[str, Any], cap: int) -> MemoryBlock:
    """Render the retrieved dict as the prompt's memory block, cut visibly at ``cap`` chars."""
    if not memory:
        return MemoryBlock(text="", chars=0, truncated=False)
    body = json.dumps(memory, indent=2, ensure_ascii=False)
    if len(body) <= cap:
        return MemoryBlock(text=f"{MEMORY_HEADER}\n{body}", chars=len(body), truncated=False)
    cut = body[:cap]
    note = f"\n[... memory truncated: {cap} of {len(body)} characters shown]"
    return MemoryBlock(text=f"{MEMORY_HEADER}\n{cut}{note}", chars=len(body), truncated=True)


def system_prompt(instructions: str, block: MemoryBlock) -> str:
    """Instructions, then the memory block if there is one."""
    if not block.text:
        return instructions
    return f"{instructions}\n\n{block.text}"


_STRIP = re.compile(r"^[\s`'\"*_.>:-]+|[\s`'\"*_.!:-]+$")
_PREFIX = re.compile(r"^\s*(?:final\s+)?(?:action|answer|move)\s*[:=-]\s*", re.IGNORECASE)


def parse_action(reply: str, valid: Sequence[str]) -> str | None:
    """The valid action a reply names, or None.

    Exact match (case-insensitive, surrounding whitespace ignored) first; then the reply with
    quotes, markdown and an "Action:" prefix removed; then, if exactly one distinct valid action
    occurs as a whole phrase in the reply, that one. Ambiguous replies give None.
    """
    by_lower = {a.lower(): a for a in valid}
    text = reply.strip()
    if text.lower() in by_lower:
        return by_lower[text.lower()]
    cleaned = _STRIP.sub("", _PREFIX.sub("", _STRIP.sub("", text)))
    if cleaned.lower() in by_lower:
        return by_lower[cleaned.lower()]
    lowered = text.lower()
    found = {
        by_lower[a] for a in by_lower if re.search(rf"(?<![\w-]){re.escape(a)}(?![\w-])", lowered)
    }
    # A longer action that contains a shorter one ("go to desk 1" vs "go to desk 10") wins.
    found = {a for a in found if not any(a != b and a.lower() in b.lower() for b in found)}
    if len(found) == 1:
        return found.pop()
    return None


def user_turn(observation: str, note: str = "") -> str:
    """The user message for one observation."""
    prefix = f"{note}\n" if note else ""
    return f"{prefix}Observation:\n{observation}"


class AgentLLMError(Exception):
    """The LLM layer gave up on a call; the episode ends with this as its error."""


class EpisodeEnvironmentError(Exception):
    """The environment raised while an episode was played (reset, step, actions or score).

    Raised instead of the environment's own exception so that the harness can count the episode
    as an environment failure rather than a harness one; the original is the ``__cause__``.
    """


async def play(
    episode: Episode,
    start: TaskStart,
    llm: AgentLLM,
    instructions: str,
    memory: dict[str, Any],
    settings: AgentSettings,
    default_action: str,
    *,
    seed: int | None = None,
) -> tuple[Trajectory, MemoryBlock]:
    """Play one episode to the end (done or step cap) and return its trajectory.

    Every request carries ``seed`` (the episode's sampling seed; None: the client's own).
    Exceptions raised by ``llm.chat`` end the episode with ``Trajectory.error`` set, except
    those the caller must see (budget exhaustion, replay-cache misses), which propagate when
    they carry ``alma_fatal = True``. Exceptions of the environment propagate as
    :class:`EpisodeEnvironmentError`.
    """
    block = render_memory(memory, settings.memory_char_cap)
    system = {"role": "system", "content": system_prompt(instructions, block)}
    turns: list[dict[str, str]] = [{"role": "user", "content": user_turn(start.observation)}]
    steps: list[Step] = []
    error: str | None = None
    for _ in range(settings.max_steps):
        window = turns[-(2 * settings.history_window + 1) :] if settings.history_window else turns
        try:
            reply = await llm.chat([system, *window], seed=seed)
        except Exception as exc:
            if getattr(exc, "alma_fatal", False):
                raise
            error = f"LLM call failed: {exc}"
            break
        text = str(getattr(reply, "text", reply))
        try:
            valid = episode.valid_actions()
        except Exception as exc:
            raise _environment_failed("listing the valid actions", exc) from exc
        action = parse_action(text, valid)
        invalid = action is None
        played = default_action if action is None else action
        try:
            result = episode.step(played)
        except Exception as exc:
            raise _environment_failed(f"step {len(steps) + 1} ({played!r})", exc) from exc
        steps.append(
            Step(
                action=played,
                observation=result.observation,
                reward=result.reward,
                done=result.done,
                reply=text,
                invalid=invalid,
            )
        )
        if result.done:
            break
        note = f"{INVALID_ACTION_NOTE}{default_action}" if invalid else ""
        turns.append({"role": "assistant", "content": text})
        turns.append({"role": "user", "content": user_turn(result.observation, note)})
    try:
        score, success = episode.score()
    except Exception as exc:
        raise _environment_failed("scoring the episode", exc) from exc
    trajectory = Trajectory(
        start=start, steps=tuple(steps), score=score, success=success, error=error
    )
    return trajectory, block


def _environment_failed(what: str, exc: BaseException) -> EpisodeEnvironmentError:
    return EpisodeEnvironmentError(f"the environment raised in {what}: {type(exc).__name__}: {exc}")
