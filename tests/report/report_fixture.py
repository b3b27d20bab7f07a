"""The stored run the report tests render (results.json and some of its trajectory files, see
data/README.md), and small helpers to read what was rendered."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
RUN_ID = "20261124-020702-19f5"
STORED_RUN = DATA / RUN_ID

#: The broken design's score row as every report shows it (design, tasks x repeats, episodes,
#: n_eff, success %, interval, n*, difference against no_memory in pp, its interval, p-value),
#: worked out in data/README.md and test_stats_by_hand.py: by task, the 4 episodes No Memory
#: won and flaky_goto lost are 2 tasks, so p = 2/4 (it was 2/16 when episodes were the unit).
FLAKY_ROW = [
    "flaky_goto",
    "8x2",
    "16",
    "-",
    "0.0",
    "[0.0, 32.4]",
    "8",
    "-25.0",
    "[-63.7, 13.7]",
    "0.5",
]

#: A search lineage as the search writes it into results["search"]["lineage"].
LINEAGE: list[dict[str, Any]] = [
    {"id": "s0", "name": "no_memory", "parent": None, "generation": 0, "status": "seed",
     "reward": 0.25},
    {"id": "s1", "name": "trajectory_retrieval", "parent": None, "generation": 0,
     "status": "seed", "reward": 0.25},
    {"id": "c1", "name": "rules_keyed_plans", "parent": "s1", "generation": 1,
     "status": "written", "reward": 0.4375},
    {"id": "c2", "name": "spatial_hints", "parent": "s1", "generation": 1, "status": "failed",
     "reward": None},
    {"id": "c3", "name": "cheatsheet_v2", "parent": "s0", "generation": 1,
     "status": "evaluated", "reward": 0.1875},
    {"id": "c4", "name": "rules_keyed_plans_dedup", "parent": "c1", "generation": 2,
     "status": "written", "reward": 0.5625},
    {"id": "c5", "name": "rules_keyed_copy", "parent": "c1", "generation": 2,
     "status": "duplicate", "reward": None},
    {"id": "c6", "name": "out_of_budget", "parent": "c3", "generation": 2, "status": "budget",
     "reward": None},
]  # fmt: skip


def stored_results() -> dict[str, Any]:
    """The stored run's results.json (a fresh copy)."""
    data: dict[str, Any] = json.loads((STORED_RUN / "results.json").read_text(encoding="utf-8"))
    return data


def copy_run(dest: Path) -> Path:
    """A copy of the stored run (results.json and trajectories) under ``dest``."""
    run = dest / RUN_ID
    shutil.copytree(STORED_RUN, run)
    return run


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def markdown_rows(text: str, heading: str, key_column: int = 0) -> dict[str, list[str]]:
    """The rows of the first Markdown table after ``heading``: each row's cells by the cell in
    ``key_column`` (the first row wins when a key repeats), without that cell."""
    lines = text[text.index(heading) :].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        key = cells.pop(key_column)
        rows.setdefault(key, cells)
    return rows
