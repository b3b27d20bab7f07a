"""The wire between a worker and a design process: one JSON object per line, both ways.

Worker to design process (requests, answered in order, one at a time)::

    {"id": 3, "op": "retrieve", "instance": "d1", "start": {...TaskStart.to_json()...}}

Design process to worker: the answer to a request, or a call the design makes to the LLM while
a request runs (the worker makes it on the design's behalf and answers with the same ``llm``
number)::

    {"id": 3, "ok": true, "result": {"memory": {...}, "mutated": false}}
    {"id": 3, "ok": false, "error": {"kind": "raised", "message": "..."}}
    {"llm": 7, "op": "chat", "args": {"messages": [...], "temperature": 0.7, ...}}
    {"llm": 7, "ok": true, "result": "the reply text"}            (worker -> design process)

Nothing but plain JSON crosses: the design never holds an object of the worker's (an episode,
a score, a client, a token), and the worker never unpickles anything the design sends (a
snapshot travels as base64 bytes and is only stored and handed back).
"""

from __future__ import annotations

import json
from typing import Any

#: Largest line either side accepts. A snapshot of a big memory travels in one line (base64), so
#: this is generous; a design process that sends more is killed (it would exhaust the worker).
MAX_FRAME_BYTES = 512 * 1024 * 1024

#: Error kinds of a failed request (``error.kind``).
ERROR_KINDS = ("load", "raised", "exit", "memory", "junk", "snapshot", "restore", "llm", "protocol")

#: Requests a design process serves.
OPS = (
    "hello",
    "load",
    "new",
    "update",
    "retrieve",
    "retrieve_once",
    "snapshot",
    "restore",
    "config",
    "drop",
)


class ProtocolError(Exception):
    """A line that is not a frame of this protocol (the other side is broken or hostile)."""


def encode(frame: dict[str, Any]) -> bytes:
    """One frame as a line of strict JSON (no NaN, no infinity: other JSON readers refuse them)."""
    return (
        json.dumps(frame, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
            "utf-8"
        )
        + b"\n"
    )


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line into a frame (a JSON object); :class:`ProtocolError` otherwise."""
    try:
        frame = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not a JSON line: {exc}; it starts {line[:80]!r}") from None
    if not isinstance(frame, dict):
        raise ProtocolError(f"a frame must be a JSON object, got {type(frame).__name__}")
    return frame
