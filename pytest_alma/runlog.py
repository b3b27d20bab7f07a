"""The run's journal: ``episodes.jsonl``, appended as results arrive, so a killed run keeps them.

The controller writes one JSON object per line beside ``results.json`` and flushes each line to
the operating system before it goes on (a SIGKILL of the controller loses at most the line being
written; only an OS crash can lose more). Every line has a ``type``:

- ``run``: the run's header, first (what ``results.json`` says besides its records);
- ``episode``: one deployment episode record (``data``), as it reached the controller;
- ``build``: one memory-build record (``key``, ``data``), when it first arrives or changes;
- ``collection``: one collection-episode record (``key``, ``data``).

``results.json`` is written from memory at the end of the session (``"partial": false``, or
``true`` when the session was interrupted, e.g. by SIGTERM). When it is missing (the controller
was killed), :func:`rebuild` turns the journal back into a results document marked partial, and
``python -m pytest_alma report RUN_DIR`` renders that.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

EPISODES_FILE = "episodes.jsonl"
RESULTS_FILE = "results.json"

#: ``partial_reason`` of a results document rebuilt from the journal.
REBUILT_REASON = (
    "rebuilt from episodes.jsonl: the session ended without writing results.json (the "
    "controller was killed); only the episodes that finished before that are counted"
)


class RunLog:
    """Appends typed records to ``<run dir>/episodes.jsonl`` (opened on the first write)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EPISODES_FILE
        self._handle: IO[str] | None = None

    def write(self, kind: str, data: Any, key: str | None = None) -> None:
        """Append one line and hand it to the operating system at once."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        line: dict[str, Any] = {"type": kind, "at": time.time(), "data": data}
        if key is not None:
            line["key"] = key
        self._handle.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The journal's records; a last line cut off by a kill (not valid JSON) is skipped."""
    records: list[dict[str, Any]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            continue  # the line being written when the process died
        if isinstance(record, dict) and "type" in record:
            records.append(record)
    return records


def order_episodes(episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Episodes in the order results.json keeps them (design, env, repeat, task)."""
    return sorted(
        episodes,
        key=lambda e: (e["design"], e["task"]["env"], e["repeat"], e["task"]["task_id"]),
    )


def rebuild(run_dir: Path) -> dict[str, Any]:
    """A results document (``"partial": true``) from the journal of ``run_dir``.

    Raises FileNotFoundError when the run has no journal, ValueError when it has no header.
    """
    path = Path(run_dir) / EPISODES_FILE
    lines = read_lines(path)
    header = next((r["data"] for r in lines if r["type"] == "run"), None)
    if not isinstance(header, dict):
        raise ValueError(f"{path} has no run header line: it is not a pytest-alma run journal")
    episodes = [r["data"] for r in lines if r["type"] == "episode"]
    builds: dict[str, Any] = {}
    collection: dict[str, Any] = {}
    for r in lines:
        if r["type"] == "build":
            builds[str(r.get("key"))] = r["data"]
        elif r["type"] == "collection":
            collection[str(r.get("key"))] = r["data"]
    last = max((float(r.get("at", 0.0)) for r in lines), default=0.0)
    return {
        **header,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else None,
        "partial": True,
        "partial_reason": REBUILT_REASON,
        "designs": builds,
        "llm": None,
        "collection": sorted(collection.values(), key=lambda c: c["task"]["task_id"]),
        "episodes": order_episodes(episodes),
    }
