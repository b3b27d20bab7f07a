"""Replay files: the LLM replies of one recorded run, small enough to commit.

``pytest --alma-record`` writes one next to the committed record (``reports/alma-replay.jsonl.gz``
by default): the response cache restricted to the calls that run made, collection episodes and
memory builds included. ``pytest --alma-cache=replay-only`` loads it into the session's gateway,
which then answers every call from it and nothing else, so CI re-plays the recorded episodes
exactly, with no API key and no network, and a call the file lacks fails with advice.

Format: gzip of JSON lines. The first line is a header
(``{"format": "pytest-alma-replay", "version": 1, "calls": N, "run_id": ...}``); every other
line is one call, sorted by key: ``{"key", "endpoint", "model", "meta", "body"}``, where
``body`` is the upstream's reply as text (``body_b64`` instead if it is not UTF-8) and ``meta``
is what the cache stores beside it (usage, test-double flag). The gzip header carries no time
stamp and the lines are sorted, so recording the same run twice gives the same bytes.

This module imports only the standard library (and the cache's types): the gateway child and the
pytest glue both import it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_alma.llm.cache import CacheEntry, PendingStore

REPLAY_FORMAT = "pytest-alma-replay"
REPLAY_VERSION = 1

#: What a user runs to refresh a record and its replay file (quoted in error messages).
RERECORD_HINT = (
    "re-record with the model available (and its key set): run pytest with the same options "
    "plus --alma-record (instead of --alma-regression / --alma-cache=replay-only), then commit "
    "the record and its replay file (see docs/ci.md)"
)


class ReplayError(ValueError):
    """A replay file that cannot be used (missing, corrupt, of another format or version)."""


@dataclass(frozen=True)
class ReplayInfo:
    """What was written: the file, how many calls it holds, its size and digest."""

    path: Path
    calls: int
    bytes: int
    sha256: str


def sha256_of(data: bytes) -> str:
    """The hex sha256 of ``data`` (records store it to tie a replay file to its record)."""
    return hashlib.sha256(data).hexdigest()


def encode_replay(entries: Iterable[PendingStore], header: Mapping[str, Any]) -> bytes:
    """The gzip'd JSON-lines bytes of ``entries`` (sorted by key) under ``header``."""
    ordered = sorted(entries, key=lambda e: e.key)
    lines = [
        json.dumps(
            {
                **dict(header),
                "format": REPLAY_FORMAT,
                "version": REPLAY_VERSION,
                "calls": len(ordered),
            },
            sort_keys=True,
            ensure_ascii=False,
        )
    ]
    for entry in ordered:
        line: dict[str, Any] = {
            "key": entry.key,
            "endpoint": entry.endpoint,
            "model": entry.model,
            "meta": dict(entry.meta),
        }
        try:
            line["body"] = entry.body.decode("utf-8")
        except UnicodeDecodeError:
            line["body_b64"] = base64.b64encode(entry.body).decode("ascii")
        lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False))
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    buffer = io.BytesIO()
    # mtime=0 and no file name: the same calls always give the same bytes (clean git diffs).
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buffer.getvalue()


class Replay:
    """The calls of one replay file, by cache key."""

    def __init__(self, header: dict[str, Any], entries: dict[str, PendingStore], source: str):
        self.header = header
        self.entries = entries
        #: Where it came from (a path), for messages.
        self.source = source

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, key: str) -> CacheEntry | None:
        """The reply stored under ``key`` (as the cache would return it), or ``None``."""
        entry = self.entries.get(key)
        return None if entry is None else CacheEntry(body=entry.body, meta=dict(entry.meta))

    def miss_message(self, key: str, *, endpoint: str, model: str, tag: str) -> str:
        """Why a call the replay lacks fails, and what to do about it."""
        role = f", role {tag}" if tag else ""
        return (
            f"this LLM call is not in the replay file {self.source} (replay-only mode: "
            f"{endpoint}, model {model!r}{role}, cache key {key[:16]}...). A replay-only run can "
            "only repeat the recorded run's calls exactly, so a design, a prompt, the model or "
            "an outcome setting changed since the record was made (or the replay file is from "
            f"another record). No model was called. To accept the change, {RERECORD_HINT}."
        )


def decode_replay(data: bytes, source: str) -> Replay:
    """Parse replay-file bytes.

    Raises:
        ReplayError: the bytes are not a replay file of a version this code reads.
    """
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise ReplayError(
            f"{source} is not a pytest-alma replay file (not gzip'd UTF-8 JSON lines: {err}); "
            f"{RERECORD_HINT}"
        ) from None
    lines = text.splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != REPLAY_FORMAT:
        raise ReplayError(f"{source} has no pytest-alma replay header; {RERECORD_HINT}")
    if header.get("version") != REPLAY_VERSION:
        raise ReplayError(
            f"{source} is a replay file of version {header.get('version')!r}; this pytest-alma "
            f"reads version {REPLAY_VERSION}; {RERECORD_HINT}"
        )
    entries: dict[str, PendingStore] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if "body" in item:
                body = str(item["body"]).encode("utf-8")
            else:
                body = base64.b64decode(item["body_b64"], validate=True)
            entry = PendingStore(
                key=str(item["key"]),
                body=body,
                endpoint=str(item["endpoint"]),
                model=str(item["model"]),
                meta=dict(item.get("meta") or {}),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as err:
            raise ReplayError(
                f"{source}, line {number}: not a replay entry ({type(err).__name__}: {err}); "
                f"{RERECORD_HINT}"
            ) from None
        entries[entry.key] = entry
    if header.get("calls") != len(entries):
        raise ReplayError(
            f"{source} says it holds {header.get('calls')} calls but has {len(entries)} "
            f"(truncated or edited?); {RERECORD_HINT}"
        )
    return Replay(header, entries, source)


def write_replay(
    path: Path, entries: Iterable[PendingStore], header: Mapping[str, Any]
) -> ReplayInfo:
    """Write a replay file atomically (readers see the old file or the new one, never a part)."""
    from pytest_alma.store import atomic_write_bytes  # filelock is not needed by the gateway

    entries = list(entries)
    data = encode_replay(entries, header)
    atomic_write_bytes(path, data)
    return ReplayInfo(path=path, calls=len(entries), bytes=len(data), sha256=sha256_of(data))


def read_replay(path: Path) -> Replay:
    """Read and parse a replay file (see :func:`decode_replay`)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ReplayError(f"cannot read the replay file {path}: {err}; {RERECORD_HINT}") from None
    return decode_replay(data, str(path))
