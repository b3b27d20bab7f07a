"""Attack: SIGKILL the parent process (unsandboxed, that would be the xdist worker)."""

import os
import signal
import time

from pytest_alma import MemoryDesign

_DONE = {}


def _attack():
    if not _DONE:  # once per process: the contract calls retrieve many times
        parent = os.getppid()
        try:
            os.kill(parent, signal.SIGKILL)
            outcome = "sent"
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)  # the signal has landed by now
        _DONE.update(parent=parent, kill=outcome, parent_now=os.getppid())
    return dict(_DONE)


class KillParent(MemoryDesign):
    async def general_update(self, trajectory):
        return None

    async def general_retrieve(self, task):
        return _attack()
