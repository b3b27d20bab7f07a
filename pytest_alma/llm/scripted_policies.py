"""Reply policies of the scripted model (a TEST DOUBLE, not an LLM).

A policy decides whether it handles a conversation (:meth:`Policy.matches`) and what to answer
(:meth:`Policy.reply`). The server tries its policies in order and ends with
:class:`FallbackPolicy`, which always matches. An environment adds its own policy with
:func:`register_policy` (or by passing ``policies=`` to the server), never by editing the server.

Sampling. A game policy may also list the other valid actions of a conversation
(``alternatives(messages)``, see :class:`SamplingPolicy`). When the request carries a ``seed``
and its temperature is not 0 (no temperature means the server default of 1.0, as for OpenAI),
:func:`choose_reply` then plays, with probability ``DEVIATION_AT_T1 * temperature`` (at most
:data:`MAX_DEVIATION`), one of those alternatives instead of the policy's greedy choice. The coin
and the pick come from a hash of the seed and the conversation, so the same request always gets
the same reply (a re-run replays exactly, cache or not), while episodes with different seeds
play different games. Without a seed, or at temperature 0, every policy stays greedy: that is
the "deterministic server" of the tests.
"""

from __future__ import annotations

import ast
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, Any]

# Headers the ALMA prompts put in front of the retrieved-memory JSON (see the reference spec 1.4).
MEMORY_HEADERS: tuple[str, ...] = (
    "relevant experience",
    "past experiences and trajectories that might be helpful",
)


@runtime_checkable
class Policy(Protocol):
    """One way of answering chat requests."""

    def matches(self, messages: Sequence[Message]) -> bool:
        """Whether this policy answers this conversation."""
        ...

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """The assistant text. ``params`` is the request body without ``messages``."""
        ...


@runtime_checkable
class SamplingPolicy(Policy, Protocol):
    """A policy whose replies are actions: it names the valid ones it did not choose."""

    def alternatives(self, messages: Sequence[Message]) -> Sequence[str]:
        """Valid actions of this conversation's current state (the greedy one may be among
        them; it is never drawn as a deviation)."""
        ...


#: Chance that a sampling policy deviates from its greedy action at temperature 1.0: mild, so
#: the scripted players still win the tasks they win greedily in most samples.
DEVIATION_AT_T1 = 0.1
#: The chance is proportional to the temperature, up to this.
MAX_DEVIATION = 0.5
#: OpenAI's default temperature, used when a request sends none.
DEFAULT_TEMPERATURE = 1.0


def sampling_temperature(params: Mapping[str, Any]) -> float | None:
    """The temperature a request samples at, or ``None`` when the reply is greedy (no integer
    ``seed``, or temperature 0)."""
    seed = params.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return None
    raw = params.get("temperature")
    try:
        temperature = DEFAULT_TEMPERATURE if raw is None else float(raw)
    except (TypeError, ValueError):
        return None
    return temperature if temperature > 0 else None


def sample(
    greedy: str,
    alternatives: Sequence[str],
    messages: Sequence[Message],
    params: Mapping[str, Any],
) -> str:
    """``greedy``, or (with the seeded chance described in the module docstring) another of
    ``alternatives``; a pure function of (seed, temperature, conversation, choices)."""
    temperature = sampling_temperature(params)
    others = [a for a in dict.fromkeys(alternatives) if a != greedy]
    if temperature is None or not others:
        return greedy
    h = hashlib.sha256(f"alma-scripted-sample\x00{params['seed']}".encode())
    for message in messages:
        h.update(b"\x00" + str(message.get("role", "")).encode())
        h.update(b"\x00" + message_text(message).encode("utf-8"))
    raw = h.digest()
    coin = int.from_bytes(raw[:8], "big") / 2**64
    if coin >= min(MAX_DEVIATION, DEVIATION_AT_T1 * temperature):
        return greedy
    return others[int.from_bytes(raw[8:16], "big") % len(others)]


def message_text(message: Message) -> str:
    """The text of one chat message (string content or a list of text parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def system_text(messages: Sequence[Message]) -> str:
    """All system/developer messages joined."""
    return "\n".join(message_text(m) for m in messages if m.get("role") in ("system", "developer"))


def last_user_text(messages: Sequence[Message]) -> str:
    """The latest user message's text ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def assistant_turns(messages: Sequence[Message]) -> int:
    """How many assistant turns the conversation already holds (= the current step index)."""
    return sum(1 for m in messages if m.get("role") == "assistant")


def digest(*parts: str, length: int = 8) -> str:
    """A short stable hex digest of some text."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:length]


def _decode_tolerantly(text: str) -> Any:
    """Decode the first JSON (or Python-literal) value in ``text``; ``None`` if there is none."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
        return value
    except json.JSONDecodeError:
        pass
    # Not strict JSON (single quotes, True/None, a trailing comma): take the bracket-balanced
    # span and try it as a Python literal, which is what a repr()'d memory looks like.
    opener = text[start]
    closer = "}" if opener == "{" else "]"
    depth = 0
    for end in range(start, len(text)):
        if text[end] == opener:
            depth += 1
        elif text[end] == closer:
            depth -= 1
            if depth == 0:
                try:
                    return ast.literal_eval(text[start : end + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    return None
    return None


def memory_block(system_prompt: str) -> Any:
    """The retrieved-memory JSON appended to an agent's system prompt, or ``None``.

    It is the first JSON value after the first of :data:`MEMORY_HEADERS` (case-insensitive).
    Parsing is tolerant: trailing text ("PLAY!") is ignored and Python literals are accepted.
    """
    lowered = system_prompt.lower()
    positions = [p for p in (lowered.find(h) for h in MEMORY_HEADERS) if p >= 0]
    if not positions:
        return None
    # The value starts at the first bracket after the header, on the header's line or later.
    return _decode_tolerantly(system_prompt[min(positions) :])


class FallbackPolicy:
    """Generic chat: a short deterministic text derived from the prompt; JSON when asked for.

    With ``response_format`` ``{"type": "json_object"}`` (or ``json_schema``) the reply is a JSON
    object ``{"summary": <first words of the prompt>, "digest": <hash>, "test_double": true}``.
    """

    def matches(self, messages: Sequence[Message]) -> bool:
        """Always: this is the last policy tried."""
        return True

    def reply(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """Deterministic text (or a JSON object) derived from the conversation."""
        prompt = last_user_text(messages) or system_text(messages)
        words = prompt.split()
        summary = " ".join(words[:20]) + (" ..." if len(words) > 20 else "")
        tag = digest(*(message_text(m) for m in messages))
        response_format = params.get("response_format")
        if isinstance(response_format, Mapping) and response_format.get("type") in (
            "json_object",
            "json_schema",
        ):
            return json.dumps({"summary": summary, "digest": tag, "test_double": True})
        return f"Scripted reply {tag}: {summary}"


_registry_lock = threading.Lock()
_registered: list[Policy] = []


def register_policy(policy: Policy) -> None:
    """Add a policy that every :class:`ScriptedServer` built afterwards tries (after the built-in
    ones, before the fallback), unless the server is given an explicit ``policies=`` list."""
    if not isinstance(policy, Policy):
        raise TypeError(
            f"{policy!r} does not implement matches(messages) and reply(messages, params)"
        )
    with _registry_lock:
        _registered.append(policy)


def registered_policies() -> list[Policy]:
    """The policies added with :func:`register_policy`, in order."""
    with _registry_lock:
        return list(_registered)


def choose_reply(
    policies: Sequence[Policy], messages: Sequence[Message], params: Mapping[str, Any]
) -> str:
    """The reply of the first policy that matches (the fallback when none does), sampled when
    the policy lists alternatives and the request samples (see the module docstring)."""
    for policy in policies:
        if policy.matches(messages):
            reply = policy.reply(messages, params)
            if isinstance(policy, SamplingPolicy) and sampling_temperature(params) is not None:
                reply = sample(reply, policy.alternatives(messages), messages, params)
            return reply
    return FallbackPolicy().reply(messages, params)
