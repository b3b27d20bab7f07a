"""Tolerant parsers of G-Memory's LLM replies (used by ``baselines/g_memory.py``).

Models answer with JSON wrapped in prose or code fences, with indices as strings, with extra
or missing fields. Each parser keeps what is valid and says "broken" (None) only when nothing
usable is there, so that one bad reply never wipes the memory (a defect of the ALMA port).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_alma.memory.text import clip

_NUMBERING = re.compile(r"^(?:[-*\u2022]\s*|\d+[.)]\s+)")


@dataclass(frozen=True)
class Operation:
    """One parsed insight operation; ``index`` is 1-based into the prompt's numbered list."""

    op: str
    index: int | None
    text: str | None


def decode_json(reply: str) -> Any:
    """The first JSON value in ``reply`` (code fences and prose around it are ignored); None."""
    text = reply.strip() if isinstance(reply, str) else ""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        pass
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, min(starts))
        return value
    except (json.JSONDecodeError, ValueError):
        return None


def _as_index(value: Any, size: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 1 <= value <= size:
        return value
    return None


def clean_text(value: Any) -> str | None:
    """``value`` as one line of at most 300 characters, or None when it is not usable text."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return clip(text, 300) if text else None


def parse_operations(reply: str, size: int, max_ops: int) -> list[Operation] | None:
    """The valid operations of an insight-ops reply (first ``max_ops`` entries); None if broken.

    ``size`` is how many numbered insights the prompt showed. A reply that is not JSON, or whose
    operation list is missing, is "broken" (None); single invalid entries are skipped.
    """
    value = decode_json(reply)
    if isinstance(value, dict):
        value = value.get("operations", value.get("ops"))
    if not isinstance(value, list):
        return None
    ops: list[Operation] = []
    for item in value[:max_ops]:
        if not isinstance(item, dict):
            continue
        op = str(item.get("op", item.get("operation", ""))).strip().upper()
        index = _as_index(item.get("index"), size)
        text = clean_text(item.get("text"))
        if (op == "ADD" and text) or (op == "EDIT" and index and text):
            ops.append(Operation(op, index, text))
        elif op in ("REMOVE", "AGREE") and index:
            ops.append(Operation(op, index, None))
    return ops


def parse_merge(reply: str, size: int) -> list[tuple[str, list[int]]] | None:
    """Valid ``(text, 1-based sources)`` groups of a merge reply; None if the reply is broken."""
    value = decode_json(reply)
    if isinstance(value, dict):
        value = value.get("insights")
    if not isinstance(value, list):
        return None
    groups: list[tuple[str, list[int]]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("from"), list):
            continue
        text = clean_text(item.get("text"))
        sources = sorted({i for i in (_as_index(v, size) for v in item["from"]) if i})
        if text and sources:
            groups.append((text, sources))
    return groups


def parse_key_steps(
    reply: str, actions: Sequence[str], max_steps: int, fallback_steps: int
) -> list[str]:
    """Up to ``max_steps`` lines of the reply; the last ``fallback_steps`` actions when none."""
    lines: list[str] = []
    for raw in (reply if isinstance(reply, str) else "").splitlines():
        line = _NUMBERING.sub("", raw.strip()).strip()
        if not line or (line.endswith(":") and len(line.split()) <= 4):
            continue  # blank lines and headings like "Key steps:"
        lines.append(clip(" ".join(line.split()), 200))
        if len(lines) == max_steps:
            break
    if lines:
        return lines
    tail = list(actions)[-fallback_steps:]
    start = len(actions) - len(tail) + 1
    return [f"Step {start + i}: {clip(a, 120)}" for i, a in enumerate(tail)] or ["(no actions)"]
