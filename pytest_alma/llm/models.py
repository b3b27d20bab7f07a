"""Model strings: ``"name"`` or ``"name/effort"`` (ALMA's ``gpt-5-nano/low`` convention)."""

from __future__ import annotations

import re
from typing import NamedTuple

#: The reasoning efforts the OpenAI API accepts for reasoning models.
REASONING_EFFORTS: frozenset[str] = frozenset({"minimal", "low", "medium", "high"})

# OpenAI model families whose names never contain a slash: a "/word" after them can only be a
# reasoning effort, so a wrong word there is a typo we should report instead of sending upstream.
_OPENAI_NAME = re.compile(r"^(gpt-|o\d|chatgpt-|codex-)", re.IGNORECASE)


class ModelSpec(NamedTuple):
    """A model name plus an optional reasoning effort."""

    name: str
    reasoning_effort: str | None = None

    def __str__(self) -> str:
        return (
            self.name if self.reasoning_effort is None else f"{self.name}/{self.reasoning_effort}"
        )


def parse_model(spec: str) -> ModelSpec:
    """Split ``"gpt-5-nano/low"`` into ``ModelSpec("gpt-5-nano", "low")``.

    The part after the last slash is the effort when it is one of :data:`REASONING_EFFORTS`.
    Otherwise the whole string is the model name, because OpenAI-compatible servers (vLLM, LM
    Studio) use slashes in names such as ``"Qwen/Qwen2.5-7B-Instruct"``. The one exception is an
    OpenAI model name (``gpt-*``, ``o1``...) followed by an unknown word, which is reported as a
    mistyped effort.

    Raises:
        ValueError: the name is empty, or an OpenAI model carries an effort not in
            :data:`REASONING_EFFORTS`.
    """
    text = spec.strip()
    name, sep, suffix = text.rpartition("/")
    effort = suffix.strip().lower()
    if sep and effort in REASONING_EFFORTS:
        name = name.strip()
        if not name:
            raise ValueError(
                f"model spec {spec!r} has no model name (expected e.g. 'gpt-5-nano/low')"
            )
        return ModelSpec(name, effort)
    if sep and _OPENAI_NAME.match(name.strip()) and "/" not in name:
        allowed = ", ".join(sorted(REASONING_EFFORTS))
        raise ValueError(
            f"model spec {spec!r}: reasoning effort {suffix!r} is not one of {allowed} "
            "(write 'model' or 'model/effort', e.g. 'gpt-5-nano/low')"
        )
    if not text:
        raise ValueError("empty model spec (expected e.g. 'gpt-4o-mini' or 'gpt-5-nano/low')")
    return ModelSpec(text, None)
