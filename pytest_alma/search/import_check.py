"""Verification stage 2: import a candidate in an isolated child process.

The child has no API key or upstream URL in its environment, a memory cap, a lower CPU priority
and a wall-clock limit; it imports the module, finds its one design class and reports as one
JSON line. An import that hangs, exits, crashes the interpreter or floods memory fails here
with a message the repair call can use, before any sub-session starts.

Run as ``python -m pytest_alma.search.import_check PATH [MEMORY_MB]`` (by :func:`check_import`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

IMPORT_TIMEOUT_S = 60.0


def check_import(path: Path, memory_mb: int, api_key_env: str) -> str | None:
    """``None`` when the design imports and has one design class, else what went wrong."""
    from pytest_alma.isolation import secret_names

    env = dict(os.environ)
    for name in secret_names(env, api_key_env):
        env.pop(name, None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest_alma.search.import_check", str(path), str(memory_mb)],
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT_S,
            env=env,
            cwd=path.parent,
        )
    except subprocess.TimeoutExpired:
        return f"importing the design did not finish in {IMPORT_TIMEOUT_S:g} s (a loop at import?)"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        return f"the import process ended with status {done.returncode} and no report:\n{tail}"
    report = json.loads(lines[-1])
    return None if report.get("ok") else str(report.get("error"))


def main(argv: list[str]) -> int:
    from pytest_alma import isolation
    from pytest_alma.design import DesignError, load_design

    path = Path(argv[0])
    memory_mb = int(argv[1]) if len(argv) > 1 else 4096
    isolation.mark_worker()
    isolation.limit_worker_memory(memory_mb)
    if hasattr(os, "nice"):
        os.nice(10)
    try:
        loaded = load_design(path)
    except DesignError as exc:
        report = {"ok": False, "error": str(exc)}
    except MemoryError:
        report = {"ok": False, "error": isolation.out_of_memory_message("importing the design")}
    else:
        report = {"ok": True, "class": loaded.cls.__name__}
    sys.stdout.write("\n" + json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
