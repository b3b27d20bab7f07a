"""Verification stage 2: import a candidate in a design process, in the session's sandbox.

The candidate's class is found statically first (:mod:`pytest_alma.sandbox.static_find`), then
its module is imported in a design process exactly as an episode's would be (bubblewrap where
it works, no key, no network, hard memory and CPU limits) under a wall-clock limit. An import
that raises, exits, hangs, crashes the interpreter or floods memory fails here with a message
the repair call can use, before any sub-session starts.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_alma.contract.machine import OfflineLLM
from pytest_alma.design import DesignError
from pytest_alma.sandbox.launch import Limits, Sandbox
from pytest_alma.sandbox.process import DesignProcess
from pytest_alma.sandbox.static_find import StaticFindError, find_design

IMPORT_TIMEOUT_S = 60.0


def check_import(
    path: Path, sandbox: Sandbox, limits: Limits, timeout_s: float = IMPORT_TIMEOUT_S
) -> str | None:
    """``None`` when the design imports and has one design class, else what went wrong."""
    try:
        spec = find_design(path)
    except StaticFindError as exc:
        return str(exc)
    scratch = Path(tempfile.mkdtemp(prefix="alma-import-"))
    # The design's LLM calls (none are expected at import) are answered offline.
    process = DesignProcess(spec, sandbox, scratch, limits, OfflineLLM(), load_timeout_s=timeout_s)

    async def check() -> str | None:
        try:
            await process.new("import-check", 0, timeout_s)
        except DesignError as exc:
            return str(exc)
        finally:
            await process.kill()
        return None

    try:
        # A loop of its own, in a thread: the search calls this from inside its running loop.
        with ThreadPoolExecutor(1, thread_name_prefix="alma-import-check") as pool:
            return pool.submit(asyncio.run, check()).result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
